"""Grid generators in PyTorch: affine, projective (homography) and thin-plate spline.

A grid generator turns transform parameters into a sampling grid ``(N, H, W, 2)``: for
every output pixel, the normalised ``(x, y)`` of the input point it reads, ready for
``F.grid_sample``. The conventions are those of :mod:`stn_course.conventions` (shared with
the NumPy twin, :mod:`stn_course.sampler`) and of PyTorch:

* normalised coordinates run from -1 (left / top) to +1 (right / bottom);
  ``align_corners`` says whether ±1 are the corner pixels' centres (True) or outer
  edges (False), and is always passed explicitly;
* every transform maps OUTPUT coordinates to INPUT coordinates (an inverse warp);
* points are ``(x, y)`` = (column, row).

Used by :mod:`stn_course.models` (the spatial transformer's grid generator) and
:mod:`stn_course.distortions` (the distorted-MNIST generators).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from .conventions import MIN_HOMOGENEOUS_W

__all__ = [
    "MIN_HOMOGENEOUS_W",
    "base_grid",
    "affine_grid",
    "projective_grid",
    "homography_from_points",
    "tps_control_points",
    "tps_kernel",
    "tps_system_inverse",
    "tps_grid",
]


def base_grid(height: int, width: int, align_corners: bool, device=None, dtype=torch.float32) -> torch.Tensor:
    """Normalised output-pixel coordinates ``(H, W, 2)`` as (x, y), as ``affine_grid`` uses them."""
    def axis(size: int) -> torch.Tensor:
        coords = torch.linspace(-1.0, 1.0, size, device=device, dtype=dtype)
        return coords if align_corners else coords * (size - 1) / size

    ys, xs = torch.meshgrid(axis(height), axis(width), indexing="ij")
    return torch.stack([xs, ys], dim=-1)


def affine_grid(theta: torch.Tensor, size: Sequence[int], align_corners: bool) -> torch.Tensor:
    """Sampling grid ``(N, H, W, 2)`` of affine θ ``(N, 2, 3)`` for output ``size`` ``(N, C, H, W)``.

    ``F.affine_grid`` itself; here so that the three grid generators share one home and one
    signature.
    """
    return F.affine_grid(theta, list(size), align_corners=align_corners)


def projective_grid(matrix: torch.Tensor, size: Sequence[int], align_corners: bool) -> torch.Tensor:
    """Sampling grid ``(N, H, W, 2)`` of homographies ``matrix`` ``(N, 3, 3)`` (output → input).

    ``(x', y', w')ᵀ = H (x, y, 1)ᵀ`` and the grid holds ``(x'/w', y'/w')``. Where the plane
    maps to infinity (``|w'| < MIN_HOMOGENEOUS_W``), ``w'`` is clamped to
    ``±MIN_HOMOGENEOUS_W`` with its sign kept, as :func:`stn_course.sampler.homography_grid`
    does: the point lands far outside the input (it reads padding), the grid stays finite,
    and a transformer being trained gets finite gradients instead of NaNs.
    """
    n, _, height, width = size
    points = base_grid(height, width, align_corners, matrix.device, matrix.dtype).view(1, -1, 2)
    homogeneous = torch.cat([points, points.new_ones(1, points.shape[1], 1)], dim=2)
    mapped = homogeneous @ matrix.transpose(1, 2)
    w = mapped[..., 2:]
    # copysign keeps the side of the horizon (w = +0.0 counts as positive).
    w = torch.where(w.abs() < MIN_HOMOGENEOUS_W, torch.full_like(w, MIN_HOMOGENEOUS_W).copysign(w), w)
    return (mapped[..., :2] / w).view(n, height, width, 2)


def homography_from_points(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Homographies ``(B, 3, 3)`` mapping 4 points ``source`` ``(B, 4, 2)`` onto ``target``.

    Direct linear transform with ``H[2, 2] = 1``: two equations per correspondence.
    """
    x, y = source[..., 0], source[..., 1]
    u, v = target[..., 0], target[..., 1]
    zeros, ones = torch.zeros_like(x), torch.ones_like(x)
    rows_u = torch.stack([x, y, ones, zeros, zeros, zeros, -x * u, -y * u], -1)
    rows_v = torch.stack([zeros, zeros, zeros, x, y, ones, -x * v, -y * v], -1)
    system = torch.cat([rows_u, rows_v], dim=1)
    rhs = torch.cat([u, v], dim=1)
    solution = torch.linalg.solve(system, rhs)
    return torch.cat([solution, torch.ones_like(solution[:, :1])], dim=1).view(-1, 3, 3)


def tps_control_points(grid_size: int = 4) -> torch.Tensor:
    """``grid_size``² control points on a regular grid over [-1, 1]², shape ``(K, 2)`` as (x, y), float64."""
    axis = torch.linspace(-1.0, 1.0, grid_size, dtype=torch.float64)
    ys, xs = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([xs.flatten(), ys.flatten()], dim=1)


def tps_kernel(squared_distance: torch.Tensor) -> torch.Tensor:
    """The thin-plate radial basis ``U(r) = r² log r²`` of squared distances, with ``U(0) = 0``."""
    return torch.xlogy(squared_distance, squared_distance)  # exactly 0 at r = 0


def _squared_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``(..., M, 2)`` and ``(K, 2)`` → ``(..., M, K)``; exact, unlike ``cdist``'s matmul trick."""
    return (a.unsqueeze(-2) - b).pow(2).sum(-1)


def tps_system_inverse(control: torch.Tensor) -> torch.Tensor:
    """Inverse ``(K + 3, K + 3)`` of the TPS system ``[[U, P], [Pᵀ, 0]]`` for control points ``(K, 2)``.

    ``U[i, j] = U(|c_i - c_j|)`` and ``P = [1, x, y]``. It depends on the control points
    only, so it is computed once (in float64: the system is ill-conditioned enough that
    float32 costs ~1e-6 in the grid) and reused for every batch.
    """
    count = control.shape[0]
    kernel = tps_kernel(_squared_distances(control, control))
    poly = torch.cat([control.new_ones(count, 1), control], dim=1)
    system = control.new_zeros(count + 3, count + 3)
    system[:count, :count] = kernel
    system[:count, count:] = poly
    system[count:, :count] = poly.T
    return torch.linalg.inv(system)


def tps_grid(source_points: torch.Tensor, size: Sequence[int], align_corners: bool,
             control: torch.Tensor | None = None, system_inverse: torch.Tensor | None = None) -> torch.Tensor:
    """Thin-plate-spline sampling grid ``(N, H, W, 2)``.

    The spline maps each control point ``control[k]`` (output coordinates, default the
    4x4 grid of :func:`tps_control_points`) to ``source_points[:, k]`` ``(N, K, 2)`` in the
    input, and bends as little as possible in between. ``system_inverse`` may be given
    precomputed (:func:`tps_system_inverse` of ``control``).
    """
    n, _, height, width = size
    if control is None:
        control = tps_control_points(round(source_points.shape[1] ** 0.5)).to(source_points.device)
    if system_inverse is None:
        system_inverse = tps_system_inverse(control.double())
    dtype = source_points.dtype
    points = base_grid(height, width, align_corners, source_points.device, dtype).view(1, -1, 2)
    rhs = torch.cat([source_points, source_points.new_zeros(n, 3, 2)], dim=1)
    coefficients = system_inverse.to(source_points.device, dtype) @ rhs
    # Evaluate the spline at every output pixel: [U(|p - c_k|), 1, x, y] @ coefficients.
    kernel = tps_kernel(_squared_distances(points, control.to(source_points.device, dtype)))
    features = torch.cat([kernel, points.new_ones(1, points.shape[1], 1), points], dim=2)
    return (features.expand(n, -1, -1) @ coefficients).view(n, height, width, 2)
