"""Layer-by-layer alignment profile of a model against a neural data set.

For each layer: RSA (model RDM vs neural RDM), CKA and linear predictivity, each with a
bootstrap interval over stimuli and a noise ceiling from the repeated trials:

- RSA: ``compare(rdm(layer), rdm(trial average))``; ceiling ``sqrt(rho)`` with ``rho`` the
  Spearman-Brown split-half reliability of the neural RDM (an approximation of the expected
  similarity of a perfect model with the measured RDM, biased low with few repeats: see
  :func:`~neuroaikit.alignment.rdm_split_half_reliability`); ceiled = score / ceiling.
- CKA: ceiling = the expected debiased linear CKA of a perfect model with the trial average
  (derived in ``_cka_ceiling``); ceiled = score / ceiling. Other CKA settings get no ceiling.
- Predictivity: median held-out r; ceiled by the stated convention
  (``r/sqrt(reliability)`` by default) with per-neuron split-half reliability.

Data without repeats (the Allen file holds averages) get scores and intervals, and
``ceiling: null`` with the reason.

The model's forward passes run on the execution device (:mod:`neuroaikit.execution`); the
metrics run on the CPU in float64: they work on at most a few thousand stimuli, where a GPU
gains nothing, and MPS has no float64. :func:`align_run` is the run-folder workflow
(``neuroaikit align``): settings in an :class:`~neuroaikit.alignment.AlignmentConfig`,
the result an :class:`~neuroaikit.alignment.AlignmentResult` in ``results/alignment.json``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np
import torch

from ..errors import ConfigError, DataError
from ..execution import Execution, model_device, refuse_torchrun
from ..progress import Progress, default_progress, silent
from ._checks import torch_threads
from .bootstrap import _interval, bootstrap_rdm_comparison, resample_indices
from .ceiling import _split_halves, rdm_split_half_reliability, split_half_reliability
from .cka import cka_from_grams, hsic, linear_gram, rbf_gram
from .config import AlignmentConfig
from .features import default_layers, extract_features, prepare_images
from .predictivity import bootstrap_median_r, linear_predictivity
from .rdm import rdm
from .results import (AlignmentResult, AlignmentSettings, CKACeiling, Ceilings, LayerAlignment, MetricScore,
                      NeuralSummary, PredictivityCeiling, PredictivityScore, RSACeiling)

INPUT_SHAPES = {"mnist": (1, 28), "fashion-mnist": (1, 28), "cifar10": (3, 32), "digits": (1, 8)}


@dataclass
class NeuralTarget:
    """Stimuli ``(n, H, W)`` or ``(n, C, H, W)``, trial average ``(n, neurons)`` and, when the
    data have them, repeats ``(n, repeats, neurons)``."""

    stimuli: np.ndarray
    average: np.ndarray
    repeats: np.ndarray | None
    name: str
    info: dict = field(default_factory=dict)
    #: trials per stimulus behind ``average`` (harmonic mean) where it holds more than
    #: ``repeats`` (unequal repeat counts: ``repeats`` keeps those every stimulus has);
    #: ``None``: ``average`` is the mean of ``repeats``
    n_trials: float | None = None


def target_from_dataset(ds) -> NeuralTarget:
    """A :class:`~neuroaikit.neural.NeuralDataset` -> :class:`NeuralTarget`: the ``test`` tier
    when its images were repeated, otherwise every trial grouped by image id."""
    from ..neural import group_repeats

    tiers = ds.tier_names
    use_tier = None
    if "test" in tiers:
        rep = ds.repeats("test")
        if rep.shape[1] >= 2:
            use_tier = "test"
    n_trials = None
    if use_tier:
        rep = ds.repeats("test")
        complete = np.isfinite(rep).all(axis=(0, 2))
        n_complete = int(np.isfinite(rep).all(axis=2).sum(1).min())
        if not complete.all():
            # the average keeps every trial, the ceilings only the repeats all stimuli have:
            # they are rescaled to the average's mean noise variance, 1 / harmonic mean count
            counts = np.isfinite(rep).sum(1)
            n_trials = float(1 / np.mean(1 / counts[counts > 0]))
            rep = rep[:, :n_complete]
        stimuli = ds.average_stimuli("test")
        repeats = rep if rep.shape[1] >= 2 else None
        average = np.nanmean(ds.repeats("test"), axis=1)
    else:
        grouped = group_repeats(ds.responses, ds.image_ids)
        ids, first = np.unique(ds.image_ids, return_index=True)
        stimuli = ds.stimuli[ds.stimulus_index[first]]
        average = np.nanmean(grouped, axis=1)
        repeats = None
    return NeuralTarget(np.asarray(stimuli), np.asarray(average, dtype=np.float64),
                        None if repeats is None else np.asarray(repeats, dtype=np.float64), ds.name,
                        {"tier": use_tier or "all", "n_neurons": int(ds.n_neurons)},
                        None if repeats is None else n_trials)


def load_target(path: Any, region: int | str | None = None, nan_policy: str = "raise") -> NeuralTarget:
    """Antolik / Allen ``.npz``, any recording :func:`~neuroaikit.neural.load_neural` reads
    (FileTree folder or zip, suite2p output, CaImAn results, NWB, a recording file), or a NeuralDataset.

    ``region`` (1, 2 or 3; default 1) picks the Antolik imaging region; for any other data it
    is an error rather than silently ignored. Trials whose responses hold NaN/inf: ``nan_policy``
    (``"raise"``, or ``"drop"`` to leave them out; ``neuroaikit align --drop-nan-trials``)."""
    from ..neural import NeuralDataset, load_allen, load_antolik

    def no_region(what: str) -> None:
        if region is not None:
            raise ConfigError(f"region applies to the Antolik file only, not to {what}")

    if isinstance(path, NeuralTarget):
        no_region(f"the neural target {path.name}")
        return path
    if isinstance(path, NeuralDataset):
        no_region(f"the data set {path.name}")
        return target_from_dataset(path)
    p = Path(path)
    if not p.exists():
        raise DataError(f"neural data {p} does not exist")
    if p.is_dir() and (p / "neural").is_dir() and not (p / "meta").exists():
        p = p / "neural" / "antolik2016_mouse_v1.npz"
    if p.suffix == ".npz" and p.is_file():
        try:
            with np.load(p, allow_pickle=False) as data:
                keys = set(data.files)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is a user data problem
            raise DataError(f"{p}: not a readable .npz file ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
        if any(k.endswith("_raw_validation_set") for k in keys):
            return target_from_dataset(load_antolik(p, region if region is not None else 1, nan_policy=nan_policy))
        if {"images", "train_responses"} <= keys:
            no_region(f"the Allen file {p.name}")
            return target_from_dataset(load_allen(p, nan_policy=nan_policy))
        raise DataError(f"{p}: neither the Antolik nor the Allen file (arrays: {sorted(keys)[:6]})")
    from ..neural import load_neural

    # every recording the twin reads (FileTree, suite2p, CaImAn, NWB, a recording file), by its format
    no_region(f"the recording {p.name}")
    return target_from_dataset(load_neural(p, nan_policy=nan_policy))


def check_target(target: NeuralTarget, config: AlignmentConfig) -> None:
    """Fail before any computation when ``target`` cannot be profiled with ``config``: shapes
    that disagree, NaN in the trial average, too few stimuli for the folds."""
    average = np.asarray(target.average)
    if average.ndim != 2 or average.shape[1] < 1:
        raise DataError(f"{target.name}: the trial average must be (stimuli, neurons), got shape {average.shape}")
    n = average.shape[0]
    if len(target.stimuli) != n:
        raise DataError(f"{target.name}: {len(target.stimuli)} stimuli but {n} rows of responses")
    if n < 4:
        raise DataError(f"{target.name}: {n} stimuli; alignment needs at least 4")
    if not np.isfinite(average).all():
        raise DataError(f"{target.name}: the trial average holds NaN/inf for "
                        f"{int((~np.isfinite(average)).any(1).sum())} stimuli (no valid trial?)")
    # every training fold needs >= 3 stimuli (predictivity refuses fewer)
    largest_test = -(-n // config.n_folds)
    if config.n_folds > n or n - largest_test < 3:
        raise ConfigError(f"n_folds {config.n_folds} is too many for {target.name}'s {n} stimuli "
                          f"(every training fold needs >= 3)")
    if target.repeats is not None:
        repeats = np.asarray(target.repeats)
        if repeats.ndim != 3 or repeats.shape[0] != n or repeats.shape[2] != average.shape[1]:
            raise DataError(f"{target.name}: repeats must be (stimuli, repeats, neurons) = ({n}, r, "
                            f"{average.shape[1]}), got shape {repeats.shape}")


def model_input_shape(spec: dict, config: dict) -> tuple[int, int, int]:
    """The run's model input ``(channels, height, width)``, from the model's arguments or its dataset."""
    kwargs = spec.get("kwargs") or {}
    dataset = (config or {}).get("dataset")
    channels, size = INPUT_SHAPES[dataset] if dataset in INPUT_SHAPES else (None, None)
    channels = kwargs.get("in_channels", channels)
    size = kwargs.get("image_size", size)
    if channels is None or size is None:
        raise ConfigError("cannot tell the model's input size from the run; pass --channels and --image-size")
    height, width = (size, size) if np.ndim(size) == 0 else size  # models of non-square images store [H, W]
    return int(channels), int(height), int(width)


def full_input_shape(input_shape: Sequence[int]) -> list[int]:
    """``[channels, size]`` (square) or ``[channels, height, width]`` -> ``[channels, height, width]``."""
    channels, *size = (int(v) for v in input_shape)
    return [channels, *(size * 2 if len(size) == 1 else size)]


def _cka_ceiling(repeats: np.ndarray, average: np.ndarray, n_splits: int, seed: int) -> float:
    """The expected debiased linear CKA of a perfect model with ``average``.

    Trials are ``x_r = s + e_r``, noise independent across trials and stimuli; a perfect
    model's features are ``s`` (up to rotation and scale). With ``H`` the unbiased HSIC of
    linear Gram matrices, bilinear and blind to their diagonals, ``E[H(s, average)] =
    H(s, s)``, so the model's CKA ``H(s, average) / sqrt(H(s, s) H(average, average))`` is
    about ``sqrt(H(s, s) / H(average, average))``. ``H(s, s)`` is estimated without bias by
    ``H(half 1, half 2)``, the trial averages of two disjoint random halves (independent noise
    averages out), mean over ``n_splits`` splits. Its expectation does not depend on the trials
    per half, so an odd repeat count (one trial left out of each split) and an ``average`` of
    more trials than ``repeats`` need no correction. Halves rather than all pairs of single
    trials: averaging within a half damps trial-to-trial gain changes, which products of single
    trials inflate. Returns 0 when the signal estimate is not positive.
    """
    trials = torch.as_tensor(repeats, dtype=torch.float64)
    signal = sum(float(hsic(_gram(trials[:, a].mean(1), "linear"), _gram(trials[:, b].mean(1), "linear"), True))
                 for a, b in _split_halves(trials.shape[1], n_splits, seed)) / n_splits
    avg_gram = _gram(torch.as_tensor(average, dtype=torch.float64), "linear")
    measured = float(hsic(avg_gram, avg_gram, True))
    return (signal / measured) ** 0.5 if signal > 0 and measured > 0 else 0.0


#: entries of resampled Gram matrices the CKA bootstrap holds at once (each a float64 of K and of
#: L, plus their products in the HSIC): about 32 MB per matrix
CKA_CHUNK_ENTRIES = 4_000_000


def _gram(x: torch.Tensor, kernel: str) -> torch.Tensor:
    return linear_gram(x - x.mean(0)) if kernel == "linear" else rbf_gram(x)


def _bootstrap_cka(feats: torch.Tensor, target_gram: torch.Tensor, idx: torch.Tensor, kernel: str, debiased: bool, level: float):
    gram = _gram(feats, kernel)
    estimate = cka_from_grams(gram, target_gram, debiased)
    # resampled Gram matrices a chunk at a time: all n_boot of them at once were n_boot x n x n
    # (8 GB for each of K and L at 1,000 resamples of 1,000 stimuli)
    n = gram.shape[-1]
    chunk = max(1, CKA_CHUNK_ENTRIES // (n * n))
    parts = []
    with torch.no_grad():
        for rows in idx.split(chunk):
            k = gram[rows[:, :, None], rows[:, None, :]]
            l = target_gram[rows[:, :, None], rows[:, None, :]]
            try:
                parts.append(cka_from_grams(k, l, debiased))
            except DataError:
                parts.append(torch.stack([_safe_cka(a, b, debiased) for a, b in zip(k, l)]))
    samples = torch.cat(parts)
    if debiased:
        # A resample repeats stimuli; the unbiased HSIC then counts a stimulus paired with its
        # own copy as an independent pair and drifts up (towards the biased value). Keep the
        # spread of the resamples but centre them on the estimate.
        finite = torch.isfinite(samples)
        samples = torch.where(finite, samples - samples[finite].mean() + estimate, samples)
    return _interval(estimate, samples, level)


def _safe_cka(k, l, debiased):
    try:
        return cka_from_grams(k, l, debiased)
    except DataError:
        return torch.tensor(float("nan"), dtype=torch.float64)



def _ceiled(score: float, ceiling: float | None) -> float | None:
    return None if ceiling is None or ceiling <= 0 else score / ceiling


def auto_threads(n_stimuli: int) -> int | None:
    """One torch thread up to 1000 stimuli (small matrices: faster than a thread pool, see
    :func:`~neuroaikit.execution.torch_threads`), else torch's setting."""
    return 1 if n_stimuli <= 1000 else None


