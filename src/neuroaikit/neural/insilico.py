"""In-silico experiments on a fitted twin: tuning, receptive fields, most exciting inputs.

The experiments live in :mod:`neuroaikit.insilico`, shared with the in-silico physiology of any
network (``neuroaikit probe``); this module keeps the names the twin has always used. The model
is any callable ``model(images) -> (B, n_neurons)`` (a :class:`~neuroaikit.neural.CortexTwin` in eval mode); images
are (B, 1, H, W) in the units of the training stimuli, so ``mean`` and ``contrast`` are in those
units too (default: the twin's input statistics). A twin of colour stimuli is probed through
:class:`~neuroaikit.insilico.channels.Achromatic`: every stimulus shown equally in each channel, as
luminance gratings and noise are, so its maps and most exciting inputs are achromatic.
"""

from __future__ import annotations

from ..insilico.channels import Achromatic, achromatic
from ..insilico.experiments import (gradient_maps, gratings, most_exciting_inputs, most_inhibiting_inputs,
                                    reverse_correlation, rf_centers, sparse_noise_map, tuning_curves)

__all__ = ["Achromatic", "achromatic", "gratings", "tuning_curves", "gradient_maps", "reverse_correlation",
           "sparse_noise_map", "rf_centers", "most_exciting_inputs", "most_inhibiting_inputs"]


