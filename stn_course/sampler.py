"""The spatial transformer's grid generator and sampler, written in NumPy.

This module is the course's reference implementation of the two differentiable pieces
of a Spatial Transformer Network (Jaderberg et al., 2015): the **grid generator**
(:func:`affine_grid`, :func:`homography_grid`) and the **sampler** (:func:`grid_sample`),
together with their backward passes written out by hand (:func:`grid_sample_backward`,
:func:`affine_grid_backward`). Everything follows PyTorch's
``torch.nn.functional.affine_grid`` / ``grid_sample`` exactly (same argument order, same
shapes, same numbers), so the two can be compared line by line; only NumPy is used.

The conventions (shapes, normalised coordinates and ``align_corners``, which way θ maps)
are those of PyTorch, written out in :mod:`stn_course.conventions`: read it first.

Padding (where the grid points outside the input): ``"zeros"`` reads zeros, ``"border"``
repeats the edge pixels, ``"reflection"`` mirrors the image at its border (about the
corner pixel centres for ``align_corners=True``, about the outer edges for ``False``).

How the sampler works
---------------------
Grid coordinates become pixel coordinates (:func:`unnormalise`), the padding mode
moves them back into the image where needed (:func:`_clip_coordinates`,
:func:`_reflect_coordinates`), and each point is read from its four neighbouring pixels
with bilinear weights (:func:`_bilinear_weights`). Everything is vectorised over all
points at once: the images get a frame of zeros (so "zeros" padding needs no special
case), are flattened, and the four neighbours are read with one array of flat indices.
The only Python loops run over channels and over the four neighbours.

Huge and non-finite coordinates never reach an index: every position is clamped into
the framed image first, in the input's dtype, as PyTorch's CPU kernel does. A coordinate
that overflows (1e308, or 5000 in float16 on a 28-pixel image) becomes ±inf; "zeros"
padding reads 0 there (and at NaN); "border" reads the far edge pixel for ±inf and pixel
0 for NaN; "reflection" has no remainder for inf or NaN and reads pixel 0. These are
PyTorch's answers wherever PyTorch gives a finite one; where it gives NaN ("zeros" and
bilinear at an infinite or NaN point, whose weights are NaN) this module reads the
padding value 0 instead.

Where an output reads, in input pixels, for pictures: :mod:`stn_course.coordinates`.
"""
from __future__ import annotations

from typing import Any, NamedTuple, Tuple, Union

import numpy as np

# The argument checks (every public function fails the same clear way), shared with
# parameterisation.py, under the names the functions below use (notebook 01 quotes them).
from .array_checks import ArrayLike, Size
from .array_checks import as_float_array as _as_float_array
from .array_checks import check_batch as _check_batch
from .array_checks import check_input_and_grid as _check_input_and_grid
from .array_checks import check_matrices as _check_matrices
from .array_checks import check_sampling_options as _check_sampling_options
from .array_checks import check_shape as _check_shape
from .array_checks import check_size as _check_size
from .conventions import MIN_HOMOGENEOUS_W

__all__ = [
    "affine_grid",
    "affine_grid_backward",
    "homography_grid",
    "grid_sample",
    "grid_sample_backward",
    "normalise",
    "unnormalise",
]


# ---------------------------------------------------------------------------------------
# Grid generators
# ---------------------------------------------------------------------------------------

def _base_coordinates(steps: int, align_corners: bool) -> np.ndarray:
    """Normalised coordinates of the ``steps`` pixel centres along one axis (float64).

    ``align_corners=True`` puts the first and last centres on -1 and +1; ``False`` puts the
    outer *edges* there, which pulls the centres in by half a pixel: ``* (steps-1)/steps``.
    """
    if steps == 1:
        return np.zeros(1)  # a single pixel sits in the middle, in both conventions
    coords = np.linspace(-1.0, 1.0, steps)
    if not align_corners:
        coords = coords * (steps - 1) / steps
    return coords


