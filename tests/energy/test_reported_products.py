"""Synaptic operations of models whose products are not Linear/Conv layers (the plasticity
networks report them), counted against closed forms, and the warning for products no hook sees."""

import json
import warnings

import pytest
import torch
from torch import nn

from neuroaikit.energy import SynapticOperations, measure
from neuroaikit.spiking import SpikingMLP
from neuroaikit.spiking.plasticity import DiehlCookNetwork, KrotovHopfieldClassifier


def sparse_images(n, side, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 1, side, side, generator=gen) < 0.4).float() * torch.rand(n, 1, side, side, generator=gen)


def test_diehl_cook_counts_every_input_spike_and_lateral_inhibition_spike():
    B, n_inputs, n, T = 5, 16, 6, 30
    net = DiehlCookNetwork(n_inputs, n_neurons=n, T=T, max_rate_hz=400.0, v_th=2.0, min_spikes=0, seed=1)
    with torch.no_grad():
        net.weight[:2, :5] = 0.0  # zero weights are skipped: inputs 0-4 reach only n - 2 neurons
    net.assignments.copy_(torch.arange(n) % 2)
    net.n_classes = 2
    x = sparse_images(B, 4)
    torch.manual_seed(7)
    ops = measure(net, x, batch_size=B)["SynapticOperations"]

    # the same draws again: the input spikes the network simulated, then its output spikes
    torch.manual_seed(7)
    _, inputs = net._input_spikes(x.flatten(1), net.max_prob, None)
    torch.manual_seed(7)
    out_spikes = net.responses(x).sum().item()
    fan_out = (net.weight != 0).sum(0)
    assert len(inputs) > 0 and out_spikes > 0
    expected_acs = fan_out[inputs].sum().item() + out_spikes * (n - 1)
    assert ops["Effective_ACs"] * B == pytest.approx(expected_acs)
    assert ops["Effective_MACs"] == 0
    assert ops["Dense"] == pytest.approx(T * (n_inputs * n + n * n))


def test_diehl_cook_counts_re_presentations():
    net = DiehlCookNetwork(16, n_neurons=4, T=20, v_th=60.0, e_exc=65.0, min_spikes=1, max_repeats=3, seed=0)
    net.assignments.copy_(torch.arange(4) % 2)
    net.n_classes = 2
    x = sparse_images(2, 4)
    ops = measure(net, x, batch_size=2)["SynapticOperations"]
    assert net.run(x.flatten(1)).sum() == 0  # silent: every image is shown 1 + max_repeats times
    assert ops["Dense"] == pytest.approx(4 * 20 * (16 * 4 + 4 * 4))


def test_krotov_hopfield_counts_the_hidden_layer_and_the_readout():
    B, side, H, K = 6, 4, 12, 3
    model = KrotovHopfieldClassifier(image_size=side, n_classes=K, n_hidden=H).eval()
    with torch.no_grad():
        model.hidden.weight[:, 0] = 0.0
    x = sparse_images(B, side)
    ops = measure(model, x, batch_size=4)["SynapticOperations"]

    flat = x.flatten(1)
    hidden = ((flat != 0).double() @ (model.hidden.weight != 0).double().t()).sum()
    features = torch.relu(flat @ model.hidden.weight.t()) ** model.hidden.n_power  # mean 0, std 1
    readout = ((features != 0).double() @ (model.readout.weight != 0).double().t()).sum()
    assert ops["Effective_MACs"] * B == pytest.approx(float(hidden + readout))
    assert ops["Effective_ACs"] == 0
    assert ops["Dense"] == pytest.approx(side * side * H + H * K)


class HiddenProduct(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(5, 16))
        self.readout = nn.Linear(5, 2)

    def forward(self, x):
        return self.readout(x.flatten(1) @ self.w.t())


def test_weights_no_hook_sees_are_warned_about_and_recorded():
    from neuroaikit.energy.measure import format_energy
    from neuroaikit.energy.results import EnergyMeasurement

    with pytest.warns(UserWarning, match=r"weights w belong to no Linear/Conv layer.*NOT counted"):
        raw = measure(HiddenProduct(), torch.rand(3, 1, 4, 4))
    assert raw["uncounted_weights"] == ["w"]
    stored = EnergyMeasurement.from_dict(json.loads(json.dumps(raw)))
    assert stored.uncounted_weights == ["w"] and "NOT counted: the products of weights w" in format_energy(stored)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", message="ActivationSparsity")
        counted = measure(nn.Sequential(nn.Flatten(), nn.Linear(16, 2)), torch.rand(3, 1, 4, 4))
        assert counted["uncounted_weights"] == [] and "NOT counted" not in format_energy(counted)
        measure(KrotovHopfieldClassifier(image_size=4, n_classes=2, n_hidden=8), torch.rand(3, 1, 4, 4))
        SynapticOperations().attach(SpikingMLP(image_size=4, n_classes=2, T=2, hidden=[5])).detach()


@pytest.mark.parametrize("T", [1, 3, 5])
def test_direct_coded_snn_mlp_counts_its_first_layer_once(T):
    x = sparse_images(4, 4)
    model = SpikingMLP(image_size=4, n_classes=2, T=T, hidden=[7])
    with torch.no_grad():
        model.readout.weight.zero_()  # the readout adds no effective operations: only fc1 counts
    ops = measure(model, x, batch_size=4)["SynapticOperations"]
    assert ops["Effective_MACs"] * len(x) == (x != 0).sum().item() * 7
    assert ops["Dense_MACs"] == 16 * 7 + (7 * 2 if T > 1 else 0)  # the readout's input is a rate for T > 1


def test_connection_sparsity_counts_the_synapses_of_networks_that_report_their_products():
    """The Diehl & Cook and Krotov-Hopfield weights are the synapses SynapticOperations counts;
    connection sparsity used to see only the Krotov-Hopfield readout, so pruned networks read dense."""
    from neuroaikit.energy import ConnectionSparsity

    dc = DiehlCookNetwork(64, 10, T=20, min_spikes=0)
    with torch.no_grad():
        dc.weight[:, :32] = 0
    assert ConnectionSparsity()(dc) == 0.5
    kh = KrotovHopfieldClassifier(1, 8, 10, n_hidden=20)
    with torch.no_grad():
        kh.hidden.weight[:, :32] = 0  # 20 x 32 of the 20 x 64 hidden weights; the 10 x 20 readout stays dense
    assert ConnectionSparsity()(kh) == round(20 * 32 / (20 * 64 + 10 * 20), 4)
