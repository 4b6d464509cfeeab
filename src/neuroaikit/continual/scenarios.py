"""Continual-learning scenarios: a data set cut into a sequence of tasks, and what the learner
is told about them (van de Ven, Tuytelaars & Tolias 2022, "Three types of incremental learning").

- **task-incremental** (``"task"``): the task identity is given at training and test time; each
  task has its own output units (a multi-headed network, realised by masking the others);
- **domain-incremental** (``"domain"``): the task identity is not given, and need not be: every
  task has the same output space (Split MNIST: "first or second digit of the pair?");
- **class-incremental** (``"class"``): the task identity is not given and must be inferred: the
  network chooses among all classes seen so far.

Benchmarks (:data:`BENCHMARKS`): ``split-mnist`` (5 tasks of 2 digits), ``split-fashion-mnist``,
``split-cifar10`` (the shared 4,000/1,000-image subset), ``permuted-mnist`` (each task a fixed
pixel permutation; the first task the original images) and ``rotated-mnist`` (each task the
images rotated by a further ``180 / n_tasks`` degrees). Images stay in memory as tensors: a
2,000-iteration task of an MLP takes seconds on a CPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..data.catalog import dataset_info
from ..errors import ConfigError, DataError
from ..progress import Progress

SCENARIOS = ("task", "domain", "class")
#: benchmark -> (dataset, how tasks are made, default number of tasks)
BENCHMARKS: dict[str, tuple[str, str, int]] = {
    "split-mnist": ("mnist", "split", 5),
    "split-fashion-mnist": ("fashion-mnist", "split", 5),
    "split-cifar10": ("cifar10", "split", 5),
    "permuted-mnist": ("mnist", "permuted", 10),
    "rotated-mnist": ("mnist", "rotated", 5),
}


@dataclass
class Task:
    """One task of a scenario.

    Attributes:
        index: position in the sequence (0-based).
        train_x, test_x: images ``(N, C, H, W)`` in [0, 1].
        train_y, test_y: targets in the scenario's output space (int64).
        classes: the data set's classes this task holds.
        outputs: the output units that answer this task.
        permutation: permuted benchmarks: the pixel order of this task (applied per batch by
            :meth:`view`, so 100 permuted tasks share one copy of the images).
        angle: rotated benchmarks: the rotation in degrees (applied per batch by :meth:`view`).

    ``train_x`` / ``test_x`` are the untransformed images; ``train_batch`` and
    ``test_batches`` return what the learner sees.
    """

    index: int
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: list[int]
    outputs: list[int]
    permutation: torch.Tensor | None = None
    angle: float = 0.0

    @property
    def n_train(self) -> int:
        return len(self.train_y)

    def view(self, images: torch.Tensor) -> torch.Tensor:
        """``images`` as this task shows them (permuted or rotated)."""
        if self.permutation is not None:
            return images.reshape(len(images), -1)[:, self.permutation].reshape(images.shape)
        if self.angle:
            return rotate_images(images, self.angle)
        return images

    def train_batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.view(self.train_x[index]), self.train_y[index]

    def test_batches(self, size: int = 2000):
        for start in range(0, len(self.test_y), size):
            yield self.view(self.test_x[start:start + size]), self.test_y[start:start + size]

    def to(self, device: torch.device | str) -> "Task":
        permutation = None if self.permutation is None else self.permutation.to(device)
        return Task(self.index, self.train_x.to(device), self.train_y.to(device), self.test_x.to(device),
                    self.test_y.to(device), list(self.classes), list(self.outputs), permutation, self.angle)


@dataclass
class Scenario:
    """A sequence of :class:`Task` s and the rules of one scenario.

    Attributes:
        benchmark: e.g. ``"split-mnist"``.
        kind: ``"task"``, ``"domain"`` or ``"class"``.
        tasks: the tasks, in order.
        n_outputs: output units of the network.
        shape: the image shape ``(C, H, W)``.
        task_free: ``True`` when the learner is told neither the task identities nor where
            one task ends (a stream with gradual transitions, see :class:`~neuroaikit.continual.Learner`).
        shared_head: task-IL whose tasks all answer with the same output units (one output
            layer; the task identity reaches the network only through the strategy).
    """

    benchmark: str
    kind: str
    tasks: list[Task]
    n_outputs: int
    shape: tuple[int, int, int]
    task_free: bool = False
    notes: list[str] = field(default_factory=list)
    shared_head: bool = False

    @property
    def n_tasks(self) -> int:
        return len(self.tasks)

    @property
    def outputs_shared(self) -> bool:
        """Whether every task answers with the same output units (domain-IL, and task-IL with a
        shared head): an output then stands for a different class in each task, so what is
        balanced or modelled per class is balanced per (task, output)."""
        return self.kind == "domain" or self.shared_head

    def output_mask(self, context: int, evaluating_task: int | None = None) -> torch.Tensor:
        """Boolean ``(n_outputs,)``: the units the network may answer with in ``context``.

        Task-IL: the context's own head. Domain-IL: every unit. Class-IL: the units of every
        task up to ``context`` (van de Ven's "active classes"; at test time ``context`` is the
        last task trained, or the tested one if it comes later)."""
        mask = torch.zeros(self.n_outputs, dtype=torch.bool)
        if self.kind == "task":
            mask[self.tasks[context].outputs] = True
        elif self.kind == "domain":
            mask[:] = True
        else:
            last = context if evaluating_task is None else max(context, evaluating_task)
            for task in self.tasks[: last + 1]:
                mask[task.outputs] = True
        return mask

    def context_masks(self, upto: int) -> torch.Tensor:
        """``(n_tasks, n_outputs)``: :meth:`output_mask` of every context when training task ``upto``."""
        rows = [self.output_mask(t if self.kind == "task" else upto) for t in range(self.n_tasks)]
        return torch.stack(rows)

    def to(self, device: torch.device | str) -> "Scenario":
        """The scenario with its tensors on ``device`` (tasks sharing images keep sharing them)."""
        moved: dict[int, torch.Tensor] = {}

        def on(tensor: torch.Tensor) -> torch.Tensor:
            key = id(tensor)
            if key not in moved:
                moved[key] = tensor.to(device)
            return moved[key]

        tasks = [Task(t.index, on(t.train_x), on(t.train_y), on(t.test_x), on(t.test_y), list(t.classes),
                      list(t.outputs), None if t.permutation is None else t.permutation.to(device), t.angle)
                 for t in self.tasks]
        return Scenario(self.benchmark, self.kind, tasks, self.n_outputs, self.shape, self.task_free, list(self.notes),
                        self.shared_head)


def split_classes(n_classes: int, n_tasks: int, class_order: Sequence[int] | str | None = None,
                  seed: int = 0) -> list[list[int]]:
    """Classes per task: ``class_order`` (default 0..n-1; ``"random"``: an order drawn from
    ``seed``) cut into ``n_tasks`` equal groups; a split that leaves a task empty or unequal is a
    one-line error."""
    if isinstance(class_order, str):
        if class_order != "random":
            raise ConfigError(f"class_order must be a list of classes or 'random', got {class_order!r}")
        class_order = np.random.default_rng(int(seed)).permutation(n_classes).tolist()
    order = list(range(n_classes)) if class_order is None else [int(c) for c in class_order]
    if sorted(order) != list(range(n_classes)):
        raise ConfigError(f"class_order must list each of the {n_classes} classes once, got {order}")
    if n_tasks > n_classes:
        raise ConfigError(f"{n_tasks} tasks from {n_classes} classes would leave "
                          f"{n_tasks - n_classes} task(s) empty; use at most {n_classes} tasks")
    if n_classes % n_tasks:
        raise ConfigError(f"{n_classes} classes do not split into {n_tasks} equal tasks; "
                          f"choose a number of tasks that divides {n_classes}")
    per = n_classes // n_tasks
    return [order[i * per:(i + 1) * per] for i in range(n_tasks)]


def rotate_images(images: torch.Tensor, degrees: float) -> torch.Tensor:
    """Images ``(N, C, H, W)`` rotated by ``degrees`` about their centre (bilinear, zeros outside)."""
    if degrees % 360 == 0:
        return images.clone()
    theta = np.deg2rad(degrees)
    cos, sin = float(np.cos(theta)), float(np.sin(theta))
    matrix = torch.tensor([[cos, -sin, 0.0], [sin, cos, 0.0]], dtype=images.dtype, device=images.device)
    grid = F.affine_grid(matrix.expand(len(images), 2, 3), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _padded(dataset, pad: int):
    from ..data import ImageDataset

    return ImageDataset(F.pad(dataset.images, (pad, pad, pad, pad)), dataset.labels, list(dataset.classes),
                        dataset.name, dataset.split, dataset.source)


def _permutation(n_pixels: int, seed: int, index: int) -> torch.Tensor:
    if index == 0:
        return torch.arange(n_pixels)
    generator = torch.Generator().manual_seed(int(seed) * 1000 + index)
    return torch.randperm(n_pixels, generator=generator)


def _split_tasks(train, test, kind: str, groups: list[list[int]]) -> tuple[list[Task], int]:
    per = len(groups[0])
    tasks = []
    for t, classes in enumerate(groups):
        parts = []
        for split in (train, test):
            keep = torch.isin(split.labels, torch.tensor(classes))
            if not bool(keep.any()):
                raise DataError(f"task {t + 1} (classes {classes}) has no {split.split} images in {split.name}; "
                                f"every task needs examples (a smaller subset, or another class split?)")
            x, y = split.images[keep], split.labels[keep]
            if kind == "domain":  # position within the task: the same output space for every task
                y = torch.tensor([classes.index(int(c)) for c in y.tolist()], dtype=torch.long)
            parts += [x, y]
        outputs = list(range(per)) if kind == "domain" else list(classes)
        tasks.append(Task(t, parts[0], parts[1], parts[2], parts[3], list(classes), outputs))
    n_outputs = per if kind == "domain" else train.n_classes
    return tasks, n_outputs


def _transformed_tasks(train, test, kind: str, n_tasks: int, how: str, seed: int) -> tuple[list[Task], int]:
    n_classes = train.n_classes
    n_pixels = int(np.prod(train.shape))
    tasks = []
    for t in range(n_tasks):
        permutation = _permutation(n_pixels, seed, t) if how == "permuted" else None
        angle = t * 180.0 / n_tasks if how == "rotated" else 0.0
        offset = 0 if kind == "domain" else t * n_classes
        outputs = list(range(offset, offset + n_classes))
        train_y = train.labels if offset == 0 else train.labels + offset
        test_y = test.labels if offset == 0 else test.labels + offset
        tasks.append(Task(t, train.images, train_y, test.images, test_y, list(range(n_classes)), outputs,
                          permutation, angle))
    n_outputs = n_classes if kind == "domain" else n_classes * n_tasks
    return tasks, n_outputs


def check_scenario(benchmark: str, kind: str, *, n_tasks: int | None = None,
                   class_order: Sequence[int] | str | None = None, seed: int = 0, task_free: bool = False,
                   pad: int = 0, shared_head: bool = False, n_classes: int | None = None) -> tuple[str, str, int]:
    """Refuse in one line the options of :func:`make_scenario` that no data set could satisfy,
    without reading any data (a split is checked on ``n_classes``, by default the benchmark's data
    set's); returns that data set's name, its kind of tasks (``"split"``, ``"permuted"``,
    ``"rotated"``) and the number of tasks."""
    if benchmark not in BENCHMARKS:
        raise ConfigError(f"unknown benchmark {benchmark!r}; expected one of {', '.join(BENCHMARKS)}")
    if kind not in SCENARIOS:
        raise ConfigError(f"unknown scenario {kind!r}; expected one of {', '.join(SCENARIOS)}")
    if shared_head and kind != "task":
        raise ConfigError(f"shared_head applies to the task-incremental scenario, not {kind}")
    if task_free and kind == "task":
        raise ConfigError("a task-free stream gives no task labels, so it cannot be task-incremental; "
                          "use scenario domain or class")
    dataset, how, default_tasks = BENCHMARKS[benchmark]
    n_tasks = default_tasks if n_tasks is None else int(n_tasks)
    if n_tasks < 1:
        raise ConfigError(f"n_tasks must be >= 1, got {n_tasks}")
    if how == "split":
        classes = dataset_info(dataset).n_classes if n_classes is None else n_classes
        split_classes(classes, n_tasks, class_order, seed)
        if kind != "class" and classes // n_tasks < 2:
            # one class per task: a task- or domain-IL task has nothing to tell apart (every answer is right)
            raise ConfigError(f"{kind}-incremental tasks need 2 classes or more each; {classes} classes in "
                              f"{n_tasks} tasks give 1 (use fewer tasks, or the class-incremental scenario)")
    elif class_order is not None:
        raise ConfigError(f"class_order applies to split benchmarks, not {benchmark}")
    if isinstance(pad, bool) or not isinstance(pad, (int, np.integer)) or pad < 0:
        raise ConfigError(f"pad must be a whole number of pixels >= 0, got {pad!r}")
    return dataset, how, n_tasks


def make_scenario(benchmark: str = "split-mnist", kind: str = "class", *, n_tasks: int | None = None,
                  data_dir=None, class_order: Sequence[int] | str | None = None, train_subset: int | None = None,
                  test_subset: int | None = None, seed: int = 0, task_free: bool = False,
                  datasets=None, pad: int = 0, shared_head: bool = False,
                  progress: Progress | None = None) -> Scenario:
    """Build a :class:`Scenario` from a data set the toolkit loads.

    Args:
        benchmark: one of :data:`BENCHMARKS`.
        kind: ``"task"``, ``"domain"`` or ``"class"``.
        n_tasks: number of tasks (default: the benchmark's: 5, or 10 for permuted MNIST).
        data_dir: folder with the data set files (see :func:`neuroaikit.data.load_dataset`).
        class_order: split benchmarks: the order in which classes are cut into tasks, or
            ``"random"``: an order drawn from ``seed`` (van de Ven & Tolias 2019's code pairs the
            digits at random for every seed but its first).
        train_subset, test_subset: the first N images of each split (before the split into tasks).
        seed: seeds the permutations of permuted MNIST and a random class order.
        task_free: the learner is told neither task identities nor boundaries (not with ``"task"``).
        datasets: ``(train, test)`` :class:`~neuroaikit.data.ImageDataset` s to use instead of loading.
        progress: says when a subset asks for more images than the split holds (all are used).
        pad: zero pixels added on every side of the images before tasks are made (before the
            permutation of permuted benchmarks): ``pad=2`` gives van de Ven et al.'s 32 x 32 MNIST.
        shared_head: task-IL only: every task answers with the same output units, labelled as
            in domain-IL (Masse et al. 2018's single output layer), instead of a head per task.
    """
    dataset, how, n_tasks = check_scenario(benchmark, kind, n_tasks=n_tasks, class_order=class_order, seed=seed,
                                           task_free=task_free, pad=pad, shared_head=shared_head,
                                           n_classes=None if datasets is None else datasets[0].n_classes)
    if datasets is None:
        from ..data import load_dataset

        train, test = load_dataset(dataset, "train", data_dir=data_dir), load_dataset(dataset, "test", data_dir=data_dir)
    else:
        train, test = datasets
        if tuple(train.shape) != tuple(test.shape):
            raise ConfigError(f"the training images are {tuple(train.shape)} and the test images "
                              f"{tuple(test.shape)}: one network cannot take both")
    if progress is not None:
        progress.note_if_fewer(train_subset, len(train), "training images")
        progress.note_if_fewer(test_subset, len(test), "test images")
    if train_subset:
        train = train.subset(train_subset)
    if test_subset:
        test = test.subset(test_subset)
    if pad:
        train, test = _padded(train, int(pad)), _padded(test, int(pad))
    # a shared head lays the outputs out as domain-IL does; the task identity still reaches the strategy
    layout = "domain" if shared_head else kind
    if how == "split":
        tasks, n_outputs = _split_tasks(train, test, layout, split_classes(train.n_classes, n_tasks, class_order, seed))
    else:
        tasks, n_outputs = _transformed_tasks(train, test, layout, n_tasks, how, seed)
    return Scenario(benchmark, kind, tasks, n_outputs, train.shape, task_free, shared_head=bool(shared_head))
