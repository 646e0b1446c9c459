"""Coordinates for pictures: where a sampling grid reads, in input pixels.

The same maths as :mod:`stn_course.sampler`, for drawing what a transform does (the
figures in :mod:`stn_course.figures` compute with these; :mod:`stn_course.plot` only draws):
:func:`grid_to_pixels`, :func:`base_grid_extent`, :func:`region_corners` (the input
quadrilateral an output reads, for θ or a homography), :func:`sample_spacing`,
:func:`grid_outline_pixels` and :func:`bilinear_neighbours` (one point's four neighbours
and weights). Pixel coordinates put the centre of pixel ``(row i, column j)`` at
``(x=j, y=i)`` (:mod:`stn_course.conventions`).
"""
from __future__ import annotations

from typing import Any, Dict, Sequence, Tuple

import numpy as np

from .conventions import MIN_HOMOGENEOUS_W
from .sampler import unnormalise

__all__ = [
    "grid_to_pixels",
    "base_grid_extent",
    "region_corners",
    "sample_spacing",
    "grid_outline_pixels",
    "bilinear_neighbours",
]

ArrayLike = Any  # arrays, nested lists, torch tensors


def _numpy(value: ArrayLike) -> np.ndarray:
    """float64 array of an array-like or a torch tensor (detached, on the CPU)."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=np.float64)


def grid_to_pixels(grid: ArrayLike, in_hw: Sequence[int], align_corners: bool) -> np.ndarray:
    """A sampling grid ``(..., 2)`` of normalised (x, y) to input pixel coordinates ``(..., 2)`` (float64)."""
    grid = _numpy(grid)
    height, width = (int(v) for v in in_hw)
    return np.stack([unnormalise(grid[..., 0], width, align_corners),
                     unnormalise(grid[..., 1], height, align_corners)], axis=-1)


def base_grid_extent(size: int, align_corners: bool) -> float:
    """Largest normalised coordinate of a base grid with ``size`` points.

    ``align_corners=True``: the points run from -1 to 1 (1 for any size > 1);
    ``align_corners=False``: they are pixel centres, ±(size - 1) / size.
    A single point sits at 0 in both conventions (as in PyTorch).
    """
    size = int(size)
    if size <= 1:
        return 0.0
    return 1.0 if align_corners else (size - 1) / size


def region_corners(matrix: ArrayLike, in_hw: Sequence[int], align_corners: bool,
                   out_hw: Sequence[int] | None = None) -> np.ndarray:
    """Corners of the region of the input that an output grid samples, in input pixels.

    ``matrix``: an affine θ ``(2, 3)`` or a homography ``(3, 3)`` (a leading batch axis of
    one is accepted). The output grid's extreme points (:func:`base_grid_extent`;
    ``out_hw`` defaults to ``in_hw``) are mapped through it, divided by ``w'`` for a
    homography (clamped as in :func:`stn_course.sampler.homography_grid`) and unnormalised as grid_sample
    does. Returns ``(4, 2)`` (x, y) in the order: output top-left, top-right,
    bottom-right, bottom-left. For the identity with ``out_hw == in_hw`` these are the
    centres of the image's corner pixels, for both values of ``align_corners``.
    """
    m = _numpy(matrix)
    if m.ndim == 3 and m.shape[0] == 1:
        m = m[0]
    if m.shape == (2, 3):
        m = np.vstack([m, [0.0, 0.0, 1.0]])
    if m.shape != (3, 3):
        raise ValueError(f"matrix must be (2, 3) or (3, 3), got {m.shape}")
    height, width = (int(v) for v in in_hw)
    out_h, out_w = (int(v) for v in out_hw) if out_hw is not None else (height, width)
    ex, ey = base_grid_extent(out_w, align_corners), base_grid_extent(out_h, align_corners)
    base = np.array([[-ex, -ey, 1.0], [ex, -ey, 1.0], [ex, ey, 1.0], [-ex, ey, 1.0]])
    projected = base @ m.T
    w = projected[:, 2:]
    w = np.where(np.abs(w) < MIN_HOMOGENEOUS_W, np.copysign(MIN_HOMOGENEOUS_W, w), w)
    return grid_to_pixels(projected[:, :2] / w, (height, width), align_corners)


def sample_spacing(corners: ArrayLike, out_hw: Sequence[int]) -> float:
    """Distance between neighbouring output samples in input pixels, the larger of the two
    axes, from the :func:`region_corners` of an ``out_hw`` output."""
    corners = _numpy(corners)
    out_h, out_w = (int(v) for v in out_hw)
    across = np.linalg.norm(corners[1] - corners[0]) / max(out_w - 1, 1)
    down = np.linalg.norm(corners[3] - corners[0]) / max(out_h - 1, 1)
    return float(max(across, down))


def grid_outline_pixels(grid: ArrayLike, in_hw: Sequence[int], align_corners: bool) -> np.ndarray:
    """The border of a sampling grid ``(Ho, Wo, 2)`` (normalised) as a closed path of input
    pixel coordinates ``(P, 2)``: top row, right column, bottom row, left column.

    Works for any transform (affine, projective, thin-plate spline): it follows the grid.
    """
    pix = grid_to_pixels(grid, in_hw, align_corners)
    return np.concatenate([pix[0, :], pix[1:, -1], pix[-1, -2::-1], pix[-2:0:-1, 0], pix[:1, 0]])


def bilinear_neighbours(x: float, y: float) -> Dict[Tuple[int, int], float]:
    """The four neighbours of pixel location (x, y) and their bilinear weights.

    Returns ``{(x0, y0): w, (x1, y0): w, (x0, y1): w, (x1, y1): w}`` with
    ``x0 = floor(x)``, ``x1 = x0 + 1`` (same for y); the weights (those of
    :func:`stn_course.sampler.grid_sample`) sum to 1.
    """
    x0, y0 = int(np.floor(x)), int(np.floor(y))
    fx, fy = float(x - x0), float(y - y0)  # how far (x, y) is from the west column and the north row
    nw, ne, sw, se = (1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx
    return {(x0, y0): float(nw), (x0 + 1, y0): float(ne), (x0, y0 + 1): float(sw), (x0 + 1, y0 + 1): float(se)}
