"""Continual-learning strategies: one small class each, one interface (:class:`Strategy`)."""

from .base import (Composite, Strategy, available_strategies, build_strategy, canonical_settings, make_strategy,
                   register_strategy, strategy_class, strategy_settings)
from .ewc import EWC, OnlineEWC, fisher_diagonal
from .finetune import Finetune, Joint
from .generative import VAE, BrainInspiredReplay, GenerativeReplay
from .metaplasticity import Metaplasticity
from .noise import HiddenNoise
from .replay import ExperienceReplay, LwF, distillation_loss
from .si import SI, PathIntegral
from .xdg import XdG

__all__ = [
    "EWC", "SI", "VAE", "BrainInspiredReplay", "Composite", "ExperienceReplay", "Finetune", "GenerativeReplay",
    "HiddenNoise", "Joint", "LwF", "Metaplasticity", "OnlineEWC", "PathIntegral", "Strategy", "XdG",
    "available_strategies", "build_strategy", "canonical_settings", "distillation_loss", "fisher_diagonal", "make_strategy", "register_strategy",
    "strategy_class", "strategy_settings",
]
