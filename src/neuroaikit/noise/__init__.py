"""Brain-like noise for any network: specs, layers, injection, control and inference rules.

Neurons answer the same image differently on every trial. These tools put that
variability into a network's input or hidden layers (Ukita & Ohki 2023; Dapello et al. 2020).
"""

from .control import NOISE_STREAM, has_noise, noise_layers, noise_mode, restore_noise, seed_noise, set_noise
from .draws import expand_draws, forward_draws, is_stochastic, mark_stochastic, shares_draws_across_batch
from .functional import apply_noise, noise_scale
from .inference import RULES, InferenceRule, accuracy, predict
from .inject import INPUT, NoisyModel, inject_noise, layer_names
from .layer import MODES, NoiseLayer
from .spec import KINDS, NoiseSpec, parse_noise_map

__all__ = [
    "KINDS", "MODES", "RULES", "INPUT", "NOISE_STREAM",
    "NoiseSpec", "NoiseLayer", "NoisyModel", "InferenceRule",
    "apply_noise", "noise_scale", "parse_noise_map",
    "inject_noise", "layer_names", "noise_layers", "has_noise",
    "set_noise", "restore_noise", "noise_mode", "seed_noise",
    "expand_draws", "forward_draws", "is_stochastic", "mark_stochastic", "shares_draws_across_batch", "predict", "accuracy",
]
