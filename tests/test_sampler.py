"""The NumPy sampler (stn_course.sampler) against PyTorch, finite differences and geometry.

Every forward and backward function is compared with ``torch.nn.functional`` and its
autograd on random θ that zoom in and out and sample far outside the input, for every
mode, padding mode and ``align_corners``, in float64 (max error 1e-10) and float32 (1e-5).
Random continuous coordinates never land exactly on a pixel position or on a clamp or
mirror line (the kinks where the derivative jumps and each implementation picks a side),
so the gradients are comparable everywhere.
"""
from __future__ import annotations

import ast
import faulthandler
import itertools
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from stn_course import conventions, sampler
from stn_course.parameterisation import theta_from_params
from stn_course.sampler import (
    affine_grid,
    affine_grid_backward,
    grid_sample,
    grid_sample_backward,
    homography_grid,
)

TOLERANCE = {np.float64: 1e-10, np.float32: 1e-5}
DTYPES = [np.float64, np.float32]
MODES = ["bilinear", "nearest"]
PADDING_MODES = ["zeros", "border", "reflection"]

# (N, C, H_in, W_in, H_out, W_out): odd and even sizes, down- and up-sampling, 1 and 3
# channels, non-square images, and a 1-pixel-high input (the degenerate axis).
SHAPES = [
    (2, 3, 5, 6, 7, 4),
    (3, 1, 8, 8, 5, 5),
    (2, 2, 4, 7, 9, 10),
    (1, 2, 1, 5, 3, 4),
]


def random_theta(rng: np.random.Generator, n: int, dtype=np.float64) -> np.ndarray:
    """θ with rotations, shears, scales from 0.3 to ~4 and translations up to ±4.

    Scales above 1 and large translations send many grid points far outside the input
    (several image widths: reflection then mirrors more than once).
    """
    angle = rng.uniform(-180, 180, n)
    scale = rng.uniform(0.3, 4.0, (2, n)) * rng.choice([-1, 1], (2, n))
    shear = rng.uniform(-0.8, 0.8, n)
    translation = rng.uniform(-4, 4, (2, n))
    theta = theta_from_params(angle, tuple(scale), shear, tuple(translation))
    return theta.astype(dtype)


def max_error(ours: np.ndarray, reference: torch.Tensor) -> float:
    return float(np.max(np.abs(ours - reference.detach().numpy()), initial=0.0))


def torch_sample(x, grid, grad_output, mode, padding_mode, align_corners):
    """PyTorch's output and autograd gradients (input, grid) for the same arguments."""
    x_t = torch.from_numpy(x).requires_grad_()
    grid_t = torch.from_numpy(grid).requires_grad_()
    out = F.grid_sample(x_t, grid_t, mode=mode, padding_mode=padding_mode, align_corners=align_corners)
    out.backward(torch.from_numpy(grad_output))
    return out, x_t.grad, grid_t.grad


# ---------------------------------------------------------------------------------------
# Against PyTorch
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("align_corners", [True, False])
def test_affine_grid_matches_torch(dtype, align_corners):
    rng = np.random.default_rng(1)
    for n, c, _, _, h, w in SHAPES + [(2, 1, 1, 1, 1, 1), (1, 1, 1, 1, 3, 1)]:
        theta = random_theta(rng, n, dtype)
        ours = affine_grid(theta, (n, c, h, w), align_corners=align_corners)
        with warnings.catch_warnings():  # PyTorch warns about 1-pixel grids; they agree all the same
            warnings.simplefilter("ignore", UserWarning)
            ref = F.affine_grid(torch.from_numpy(theta), [n, c, h, w], align_corners=align_corners)
        assert ours.shape == (n, h, w, 2) and ours.dtype == dtype
        assert max_error(ours, ref) <= TOLERANCE[dtype]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("align_corners", [True, False])
