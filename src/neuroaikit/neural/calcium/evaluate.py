"""Tune OASIS on some ground-truth files, score it on the others (Cascade-style).

Protocol
--------
- Split by **file** (one file = one neuron, possibly several recordings), never by
  recording, so no neuron is both tuned on and scored: the files of each dataset sorted by
  name, even positions (0, 2, 4 ...) tune, odd positions (1, 3, 5 ...) are held out.
- Parameters (decay time or "estimate from trace", rise time / AR order, penalty, and the
  Gaussian smoothing of the output) are chosen per dataset (one indicator each) by the mean
  correlation over the tuning recordings, from a fixed grid.
- Score: :class:`~neuroaikit.neural.calcium.SpikeRateCorrelation` at ``smoothing_s`` (default 0.2 s, as
  Cascade), per held-out recording; the dataset figure is the mean over its held-out
  recordings (median and standard deviation reported too). A flat inferred rate scores 0
  (Cascade's ``np.corrcoef`` would give NaN and drop it from the mean).
- Optional Cascade-style resampling to a common frame rate (``rate_hz``) and noise matching
  (``noise_level``: white noise added until the standardised noise level reaches it;
  recordings already noisier are left as they are).
- Chance level: the same correlation against the ground truth circularly shifted by half
  the recording, reported beside every score.
- Computation: NumPy / OASIS on the CPU; ``execution.threads`` limits the BLAS / OpenMP pools.
"""

from __future__ import annotations

import itertools
import os
import time as _time
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, cast

import numpy as np

from ...config import (
    MAPPING,
    NON_NEGATIVE,
    NON_NEGATIVE_INT,
    PATH,
    POSITIVE,
    POSITIVE_INT,
    Config,
    Options,
    Satisfies,
    check_value,
)
from ...errors import ConfigError, DataError
from ...execution import ExecutionConfig, refuse_torchrun, resolve_device
from ...progress import Progress, default_progress
from ...results import finite_or_none, format_figure
from ...runs import Run, RunWriter
from ._jobs import build_report_after_commit, cpu_threads, execution_record
from .inference import BACKENDS, OasisDeconvolver, backend_label
from .metrics import (
    CASCADE_SMOOTHING_S,
    ground_truth_rate,
    noise_level,
    pearson,
    smooth_rate,
)
from .recording import CalciumRecording, dataset_folders, load_cascade_dataset
from .results import (
    CalciumEvaluation,
    CascadeReference,
    DatasetSummary,
    EvaluationProtocol,
    RecordingScore,
    TraceExample,
    TunedParams,
    TuningPoint,
)

RESULT_NAME = CalciumEvaluation.result_name

GRID_KEYS = ("tau_decay_s", "tau_rise_s", "penalty", "smoothing_s")
DEFAULT_GRID: dict[str, list] = {
    "tau_decay_s": [None, 0.2, 0.3, 0.45, 0.7, 1.0, 1.5, 2.2, 3.3],
    "tau_rise_s": [0.0],
    "penalty": ["l1"],
    "smoothing_s": [0.0, 0.05, 0.1, 0.2, 0.3, 0.45],
}
QUICK_GRID: dict[str, list] = {
    "tau_decay_s": [None, 0.45, 1.0, 2.2],
    "tau_rise_s": [0.0],
    "penalty": ["l1"],
    "smoothing_s": [0.1, 0.2, 0.3],
}
#: Adds AR(2) (50 ms rise): about +0.004 held-out r on DS09 at 60 Hz for several times the cost.
FULL_GRID: dict[str, list] = {**DEFAULT_GRID, "tau_rise_s": [0.0, 0.05]}
GRIDS = {"quick": QUICK_GRID, "default": DEFAULT_GRID, "full": FULL_GRID}
#: What each grid entry accepts (checked value by value).
_GRID_VALUE_CONSTRAINTS: dict[str, list] = {
    "tau_decay_s": [POSITIVE, None],
    "tau_rise_s": [NON_NEGATIVE],
    "penalty": [Options(("l1", "l0"))],
    "smoothing_s": [NON_NEGATIVE],
}

