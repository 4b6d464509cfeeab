"""Float32 CPU linear layers through oneDNN: the same values and gradients as ``F.linear`` to
float32 rounding, used only where eligible and only when measured faster by the margin."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from neuroaikit import cpu_linear
from neuroaikit.cpu_linear import OneDNNLinear, chosen_kernel, cpu_linear_kernels, onednn_available
from neuroaikit.errors import ConfigError
from neuroaikit.execution import Execution, ExecutionConfig

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(not onednn_available(), reason="this PyTorch build has no oneDNN linear kernel")


@pytest.fixture
def kernel(monkeypatch):
    def use(choice: str) -> None:
        monkeypatch.setenv(cpu_linear.ENV, choice)
    return use


@pytest.mark.parametrize("shape", [(32, 20), (3, 5, 20), (1, 20)])
@pytest.mark.parametrize("with_bias", [True, False])
def test_onednn_linear_gives_f_linear_values_and_gradients(shape, with_bias):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(*shape, generator=generator, requires_grad=True)
    weight = torch.randn(12, 20, generator=generator, requires_grad=True)
    bias = torch.randn(12, generator=generator, requires_grad=True) if with_bias else None
    inputs = (x, weight) + ((bias,) if with_bias else ())
    ours, theirs = OneDNNLinear.apply(x, weight, bias), F.linear(x, weight, bias)
    grad = torch.randn(theirs.shape, generator=generator)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    for mine, reference in zip(torch.autograd.grad(ours, inputs, grad), torch.autograd.grad(theirs, inputs, grad)):
        torch.testing.assert_close(mine, reference, rtol=1e-5, atol=1e-5)


def test_in_the_context_nn_linear_uses_onednn_only_where_eligible(kernel):
    kernel("onednn")
    layer = torch.nn.Linear(80, 64)
    x = torch.randn(8, 80)
    with cpu_linear_kernels():
        assert type(layer(x).grad_fn).__name__ == "OneDNNLinearBackward"
        # small layers (an output head), float64, bf16 autocast and functorch transforms keep PyTorch's kernel
        assert type(torch.nn.Linear(80, 10)(x).grad_fn).__name__ == "AddmmBackward0"
        assert type(layer.double()(x.double()).grad_fn).__name__ != "OneDNNLinearBackward"
        layer.float()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert type(layer(x).grad_fn).__name__ != "OneDNNLinearBackward"
        per_example = torch.func.vmap(torch.func.grad(lambda w, xi: F.linear(xi, w).sum()), in_dims=(None, 0))
        torch.testing.assert_close(per_example(layer.weight.detach(), x), x[:, None, :].expand(8, 64, 80))
    assert type(layer(x).grad_fn).__name__ == "AddmmBackward0"  # outside the context: unchanged


def test_a_model_trains_to_the_same_weights_through_either_kernel(kernel):
    def trained(choice):
        kernel(choice)
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(80, 64), torch.nn.ReLU(), torch.nn.Linear(64, 3))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        x, y = torch.randn(64, 80), torch.randint(3, (64,))
        for _ in range(20):
            with cpu_linear_kernels():
                loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    torch.testing.assert_close(trained("onednn"), trained("blas"), rtol=1e-4, atol=1e-5)


def test_second_derivatives_through_onednn_equal_f_linear_ones(kernel):
    kernel("onednn")
    torch.manual_seed(0)
    layer, x = torch.nn.Linear(70, 64), torch.randn(4, 70, requires_grad=True)

    def gradient_penalty_grads(context):
        with context:
            y = torch.tanh(layer(x)).pow(2).sum()
        (gx,) = torch.autograd.grad(y, x, create_graph=True)
        return torch.autograd.grad(gx.pow(2).sum(), (x, layer.weight, layer.bias))

    for ours, theirs in zip(gradient_penalty_grads(cpu_linear_kernels()), gradient_penalty_grads(contextlib.nullcontext())):
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("vendor, capability, mkl, expected", [
    ("AuthenticAMD", "AVX512", True, "onednn"),
    ("AuthenticAMD", "AVX2", True, "blas"),  # MKL's AVX2 code is what the core runs best anyway
    ("GenuineIntel", "AVX512", True, "blas"),  # MKL uses its AVX-512 kernels on Intel's CPUs
    ("AuthenticAMD", "AVX512", False, "blas"),  # another BLAS: not measured, left alone
])
def test_auto_uses_onednn_only_where_mkl_leaves_avx512_unused(kernel, monkeypatch, vendor, capability, mkl, expected):
    kernel("auto")
    monkeypatch.setattr(cpu_linear, "cpu_vendor", lambda: vendor)
    monkeypatch.setattr(cpu_linear.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    monkeypatch.setattr(torch.backends.mkl, "is_available", lambda: mkl)
    cpu_linear.blas_is_slow.cache_clear()  # the rule is read once per process
    try:
        assert chosen_kernel() == expected
    finally:
        cpu_linear.blas_is_slow.cache_clear()


def test_the_setting_is_validated_and_recorded(kernel):
    kernel("fastest")
    with pytest.raises(ConfigError, match="NEUROAIKIT_CPU_LINEAR must be one of"):
        chosen_kernel()
    kernel("blas")
    with Execution(ExecutionConfig(device="cpu")) as ex:
        assert ex.describe()["cpu_linear"] == "blas"
        layer = torch.nn.Linear(80, 64)
        with ex.autocast():
            assert type(layer(torch.randn(2, 80)).grad_fn).__name__ == "AddmmBackward0"
    kernel("onednn")
    with Execution(ExecutionConfig(device="cpu")) as ex:
        assert ex.describe()["cpu_linear"] == "onednn"
        with ex.autocast():
            assert type(layer(torch.randn(2, 80)).grad_fn).__name__ == "OneDNNLinearBackward"
    with Execution(ExecutionConfig(device="cpu", precision="bf16-mixed")) as ex:
        assert "cpu_linear" not in ex.describe()


@pytest.mark.parametrize("args, message", [(["--repeats", "0"], "--repeats must be >= 1, got 0"),
                                           (["--data-dir", "/no/such/folder"], "/no/such/folder")])
def test_the_benchmark_refuses_bad_settings_in_one_line(shared_data, tmp_path, args, message):
    command = [sys.executable, str(REPO / "benchmarks" / "cpu_linear.py"), "--data-dir", str(shared_data), *args]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert message in result.stderr.splitlines()[-1] and "Traceback" not in result.stderr


def test_a_bad_setting_stops_a_command_in_one_line_before_it_creates_anything(tmp_path, monkeypatch):
    monkeypatch.setenv(cpu_linear.ENV, "fastest")
    out = tmp_path / "runs" / "digits"
    command = [sys.executable, "-m", "neuroaikit", "train", "--dataset", "digits", "--epochs", "1", "--quiet",
               "--no-report", "--out", str(out)]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: NEUROAIKIT_CPU_LINEAR must be one of ['auto', 'blas', 'onednn'], got 'fastest'"]
    assert not (tmp_path / "runs").exists()
