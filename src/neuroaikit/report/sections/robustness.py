"""Report section for ``results/robustness.json`` (written by ``neuroaikit evaluate``)."""

from __future__ import annotations

from ...runs import Run
from ..html import Section

ORDER = 30


def _curves(result: dict):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sweep = result["sweep"]
    eps = [row["eps"] for row in sweep]
    fig, ax = plt.subplots(figsize=(6, 3.8))
    # the worst case first, wide and pale, so attacks that coincide with it stay visible on top
    ax.plot(eps, [row["worst_case"] for row in sweep], lw=6, color="black", alpha=0.25, label="worst case (per example)")
    for name, marker in zip(sweep[0]["attacks"], "ov^sDx*"):
        ax.plot(eps, [row["attacks"][name] for row in sweep], marker=marker, lw=1, ms=5, label=name)
    ax.axhline(result["chance"], color="grey", ls=":", label="chance")
    ax.axhline(result["clean_accuracy"], color="grey", ls="--", label="clean (same rule)")
    ax.set_xlabel(f"eps ({result['config']['norm']})")
    ax.set_ylabel("accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=7)
    return fig


def _examples(result: dict):
    import matplotlib.pyplot as plt
    import numpy as np

    ex = result.get("examples") or {}
    if not ex.get("clean"):
        return None
    n = len(ex["clean"])
    fig, axes = plt.subplots(2, n, figsize=(1.4 * n, 3.2), squeeze=False)
    for i in range(n):
        for row, key, pred_key in ((0, "clean", "clean_prediction"), (1, "adversarial", "adversarial_prediction")):
            img = np.asarray(ex[key][i], dtype=np.uint8).transpose(1, 2, 0)
            ax = axes[row][i]
            ax.imshow(img.squeeze(-1) if img.shape[-1] == 1 else img, cmap="gray", vmin=0, vmax=255)
            ax.set_title(f"{key[:5]}: {ex[pred_key][i]}" + (f" (y={ex['labels'][i]})" if row == 0 else ""), fontsize=7)
            ax.axis("off")
    return fig


def build(run: Run) -> list[Section]:
    result = run.result("robustness")
    if not result:
        return []
    rule = result["rule"]
    cfg = result["config"]
    section = Section("Adversarial robustness")
    section.paragraph(
        f"Deployed rule: {rule['rule']} ({rule['n_draws']} draws). Threat model: {result['threat_model']}. "
        f"{result['n_examples']} {result.get('split', 'test')} images of {result.get('dataset', 'the dataset')}; "
        f"APGD {cfg['steps']} steps with EOT {cfg['eot']}, Square {cfg['square_queries']} queries, transfer from the "
        f"noise-off twin, random noise ({cfg['random_trials']} trials). An image is robust only if it survives every "
        f"attack and the rule is right in a majority of {cfg['checks']} fresh evaluations."
    )
    section.paragraph(
        f"Clean accuracy (same rule): {result['clean_accuracy']:.4f}; robust accuracy (per-example worst case) at eps "
        f"{result['reference_eps']:.4g}: {result['robust_accuracy']:.4f}."
    )
    names = list(result["sweep"][0]["attacks"])
    rows = [[f"{row['eps']:.4g}", *(f"{row['attacks'][k]:.4f}" for k in names), f"{row['worst_case']:.4f}"]
            for row in result["sweep"]]
    section.table(["eps", *names, "worst case"], rows, caption="accuracy under each attack (majority of fresh draws)")
    section.figure(_curves(result), "accuracy vs eps per attack; the black line is the per-example worst case")
    section.status_table(["check", "status", "numbers"],
                         [[c["name"], c["status"], c["detail"]] for c in result["checks"]], status_column=1)
    fig = _examples(result)
    if fig is not None:
        section.figure(fig, f"{result['examples']['attack']} adversarial examples at eps {result['reference_eps']:.4g} "
                            "(titles: prediction of the deployed rule)")
    return [section]
