"""Adversarial attacks that respect the model's randomness, and the evaluation protocol
for stochastic (brain-noise) defenses.

Every attack: ``attack = PGD(model, eps=0.3, alpha=0.01, steps=100, eot=20)``;
``x_adv = attack(images, labels)`` with images in [0, 1] and a model that returns
logits. Gradients are averaged over ``eot`` noise draws computed in one vectorised pass,
on the loss of the deployed inference rule; the model's noise setting is never changed.
"""

from .apgd import APGD
from .base import Attack, dlr_loss, margin_loss, noise_twin, rule_loss
from .feature_space import FeatureSpace, total_variation
from .fgsm import FGSM
from .pgd import PGD
from .random_noise import RandomNoise
from .randomness import RandomnessCheck, detect_randomness
from .results import AdversarialExamples, DeployedRule, RobustnessResult, SanityCheck, SweepRow
from .square import Square
from .transfer import Transfer
from . import training  # noqa: F401  (registers the adversarial-training objectives)

ATTACKS = {cls.name: cls for cls in (FGSM, PGD, APGD, Square, Transfer, RandomNoise, FeatureSpace)}

__all__ = [
    "ATTACKS", "Attack", "FGSM", "PGD", "APGD", "Square", "Transfer", "RandomNoise", "FeatureSpace",
    "detect_randomness", "RandomnessCheck",
    "dlr_loss", "margin_loss", "rule_loss", "noise_twin", "total_variation",
    "evaluate_robustness", "evaluate_run", "RobustnessConfig",
    "RobustnessResult", "SweepRow", "SanityCheck", "AdversarialExamples", "DeployedRule",
]


def __getattr__(name):
    if name in ("evaluate_robustness", "RobustnessConfig", "evaluate_run"):
        from . import evaluate

        return getattr(evaluate, name)
    raise AttributeError(name)
