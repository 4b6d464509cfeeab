"""Report section for ``neuroaikit bmi`` runs; reads :class:`~neuroaikit.bmi.BMIResult`."""

from __future__ import annotations

import numpy as np

from ...bmi.results import BMIResult, DecoderResult
from ...runs import Run
from .._reading import expect, expect_number, json_kind, load_stored, malformed
from ..html import Section, number
from . import computed_on

ORDER = 70


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _confusions(result: BMIResult):
    plt = _plt()
    classes = result.dataset["classes"]
    n = len(result.decoders)
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.0), squeeze=False)
    for ax, r in zip(axes[0], result.decoders):
        m = np.asarray(r.confusion)
        ax.imshow(m, cmap="Blues")
        for (i, j), v in np.ndenumerate(m):
            ax.text(j, i, str(v), ha="center", va="center", fontsize=8)
        ax.set_xticks(range(len(classes)), classes, fontsize=7)
        ax.set_yticks(range(len(classes)), classes, fontsize=7)
        ax.set_title(f"{r.name} ({r.accuracy:.2f})", fontsize=9)
        ax.set_xlabel("predicted")
    axes[0][0].set_ylabel("true")
    fig.tight_layout()
    return fig


def _by_subject(result: BMIResult):
    plt = _plt()
    subjects = sorted({s for r in result.decoders for s in r.per_subject}, key=lambda s: (len(s), s))
    fig, ax = plt.subplots(figsize=(7, 3))
    width = 0.8 / max(len(result.decoders), 1)
    for k, r in enumerate(result.decoders):
        ax.bar(np.arange(len(subjects)) + k * width, [r.per_subject.get(s, np.nan) for s in subjects], width,
               label=r.name)
    ax.axhline(result.chance, color="k", ls="--", lw=0.8, label="chance")
    ax.set_xticks(np.arange(len(subjects)) + 0.4 - width / 2, subjects)
    ax.set_xlabel("subject")
    ax.set_ylabel("accuracy")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _patterns(patterns: dict):
    from ...bmi._deps import require

    mne = require("mne")
    plt = _plt()
    info = mne.create_info(patterns["ch_names"], 160.0, "eeg")
    info.set_montage("standard_1005", match_case=False, on_missing="ignore")
    # channels whose names are not on the montage have no position: draw the others, or nothing
    placed = [i for i, ch in enumerate(info["chs"]) if np.isfinite(ch["loc"][:3]).all() and np.any(ch["loc"][:3])]
    if len(placed) < 3:
        return None
    info = mne.pick_info(info, placed)
    maps = np.asarray(patterns["patterns"])[:, placed]
    fig, axes = plt.subplots(1, len(maps), figsize=(2.4 * len(maps), 2.4), squeeze=False)
    for k, (ax, pattern) in enumerate(zip(axes[0], maps)):
        # "local": colour only the area the electrodes cover; a subset of channels (--channels)
        # drawn over the whole head would show activity where nothing was recorded
        mne.viz.plot_topomap(pattern, info, axes=ax, show=False, extrapolate="local")
        ax.set_title(f"CSP pattern {k + 1}", fontsize=8)
    return fig


def _spectra(spectra: dict):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3))
    for name, psd in spectra["psd"].items():
        ax.semilogy(spectra["freqs"], psd, label=name)
    ax.set_xlabel("frequency (Hz)")
    ax.set_ylabel("power (uV^2/Hz)")
    ax.legend(fontsize=7, title="class")
    fig.tight_layout()
    return fig


