"""Flexible learning: learn new tasks without forgetting old ones.

Scenarios (:func:`make_scenario`: task-, domain- and class-incremental Split MNIST, Permuted
MNIST, Rotated MNIST, Split Fashion-MNIST, Split CIFAR-10; task-free streams), strategies (one
small class each: fine-tuning, joint training, EWC, online EWC, SI, LwF, experience replay,
generative replay, brain-inspired replay, XdG, metaplasticity, hidden-layer noise), metrics (the
accuracy matrix, average accuracy, backward / forward transfer, forgetting, costs) and the job
that writes a run folder (:func:`run_continual`, ``neuroaikit continual``)::

    from neuroaikit.continual import ContinualConfig, learn
    result = learn(ContinualConfig(benchmark="split-mnist", scenario="class", strategy="replay",
                                   data_dir="../shared/data"))
    result.average_accuracy, result.accuracy_matrix
"""

from .buffer import ClassBalancedBuffer, ReplayBuffer, ReservoirBuffer
from .config import PROTOCOLS, ContinualConfig
from .learner import Learner, build_network, learn, make_learner, run_continual, scenario_from
from .metrics import (METRICS, AverageAccuracy, BackwardTransfer, Forgetting, ForwardTransfer, accuracy_curve,
                      summarise)
from .results import ContinualResult
from .scenarios import BENCHMARKS, SCENARIOS, Scenario, Task, check_scenario, make_scenario, split_classes
from .strategies import (EWC, SI, BrainInspiredReplay, ExperienceReplay, Finetune, GenerativeReplay, HiddenNoise,
                         Joint, LwF, Metaplasticity, OnlineEWC, Strategy, XdG, available_strategies, build_strategy,
                         fisher_diagonal, make_strategy)

__all__ = [
    "BENCHMARKS", "EWC", "METRICS", "PROTOCOLS", "SCENARIOS", "SI", "AverageAccuracy", "BackwardTransfer",
    "BrainInspiredReplay", "ClassBalancedBuffer", "ContinualConfig", "ContinualResult", "ExperienceReplay",
    "Finetune", "Forgetting", "ForwardTransfer", "GenerativeReplay", "HiddenNoise", "Joint", "Learner", "LwF",
    "Metaplasticity", "OnlineEWC", "ReplayBuffer", "ReservoirBuffer", "Scenario", "Strategy", "Task", "XdG",
    "accuracy_curve", "available_strategies", "build_network", "build_strategy", "check_scenario", "fisher_diagonal", "learn",
    "make_learner", "make_scenario", "make_strategy", "run_continual", "scenario_from", "split_classes", "summarise",
]
