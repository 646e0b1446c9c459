"""θ from readable parameters and back: :func:`theta_from_params` builds an affine θ from
an angle, scales, a shear and a translation (and says which way each moves the picture);
:func:`params_from_theta` is its exact inverse; :func:`zoom_from_theta` is the course's one
definition of zoom. NumPy only; the torch code (:mod:`stn_course.inspection`,
:mod:`stn_course.health`) reads trained θ with these.
"""
from __future__ import annotations

from typing import Any, Dict, Tuple, Union

import numpy as np

from .array_checks import ArrayLike, as_float_array, check_finite

__all__ = ["theta_from_params", "params_from_theta", "zoom_from_theta"]


def _cos_sin_degrees(angle: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """cos and sin of an angle in degrees, exact at multiples of 90° (cos 90° is 0, not 6e-17)."""
    radians = np.deg2rad(angle)
    cos, sin = np.cos(radians), np.sin(radians)
    quarter = np.remainder(angle, 90) == 0
    turns = np.remainder(np.round(angle / 90), 4)  # 0, 1, 2, 3 quarter turns
    exact_cos = np.choose(turns.astype(int), [1.0, 0.0, -1.0, 0.0])
    exact_sin = np.choose(turns.astype(int), [0.0, 1.0, 0.0, -1.0])
    return np.where(quarter, exact_cos, cos), np.where(quarter, exact_sin, sin)


def _pair(value: Any, name: str) -> Tuple[np.ndarray, np.ndarray]:
    """``(a, b)`` from a pair, or ``(v, v)`` from a single value (e.g. an isotropic scale).

    The two elements may be numbers or ``(N,)`` arrays, e.g. ``(np.array([1, 2]), 1.0)``.
    """
    if not isinstance(value, (tuple, list)):
        value = np.asarray(value, dtype=np.float64)
        if value.ndim == 0:
            return value, value
    if len(value) != 2:
        raise ValueError(f"{name} must be a number or a pair (x, y), got {value!r}")
    return np.asarray(value[0], dtype=np.float64), np.asarray(value[1], dtype=np.float64)


def theta_from_params(
    angle: Union[float, ArrayLike] = 0.0,
    scale: Union[float, Tuple[Any, Any]] = (1.0, 1.0),
    shear: Union[float, ArrayLike] = 0.0,
    translation: Tuple[Any, Any] = (0.0, 0.0),
) -> np.ndarray:
    """θ from an angle, scales, a shear and a translation.

    The decomposition (with ``c = cos(angle)``, ``s = sin(angle)``, angle in degrees)::

        A = R(angle) @ Shear(shear) @ diag(scale_x, scale_y)
        R = [[c, -s],      Shear = [[1, shear],
             [s,  c]]               [0, 1    ]]

        θ = [A | t] = [[c*sx, (c*shear - s)*sy, tx],
                       [s*sx, (s*shear + c)*sy, ty]]

    so an output point ``p`` (normalised coordinates) reads the input at
    ``A @ p + t``: it is scaled, then sheared, then rotated, then translated.

    Because θ maps OUTPUT coordinates to INPUT coordinates, the image seen in the output
    moves the *opposite* way to these parameters:

    * ``scale < 1`` zooms in: the output shows a smaller region of the input, magnified
      (``scale = 0.5`` shows the central half, twice as large); ``scale > 1`` zooms out.
    * ``tx > 0`` moves the sampled window to the right, so the content appears to move
      LEFT (by ``tx / 2`` of the image width per unit); ``ty > 0`` makes it move UP.
    * ``angle > 0``: with x to the right and y DOWN (image coordinates, ``imshow`` with the
      origin upper-left), ``R`` turns the sampling grid CLOCKWISE on screen, so the image
      content appears rotated COUNTER-CLOCKWISE by ``angle`` (like ``PIL.Image.rotate``):
      ``angle = 90`` gives ``[[0, -1, 0], [1, 0, 0]]``, which turns a square image exactly
      as ``np.rot90`` does.
    * ``shear > 0``: output row ``y`` reads input columns shifted by ``shear * y``, so
      lower rows read further right and the content leans to the left going down.

    Args:
        angle: degrees.
        scale: ``(scale_x, scale_y)``, or one number for both.
        shear: horizontal shear factor (``Shear[0, 1]``).
        translation: ``(tx, ty)`` in normalised coordinates (2 = the whole image).

    Each argument (and each element of ``scale`` and ``translation``) may also be an array
    of shape ``(N,)``; they broadcast, and the result is then ``(N, 2, 3)``.

    Returns:
        θ ``(2, 3)`` float64, or ``(N, 2, 3)`` for batched arguments.

    (Longer than a screen only because of this docstring: the directions above are what
    learners get wrong, so they stay here, beside the code; the code is 20 lines.)
    """
    sx, sy = _pair(scale, "scale")
    tx, ty = _pair(translation, "translation")
    try:
        values = np.broadcast_arrays(np.asarray(angle, dtype=np.float64), sx, sy,
                                     np.asarray(shear, dtype=np.float64), tx, ty)
    except ValueError:
        raise ValueError("angle, scale, shear and translation must broadcast to one batch shape (N,)") from None
    angle, sx, sy, shear, tx, ty = values
    if angle.ndim > 1:
        raise ValueError(f"parameters must be numbers or 1-D arrays (N,), got shape {angle.shape}")
    for name, v in zip(("angle", "scale", "scale", "shear", "translation", "translation"), values):
        check_finite(v, name)
    cos, sin = _cos_sin_degrees(angle)
    theta = np.empty(angle.shape + (2, 3), dtype=np.float64)
    theta[..., 0, 0] = cos * sx
    theta[..., 0, 1] = (cos * shear - sin) * sy
    theta[..., 0, 2] = tx
    theta[..., 1, 0] = sin * sx
    theta[..., 1, 1] = (sin * shear + cos) * sy
    theta[..., 1, 2] = ty
    return theta


def params_from_theta(theta: ArrayLike) -> Dict[str, Any]:
    """The parameters of :func:`theta_from_params` that give ``theta``: its exact inverse.

    ``A = R @ Shear @ diag(sx, sy)`` is a QR decomposition of θ's 2x2 part (rotation times
    upper-triangular), made unique by taking ``scale_x > 0`` and ``angle`` in (-180, 180]:

    * the first column of A is ``sx * (c, s)``: ``sx = |A[:, 0]|``, ``angle = atan2(A10, A00)``;
    * ``R(-angle) @ A = [[sx, shear * sy], [0, sy]]`` gives ``sy`` (negative for a
      reflection) and ``shear``.

    So ``theta_from_params(**params_from_theta(θ))`` returns θ (up to rounding) for every
    θ, and ``params_from_theta(theta_from_params(...))`` returns the same parameters when
    ``scale_x > 0`` and the angle lies in (-180, 180]. (A negative ``scale_x`` is the same
    θ as ``angle + 180`` with both scales negated.) For a singular θ a parameter that has
    no effect is set to 0: the angle when the first column is zero (``scale_x = 0``), the
    shear when ``scale_y = 0``.

    Args:
        theta: ``(2, 3)`` or ``(N, 2, 3)`` float array.

    Returns:
        dict with ``angle`` (degrees), ``scale`` (tuple ``(sx, sy)``), ``shear`` and
        ``translation`` (tuple ``(tx, ty)``); floats for a (2, 3) θ, ``(N,)`` arrays for a batch.
    """
    theta = as_float_array(theta, "theta")
    if theta.shape[-2:] != (2, 3) or theta.ndim not in (2, 3):
        raise ValueError(f"theta must have shape (2, 3) or (N, 2, 3), got {theta.shape}")
    check_finite(theta, "theta")
    a = theta.astype(np.float64)
    a00, a01, a10, a11 = a[..., 0, 0], a[..., 0, 1], a[..., 1, 0], a[..., 1, 1]
    sx = np.hypot(a00, a10)
    has_angle = sx > 0
    safe_sx = np.where(has_angle, sx, 1.0)  # avoids 0/0; those entries are replaced below
    cos = np.where(has_angle, a00 / safe_sx, 1.0)
    sin = np.where(has_angle, a10 / safe_sx, 0.0)
    angle = np.where(has_angle, np.rad2deg(np.arctan2(a10, a00)), 0.0)
    # Undo the rotation: R(-angle) @ A = [[sx, shear * sy], [0, sy]].
    shear_times_sy = cos * a01 + sin * a11
    sy = cos * a11 - sin * a01
    has_shear = sy != 0
    shear = np.where(has_shear, shear_times_sy / np.where(has_shear, sy, 1.0), 0.0)

    def out(v: np.ndarray) -> Any:
        return float(v) if theta.ndim == 2 else v

    return {
        "angle": out(angle),
        "scale": (out(sx), out(sy)),
        "shear": out(shear),
        "translation": (out(a[..., 0, 2]), out(a[..., 1, 2])),
    }


def zoom_from_theta(theta: ArrayLike) -> Any:
    """The zoom of θ: ``1 / sqrt(|det A|)`` of its 2x2 part ``A``, the course's one definition.

    Above 1 the output magnifies (it shows a smaller region of the input): θ of
    ``theta_from_params(scale=0.5)`` ("zoom in x2") has zoom 2; below 1 it shrinks the input
    onto the padding; 1 keeps the size (rotation, shear and translation do not change it).
    It is the linear magnification of areas, so a stretch ``scale=(0.5, 2)`` has zoom 1. A
    singular θ (``det A = 0``: every point reads one line) has zoom ``inf``.

    Args:
        theta: ``(2, 3)`` or ``(N, 2, 3)`` (``(2, 2)`` / ``(N, 2, 2)`` also do); a NumPy
            array, a list, or a CPU torch tensor.

    Returns:
        a float for one θ, an ``(N,)`` float64 array for a batch.
    """
    theta = as_float_array(theta, "theta")
    if theta.ndim not in (2, 3) or theta.shape[-2] != 2 or theta.shape[-1] not in (2, 3):
        raise ValueError(f"theta must have shape (2, 3) or (N, 2, 3), got {theta.shape}")
    a = theta[..., :2].astype(np.float64)
    det = np.abs(a[..., 0, 0] * a[..., 1, 1] - a[..., 0, 1] * a[..., 1, 0])
    with np.errstate(divide="ignore"):
        zoom = 1.0 / np.sqrt(det)
    return float(zoom) if theta.ndim == 2 else zoom
