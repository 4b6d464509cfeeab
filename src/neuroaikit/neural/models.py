"""Core + readout models of visual cortex (the neuralpredictors / Sensorium design).

- :class:`Stacked2dCore`: stacked 2-D convolutions (ELU, batch norm), optional depth-separable
  hidden layers, Laplace smoothness penalty on the input kernels; ``linear=True`` removes
  the nonlinearities (the LN baseline's core).
- :class:`GaussianReadout`: each neuron reads the core's features at a learned 2-D position
  ``mu`` (bilinear sampling), with linear feature weights; during training ``mu`` is sampled
  from N(mu, sigma^2); optionally ``mu`` is predicted from the neuron's cortical coordinates
  by a small MLP (Lurz et al. 2021's ``cortex`` grid predictor).
- :class:`FactorizedReadout`: spatial mask x feature weights (Klindt et al. 2017).
- :class:`Shifter` (pupil centre -> readout shift) and :class:`Modulator` (behaviour ->
  multiplicative gain per neuron).
- :class:`CortexTwin`: core + one readout per recording session, ELU + 1 output.

Everything is built from shapes alone::

    from neuroaikit.models import build_model
    twin = build_model("twin", image_shape=(1, 36, 64), n_neurons=5335)
    rates = twin(images)            # (batch, 5335), positive
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Mapping, Sequence, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..config import BOOL, NON_NEGATIVE, POSITIVE, POSITIVE_INT, AppliesOnly, Config, Interval, Options
from ..errors import DataError
from ..models import register_model

DEFAULT_SESSION = "session0"
CORES = ("cnn", "linear")


@dataclass
class TwinModelConfig(Config):
    """The architecture of a :class:`CortexTwin`; the shapes (image size, neuron counts,
    behaviour variables) come from the data (:meth:`kwargs_for`). These are the only twin
    defaults: :class:`CortexTwin`'s constructor and ``twin fit``'s options read them.

    Args:
        core: ``"cnn"`` or ``"linear"`` (the LN model).
        readout: ``"gaussian"`` or ``"factorized"``.
        hidden_channels, layers, input_kern, hidden_kern, depth_separable, gamma_input: core.
        gamma_readout, init_mu_range, init_sigma: readout.
        cortex_grid: predict receptive-field positions from cortical coordinates when the data
            have usable ones (Lurz et al. 2021); otherwise each position is learned freely.
        use_behavior: a behaviour modulator (gain per neuron from running, pupil ...).
        shifter: shift readout positions by the pupil centre (when the data have it).
    """

    core: str = "cnn"
    readout: str = "gaussian"
    hidden_channels: int = 32
    layers: int = 3
    input_kern: int = 9
    hidden_kern: int = 7
    depth_separable: bool = True
    gamma_input: float = 6.38
    gamma_readout: float = 0.0076
    init_mu_range: float = 0.3
    init_sigma: float = 0.1
    cortex_grid: bool = True
    use_behavior: bool = False
    shifter: bool = False

    _parameter_constraints: ClassVar[dict] = {
        "core": [Options(CORES)],
        "readout": [Options(("gaussian", "factorized"))],
        "hidden_channels": [POSITIVE_INT],
        "layers": [POSITIVE_INT],
        "input_kern": [Interval(int, 1, None)],
        "hidden_kern": [Interval(int, 1, None)],
        "depth_separable": [BOOL],
        "gamma_input": [NON_NEGATIVE],
        "gamma_readout": [NON_NEGATIVE],
        "init_mu_range": [Interval(float, 0, 1)],
        "init_sigma": [POSITIVE],
        "cortex_grid": [BOOL],
        "use_behavior": [BOOL],
        "shifter": [BOOL],
    }

    _refuse_unused_changes: ClassVar[bool] = True
    _applies_only: ClassVar[tuple[AppliesOnly, ...]] = (
        # the factorized readout weighs every grid position: there is no position for the pupil to move
        AppliesOnly(("shifter",), lambda c: c.readout == "gaussian",
                    "applies only to the gaussian {readout} (the factorized readout has no positions to shift)",
                    ("readout",)),
    )

    def kwargs_for(self, ds) -> dict[str, Any]:
        """:class:`CortexTwin` arguments for the data set ``ds`` (cortex grid and shifter only
        where the data support them)."""
        n_behavior = 0
        if self.use_behavior:
            if ds.behavior is None:
                raise DataError(f"{ds.name}: behaviour inputs were asked for (use_behavior, --behavior) but the data set "
                                f"has no behaviour")
            n_behavior = ds.behavior.shape[1]
        return {
            "image_shape": list(ds.image_shape),
            "n_neurons": ds.n_neurons,
            "core": self.core,
            "readout": self.readout,
            "hidden_channels": self.hidden_channels,
            "layers": self.layers,
            "input_kern": self.input_kern,
            "hidden_kern": self.hidden_kern,
            "depth_separable": self.depth_separable,
            "gamma_input": self.gamma_input,
            "init_mu_range": self.init_mu_range,
            "init_sigma": self.init_sigma,
            "gamma_readout": self.gamma_readout,
            "cortex_grid": bool(self.cortex_grid and has_retinotopy(ds)),
            "n_behavior": n_behavior,
            "shifter": bool(self.shifter and ds.pupil_center is not None),
        }


def has_retinotopy(ds) -> bool:
    """True when cortical positions exist and vary in x and y (a grid predictor needs them)."""
    pos = ds.cortical_positions
    if pos is None or pos.shape[1] < 2:
        return False
    return bool((np.std(pos[:, :2], axis=0) > 1e-6).all())


_D = TwinModelConfig()


def _laplace_penalty(weight: torch.Tensor) -> torch.Tensor:
    """Laplace-filtered squared weights over squared weights, as neuralpredictors' ``LaplaceL2norm``
    computes it, with the 3x3 filter ``[[.5, 1, .5], [1, -6, 1], [.5, 1, .5]]``. The current
    neuralpredictors filters with the 5-point stencil ``[[0, -1, 0], [-1, 4, -1], [0, -1, 0]]``,
    which gives a smaller penalty on smooth kernels, so gamma 6.38 here is not the same strength as
    gamma 6.38 there."""
    lap = weight.new_tensor([[0.5, 1.0, 0.5], [1.0, -6.0, 1.0], [0.5, 1.0, 0.5]]).view(1, 1, 3, 3)
    w = weight.reshape(-1, 1, *weight.shape[-2:])
    filtered = F.conv2d(w, lap, padding=1)
    return filtered.pow(2).sum() / (w.pow(2).sum() + 1e-8)


class Stacked2dCore(nn.Module):
    """Stacked 2-D convolutional core; the output keeps the input's height and width.

    Arguments: in_channels (1), hidden_channels (32), layers (3), input_kern (9), hidden_kern (7),
    depth_separable (True), linear (False: ELU + batch norm between layers), gamma_input
    (Laplace smoothness weight on the first layer, 6.38 as in Sensorium).
    Shapes: (B, in_channels, H, W) -> (B, hidden_channels, H, W).
    """

    def __init__(
        self,
        in_channels: int = 1,
        hidden_channels: int = _D.hidden_channels,
        layers: int = _D.layers,
        input_kern: int = _D.input_kern,
        hidden_kern: int = _D.hidden_kern,
        depth_separable: bool = _D.depth_separable,
        linear: bool = False,
        gamma_input: float = _D.gamma_input,
    ):
        super().__init__()
        self.gamma_input = gamma_input
        self.linear = linear
        self.input_conv = nn.Conv2d(in_channels, hidden_channels, input_kern, padding=input_kern // 2, bias=False)
        blocks = []
        for _ in range(layers - 1):
            conv: nn.Module
            if depth_separable:
                conv = nn.Sequential(
                    nn.Conv2d(hidden_channels, hidden_channels, 1, bias=False),
                    nn.Conv2d(hidden_channels, hidden_channels, hidden_kern, padding=hidden_kern // 2, groups=hidden_channels, bias=False),
                )
            else:
                conv = nn.Conv2d(hidden_channels, hidden_channels, hidden_kern, padding=hidden_kern // 2, bias=False)
            blocks.append(conv)
        self.hidden = nn.ModuleList(blocks)
        self.norms = nn.ModuleList([nn.BatchNorm2d(hidden_channels) for _ in range(layers)])
        self.out_channels = hidden_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norms[0](self.input_conv(x))
        if not self.linear:
            x = F.elu(x)
        for conv, norm in zip(self.hidden, self.norms[1:]):
            x = norm(conv(x))
            if not self.linear:
                x = F.elu(x)
        return x

    def regularizer(self) -> torch.Tensor:
        return self.gamma_input * _laplace_penalty(self.input_conv.weight)


def _clamp_keep_gradient(grid: torch.Tensor) -> torch.Tensor:
    """Positions clamped to the feature grid [-1, 1] in the forward pass, with the gradient of
    the unclamped positions (straight-through): a hard clamp gives positions pushed past the
    border (by a shift, or a drifting mean) no gradient, so they could never come back."""
    return grid + (grid.clamp(-1, 1) - grid).detach()


class GaussianReadout(nn.Module):
    """Gaussian readout: neuron ``n`` = features at position ``mu_n`` (grid units, [-1, 1]) dot
    ``weight[:, n]`` + ``bias[n]``. Training samples the position from N(mu, sigma^2).

    Arguments: in_shape (C, H, W), n_neurons, init_mu_range (0.3), init_sigma (0.1),
    gamma_readout (L1 on the feature weights averaged over neurons, 0.0076; Sensorium's baseline
    sums over neurons, the same strength as gamma 0.0076 x n_neurons here), cortex_grid (False: when True,
    ``mu = MLP(cortical position)``; set positions with :meth:`set_positions`).
    Shapes: features (B, C, H, W), shift (B, 2) or None -> (B, n_neurons).
    """

    positions: torch.Tensor

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        n_neurons: int,
        init_mu_range: float = _D.init_mu_range,
        init_sigma: float = _D.init_sigma,
        gamma_readout: float = _D.gamma_readout,
        cortex_grid: bool = False,
        grid_hidden: int = 32,
    ):
        super().__init__()
        c = in_shape[0]
        self.gamma_readout = gamma_readout
        self.cortex_grid = cortex_grid
        self.mu = nn.Parameter(torch.empty(n_neurons, 2).uniform_(-init_mu_range, init_mu_range))
        self.sigma = nn.Parameter(torch.full((n_neurons, 1), float(init_sigma)))
        self.weight = nn.Parameter(torch.full((c, n_neurons), 1.0 / c))
        self.bias = nn.Parameter(torch.zeros(n_neurons))
        self.register_buffer("positions", torch.zeros(n_neurons, 3))
        if cortex_grid:
            self.grid_predictor = nn.Sequential(nn.Linear(3, grid_hidden), nn.ELU(), nn.Linear(grid_hidden, 2), nn.Tanh())

    def set_positions(self, positions: torch.Tensor) -> None:
        """Cortical coordinates (n_neurons, 3); standardised per axis before the grid MLP."""
        p = torch.as_tensor(positions, dtype=torch.float32)
        std = p.std(0)
        self.positions.copy_((p - p.mean(0)) / torch.where(std > 0, std, torch.ones_like(std)))

    def grid_mean(self) -> torch.Tensor:
        """Receptive-field positions (n_neurons, 2) in grid units (x, y) in [-1, 1]."""
        if self.cortex_grid:
            return self.grid_predictor(self.positions) + self.mu * 0.1
        return _clamp_keep_gradient(self.mu)

    def sample_features(self, features: torch.Tensor, shift: torch.Tensor | None = None) -> torch.Tensor:
        """Each neuron's features at its (training: sampled, shifted) position: (B, C, N)."""
        b = features.shape[0]
        mu = self.grid_mean().unsqueeze(0).expand(b, -1, -1)
        if self.training:
            mu = mu + torch.randn_like(mu) * self.sigma.abs().unsqueeze(0)
        if shift is not None:
            mu = mu + shift.unsqueeze(1)
        grid = _clamp_keep_gradient(mu).unsqueeze(2)  # (B, N, 1, 2)
        return F.grid_sample(features, grid, align_corners=True).squeeze(-1)

    def forward(self, features: torch.Tensor, shift: torch.Tensor | None = None) -> torch.Tensor:
        # elementwise product and sum, not einsum: einsum becomes N tiny batched matmuls, which
        # took a third of a CPU training step at 5,000 neurons (benchmarks/twin_speed.py)
        return (self.sample_features(features, shift) * self.weight).sum(1) + self.bias

    def regularizer(self) -> torch.Tensor:
        # gamma x sum of |weights| / neurons: neuralpredictors (Sensorium) sums over neurons too,
        # so its gamma 0.0076 is this gamma at 0.0076 x neurons (benchmarks/configs has it at 5,300)
        return self.gamma_readout * self.weight.abs().mean() * self.weight.shape[0]


