"""Spiking neural networks: LIF/IF neurons as pure step functions, surrogate gradients,
encoders, BPTT-trained spiking classifiers, ANN-to-SNN conversion and local learning rules.

Importing this package registers the models ``"snn_cnn"``, ``"snn_mlp"`` and ``"snn_converted"``,
and (through :mod:`.plasticity`) ``"krotov_hopfield"`` and ``"diehl_cook"``.

Devices: everything runs on the device and in the dtype of its inputs (neuron states are
created like the input current); the event-driven synapse kernels are CPU float32 code, and any
other tensor (CUDA, MPS, bfloat16 under autocast) takes the dense product instead.
"""

from .surrogate import SURROGATES, spike, surrogate_derivative
from .neurons import IFParameters, LIFParameters, LIFState, if_step, initial_state, lif_sequence, lif_step
from .modules import IF, LIF, IFCell, LIFCell, SpikeRate
from .encoders import DirectEncoder, LatencyEncoder, PoissonEncoder, direct_encode, latency_encode, poisson_encode
from .models import SpikingCNN
from .synapses import EventLinear, default_max_density, event_linear, min_product_size
from .networks import FeedForwardLIF, SpikingMLP
from .conversion import ConvertedSNN, RateGatedMaxPool, activation_scales, convert_cnn
from . import plasticity  # noqa: E402,F401 - registers the plasticity models

__all__ = [
    "SURROGATES", "spike", "surrogate_derivative",
    "LIFParameters", "IFParameters", "LIFState", "lif_step", "if_step", "lif_sequence", "initial_state",
    "LIF", "LIFCell", "IF", "IFCell", "SpikeRate",
    "DirectEncoder", "PoissonEncoder", "LatencyEncoder", "direct_encode", "poisson_encode", "latency_encode",
    "EventLinear", "event_linear", "default_max_density", "min_product_size", "SpikingCNN", "FeedForwardLIF", "SpikingMLP", "ConvertedSNN", "RateGatedMaxPool", "activation_scales", "convert_cnn",
]
