"""2x2 max pooling by pairwise maxima: the pooling kernel's values exactly, only where eligible
(CPU, gradients off, a 2x2 window with stride 2 and nothing else), PyTorch's kernel otherwise."""

from __future__ import annotations

import contextlib

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from neuroaikit import cpu_pooling
from neuroaikit.cpu_pooling import cpu_pooling_kernels, pairwise_max_pool2d


@pytest.fixture
def calls(monkeypatch):
    """How often the pairwise path ran."""
    counted = {"pairwise": 0}
    original = cpu_pooling.pairwise_max_pool2d

    def counting(x):
        counted["pairwise"] += 1
        return original(x)

    monkeypatch.setattr(cpu_pooling, "pairwise_max_pool2d", counting)
    return counted


@pytest.mark.parametrize("shape", [(3, 4, 8, 8), (2, 5, 7, 9), (4, 6, 6), (1, 1, 2, 2), (2, 3, 3, 2)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("channels_last", [False, True])
def test_pairwise_pooling_equals_the_kernel_bit_for_bit(shape, dtype, channels_last):
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0)).to(dtype)
    x.view(-1)[::7] = x.view(-1)[3]  # ties
    if channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    ours, theirs = pairwise_max_pool2d(x), F.max_pool2d(x, 2)
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    assert torch.equal(ours, theirs)
    if channels_last and x.dim() == 4 and x.shape[1] > 1:
        assert ours.is_contiguous(memory_format=torch.channels_last)


def test_nan_and_infinities_propagate_as_in_the_kernel():
    x = torch.randn(1, 2, 4, 4)
    x[0, 0, 0, 1] = float("nan")
    x[0, 1, 2, 2] = float("-inf")
    x[0, 1, 3, 3] = float("inf")
    ours, theirs = pairwise_max_pool2d(x), F.max_pool2d(x, 2)
    assert torch.equal(ours.isnan(), theirs.isnan())
    assert torch.equal(ours.nan_to_num(0.0), theirs.nan_to_num(0.0))


@pytest.mark.parametrize("pool", [
    lambda x: F.max_pool2d(x, 2),
    lambda x: F.max_pool2d(x, kernel_size=(2, 2), stride=2),
    lambda x: F.max_pool2d(x, 2, 2, 0, 1, False, False),
    lambda x: nn.MaxPool2d(2)(x),
    lambda x: nn.MaxPool2d((2, 2), stride=(2, 2))(x),
])
def test_2x2_stride_2_poolings_take_the_pairwise_path_without_gradients(calls, pool):
    x = torch.randn(2, 3, 6, 6)
    with torch.no_grad(), cpu_pooling_kernels():
        out = pool(x)
    with torch.inference_mode(), cpu_pooling_kernels():
        pool(x)
    assert calls["pairwise"] == 2
    assert torch.equal(out, F.max_pool2d(x, 2))


@pytest.mark.parametrize("pool", [
    lambda x: F.max_pool2d(x, 3),
    lambda x: F.max_pool2d(x, 2, stride=1),
    lambda x: F.max_pool2d(x, 2, padding=1),
    lambda x: F.max_pool2d(x, 2, dilation=2),
    lambda x: F.max_pool2d(x, 2, ceil_mode=True),
    lambda x: F.max_pool2d(x, 2, return_indices=True)[0],
    lambda x: F.avg_pool2d(x, 2),
])
def test_other_poolings_run_the_kernel(calls, pool):
    x = torch.randn(2, 3, 7, 7)
    with torch.no_grad(), cpu_pooling_kernels():
        out = pool(x)
    assert calls["pairwise"] == 0
    assert torch.equal(out, pool(x))


def test_with_gradients_on_the_kernel_runs_and_its_backward_is_kept(calls):
    """With gradients on, a tied window sends its gradient to one input (the kernel's rule),
    where torch.maximum would split it."""
    x = torch.zeros(1, 1, 2, 2, requires_grad=True)
    with cpu_pooling_kernels():
        F.max_pool2d(x, 2).sum().backward()
    assert calls["pairwise"] == 0
    assert x.grad.sum() == 1 and x.grad.max() == 1


def test_a_cnn_gives_the_same_logits_and_certifier_votes_with_the_pairwise_path(calls, monkeypatch):
    from neuroaikit.certify import GaussianSmoothing
    from neuroaikit.certify import certifier
    from neuroaikit.models import build_model

    torch.manual_seed(0)
    model = build_model("cnn", channels=(4, 8), hidden=16).eval().to(memory_format=torch.channels_last)
    x = torch.rand(6, 1, 28, 28)
    with torch.inference_mode():
        plain = model(x)
        with cpu_pooling_kernels():
            pairwise = model(x)
    assert calls["pairwise"] == 2 and torch.equal(plain, pairwise)
    torch.manual_seed(1)
    votes = GaussianSmoothing(model, sigma=0.5).counts(x, 300)
    passes = -(-300 // (256 // 6))  # 42 draws of the 6 images per pass of at most 256 rows
    assert calls["pairwise"] == 2 + 2 * passes
    monkeypatch.setattr(certifier, "cpu_pooling_kernels", lambda: contextlib.nullcontext())
    torch.manual_seed(1)
    assert torch.equal(GaussianSmoothing(model, sigma=0.5).counts(x, 300), votes)
