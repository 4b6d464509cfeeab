"""Report section for ``neuroaikit probe``: the figures a physiologist expects. Polar tuning plots,
spatial-frequency curves, measure distributions beside published V1 ones, RF and MEI grids, the
lesion matrix and probe accuracy by depth. Reads ``neuroaikit.insilico.results.InsilicoResult``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ...errors import DataError
from ...insilico.channels import dominant_channel_counts
from ...results import format_figure, nan_for_none
from ...runs import Run
from ..html import Section
from .._reading import load_stored
from . import computed_on

if TYPE_CHECKING:
    from ...insilico.characterize import UnitMeasures
    from ...insilico.results import LayerProbe

ORDER = 55


def build(run: Run) -> list[Section]:
    from ...insilico.results import InsilicoResult

    result = load_stored(run, InsilicoResult)
    if result is None:
        return []
    import matplotlib

    matplotlib.use("Agg")
    s = Section("In-silico physiology")
    s.paragraph(f"{len(result.layers)} layers probed with gratings and {result.n_images} {result.dataset} test images; "
                f"noise {result.noise}; geometry in "
                + (f"degrees ({result.visual_degrees:g} deg across)." if result.visual_degrees else "pixels.")
                + " Orientation is the grating's wave-vector angle; 1-CV is 1 - circular variance (Ringach 2002); "
                  "OSI (pref - orth)/(pref + orth); F1/F0 > 1 marks simple-like units."
                + computed_on(result.execution, "Probed"))
    rows = []
    for entry in result.layers:
        m = _measures(entry)
        rows.append([entry.layer, m.n_units] + [_median_cell(m, k) for k in
                    ("orientation_selectivity", "osi", "preferred_sf", "sf_bandwidth", "modulation_ratio", "c50",
                     "suppression_index", "lifetime_sparseness")]
                    + [m.participation_ratio, entry.probe.accuracy if entry.probe else None])
    sf_unit = _measures(result.layers[0]).sf_unit if result.layers else "c/px"
    s.table(["layer", "units", "1-CV", "OSI", f"pref. SF ({sf_unit})", "SF bw (oct)", "F1/F0", "C50", "SI",
             "lifetime sparseness", "PR", "probe acc."], rows,
            caption="Medians over the units where each measure is defined (their number in brackets): silent "
                    "units have no tuning, and a unit whose contrast response does not saturate has no C50.")
    dist_rows = [[e.layer, d.species, d.measure, d.layer_median, d.reference_median, d.ks, d.wasserstein,
                  d.source + (" (approximation)" if d.approximate else "")] for e in result.layers for d in e.distances]
    if dist_rows:
        s.table(["layer", "species", "measure", "layer median", "V1 median", "KS", "Wasserstein", "source"], dist_rows)
    _colour_table(s, result)
    s.figure(_polar_figure(result), "Orientation/direction tuning (polar, baseline-subtracted) of the first units "
                                    "of each layer, and their spatial-frequency curves.")
    s.figure(_distribution_figure(result), "Distributions of the measures by layer, with the published V1 "
                                           f"distributions of the {result.species} where encoded (grey).")
    maps = [e for e in result.layers if e.meis]
    if maps:
        channels = result.input_shape[0] if result.input_shape else 1
        s.figure(_map_figure(maps, channels), "Per layer and unit: gradient RF map, most exciting input (seed 1), "
                                              "most inhibiting input (seed 1)." + _colour_legend(channels))
    s.figure(_probe_figure(result), "Cross-validated linear-probe accuracy by depth (dashed: chance).")
    if result.lesions is not None:
        s.figure(_lesion_figure(result.lesions), f"Lesions in {result.lesions.layer} ({result.lesions.mode}): "
                                                 "accuracy lost per class (columns) when the channels a probe "
                                                 "names for one class (rows) are silenced.")
    return [s]


def _colour_table(s: Section, result) -> None:
    """Which input channel drives each layer's units (models of colour input only)."""
    coloured = [e for e in result.layers if e.colour]
    if not coloured:
        return
    channels = coloured[0].colour["channels"]
    rows = []
    for entry in coloured:
        colour = entry.colour
        per_channel, by_none = dominant_channel_counts(colour["dominant_channel"], channels)
        selectivity = nan_for_none(colour["channel_selectivity"])
        row = [entry.layer] + per_channel + [by_none]
        row.append(float(np.nanmedian(selectivity)) if np.isfinite(selectivity).any() else None)
        if channels == 2:
            index = nan_for_none(colour["preference_index"])
            row.append(float(np.nanmedian(index)) if np.isfinite(index).any() else None)
        rows.append(row)
    s.table(["layer"] + [f"units driven most by channel {c}" for c in range(channels)] + ["by none above grey",
             "median channel selectivity"] + (["median preference index"] if channels == 2 else []), rows,
            caption=f"Colour ({channels} input channels): the gratings shown in one channel at a time, the others "
                    "at grey. Channel selectivity is a unit's largest positive peak over grey divided by the sum of "
                    f"its positive peaks (1: one channel alone; 1/{channels}: all alike)"
                    + ("; preference index (p1 - p0) / (p0 + p1)." if channels == 2 else "."))


