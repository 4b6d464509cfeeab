"""Convolution + ReLU in one oneDNN call: the same network (values, noise hooks, the model left
as it was), fused only where that holds, and the two layers wherever the fused call does not apply."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from neuroaikit import cpu_fusion
from neuroaikit.certify import GaussianSmoothing
from neuroaikit.cpu_fusion import FusedConvReLU, fuse_conv_relu
from neuroaikit.models import build_model
from neuroaikit.noise import inject_noise

pytestmark = pytest.mark.skipif(not cpu_fusion.onednn_conv_available(), reason="no oneDNN in this PyTorch")


@pytest.fixture
def fused_calls(monkeypatch):
    """How often the fused oneDNN call ran."""
    counted = {"n": 0}
    original = torch.ops.mkldnn._convolution_pointwise

    class Counting:
        @staticmethod
        def _convolution_pointwise(*args):
            counted["n"] += 1
            return original(*args)

    monkeypatch.setattr(cpu_fusion.torch.ops, "mkldnn", Counting)
    monkeypatch.setattr(cpu_fusion, "onednn_conv_available", lambda: True)
    return counted


@pytest.mark.parametrize("options", [dict(padding=2), dict(padding=0, stride=2), dict(padding=1, dilation=2),
                                     dict(padding=1, groups=2, bias=False)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_the_fused_call_equals_conv_then_relu(options, channels_last, fused_calls):
    conv = nn.Conv2d(4, 6, 3, **options)
    x = torch.randn(5, 4, 11, 9)
    if channels_last:
        conv, x = conv.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        fused, plain = FusedConvReLU(conv)(x), F.relu(conv(x))
    assert fused_calls["n"] == 1
    torch.testing.assert_close(fused, plain, rtol=1e-5, atol=1e-5)
    assert (fused >= 0).all()


def test_bfloat16_autocast_gets_what_autocast_computes(fused_calls):
    conv = nn.Conv2d(3, 8, 5, padding=2)
    x = torch.randn(4, 3, 12, 12)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        fused, plain = FusedConvReLU(conv)(x), F.relu(conv(x))
    # the one oneDNN call where this CPU has bfloat16 kernels; autocast's own layers elsewhere
    assert fused.dtype == plain.dtype == torch.bfloat16 and fused_calls["n"] == int(cpu_fusion.onednn_bf16_available())
    torch.testing.assert_close(fused.float(), plain.float(), rtol=2e-2, atol=2e-2)


def test_bfloat16_on_a_cpu_without_onednn_bfloat16_kernels_runs_the_two_layers(fused_calls, monkeypatch):
    """On an AVX2-only CPU the fused bfloat16 call raised ("bf16 path needs the cpu support
    avx_ne_convert or avx512bw, avx512vl and avx512dq"), which ended bf16 certification there."""
    monkeypatch.setattr(cpu_fusion, "onednn_bf16_available", lambda: False)
    conv = nn.Conv2d(3, 8, 5, padding=2)
    x = torch.randn(4, 3, 12, 12)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        fused, plain = FusedConvReLU(conv)(x), F.relu(conv(x))
    assert fused_calls["n"] == 0 and fused.dtype == torch.bfloat16
    torch.testing.assert_close(fused, plain)


def test_gradients_other_dtypes_and_float16_autocast_run_the_two_layers(fused_calls):
    conv = nn.Conv2d(2, 3, 3)
    x = torch.randn(2, 2, 6, 6, requires_grad=True)
    out = FusedConvReLU(conv)(x)  # gradients on: an attack or training through the view
    out.sum().backward()
    assert x.grad is not None and fused_calls["n"] == 0
    with torch.no_grad():
        FusedConvReLU(conv.double())(x.detach().double())
        with torch.autocast("cpu", dtype=torch.float16):
            FusedConvReLU(conv.float())(x.detach())
    assert fused_calls["n"] == 0


def test_a_sequential_cnn_is_fused_and_computes_the_same_logits():
    model = build_model("cnn", in_channels=1, image_size=28, n_classes=10, channels=(8, 16), hidden=32).eval()
    view = fuse_conv_relu(model)
    assert view is not model
    assert isinstance(view.conv1, FusedConvReLU) and view.conv1.conv is model.conv1
    assert isinstance(view.conv2, FusedConvReLU) and isinstance(model.conv1, nn.Conv2d)  # the model is unchanged
    assert isinstance(model.relu1, nn.ReLU) and view.fc1 is model.fc1
    assert set(view.state_dict()) == {f"{k.split('.')[0]}.conv.{k.split('.')[1]}" if k.startswith("conv") else k
                                      for k in model.state_dict()}
    x = torch.rand(6, 1, 28, 28)
    with torch.inference_mode():
        torch.testing.assert_close(view(x), model(x), rtol=1e-5, atol=1e-5)


def test_noise_after_the_relu_moves_with_it_and_noise_after_the_conv_keeps_the_pair_apart():
    base = build_model("cnn", in_channels=1, image_size=28, n_classes=10, channels=(8, 16), hidden=32).eval()
    after_relu = inject_noise(base, {"relu1": 0.5, "input": 0.1}).eval()
    view = fuse_conv_relu(after_relu)
    assert isinstance(view.model.conv1, FusedConvReLU) and view.noise is after_relu.noise
    x = torch.rand(3, 1, 28, 28)
    with torch.inference_mode():
        torch.manual_seed(3)
        ours = view(x)
        torch.manual_seed(3)
        theirs = after_relu(x)
        torch.manual_seed(4)
        other_draw = view(x)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)  # the same noise, drawn at the same point
    assert not torch.allclose(ours, other_draw)  # and it is noise
    after_conv = inject_noise(base, {"conv1": 0.5})
    view = fuse_conv_relu(after_conv)
    assert isinstance(view.model.conv1, nn.Conv2d) and isinstance(view.model.conv2, FusedConvReLU)


def test_models_with_nothing_to_fuse_are_returned_as_they_are():
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.ReLU())
    assert fuse_conv_relu(mlp) is mlp
    subclass = type("MyReLU", (nn.ReLU,), {})
    other = nn.Sequential(nn.Conv2d(1, 2, 3), subclass(), nn.Conv2d(2, 2, 3, padding=1, padding_mode="reflect"),
                          nn.ReLU())
    assert fuse_conv_relu(other) is other


def test_smoothing_certifies_through_the_fused_view_with_the_same_counts():
    torch.manual_seed(0)
    model = build_model("cnn", in_channels=1, image_size=28, n_classes=10, channels=(8, 16), hidden=32).eval()
    x = torch.rand(2, 1, 28, 28)
    smoothed = GaussianSmoothing(model, sigma=0.25)
    assert isinstance(smoothed.forward_model.conv1, FusedConvReLU)
    torch.manual_seed(1)
    fused = smoothed.counts(x, 200)
    smoothed.forward_model = model
    torch.manual_seed(1)
    plain = smoothed.counts(x, 200)
    assert (fused - plain).abs().sum() <= 4  # the same draws; a vote may flip on a rounding-level tie
