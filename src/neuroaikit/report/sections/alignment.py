"""Report section for ``neuroaikit align``: per-layer scores with intervals and ceilings,
and RDM heat maps (neural and best-matching layers). Reads the typed
:class:`~neuroaikit.alignment.AlignmentResult`."""

from __future__ import annotations

import math

from ...runs import Run
from ..html import Section, number
from .._reading import load_stored
from . import computed_on

ORDER = 50


def _axis_ceiling(key: str, part, convention: str) -> float:
    """A metric's stored noise ceiling on the scale of its panel's axis. RSA and CKA store theirs on
    the score's scale; predictivity stores the ceiling of its convention: sqrt(median reliability)
    for ``r/sqrt(reliability)``, the median reliability itself (an r^2 scale) for ``r2/reliability``,
    while the panel draws median r, whose ceiling is sqrt(median reliability) either way."""
    ceiling = float(part.ceiling)
    if key != "predictivity" or not (part.convention or convention).startswith("r2/"):
        return ceiling
    return math.sqrt(ceiling) if ceiling >= 0 else math.nan


def _score_figure(result):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ...alignment.results import METRICS

    names = result.layer_names
    level = result.settings.ci_level
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), sharex=True)
    for ax, (key, label) in zip(axes, METRICS):
        xs, ys, lo, hi = [], [], [], []
        for k, entry in enumerate(result.layers):
            part = entry.metric(key)
            if part.ok:
                low = part.ci_low if part.ci_low is not None else part.score
                high = part.ci_high if part.ci_high is not None else part.score
                xs.append(k)
                ys.append(part.score)
                lo.append(low)
                hi.append(high)
        # the interval drawn as stored: a percentile bootstrap's need not contain the score (few
        # resamples, a biased statistic), which error bars, as lengths from the point, cannot show
        ax.plot(xs, ys, "o-", color="tab:blue", label=f"score ({level:.0%} CI)")
        ax.vlines(xs, lo, hi, color="tab:blue", lw=1.5)
        ceiling = next((_axis_ceiling(key, e.metric(key), result.settings.convention) for e in result.layers
                        if e.metric(key).ceiling is not None), None)
        if ceiling is not None and math.isfinite(ceiling):
            ax.axhline(ceiling, color="tab:red", ls="--", label="noise ceiling")
        ax.axhline(0, color="gray", lw=0.5)
        ax.set_title(label)
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=45, ha="right", fontsize=8)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def _rdm_figure(result):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from scipy.spatial.distance import squareform

    best = [e for e in result.best_layers("rsa", count=len(result.layers)) if e.model_rdm is not None][:3]
    panels = [("neural", result.neural_rdm)] + [(f"{e.layer} (RSA {e.rsa.score:.2f})", e.model_rdm) for e in best]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.2))
    for ax, (title, vec) in zip(np.atleast_1d(axes), panels):
        v = np.asarray(vec)
        ranks = v.argsort().argsort() / max(1, len(v) - 1)  # percentiles make scales comparable
        image = ax.imshow(squareform(ranks), cmap="viridis", vmin=0, vmax=1)
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    fig.colorbar(image, ax=np.atleast_1d(axes).tolist(), shrink=0.8, label="dissimilarity (percentile)")
    return fig


def build(run: Run) -> list[Section]:
    from ...alignment.results import METRICS, AlignmentResult

    result = load_stored(run, AlignmentResult)
    if result is None:
        return []
    s, neural = result.settings, result.neural
    section = Section(f"Alignment to {neural.name}")
    section.paragraph(
        f"{neural.n_stimuli} stimuli, {neural.n_neurons} neurons, "
        f"{neural.n_repeats or 'no'} repeats. RSA: {s.rdm} RDM ({s.rdm_note}), {s.compare} comparison. "
        f"CKA: {s.cka_kernel}{', debiased' if s.cka_debiased else ''}. Predictivity: {s.mapping}, "
        f"{s.n_folds}-fold cross-validation, Pearson r per neuron on held-out stimuli, median over neurons; "
        f"ceiled as {s.convention}. Intervals: {s.n_boot} bootstrap resamples over stimuli ({s.ci_level:.0%}). "
        f"Model noise while reading features: {s.noise}."
        + computed_on(result.execution)
    )
    c = result.ceilings
    if c.rsa is not None:  # c.available, spelled out so that c.rsa narrows
        predictivity = (f"; predictivity median neuron reliability (Spearman-Brown) = "
                        f"{c.predictivity.median_reliability:.3f}" if c.predictivity else "")
        cka = (f"; CKA (a perfect model's expected debiased CKA) = {c.cka.ceiling:.3f}" if c.cka
               else f"; no CKA ceiling: {c.cka_reason}" if c.cka_reason else "")
        section.paragraph(f"Ceilings from the repeats: RSA sqrt(split-half RDM reliability) = {c.rsa.ceiling:.3f}"
                          f"{cka}{predictivity}.")
    else:
        section.paragraph(f"No ceilings: {c.reason or 'no repeated trials'}.")
    section.figure(_score_figure(result), "Per-layer scores with bootstrap intervals and noise ceilings (dashed; "
                                          "predictivity's is sqrt of the median neuron reliability, the ceiling of "
                                          "r under either convention)")
    rows = []
    for entry in result.layers:
        row = [entry.layer, entry.n_units]
        for key, _ in METRICS:
            part = entry.metric(key)
            if part.error is not None:
                row += ["error", part.error[:60], "-"]
            else:
                row += [number(part.score, ".3f"), f"[{number(part.ci_low, '.3f')}, {number(part.ci_high, '.3f')}]",
                        number(part.ceiled, ".3f")]
        rows.append(row)
    section.table(["layer", "units", "RSA", "RSA CI", "RSA ceiled", "CKA", "CKA CI", "CKA ceiled",
                   "pred r", "pred CI", "pred ceiled"], rows)
    section.figure(_rdm_figure(result), "RDMs (percentile of dissimilarity): neural and the three best-matching layers")
    return [section]
