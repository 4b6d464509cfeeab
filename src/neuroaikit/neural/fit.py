"""Fit a digital twin to a :class:`NeuralDataset` with the Sensorium recipe.

Poisson loss (``p - r log p``, summed, scaled by sqrt(n_train / batch)) plus the core's
Laplace and the readout's L1 penalties; Adam; responses divided by the train-tier std;
early stopping on the validation tier's mean single-trial correlation (checked every
epoch, patience 5); on a plateau the learning rate is multiplied by 0.3 (at most 3
times) and training resumes from the best weights; at most ``max_epochs`` epochs or
``time_limit`` seconds. When a data set has no validation tier, 10 % of the train
images are held out for it (logged).

Example::

    from neuroaikit.neural import SyntheticCortex, TwinFitConfig, fit_twin, predict
    ds = SyntheticCortex(n_neurons=50, image_shape=(18, 32)).sample(n_train=800)
    model, history = fit_twin(ds, TwinFitConfig(max_epochs=20))
    pred = predict(model, ds, "test")      # (test trials, 50)
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Mapping

import numpy as np
import torch

from ..errors import DataError
from .dataset import NeuralDataset
from .metrics import single_trial_correlation
from .models import DEFAULT_SESSION, CortexTwin

log = logging.getLogger(__name__)


@dataclass
class TwinFitConfig:
    """Hyper-parameters of :func:`fit_twin` (defaults: the Sensorium baseline, smaller core)."""

    core: str = "cnn"  # "cnn" | "linear" (LN model)
    readout: str = "gaussian"  # "gaussian" | "factorized"
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
    batch_size: int = 64
    lr: float = 0.009
    max_epochs: int = 200
    patience: int = 5
    tolerance: float = 1e-6
    lr_decay: float = 0.3
    max_lr_decays: int = 3
    time_limit: float | None = None
    validation_fraction: float = 0.1
    seed: int = 0
    threads: int | None = None
    extra: dict = field(default_factory=dict)

    def model_kwargs(self, ds: NeuralDataset) -> dict:
        n_behavior = 0
        if self.use_behavior:
            if ds.behavior is None:
                raise DataError(f"{ds.name}: use_behavior is set but the data set has no behaviour")
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

    def to_dict(self) -> dict:
        return asdict(self)


def has_retinotopy(ds: NeuralDataset) -> bool:
    """True when cortical positions exist and vary in x and y (a grid predictor needs them)."""
    pos = ds.cortical_positions
    if pos is None or pos.shape[1] < 2:
        return False
    usable = bool((np.std(pos[:, :2], axis=0) > 1e-6).all())
    if not usable:
        log.info("%s: cortical positions do not vary; RF positions are learned per neuron", ds.name)
    return usable


def split_validation(ds: NeuralDataset, fraction: float, seed: int) -> NeuralDataset:
    """Return ``ds`` with a validation tier: unchanged if it has one, else ``fraction`` of the
    train images (all their trials) relabelled ``validation`` (logged)."""
    if (ds.tiers == "validation").any():
        return ds
    train = ds.tiers == "train"
    if not train.any():
        raise DataError(f"{ds.name}: no train trials to fit on (tiers present: {ds.tier_names})")
    ids = np.unique(ds.image_ids[train])
    n_val = max(1, int(round(len(ids) * fraction)))
    if len(ids) - n_val < 2:
        raise DataError(f"{ds.name}: {len(ids)} train images are too few to hold out a validation set")
    val_ids = np.random.default_rng(seed).choice(ids, n_val, replace=False)
    tiers = ds.tiers.astype("<U16")
    tiers[train & np.isin(ds.image_ids, val_ids)] = "validation"
    log.info("%s: no validation tier; held out %d of %d train images for early stopping", ds.name, n_val, len(ids))
    from dataclasses import replace

    return replace(ds, tiers=tiers)


def _batches(n: int, batch_size: int, rng: np.random.Generator | None):
    order = rng.permutation(n) if rng is not None else np.arange(n)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


class _Tensors:
    """The trials of one tier as torch tensors, images gathered per batch."""

    def __init__(self, ds: NeuralDataset, mask: np.ndarray, stimuli: torch.Tensor):
        self.stimuli = stimuli
        self.index = torch.as_tensor(ds.stimulus_index[mask])
        self.responses = torch.as_tensor(ds.responses[mask])
        self.behavior = torch.as_tensor(ds.behavior[mask]) if ds.behavior is not None else None
        self.pupil = torch.as_tensor(ds.pupil_center[mask]) if ds.pupil_center is not None else None

    def __len__(self) -> int:
        return len(self.index)

    def batch(self, idx):
        idx = torch.as_tensor(idx)
        b = None if self.behavior is None else self.behavior[idx]
        p = None if self.pupil is None else self.pupil[idx]
        return self.stimuli[self.index[idx]], b, p, self.responses[idx]


def _stimuli_tensor(ds: NeuralDataset) -> torch.Tensor:
    s = torch.as_tensor(ds.stimuli)
    return s.unsqueeze(1) if s.dim() == 3 else s


@torch.no_grad()
def predict(model: CortexTwin, ds: NeuralDataset, tier: str | None = None, batch_size: int = 256, session: str | None = None) -> np.ndarray:
    """Predicted responses (trials of ``tier`` or all, n_neurons) in data units."""
    model.eval()
    mask = np.ones(ds.n_trials, bool) if tier is None else ds.tier_mask(tier)
    data = _Tensors(ds, mask, _stimuli_tensor(ds))
    out = []
    for idx in _batches(len(data), batch_size, None):
        x, b, p, _ = data.batch(idx)
        out.append(model(x, b, p, session=session))
    return torch.cat(out).numpy() if out else np.zeros((0, ds.n_neurons), np.float32)


def fit_twin(
    ds: NeuralDataset | Mapping[str, NeuralDataset],
    config: TwinFitConfig | None = None,
    callback: Callable[[dict], None] | None = None,
) -> tuple[CortexTwin, list[dict]]:
    """Fit a :class:`CortexTwin` on the train tier, early-stopped on validation; returns the
    best model (eval mode) and the per-epoch history.

    ``ds`` may be ``{session_name: NeuralDataset}`` (same image shape): one shared core, one
    readout per session, batches of all sessions interleaved; the validation score is the
    mean over sessions. Predict with ``predict(model, ds, tier, session=name)``."""
    cfg = config or TwinFitConfig()
    threads_before = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        return _fit(ds, cfg, callback)
    finally:
        torch.set_num_threads(threads_before)


def _fit(data, cfg: TwinFitConfig, callback) -> tuple[CortexTwin, list[dict]]:
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    sessions = dict(data) if isinstance(data, Mapping) else {DEFAULT_SESSION: data}
    if not sessions:
        raise DataError("no data set to fit")
    sessions = {name: split_validation(ds, cfg.validation_fraction, cfg.seed) for name, ds in sessions.items()}
    shapes = {ds.image_shape for ds in sessions.values()}
    if len(shapes) > 1:
        raise DataError(f"sessions have different image shapes {sorted(shapes)}; a shared core needs one")
    for name, ds in sessions.items():
        if not ds.tier_mask("train").any():
            raise DataError(f"{ds.name}: the train tier is empty")
    kwargs = cfg.model_kwargs(next(iter(sessions.values())))
    if not isinstance(data, Mapping):
        kwargs["n_neurons"] = next(iter(sessions.values())).n_neurons
    else:
        kwargs["n_neurons"] = {name: ds.n_neurons for name, ds in sessions.items()}
        kwargs["cortex_grid"] = bool(cfg.cortex_grid and all(has_retinotopy(ds) for ds in sessions.values()))
    model = CortexTwin(**kwargs)
    prepared = {}
    all_train_images = []
    for name, ds in sessions.items():
        session = model.sessions[0] if not isinstance(data, Mapping) else name
        train_mask = ds.tier_mask("train")
        stimuli = _stimuli_tensor(ds)
        all_train_images.append(stimuli[np.unique(ds.stimulus_index[train_mask])].reshape(-1))
        std_train = ds.response_std("train")
        offset = np.minimum(ds.responses[train_mask].min(0), 0.0)
        if (offset < 0).any():
            log.info("%s: %d neurons have negative responses; the Poisson loss sees response - train minimum", ds.name, int((offset < 0).sum()))
        with torch.no_grad():
            model.response_std(session).copy_(torch.as_tensor(std_train))
            model.response_offset(session).copy_(torch.as_tensor(offset))
            readout = model.readouts[session]
            if getattr(readout, "cortex_grid", False):
                readout.set_positions(torch.as_tensor(ds.cortical_positions))
            # start the output bias at the mean standardised response (inverse of ELU + 1)
            mean_r = torch.as_tensor((ds.responses[train_mask].mean(0) - offset) / std_train).clamp_min(1e-3)
            readout.bias.copy_(torch.where(mean_r > 1, mean_r - 1, torch.log(mean_r)))
        prepared[session] = (ds, _Tensors(ds, train_mask, stimuli), torch.as_tensor(1.0 / std_train), torch.as_tensor(offset))
    with torch.no_grad():
        pooled = torch.cat(all_train_images)
        model.input_mean.fill_(float(pooled.mean()))
        model.input_std.fill_(float(pooled.std()) or 1.0)
        if model.modulators is not None:
            b = torch.cat([torch.as_tensor(ds.behavior[ds.tier_mask("train")]) for ds, _, _, _ in prepared.values()])
            model.behavior_mean.copy_(b.mean(0))
            model.behavior_std.copy_(b.std(0).clamp_min(1e-6))
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    best = (-np.inf, copy.deepcopy(model.state_dict()), 0)
    history: list[dict] = []
    lr, decays, bad_epochs = cfg.lr, 0, 0
    start = time.time()
    for epoch in range(1, cfg.max_epochs + 1):
        model.train()
        total, count = 0.0, 0
        # one epoch visits every train trial of every session; sessions interleave batch by batch
        schedule = [(session, idx) for session, (_, train, _, _) in prepared.items() for idx in _batches(len(train), cfg.batch_size, rng)]
        for k in rng.permutation(len(schedule)):
            session, idx = schedule[k]
            _, train, inv_std, offset = prepared[session]
            x, b, p, y = train.batch(idx)
            pred = model(x, b, p, session=session, standardized=True)
            loss_scale = math.sqrt(len(train) / len(idx))
            loss = loss_scale * (pred - (y - offset) * inv_std * torch.log(pred + 1e-12)).sum() + model.regularizer(session)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
            count += len(idx)
        val_corr = float(np.mean([
            np.mean(single_trial_correlation(ds.responses[ds.tier_mask("validation")], predict(model, ds, "validation", session=session)))
            for session, (ds, _, _, _) in prepared.items()
        ]))
        row = {"epoch": epoch, "loss": total / count, "validation_correlation": val_corr, "lr": lr, "seconds": time.time() - start}
        history.append(row)
        log.info("epoch %d loss %.4f val r %.4f lr %.2g", epoch, row["loss"], val_corr, lr)
        if callback:
            callback(row)
        if val_corr > best[0] + cfg.tolerance:
            best = (val_corr, copy.deepcopy(model.state_dict()), epoch)
            bad_epochs = 0
        else:
            bad_epochs += 1
            if bad_epochs >= cfg.patience:
                if decays >= cfg.max_lr_decays:
                    break
                decays += 1
                bad_epochs = 0
                lr *= cfg.lr_decay
                model.load_state_dict(best[1])
                for group in opt.param_groups:
                    group["lr"] = lr
        if cfg.time_limit and time.time() - start > cfg.time_limit:
            log.info("time limit reached after %d epochs", epoch)
            break
    model.load_state_dict(best[1])
    model.eval()
    history.append({"best_epoch": best[2], "best_validation_correlation": best[0]})
    return model, history