def _robustness(result: BMIResult):
    plt = _plt()
    rows = [r for r in result.decoders if r.robustness]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3))
    for r in rows:
        rb = r.robustness or {}
        snr = sorted(rb["noise"], key=float, reverse=True)
        axes[0].plot(["clean", *snr], [rb["clean"], *[rb["noise"][k] for k in snr]], marker="o", label=r.name)
        lost = sorted(rb["channels_lost"], key=int)
        axes[1].plot([0, *map(int, lost)], [rb["clean"], *[rb["channels_lost"][k] for k in lost]], marker="o")
        eps = sorted(rb["apgd"], key=float)
        axes[2].plot([0, *map(float, eps)], [rb["clean"], *[rb["apgd"][k] for k in eps]], marker="o")
    for ax, label in zip(axes, ("noise SNR (dB)", "channels lost", "APGD L-inf budget (uV)")):
        ax.axhline(result.chance, color="k", ls="--", lw=0.8)
        ax.set_xlabel(label)
        ax.set_ylabel("accuracy")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def _robustness_split(decoders: list[DecoderResult]) -> str:
    """Which trials were perturbed (``bmi.workflow``): a held-out 25 % of each subject's, or, under
    ``loso``, every trial of each held-out subject with the decoder fitted on the others."""
    splits = {"leave-one-subject-out: fitted on the other subjects, every trial of the held-out one perturbed"
              if r.scheme == "loso" else "held-out 25 % per subject" for r in decoders}
    return "; ".join(sorted(splits))


def _checked(run: Run) -> BMIResult | None:
    """``results/bmi.json``, once its layout is the one this section reads."""
    result = load_stored(run, BMIResult)
    if result is None:
        return None
    ds = expect(run, BMIResult, result.dataset, dict, "dataset")
    missing = [k for k in ("name", "n_trials", "n_channels", "n_samples", "sfreq", "classes") if k not in ds]
    if missing:
        raise malformed(run, BMIResult, f"dataset lacks {', '.join(missing)}")
    expect(run, BMIResult, ds["classes"], list, "dataset.classes")
    expect(run, BMIResult, result.published or {}, dict, "published")
    for key, needed in (("csp_patterns", ("ch_names", "patterns")), ("spectra", ("freqs", "psd"))):
        part = getattr(result, key)
        missing = [k for k in needed if k not in expect(run, BMIResult, part, dict, key)] if part else []
        if missing:
            raise malformed(run, BMIResult, f"{key} lacks {', '.join(missing)}")
    for i, r in enumerate(expect(run, BMIResult, result.decoders, list, "decoders")):
        if not isinstance(r, DecoderResult):  # read from a JSON object, so anything else was not one
            raise malformed(run, BMIResult, f"decoders[{i}] must be a JSON object, not {json_kind(r)}")
        interval = expect(run, BMIResult, r.interval, list, f"{r.name}.interval")
        if len(interval) != 2:
            raise malformed(run, BMIResult, f"{r.name}.interval must hold 2 numbers, not {len(interval)}")
        for bound in interval:
            expect_number(run, BMIResult, bound, f"{r.name}.interval[]")
        for subject, value in expect(run, BMIResult, r.per_subject, dict, f"{r.name}.per_subject").items():
            expect_number(run, BMIResult, value, f"{r.name}.per_subject.{subject}")
        if r.robustness:
            rb = expect(run, BMIResult, r.robustness, dict, f"{r.name}.robustness")
            missing = [k for k in ("clean", "noise", "channels_lost", "electrode_shift", "apgd") if k not in rb]
            if missing:
                raise malformed(run, BMIResult, f"{r.name}.robustness lacks {', '.join(missing)}")
            for key in ("clean", "electrode_shift"):
                expect_number(run, BMIResult, rb[key], f"{r.name}.robustness.{key}")
            for key in ("noise", "channels_lost", "apgd"):
                for level, value in expect(run, BMIResult, rb[key], dict, f"{r.name}.robustness.{key}").items():
                    expect_number(run, BMIResult, value, f"{r.name}.robustness.{key}.{level}")
        for w in expect(run, BMIResult, r.pseudo_online or [], list, f"{r.name}.pseudo_online"):
            columns = ("window_s", "accuracy", "inference_s_per_window", "latency_s")
            missing = [k for k in columns if k not in expect(run, BMIResult, w, dict, f"{r.name}.pseudo_online[]")]
            if missing:
                raise malformed(run, BMIResult, f"{r.name}.pseudo_online lacks {', '.join(missing)}")
            for key in columns:
                expect_number(run, BMIResult, w[key], f"{r.name}.pseudo_online[].{key}")
    return result


