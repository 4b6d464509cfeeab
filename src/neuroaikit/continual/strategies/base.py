"""The interface every strategy shares, and the registry.

A strategy is one small class. The :class:`~neuroaikit.continual.Learner` calls, for each task
``t``: ``before_task(t)``; per iteration ``batch(t)`` -> ``loss(x, y, contexts, t)`` -> the
optimiser step -> ``after_step()``; then ``after_task(t)``. ``forward(x, contexts)`` is how the
network is run (gating strategies override it); ``state_dict`` / ``load_state_dict`` carry what
the strategy learned across a resumed job; ``memory()`` says what it stores besides the network.
Settings are constructor arguments whose ``None`` default means "the published value for this
benchmark and scenario" (resolved in ``setup``); ``params()`` gives the resolved values. What each
setting accepts is declared in ``_parameter_constraints`` (as configurations declare their fields,
:mod:`neuroaikit.config`) and checked by :func:`make_strategy`, so a bad value is a one-line error
before any run folder exists.
"""

from __future__ import annotations

import inspect
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Callable, ClassVar, NamedTuple

import torch

from ...config import AppliesOnly, check_value
from ...errors import ConfigError

#: logits of the units a context may not answer with (finite, so distillation stays finite)
MASKED = -1e4

if TYPE_CHECKING:  # pragma: no cover
    from ..learner import Learner

_STRATEGIES: dict[str, type["Strategy"]] = {}


def register_strategy(cls: type["Strategy"]) -> type["Strategy"]:
    """Class decorator: make ``cls`` available under ``cls.name`` to configurations and the CLI."""
    _STRATEGIES[cls.name] = cls
    return cls


def available_strategies() -> list[str]:
    """The names of every registered strategy, sorted (importing the built-in ones first)."""
    from . import ewc, finetune, generative, metaplasticity, noise, replay, si, xdg  # noqa: F401

    return sorted(_STRATEGIES)


def strategy_class(name: str) -> type["Strategy"]:
    """The class registered as ``name``.

    Raises:
        ConfigError: no strategy has that name (the message lists the available ones).
    """
    names = available_strategies()
    if name not in _STRATEGIES:
        raise ConfigError(f"unknown strategy {name!r}; available: {', '.join(names)}")
    return _STRATEGIES[name]


def strategy_settings(name: str) -> list[str]:
    """The settings (constructor arguments) of the strategy ``name``, in order."""
    return [p for p in inspect.signature(strategy_class(name).__init__).parameters if p != "self"]


def canonical_settings(params: dict | None) -> dict:
    """``params`` with each setting under its constructor name: ``lambda``, what users type, is
    ``lambda_`` (a Python keyword)."""
    return {_constructor_name(key): value for key, value in (params or {}).items()}


def _constructor_name(setting: str) -> str:
    return "lambda_" if setting == "lambda" else setting


def typed_setting(setting: str) -> str:
    """The constructor argument ``setting`` as users type it (``lambda_`` is ``lambda``), the
    inverse of :func:`canonical_settings`, so that messages name what ``--set`` and the docs use."""
    return "lambda" if setting == "lambda_" else setting


class StrategyUse(NamedTuple):
    """What a strategy's ``_applies_only`` rules look at: its settings as the user gave them
    (``settings.size``), and the job it serves (``scenario`` is ``None`` where the job is not
    known yet, and then no rule about it refuses)."""

    settings: SimpleNamespace
    scenario: str | None
    task_free: bool


def make_strategy(name: str, params: dict | None = None, scenario: str | None = None,
                  task_free: bool = False) -> "Strategy":
    """The strategy ``name`` with ``params``; an unknown setting is a one-line error naming the
    known ones, and so is a setting the strategy would not use in ``scenario`` (``task``,
    ``domain`` or ``class``; ``None``: not known yet) or in a task-free stream."""
    strategy = build_strategy(name, params)
    strategy.check_settings_used(scenario, task_free)
    return strategy


def build_strategy(name: str, params: dict | None = None) -> "Strategy":
    """The strategy ``name`` with ``params``, each setting checked (known, in range) but not
    whether the strategy would use it: for the settings a run recorded, which are the resolved
    ones side by side (replay's ``size`` and the ``per_class`` it came from). To run with,
    use :func:`make_strategy`."""
    cls = strategy_class(name)
    accepted = strategy_settings(name)
    unknown = sorted(key for key in (params or {}) if _constructor_name(key) not in accepted)
    if unknown:
        raise ConfigError(f"strategy {name!r} has no setting(s) {', '.join(unknown)}; "
                          f"known: {', '.join(map(typed_setting, accepted)) or 'none'}")
    strategy = cls(**canonical_settings(params))
    strategy.validate_params()
    return strategy


