"""The continual-learning loop: one network, one scenario, one strategy.

``Learner(...).fit()`` trains the tasks in order and fills the accuracy matrix; ``run_continual``
wraps it in a run folder (``config.json``, ``model.json``, ``weights.safetensors``,
``metrics.json``, ``log.txt``) with a checkpoint after every task, so ``--resume`` continues an
interrupted job from the last finished task and ends with the numbers an uninterrupted one would
have (every random stream is derived from ``(seed, task)``).

Batches are drawn from tensors held on the device (no DataLoader): a 2,000-iteration task of the
2 x 400 MLP takes seconds on one CPU core.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..data import dataset_info
from ..data.paths import find_dataset_folder
from ..errors import ConfigError
from ..execution import Execution, derive_seed, refuse_torchrun
from ..models import build_from_spec, model_spec
from ..progress import Progress, default_progress, silent
from ..runs import Run, RunWriter
from .config import ContinualConfig
from .metrics import accuracy_curve, summarise
from .results import ContinualResult
from .scenarios import Scenario, check_scenario, make_scenario
from .strategies.base import MASKED, Strategy, make_strategy

#: devices with a fused Adam kernel in torch (others take the per-tensor loop)
FUSED_ADAM_DEVICES = ("cpu", "cuda")


class BatchStream:
    """Shuffled batches of one task, epoch after epoch, from a seeded generator."""

    def __init__(self, n: int, batch_size: int, generator: torch.Generator):
        self.n, self.batch_size, self.generator = n, batch_size, generator
        self.order = torch.randperm(n, generator=generator)
        self.position = 0

    def next(self) -> torch.Tensor:
        if self.position + self.batch_size > self.n:
            if self.batch_size >= self.n:
                return torch.randperm(self.n, generator=self.generator)
            self.order, self.position = torch.randperm(self.n, generator=self.generator), 0
        index = self.order[self.position:self.position + self.batch_size]
        self.position += self.batch_size
        return index


class Learner:
    """Trains ``model`` through ``scenario`` with ``strategy``.

    Args:
        model: the classifier (its outputs: ``scenario.n_outputs`` logits).
        scenario: the tasks (on the model's device).
        strategy: how to learn them.
        iters: iterations per task; ``batch_size``, ``lr``: Adam's.
        seed: every random stream derives from ``(seed, task)``.
        transition: task-free streams: iterations over which one task fades into the next.
        reset_optimizer: a fresh Adam at the start of every task (Masse et al. 2018).
        device: where the model and data live.
        execution: the job's :class:`~neuroaikit.execution.Execution`, whose precision the
            training steps use (``None``: float32).
    """

    def __init__(self, model: nn.Module, scenario: Scenario, strategy: Strategy, *, iters: int = 2000,
                 batch_size: int = 128, lr: float = 1e-3, seed: int = 0, transition: int | None = None,
                 reset_optimizer: bool = False, device: torch.device | str = "cpu", progress: Progress | None = None,
                 execution: Execution | None = None):
        self.model, self.scenario, self.strategy = model, scenario, strategy
        self.iters, self.batch_size, self.lr, self.seed = iters, batch_size, lr, seed
        self.transition = iters // 2 if transition is None else min(transition, iters)
        self.reset_optimizer = reset_optimizer
        self.device = torch.device(device)
        self.progress = progress or silent()
        self.execution = execution
        self._scaler = execution.grad_scaler() if execution is not None else None
        self.forward_examples = 0
        self.matrix: list[list[float]] = []
        self.untrained: list[float] = []
        self.train_time_s = 0.0
        self.seen_outputs = torch.zeros(scenario.n_outputs, dtype=torch.bool, device=self.device)
        self.masks = scenario.context_masks(0).to(self.device)
        self.task = 0
        self.step = 0
        strategy.setup(self)
        self.optimizer = self.new_optimizer()

    def new_optimizer(self) -> torch.optim.Adam:
        """A fresh Adam over the network's (and the strategy's) parameters."""
        # the fused kernel updates every tensor in one pass; on the protocol's small MLP the
        # default per-tensor loop (the only one torch uses on CPU) is a visible share of a step
        return torch.optim.Adam(list(self.model.parameters()) + self.strategy.parameters(), lr=self.lr,
                                betas=(0.9, 0.999), fused=self.device.type in FUSED_ADAM_DEVICES)

    # -- what strategies use ---------------------------------------------------
    def generator(self, t: int, stream: int = 0) -> torch.Generator:
        """A generator for random stream ``stream`` of task ``t`` (same bits on a resumed job)."""
        return torch.Generator().manual_seed(derive_seed(self.seed, t, stream))

    def forward(self, x: torch.Tensor, contexts: torch.Tensor | None) -> torch.Tensor:
        """Logits of the network as the strategy runs it (gating, noise), counted."""
        self.forward_examples += len(x)
        return self.strategy.forward(x, contexts)

    def mask(self, logits: torch.Tensor, contexts: torch.Tensor | None) -> torch.Tensor:
        """``logits`` with the units each example's context may not use set very low. With no
        contexts (a task-free stream) class-IL allows the labels seen so far, domain-IL all."""
        if contexts is None:
            allowed = self.seen_outputs if self.scenario.kind == "class" else torch.ones_like(self.seen_outputs)
            return logits.masked_fill(~allowed, MASKED)
        return logits.masked_fill(~self.masks[contexts], MASKED)

    def masks_for(self, upto: int) -> torch.Tensor:
        """``(n_tasks, n_outputs)`` context masks as they were while training task ``upto``."""
        return self.scenario.context_masks(upto).to(self.device)

    def classification_loss(self, x: torch.Tensor, y: torch.Tensor, contexts: torch.Tensor | None,
                            logits: torch.Tensor | None = None):
        """Cross-entropy of ``x`` in its contexts; ``logits``: the network's answer to ``x``,
        when the caller has it already (no second forward pass)."""
        logits = self.mask(self.forward(x, contexts) if logits is None else logits, contexts)
        loss = F.cross_entropy(logits, y)
        return loss, {"loss_current": float(loss.detach())}

    def replay_weight(self, t: int) -> float:
        """Weight of the current task's loss when mixed with replay: ``1 / (tasks so far)`` (van de Ven)."""
        return 1.0 / (t + 1)

    def contexts_for(self, t: int, n: int) -> torch.Tensor | None:
        return None if self.scenario.task_free else torch.full((n,), t, dtype=torch.long, device=self.device)

    def draw(self, t: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """A training batch of task ``t`` (of the mixture around a transition, task-free)."""
        if not self.scenario.task_free:
            task = self.scenario.tasks[t]
            x, y = task.train_batch(self._streams[t].next().to(task.train_y.device))
            return x, y, self.contexts_for(t, len(y))
        return self._draw_mixture(t)

    def _draw_mixture(self, t: int):
        # fuzzy boundaries: around each boundary the next task's share rises linearly over `transition` iterations
        k, half = self.step, self.transition / 2
        share_next = 0.0 if t + 1 >= self.scenario.n_tasks or not half else min(1.0, max(0.0, (k - (self.iters - half)) / (2 * half)))
        share_prev = 0.0 if t == 0 or not half else min(1.0, max(0.0, (half - k) / (2 * half)))
        draws = torch.rand(self.batch_size, generator=self._mix_generator)
        source = torch.full((self.batch_size,), t)
        source[draws < share_prev] = t - 1
        source[draws > 1 - share_next] = t + 1
        xs, ys = [], []
        for s in source.unique().tolist():
            n = int((source == s).sum())
            task = self.scenario.tasks[s]
            index = torch.randint(task.n_train, (n,), generator=self._mix_generator).to(task.train_y.device)
            x, y = task.train_batch(index)
            xs.append(x)
            ys.append(y)
        y = torch.cat(ys)
        self.seen_outputs[y] = True
        return torch.cat(xs), y, None

    # -- evaluation ------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, trained_upto: int) -> list[float]:
        """Test accuracy on every task after training tasks ``0..trained_upto`` (``-1``: untrained)."""
        self.model.eval()
        accuracies = []
        for task in self.scenario.tasks:
            allowed = self.scenario.output_mask(task.index if self.scenario.kind == "task" else max(trained_upto, 0),
                                                task.index).to(self.device)
            correct = 0
            for x, y in task.test_batches():
                logits = self.strategy.forward(x, torch.full((len(y),), task.index, device=self.device))
                correct += int((logits.masked_fill(~allowed, MASKED).argmax(1) == y).sum())
            accuracies.append(correct / max(len(task.test_y), 1))
        self.model.train()
        return accuracies

    # -- training ----------------------------------------------------------------
    def train_task(self, t: int) -> None:
        self.task = t
        self.masks = self.scenario.context_masks(t).to(self.device)
        if not self.scenario.task_free:  # a task-free stream learns the labels as they come (see _draw_mixture)
            for task in self.scenario.tasks[: t + 1]:
                self.seen_outputs[task.outputs] = True
        self._streams = {s: BatchStream(task.n_train, self.batch_size, self.generator(t, 100 + s))
                         for s, task in enumerate(self.scenario.tasks[: t + 1])}
        self._mix_generator = self.generator(t, 1)
        torch.manual_seed(derive_seed(self.seed, t, 2))
        self.model.train()
        if self.reset_optimizer:  # before the strategy's before_task, which may hook the optimiser
            self.optimizer = self.new_optimizer()
        self.strategy.before_task(t)
        with self.progress.task(f"task {t + 1}/{self.scenario.n_tasks}", total=self.iters, unit="it") as bar:
            for step in range(self.iters):
                self.step = step
                x, y, contexts = self.strategy.batch(t)
                with self.execution.autocast() if self.execution is not None else contextlib.nullcontext():
                    loss, info = self.strategy.loss(x, y, contexts, t)
                if not torch.isfinite(loss):
                    raise ConfigError(f"training diverged on task {t + 1} (loss {float(loss)}); lower the lr or the "
                                      f"strategy's regularisation strength")
                if self.execution is not None:
                    self.execution.optimizer_step(loss, self.optimizer, self._scaler)
                else:
                    self.optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    self.optimizer.step()
                self.strategy.after_step()
                bar.update(loss=float(loss.detach()))
        self.strategy.after_task(t)

    def fit(self, start: int = 0, on_task_end=None) -> None:
        """Train tasks ``start..T-1``; ``on_task_end(t)`` after each (checkpoints)."""
        if start == 0 and not self.untrained:
            self.untrained = self.evaluate(-1)
        for t in range(start, self.scenario.n_tasks):
            t0 = time.perf_counter()
            self.train_task(t)
            self.train_time_s += time.perf_counter() - t0
            self.matrix.append(self.evaluate(t))
            self.progress.message(f"after task {t + 1}: accuracy " + " ".join(f"{a:.3f}" for a in self.matrix[-1])
                                  + f"; mean over tasks so far {sum(self.matrix[-1][: t + 1]) / (t + 1):.4f}")
            if on_task_end is not None:
                on_task_end(t)

    # -- state ---------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "strategy": self.strategy.state_dict(), "matrix": self.matrix, "untrained": self.untrained,
                "forward_examples": self.forward_examples, "train_time_s": self.train_time_s,
                "seen_outputs": self.seen_outputs}

    def load_state_dict(self, state: dict) -> int:
        """Restore a checkpoint; returns the next task to train."""
        self.model.load_state_dict(state["model"])
        self.strategy.load_state_dict(state["strategy"])
        self.optimizer = self.new_optimizer()
        self.optimizer.load_state_dict(state["optimizer"])
        self.matrix = [list(map(float, row)) for row in state["matrix"]]
        self.untrained = list(map(float, state["untrained"]))
        self.forward_examples = int(state["forward_examples"])
        self.train_time_s = float(state["train_time_s"])
        self.seen_outputs = state["seen_outputs"].to(self.device)
        return len(self.matrix)

    def result(self, config: ContinualConfig | None = None, execution: dict | None = None) -> ContinualResult:
        figures = summarise(self.matrix, self.untrained)
        baseline = self.iters * self.batch_size * self.scenario.n_tasks
        costs = {"forward_examples": self.forward_examples,
                 "extra_forward_ratio": self.forward_examples / baseline - 1.0,
                 **self.strategy.memory(), "train_time_s": self.train_time_s}
        return ContinualResult(
            benchmark=self.scenario.benchmark, scenario=self.scenario.kind, strategy=self.strategy.name,
            accuracy_matrix=self.matrix, untrained_accuracy=self.untrained, accuracy_curve=accuracy_curve(self.matrix),
            strategy_params=self.strategy.params(), costs=costs, task_free=self.scenario.task_free,
            n_tasks=self.scenario.n_tasks, iters=self.iters, seed=self.seed, train_time_s=self.train_time_s,
            execution=execution or {}, **figures)