def _base_grid(height: int, width: int, align_corners: bool, dtype: np.dtype) -> np.ndarray:
    """Homogeneous output coordinates ``(H, W, 3)``: ``[x, y, 1]`` at every output pixel."""
    base = np.empty((height, width, 3), dtype=dtype)
    base[..., 0] = _base_coordinates(width, align_corners)[None, :]
    base[..., 1] = _base_coordinates(height, align_corners)[:, None]
    base[..., 2] = 1
    return base


def affine_grid(theta: ArrayLike, size: Size, align_corners: bool = False) -> np.ndarray:
    """The sampling grid of an affine transform, like ``torch.nn.functional.affine_grid``.

    Each output pixel's normalised coordinates ``(x, y)`` are mapped through θ:
    ``(x_in, y_in) = θ @ (x, y, 1)``, the point of the input that output pixel shows.

    Args:
        theta: ``(N, 2, 3)`` float array, OUTPUT -> INPUT, in normalised coordinates.
        size: the output size ``(N, C, H, W)``; C is ignored (as in PyTorch).
        align_corners: whether -1 and +1 are the centres (True) or the outer edges (False)
            of the corner pixels.

    Returns:
        grid ``(N, H, W, 2)`` of the same dtype as ``theta``; ``grid[n, i, j] = (x, y)``.
    """
    theta = _check_matrices(theta, "theta", rows=2)
    n, _, height, width = _check_size(size)
    _check_batch(n, theta.shape[0], "theta")
    base = _base_grid(height, width, align_corners, theta.dtype).reshape(1, height * width, 3)
    # (1, HW, 3) @ (N, 3, 2): every output pixel's [x, y, 1] times θᵀ, for all N at once.
    # A huge θ (say 3e37 in float32) may overflow to ±inf, as in PyTorch: grid_sample
    # reads such points as padding.
    with np.errstate(over="ignore", invalid="ignore"):
        grid = np.matmul(base, theta.transpose(0, 2, 1))
    return grid.reshape(n, height, width, 2)


def affine_grid_backward(grad_grid: ArrayLike, size: Size, align_corners: bool = False) -> np.ndarray:
    """Gradient of a loss with respect to θ, given its gradient with respect to the grid.

    ``grid[n, p] = θ[n] @ base[p]`` is linear in θ, so
    ``dL/dθ[n] = Σ_p dL/dgrid[n, p] ⊗ base[p]`` (an outer product summed over pixels).

    Args:
        grad_grid: ``(N, H, W, 2)`` float array, dL/dgrid.
        size: the output size ``(N, C, H, W)`` that was passed to :func:`affine_grid`.
        align_corners: as passed to :func:`affine_grid`.

    Returns:
        grad_theta ``(N, 2, 3)``, of the dtype of ``grad_grid``.
    """
    grad_grid = _as_float_array(grad_grid, "grad_grid")
    n, _, height, width = _check_size(size)
    _check_shape(grad_grid, "grad_grid", (height, width, 2), f"(N, {height}, {width}, 2) to match size")
    _check_batch(n, grad_grid.shape[0], "grad_grid")
    base = _base_grid(height, width, align_corners, grad_grid.dtype).reshape(height * width, 3)
    # (N, 2, HW) @ (HW, 3) -> (N, 2, 3)
    return np.matmul(grad_grid.reshape(n, height * width, 2).transpose(0, 2, 1), base)