#: Context from the Cascade paper for the report: protocol settings checked against Cascade's
#: code or figure captions. No figure of the paper could be re-checked, so none is quoted.
CASCADE_REFERENCE = CascadeReference(
    note=(
        "Cascade (Rupprecht et al. 2021) compares algorithms at a standardised noise level of 2 % Hz^-1/2 "
        "(Fig. 4b caption), with model-based algorithms (MLSpike, CaImAn/OASIS, Suite2p ...) tuned per dataset "
        "by mean squared error, and its global EXC model tested on datasets it was not trained on. Our default "
        "run uses each recording's native frame rate and noise and a within-dataset file split; use --rate 7.5 "
        "--noise-level 2 for Cascade-like conditions. Our figures are not a head-to-head comparison."
    ),
    settings_verified=(
        "ground truth binned at the frame times and smoothed with a Gaussian of 0.2 s (cascade2p config "
        "template 'smoothing: 0.2', model Global_EXC_7.5Hz_smoothing200ms); score np.corrcoef per neuron; "
        "noise level = median |diff dF/F| x 100 / sqrt(frame rate)"
    ),
)


def _grid_copy(grid: dict) -> dict[str, list]:
    return {k: list(v) for k, v in grid.items()}


@dataclass
class EvaluationConfig(Config):
    """What :func:`evaluate_calcium` does; every field lands in the run's config.json.

    Args:
        data_dir (str): the Cascade ``calcium`` folder, its parent, or one ``DS..`` folder.
        datasets (list[str] | None): dataset names or prefixes (``["DS09"]``); None: all.
        smoothing_s (float): Gaussian sigma (s) of the ground-truth rate, > 0 (Cascade: 0.2).
        rate_hz (float | None): resample every recording to this frame rate (Hz) first
            (Cascade: 7.5); None keeps the native rate. Above a recording's own rate only with
            ``noise_level`` (see ``resample_recording``); a recording that cannot be
            resampled is skipped with a note.
        noise_level (float | None): add white noise up to this standardised noise level
            (% Hz^-1/2, Cascade: 2); None keeps the native noise.
        grid (dict | str): the tuning grid, ``{"tau_decay_s": [...], "tau_rise_s": [...],
            "penalty": [...], "smoothing_s": [...]}`` (decay None = estimate per trace), or a
            preset name ("quick", "default", "full"), expanded on construction.
        backend (str): "auto", "oasis" (oasis-deconv package) or "numpy" (AR(1), l1 only;
            AR(2) and l0 grid points are then left out).
        seed (int): seed of the added noise.
        max_recordings (int | None): at most this many recordings per split and dataset (quick checks).
        execution (ExecutionConfig): ``threads`` limits the BLAS / OpenMP pools and torch;
            ``device`` is accepted and recorded, but the computation (NumPy / OASIS) always runs
            on the CPU.
    """

    data_dir: str
    datasets: list[str] | None = None
    smoothing_s: float = CASCADE_SMOOTHING_S
    rate_hz: float | None = None
    noise_level: float | None = None
    grid: dict[str, list] | str = field(default_factory=lambda: _grid_copy(DEFAULT_GRID))
    backend: str = "auto"
    seed: int = 0
    max_recordings: int | None = None
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)

    _parameter_constraints: ClassVar[dict] = {
        "data_dir": [PATH],
        "datasets": [
            Satisfies(lambda v: isinstance(v, (list, tuple)) and len(v) > 0 and all(isinstance(x, str) and x for x in v),
                      "a non-empty list of dataset names"),
            None,
        ],
        "smoothing_s": [POSITIVE],
        "rate_hz": [POSITIVE, None],
        "noise_level": [POSITIVE, None],
        "grid": [Options(tuple(GRIDS)), MAPPING],
        "backend": [Options(BACKENDS)],
        "seed": [NON_NEGATIVE_INT],
        "max_recordings": [POSITIVE_INT, None],
    }

    def _check(self) -> None:
        if isinstance(self.datasets, tuple):
            self.datasets = list(self.datasets)
        if isinstance(self.grid, str):
            self.grid = _grid_copy(GRIDS[self.grid])
        unknown = sorted(set(self.grid) - set(GRID_KEYS))
        if unknown:
            raise ConfigError(f"grid: unknown key(s) {', '.join(map(str, unknown))}; known: {', '.join(GRID_KEYS)}")
        for key in GRID_KEYS:
            values = self.grid.get(key)
            if not isinstance(values, (list, tuple)) or not values:
                raise ConfigError(f"grid.{key} must be a non-empty list of values, got {values!r}")
            values = [float(v) if isinstance(v, int) and not isinstance(v, bool) and key != "penalty" else v
                      for v in values]
            for i, value in enumerate(values):
                check_value(f"grid.{key}[{i}]", value, _GRID_VALUE_CONSTRAINTS[key])
            self.grid[key] = values


