"""The main job of ``make demo``: what does brain-like noise cost, and what does it buy?

Trains, on the embedded scikit-learn digits (no files needed), a deterministic CNN, CNNs
with Gaussian noise on the input, and CNNs with Gaussian noise after the first hidden
ReLU (rectified, as in Ukita & Ohki 2023), over a range of noise levels; reports clean
test accuracy with one noise draw and with a vote over N draws, and robust accuracy under
an EOT-PGD attack adapted to the noise and to the vote; writes an HTML report.

The models are the trials of a sweep (:mod:`neuroaikit.sweep`): on Ray when it is installed,
else one after the other; every model is a run folder ``OUT/trials/<name>``, and a rerun of an
interrupted demo skips the models already trained.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from .errors import ConfigError, DataError
from .io import read_json
from .progress import Progress, default_progress
from .results import Result
from .runs import Run
from .sweep import (
    SweepSpec,
    check_sweep_folder,
    is_sweep_folder,
    plan_sweep,
    run_sweep,
)
from .sweep.runner import refuse_sweep_under_torchrun
from .sweep.steps import EotPgdResult

HIDDEN_SITE = "relu1"
N_DRAWS = 21
# a quick adaptive white-box check: Linf EOT-PGD on the vote's loss, on the first test digits
ATTACK = {"eps": 0.1, "alpha": 0.01, "steps": 20, "eot": 10, "n_images": 100}
DEMO_NAME = "demo"
FAMILY = {"none": "deterministic", "input": "input noise", HIDDEN_SITE: "hidden noise"}


@dataclass
class DemoRow(Result):
    """One model of the demo: clean accuracy (one draw, vote, noise off) and EOT-PGD accuracy of the vote."""

    model: str
    sigma: float
    run: str
    one_draw: float
    vote: float
    noise_off: float
    robust_vote: float
    train_time_s: float = 0.0


@dataclass
class NoiseDemoResult(Result):
    """``OUT/results/noise_demo.json``: the demo's table and how it was made."""

    result_name: ClassVar[str] = "noise_demo"

    rows: list[DemoRow]
    attack: dict
    dataset: str = "digits"
    hidden_site: str = HIDDEN_SITE
    n_draws: int = N_DRAWS
    backend: str = "serial"
    workers: int | None = None
    time_s: float = 0.0


def demo_spec(sigmas: Sequence[float] = (0.1, 0.25, 0.5, 1.0, 2.0), epochs: int = 20, seed: int = 0) -> SweepSpec:
    """The demo as a sweep: the deterministic CNN and input / hidden noise at each sigma, each
    followed by the quick EOT-PGD check."""
    # the noise ramps up over the first quarter of training: large noise on a freshly
    # initialised network (small activations) otherwise stalls learning at chance
    base = dict(dataset="digits", model="cnn", epochs=epochs, batch_size=64, lr=1e-3, seed=seed,
                eval_rule="vote", eval_draws=N_DRAWS, noise_warmup=epochs / 4)
    trials = [{"name": "deterministic", "noise": {}, "tags": {"site": "none", "sigma": 0.0}}]
    for sigma in sigmas:
        trials.append({"name": f"input-sigma{sigma:g}", "noise": {"input": {"kind": "gaussian", "sigma": sigma}},
                       "tags": {"site": "input", "sigma": float(sigma)}})
        trials.append({"name": f"hidden-sigma{sigma:g}",
                       "noise": {HIDDEN_SITE: {"kind": "gaussian", "sigma": sigma, "rectify": True}},
                       "tags": {"site": HIDDEN_SITE, "sigma": float(sigma)}})
    return SweepSpec.from_dict({
        "job": "train", "name": DEMO_NAME, "base": base, "trials": trials,
        "steps": {"eot-pgd": {**ATTACK, "seed": seed}},
        "summary": {"metrics": ["test_accuracy", "eot_pgd:robust_accuracy", "train_time_s"], "x": "sigma",
                    "plot": False},
    }, where="demo")


