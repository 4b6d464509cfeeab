"""Report sections of the digital twin: fit curve, Sensorium metrics beside baselines and
ceilings, receptive-field recovery, tuning curves, RF maps and most exciting inputs."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...neural.fit import chosen_start
from ...neural.results import TwinEvaluation, TwinFitResult, TwinProbe
from ...results import nan_for_none
from ...runs import Run
from ...insilico.channels import dominant_channel_counts
from .._reading import expect, load_stored
from ..html import Section, number
from . import computed_on

ORDER = 60

METRICS = (
    ("single_trial_correlation", "single-trial r"),
    ("correlation_to_average", "r to average"),
    ("feve", "FEVE (FEV>=0.15)"),
    ("fraction_of_oracle", "fraction of oracle"),
    ("single_trial_over_oracle", "single-trial r / oracle r"),
)


def build(run: Run) -> list[Section]:
    sections = []
    fit = _checked_fit(run, run.result("twin_fit"))
    evaluation = _checked_evaluation(run, run.result("twin_eval"))
    probe = run.result("twin_probe")
    if probe:
        load_stored(run, TwinProbe)
    if fit or evaluation:
        sections.append(_evaluation_section(fit, evaluation))
    if probe:
        sections.append(_probe_section(probe))
    return sections


def _checked_fit(run: Run, fit: Any) -> Any:
    """``results/twin_fit.json`` as stored, once its layout is the one this section reads."""
    if not fit:
        return fit
    load_stored(run, TwinFitResult)
    for i, epoch in enumerate(expect(run, TwinFitResult, fit["history"], list, "history")):
        expect(run, TwinFitResult, epoch, dict, f"history[{i}]")
        for k, start in enumerate(expect(run, TwinFitResult, epoch.get("starts") or [], list, f"history[{i}].starts")):
            expect(run, TwinFitResult, start, dict, f"history[{i}].starts[{k}]")
    expect(run, TwinFitResult, fit["best"], dict, "best")
    for i, member in enumerate(expect(run, TwinFitResult, fit.get("members") or [], list, "members")):
        expect(run, TwinFitResult, member, dict, f"members[{i}]")
    return fit


def _checked_evaluation(run: Run, evaluation: Any) -> Any:
    """``results/twin_eval.json`` as stored, once its layout is the one this section reads."""
    if not evaluation:
        return evaluation
    load_stored(run, TwinEvaluation)
    expect(run, TwinEvaluation, evaluation["dataset"], dict, "dataset")
    for name, block in expect(run, TwinEvaluation, evaluation.get("models") or {}, dict, "models").items():
        expect(run, TwinEvaluation, block, dict, f"models.{name}")
    for key in ("ceiling", "synthetic"):
        expect(run, TwinEvaluation, evaluation.get(key) or {}, dict, key)
    expect(run, TwinEvaluation, evaluation.get("ensemble") or [], list, "ensemble")
    for name, block in expect(run, TwinEvaluation, evaluation.get("per_neuron") or {}, dict, "per_neuron").items():
        expect(run, TwinEvaluation, block, dict, f"per_neuron.{name}")
    return evaluation


#: shown under a table with a negative score: these metrics are not bounded below by 0
NEGATIVE_NOTE = ("A negative value is a real result, not an error: FEVE is negative when the prediction's squared "
                 "error exceeds the trial-to-trial noise by more than the explainable variance (worse than predicting "
                 "the repeat average), and a correlation is negative when predictions move against the responses "
                 "(see the metric definitions, docs/metrics/sensorium.md).")


def _evaluation_section(fit, evaluation) -> Section:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection

    s = Section("Digital twin: prediction of neural responses")
    fitted = computed_on((fit or {}).get("execution"), "Twin fitted")
    if fitted and not evaluation:
        s.paragraph(fitted.strip())
    if evaluation:
        d = evaluation.get("dataset", {})
        s.paragraph(
            f"Data: {d.get('name')} ({d.get('trials')} trials x {d.get('neurons')} neurons, images {d.get('image_shape')}, "
            f"tiers {d.get('tiers')}). Scores on tier '{evaluation.get('tier')}', responses divided by the train-tier std "
            "(Sensorium). Correlations are raw Pearson r (not r^2); the oracle is the jackknife (leave-one-out) repeat ceiling."
            + fitted
        )
        rows = []
        for name, block in evaluation.get("models", {}).items():
            rows.append([name] + [block.get(k, "n/a") for k, _ in METRICS])
        s.table(["model"] + [label for _, label in METRICS], rows)
        if evaluation.get("ensemble"):
            s.paragraph(f"'ensemble': the mean of the predictions of {len(evaluation['ensemble'])} twins, from the runs "
                        + ", ".join(evaluation["ensemble"]) + " ('twin' is this run's alone).")
        if any(isinstance(r[i], (int, float)) and r[i] < 0 for r in rows for i in range(1, len(r))):
            s.paragraph(NEGATIVE_NOTE, css="note")
        ceiling = evaluation.get("ceiling")
        if ceiling:
            s.table(["repeat ceiling", "value"], [[k, v] for k, v in ceiling.items()])
        syn = evaluation.get("synthetic")
        if syn:
            rows = [[k, v] for k, v in syn.items() if not isinstance(v, list)]
            s.table(["synthetic ground truth", "value"], rows)
            if syn.get("rf_centers"):
                # a neuron whose gradient map is empty has no centre: NaN, written as null (float
                # conversion turns null back into NaN)
                c = np.asarray(syn["rf_centers"], dtype=float)
                t = np.asarray(syn["rf_truth"], dtype=float)
                fig, ax = plt.subplots(figsize=(5, 3))
                ax.scatter(t[:, 0], t[:, 1], s=12, label="true centre")
                ax.scatter(c[:, 0], c[:, 1], s=12, marker="x", label="twin (gradient map)")
                # one collection for all the segments: an artist per neuron made the report of a
                # 5,300-neuron recording take seconds, and the legend's "best" place more
                segments = list(np.stack([t[:, :2], c[:, :2]], axis=1))
                ax.add_collection(LineCollection(segments, colors="grey", linewidths=0.5))
                ax.invert_yaxis()
                ax.set_xlabel("x (px)")
                ax.set_ylabel("y (px)")
                ax.legend(fontsize=7, loc="upper right")
                s.figure(fig, "Receptive-field centres: simulator truth vs the twin's gradient maps.")
        per = evaluation.get("per_neuron", {})
        twin = per.get("twin", {})
        if "correlation_to_average" in twin and "oracle_correlation" in twin:
            fig, ax = plt.subplots(figsize=(4, 3.2))
            ax.scatter(twin["oracle_correlation"], twin["single_trial_correlation"], s=6)
            lim = [0, max(1e-3, float(np.nanmax(twin["oracle_correlation"])))]
            ax.plot(lim, lim, "k--", lw=0.8)
            ax.set_xlabel("jackknife oracle r")
            ax.set_ylabel("twin single-trial r")
            s.figure(fig, "Per-neuron single-trial correlation against the repeat ceiling.")
    # strict JSON has no NaN: a correlation that was NaN (a fit predicting constants) reads back as null
    seconds = number(fit.get("seconds", 0), ".0f") if fit else ""
    if fit and len(fit.get("history") or []) == 1:
        only = fit["history"][0]
        s.paragraph(f"One epoch of fitting: validation single-trial r {number(only.get('validation_correlation'))} "
                    f"({seconds} s); an early-stopping curve needs two or more epochs.")
    elif fit and fit.get("history"):
        h = fit["history"]
        fig, ax = plt.subplots(figsize=(5, 3))
        ax.plot(nan_for_none([r.get("epoch") for r in h]), nan_for_none([r.get("validation_correlation") for r in h]),
                marker="o", ms=3)
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation single-trial r")
        best = fit.get("best", {})
        stopped = {"early_stopping": "early stopping ended the fit", "time_limit": "the time limit ended the fit",
                   "max_epochs": "the fit ran its maximum number of epochs"}.get(best.get("stopped_by") or "")
        s.figure(fig, f"Early stopping curve (best epoch {best.get('best_epoch')}, {seconds} s"
                      + (f"; {stopped}" if stopped else "") + ")" + (" of the first twin." if len(fit.get("members") or []) > 1
                                                                     else "."))
    first_epoch: dict[str, Any] = next(iter((fit or {}).get("history") or []), {})
    starts = first_epoch.get("starts") or []
    if len(starts) > 1:
        scores = nan_for_none([start.get("validation_correlation") for start in starts])
        chosen = chosen_start([{**start, "validation_correlation": float(v)} for start, v in zip(starts, scores)])
        s.paragraph(f"The first epoch was trained from {len(starts)} starts (validation r "
                    + ", ".join(number(float(v)) for v in scores)
                    + f"); the fit went on from start {chosen + 1} (seed {starts[chosen].get('seed')}).")
    members = (fit or {}).get("members") or []
    if len(members) > 1:
        kept = sum(bool(m.get("kept")) for m in members)
        # the evaluation scores 'first_member' only for an ensemble: with one twin kept it is 'twin'
        s.paragraph(f"{len(members)} twins fitted, {kept} kept: "
                    + ("the run's model ('twin') predicts the mean of those kept; 'first_member' scores the first "
                       "alone." if kept > 1 else "the run's model ('twin') is the first alone.")
                    + " A member is kept only if the ensemble's validation r does not drop.")
        s.table(["twin", "seed", "epochs", "fitting s", "stopped by", "validation r", "kept", "ensemble validation r"],
                [[i, m.get("seed"), m.get("epochs"), number(m.get("fit_seconds", 0.0), ".0f"), m.get("stopped_by"),
                  m.get("best_validation_correlation"), "yes" if m.get("kept") else "no",
                  m.get("ensemble_validation_correlation") if m.get("kept") else "-"]
                 for i, m in enumerate(members, 1)])
    return s


def _probe_section(probe) -> Section:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = Section("Digital twin: in-silico experiments" + (f" (mouse {probe['session']})" if probe.get("session") else ""))
    neurons = probe["neurons"]
    # a neuron that answers every grating alike has no circular variance: NaN, written as null;
    # probe files written before the key existed held 1 - circular variance under osi_all
    tuning = probe["tuning"]
    osi = nan_for_none(tuning.get("orientation_selectivity_all", tuning["osi_all"]))
    defined = np.isfinite(osi)
    flat = int((~defined).sum())
    s.paragraph(
        "Gratings: mean orientation selectivity (1 - circular variance) "
        + (f"{osi[defined].mean():.3f} over {int(defined.sum())} neurons" if defined.any() else "undefined")
        + (f" ({flat} of {len(osi)} answer every grating alike: no selectivity to measure)" if flat else "")
        + f"; maps below for neurons {neurons} (the most predictable)."
    )
    tun = np.asarray(probe["tuning"]["responses"])  # (ori, sf, n)
    ori = np.degrees(probe["tuning"]["orientations"])
    n = len(neurons)
    fig, axes = plt.subplots(4, n, figsize=(1.7 * n, 6.4), squeeze=False)
    maps = [("gradient_maps", "gradient"), ("reverse_correlation_maps", "reverse corr."), ("meis", "MEI")]
    for j, idx in enumerate(neurons):
        ax = axes[0, j]
        best_sf = tun[:, :, j].max(0).argmax()
        ax.plot(ori, tun[:, best_sf, j])
        ax.set_title(f"n{idx}", fontsize=8)
        ax.tick_params(labelsize=6)
        for r, (key, label) in enumerate(maps, start=1):
            img = np.asarray(probe[key][j])
            lim = np.abs(img - (img.mean() if key == "meis" else 0)).max() or 1
            centre = img.mean() if key == "meis" else 0
            axes[r, j].imshow(img, cmap="gray" if key == "meis" else "RdBu_r", vmin=centre - lim, vmax=centre + lim)
            axes[r, j].set_xticks([])
            axes[r, j].set_yticks([])
            if j == 0:
                axes[r, j].set_ylabel(label, fontsize=8)
    axes[0, 0].set_ylabel("orientation tuning", fontsize=8)
    s.figure(fig, "Row 1: response vs grating orientation (deg) at the preferred spatial frequency; rows 2-4: gradient RF maps, white-noise reverse correlation, most exciting inputs.")
    s.table(["neuron", "MEI activation", "gradient RF centre (x, y)"], [[i, a, str(np.round(np.asarray(c, dtype=float), 1).tolist())] for i, a, c in zip(neurons, probe["mei_activation"], probe["gradient_centers"])])
    if probe.get("colour"):
        _colour_part(s, probe)
    return s


def _colour_part(s: Section, probe) -> None:
    """Which channel drives each neuron of a colour twin, and its colour MEIs, one row per channel."""
    import matplotlib.pyplot as plt

    colour, neurons = probe["colour"], probe["neurons"]
    channels = colour["channels"]
    per_channel, by_none = dominant_channel_counts(colour["dominant_channel_all"], channels)
    text = (f"Colour ({channels} input channels): the maps and MEIs above show every channel the same image. Gratings "
            "shown in one channel at a time, the others at grey: "
            + ", ".join(f"{n} neurons respond most to channel {c}" for c, n in enumerate(per_channel))
            + f", {by_none} to none above grey.")
    index = colour.get("preference_index_all")
    if index is not None:
        values = nan_for_none(index)
        if np.isfinite(values).any():
            text += (f" Preference index (p1 - p0) / (p0 + p1): median {np.nanmedian(values):.2f}, "
                     f"{int((values > 0).sum())} neurons above 0 and {int((values < 0).sum())} below.")
    s.paragraph(text)
    meis = np.asarray(colour["meis"])  # (n, C, H, W)
    fig, axes = plt.subplots(channels, len(neurons), figsize=(1.7 * len(neurons), 1.6 * channels), squeeze=False)
    for j, idx in enumerate(neurons):
        lim = np.abs(meis[j] - meis[j].mean()).max() or 1
        for ch in range(channels):
            ax = axes[ch, j]
            ax.imshow(meis[j, ch], cmap="gray", vmin=meis[j].mean() - lim, vmax=meis[j].mean() + lim)
            ax.set_xticks([])
            ax.set_yticks([])
            if ch == 0:
                ax.set_title(f"n{idx}", fontsize=8)
            if j == 0:
                ax.set_ylabel(f"channel {ch}", fontsize=8)
    s.figure(fig, "Colour most exciting inputs: one row per input channel, on one grey scale per neuron.")
    peaks = np.asarray(colour["peak_over_grey"])  # (C, n)
    energy = np.asarray(colour["mei_channel_energy"])
    s.table(["neuron"] + [f"grating peak over grey, ch {c}" for c in range(channels)]
            + [f"MEI energy share, ch {c}" for c in range(channels)] + ["colour MEI activation"],
            [[idx] + [round(float(v), 4) for v in peaks[:, j]] + [round(float(v), 3) for v in energy[j]]
             + [colour["mei_activation"][j]] for j, idx in enumerate(neurons)])