# -- preparing recordings ----------------------------------------------------------------
#: the fewest frames a resampled trace may keep (deconvolution estimates its noise and decay from them)
MIN_RESAMPLED_FRAMES = 10


def resample_recording(rec: CalciumRecording, rate_hz: float, upsample: bool = False) -> CalciumRecording:
    """The recording on a regular grid at ``rate_hz``: low-pass (Gaussian, sigma half the new
    frame interval) when down-sampling, then linear interpolation; a frame is invalid when
    either original frame it is interpolated from (with a non-zero weight) was NaN. Spikes
    are unchanged (they carry their own times).

    Up-sampling is refused unless ``upsample``: interpolated frames carry smoothed, correlated
    noise, so a deconvolution reading the noise from them finds it several times too small and
    infers spurious spikes. An evaluation that adds white noise afterwards (``noise_level``, as
    Cascade does) may up-sample. A rate that leaves fewer than ``MIN_RESAMPLED_FRAMES``
    frames is refused too."""
    from scipy.ndimage import gaussian_filter1d

    if abs(rate_hz - rec.frame_rate) / rec.frame_rate < 0.05:  # as Cascade: < 5 % apart, keep
        return rec
    if rate_hz > rec.frame_rate and not upsample:
        raise DataError(f"{rec.name}: resampling up from {rec.frame_rate:.3g} Hz to {rate_hz:.3g} Hz (--rate) would "
                        f"interpolate frames whose noise is smoothed, and the deconvolution would read it as several "
                        f"times smaller; give a rate at most the recording's (calcium evaluate may resample up "
                        f"with --noise-level, which adds white noise afterwards)")
    # no new frame after the last imaged one: it would hold a held value, and spikes after the
    # recording's end would be scored against it
    n_frames = int(np.floor((rec.time[-1] - rec.time[0]) * rate_hz + 1e-9)) + 1
    if n_frames < MIN_RESAMPLED_FRAMES:
        raise DataError(f"{rec.name}: resampling {rec.time[-1] - rec.time[0]:.3g} s to {rate_hz:.3g} Hz (--rate) leaves "
                        f"{n_frames} frame(s), fewer than {MIN_RESAMPLED_FRAMES}; give a higher rate")
    y = rec.filled_dff()
    if rate_hz < rec.frame_rate:
        y = gaussian_filter1d(y, 0.5 * rec.frame_rate / rate_hz)
    new_time = rec.time[0] + np.arange(n_frames) / rate_hz
    new_dff = np.interp(new_time, rec.time, y)
    left = np.clip(np.searchsorted(rec.time, new_time, side="right") - 1, 0, rec.time.size - 1)
    right = np.minimum(left + 1, rec.time.size - 1)
    # A NaN frame was filled by interpolation, so any new frame that takes weight from it is made up.
    invalid = ~rec.valid[left] | (~rec.valid[right] & (new_time > rec.time[left]))
    new_dff[invalid] = np.nan
    notes = rec.notes + [f"resampled from {rec.frame_rate:.3g} Hz to {rate_hz:.3g} Hz"]
    return replace(rec, time=new_time, dff=new_dff, frame_rate=float(rate_hz), notes=notes)