def _check_demo_folder(out: Path, overwrite: bool) -> None:
    check_sweep_folder(out, what="demo")
    if not is_sweep_folder(out):
        return
    if read_json(out / "config.json").get("name") != DEMO_NAME:
        raise ConfigError(f"{out} is a sweep folder, not a demo; refusing to write into it (choose another --out)")
    if Run(out).result(NoiseDemoResult.result_name) is not None and not overwrite:
        raise ConfigError(f"{out} is a finished demo; pass --overwrite to replace it, or choose another --out")


def default_backend() -> str:
    """``"ray"`` when Ray is installed, else ``"serial"``."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return "serial"
    return "ray"


def run_demo(
    out: str | os.PathLike = "demo-output",
    sigmas: Sequence[float] = (0.1, 0.25, 0.5, 1.0, 2.0),
    epochs: int = 20,
    seed: int = 0,
    *,
    backend: str | None = None,
    workers: int | None = None,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> Run:
    """Train the demo models into the sweep folder ``out`` and write its table and report.

    ``out`` must be new, empty or an unfinished demo (which continues: trained models are
    skipped); a finished demo is replaced (every model retrained) only with ``overwrite``;
    any other folder is refused. ``backend``: ``"ray"`` or ``"serial"`` (default: Ray when
    installed). Returns the sweep folder as a :class:`Run` (``NoiseDemoResult.load(run)``).
    """
    refuse_sweep_under_torchrun("demo")
    start = time.perf_counter()
    progress = default_progress(progress)
    final = Path(out)
    spec = demo_spec(sigmas, epochs, seed)
    _check_demo_folder(final, overwrite)
    backend = backend or default_backend()
    plan_sweep(spec, final, overwrite=overwrite, rerun=overwrite).raise_conflicts()  # before anything changes
    stale = final / "results" / f"{NoiseDemoResult.result_name}.json"
    if overwrite and stale.exists():
        stale.unlink()  # the demo is being replaced: until it finishes, the folder is an unfinished demo
    summary = run_sweep(spec, final, backend=backend, workers=workers, overwrite=overwrite, rerun=overwrite,
                        progress=progress, build_html=False)
    run = Run(final)
    if summary.failed:
        from .report import build_report

        build_report(final)
        first = summary.failed[0]
        raise ConfigError(f"{len(summary.failed)} demo model(s) failed, e.g. {first.name}: {first.error}")
    result = NoiseDemoResult(rows=[_demo_row(final, row.name, row.tags) for row in summary.rows],
                             attack=dict(ATTACK), backend=summary.backend, workers=summary.workers,
                             time_s=time.perf_counter() - start)
    result.save(run)
    from .report import build_report

    build_report(final)
    return run


def _demo_row(root: Path, name: str, tags: dict) -> DemoRow:
    from .training import TrainingResult

    trial = Run(root / "trials" / name)
    trained = TrainingResult.load(trial)
    attacked = EotPgdResult.load(trial)
    if trained is None or attacked is None:
        raise DataError(f"{trial.path} lacks its metrics.json or results/eot_pgd.json; rerun the demo to complete it")
    acc = trained.test_accuracy
    return DemoRow(model=FAMILY[tags["site"]], sigma=float(tags["sigma"]), run=f"trials/{name}",
                   one_draw=acc["single"], vote=acc[f"vote@{N_DRAWS}"], noise_off=acc["noise_off"],
                   robust_vote=attacked.robust_accuracy, train_time_s=trained.train_time_s)


def format_sweep_table(rows: Sequence[DemoRow]) -> str:
    lines = [f"{'model':<14}{'sigma':>7}{'one draw':>10}{'vote@21':>10}{'noise off':>11}{'EOT-PGD':>10}"]
    for r in rows:
        lines.append(f"{r.model:<14}{r.sigma:>7g}{r.one_draw:>10.3f}{r.vote:>10.3f}{r.noise_off:>11.3f}"
                     f"{r.robust_vote:>10.3f}")
    return "\n".join(lines)