def _measures(entry: LayerProbe) -> UnitMeasures:
    if entry.measures is None:  # probe_run measures every layer it writes; a stored file may still lack them
        raise DataError(f"InsilicoResult: the stored result lacks the measures of layer {entry.layer!r}")
    return entry.measures


def _median_cell(m: UnitMeasures, name: str) -> str:
    """The median over the units where the measure is defined, and how many those are."""
    median, count = m.median(name)
    return f"{format_figure(median, '.4g')} ({count})"


def _polar_figure(result):
    import matplotlib.pyplot as plt

    n = len(result.layers)
    fig = plt.figure(figsize=(3.0 * n, 5.6))
    for j, entry in enumerate(result.layers):
        curves = entry.measures.curves
        ax = fig.add_subplot(2, n, j + 1, projection="polar")
        theta = np.radians(curves["directions_deg"] + curves["directions_deg"][:1])
        for curve in curves["direction"][:4]:
            c = np.clip(np.asarray(curve), 0, None)
            ax.plot(theta, np.concatenate([c, c[:1]]) / (c.max() or 1), lw=1)
        ax.set_yticklabels([])
        ax.set_title(entry.layer, fontsize=9)
        ax2 = fig.add_subplot(2, n, n + j + 1)
        for curve in curves["sf"][:4]:
            ax2.plot(curves["spatial_frequencies"], curve, lw=1)
        ax2.set_xscale("log")
        ax2.set_xlabel(f"SF ({entry.measures.sf_unit})", fontsize=8)
        ax2.tick_params(labelsize=7)
    fig.tight_layout()
    return fig


def _distribution_figure(result):
    import matplotlib.pyplot as plt

    from ...insilico.reference import available, published

    measures = [("orientation_selectivity", "1 - CV", False), ("preferred_sf", "preferred SF", True),
                ("modulation_ratio", "F1/F0", False), ("suppression_index", "SI", False)]
    fig, axes = plt.subplots(1, len(measures), figsize=(3.2 * len(measures), 2.8))
    for ax, (name, label, log) in zip(axes, measures):
        for entry in result.layers:
            v = entry.measures.array(name)
            v = v[np.isfinite(v) & ((v > 0) if log else True)]
            if v.size:
                ax.hist(np.log2(v) if log else v, bins=15, histtype="step", density=True, label=entry.layer)
        if (result.species, name) in available():
            ref = published(result.species, name)
            if ref.unit != "c/deg" or result.layers and result.layers[0].measures.sf_unit == "c/deg":
                sample = ref.sample(4000)
                ax.hist(np.log2(sample) if log else sample, bins=20, density=True, color="grey", alpha=0.4,
                        label=f"{result.species} V1")
        ax.set_xlabel(f"log2 {label}" if log else label, fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0].legend(fontsize=6)
    fig.tight_layout()
    return fig