@pytest.mark.parametrize("padding_mode", PADDING_MODES)
@pytest.mark.parametrize("mode", MODES)
def test_grid_sample_and_backward_match_torch(mode, padding_mode, align_corners, dtype):
    rng = np.random.default_rng(2)
    tol = TOLERANCE[dtype]
    for n, c, h_in, w_in, h_out, w_out in SHAPES:
        x = rng.standard_normal((n, c, h_in, w_in)).astype(dtype)
        # One grid for both: the comparison is of the samplers, not of the grids.
        grid = affine_grid(random_theta(rng, n, dtype), (n, c, h_out, w_out), align_corners)
        grad_output = rng.standard_normal((n, c, h_out, w_out)).astype(dtype)

        ref_out, ref_grad_input, ref_grad_grid = torch_sample(x, grid, grad_output, mode, padding_mode, align_corners)
        out = grid_sample(x, grid, mode, padding_mode, align_corners)
        grad_input, grad_grid = grid_sample_backward(x, grid, grad_output, mode, padding_mode, align_corners)

        assert out.shape == (n, c, h_out, w_out) and out.dtype == dtype
        assert grad_input.shape == x.shape and grad_input.dtype == dtype
        assert grad_grid.shape == grid.shape and grad_grid.dtype == dtype
        assert max_error(out, ref_out) <= tol
        assert max_error(grad_input, ref_grad_input) <= tol
        assert max_error(grad_grid, ref_grad_grid) <= tol


