"""Fit a digital twin to a :class:`~neuroaikit.neural.NeuralDataset` with the Sensorium recipe.

Poisson loss (``p - r log p``, summed, scaled by sqrt(n_train / batch)) plus the core's
Laplace and the readout's L1 penalties; Adam; responses divided by the train-tier std; the
first epoch trained from ``starts`` initialisations, the best on validation going on;
early stopping on the validation tier's mean single-trial correlation (checked every
epoch, patience 5); on a plateau the learning rate is multiplied by 0.3 (at most 3
times) and training resumes from the best weights; at most ``max_epochs`` epochs or
``time_limit`` seconds. When a data set has no validation tier, 10 % of the train
images are held out for it (logged).

Computation goes through the execution layer (:mod:`neuroaikit.execution`): any device,
bf16 autocast, and data-parallel over ``torchrun`` processes (``batch_size`` is the global
batch; validation, early stopping and the time limit are decided on rank 0). The whole
training state can be saved after every epoch and resumed (``save_state`` / ``resume_state``),
which is how ``twin fit --resume`` continues an interrupted fit.

Example::

    from neuroaikit.neural import SyntheticCortex, TwinFitConfig, TwinModelConfig, fit_twin, predict
    ds = SyntheticCortex(n_neurons=50, image_shape=(18, 32)).sample(n_train=800)
    model, history = fit_twin(ds, TwinFitConfig(max_epochs=20, model=TwinModelConfig(hidden_channels=16)))
    pred = predict(model, ds, "test")      # (test trials, 50)
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass, field, replace
from typing import Callable, ClassVar, Mapping, Sequence, cast, overload

import numpy as np
import torch

from ..config import BOOL, POSITIVE, POSITIVE_INT, Config, InstanceOf, Interval
from ..errors import DataError
from ..execution import Execution, ExecutionConfig, derive_seed, model_device, unwrap
from ..progress import Progress, silent
from .dataset import NeuralDataset, row_blocks
from .metrics import single_trial_correlation
from .models import (DEFAULT_SESSION, CortexTwin, GaussianReadout, Readout, TwinModelConfig, has_retinotopy,
                     twin_members)

log = logging.getLogger(__name__)

__all__ = ["TwinFitConfig", "TwinModelConfig", "fit_twin", "predict", "split_validation", "has_retinotopy"]


@dataclass
class TwinFitConfig(Config):
    """How :func:`fit_twin` trains (defaults: the Sensorium baseline's recipe, smaller core; the
    readout's L1 is averaged over neurons, see :class:`~neuroaikit.neural.GaussianReadout`).

    Args:
        model (TwinModelConfig): the architecture.
        batch_size (int): trials per (global) batch, at least the number of processes (an
            epoch's last batch may hold fewer: it is trained on too). 32: on a CPU smaller
            batches are faster per trial, and on a Lurz-size recording batch 32 reached a higher
            validation correlation than 64 both per epoch and per second
            (``benchmarks/twin_speed.py --curve``).
        lr (float): Adam's initial learning rate.
        max_epochs, patience, tolerance: early stopping on the validation correlation.
        lr_decay, max_lr_decays: on a plateau, multiply the learning rate and go back to the
            best weights, at most this many times, then stop.
        time_limit (float | None): stop training after this many seconds (resumed segments
            count together).
        validation_fraction (float): train images held out when the data have no validation tier.
        seed (int): weights, batch order, readout sampling.
        starts (int): a fit from scratch trains its first epoch from this many initialisations
            (``seed`` and seeds derived from it) and continues from the one with the best
            validation correlation; the others' epochs count towards ``time_limit``, and with a
            limit extra starts take at most a tenth of it. From a single start, some seeds never
            found the retinotopy and stalled far below the others (``benchmarks/twin_starts.py``);
            it shows after one epoch. 1: one start. A fit on a frozen core (``core_from``) has one.
        place_readouts (bool): on a frozen core (``core_from``), start each readout where the
            core's features best predict its neuron (``place_readouts()``); False: the usual
            random start.
        channels_last (bool | None): keep the core's weights and activations channels-last
            (NHWC). None: on CPUs only, where it makes the depthwise convolutions' backward pass
            about twice as fast; GPUs keep their default layout. The numbers are the same.
        loader_workers (int): processes of the ``DataLoader`` that gathers the training batches
            ahead of the model: worth it when the recording is memory-mapped from a slow disk
            (``load_filetree(memory_map=True)``) or the model trains on a GPU; 0 (default):
            batches are gathered in the training process, which is fastest on a few CPU cores.
            The batches and their order, hence the numbers, are the same. Workers are started
            afresh every epoch and share the arrays only where processes fork (Linux); where
            they are spawned (macOS, Windows) each worker receives a copy of the recording.
        execution (ExecutionConfig): device, precision, threads.
    """

    model: TwinModelConfig = field(default_factory=TwinModelConfig)
    batch_size: int = 32
    lr: float = 0.009
    max_epochs: int = 200
    patience: int = 5
    tolerance: float = 1e-6
    lr_decay: float = 0.3
    max_lr_decays: int = 3
    time_limit: float | None = None
    validation_fraction: float = 0.1
    seed: int = 0
    starts: int = 3
    place_readouts: bool = True
    channels_last: bool | None = None
    loader_workers: int = 0
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)

    _parameter_constraints: ClassVar[dict] = {
        "model": [InstanceOf(TwinModelConfig)],
        "batch_size": [POSITIVE_INT],
        "lr": [POSITIVE],
        "max_epochs": [POSITIVE_INT],
        "patience": [POSITIVE_INT],
        "tolerance": [Interval(float, 0, None)],
        "lr_decay": [Interval(float, 0, 1, closed="neither")],
        "max_lr_decays": [Interval(int, 0, None)],
        "time_limit": [POSITIVE, None],
        "validation_fraction": [Interval(float, 0, 1, closed="neither")],
        "seed": [Interval(int, 0, None)],
        "starts": [POSITIVE_INT],
        "place_readouts": [BOOL],
        "channels_last": [BOOL, None],
        "loader_workers": [Interval(int, 0, None)],
        "execution": [InstanceOf(ExecutionConfig)],
    }


def split_validation(ds: NeuralDataset, fraction: float, seed: int) -> NeuralDataset:
    """Return ``ds`` with a validation tier: unchanged if it has one, else ``fraction`` of the
    train images (all their trials) relabelled ``validation`` (logged)."""
    if (ds.tiers == "validation").any():
        return ds
    train = ds.tiers == "train"
    if not train.any():
        raise DataError(f"{ds.name}: no train trials to fit on (tiers present: {ds.tier_names}); give the trials a "
                        "tier column that marks some train")
    ids = np.unique(ds.image_ids[train])
    n_val = max(1, int(round(len(ids) * fraction)))
    if len(ids) - n_val < 2:
        raise DataError(f"{ds.name}: {len(ids)} train images are too few to hold out a validation set")
    val_ids = np.random.default_rng(seed).choice(ids, n_val, replace=False)
    tiers = ds.tiers.astype("<U16")
    tiers[train & np.isin(ds.image_ids, val_ids)] = "validation"
    log.info("%s: no validation tier; held out %d of %d train images for early stopping", ds.name, n_val, len(ids))
    return replace(ds, tiers=tiers)


@overload
def split_validation_of(data: NeuralDataset, cfg: TwinFitConfig) -> NeuralDataset: ...


@overload
def split_validation_of(data: Mapping[str, NeuralDataset], cfg: TwinFitConfig) -> dict[str, NeuralDataset]: ...


def split_validation_of(data: NeuralDataset | Mapping[str, NeuralDataset],
                        cfg: TwinFitConfig) -> NeuralDataset | dict[str, NeuralDataset]:
    """``data`` (one data set or ``{session: data set}``) with the validation tier
    :func:`fit_twin` holds out under ``cfg`` (``cfg.seed`` draws it)."""
    if isinstance(data, Mapping):
        return {name: split_validation(ds, cfg.validation_fraction, cfg.seed) for name, ds in data.items()}
    return split_validation(data, cfg.validation_fraction, cfg.seed)


def validation_correlation(predictions: Sequence[np.ndarray], datasets: Sequence[NeuralDataset]) -> float:
    """The score early stopping uses: each data set's single-trial correlation on its
    validation tier (mean over neurons) for its ``predictions``, averaged over the data sets
    (the mice of a shared-core twin)."""
    return float(np.mean([np.mean(single_trial_correlation(ds.responses[ds.tier_mask("validation")], p))
                          for p, ds in zip(predictions, datasets)]))


def _batches(n: int, batch_size: int, rng: np.random.Generator | None):
    order = rng.permutation(n) if rng is not None else np.arange(n)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


class _Tensors:
    """The trials of one tier; images and responses are gathered per batch from the data set's
    arrays, never copied whole (they may be memory-mapped from disk)."""

    def __init__(self, ds: NeuralDataset, mask: np.ndarray, stimuli: torch.Tensor):
        self.stimuli = stimuli
        self.rows = np.flatnonzero(mask)
        assert ds.stimulus_index is not None  # NeuralDataset.__post_init__ fills it
        self.index = torch.as_tensor(ds.stimulus_index[mask])
        self.responses = ds.responses
        self.behavior = torch.as_tensor(ds.behavior[mask]) if ds.behavior is not None else None
        self.pupil = torch.as_tensor(ds.pupil_center[mask]) if ds.pupil_center is not None else None

    def __len__(self) -> int:
        return len(self.rows)

    def batch(self, idx, device: torch.device | None = None):
        idx = np.asarray(idx)
        b = None if self.behavior is None else self.behavior[idx]
        p = None if self.pupil is None else self.pupil[idx]
        out = (self.stimuli[self.index[idx]], b, p, torch.from_numpy(self.responses[self.rows[idx]]))
        return to_device(out, device)


def to_device(tensors: tuple, device: torch.device | None) -> tuple:
    if device is None or device.type == "cpu":
        return tensors
    return tuple(None if t is None else t.to(device, non_blocking=True) for t in tensors)


class _EpochBatches(torch.utils.data.Dataset):
    """One epoch's training batches in order, item k = the tensors of batch k (this process's
    trials, on the CPU): a ``DataLoader`` over it gathers batches in worker processes ahead of
    the model."""

    def __init__(self, tensors: dict[str, _Tensors],
                 schedule: list[tuple[str, torch.Tensor | np.ndarray, int, int]]):
        self.tensors, self.schedule = tensors, schedule

    def __len__(self) -> int:
        return len(self.schedule)

    def __getitem__(self, k: int):
        session, local_idx = self.schedule[k][:2]
        return self.tensors[session].batch(local_idx)


def _stimuli_tensor(ds: NeuralDataset) -> torch.Tensor:
    s = torch.as_tensor(ds.stimuli)
    return s.unsqueeze(1) if s.dim() == 3 else s


#: floats of one (trials, features, neurons) readout activation in :func:`predict`: its batch is
#: cut below ``batch_size`` for many neurons (256 trials x 32 features x 21,200 neurons: 0.7 GB)
PREDICT_READOUT_FLOATS = 2**25


@torch.no_grad()
def predict(model: torch.nn.Module, ds: NeuralDataset, tier: str | None = None, batch_size: int = 256,
            session: str | None = None) -> np.ndarray:
    """Predicted responses (trials of ``tier`` or all, n_neurons) in data units, on the
    model's device; at most ``batch_size`` trials at a time, fewer for a readout so large that
    its activations would pass ``PREDICT_READOUT_FLOATS``."""
    model = unwrap(model)
    model.eval()
    device = model_device(model)
    per_trial = max((r.weight.numel() for twin in twin_members(model) for r in getattr(twin, "readouts", {}).values()),
                    default=0)
    if per_trial:
        batch_size = max(1, min(batch_size, PREDICT_READOUT_FLOATS // per_trial))
    mask = np.ones(ds.n_trials, bool) if tier is None else ds.tier_mask(tier)
    data = _Tensors(ds, mask, _stimuli_tensor(ds))
    out = []
    for idx in _batches(len(data), batch_size, None):
        x, b, p, _ = data.batch(idx, device)
        out.append(model(x, b, p, session=session).float().cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, ds.n_neurons), np.float32)


def _sessions(data: NeuralDataset | Mapping[str, NeuralDataset], cfg: TwinFitConfig) -> dict[str, NeuralDataset]:
    sessions = dict(data) if isinstance(data, Mapping) else {DEFAULT_SESSION: data}
    if not sessions:
        raise DataError("no data set to fit")
    sessions = split_validation_of(sessions, cfg)
    shapes = {ds.image_shape for ds in sessions.values()}
    if len(shapes) > 1:
        raise DataError(f"sessions have different image shapes {sorted(shapes)}; a shared core needs one: resize "
                        f"them to one (twin fit --image-size HxW; at_image_size in Python)")
    for ds in sessions.values():
        if not ds.tier_mask("train").any():
            raise DataError(f"{ds.name}: the train tier is empty")
    return sessions


def build_twin_for(data: NeuralDataset | Mapping[str, NeuralDataset], cfg: TwinFitConfig) -> tuple[CortexTwin, dict]:
    """The twin :func:`fit_twin` would train (input, response and behaviour statistics of the
    train tier set, no training) and its builder arguments; raises the data's problems
    before anything is fitted."""
    sessions = _sessions(data, cfg)
    first = next(iter(sessions.values()))
    kwargs = cfg.model.kwargs_for(first)
    if isinstance(data, Mapping):
        kwargs["n_neurons"] = {name: ds.n_neurons for name, ds in sessions.items()}
        kwargs["cortex_grid"] = bool(cfg.model.cortex_grid and all(has_retinotopy(ds) for ds in sessions.values()))
        # like the grid: a shifter only when every session has the pupil centre it needs
        kwargs["shifter"] = bool(cfg.model.shifter and all(ds.pupil_center is not None for ds in sessions.values()))
    torch.manual_seed(cfg.seed)
    model = CortexTwin(**kwargs)
    for name, ds in sessions.items():
        session = model.sessions[0] if not isinstance(data, Mapping) else name
        train_mask = ds.tier_mask("train")
        std_train = ds.response_std("train")
        mean_train, _, min_train = (m.astype(np.float32) for m in ds.response_moments("train"))
        offset = np.minimum(min_train, 0.0)
        if (offset < 0).any():
            log.info("%s: %d neurons have negative responses; the Poisson loss sees response - train minimum",
                     ds.name, int((offset < 0).sum()))
        with torch.no_grad():
            model.response_std(session).copy_(torch.as_tensor(std_train))
            model.response_offset(session).copy_(torch.as_tensor(offset))
            readout = cast(Readout, model.readouts[session])
            if isinstance(readout, GaussianReadout) and readout.cortex_grid:
                readout.set_positions(torch.as_tensor(ds.cortical_positions))
            # start the output bias at the mean standardised response (inverse of ELU + 1)
            mean_r = torch.as_tensor((mean_train - offset) / std_train).clamp_min(1e-3)
            readout.bias.copy_(torch.where(mean_r > 1, mean_r - 1, torch.log(mean_r)))
        if model.modulators is not None:
            if ds.behavior is None:  # kwargs_for checked only the first session
                raise DataError(f"{ds.name}: behaviour inputs were asked for (use_behavior, --behavior) but the data "
                                f"set has no behaviour")
            # pupil size in eye-camera pixels and running speed -> z-scores of this session's train tier
            behavior = torch.as_tensor(ds.behavior[train_mask])
            mean, std = model.behavior_scaling(session)
            with torch.no_grad():
                mean.copy_(behavior.mean(0))
                std.copy_(behavior.std(0).clamp_min(1e-6))
        if model.shifters is not None:
            assert ds.pupil_center is not None  # the shifter is built only when every session has it
            # pupil centre in eye-camera pixels -> z-scores of this session's train tier
            pupil = torch.as_tensor(ds.pupil_center[train_mask])
            mean, std = model.pupil_scaling(session)
            with torch.no_grad():
                mean.copy_(pupil.mean(0))
                std.copy_(pupil.std(0).clamp_min(1e-6))
    with torch.no_grad():
        input_mean, input_std = _input_moments(sessions.values())
        model.input_mean.fill_(input_mean)
        model.input_std.fill_(input_std or 1.0)
    return model, kwargs


def _input_moments(sessions) -> tuple[float, float]:
    """Mean and std (ddof 1) of the pixels of every session's distinct train images, read in
    blocks (the images may be memory-mapped)."""
    picks = [(ds.stimuli, np.unique(ds.stimulus_index[ds.tier_mask("train")])) for ds in sessions]
    total, count = 0.0, 0
    for stimuli, rows in picks:
        for block in row_blocks(stimuli, rows):
            values = stimuli[block]
            total += float(values.sum(dtype=np.float64))
            count += values.size
    mean = total / count
    squares = sum(float(((stimuli[block] - mean) ** 2).sum()) for stimuli, rows in picks
                  for block in row_blocks(stimuli, rows))
    return mean, math.sqrt(squares / max(count - 1, 1))


def freeze_core_from(model: CortexTwin, source: CortexTwin) -> None:
    """Copy ``source``'s core and input scaling into ``model`` and freeze them (weights and
    batch-norm statistics): only readouts, modulators and shifters stay trainable."""
    source = cast(CortexTwin, unwrap(source))
    try:
        model.core.load_state_dict(source.core.state_dict())
    except RuntimeError as exc:
        raise DataError(f"the core to transfer does not match this twin's core ({str(exc).splitlines()[-1].strip()})") from None
    with torch.no_grad():
        model.input_mean.copy_(source.input_mean)
        model.input_std.copy_(source.input_std)
    for p in model.core.parameters():
        p.requires_grad_(False)
    model.core_frozen = True
    model.train(model.training)


class TrialRows:
    """Rows ``rows`` of ``array`` (a tensor, array or memory map), read only when indexed: the
    train trials' images or responses without copying them all."""

    def __init__(self, array, rows: np.ndarray):
        self.array, self.rows = array, np.asarray(rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index):
        return self.array[self.rows[index]]


