"""Pair-based STDP with exponential traces, as a pure step function plus a small learner
that writes the update as a negative gradient (``weight.grad = -dw``), so any torch optimizer
applies it (plain SGD with lr = eta gives ``w <- w + eta * dw``).

Per step (``dt = 1``): traces decay, ``x_pre <- x_pre * exp(-1/tau_pre) + s_pre``; then

- potentiation at a post spike: ``dw[j, i] += a_plus * s_post[j] * x_pre[i]``
  (the pre trace includes pre spikes of the same step);
- depression at a pre spike: ``dw[j, i] -= a_minus * x_post[j] * s_pre[i]``
  (the post trace of earlier steps only);
- finally ``x_post <- x_post * exp(-1/tau_post) + s_post``.

Weight dependence: ``"additive"`` (clip to [w_min, w_max] afterwards) or
``"multiplicative"`` (potentiation x (w_max - w), depression x (w - w_min)).

:func:`stdp_sequence` gives the same total as ``T`` calls of :func:`stdp_step` from empty
traces with the weight held fixed, for a whole presentation ``(T, B, N)`` at once; it only
touches the steps with post spikes and the pre spikes themselves, so sparse activity is cheap.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from ...errors import ConfigError

WEIGHT_DEPENDENCES = ("additive", "multiplicative")


class STDPParameters(NamedTuple):
    """``a_plus`` (1e-2), ``a_minus`` (1e-4, Diehl & Cook's nu_post / nu_pre), ``tau_pre`` / ``tau_post``
    (20 steps), ``w_min`` (0), ``w_max`` (1), ``weight_dependence`` (``"additive"``)."""

    a_plus: float = 1e-2
    a_minus: float = 1e-4
    tau_pre: float = 20.0
    tau_post: float = 20.0
    w_min: float = 0.0
    w_max: float = 1.0
    weight_dependence: str = "additive"

    def check(self) -> "STDPParameters":
        """Return ``self``, or raise :class:`~neuroaikit.errors.ConfigError` naming the first bad field."""
        # written as "not x > 0" so that NaN is refused too
        for name in ("tau_pre", "tau_post"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"STDP {name} must be > 0, got {getattr(self, name)!r}")
        for name in ("a_plus", "a_minus"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"STDP {name} must be >= 0, got {getattr(self, name)!r}")
        if not self.w_max > self.w_min:
            raise ConfigError(f"STDP w_max must exceed w_min, got [{self.w_min}, {self.w_max}]")
        if self.weight_dependence not in WEIGHT_DEPENDENCES:
            raise ConfigError(f"STDP weight_dependence must be one of {', '.join(WEIGHT_DEPENDENCES)}, "
                              f"got {self.weight_dependence!r}")
        return self


class STDPState(NamedTuple):
    x_pre: torch.Tensor   # (B, N_in)
    x_post: torch.Tensor  # (B, N_out)


def stdp_step(pre: torch.Tensor, post: torch.Tensor, state: STDPState | None, params: STDPParameters,
              weight: torch.Tensor | None = None) -> tuple[torch.Tensor, STDPState]:
    """One step: spikes ``pre (B, N_in)``, ``post (B, N_out)`` -> (``dw (N_out, N_in)`` summed
    over the batch, new traces). ``weight`` is needed for multiplicative weight dependence.
    Raises :class:`~neuroaikit.errors.ConfigError` for invalid ``params``."""
    # a few float comparisons, negligible next to the two matrix products, so every step checks
    # (as lif_step does): a misspelled weight_dependence must not silently train additively
    params.check()
    if state is None:
        state = STDPState(torch.zeros_like(pre), torch.zeros_like(post))
    x_pre = state.x_pre * math.exp(-1 / params.tau_pre) + pre
    x_post_old = state.x_post * math.exp(-1 / params.tau_post)
    potentiation = params.a_plus * post.t() @ x_pre
    depression = params.a_minus * x_post_old.t() @ pre
    if params.weight_dependence == "multiplicative":
        if weight is None:
            raise ConfigError("multiplicative STDP needs the current weight")
        potentiation = potentiation * (params.w_max - weight)
        depression = depression * (weight - params.w_min)
    return potentiation - depression, STDPState(x_pre, x_post_old + post)


MAX_PAIRS = 2_000_000


def _stepped_sums(pre: torch.Tensor, post: torch.Tensor, params: STDPParameters) -> tuple[torch.Tensor, torch.Tensor]:
    """The same sums as :func:`_pair_sums`, by stepping the traces (for dense activity)."""
    potentiation = torch.zeros(post.shape[1], pre.shape[1], dtype=pre.dtype, device=pre.device)
    depression = torch.zeros_like(potentiation)
    x_pre, x_post = torch.zeros_like(pre[0]), torch.zeros_like(post[0])
    decay_pre, decay_post = math.exp(-1 / params.tau_pre), math.exp(-1 / params.tau_post)
    for t in range(pre.shape[0]):
        x_pre = x_pre * decay_pre + pre[t]
        x_post = x_post * decay_post
        potentiation += torch.outer(post[t], x_pre)
        depression += torch.outer(x_post, pre[t])
        x_post = x_post + post[t]
    return potentiation, depression


def _pair_sums(pre: torch.Tensor, post: torch.Tensor, params: STDPParameters) -> tuple[torch.Tensor, torch.Tensor]:
    """Potentiation and depression sums of one sample, ``pre (T, N_in)``, ``post (T, N_out)``, from
    spike pairs: a post spike at ``s`` pairs with every pre spike at ``t <= s`` (weight
    ``exp(-(s - t) / tau_pre)``), a pre spike at ``t`` with every post spike at ``s < t``."""
    t_pre, i_pre = pre.nonzero(as_tuple=True)
    t_post, j_post = post.nonzero(as_tuple=True)
    if len(t_pre) * len(t_post) > MAX_PAIRS:  # dense activity: stepping the traces is cheaper
        return _stepped_sums(pre, post, params)
    pre_value, post_value = pre[t_pre, i_pre], post[t_post, j_post]
    lag = (t_post.unsqueeze(1) - t_pre.unsqueeze(0)).to(pre.dtype)   # (post events, pre events)
    pair = post_value.unsqueeze(1) * pre_value.unsqueeze(0)
    causal = torch.where(lag >= 0, torch.exp(-lag / params.tau_pre), 0.0) * pair
    acausal = torch.where(lag < 0, torch.exp(lag / params.tau_post), 0.0) * pair
    n_out, n_in = post.shape[1], pre.shape[1]
    potentiation = torch.zeros(n_out, n_in, dtype=pre.dtype, device=pre.device)
    depression = torch.zeros_like(potentiation)
    potentiation.index_put_((j_post.unsqueeze(1).expand_as(lag), i_pre.unsqueeze(0).expand_as(lag)), causal,
                            accumulate=True)
    depression.index_put_((j_post.unsqueeze(1).expand_as(lag), i_pre.unsqueeze(0).expand_as(lag)), acausal,
                          accumulate=True)
    return potentiation, depression


def stdp_sequence(pre: torch.Tensor, post: torch.Tensor, params: STDPParameters,
                  weight: torch.Tensor | None = None) -> torch.Tensor:
    """Summed update ``dw (N_out, N_in)`` of spike trains ``pre (T, B, N_in)``, ``post (T, B, N_out)``
    that start with empty traces; equal to summing :func:`stdp_step` over the ``T`` steps. Works on
    the spike pairs, so its cost grows with (post spikes x pre spikes), not with ``T``. Raises
    :class:`~neuroaikit.errors.ConfigError` for invalid ``params``."""
    params.check()
    if pre.dim() != 3 or post.dim() != 3 or pre.shape[:2] != post.shape[:2]:
        raise ConfigError(f"stdp_sequence expects pre (T, B, N_in) and post (T, B, N_out), "
                          f"got {tuple(pre.shape)} and {tuple(post.shape)}")
    if params.weight_dependence == "multiplicative" and weight is None:
        raise ConfigError("multiplicative STDP needs the current weight")
    potentiation = torch.zeros(post.shape[2], pre.shape[2], dtype=pre.dtype, device=pre.device)
    depression = torch.zeros_like(potentiation)
    for b in post.any(2).any(0).nonzero(as_tuple=True)[0].tolist():  # samples without post spikes add nothing
        pot, dep = _pair_sums(pre[:, b], post[:, b], params)
        potentiation += pot
        depression += dep
    potentiation, depression = params.a_plus * potentiation, params.a_minus * depression
    if params.weight_dependence == "multiplicative":
        assert weight is not None  # checked on entry
        potentiation = potentiation * (params.w_max - weight)
        depression = depression * (weight - params.w_min)
    return potentiation - depression


class STDPLearner:
    """Accumulates :func:`stdp_step` updates for one weight and writes ``-dw`` into its ``.grad``.

    Example::

        learner = STDPLearner(layer.weight, STDPParameters())
        opt = torch.optim.SGD([layer.weight], lr=1.0)
        for t in range(T):
            ...                              # run the network, get pre / post spikes
            learner.step(pre, post)
        opt.zero_grad(); learner.write_grad(); opt.step(); learner.clip()
    """

    def __init__(self, weight: torch.nn.Parameter, params: STDPParameters = STDPParameters()):
        self.weight = weight
        self.params = params.check()
        self.reset()

    def reset(self) -> None:
        """Forget traces and the accumulated update (call between samples)."""
        self.state: STDPState | None = None
        self.dw = torch.zeros_like(self.weight)

    @torch.no_grad()
    def step(self, pre: torch.Tensor, post: torch.Tensor) -> None:
        dw, self.state = stdp_step(pre, post, self.state, self.params, self.weight)
        self.dw += dw

    @torch.no_grad()
    def step_sequence(self, pre: torch.Tensor, post: torch.Tensor) -> None:
        """Accumulate a whole presentation ``(T, B, N)`` (:func:`stdp_sequence`; traces start empty)."""
        self.dw += stdp_sequence(pre, post, self.params, self.weight)

    @torch.no_grad()
    def write_grad(self) -> None:
        """``weight.grad = -dw`` (a descent step then follows the rule); the accumulator is cleared."""
        grad = -self.dw
        self.weight.grad = grad if self.weight.grad is None else self.weight.grad + grad
        self.dw = torch.zeros_like(self.weight)

    @torch.no_grad()
    def clip(self) -> None:
        self.weight.clamp_(self.params.w_min, self.params.w_max)