def build_network(config: ContinualConfig, scenario: Scenario) -> tuple[nn.Module, dict]:
    """The MLP of the protocol (``layers`` x ``hidden`` ReLU units, ``dropout`` after each) and
    the spec that rebuilds it."""
    channels, height, width = scenario.shape
    # square images keep the one size specs have always held; others give both sides
    kwargs: dict[str, Any] = {"in_channels": channels, "image_size": height if height == width else [height, width],
              "n_classes": scenario.n_outputs,
              "hidden": [config.resolved("hidden")] * config.layers}
    if config.dropout:  # only then: specs written before dropout existed rebuild unchanged
        kwargs["dropout"] = config.dropout
    spec = model_spec("mlp", kwargs)
    return build_from_spec(spec), spec


def scenario_from(config: ContinualConfig, datasets=None, progress: Progress | None = None) -> Scenario:
    """The :class:`Scenario` a configuration describes (benchmark, scenario type, tasks, subsets,
    seed); ``datasets`` (train, test) reuses splits already in memory instead of reading files;
    ``progress`` hears when a subset is larger than its split."""
    return make_scenario(config.benchmark, config.scenario, n_tasks=config.n_tasks, data_dir=config.data_dir,
                         class_order=config.class_order, train_subset=config.train_subset,
                         test_subset=config.test_subset, seed=config.seed, task_free=config.task_free,
                         datasets=datasets, pad=config.pad, shared_head=config.shared_head, progress=progress)


