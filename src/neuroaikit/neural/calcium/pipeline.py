"""Trace file -> spikes, into a run folder (what ``neuroaikit calcium infer`` does)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import ConfigError, DataError
from .dff import delta_f_over_f
from .evaluate import RESULT_NAME as EVALUATION_RESULT
from .inference import OasisDeconvolver
from .metrics import CASCADE_SMOOTHING_S, finite_list, ground_truth_rate, noise_level, pearson
from .recording import CalciumRecording, load_traces

RESULT_NAME = "calcium_inference"
ARRAYS_FILE = "spikes.npz"


def tuned_params(run_dir: str | os.PathLike, dataset: str | None = None, indicator: str | None = None) -> dict:
    """Parameters a ``calcium evaluate`` run tuned, for one dataset (name or prefix) or
    indicator; with neither, the run must hold exactly one dataset."""
    from ...runs import Run

    result = Run.open(run_dir).result(EVALUATION_RESULT)
    if not result or not result.get("datasets"):
        raise DataError(f"{run_dir} holds no results/{EVALUATION_RESULT}.json (run 'neuroaikit calcium evaluate' first)")
    found = result["datasets"]
    if dataset:
        found = [d for d in found if d["dataset"] == dataset or d["dataset"].split("-")[0] == dataset]
    if indicator:
        found = [d for d in found if d.get("indicator", "").lower() == indicator.lower()]
    if len(found) != 1:
        names = [(d["dataset"], d.get("indicator")) for d in result["datasets"]]
        raise ConfigError(
            f"{run_dir}: {len(found)} tuned datasets match (dataset={dataset}, indicator={indicator}); available {names}"
        )
    return dict(found[0]["tuned_params"])


@dataclass
class InferConfig:
    """What :func:`run_inference` does; every field lands in the run's config.json."""

    trace_file: str
    frame_rate: float | None = None
    key: str | None = None
    raw: bool = False
    baseline_window_s: float = 60.0
    baseline_percentile: float = 8.0
    tau_decay_s: float | None = None
    tau_rise_s: float = 0.0
    ar_order: int = 1
    penalty: str = "l1"
    smoothing_s: float = CASCADE_SMOOTHING_S
    backend: str = "auto"
    params_from: str | None = None
    params_dataset: str | None = None
    params_indicator: str | None = None

    def deconvolver(self) -> OasisDeconvolver:
        names = ("tau_decay_s", "tau_rise_s", "ar_order", "penalty", "smoothing_s", "backend")
        params: dict[str, Any] = {name: getattr(self, name) for name in names}
        if self.params_from:
            params.update(tuned_params(self.params_from, self.params_dataset, self.params_indicator))
        return OasisDeconvolver(**params)


def infer_recordings(recordings: list[CalciumRecording], deconvolver: OasisDeconvolver, smoothing_s: float):
    """Deconvolve each recording; per-trace summaries (with r when ground truth is known) and arrays."""
    rows, arrays = [], {}
    for i, rec in enumerate(recordings):
        result = deconvolver.infer(rec)
        row = {
            "trace": rec.name,
            "frames": int(rec.dff.size),
            "frame_rate_hz": rec.frame_rate,
            "noise_level": noise_level(rec.dff, rec.frame_rate),
            "nan_frames": int((~rec.valid).sum()),
            "tau_decay_s": result.tau_decay_s,
            "noise_sd": result.noise_sd,
            "baseline": result.baseline,
            "active_frames": int((result.spikes > 0).sum()),
            "backend": result.backend,
            "notes": rec.notes,
        }
        if rec.spike_times is not None and rec.spike_times.size:
            truth = ground_truth_rate(rec.spike_times, rec.time, smoothing_s)
            row["n_true_spikes"] = rec.n_spikes
            row["r_ground_truth"] = pearson(result.rate, truth, rec.valid)
        rows.append(row)
        arrays[f"time_{i}"] = rec.time
        arrays[f"dff_{i}"] = rec.dff
        arrays[f"spikes_{i}"] = result.spikes
        arrays[f"rate_{i}"] = result.rate
        arrays[f"denoised_{i}"] = result.denoised
    return rows, arrays


def _example(rec: CalciumRecording, rate: np.ndarray, window_s: float = 30.0, max_points: int = 900) -> dict:
    n = min(rec.dff.size, int(round(window_s * rec.frame_rate)))
    step = max(1, n // max_points)
    sl = slice(0, n)
    out = {"name": rec.name, "time": rec.time[sl][::step], "dff": finite_list(rec.dff[sl][::step]), "inferred_rate": rate[sl][::step]}
    if rec.spike_times is not None:
        t1 = rec.time[n - 1]
        out["spike_times"] = rec.spike_times[rec.spike_times <= t1]
    return out


def run_inference(cfg: InferConfig, out: str | os.PathLike) -> Path:
    """Infer spikes for every trace of ``cfg.trace_file`` into a new run folder ``out``:
    ``results/calcium_inference.json`` (per trace), ``spikes.npz`` (time_i, dff_i, spikes_i,
    rate_i, denoised_i for trace i), metrics.json, config.json, report.html."""
    from ...io import atomic_write, to_jsonable
    from ._rundir import finish_run, start_run

    recordings = load_traces(cfg.trace_file, cfg.frame_rate, cfg.key)
    if cfg.raw:
        recordings = [
            CalciumRecording(
                r.time,
                delta_f_over_f(r.dff, r.frame_rate, cfg.baseline_window_s, cfg.baseline_percentile),
                r.spike_times,
                r.frame_rate,
                indicator=r.indicator,
                dataset=r.dataset,
                name=r.name,
                source=r.source,
                notes=r.notes + [f"dF/F from raw F: running {cfg.baseline_percentile}th percentile over {cfg.baseline_window_s} s"],
            )
            for r in recordings
        ]
    deconvolver = cfg.deconvolver()
    rows, arrays = infer_recordings(recordings, deconvolver, cfg.smoothing_s)
    run = start_run(out)
    work = run.path
    run.save_config({"command": "calcium infer", **to_jsonable(cfg.__dict__), "resolved_params": deconvolver.get_params()})
    def write_arrays(path: Path) -> None:
        with open(path, "wb") as fh:
            np.savez_compressed(fh, **arrays)

    atomic_write(work / ARRAYS_FILE, write_arrays)
    first = deconvolver.infer(recordings[0])
    run.save_result(
        RESULT_NAME,
        {
            "trace_file": str(cfg.trace_file),
            "params": deconvolver.get_params(),
            "smoothing_s": cfg.smoothing_s,
            "traces": rows,
            "example": _example(recordings[0], first.rate),
            "arrays": ARRAYS_FILE,
        },
    )
    scored = [r["r_ground_truth"] for r in rows if "r_ground_truth" in r]
    metrics = {"n_traces": len(rows), "mean_noise_level": float(np.nanmean([r["noise_level"] for r in rows]))}
    if scored:
        metrics["mean_r_ground_truth"] = float(np.nanmean(scored))
    run.save_metrics(metrics)
    for row in rows:
        run.log(f"{row['trace']}: {row['frames']} frames, tau {row['tau_decay_s']:.3g} s, noise level {row['noise_level']:.2f}")
    return finish_run(run, out)
