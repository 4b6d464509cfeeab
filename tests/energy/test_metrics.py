import pytest
import torch
from torch import nn

from neuroaikit.energy import (ActivationSparsity, ConnectionSparsity, Footprint, MembraneUpdates, ParameterCount,
                               SynapticOperations, estimate_energy, measure)
from neuroaikit.errors import ConfigError
from neuroaikit.spiking import IFParameters, LIFCell, LIFParameters


def test_static_metrics_on_hand_computed_linear():
    layer = nn.Linear(3, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.0, 1.0, 0.0], [2.0, 0.0, 3.0]]))
    model = nn.Sequential(layer, nn.BatchNorm1d(2))  # BN: 4 params + 2 running stats + 1 int64 counter
    assert Footprint()(model) == (6 + 2) * 4 + (2 + 2) * 4 + (2 + 2) * 4 + 8
    assert ParameterCount()(model) == 8 + 4
    assert ConnectionSparsity()(model) == 0.5  # 3 of 6 weights are zero; biases and BN ignored
    assert Footprint()(nn.Linear(3, 2).half()) == 8 * 2


def test_connection_sparsity_counts_recurrent_biases():
    cell = nn.RNNCell(2, 2)
    with torch.no_grad():
        for p in cell.parameters():
            p.fill_(1.0)
        cell.bias_ih.zero_()
    assert ConnectionSparsity()(cell) == round(2 / 12, 4)


def test_synaptic_operations_neurobench_docs_example(run_workload):
    # NeuroBench docs: a 3x3 layer, 4 effective vs 9 dense operations
    layer = nn.Linear(3, 3, bias=True)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, 0.0, 2.0], [0.0, 0.0, 1.0], [3.0, 0.0, 0.5]]))
    x = torch.tensor([[0.7, 0.0, 1.3]])  # graded input -> MACs
    ops = run_workload(SynapticOperations(), layer, [x])
    # non-zero (input, weight) pairs: row1 (0.7*1, 1.3*2), row2 (1.3*1), row3 (0.7*3, 1.3*0.5) = 5
    assert ops["Effective_MACs"] == 5 and ops["Effective_ACs"] == 0 and ops["Dense"] == 9
    spikes = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])  # 2 samples of spikes -> ACs, per sample
    ops = run_workload(SynapticOperations(), layer, [spikes])
    assert ops["Effective_ACs"] == (5 + 0) / 2 and ops["Effective_MACs"] == 0 and ops["Dense"] == 9


def test_synaptic_operations_conv_counts_padding_as_nothing(run_workload):
    conv = nn.Conv2d(1, 1, 3, padding=1, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)
    ops = run_workload(SynapticOperations(), conv, [torch.ones(1, 1, 3, 3)])
    # each output sums the in-bounds part of its 3x3 window: corners 4, edges 6, centre 9
    assert ops["Dense"] == 4 * 4 + 4 * 6 + 9 == ops["Effective_ACs"]


def test_activation_sparsity_relu_and_spikes(run_workload):
    model = nn.Sequential(nn.Identity(), nn.ReLU())
    assert run_workload(ActivationSparsity(), model, [torch.tensor([[-1.0, -2.0, 3.0, 0.0]])]) == 0.75


@pytest.mark.parametrize("by_keyword", [False, True])
@pytest.mark.parametrize("explicit_start", [False, True])
def test_membrane_updates_hand_computed(run_workload, by_keyword, explicit_start):
    """The first step counts every neuron whether the loop starts from ``None`` or from the same
    resting state passed explicitly (it counted only the changed ones then: 2, not 4)."""
    from neuroaikit.spiking import initial_state

    cell = LIFCell(IFParameters(v_th=10.0))

    class Loop(nn.Module):
        def __init__(self):
            super().__init__()
            self.cell = cell

        def forward(self, x):
            state = initial_state(x[:, 0]) if explicit_start else None
            for xt in x.transpose(0, 1):  # the state passed as cell(x, state=s) counts as passed by position
                _, state = self.cell(xt, state=state) if by_keyword else self.cell(xt, state)
            return state.v

    x = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 0.0, 0.5]]])  # (B=1, T=2, N=3)
    assert run_workload(MembraneUpdates(), Loop(), [x]) == 3 + 1


def test_energy_estimate_reproduces_the_reference_arithmetic():
    # reference: GSC ANN 1.73e6 MACs x 4.6 pJ = 7.96 uJ; SNN 3.29e6 ACs x 0.9 pJ = 2.96 uJ
    ann = estimate_energy({"Effective_MACs": 1.73e6, "Effective_ACs": 0, "Dense": 1.88e6}, "fp32")
    snn = estimate_energy({"Effective_MACs": 0, "Effective_ACs": 3.29e6, "Dense": 2.9e7, "Dense_MACs": 0,
                           "Dense_ACs": 2.9e7}, "fp32")
    assert ann["effective_joules_per_sample"] == pytest.approx(7.958e-6)
    assert snn["effective_joules_per_sample"] == pytest.approx(2.961e-6)
    assert snn["dense_joules_per_sample"] == pytest.approx(26.1e-6)
    with pytest.raises(ConfigError, match="precision"):
        estimate_energy({"Effective_MACs": 0, "Effective_ACs": 0, "Dense": 0}, "fp64")


def test_measure_on_ann_and_snn_reports_assumptions():
    from neuroaikit.spiking import SpikingCNN

    x = torch.rand(6, 1, 12, 12)
    ann = nn.Sequential(nn.Flatten(), nn.Linear(144, 8), nn.ReLU(), nn.Linear(8, 3))
    snn = SpikingCNN(image_size=12, n_classes=3, T=3, channels=(2, 3), hidden=8)
    for model in (ann, snn):
        result = measure(model, x, torch.zeros(6, dtype=torch.long), batch_size=4)
        assert result["assumptions"] and 0 <= result["accuracy"] <= 1
        assert result["SynapticOperations"]["Dense"] >= result["SynapticOperations"]["Effective_MACs"]
    assert result["MembraneUpdates"] > 0 and result["SynapticOperations"]["Effective_MACs"] > 0
    with pytest.raises(ConfigError):
        measure(ann, torch.zeros(0, 144))


def test_membrane_updates_same_for_sequence_module_and_step_cells(run_workload):
    from neuroaikit.spiking import FeedForwardLIF

    torch.manual_seed(0)
    net = FeedForwardLIF([5, 4], LIFParameters(tau_mem=3.0))
    x = (torch.rand(6, 2, 5) < 0.4).float()  # (T, B, N)
    cell = LIFCell(net.lif1.params)

    class Steps(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.cell = net.fc1, cell

        def forward(self, x):
            state = None
            for xt in x:
                z, state = self.cell(self.fc(xt), state)
            return z

    sequence = run_workload(MembraneUpdates(), net, [x])
    # batch is dim 1 here: both runs divide by len(x) = T, so compare the raw totals
    assert sequence == run_workload(MembraneUpdates(), Steps(), [x]) > 0
    assert run_workload(ActivationSparsity(), net, [x]) == run_workload(ActivationSparsity(), Steps(), [x])
