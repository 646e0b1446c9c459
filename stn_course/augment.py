"""Augmentations as batched tensor operations on float images ``(B, C, H, W)`` in [0, 1].

Each takes the batch and a ``torch.Generator`` (:data:`Augmentation`); the batch loader
(:class:`stn_course.loader.BatchLoader`) seeds that generator by seed and epoch, so an
epoch's augmentations repeat whether or not a run was interrupted before it.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

#: an augmentation: ``augment(images, generator) -> images``, float ``(B, C, H, W)`` in and out
Augmentation = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def random_crop_flip(images: torch.Tensor, generator: torch.Generator, padding: int = 4) -> torch.Tensor:
    """Random crop after zero padding, and random horizontal flip, for a whole batch.

    Args:
        images: float ``(B, C, H, W)``.
        generator: source of randomness (same device as ``images``).
        padding: pixels of zero padding on each side before cropping back to ``H x W``.
    Returns:
        float ``(B, C, H, W)``.
    """
    batch, _, height, width = images.shape
    padded = torch.nn.functional.pad(images, (padding, padding, padding, padding))
    offset_y = torch.randint(0, 2 * padding + 1, (batch, 1, 1), generator=generator, device=images.device)
    offset_x = torch.randint(0, 2 * padding + 1, (batch, 1, 1), generator=generator, device=images.device)
    rows = (torch.arange(height, device=images.device).view(1, height, 1) + offset_y).expand(batch, height, width)
    cols = (torch.arange(width, device=images.device).view(1, 1, width) + offset_x).expand(batch, height, width)
    flip = torch.rand(batch, 1, 1, generator=generator, device=images.device) < 0.5
    cols = torch.where(flip, 2 * offset_x + (width - 1) - cols, cols)  # mirror inside the crop
    batch_index = torch.arange(batch, device=images.device).view(batch, 1, 1)
    return padded[batch_index, :, rows, cols].permute(0, 3, 1, 2).contiguous()


def random_affine(images: torch.Tensor, generator: torch.Generator, degrees: float = 10.0,
                  scale: tuple[float, float] = (0.9, 1.1), shift: float = 0.1) -> torch.Tensor:
    """A small random affine map per image (rotation, scale, shift), for a whole batch.

    Args:
        images: float ``(B, C, H, W)`` in [0, 1].
        generator: source of randomness (same device as ``images``).
        degrees: rotation drawn uniformly in ``[-degrees, degrees]``.
        scale: zoom factor range (above 1 enlarges the sign).
        shift: translation in each direction, as a fraction of the half-side (0.1: 1.6 px at 32).
    Returns:
        float ``(B, C, H, W)``; borders are repeated (``padding_mode="border"``) rather than
        black, since a photograph continues beyond its frame.
    """
    theta = random_affine_theta(images.shape[0], generator, degrees, scale, shift, device=images.device)
    return warp_affine(images, theta)


def random_affine_theta(batch: int, generator: torch.Generator, degrees: float = 10.0,
                        scale: tuple[float, float] = (0.9, 1.1), shift: float = 0.1,
                        device: torch.device | str = "cpu") -> torch.Tensor:
    """The θ ``(batch, 2, 3)`` of :func:`random_affine` (same arguments, same draws): rotation
    by an angle uniform in ``[-degrees, degrees]``, zoom uniform in ``scale``, shifts uniform in
    ``[-shift, shift]``. θ maps output to input coordinates: zooming in by s samples a region
    1/s as large."""
    def uniform(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(batch, generator=generator, device=device)

    angle = uniform(-degrees, degrees) * (np.pi / 180)
    zoom = uniform(*scale)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    return torch.stack([torch.stack([cos, -sin, uniform(-shift, shift)], dim=1),
                        torch.stack([sin, cos, uniform(-shift, shift)], dim=1)], dim=1)


def warp_affine(images: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """``images`` ``(B, C, H, W)`` resampled with θ ``(B, 2, 3)`` (bilinear, borders repeated,
    ``align_corners=False``)."""
    grid = torch.nn.functional.affine_grid(theta, list(images.shape), align_corners=False)
    return torch.nn.functional.grid_sample(images, grid, mode="bilinear", padding_mode="border",
                                           align_corners=False)


def brightness_contrast(images: torch.Tensor, generator: torch.Generator, strength: float = 0.3) -> torch.Tensor:
    """Random brightness and contrast per image, for a whole batch (photographs taken in sun,
    shade and dusk).

    Args:
        images: float ``(B, C, H, W)`` in [0, 1].
        generator: source of randomness (same device as ``images``).
        strength: each image's brightness factor and contrast factor are drawn uniformly in
            ``[1 - strength, 1 + strength]``: brightness multiplies every pixel, contrast then
            scales every pixel's distance from the image's mean (over channels and pixels).
    Returns:
        float ``(B, C, H, W)``, clipped to [0, 1]. A model that standardises each image by its
        own mean and spread undoes most of this; one normalised by the dataset's statistics learns from it.
    """
    batch, device = images.shape[0], images.device
    brightness, contrast = (1 - strength + 2 * strength * torch.rand(2, batch, 1, 1, 1, generator=generator,
                                                                      device=device))
    brightened = images * brightness
    mean = brightened.mean(dim=(1, 2, 3), keepdim=True)
    return ((brightened - mean) * contrast + mean).clamp_(0, 1)


def with_brightness_contrast(augment: Augmentation | None, strength: float) -> Augmentation:
    """``augment`` (or nothing), then :func:`brightness_contrast` at ``strength``, drawing from
    the same generator: a run's training augmentation with its brightness and contrast jitter."""
    def augmented(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if augment is not None:
            images = augment(images, generator)
        return brightness_contrast(images, generator, strength)
    return augmented