def check_continual_config(config: ContinualConfig) -> None:
    """Refuse ``config`` in one line if its strategy settings are bad, its class split leaves a
    task empty or unequal, or its data files are missing, without reading the data (a sweep
    checks every trial this way before it creates its folder; :func:`run_continual` checks
    everything on the data it loads)."""
    make_strategy(config.strategy, config.strategy_params, config.scenario, config.task_free)
    dataset, _, _ = check_scenario(config.benchmark, config.scenario, n_tasks=config.n_tasks,
                                   class_order=config.class_order, seed=config.seed, task_free=config.task_free,
                                   pad=config.pad, shared_head=config.shared_head)
    if dataset_info(dataset).needs_files:
        for split in ("train", "test"):
            find_dataset_folder(dataset, config.data_dir, split)


def make_learner(config: ContinualConfig, scenario: Scenario, device: torch.device | str = "cpu",
                 progress: Progress | None = None, execution: Execution | None = None) -> tuple[Learner, dict]:
    """A :class:`Learner` for ``config`` (weights seeded by ``config.seed``) and the model spec."""
    strategy = make_strategy(config.strategy, config.strategy_params, config.scenario, config.task_free)
    torch.manual_seed(config.seed)
    model, spec = build_network(config, scenario)
    model = model.to(device)
    learner = Learner(model, scenario.to(device), strategy, iters=config.resolved("iters"),
                      batch_size=config.resolved("batch_size"), lr=config.resolved("lr"), seed=config.seed,
                      transition=config.transition, reset_optimizer=config.reset_optimizer, device=device,
                      progress=progress, execution=execution)
    return learner, spec


