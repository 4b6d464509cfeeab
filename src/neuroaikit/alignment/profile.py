"""Layer-by-layer alignment profile of a model against a neural data set.

For each layer: RSA (model RDM vs neural RDM), CKA and linear predictivity, each with a
bootstrap interval over stimuli and a noise ceiling from the repeated trials:

- RSA: ``compare(rdm(layer), rdm(trial average))``; ceiling ``sqrt(rho)`` with ``rho`` the
  Spearman-Brown split-half reliability of the neural RDM (the expected similarity of a
  perfect model with the measured RDM); ceiled = score / ceiling.
- CKA: ceiling = mean CKA between the trial averages of two random halves of the repeats
  (a conservative, split-half self-consistency); ceiled = score / ceiling.
- Predictivity: median held-out r; ceiled by the stated convention
  (``r/sqrt(reliability)`` by default) with per-neuron split-half reliability.

Data without repeats (the Allen file holds averages) get scores and intervals, and
``ceiling: null`` with the reason.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..errors import ConfigError, DataError
from ._checks import torch_threads
from .bootstrap import _interval, bootstrap_rdm_comparison, resample_indices
from .ceiling import _split_halves, rdm_split_half_reliability, split_half_reliability
from .cka import cka, cka_from_grams, linear_gram, rbf_gram
from .features import default_layers, extract_features, prepare_images
from .predictivity import CONVENTIONS, bootstrap_median_r, linear_predictivity
from .rdm import rdm

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
    if use_tier:
        rep = ds.repeats("test")
        complete = np.isfinite(rep).all(axis=(0, 2))
        n_complete = int(np.isfinite(rep).all(axis=2).sum(1).min())
        rep = rep[:, :n_complete] if not complete.all() else rep
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
                        {"tier": use_tier or "all", "n_neurons": int(ds.n_neurons)})


def load_target(path: Any, region: int | str | None = None) -> NeuralTarget:
    """Antolik / Allen ``.npz``, a NeuralDataset FileTree folder or zip, or a NeuralDataset."""
    from ..neural import NeuralDataset, load_allen, load_antolik

    if isinstance(path, NeuralTarget):
        return path
    if isinstance(path, NeuralDataset):
        return target_from_dataset(path)
    p = Path(path)
    if p.is_dir() and (p / "neural").is_dir() and not (p / "meta").exists():
        p = p / "neural" / "antolik2016_mouse_v1.npz"
    if p.suffix == ".npz" and p.is_file():
        try:
            with np.load(p, allow_pickle=False) as data:
                keys = set(data.files)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is a user data problem
            raise DataError(f"{p}: not a readable .npz file ({exc})") from None
        if any(k.endswith("_raw_validation_set") for k in keys):
            return target_from_dataset(load_antolik(p, region if region is not None else 1))
        if {"images", "train_responses"} <= keys:
            if region is not None:
                raise ConfigError("--region applies to the Antolik file only")
            return target_from_dataset(load_allen(p))
        raise DataError(f"{p}: neither the Antolik nor the Allen file (arrays: {sorted(keys)[:6]})")
    if p.is_dir() or p.suffix == ".zip":
        from ..neural.filetree import load_filetree

        return target_from_dataset(load_filetree(p))
    raise DataError(f"{p}: expected the Antolik or Allen .npz, or a NeuralDataset folder / zip")


def model_input_shape(spec: dict, config: dict) -> tuple[int, int]:
    kwargs = spec.get("kwargs") or {}
    dataset = (config or {}).get("dataset")
    channels, size = INPUT_SHAPES.get(dataset, (None, None))
    channels = kwargs.get("in_channels", channels)
    size = kwargs.get("image_size", size)
    if channels is None or size is None:
        raise ConfigError("cannot tell the model's input size from the run; pass --channels and --image-size")
    return int(channels), int(size)


def _cka_ceiling(repeats: np.ndarray, debiased: bool, kernel: str, n_splits: int, seed: int) -> float:
    t = torch.as_tensor(repeats, dtype=torch.float64)
    values = [float(cka(t[:, a].mean(1), t[:, b].mean(1), kernel=kernel, debiased=debiased))
              for a, b in _split_halves(t.shape[1], n_splits, seed)]
    return sum(values) / len(values)


def _gram(x: torch.Tensor, kernel: str) -> torch.Tensor:
    return linear_gram(x - x.mean(0)) if kernel == "linear" else rbf_gram(x)


def _bootstrap_cka(feats: torch.Tensor, target_gram: torch.Tensor, idx: torch.Tensor, kernel: str, debiased: bool, level: float):
    gram = _gram(feats, kernel)
    estimate = cka_from_grams(gram, target_gram, debiased)
    k = gram[idx[:, :, None], idx[:, None, :]]
    l = target_gram[idx[:, :, None], idx[:, None, :]]
    with torch.no_grad():
        try:
            samples = cka_from_grams(k, l, debiased)
        except DataError:
            samples = torch.stack([_safe_cka(a, b, debiased) for a, b in zip(k, l)])
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


def alignment_profile(model: torch.nn.Module, target: NeuralTarget, input_shape: tuple[int, int],
                      layers: Sequence[str] | None = None, noise: str | int = "off", rdm_method: str = "correlation",
                      compare: str = "spearman", cka_kernel: str = "linear", cka_debiased: bool = True,
                      mapping: str = "ridge", n_folds: int = 10, convention: str = "r/sqrt(reliability)",
                      n_boot: int = 1000, n_splits: int = 20, level: float = 0.95, seed: int = 0,
                      threads: int | None = "auto") -> dict:
    """RSA, CKA and predictivity of every layer against ``target``, with ceilings and intervals.

    Returns a JSON-ready dict: ``settings``, ``ceilings`` and ``layers`` (one entry per layer;
    a layer whose score is undefined, e.g. a constant stimulus pattern, carries ``error``).
    ``threads="auto"`` computes on one thread when there are <= 1000 stimuli (small matrices:
    faster than a thread pool), else leaves torch's setting; an int sets it.
    """
    if threads == "auto":
        threads = 1 if len(target.average) <= 1000 else None
    with torch_threads(threads):
        return _profile(model, target, input_shape, layers, noise, rdm_method, compare, cka_kernel, cka_debiased,
                        mapping, n_folds, convention, n_boot, n_splits, level, seed)


def _profile(model, target, input_shape, layers, noise, rdm_method, compare, cka_kernel, cka_debiased, mapping,
             n_folds, convention, n_boot, n_splits, level, seed) -> dict:
    if convention not in CONVENTIONS:
        raise ConfigError(f"unknown ceiling convention {convention!r}; choose one of {', '.join(CONVENTIONS)}")
    start = time.perf_counter()
    channels, size = input_shape
    images = prepare_images(target.stimuli, channels, size)
    layers = list(layers) if layers else default_layers(model)
    feats = extract_features(model, images, layers, noise=noise, seed=seed)
    avg = torch.as_tensor(target.average, dtype=torch.float64)
    n = avg.shape[0]
    neural_rdm = rdm(avg, rdm_method)
    idx = resample_indices(n, n_boot, seed)
    target_gram = _gram(avg, cka_kernel)

    ceilings: dict[str, Any] = {}
    reliability = None
    if target.repeats is not None:
        ceilings["rsa"] = rdm_split_half_reliability(target.repeats, rdm_method, compare, n_splits, seed)
        ceilings["cka"] = {"ceiling": _cka_ceiling(target.repeats, cka_debiased, cka_kernel, n_splits, seed),
                           "kind": "mean CKA between trial averages of two random halves of the repeats",
                           "n_splits": n_splits}
        rel = split_half_reliability(target.repeats, n_splits, seed)
        reliability = rel.reliability
        ceilings["predictivity"] = {**rel.summary(), "convention": convention}
    else:
        reason = "no repeated trials in these data: ceilings need repeats"
        ceilings = {"rsa": None, "cka": None, "predictivity": None, "reason": reason}

    results = []
    for name in layers:
        x = feats[name].to(torch.float64)
        entry: dict[str, Any] = {"layer": name, "n_units": int(x.shape[1])}
        try:
            model_rdm = rdm(x, rdm_method)
            boot = bootstrap_rdm_comparison(model_rdm, neural_rdm, compare, n_boot=n_boot, indices=idx, level=level)
            score = float(boot.estimate)
            ceiling = ceilings["rsa"]["ceiling"] if ceilings.get("rsa") else None
            entry["rsa"] = {**boot.to_dict(), "score": score, "ceiling": ceiling, "ceiled": _ceiled(score, ceiling)}
            entry["model_rdm"] = model_rdm.tolist()
        except DataError as exc:
            entry["rsa"] = {"error": str(exc)}
        try:
            boot = _bootstrap_cka(x, target_gram, idx, cka_kernel, cka_debiased, level)
            score = float(boot.estimate)
            ceiling = ceilings["cka"]["ceiling"] if ceilings.get("cka") else None
            entry["cka"] = {**boot.to_dict(), "score": score, "ceiling": ceiling, "ceiled": _ceiled(score, ceiling)}
        except DataError as exc:
            entry["cka"] = {"error": str(exc)}
        try:
            pred = linear_predictivity(x, avg, mapping=mapping, n_folds=n_folds, seed=seed)
            boot = bootstrap_median_r(pred, n_boot=n_boot, seed=seed, level=level)
            entry["predictivity"] = {**pred.to_dict(), **boot.to_dict(), "score": pred.median_r}
            if reliability is not None:
                ceiled = pred.ceiled(reliability, convention)
                entry["predictivity"].update(ceiled=ceiled["ceiled"], convention=convention,
                                             ceiling=ceiled["median_reliability"] ** 0.5 if convention.startswith("r/") else ceiled["median_reliability"],
                                             r_over_sqrt_reliability=ceiled["r_over_sqrt_reliability"],
                                             r2_over_reliability=ceiled["r2_over_reliability"])
            else:
                entry["predictivity"].update(ceiling=None, ceiled=None)
        except DataError as exc:
            entry["predictivity"] = {"error": str(exc)}
        results.append(entry)

    return {
        "neural": {"name": target.name, "n_stimuli": n, "n_neurons": int(avg.shape[1]),
                   "n_repeats": None if target.repeats is None else int(target.repeats.shape[1]), **target.info},
        "settings": {"rdm": rdm_method, "rdm_note": _RDM_NOTE.get(rdm_method, ""), "compare": compare,
                     "cka_kernel": cka_kernel, "cka_debiased": cka_debiased, "mapping": mapping, "n_folds": n_folds,
                     "predictivity_pooling": "pooled out-of-fold predictions", "convention": convention,
                     "n_boot": n_boot, "ci_level": level, "n_splits": n_splits, "noise": noise, "seed": seed,
                     "input_shape": [channels, size, size],
                     "images": "min-max scaled to [0, 1], resized bilinearly, grayscale repeated over channels"},
        "ceilings": ceilings,
        "neural_rdm": neural_rdm.tolist(),
        "layers": results,
        "time_s": time.perf_counter() - start,
    }


_RDM_NOTE = {"euclidean": "plain Euclidean distance (not squared)",
             "sqeuclidean": "squared Euclidean distance / number of units",
             "correlation": "1 - Pearson r between stimulus patterns", "cosine": "1 - cosine similarity"}


def align_run(run_dir: str | os.PathLike, neural: Any, region: int | str | None = None, save: bool = True,
              input_shape: tuple[int, int] | None = None, **kwargs) -> dict:
    """Profile the model of a run folder against ``neural`` and save results/alignment.json."""
    from ..runs import Run

    run = Run.open(run_dir)
    model = run.load_model()
    target = load_target(neural, region)
    shape = input_shape or model_input_shape(run.model_spec, run.config)
    result = alignment_profile(model, target, shape, **kwargs)
    result["run"] = str(run.path)
    result["neural"]["source"] = str(neural) if not hasattr(neural, "name") or isinstance(neural, (str, Path)) else neural.name
    if save:
        run.save_result("alignment", result)
    return result
