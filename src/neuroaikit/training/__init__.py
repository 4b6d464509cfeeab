"""Training with run folders: ``train(TrainConfig(...), out) -> Run``."""

from .config import AUGMENTATIONS, OPTIMIZERS, SCHEDULES, TrainConfig
from .loop import build_model_for, evaluate_classifier, resolve_device, train
from .objectives import available_objectives, get_objective, register_objective
from .results import TrainingResult

__all__ = [
    "TrainConfig", "TrainingResult", "train", "build_model_for", "evaluate_classifier", "resolve_device",
    "register_objective", "get_objective", "available_objectives", "OPTIMIZERS", "SCHEDULES", "AUGMENTATIONS",
]
