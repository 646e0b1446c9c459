"""Argument checks of the NumPy reference (:mod:`stn_course.sampler`,
:mod:`stn_course.parameterisation`): every public function fails the same clear way,
naming the argument, before any computation.
"""
from __future__ import annotations

from typing import Any, Sequence, Tuple

import numpy as np

from .conventions import MODES, PADDING_MODES

ArrayLike = Any  # anything np.asarray accepts: arrays, nested lists, CPU tensors
Size = Sequence[int]


def as_float_array(value: ArrayLike, name: str) -> np.ndarray:
    """``value`` as an array of a floating-point dtype, or a TypeError naming ``name``."""
    array = np.asarray(value)
    if not np.issubdtype(array.dtype, np.floating):
        # PyTorch refuses integer (and bool) arrays here too, and guessing a dtype would
        # hide the caller's bug: an integer θ usually means a lost ".astype(float)".
        raise TypeError(
            f"{name} must be a floating-point array (float32 or float64), got {array.dtype}; "
            f"convert it first, e.g. {name}.astype(np.float32)"
        )
    return array


def check_finite(array: np.ndarray, name: str) -> None:
    """A NaN or inf coordinate has no pixel to read from: refuse it rather than guess."""
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or inf values")


def check_shape(array: np.ndarray, name: str, trailing: Tuple[int, ...], described: str) -> None:
    """``array`` must be ``ndim == len(trailing) + 1`` with the given trailing dimensions."""
    if array.ndim != len(trailing) + 1 or array.shape[1:] != trailing:
        raise ValueError(f"{name} must have shape {described}, got {array.shape}")


def check_choice(value: str, name: str, allowed: Tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}")


def check_size(size: Size) -> Tuple[int, int, int, int]:
    """The ``(N, C, H, W)`` output size, as four positive Python ints."""
    try:
        values = tuple(size)
    except TypeError:
        raise TypeError(f"size must be a sequence (N, C, H, W), got {type(size).__name__}") from None
    if len(values) != 4:
        raise ValueError(f"size must have length 4 (N, C, H, W), got length {len(values)}: {values}")
    for v in values:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"size must contain integers, got {values}")
    if min(values) <= 0:
        raise ValueError(f"size must contain positive integers (N, C, H, W), got {values}")
    return tuple(int(v) for v in values)  # type: ignore[return-value]


def check_matrices(matrices: ArrayLike, name: str, rows: int) -> np.ndarray:
    """A batch of finite float ``(N, rows, 3)`` matrices (θ or a homography)."""
    array = as_float_array(matrices, name)
    check_shape(array, name, (rows, 3), f"(N, {rows}, 3)")
    check_finite(array, name)
    return array


def check_batch(size_batch: int, batch: int, name: str) -> None:
    if size_batch != batch:
        raise ValueError(f"size[0] (batch) is {size_batch} but {name} has batch size {batch}")


def check_input_and_grid(input: ArrayLike, grid: ArrayLike) -> Tuple[np.ndarray, np.ndarray]:
    """The image batch ``(N, C, H_in, W_in)`` and a grid ``(N, H, W, 2)`` that agree on N.

    N may be 0 (an empty batch, as in PyTorch). The grid may hold any float, NaN and inf
    included: the padding modes map every coordinate to a safe pixel position before any
    index is computed (see :func:`stn_course.sampler._source_coordinates`)."""
    input = as_float_array(input, "input")
    grid = as_float_array(grid, "grid")
    if input.ndim != 4:
        raise ValueError(f"input must be 4-D (N, C, H_in, W_in), got shape {input.shape}")
    if input.shape[2] <= 0 or input.shape[3] <= 0:
        raise ValueError(f"input must have non-empty spatial dimensions, got shape {input.shape}")
    if grid.ndim != 4 or grid.shape[3] != 2:
        raise ValueError(f"grid must have shape (N, H_out, W_out, 2), got {grid.shape}")
    if grid.shape[0] != input.shape[0]:
        raise ValueError(
            f"input and grid must have the same batch size, got input {input.shape[0]} "
            f"and grid {grid.shape[0]}"
        )
    return input, grid


def check_sampling_options(mode: str, padding_mode: str) -> None:
    check_choice(mode, "mode", MODES)
    check_choice(padding_mode, "padding_mode", PADDING_MODES)
