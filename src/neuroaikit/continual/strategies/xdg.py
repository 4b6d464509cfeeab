"""Context-dependent gating (XdG; Masse, Grant & Freedman 2018, PNAS 115:E10467)."""

from __future__ import annotations

import torch
from torch import nn

from .base import Composite, published, register_strategy

#: fraction of hidden units gated per task in van de Ven et al. 2022 (param_values.py)
GATING_PROP = {("split-mnist", "*"): 0.9, ("permuted-mnist", "*"): 0.6}


@register_strategy
class XdG(Composite):
    """Context-dependent gating (Masse et al. 2018): each task switches off a fixed random
    fraction ``gating_prop`` of every hidden layer's units, so tasks learn in partly separate
    sub-networks; usually combined with a consolidation strategy (``base``: Masse et al. pair it
    with SI or EWC). Needs the task identity at training and test time (task-IL only).

    Args:
        gating_prop (float | None): units gated per task and layer (``None``: van de Ven et al.'s
            0.9 on Split MNIST, 0.6 on Permuted MNIST; Masse et al. 0.8).
        base (str): the strategy it gates. Default ``"finetune"`` (XdG alone).
        base_params (dict): the base strategy's settings.
    """

    name = "xdg"
    needs_task_labels = True

    def __init__(self, gating_prop: float | None = None, base: str = "finetune", base_params: dict | None = None):
        super().__init__(base, base_params)
        self.gating_prop = gating_prop

    def setup(self, learner) -> None:
        scenario = learner.scenario
        if self.gating_prop is None:
            self.gating_prop = published(GATING_PROP, scenario.benchmark, "*", 0.8)
        layers = [m for name, m in learner.model.named_children() if name.startswith("relu")]
        generator = torch.Generator().manual_seed(learner.seed + 7)
        # one mask per task and hidden layer, drawn once: what the task sees of the network
        self.gates = [(torch.rand(scenario.n_tasks, learner.model.get_submodule(name.replace("relu", "fc")).out_features,
                                  generator=generator) >= self.gating_prop).float().to(learner.device)
                      for name, _ in learner.model.named_children() if name.startswith("relu")]
        self._contexts: torch.Tensor | None = None
        self._handles = [layer.register_forward_hook(self._gate(i)) for i, layer in enumerate(layers)]
        super().setup(learner)

    def _gate(self, i: int):
        def hook(module: nn.Module, inputs, output):
            if self._contexts is None:
                return output
            return output * self.gates[i][self._contexts]
        return hook

    def forward(self, x, contexts):
        self._contexts = contexts
        try:
            return self.learner.model(x)
        finally:
            self._contexts = None
