"""Context-dependent gating (XdG; Masse, Grant & Freedman 2018, PNAS 115:E10467)."""

from __future__ import annotations

from typing import ClassVar, cast

import copy
from collections import OrderedDict

import torch
from torch import nn
from torch.nn.utils import skip_init

from ...config import BOOL, Interval
from ...errors import ConfigError
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


#: layers a sub-network copies as they are (no weights, nothing that mixes units)
_UNIT_WISE = (nn.Flatten, nn.ReLU, nn.Dropout)


class Subnetwork:
    """The units one task's gates leave on, as a network of their own.

    ``model`` is an ``nn.Sequential`` of ``Linear``, ``ReLU``, ``Dropout`` and ``Flatten``
    layers; ``kept`` gives, for each gated ``Linear`` (by name), the indices of its output units
    left on (the last layer keeps all its outputs). ``module`` is a copy of ``model`` with each
    ``Linear`` cut to the kept rows and to the columns of the units kept before it, and the same
    layer names, so it computes exactly the gated network's output on those units (a gated unit
    outputs 0 and feeds nothing). ``take``/``put`` move per-weight tensors between the two;
    ``write_back`` returns the trained weights into ``model``.
    """

    def __init__(self, model: nn.Sequential, kept: dict[str, torch.Tensor]):
        self.model = model
        self.index: dict[str, tuple[torch.Tensor, torch.Tensor | None]] = {}  # parameter -> (rows, columns)
        layers, columns = [], None
        for name, layer in model.named_children():
            if isinstance(layer, nn.Linear):
                rows = kept.get(name, torch.arange(layer.out_features, device=layer.weight.device))
                # skip_init: no random initialisation to overwrite (and no draw from the global stream)
                cut = skip_init(nn.Linear, len(columns) if columns is not None else layer.in_features, len(rows),
                                bias=layer.bias is not None, device=layer.weight.device, dtype=layer.weight.dtype)
                self.index[f"{name}.weight"] = (rows, columns)
                if layer.bias is not None:
                    self.index[f"{name}.bias"] = (rows, None)
                layers.append((name, cut))
                columns = rows
            else:
                layers.append((name, copy.deepcopy(layer)))
        self.module = nn.Sequential(OrderedDict(layers))
        with torch.no_grad():
            for name, p in self.module.named_parameters():
                p.copy_(self.take(name, model.get_parameter(name)))
        self.module.train(model.training)

    @staticmethod
    def supports(model: nn.Module) -> bool:
        """Whether ``model`` is made only of layers a sub-network can cut."""
        return isinstance(model, nn.Sequential) and all(isinstance(layer, (nn.Linear, *_UNIT_WISE))
                                                        for layer in model.children())

    def take(self, name: str, whole: torch.Tensor) -> torch.Tensor:
        """The part of ``whole`` (shaped like parameter ``name``) that belongs to the sub-network."""
        rows, columns = self.index[name]
        part = whole.detach().index_select(0, rows)
        return part if columns is None else part.index_select(1, columns)

    def put(self, name: str, part: torch.Tensor, whole: torch.Tensor | None) -> torch.Tensor:
        """``whole`` (zeros if ``None``) with the sub-network's part replaced by ``part``."""
        rows, columns = self.index[name]
        out = torch.zeros_like(self.model.get_parameter(name)) if whole is None else whole.detach().clone()
        if columns is None:
            out[rows] = part.detach().to(out.dtype)
        else:
            out[rows.unsqueeze(1), columns.unsqueeze(0)] = part.detach().to(out.dtype)
        return out

    @torch.no_grad()
    def write_back(self) -> None:
        for name, p in self.module.named_parameters():
            whole = self.model.get_parameter(name)
            whole.copy_(self.put(name, p, whole))


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
        subnetwork (bool | None): train and test each task on its kept units alone
            (``Subnetwork``), which skips the arithmetic of the gated-off ones (80 % gated:
            about a tenth of a 2 x 2,000 network's multiply-adds). It changes no result: a gated
            unit gets no gradient, so with a fresh optimiser per task (``reset_optimizer``) and a
            base strategy that keeps to the updated weights (fine-tuning, SI) nothing of it moves;
            only dropout draws its masks from a different stream. ``None`` (default): whenever those
            conditions hold and the network is made of ``Linear``, ``ReLU``, ``Dropout`` and
            ``Flatten`` layers; ``True``: require it (an error says which condition fails);
            ``False``: always the whole network with gates.
        before_bias (bool): multiply the layer's weighted input before its bias is added, so a
            gated unit outputs ``relu(bias)`` and its bias keeps learning (the 2019 code's
            excitability buffer), instead of zeroing the unit's output. Default False.
    """

    name = "xdg"
    needs_task_labels = True
    _parameter_constraints: ClassVar[dict] = {"gating_prop": [Interval(float, 0, 1, closed="left"), None],
                                              "exact_count": [BOOL], "before_bias": [BOOL],
                                              "subnetwork": [BOOL, None]}

    def __init__(self, gating_prop: float | None = None, base: str = "finetune", base_params: dict | None = None,
                 exact_count: bool = False, before_bias: bool = False, subnetwork: bool | None = None):
        super().__init__(base, base_params)
        self.gating_prop = gating_prop
        self.exact_count = exact_count
        self.before_bias = before_bias
        self.subnetwork = subnetwork

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
        self._gated_layers = [name.replace("relu", "fc") for name in hidden]
        super().setup(learner)
        why_not = self._why_not_subnetwork()
        if self.subnetwork and why_not:
            raise ConfigError(f"strategy 'xdg': subnetwork=True needs {why_not}")
        self.subnetwork = why_not is None if self.subnetwork is None else self.subnetwork
        self._whole: nn.Module | None = None  # the whole network while a sub-network trains
        self._part: Subnetwork | None = None
        self._tested: tuple[int, nn.Module] | None = None  # the last task's sub-network under test

    def _why_not_subnetwork(self) -> str | None:
        """What keeps a sub-network from giving exactly the whole gated network's updates."""
        if self.before_bias:
            return "gated units to output 0 (before_bias=False)"
        if not self.learner.reset_optimizer:
            return "a fresh optimiser per task (reset_optimizer)"
        if not self.base.subnetwork_exact:
            return f"a base strategy that keeps to the updated weights (fine-tuning or SI), not {self.base.name!r}"
        if not Subnetwork.supports(self.learner.model):
            return "a network of Linear, ReLU, Dropout and Flatten layers"
        return None

    def _cut(self, task: int, model: nn.Module) -> Subnetwork:
        kept = {name: gates[task].nonzero().squeeze(1) for name, gates in zip(self._gated_layers, self.gates)}
        # only called in sub-network mode, which setup turns on only where Subnetwork.supports the model
        return Subnetwork(cast(nn.Sequential, model), kept)

    def before_task(self, t):
        self._tested = None
        if self.subnetwork:
            learner = self.learner
            self._whole, self._part = learner.model, self._cut(t, learner.model)
            learner.model = self._part.module
            learner.optimizer = learner.new_optimizer()  # over the sub-network's weights, before the base hooks it
            self.base.restrict(self._part)
        super().before_task(t)

    def after_task(self, t):
        super().after_task(t)
        if self._part is not None:
            learner = self.learner
            self._part.write_back()
            assert self._whole is not None  # set together with _part in before_task
            learner.model, self._whole = self._whole, None
            self.base.extend(self._part)
            self._part = None
            learner.optimizer = learner.new_optimizer()  # the checkpoint holds an optimiser of the whole network
        self._tested = None

    def load_state_dict(self, state):
        self._tested = None  # cut from weights the checkpoint replaces
        super().load_state_dict(state)

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
        if self._part is not None:  # training one task's sub-network: no gates to apply
            return self.learner.model(x)
        if self.subnetwork and not self.learner.model.training and contexts is not None and len(contexts) \
                and bool((contexts == contexts[0]).all()):
            task = int(contexts[0])
            if self._tested is None or self._tested[0] != task:
                self._tested = (task, self._cut(task, self.learner.model).module.eval())
            return self._tested[1](x)
        self._contexts = contexts
        try:
            return self.learner.model(x)
        finally:
            self._contexts = None
