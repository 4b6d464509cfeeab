"""The configuration of a continual-learning job (``neuroaikit continual``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from ..config import (BOOL, MAPPING, POSITIVE, POSITIVE_INT, STRING, Config, InstanceOf, Interval,
                      Options, PATH, Satisfies)
from ..errors import ConfigError
from ..execution import ExecutionConfig
from .scenarios import BENCHMARKS, SCENARIOS

#: the published protocols (van de Ven, Tuytelaars & Tolias 2022, Methods; the defaults of their
#: code, param_values.py): Split MNIST 2 x 400 units, 2,000 iterations per task, Adam lr 1e-3;
#: Permuted MNIST 2 x 1,000 units, 5,000 iterations, lr 1e-4; batch 128 for both
PROTOCOLS: dict[str, dict] = {
    "split-mnist": {"hidden": 400, "iters": 2000, "lr": 1e-3, "batch_size": 128},
    "split-fashion-mnist": {"hidden": 400, "iters": 2000, "lr": 1e-3, "batch_size": 128},
    "split-cifar10": {"hidden": 400, "iters": 2000, "lr": 1e-3, "batch_size": 128},
    "permuted-mnist": {"hidden": 1000, "iters": 5000, "lr": 1e-4, "batch_size": 128},
    "rotated-mnist": {"hidden": 1000, "iters": 5000, "lr": 1e-4, "batch_size": 128},
}


def _int_list(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)


@dataclass
class ContinualConfig(Config):
    """Everything a continual-learning job needs.

    Args:
        benchmark (str): ``split-mnist``, ``split-fashion-mnist``, ``split-cifar10``,
            ``permuted-mnist`` or ``rotated-mnist``.
        scenario (str): ``task``, ``domain`` or ``class`` incremental.
        strategy (str): a registered strategy (:func:`neuroaikit.continual.strategies.available_strategies`).
        strategy_params (dict): the strategy's settings (``None`` ones take the published
            value for the benchmark and scenario, see each strategy).
        n_tasks (int | None): number of tasks (``None``: the benchmark's).
        task_free (bool): a stream with gradual transitions and no task labels or boundaries.
        transition (int | None): task-free streams: iterations over which one task fades into the
            next, at most ``iters`` (``None``: half a task).
        iters, hidden, lr, batch_size: iterations per task, units per hidden layer, Adam
            learning rate, batch size (``None``: the published protocol, :data:`PROTOCOLS`).
        layers (int): hidden layers of the MLP. Default 2.
        dropout (float): dropout on the hidden units while training, in [0, 1). Default 0
            (van de Ven et al.'s protocols; Masse et al. 2018 use 0.5).
        shared_head (bool): task-IL only: every task answers with the same output units (one
            output layer for all tasks, as Masse et al.'s Permuted MNIST network), the task
            identity reaching the network only through the strategy (XdG's gates). Default
            False: a head per task.
        reset_optimizer (bool): a fresh Adam (moments cleared) at the start of every task, as
            Masse et al.'s code and van de Ven's ``adam_reset``. Default False.
        class_order (list | str | None): split benchmarks: the order in which classes are cut into
            tasks; ``"random"`` draws one from ``seed`` (so each seed pairs the classes differently).
        seed (int): seeds the weights, batch order, buffers, permutations and noise.
        train_subset, test_subset (int | None): the first N images of each split.
        pad (int): zero pixels added on every side of the images (before permuting); 2 gives the
            32 x 32 MNIST of van de Ven et al.'s code. Default 0.
        data_dir (str | None): folder holding the data set files.
        execution (ExecutionConfig): device, precision, threads.
    """

    benchmark: str = "split-mnist"
    scenario: str = "class"
    strategy: str = "finetune"
    strategy_params: dict = field(default_factory=dict)
    n_tasks: int | None = None
    task_free: bool = False
    transition: int | None = None
    iters: int | None = None
    hidden: int | None = None
    layers: int = 2
    dropout: float = 0.0
    shared_head: bool = False
    reset_optimizer: bool = False
    lr: float | None = None
    batch_size: int | None = None
    class_order: list | str | None = None
    seed: int = 0
    train_subset: int | None = None
    test_subset: int | None = None
    pad: int = 0
    data_dir: str | None = None
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)

    _parameter_constraints: ClassVar[dict] = {
        "benchmark": [Options(BENCHMARKS)],
        "scenario": [Options(SCENARIOS)],
        "strategy": [STRING],
        "strategy_params": [MAPPING],
        "n_tasks": [POSITIVE_INT, None],
        "task_free": [BOOL],
        "transition": [Interval(int, 0, None), None],
        "iters": [POSITIVE_INT, None],
        "hidden": [POSITIVE_INT, None],
        "layers": [POSITIVE_INT],
        "dropout": [Interval(float, 0, 1, closed="left")],
        "shared_head": [BOOL],
        "reset_optimizer": [BOOL],
        "lr": [POSITIVE, None],
        "batch_size": [POSITIVE_INT, None],
        "class_order": [Satisfies(_int_list, "a list of class indices"), Options(("random",)), None],
        "seed": [Interval(int, 0, None)],
        "train_subset": [POSITIVE_INT, None],
        "test_subset": [POSITIVE_INT, None],
        "pad": [Interval(int, 0, None)],
        "data_dir": [PATH, None],
        "execution": [InstanceOf(ExecutionConfig)],
    }

    def _check(self) -> None:
        if self.shared_head and self.scenario != "task":
            raise ConfigError(f"shared_head applies to the task-incremental scenario; {self.scenario}-IL tasks "
                              "already share their output units or choose among all classes")
        if self.transition is not None and not self.task_free:
            raise ConfigError("transition applies to task-free streams only (task_free, --task-free)")
        if self.transition is not None and self.transition > self.resolved("iters"):
            raise ConfigError(f"transition ({self.transition} iterations) must not exceed the iterations per task "
                              f"({self.resolved('iters')}): a task cannot fade out over more than it lasts")
        if self.data_dir is not None:
            self.data_dir = str(self.data_dir)

    def resolved(self, name: str):
        """``iters``, ``hidden``, ``lr`` or ``batch_size``: the value given, else the protocol's."""
        value = getattr(self, name)
        return PROTOCOLS[self.benchmark][name] if value is None else value

    def resolved_dict(self) -> dict:
        """The settings with the protocol's network, iterations, learning rate and batch size, the
        benchmark's task count and a task-free stream's half-task transition filled in."""
        out = self.to_dict()
        for name in PROTOCOLS[self.benchmark]:
            out[name] = self.resolved(name)
        if self.n_tasks is None:
            out["n_tasks"] = BENCHMARKS[self.benchmark][2]
        if self.task_free and self.transition is None:
            out["transition"] = out["iters"] // 2
        return out


__all__ = ["ContinualConfig", "PROTOCOLS"]
