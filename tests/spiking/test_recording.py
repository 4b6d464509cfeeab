"""Spiking networks are recorded through their rate probes: alignment and in-silico tools see each
layer's mean spike rate, not one step's spikes or a ``(spikes, state)`` tuple."""

from __future__ import annotations

import pytest
import torch

from neuroaikit.alignment.features import default_layers, extract_features
from neuroaikit.models import build_model

SNNS = [("snn_mlp", {"hidden": [6, 5]}, ["body.rate1", "body.rate2"]),
        ("snn_cnn", {"channels": [2, 3], "hidden": 6}, ["rate1", "rate2", "rate3"]),
        ("snn_converted", {"channels": [2, 3], "hidden": 6}, ["rate1", "rate2", "rate3"])]


@pytest.mark.parametrize("name,kwargs,rates", SNNS, ids=[s[0] for s in SNNS])
def test_the_default_layers_of_a_spiking_network_are_its_spike_rates(name, kwargs, rates):
    torch.manual_seed(0)
    model = build_model(name, in_channels=1, image_size=8, n_classes=3, T=4, **kwargs).eval()
    assert default_layers(model) == rates
    features = extract_features(model, torch.rand(5, 1, 8, 8))
    assert list(features) == rates
    for values in features.values():  # a mean of 0/1 spikes over 4 steps
        assert values.shape[0] == 5 and ((values * 4).round() == values * 4).all()
        assert values.min() >= 0 and values.max() <= 1


def test_a_feed_forward_lif_rate_is_the_mean_of_its_spikes_over_time():
    from neuroaikit.spiking import FeedForwardLIF

    torch.manual_seed(0)
    net = FeedForwardLIF([4, 6])
    seen = []
    net.rate1.register_forward_hook(lambda module, inputs, output: seen.append(output))
    spikes = net(torch.rand(5, 3, 4) * 3)
    assert torch.equal(seen[0], spikes.mean(0))


@pytest.mark.parametrize("name,encoder,expected", [("snn_cnn", "latency", (0.0, 1.0)), ("snn_mlp", "poisson", (0.0, 1.0)),
                                                   ("snn_converted", "poisson", (0.0, 1.0)), ("snn_cnn", "direct", None)])
def test_a_spiking_network_declares_the_input_range_its_encoder_needs(name, encoder, expected):
    from neuroaikit.insilico.recording import declared_input_range

    model = build_model(name, in_channels=1, image_size=8, n_classes=3, T=2, encoder=encoder)
    assert declared_input_range(model) == expected
    assert declared_input_range(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3))) is None


@pytest.mark.parametrize("name,site", [("snn_mlp", "body.rate1"), ("snn_cnn", "rate1"), ("snn_converted", "rate2")])
def test_a_rate_probe_is_refused_as_a_noise_site(name, site):
    """The network discards what a rate probe returns: noise there would be recorded as hidden noise
    and change nothing."""
    from neuroaikit.errors import ConfigError
    from neuroaikit.noise import inject_noise, layer_names

    model = build_model(name, in_channels=1, image_size=8, n_classes=3, T=2)
    assert site not in layer_names(model)
    with pytest.raises(ConfigError, match="only record.*noise there would change nothing"):
        inject_noise(model, {site: 0.5})
