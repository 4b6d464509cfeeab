import pytest
import torch

from neuroaikit.errors import ConfigError
from neuroaikit.models import SmallCNN, build_from_spec, build_model, model_spec
from neuroaikit.spiking import ConvertedSNN, RateGatedMaxPool, SpikingCNN, SpikingMLP, activation_scales, convert_cnn

TINY = {"in_channels": 1, "image_size": 8, "n_classes": 3, "T": 3, "channels": [2, 3], "hidden": 6}


@pytest.mark.parametrize("readout", ["membrane", "count"])
@pytest.mark.parametrize("encoder", ["direct", "poisson", "latency"])
def test_snn_cnn_shapes_and_input_gradients(readout, encoder):
    model = build_model("snn_cnn", **TINY, readout=readout, encoder=encoder)
    x = torch.rand(4, 1, 8, 8, requires_grad=True)
    out = model(x)
    assert out.shape == (4, 3)
    out.sum().backward()  # surrogate gradients reach the input (attacks need them), latency's included
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_snn_cnn_rebuilds_from_spec_and_accepts_noise():
    spec = model_spec("snn_cnn", TINY, {"conv2": "gaussian:0.1"})
    model = build_from_spec(spec)
    from neuroaikit.noise import forward_draws

    out = forward_draws(model, torch.rand(2, 1, 8, 8), 4)
    assert out.shape == (4, 2, 3)


def test_snn_mlp_and_errors():
    assert SpikingMLP(image_size=4, n_classes=2, T=2, hidden=[5])(torch.rand(3, 1, 4, 4)).shape == (3, 2)
    with pytest.raises(ConfigError, match="T"):
        SpikingCNN(T=0)
    with pytest.raises(ConfigError, match="readout"):
        SpikingCNN(readout="max")
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        SpikingCNN(**TINY, encoder="poisson")(torch.full((1, 1, 8, 8), 2.0))
    with pytest.raises(ConfigError, match="tau_mem"):
        SpikingCNN(tau_mem=-1.0)


def test_snn_cnn_learns_a_trivial_task():
    torch.manual_seed(0)
    x = torch.rand(64, 1, 8, 8) * 0.2
    y = torch.randint(0, 2, (64,))
    x[y == 1, :, :4] += 0.8
    model = SpikingCNN(**{**TINY, "n_classes": 2})
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(30):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    assert (model(x).argmax(1) == y).float().mean() > 0.9


def test_rate_gated_max_pool_follows_the_most_active_neuron():
    pool = RateGatedMaxPool(2)
    counts = None
    # neuron (0,0) fires every step, (0,1) every other step: the pool must pass (0,0)'s train
    outs = []
    for t in range(4):
        s = torch.zeros(1, 1, 2, 2)
        s[0, 0, 0, 0] = 1.0
        s[0, 0, 0, 1] = float(t % 2 == 1)
        out, counts = pool(s, counts)
        outs.append(out.item())
    assert outs == [1.0, 1.0, 1.0, 1.0]


def test_conversion_of_a_tiny_cnn_tracks_the_ann():
    torch.manual_seed(0)
    ann = SmallCNN(1, 8, 3, channels=(4, 4), hidden=16)
    x = torch.rand(32, 1, 8, 8)
    scales = activation_scales(ann, x, percentile=100.0)
    with torch.no_grad():
        assert scales[0] == pytest.approx(ann.relu1(ann.conv1(x)).max().item())
    snn = convert_cnn(ann, x, T=400, percentile=100.0)
    assert isinstance(snn, ConvertedSNN)
    with torch.no_grad():
        a, s = ann(x), snn(x)
    corr = torch.corrcoef(torch.stack([a.flatten(), s.flatten()]))[0, 1]
    assert corr > 0.95 and (a.argmax(1) == s.argmax(1)).float().mean() >= 0.8
    # the converted network is a registered model: run folders rebuild it
    spec = model_spec("snn_converted", {"in_channels": 1, "image_size": 8, "n_classes": 3, "channels": [4, 4],
                                        "hidden": 16, "T": 400, "scales": snn.scales})
    rebuilt = build_from_spec(spec)
    rebuilt.load_state_dict(snn.state_dict())
    with torch.no_grad():
        assert torch.allclose(rebuilt(x), s)
    with pytest.raises(ConfigError):
        convert_cnn(torch.nn.Linear(2, 2), x)
    with pytest.raises(ConfigError, match="percentile"):
        activation_scales(ann, x, percentile=0)


@pytest.mark.parametrize("percentile", [50.0, 99.0, 99.9, 100.0])
def test_activation_scales_are_numpy_percentiles_of_the_non_zero_relu_outputs(percentile):
    """As the authors' SNN toolbox normalises (``get_scale_fac`` on ``activations[np.nonzero(...)]``)."""
    import numpy as np

    torch.manual_seed(0)
    ann = SmallCNN(1, 8, 3, channels=(4, 4), hidden=16)
    x = torch.rand(40, 1, 8, 8)
    scales = activation_scales(ann, x, percentile=percentile, batch_size=16)
    with torch.no_grad():
        relu1 = ann.relu1(ann.conv1(x))
        relu2 = ann.relu2(ann.conv2(ann.pool1(relu1)))
        relu3 = ann.relu3(ann.fc1(ann.flatten(ann.pool2(relu2))))
    for scale, outputs in zip(scales, (relu1, relu2, relu3)):
        values = outputs.flatten().numpy()
        assert (values == 0).mean() > 0.1  # enough zeros that leaving them out matters
        assert scale == pytest.approx(float(np.percentile(values[values != 0], percentile)), rel=1e-5)


