"""The noise layer: a thin module around ``neuroaikit.noise.functional`` with explicit state."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from ..errors import ConfigError
from .functional import apply_noise
from .spec import NoiseSpec

if TYPE_CHECKING:
    from .draws import _DrawContext

MODES = ("on", "off", "frozen")


class NoiseLayer(nn.Module):
    """Adds trial-to-trial variability to its input.

    The noise is controlled only by ``mode``, never by ``model.train()``/``model.eval()``:
    attack libraries put models in eval mode, and a stochastic defense must not lose its
    noise behind the user's back.

    Args:
        spec (NoiseSpec | dict | str | float): the noise, see :class:`NoiseSpec`.
        mode (str): ``"on"`` (a fresh draw per example and per call), ``"off"`` (identity)
            or ``"frozen"`` (one fixed draw of shape ``x.shape[1:]``, the same for every
            example and call, which makes the model a deterministic function). Default ``"on"``.
        seed (int | None): seeds this layer's own generator; ``None`` uses torch's global RNG.

    Shape: any ``(B, ...)``; the output has the shape of the input, except inside
    :func:`neuroaikit.noise.expand_draws`, where the first noise layer replicates the batch.
    """

    frozen_eps: torch.Tensor | None  # a non-persistent buffer
    draw_context: _DrawContext | None

    def __init__(self, spec: NoiseSpec | dict | str | float = NoiseSpec(), mode: str = "on", seed: int | None = None):
        super().__init__()
        self.spec = NoiseSpec.from_any(spec)
        self.register_buffer("frozen_eps", None, persistent=False)
        self.set_mode(mode)
        self.seed = seed
        self.scale = 1.0  # multiplies the noise s.d.; a training warm-up ramps it from 0 to 1
        self._generator: torch.Generator | None = None
        self.draw_context = None  # set by expand_draws

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ConfigError(f"noise mode must be one of {', '.join(MODES)}, got {mode!r}")
        if mode != "frozen":
            self.frozen_eps = None
        self.mode = mode

    def reseed(self, seed: int | None) -> None:
        self.seed = seed
        self._generator = None
        self.frozen_eps = None

    def rng_state(self) -> torch.Tensor | None:
        """State of this layer's own generator (``None`` when it uses the global RNG)."""
        return self._generator.get_state() if self._generator is not None else None

    def set_rng_state(self, state: torch.Tensor | None, device: torch.device | str | None = None) -> bool:
        """Continue from ``state`` (from :meth:`rng_state`) on ``device`` (the CPU by default),
        the device the draws will be made on. A state saved on another kind of device (a CUDA
        generator's state is not a CPU one's) cannot continue there: the stream then starts
        afresh from the layer's seed, and this returns False."""
        if state is None or self.seed is None:
            return True
        generator = torch.Generator(device=device or "cpu")
        if generator.get_state().numel() != state.numel():
            self._generator = None
            return False
        generator.set_state(state.cpu())  # a CUDA generator's state too is a CPU tensor
        self._generator = generator
        return True

    def _draw(self, shape: torch.Size, like: torch.Tensor) -> torch.Tensor:
        if self.seed is None:
            return torch.randn(shape, device=like.device, dtype=like.dtype)
        if self._generator is None or self._generator.device != like.device:
            self._generator = torch.Generator(device=like.device)
            self._generator.manual_seed(self.seed)
        return torch.randn(shape, device=like.device, dtype=like.dtype, generator=self._generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "off":
            return x
        ctx = self.draw_context
        if ctx is not None and not ctx.expanded:
            ctx.batch, ctx.rows = x.shape[0], x.shape[0] * ctx.n_draws
            x = x.repeat(ctx.n_draws, *([1] * (x.dim() - 1)))
            ctx.expanded = True
        elif ctx is not None and ctx.batch is not None and ctx.rows != ctx.batch and x.shape[0] == ctx.batch:
            # a branch that skips the first noise layer: one draw here would be shared by all the
            # copies, and at batch size 1 broadcasting would hide it; forward_draws catches
            # "shape" and replicates the input instead
            raise RuntimeError(f"noise layer got the uncopied batch shape {tuple(x.shape)} while the first "
                               f"noise layer's copies have {ctx.rows} rows: a branch skips the first noise layer")
        if self.mode == "frozen":
            if self.frozen_eps is None or self.frozen_eps.shape != x.shape[1:]:
                self.frozen_eps = self._draw(x.shape[1:], x)
            eps = self.frozen_eps.to(x.dtype)
        else:
            eps = self._draw(x.shape, x)
        if self.scale != 1.0:
            eps = eps * self.scale
        return apply_noise(x, self.spec, eps)

    def extra_repr(self) -> str:
        s = self.spec
        detail = f"sigma={s.sigma}" if s.kind != "poisson" else f"gain={s.gain}, floor={s.floor}"
        return f"{s.kind}, {detail}, rectify={s.rectify}, mode={self.mode}"
