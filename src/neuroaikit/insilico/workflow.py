"""``neuroaikit probe RUN``: in-silico physiology of a trained network, added to its run folder.

For each layer: the standard protocol (:func:`~neuroaikit.insilico.characterize`) on up
to ``max_units`` units, the distances of its distributions to the published V1 ones, a
cross-validated linear probe of the test labels, gradient maps and most exciting / inhibiting
inputs of a few units. Then a lesion matrix: for each class, the channels a probe says carry it
are silenced and every class's accuracy is measured, the channels chosen on one half of the test
images (stratified by class) and the accuracy measured on the other half, so a lesion is not
scored on the images its channels were picked to explain. Everything is checked before any
computation; the result is ``results/insilico.json`` (``neuroaikit.insilico.results.InsilicoResult``).
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..alignment.features import _resolve, default_layers, extract_features
from ..errors import ConfigError
from ..execution import Execution, refuse_torchrun
from ..progress import Progress, default_progress
from ..results import finite_or_none
from ..runs import Run
from .characterize import characterize, protocol_frequencies
from .config import ProbeConfig
from .channels import dominant_channel_counts
from .experiments import channel_energy, channel_tuning, gradient_maps, most_exciting_inputs
from .lesions import lesion_effects
from .probes import check_probe_labels, class_units, linear_probe
from .recording import LayerUnits, declared_degrees, declared_input_range
from .reference import available, published, ks_distance, wasserstein_distance
from .results import Distance, InsilicoResult, LayerProbe
from .stimuli import Geometry

PROBE_POOL = 4  # feature maps are average-pooled to 4 x 4 positions before a linear probe


def _input_shape(run: Run, config: ProbeConfig) -> list[int]:
    if config.input_shape is not None:
        return list(config.input_shape)
    from ..alignment.profile import model_input_shape

    try:
        shape = model_input_shape(run.model_spec, run.config)
    except ConfigError:
        raise ConfigError(f"cannot tell the input shape of {run.path}'s model from the run; give it as "
                          "input_shape (C, H, W; --input-shape)") from None
    return list(shape)


def _load_images(run: Run, dataset: str | None, data_dir: str | None, n: int):
    from ..data import load_dataset

    dataset = dataset or (run.config or {}).get("dataset")
    if not dataset:
        raise ConfigError(f"{run.path}: no dataset recorded in config.json; pass --dataset")
    data_dir = data_dir or (run.config or {}).get("data_dir")
    test = load_dataset(dataset, "test", data_dir=data_dir)
    take = min(n, len(test))
    return dataset, test.images[:take], test.labels[:take]


def _layer_units(model, layer: str, shape, config: ProbeConfig, degrees) -> LayerUnits:
    try:
        return LayerUnits(model, layer, shape, config.position, noise=config.noise, visual_degrees=degrees)
    except ConfigError as exc:
        if "not a feature map" not in str(exc):
            raise
        return LayerUnits(model, layer, shape, None, noise=config.noise, visual_degrees=degrees)


def _probe_features(model, images, layer: str, noise: str) -> torch.Tensor:
    feats = extract_features(model, images, [layer], noise="off" if noise == "off" else "draw", flatten=False)[layer]
    if feats.dim() == 4 and feats.shape[-1] > PROBE_POOL:
        feats = F.adaptive_avg_pool2d(feats, PROBE_POOL)
    return feats.reshape(len(feats), -1)


def _distances(measures, species: str) -> list[Distance]:
    out = []
    wanted = [(species, m) for s, m in available() if s == species]
    for sp, measure in wanted:
        ref = published(sp, measure)
        if ref.unit == "c/deg" and measures.sf_unit != "c/deg":
            continue  # frequencies in cycles/pixel cannot be compared without the visual angle
        values = measures.array(measure)
        values = values[np.isfinite(values)]
        out.append(Distance(measure=measure, species=sp, source=ref.source, approximate=ref.approximate,
                            n_units=int(values.size),
                            layer_median=float(np.median(values)) if values.size else None,
                            reference_median=ref.median(),
                            ks=ks_distance(values, ref) if values.size else None,
                            wasserstein=wasserstein_distance(values, ref) if values.size else None))
    return out


def probe_run(run_dir: str | os.PathLike, config: ProbeConfig | None = None, *, dataset: str | None = None,
              data_dir: str | None = None, overwrite: bool = False, progress: Progress | None = None,
              save: bool = True) -> InsilicoResult:
    """Probe the model of ``run_dir`` as ``config`` says and save ``results/insilico.json``.

    Checked before any computation: the run, that an existing result may be replaced, the layer
    names (an unknown one lists the valid ones), the test images, the stimulus geometry. One
    process: refused under ``torchrun``.
    """
    config = ProbeConfig() if config is None else config
    if not isinstance(config, ProbeConfig):
        raise ConfigError(f"config must be a ProbeConfig, got {type(config).__name__}")
    refuse_torchrun("probe", "its experiments are not shared between processes")
    progress = default_progress(progress)
    start = time.time()
    run = Run.open(run_dir)
    if save:
        run.check_result_writable(InsilicoResult.result_name, overwrite)
    shape = _input_shape(run, config)
    with Execution(config.execution) as ex:
        model = run.load_model(map_location=ex.device)
        layers = config.layers or default_layers(model)
        degrees = config.visual_degrees or declared_degrees(model)
        geometry = Geometry((shape[1], shape[2]), degrees)
        if config.protocol.sizes is not None:
            geometry.check_sizes(config.protocol.sizes)
        recorders = {name: _layer_units(model, name, shape, config, degrees) for name in layers}
        if config.lesion_layer is not None:
            _resolve(model, [config.lesion_layer])
        name, images, labels = _load_images(run, dataset, data_dir, config.n_images)
        if tuple(images.shape[1:]) != tuple(shape):
            raise ConfigError(f"{name} images are {tuple(images.shape[1:])}, the model takes {tuple(shape)}")
        check_probe_labels(labels.numpy(), config.probe_folds)  # before the first layer's physiology
        result = InsilicoResult(run=str(run.path), dataset=name, n_images=len(images), input_shape=list(shape),
                                visual_degrees=degrees, noise=config.noise, species=config.species)
        torch.manual_seed(config.seed)
        n_classes = int(labels.max()) + 1
        with progress.task("probe", total=len(layers), unit="layers") as task:
            for layer, units in recorders.items():
                result.layers.append(_probe_layer(model, layer, units, config, geometry, images, labels, progress))
                task.update()
        lesion_layer = config.lesion_layer or _default_lesion_layer(result, n_classes)
        if lesion_layer is not None:
            progress.message(f"probe: lesions in {lesion_layer}")
            result.lesions = _lesions(model, lesion_layer, config, images, labels, n_classes)
        result.execution = ex.describe()
    result.time_s = time.time() - start
    if save:
        result.save(run)
        run.log(f"probe: {len(result.layers)} layers, {result.time_s:.1f} s on {result.execution['device']}")
    return result


def _probe_layer(model, layer, units: LayerUnits, config: ProbeConfig, geometry, images, labels, progress):
    n_total = units.n_units
    chosen = np.unique(np.linspace(0, n_total - 1, min(config.max_units, n_total)).round().astype(int))
    units.units = torch.as_tensor(chosen, device=units.units.device)
    entry = LayerProbe(layer=layer, position=units.position, layer_shape=list(units.layer_shape),
                       units=chosen.tolist())
    progress.message(f"probe: {layer} {units.layer_shape}, {len(chosen)} of {n_total} units")
    entry.measures = characterize(units, geometry, config.protocol, natural_images=images, progress=progress)
    entry.distances = _distances(entry.measures, config.species)
    entry.probe = linear_probe(_probe_features(model, images, layer, config.noise).numpy(), labels.numpy(),
                               config.probe_folds, seed=config.seed)
    if units.input_shape[0] > 1:
        entry.colour = _colour(units, config, geometry)
        per_channel, by_none = dominant_channel_counts(entry.colour["dominant_channel"], units.input_shape[0])
        progress.message(f"probe: {layer} colour: units driven most by channel "
                         + ", ".join(f"{c}: {n}" for c, n in enumerate(per_channel)) + f", by none: {by_none}")
    if config.mei_units:
        responsive = np.flatnonzero(entry.measures.responsive) if any(entry.measures.responsive) else np.arange(
            len(chosen))
        picks = responsive[:config.mei_units]
        shape = geometry.shape
        entry.map_units = [int(chosen[i]) for i in picks]
        entry.gradient_maps = gradient_maps(units, shape, picks).tolist()
        channels = units.input_shape[0]
        kwargs: dict[str, Any] = dict(steps=config.mei_steps, n_seeds=config.mei_seeds,
                                      diversity=config.mei_diversity, seed=config.seed, channels=channels,
                                      bounds=declared_input_range(model))
        meis, act = most_exciting_inputs(units, shape, picks, **kwargs)
        mins, low = most_exciting_inputs(units, shape, picks, sign=-1.0, **kwargs)
        entry.meis, entry.mei_activation = meis.tolist(), act.tolist()
        entry.mins, entry.min_activation = mins.tolist(), low.tolist()
        if entry.colour is not None:
            first_seed = meis[:, 0] if meis.ndim == 5 else meis  # (n, C, H, W)
            entry.colour["mei_channel_energy"] = channel_energy(first_seed, float(units.input_mean)).tolist()
    return entry


def _colour(units: LayerUnits, config: ProbeConfig, geometry) -> dict:
    """Which input channel drives each unit: the protocol's gratings (its orientations, spatial
    frequencies and phases) in one channel at a time, the others at grey."""
    channels = units.input_shape[0]
    tuned = channel_tuning(units, geometry.shape, channels, n_orientations=config.protocol.n_directions // 2,
                           spatial_frequencies=protocol_frequencies(config.protocol, geometry)[1],
                           n_phases=config.protocol.n_phases)
    driven = np.clip(tuned["peak_over_grey"], 0, None)
    total = driven.sum(0)
    selectivity = np.full(total.shape, np.nan)
    np.divide(driven.max(0), total, out=selectivity, where=total > 0)
    index = tuned["preference_index"]
    return {"channels": channels, "peak_over_grey": tuned["peak_over_grey"].tolist(),
            "dominant_channel": tuned["dominant_channel"].tolist(),
            "channel_selectivity": finite_or_none(selectivity),
            "preference_index": None if index is None else finite_or_none(index)}


def _default_lesion_layer(result: InsilicoResult, n_classes: int) -> str | None:
    for entry in reversed(result.layers):
        channels = entry.layer_shape[0] if entry.layer_shape else 0
        if channels >= 2 * n_classes and entry.layer_shape and len(entry.layer_shape) in (1, 3):
            return entry.layer
    return None


def _lesion_split(labels: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the images that choose the lesioned channels and of those the lesions are measured
    on: each class's images shuffled (``seed``) and halved, the smaller half choosing. A class with
    fewer than 4 images goes to the measuring half alone (a probe needs 2 of a class to fit)."""
    rng = np.random.default_rng(seed)
    select, measure = [], []
    for c in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == c))
        k = len(rows) // 2 if len(rows) >= 4 else 0
        select.append(rows[:k])
        measure.append(rows[k:])
    return np.sort(np.concatenate(select)).astype(np.int64), np.sort(np.concatenate(measure)).astype(np.int64)


def _lesions(model, layer: str, config: ProbeConfig, images, labels, n_classes: int):
    select, measure = (torch.as_tensor(rows) for rows in _lesion_split(labels.numpy(), config.seed))
    chosen_on = labels[select].numpy()
    present = sorted(set(chosen_on.tolist()))  # a class the choosing half does not show has no units to find
    groups: dict[str, list[int]] = {}
    if len(present) >= 2:
        feats = extract_features(model, images[select], [layer], flatten=False)[layer]
        per_channel = (feats.mean((2, 3)) if feats.dim() == 4 else feats).numpy()
        k = max(1, int(round(config.lesion_fraction * per_channel.shape[1])))
        groups = {f"class {c}": class_units(per_channel, chosen_on, c, k, seed=config.seed).tolist()
                  for c in range(n_classes) if c in present}
    # the channel statistics of a mean / noise lesion use no labels: all the images, as before the split
    return lesion_effects(model, images[measure], labels[measure], layer, groups, config.lesion_mode,
                          reference=images, n_classes=n_classes, seed=config.seed)
