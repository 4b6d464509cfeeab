"""NeuroBench ``SynapticOperations`` (keys ``Effective_MACs``, ``Effective_ACs``, ``Dense``)."""

from __future__ import annotations

import warnings
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from .base import CONNECTION_LAYERS, WorkloadMetric, first_tensor, reports_products, uncounted_weights

_CONV = {nn.Conv1d: F.conv1d, nn.Conv2d: F.conv2d, nn.Conv3d: F.conv3d}


def layer_operations(layer: nn.Linear | nn.Conv1d | nn.Conv2d | nn.Conv3d, x: torch.Tensor, dense: bool = False) -> int:
    """Synaptic operations of one call of ``layer`` on input ``x``.

    Effective: the summed output of a copy of the layer whose non-zero weights are 1 and bias 0,
    fed ``x`` with its non-zeros set to 1 = the number of (non-zero input, non-zero weight)
    pairs. Dense (``dense=True``): the same with every input and weight set to 1 (zero padding
    still contributes nothing).
    """
    with torch.no_grad():
        w = torch.ones_like(layer.weight) if dense else (layer.weight != 0).to(layer.weight.dtype)
        xb = torch.ones_like(x) if dense else (x != 0).to(w.dtype)
        if isinstance(layer, nn.Linear):
            out = F.linear(xb.to(w.dtype), w)
        else:
            fn = _CONV[type(layer)] if type(layer) in _CONV else _CONV[next(c for c in _CONV if isinstance(layer, c))]
            if layer.padding_mode != "zeros":
                raise NotImplementedError(f"padding mode {layer.padding_mode!r} is not supported")
            out = fn(xb.to(w.dtype), w, None, layer.stride, layer.padding, layer.dilation, layer.groups)
        return int(out.sum().round().item())


def product_operations(x: torch.Tensor, weight: torch.Tensor) -> tuple[int, int]:
    """``(effective, dense)`` synaptic operations of the product ``x @ weight.T``, ``x (..., in)``
    dense or sparse COO, ``weight (out, in)``: the (non-zero input, non-zero weight) pairs, and
    every input times every weight (``rows * in * out``), as :func:`layer_operations` counts a Linear call."""
    with torch.no_grad():
        fan_out = (weight != 0).sum(0)  # non-zero weights leaving each input
        if x.is_sparse:
            x = x.coalesce()
            effective = int(fan_out[x.indices()[-1][x.values() != 0]].sum())
        else:
            effective = int(((x != 0).reshape(-1, x.shape[-1]).sum(0) * fan_out).sum())
        return effective, x.shape.numel() * weight.shape[0]


def is_spike_input(x: torch.Tensor) -> bool:
    """True when every input value is -1, 0 or 1: the layer only accumulates (ACs)."""
    if x.is_sparse:
        x = x.coalesce().values()
    return bool(((x == 0) | (x == 1) | (x == -1)).all())


class SynapticOperations(WorkloadMetric):
    """Synaptic operations per sample, summed over time steps, for every call of a Linear or
    Conv1d/2d/3d layer and every product that a module doing its own products reports
    (``register_product_hook``: :class:`~neuroaikit.spiking.synapses.ReportsProducts`, e.g. the
    Diehl & Cook and Krotov-Hopfield networks).

    - ``Effective_MACs`` / ``Effective_ACs``: the number of (non-zero input x non-zero weight)
      pairs; a call counts as ACs when all its inputs are in {-1, 0, 1} (spikes, or a binary
      image), otherwise as MACs (graded inputs, e.g. direct-coded pixels). The test is on the
      whole batch of the call, as NeuroBench makes it: a layer whose input is binary for some
      samples only counts them as MACs in a batch with graded samples and as ACs when they run
      alone (batch size 1), so the MAC/AC split (not the totals) can depend on the batch size.
    - ``Dense``: the same with every input and weight counted (what hardware that cannot skip
      zeros performs).

    Pooling, normalisation, biases and neuron updates are not synaptic operations. Values are
    divided by the number of samples. (NeuroBench also counts RNN/LSTM/GRU cells; they are not
    supported here and raise.) A model with weight parameters (2-D or more) that belong to none
    of these modules computes products no hook sees: ``attach()`` warns (``UserWarning``,
    naming them), since the counts would be too low, or 0, and keeps their names in
    ``uncounted_weights_`` (which :func:`~neuroaikit.energy.measure` records).

    Example (NeuroBench docs): a 3x3 fully connected layer with 4 non-zero (input, weight)
    pairs -> ``Effective_MACs`` 4, ``Dense`` 9.
    """

    name = "SynapticOperations"

    def reset(self) -> None:
        super().reset()
        self.macs = self.acs = self.dense = 0
        self.dense_macs = self.dense_acs = 0

    def modules(self, model: nn.Module):
        found = [m for m in model.modules() if isinstance(m, CONNECTION_LAYERS)]
        if any(isinstance(m, (nn.RNNBase, nn.RNNCellBase)) for m in model.modules()):
            raise NotImplementedError("SynapticOperations does not support recurrent (RNN/LSTM/GRU) layers")
        return found

    def attach(self, model: nn.Module) -> "SynapticOperations":
        super().attach(model)
        reporters = [m for m in model.modules() if reports_products(m)]
        self._handles += [cast(Any, m).register_product_hook(self.product_hook) for m in reporters]
        missed = uncounted_weights(model, self.modules(model) + reporters)
        self.uncounted_weights_ = missed
        if missed:
            shown = ", ".join(missed[:4]) + (f" and {len(missed) - 4} more" if len(missed) > 4 else "")
            warnings.warn(f"SynapticOperations: weights {shown} belong to no Linear/Conv layer and no module that "
                          "reports its products: their operations are NOT counted (too low, or 0)", stacklevel=2)
        return self

    def hook(self, module, inputs, output) -> None:
        x = first_tensor(inputs)
        if x is None:
            return
        self._add(x, layer_operations(module, x), layer_operations(module, x, dense=True))

    def product_hook(self, module: nn.Module, x: torch.Tensor, weight: torch.Tensor) -> None:
        """Count a product ``x @ weight.T`` that ``module`` reports."""
        self._add(x, *product_operations(x, weight))

    def _add(self, x: torch.Tensor, effective: int, dense: int) -> None:
        self.dense += dense
        if is_spike_input(x):
            self.acs += effective
            self.dense_acs += dense
        else:
            self.macs += effective
            self.dense_macs += dense

    def compute(self) -> dict:
        n = max(self.n_samples, 1)
        return {
            "Effective_MACs": self.macs / n, "Effective_ACs": self.acs / n, "Dense": self.dense / n,
            # not NeuroBench keys: Dense split by the operation type of each call
            "Dense_MACs": self.dense_macs / n, "Dense_ACs": self.dense_acs / n,
        }
