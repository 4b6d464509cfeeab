"""Probes find the units that carry a class; lesioning them hurts that class most."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from neuroaikit.alignment.features import extract_features
from neuroaikit.errors import ConfigError
from neuroaikit.insilico.lesions import channel_statistics, lesion, lesion_effects
from neuroaikit.insilico.probes import class_units, linear_probe

N_CLASSES, PER_CLASS, DIM = 4, 3, 24


@pytest.fixture(scope="module")
def built():
    """A network whose hidden units come in groups, each group a template matcher for one class."""
    gen = torch.Generator().manual_seed(0)
    prototypes = torch.linalg.qr(torch.randn(DIM, N_CLASSES, generator=gen))[0].T * 3  # orthogonal classes
    model = nn.Sequential(OrderedDict([("hidden", nn.Linear(DIM, N_CLASSES * PER_CLASS)), ("relu", nn.ReLU()),
                                       ("readout", nn.Linear(N_CLASSES * PER_CLASS, N_CLASSES))]))
    with torch.no_grad():
        model.hidden.weight.copy_(prototypes.repeat_interleave(PER_CLASS, 0)
                                  * (1 + 0.3 * torch.rand(N_CLASSES * PER_CLASS, 1, generator=gen)))
        model.hidden.bias.fill_(-1.0)
        model.readout.weight.copy_(torch.kron(torch.eye(N_CLASSES), torch.ones(1, PER_CLASS)))
        model.readout.bias.zero_()
    labels = torch.arange(N_CLASSES).repeat_interleave(60)
    images = prototypes[labels] + 1.2 * torch.randn(len(labels), DIM, generator=gen)
    # the groups are shuffled so a probe has to find them
    perm = torch.randperm(N_CLASSES * PER_CLASS, generator=gen)
    with torch.no_grad():
        model.hidden.weight.copy_(model.hidden.weight[perm])
        model.readout.weight.copy_(model.readout.weight[:, perm])
    return model.eval(), images, labels


def test_probe_reads_the_class_and_beats_chance(built):
    model, images, labels = built
    feats = extract_features(model, images, ["relu"])["relu"]
    score = linear_probe(feats, labels, n_folds=5)
    assert score.accuracy > 0.8 and score.chance == pytest.approx(0.25)


def test_lesioning_the_units_a_probe_names_hurts_that_class_most(built):
    model, images, labels = built
    feats = extract_features(model, images, ["relu"])["relu"]
    groups = {f"class {c}": class_units(feats, labels, c, PER_CLASS).tolist() for c in range(N_CLASSES)}
    result = lesion_effects(model, images, labels, "relu", groups, mode="zero")
    drop = result.drop()
    assert (drop.argmax(1) == np.arange(N_CLASSES)).all()
    assert (np.diag(drop) > 0.3).all()
    assert min(result.intact) > 0.8


@pytest.mark.parametrize("mode", ["mean", "noise"])
def test_mean_and_noise_lesions_keep_channel_statistics(built, mode):
    model, images, labels = built
    mean, std = channel_statistics(model, "relu", images)
    with lesion(model, "relu", [0, 1], mode, reference=images):
        out = extract_features(model, images, ["relu"])["relu"]
    if mode == "mean":
        assert torch.allclose(out[:, :2], mean[:2].expand(len(out), 2))
    else:
        assert torch.allclose(out[:, :2].mean(0), mean[:2], atol=4 * float(std.max()) / len(out) ** 0.5 + 1e-6)


def test_lesion_rejects_a_mode_without_reference(built):
    model, _, _ = built
    with pytest.raises(ConfigError, match="reference"):
        with lesion(model, "relu", [0], "mean"):
            pass


def test_probe_run_chooses_lesioned_units_on_images_it_does_not_score(built, monkeypatch):
    """``neuroaikit probe``'s lesion matrix: the units are named by a probe fitted on half of each class's
    images and the lesions scored on the other half, never on the images that chose them."""
    from neuroaikit.insilico import workflow
    from neuroaikit.insilico.config import ProbeConfig
    from neuroaikit.insilico.lesions import per_class_accuracy

    model, images, labels = built
    seen = {}
    real_extract, real_effects = workflow.extract_features, workflow.lesion_effects

    def extract(net, x, *args, **kwargs):
        seen["choose"] = x
        return real_extract(net, x, *args, **kwargs)

    def effects(net, x, y, *args, **kwargs):
        seen["score"] = x
        return real_effects(net, x, y, *args, **kwargs)

    monkeypatch.setattr(workflow, "extract_features", extract)
    monkeypatch.setattr(workflow, "lesion_effects", effects)
    config = ProbeConfig(lesion_fraction=PER_CLASS / (N_CLASSES * PER_CLASS))
    result = workflow._lesions(model, "relu", config, images, labels, N_CLASSES)

    def rows(subset):
        return np.array([int(torch.nonzero((images == row).all(1))[0, 0]) for row in subset])

    choose, score = rows(seen["choose"]), rows(seen["score"])
    assert not set(choose.tolist()) & set(score.tolist()) and len(choose) + len(score) == len(images)
    assert np.bincount(labels[choose].numpy()).tolist() == [30] * N_CLASSES
    feats = extract_features(model, images[choose], ["relu"])["relu"]
    assert result.units == [class_units(feats, labels[choose], c, PER_CLASS).tolist() for c in range(N_CLASSES)]
    np.testing.assert_allclose(result.intact, per_class_accuracy(model, images[score], labels[score], N_CLASSES))
    assert (result.drop().argmax(1) == np.arange(N_CLASSES)).all()
