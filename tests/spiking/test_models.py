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
    out.sum().backward()  # surrogate gradients reach the input (attacks need them)
    if encoder != "latency":
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