@torch.no_grad()
def place_readouts(model: CortexTwin, session: str, stimuli: torch.Tensor | np.ndarray | TrialRows,
                   responses: torch.Tensor | np.ndarray | TrialRows,
                   max_bytes: float = 2e8, ridge: float = 1e-2) -> None:
    """Start each neuron's Gaussian readout at the feature-grid position whose core features best
    predict its (standardised) responses by ridge regression, one regression per position.

    Used on a frozen, fitted core (``core_from``): the features are final, so where a neuron reads
    them can be found at once instead of by gradient steps on sampled positions, which a readout
    trained on few trials does not have enough of (``benchmarks/twin_transfer.py``). Positions are
    compared by the response variance their ridge fit explains on the train trials; every position
    has the same number of features, so none is favoured by its flexibility. At most ``max_bytes``
    of features are held: a long recording is subsampled (evenly spaced trials).

    Args:
        model: the twin; its readout for ``session`` is changed in place: ``mu``, or for a
            readout that maps cortical positions to grid positions, that map (fitted to the
            positions found, offsets zeroed).
        stimuli, responses: the train trials' images (T, C, H, W) and responses (T, N), any scale:
            tensors, arrays or :class:`TrialRows` (only the trials used are then read).
        ridge: the ridge penalty relative to the mean feature variance.
    """
    readout = model.readouts[session]
    if not isinstance(readout, GaussianReadout):
        return
    device = model_device(model)
    was_training = model.training
    model.eval()

    def images(rows) -> torch.Tensor:
        return (torch.as_tensor(stimuli[rows]).to(device) - model.input_mean) / model.input_std

    _, c, h, w = model.core(images(np.arange(1))).shape
    n_use = int(min(len(stimuli), max(16, max_bytes // (4 * c * h * w))))
    pick = np.linspace(0, len(stimuli) - 1, n_use).round().astype(int)
    feats = torch.cat([model.core(images(pick[k:k + 256])) for k in range(0, n_use, 256)]).float()
    y = torch.as_tensor(responses[pick]).to(device).float()
    y = y - y.mean(0)
    x = feats.flatten(2).permute(2, 0, 1)  # (positions, trials, channels)
    x = x - x.mean(1, keepdim=True)
    eye = torch.eye(c, device=device)
    best = torch.full((y.shape[1],), -math.inf, device=device)
    where = torch.zeros(y.shape[1], dtype=torch.long, device=device)
    for start in range(0, h * w, 64):
        xp = x[start:start + 64]
        gram = xp.transpose(1, 2) @ xp
        penalty = ridge * gram.diagonal(dim1=1, dim2=2).mean(1).clamp_min(1e-12)
        xty = xp.transpose(1, 2) @ y  # (p, c, n)
        coef = torch.linalg.solve(gram + penalty[:, None, None] * eye, xty)
        explained = (coef * xty).sum(1)  # (p, n): the fitted sum of squares
        value, index = explained.max(0)
        better = value > best
        best = torch.where(better, value, best)
        where = torch.where(better, index + start, where)
    row, col = where // w, where % w
    gx = -1 + 2 * col.float() / max(w - 1, 1)
    gy = -1 + 2 * row.float() / max(h - 1, 1)
    found = torch.stack([gx, gy], 1).to(readout.mu)
    if readout.cortex_grid:
        _fit_grid_predictor(readout, found)
    else:
        readout.mu.copy_(found)
    model.train(was_training)


def _fit_grid_predictor(readout, target: torch.Tensor, steps: int = 500) -> None:
    """Fit a cortex-grid readout's MLP (cortical position -> grid position) to ``target`` by least
    squares, its per-neuron offsets zeroed: retinotopy smooths what one neuron's regression found."""
    with torch.no_grad():
        readout.mu.zero_()
    with torch.enable_grad():
        params = list(readout.grid_predictor.parameters())
        optimizer = torch.optim.Adam(params, lr=1e-2)
        for _ in range(steps):
            optimizer.zero_grad()
            loss = (readout.grid_predictor(readout.positions) - target).pow(2).mean()
            loss.backward()
            optimizer.step()


def fit_twin(
    ds: NeuralDataset | Mapping[str, NeuralDataset],
    config: TwinFitConfig | None = None,
    callback: Callable[[dict], None] | None = None,
    progress: Progress | None = None,
    execution: Execution | None = None,
    resume_state: dict | None = None,
    save_state: Callable[[dict], None] | None = None,
    name: str = "twin",
    deadline: float | None = None,
    core_from: CortexTwin | None = None,
) -> tuple[CortexTwin, list[dict]]:
    """Fit a :class:`~neuroaikit.neural.CortexTwin` on the train tier, early-stopped on validation; returns the
    best model (eval mode) and the per-epoch history, whose last row holds the best epoch, its
    validation correlation and ``stopped_by``: ``"early_stopping"``, ``"time_limit"`` (the
    limit or the deadline) or ``"max_epochs"``.

    ``ds`` may be ``{session_name: NeuralDataset}`` (same image shape): one shared core, one
    readout per session, batches of all sessions interleaved; the validation score is the
    mean over sessions. Predict with ``predict(model, ds, tier, session=name)``.

    Args:
        callback: called with each epoch's record (on the process that reports).
        progress: epoch bars and one line per epoch (default: silent).
        execution: an entered :class:`~neuroaikit.execution.Execution` (default: one from
            ``config.execution``).
        save_state: called with the training state after every epoch.
        resume_state: a state handed to ``save_state``; fitting continues from it exactly.
        name: what the progress lines call this model.
        deadline: a :func:`time.monotonic` time training must end by (besides
            ``config.time_limit``): no epoch starts that would not fit, and a single-process fit
            cuts its last epoch short at the deadline. The progress lines show the time left.
        core_from: a fitted twin whose core (and input scaling) is copied and frozen: only the
            readouts (and modulators / shifters) are trained, i.e. transfer to new neurons
            (Lurz et al. 2021). ``config.model``'s core settings must match its core.
    """
    cfg = config or TwinFitConfig()
    progress = progress or silent()
    if execution is None:
        with Execution(cfg.execution) as ex:
            return _Trainer(ds, cfg, ex, progress, name, deadline, core_from).fit(callback, resume_state, save_state)
    return _Trainer(ds, cfg, execution, progress, name, deadline, core_from).fit(callback, resume_state, save_state)


@dataclass
class _Prepared:
    ds: NeuralDataset
    train: _Tensors
    inv_std: torch.Tensor
    offset: torch.Tensor


#: a :func:`derive_seed` part that keeps the starts' seeds apart from the epochs' streams
STARTS_STREAM = 0x57A27
#: with a time limit, the extra starts together take at most this share of the training time
STARTS_SHARE = 0.1


def start_score(validation_correlation: float) -> float:
    """How starts are ranked: by validation r, a NaN (a start predicting constants) never winning;
    on a tie the earlier start wins."""
    return validation_correlation if math.isfinite(validation_correlation) else -math.inf


def chosen_start(starts: list[dict]) -> int:
    """The index of the start a fit went on from, given its ``history[0]["starts"]``."""
    scores = [start_score(start["validation_correlation"]) for start in starts]
    return scores.index(max(scores))


class _Trainer:
    """The state of one fit: model, optimizer, schedule of the learning rate, early stopping."""

    def __init__(self, data, cfg: TwinFitConfig, ex: Execution, progress: Progress, name: str = "twin",
                 deadline: float | None = None, core_from: CortexTwin | None = None):
        ex.require_shares(cfg.batch_size, "batch_size")
        self.cfg, self.ex, self.progress, self.name = cfg, ex, progress.for_rank(ex.rank), name
        self.deadline = deadline
        self.sessions = _sessions(data, cfg)
        model, _ = build_twin_for(data, cfg)
        self.multi = isinstance(data, Mapping)
        self.starts = 1 if core_from is not None else cfg.starts
        if core_from is not None:
            freeze_core_from(model, core_from)
            if cfg.place_readouts:  # before the wrap: DDP then starts every process from rank 0's placement
                model.to(ex.device)
                for name, ds in self.sessions.items():
                    train = np.flatnonzero(ds.tier_mask("train"))
                    assert ds.stimulus_index is not None  # NeuralDataset.__post_init__ fills it
                    place_readouts(model, name if self.multi else model.sessions[0],
                                   TrialRows(_stimuli_tensor(ds), ds.stimulus_index[train]),
                                   TrialRows(ds.responses, train))
        channels_last = ex.device.type == "cpu" if cfg.channels_last is None else cfg.channels_last
        if channels_last:  # the convolutions follow their weights' layout: activations become NHWC too
            model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch's stubs omit it
        self.wrapped = ex.wrap(model, find_unused_parameters=self.multi)
        self.model: CortexTwin = unwrap(self.wrapped)  # type: ignore[assignment]
        device = ex.device
        self.prepared: dict[str, _Prepared] = {}
        for name, ds in self.sessions.items():
            session = self.model.sessions[0] if not self.multi else name
            # the train tier's statistics, as build_twin_for stored them in the model
            self.prepared[session] = _Prepared(ds, _Tensors(ds, ds.tier_mask("train"), _stimuli_tensor(ds)),
                                               (1.0 / self.model.response_std(session)).detach().to(device),
                                               self.model.response_offset(session).detach().to(device))
        self.opt = torch.optim.Adam([p for p in self.model.parameters() if p.requires_grad], lr=cfg.lr)
        self.scaler = ex.grad_scaler()  # 16-mixed: float16 gradients would underflow unscaled
        self.best: tuple[float, dict, int] = (-math.inf, copy.deepcopy(self.model.state_dict()), 0)
        self.history: list[dict] = []
        self.lr, self.decays, self.bad_epochs = cfg.lr, 0, 0
        self.epoch, self.elapsed, self.done = 0, 0.0, False
        #: why training ended: "early_stopping", "time_limit" or "max_epochs" (None while it runs)
        self.stopped_by: str | None = None

    # -- state ------------------------------------------------------------
    def state(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.opt.state_dict(), "best_value": self.best[0],
                "best_state": self.best[1], "best_epoch": self.best[2], "history": list(self.history), "lr": self.lr,
                "decays": self.decays, "bad_epochs": self.bad_epochs, "epoch": self.epoch, "elapsed": self.elapsed,
                "done": self.done, "stopped_by": self.stopped_by, "world_size": self.ex.world_size,
                "scaler": self.scaler.state_dict() if self.scaler is not None else None}

    def load(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.best = (float(state["best_value"]), state["best_state"], int(state["best_epoch"]))
        self.history = list(state["history"])
        self.lr, self.decays, self.bad_epochs = float(state["lr"]), int(state["decays"]), int(state["bad_epochs"])
        self.epoch, self.elapsed, self.done = int(state["epoch"]), float(state["elapsed"]), bool(state["done"])
        self.stopped_by = state.get("stopped_by")  # absent from checkpoints written before it was recorded
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        for group in self.opt.param_groups:
            group["lr"] = self.lr

    # -- one epoch ----------------------------------------------------------
    def _train_epoch(self, stop_at: float | None = None) -> float:
        """One pass over the train trials; a single-process fit stops early at ``stop_at``
        (:func:`time.monotonic`); data-parallel processes cannot, they must step together.
        Returns the epoch's loss: the global batches' losses (:meth:`batch_loss`, as one process
        computes them) averaged with their trial counts as weights, whatever the process count."""
        cfg, ex = self.cfg, self.ex
        can_cut = stop_at is not None and ex.world_size == 1
        rng = np.random.default_rng(derive_seed(cfg.seed, self.epoch))  # the same order on every process
        torch.manual_seed(ex.process_seed(cfg.seed, self.epoch))  # readout position sampling
        self.wrapped.train()
        # one epoch visits every train trial of every session; sessions interleave batch by batch
        batches = [(session, idx) for session, p in self.prepared.items()
                   for idx in _batches(len(p.train), cfg.batch_size, rng)]
        order = rng.permutation(len(batches))
        # (session, trials this process computes, global batch size, how many of them count)
        schedule = []
        for session, idx in (batches[k] for k in order):
            mine, counted = ex.share(idx)
            schedule.append((session, mine, len(idx), counted))
        loader = torch.utils.data.DataLoader(
            _EpochBatches({session: p.train for session, p in self.prepared.items()}, schedule),
            batch_size=None, num_workers=cfg.loader_workers, pin_memory=ex.device.type == "cuda",
            generator=torch.Generator())  # its own seed draw must not move the readout sampling's stream
        total = torch.zeros(2, dtype=torch.float64)
        with self.progress.task(f"{self.name} epoch {self.epoch + 1}", total=len(batches), unit="batches") as task:
            for (session, _, global_size, counted), batch in zip(schedule, loader):
                if can_cut and time.monotonic() >= stop_at:  # type: ignore[operator]
                    log.info("%s: epoch %d cut short at the time limit", self.name, self.epoch + 1)
                    break
                loss, n_local = self.batch_loss(session, to_device(batch, ex.device), global_size, counted)
                ex.optimizer_step(loss, self.opt, self.scaler)
                # the processes' losses average to the global batch's loss (as their gradients
                # do), stand-ins included; weighing each by global_size / world_size makes the
                # sum over processes that loss times the batch's trials, counted once (n_local)
                total += torch.tensor([float(loss.detach()) * global_size / ex.world_size, n_local],
                                      dtype=torch.float64)
                # rank 0's loss estimates the global batch's (exactly so on one process)
                task.update(loss=float(loss.detach()) / global_size)
        sums = ex.all_sum([float(total[0]), float(total[1])])
        return sums[0] / max(sums[1], 1.0)

    def batch_loss(self, session: str, batch: tuple, global_size: int,
                   counted: int | None = None) -> tuple[torch.Tensor, int]:
        """This process's loss for its ``batch`` (images, behaviour, pupil, responses on the device),
        its share of a global batch of ``global_size`` of ``session``'s train trials, weighted so
        that DDP's average of the processes' gradients is the global batch's gradient; only the
        first ``counted`` trials count (default all; 0 for stand-ins, see
        :meth:`~neuroaikit.execution.Execution.share`). Returns the loss and ``counted``."""
        ex = self.ex
        p = self.prepared[session]
        x, b, pupil, y = batch
        with ex.autocast():
            pred = self.wrapped(x, b, pupil, session=session, standardized=True).float()
        # the Sensorium loss is a sum scaled by sqrt(n / batch) of the *global* batch; each
        # process sums its share and DDP averages, hence the factor world_size
        scale = math.sqrt(len(p.train) / global_size) * ex.world_size
        target = (y - p.offset) * p.inv_std
        counted = len(y) if counted is None else counted
        # sliced, not skipped: stand-ins still pass zero gradients to every parameter, as DDP needs
        poisson = (pred - target * torch.log(pred + 1e-12))[:counted]
        loss = scale * poisson.sum() + self.model.regularizer(session)
        return loss, counted

    def global_batch_loss(self, session: str, global_idx: np.ndarray) -> tuple[torch.Tensor, int]:
        """:meth:`batch_loss` of this process's share of the train trials ``global_idx``, gathered here."""
        mine, counted = self.ex.share(global_idx)
        return self.batch_loss(session, self.prepared[session].train.batch(mine, self.ex.device), len(global_idx),
                               counted)

    def _validation_correlation(self) -> float:
        return validation_correlation([predict(self.model, p.ds, "validation", session=session)
                                       for session, p in self.prepared.items()],
                                      [p.ds for p in self.prepared.values()])

    def _time_left(self) -> float | None:
        """Seconds of training left (``config.time_limit`` and the deadline; rank 0's clock
        decides for every process); None without a limit."""
        limits = []
        if self.cfg.time_limit is not None:
            limits.append(self.cfg.time_limit - self.elapsed)
        if self.deadline is not None:
            limits.append(self.deadline - time.monotonic())
        if not limits:
            return None
        return float(self.ex.broadcast(min(limits)))

    def _best_start(self, left: float | None) -> tuple[float, float, list[dict]]:
        """The first epoch from each start (initialisation); the model and optimizer are left at
        the best start's. Returns its loss and validation correlation, and every start's seed and
        validation correlation. With a time limit, an extra start runs only if all extra starts so
        far and it take at most ``STARTS_SHARE`` of the training time left before the first."""
        cfg, ex = self.cfg, self.ex
        started = time.monotonic()
        stop_at = None if left is None else started + left
        starts: list[dict] = []
        best: tuple[float, float, float, dict, dict] | None = None  # score, loss, validation r, states
        for i in range(self.starts):
            seed = cfg.seed if i == 0 else derive_seed(cfg.seed, STARTS_STREAM, i)
            if i > 0:
                epoch_s = (time.monotonic() - started) / i
                if left is not None and ex.broadcast(i * epoch_s > STARTS_SHARE * left):
                    log.info("%s: no time for start %d of %d (an epoch takes %.0f s)", self.name, i + 1, self.starts, epoch_s)
                    break
                # the data as split for validation: cfg.seed drew the split, not the start's seed
                split = self.sessions if self.multi else next(iter(self.sessions.values()))
                fresh, _ = build_twin_for(split, replace(self.cfg, seed=seed))
                self.model.load_state_dict(fresh.state_dict())
                self.opt = torch.optim.Adam([p for p in self.model.parameters() if p.requires_grad], lr=self.lr)
            loss = self._train_epoch(stop_at)
            val_corr = float(ex.broadcast(self._validation_correlation() if ex.is_main else 0.0))
            starts.append({"seed": seed, "validation_correlation": val_corr})
            self.progress.message(f"  {self.name} start {i + 1} of {self.starts} (seed {seed}): validation r {val_corr:.4f}")
            score = start_score(val_corr)
            if best is None or score > best[0]:
                best = (score, loss, val_corr, copy.deepcopy(self.model.state_dict()), copy.deepcopy(self.opt.state_dict()))
        assert best is not None
        if len(starts) > 1:
            self.model.load_state_dict(best[3])
            self.opt = torch.optim.Adam([p for p in self.model.parameters() if p.requires_grad], lr=self.lr)
            self.opt.load_state_dict(best[4])
        return best[1], best[2], starts

    # -- the loop ------------------------------------------------------------
    def fit(self, callback, resume_state, save_state) -> tuple[CortexTwin, list[dict]]:
        cfg, ex = self.cfg, self.ex
        if resume_state is not None:
            self.load(resume_state)
        last_epoch_s = 0.0
        while not self.done and self.epoch < cfg.max_epochs:
            t0 = time.perf_counter()
            left = self._time_left()
            # no epoch starts that would end far past the budget (the first always runs)
            if left is not None and self.epoch > 0 and left < (0.5 if self.ex.world_size == 1 else 1.0) * last_epoch_s:
                log.info("%s: %.0f s left, an epoch takes %.0f s: stopping", self.name, left, last_epoch_s)
                self.stopped_by = "time_limit"
                break
            starts: list[dict] = []
            if self.epoch == 0 and self.starts > 1:
                loss, val_corr, starts = self._best_start(left)
            else:
                loss = self._train_epoch(None if left is None else time.monotonic() + left)
                val_corr = self._validation_correlation() if ex.is_main else 0.0
            self.epoch += 1
            elapsed = self.elapsed + time.perf_counter() - t0
            # rank 0 decides (its clock, its validation score); every process follows
            val_corr, elapsed = ex.broadcast((val_corr, elapsed))
            last_epoch_s = (elapsed - self.elapsed) / max(len(starts), 1)
            self.elapsed = elapsed
            row = {"epoch": self.epoch, "loss": loss, "validation_correlation": val_corr, "lr": self.lr,
                   "seconds": self.elapsed, **({"starts": starts} if starts else {})}
            self.history.append(row)
            log.debug("epoch %d loss %.4f val r %.4f lr %.2g", self.epoch, loss, val_corr, self.lr)
            if callback and ex.is_main:
                callback(row)
            if val_corr > self.best[0] + cfg.tolerance:
                self.best = (val_corr, copy.deepcopy(self.model.state_dict()), self.epoch)
                self.bad_epochs = 0
            else:
                self.bad_epochs += 1
                if self.bad_epochs >= cfg.patience:
                    if self.decays >= cfg.max_lr_decays:
                        self.done, self.stopped_by = True, "early_stopping"
                    else:
                        self.decays += 1
                        self.bad_epochs = 0
                        self.lr *= cfg.lr_decay
                        self.model.load_state_dict(self.best[1])
                        for group in self.opt.param_groups:
                            group["lr"] = self.lr
            left = self._time_left()
            self.progress.message(
                f"  {self.name} epoch {self.epoch}: loss {loss:.4g}, validation r {val_corr:.4f} (best {self.best[0]:.4f} at "
                f"epoch {self.best[2]}), lr {self.lr:.3g}, {self.elapsed:.0f} s"
                + (f", {max(left, 0):.0f} s left" if left is not None else ""))
            if left is not None and left <= 0:
                log.info("time limit reached after %d epochs", self.epoch)
                self.done = True
                self.stopped_by = self.stopped_by or "time_limit"
            if self.epoch >= cfg.max_epochs:
                self.done = True
                self.stopped_by = self.stopped_by or "max_epochs"
            if save_state is not None:
                save_state(self.state())
        self.model.load_state_dict(self.best[1])
        self.model.eval()
        history = [*self.history, {"best_epoch": self.best[2], "best_validation_correlation": self.best[0],
                                   "stopped_by": self.stopped_by}]
        return self.model, history