def alignment_profile(model: torch.nn.Module, target: NeuralTarget, input_shape: Sequence[int],
                      layers: Sequence[str] | None = None, noise: str | int = "off", rdm_method: str = "correlation",
                      compare: str = "spearman", cka_kernel: str = "linear", cka_debiased: bool = True,
                      mapping: str = "ridge", n_folds: int = 10, convention: str = "r/sqrt(reliability)",
                      n_boot: int = 1000, n_splits: int = 20, level: float = 0.95, seed: int = 0,
                      threads: int | None | Literal["auto"] = "auto", progress: Progress | None = None) -> dict:
    """RSA, CKA and predictivity of every layer of ``model`` against ``target``, with ceilings
    and intervals (the settings are those of :class:`AlignmentConfig`, validated the same way).

    ``input_shape`` is the model's ``(channels, size)`` or ``(channels, height, width)``; features are read on the device the
    model is on. Returns the JSON-ready dict of ``results/alignment.json`` (``settings``,
    ``ceilings``, ``layers`` ...; :class:`AlignmentResult`'s ``from_dict`` types it, :func:`align_run`
    returns it typed); a layer whose score is undefined (e.g. a constant stimulus pattern)
    carries ``error`` in that metric. ``threads="auto"`` computes on one thread when there are
    <= 1000 stimuli, else leaves torch's setting; an int sets it. ``progress`` (default:
    silent) shows a task over the layers.
    """
    config = AlignmentConfig(layers=list(layers) if layers else None, noise=noise, rdm_method=rdm_method,
                             compare=compare, cka_kernel=cka_kernel, cka_debiased=cka_debiased, mapping=mapping,
                             n_folds=n_folds, convention=convention, n_boot=n_boot, n_splits=n_splits, level=level,
                             seed=seed, input_shape=[int(v) for v in input_shape])
    check_target(target, config)
    if threads == "auto":
        threads = auto_threads(len(target.average))
    with torch_threads(threads):
        return _profile(model, target, config, progress or silent(), model_device(model)).to_dict()