def learn(config: ContinualConfig, scenario: Scenario | None = None, progress: Progress | None = None,
          datasets=None) -> ContinualResult:
    """Run one continual-learning experiment in memory (no run folder); returns its result."""
    with Execution(config.execution) as ex:
        scenario = scenario or scenario_from(config, datasets, progress)
        learner, _ = make_learner(config, scenario, ex.device, progress, ex)
        learner.fit()
        return learner.result(config, ex.describe())


def run_continual(config: ContinualConfig, out: str | os.PathLike, *, resume: bool = False, overwrite: bool = False,
                  progress: Progress | None = None) -> Run:
    """Run the experiment into the run folder ``out`` (checkpoint after every task); returns the
    finished :class:`~neuroaikit.runs.Run`.

    Everything is validated (output folder, data, class split, strategy and its settings)
    before ``out.partial`` is created.
    """
    progress = default_progress(progress)
    refuse_torchrun("continual learning", "tasks are learnt one after another")
    with Execution(config.execution) as ex:
        progress.for_rank(ex.rank)
        writer = RunWriter(out, config, overwrite=overwrite, resume=resume, progress=progress, execution=ex)
        scenario = scenario_from(config, progress=progress)
        learner, spec = make_learner(config, scenario, ex.device, progress, ex)
        with writer:
            state = writer.load_checkpoint(map_location=ex.device)
            start = learner.load_state_dict(state) if state is not None else 0
            if state is not None:
                writer.say(f"resumed after task {start} of {scenario.n_tasks}")
            writer.say(f"{config.strategy} on {config.benchmark} ({config.scenario}-incremental"
                       f"{', task-free' if config.task_free else ''}): {scenario.n_tasks} tasks x {learner.iters} "
                       f"iterations, batch {learner.batch_size}, Adam lr {learner.lr}, device {ex.device}")
            if config.class_order == "random":
                writer.say("classes per task (random order): " + ", ".join(
                    "/".join(map(str, task.classes)) for task in scenario.tasks))

            def checkpoint(t: int) -> None:
                writer.save_checkpoint(learner.state_dict())

            learner.fit(start, on_task_end=checkpoint)
            result = learner.result(config, ex.describe())
            writer.run.save_model(learner.model, spec)
            result.save(writer.run)
            writer.say(result.summary())
        return writer.commit()
