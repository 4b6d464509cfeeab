"""Report sections for training runs and noise sweeps."""

from __future__ import annotations

from ...runs import Run
from ..html import Section

ORDER = 10


def _sweep_section(sweep: dict) -> Section:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sweep["rows"]
    section = Section(f"Clean accuracy vs noise level ({sweep.get('dataset', '')})")
    section.paragraph(
        f"Gaussian noise on the input, or after the hidden layer '{sweep.get('hidden_site', '')}' "
        f"(rectified). Accuracy on the test split with one noise draw and with a majority vote over "
        f"{sweep.get('n_draws', '')} draws; sigma 0 is the deterministic network."
    )
    fig, ax = plt.subplots(figsize=(6.4, 4))
    base = [r for r in rows if r["model"] == "deterministic"]
    for family, color in (("input noise", "tab:blue"), ("hidden noise", "tab:red")):
        fam = sorted(base + [r for r in rows if r["model"] == family], key=lambda r: r["sigma"])
        if len(fam) <= len(base):
            continue
        sig = [r["sigma"] for r in fam]
        ax.plot(sig, [r["one_draw"] for r in fam], "o--", color=color, label=f"{family}, one draw")
        ax.plot(sig, [r["vote"] for r in fam], "s-", color=color, label=f"{family}, vote")
    ax.set_xscale("symlog", linthresh=0.1)
    ax.set_xlabel("noise sigma")
    ax.set_ylabel("clean test accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    section.figure(fig, "Clean accuracy against noise sigma")
    attack = sweep.get("attack")
    if attack:
        section.paragraph(
            f"Robust accuracy: the vote's accuracy on Linf EOT-PGD examples (eps {attack['eps']}, "
            f"{attack['steps']} steps of {attack['alpha']}, gradients averaged over {attack['eot']} noise draws of "
            f"the vote's mean softmax) on the first {attack['n_images']} test images. A quick adaptive check, "
            "not the full protocol of 'neuroaikit evaluate'."
        )
    section.table(
        ["model", "sigma", "one draw", "vote", "noise off", "EOT-PGD (vote)", "train time (s)"],
        [[r["model"], r["sigma"], r["one_draw"], r["vote"], r["noise_off"], r.get("robust_vote", "-"),
          round(r["train_time_s"], 1)] for r in rows],
    )
    return section


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
    if history:
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
    if "noise_sweep" in metrics:
        sections.append(_sweep_section(metrics["noise_sweep"]))
    if "history" in metrics and "test_accuracy" in metrics:
        sections.append(_training_section(run, metrics))
    return sections
