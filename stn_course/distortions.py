"""Distorted MNIST, as in the paper's Table 1: R, RTS, P, E and translated-cluttered (TC).

Every generator takes a batch of float digits ``(B, 1, 28, 28)`` in ``[0, 1]`` and a
``torch.Generator`` and returns the distorted batch (same device), so training draws
fresh distortions every batch on the GPU or CPU, and the test set is fixed by its seed:

* ``rot``: rotation uniform in [-90°, 90°], 28x28;
* ``rts``: rotation in [-45°, 45°], scale in [0.7, 1.2], placed at random in a 42x42 canvas;
* ``proj``: scale in [0.75, 1.0], then each corner moved by N(0, 5 px) (a homography), 28x28;
* ``elastic``: the 16 control points of a 4x4 thin-plate spline moved by N(0, 1.5 px), 28x28;
* ``clutter``: digit placed at random in a 60x60 canvas with 6 pieces of 6x6 clutter cut
  from other digits.

Geometry is expressed like a spatial transformer's: a grid maps each output pixel to
the input location it reads (``align_corners=False``, zero padding = black background).
"""
from __future__ import annotations

import math
import sys
from dataclasses import replace
from functools import lru_cache
from typing import Callable

import torch
import torch.nn.functional as F

from .cache import cache_file, code_version, files_identity, load_cached, save_cached
from .data import ImageTensors, load_mnist
from .geometry import homography_from_points, projective_grid, tps_control_points, tps_grid, tps_system_inverse
from .utils import data_root

DIGIT = 28  # MNIST side, pixels
ALIGN_CORNERS = False


def _uniform(count: int, low: float, high: float, generator: torch.Generator, device) -> torch.Tensor:
    return low + (high - low) * torch.rand(count, generator=generator, device=device)


def _rotation(angle_degrees: torch.Tensor) -> torch.Tensor:
    """``(B,)`` angles → rotation matrices ``(B, 2, 2)``."""
    radians = angle_degrees * (math.pi / 180)
    cos, sin = radians.cos(), radians.sin()
    return torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)


def _sample(images: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=ALIGN_CORNERS)


def place_affine(images: torch.Tensor, angle: torch.Tensor, scale: torch.Tensor,
                 shift_px: torch.Tensor, canvas: int) -> torch.Tensor:
    """Rotate by ``angle`` (degrees), scale by ``scale`` and shift the centre by ``shift_px``
    ``(B, 2)`` pixels, on a ``canvas x canvas`` output. All ``(B,)`` except ``shift_px``.

    The content moves by (R, s, t); θ is its inverse, mapped from canvas to digit units:
    ``v = (C/D)/s · R(-a) u - 2/(D s) · R(-a) t``.
    """
    batch, channels, size, _ = images.shape
    inverse_rotation = _rotation(-angle)
    linear = inverse_rotation * ((canvas / size) / scale).view(-1, 1, 1)
    offset = -(2.0 / (size * scale)).view(-1, 1) * (inverse_rotation @ shift_px.unsqueeze(-1)).squeeze(-1)
    theta = torch.cat([linear, offset.unsqueeze(-1)], dim=2)
    grid = F.affine_grid(theta, [batch, channels, canvas, canvas], align_corners=ALIGN_CORNERS)
    return _sample(images, grid)


def random_rotation(images: torch.Tensor, generator: torch.Generator, max_angle: float = 90.0) -> torch.Tensor:
    """R: rotation uniform in ``[-max_angle, max_angle]`` degrees, same size."""
    batch, device = images.shape[0], images.device
    angle = _uniform(batch, -max_angle, max_angle, generator, device)
    ones = torch.ones(batch, device=device)
    return place_affine(images, angle, ones, torch.zeros(batch, 2, device=device), images.shape[-1])


def random_rts(images: torch.Tensor, generator: torch.Generator, canvas: int = 42,
               max_angle: float = 45.0, scale_range: tuple[float, float] = (0.7, 1.2)) -> torch.Tensor:
    """RTS: rotation, scale, and a random position in a ``canvas x canvas`` image."""
    batch, device, size = images.shape[0], images.device, images.shape[-1]
    angle = _uniform(batch, -max_angle, max_angle, generator, device)
    scale = _uniform(batch, *scale_range, generator, device)
    # The scaled digit's box stays inside the canvas.
    room = ((canvas - size * scale) / 2).clamp_min(0).unsqueeze(1)
    shift = (2 * torch.rand(batch, 2, generator=generator, device=device) - 1) * room
    return place_affine(images, angle, scale, shift, canvas)


