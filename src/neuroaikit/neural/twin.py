"""Run-folder workflow of the digital twin (what ``neuroaikit twin fit|evaluate|probe`` call).

- :func:`fit_run`: load data, fit the twin, evaluate it on the test tier beside the baselines,
  write a run folder (``<out>.partial`` renamed to ``<out>`` at the end);
- :func:`evaluate_run`: Sensorium metrics of a fitted twin on a data set (default: the one it
  was fitted on), beside the pixel-ridge baseline, the repeat ceilings, and, for synthetic
  data, the simulator's own oracle and the receptive-field recovery;
- :func:`probe_run`: in-silico experiments (tuning, receptive fields, most exciting inputs).

Results go to ``results/twin_fit.json``, ``results/twin_eval.json`` and
``results/twin_probe.json``; the report section :mod:`neuroaikit.report.sections.twin`
draws them.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError, DataError
from ..runs import Run, commit_run, partial_dir
from .baselines import PixelRidge
from .dataset import NeuralDataset
from .fit import TwinFitConfig, fit_twin, predict
from .load import load_neural
from .metrics import evaluate_predictions, explainable_variance, oracle_correlation

log = logging.getLogger(__name__)

SYNTHETIC = "synthetic"


def _load(data: str, region: int | None, synthetic: dict | None = None) -> tuple[NeuralDataset, object | None]:
    """The data set and, for the embedded synthetic cortex, the simulator (ground truth)."""
    if str(data) == SYNTHETIC:
        from .simulate import SyntheticCortex

        opts = dict(synthetic or {})
        sample = {k: opts.pop(k) for k in ("n_train", "n_validation", "n_test_images", "repeats") if k in opts}
        cortex = SyntheticCortex(**opts)
        return cortex.sample(**sample), cortex
    ds = load_neural(data, region=region)
    return ds, None


def _truth_centers(ds: NeuralDataset, data: str, cortex) -> np.ndarray | None:
    if cortex is not None:
        return cortex.rf_centers_
    if "rf_centers" in ds.info:
        return np.asarray(ds.info["rf_centers"])
    file = Path(str(data)) / "meta" / "neurons" / "rf_centers.npy"
    return np.load(file) if file.is_file() else None


def _summary(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k != "per_neuron"}


def fit_run(
    data: str,
    out: str | os.PathLike,
    config: TwinFitConfig | None = None,
    region: int | None = None,
    synthetic: dict | None = None,
    baselines: bool = True,
    echo=print,
) -> Run:
    """Fit a twin on ``data`` and write the run folder ``out``; returns the committed :class:`Run`."""
    cfg = config or TwinFitConfig()
    final = Path(out)
    work = partial_dir(final)
    if work.exists():
        shutil.rmtree(work)
    ds, cortex = _load(data, region, synthetic)
    try:
        return _fit_into(Run(work), final, ds, cortex, data, cfg, region, synthetic, baselines, echo)
    except BaseException:
        # a failed fit leaves nothing behind; a good run already at ``out`` is untouched
        shutil.rmtree(work, ignore_errors=True)
        raise


def _fit_into(run: Run, final: Path, ds: NeuralDataset, cortex, data, cfg: TwinFitConfig, region, synthetic, baselines, echo) -> Run:
    run.log(f"data: {ds!r}")
    run.save_config({"data": str(data), "region": region, "synthetic": synthetic or {}, "fit": cfg.to_dict(), "dataset": ds.summary()})
    echo(f"twin fit: {ds!r}")
    start = time.time()
    model, history = fit_twin(ds, cfg, callback=lambda row: (run.log(str(row)), echo(f"  epoch {row['epoch']}: loss {row['loss']:.4g}, validation r {row['validation_correlation']:.4f}")))
    fit_seconds = time.time() - start
    from ..models import model_spec

    run.save_model(model, model_spec("twin", cfg.model_kwargs(ds)))
    run.save_result("twin_fit", {"history": history[:-1], "best": history[-1], "seconds": fit_seconds})
    evaluation = evaluate_dataset(model, ds, data, cortex=cortex, baselines=baselines, config=cfg, echo=echo)
    run.save_result("twin_eval", evaluation)
    metrics = {"fit_seconds": fit_seconds, "epochs": len(history) - 1, **history[-1]}
    for name, block in evaluation["models"].items():
        for key in ("single_trial_correlation", "correlation_to_average", "fraction_of_oracle", "feve"):
            if key in block:
                metrics[f"{name}_{key}"] = block[key]
    run.save_metrics(metrics)
    commit_run(run.path, final)
    return Run.open(final)


def evaluate_dataset(model, ds: NeuralDataset, data: str = "", cortex=None, baselines: bool = True, config: TwinFitConfig | None = None, tier: str | None = None, echo=print) -> dict:
    """Sensorium metrics on the test tier (or ``tier``) for the twin and the baselines."""
    tier = tier or ("test" if (ds.tiers == "test").any() else None)
    if tier is None:
        raise DataError(f"{ds.name}: no test tier to evaluate on (tiers: {ds.tier_names})")
    if (ds.tiers == "train").any():
        train_std = ds.response_std("train")
    else:
        train_std = None
        log.info("%s: no train tier; metrics computed on unstandardised responses", ds.name)
    test = ds.subset(tier)
    result: dict = {"data": str(data), "dataset": ds.summary(), "tier": tier, "models": {}}
    twin_pred = predict(model, ds, tier)
    scored = {"twin": twin_pred}
    if baselines and (ds.tiers == "train").any():
        ridge = PixelRidge().fit(ds)
        scored["pixel_ridge"] = ridge.predict_tier(ds, tier)
        result["pixel_ridge_alpha"] = ridge.alpha_
        if config is not None and config.core != "linear":
            from dataclasses import replace

            ln_cfg = replace(config, core="linear", cortex_grid=config.cortex_grid)
            echo("twin fit: LN baseline (linear core)")
            ln_model, _ = fit_twin(ds, ln_cfg)
            scored["ln"] = predict(ln_model, ds, tier)
    if cortex is not None:
        scored["simulator_oracle"] = cortex.oracle_predictions(test)
    per_neuron = {}
    for name, pred in scored.items():
        m = evaluate_predictions(test.responses, pred, test.image_ids, train_std)
        result["models"][name] = _summary(m)
        per_neuron[name] = {k: np.asarray(v).tolist() for k, v in m["per_neuron"].items()}
        echo(f"  {name}: " + ", ".join(f"{k} {v:.4f}" for k, v in _summary(m).items() if isinstance(v, float)))
    result["per_neuron"] = per_neuron
    ids, counts = np.unique(test.image_ids, return_counts=True)
    if (counts >= 2).sum() >= 2:
        rep = ds.repeats(tier)
        result["ceiling"] = {
            "oracle_correlation": float(oracle_correlation(rep).mean()),
            "fev": float(explainable_variance(rep).mean()),
            "fraction_fev_reliable": float((explainable_variance(rep) >= 0.15).mean()),
        }
    if cortex is not None:
        twin_avg = result["models"]["twin"].get("correlation_to_average")
        sim_avg = result["models"]["simulator_oracle"].get("correlation_to_average")
        result["synthetic"] = {"twin_over_simulator_correlation_to_average": twin_avg / sim_avg if sim_avg else None}
    truth = _truth_centers(ds, data, cortex)
    if truth is not None:
        result.setdefault("synthetic", {}).update(rf_recovery(model, ds, truth, tier))
        echo(f"  receptive-field recovery: {result['synthetic']['rf_within_2px_reliable']:.2%} of reliable neurons within 2 px")
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


def evaluate_run(run_dir: str | os.PathLike, data: str | None = None, region: int | None = None, baselines: bool = True, echo=print) -> dict:
    """Evaluate a fitted twin (default: on the data it was fitted on) and save ``results/twin_eval.json``."""
    run = Run.open(run_dir)
    cfg = run.config
    model = run.load_model()
    data = data or cfg.get("data")
    if not data:
        raise ConfigError(f"{run.path}: no data recorded in config.json; pass DATA")
    ds, cortex = _load(data, region if region is not None else cfg.get("region"), cfg.get("synthetic"))
    if ds.n_neurons != model.response_std().numel():
        raise DataError(f"{data}: {ds.n_neurons} neurons, the twin in {run.path} predicts {model.response_std().numel()}")
    # the LN baseline is refitted only by ``fit``; evaluate scores the pixel ridge beside the twin
    result = evaluate_dataset(model, ds, data, cortex=cortex, baselines=baselines, config=None, echo=echo)
    fit_result = run.result("twin_eval") or {}
    if "ln" in fit_result.get("models", {}) and str(fit_result.get("data")) == str(data):
        result["models"].setdefault("ln", fit_result["models"]["ln"])
    run.save_result("twin_eval", result)
    return result


def probe_run(run_dir: str | os.PathLike, n_neurons: int = 8, mei_steps: int = 100, noise_images: int = 2000, echo=print) -> dict:
    """Tuning curves, RF maps (gradient and reverse correlation) and MEIs of the most
    reliable neurons (by validation correlation if known, else the first ``n_neurons``);
    saves ``results/twin_probe.json``."""
    from .insilico import gradient_maps, most_exciting_inputs, reverse_correlation, rf_centers, tuning_curves

    run = Run.open(run_dir)
    model = run.load_model()
    shape = tuple(model.image_shape[1:])
    n_total = model.response_std().numel()
    evaluation = run.result("twin_eval") or {}
    per = evaluation.get("per_neuron", {}).get("twin", {}).get("correlation_to_average")
    chosen = np.argsort(-np.asarray(per))[:n_neurons] if per else np.arange(min(n_neurons, n_total))
    echo(f"twin probe: neurons {chosen.tolist()}")
    torch.manual_seed(0)
    tuning = tuning_curves(model, shape)
    grad = gradient_maps(model, shape, chosen)
    sta = reverse_correlation(model, shape, noise_images, chosen)
    meis, act = most_exciting_inputs(model, shape, chosen, steps=mei_steps)
    result = {
        "neurons": chosen.tolist(),
        "image_shape": list(shape),
        "tuning": {
            "orientations": tuning["orientations"].tolist(),
            "spatial_frequencies": tuning["spatial_frequencies"].tolist(),
            "responses": tuning["responses"][:, :, chosen].tolist(),
            "osi_all": tuning["osi"].tolist(),
            "preferred_orientation_all": tuning["preferred_orientation"].tolist(),
            "preferred_sf_all": tuning["preferred_sf"].tolist(),
        },
        "gradient_maps": grad.tolist(),
        "gradient_centers": rf_centers(grad).tolist(),
        "reverse_correlation_maps": sta.tolist(),
        "reverse_correlation_centers": rf_centers(sta).tolist(),
        "meis": meis.tolist(),
        "mei_activation": act.tolist(),
    }
    run.save_result("twin_probe", result)
    echo(f"  mean OSI {float(np.mean(tuning['osi'])):.3f}; MEI activations {np.round(act, 3).tolist()}")
    return result
