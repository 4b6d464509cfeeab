"""Report sections for calcium -> spikes runs (``neuroaikit calcium infer|evaluate``)."""

from __future__ import annotations

import numpy as np

from ...runs import Run
from ..html import Section

ORDER = 60


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _trace_figure(examples: list[dict], with_truth: bool):
    plt = _plt()
    fig, axes = plt.subplots(len(examples), 1, figsize=(9, 2.6 * len(examples)), squeeze=False)
    for ax, ex in zip(axes[:, 0], examples):
        t = np.asarray(ex["time"], dtype=float)
        dff = np.asarray([np.nan if v is None else v for v in ex["dff"]], dtype=float)
        ax.plot(t, dff, color="0.55", lw=0.8, label="dF/F")
        ax.set_ylabel("dF/F")
        twin = ax.twinx()
        inferred = np.asarray(ex["inferred_rate"], dtype=float)
        scale = np.nanmax(inferred) if np.nanmax(inferred) > 0 else 1.0
        if with_truth and ex.get("true_rate") is not None:
            truth = np.asarray(ex["true_rate"], dtype=float)
            top = np.nanmax(truth) if np.nanmax(truth) > 0 else 1.0
            twin.plot(t, truth, color="tab:orange", lw=1.2, label="true rate (spikes/s)")
            twin.plot(t, inferred / scale * top, color="k", lw=1.0, label="inferred rate (scaled)")
            twin.set_ylabel("spikes/s")
        else:
            twin.plot(t, inferred, color="k", lw=1.0, label="inferred rate (a.u.)")
        spikes = np.asarray(ex.get("spike_times") or [], dtype=float)
        if spikes.size:
            low = np.nanmin(dff)
            ax.plot(spikes, np.full(spikes.size, low), "|", color="tab:red", ms=8, label="true spikes")
        ax.set_title(f"{ex.get('dataset', '')} {ex['name']}", fontsize=9)
        lines = ax.get_legend_handles_labels()
        lines2 = twin.get_legend_handles_labels()
        ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel("time (s)")
    fig.tight_layout()
    return fig


def _evaluation(result: dict) -> list[Section]:
    plt = _plt()
    protocol = result.get("protocol", {})
    summary = Section("Spike inference: held-out correlation per dataset")
    summary.paragraph(
        f"Method: {protocol.get('method', 'OASIS')}. Split: {protocol.get('split', '')}. Score: "
        f"{protocol.get('score', '')}, ground truth smoothed with a Gaussian of sigma "
        f"{protocol.get('smoothing_s')} s. Frame rate: "
        f"{'native' if not protocol.get('rate_hz') else str(protocol['rate_hz']) + ' Hz (resampled)'}; noise: "
        f"{'native' if not protocol.get('noise_level') else 'matched to level ' + str(protocol['noise_level'])}."
    )
    rows = []
    for s in result["datasets"]:
        p = s["tuned_params"]
        rows.append(
            [
                s["dataset"],
                s["indicator"],
                round(s["frame_rate_hz"], 2),
                f"{s['n_tune_recordings']} / {s['n_test_recordings']}",
                f"tau {p['tau_decay_s'] if p['tau_decay_s'] is not None else 'est.'} s, rise {p['tau_rise_s']} s, "
                f"{p['penalty']}, out sigma {p['smoothing_s']} s",
                s["tune_mean_r"],
                s["test_mean_r"],
                s["test_median_r"],
                s["test_mean_r_untuned"],
                s["test_mean_r_chance"],
                s["test_mean_noise_level"],
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
    ref = result.get("cascade_reference", {})
    if ref:
        summary.paragraph(f"Cascade paper for comparison: {ref.get('note', '')}", css="note")
        summary.paragraph(f"Verified settings: {ref.get('settings_verified', '')}.", css="note")
        summary.paragraph(f"Figures (UNVERIFIED): {ref.get('figures_unverified', '')}.", css="note")

    recs = result.get("recordings", [])
    if recs:
        datasets = [s["dataset"] for s in result["datasets"]]
        fig, ax = plt.subplots(figsize=(7, 3.6))
        for i, name in enumerate(datasets):
            for split, marker, color in (("tune", "o", "0.6"), ("test", "s", "tab:blue")):
                r = [row["r"] for row in recs if row["dataset"] == name and row["split"] == split and row["r"] is not None]
                jitter = np.linspace(-0.15, 0.15, max(len(r), 1))[: len(r)] + (0.2 if split == "test" else -0.2)
                ax.plot(i + jitter, r, marker, color=color, ms=4, ls="none", label=split if i == 0 else None)
        ax.set_xticks(range(len(datasets)))
        ax.set_xticklabels(datasets, fontsize=8)
        ax.set_ylabel("correlation with true rate")
        ax.set_ylim(-0.1, 1.0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        summary.figure(fig, "Per-recording correlation (grey: tuning files, blue: held-out files)")

    tables = result.get("tuning_tables", {})
    if tables:
        fig, axes = plt.subplots(1, len(tables), figsize=(3.6 * len(tables), 3.2), squeeze=False)
        for ax, (name, table) in zip(axes[0], tables.items()):
            for smoothing in sorted({row["smoothing_s"] for row in table}):
                rows_s = [r for r in table if r["smoothing_s"] == smoothing and not r["tau_rise_s"] and r["tau_decay_s"] is not None]
                rows_s.sort(key=lambda r: r["tau_decay_s"])
                ax.plot([r["tau_decay_s"] for r in rows_s], [r["mean_r"] for r in rows_s], "o-", ms=3, label=f"{smoothing} s")
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

    examples = result.get("examples", [])
    if examples:
        traces = Section("Spike inference: example held-out recordings")
        traces.paragraph(
            "30 s windows (the ones with most spikes) of the first held-out recording of each dataset: dF/F, "
            "true spikes, ground-truth rate and the inferred rate (scaled to the same peak; the correlation is "
            "scale-free)."
        )
        traces.figure(_trace_figure(examples, with_truth=True), "dF/F, true and inferred spike rates")
        return [summary, traces]
    return [summary]


def _inference(result: dict) -> list[Section]:
    section = Section("Spike inference: traces")
    params = result.get("params", {})
    section.paragraph(
        f"OASIS on {result.get('trace_file', '')}; parameters {params}. Arrays (time, dF/F, spikes, rate, "
        f"denoised calcium per trace) are in {result.get('arrays', 'spikes.npz')}."
    )
    has_truth = any("r_ground_truth" in r for r in result["traces"])
    headers = ["trace", "frames", "frame rate (Hz)", "noise level", "NaN frames", "decay tau (s)", "active frames"]
    if has_truth:
        headers += ["true spikes", "r with true rate"]
    rows = []
    for r in result["traces"]:
        row = [r["trace"], r["frames"], round(r["frame_rate_hz"], 3), r["noise_level"], r["nan_frames"], r["tau_decay_s"], r["active_frames"]]
        if has_truth:
            row += [r.get("n_true_spikes", ""), r.get("r_ground_truth", "")]
        rows.append(row)
    section.table(headers, rows)
    example = result.get("example")
    if example:
        section.figure(_trace_figure([example], with_truth=False), "First trace: dF/F and inferred rate")
    return [section]


def build(run: Run) -> list[Section]:
    sections: list[Section] = []
    evaluation = run.result("calcium_evaluation")
    if evaluation and evaluation.get("datasets"):
        sections += _evaluation(evaluation)
    inference = run.result("calcium_inference")
    if inference and inference.get("traces"):
        sections += _inference(inference)
    return sections
