"""Figures of notebook 00 (what is a spatial transformer): a gallery of transforms, each
with its sampled region, sampling points and output, and the bilinear kernel."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
from matplotlib.figure import Figure

from ..plot import GRID_COLOR, OUTSIDE_COLOR, as_hwc, check_hw, clean_axes, draw_image_border, new_figure, \
    set_view_limits, show_image
from .sampling import draw_sampled_region, draw_sampling_grid, transform_image


def plot_transform_gallery(image, named_thetas: dict, align_corners: bool = False,
                           padding_mode: str = "zeros", out_hw: Optional[Sequence[int]] = None) -> Figure:
    """One column per named θ: the input with its sampled region and sampling points (top),
    the output (bottom). ``named_thetas`` maps a title to a (2, 3) θ."""
    img = as_hwc(image)
    h, w = img.shape[:2]
    ho, wo = check_hw(out_hw) if out_hw is not None else (h, w)
    columns = len(named_thetas)
    fig = new_figure((2.6 * columns, 5.4), layout="constrained")
    axes = np.asarray(fig.subplots(2, columns)).reshape(2, columns)
    for (name, theta), ax_in, ax_out in zip(named_thetas.items(), axes[0], axes[1]):
        show_image(ax_in, img, alpha=0.8)
        draw_image_border(ax_in, (h, w))
        draw_sampling_grid(ax_in, theta, (h, w), (ho, wo), align_corners, step=max(1, max(ho, wo) // 6),
                           max_points=0)
        corners = draw_sampled_region(ax_in, theta, (h, w), align_corners, out_hw=(ho, wo))
        set_view_limits(ax_in, (h, w), corners)
        ax_in.set_facecolor(OUTSIDE_COLOR)
        clean_axes(ax_in, name)
        show_image(ax_out, transform_image(img, theta, (ho, wo), align_corners, padding_mode))
        clean_axes(ax_out, "output")
    return fig


def plot_bilinear_kernel() -> Figure:
    """The bilinear kernel ``k(d) = max(0, 1 - |d|)`` in 1-D, and its 2-D product."""
    fig = new_figure((8.0, 3.0), layout="constrained")
    ax_1d, ax_2d = fig.subplots(1, 2)
    d = np.linspace(-2, 2, 401)
    ax_1d.plot(d, np.maximum(0, 1 - np.abs(d)), color=GRID_COLOR, lw=2)
    ax_1d.set(xlabel="distance to the pixel centre (pixels)", ylabel="weight",
              title=r"$k(d) = \max(0, 1 - |d|)$")
    ax_1d.grid(alpha=0.3)
    x, y = np.meshgrid(d, d)
    ax_2d.imshow(np.maximum(0, 1 - np.abs(x)) * np.maximum(0, 1 - np.abs(y)), extent=(-2, 2, 2, -2),
                 cmap="viridis")
    ax_2d.set(title=r"$k(x)\,k(y)$: a pixel's weight around it", xlabel="x", ylabel="y")
    return fig
