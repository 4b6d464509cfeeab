"""Attribution equals captum's on a small CNN."""

from __future__ import annotations

import pytest
import torch

from neuroaikit.insilico.attribution import gradient_x_input, integrated_gradients
from neuroaikit.models import build_model

captum_attr = pytest.importorskip("captum.attr")


@pytest.fixture(scope="module")
def cnn():
    torch.manual_seed(1)
    model = build_model("cnn", in_channels=1, image_size=16, n_classes=5, channels=(4, 8), hidden=32).double().eval()
    images = torch.rand(6, 1, 16, 16, dtype=torch.float64)
    return model, images


@pytest.mark.parametrize("method", ["gausslegendre", "riemann_trapezoid"])
def test_integrated_gradients_equal_captum(cnn, method):
    model, images = cnn
    target = torch.tensor([0, 1, 2, 3, 4, 0])
    ours = integrated_gradients(model, images, target, baselines=0.5, n_steps=24, method=method)
    theirs = captum_attr.IntegratedGradients(model).attribute(images, baselines=0.5, target=target, n_steps=24,
                                                              method=method)
    if method == "riemann_trapezoid":
        # captum's trapezoid weights are 1/n (ends halved): they sum to (n - 1)/n, not 1; ours use 1/(n - 1)
        theirs = theirs * 24 / 23
    assert torch.allclose(ours, theirs, atol=1e-5, rtol=0)
    assert ours.abs().max() > 1e-3  # not trivially zero


def test_gradient_x_input_equals_captum(cnn):
    model, images = cnn
    ours = gradient_x_input(model, images, 3)
    theirs = captum_attr.InputXGradient(model).attribute(images, target=3)
    assert torch.allclose(ours, theirs, atol=1e-5, rtol=0)


@pytest.mark.parametrize("method", ["gausslegendre", "riemann_trapezoid"])
def test_integrated_gradients_complete(cnn, method):
    # completeness: attributions sum to f(x) - f(baseline)
    model, images = cnn
    ig = integrated_gradients(model, images, 2, baselines=None, n_steps=64, method=method)
    with torch.no_grad():
        diff = model(images)[:, 2] - model(torch.zeros_like(images))[:, 2]
    assert torch.allclose(ig.sum((1, 2, 3)), diff, atol=1e-3)
