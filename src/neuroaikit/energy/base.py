"""What NeuroBench metrics share: which modules are connection layers, activations, neurons,
and the hook plumbing of workload metrics (those computed while the model runs on data)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

CONNECTION_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
RECURRENT_LAYERS = (nn.RNNBase,)
RECURRENT_CELLS = (nn.RNNCellBase,)


def _snntorch_neuron_class():
    try:  # optional: count snnTorch neurons as activations when snnTorch is installed
        import snntorch

        return snntorch.SpikingNeuron
    except Exception:  # pragma: no cover - snnTorch missing or broken
        return None


def spiking_module_types() -> tuple[type, ...]:
    from ..spiking.modules import LIF, LIFCell

    types: tuple[type, ...] = (LIFCell, LIF)
    extra = _snntorch_neuron_class()
    return types + ((extra,) if extra is not None else ())


def activation_module_types() -> tuple[type, ...]:
    """NeuroBench's defaults (ReLU, Sigmoid) plus spiking neuron layers."""
    return (nn.ReLU, nn.Sigmoid) + spiking_module_types()


def reports_products(module: nn.Module) -> bool:
    """True for a module that reports its own synaptic products (``register_product_hook``, see
    :class:`~neuroaikit.spiking.synapses.ReportsProducts`) instead of calling Linear/Conv layers."""
    return callable(getattr(module, "register_product_hook", None))


def uncounted_weights(model: nn.Module, counted: list[nn.Module]) -> list[str]:
    """Names of the weight parameters (2-D or more) of ``model`` that none of the ``counted``
    modules owns: products with them happen where no hook sees them."""
    owned = {id(p) for m in counted for p in m.parameters(recurse=False)}
    return [name for name, p in model.named_parameters() if p.dim() >= 2 and id(p) not in owned]


def first_tensor(value: Any) -> torch.Tensor | None:
    while isinstance(value, (tuple, list)) and value:
        value = value[0]
    return value if isinstance(value, torch.Tensor) else None


class StaticMetric:
    """A metric of the model alone: ``metric(model) -> value``."""

    name = "static"

    def __call__(self, model: nn.Module):  # pragma: no cover - interface
        raise NotImplementedError


class WorkloadMetric:
    """A metric accumulated over forward passes through hooks.

    Use :func:`neuroaikit.energy.measure` or, by hand::

        metric.attach(model)
        for x in batches:
            metric.begin_batch(); model(x); metric.end_batch(len(x))
        metric.detach(); value = metric.compute()
    """

    name = "workload"

    def __init__(self):
        self._handles: list = []
        self.reset()

    def reset(self) -> None:
        self.n_samples = 0

    def modules(self, model: nn.Module) -> list[nn.Module]:  # pragma: no cover - interface
        raise NotImplementedError

    def hook(self, module: nn.Module, inputs: tuple, output: Any) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def attach(self, model: nn.Module) -> "WorkloadMetric":
        self.detach()
        self._handles = [m.register_forward_hook(self.hook) for m in self.modules(model)]
        return self

    def detach(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def begin_batch(self) -> None:
        """Called before each batch's forward pass (a new sample starts from rest)."""

    def end_batch(self, n_samples: int) -> None:
        self.n_samples += int(n_samples)

    def compute(self):  # pragma: no cover - interface
        raise NotImplementedError