def _colour_legend(channels: int) -> str:
    if channels == 2:
        return " Colour inputs: channel 0 shown green, channel 1 blue (a mouse's green and UV)."
    if channels == 3:
        return " Colour inputs shown as RGB."
    return "" if channels == 1 else f" The {channels} input channels are shown averaged."


def _display(image: np.ndarray, channels: int) -> tuple[np.ndarray, dict]:
    """An input image ``(H, W)`` or ``(C, H, W)`` as ``imshow`` shows it: grey around its mean, or
    colour (RGB; two channels as green and blue) with the largest deviation at full scale."""
    if channels == 1 or image.ndim == 2:
        centre = float(image.mean())
        lim = float(np.abs(image - centre).max()) or 1.0
        return image, {"cmap": "gray", "vmin": centre - lim, "vmax": centre + lim}
    if channels not in (2, 3):
        return _display(image.mean(0), 1)
    deviation = image - image.mean()
    scaled = 0.5 + 0.5 * deviation / (float(np.abs(deviation).max()) or 1.0)
    rgb = scaled if channels == 3 else np.stack([np.full_like(scaled[0], 0.5), scaled[0], scaled[1]])
    return np.clip(rgb.transpose(1, 2, 0), 0, 1), {}


def _map_figure(entries, channels: int = 1):
    import matplotlib.pyplot as plt

    n_units = max(len(e.map_units) for e in entries)
    fig, axes = plt.subplots(len(entries), 3 * n_units, figsize=(1.1 * 3 * n_units, 1.2 * len(entries)), squeeze=False)
    for i, entry in enumerate(entries):
        for j in range(n_units):
            panels = []
            if j < len(entry.map_units):
                # results written before colour MEIs hold one-channel images for colour models too
                shown = channels if entry.colour and "mei_channel_energy" in entry.colour else 1
                one_seed = 2 if shown == 1 else 3  # dimensions of one image
                mei, mi = (np.asarray(m[j]) for m in (entry.meis, entry.mins))
                rf = np.asarray(entry.gradient_maps[j])
                lim = float(np.abs(rf).max()) or 1.0
                panels = [(rf, {"cmap": "RdBu_r", "vmin": -lim, "vmax": lim})] + [
                    _display(m[0] if m.ndim > one_seed else m, shown) for m in (mei, mi)]
            for k in range(3):
                ax = axes[i, 3 * j + k]
                ax.set_xticks([])
                ax.set_yticks([])
                if k < len(panels):
                    ax.imshow(panels[k][0], **panels[k][1])
                if j == 0 and k == 0:
                    ax.set_ylabel(entry.layer, fontsize=7)
    return fig


def _probe_figure(result):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 3))
    layers = [e for e in result.layers if e.probe is not None]
    ax.errorbar(range(len(layers)), [e.probe.accuracy for e in layers], yerr=[e.probe.accuracy_sd for e in layers],
                marker="o", capsize=3)
    if layers:
        ax.axhline(layers[0].probe.chance, ls="--", color="grey")
    ax.set_xticks(range(len(layers)), [e.layer for e in layers], rotation=45, fontsize=7)
    ax.set_ylabel("probe accuracy")
    fig.tight_layout()
    return fig


def _lesion_figure(lesions):
    import matplotlib.pyplot as plt

    drop = lesions.drop()
    fig, ax = plt.subplots(figsize=(4.2, 3.6))
    lim = float(np.nanmax(np.abs(drop))) or 1.0
    im = ax.imshow(drop, cmap="RdBu_r", vmin=-lim, vmax=lim)
    ax.set_yticks(range(len(lesions.rows)), lesions.rows, fontsize=7)
    ax.set_xlabel("class tested")
    fig.colorbar(im, ax=ax, label="accuracy lost")
    fig.tight_layout()
    return fig
