"""Report section for training runs (sweeps and the demo: :mod:`.sweep`)."""

from __future__ import annotations

from typing import Any

from ...runs import Run
from ...training.results import TrainingResult
from .._reading import expect, expect_number, load_stored, malformed
from ..html import Section, number
from . import computed_on

ORDER = 10


def _epochs(history: list[dict], configured: Any) -> str:
    """The epochs that ran (a callback may end training early, see ``training.loop``), beside the
    number configured when fewer ran."""
    ran = len(history)
    text = f"{ran} epoch" + ("" if ran == 1 else "s")
    if isinstance(configured, int) and ran < configured:
        why = " at a callback's request" if history and history[-1].get("stop_training") else ""
        text += f" of the {configured} configured (training stopped early{why})"
    return text


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
    history = metrics.get("history") or []
    section.paragraph(
        f"{metrics.get('n_train')} training and {metrics.get('n_test')} test images; noise: {noise_text}; "
        f"objective {config.get('objective', 'cross_entropy')}; optimizer {config.get('optimizer')} "
        f"(lr {config.get('lr')}), {_epochs(history, config.get('epochs'))}, training time "
        f"{number(metrics.get('train_time_s', 0), '.1f')} s." + computed_on(metrics.get("execution"), "Trained")
    )
    acc = metrics.get("test_accuracy", {})
    section.table(["inference", "test accuracy"], [[k, v] for k, v in acc.items()])
    if len(history) == 1:  # one epoch is one point, not a curve: say it in words
        only = history[0]
        section.paragraph(f"One epoch: training loss {number(only['loss'], '.4f')}, test accuracy (one draw) "
                          f"{number(only['test_acc'], '.4f')}; a learning curve needs two or more epochs.")
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
        sections.append(_training_section(run, _checked(run, metrics)))
    return sections


def _checked(run: Run, metrics: dict) -> dict:
    """``metrics.json`` as stored, once its layout is the one :class:`TrainingResult` describes."""
    load_stored(run, TrainingResult)
    expect(run, TrainingResult, metrics["test_accuracy"], dict, "test_accuracy")
    for site, spec in expect(run, TrainingResult, metrics["noise"] or {}, dict, "noise").items():
        expect(run, TrainingResult, spec, dict, f"noise.{site}")
    for i, epoch in enumerate(expect(run, TrainingResult, metrics["history"], list, "history")):
        expect(run, TrainingResult, epoch, dict, f"history[{i}]")
        missing = [k for k in ("epoch", "loss", "test_acc") if k not in epoch]
        if missing:
            raise malformed(run, TrainingResult, f"history[{i}] lacks {', '.join(missing)}")
        for key in ("epoch", "loss", "test_acc"):
            expect_number(run, TrainingResult, epoch[key], f"history[{i}].{key}")
    for rule, value in metrics["test_accuracy"].items():
        expect_number(run, TrainingResult, value, f"test_accuracy.{rule}")
    return metrics