def random_projective(images: torch.Tensor, generator: torch.Generator,
                      scale_range: tuple[float, float] = (0.75, 1.0), corner_std_px: float = 5.0) -> torch.Tensor:
    """P: shrink by a random scale, then move each corner by N(0, ``corner_std_px``)."""
    batch, device, size = images.shape[0], images.device, images.shape[-1]
    corners = torch.tensor([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]], device=device)
    scale = _uniform(batch, *scale_range, generator, device).view(-1, 1, 1)
    noise = torch.randn(batch, 4, 2, generator=generator, device=device) * (corner_std_px * 2 / size)
    # Output corner k reads the input at corner_k / scale + noise: the digit shrinks, then warps.
    matrix = homography_from_points(corners.expand(batch, 4, 2), corners / scale + noise)
    return _sample(images, projective_grid(matrix, images.shape, ALIGN_CORNERS))


@lru_cache(maxsize=4)
def _tps_system(points_per_side: int) -> tuple[torch.Tensor, torch.Tensor]:
    control = tps_control_points(points_per_side)
    return control, tps_system_inverse(control)


def random_elastic(images: torch.Tensor, generator: torch.Generator, std_px: float = 1.5,
                   points_per_side: int = 4) -> torch.Tensor:
    """E: a thin-plate spline whose 4x4 control points move by N(0, ``std_px``) pixels."""
    batch, device, size = images.shape[0], images.device, images.shape[-1]
    control, inverse = _tps_system(points_per_side)
    control, inverse = control.to(device), inverse.to(device)
    noise = torch.randn(batch, *control.shape, generator=generator, device=device, dtype=control.dtype)
    source = control + noise * (std_px * 2 / size)
    grid = tps_grid(source, images.shape, ALIGN_CORNERS, control=control, system_inverse=inverse)
    return _sample(images, grid.to(images.dtype))


def _window(top: torch.Tensor, left: torch.Tensor, height: int, width: int) -> tuple[torch.Tensor, ...]:
    """Index tensors ``(B, 1, 1)``, ``(B, h, 1)``, ``(B, 1, w)`` for one ``height x width`` window per
    sample at ``(top, left)``: ``images[window]`` reads ``(B, h, w)`` from ``(B, H, W)``."""
    device = top.device
    return (torch.arange(top.shape[0], device=device).view(-1, 1, 1),
            top.view(-1, 1, 1) + torch.arange(height, device=device).view(1, -1, 1),
            left.view(-1, 1, 1) + torch.arange(width, device=device).view(1, 1, -1))


def _paste(canvas: torch.Tensor, patches: torch.Tensor, top: torch.Tensor, left: torch.Tensor) -> None:
    """Max-composite ``patches`` ``(B, h, w)`` into ``canvas`` ``(B, H, W)`` at per-sample offsets."""
    window = _window(top, left, *patches.shape[1:])
    canvas[window] = torch.maximum(canvas[window], patches)


def _crop(images: torch.Tensor, top: torch.Tensor, left: torch.Tensor, side: int) -> torch.Tensor:
    return images[_window(top, left, side, side)]


def translated_clutter(images: torch.Tensor, generator: torch.Generator, canvas: int = 60,
                       pieces: int = 6, piece_size: int = 6) -> torch.Tensor:
    """TC: the digit at a random place in a ``canvas`` square, plus ``pieces`` patches of
    ``piece_size`` squared pixels cut from other digits of the batch at random places."""
    batch, device, size = images.shape[0], images.device, images.shape[-1]
    digits = images[:, 0]
    out = torch.zeros(batch, canvas, canvas, device=device, dtype=images.dtype)

    def offsets(high: int) -> torch.Tensor:
        return torch.randint(0, high + 1, (batch,), generator=generator, device=device)

    for _ in range(pieces):
        # Another digit of the batch for each sample (itself only if the batch has one).
        donors = (torch.arange(batch, device=device) + offsets(max(batch - 2, 0)) + 1) % batch
        patch = _crop(digits[donors], offsets(size - piece_size), offsets(size - piece_size), piece_size)
        _paste(out, patch, offsets(canvas - piece_size), offsets(canvas - piece_size))
    _paste(out, digits, offsets(canvas - size), offsets(canvas - size))
    return out.unsqueeze(1)


Distortion = Callable[[torch.Tensor, torch.Generator], torch.Tensor]

#: name → (generator, output side, the paper's column name)
DISTORTIONS: dict[str, tuple[Distortion, int, str]] = {
    "rot": (random_rotation, 28, "R"),
    "rts": (random_rts, 42, "RTS"),
    "proj": (random_projective, 28, "P"),
    "elastic": (random_elastic, 28, "E"),
    "clutter": (translated_clutter, 60, "TC"),
}


def distortion(kind: str) -> Distortion:
    """The generator for ``kind`` (one of :data:`DISTORTIONS`)."""
    if kind not in DISTORTIONS:
        raise ValueError(f"unknown distortion {kind!r}; choose from {sorted(DISTORTIONS)}")
    return DISTORTIONS[kind][0]