def _ceilings(target: NeuralTarget, config: AlignmentConfig):
    """The noise ceilings and the per-neuron reliability (``None`` without repeats)."""
    if target.repeats is None:
        return Ceilings(reason="no repeated trials in these data: ceilings need repeats"), None
    rsa = RSACeiling.from_dict(rdm_split_half_reliability(target.repeats, config.rdm_method, config.compare,
                                                          config.n_splits, config.seed, target.n_trials))
    cka_ceiling, cka_reason = None, None
    if config.cka_kernel == "linear" and config.cka_debiased:
        cka_ceiling = CKACeiling(ceiling=_cka_ceiling(target.repeats, target.average, config.n_splits, config.seed),
                                 kind="expected debiased linear CKA of a perfect model with the trial average: "
                                      "sqrt(HSIC_u(half 1, half 2) / HSIC_u(average, average))",
                                 n_splits=config.n_splits)
    else:
        # noise enters an RBF Gram matrix, and the biased HSIC, other than additively: the
        # perfect model's expected score has no estimate from the repeats here
        cka_reason = "a CKA ceiling is derived for the debiased linear CKA only"
    rel = split_half_reliability(target.repeats, config.n_splits, config.seed, target.n_trials)
    predictivity = PredictivityCeiling.from_dict({**rel.summary(), "convention": config.convention})
    return (Ceilings(rsa=rsa, cka=cka_ceiling, predictivity=predictivity, cka_reason=cka_reason),
            rel.reliability)