def homography_grid(matrix: ArrayLike, size: Size, align_corners: bool = False) -> np.ndarray:
    """The sampling grid of a projective transform (a homography).

    Each output pixel's normalised ``(x, y)`` is mapped through the 3x3 matrix in
    homogeneous coordinates and then divided by the third coordinate::

        (x', y', w') = matrix @ (x, y, 1)        grid = (x' / w', y' / w')

    The matrix maps OUTPUT coordinates to INPUT coordinates, like θ, and works in the same
    normalised coordinates (see the module docstring for ``align_corners``). A matrix with
    last row ``[0, 0, 1]`` is an affine transform: ``w' = 1`` and the grid is that of
    :func:`affine_grid` with ``θ = matrix[:, :2]``. The matrix is defined up to scale.

    Args:
        matrix: ``(N, 3, 3)`` float array, OUTPUT -> INPUT.
        size: the output size ``(N, C, H, W)``.
        align_corners: as for :func:`affine_grid`.

    Returns:
        grid ``(N, H, W, 2)`` of the dtype of ``matrix``.

    Where ``|w'| < MIN_HOMOGENEOUS_W`` the output pixel looks at (or near) the horizon of
    the transform, a point at infinity. ``w'`` is then clamped to ``±MIN_HOMOGENEOUS_W``
    with its sign kept (``+0`` counts as positive), so the pixel reads a point far outside
    the input, i.e. padding, and the grid stays finite. The torch grid generator
    (:func:`stn_course.geometry.projective_grid`) does the same: a transformer that is
    being trained must not stop with an error (or NaN gradients) because one predicted
    matrix put its horizon through the output.
    """
    matrix = _check_matrices(matrix, "matrix", rows=3)
    n, _, height, width = _check_size(size)
    _check_batch(n, matrix.shape[0], "matrix")
    base = _base_grid(height, width, align_corners, matrix.dtype).reshape(1, height * width, 3)
    with np.errstate(over="ignore", invalid="ignore"):  # a huge matrix: ±inf, read as padding
        projected = np.matmul(base, matrix.transpose(0, 2, 1))  # (N, HW, 3): x', y', w'
        w = projected[..., 2:]
        w = np.where(np.abs(w) < MIN_HOMOGENEOUS_W, np.copysign(w.dtype.type(MIN_HOMOGENEOUS_W), w), w)
        return (projected[..., :2] / w).reshape(n, height, width, 2)


# ---------------------------------------------------------------------------------------
# From grid coordinates to pixel coordinates, with the padding modes
# ---------------------------------------------------------------------------------------
# Each helper returns the new coordinate and, for the backward pass, the derivative of the
# new coordinate with respect to the old one. The formulas and their order of operations
# follow PyTorch's CPU kernel, so that even float32 results agree to the last few bits.

def _unnormalise_scale(size: int, align_corners: bool, dtype: Any = np.float64) -> Any:
    """d pixel / d x of :func:`unnormalise`: (size - 1) / 2 or size / 2 pixels per unit."""
    return dtype((size - 1) / 2) if align_corners else dtype(size / 2)


def unnormalise(coord: ArrayLike, size: int, align_corners: bool) -> np.ndarray:
    """Normalised [-1, 1] -> pixel coordinates along an axis of ``size`` pixels, as grid_sample does.

    ``align_corners=True``:  ``((x + 1) / 2) * (size - 1)``: -1 and +1 are pixel centres 0
    and size - 1. ``False``: ``((x + 1) * size - 1) / 2``: -1 and +1 are the outer edges,
    pixel coordinates -0.5 and size - 0.5. Keeps a float dtype (integers become float64);
    the order of operations is PyTorch's, so float32 results agree to the last bits.
    """
    coord = np.asarray(coord)
    if not np.issubdtype(coord.dtype, np.floating):
        coord = coord.astype(np.float64)
    dtype = coord.dtype.type
    # |x| near the float maximum overflows to ±inf (as in PyTorch): still "outside", and
    # the padding modes handle it (inf - inf gives NaN, which they handle too).
    with np.errstate(over="ignore", invalid="ignore"):
        pixel = coord + dtype(1)  # a new array, so the next steps may work in place
        pixel *= _unnormalise_scale(size, align_corners, dtype)
        if not align_corners:
            pixel -= dtype(0.5)
    return pixel


