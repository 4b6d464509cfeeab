"""``--norm-bound``: PixelDP-style training keeps the layers before hidden Gaussian noise within
an operator-norm bound, so the hidden-layer certificate's sensitivity is at most that bound."""

from __future__ import annotations

import pytest
import torch

from neuroaikit.certify import HiddenNoiseCertifier, conv2d_bound
from neuroaikit.certify.training import PreNoiseNormBound
from neuroaikit.cli.main import main
from neuroaikit.errors import ConfigError
from neuroaikit.runs import Run
from neuroaikit.training import TrainConfig, train

SHAPE = (1, 8, 8)


def test_rescales_every_weighted_layer_before_the_deepest_site_and_nothing_after(kit):
    model = kit.small_cnn(8, {"conv1": "gaussian:0.5", "fc1": "gaussian:0.5"})
    with torch.no_grad():
        for layer in (model.model.conv1, model.model.conv2, model.model.fc1, model.model.fc2):
            layer.weight.mul_(5)
    fc2_before = model.model.fc2.weight.clone()
    constraint = PreNoiseNormBound(model, 0.8, SHAPE)
    assert [name for name, _, _ in constraint.layers] == ["conv1", "conv2", "fc1"]
    assert max(constraint.norms().values()) > 0.8
    constraint()
    assert all(norm <= 0.8 + 1e-6 for norm in constraint.norms().values())
    assert torch.equal(model.model.fc2.weight, fc2_before)
    # the certifier reads the same bound: conv1 alone before the conv1 site
    certifier = HiddenNoiseCertifier(model, SHAPE, site="conv1")
    assert certifier.sensitivity == pytest.approx(conv2d_bound(model.model.conv1, (8, 8)), rel=1e-9)
    assert certifier.sensitivity <= 0.8 + 1e-6


def test_a_layer_already_within_the_bound_is_left_alone(kit):
    model = kit.small_cnn(8, {"conv1": "gaussian:0.5"})
    norm = conv2d_bound(model.model.conv1, (8, 8))
    before = model.model.conv1.weight.clone()
    PreNoiseNormBound(model, 2 * norm, SHAPE)()
    assert torch.equal(model.model.conv1.weight, before)


@pytest.mark.parametrize("noise, bound, match", [
    (None, 1.0, "has none"),
    ({"input": "gaussian:0.5"}, 1.0, "has none"),
    ({"conv1": "gaussian:0.5"}, 0.0, "> 0"),
    ({"conv1": "gaussian:0.5"}, float("inf"), "norm_bound must be a finite number > 0, got inf"),
])
def test_bad_uses_are_one_line_errors(kit, noise, bound, match):
    with pytest.raises(ConfigError, match=match):
        PreNoiseNormBound(kit.small_cnn(8, noise), bound, SHAPE)


def test_training_with_norm_bound_gives_a_certificate_with_that_sensitivity(tmp_path):
    common = dict(dataset="digits", model="cnn", model_kwargs={"channels": [8, 16], "hidden": 32},
                  noise={"conv1": "gaussian:0.5"}, epochs=2, lr=3e-3, eval_draws=3)
    bounded = train(TrainConfig(norm_bound=1.0, **common), tmp_path / "bounded", progress=None)
    free = train(TrainConfig(**common), tmp_path / "free", progress=None)
    deltas = {}
    for name, run in (("bounded", bounded), ("free", free)):
        model = Run.open(run.path).load_model(map_location="cpu").eval()
        deltas[name] = HiddenNoiseCertifier(model, SHAPE, site="conv1").sensitivity
    assert deltas["bounded"] <= 1.0 + 1e-6 < deltas["free"]
    assert bounded.config["norm_bound"] == 1.0


def test_cli_norm_bound_without_hidden_noise_exits_2(tmp_path, capsys):
    code = main(["train", "--dataset", "digits", "--epochs", "1", "--norm-bound", "1", "--out", str(tmp_path / "r"),
                 "--quiet"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--norm-bound" in err[0]
    assert not (tmp_path / "r").exists() and not (tmp_path / "r.partial").exists()


def test_numpy_numbers_are_taken_for_the_bound_and_delta(kit):
    import numpy as np

    model = kit.small_cnn(8, {"conv1": "gaussian:0.5"})
    assert PreNoiseNormBound(model, np.float32(2.0), SHAPE).bound == 2.0
    assert HiddenNoiseCertifier(model, SHAPE, site="conv1", delta=np.float64(1e-5)).delta == 1e-5
