"""The configuration of a training job: plain values, saved as ``config.json``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ..errors import ConfigError
from ..noise import RULES, parse_noise_map

OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("none", "step", "cosine", "onecycle")
AUGMENTATIONS = ("none", "shift", "crop-flip")


@dataclass
class TrainConfig:
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
        epochs, batch_size, lr, momentum, weight_decay: the usual.
        optimizer (str): ``"sgd"`` (momentum, Nesterov) or ``"adam"``.
        schedule (str): ``"none"``, ``"step"`` (x0.1 at 50% and 75% of training),
            ``"cosine"`` or ``"onecycle"``, stepped every batch.
        augment (str): ``"none"``, ``"shift"`` (random translation by up to 2 px) or
            ``"crop-flip"`` (pad-4 random crop + horizontal flip, the CIFAR standard).
        seed (int): seeds weights, batch order, augmentation and noise.
        train_subset, test_subset (int | None): use only the first N examples.
        objective (str), objective_params (dict): the per-batch loss
            (see :mod:`neuroaikit.training.objectives`).
        eval_rule (str), eval_draws (int): the deployed inference rule reported at the end;
            accuracy with one draw, with the rule and with the noise off is always reported.
        out (str): the run folder to write.
        resume (bool): continue from ``<out>.partial/checkpoint.pt`` if an interrupted job left one.
        device (str): ``"auto"`` (CUDA if available), ``"cpu"`` or ``"cuda"``.
    """

    dataset: str = "mnist"
    data_dir: str | None = None
    model: str = "cnn"
    model_kwargs: dict = field(default_factory=dict)
    noise: dict = field(default_factory=dict)
    noise_warmup: float = 0.0
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
    out: str = "runs/train"
    resume: bool = False
    device: str = "auto"

    def __post_init__(self):
        checks = [
            (self.optimizer in OPTIMIZERS, f"optimizer must be one of {', '.join(OPTIMIZERS)}"),
            (self.schedule in SCHEDULES, f"schedule must be one of {', '.join(SCHEDULES)}"),
            (self.augment in AUGMENTATIONS, f"augment must be one of {', '.join(AUGMENTATIONS)}"),
            (self.eval_rule in RULES, f"eval_rule must be one of {', '.join(RULES)}"),
            (int(self.epochs) >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (int(self.batch_size) >= 1, f"batch_size must be >= 1, got {self.batch_size}"),
            (float(self.lr) > 0, f"lr must be > 0, got {self.lr}"),
            (float(self.noise_warmup) >= 0, f"noise_warmup must be >= 0, got {self.noise_warmup}"),
            (int(self.eval_draws) >= 1, f"eval_draws must be >= 1, got {self.eval_draws}"),
            (self.device in ("auto", "cpu", "cuda"), f"device must be auto, cpu or cuda, got {self.device!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        for name in ("train_subset", "test_subset"):
            value = getattr(self, name)
            if value is not None and int(value) < 1:
                raise ConfigError(f"{name} must be >= 1, got {value}")
        # normalise noise specs to dicts so config.json is plain and comparable
        self.noise = {k: v.to_dict() for k, v in parse_noise_map(self.noise).items()}

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ConfigError(f"unknown training options {sorted(unknown)}")
        return cls(**values)
