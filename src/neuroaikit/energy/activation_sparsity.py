"""NeuroBench ``ActivationSparsity``."""

from __future__ import annotations

from torch import nn

from .base import WorkloadMetric, activation_module_types, first_tensor


class ActivationSparsity(WorkloadMetric):
    """Fraction of zero activations: zeros / elements over the outputs of activation
    **modules** (ReLU, Sigmoid, spiking neuron layers: :class:`~neuroaikit.spiking.LIFCell`,
    :class:`~neuroaikit.spiking.LIF`, snnTorch neurons), summed over layers, time steps and samples.
    Activations computed with ``torch.nn.functional`` calls are invisible, as in NeuroBench.

    Example: one ReLU call with outputs ``[0, 0, 3, 0]`` -> 0.75.
    """

    name = "ActivationSparsity"

    def reset(self) -> None:
        super().reset()
        self.zeros = 0
        self.elements = 0

    def modules(self, model: nn.Module):
        types = activation_module_types()
        return [m for m in model.modules() if isinstance(m, types)]

    def hook(self, module, inputs, output) -> None:
        out = first_tensor(output)
        if out is None:
            return
        self.elements += out.numel()
        self.zeros += out.numel() - int((out != 0).sum())

    def compute(self) -> float:
        return self.zeros / self.elements if self.elements else 0.0
