"""Report sections for calcium -> spikes runs (``neuroaikit calcium infer|evaluate``); they
read the typed results :class:`~neuroaikit.neural.calcium.CalciumEvaluation` and
:class:`~neuroaikit.neural.calcium.CalciumInference`."""

from __future__ import annotations

from typing import cast

import numpy as np

from ...neural.calcium.results import CalciumEvaluation, CalciumInference, TraceExample
from ...results import nan_for_none
from ...runs import Run
from ..html import Section
from .._reading import load_stored

ORDER = 60


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _peak(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.max()) if finite.size and finite.max() > 0 else 1.0


def _trace_figure(examples: list[TraceExample], with_truth: bool):
    plt = _plt()
    fig, axes = plt.subplots(len(examples), 1, figsize=(9, 2.6 * len(examples)), squeeze=False)
    for ax, ex in zip(axes[:, 0], examples):
        t = nan_for_none(ex.time)
        dff = nan_for_none(ex.dff)
        ax.plot(t, dff, color="0.55", lw=0.8, label="dF/F")
        ax.set_ylabel("dF/F")
        twin = ax.twinx()
        inferred = nan_for_none(ex.inferred_rate)
        if with_truth and ex.true_rate is not None:
            truth = nan_for_none(ex.true_rate)
            twin.plot(t, truth, color="tab:orange", lw=1.2, label="true rate (spikes/s)")
            twin.plot(t, inferred / _peak(inferred) * _peak(truth), color="k", lw=1.0, label="inferred rate (scaled)")
            twin.set_ylabel("spikes/s")
        else:
            twin.plot(t, inferred, color="k", lw=1.0, label="inferred rate (a.u.)")
        spikes = nan_for_none(ex.spike_times)
        if spikes.size:
            low = np.nanmin(dff)
            ax.plot(spikes, np.full(spikes.size, low), "|", color="tab:red", ms=8, label="true spikes")
        ax.set_title(f"{ex.dataset} {ex.name}".strip(), fontsize=9)
        lines = ax.get_legend_handles_labels()
        lines2 = twin.get_legend_handles_labels()
        ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel("time (s)")
    fig.tight_layout()
    return fig


