import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from neuroaikit.errors import ConfigError
from neuroaikit.spiking import EventLinear, FeedForwardLIF, LIFParameters, event_linear
from neuroaikit.spiking import native, synapses
from neuroaikit.spiking.synapses import spike_index

pytestmark = pytest.mark.skipif(native.event_kernels() is None, reason="no C compiler: only the dense path exists")


@pytest.fixture(autouse=True)
def event_path_at_any_size(monkeypatch):
    """Small test shapes would take the dense product (the kernels' fixed costs); force the event path."""
    monkeypatch.setattr(synapses, "MIN_PRODUCT_SIZE", 0)


@pytest.fixture(params=[1, 2], ids=["1-thread", "2-threads"])
def threads(request):
    before = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(before)


def on_grid(t, step=2.0 ** -12):
    """Values whose sums are exact in float32 in any order, so event and dense sums agree bit for bit."""
    return torch.round(t / step) * step


def spikes(*shape, density=0.2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(*shape, generator=g) < density).float()


@pytest.mark.parametrize("n_in,n_out", [(784, 512), (37, 130), (64, 16), (100, 300)])
@pytest.mark.parametrize("bias", [True, False])
def test_forward_and_gradients_equal_the_dense_product(threads, n_in, n_out, bias):
    torch.manual_seed(1)
    weight = (torch.randn(n_out, n_in) * 0.1).requires_grad_()
    b = (torch.randn(n_out) * 0.1).requires_grad_() if bias else None
    x = spikes(6, 11, n_in).requires_grad_()
    grad = torch.randn(6, 11, n_out)
    assert spike_index(x.detach().reshape(-1, n_in)) is not None  # the event path is the one under test

    out = event_linear(x, weight, b)
    out.backward(grad)
    ours = [x.grad, weight.grad] + ([b.grad] if bias else [])
    for t in [x, weight] + ([b] if bias else []):
        t.grad = None
    expected = F.linear(x, weight, b)
    expected.backward(grad)
    theirs = [x.grad, weight.grad] + ([b.grad] if bias else [])

    assert out.shape == expected.shape == (6, 11, n_out)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    for mine, reference in zip(ours, theirs):
        torch.testing.assert_close(mine, reference, atol=1e-4, rtol=1e-4)


def test_sums_are_bit_identical_when_every_sum_is_exact(threads):
    torch.manual_seed(2)
    weight, bias = on_grid(torch.randn(200, 300) * 0.1), on_grid(torch.randn(200) * 0.1)
    x = spikes(25, 8, 300, density=0.3)
    assert torch.equal(event_linear(x, weight, bias), F.linear(x, weight, bias))


def test_inputs_that_are_not_spikes_take_the_dense_product():
    torch.manual_seed(3)
    weight, bias = torch.randn(64, 50), torch.randn(64)
    graded = torch.rand(10, 50)  # firing rates, not spikes
    assert spike_index(graded) is None
    assert torch.equal(event_linear(graded, weight, bias), F.linear(graded, weight, bias))


def test_dense_inputs_and_narrow_layers_take_the_dense_product():
    torch.manual_seed(4)
    busy = spikes(40, 50, density=0.9)
    assert spike_index(busy, max_density=0.5) is None
    weight, bias = torch.randn(64, 50), torch.randn(64)
    assert torch.equal(event_linear(busy, weight, bias, max_density=0.5), F.linear(busy, weight, bias))
    narrow = torch.randn(10, 50)  # fewer outputs than one vector tile
    quiet = spikes(40, 50)
    assert torch.equal(event_linear(quiet, narrow), F.linear(quiet, narrow))


def test_small_products_take_the_dense_product(monkeypatch):
    monkeypatch.setattr(synapses, "MIN_PRODUCT_SIZE", 2 ** 24)
    calls = []
    monkeypatch.setattr(synapses, "spike_index", lambda *a: calls.append(a))
    weight = torch.randn(64, 50)
    x = spikes(40, 50)
    assert torch.equal(event_linear(x, weight), F.linear(x, weight))
    assert calls == []


def test_silent_input_gives_the_bias_and_no_weight_gradient():
    weight = torch.randn(32, 20, requires_grad=True)
    bias = torch.randn(32, requires_grad=True)
    out = event_linear(torch.zeros(7, 20), weight, bias)
    assert torch.equal(out, bias.detach().expand(7, 32))
    out.sum().backward()
    assert torch.count_nonzero(weight.grad) == 0
    assert torch.equal(bias.grad, torch.full((32,), 7.0))


def test_compressed_rows_list_the_active_inputs():
    x = torch.tensor([[0.0, 1, 1, 0], [0, 0, 0, 0], [1, 0, 0, 1]])
    row_ptr, columns = spike_index(x, max_density=1.0)
    assert row_ptr.tolist() == [0, 2, 2, 4]
    assert columns.tolist() == [1, 2, 0, 3]


def test_spike_index_rejects_what_its_kernels_cannot_read():
    with pytest.raises(ConfigError, match="contiguous 2-D float32"):
        spike_index(spikes(10, 20).t())
    with pytest.raises(ConfigError, match="float64"):
        spike_index(spikes(10, 20).double())


