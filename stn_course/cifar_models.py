"""The CIFAR-10 networks: the course material's Net A and Net B (spatial transformers in
front of small CNNs) and a ResNet-9-style model with and without a transformer.

Same conventions as :mod:`stn_course.models`: inputs ``(N, 3, 32, 32)`` in [0, 1],
normalised after the transformer; logits out.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .models import Normalize, SpatialTransformer, TutorialSTNet


class CifarNetA(TutorialSTNet):
    """Net A of the course material (reached 60% on CIFAR-10 after 50 epochs): the tutorial's
    network widened for colour images.

    STN on the input (localisation: conv 16@7 → pool → ReLU → conv 32@5 → pool → ReLU →
    FC 64 → FC 6), then conv 8@5 → pool → ReLU → conv 16@5 → Dropout2d → pool → ReLU →
    FC 1024 → ReLU → dropout → FC 10. Input ``(N, 3, 32, 32)`` in [0, 1].
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float], num_classes: int = 10) -> None:
        super().__init__(mean, std, num_classes, input_shape=(3, 32, 32), localisation_channels=(16, 32),
                         localisation_hidden=64, channels=(8, 16), hidden=1024)


class CifarNetB(nn.Module):
    """Net B of the course material (reached 65% on CIFAR-10 after 50 epochs; 802,492 parameters).

    STN on the input (localisation: conv 64@7 → pool → ReLU → conv 128@5 → pool → ReLU →
    FC 256 → ReLU → FC 6), then a LeNet: conv 6@5 → pool → conv 16@5 → pool → FC 120 →
    FC 84 → FC 10, with ReLUs. Input ``(N, 3, 32, 32)`` in [0, 1].
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float], num_classes: int = 10) -> None:
        super().__init__()
        localisation = nn.Sequential(
            nn.Conv2d(3, 64, 7), nn.MaxPool2d(2), nn.ReLU(True),
            nn.Conv2d(64, 128, 5), nn.MaxPool2d(2), nn.ReLU(True),
            nn.Flatten(), nn.Linear(2048, 256), nn.ReLU(True), nn.Linear(256, 6),
        )
        self.transformer = SpatialTransformer(localisation, "affine", align_corners=False)
        self.classifier = nn.Sequential(
            Normalize(mean, std),
            nn.Conv2d(3, 6, 5), nn.ReLU(True), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(True), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(400, 120), nn.ReLU(True),
            nn.Linear(120, 84), nn.ReLU(True), nn.Linear(84, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.transformer(x))


def conv_bn(in_channels: int, out_channels: int) -> nn.Sequential:
    """3x3 convolution (same size, no bias) → batch norm → ReLU."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class Residual(nn.Module):
    """``x + block(x)``."""

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        self.block = block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


def cifar_localisation_net() -> nn.Sequential:
    """A small localisation network for ``(N, 3, 32, 32)`` images: it looks at a 16x16
    average-pooled copy (where the object is needs no fine detail), so it costs under 1%
    of the classifier's multiply-adds (a test checks). Output: affine θ ``(N, 6)``."""
    return nn.Sequential(
        nn.AvgPool2d(2),
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 4 * 4, 64), nn.ReLU(inplace=True), nn.Linear(64, 6),
    )


class CifarResNet(nn.Module):
    """The course's strong CIFAR-10 model: a ResNet-9-style network (after the DAWNBench
    entry by Myrtle.ai), optionally behind a spatial transformer on the input.

    [transformer] → normalise → conv w → conv 2w, pool → residual(2 convs 2w) →
    conv 4w, pool → conv 8w, pool → residual(2 convs 8w) → global max-pool → FC classes
    → times 1/8, each conv 3x3 + batch norm + ReLU. Input ``(N, 3, 32, 32)`` in [0, 1].

    Args:
        mean, std: per-channel statistics (normalisation comes after the transformer).
        width: channels of the first convolution (w); 64 is the original, 32 a quarter
            of its cost, sized for a 2-core CPU.
        transformer: put an affine :class:`SpatialTransformer` (zero padding,
            ``align_corners=False``) with :func:`cifar_localisation_net` in front.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float], num_classes: int = 10,
                 width: int = 32, transformer: bool = True) -> None:
        super().__init__()
        self.transformer = SpatialTransformer(cifar_localisation_net(), "affine", align_corners=False) \
            if transformer else None
        w = width
        self.normalize = Normalize(mean, std)
        self.features = nn.Sequential(
            conv_bn(3, w),
            conv_bn(w, 2 * w), nn.MaxPool2d(2),
            Residual(nn.Sequential(conv_bn(2 * w, 2 * w), conv_bn(2 * w, 2 * w))),
            conv_bn(2 * w, 4 * w), nn.MaxPool2d(2),
            conv_bn(4 * w, 8 * w), nn.MaxPool2d(2),
            Residual(nn.Sequential(conv_bn(8 * w, 8 * w), conv_bn(8 * w, 8 * w))),
            nn.AdaptiveMaxPool2d(1), nn.Flatten(),
        )
        self.head = nn.Linear(8 * w, num_classes)
        # As in the original: logits scaled by 1/8 keep the first steps at a high learning rate stable.
        self.logit_scale = 0.125

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.transformer is not None:
            x = self.transformer(x)
        return self.head(self.features(self.normalize(x))) * self.logit_scale