def _generated_from(generate: Callable, train: bool) -> dict[str, str]:
    """What a cache of data generated by ``generate`` from MNIST depends on beyond its
    arguments: the generator's code and default parameters (:func:`code_version`, with this
    module's and :mod:`stn_course.geometry`'s code) and MNIST's files (:func:`files_identity`)."""
    from . import geometry

    raw = data_root() / "MNIST" / "raw"
    prefix = "train" if train else "t10k"
    return {"code": code_version(generate, sys.modules[__name__], geometry),
            "files": files_identity(*(raw / f"{prefix}-{part}-idx{dims}-ubyte" for part, dims in
                                      (("images", 3), ("labels", 1))))}


def distorted_mnist_test(kind: str, seed: int = 0, limit: int | None = None,
                         batch_size: int = 1000) -> ImageTensors:
    """The fixed distorted MNIST test set for ``kind``: uint8 ``(N, 1, S, S)``, cached.

    The same ``seed`` always gives the same images (distorted on the CPU).
    """
    generate = distortion(kind)
    base = load_mnist(train=False, limit=limit)
    # the batch size is in the key: the generator's draws may depend on how they are split
    key = {"dataset": f"mnist-{kind}", "split": "test", "seed": seed, "limit": limit, "batch_size": batch_size,
           **_generated_from(generate, train=False)}
    path = cache_file(f"mnist-{kind}-test-s{seed}-{limit or 'all'}-b{batch_size}", key)
    cached = load_cached(path, key, count=len(base))
    if cached is not None:
        images = cached["images"]
    else:
        generator = torch.Generator().manual_seed(seed)
        chunks = [generate(base.images[i:i + batch_size].float() / 255, generator)
                  for i in range(0, len(base), batch_size)]
        images = torch.cat(chunks).mul(255).round().clamp(0, 255).to(torch.uint8)
        save_cached(path, key, {"images": images})
    return replace(base, images=images, name=f"mnist-{kind}-test")


def moving_digit(digit: torch.Tensor, frames: int = 48, canvas: int = 42,
                 max_angle: float = 40.0, scale_range: tuple[float, float] = (0.8, 1.15),
                 radius_px: float = 5.0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One digit ``(1, 1, 28, 28)`` moved along a smooth closed path: rotated, scaled and
    shifted a little more each frame, in a ``canvas`` square.

    Returns the frames ``(frames, 1, canvas, canvas)`` on the digit's device and the applied
    parameters on the CPU, ready to plot (``angle`` in degrees, ``scale``, ``shift_px`` ``(frames, 2)``).
    """
    phase = torch.linspace(0, 2 * math.pi, frames + 1)[:-1]
    low, high = scale_range
    params = {
        "angle": max_angle * torch.sin(phase),
        "scale": (low + high) / 2 + (high - low) / 2 * torch.sin(2 * phase),
        "shift_px": radius_px * torch.stack([torch.cos(phase), torch.sin(phase)], dim=1),
    }
    on_device = {name: value.to(digit.device) for name, value in params.items()}
    images = place_affine(digit.expand(frames, -1, -1, -1), on_device["angle"], on_device["scale"],
                          on_device["shift_px"], canvas)
    return images, params


def two_digit_mnist(train: bool, seed: int = 0, limit: int | None = None, jitter: int = 4) -> ImageTensors:
    """Two MNIST digits side by side on a ``(28 + jitter) x (56 + 2 jitter)`` canvas, each
    shifted by up to ``jitter`` pixels; label ``10 * first + second`` (first = left).

    Pairs and positions are fixed by ``seed``; the result is cached as uint8.
    """
    base = load_mnist(train=train, limit=limit)
    split = "train" if train else "test"
    key = {"dataset": "mnist-two-digit", "split": split, "seed": seed, "limit": limit, "jitter": jitter,
           **_generated_from(two_digit_mnist, train)}
    path = cache_file(f"mnist-two-digit-{split}-s{seed}-{limit or 'all'}-j{jitter}", key)
    cached = load_cached(path, key, count=len(base))
    if cached is None:
        generator = torch.Generator().manual_seed(seed)
        count = len(base)
        partner = torch.randperm(count, generator=generator)
        height, width = DIGIT + jitter, 2 * (DIGIT + jitter)
        canvas = torch.zeros(count, height, width, dtype=torch.uint8)

        def offsets() -> torch.Tensor:
            return torch.randint(0, jitter + 1, (count,), generator=generator)

        _paste(canvas, base.images[:, 0], offsets(), offsets())
        _paste(canvas, base.images[partner, 0], offsets(), offsets() + DIGIT + jitter)
        cached = {"images": canvas.unsqueeze(1), "labels": 10 * base.labels + base.labels[partner]}
        save_cached(path, key, cached)
    return replace(base, images=cached["images"], labels=cached["labels"],
                   classes=tuple(f"{a}{b}" for a in range(10) for b in range(10)), name=f"mnist-two-digit-{split}")