def _profile(model: torch.nn.Module, target: NeuralTarget, config: AlignmentConfig, progress: Progress,
             device: torch.device) -> AlignmentResult:
    start = time.perf_counter()
    assert config.input_shape is not None  # alignment_profile passes it, align_run fills it in from the run
    channels, height, width = full_input_shape(config.input_shape)
    seed, level, n_boot = config.seed, config.level, config.n_boot
    images = prepare_images(target.stimuli, channels, (height, width))
    layers = list(config.layers) if config.layers else default_layers(model)
    feats = extract_features(model, images, layers, noise=config.noise, seed=seed, device=device)
    avg = torch.as_tensor(target.average, dtype=torch.float64)
    n = avg.shape[0]
    neural_rdm = rdm(avg, config.rdm_method)
    idx = resample_indices(n, n_boot, seed)
    target_gram = _gram(avg, config.cka_kernel)
    ceilings, reliability = _ceilings(target, config)

    results = []
    with progress.task("align", total=len(layers), unit="layers") as task:
        for name in layers:
            x = feats[name].to(torch.float64)
            entry = LayerAlignment(layer=name, n_units=int(x.shape[1]))
            try:
                model_rdm = rdm(x, config.rdm_method)
                boot = bootstrap_rdm_comparison(model_rdm, neural_rdm, config.compare, n_boot=n_boot, indices=idx,
                                                level=level)
                score = float(boot.estimate)
                ceiling = ceilings.rsa.ceiling if ceilings.rsa else None
                entry.rsa = MetricScore.from_dict({**boot.to_dict(), "score": score, "ceiling": ceiling,
                                                   "ceiled": _ceiled(score, ceiling)})
                entry.model_rdm = model_rdm.tolist()
            except DataError as exc:
                entry.rsa = MetricScore.failed(str(exc))
            try:
                boot = _bootstrap_cka(x, target_gram, idx, config.cka_kernel, config.cka_debiased, level)
                score = float(boot.estimate)
                ceiling = ceilings.cka.ceiling if ceilings.cka else None
                entry.cka = MetricScore.from_dict({**boot.to_dict(), "score": score, "ceiling": ceiling,
                                                   "ceiled": _ceiled(score, ceiling)})
            except DataError as exc:
                entry.cka = MetricScore.failed(str(exc))
            try:
                entry.predictivity = _predictivity(x, avg, reliability, config)
            except DataError as exc:
                entry.predictivity = PredictivityScore.failed(str(exc))
            results.append(entry)
            figures = {k: entry.metric(k).score for k in ("rsa", "cka", "predictivity") if entry.metric(k).ok}
            task.update(1, layer=name, **figures)

    neural = NeuralSummary(name=target.name, n_stimuli=n, n_neurons=int(avg.shape[1]),
                           n_repeats=None if target.repeats is None else int(target.repeats.shape[1]),
                           tier=target.info.get("tier"), source=target.info.get("source"))
    settings = AlignmentSettings(
        rdm=config.rdm_method, rdm_note=_RDM_NOTE.get(config.rdm_method, ""), compare=config.compare,
        cka_kernel=config.cka_kernel, cka_debiased=config.cka_debiased, mapping=config.mapping,
        n_folds=config.n_folds, convention=config.convention, n_boot=n_boot, ci_level=level,
        n_splits=config.n_splits, noise=config.noise, seed=seed, input_shape=[channels, height, width],
        images="min-max scaled to [0, 1], resized bilinearly, grayscale repeated over channels",
        nan_policy=config.nan_policy)
    return AlignmentResult(neural=neural, settings=settings, ceilings=ceilings, neural_rdm=neural_rdm.tolist(),
                           layers=results, time_s=time.perf_counter() - start)


