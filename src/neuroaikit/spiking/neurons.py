"""Leaky and non-leaky integrate-and-fire neurons as pure step functions (Norse style).

Discrete dynamics (snnTorch ``Leaky``, Eshraghian et al. 2023), one step of length ``dt``::

    subtract reset:  v[t] = beta * v[t-1] + I[t] - z[t-1] * v_th
    zero reset:      v[t] = beta * (1 - z[t-1]) * v[t-1] + I[t]
    spike:           z[t] = Heaviside(v[t] - v_th)        (strictly above threshold)

with ``beta = exp(-dt / tau_mem)`` (``beta = 1`` for IF neurons). The state holds the membrane
potential *before* the reset and the last spike; the reset is applied at the next step, exactly
as snnTorch does, so both produce identical spikes for identical weights and inputs.
The spike used for the reset is detached by default (snnTorch's default), so gradients flow
only through the membrane and the surrogate.

Nothing is stored between calls: the state goes in and comes out explicitly.
"""

from __future__ import annotations

import math
import numbers
from typing import NamedTuple

import torch

from ..config import is_finite_number
from ..errors import ConfigError
from .surrogate import SURROGATES, spike, surrogate_derivative

RESETS = ("subtract", "zero")


class LIFParameters(NamedTuple):
    """Parameters of a leaky integrate-and-fire neuron.

    Args:
        tau_mem (float): membrane time constant, in the same unit as ``dt``. Default 10.
        v_th (float): firing threshold (> 0). Default 1.
        reset (str): ``"subtract"`` (v -= v_th) or ``"zero"`` (v = 0). Default ``"subtract"``.
        surrogate (str): ``"atan"``, ``"fast_sigmoid"`` or ``"straight_through"``. Default ``"atan"``.
        alpha (float | None): surrogate slope; None uses the surrogate's default (2, 25, -).
        dt (float): step length. Default 1.
        detach_reset (bool): no gradient through the reset term (snnTorch default). Default True.
    """

    tau_mem: float = 10.0
    v_th: float = 1.0
    reset: str = "subtract"
    surrogate: str = "atan"
    alpha: float | None = None
    dt: float = 1.0
    detach_reset: bool = True

    @property
    def beta(self) -> float:
        return math.exp(-self.dt / self.tau_mem)

    @classmethod
    def from_beta(cls, beta: float, **kwargs) -> "LIFParameters":
        """Parameters with decay factor ``beta`` per step (snnTorch's parametrisation)."""
        if not 0 < beta < 1:
            raise ConfigError(f"beta must be in (0, 1), got {beta}")
        return cls(tau_mem=-kwargs.get("dt", 1.0) / math.log(beta), **kwargs)

    def check(self) -> "LIFParameters":
        """Return self, or raise ConfigError naming the bad value."""
        if not (is_finite_number(self.tau_mem) and self.tau_mem > 0):
            raise ConfigError(f"tau_mem must be a finite number > 0, got {self.tau_mem!r}")
        if not (is_finite_number(self.dt) and self.dt > 0):
            raise ConfigError(f"dt must be a finite number > 0, got {self.dt!r}")
        _check_common(self)
        return self


class IFParameters(NamedTuple):
    """Parameters of a (non-leaky) integrate-and-fire neuron: LIF with ``beta = 1``.

    The fields ``v_th``, ``reset``, ``surrogate``, ``alpha`` and ``detach_reset`` mean what they mean
    in :class:`LIFParameters`.
    """

    v_th: float = 1.0
    reset: str = "subtract"
    surrogate: str = "atan"
    alpha: float | None = None
    detach_reset: bool = True

    @property
    def beta(self) -> float:
        return 1.0

    def check(self) -> "IFParameters":
        _check_common(self)
        return self


def _check_common(p) -> None:
    if not (is_finite_number(p.v_th) and p.v_th > 0):
        raise ConfigError(f"threshold v_th must be a finite number > 0, got {p.v_th!r}")
    if p.reset not in RESETS:
        raise ConfigError(f"reset must be one of {', '.join(RESETS)}, got {p.reset!r}")
    if p.surrogate not in SURROGATES:
        raise ConfigError(f"unknown surrogate gradient {p.surrogate!r}; choose one of {', '.join(SURROGATES)}")
    if p.alpha is not None and not (is_finite_number(p.alpha) and p.alpha > 0):
        raise ConfigError(f"surrogate slope alpha must be a finite number > 0, got {p.alpha!r}")
    if p.alpha is not None and p.surrogate == "straight_through":
        raise ConfigError("surrogate slope alpha applies only to a surrogate with a slope, not to straight_through")


class LIFState(NamedTuple):
    """``v``: membrane potential before reset; ``z``: spikes of the last step."""

    v: torch.Tensor
    z: torch.Tensor


def initial_state(like: torch.Tensor) -> LIFState:
    """A resting state (membrane potential and spikes at 0) shaped like ``like``."""
    return LIFState(torch.zeros_like(like), torch.zeros_like(like))


