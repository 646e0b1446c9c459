"""Traffic-sign classifiers for GTSRB: an IDSIA-style CNN, and the same with two spatial transformers.

After Moodstocks' ``idsia_net`` (github.com/moodstocks/gtsrb.torch): three convolution blocks
(convolution → ReLU → max-pool) and two fully connected layers; their best single network
(widths 150, 200, 300 and 350 hidden units at 48x48; 99.61% on GTSRB) puts one affine spatial
transformer on the input and a second one after the second convolution block. Here, for a
CPU at 32x32, the widths are cut and the second transformer follows the first block (16x16
maps; after the second they would be 8x8); each block gains batch normalisation and the
classifier ends with dropout. The "-wide" models of the registry keep Moodstocks' widths and
placement, for a GPU at 48x48.

Both networks standardise every image by its own mean and standard deviation (GTSRB's
photographs range from nearly black to overexposed), *after* the input transformer has
sampled the raw image in [0, 1], so that zero padding outside the image is black.

:class:`BNTrafficSignNet` (``gtsrb-bn-cnn``, ``gtsrb-bn-st-cnn``) is a VGG-style alternative:
five 3x3 convolutions with batch norm (widths 64-64-128-128-256 by default), the same two
kinds of transformer (at the input, and after its first or second block), normalised by the
dataset's statistics rather than each image's, so that brightness and contrast jitter
(:func:`stn_course.augment.brightness_contrast`) teaches what per-image standardisation
would otherwise remove.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torchvision.transforms.v2.functional import equalize

from .models import Normalize, SpatialTransformer

#: output channels of the three convolution blocks (Moodstocks: 150, 200, 300 at 48x48)
WIDTHS = (32, 64, 128)
#: units of the hidden fully connected layer (Moodstocks: 350)
HIDDEN = 256
#: Moodstocks' widths and hidden units (their 99.61% command: ``--cnn 150,200,300,350``), for
#: the "-wide" models
WIDE_WIDTHS = (150, 200, 300)
WIDE_HIDDEN = 350


class ImageStandardize(nn.Module):
    """Each image ``(N, C, H, W)`` minus its own mean, divided by its own standard deviation
    (over channels and pixels): brightness and contrast no longer depend on the photograph."""

    def __init__(self, eps: float = 1e-2) -> None:
        super().__init__()
        self.eps = eps  # keeps a uniform (e.g. all-black) image finite

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        std = x.std(dim=(1, 2, 3), keepdim=True)
        return (x - mean) / (std + self.eps)


class HistogramEqualize(nn.Module):
    """Equalise the histogram of each channel of each image ``(N, C, H, W)`` in [0, 1]
    (:func:`torchvision.transforms.v2.functional.equalize`, 256 levels): a dark or washed-out
    photograph then spreads over the whole range, as a bright one does. No parameters, no
    gradient (it only ever sees the raw input)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return equalize(x.float().clamp(0, 1).contiguous()).to(x.dtype)