def _predictivity(x: torch.Tensor, avg: torch.Tensor, reliability: torch.Tensor | None,
                  config: AlignmentConfig) -> PredictivityScore:
    pred = linear_predictivity(x, avg, mapping=config.mapping, n_folds=config.n_folds, seed=config.seed)
    boot = bootstrap_median_r(pred, n_boot=config.n_boot, seed=config.seed, level=config.level)
    values: dict[str, Any] = {**pred.to_dict(), **boot.to_dict(), "score": pred.median_r}
    if reliability is not None:
        ceiled = pred.ceiled(reliability, config.convention)
        median_rel = ceiled["median_reliability"]
        values.update(ceiled=ceiled["ceiled"], convention=config.convention,
                      ceiling=median_rel ** 0.5 if config.convention.startswith("r/") else median_rel,
                      r_over_sqrt_reliability=ceiled["r_over_sqrt_reliability"],
                      r2_over_reliability=ceiled["r2_over_reliability"])
    else:
        values.update(ceiling=None, ceiled=None)
    return PredictivityScore.from_dict(values)


_RDM_NOTE = {"euclidean": "plain Euclidean distance (not squared)",
             "sqeuclidean": "squared Euclidean distance / number of units",
             "correlation": "1 - Pearson r between stimulus patterns", "cosine": "1 - cosine similarity"}


