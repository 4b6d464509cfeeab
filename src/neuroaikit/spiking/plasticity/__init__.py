"""Local learning rules that write their update as ``-dw`` into ``.grad`` (any torch optimizer
applies it), and the workflow that trains them into a run folder (:func:`learn`,
``neuroaikit plasticity``).

Importing this package registers the models ``"krotov_hopfield"`` and ``"diehl_cook"`` (what a
plasticity run stores), so ``neuroaikit.runs.load_run`` rebuilds them.
"""

from .diehl_cook import DiehlCookNetwork
from .krotov_hopfield import CompetingHiddenUnits, KrotovHopfieldClassifier
from .stdp import STDPLearner, STDPParameters, STDPState, stdp_sequence, stdp_step
from .workflow import (RULES, DiehlCookConfig, DiehlCookFigures, KrotovHopfieldConfig, KrotovHopfieldFigures,
                       PlasticityConfig, PlasticityResult, learn)

__all__ = ["STDPParameters", "STDPState", "STDPLearner", "stdp_step", "stdp_sequence", "CompetingHiddenUnits",
           "KrotovHopfieldClassifier", "DiehlCookNetwork", "RULES", "PlasticityConfig", "KrotovHopfieldConfig",
           "DiehlCookConfig", "PlasticityResult", "KrotovHopfieldFigures", "DiehlCookFigures", "learn"]
