"""Run-folder workflows of the digital twin (what ``neuroaikit twin fit|evaluate|probe`` call).

- :func:`fit_run`: load data, fit the twin (resumable: a checkpoint after every epoch),
  evaluate it on the test tier beside the baselines, commit the run folder;
- :func:`evaluate_run`: Sensorium metrics of a fitted twin on a data set (default: the one it
  was fitted on), beside the pixel-ridge baseline, the repeat ceilings, and, for synthetic
  data, the simulator's own oracle and the receptive-field recovery;
- :func:`probe_run`: in-silico experiments (tuning, receptive fields, most exciting inputs).

Every input is validated before anything is written; the run lifecycle is
:class:`~neuroaikit.runs.RunWriter`'s. Results go to ``results/twin_fit.json``,
``results/twin_eval.json`` and ``results/twin_probe.json`` as the typed results of
:mod:`neuroaikit.neural.results`.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from ..config import BOOL, Config, InstanceOf, Options, PATH
from ..errors import ConfigError, DataError
from ..execution import Execution, ExecutionConfig
from ..models import model_spec
from ..progress import Progress, default_progress
from ..runs import Run, RunWriter
from .baselines import PixelRidge
from .dataset import NeuralDataset
from .fit import TwinFitConfig, build_twin_for, fit_twin, predict
from .load import load_neural
from .metrics import evaluate_predictions, explainable_variance, oracle_correlation
from .results import RepeatCeiling, TierScores, TwinEvaluation, TwinFitResult, TwinProbe
from .simulate import SyntheticDataConfig

log = logging.getLogger(__name__)

SYNTHETIC = "synthetic"


@dataclass
class TwinFitJob(Config):
    """A ``twin fit`` job: which data, how to fit, whether to fit the baselines too.

    Args:
        data: a FileTree folder or ``.zip``, an ``.nwb`` or ``.npz`` file, or ``"synthetic"``.
        region: the Antolik imaging region (1, 2 or 3).
        synthetic: the simulator and trial counts when ``data`` is ``"synthetic"``.
        fit: the twin and its training (:class:`~neuroaikit.neural.fit.TwinFitConfig`).
        baselines: also fit the pixel ridge and LN baselines for the test-tier comparison.
    """

    data: str = SYNTHETIC
    region: int | None = None
    synthetic: SyntheticDataConfig = field(default_factory=SyntheticDataConfig)
    fit: TwinFitConfig = field(default_factory=TwinFitConfig)
    baselines: bool = True

    _parameter_constraints: ClassVar[dict] = {
        "data": [PATH],
        "region": [Options((1, 2, 3)), None],
        "synthetic": [InstanceOf(SyntheticDataConfig)],
        "fit": [InstanceOf(TwinFitConfig)],
        "baselines": [BOOL],
    }

    def _check(self) -> None:
        self.data = str(self.data)


def load_data(data: str, region: int | None, synthetic: SyntheticDataConfig | dict | None = None
              ) -> tuple[NeuralDataset, object | None]:
    """The data set and, for the embedded synthetic cortex, the simulator (ground truth)."""
    if str(data) == SYNTHETIC:
        cfg = synthetic if isinstance(synthetic, SyntheticDataConfig) else SyntheticDataConfig.from_flat(synthetic)
        return cfg.make()
    return load_neural(data, region=region), None


def _truth_centers(ds: NeuralDataset, data: str, cortex) -> np.ndarray | None:
    if cortex is not None:
        return cortex.rf_centers_
    if "rf_centers" in ds.info:
        return np.asarray(ds.info["rf_centers"])
    file = Path(str(data)) / "meta" / "neurons" / "rf_centers.npy"
    return np.load(file) if file.is_file() else None


def fit_run(job: TwinFitJob, out: str | os.PathLike, *, overwrite: bool = False, resume: bool = False,
            progress: Progress | None = None) -> Run:
    """Fit a twin as ``job`` says and write the run folder ``out``; returns the committed :class:`Run`.

    The output folder, the data and the model are checked before ``out.partial`` is created;
    the fit saves a checkpoint after every epoch (``resume=True`` continues it); a data set
    without a test tier gets its model saved and the evaluation skipped, with a note.
    """
    progress = default_progress(progress)
    with Execution(job.fit.execution) as ex:
        progress.for_rank(ex.rank)
        writer = RunWriter(out, job, overwrite=overwrite, resume=resume, is_main=ex.is_main, progress=progress,
                           execution=ex)
        ds, cortex = load_data(job.data, job.region, job.synthetic)
        _, kwargs = build_twin_for(ds, job.fit)  # the data's problems surface before anything is written
        with writer:
            writer.say(f"twin fit: {ds!r}")
            start = time.time()
            model, history = fit_twin(ds, job.fit, progress=progress, execution=ex,
                                      resume_state=writer.load_checkpoint(), save_state=writer.save_checkpoint)
            if ex.is_main:
                _finish_fit(writer, job, ds, cortex, model, history, kwargs, time.time() - start, ex, progress)
            return writer.commit()


def _finish_fit(writer: RunWriter, job: TwinFitJob, ds, cortex, model, history, kwargs, seconds, ex, progress) -> None:
    run = writer.run
    run.save_model(model, model_spec("twin", kwargs))
    fit_seconds = history[-2]["seconds"] if len(history) > 1 else seconds
    TwinFitResult(history=history[:-1], best=history[-1], seconds=fit_seconds, execution=ex.describe()).save(run)
    metrics = {"fit_seconds": fit_seconds, "epochs": len(history) - 1, **history[-1], "execution": ex.describe()}
    if (ds.tiers == "test").any():
        evaluation = evaluate_dataset(model, ds, job.data, cortex=cortex, baselines=job.baselines, config=job.fit,
                                      progress=progress)
        evaluation.save(run)
        for name, block in evaluation.models.items():
            for key in ("single_trial_correlation", "correlation_to_average", "fraction_of_oracle", "feve"):
                value = getattr(block, key)
                if value is not None:
                    metrics[f"{name}_{key}"] = value
    else:
        writer.say(f"{ds.name} has no test tier (tiers: {ds.tier_names}): the twin is saved, the test-tier "
                   f"evaluation is skipped; score it with 'neuroaikit twin evaluate RUN DATA'")
    run.save_metrics(metrics)


def evaluate_dataset(model, ds: NeuralDataset, data: str = "", cortex=None, baselines: bool = True,
                     config: TwinFitConfig | None = None, tier: str | None = None,
                     progress: Progress | None = None) -> TwinEvaluation:
    """Sensorium metrics on the test tier (or ``tier``) for the twin and the baselines."""
    progress = default_progress(progress)
    tier = tier or ("test" if (ds.tiers == "test").any() else None)
    if tier is None:
        raise DataError(f"{ds.name}: no test tier to evaluate on (tiers: {ds.tier_names})")
    if (ds.tiers == "train").any():
        train_std = ds.response_std("train")
    else:
        train_std = None
        log.info("%s: no train tier; metrics computed on unstandardised responses", ds.name)
    test = ds.subset(tier)
    result = TwinEvaluation(data=str(data), dataset=ds.summary(), tier=tier)
    progress.message(f"twin: scoring on the {tier} tier")
    scored = {"twin": predict(model, ds, tier)}
    if baselines and (ds.tiers == "train").any():
        progress.message("twin: pixel ridge baseline")
        ridge = PixelRidge().fit(ds)
        scored["pixel_ridge"] = ridge.predict_tier(ds, tier)
        result.pixel_ridge_alpha = ridge.alpha_
        if config is not None and config.model.core != "linear":
            progress.message("twin: LN baseline (linear core)")
            ln_cfg = config.replace(model=config.model.replace(core="linear"))
            # the baseline is rank 0's own work, even after a data-parallel fit
            with Execution(ln_cfg.execution, join_group=False) as own:
                ln_model, _ = fit_twin(ds, ln_cfg, progress=progress, execution=own, name="LN baseline")
                scored["ln"] = predict(ln_model, ds, tier)
    if cortex is not None:
        scored["simulator_oracle"] = cortex.oracle_predictions(test)
    for name, pred in scored.items():
        m = evaluate_predictions(test.responses, pred, test.image_ids, train_std)
        per = m.pop("per_neuron")
        result.models[name] = TierScores.from_dict(m)
        result.per_neuron[name] = {k: np.asarray(v).tolist() for k, v in per.items()}
        progress.message(f"  {name}: " + ", ".join(f"{k} {v:.4f}" for k, v in m.items() if isinstance(v, float)))
    ids, counts = np.unique(test.image_ids, return_counts=True)
    if (counts >= 2).sum() >= 2:
        rep = ds.repeats(tier)
        fev = explainable_variance(rep)
        result.ceiling = RepeatCeiling(oracle_correlation=float(oracle_correlation(rep).mean()), fev=float(fev.mean()),
                                       fraction_fev_reliable=float((fev >= 0.15).mean()))
    if cortex is not None:
        twin_avg = result.models["twin"].correlation_to_average
        sim_avg = result.models["simulator_oracle"].correlation_to_average
        result.synthetic = {"twin_over_simulator_correlation_to_average":
                            twin_avg / sim_avg if sim_avg and twin_avg is not None else None}
    truth = _truth_centers(ds, data, cortex)
    if truth is not None:
        result.synthetic = {**(result.synthetic or {}), **rf_recovery(model, ds, truth, tier)}
        progress.message(f"  receptive-field recovery: {result.synthetic['rf_within_2px_reliable']:.2%} of reliable "
                         "neurons within 2 px")
    return result


def rf_recovery(model, ds: NeuralDataset, truth: np.ndarray, tier: str = "test", top_fraction: float = 0.5) -> dict:
    """Distance between each neuron's gradient-map RF centre and the true centre (pixels), and the
    fraction within 2 px among the most reliable neurons (top ``top_fraction`` by oracle r)."""
    from .insilico import gradient_maps, rf_centers

    shape = ds.image_shape[1:]
    centres = rf_centers(gradient_maps(model, shape))
    dist = np.linalg.norm(centres - np.asarray(truth)[:, :2], axis=1)
    try:
        oracle = oracle_correlation(ds.repeats(tier))
    except DataError:
        oracle = np.ones(ds.n_neurons)
    reliable = np.argsort(-oracle)[: max(1, int(round(top_fraction * ds.n_neurons)))]
    return {
        "rf_distance_px_median": float(np.median(dist)),
        "rf_within_2px_all": float((dist <= 2).mean()),
        "rf_within_2px_reliable": float((dist[reliable] <= 2).mean()),
        "reliable_fraction_used": top_fraction,
        "rf_centers": centres.tolist(),
        "rf_truth": np.asarray(truth)[:, :2].tolist(),
    }


def _job_of(run: Run) -> TwinFitJob | None:
    try:
        return TwinFitJob.from_dict(run.config, where=str(run.path / "config.json"))
    except ConfigError:
        return None


def evaluate_run(run_dir: str | os.PathLike, data: str | None = None, region: int | None = None,
                 baselines: bool = True, overwrite: bool = False, execution: ExecutionConfig | None = None,
                 progress: Progress | None = None) -> TwinEvaluation:
    """Evaluate a fitted twin (default: on the data it was fitted on) and save ``results/twin_eval.json``
    (an existing one is replaced only with ``overwrite``)."""
    progress = default_progress(progress)
    run = Run.open(run_dir)
    job = _job_of(run)
    with Execution(execution) as ex:
        model = run.load_model(map_location=ex.device)
        data = data or (job.data if job else None)
        if not data:
            raise ConfigError(f"{run.path}: no data recorded in config.json; pass DATA")
        run.check_result_writable(TwinEvaluation.result_name, overwrite)
        previous = TwinEvaluation.load(run)
        same_data = previous is not None and str(previous.data) == str(data)
        ds, cortex = load_data(data, region if region is not None else (job.region if job else None),
                               job.synthetic if job else None)
        if ds.n_neurons != model.response_std().numel():
            raise DataError(f"{data}: {ds.n_neurons} neurons, the twin in {run.path} predicts {model.response_std().numel()}")
        # the LN baseline is refitted only by ``fit``; evaluate scores the pixel ridge beside the twin
        result = evaluate_dataset(model, ds, data, cortex=cortex, baselines=baselines, config=None, progress=progress)
        if previous is not None and same_data and "ln" in previous.models:
            result.models.setdefault("ln", previous.models["ln"])
        result.save(run)
    return result


def probe_run(run_dir: str | os.PathLike, n_neurons: int = 8, mei_steps: int = 100, noise_images: int = 2000,
              overwrite: bool = False, execution: ExecutionConfig | None = None,
              progress: Progress | None = None) -> TwinProbe:
    """Tuning curves, RF maps (gradient and reverse correlation) and MEIs of the most
    reliable neurons (by validation correlation if known, else the first ``n_neurons``);
    saves ``results/twin_probe.json``."""
    from .insilico import gradient_maps, most_exciting_inputs, reverse_correlation, rf_centers, tuning_curves

    for name, value, low in (("neurons", n_neurons, 1), ("mei_steps", mei_steps, 0), ("noise_images", noise_images, 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")
    progress = default_progress(progress)
    run = Run.open(run_dir)
    run.check_result_writable(TwinProbe.result_name, overwrite)
    with Execution(execution) as ex:
        model = run.load_model(map_location=ex.device)
        shape = tuple(model.image_shape[1:])
        n_total = model.response_std().numel()
        evaluation = TwinEvaluation.load(run)
        per = evaluation.per_neuron.get("twin", {}).get("correlation_to_average") if evaluation else None
        chosen = np.argsort(-np.asarray(per))[:n_neurons] if per else np.arange(min(n_neurons, n_total))
        progress.message(f"twin probe: neurons {chosen.tolist()}")
        torch.manual_seed(0)
        with progress.task("twin probe", total=4, unit="experiments") as task:
            tuning = tuning_curves(model, shape)
            task.update()
            grad = gradient_maps(model, shape, chosen)
            task.update()
            sta = reverse_correlation(model, shape, noise_images, chosen)
            task.update()
            meis, act = most_exciting_inputs(model, shape, chosen, steps=mei_steps)
            task.update()
    result = TwinProbe(
        neurons=chosen.tolist(),
        image_shape=list(shape),
        tuning={
            "orientations": tuning["orientations"].tolist(),
            "spatial_frequencies": tuning["spatial_frequencies"].tolist(),
            "responses": tuning["responses"][:, :, chosen].tolist(),
            "osi_all": tuning["osi"].tolist(),
            "preferred_orientation_all": tuning["preferred_orientation"].tolist(),
            "preferred_sf_all": tuning["preferred_sf"].tolist(),
        },
        gradient_maps=grad.tolist(),
        gradient_centers=rf_centers(grad).tolist(),
        reverse_correlation_maps=sta.tolist(),
        reverse_correlation_centers=rf_centers(sta).tolist(),
        meis=meis.tolist(),
        mei_activation=act.tolist(),
    )
    result.save(run)
    progress.message(f"  mean OSI {float(np.mean(tuning['osi'])):.3f}; MEI activations {np.round(act, 3).tolist()}")
    return result