class FactorizedReadout(nn.Module):
    """Factorized ("what x where") readout: spatial mask (n, H, W) times feature weights (C, n).

    Arguments: in_shape (C, H, W), n_neurons, gamma_readout (L1 on mask and weights).
    Shapes: features (B, C, H, W) -> (B, n_neurons). ``shift`` is ignored.
    """

    def __init__(self, in_shape: tuple[int, int, int], n_neurons: int, gamma_readout: float = _D.gamma_readout, **_: object):
        super().__init__()
        c, h, w = in_shape
        self.gamma_readout = gamma_readout
        self.height, self.width = h, w
        self.spatial = nn.Parameter(torch.randn(h * w, n_neurons) * 0.01 + 1.0 / (h * w))
        self.weight = nn.Parameter(torch.full((c, n_neurons), 1.0 / c))
        self.bias = nn.Parameter(torch.zeros(n_neurons))

    def forward(self, features: torch.Tensor, shift: torch.Tensor | None = None) -> torch.Tensor:
        b, c = features.shape[:2]
        pooled = features.reshape(b, c, -1) @ self.spatial  # (B, C, N)
        return (pooled * self.weight).sum(1) + self.bias

    def regularizer(self) -> torch.Tensor:
        return self.gamma_readout * (self.spatial.abs().mean() * self.spatial.shape[0] + self.weight.abs().mean())

    def grid_mean(self) -> torch.Tensor:
        """Centre of mass of the absolute value of each spatial mask, in grid units (x, y)."""
        mass = self.spatial.detach().abs()
        mass = mass / (mass.sum(0, keepdim=True) + 1e-12)
        ys, xs = torch.meshgrid(torch.linspace(-1, 1, self.height, dtype=mass.dtype, device=mass.device),
                                torch.linspace(-1, 1, self.width, dtype=mass.dtype, device=mass.device), indexing="ij")
        return torch.stack([xs.reshape(-1) @ mass, ys.reshape(-1) @ mass], 1)


