"""Context-dependent gating (XdG; Masse, Grant & Freedman 2018, PNAS 115:E10467)."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from ...config import BOOL, Interval
from .base import Composite, published, register_strategy

#: fraction of hidden units gated per task in van de Ven et al. 2022 (param_values.py)
GATING_PROP = {("split-mnist", "*"): 0.9, ("permuted-mnist", "*"): 0.6}


def draw_gates(n_tasks: int, units: int, gating_prop: float, exact_count: bool,
               generator: torch.Generator) -> torch.Tensor:
    """``(n_tasks, units)`` masks of 0 (gated) and 1: each unit gated with probability
    ``gating_prop``, or (``exact_count``) exactly ``int(gating_prop * units)`` units per task."""
    if not exact_count:
        return (torch.rand(n_tasks, units, generator=generator) >= gating_prop).float()
    gates = torch.ones(n_tasks, units)
    for task in range(n_tasks):
        gates[task, torch.randperm(units, generator=generator)[:int(gating_prop * units)]] = 0.0
    return gates


@register_strategy
class XdG(Composite):
    """Context-dependent gating (Masse et al. 2018): each task switches off a fixed random
    fraction ``gating_prop`` of every hidden layer's units, so tasks learn in partly separate
    sub-networks; usually combined with a consolidation strategy (``base``: Masse et al. pair it
    with SI or EWC). Needs the task identity at training and test time (task-IL only).

    Args:
        gating_prop (float | None): units gated per task and layer, in [0, 1) (``None``: van de
            Ven et al.'s 0.9 on Split MNIST, 0.6 on Permuted MNIST; Masse et al. 0.8).
        base (str): the strategy it gates. Default ``"finetune"`` (XdG alone).
        base_params (dict): the base strategy's settings.
        exact_count (bool): gate exactly ``int(gating_prop * units)`` units per task and layer
            (van de Ven & Tolias 2019's code) instead of each unit with probability
            ``gating_prop``. Default False.
        before_bias (bool): multiply the layer's weighted input before its bias is added, so a
            gated unit outputs ``relu(bias)`` and its bias keeps learning (the 2019 code's
            excitability buffer), instead of zeroing the unit's output. Default False.
    """

    name = "xdg"
    needs_task_labels = True
    _parameter_constraints: ClassVar[dict] = {"gating_prop": [Interval(float, 0, 1, closed="left"), None],
                                              "exact_count": [BOOL], "before_bias": [BOOL]}

    def __init__(self, gating_prop: float | None = None, base: str = "finetune", base_params: dict | None = None,
                 exact_count: bool = False, before_bias: bool = False):
        super().__init__(base, base_params)
        self.gating_prop = gating_prop
        self.exact_count = exact_count
        self.before_bias = before_bias

    def setup(self, learner) -> None:
        scenario = learner.scenario
        if self.gating_prop is None:
            self.gating_prop = published(GATING_PROP, scenario.benchmark, "*", 0.8)
        hidden = [name for name, _ in learner.model.named_children() if name.startswith("relu")]
        linears = [learner.model.get_submodule(name.replace("relu", "fc")) for name in hidden]
        generator = torch.Generator().manual_seed(learner.seed + 7)
        # one mask per task and hidden layer, drawn once: what the task sees of the network
        self.gates = [draw_gates(scenario.n_tasks, layer.out_features, self.gating_prop, self.exact_count,
                                 generator).to(learner.device) for layer in linears]
        self._contexts: torch.Tensor | None = None
        gated = linears if self.before_bias else [learner.model.get_submodule(name) for name in hidden]
        self._handles = [layer.register_forward_hook(self._gate(i)) for i, layer in enumerate(gated)]
        super().setup(learner)

    def _gate(self, i: int):
        def hook(module: nn.Module, inputs, output):
            if self._contexts is None:
                return output
            gate = self.gates[i][self._contexts]
            if self.before_bias and module.bias is not None:
                return (output - module.bias) * gate + module.bias
            return output * gate
        return hook

    def forward(self, x, contexts):
        self._contexts = contexts
        try:
            return self.learner.model(x)
        finally:
            self._contexts = None
