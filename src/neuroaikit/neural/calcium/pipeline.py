"""Trace file -> spikes, into a run folder (what ``neuroaikit calcium infer`` does).

Input: a Cascade ``.mat`` file (frame times, dF/F and ground-truth spikes per recording) or an
array file (.npy / .npz / .csv / .txt) of shape (frames,) or (neurons, frames) sampled at
``frame_rate``. ``frame_rate`` means two things, as ``calcium evaluate --rate`` does for .mat
files: for an array file it is the sampling rate of the traces (required); for a .mat file,
which carries its own frame times, the recordings are *resampled* down to it (Cascade-style, see
``neuroaikit.neural.calcium.evaluate.resample_recording``; within 5 % of the native rate they are kept as they
are; a rate above the native one is refused), e.g. to match parameters tuned by ``calcium evaluate --rate 7.5``.

Unusable traces (all NaN, constant, a deconvolution failure) are skipped with a logged note
(``CalciumInference.skipped``); a file with no usable trace is an error.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ...config import (
    BOOL,
    AppliesOnly,
    PATH,
    POSITIVE,
    STRING,
    Config,
    Interval,
)
from ...errors import ConfigError, DataError
from ...execution import ExecutionConfig, refuse_torchrun, resolve_device
from ...progress import Progress, default_progress
from ...results import finite_or_none
from ...runs import Run, RunWriter
from ._jobs import build_report_after_commit, cpu_threads, execution_record
from .dff import delta_f_over_f
from .evaluate import resample_recording
from .inference import DECONVOLUTION_CONSTRAINTS, OasisDeconvolver, SpikeInference
from .metrics import (
    CASCADE_SMOOTHING_S,
    ground_truth_rate,
    noise_level,
    pearson,
)
from .recording import CalciumRecording, _reason, load_traces
from .results import (
    CalciumEvaluation,
    CalciumInference,
    InferenceParams,
    TraceExample,
    TraceSummary,
)

RESULT_NAME = CalciumInference.result_name
ARRAYS_FILE = "spikes.npz"


def tuned_params(run_dir: str | os.PathLike, dataset: str | None = None, indicator: str | None = None) -> dict:
    """Parameters a ``calcium evaluate`` run tuned, for one dataset (name or prefix) or
    indicator; with neither, the run must hold exactly one dataset. Returns keyword arguments
    of :class:`OasisDeconvolver` (tau_decay_s, tau_rise_s, penalty, smoothing_s)."""
    run = Run.open(run_dir)
    result = CalciumEvaluation.load(run)
    if result is None or not result.datasets:
        raise DataError(f"{run_dir} holds no results/{CalciumEvaluation.result_name}.json "
                        f"(run 'neuroaikit calcium evaluate' first)")
    return result.tuned(dataset, indicator, where=f"{run_dir}: ").to_dict()


@dataclass
class InferConfig(Config):
    """What :func:`run_inference` does; every field lands in the run's config.json.

    Args:
        trace_file (str): .mat (Cascade CAttached), .npy, .npz, .csv or .txt.
        frame_rate (float | None): Hz. Array files: their sampling rate (required). .mat files:
            resample the recordings down to this rate (see the module docstring).
        key (str | None): array name inside a .npz file.
        raw (bool): the traces are raw fluorescence: dF/F first (running percentile baseline;
            array files only, a .mat file holds dF/F).
        baseline_window_s (float): dF/F baseline window in seconds (> 0).
        baseline_percentile (float): dF/F baseline percentile in [0, 100].
        tau_decay_s (float | None): indicator decay time (s, > 0); None estimates it per trace.
        tau_rise_s (float): rise time (s, >= 0); > 0 uses AR(2) and needs ``tau_decay_s``.
        ar_order (int): 1 or 2, the AR order estimated when ``tau_decay_s`` is None.
        penalty (str): "l1" or "l0".
        smoothing_s (float): Gaussian sigma (s, > 0) turning spikes into a rate, and of the
            ground-truth rate the inferred one is compared with.
        backend (str): "auto", "oasis" (oasis-deconv package) or "numpy" (AR(1), l1).
        params_from (str | None): a ``calcium evaluate`` run whose tuned parameters replace
            tau_decay_s, tau_rise_s, penalty and smoothing_s.
        params_dataset, params_indicator (str | None): which tuned dataset to take.
        execution (ExecutionConfig): ``threads`` limits the BLAS / OpenMP pools and torch;
            ``device`` is accepted and recorded, but the computation (NumPy / OASIS) always runs
            on the CPU.
    """

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
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)

    _parameter_constraints: ClassVar[dict] = {
        "trace_file": [PATH],
        "frame_rate": [POSITIVE, None],
        "key": [STRING, None],
        "raw": [BOOL],
        "baseline_window_s": [POSITIVE],
        "baseline_percentile": [Interval(float, 0, 100)],
        **DECONVOLUTION_CONSTRAINTS,
        # > 0, unlike the estimator's: it is also the sigma of a ground-truth rate
        "smoothing_s": [POSITIVE],
        "params_from": [PATH, None],
        "params_dataset": [STRING, None],
        "params_indicator": [STRING, None],
    }

    # refused where typed or set in --config (``neuroaikit calcium infer``)
    _applies_only: ClassVar[tuple[AppliesOnly, ...]] = (
        AppliesOnly(("tau_decay_s", "tau_rise_s", "penalty", "smoothing_s"), lambda c: c.params_from is None,
                    "is replaced by the tuned parameters of {params_from}", ("params_from",)),
        AppliesOnly(("baseline_window_s", "baseline_percentile"), lambda c: c.raw,
                    "applies only to raw fluorescence ({raw}): dF/F needs no baseline", ("raw",)),
        AppliesOnly(("ar_order",), lambda c: c.tau_decay_s is None,
                    "applies only where the decay is estimated: {tau_decay_s} fixes it", ("tau_decay_s",)),
    )

    def _check(self) -> None:
        if self.tau_rise_s > 0 and self.tau_decay_s is None and not self.params_from:
            raise ConfigError("tau_rise_s > 0 (AR(2)) needs tau_decay_s (--tau)")
        if self.tau_decay_s is not None and self.tau_rise_s >= self.tau_decay_s:
            raise ConfigError(f"tau_rise_s ({self.tau_rise_s} s) must be shorter than tau_decay_s ({self.tau_decay_s} s)")
        if (self.params_dataset or self.params_indicator) and not self.params_from:
            raise ConfigError("params_dataset / params_indicator choose from a tuned run: give params_from (--params-from RUN_DIR)")
        if self.raw and Path(self.trace_file).suffix.lower() == ".mat":
            raise ConfigError("raw applies to raw-fluorescence array files; a Cascade .mat file holds dF/F already")

    def deconvolver(self) -> OasisDeconvolver:
        """The deconvolver these settings describe (tuned parameters from ``params_from``)."""
        names = ("tau_decay_s", "tau_rise_s", "ar_order", "penalty", "smoothing_s", "backend")
        params: dict[str, Any] = {name: getattr(self, name) for name in names}
        if self.params_from:
            params.update(tuned_params(self.params_from, self.params_dataset, self.params_indicator))
        return OasisDeconvolver(**params)


def prepare_recordings(cfg: InferConfig, skipped: list[str] | None = None) -> list[CalciumRecording]:
    """The recordings ``cfg`` describes, ready to deconvolve: loaded (unusable traces left out,
    with a line in ``skipped``), dF/F computed from raw F (``raw``), and .mat recordings
    resampled to ``frame_rate`` when it is given."""
    is_mat = Path(cfg.trace_file).suffix.lower() == ".mat"
    recordings = load_traces(cfg.trace_file, None if is_mat else cfg.frame_rate, cfg.key, on_bad="skip",
                             skipped=skipped)
    if cfg.raw:
        note = f"dF/F from raw F: running {cfg.baseline_percentile}th percentile over {cfg.baseline_window_s} s"
        converted = []
        for r in recordings:
            try:
                dff = delta_f_over_f(r.dff, r.frame_rate, cfg.baseline_window_s, cfg.baseline_percentile)
            except DataError as exc:
                raise DataError(f"{cfg.trace_file}: {r.name}: {exc}") from None
            converted.append(CalciumRecording(
                r.time, dff, r.spike_times, r.frame_rate, indicator=r.indicator, dataset=r.dataset, name=r.name,
                source=r.source, notes=r.notes + [note], index=r.index,
            ))
        recordings = converted
    if is_mat and cfg.frame_rate is not None:
        recordings = [resample_recording(r, cfg.frame_rate) for r in recordings]
    return recordings


def _summary(rec: CalciumRecording, result: SpikeInference, smoothing_s: float) -> TraceSummary:
    row = TraceSummary(
        trace=rec.name,
        index=rec.index,
        frames=int(rec.dff.size),
        frame_rate_hz=rec.frame_rate,
        noise_level=_finite(noise_level(rec.dff, rec.frame_rate)),
        nan_frames=int((~rec.valid).sum()),
        tau_decay_s=_finite(result.tau_decay_s),
        noise_sd=result.noise_sd,
        baseline=result.baseline,
        active_frames=int((result.spikes > 0).sum()),
        backend=result.backend,
        notes=list(rec.notes),
    )
    if rec.spike_times is not None:
        row.n_true_spikes = rec.n_spikes
        if rec.n_spikes:
            truth = ground_truth_rate(rec.spike_times, rec.time, smoothing_s)
            row.r_ground_truth = _finite(pearson(result.rate, truth, rec.valid))
    return row


def _finite(value) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None


def _mean(values) -> float | None:
    finite = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(finite)) if finite else None


def infer_recordings(
    recordings: list[CalciumRecording],
    deconvolver: OasisDeconvolver,
    smoothing_s: float,
    progress: Progress | None = None,
    skipped: list[str] | None = None,
) -> tuple[list[TraceSummary], dict[str, np.ndarray], TraceExample | None]:
    """Deconvolve each recording: per-trace summaries (with r when ground truth is known),
    the arrays (``time_i``, ``dff_i``, ``spikes_i``, ``rate_i``, ``denoised_i`` with i the
    trace's index in its file) and an example window of the first trace. A trace that cannot
    be deconvolved (constant, OASIS failure) is skipped with a note in ``skipped``."""
    progress = default_progress(progress)
    rows: list[TraceSummary] = []
    arrays: dict[str, np.ndarray] = {}
    example = None
    with progress.task("calcium infer", total=len(recordings), unit="traces") as task:
        for rec in recordings:
            try:
                result = deconvolver.infer(rec)
            except DataError as exc:
                line = f"{rec.name}: skipped ({_reason(exc, rec.name)})"
                progress.message(line)
                if skipped is not None:
                    skipped.append(line)
                task.update(1)
                continue
            rows.append(_summary(rec, result, smoothing_s))
            i = rec.index
            arrays.update({f"time_{i}": rec.time, f"dff_{i}": rec.dff, f"spikes_{i}": result.spikes,
                           f"rate_{i}": result.rate, f"denoised_{i}": result.denoised})
            if example is None:
                example = _example(rec, result.rate)
            task.update(1)
    return rows, arrays, example


def _example(rec: CalciumRecording, rate: np.ndarray, window_s: float = 30.0, max_points: int = 900) -> TraceExample:
    n = min(rec.dff.size, int(round(window_s * rec.frame_rate)))
    step = max(1, n // max_points)
    sl = slice(0, n)
    spikes = None
    if rec.spike_times is not None:
        t0, t1 = rec.time[0], rec.time[n - 1]
        spikes = rec.spike_times[(rec.spike_times >= t0) & (rec.spike_times <= t1)].tolist()
    return TraceExample(name=rec.name, dataset=rec.dataset, time=rec.time[sl][::step].tolist(),
                        dff=finite_or_none(rec.dff[sl][::step]), inferred_rate=finite_or_none(rate[sl][::step]),
                        spike_times=spikes)


def run_inference(
    cfg: InferConfig,
    out: str | os.PathLike,
    *,
    overwrite: bool = False,
    progress: Progress | None = None,
    report: bool = True,
) -> Run:
    """Infer spikes for every trace of ``cfg.trace_file`` into a new run folder ``out``:
    ``results/calcium_inference.json`` (:class:`CalciumInference`), ``spikes.npz`` (time_i,
    dff_i, spikes_i, rate_i, denoised_i for the trace of index i in the file), metrics.json,
    config.json, log.txt, report.html.

    The trace file, the options, the ``params_from`` run and ``out`` (not a finished run unless
    ``overwrite``) are checked before anything is created; the report is built after the run
    is committed, and a report failure is logged without losing the results.

    One process: refused under ``torchrun``, where every rank would write the same run folder.
    """
    refuse_torchrun("calcium infer", "its traces are not shared between processes")
    resolve_device(cfg.execution.device)  # one that is not there is refused, as elsewhere (the work stays on the CPU)
    progress = default_progress(progress)
    # cheap checks first (options, the tuned run, the output folder), then the traces; all of
    # them before anything is created
    deconvolver = cfg.deconvolver()
    backend = deconvolver.resolve_backend()
    writer = RunWriter(out, cfg, overwrite=overwrite, progress=progress)
    skipped: list[str] = []
    recordings = prepare_recordings(cfg, skipped)
    is_mat = Path(cfg.trace_file).suffix.lower() == ".mat"
    with writer:
        for line in skipped:
            progress.message(line)
        if is_mat and cfg.frame_rate is not None:
            progress.message(f"{cfg.trace_file}: recordings resampled to {cfg.frame_rate:g} Hz (--rate)")
        with cpu_threads(cfg.execution):
            execution = execution_record(cfg.execution)
            rows, arrays, example = infer_recordings(recordings, deconvolver, cfg.smoothing_s, progress, skipped)
        if not rows:
            shown = "; ".join(skipped[:5]) + (f"; and {len(skipped) - 5} more" if len(skipped) > 5 else "")
            raise DataError(f"{cfg.trace_file}: no trace could be deconvolved ({shown})")

        def write_arrays(path: Path) -> None:
            with open(path, "wb") as fh:
                np.savez_compressed(fh, **arrays)  # type: ignore[arg-type]  # mypy matches **arrays to allow_pickle

        writer.run.save_array_file(ARRAYS_FILE, write_arrays)
        result = CalciumInference(
            trace_file=str(cfg.trace_file),
            params=InferenceParams(**deconvolver.get_params()),
            smoothing_s=cfg.smoothing_s,
            traces=rows,
            example=example,
            arrays=ARRAYS_FILE,
            backend=backend,
            skipped=skipped,
            resampled_to_hz=cfg.frame_rate if is_mat else None,
        )
        result.save(writer.run)
        metrics: dict[str, Any] = {
            "n_traces": len(rows),
            "n_skipped": len(skipped),
            "mean_noise_level": _mean([r.noise_level for r in rows]),
            "backend": backend,
        }
        if result.mean_r_ground_truth is not None:
            metrics["mean_r_ground_truth"] = result.mean_r_ground_truth
        writer.run.save_metrics({**metrics, "execution": execution})
        for row in rows:
            tau = "n/a" if row.tau_decay_s is None else f"{row.tau_decay_s:.3g} s"
            noise = "n/a" if row.noise_level is None else f"{row.noise_level:.2f}"
            writer.run.log(f"{row.trace}: {row.frames} frames, tau {tau}, noise level {noise}")
        writer.run.log(f"calcium infer: {len(rows)} trace(s) deconvolved with {result.method}"
                       + (f", {len(skipped)} skipped" if skipped else ""))
        run = writer.commit()
    if report:
        build_report_after_commit(run, progress)
    return run