def test_rate_probes_give_alignment_features():
    from neuroaikit.alignment.features import extract_features

    model = SpikingCNN(**TINY).eval()
    feats = extract_features(model, torch.rand(5, 1, 8, 8), layers=["rate1", "rate2", "rate3"])
    rates = feats["rate3"]
    assert rates.shape[0] == 5 and float(rates.min()) >= 0 and float(rates.max()) <= 1


def test_pgd_attack_runs_through_surrogate_gradients():
    from neuroaikit.attacks.pgd import PGD

    torch.manual_seed(0)
    model = SpikingCNN(**TINY).eval()
    x, y = torch.rand(4, 1, 8, 8), torch.randint(0, 3, (4,))
    x_adv = PGD(model, eps=0.1, alpha=0.02, steps=3)(x, y)
    assert x_adv.shape == x.shape and (x_adv - x).abs().max() <= 0.1 + 1e-6 and not torch.equal(x_adv, x)


def test_snn_mlp_direct_coding_computes_fc1_once_with_the_spikes_of_every_step():
    from neuroaikit.spiking.encoders import direct_encode

    torch.manual_seed(0)
    model = SpikingMLP(image_size=4, n_classes=3, T=5, hidden=[20, 18])
    x = torch.rand(6, 1, 4, 4)

    def old_forward(images):  # fc1 on all T copies of the image
        return model.readout(model.body(direct_encode(images.flatten(1), model.T)).mean(0))

    seen = []
    model.body.fc1.register_forward_hook(lambda m, i, o: seen.append(tuple(i[0].shape)))
    assert torch.allclose(model(x), old_forward(x), atol=1e-5, rtol=0)
    assert seen[0] == (6, 16)  # one row per image, not per (step, image)
    with torch.no_grad():  # on a grid every sum is exact, so any summation order gives the same bits
        for p in model.parameters():
            p.copy_(torch.round(p * 64) / 64)
    xg = torch.round(x * 16) / 16
    assert torch.equal(model(xg), old_forward(xg))


def test_snn_mlp_poisson_passes_the_straight_through_gradient_to_the_input():
    from neuroaikit.spiking.encoders import poisson_encode

    model = SpikingMLP(image_size=4, n_classes=3, T=6, hidden=[9], encoder="poisson")
    x = torch.rand(5, 1, 4, 4, requires_grad=True)
    torch.manual_seed(3)
    out = model(x)
    out[:, 0].sum().backward()
    # independently: the same spikes as a leaf; d spike / dx = 1 at every step
    torch.manual_seed(3)
    spikes = poisson_encode(x.detach().flatten(1), 6).requires_grad_(True)
    reference = model.readout(model.body(spikes).mean(0))
    reference[:, 0].sum().backward()
    assert torch.equal(out, reference)
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert torch.allclose(x.grad, spikes.grad.sum(0).view_as(x), atol=1e-6)


@pytest.mark.parametrize("build", [lambda: SpikingMLP(image_size=8, n_classes=3, T=3, hidden=[6], encoder="latency"),
                                   lambda: SpikingCNN(**TINY, encoder="latency")])
def test_a_gradient_attack_reaches_the_pixels_of_a_latency_coded_snn(build):
    from neuroaikit.attacks.pgd import PGD

    torch.manual_seed(0)
    model = build().eval()
    x, y = torch.rand(4, 1, 8, 8), torch.randint(0, 3, (4,))
    xg = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(torch.nn.functional.cross_entropy(model(xg), y), xg)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    adv = PGD(model, eps=0.1, alpha=0.05, steps=3)(x, y)
    assert (adv - x).abs().max() <= 0.1 + 1e-6 and not torch.equal(adv, x)


def test_the_latency_surrogate_is_the_gradient_of_the_jittered_spike_train():
    """d/dx of E[spike at t] when the spike time (1 - x)(T - 1) is jittered by N(0, 1) steps:
    P(t - 1/2 < time + jitter < t + 1/2), differentiated by autograd through the normal CDF."""
    from neuroaikit.spiking import latency_encode

    T = 7
    x = torch.tensor([0.3, 0.55, 0.0, 0.9, 1.0], dtype=torch.float64, requires_grad=True)
    weights = torch.randn(T, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    (latency_encode(x, T) * weights).sum().backward()
    normal = torch.distributions.Normal(0.0, 1.0)
    reference = x.detach().clone().requires_grad_(True)
    time = (1 - reference) * (T - 1)
    steps = torch.arange(T, dtype=torch.float64).view(T, 1)
    expected = normal.cdf(steps + 0.5 - time) - normal.cdf(steps - 0.5 - time)
    (expected * weights).sum().backward()
    assert torch.allclose(x.grad, reference.grad, atol=1e-10)
    assert x.grad[2] != 0  # below the threshold: no spike, but the gate is passed straight through


@pytest.mark.parametrize("kwargs, message", [
    ({"hidden": 0}, "hidden must be an integer >= 1, got 0"),
    ({"channels": (16, 0)}, "channels must be integers >= 1, got 0"),
    ({"image_size": 3}, "image_size must be >= 4 (two 2x2 poolings), got 3"),
])
def test_spiking_cnn_sizes_that_build_no_network_are_refused(kwargs, message):
    """A layer of 0 units trained to constant logits (after a warning), an image too small for two
    poolings failed inside batch norm: both are one-line errors when the model is built."""
    with pytest.raises(ConfigError) as error:
        SpikingCNN(**kwargs)
    assert str(error.value) == message