def test_event_linear_is_a_drop_in_linear_layer():
    layer = EventLinear(30, 40)
    assert isinstance(layer, nn.Linear)
    assert set(layer.state_dict()) == set(nn.Linear(30, 40).state_dict())
    assert "max_density=None" in repr(layer)
    with pytest.raises(ConfigError, match="max_density"):
        event_linear(spikes(3, 30), layer.weight, layer.bias, max_density=1.5)


def test_feedforward_lif_spikes_do_not_depend_on_the_product(threads):
    torch.manual_seed(5)
    net = FeedForwardLIF([120, 64, 64, 10], LIFParameters.from_beta(0.9))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(on_grid(p * 3))
    x = spikes(10, 6, 120)
    event = net(x)
    for layer in net.modules():
        if isinstance(layer, EventLinear):
            layer.max_density = 0.0
    dense = net(x)
    assert event.sum() > 0
    assert torch.equal(event, dense)


def cpu_flags() -> set[str]:
    try:
        lines = open("/proc/cpuinfo").read().splitlines()
    except OSError:
        return set()
    return {flag for line in lines if line.startswith("flags") for flag in line.split(":", 1)[1].split()}


def test_the_kernels_use_one_register_of_the_cpus_widest_simd_per_vector():
    """Wider vectors split into several registers and spill (on AVX2 the event path lost to dense)."""
    flags = cpu_flags()
    if not flags:
        pytest.skip("no /proc/cpuinfo flags to compare with")
    expected = 64 if "avx512f" in flags else 32 if "avx" in flags else 16
    assert native.event_kernels().vector_bytes() == expected


@pytest.mark.parametrize("width, density, product", [(64, 0.5, 2 ** 24), (32, 0.25, 2 ** 26), (16, 0.25, 2 ** 26)])
def test_the_default_limits_are_the_break_evens_for_the_vector_width(monkeypatch, width, density, product):
    from types import SimpleNamespace

    monkeypatch.setattr(synapses, "MIN_PRODUCT_SIZE", 2 ** 24)  # undo the fixture's "event path at any size"
    monkeypatch.setattr(synapses, "event_kernels", lambda: SimpleNamespace(vector_bytes=lambda: width))
    assert synapses.default_max_density() == density and synapses.min_product_size() == product
    calls = []
    monkeypatch.setattr(synapses, "spike_index", lambda *a: calls.append(a))
    weight = torch.randn(2 ** 10, 2 ** 8)
    x = spikes(2 ** 9, 2 ** 8)  # 2^27 multiply-adds: above either limit, the event path is tried
    event_linear(x, weight)
    assert len(calls) == 1
    x = spikes(2 ** 7, 2 ** 8)  # 2^25: between the two limits
    event_linear(x, weight)
    assert len(calls) == (2 if width == 64 else 1)


def test_without_kernels_the_limits_are_the_wide_ones(monkeypatch):
    monkeypatch.setattr(synapses, "MIN_PRODUCT_SIZE", 2 ** 24)
    monkeypatch.setattr(synapses, "event_kernels", lambda: None)
    assert synapses.default_max_density() == 0.5 and synapses.min_product_size() == 2 ** 24


def test_spikes_above_the_density_limit_take_the_dense_product():
    limit = synapses.default_max_density()
    x = torch.zeros(20, 100)
    x[:, : int(100 * limit) + 1] = 1.0  # just above the limit: dense
    assert spike_index(x) is None
    x[:, int(100 * limit)] = 0.0  # at the limit: events
    assert spike_index(x) is not None


def test_without_the_kernels_everything_takes_the_dense_product(monkeypatch):
    monkeypatch.setattr(synapses, "event_kernels", lambda: None)
    weight = torch.randn(64, 50)
    x = spikes(10, 50)
    assert torch.equal(event_linear(x, weight), F.linear(x, weight))


def test_kernels_build_into_an_empty_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("NEUROAIKIT_CACHE_DIR", str(tmp_path))
    native.event_kernels.cache_clear()
    try:
        assert native.event_kernels() is not None
        assert [p.suffix for p in tmp_path.iterdir()] == [".so"]  # no temporary file left behind
    finally:
        native.event_kernels.cache_clear()


def test_a_missing_compiler_warns_once_and_falls_back(monkeypatch):
    monkeypatch.setenv("CC", "no-such-compiler-here")
    native.event_kernels.cache_clear()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert native.event_kernels() is None
            assert native.event_kernels() is None
        assert len(caught) == 1 and "dense products" in str(caught[0].message)
    finally:
        native.event_kernels.cache_clear()


def test_non_contiguous_operands():
    torch.manual_seed(6)
    weight = torch.randn(90, 64).t()  # (64 outputs, 90 inputs), a transposed view
    bias = torch.randn(128)[::2]  # 64 values, stride 2
    x = spikes(90, 30).t()  # (30, 90), a transposed view
    assert not (weight.is_contiguous() or bias.is_contiguous() or x.is_contiguous())
    torch.testing.assert_close(event_linear(x, weight, bias), F.linear(x, weight, bias), atol=1e-5, rtol=1e-5)