def build(run: Run) -> list[Section]:
    result = _checked(run)
    if result is None:
        return []
    from ...bmi.decoders import DEEP  # here: every report imports this module, the decoders need the bmi extra

    ds = result.dataset
    section = Section("Brain-machine interface decoding")
    section.paragraph(f"{ds['name']}: {ds['n_trials']} trials, {ds['n_channels']} channels, {ds['n_samples']} "
                      f"samples at {ds['sfreq']:g} Hz, classes {', '.join(ds['classes'])}; "
                      f"chance {result.chance:.2f}."
                      # the execution settings reach the deep decoders alone; the others fit in NumPy
                      + (computed_on(result.execution, f"Deep decoders ({', '.join(DEEP)}) trained")
                         if any(r.name in DEEP for r in result.decoders) else ""))
    published = result.published or {}
    metric = "ROC-AUC" if published.get("metric") == "roc_auc" else "accuracy"
    selection = next((r.itr_selection_s for r in result.decoders if r.itr_selection_s), None)
    rows = []
    for r in result.decoders:
        ref = published.get(r.name)
        rows.append([r.name, r.scheme, f"{r.accuracy:.3f}", f"[{r.interval[0]:.2f}, {r.interval[1]:.2f}]",
                     "-" if r.roc_auc is None else f"{r.roc_auc:.3f}",
                     "-" if r.permutation_p is None else f"{r.permutation_p:.3f}",
                     number(r.itr_bits_per_min, ".2f"), f"{r.fit_time_s:.2f}",
                     f"{r.predict_time_s_per_trial * 1e3:.2f}",
                     "-" if ref is None else f"{ref:.2f}"])
    itr = f"ITR (bits/min, {selection:g} s per selection)" if selection else "ITR (bits/min)"
    section.table(["decoder", "evaluation", "accuracy", "95% CI (exact)", "ROC-AUC (mean of folds)", "p (permutation)",
                   itr, "fit time (s, all folds)", "inference (ms/trial)", f"MOABB {metric} (%)"], rows,
                  caption=published.get("source", ""))
    section.figure(_confusions(result), "confusion matrices (rows: true class)")
    section.figure(_by_subject(result), "accuracy by subject")
    if result.csp_patterns:
        topographies = _patterns(result.csp_patterns)
        if topographies is None:
            section.paragraph("No CSP pattern topographies: fewer than 3 of the channel names are on the standard "
                              "10-05 montage, so the channels have no positions to draw.")
        else:
            section.figure(topographies, "CSP patterns (all trials), sensorimotor topographies (channels not on "
                                         "the standard 10-05 montage left out)")
    if result.spectra:
        section.figure(_spectra(result.spectra), "mean spectrum per class (Welch, all channels)")
    robust = [r for r in result.decoders if r.robustness]
    if robust:
        headers = ["decoder", "clean"]
        first = robust[0].robustness or {}
        headers += [f"SNR {k} dB" for k in first["noise"]] + [f"{k} lost" for k in first["channels_lost"]]
        headers += ["electrode shift"] + [f"APGD {k} uV" for k in first["apgd"]] + ["EOT"]
        table = []
        for r in robust:
            rb = r.robustness or {}
            table.append([r.name, number(rb["clean"], ".2f"), *[number(v, ".2f") for v in rb["noise"].values()],
                          *[number(v, ".2f") for v in rb["channels_lost"].values()],
                          number(rb["electrode_shift"], ".2f"), *[number(v, ".2f") for v in rb["apgd"].values()],
                          str(rb.get("eot", 1))])
        noise = ("noise white on the electrodes before filtering, SNR in the data set's band"
                 if first.get("noise_model") == "sensor" else "noise white on each decoder's input, SNR of its power")
        section.table(headers, table, caption=f"robustness ({_robustness_split(robust)}, mean over subjects; {noise})")
        section.figure(_robustness(result), "robustness curves")
    online = [r for r in result.decoders if r.pseudo_online]
    if online:
        section.table(["decoder", "window (s)", "accuracy", "inference (ms)", "latency (s)"],
                      [[r.name, number(w["window_s"], "g"), number(w["accuracy"], ".3f"),
                        number(None if w["inference_s_per_window"] is None else w["inference_s_per_window"] * 1e3,
                               ".2f"),
                        number(w["latency_s"], ".3f")] for r in online for w in r.pseudo_online or []],
                      caption="pseudo-online decoding: window from the epoch's start, causally filtered epochs; "
                              "latency after the cue")
    return [section]