def _evaluation(result: CalciumEvaluation) -> list[Section]:
    plt = _plt()
    protocol = result.protocol
    summary = Section("Spike inference: held-out correlation per dataset")
    summary.paragraph(
        f"Method: {protocol.method}. Split: {protocol.split}. Score: {protocol.score}, ground truth smoothed "
        f"with a Gaussian of sigma {protocol.smoothing_s} s. Frame rate: "
        f"{'native' if not protocol.rate_hz else f'{protocol.rate_hz} Hz (resampled)'}; noise: "
        f"{'native' if not protocol.noise_level else f'matched to level {protocol.noise_level}'}."
    )
    rows = []
    for s in result.datasets:
        rows.append(
            [
                s.dataset,
                s.indicator,
                round(s.frame_rate_hz, 2),
                f"{s.n_tune_recordings} / {s.n_test_recordings}",
                s.tuned_params.describe(),
                s.tune_mean_r,
                s.test_mean_r,
                s.test_median_r,
                s.test_mean_r_untuned,
                s.test_mean_r_chance,
                s.test_mean_noise_level,
            ]
        )
    summary.table(
        [
            "dataset",
            "indicator",
            "frame rate (Hz)",
            "recordings tune / held out",
            "tuned parameters",
            "tune mean r",
            "held-out mean r",
            "held-out median r",
            "held-out r, untuned OASIS",
            "held-out r, shifted truth (chance)",
            "noise level (% Hz^-1/2)",
        ],
        rows,
    )
    if result.skipped:
        summary.paragraph("Left out: " + "; ".join(result.skipped) + ".", css="note")
    ref = result.cascade_reference
    if ref is not None:
        # Only the protocol settings checked against Cascade's code and captions are shown:
        # no figure of the paper could be re-checked, so none is printed as a comparison.
        if ref.note:
            summary.paragraph(f"Cascade paper, for context: {ref.note}", css="note")
        if ref.settings_verified:
            summary.paragraph(f"Settings checked against Cascade's code: {ref.settings_verified}.", css="note")

    recs = result.recordings
    if recs:
        datasets = [s.dataset for s in result.datasets]
        fig, ax = plt.subplots(figsize=(7, 3.6))
        for i, name in enumerate(datasets):
            for split, marker, color in (("tune", "o", "0.6"), ("test", "s", "tab:blue")):
                r = [row.r for row in recs if row.dataset == name and row.split == split and row.r is not None]
                jitter = np.linspace(-0.15, 0.15, max(len(r), 1))[: len(r)] + (0.2 if split == "test" else -0.2)
                ax.plot(i + jitter, r, marker, color=color, ms=4, ls="none", label=split if i == 0 else None)
        ax.set_xticks(range(len(datasets)))
        ax.set_xticklabels(datasets, fontsize=8)
        ax.set_ylabel("correlation with true rate")
        ax.set_ylim(-0.1, 1.0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        summary.figure(fig, "Per-recording correlation (grey: tuning files, blue: held-out files)")

    tables = result.tuning_tables
    if tables:
        fig, axes = plt.subplots(1, len(tables), figsize=(3.6 * len(tables), 3.2), squeeze=False)
        for ax, (name, table) in zip(axes[0], tables.items()):
            for smoothing in sorted({row.smoothing_s for row in table}):
                points = [r for r in table if r.smoothing_s == smoothing and not r.tau_rise_s
                          and r.tau_decay_s is not None and r.mean_r is not None]
                points.sort(key=lambda r: cast(float, r.tau_decay_s))
                ax.plot([r.tau_decay_s for r in points], [r.mean_r for r in points], "o-", ms=3, label=f"{smoothing} s")
            ax.set_xscale("log")
            ax.set_xticks([0.2, 0.5, 1, 2, 3])
            ax.set_xticklabels(["0.2", "0.5", "1", "2", "3"])
            ax.minorticks_off()
            ax.set_title(name, fontsize=9)
            ax.set_xlabel("decay time tau (s)")
            ax.grid(alpha=0.3)
        axes[0, 0].set_ylabel("mean r, tuning files")
        axes[0, 0].legend(title="output sigma", fontsize=7, title_fontsize=7)
        fig.tight_layout()
        summary.figure(fig, "Tuning (AR(1), tuning files only): mean correlation against the decay time, per output smoothing")

    if result.examples:
        traces = Section("Spike inference: example held-out recordings")
        traces.paragraph(
            "30 s windows (the ones with most spikes) of the first held-out recording of each dataset: dF/F, "
            "true spikes, ground-truth rate and the inferred rate (scaled to the same peak; the correlation is "
            "scale-free)."
        )
        traces.figure(_trace_figure(result.examples, with_truth=True), "dF/F, true and inferred spike rates")
        return [summary, traces]
    return [summary]


def _inference(result: CalciumInference) -> list[Section]:
    section = Section("Spike inference: traces")
    section.paragraph(
        f"{result.method} on {result.trace_file}; parameters: {result.params.describe()}"
        f"{', AR order ' + str(result.params.ar_order) if result.params.tau_decay_s is None else ''}. "
        f"Arrays (time, dF/F, spikes, rate, denoised calcium per trace) are in {result.arrays}."
        + (f" Recordings resampled to {result.resampled_to_hz:g} Hz." if result.resampled_to_hz else "")
    )
    if result.skipped:
        section.paragraph("Skipped: " + "; ".join(result.skipped) + ".", css="note")
    has_truth = result.has_ground_truth
    headers = ["trace", "frames", "frame rate (Hz)", "noise level", "NaN frames", "decay tau (s)", "active frames"]
    if has_truth:
        headers += ["true spikes (imaged time)", "r with true rate"]
    rows = []
    for r in result.traces:
        row = [r.trace, r.frames, round(r.frame_rate_hz, 3), r.noise_level, r.nan_frames, r.tau_decay_s,
               r.active_frames]
        if has_truth:
            row += [r.n_true_spikes, r.r_ground_truth]
        rows.append(row)
    section.table(headers, rows)
    if result.example is not None:
        section.figure(_trace_figure([result.example], with_truth=False), "First trace: dF/F and inferred rate")
    return [section]


def build(run: Run) -> list[Section]:
    sections: list[Section] = []
    evaluation = load_stored(run, CalciumEvaluation)
    if evaluation is not None and evaluation.datasets:
        sections += _evaluation(evaluation)
    inference = load_stored(run, CalciumInference)
    if inference is not None and inference.traces:
        sections += _inference(inference)
    return sections
