"""In-silico neurophysiology of any network: record, tune, map, lesion and probe artificial neurons.

The toolkit's digital twin and any ``nn.Module`` share this code: a *response function* (a
:class:`LayerUnits` for a network layer, a fitted twin) goes through the same stimulus protocols
(:mod:`.stimuli`), experiments (:mod:`.experiments`) and measures defined as physiologists define
them (:mod:`.measures`), so an artificial unit and a real neuron land on the same axes, beside the
published V1 distributions (:mod:`.reference`). Lesions, linear probes and attribution
(:mod:`.lesions`, :mod:`.probes`, :mod:`.attribution`) complete the toolbox;
``neuroaikit.insilico.workflow.probe_run`` (``neuroaikit probe RUN``) runs it all on a run folder.
"""

from .channels import Achromatic, InChannel, achromatic, dominant_channel_counts, to_channels
from .characterize import GratingProtocol, UnitMeasures, characterize
from .experiments import (channel_energy, channel_tuning, gradient_maps, gratings, most_exciting_inputs,
                          most_inhibiting_inputs, reverse_correlation, rf_centers, sparse_noise_map, tuning_curves)
from .recording import LayerUnits, declared_degrees, layer_names, record, respond
from .stimuli import Geometry, check_stimuli, grating, grating_grid, sparse_noise, white_noise

__all__ = [
    "LayerUnits", "record", "respond", "layer_names", "declared_degrees",
    "Geometry", "grating", "grating_grid", "white_noise", "sparse_noise", "check_stimuli",
    "gratings", "tuning_curves", "gradient_maps", "reverse_correlation", "sparse_noise_map", "rf_centers",
    "most_exciting_inputs", "most_inhibiting_inputs", "channel_tuning", "channel_energy",
    "Achromatic", "achromatic", "InChannel", "to_channels", "dominant_channel_counts",
    "GratingProtocol", "UnitMeasures", "characterize",
]