class Shifter(nn.Module):
    """Pupil centre (B, 2) -> readout grid shift (B, 2), a small tanh MLP, minus its output at
    the mean eye position: ``shift(p) = MLP(p) - MLP(0)``.

    The input must be standardised (:class:`CortexTwin` does it with the train tier's mean and
    std): eye-camera pixels (hundreds) would saturate the tanh units into a constant shift.
    The output layer starts at zero, so a fresh shifter does not move the readout. Subtracting
    ``MLP(0)`` leaves the shifter only the eye's *deviations* to explain: a constant shift would
    duplicate the readout positions themselves, and with both free the two drifted together
    (on a Lurz-size realistic recording the readouts were pushed off the grid: validation r 0.14
    against 0.44 without the shifter; docs/guide/twin-recordings.md).
    """

    def __init__(self, hidden: int = 5):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, hidden), nn.Tanh(), nn.Linear(hidden, 2), nn.Tanh())
        out = cast(nn.Linear, self.net[2])
        nn.init.zeros_(out.weight)
        nn.init.zeros_(out.bias)

    def forward(self, pupil_center: torch.Tensor) -> torch.Tensor:
        return self.net(pupil_center) - self.net(pupil_center.new_zeros(1, pupil_center.shape[1]))


class Modulator(nn.Module):
    """Behaviour (B, n_behavior) -> multiplicative gain per neuron exp(MLP(behaviour)) (B, n)."""

    def __init__(self, n_behavior: int, n_neurons: int, hidden: int = 16):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_behavior, hidden), nn.ELU(), nn.Linear(hidden, n_neurons))
        out = cast(nn.Linear, self.net[-1])
        nn.init.zeros_(out.weight)
        nn.init.zeros_(out.bias)

    def forward(self, behavior: torch.Tensor) -> torch.Tensor:
        return torch.exp(self.net(behavior).clamp(-5, 5))


