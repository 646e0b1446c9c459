"""Conventions shared by the NumPy reference (:mod:`stn_course.sampler`) and the torch
code (:mod:`stn_course.geometry`): those of PyTorch's
``torch.nn.functional.affine_grid`` / ``grid_sample``.

Shapes
------
* images: ``(N, C, H, W)`` (batch, channels, rows, columns), as in PyTorch;
* θ: ``(N, 2, 3)``; a homography: ``(N, 3, 3)``;
* sampling grid: ``(N, H_out, W_out, 2)``; the last axis is ``(x, y)``, i.e. (column, row).

Coordinates
-----------
The grid holds *normalised* coordinates: ``x = -1`` is the left of the input image and
``x = +1`` its right, ``y = -1`` the top and ``y = +1`` the bottom, whatever the image
size. ``align_corners`` says which points exactly -1 and +1 are:

* ``align_corners=True``: the **centres** of the corner pixels. Pixel column ``j`` of a
  ``W``-wide image sits at ``x = -1 + 2 j / (W - 1)``, so ``x_pixel = (x + 1) / 2 * (W - 1)``.
* ``align_corners=False`` (the default, and PyTorch's): the **outer edges** of the corner
  pixels. Pixel column ``j`` sits at ``x = -1 + (2 j + 1) / W``, so
  ``x_pixel = ((x + 1) * W - 1) / 2``. This makes the result independent of the
  resolution: the same θ shows the same region of a 28x28 and of a 56x56 image.

In pixel coordinates the centre of pixel ``(row i, column j)`` is at ``(x=j, y=i)``.

θ maps OUTPUT coordinates to INPUT coordinates (an "inverse warp"): for each output pixel
it says where in the input to read from. That is why every output pixel gets a value
(no holes); bilinear reading then makes the output differentiable with respect to θ.
:func:`stn_course.parameterisation.theta_from_params` builds θ from an angle, scales, a
shear and a translation, and documents which way each one moves the picture.
"""
from __future__ import annotations

from typing import Tuple

#: Interpolation modes understood by ``grid_sample``.
MODES: Tuple[str, ...] = ("bilinear", "nearest")
#: Padding modes understood by ``grid_sample``.
PADDING_MODES: Tuple[str, ...] = ("zeros", "border", "reflection")
#: Smallest ``|w'|`` a homography's divide uses (:func:`stn_course.sampler.homography_grid`,
#: :func:`stn_course.geometry.projective_grid`): smaller values are clamped to it, sign kept.
MIN_HOMOGENEOUS_W: float = 1e-6
