"""NeuroBench ``ActivationSparsity``."""

from __future__ import annotations

import warnings

from torch import nn

from .base import WorkloadMetric, activation_module_types, first_tensor


class ActivationSparsity(WorkloadMetric):
    """Fraction of zero activations: zeros / elements over the outputs of activation
    **modules** (ReLU, Sigmoid, spiking neuron layers: :class:`~neuroaikit.spiking.LIFCell`,
    :class:`~neuroaikit.spiking.LIF`, snnTorch neurons), summed over layers, time steps and samples.
    Activations computed with ``torch.nn.functional`` or ``torch`` calls (``F.relu``,
    ``torch.relu``) are invisible, as in NeuroBench. When no activation output was seen (no
    activation module, or none ever ran), the fraction is undefined: ``compute()`` warns
    (``UserWarning``) and returns ``None`` ("not counted"), where NeuroBench reports 0.0, which
    reads as a fully dense model.

    Example: one ReLU call with outputs ``[0, 0, 3, 0]`` -> 0.75.
    """

    name = "ActivationSparsity"
    # set by attach() for the warning of compute(), which runs after detach() has dropped the hooks
    _model_name = "the model"
    _n_hooked = 0

    def reset(self) -> None:
        super().reset()
        self.zeros = 0
        self.elements = 0

    def modules(self, model: nn.Module):
        types = activation_module_types()
        return [m for m in model.modules() if isinstance(m, types)]

    def attach(self, model: nn.Module) -> "ActivationSparsity":
        super().attach(model)
        self._model_name = type(model).__name__
        self._n_hooked = len(self._handles)
        return self

    def hook(self, module, inputs, output) -> None:
        out = first_tensor(output)
        if out is None:
            return
        self.elements += out.numel()
        self.zeros += out.numel() - int((out != 0).sum())

    def compute(self) -> float | None:
        if not self.elements:
            if self._n_hooked:
                situation = f"{self._model_name}'s activation modules produced no output"
            else:
                situation = (f"{self._model_name} has no activation module (nn.ReLU, nn.Sigmoid or a spiking neuron "
                             "layer); activations computed with F.relu / torch.relu calls are not counted")
            warnings.warn(f"ActivationSparsity: {situation}, so it is not counted (None), rather than 0.0 "
                          "for a dense model", stacklevel=2)
            return None
        return self.zeros / self.elements