def lif_step(
    input: torch.Tensor, state: LIFState | None, params: LIFParameters | IFParameters = LIFParameters()
) -> tuple[torch.Tensor, LIFState]:
    """One Euler step: ``(input current I[t], state at t-1) -> (spikes z[t], state at t)``."""
    params.check()
    if state is None:
        state = initial_state(input)
    z_reset = state.z.detach() if params.detach_reset else state.z
    if params.reset == "subtract":
        v = params.beta * state.v + input - z_reset * params.v_th
    else:
        v = params.beta * ((1 - z_reset) * state.v) + input
    z = spike(v - params.v_th, params.surrogate, params.alpha)
    return z, LIFState(v, z)


def if_step(
    input: torch.Tensor, state: LIFState | None, params: IFParameters = IFParameters()
) -> tuple[torch.Tensor, LIFState]:
    """One step of a non-leaky integrate-and-fire neuron (same state type as LIF)."""
    return lif_step(input, state, params)


class _FusedLeakySequence(torch.autograd.Function):
    """The whole time loop in one autograd node, with a hand-written BPTT backward.

    Equal, step by step, to repeated :func:`lif_step` with ``detach_reset=True``; it only
    saves the autograd bookkeeping of ~10 small nodes per step.
    """

    @staticmethod
    def forward(ctx, inputs, v0, z0, beta, v_th, subtract, surrogate, alpha):
        # in-place into preallocated buffers; the arithmetic (and its rounding) is lif_step's
        vs = torch.empty_like(inputs)
        zs = torch.empty_like(inputs)
        v, z = v0, z0
        for t in range(inputs.shape[0]):
            v_t = vs[t]
            if subtract:
                torch.mul(v, beta, out=v_t)
                v_t.add_(inputs[t])
                v_t.sub_(z if v_th == 1.0 else z * v_th)  # z * 1.0 == z exactly
            else:
                torch.mul((1 - z) * v, beta, out=v_t)
                v_t.add_(inputs[t])
            torch.gt(v_t, v_th, out=zs[t])  # v - v_th > 0  <=>  v > v_th for finite floats
            v, z = v_t, zs[t]
        ctx.save_for_backward(vs, zs, z0)
        ctx.config = (beta, v_th, subtract, surrogate, alpha)
        return zs, vs[-1].clone(), zs[-1].clone()

    @staticmethod
    def backward(ctx, g_zs, g_v_last, g_z_last):
        # autograd materialises unused output gradients as zeros, so none of them is None
        vs, zs, z0 = ctx.saved_tensors
        beta, v_th, subtract, surrogate, alpha = ctx.config
        T = vs.shape[0]
        g_inputs = torch.empty_like(vs)
        carry = g_v_last
        # step by step on small tensors: full-size temporaries cost more (allocation, cache) than they save
        for t in range(T - 1, -1, -1):
            g_z = g_zs[t] if t < T - 1 else g_zs[t] + g_z_last
            # dL/dv_t = dL/dz_t * dz_t/dv_t + dv_{t+1}/dv_t * dL/dv_{t+1}; dL/dI_t = dL/dv_t
            torch.addcmul(carry, g_z, surrogate_derivative(surrogate, vs[t] - v_th, alpha), out=g_inputs[t])
            carry = g_inputs[t] * beta if subtract else g_inputs[t] * (beta * (1 - (zs[t - 1] if t > 0 else z0)))
        return g_inputs, carry, None, None, None, None, None, None


def lif_sequence(
    inputs: torch.Tensor, state: LIFState | None = None, params: LIFParameters | IFParameters = LIFParameters()
) -> tuple[torch.Tensor, LIFState]:
    """Run :func:`lif_step` over the first axis of ``inputs`` (shape ``(T, B, ...)``).

    Returns spikes ``(T, B, ...)`` and the final state. With ``detach_reset=True`` (default)
    the loop runs as one fused autograd node (same values, faster backward).
    """
    params.check()
    if inputs.dim() < 1 or inputs.shape[0] < 1:
        raise ConfigError(f"inputs must have shape (T, B, ...) with T >= 1, got {tuple(inputs.shape)}")
    if state is None:
        state = initial_state(inputs[0])
    if params.detach_reset:
        zs, v, z = _FusedLeakySequence.apply(
            inputs, state.v, state.z.detach(), params.beta, params.v_th, params.reset == "subtract",
            params.surrogate, params.alpha,
        )
        return zs, LIFState(v, z)
    out = []
    for x in inputs:
        z, state = lif_step(x, state, params)
        out.append(z)
    return torch.stack(out), state


def check_steps(T) -> int:
    """``T`` as an int >= 1, or ConfigError."""
    if isinstance(T, bool) or not isinstance(T, numbers.Integral) and not (isinstance(T, float) and T.is_integer()):
        raise ConfigError(f"number of time steps T must be an integer >= 1, got {T!r}")
    if int(T) < 1:
        raise ConfigError(f"number of time steps T must be >= 1, got {T}")
    return int(T)
