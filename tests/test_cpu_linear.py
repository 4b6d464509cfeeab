"""Float32 CPU linear layers through oneDNN: the same values and gradients as ``F.linear`` to
float32 rounding, used only where eligible and only when measured faster by the margin."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from neuroaikit import cpu_linear
from neuroaikit.cpu_linear import OneDNNLinear, chosen_kernel, cpu_linear_kernels, onednn_available
from neuroaikit.errors import ConfigError
from neuroaikit.execution import Execution, ExecutionConfig

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
    layer = torch.nn.Linear(20, 4)
    x = torch.randn(8, 20)
    with cpu_linear_kernels():
        assert type(layer(x).grad_fn).__name__ == "OneDNNLinearBackward"
        # float64, bf16 autocast and functorch transforms keep PyTorch's own kernel
        assert type(layer.double()(x.double()).grad_fn).__name__ != "OneDNNLinearBackward"
        layer.float()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert type(layer(x).grad_fn).__name__ != "OneDNNLinearBackward"
        per_example = torch.func.vmap(torch.func.grad(lambda w, xi: F.linear(xi, w).sum()), in_dims=(None, 0))
        torch.testing.assert_close(per_example(layer.weight.detach(), x), x[:, None, :].expand(8, 4, 20))
    assert type(layer(x).grad_fn).__name__ == "AddmmBackward0"  # outside the context: unchanged


def test_a_model_trains_to_the_same_weights_through_either_kernel(kernel):
    def trained(choice):
        kernel(choice)
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(20, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        x, y = torch.randn(64, 20), torch.randint(3, (64,))
        for _ in range(20):
            with cpu_linear_kernels():
                loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    torch.testing.assert_close(trained("onednn"), trained("blas"), rtol=1e-4, atol=1e-5)


def test_double_backward_through_onednn_says_it_is_not_supported(kernel):
    kernel("onednn")
    x = torch.randn(4, 5, requires_grad=True)
    with cpu_linear_kernels():
        y = torch.nn.Linear(5, 2)(x).pow(2).sum()
    (gx,) = torch.autograd.grad(y, x, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable|marked with @once_differentiable"):
        gx.sum().backward()


def test_auto_choice_needs_the_margin_and_is_measured_once_per_thread_count(kernel, monkeypatch):
    kernel("auto")
    calls = []

    def measure(blas_s):
        def fake():
            calls.append(torch.get_num_threads())
            return {"blas_s": blas_s, "onednn_s": 1.0}
        return fake

    monkeypatch.setattr(cpu_linear, "_measured", {})
    monkeypatch.setattr(cpu_linear, "measure", measure(1.2))
    assert chosen_kernel() == "blas"  # 1.2x faster is within the margin: keep the BLAS
    monkeypatch.setattr(cpu_linear, "_measured", {})
    monkeypatch.setattr(cpu_linear, "measure", measure(2.0))
    assert chosen_kernel() == "onednn" and chosen_kernel() == "onednn"
    assert len(calls) == 2  # the second call of the 2.0x case came from the cache
    assert set(cpu_linear.measure().keys()) == {"blas_s", "onednn_s"}


def test_the_setting_is_validated_and_recorded(kernel):
    kernel("fastest")
    with pytest.raises(ConfigError, match="NEUROAIKIT_CPU_LINEAR must be one of"):
        chosen_kernel()
    kernel("blas")
    with Execution(ExecutionConfig(device="cpu")) as ex:
        assert ex.describe()["cpu_linear"] == "blas"
        layer = torch.nn.Linear(3, 2)
        with ex.autocast():
            assert type(layer(torch.randn(2, 3)).grad_fn).__name__ == "AddmmBackward0"
    kernel("onednn")
    with Execution(ExecutionConfig(device="cpu")) as ex:
        assert ex.describe()["cpu_linear"] == "onednn"
        with ex.autocast():
            assert type(layer(torch.randn(2, 3)).grad_fn).__name__ == "OneDNNLinearBackward"
    with Execution(ExecutionConfig(device="cpu", precision="bf16-mixed")) as ex:
        assert "cpu_linear" not in ex.describe()