def normalise(pixel: ArrayLike, size: int, align_corners: bool) -> np.ndarray:
    """Pixel -> normalised coordinates along an axis of ``size`` pixels: the inverse of
    :func:`unnormalise` (float64). ``True``: ``2 p / (size - 1) - 1``; ``False``: ``(2 p + 1) / size - 1``."""
    pixel = np.asarray(pixel, dtype=np.float64)
    if align_corners:
        return 2.0 * pixel / (size - 1) - 1.0
    return (2.0 * pixel + 1.0) / size - 1.0


def _clip_coordinates(coord: np.ndarray, size: int) -> Tuple[np.ndarray, np.ndarray]:
    """Border padding: clamp to the pixel centres ``[0, size - 1]``.

    The derivative is 1 strictly inside and 0 where the point was clamped; PyTorch also
    counts a point lying exactly on 0 or size - 1 as clamped (derivative 0). ``±inf`` goes
    to the far edge and NaN to 0, as in PyTorch's CPU kernel: np.fmax and np.fmin ignore
    NaN (np.clip would keep it, and a NaN position has no pixel index).
    """
    clipped = np.fmin(np.fmax(coord, coord.dtype.type(0)), coord.dtype.type(size - 1))
    inside = (coord > 0) & (coord < size - 1)
    return clipped, inside.astype(coord.dtype)


def _reflect_coordinates(
    coord: np.ndarray, size: int, align_corners: bool
) -> Tuple[np.ndarray, np.ndarray]:
    """Reflection padding: mirror the coordinate back into the image.

    The image is mirrored about ``low`` and ``high``: the corner pixel centres ``0`` and
    ``size - 1`` for ``align_corners=True``, the outer edges ``-0.5`` and ``size - 0.5`` for
    False. Mirroring twice is a shift by ``2 (high - low)``, so the mirrored image repeats
    with that period: keep the remainder ``extra`` of ``|coord - low|``, and if it lies in
    the mirrored half of the period, fold it back. Far-away points work the same way.

    The derivative is +1 or -1: -1 when the point ended up mirrored an odd number of times.
    An infinite (or NaN) coordinate has no remainder: it comes out NaN, which the final
    clamp (:func:`_clip_coordinates`) sends to pixel 0, exactly as PyTorch does.
    """
    dtype = coord.dtype.type
    low = dtype(0.0) if align_corners else dtype(-0.5)
    period = dtype(2 * (size - 1)) if align_corners else dtype(2 * size)
    if period == 0:  # a single pixel with align_corners=True: everything maps onto it
        return np.zeros_like(coord), np.zeros_like(coord)
    with np.errstate(over="ignore", invalid="ignore"):  # inf - inf: NaN, handled by the clamp
        shifted = coord - low
        distance = np.abs(shifted)
        extra = distance - np.trunc(distance / period) * period
        folded = period - extra
    flip = extra > folded
    reflected = np.where(flip, folded, extra) + low
    # d|c|/dc = sign(c), and folding flips the sign once more.
    sign = np.where(flip ^ (shifted < 0), dtype(-1), dtype(1))
    return reflected, sign


def _source_coordinates(
    coord: np.ndarray, size: int, padding_mode: str, align_corners: bool
) -> Tuple[np.ndarray, Union[np.ndarray, float]]:
    """Grid coordinate -> pixel coordinate to read from, and d(pixel coordinate)/d(grid).

    For ``"zeros"`` the coordinate may lie anywhere (the sampler reads zeros outside);
    for ``"border"`` and ``"reflection"`` it ends up within ``[0, size - 1]``.
    """
    pixel = unnormalise(coord, size, align_corners)
    derivative = _unnormalise_scale(size, align_corners, coord.dtype.type)
    if padding_mode == "border":
        pixel, inside = _clip_coordinates(pixel, size)
        return pixel, inside * derivative
    if padding_mode == "reflection":
        pixel, sign = _reflect_coordinates(pixel, size, align_corners)
        # With align_corners=False the mirror lines are the outer edges, half a pixel
        # beyond the last centre, so a final clamp to the centres is still needed.
        pixel, inside = _clip_coordinates(pixel, size)
        return pixel, sign * inside * derivative
    return pixel, derivative


