"""The configuration of a training job: plain values, saved as ``config.json``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from ..config import (MAPPING, NON_NEGATIVE, POSITIVE, POSITIVE_INT, AppliesOnly, Config, InstanceOf, Interval,
                      Options, PATH, STRING)
from ..errors import ConfigError
from ..execution import ExecutionConfig
from ..noise import RULES, parse_noise_map

OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("none", "step", "cosine", "onecycle")
AUGMENTATIONS = ("none", "shift", "crop-flip")


@dataclass
class TrainConfig(Config):
    """Everything a training job needs; defaults suit a small CNN on MNIST.

    Args:
        dataset (str): ``"mnist"``, ``"fashion-mnist"``, ``"cifar10"`` or ``"digits"`` (embedded).
        data_dir (str | None): folder holding the dataset files (see :func:`neuroaikit.data.load_dataset`).
        model (str): a registered model name (``neuroaikit.models.available_models()``).
        model_kwargs (dict): extra builder arguments; shapes come from the dataset.
        noise (dict): ``{"layer": spec}`` noise sites, active during training and evaluation.
        noise_warmup (float): epochs over which the noise s.d. ramps linearly from 0 to its
            full value (0 = full noise from the first step). Noise that is large compared with
            the small activations of a freshly initialised network stalls learning; a warm-up
            lets the weights grow first. Evaluation always uses the full noise.
        norm_bound (float | None): after every optimiser step, scale each ``Conv2d`` / ``Linear``
            layer before the model's hidden Gaussian noise down to this L2 operator norm, as
            PixelDP trains for certification (:class:`neuroaikit.certify.training.PreNoiseNormBound`).
            ``None`` (default): unconstrained.
        epochs, lr, momentum, weight_decay: the usual.
        batch_size (int): the global batch: with several processes (``torchrun``) each takes
            an equal share of every batch (an epoch's last one included), so every process count
            trains on the same examples with the same gradients: a deterministic model ends with
            the same weights up to float rounding (noise draws and, on CPUs, batch norm are per
            process). At least the number of processes.
        optimizer (str): ``"sgd"`` (momentum, Nesterov) or ``"adam"``.
        schedule (str): ``"none"``, ``"step"`` (x0.1 at 50% and 75% of training),
            ``"cosine"`` or ``"onecycle"``, stepped every batch.
        augment (str): ``"none"``, ``"shift"`` (random translation by up to 2 px) or
            ``"crop-flip"`` (pad-4 random crop + horizontal flip, the CIFAR standard).
        seed (int): seeds weights, batch order, augmentation and noise.
        train_subset, test_subset (int | None): use only the first N examples.
        objective (str): the per-batch loss (see :mod:`neuroaikit.training.objectives`).
        objective_params (dict): the loss's settings.
        eval_rule (str): the deployed inference rule reported at the end; accuracy with one
            draw, with the rule and with the noise off is always reported.
        eval_draws (int): the noise draws of that rule.
        execution (ExecutionConfig): device, precision, threads.
    """

    dataset: str = "mnist"
    data_dir: str | None = None
    model: str = "cnn"
    model_kwargs: dict = field(default_factory=dict)
    noise: dict = field(default_factory=dict)
    noise_warmup: float = 0.0
    norm_bound: float | None = None
    epochs: int = 3
    batch_size: int = 128
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "none"
    augment: str = "none"
    seed: int = 0
    train_subset: int | None = None
    test_subset: int | None = None
    objective: str = "cross_entropy"
    objective_params: dict = field(default_factory=dict)
    eval_rule: str = "vote"
    eval_draws: int = 20
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)

    _parameter_constraints: ClassVar[dict] = {
        "dataset": [STRING],
        "data_dir": [PATH, None],
        "model": [STRING],
        "model_kwargs": [MAPPING],
        "noise": [MAPPING],
        "noise_warmup": [NON_NEGATIVE],
        "norm_bound": [POSITIVE, None],
        "epochs": [POSITIVE_INT],
        "batch_size": [POSITIVE_INT],
        "optimizer": [Options(OPTIMIZERS)],
        "lr": [POSITIVE],
        "momentum": [Interval(float, 0, 1, closed="left")],
        "weight_decay": [NON_NEGATIVE],
        "schedule": [Options(SCHEDULES)],
        "augment": [Options(AUGMENTATIONS)],
        "seed": [Interval(int, 0, None)],
        "train_subset": [POSITIVE_INT, None],
        "test_subset": [POSITIVE_INT, None],
        "objective": [STRING],
        "objective_params": [MAPPING],
        "eval_rule": [Options(RULES)],
        "eval_draws": [POSITIVE_INT],
        "execution": [InstanceOf(ExecutionConfig)],
    }

    # refused where typed or set in --config (``neuroaikit train``); the API accepts them, since a
    # sweep's base settings may apply to only some of its trials (a warm-up where a trial has noise)
    _applies_only: ClassVar[tuple[AppliesOnly, ...]] = (
        AppliesOnly(("momentum",), lambda c: c.optimizer == "sgd", "applies only with {optimizer} sgd", ("optimizer",)),
        AppliesOnly(("eval_draws",), lambda c: c.eval_rule != "single",
                    "applies only to an {eval_rule} that draws several times (single draws once)", ("eval_rule",)),
    )

    def _check(self) -> None:
        if self.data_dir is not None:
            self.data_dir = str(self.data_dir)
        if self.noise_warmup > self.epochs:
            raise ConfigError(f"noise_warmup ({self.noise_warmup:g} epochs) is longer than the training "
                              f"({self.epochs} epochs): the noise would never reach its s.d.")
        # normalise noise specs to dicts so config.json is plain and comparable
        try:
            specs = parse_noise_map(self.noise)
        except (TypeError, AttributeError) as exc:
            raise ConfigError(f"noise must map layer names to noise specs: {exc}") from None
        for site, spec in specs.items():
            unused = spec.unused_settings()
            if unused:
                uses = "gain and floor" if spec.kind == "poisson" else "sigma"
                raise ConfigError(f"noise at {site}: {', '.join(unused)} does not apply to {spec.kind} noise "
                                  f"(it uses {uses})")
        self.noise = {k: v.to_dict() for k, v in specs.items()}
