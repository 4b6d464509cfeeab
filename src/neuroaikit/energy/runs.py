"""``neuroaikit energy``: measure several runs on the same test images and store the comparison
in each of them (``results/energy.json``)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Sequence

import torch

from ..errors import ConfigError, DataError, StorageError
from ..execution import Execution, model_device, refuse_torchrun
from ..progress import Progress, default_progress
from ..runs import Run
from .config import EnergyConfig
from .measure import format_energy, measure
from .results import EnergyComparisonRow, EnergyMeasurement, EnergyResult
from .table import assumptions


def _dataset_of(run: Run) -> str:
    return run.model_dataset()


def _load_test(name: str, data_dir: str | None):
    from ..data import load_dataset

    return load_dataset(name, "test", data_dir=data_dir)


def _open_runs(run_dirs: Sequence[str | os.PathLike], overwrite: bool) -> list[Run]:
    """Every run, each once, each allowed to take a new result (before anything is measured)."""
    if isinstance(run_dirs, (str, os.PathLike)):
        run_dirs = [run_dirs]
    if not run_dirs:
        raise ConfigError("give at least one run folder")
    runs = [Run.open(path) for path in run_dirs]
    seen: dict[Path, Run] = {}
    for run in runs:
        key = run.path.resolve()
        if key in seen:
            raise ConfigError(f"run {run.path} is given twice")
        seen[key] = run
    for run in runs:
        run.check_result_writable(EnergyResult.result_name, overwrite)
    return runs


def _check_accepts(model, run: Run, images) -> None:
    """One image through the model: a model made for other images fails here, with its name,
    rather than half-way through the measurement."""
    import torch

    device = model_device(model)
    try:
        with torch.no_grad():
            model(images[:1].to(device))
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{run.path}: the model does not accept images of shape {tuple(images.shape[1:])} "
                        f"({first})") from None


def energy_for_runs(run_dirs: Sequence[str | os.PathLike], config: EnergyConfig | None = None,
                    overwrite: bool = False, progress: Progress | None = None) -> list[EnergyResult]:
    """Measure every run on the first ``config.subset`` test images of its dataset (all must
    share one dataset) and write ``results/energy.json`` into each: its figures and the
    comparison with the others. Returns the stored results, in the order of ``run_dirs``.

    Before anything is measured: every run is opened, every existing result is refused unless
    ``overwrite``, the dataset is loaded and every model is checked to accept its images. The
    models run on ``config.execution``'s device; the results record it (``execution``). One
    process: refused under ``torchrun``.
    """
    config = EnergyConfig() if config is None else config
    if not isinstance(config, EnergyConfig):
        raise ConfigError(f"config must be an EnergyConfig, got {type(config).__name__}")
    refuse_torchrun("energy", "its measurements are not shared between processes")
    progress = default_progress(progress)
    runs = _open_runs(run_dirs, overwrite)
    datasets = {run.name: _dataset_of(run) for run in runs}
    if len(set(datasets.values())) > 1:
        raise ConfigError(f"runs are on different datasets ({datasets}); compare models on the same task")
    dataset_name = next(iter(datasets.values()))
    data_dir = config.data_dir or next((run.config.get("data_dir") for run in runs if run.config.get("data_dir")), None)
    data = _load_test(dataset_name, data_dir)
    images, labels = data.images, data.labels
    if config.subset:
        images, labels = images[:config.subset], labels[:config.subset]
    precision = config.energy_precision

    measurements: list[EnergyMeasurement] = []
    with Execution(config.execution) as ex:
        for run in runs:
            _check_accepts(run.load_model(map_location=ex.device), run, images)
        with progress.task("energy", total=len(runs), unit="runs") as task:
            for run in runs:
                model = run.load_model(map_location=ex.device)
                torch.manual_seed(config.seed)  # a noisy model's draws: the same figures on every call
                raw = measure(model, images, labels, batch_size=config.batch_size, precision=precision,
                              progress=progress)
                raw.update(run=run.name, model=run.model_spec.get("name"), dataset=dataset_name,
                           model_kwargs=run.model_spec.get("kwargs", {}))
                measurement = EnergyMeasurement.from_dict(raw)
                measurements.append(measurement)
                progress.message(f"== {run.name} ({measurement.model}, {dataset_name}, {len(images)} test images)")
                progress.message(format_energy(measurement))
                task.update(1, run=run.name)
        execution = ex.describe()

    rows = [EnergyComparisonRow.of(m, str(run.path.resolve())) for m, run in zip(measurements, runs)]
    measurement_id = uuid.uuid4().hex
    results = [EnergyResult(dataset=dataset_name, precision=precision, n_samples=len(images), this=m,
                            comparison=rows, assumptions=assumptions(precision), execution=execution,
                            seed=config.seed, measurement_id=measurement_id, path=str(run.path.resolve()))
               for m, run in zip(measurements, runs)]
    conflicts = []
    for run, result in zip(runs, results):
        try:
            result.save(run)
        except StorageError as exc:  # another job wrote this one meanwhile: the others are still saved
            conflicts.append(str(exc))
            continue
        energy = result.this.energy
        assert energy is not None  # measure() estimates energy whenever it counts synaptic operations, as here
        run.log(f"energy: {len(images)} {dataset_name} test images, {precision} table: effective "
                f"{energy.effective_uj:.4g} uJ, dense {energy.dense_uj:.4g} uJ per sample (on {execution['device']})")
    if conflicts:
        raise StorageError(f"{len(conflicts)} of {len(runs)} results not saved in place: " + "; ".join(conflicts))
    return results
