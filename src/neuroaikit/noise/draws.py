"""Many noise draws in one vectorised pass.

Inside :func:`expand_draws`, the first noise layer a forward pass reaches replicates its
input ``n_draws`` times along the batch; everything after it runs once on the larger batch.
The noise-free layers before the first noise layer give the same result for every draw,
so they are computed once: cheaper than replicating the input, with identical outputs
and gradients.
"""

from __future__ import annotations

import weakref
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch
from torch import nn

from .control import noise_layers


@dataclass
class _DrawContext:
    n_draws: int
    expanded: bool = False
    batch: int | None = None  # rows the first noise layer received, before it copied them
    rows: int | None = None  # rows after copying: n_draws * batch


@contextmanager
def expand_draws(model: nn.Module, n_draws: int, at: str = "first_noise") -> Iterator[None]:
    """Make each forward pass of ``model`` return ``n_draws * B`` rows, draw-major
    (rows ``d*B:(d+1)*B`` are draw ``d``). ``at="input"`` replicates the input instead,
    for graphs where a skip path bypasses the first noise layer. With ``"first_noise"``, a
    later noise layer that receives the uncopied batch (a parallel branch that skips the
    first noise layer) raises a shape ``RuntimeError``, even where broadcasting would hide
    the mismatch (batch size 1): its draws would be shared by every copy."""
    ctx = _DrawContext(n_draws)
    layers = [layer for _, layer in noise_layers(model)]

    def reset(module, args, kwargs):
        ctx.expanded, ctx.batch, ctx.rows = False, None, None
        if at == "input" and args:
            x = args[0]
            ctx.expanded = True
            return (x.repeat(n_draws, *([1] * (x.dim() - 1))), *args[1:]), kwargs
        return None

    handle = model.register_forward_pre_hook(reset, with_kwargs=True)
    for layer in layers:
        layer.draw_context = ctx
    try:
        yield
    finally:
        handle.remove()
        for layer in layers:
            layer.draw_context = None


def _forward_draws(model: nn.Module, x: torch.Tensor, n_draws: int, at: str) -> torch.Tensor:
    with expand_draws(model, n_draws, at=at):
        out = model(x)
    batch = x.shape[0]
    if out.shape[0] == batch * n_draws:
        return out.reshape(n_draws, batch, *out.shape[1:])
    if out.shape[0] == batch:  # no noise layer was reached: every draw is the same, unless undeclared randomness
        return out.unsqueeze(0).expand(n_draws, *out.shape)
    raise RuntimeError(f"model returned {out.shape[0]} rows for a batch of {batch} and {n_draws} draws")


# models found to need input replication (a skip path bypasses their first noise layer)
_REPLICATE_INPUT: "weakref.WeakSet[nn.Module]" = weakref.WeakSet()
# models random in ways no noise layer explains (noise in their own forward, dropout left on):
# "input" when each row of a batch gets its own draw, "loop" when a draw is shared by the batch
_OWN_RANDOMNESS: "weakref.WeakKeyDictionary[nn.Module, str]" = weakref.WeakKeyDictionary()


def mark_stochastic(model: nn.Module, per_row: bool = True) -> None:
    """Declare ``model`` random beyond its noise layers, so that :func:`forward_draws` takes
    independent draws of that randomness too: by replicating the input (``per_row``: each row of
    a batch is drawn afresh) or with one forward pass per draw (a draw shared by the batch).
    :func:`neuroaikit.attacks.detect_randomness` finds out which and calls this."""
    _OWN_RANDOMNESS[model] = "input" if per_row else "loop"


def shares_draws_across_batch(model: nn.Module) -> bool:
    """Whether ``model`` was declared random with one draw per forward pass, shared by the rows of
    the batch (:func:`mark_stochastic` with ``per_row=False``): independent draws then need
    separate passes."""
    return _OWN_RANDOMNESS.get(model) == "loop"


def is_stochastic(model: nn.Module) -> bool:
    """Whether repeated forward passes of ``model`` differ: it has noise layers, or was declared
    random with :func:`mark_stochastic`."""
    return model in _OWN_RANDOMNESS or any(True for _ in noise_layers(model))


def skips_first_noise(exc: BaseException | None) -> bool:
    """Whether ``exc``, raised by a pass under ``expand_draws(..., at="first_noise")``, says a branch
    skips the first noise layer (copied and uncopied rows met): copy the input instead."""
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("size of tensor" in text or "shape" in text)


def forward_draws(model: nn.Module, x: torch.Tensor, n_draws: int) -> torch.Tensor:
    """Outputs of ``n_draws`` noise draws for each example: shape ``(n_draws, B, ...)``.

    Differentiable: gradients reaching ``x`` are summed over draws. Randomness outside the noise
    layers is drawn afresh only once declared (:func:`mark_stochastic`; attacks taking several
    draws run :func:`neuroaikit.attacks.detect_randomness` on an undeclared model first): else
    one pass is repeated ``n_draws`` times.
    """
    if n_draws == 1:
        return model(x).unsqueeze(0)
    own = _OWN_RANDOMNESS.get(model)
    if own == "loop":
        return torch.stack([model(x) for _ in range(n_draws)])
    if own == "input" or model in _REPLICATE_INPUT:
        return _forward_draws(model, x, n_draws, "input")
    try:
        return _forward_draws(model, x, n_draws, "first_noise")
    except RuntimeError as exc:
        # a branch that skips the first noise layer meets the replicated batch: remember the
        # model, so that attacks calling this every step do not fail the same way each time
        if not skips_first_noise(exc):
            raise
        out = _forward_draws(model, x, n_draws, "input")
        _REPLICATE_INPUT.add(model)
        return out
