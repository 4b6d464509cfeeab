"""Spiking layers on any device and dtype: neuron states follow their input, the CPU-only event
kernels step aside for anything else, and the classifiers train in bfloat16 autocast.

Tensors on the ``meta`` device stand in for a GPU where none is present: they are not CPU
tensors, so any code that assumes the CPU (a state made with ``torch.zeros(shape)``, a C kernel
given the pointer) fails or is bypassed exactly as it would be with CUDA tensors.
"""

import pytest
import torch
import torch.nn.functional as F

from neuroaikit.execution import ExecutionConfig
from neuroaikit.models import build_model
from neuroaikit.progress import silent
from neuroaikit.spiking import (FeedForwardLIF, IFParameters, LIFParameters, LIFState, event_linear, lif_sequence,
                                lif_step, synapses)
from neuroaikit.training import TrainConfig, TrainingResult, train

def cuda(test):
    """A test that needs a GPU: skipped without one, selected by ``make test-gpu`` (marked gpu)."""
    return pytest.mark.gpu(pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")(test))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float64])
@pytest.mark.parametrize("params", [LIFParameters(tau_mem=3.0), IFParameters(reset="zero")])
def test_neuron_states_are_made_like_the_input(dtype, params):
    x = (torch.rand(5, 4, 6) * 2).to(dtype)
    z, state = lif_step(x[0], None, params)
    assert z.dtype == state.v.dtype == state.z.dtype == dtype
    zs, final = lif_sequence(x, None, params)
    assert zs.dtype == final.v.dtype == dtype and zs.shape == x.shape
    meta = torch.empty(5, 4, 6, device="meta", dtype=dtype)
    z, state = lif_step(meta[0], None, params)
    assert z.device.type == state.v.device.type == "meta"
    zs, final = lif_sequence(meta, None, params)
    assert zs.device.type == final.v.device.type == "meta"


SPIKING_MODELS = [("snn_cnn", {"T": 3}), ("snn_cnn", {"T": 3, "readout": "count", "encoder": "poisson"}),
                  ("snn_cnn", {"T": 3, "encoder": "latency"}), ("snn_mlp", {"T": 3}),
                  ("snn_mlp", {"T": 3, "encoder": "poisson"}), ("snn_converted", {"T": 3}),
                  ("snn_converted", {"T": 3, "encoder": "poisson"}), ("krotov_hopfield", {"n_hidden": 30})]


@pytest.mark.parametrize("name,kwargs", SPIKING_MODELS, ids=lambda v: v if isinstance(v, str) else None)
def test_registered_models_make_every_tensor_on_their_inputs_device(name, kwargs):
    """With torch's default device set to ``meta``, a tensor made without ``device=`` inside a
    forward or backward pass would land there and meet the CPU tensors in an error, as it would
    meet CUDA tensors on a GPU."""
    model = build_model(name, in_channels=1, image_size=8, n_classes=3, **kwargs)
    x = torch.rand(4, 1, 8, 8, requires_grad=True)
    with torch.device("meta"):
        out = model(x)
        out.sum().backward()
    assert out.device.type == "cpu" and out.shape == (4, 3)


@pytest.mark.parametrize("name,kwargs", [m for m in SPIKING_MODELS if "encoder" not in m[1]],
                         ids=lambda v: v if isinstance(v, str) else None)
def test_registered_models_run_on_a_device_that_is_not_the_cpu(name, kwargs):
    model = build_model(name, in_channels=1, image_size=8, n_classes=3, **kwargs).to("meta")
    x = torch.empty(4, 1, 8, 8, device="meta", requires_grad=True)
    out = model(x)
    out.sum().backward()
    assert out.device.type == x.grad.device.type == "meta"


def test_a_float32_state_with_bfloat16_input_steps_without_error():
    # under autocast a state carried from a float32 step may meet a bfloat16 current
    state = LIFState(torch.zeros(4, 3), torch.zeros(4, 3))
    zs, final = lif_sequence(torch.full((3, 4, 3), 0.6, dtype=torch.bfloat16), state, LIFParameters())
    assert zs.sum() > 0 and torch.isfinite(final.v.float()).all()


@pytest.fixture
def spike_index_calls(monkeypatch):
    """Event path at any size, and a record of every call into the CPU kernels' indexer."""
    monkeypatch.setattr(synapses, "MIN_PRODUCT_SIZE", 0)
    calls = []
    original = synapses.spike_index

    def spy(spikes, *args):
        calls.append((spikes.dtype, spikes.device.type))
        return original(spikes, *args)

    monkeypatch.setattr(synapses, "spike_index", spy)
    return calls


def test_event_linear_takes_the_dense_product_off_the_cpu(spike_index_calls):
    spikes = torch.empty(8, 40, device="meta")
    weight, bias = torch.empty(32, 40, device="meta"), torch.empty(32, device="meta")
    out = event_linear(spikes, weight, bias)
    assert out.device.type == "meta" and out.shape == (8, 32)
    assert spike_index_calls == []


def test_bfloat16_spikes_under_autocast_take_the_dense_product(spike_index_calls):
    torch.manual_seed(0)
    spikes = (torch.rand(6, 50) < 0.2).to(torch.bfloat16)
    weight, bias = torch.randn(32, 50), torch.randn(32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = event_linear(spikes, weight, bias)
        expected = F.linear(spikes, weight, bias)
    assert spike_index_calls == []
    assert out.dtype == torch.bfloat16 and torch.equal(out, expected)
    # a whole spiking network under autocast: the first layer's graded float32 input is examined (and
    # found not to be spikes); its LIF layer then spikes in bfloat16, so the second product is dense
    net = FeedForwardLIF([50, 40, 30], LIFParameters.from_beta(0.9))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(torch.rand(4, 6, 50) * 3)
    assert out.dtype == torch.bfloat16 and out.sum() > 0
    assert spike_index_calls == [(torch.float32, "cpu")]


def test_float32_spikes_on_the_cpu_still_take_the_event_path(spike_index_calls):
    from neuroaikit.spiking import native

    if native.event_kernels() is None:
        pytest.skip("no C compiler: only the dense path exists")
    spikes = (torch.rand(6, 50) < 0.2).float()
    event_linear(spikes, torch.randn(32, 50))
    assert spike_index_calls == [(torch.float32, "cpu")]


def _gradients(model, x, y, bf16: bool) -> torch.Tensor:
    model.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        loss = F.cross_entropy(model(x), y)
    loss.backward()
    return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])