def conv_block(in_channels: int, out_channels: int, kernel: int) -> nn.Sequential:
    """Convolution (same padding) → batch norm → ReLU → max-pool 2: halves ``(H, W)``."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True), nn.MaxPool2d(2))


def localisation(in_channels: int, side: int, standardize: bool, channels: int = 16,
                 hidden: int = 64) -> nn.Sequential:
    """A small localisation network for an ``(N, in_channels, side, side)`` input: [per-image
    standardisation] → max-pool 2 → 2x (conv 3x3 → ReLU → max-pool 2) → FC ``hidden`` → FC 6.
    It sees a quarter-resolution view: where the sign is needs no fine detail."""
    layers: list[nn.Module] = [ImageStandardize()] if standardize else []
    layers += [nn.MaxPool2d(2),
               nn.Conv2d(in_channels, channels, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
               nn.Conv2d(channels, 2 * channels, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
               nn.Flatten(),
               nn.Linear(2 * channels * (side // 8) ** 2, hidden), nn.ReLU(inplace=True),
               nn.Linear(hidden, 6)]
    return nn.Sequential(*layers)


class TrafficSignNet(nn.Module):
    """[ST] → standardise → block 1 → [ST] → block 2 → [ST] → block 3 → FC ``hidden`` → dropout → FC
    classes: the second transformer after block 1 or after block 2 (``feature_block``).

    Args:
        input_shape: ``(3, H, W)`` with ``H = W`` divisible by 8 (32 here, 48 as Moodstocks).
        num_classes: 43 for GTSRB.
        transformers: put identity-initialised affine :class:`~stn_course.models.SpatialTransformer`
            modules on the input (``input_transformer``) and after block ``feature_block``
            (``feature_transformer``); both keep their input's size, with zero padding and
            ``align_corners=False``.
        widths, hidden: channels of the blocks and units of the hidden layer.
        feature_block: 1 (the course's CPU models) or 2 (Moodstocks' placement).
        dropout: before the last layer, while training.
    Input: float ``(N, 3, H, W)`` in [0, 1]; output: logits ``(N, num_classes)``.
    """

    def __init__(self, input_shape: Sequence[int], num_classes: int = 43, transformers: bool = True,
                 widths: Sequence[int] = WIDTHS, hidden: int = HIDDEN, dropout: float = 0.5,
                 feature_block: int = 1) -> None:
        super().__init__()
        channels, side = input_shape[0], input_shape[-1]
        if input_shape[-2] != side or side % 8:
            raise ValueError(f"input must be square with a side divisible by 8, got {tuple(input_shape)}")
        if feature_block not in (1, 2):
            raise ValueError(f"feature_block must be 1 or 2, got {feature_block}")
        self.feature_block = feature_block
        self.input_transformer = SpatialTransformer(localisation(channels, side, standardize=True),
                                                    "affine", align_corners=False) if transformers else None
        self.standardize = ImageStandardize()
        self.block1 = conv_block(channels, widths[0], 5)
        features, feature_side = widths[feature_block - 1], side // 2 ** feature_block  # what it transforms
        self.feature_transformer = SpatialTransformer(localisation(features, feature_side, standardize=False),
                                                      "affine", align_corners=False) if transformers else None
        self.block2 = conv_block(widths[0], widths[1], 3)
        self.block3 = conv_block(widths[1], widths[2], 3)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(widths[2] * (side // 8) ** 2, hidden),
                                  nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(hidden, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_transformer is not None:
            x = self.input_transformer(x)  # samples the raw image: outside it is black
        x = self.block1(self.standardize(x))
        if self.feature_transformer is not None and self.feature_block == 1:
            x = self.feature_transformer(x)
        x = self.block2(x)
        if self.feature_transformer is not None and self.feature_block == 2:
            x = self.feature_transformer(x)
        return self.head(self.block3(x))


#: channels of :class:`BNTrafficSignNet`'s five convolutions, as multiples of its base width
BN_WIDTH_FACTORS = (1, 1, 2, 2, 4)
#: the default base width of the batch-norm models (widths 64-64-128-128-256)
BN_BASE_WIDTH = 64


def bn_conv(in_channels: int, out_channels: int) -> list[nn.Module]:
    """Convolution 3x3 (same padding) → batch norm → ReLU: keeps ``(H, W)``."""
    return [nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True)]


class BNTrafficSignNet(nn.Module):
    """[ST] → normalise → block 1 (convolution, pool) → [ST] → block 2 (convolution, pool) → [ST]
    → block 3 (2 convolutions, pool) → convolution → global average pool → FC classes, every
    convolution 3x3 with batch norm; the second transformer after block 1 or 2 (``st_after``).
    Pooling early keeps it cheap on a CPU: at 32x32 the convolutions work on 32, 16, 8, 8 and 4
    pixels a side (about 30 million multiply-adds an image; about twice ``gtsrb-st-cnn``'s time).

    Args:
        input_shape: ``(3, H, W)`` with ``H = W`` divisible by 8.
        mean, std: per-channel statistics of the training set, applied after the input
            transformer (so that zero padding outside the image is black).
        num_classes: 43 for GTSRB.
        transformers: identity-initialised affine :class:`~stn_course.models.SpatialTransformer`
            modules on the input (``input_transformer``) and after block ``st_after``
            (``feature_transformer``), their localisation networks on max-pooled views
            (:func:`localisation`), zero padding, ``align_corners=False``.
        base_width: channels of the first convolution; the five have :data:`BN_WIDTH_FACTORS`
            times as many.
        st_after: the block (1: 16x16 maps at 32x32, 2: 8x8) the second transformer follows.
        equalize: first equalise each image's histogram (:class:`HistogramEqualize`); the
            transformer then samples the equalised image, still black outside it.
    Input: float ``(N, 3, H, W)`` in [0, 1]; output: logits ``(N, num_classes)``.
    """

    def __init__(self, input_shape: Sequence[int], mean: Sequence[float], std: Sequence[float],
                 num_classes: int = 43, transformers: bool = True, base_width: int = BN_BASE_WIDTH,
                 st_after: int = 1, equalize: bool = False) -> None:
        super().__init__()
        channels, side = input_shape[0], input_shape[-1]
        if input_shape[-2] != side or side % 8:
            raise ValueError(f"input must be square with a side divisible by 8, got {tuple(input_shape)}")
        if st_after not in (1, 2):
            raise ValueError(f"st_after must be 1 or 2, got {st_after}")
        widths = [base_width * factor for factor in BN_WIDTH_FACTORS]
        self.feature_block = st_after  # TrafficSignNet.forward's name for it
        self.input_transformer = SpatialTransformer(localisation(channels, side, standardize=True),
                                                    "affine", align_corners=False) if transformers else None
        self.standardize = Normalize(mean, std)  # by the dataset's statistics, not each image's
        self.block1 = nn.Sequential(*bn_conv(channels, widths[0]), nn.MaxPool2d(2))
        self.block2 = nn.Sequential(*bn_conv(widths[0], widths[1]), nn.MaxPool2d(2))
        self.block3 = nn.Sequential(*bn_conv(widths[1], widths[2]), *bn_conv(widths[2], widths[3]), nn.MaxPool2d(2))
        features, feature_side = widths[st_after - 1], side // 2 ** st_after  # what it transforms
        self.feature_transformer = SpatialTransformer(localisation(features, feature_side, standardize=False),
                                                      "affine", align_corners=False) if transformers else None
        self.head = nn.Sequential(*bn_conv(widths[3], widths[4]), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Linear(widths[4], num_classes))
        self.equalize = HistogramEqualize() if equalize else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.equalize is not None:
            x = self.equalize(x)
        # then TrafficSignNet's order: input transformer, standardise, block 1, the feature
        # transformer after block ``feature_block`` (= st_after), blocks 2 and 3, head
        return TrafficSignNet.forward(self, x)