def published(table: dict, benchmark: str, scenario: str, default: Any) -> Any:
    """A value from ``{(benchmark, scenario): value}`` tables (``"*"`` matches any scenario)."""
    for key in ((benchmark, scenario), (benchmark, "*")):
        if key in table:
            return table[key]
    return default


def tensor_floats(*tensors: Any) -> int:
    """Number of floats held by tensors (and lists / dicts of them)."""
    total = 0
    for item in tensors:
        if isinstance(item, torch.Tensor):
            total += item.numel()
        elif isinstance(item, dict):
            total += tensor_floats(*item.values())
        elif isinstance(item, (list, tuple)):
            total += tensor_floats(*item)
    return total


class Strategy:
    """Base: plain training on the current task (fine-tuning) unless a subclass says otherwise.

    Class attributes: ``name``, what configurations call it; ``needs_task_labels``, it uses the
    task identity (only task-incremental scenarios, never task-free streams);
    ``needs_boundaries``, an offline method that must know where tasks end (not task-free).
    """

    name: ClassVar[str] = ""
    needs_task_labels: ClassVar[bool] = False
    needs_boundaries: ClassVar[bool] = False
    #: what each setting accepts: a list of constraints from :mod:`neuroaikit.config`, any of
    #: which may match (``None`` in the list admits ``None``, "the published value")
    _parameter_constraints: ClassVar[dict] = {}
    #: training only a task's sub-network (``neuroaikit.continual.strategies.xdg.Subnetwork``)
    #: gives this strategy exactly the updates it would make on the whole network, given a fresh
    #: optimiser per task: the units left out get no gradient, so nothing of theirs moves
    subnetwork_exact: ClassVar[bool] = False
    #: settings that other settings, the scenario or a task-free stream make pointless: rules
    #: whose ``when`` gets a ``StrategyUse`` (as configurations declare theirs,
    #: :class:`~neuroaikit.config.AppliesOnly`); a setting changed from its default that a rule
    #: covers is refused
    _applies_only: ClassVar[tuple[AppliesOnly, ...]] = ()

    learner: "Learner"

    def validate_params(self) -> None:
        """Raise a one-line :class:`~neuroaikit.errors.ConfigError` naming the first setting outside its constraints."""
        for setting, constraints in self._parameter_constraints.items():
            # the message names what the user wrote
            check_value(typed_setting(setting), getattr(self, setting), constraints, where=f"strategy {self.name!r}: ")

    def given_settings(self) -> dict:
        """The settings as the user gave them (defaults included): taken when first asked, which
        :meth:`setup` does before it resolves any (replay's ``size`` from ``per_class``), and
        kept, so that a strategy set up once is judged by what it was given."""
        if "_given_settings" not in self.__dict__:
            self._given_settings = {name: getattr(self, name) for name in inspect.signature(type(self).__init__).parameters
                                    if name != "self" and hasattr(self, name)}
        return dict(self._given_settings)

    def changed_settings(self) -> list[str]:
        """The given settings whose value differs from the constructor's default, in order."""
        defaults = inspect.signature(type(self).__init__).parameters
        return [name for name, value in self.given_settings().items()
                if defaults[name].default is not inspect.Parameter.empty and value != defaults[name].default]

    def check_settings_used(self, scenario: str | None = None, task_free: bool = False) -> None:
        """Raise a one-line :class:`~neuroaikit.errors.ConfigError` naming the first changed setting
        that ``_applies_only`` says this strategy would not use (its rules see a ``StrategyUse``)."""
        use = StrategyUse(SimpleNamespace(**self.given_settings()), scenario, task_free)
        for setting in self.changed_settings():
            for rule in self._applies_only:
                refusal = rule.refusal(use, setting)
                if refusal is not None:
                    raise ConfigError(f"strategy {self.name!r}: {refusal.describe(typed_setting)}")
        # what the stream must give the strategy: checked here, so a sweep's pre-check and its dry
        # run refuse such a trial before anything is created, as the run itself would
        if self.needs_task_labels and task_free:
            raise ConfigError(f"strategy {self.name!r} needs task labels, which a task-free stream does not give")
        if self.needs_task_labels and scenario is not None and scenario != "task":
            raise ConfigError(f"strategy {self.name!r} needs task labels: it applies to the task-incremental "
                              f"scenario only, not {scenario}")
        if self.needs_boundaries and task_free:
            raise ConfigError(f"strategy {self.name!r} needs task boundaries, which a task-free stream does not give")

    # -- lifecycle -----------------------------------------------------------
    def setup(self, learner: "Learner") -> None:
        """Called once, before the first task, with the network on its device."""
        self.learner = learner
        self.validate_params()  # a strategy built directly, not through make_strategy
        scenario = learner.scenario
        self.check_settings_used(scenario.kind, scenario.task_free)

    def params(self) -> dict:
        """The resolved settings (for the record)."""
        out = {}
        for name in inspect.signature(type(self).__init__).parameters:
            if name != "self" and hasattr(self, name):
                value = getattr(self, name)
                out[name] = value.name if isinstance(value, Strategy) else value
        return out

    def forward(self, x: torch.Tensor, contexts: torch.Tensor | None) -> torch.Tensor:
        return self.learner.model(x)

    def batch(self, t: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        return self.learner.draw(t)

    def loss(self, x: torch.Tensor, y: torch.Tensor, contexts: torch.Tensor | None, t: int) -> tuple[torch.Tensor, dict]:
        return self.learner.classification_loss(x, y, contexts)

    def before_task(self, t: int) -> None:
        pass

    def after_step(self) -> None:
        pass

    def after_task(self, t: int) -> None:
        pass

    def parameters(self) -> list[torch.nn.Parameter]:
        """Parameters the strategy trains besides the network's (with the same optimiser)."""
        return []

    # -- state -----------------------------------------------------------------
    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def memory(self) -> dict:
        """``buffer_examples`` and ``stored_floats`` kept besides the network."""
        return {"buffer_examples": 0, "stored_floats": 0}

    def restrict(self, subnetwork) -> None:
        """Keep to ``subnetwork`` for one task (per-weight state sliced to it); only for
        ``subnetwork_exact`` strategies."""

    def extend(self, subnetwork) -> None:
        """Back to the whole network after a task restricted to ``subnetwork``, with the state
        the whole network would have."""


class Composite(Strategy):
    """A strategy that adds something (gating, noise) to another, ``base``; everything it does
    not override goes to the base."""

    def __init__(self, base: str = "finetune", base_params: dict | None = None):
        if not isinstance(base, (str, Strategy)):
            raise ConfigError(f"strategy {self.name!r}: base must be a strategy's name, got {base!r}")
        if base_params is not None and not isinstance(base_params, dict):
            raise ConfigError(f"strategy {self.name!r}: base_params must be a mapping, got {base_params!r}")
        if isinstance(base, Strategy) and base_params:
            raise ConfigError(f"strategy {self.name!r}: base_params apply only when base is a strategy's name; "
                              f"set them on the {base.name!r} instance")
        self.base_params = dict(base_params or {})
        self.base = build_strategy(base, self.base_params) if isinstance(base, str) else base

    def check_settings_used(self, scenario: str | None = None, task_free: bool = False) -> None:
        super().check_settings_used(scenario, task_free)
        try:
            self.base.check_settings_used(scenario, task_free)
        except ConfigError as error:  # "strategy 'xdg', base strategy 'lwf': heads applies only ..."
            raise ConfigError(f"strategy {self.name!r}, base {error}") from None

    def setup(self, learner: "Learner") -> None:
        super().setup(learner)
        self.base.setup(learner)
        self._forward: Callable = self.base.forward

    def params(self) -> dict:
        return {**super().params(), "base_params": self.base.params()}

    def batch(self, t):
        return self.base.batch(t)

    def loss(self, x, y, contexts, t):
        return self.base.loss(x, y, contexts, t)

    def before_task(self, t):
        self.base.before_task(t)

    def after_step(self):
        self.base.after_step()

    def after_task(self, t):
        self.base.after_task(t)

    def parameters(self):
        return self.base.parameters()

    def state_dict(self):
        return {"base": self.base.state_dict()}

    def load_state_dict(self, state):
        self.base.load_state_dict(state["base"])

    def memory(self):
        return self.base.memory()