@pytest.mark.parametrize("name,kwargs", [("snn_cnn", {"T": 4, "channels": [8, 16], "hidden": 32}),
                                         ("snn_mlp", {"T": 6, "hidden": [64]})])
def test_bfloat16_surrogate_gradients_agree_with_float32(name, kwargs):
    """The measurement behind allowing ``--precision bf16-mixed`` for spiking classifiers: spikes
    near threshold may flip, but the surrogate gradients keep their direction (MNIST, 256 images:
    cosine 0.992 for snn_cnn T=4, 0.9999 for snn_mlp)."""
    from neuroaikit.data import load_dataset

    test = load_dataset("digits", "test")
    x, y = test.images[:128], test.labels[:128]
    torch.manual_seed(0)
    model = build_model(name, in_channels=1, image_size=8, n_classes=10, **kwargs)
    reference, mixed = _gradients(model, x, y, False), _gradients(model, x, y, True)
    assert torch.isfinite(mixed).all()
    assert F.cosine_similarity(reference, mixed, dim=0) > 0.95


def test_a_spiking_classifier_trains_in_bfloat16_mixed_precision(tmp_path):
    config = TrainConfig(dataset="digits", model="snn_cnn", model_kwargs={"T": 2, "channels": [4, 8], "hidden": 16},
                         epochs=3, batch_size=64, lr=1e-2, eval_rule="mean", eval_draws=1,
                         execution=ExecutionConfig(device="cpu", precision="bf16-mixed"))
    result = TrainingResult.load(train(config, tmp_path / "snn-bf16", progress=silent()))
    assert result.execution["precision"] == "bf16-mixed"
    assert all(torch.isfinite(torch.tensor(h["loss"])) for h in result.history)
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    assert result.test_accuracy["single"] > 0.5  # chance 0.1; float32 reaches ~0.78 with these settings


@cuda
@pytest.mark.parametrize("name", ["snn_cnn", "snn_mlp"])
def test_spiking_classifiers_train_on_cuda(name, spike_index_calls):
    torch.manual_seed(0)
    model = build_model(name, in_channels=1, image_size=8, n_classes=3, T=3).cuda()
    x, y = torch.rand(16, 1, 8, 8, device="cuda"), torch.randint(0, 3, (16,), device="cuda")
    for bf16 in (False, True):
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        assert torch.isfinite(loss) and all(p.grad.is_cuda for p in model.parameters() if p.grad is not None)
    assert spike_index_calls == []


@cuda
def test_event_linear_on_cuda_equals_the_dense_product(spike_index_calls):
    spikes = (torch.rand(6, 50, device="cuda") < 0.2).float()
    weight, bias = torch.randn(32, 50, device="cuda"), torch.randn(32, device="cuda")
    assert torch.equal(event_linear(spikes, weight, bias), F.linear(spikes, weight, bias))
    assert spike_index_calls == []