def match_noise(rec: CalciumRecording, target: float, rng: np.random.Generator) -> CalciumRecording:
    """Add white Gaussian noise until Cascade's standardised noise level reaches ``target``.

    One standard-normal draw z is scaled by an sd found by bisection on the measured level of
    dF/F + sd z, to within 0.1 % of ``target`` (deterministic given ``rng``); noisier recordings
    are kept as they are, with a note in their scores (noise cannot be taken away; an
    up-sampled one keeps its interpolated, no longer white, noise)."""
    nu = noise_level(rec.dff, rec.frame_rate)
    if not np.isfinite(nu):
        return rec
    if nu >= target:
        return replace(rec, notes=rec.notes + [f"noise level {nu:.2f} already at or above the target {target:.2f}: "
                                               f"no noise added"])
    z = rng.standard_normal(rec.dff.shape)

    def level(sd: float) -> float:
        return noise_level(rec.dff + sd * z, rec.frame_rate)

    # Levels add in quadrature only when the trace itself is white noise (median |diff| =
    # 0.6745 sqrt(2) sd); with transients that sd overshoots, so it is the bracket's upper end
    # (doubled while it falls short).
    lo, hi = 0.0, float(np.sqrt(target**2 - nu**2) * np.sqrt(rec.frame_rate) / 100.0 / (0.6745 * np.sqrt(2.0)))
    for _ in range(60):
        if level(hi) >= target:
            break
        lo, hi = hi, 2.0 * hi
    sd, reached = hi, level(hi)
    for _ in range(100):
        if abs(reached - target) <= 1e-3 * target:
            break
        mid = 0.5 * (lo + hi)
        sd, reached = mid, level(mid)
        if reached < target:
            lo = mid
        else:
            hi = mid
    notes = rec.notes + [f"white noise sd {sd:.3g} added: noise level {nu:.2f} -> {reached:.2f}"]
    return replace(rec, dff=rec.dff + sd * z, notes=notes)


def split_files(stems: list[str]) -> dict[str, str]:
    """File stem -> "tune" (even position in name order) or "test" (odd position)."""
    return {stem: ("tune" if i % 2 == 0 else "test") for i, stem in enumerate(sorted(stems))}


# -- scoring ----------------------------------------------------------------------------
@dataclass
class _Prepared:
    rec: CalciumRecording
    truth: np.ndarray
    file: str


def _deconvolvers(grid: dict[str, list], backend: str) -> list[tuple[dict, OasisDeconvolver]]:
    """One deconvolver (output unsmoothed) per valid grid combination; ``backend`` is the one
    that will run ("oasis" or "numpy": the NumPy OASIS does AR(1) with l1 only)."""
    out = []
    for tau, rise, penalty in itertools.product(grid["tau_decay_s"], grid["tau_rise_s"], grid["penalty"]):
        if rise and (tau is None or rise >= tau):
            continue  # AR(2) with a fixed rise needs a (longer) fixed decay
        if backend == "numpy" and (rise or penalty != "l1"):
            continue
        params = {"tau_decay_s": tau, "tau_rise_s": rise, "penalty": penalty}
        out.append((params, OasisDeconvolver(**params, smoothing_s=0.0, backend=backend)))
    if not out:
        raise ConfigError(f"tuning grid {grid} leaves no valid parameter combination for the {backend} backend "
                          f"(AR(2) needs a fixed decay longer than the rise; the numpy backend does AR(1) with l1 only)")
    return out


def tune(
    items: list[_Prepared], grid: dict[str, list], backend: str = "auto", task=None
) -> tuple[TunedParams, list[TuningPoint]]:
    """Best parameters by mean correlation over ``items``; also every grid point's score.
    ``task`` (a progress task) advances by one per deconvolved recording."""
    if backend == "auto":
        backend = OasisDeconvolver(backend=backend).resolve_backend()
    table: list[TuningPoint] = []
    best_r = -np.inf
    for params, deconvolver in _deconvolvers(grid, backend):
        spikes = []
        for item in items:
            spikes.append(deconvolver.infer(item.rec).spikes)
            if task is not None:
                task.update(1)
        for smoothing in grid["smoothing_s"]:
            scores = [
                pearson(smooth_rate(s, item.rec.frame_rate, smoothing), item.truth, item.rec.valid)
                for s, item in zip(spikes, items)
            ]
            mean_r = _nanmean(scores)
            table.append(TuningPoint(**params, smoothing_s=smoothing, mean_r=mean_r))
            if mean_r is not None and mean_r > best_r:
                best_r = mean_r
        if task is not None and np.isfinite(best_r):
            task.update(0, best_r=best_r)
    scored = [row for row in table if row.mean_r is not None]
    if not scored:
        raise ConfigError("no grid point gave a finite correlation on the tuning recordings")
    best = max(scored, key=lambda row: cast(float, row.mean_r))
    return TunedParams(best.tau_decay_s, best.tau_rise_s, best.penalty, best.smoothing_s), table