def _source_name(neural: Any) -> str:
    if isinstance(neural, (str, os.PathLike)) or not hasattr(neural, "name"):
        return str(neural)
    return str(neural.name)


def align_run(run_dir: str | os.PathLike, neural: Any, config: AlignmentConfig | None = None,
              overwrite: bool = False, progress: Progress | None = None, *, save: bool = True) -> AlignmentResult:
    """Profile the model of a run folder against ``neural`` (a data file or folder, see
    :func:`load_target`) and save ``results/alignment.json``.

    Everything is checked before any computation: the run, that an existing result may be
    replaced (``overwrite``; only when ``save``), the neural data and the settings against it,
    and the model's input size. The model runs on ``config.execution``'s device; the stored
    result records what it ran on (``execution``). ``save=False`` returns the result without
    writing anything. One process: refused under ``torchrun``.
    """
    from ..runs import Run

    config = AlignmentConfig() if config is None else config
    if not isinstance(config, AlignmentConfig):
        raise ConfigError(f"config must be an AlignmentConfig, got {type(config).__name__}")
    refuse_torchrun("align", "its metrics are not shared between processes")
    progress = default_progress(progress)
    run = Run.open(run_dir)
    if save:
        run.check_result_writable(AlignmentResult.result_name, overwrite)
    target = load_target(neural, config.region, config.nan_policy)
    check_target(target, config)
    if config.input_shape is None:
        config = config.replace(input_shape=list(model_input_shape(run.model_spec, run.config)))
    repeats = "no" if target.repeats is None else target.repeats.shape[1]
    with Execution(config.execution) as ex:
        progress.message(f"align {run.name} to {target.name} ({len(target.average)} stimuli, "
                         f"{target.average.shape[1]} neurons, {repeats} repeats) on {ex.device}")
        threads = auto_threads(len(target.average)) if config.execution.threads is None else None
        with torch_threads(threads):
            model = run.load_model(map_location=ex.device)
            result = _profile(model, target, config, progress, ex.device)
            result.execution = ex.describe()
    result.run = str(run.path)
    result.neural.source = _source_name(neural)
    if save:
        result.save(run)
        best = result.best_layers("rsa")
        run.log(f"align: {target.name}, {len(result.layers)} layers"
                + (f", best RSA {best[0].layer} {best[0].rsa.score:.3f}" if best else "")
                + f" ({result.time_s:.1f} s on {result.execution['device']})")
    return result
