"""NeuroBench ``ConnectionSparsity``."""

from __future__ import annotations

from torch import nn

from .base import CONNECTION_LAYERS, RECURRENT_CELLS, RECURRENT_LAYERS, StaticMetric, reports_products


def _recurrent_tensors(module: nn.RNNBase | nn.RNNCellBase):
    if isinstance(module, RECURRENT_CELLS):
        names = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if module.bias else [])
        return [getattr(module, n) for n in names]
    return list(module._flat_weights)  # every layer and direction: input, hidden, projection weights, biases


class ConnectionSparsity(StaticMetric):
    """Fraction of zero connections: zeros / elements over the **weights** of Linear and
    Conv1d/2d/3d layers, the weights **and biases** of RNN/LSTM/GRU layers and cells, and the
    weights (parameters of 2 dimensions or more) of modules that report their own synaptic
    products (the Diehl & Cook and Krotov-Hopfield networks: the synapses
    :class:`SynapticOperations` counts). Other layers (spiking neurons, normalisation) add 0/0.
    Rounded to 4 decimals; 0 = dense.

    Example: ``nn.Linear(2, 2)`` with weights ``[[0, 1], [0, 2]]`` -> 0.5 (the bias is ignored).
    """

    name = "ConnectionSparsity"

    def __call__(self, model: nn.Module) -> float:
        zeros = total = 0
        for module in model.modules():
            if isinstance(module, CONNECTION_LAYERS):
                tensors = [module.weight]
            elif isinstance(module, RECURRENT_LAYERS + RECURRENT_CELLS):
                tensors = _recurrent_tensors(module)
            elif reports_products(module):
                tensors = [p for p in module.parameters(recurse=False) if p.dim() >= 2]
            else:
                continue
            for t in tensors:
                zeros += int((t == 0).sum())
                total += t.numel()
        return round(zeros / total, 4) if total else 0.0
