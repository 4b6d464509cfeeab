"""Report section for ``results/certification.json`` (``neuroaikit certify``): certified accuracy
against L2 radius, beside the attacked (empirical) robust accuracy of ``results/robustness.json``
when that was measured in L2, so the gap between what is proven and what attacks find shows."""

from __future__ import annotations

from ...attacks.results import RobustnessResult
from ...certify.results import CertificationResult
from ...runs import Run
from ..html import Section
from .._reading import load_stored
from . import device_and_precision

ORDER = 31


def _figure(result: CertificationResult, robustness: RobustnessResult | None):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.8))
    for cert in result.certificates:
        ax.plot([p.radius for p in cert.curve], [p.certified_accuracy for p in cert.curve], lw=2,
                label=f"certified: {cert.label()}")
    if robustness is not None and robustness.norm == "L2":
        ax.plot([r.eps for r in robustness.sweep], [r.worst_case for r in robustness.sweep], "o--", color="black",
                label=f"attacked (empirical, {robustness.rule.rule} rule)")
    ax.set_xlabel("L2 radius")
    ax.set_ylabel("accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=7)
    return fig


def build(run: Run) -> list[Section]:
    result = load_stored(run, CertificationResult)
    if result is None or not result.certificates:
        return []
    robustness = load_stored(run, RobustnessResult)
    section = Section("Certified robustness")
    section.paragraph(
        "Certified accuracy at radius r: the fraction of test images whose certified class is the label with a "
        "certified L2 radius of at least r (an abstention counts as wrong); each certificate holds with probability "
        "at least 1 - alpha per image. Randomized smoothing: Cohen et al. 2019. Hidden-layer noise: PixelDP, "
        "Lecuyer et al. 2019 (sensitivity of the layers before the noise bounded by their operator norms)."
    )
    if robustness is None or robustness.norm != "L2":
        section.paragraph("No attacked L2 robust accuracy in this run (run `neuroaikit evaluate RUN --norm L2` to draw "
                          "it beside the certified curves)." if robustness is None else
                          f"The attacked robust accuracy in this run is {robustness.norm}, not L2, so it is not drawn "
                          "beside the certified curves (run `neuroaikit evaluate RUN --norm L2`).")
    rows = []
    for cert in result.certificates:
        rows.append([cert.label(), str(cert.n_examples), f"{cert.n0} / {cert.n}", f"{cert.alpha:g}",
                     "-" if cert.delta is None else f"{cert.delta:g}", f"{cert.sensitivity:.4g}",
                     f"{cert.smoothed_accuracy:.3f}", f"{cert.abstain_fraction:.3f}", f"{cert.max_radius:.3g}",
                     f"{cert.images_per_second:.2f}",
                     # the certificate's own precision: a bf16 certificate certifies the rounded network
                     device_and_precision((cert.execution or {}).get("device"), cert.precision)])
    section.table(["certificate", "images", "n0 / n", "alpha", "delta", "sensitivity", "accuracy at r=0", "abstain",
                   "largest certifiable r", "images/s", "computed on"], rows)
    for cert in result.certificates:
        section.table(["L2 radius", "certified accuracy"],
                      [[f"{p.radius:.4g}", f"{p.certified_accuracy:.3f}"] for p in cert.curve],
                      caption=f"certified accuracy: {cert.label()}")
        if cert.layer_bounds:
            section.table(["layer", "type", "bound", "how"],
                          [[b.name, b.kind, f"{b.bound:.4g}", b.how] for b in cert.layer_bounds],
                          caption=f"sensitivity of the layers before the noise at {cert.site} (product "
                                  f"{cert.sensitivity:.4g})")
    section.figure(_figure(result, robustness), "certified accuracy against L2 radius"
                   + (", with the attacked robust accuracy (per-example worst case)" if robustness is not None
                      and robustness.norm == "L2" else ""))
    return [section]
