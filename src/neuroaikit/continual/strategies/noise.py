"""The toolkit's brain-noise layers as a candidate regulariser against forgetting."""

from __future__ import annotations

import warnings

from ...errors import ConfigError
from ...noise import NoiseLayer, NoiseSpec
from .base import Composite, register_strategy


@register_strategy
class HiddenNoise(Composite):
    """Trial-to-trial noise (:class:`~neuroaikit.noise.NoiseLayer`) after every hidden ReLU while
    training, off when tested: does hidden-layer noise change forgetting? A candidate, not a
    known answer: compare it with its ``base`` (fine-tuning by default) in the same run.

    Args:
        noise (str | dict | float): the noise spec (:class:`~neuroaikit.noise.NoiseSpec`).
            Default ``"gaussian:0.5,rectify"``.
        base (str): the strategy it adds noise to.
        base_params (dict): that strategy's settings.
    """

    name = "hidden-noise"

    def __init__(self, noise="gaussian:0.5,rectify", base: str = "finetune", base_params: dict | None = None):
        super().__init__(base, base_params)
        try:
            self.noise = NoiseSpec.from_any(noise).to_dict()
        except ConfigError as exc:
            raise ConfigError(f"strategy {self.name!r}: noise: {exc}") from None

    def setup(self, learner) -> None:
        self.layers = []
        for i, (name, module) in enumerate(learner.model.named_children()):
            if name.startswith("relu"):
                layer = NoiseLayer(self.noise, seed=learner.seed * 1000 + i)
                module.register_forward_hook(self._add(layer))
                self.layers.append(layer)
        super().setup(learner)

    def state_dict(self):
        # the layers' streams run on across tasks: a resumed job continues them where they were
        return {**super().state_dict(), "noise_rng": [layer.rng_state() for layer in self.layers]}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        device = next(self.learner.model.parameters()).device
        for layer, rng in zip(self.layers, state.get("noise_rng", [])):
            if not layer.set_rng_state(rng, device):
                warnings.warn(f"strategy {self.name!r}: the noise streams were saved on another kind of device "
                              f"than {device.type}; they start afresh from their seeds", stacklevel=2)

    def _add(self, layer: NoiseLayer):
        def hook(module, inputs, output):
            # noise while learning only: the tested network is the noiseless one
            return layer(output) if module.training else output
        return hook