# ---------------------------------------------------------------------------------------
# Reading pixels: a frame of zeros around each image, and flat indices into it
# ---------------------------------------------------------------------------------------

#: Rows/columns of zeros around every image. Two, so that a point moved onto the frame
#: (see _keep_in_frame) has all four neighbours in the frame: it then reads zeros and
#: gets a zero gradient, exactly as a point anywhere outside the image must.
_FRAME = 2


class _FramedImages(NamedTuple):
    """A batch ``(N, C, H, W)`` with a zero frame around every image, flattened.

    Image plane ``(n, c)`` is the block ``flat[(n * C + c) * plane:][:plane]``, rows of
    ``width`` values. So moving one pixel right is ``+1`` in ``flat``, one pixel down is
    ``+width`` and the same pixel one channel further is ``+plane``.
    """

    flat: np.ndarray
    channels: int
    height: int  # with the frame: H + 2 * _FRAME
    width: int  # with the frame: W + 2 * _FRAME

    @property
    def plane(self) -> int:
        return self.height * self.width


def _add_frame(input: np.ndarray) -> _FramedImages:
    """Surround every image with zeros: "zeros" padding becomes reading, with no masks."""
    n, c, height, width = input.shape
    framed = np.zeros((n, c, height + 2 * _FRAME, width + 2 * _FRAME), dtype=input.dtype)
    framed[:, :, _FRAME:-_FRAME, _FRAME:-_FRAME] = input
    return _FramedImages(framed.reshape(-1), c, framed.shape[2], framed.shape[3])


def _remove_frame(flat: np.ndarray, images: _FramedImages) -> np.ndarray:
    """The inverse of _add_frame for an array laid out like ``images.flat``."""
    batch = flat.size // max(images.channels * images.plane, 1)  # also for N = 0 or C = 0
    framed = flat.reshape(batch, images.channels, images.height, images.width)
    return framed[:, :, _FRAME:-_FRAME, _FRAME:-_FRAME].copy()


def _keep_in_frame(pixel: np.ndarray, size: int) -> np.ndarray:
    """Move points that are far outside onto the zero frame (in place; for "zeros" padding).

    A point further than one pixel outside reads only zeros, and so does the same point
    moved to -2 or ``size``, where both its neighbours (-2, -1 or size, size + 1) are in
    the frame; this keeps every index in bounds (and avoids integer overflow for
    coordinates like 1e30 or inf). Points that read any real pixel are not moved. A NaN
    point (no position at all) goes to -2 and reads zeros, the padding value: np.fmax
    ignores NaN, where np.clip would keep it (and a NaN index is INT_MIN).
    """
    np.fmax(pixel, pixel.dtype.type(-2), out=pixel)
    return np.fmin(pixel, pixel.dtype.type(size), out=pixel)


def _pixel_index(row: np.ndarray, col: np.ndarray, images: _FramedImages) -> np.ndarray:
    """Index in ``images.flat`` of pixel ``(row, col)`` of channel 0; all arrays ``(N, P)``.

    ``row`` and ``col`` hold whole numbers (as floats) from -_FRAME to size + 1.
    """
    # row * width + col is computed in floating point and converted to integers once,
    # which is cheaper than converting row and col. Whole numbers are exact in float32
    # below 2**24, enough for framed images of up to 4092 x 4092 pixels; beyond, float64.
    exact_below = 2.0 ** (np.finfo(row.dtype).nmant + 1)
    position = row.astype(row.dtype if images.plane < exact_below else np.float64)
    position *= images.width
    position += col
    index = position.astype(np.intp)
    # Image n starts at n * C * plane, and its pixel (0, 0) is _FRAME rows and columns in.
    starts = np.arange(row.shape[0], dtype=np.intp) * (images.channels * images.plane)
    index += (starts + _FRAME * images.width + _FRAME)[:, None]
    return index


def _neighbour_offsets(images: _FramedImages) -> Tuple[int, int, int, int]:
    """Flat-index offsets of the nw, ne, sw, se neighbours from the nw one."""
    return 0, 1, images.width, images.width + 1


