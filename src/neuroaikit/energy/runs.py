"""Energy accounting of run folders: ``neuroaikit energy RUN_DIR [RUN_DIR ...]``."""

from __future__ import annotations

from typing import Callable, Sequence

from ..errors import ConfigError, DataError
from ..runs import Run
from .measure import format_energy, measure
from .table import assumptions


def _dataset_of(run: Run) -> str:
    name = run.metrics.get("dataset") or run.config.get("dataset")
    if not name:
        raise DataError(f"{run.path}: neither metrics.json nor config.json names the dataset")
    return name


def _load_test(name: str, data_dir: str | None):
    from ..data import load_dataset

    return load_dataset(name, "test", data_dir=data_dir)


def energy_for_runs(run_dirs: Sequence[str], data_dir: str | None = None, subset: int | None = 1000,
                    precision: str = "fp32", batch_size: int = 100,
                    echo: Callable[[str], None] | None = print) -> list[dict]:
    """Measure every run on the first ``subset`` test images of its dataset (all must share one
    dataset), write ``results/energy.json`` into each run (its figures and the comparison), and
    return the comparison rows."""
    if not run_dirs:
        raise ConfigError("give at least one run folder")
    if subset is not None and subset < 1:
        raise ConfigError(f"subset must be >= 1, got {subset}")
    runs = [Run.open(path) for path in run_dirs]
    datasets = {run.name: _dataset_of(run) for run in runs}
    if len(set(datasets.values())) > 1:
        raise ConfigError(f"runs are on different datasets ({datasets}); compare models on the same task")
    dataset_name = next(iter(datasets.values()))
    data = _load_test(dataset_name, data_dir)
    images, labels = data.images, data.labels
    if subset:
        images, labels = images[:subset], labels[:subset]
    rows, results = [], []
    for run in runs:
        model = run.load_model()
        result = measure(model, images, labels, batch_size=batch_size, precision=precision)
        result.update(run=run.name, model=run.model_spec.get("name"), dataset=dataset_name,
                      model_kwargs=run.model_spec.get("kwargs", {}))
        results.append(result)
        ops, energy = result["SynapticOperations"], result["energy"]
        rows.append({
            "run": run.name, "model": result["model"], "T": result["model_kwargs"].get("T"),
            "accuracy": result["accuracy"], "Footprint": result["Footprint"],
            "ActivationSparsity": result["ActivationSparsity"], "Effective_MACs": ops["Effective_MACs"],
            "Effective_ACs": ops["Effective_ACs"], "Dense": ops["Dense"],
            "MembraneUpdates": result["MembraneUpdates"],
            "effective_uJ": energy["effective_joules_per_sample"] * 1e6,
            "dense_uJ": energy["dense_joules_per_sample"] * 1e6,
        })
        if echo:
            echo(f"== {run.name} ({result['model']}, {dataset_name}, {len(images)} test images)")
            echo(format_energy(result))
    for run, result in zip(runs, results):
        run.save_result("energy", {"dataset": dataset_name, "precision": precision, "n_samples": len(images),
                                   "this": result, "comparison": rows, "assumptions": assumptions(precision)})
    return rows