@pytest.mark.parametrize("align_corners", [True, False])
@pytest.mark.parametrize("padding_mode", PADDING_MODES)
def test_far_outside_coordinates_match_torch(padding_mode, align_corners):
    """Points up to ~12 image widths away: reflection folds many times, zeros reads 0."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 2, 5, 4))
    grid = rng.uniform(-25, 25, (2, 6, 7, 2))
    grad_output = rng.standard_normal((2, 2, 6, 7))
    for mode in MODES:
        ref_out, ref_gi, ref_gg = torch_sample(x, grid, grad_output, mode, padding_mode, align_corners)
        grad_input, grad_grid = grid_sample_backward(x, grid, grad_output, mode, padding_mode, align_corners)
        assert max_error(grid_sample(x, grid, mode, padding_mode, align_corners), ref_out) <= 1e-10
        assert max_error(grad_input, ref_gi) <= 1e-10
        assert max_error(grad_grid, ref_gg) <= 1e-10


def test_nearest_rounds_halves_to_even_like_torch():
    # align_corners=True, 5 pixels: x = -0.75, -0.25, 0.25, 0.75 are pixel positions
    # 0.5, 1.5, 2.5, 3.5 exactly, which round to 0, 2, 2, 4.
    x = np.arange(25.0).reshape(1, 1, 5, 5)
    halves = np.array([-0.75, -0.25, 0.25, 0.75])
    grid = np.stack(np.meshgrid(halves, halves), axis=-1)[None]
    ours = grid_sample(x, grid, "nearest", align_corners=True)
    expected = np.array([0, 2, 2, 4])
    np.testing.assert_array_equal(ours[0, 0], 5 * expected[:, None] + expected[None, :])
    ref = F.grid_sample(torch.from_numpy(x), torch.from_numpy(grid), mode="nearest", align_corners=True)
    np.testing.assert_array_equal(ours, ref.numpy())


def test_huge_coordinates_do_not_overflow():
    x = np.ones((1, 1, 3, 3), dtype=np.float32)
    grid = np.array([[[[1e30, 0.0], [-1e30, 0.0], [0.0, 3e38]]]], dtype=np.float32)
    assert np.array_equal(grid_sample(x, grid), np.zeros((1, 1, 1, 3), np.float32))
    assert np.array_equal(grid_sample(x, grid, padding_mode="border"), np.ones((1, 1, 1, 3), np.float32))
    grad_input, grad_grid = grid_sample_backward(x, grid, np.ones((1, 1, 1, 3), np.float32))
    assert not grad_input.any() and not grad_grid.any()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("align_corners", [True, False])
def test_affine_grid_backward_matches_torch(align_corners, dtype):
    rng = np.random.default_rng(4)
    for n, c, _, _, h, w in SHAPES:
        theta = torch.from_numpy(random_theta(rng, n, dtype)).requires_grad_()
        grad_grid = rng.standard_normal((n, h, w, 2)).astype(dtype)
        F.affine_grid(theta, [n, c, h, w], align_corners=align_corners).backward(torch.from_numpy(grad_grid))
        ours = affine_grid_backward(grad_grid, (n, c, h, w), align_corners)
        assert ours.shape == (n, 2, 3) and ours.dtype == dtype
        assert max_error(ours, theta.grad) <= TOLERANCE[dtype]


@pytest.mark.parametrize("padding_mode", PADDING_MODES)
def test_gradient_of_theta_through_the_whole_transformer_matches_torch(padding_mode):
    """dL/dθ by the chain rule: grid_sample_backward, then affine_grid_backward."""
    rng = np.random.default_rng(5)
    n, c, h_in, w_in, h_out, w_out = 3, 2, 6, 5, 4, 7
    theta = random_theta(rng, n)
    x = rng.standard_normal((n, c, h_in, w_in))
    grad_output = rng.standard_normal((n, c, h_out, w_out))

    theta_t = torch.from_numpy(theta).requires_grad_()
    grid_t = F.affine_grid(theta_t, [n, c, h_out, w_out], align_corners=False)
    F.grid_sample(torch.from_numpy(x), grid_t, padding_mode=padding_mode,
                  align_corners=False).backward(torch.from_numpy(grad_output))

    grid = affine_grid(theta, (n, c, h_out, w_out))
    _, grad_grid = grid_sample_backward(x, grid, grad_output, padding_mode=padding_mode)
    grad_theta = affine_grid_backward(grad_grid, (n, c, h_out, w_out))
    assert max_error(grad_theta, theta_t.grad) <= 1e-10


# ---------------------------------------------------------------------------------------
# The hand-written backward against finite differences
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("align_corners", [True, False])
@pytest.mark.parametrize("padding_mode", PADDING_MODES)
def test_backward_matches_central_differences(padding_mode, align_corners):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((1, 2, 4, 5))
    grid = rng.uniform(-1.6, 1.6, (1, 3, 3, 2))
    grad_output = rng.standard_normal((1, 2, 3, 3))

    def loss(x_, grid_):
        return float(np.sum(grid_sample(x_, grid_, "bilinear", padding_mode, align_corners) * grad_output))

    def central_differences(array, f, eps=1e-6):
        grad = np.zeros_like(array)
        for index in np.ndindex(array.shape):
            step = np.zeros_like(array)
            step[index] = eps
            grad[index] = (f(array + step) - f(array - step)) / (2 * eps)
        return grad

    grad_input, grad_grid = grid_sample_backward(x, grid, grad_output, "bilinear", padding_mode, align_corners)
    np.testing.assert_allclose(grad_input, central_differences(x, lambda a: loss(a, grid)), atol=1e-7)
    np.testing.assert_allclose(grad_grid, central_differences(grid, lambda g: loss(x, g)), atol=1e-6)

    # dL/dθ through the grid, by the chain rule, against differences in θ directly
    # (a mild θ, so that most points read the image rather than the padding).
    theta = theta_from_params(angle=23, scale=(0.8, 1.3), shear=0.2, translation=(0.15, -0.1))[None]
    size = (1, 2, 3, 3)
    _, grad_grid = grid_sample_backward(x, affine_grid(theta, size, align_corners), grad_output,
                                        "bilinear", padding_mode, align_corners)
    grad_theta = affine_grid_backward(grad_grid, size, align_corners)
    numeric = central_differences(theta, lambda t: loss(x, affine_grid(t, size, align_corners)))
    np.testing.assert_allclose(grad_theta, numeric, atol=1e-6)
    assert np.abs(grad_theta).max() > 0.1  # not trivially zero


# ---------------------------------------------------------------------------------------
# Geometry: identity, rotation, translation, zoom, homographies
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("align_corners", [True, False])
def test_identity_theta_returns_the_input(align_corners, dtype):
    rng = np.random.default_rng(7)
    x = rng.random((2, 3, 7, 6)).astype(dtype)
    identity = np.tile(np.eye(2, 3, dtype=dtype), (2, 1, 1))
    grid = affine_grid(identity, x.shape, align_corners)
    # The grid points are the pixel centres, up to the last bit of linspace's rounding:
    # bilinear then agrees to rounding, nearest exactly.
    np.testing.assert_allclose(grid_sample(x, grid, "bilinear", align_corners=align_corners), x,
                               rtol=0, atol=1e-14 if dtype == np.float64 else 1e-6)
    np.testing.assert_array_equal(grid_sample(x, grid, "nearest", align_corners=align_corners), x)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("size", [5, 6])
@pytest.mark.parametrize("align_corners", [True, False])
def test_rotation_by_90_degrees_is_np_rot90(align_corners, size, mode):
    """angle=+90 turns the content COUNTER-CLOCKWISE as displayed (origin upper-left).

    θ = [[0, -1, 0], [1, 0, 0]]: output pixel (x, y) reads input (-y, x). The pixel
    centres are symmetric about 0 in both conventions (j ↦ size - 1 - j is x ↦ -x), so
    for a square image every output centre lands exactly on an input centre, for odd and
    even sizes alike, and the result is ``np.rot90`` (k=1: counter-clockwise).
    """
    x = np.arange(2 * size * size, dtype=np.float64).reshape(1, 2, size, size)
    theta = theta_from_params(angle=90)[None]
    out = grid_sample(x, affine_grid(theta, x.shape, align_corners), mode, align_corners=align_corners)
    np.testing.assert_allclose(out, np.rot90(x, k=1, axes=(2, 3)), rtol=0, atol=1e-12)
    # Concretely: the top-right pixel ends up top-left.
    assert out[0, 0, 0, 0] == pytest.approx(x[0, 0, 0, size - 1])


@pytest.mark.parametrize("align_corners", [True, False])
def test_positive_translation_moves_content_left_and_up(align_corners):
    size = 9
    x = np.zeros((1, 1, size, size))
    x[0, 0, 4, 4] = 1.0
    pixel = 2 / (size - 1) if align_corners else 2 / size  # one pixel in normalised units
    theta = theta_from_params(translation=(2 * pixel, 3 * pixel))[None]
    out = grid_sample(x, affine_grid(theta, x.shape, align_corners), "nearest", align_corners=align_corners)
    assert np.argwhere(out[0, 0] == 1).tolist() == [[4 - 3, 4 - 2]]  # up 3 rows, left 2 columns


def test_scale_below_one_zooms_in():
    """scale 0.5 shows the central half of the input (pixels 2..5 of 8) at twice the size."""
    x = np.add.outer(8.0 * np.arange(8), np.arange(8))[None, None]  # x[i, j] = 8 i + j
    theta = theta_from_params(scale=0.5)[None]
    out = grid_sample(x, affine_grid(theta, x.shape), "bilinear")
    # Output pixel j reads input position 1.75 + 0.5 j: 1.75 ... 5.25, half a pixel step,
    # i.e. pixels 2..5 and their outer halves. Bilinear reproduces a linear ramp exactly.
    position = 1.75 + 0.5 * np.arange(8)
    np.testing.assert_allclose(out[0, 0], 8 * position[:, None] + position[None, :], rtol=0, atol=1e-12)


def test_positive_shear_leans_content_left_going_down():
    x = np.zeros((1, 1, 9, 9))
    x[0, 0, :, 4] = 1.0  # a vertical line through the middle
    theta = theta_from_params(shear=0.25)[None]
    out = grid_sample(x, affine_grid(theta, x.shape, align_corners=True), "nearest", align_corners=True)
    columns = [int(np.argmax(row)) for row in out[0, 0]]
    assert columns[0] > columns[4] == 4 > columns[-1]  # top row right of the centre, bottom left


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("align_corners", [True, False])
def test_homography_with_affine_matrix_equals_affine_grid(align_corners, dtype):
    rng = np.random.default_rng(8)
    theta = random_theta(rng, 3, dtype)
    matrix = np.concatenate([theta, np.tile(np.array([[[0, 0, 1]]], dtype), (3, 1, 1))], axis=1)
    size = (3, 2, 5, 8)
    ours = homography_grid(matrix, size, align_corners)
    assert ours.dtype == dtype
    np.testing.assert_allclose(ours, affine_grid(theta, size, align_corners), rtol=0, atol=TOLERANCE[dtype])
    # A homography is defined up to scale.
    np.testing.assert_allclose(homography_grid(-2.5 * matrix, size, align_corners), ours,
                               rtol=0, atol=TOLERANCE[dtype])


@pytest.mark.parametrize("align_corners", [True, False])
def test_homography_grid_matches_direct_formula(align_corners):
    matrix = np.array([[1.1, 0.2, 0.1], [-0.15, 0.9, -0.2], [0.3, -0.25, 1.0]])
    h, w = 4, 5
    grid = homography_grid(matrix[None], (1, 1, h, w), align_corners)
    for i in range(h):
        for j in range(w):
            if align_corners:
                x, y = -1 + 2 * j / (w - 1), -1 + 2 * i / (h - 1)
            else:
                x, y = -1 + (2 * j + 1) / w, -1 + (2 * i + 1) / h
            xp, yp, wp = matrix @ [x, y, 1.0]
            assert grid[0, i, j] == pytest.approx([xp / wp, yp / wp], abs=1e-12)


def test_homography_through_infinity_clamps_w_keeping_its_sign():
    """w' = x is 0 in the middle column: |w'| becomes MIN_HOMOGENEOUS_W (+0 counts as
    positive), so that column reads far outside the input; the other columns are exact."""
    matrix = np.array([[[1.0, 0, 0], [0, 1, 0], [1, 0, 0]]])
    grid = homography_grid(matrix, (1, 1, 3, 3), align_corners=True)
    assert np.isfinite(grid).all()
    np.testing.assert_array_equal(grid[0, :, 1, 1], np.array([-1.0, 0.0, 1.0]) / conventions.MIN_HOMOGENEOUS_W)
    np.testing.assert_array_equal(grid[0, :, 1, 0], [0.0, 0.0, 0.0])  # x' = 0 over a tiny w
    np.testing.assert_allclose(grid[0, :, 0], [[1.0, 1.0], [1.0, 0.0], [1.0, -1.0]])  # w' = -1
    np.testing.assert_allclose(grid[0, :, 2], [[1.0, -1.0], [1.0, 0.0], [1.0, 1.0]])  # w' = +1
    tiny = np.array([[[1.0, 0, 0], [0, 1, 0], [0, 0, -1e-9]]])  # w' = -1e-9 everywhere: sign kept
    clamped = homography_grid(tiny, (1, 1, 2, 2), align_corners=True)
    np.testing.assert_allclose(clamped[0, 0, 0], [1.0, 1.0] / np.array(conventions.MIN_HOMOGENEOUS_W))
    out = grid_sample(np.ones((1, 1, 3, 3)), grid, align_corners=True)
    assert (out[0, 0, [0, 2], 1] == 0).all(), "points at infinity read the zero padding"


# ---------------------------------------------------------------------------------------
# Normalised and pixel coordinates
# ---------------------------------------------------------------------------------------

def test_unnormalise_matches_formulas_and_normalise_inverts_it():
    assert sampler.unnormalise(-1.0, 10, True) == 0.0
    assert sampler.unnormalise(1.0, 10, True) == 9.0
    assert sampler.unnormalise(-1.0, 10, False) == -0.5
    assert sampler.unnormalise(1.0, 10, False) == 9.5
    assert sampler.unnormalise(np.array([0], dtype=np.int64), 10, False).dtype == np.float64
    assert sampler.unnormalise(np.float32([0.5]), 10, False).dtype == np.float32
    x = np.linspace(-1.3, 1.3, 11)
    for align_corners in (True, False):
        np.testing.assert_allclose(sampler.normalise(sampler.unnormalise(x, 7, align_corners), 7, align_corners),
                                   x, atol=1e-12)
    assert sampler.normalise(0, 4, False) == -0.75 and sampler.normalise(3, 4, True) == 1.0


# ---------------------------------------------------------------------------------------
# dtypes and validation
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_dtypes_are_preserved(dtype):
    theta = np.tile(np.eye(2, 3, dtype=dtype), (2, 1, 1))
    size = (2, 3, 4, 5)
    grid = affine_grid(theta, size)
    assert grid.dtype == dtype
    assert homography_grid(np.tile(np.eye(3, dtype=dtype), (2, 1, 1)), size).dtype == dtype
    x = np.ones(size, dtype=dtype)
    for mode in MODES:
        assert grid_sample(x, grid, mode).dtype == dtype
        grad_input, grad_grid = grid_sample_backward(x, grid, np.ones(size, dtype), mode)
        assert grad_input.dtype == dtype and grad_grid.dtype == dtype
    assert affine_grid_backward(np.ones((2, 4, 5, 2), dtype), size).dtype == dtype
    # The output follows the input; a grid of another dtype is cast to it.
    assert grid_sample(x, grid.astype(np.float64 if dtype == np.float32 else np.float32)).dtype == dtype


GOOD_THETA = np.tile(np.eye(2, 3), (2, 1, 1))
GOOD_X = np.ones((2, 1, 3, 3))
GOOD_GRID = np.zeros((2, 4, 4, 2))
INF_THETA = GOOD_THETA.copy()
INF_THETA[1, 0, 2] = np.inf


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: affine_grid(np.eye(2, 3), (1, 1, 3, 3)), ValueError, r"theta must have shape \(N, 2, 3\)"),
        (lambda: affine_grid(np.zeros((2, 3, 3)), (2, 1, 3, 3)), ValueError, "theta"),
        (lambda: affine_grid(GOOD_THETA, (2, 3, 3)), ValueError, "size must have length 4"),
        (lambda: affine_grid(GOOD_THETA, (2, 1, 0, 3)), ValueError, "size must contain positive"),
        (lambda: affine_grid(GOOD_THETA, (2, 1, -3, 3)), ValueError, "size"),
        (lambda: affine_grid(GOOD_THETA, (2, 1, 3.0, 3)), TypeError, "size"),
        (lambda: affine_grid(GOOD_THETA, (3, 1, 3, 3)), ValueError, r"size\[0\]"),
        (lambda: affine_grid(GOOD_THETA.astype(np.int64), (2, 1, 3, 3)), TypeError, "theta must be a floating-point"),
        (lambda: affine_grid(GOOD_THETA.astype(bool), (2, 1, 3, 3)), TypeError, "theta"),
        (lambda: affine_grid(GOOD_THETA * np.nan, (2, 1, 3, 3)), ValueError, "theta contains NaN or inf"),
        (lambda: affine_grid(INF_THETA, (2, 1, 3, 3)), ValueError, "theta"),
        (lambda: homography_grid(GOOD_THETA, (2, 1, 3, 3)), ValueError, r"matrix must have shape \(N, 3, 3\)"),
        (lambda: homography_grid(np.ones((2, 3, 3), int), (2, 1, 3, 3)), TypeError, "matrix"),
        (lambda: grid_sample(np.ones((1, 3, 3)), GOOD_GRID), ValueError, "input must be 4-D"),
        (lambda: grid_sample(np.ones((2, 1, 0, 3)), GOOD_GRID), ValueError, "input"),
        (lambda: grid_sample(GOOD_X, np.zeros((2, 4, 4, 3))), ValueError, "grid must have shape"),
        (lambda: grid_sample(GOOD_X, np.zeros((2, 4, 2))), ValueError, "grid"),
        (lambda: grid_sample(GOOD_X, np.zeros((3, 4, 4, 2))), ValueError, "same batch size"),
        (lambda: grid_sample(GOOD_X.astype(np.uint8), GOOD_GRID), TypeError, "input must be a floating-point"),
        (lambda: grid_sample(GOOD_X, GOOD_GRID.astype(int)), TypeError, "grid must be a floating-point"),
        (lambda: grid_sample(GOOD_X, GOOD_GRID, mode="bicubic"), ValueError,
         "mode must be one of 'bilinear', 'nearest'"),
        (lambda: grid_sample(GOOD_X, GOOD_GRID, padding_mode="wrap"), ValueError,
         "padding_mode must be one of 'zeros', 'border', 'reflection'"),
        (lambda: grid_sample_backward(GOOD_X, GOOD_GRID, np.ones((2, 1, 3, 3))), ValueError, "grad_output"),
        (lambda: grid_sample_backward(GOOD_X, GOOD_GRID, np.ones((2, 1, 4, 4), int)), TypeError, "grad_output"),
        (lambda: grid_sample_backward(GOOD_X, GOOD_GRID, np.ones((2, 1, 4, 4)), mode="cubic"), ValueError, "mode"),
        (lambda: affine_grid_backward(np.ones((2, 3, 3, 2)), (2, 1, 4, 4)), ValueError, "grad_grid"),
        (lambda: affine_grid_backward(np.ones((2, 4, 4, 2), int), (2, 1, 4, 4)), TypeError, "grad_grid"),
    ],
)
def test_validation_errors_name_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_pixel_index_stays_exact_for_huge_images():
    """Row * width + col is computed in floating point; planes past 2**24 pixels use float64."""
    height, width = 5000, 4000  # 20 million pixels per plane: not exact in float32
    images = sampler._FramedImages(np.empty(0, np.float32), 2, height, width)
    row = np.array([[4997.0, -2.0, 3.0]], dtype=np.float32)
    col = np.array([[3997.0, -2.0, 1234.0]], dtype=np.float32)
    expected = (row.astype(np.int64) + sampler._FRAME) * width + col.astype(np.int64) + sampler._FRAME
    np.testing.assert_array_equal(sampler._pixel_index(row, col, images), expected)


def test_sampler_does_not_import_torch():
    tree = ast.parse(Path(sampler.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {(node.module or "").split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert "torch" not in imported


def test_accepts_lists_and_all_modes_share_one_signature():
    out = grid_sample([[[[1.0, 2.0], [3.0, 4.0]]]], [[[[0.0, 0.0]]]], align_corners=True)
    assert out.shape == (1, 1, 1, 1) and out[0, 0, 0, 0] == pytest.approx(2.5)
    for mode, padding_mode in itertools.product(conventions.MODES, conventions.PADDING_MODES):
        assert grid_sample(GOOD_X, GOOD_GRID, mode, padding_mode).shape == (2, 1, 4, 4)


# ---------------------------------------------------------------------------------------
# Huge, infinite and NaN coordinates
# ---------------------------------------------------------------------------------------
# Each call below hung (np.take spinning on index INT_MIN) or raised IndexError before the
# fix. It runs in a child process with a timeout, so a hang fails the test, not the suite.
HANG_CASES = {
    "reflection 1e308": "out = grid_sample(np.ones((1, 1, 28, 28)), np.full((1, 1, 1, 2), 1e308), "
                        "padding_mode='reflection')",
    "reflection nearest 1e308": "out = grid_sample(np.ones((1, 1, 28, 28)), np.full((1, 1, 1, 2), 1e308), "
                                "mode='nearest', padding_mode='reflection')",
    "float32 theta 3e37": "theta = np.array([[[3e37, 0, 0], [0, 3e37, 0]]], np.float32)\n"
                          "out = grid_sample(np.ones((1, 1, 28, 28), np.float32), "
                          "affine_grid(theta, (1, 1, 5, 5), align_corners=False), padding_mode='reflection')",
    "float16 5000": "out = grid_sample(np.ones((1, 1, 28, 28), np.float16), np.full((1, 1, 1, 2), 5000, np.float16), "
                    "padding_mode='reflection')",
    "backward 1e308": "out, _ = grid_sample_backward(np.ones((1, 1, 28, 28)), np.full((1, 1, 1, 2), 1e308), "
                      "np.ones((1, 1, 1, 1)), padding_mode='reflection')\nout = out.sum(keepdims=True)",
    "border inf": "out = grid_sample(np.ones((1, 1, 28, 28)), np.full((1, 1, 1, 2), np.inf), padding_mode='border')",
    "border nan": "out = grid_sample(np.ones((1, 1, 28, 28)), np.full((1, 1, 1, 2), np.nan), padding_mode='border', "
                  "align_corners=True)",
}


@pytest.mark.parametrize("name", list(HANG_CASES))
def test_huge_coordinates_return_at_once(name):
    """Each former hang returns 1.0 (PyTorch's answer) within the timeout."""
    code = ("import numpy as np\nfrom stn_course.sampler import affine_grid, grid_sample, grid_sample_backward\n"
            + HANG_CASES[name] + "\nprint(float(np.ravel(out)[0]))")
    done = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr
    assert float(done.stdout) == 1.0


@pytest.mark.parametrize("value", [1e308, -1e308, np.inf, -np.inf, np.nan, 1e30])
@pytest.mark.parametrize("padding_mode", ["border", "reflection"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("align_corners", [False, True])
def test_non_finite_coordinates_read_what_torch_reads(value, padding_mode, mode, align_corners):
    """On a ramp image the pixel read shows which position a far-away point was sent to."""
    image = np.arange(6 * 7, dtype=np.float64).reshape(1, 1, 6, 7)
    grid = np.array([[[[value, 0.3], [0.2, value], [value, value]]]])
    options = dict(mode=mode, padding_mode=padding_mode, align_corners=align_corners)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning from overflow or inf - inf
        ours = grid_sample(image, grid, **options)
    theirs = F.grid_sample(torch.from_numpy(image), torch.from_numpy(grid), **options).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=0)


def test_empty_batch_gives_empty_arrays_like_torch():
    x, grid = np.ones((0, 2, 5, 5), np.float32), np.zeros((0, 3, 4, 2), np.float32)
    out = grid_sample(x, grid, align_corners=False)
    assert out.shape == tuple(F.grid_sample(torch.from_numpy(x), torch.from_numpy(grid),
                                            align_corners=False).shape) == (0, 2, 3, 4)
    assert out.dtype == np.float32
    grad_input, grad_grid = grid_sample_backward(x, grid, np.ones((0, 2, 3, 4), np.float32), align_corners=False)
    assert grad_input.shape == x.shape and grad_grid.shape == grid.shape


@pytest.mark.parametrize("padding_mode", PADDING_MODES)
@pytest.mark.parametrize("align_corners", [False, True])
def test_inf_pixel_gives_inf_like_torch(padding_mode, align_corners):
    """A point whose neighbours include an inf pixel (with a non-zero weight) reads inf, not NaN."""
    image = np.ones((1, 1, 4, 4))
    image[0, 0, 1, 1] = np.inf
    grid = np.array([[[[-0.5, -0.25], [-0.25, -0.25], [0.25, 0.25], [-0.4, -0.4], [0.0, -0.75]]]])
    options = dict(padding_mode=padding_mode, align_corners=align_corners)
    with np.errstate(invalid="ignore"):  # inf * 0 where the inf pixel has weight 0: NaN, as in torch
        ours = grid_sample(image, grid, **options)
    theirs = F.grid_sample(torch.from_numpy(image), torch.from_numpy(grid), **options).numpy()
    np.testing.assert_array_equal(ours, theirs)  # equal_nan: NaN where torch has NaN
    assert np.isposinf(ours).any()


def _fuzz_coordinates(rng: np.random.Generator, shape: tuple, dtype: type) -> np.ndarray:
    """Normal, huge (up to ±1e308), and special (NaN, ±inf, ±1e308, ±1, 0) coordinates, mixed."""
    kind = rng.integers(0, 3, size=shape)
    normal = rng.uniform(-3, 3, size=shape)
    huge = np.sign(rng.uniform(-1, 1, size=shape)) * 10.0 ** rng.uniform(-3, 308, size=shape)
    special = rng.choice([np.nan, np.inf, -np.inf, 1e308, -1e308, 0.0, 1.0, -1.0], size=shape)
    with np.errstate(over="ignore"):
        return np.choose(kind, [normal, huge, special]).astype(dtype)


def _comparable(x: np.ndarray, grid: np.ndarray, padding_mode: str) -> np.ndarray:
    """Output points ``(N, 1, H, W)`` where torch's answer is a reference, besides being finite.

    Two documented exceptions: (1) reflection of a point whose pixel coordinate is beyond
    2**mantissa (1.7e7 in float32, 9e15 in float64): the float spacing there is larger
    than the mirror period, so the "reflected" position is rounding noise (torch's own
    answer depends on whether its compiler fused a multiply-add). (2) float16 with "zeros"
    padding at a point that overflows float16: torch's float16 kernel then reads pixel 0,
    where its float32 and float64 kernels (and this module) read the padding value 0.
    """
    keep = np.ones(grid.shape[:3], dtype=bool)
    with np.errstate(over="ignore", invalid="ignore"):
        reach = np.abs(grid.astype(np.float64)) * (max(x.shape[2:]) + 2)
    if padding_mode == "reflection":
        keep &= ~np.any(np.isfinite(reach) & (reach > 2.0 ** np.finfo(x.dtype).nmant), axis=-1)
    if x.dtype == np.float16 and padding_mode == "zeros":
        keep &= np.all(reach < np.finfo(np.float16).max, axis=-1)
    return keep[:, None]


def test_fuzz_huge_and_non_finite_coordinates_agree_with_torch():
    """Random shapes, dtypes and coordinates over ±1e308 with NaN and inf: every call
    returns (a watchdog ends the run if one hangs), never warns, and agrees with torch
    wherever torch's output is finite (see _comparable for the two exceptions). Backward
    is compared on finite, moderate grids only: torch's own backward crashes (segfault)
    on some huge or NaN grids; on those ours must merely return."""
    tolerance = {np.float16: 2e-2, np.float32: 1e-4, np.float64: 1e-9}
    rng = np.random.default_rng(23)
    faulthandler.dump_traceback_later(600, exit=True)  # a hang ends the run, it cannot block it
    try:
        with warnings.catch_warnings(), torch.set_grad_enabled(False):
            warnings.simplefilter("error")
            for _ in range(2000):
                dtype = [np.float16, np.float32, np.float64][rng.integers(3)]
                n, c, h, w, h_out, w_out = (int(v) for v in rng.integers([0, 1, 1, 1, 1, 1], [3, 3, 7, 7, 5, 5]))
                x = rng.normal(size=(n, c, h, w)).astype(dtype)
                grid = _fuzz_coordinates(rng, (n, h_out, w_out, 2), dtype)
                options = dict(mode=MODES[rng.integers(2)], padding_mode=PADDING_MODES[rng.integers(3)],
                               align_corners=bool(rng.integers(2)))
                ours = grid_sample(x, grid, **options)
                theirs = F.grid_sample(torch.from_numpy(x), torch.from_numpy(grid), **options).numpy()
                assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
                keep = np.isfinite(theirs) & _comparable(x, grid, options["padding_mode"])
                np.testing.assert_allclose(ours[keep], theirs[keep], rtol=tolerance[dtype], atol=tolerance[dtype],
                                           err_msg=f"{dtype.__name__} {x.shape} {options}")
                if n and dtype != np.float16:
                    grad_input, grad_grid = grid_sample_backward(x, grid, np.ones(ours.shape, dtype), **options)
                    assert grad_input.shape == x.shape and grad_grid.shape == grid.shape
    finally:
        faulthandler.cancel_dump_traceback_later()