READOUTS = {"gaussian": GaussianReadout, "factorized": FactorizedReadout}
#: what a twin's ``readouts`` hold (the ModuleDict types them as plain modules)
Readout = GaussianReadout | FactorizedReadout


class CortexTwin(nn.Module):
    """Digital twin: shared core, one readout (+ optional modulator / shifter) per session,
    ELU + 1 output, predictions in the units of the training responses.

    Arguments:
        image_shape: (C, H, W) of the stimuli.
        n_neurons: neurons of one session (int) or ``{session: n_neurons}`` (shared core).
        core: ``"cnn"`` (nonlinear) or ``"linear"`` (the LN model).
        readout: ``"gaussian"`` or ``"factorized"``.
        hidden_channels, layers, input_kern, hidden_kern, depth_separable, gamma_input: core.
        init_mu_range, init_sigma, gamma_readout: readout (defaults: :class:`TwinModelConfig`).
        cortex_grid: RF positions from cortical coordinates (set them on each readout with
            ``set_positions``). Off here, since a bare model has no positions;
            :class:`TwinModelConfig` (default on) turns it on when the data have them.
        n_behavior: behaviour variables per trial (0: none) feeding a :class:`Modulator`.
        shifter: use a :class:`Shifter` on the pupil centre.
    Shapes: images (B, C, H, W), behavior (B, n_behavior), pupil_center (B, 2) -> (B, n_neurons).
    """

    image_shape: tuple[int, ...]
    input_mean: torch.Tensor
    input_std: torch.Tensor

    def __init__(
        self,
        image_shape: Sequence[int] = (1, 36, 64),
        n_neurons: int | Mapping[str, int] = 100,
        core: str = _D.core,
        readout: str = _D.readout,
        hidden_channels: int = _D.hidden_channels,
        layers: int = _D.layers,
        input_kern: int = _D.input_kern,
        hidden_kern: int = _D.hidden_kern,
        depth_separable: bool = _D.depth_separable,
        gamma_input: float = _D.gamma_input,
        init_mu_range: float = _D.init_mu_range,
        init_sigma: float = _D.init_sigma,
        gamma_readout: float = _D.gamma_readout,
        cortex_grid: bool = False,
        n_behavior: int = 0,
        shifter: bool = False,
    ):
        super().__init__()
        image_shape = tuple(int(v) for v in image_shape)
        if len(image_shape) == 2:
            image_shape = (1, *image_shape)
        if readout not in READOUTS:
            raise ValueError(f"readout must be one of {sorted(READOUTS)}, got {readout!r}")
        if core not in ("cnn", "linear"):
            raise ValueError(f"core must be 'cnn' or 'linear', got {core!r}")
        sessions = dict(n_neurons) if isinstance(n_neurons, Mapping) else {DEFAULT_SESSION: int(n_neurons)}
        self.sessions = list(sessions)
        self.image_shape = image_shape
        self.core = Stacked2dCore(
            image_shape[0], hidden_channels, layers, input_kern, hidden_kern, depth_separable, core == "linear", gamma_input
        )
        feat_shape = (hidden_channels, image_shape[1], image_shape[2])
        kwargs = dict(init_mu_range=init_mu_range, init_sigma=init_sigma, cortex_grid=cortex_grid) if readout == "gaussian" else {}
        self.readouts = nn.ModuleDict({s: READOUTS[readout](feat_shape, n, gamma_readout=gamma_readout, **kwargs) for s, n in sessions.items()})
        self.modulators = nn.ModuleDict({s: Modulator(n_behavior, n) for s, n in sessions.items()}) if n_behavior else None
        self.shifters = nn.ModuleDict({s: Shifter() for s in sessions}) if shifter else None
        # input / output scaling, set from the training data by the fitting code
        self.register_buffer("input_mean", torch.zeros(1))
        self.register_buffer("input_std", torch.ones(1))
        for s, n in sessions.items():
            self.register_buffer(f"response_std_{s}", torch.ones(n))
            self.register_buffer(f"response_offset_{s}", torch.zeros(n))
            if n_behavior:
                # pupil size in eye-camera pixels and running speed differ per rig: behaviour scaling per session
                self.register_buffer(f"behavior_mean_{s}", torch.zeros(n_behavior))
                self.register_buffer(f"behavior_std_{s}", torch.ones(n_behavior))
            if shifter:
                # each mouse's eye camera has its own pixel frame: pupil scaling per session
                self.register_buffer(f"pupil_mean_{s}", torch.zeros(2))
                self.register_buffer(f"pupil_std_{s}", torch.ones(2))
        if shifter:
            self._register_load_state_dict_pre_hook(self._default_pupil_scaling)
        self._register_load_state_dict_pre_hook(self._behavior_scaling_per_session)

    core_frozen = False  # set by transfer (fit.freeze_core_from): the core stays in eval mode

    def train(self, mode: bool = True) -> "CortexTwin":
        """Training (or, ``mode=False``, evaluation) mode as ``nn.Module.train`` sets it, except
        that a frozen core stays in evaluation mode. Returns the twin."""
        super().train(mode)
        if self.core_frozen:
            self.core.eval()  # a frozen core keeps its batch-norm statistics
        return self

    def _default_pupil_scaling(self, state: dict, prefix: str, *args: object) -> None:
        """Twins saved before the pupil centre was standardised lack its scaling: identity."""
        for s in self.sessions:
            state.setdefault(f"{prefix}pupil_mean_{s}", torch.zeros(2))
            state.setdefault(f"{prefix}pupil_std_{s}", torch.ones(2))

    def _behavior_scaling_per_session(self, state: dict, prefix: str, *args: object) -> None:
        """Twins saved before behaviour was standardised per session hold one scaling for all
        sessions (``behavior_mean``, ``behavior_std``, present even without behaviour): every
        session takes it, so they predict as they did."""
        mean, std = state.pop(f"{prefix}behavior_mean", None), state.pop(f"{prefix}behavior_std", None)
        if self.modulators is None or mean is None or std is None:
            return
        for s in self.sessions:
            state.setdefault(f"{prefix}behavior_mean_{s}", mean)
            state.setdefault(f"{prefix}behavior_std_{s}", std)

    def behavior_scaling(self, session: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Train-tier mean and std of the behaviour variables the modulator standardises with."""
        s = self._session(session)
        return getattr(self, f"behavior_mean_{s}"), getattr(self, f"behavior_std_{s}")

    def pupil_scaling(self, session: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Train-tier mean and std of the pupil centre (x, y) the shifter standardises with."""
        s = self._session(session)
        return getattr(self, f"pupil_mean_{s}"), getattr(self, f"pupil_std_{s}")

    def _session(self, session: str | None) -> str:
        if session is None:
            if len(self.sessions) != 1:
                raise ValueError(f"this twin has sessions {self.sessions}: name one")
            return self.sessions[0]
        if session not in self.readouts:
            raise ValueError(f"unknown session {session!r}; this twin has {self.sessions}")
        return session

    def response_std(self, session: str | None = None) -> torch.Tensor:
        return getattr(self, f"response_std_{self._session(session)}")

    def response_offset(self, session: str | None = None) -> torch.Tensor:
        """Added to the positive model output to give data units (non-zero only for data with
        negative responses, e.g. dF/F, whose train-tier minimum it is)."""
        return getattr(self, f"response_offset_{self._session(session)}")

    def forward(
        self,
        images: torch.Tensor,
        behavior: torch.Tensor | None = None,
        pupil_center: torch.Tensor | None = None,
        session: str | None = None,
        standardized: bool = False,
    ) -> torch.Tensor:
        """Predicted responses (B, n_neurons) in data units (``standardized=True``: the positive
        scale the Poisson loss is computed on, ``(response - offset) / train std``)."""
        session = self._session(session)
        if images.dim() == 3:
            images = images.unsqueeze(1)
        features = self.core((images - self.input_mean) / self.input_std)
        shift = None
        if self.shifters is not None and pupil_center is not None:
            mean, std = self.pupil_scaling(session)
            shift = self.shifters[session]((pupil_center - mean) / std)
        out = F.elu(self.readouts[session](features, shift)) + 1
        if self.modulators is not None and behavior is not None:
            mean, std = self.behavior_scaling(session)
            out = out * self.modulators[session]((behavior - mean) / std)
        return out if standardized else out * self.response_std(session) + self.response_offset(session)

    def regularizer(self, session: str | None = None) -> torch.Tensor:
        readout = cast(Readout, self.readouts[self._session(session)])
        return self.core.regularizer() + readout.regularizer()


class SessionView(nn.Module):
    """One session of a multi-session :class:`CortexTwin` as a plain ``images -> responses``
    model (what the in-silico experiments call)."""

    def __init__(self, twin: CortexTwin | TwinEnsemble, session: str):
        super().__init__()
        self.twin = twin
        self.session = twin._session(session)

    @property
    def input_mean(self) -> torch.Tensor:
        return self.twin.input_mean

    @property
    def input_std(self) -> torch.Tensor:
        return self.twin.input_std

    @property
    def image_shape(self) -> tuple:
        return self.twin.image_shape

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.twin(images, session=self.session)


class TwinEnsemble(nn.Module):
    """Several :class:`CortexTwin` of the same neurons (fitted with different seeds), used as
    one twin: its prediction is the mean of theirs in data units, the way Sensorium entries
    ensemble. It answers what a twin answers (``sessions``, ``image_shape``, the first
    member's input and response scaling), so prediction, scoring and the in-silico experiments
    take it in place of one twin.

    Args:
        members (Sequence[CortexTwin]): at least one; all with the same sessions, neurons per
            session and image shape.
    Shapes: as :class:`CortexTwin`.
    """

    def __init__(self, members: Sequence[CortexTwin]):
        super().__init__()
        members = list(members)
        if not members:
            raise ValueError("a twin ensemble needs at least one member")
        first = members[0]
        for member in members[1:]:
            if (list(member.sessions) != list(first.sessions) or tuple(member.image_shape) != tuple(first.image_shape)
                    or any(member.response_std(s).numel() != first.response_std(s).numel() for s in first.sessions)):
                raise ValueError("twin ensemble members must share sessions, neurons and image shape")
        self.members = nn.ModuleList(members)

    @property
    def first(self) -> CortexTwin:
        return self.members[0]  # type: ignore[return-value]

    @property
    def sessions(self) -> list[str]:
        return self.first.sessions

    @property
    def image_shape(self) -> tuple[int, ...]:
        return self.first.image_shape

    @property
    def input_mean(self) -> torch.Tensor:
        return self.first.input_mean

    @property
    def input_std(self) -> torch.Tensor:
        return self.first.input_std

    def _session(self, session: str | None) -> str:
        return self.first._session(session)

    def response_std(self, session: str | None = None) -> torch.Tensor:
        return self.first.response_std(session)

    def response_offset(self, session: str | None = None) -> torch.Tensor:
        return self.first.response_offset(session)

    def forward(self, images: torch.Tensor, behavior: torch.Tensor | None = None,
                pupil_center: torch.Tensor | None = None, session: str | None = None,
                standardized: bool = False) -> torch.Tensor:
        """The members' mean prediction (B, n_neurons) in data units (``standardized``: on the
        members' shared standardised scale, see :meth:`CortexTwin.forward`)."""
        total = None
        for member in self.members:
            out = member(images, behavior, pupil_center, session=session, standardized=standardized)
            total = out if total is None else total + out
        assert total is not None
        return total / len(self.members)


def twin_members(model: nn.Module) -> list[nn.Module]:
    """The twins inside ``model``: an ensemble's members, or ``[model]``."""
    return list(model.members) if isinstance(model, TwinEnsemble) else [model]


@register_model("twin")
def build_twin(members: int = 1, **kwargs) -> CortexTwin | TwinEnsemble:
    """Core + readout digital twin (see :class:`CortexTwin` for arguments); ``members`` > 1:
    a :class:`TwinEnsemble` of that many twins built alike."""
    if members > 1:
        return TwinEnsemble([CortexTwin(**kwargs) for _ in range(members)])
    return CortexTwin(**kwargs)


@register_model("twin-ln")
def build_twin_ln(**kwargs) -> CortexTwin:
    """LN baseline: the twin with a linear core; only the ELU + 1 output is nonlinear."""
    kwargs.setdefault("core", "linear")
    return CortexTwin(**kwargs)
