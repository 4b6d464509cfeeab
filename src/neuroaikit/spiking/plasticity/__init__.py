"""Local learning rules that write their update as ``-dw`` into ``.grad`` (any torch optimizer applies it)."""

from .diehl_cook import DiehlCookNetwork
from .krotov_hopfield import CompetingHiddenUnits
from .stdp import STDPLearner, STDPParameters, STDPState, stdp_sequence, stdp_step

__all__ = ["STDPParameters", "STDPState", "STDPLearner", "stdp_step", "stdp_sequence", "CompetingHiddenUnits", "DiehlCookNetwork"]
