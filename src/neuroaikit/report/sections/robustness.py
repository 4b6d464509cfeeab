"""Report section for ``results/robustness.json`` (written by ``neuroaikit evaluate``), read
through :class:`~neuroaikit.attacks.RobustnessResult`."""

from __future__ import annotations

from ...attacks.results import AdversarialExamples, RobustnessResult
from ...runs import Run
from ..html import Section
from .._reading import load_stored
from . import computed_on

ORDER = 30


def _curves(result: RobustnessResult):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    eps = [row.eps for row in result.sweep]
    fig, ax = plt.subplots(figsize=(6, 3.8))
    # the worst case first, wide and pale, so attacks that coincide with it stay visible on top
    ax.plot(eps, [row.worst_case for row in result.sweep], lw=6, color="black", alpha=0.25,
            label="worst case (per example)")
    for name, marker in zip(result.attack_names, "ov^sDx*"):
        ax.plot(eps, [row.attacks.get(name, float("nan")) for row in result.sweep], marker=marker, lw=1, ms=5,
                label=name)
    ax.axhline(result.chance, color="grey", ls=":", label="chance")
    ax.axhline(result.clean_accuracy, color="grey", ls="--", label="clean (same rule)")
    ax.set_xlabel(f"eps ({result.norm})")
    ax.set_ylabel("accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=7)
    return fig


def _examples(examples: AdversarialExamples | None):
    import matplotlib.pyplot as plt
    import numpy as np

    if examples is None or not examples.clean:
        return None
    n = len(examples.clean)
    fig, axes = plt.subplots(2, n, figsize=(1.4 * n, 3.2), squeeze=False)
    rows = ((0, "clean", examples.clean, examples.clean_prediction),
            (1, "adver", examples.adversarial, examples.adversarial_prediction))
    for i in range(n):
        for row, label, images, predictions in rows:
            img = np.asarray(images[i], dtype=np.uint8).transpose(1, 2, 0)
            ax = axes[row][i]
            ax.imshow(img.squeeze(-1) if img.shape[-1] == 1 else img, cmap="gray", vmin=0, vmax=255)
            ax.set_title(f"{label}: {predictions[i]}" + (f" (y={examples.labels[i]})" if row == 0 else ""), fontsize=7)
            ax.axis("off")
    return fig


def _attacks_run(result: RobustnessResult) -> str:
    """The attacks the stored sweep holds, in words: Square runs for L-inf only, and a deterministic
    model is attacked with EOT 1 whatever the configured EOT (``attacks.evaluate``)."""
    protocol = result.protocol
    names = list(dict.fromkeys(name for row in result.sweep for name in row.attacks))
    eot = f"EOT {protocol.eot}" if result.stochastic else "EOT 1 (the model is deterministic)"
    apgd = f"APGD {protocol.steps} steps with {eot}"
    words = {"apgd-ce": apgd, "apgd-dlr": apgd, "square": f"Square {protocol.square_queries} queries",
             "transfer": "transfer from the noise-off twin",
             "random": f"random noise ({protocol.random_trials} trials)"}
    parts = list(dict.fromkeys(words.get(name, f"{name} (user attack)") for name in names))
    return ", ".join(parts) if parts else "no attack recorded"


def build(run: Run) -> list[Section]:
    result = load_stored(run, RobustnessResult)
    if result is None:
        return []
    protocol = result.protocol
    section = Section("Adversarial robustness")
    warning = result.chance_warning()
    if warning:
        section.paragraph(f"Warning: {warning}.", css="fail")
    section.paragraph(
        f"Deployed rule: {result.rule.rule} ({result.rule.n_draws} draws). Threat model: {result.threat_model}. "
        f"{result.n_examples} {result.split or 'test'} images of {result.dataset or 'the dataset'}; "
        f"{_attacks_run(result)}. An image is robust only if it "
        f"survives every attack and the rule is right in a majority of {protocol.checks} fresh evaluations."
        + computed_on(result.execution, "Attacked")
    )
    if result.randomness is not None:
        section.paragraph(f"Model: {result.randomness.describe()}.")
        for line in result.randomness.warnings:
            section.paragraph(f"Warning: {line}.", css="fail")
    section.paragraph(
        f"Clean accuracy (same rule): {result.clean_accuracy:.4f}; robust accuracy (per-example worst case) at eps "
        f"{result.reference_eps:.4g}: {result.robust_accuracy:.4f}."
    )
    names = result.attack_names
    rows = [[f"{row.eps:.4g}", *(f"{row.attacks[k]:.4f}" if k in row.attacks else "-" for k in names),
             f"{row.worst_case:.4f}"] for row in result.sweep]
    section.table(["eps", *names, "worst case"], rows, caption="accuracy under each attack (majority of fresh draws)")
    section.figure(_curves(result), "accuracy vs eps per attack; the black line is the per-example worst case")
    section.status_table(["check", "status", "numbers"], [[c.name, c.status, c.detail] for c in result.checks],
                         status_column=1)
    fig = _examples(result.examples)
    if fig is not None and result.examples is not None:
        section.figure(fig, f"{result.examples.attack} adversarial examples at eps {result.reference_eps:.4g} "
                            "(titles: prediction of the deployed rule)")
    return [section]
