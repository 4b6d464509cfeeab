"""Spiking neural networks: LIF/IF neurons as pure step functions, surrogate gradients,
encoders, BPTT-trained spiking classifiers, ANN-to-SNN conversion and local learning rules.

Importing this package registers the models ``"snn_cnn"``, ``"snn_mlp"`` and ``"snn_converted"``.
"""

from .surrogate import SURROGATES, spike, surrogate_derivative
from .neurons import IFParameters, LIFParameters, LIFState, if_step, initial_state, lif_sequence, lif_step
from .modules import IF, LIF, IFCell, LIFCell
from .encoders import DirectEncoder, LatencyEncoder, PoissonEncoder, direct_encode, latency_encode, poisson_encode
from .models import SpikingCNN
from .synapses import EventLinear, event_linear
from .networks import FeedForwardLIF, SpikingMLP
from .conversion import ConvertedSNN, RateGatedMaxPool, activation_scales, convert_cnn

__all__ = [
    "SURROGATES", "spike", "surrogate_derivative",
    "LIFParameters", "IFParameters", "LIFState", "lif_step", "if_step", "lif_sequence", "initial_state",
    "LIF", "LIFCell", "IF", "IFCell",
    "DirectEncoder", "PoissonEncoder", "LatencyEncoder", "direct_encode", "poisson_encode", "latency_encode",
    "EventLinear", "event_linear", "SpikingCNN", "FeedForwardLIF", "SpikingMLP", "ConvertedSNN", "RateGatedMaxPool", "activation_scales", "convert_cnn",
]
