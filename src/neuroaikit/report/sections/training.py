"""Report section for training runs (sweeps and the demo: :mod:`.sweep`)."""

from __future__ import annotations

from ...runs import Run
from ..html import Section

ORDER = 10


def _training_section(run: Run, metrics: dict) -> Section:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    config = run.config
    section = Section(f"Training: {metrics.get('model', '')} on {metrics.get('dataset', '')}")
    noise = metrics.get("noise") or {}
    noise_text = ", ".join(f"{site}: {spec.get('kind')} " + (
        f"sigma={spec.get('sigma')}" if spec.get("kind") != "poisson" else f"gain={spec.get('gain')}, floor={spec.get('floor')}")
        + (" rectified" if spec.get("rectify") else "") for site, spec in noise.items()) or "none"
    section.paragraph(
        f"{metrics.get('n_train')} training and {metrics.get('n_test')} test images; noise: {noise_text}; "
        f"objective {config.get('objective', 'cross_entropy')}; optimizer {config.get('optimizer')} "
        f"(lr {config.get('lr')}), {config.get('epochs')} epochs, training time {metrics.get('train_time_s', 0):.1f} s."
    )
    acc = metrics.get("test_accuracy", {})
    section.table(["inference", "test accuracy"], [[k, v] for k, v in acc.items()])
    history = metrics.get("history") or []
    if len(history) == 1:  # one epoch is one point, not a curve: say it in words
        only = history[0]
        section.paragraph(f"One epoch: training loss {only['loss']:.4f}, test accuracy (one draw) "
                          f"{only['test_acc']:.4f}; a learning curve needs two or more epochs.")
    elif history:
        fig, ax1 = plt.subplots(figsize=(6.4, 3.6))
        epochs = [h["epoch"] for h in history]
        ax1.plot(epochs, [h["loss"] for h in history], "o-", color="tab:gray", label="training loss")
        ax1.set_xlabel("epoch")
        ax1.set_ylabel("training loss")
        ax2 = ax1.twinx()
        ax2.plot(epochs, [h["test_acc"] for h in history], "s-", color="tab:green", label="test accuracy (one draw)")
        ax2.set_ylabel("test accuracy")
        fig.legend(loc="center right", fontsize=8)
        section.figure(fig, "Learning curve")
    return section


def build(run: Run) -> list[Section]:
    metrics = run.metrics
    sections = []
    if "history" in metrics and "test_accuracy" in metrics:
        sections.append(_training_section(run, metrics))
    return sections