def _read(flat: np.ndarray, index: np.ndarray, offset: int = 0, out: Any = None) -> np.ndarray:
    """``flat[index + offset]``, without building the array ``index + offset``.

    ``flat[offset:]`` is the same buffer seen from ``offset`` elements later. The frame
    keeps every index in bounds, so the mode never changes an index; "wrap" is simply
    NumPy's fastest one, and unlike the default "raise" it writes ``out`` directly.
    """
    return np.take(flat[offset:], index, out=out, mode="wrap")


def _scatter_add(flat: np.ndarray, index: np.ndarray, values: np.ndarray, offset: int = 0) -> None:
    """``flat[index + offset] += values``, adding up values that land on the same pixel.

    A plain ``flat[index] += values`` would keep only one of them. np.add.at on 1-D arrays
    of one dtype is NumPy's fast path (NumPy >= 1.25): here about twice as fast as the
    np.bincount alternative, and it adds in the input's dtype, as PyTorch does.
    """
    np.add.at(flat[offset:], index.ravel(), values.ravel())


def _split_cell(x: np.ndarray, y: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The pixel cell around each point: its top-left pixel ``(x0, y0)`` and the point's
    fractional position ``(fx, fy)`` in [0, 1) inside the cell.

    ``fx`` and ``fy`` are computed in place, in the memory of ``x`` and ``y`` (which are
    not needed afterwards): these arrays are as big as the output, and every one that is
    not allocated saves time.
    """
    x0 = np.floor(x)
    y0 = np.floor(y)
    return x0, y0, np.subtract(x, x0, out=x), np.subtract(y, y0, out=y)


def _bilinear_weights(fx: np.ndarray, fy: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Weights of the nw, ne, sw, se neighbours of a point at ``(x0 + fx, y0 + fy)``.

    The point is ``fx`` of the way from column x0 (west) to x0 + 1 (east), so the east
    column gets weight ``fx`` and the west one ``1 - fx``: the nearer, the heavier. Same
    for rows (north = y0). These are the paper's kernel
    ``max(0, 1 - |x - m|) * max(0, 1 - |y - n|)`` at the four pixels where it is not zero,
    and they sum to 1.
    """
    west, north = 1 - fx, 1 - fy
    return north * west, north * fx, fy * west, fy * fx


def _source_pixels(
    input: np.ndarray, grid: np.ndarray, padding_mode: str, align_corners: bool
) -> Tuple[np.ndarray, np.ndarray, Any, Any]:
    """Pixel coordinates ``x, y`` ``(N, P)`` to read, and their derivatives w.r.t. the grid."""
    n, _, height, width = input.shape
    # The grid follows the input's dtype, so that float32 images are sampled in float32.
    # (Explicit sizes rather than -1: an empty batch, N = 0, has no -1 to infer.)
    with np.errstate(over="ignore"):  # 1e308 as float16 is inf, which the padding handles
        grid = grid.astype(input.dtype, copy=False).reshape(n, grid.shape[1] * grid.shape[2], 2)
    x, dx = _source_coordinates(grid[..., 0], width, padding_mode, align_corners)
    y, dy = _source_coordinates(grid[..., 1], height, padding_mode, align_corners)
    if padding_mode == "zeros":  # the other modes already stay within the image
        _keep_in_frame(x, width)
        _keep_in_frame(y, height)
    return x, y, dx, dy


def _channels_second(by_channel: np.ndarray, height: int, width: int) -> np.ndarray:
    """``(C, N, P)`` -> ``(N, C, H, W)``, contiguous."""
    c, n, _ = by_channel.shape
    return np.ascontiguousarray(by_channel.transpose(1, 0, 2)).reshape(n, c, height, width)


def grid_sample(
    input: ArrayLike,
    grid: ArrayLike,
    mode: str = "bilinear",
    padding_mode: str = "zeros",
    align_corners: bool = False,
) -> np.ndarray:
    """Read ``input`` at the grid's points, like ``torch.nn.functional.grid_sample`` (4-D).

    ``output[n, c, i, j]`` is the value of image ``input[n, c]`` at the normalised point
    ``grid[n, i, j] = (x, y)``, interpolated from its neighbouring pixels.

    Args:
        input: ``(N, C, H_in, W_in)`` float array.
        grid: ``(N, H_out, W_out, 2)`` float array of normalised ``(x, y)``; -1 and +1 are
            the corner pixel centres (``align_corners=True``) or the outer edges of the
            corner pixels (``False``). It is cast to the dtype of ``input``. Huge, infinite
            and NaN coordinates are allowed (see the module docstring); N may be 0.
        mode: ``"bilinear"`` (weighted mean of the 4 neighbours) or ``"nearest"`` (the
            nearest pixel; exact halves round to even, like PyTorch and ``np.rint``).
        padding_mode: what is read outside the image: ``"zeros"``, ``"border"`` (the
            nearest edge pixel) or ``"reflection"`` (the image mirrored at its border).
        align_corners: see above and the module docstring.

    Returns:
        ``(N, C, H_out, W_out)`` array of the dtype of ``input``.
    """
    input, grid = _check_input_and_grid(input, grid)
    _check_sampling_options(mode, padding_mode)
    n, c, _, _ = input.shape
    out_h, out_w = grid.shape[1:3]
    x, y, _, _ = _source_pixels(input, grid, padding_mode, align_corners)
    images = _add_frame(input)
    # Channel-major output: every channel's result is one contiguous block.
    output = np.empty((c, n, x.shape[1]), dtype=input.dtype)

    if mode == "nearest":
        index = _pixel_index(np.rint(y), np.rint(x), images)
        for channel in range(c):
            _read(images.flat, index, channel * images.plane, out=output[channel])
        return _channels_second(output, out_h, out_w)

    x0, y0, fx, fy = _split_cell(x, y)
    index = _pixel_index(y0, x0, images)
    offsets = _neighbour_offsets(images)
    weights = _bilinear_weights(fx, fy)
    scratch = np.empty_like(fx)  # reused for every channel and neighbour
    for channel in range(c):
        start = channel * images.plane
        # Σ neighbour * weight, in PyTorch's order (nw + ne + sw + se). A plain weighted
        # sum, not two lerps: an inf pixel then gives inf as in PyTorch (a lerp computes
        # inf - inf = NaN), and NaN only where PyTorch does too (inf times a zero weight).
        total = _read(images.flat, index, start + offsets[0], out=output[channel])
        total *= weights[0]
        for offset, weight in zip(offsets[1:], weights[1:]):
            total += np.multiply(_read(images.flat, index, start + offset, out=scratch), weight, out=scratch)
    return _channels_second(output, out_h, out_w)


def grid_sample_backward(
    input: ArrayLike,
    grid: ArrayLike,
    grad_output: ArrayLike,
    mode: str = "bilinear",
    padding_mode: str = "zeros",
    align_corners: bool = False,
) -> Tuple[np.ndarray, np.ndarray]:
    """Gradients of a loss with respect to ``input`` and ``grid``, given dL/d output.

    Written out by hand; the numbers match PyTorch's autograd of ``grid_sample``:

    * **input**: each output value is ``Σ_neighbours weight * pixel``, so each of the four
      pixels it read receives ``weight * dL/doutput`` (a scatter-add: many outputs can read
      the same pixel).
    * **grid**: along x, the bilinear value is a straight line between the west and east
      neighbours, so its slope is ``east - west`` (the two rows mixed by their y weights);
      likewise along y. The chain rule then multiplies by d(pixel coordinate)/d(grid): the
      unnormalisation scale, times 0 where border/reflection clamped the point, times -1
      where reflection mirrored it. ``"nearest"`` is piecewise constant: its grid
      gradient is zero (as in PyTorch).

    Points exactly on a pixel position or on a clamp/mirror line sit on a kink; like PyTorch
    this picks one side (see the helpers above).

    Args:
        input, grid, mode, padding_mode, align_corners: as passed to :func:`grid_sample`.
        grad_output: ``(N, C, H_out, W_out)``, dL/d output.

    Returns:
        ``(grad_input, grad_grid)`` with the shapes and dtypes of ``input`` and ``grid``.
    """
    input, grid = _check_input_and_grid(input, grid)
    _check_sampling_options(mode, padding_mode)
    grad_output = _as_float_array(grad_output, "grad_output")
    n, c, _, _ = input.shape
    expected = (n, c) + grid.shape[1:3]
    if grad_output.shape != expected:
        raise ValueError(f"grad_output must have shape {expected} (N, C, H_out, W_out), got {grad_output.shape}")
    grad_out = grad_output.astype(input.dtype, copy=False).reshape(n, c, expected[2] * expected[3])
    x, y, dx, dy = _source_pixels(input, grid, padding_mode, align_corners)
    images = _add_frame(input)
    grad_flat = np.zeros_like(images.flat)  # dL/d(framed input); the frame is cut off at the end
    if mode == "nearest":
        _nearest_backward(grad_flat, images, x, y, grad_out)
        return _remove_frame(grad_flat, images), np.zeros_like(grid)
    grad_x, grad_y = _bilinear_backward(grad_flat, images, x, y, grad_out)
    grad_grid = np.empty(grid.shape, dtype=grid.dtype)
    # Chain rule through _source_pixels: d(pixel x)/d(grid x) is dx, and likewise for y.
    with np.errstate(invalid="ignore", over="ignore"):  # inf pixels: inf - inf, as in PyTorch
        grad_grid[..., 0] = (grad_x * dx).reshape(grid.shape[:3])
        grad_grid[..., 1] = (grad_y * dy).reshape(grid.shape[:3])
    return _remove_frame(grad_flat, images), grad_grid


def _nearest_backward(grad_flat: np.ndarray, images: _FramedImages, x: np.ndarray, y: np.ndarray,
                      grad_out: np.ndarray) -> None:
    """Add dL/d(framed input) of "nearest" sampling to ``grad_flat``; ``grad_out`` is ``(N, C, P)``."""
    index = _pixel_index(np.rint(y), np.rint(x), images)
    for channel in range(images.channels):
        _scatter_add(grad_flat, index, grad_out[:, channel], channel * images.plane)


def _bilinear_backward(grad_flat: np.ndarray, images: _FramedImages, x: np.ndarray, y: np.ndarray,
                       grad_out: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Add dL/d(framed input) of bilinear sampling to ``grad_flat``, and return dL/d(pixel x)
    and dL/d(pixel y) ``(N, P)``, summed over channels. ``grad_out`` is ``(N, C, P)``."""
    x0, y0, fx, fy = _split_cell(x, y)
    weights = _bilinear_weights(fx, fy)
    west, north = 1 - fx, 1 - fy  # the weights of the west column and of the north row
    index = _pixel_index(y0, x0, images)
    offsets = _neighbour_offsets(images)
    grad_x = np.zeros_like(fx)
    grad_y = np.zeros_like(fy)
    for channel in range(images.channels):
        upstream = grad_out[:, channel]
        start = channel * images.plane
        for offset, weight in zip(offsets, weights):
            _scatter_add(grad_flat, index, upstream * weight, start + offset)
        nw, ne, sw, se = (_read(images.flat, index, start + offset) for offset in offsets)
        # Slopes of the bilinear surface: east minus west, mixed by the row weights; and
        # south minus north, mixed by the column weights.
        with np.errstate(invalid="ignore"):  # inf pixels: inf - inf = NaN, as in PyTorch
            grad_x += upstream * ((ne - nw) * north + (se - sw) * fy)
            grad_y += upstream * ((sw - nw) * west + (se - ne) * fx)
    return grad_x, grad_y