def _nanmean(values) -> float | None:
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else None


def _nanstat(fn, values) -> float | None:
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    return float(fn(values)) if values.size else None


def _example(item: _Prepared, rate: np.ndarray, window_s: float = 30.0, max_points: int = 900) -> TraceExample:
    """A window of ``window_s`` seconds with the most spikes, thinned to <= max_points."""
    rec = item.rec
    n = min(rec.time.size, int(round(window_s * rec.frame_rate)))
    counts = np.convolve(np.nan_to_num(item.truth), np.ones(n), mode="valid")
    start = int(np.argmax(counts)) if counts.size else 0
    sl = slice(start, start + n)
    step = max(1, n // max_points)
    t0, t1 = rec.time[sl][0], rec.time[sl][-1]
    spikes = rec.spike_times[(rec.spike_times >= t0) & (rec.spike_times <= t1)] if rec.spike_times is not None else []
    return TraceExample(
        name=rec.name,
        dataset=rec.dataset,
        time=rec.time[sl][::step].tolist(),
        dff=finite_or_none(rec.dff[sl][::step]),
        inferred_rate=finite_or_none(rate[sl][::step]),
        true_rate=finite_or_none(item.truth[sl][::step]),
        spike_times=np.asarray(spikes, dtype=float).tolist(),
    )


def validate_evaluation(cfg: EvaluationConfig) -> str:
    """Everything :func:`evaluate_calcium` needs that can be checked without computing: the
    data folder and dataset names, the backend and the grid. Returns the backend that will run."""
    dataset_folders(cfg.data_dir, cfg.datasets)
    backend = OasisDeconvolver(backend=cfg.backend).resolve_backend()
    assert not isinstance(cfg.grid, str)  # EvaluationConfig._check expands a preset name
    _deconvolvers(cfg.grid, backend)
    return backend


def _prepare(folder, cfg: EvaluationConfig, rng: np.random.Generator, skipped: list[str]):
    by_file = load_cascade_dataset(folder, on_bad="skip", skipped=skipped)
    split = split_files(list(by_file))
    prepared: dict[str, list[_Prepared]] = {"tune": [], "test": []}
    empty_files = []
    for stem, recs in sorted(by_file.items()):
        if not recs:
            empty_files.append(stem)
        for rec in recs:
            if cfg.rate_hz is not None:  # up-sampled traces get their white noise back from match_noise
                try:
                    rec = resample_recording(rec, cfg.rate_hz, upsample=cfg.noise_level is not None)
                except DataError as exc:
                    skipped.append(f"{stem}: {exc}")
                    continue
            if cfg.noise_level is not None:
                rec = match_noise(rec, cfg.noise_level, rng)
            truth = ground_truth_rate(rec.spike_times, rec.time, cfg.smoothing_s)
            prepared[split[stem]].append(_Prepared(rec, truth, stem))
    if cfg.max_recordings:
        prepared = {k: v[: cfg.max_recordings] for k, v in prepared.items()}
    return prepared, empty_files


def _evaluate_dataset(folder, prepared, empty_files, cfg: EvaluationConfig, backend: str, progress: Progress):
    """Tune on ``prepared["tune"]``, score both splits; (summary, rows, example, tuning table)."""
    t_start = _time.perf_counter()
    assert not isinstance(cfg.grid, str)  # EvaluationConfig._check expands a preset name
    candidates = len(_deconvolvers(cfg.grid, backend))
    with progress.task(f"{folder.name}: tuning", total=candidates * len(prepared["tune"]), unit="fits") as task:
        params, table = tune(prepared["tune"], cfg.grid, backend, task=task)
    tuned = OasisDeconvolver(**params.to_dict(), backend=backend)
    untuned = OasisDeconvolver(smoothing_s=cfg.smoothing_s, backend=backend)
    scores: dict[str, list[float]] = {"tune": [], "test": [], "untuned_test": [], "chance_test": []}
    rows: list[RecordingScore] = []
    example = None
    total = len(prepared["tune"]) + len(prepared["test"])
    with progress.task(f"{folder.name}: scoring", total=total, unit="recordings") as task:
        for part in ("tune", "test"):
            for i, item in enumerate(prepared[part]):
                result = tuned.infer(item.rec)
                r = pearson(result.rate, item.truth, item.rec.valid)
                shifted = np.roll(item.truth, item.truth.size // 2)
                chance = pearson(result.rate, shifted, item.rec.valid)
                r_untuned = pearson(untuned.infer(item.rec).rate, item.truth, item.rec.valid)
                scores[part].append(r)
                if part == "test":
                    scores["untuned_test"].append(r_untuned)
                    scores["chance_test"].append(chance)
                    if i == 0:
                        example = _example(item, result.rate)
                rows.append(
                    RecordingScore(
                        dataset=folder.name,
                        file=item.file,
                        recording=item.rec.name,
                        split=part,
                        frame_rate_hz=item.rec.frame_rate,
                        duration_s=item.rec.duration_s,
                        n_spikes=item.rec.n_spikes,
                        noise_level=_finite(noise_level(item.rec.dff, item.rec.frame_rate)),
                        nan_frames=int((~item.rec.valid).sum()),
                        fitted_tau_decay_s=_finite(result.tau_decay_s),
                        r=_finite(r),
                        r_untuned=_finite(r_untuned),
                        r_chance=_finite(chance),
                        notes=list(item.rec.notes),
                    )
                )
                task.update(1)
    test = scores["test"]
    summary = DatasetSummary(
        dataset=folder.name,
        indicator=prepared["test"][0].rec.indicator,
        frame_rate_hz=float(np.median([p.rec.frame_rate for p in prepared["test"]])),
        tune_files=sorted({p.file for p in prepared["tune"]}),
        test_files=sorted({p.file for p in prepared["test"]}),
        n_tune_recordings=len(prepared["tune"]),
        n_test_recordings=len(prepared["test"]),
        skipped_files=empty_files,
        tuned_params=params,
        tune_mean_r=_nanmean(scores["tune"]),
        test_mean_r=_nanmean(test),
        test_median_r=_nanstat(np.median, test),
        test_std_r=_nanstat(np.std, test),
        test_mean_r_untuned=_nanmean(scores["untuned_test"]),
        test_mean_r_chance=_nanmean(scores["chance_test"]),
        test_mean_noise_level=_nanmean([noise_level(p.rec.dff, p.rec.frame_rate) for p in prepared["test"]]),
        seconds=_time.perf_counter() - t_start,
    )
    return summary, rows, example, table


def _finite(value) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None


def evaluate_calcium(cfg: EvaluationConfig, progress: Progress | None = None) -> CalciumEvaluation:
    """Tune on the even-position files and score the odd-position files of each dataset.

    Progress: a task over the datasets and, per dataset, one over the tuning grid (one step per
    deconvolved recording) and one over the scored recordings; a line per dataset with its result.
    Returns a :class:`CalciumEvaluation` (per-dataset summaries, per-recording rows, examples,
    tuning tables, protocol).
    """
    progress = default_progress(progress)
    backend = validate_evaluation(cfg)
    rng = np.random.default_rng(cfg.seed)
    folders = dataset_folders(cfg.data_dir, cfg.datasets)
    summaries: list[DatasetSummary] = []
    rows: list[RecordingScore] = []
    examples: list[TraceExample] = []
    tables: dict[str, list[TuningPoint]] = {}
    skipped: list[str] = []
    assert not isinstance(cfg.grid, str)  # EvaluationConfig._check expands a preset name
    if backend == "numpy" and (any(cfg.grid["tau_rise_s"]) or "l0" in cfg.grid["penalty"]):
        progress.message("numpy backend: AR(2) and l0 grid points are left out (it implements AR(1) with l1)")
    with cpu_threads(cfg.execution):
        execution = execution_record(cfg.execution)
        with progress.task("calcium evaluate", total=len(folders), unit="datasets") as datasets_task:
            for folder in folders:
                newly_skipped: list[str] = []
                prepared, empty_files = _prepare(folder, cfg, rng, newly_skipped)
                for line in newly_skipped:
                    progress.message(f"{folder.name}: {line}")
                skipped += [f"{folder.name}: {line}" for line in newly_skipped]
                if not prepared["tune"] or not prepared["test"]:
                    line = f"{folder.name}: needs at least 2 usable files to tune and test; skipped"
                    progress.message(line)
                    skipped.append(line)
                    datasets_task.update(1)
                    continue
                summary, new_rows, example, table = _evaluate_dataset(folder, prepared, empty_files, cfg, backend,
                                                                      progress)
                summaries.append(summary)
                rows += new_rows
                tables[folder.name] = table
                if example is not None:
                    examples.append(example)
                progress.message(
                    f"{folder.name}: tuned {summary.tuned_params.describe()} on {summary.n_tune_recordings} "
                    f"recordings (mean r {format_figure(summary.tune_mean_r, '.3f')}); "
                    f"held-out mean r {format_figure(summary.test_mean_r, '.3f')} "
                    f"over {summary.n_test_recordings} recordings ({summary.seconds:.1f} s)"
                )
                datasets_task.update(1, held_out_r=summary.test_mean_r if summary.test_mean_r is not None else float("nan"))
    if not summaries:
        raise ConfigError(f"no dataset under {cfg.data_dir} had enough usable files to tune and test (2 or more)")
    protocol = EvaluationProtocol(
        split="by file: files sorted by name, even positions tune, odd positions held out",
        smoothing_s=cfg.smoothing_s,
        score="Pearson r between inferred rate and Gaussian-smoothed ground-truth rate, per recording; mean per dataset",
        rate_hz=cfg.rate_hz,
        noise_level=cfg.noise_level,
        method=f"{backend_label(backend)} with noise-constrained sparsity; output smoothed by a tuned Gaussian",
        grid=_grid_copy(cfg.grid),
        backend=backend,
    )
    return CalciumEvaluation(
        protocol=protocol,
        datasets=summaries,
        recordings=rows,
        examples=examples,
        tuning_tables=tables,
        cascade_reference=CASCADE_REFERENCE,
        skipped=skipped,
        execution=execution,
    )


def run_evaluation(
    cfg: EvaluationConfig,
    out: str | os.PathLike,
    *,
    overwrite: bool = False,
    progress: Progress | None = None,
    report: bool = True,
) -> Run:
    """:func:`evaluate_calcium` into a new run folder ``out``: config.json,
    results/calcium_evaluation.json, metrics.json (held-out mean r per dataset), log.txt and
    report.html.

    Everything is checked before anything is created (the data folder, datasets, grid and
    backend; ``out`` must not be a finished run unless ``overwrite``). The job writes into
    ``out.partial`` and renames it at the end, so a failed job never replaces a good run; the
    report is built after that, and a report failure is logged without losing the results.

    One process: refused under ``torchrun``, where every rank would write the same run folder.
    """
    refuse_torchrun("calcium evaluate", "its datasets are not shared between processes")
    resolve_device(cfg.execution.device)  # one that is not there is refused, as elsewhere (the work stays on the CPU)
    progress = default_progress(progress)
    validate_evaluation(cfg)
    writer = RunWriter(out, cfg, overwrite=overwrite, progress=progress)
    with writer:
        result = evaluate_calcium(cfg, progress)
        result.save(writer.run)
        metrics: dict[str, Any] = {f"{s.prefix}_test_mean_r": s.test_mean_r for s in result.datasets}
        writer.run.save_metrics({**metrics, "smoothing_s": cfg.smoothing_s, "backend": result.protocol.backend,
                                 "execution": result.execution})
        run = writer.commit()
    if report:
        build_report_after_commit(run, progress)
    return run
