"""Our metrics against the ``neurobench`` package itself (installed with --no-deps), when it imports."""

import pytest
import torch
from torch import nn

nb_static = pytest.importorskip("neurobench.metrics.static")
nb_workload = pytest.importorskip("neurobench.metrics.workload")
nb_models = pytest.importorskip("neurobench.models")
snn = pytest.importorskip("snntorch")

from neuroaikit.energy import (  # noqa: E402 - after the skips above
    ActivationSparsity, ConnectionSparsity, Footprint, MembraneUpdates, SynapticOperations)


def neurobench_run(model, wrapped, batches, metrics):
    wrapped.register_hooks()
    out = {}
    instances = [m() for m in metrics]
    for x in batches:
        preds = wrapped(x)
        for m in instances:
            value = m(wrapped, preds, (x, torch.zeros(len(x))))
            out.setdefault(type(m).__name__, []).append((value, len(x)))
        wrapped.reset_hooks()
    return out


def test_ann_metrics_equal_neurobench(run_workload):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 36, 10), nn.ReLU(),
                          nn.Linear(10, 3))
    with torch.no_grad():
        model[3].weight[:, :50] = 0
    wrapped = nb_models.TorchModel(model)
    assert Footprint()(model) == nb_static.Footprint()(wrapped)
    assert ConnectionSparsity()(model) == nb_static.ConnectionSparsity()(wrapped)
    batches = [torch.relu(torch.randn(5, 1, 6, 6)), torch.relu(torch.randn(5, 1, 6, 6))]
    theirs = neurobench_run(model, wrapped, batches, [nb_workload.SynapticOperations, nb_workload.ActivationSparsity])
    syn_theirs = theirs["SynapticOperations"][-1][0]  # accumulated
    syn_ours = run_workload(SynapticOperations(), model, batches)
    for key in ("Effective_MACs", "Effective_ACs", "Dense"):
        assert syn_ours[key] == pytest.approx(float(syn_theirs[key]))
    act_theirs = sum(v * n for v, n in theirs["ActivationSparsity"]) / 10  # NeuroBench: sample-weighted mean
    assert run_workload(ActivationSparsity(), model, batches) == pytest.approx(act_theirs)


class SnnTorchNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 6)
        self.lif1 = snn.Leaky(beta=0.8, init_hidden=True)
        self.fc2 = nn.Linear(6, 3)
        self.lif2 = snn.Leaky(beta=0.8, init_hidden=True, output=True)

    def forward(self, x):  # x: (B, T, N), NeuroBench's SNNTorchModel steps over dim 1
        return self.lif2(self.fc2(self.lif1(self.fc1(x))))


def spiking_net() -> SnnTorchNet:
    """Weights scaled up so that both layers spike."""
    torch.manual_seed(0)
    net = SnnTorchNet()
    with torch.no_grad():
        net.fc1.weight.mul_(3)
        net.fc2.weight.mul_(3)
    return net


def test_snn_metrics_equal_neurobench(run_workload):
    net = spiking_net()
    wrapped = nb_models.SNNTorchModel(net)
    batches = [(torch.rand(4, 5, 8) < 0.5).float()]
    theirs = neurobench_run(net, wrapped, batches, [nb_workload.SynapticOperations, nb_workload.ActivationSparsity,
                                                    nb_workload.MembraneUpdates])
    wrapped.cleanup_hooks() if hasattr(wrapped, "cleanup_hooks") else None

    class Stepper(nn.Module):  # the same per-step loop NeuroBench's SNNTorchModel runs
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            snn.utils.reset(self.net)
            return torch.stack([self.net(x[:, t])[0] for t in range(x.shape[1])], 1)

    stepper = Stepper(net)
    syn = run_workload(SynapticOperations(), stepper, batches)
    for key in ("Effective_MACs", "Effective_ACs", "Dense"):
        assert syn[key] == pytest.approx(float(theirs["SynapticOperations"][-1][0][key]))
    assert run_workload(ActivationSparsity(), stepper, batches) == pytest.approx(theirs["ActivationSparsity"][-1][0])
    assert run_workload(MembraneUpdates(), stepper, batches) == pytest.approx(theirs["MembraneUpdates"][-1][0])


def test_snn_crosscheck_is_not_vacuous():
    net = spiking_net()

    def forward(x):
        snn.utils.reset(net)
        return torch.stack([net(x[:, t])[0] for t in range(x.shape[1])], 1)

    out = forward((torch.rand(4, 5, 8) < 0.5).float())
    assert 0 < out.mean() < 1
