"""NeuroBench ``MembraneUpdates``."""

from __future__ import annotations

import torch
from torch import nn

from .base import WorkloadMetric, spiking_module_types


class MembraneUpdates(WorkloadMetric):
    """Membrane potential updates per sample: for every spiking neuron layer, every neuron at
    the first step of a sample (the layer's first call in a batch, whatever initial state it is
    given, as NeuroBench counts), plus, at each later step, the neurons whose membrane potential
    changed (post-step minus pre-step potential non-zero). Summed over layers and steps,
    divided by the number of samples.

    Counts :class:`~neuroaikit.spiking.LIFCell` / ``IFCell`` (one call per step),
    :class:`~neuroaikit.spiking.LIF` / ``IF`` sequence modules (re-simulated from their input)
    and snnTorch neurons (their ``mem`` before and after each call, as NeuroBench does).

    Example: a LIF cell of 3 neurons over 2 steps, with inputs ``[1, 0, 0]`` then
    ``[0, 0, 0.5]`` from rest, without leak -> 3 + 1 = 4 updates for one sample.
    """

    name = "MembraneUpdates"

    def reset(self) -> None:
        super().reset()
        self.updates = 0
        self._seen: set[int] = set()
        self._pre: dict[int, torch.Tensor | None] = {}

    def modules(self, model: nn.Module):
        types = spiking_module_types()
        return [m for m in model.modules() if isinstance(m, types)]

    def attach(self, model: nn.Module) -> "MembraneUpdates":
        self.detach()
        modules = self.modules(model)
        # with_kwargs: a neuron called as cell(x, state=s) passes the state that decides what changed by keyword
        self._handles = [m.register_forward_hook(self._hook_with_kwargs, with_kwargs=True) for m in modules]
        self._handles += [m.register_forward_pre_hook(self._pre_hook) for m in modules]
        return self

    def _hook_with_kwargs(self, module, inputs: tuple, kwargs: dict, output) -> None:
        self.hook(module, (*inputs, kwargs["state"]) if "state" in kwargs else inputs, output)

    def begin_batch(self) -> None:
        self._seen = set()

    def _pre_hook(self, module, inputs) -> None:
        mem = getattr(module, "mem", None)
        self._pre[id(module)] = mem.detach().clone() if isinstance(mem, torch.Tensor) else None

    def hook(self, module, inputs, output) -> None:
        from ..spiking.modules import LIF, LIFCell
        from ..spiking.neurons import lif_step

        first = id(module) not in self._seen  # the sample's first step: every neuron counts
        self._seen.add(id(module))
        with torch.no_grad():
            if isinstance(module, LIFCell):
                state = inputs[1] if len(inputs) > 1 else None
                new_v = output[1].v
                self.updates += new_v.numel() if first or state is None else int((new_v - state.v != 0).sum())
            elif isinstance(module, LIF):
                state = inputs[1] if len(inputs) > 1 else None
                for x in inputs[0]:
                    _, new = lif_step(x, state, module.params)
                    self.updates += new.v.numel() if first or state is None else int((new.v - state.v != 0).sum())
                    state, first = new, False
            else:  # snnTorch neuron: NeuroBench's pre-/post-fire comparison of .mem
                post = getattr(module, "mem", None)
                if post is None:
                    return
                pre = self._pre.get(id(module))
                if first or pre is None or pre.shape != post.shape:
                    self.updates += post.numel()
                else:
                    self.updates += int((pre - post != 0).sum())

    def compute(self) -> float:
        return self.updates / self.n_samples if self.n_samples else 0.0
