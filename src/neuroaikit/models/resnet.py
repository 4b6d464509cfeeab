"""PreAct-ResNet-18 for CIFAR-size inputs (He et al. 2016, "Identity mappings")."""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from .registry import register_model


class PreActBlock(nn.Module):
    """BN-ReLU-conv twice, identity (or 1x1 projection) shortcut."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.relu1 = nn.ReLU()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu2 = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.shortcut = None
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Conv2d(in_planes, planes, 1, stride, bias=False)

    def forward(self, x):
        out = self.relu1(self.bn1(x))
        shortcut = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(self.relu2(self.bn2(out)))
        return out + shortcut


@register_model("resnet18")
class PreActResNet18(nn.Module):
    """PreAct-ResNet-18, the usual CIFAR-10 robustness backbone.

    Args:
        in_channels (int): image channels. Default 3.
        image_size (int): image height = width (kept for a uniform builder signature;
            the network pools adaptively). Default 32.
        n_classes (int): outputs (logits). Default 10.
        width (float): multiplier of the base widths (64, 128, 256, 512). Default 1.0.

    Noise sites include ``conv1``, ``layer1`` ... ``layer4`` (stage outputs) and any block
    submodule. Shape: ``(B, C, H, W) -> (B, n_classes)``.
    """

    def __init__(self, in_channels: int = 3, image_size: int = 32, n_classes: int = 10, width: float = 1.0):
        super().__init__()
        widths = [max(4, int(round(w * width))) for w in (64, 128, 256, 512)]
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        stages, in_planes = [], widths[0]
        for i, planes in enumerate(widths):
            stride = 1 if i == 0 else 2
            stages.append(nn.Sequential(PreActBlock(in_planes, planes, stride), PreActBlock(planes, planes, 1)))
            in_planes = planes
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.bn = nn.BatchNorm2d(in_planes)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(in_planes, n_classes)

    def forward(self, x):
        out = self.conv1(x)
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        out = self.relu(self.bn(out))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.fc(out)
