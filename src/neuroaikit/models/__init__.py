"""Models built from shapes (channels, image size, classes).

Every builder is registered by name: ``build_model("cnn", in_channels=1, image_size=28,
n_classes=10)``; a run folder's ``model.json`` rebuilds it with :func:`build_from_spec`.
"""

from .registry import available_models, build_from_spec, build_model, model_spec, register_model
from .mlp import MLP
from .cnn import SmallCNN
from .resnet import PreActResNet18
from .v1 import GaborBank, V1Net, V1Population

__all__ = ["MLP", "SmallCNN", "PreActResNet18", "V1Net", "GaborBank", "V1Population", "available_models", "build_model", "build_from_spec", "model_spec", "register_model"]
