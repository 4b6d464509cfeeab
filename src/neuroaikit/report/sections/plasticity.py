"""Report section: a plasticity run (Krotov-Hopfield or Diehl & Cook). Reads the typed
:class:`~neuroaikit.spiking.plasticity.PlasticityResult` and the learned weights."""

from __future__ import annotations

import math

from ...errors import NeuroAIKitError
from ...runs import Run
from ..html import Section
from .._reading import load_stored
from . import computed_on

ORDER = 12
_TILES = 100  # receptive fields shown


def _is_plasticity_run(run: Run) -> bool:
    from ...spiking.plasticity import RULES

    return run.metrics.get("rule") in RULES  # the discriminator: other runs' metrics have no rule


def _receptive_fields(weight, image_shape, signed: bool, title: str):
    """A grid of the first rows of ``weight (units, C*H*W)`` as images."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    channels, height, width = image_shape
    shown = weight[:_TILES].float()
    n = shown.shape[0]
    cols = min(10, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.7, rows * 0.7), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        tile = shown[i].reshape(channels, height, width)
        if channels == 1:
            tile = tile[0]
            scale = float(tile.abs().max()) or 1.0
            ax.imshow(tile.numpy(), cmap="bwr" if signed else "hot_r", vmin=-scale if signed else 0, vmax=scale)
        else:  # colour: each tile stretched to [0, 1]
            tile = tile.permute(1, 2, 0)
            low, high = float(tile.min()), float(tile.max())
            ax.imshow(((tile - low) / ((high - low) or 1.0)).numpy())
    fig.suptitle(title, fontsize=9)
    return fig


def build(run: Run) -> list[Section]:
    if not _is_plasticity_run(run):
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ...spiking.plasticity import DiehlCookNetwork, KrotovHopfieldClassifier, PlasticityResult

    result = load_stored(run, PlasticityResult)
    assert result is not None  # metrics.json names a rule, so it is not empty
    shape = None
    model = None
    try:
        model = run.load_model()
        spec = run.model_spec.get("kwargs", {})
        shape = (spec.get("in_channels", 1), spec.get("image_size", 28), spec.get("image_size", 28))
    except NeuroAIKitError:  # a report shows what it can: the weight figures are optional
        model = None
    sections = []
    if result.krotov_hopfield is not None:
        kh = result.krotov_hopfield
        section = Section(f"Krotov-Hopfield competing hidden units on {result.dataset}")
        section.paragraph(
            f"{kh.n_hidden} hidden units learned without labels (Krotov & Hopfield 2019) for "
            f"{kh.unsupervised_epochs} epochs on {result.n_train} images, then a linear readout of the standardised "
            f"features relu(Wv)^{kh.power:g} trained for {kh.readout_epochs} epochs. Test accuracy on "
            f"{result.n_test} images: {result.test_accuracy:.4f}." + computed_on(result.execution))
        section.table(["figure", "value"], [
            ["test accuracy", round(result.test_accuracy, 4)], ["training accuracy (readout)", round(kh.train_accuracy, 4)],
            ["unsupervised time (s)", round(kh.time_unsupervised_s, 1)], ["readout time (s)", round(kh.time_readout_s, 1)],
            ["mean | ||W||_p^p - 1 | (0 at the fixed point)", round(kh.norm_deviation, 4)]])
        if kh.unsupervised_history and kh.readout_history:
            fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3))
            left.plot([h["epoch"] for h in kh.unsupervised_history], [h["norm_deviation"] for h in kh.unsupervised_history],
                      "o-", color="tab:blue")
            left.set_xlabel("unsupervised epoch")
            left.set_ylabel("mean | ||W||_p^p - 1 |")
            left.set_yscale("log")
            right.plot([h["epoch"] for h in kh.readout_history], [h["loss"] for h in kh.readout_history], "-",
                       color="tab:gray")
            right.set_xlabel("readout epoch")
            right.set_ylabel("training loss")
            fig.tight_layout()
            section.figure(fig, "Convergence of the hidden layer toward unit p-norm, and the readout's loss")
        if isinstance(model, KrotovHopfieldClassifier) and shape is not None:
            section.figure(_receptive_fields(model.hidden.weight.detach(), shape, True, "hidden units"),
                           f"Weights of the first {min(_TILES, kh.n_hidden)} hidden units (blue negative, red positive)")
        sections.append(section)
    if result.diehl_cook is not None:
        dc = result.diehl_cook
        section = Section(f"Diehl & Cook STDP on {result.dataset}")
        section.paragraph(
            f"{dc.n_neurons} excitatory neurons with {dc.synapses} synapses, lateral inhibition and adaptive "
            f"thresholds learned {dc.epochs} pass(es) over {dc.n_stdp} images with STDP ({dc.T} ms per image, batch "
            f"{dc.batch_size}); each neuron was then labelled with the class it answers most on {dc.n_label} images, "
            f"and an image is classified by the class whose neurons fire most. Test accuracy on {result.n_test} "
            f"images: {result.test_accuracy:.4f}." + computed_on(result.execution))
        section.table(["figure", "value"], [
            ["test accuracy", round(result.test_accuracy, 4)], ["STDP time (s)", round(dc.time_stdp_s, 1)],
            ["labelling time (s)", round(dc.time_label_s, 1)], ["test time (s)", round(dc.time_test_s, 1)],
            ["mean threshold increase theta", round(dc.mean_theta, 3)],
            ["neurons per class", ", ".join(str(c) for c in dc.neurons_per_class)]])
        if len(dc.stdp_history) > 1:
            fig, ax = plt.subplots(figsize=(5, 3))
            ax.plot([h["images"] for h in dc.stdp_history], [h["mean_theta"] for h in dc.stdp_history], "o-")
            ax.set_xlabel("images presented")
            ax.set_ylabel("mean theta")
            section.figure(fig, "Adaptive thresholds during STDP")
        if isinstance(model, DiehlCookNetwork) and shape is not None:
            section.figure(_receptive_fields(model.weight.detach(), shape, False, "excitatory neurons"),
                           f"Input weights of the first {min(_TILES, dc.n_neurons)} neurons")
        sections.append(section)
    return sections
