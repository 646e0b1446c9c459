"""Figures of notebook 01 (the NumPy spatial transformer), and the θ view of the θ explorer.

What a transform does, computed with the NumPy reference (:mod:`stn_course.sampler`,
:mod:`stn_course.coordinates`) and drawn with :mod:`stn_course.plot`: the warped image
(:func:`transform_image`), the sampled region and the sampling grid, the θ view
(:func:`plot_theta_view`, :class:`ThetaView`; used by :mod:`stn_course.widgets`),
align_corners, bilinear weights, the padding pitfall, aliasing (:func:`zone_plate`,
:func:`gaussian_blur`) and homographies. :func:`draw_sampled_region`,
:func:`draw_sampling_grid` and :func:`draw_grid_outline` serve the other figures too.

Conventions: those of :mod:`stn_course.conventions`; θ (2x3) maps an OUTPUT location to
the INPUT location it samples from.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Polygon, Rectangle

from .. import sampler
from ..coordinates import bilinear_neighbours, grid_outline_pixels, grid_to_pixels, region_corners, sample_spacing
from ..plot import (GRID_COLOR, OUTSIDE_COLOR, REGION_COLOR, as_hwc, as_theta, check_hw, clean_axes,
                    draw_grid_lines, draw_image_border, draw_outline, draw_region, format_theta, new_figure,
                    set_view_limits, show_image)


# ---------------------------------------------------------------------------
# Images: warped, test patterns, blurred
# ---------------------------------------------------------------------------

def transform_image(image, theta, out_hw: Optional[Sequence[int]] = None, align_corners: bool = False,
                    padding_mode: str = "zeros", mode: str = "bilinear") -> np.ndarray:
    """Warp ``image`` with θ using :mod:`stn_course.sampler`; returns (Ho, Wo, C) float64.

    ``out_hw`` defaults to the input's size.
    """
    img = as_hwc(image)
    th = as_theta(theta)
    ho, wo = check_hw(out_hw) if out_hw is not None else img.shape[:2]
    c = img.shape[2]
    grid = sampler.affine_grid(th[None], (1, c, ho, wo), align_corners=align_corners)
    out = sampler.grid_sample(np.moveaxis(img, -1, 0)[None], grid, mode=mode,
                              padding_mode=padding_mode, align_corners=align_corners)
    return np.moveaxis(np.asarray(out)[0], 0, -1)


def zone_plate(size: int = 256, k: float = 0.5) -> np.ndarray:
    """A zone plate: ``0.5 + 0.5 cos(k π r² / size)``, a ring pattern whose frequency
    grows towards the edges (a classic aliasing test); (size, size) float64 in [0, 1]."""
    y, x = np.mgrid[0:size, 0:size] - (size - 1) / 2
    return 0.5 + 0.5 * np.cos(k * np.pi * (x ** 2 + y ** 2) / size)


def gaussian_blur(images, sigma: float) -> np.ndarray:
    """Blur images ``(..., H, W)`` (e.g. ``(N, C, H, W)``) with a Gaussian of std ``sigma`` pixels.

    Separable convolution (rows, then columns) over a radius of ``ceil(3 sigma)``, with
    the edge pixels repeated beyond the border; returns float64 of the same shape. Used
    before sampling a large region into a small output, against aliasing.
    """
    if hasattr(images, "detach"):
        images = images.detach().cpu().numpy()
    images = np.asarray(images, dtype=np.float64)
    if sigma <= 0:
        return images.copy()
    radius = max(1, int(np.ceil(3 * sigma)))
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    kernel /= kernel.sum()
    height, width = images.shape[-2:]
    padded = np.pad(images, [(0, 0)] * (images.ndim - 2) + [(radius, radius)] * 2, mode="edge")
    rows = sum(k * padded[..., i:i + height, :] for i, k in enumerate(kernel))
    return sum(k * rows[..., :, i:i + width] for i, k in enumerate(kernel))


# ---------------------------------------------------------------------------
# The sampled region, the sampling grid
# ---------------------------------------------------------------------------

def draw_sampled_region(ax: Axes, theta, in_hw: Sequence[int], align_corners: bool,
                        color: str = REGION_COLOR, out_hw: Optional[Sequence[int]] = None,
                        label: Optional[str] = None, lw: float = 2.0) -> np.ndarray:
    """Draw the region of the input that θ samples (:func:`stn_course.plot.draw_region`).
    Returns its corners (:func:`stn_course.coordinates.region_corners`)."""
    corners = region_corners(as_theta(theta), check_hw(in_hw), align_corners, out_hw)
    return draw_region(ax, corners, color, label, lw)


def draw_sampling_grid(ax: Axes, theta, in_hw: Sequence[int], out_hw: Sequence[int],
                       align_corners: bool, step: Optional[int] = None, color: str = GRID_COLOR,
                       max_points: int = 1600) -> np.ndarray:
    """Draw the points where the output samples the input, and every ``step``-th grid line
    (:func:`stn_course.plot.draw_grid_lines`). The grid comes from
    :func:`stn_course.sampler.affine_grid`. Returns it in pixel coordinates (Ho, Wo, 2).
    """
    th = as_theta(theta)
    h, w = check_hw(in_hw)
    ho, wo = check_hw(out_hw)
    grid = sampler.affine_grid(th[None], (1, 1, ho, wo), align_corners=align_corners)[0]
    return draw_grid_lines(ax, grid_to_pixels(grid, (h, w), align_corners), step, color, max_points)


def draw_grid_outline(ax: Axes, grid, in_hw: Sequence[int], align_corners: bool,
                      color: str = REGION_COLOR, lw: float = 1.5) -> np.ndarray:
    """Draw the region a sampling grid ``(Ho, Wo, 2)`` reads from, with dots at its four
    corners (:func:`stn_course.plot.draw_outline`). Returns the outline in input pixels."""
    path = grid_outline_pixels(grid, in_hw, align_corners)
    corners = grid_to_pixels(grid, in_hw, align_corners)[[0, 0, -1, -1], [0, -1, -1, 0]]
    return draw_outline(ax, path, corners, color, lw)


# ---------------------------------------------------------------------------
# The θ view (the θ explorer, notebooks 00 and 01)
# ---------------------------------------------------------------------------

#: Figures laid out by :func:`plot_theta_view`, which redraws into their axes in place.
_THETA_VIEW_FIGURES: "weakref.WeakSet[Figure]" = weakref.WeakSet()


@dataclass(frozen=True)
class ThetaView:
    """What :func:`plot_theta_view` drew: the figure, the output image ``(Ho, Wo, C)`` and
    the sampled region's corners ``(4, 2)`` in input pixels (output's TL, TR, BR, BL).

    Shows itself as its figure in a notebook (``_repr_png_``).
    """

    figure: Figure
    output: np.ndarray
    corners: np.ndarray

    def _repr_png_(self) -> bytes:
        return self.figure._repr_png_()


def plot_theta_view(image, theta, align_corners: bool = False, padding_mode: str = "zeros",
                    out_hw: Optional[Sequence[int]] = None, fig: Optional[Figure] = None,
                    mode: str = "bilinear", vmin=None, vmax=None, dpi: int = 80) -> ThetaView:
    """Three panels: the input with the sampled region, the sampling grid, the output.

    ``image``: (H, W), (H, W, 3) or (C, H, W) float in [0, 1] (uint8 and torch tensors
    work too); ``theta`` (2, 3) maps output to input coordinates; ``out_hw`` defaults to
    the input size. Pass ``fig`` to redraw into an existing figure (it is cleared).
    Returns a :class:`ThetaView`: the figure, the output array and the region's corners.
    """
    img = as_hwc(image)
    th = as_theta(theta)
    h, w = img.shape[:2]
    ho, wo = check_hw(out_hw) if out_hw is not None else (h, w)
    out = transform_image(img, th, (ho, wo), align_corners, padding_mode, mode)
    if img.shape[2] == 1 and vmin is None and vmax is None:
        lo, hi = float(img.min()), float(img.max())
        vmin, vmax = (0.0, 1.0) if (lo >= 0.0 and hi <= 1.0) else (lo, hi)

    if fig is None:
        fig = new_figure((11.0, 4.0), dpi=dpi)
    if len(fig.axes) == 3 and fig in _THETA_VIEW_FIGURES:
        ax_in, ax_grid, ax_out = fig.axes  # redraw in place: faster than new axes
        for ax in fig.axes:
            ax.clear()
    else:
        fig.clear()
        fig.set_layout_engine(None)
        # fixed positions (no layout engine): every redraw has the same geometry, and is fast
        ax_in, ax_grid, ax_out = fig.subplots(1, 3, gridspec_kw=dict(
            left=0.01, right=0.99, bottom=0.02, top=0.84, wspace=0.06))
        _THETA_VIEW_FIGURES.add(fig)

    show_image(ax_in, img, vmin, vmax)
    draw_image_border(ax_in, (h, w))
    corners = draw_sampled_region(ax_in, th, (h, w), align_corners, out_hw=(ho, wo))
    ax_in.set_facecolor(OUTSIDE_COLOR)

    show_image(ax_grid, img, vmin, vmax, alpha=0.45)
    draw_image_border(ax_grid, (h, w))
    pix = draw_sampling_grid(ax_grid, th, (h, w), (ho, wo), align_corners)
    ax_grid.set_facecolor(OUTSIDE_COLOR)

    everything = np.concatenate([corners, pix[[0, 0, -1, -1], [0, -1, 0, -1]]])
    for ax in (ax_in, ax_grid):
        set_view_limits(ax, (h, w), everything)

    show_image(ax_out, out, vmin, vmax)
    for spine in ax_out.spines.values():
        spine.set_edgecolor(REGION_COLOR)
        spine.set_linewidth(2.0)
    ax_out.scatter([0], [0], s=90, c=REGION_COLOR, edgecolors="white", linewidths=0.8, zorder=5,
                   clip_on=False)

    clean_axes(ax_in, "input + sampled region")
    clean_axes(ax_grid, f"sampling grid ({ho}×{wo} points)")
    clean_axes(ax_out, f"output ({ho}×{wo})")
    fig.suptitle(f"θ = {format_theta(th, 3)}    align_corners={align_corners}, padding={padding_mode}",
                 fontsize=10)
    return ThetaView(fig, out, corners)


# ---------------------------------------------------------------------------
# Pictures for notebook 01
# ---------------------------------------------------------------------------

def plot_align_corners_conventions(width: int = 4) -> Figure:
    """A row of ``width`` pixels, twice: where -1, 0 and +1 fall for each align_corners.

    Pixel centres (dots) are labelled with their normalised coordinate.
    """
    fig = new_figure((7.0, 3.4), layout="constrained")
    axes = fig.subplots(2, 1)
    for ax, ac in zip(axes, (True, False)):
        for j in range(width):
            ax.add_patch(Rectangle((j - 0.5, -0.5), 1, 1, fc="#dddddd" if j % 2 else "#cccccc",
                                   ec="black", lw=1))
            xn = float(sampler.normalise(j, width, ac))
            ax.plot([j], [0], "o", color=GRID_COLOR, ms=6)
            ax.text(j, 0.22, f"{xn:+.2f}", ha="center", va="bottom", fontsize=9, color=GRID_COLOR)
            ax.text(j, -0.3, f"pixel {j}", ha="center", va="center", fontsize=8, color="#444444")
        left, right = (0.0, width - 1.0) if ac else (-0.5, width - 0.5)
        for x, name in ((left, "-1"), ((left + right) / 2, "0"), (right, "+1")):
            ax.annotate(name, xy=(x, -0.5), xytext=(x, -0.95), ha="center", fontsize=11,
                        color=REGION_COLOR, fontweight="bold",
                        arrowprops=dict(arrowstyle="->", color=REGION_COLOR, lw=1.5))
        ax.set_xlim(-1.0, width)
        ax.set_ylim(-1.15, 0.6)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_aspect("equal")
        for spine in ax.spines.values():
            spine.set_visible(False)
        what = ("-1 and +1 are the CENTRES of the corner pixels" if ac
                else "-1 and +1 are the outer EDGES of the corner pixels")
        ax.set_title(f"align_corners={ac}: {what}", fontsize=10)
    return fig


def plot_bilinear_example(image, x: float, y: float) -> Figure:
    """A small gray image with values written in, the point (x, y) in pixel coordinates
    and its four neighbours, each labelled with its bilinear weight; the title gives the
    interpolated value (zero padding outside the image)."""
    img = as_hwc(image)[:, :, 0]
    h, w = img.shape
    weights = bilinear_neighbours(x, y)
    value = sum(wt * (img[yy, xx] if (0 <= xx < w and 0 <= yy < h) else 0.0)
                for (xx, yy), wt in weights.items())
    fig = new_figure((4.6, 4.6), layout="constrained")
    ax = fig.add_subplot()
    ax.imshow(img, cmap="gray", vmin=0, vmax=max(1.0, float(img.max())), interpolation="nearest")
    for i in range(h):
        for j in range(w):
            ax.text(j, i + 0.32, f"{img[i, j]:.2f}", ha="center", va="center", fontsize=9,
                    color="white" if img[i, j] < 0.5 else "black")
    x0, y0 = int(np.floor(x)), int(np.floor(y))
    ax.add_patch(Rectangle((x0, y0), 1, 1, fill=False, ec=GRID_COLOR, lw=1.5, ls="--"))
    for (xx, yy), wt in weights.items():
        ax.plot([x, xx], [y, yy], color=GRID_COLOR, lw=0.8 + 3 * wt, alpha=0.8)
        ax.scatter([xx], [yy], s=30 + 300 * wt, c=GRID_COLOR, edgecolors="white", zorder=4)
        ax.text(xx + (0.12 if xx > x else -0.12), yy + (-0.12 if yy < y else 0.12), f"w={wt:.2f}",
                ha="left" if xx > x else "right", va="bottom" if yy < y else "top", fontsize=9,
                color=GRID_COLOR, fontweight="bold",
                bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.8))
    ax.scatter([x], [y], marker="*", s=260, c=REGION_COLOR, edgecolors="black", zorder=5)
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    ax.set_xticks(range(w))
    ax.set_yticks(range(h))
    ax.set_xlabel("x (column)")
    ax.set_ylabel("y (row)")
    ax.set_title(f"sample at (x={x:.2f}, y={y:.2f}): value {value:.4f}", fontsize=10)
    return fig


def plot_padding_pitfall(digit, theta, mean: float = 0.1307, std: float = 0.3081,
                         align_corners: bool = False) -> Figure:
    """Zero padding after input normalisation (pytorch/tutorials#1117), and two fixes.

    ``digit``: a gray image in [0, 1]. Panels, all with the same colour scale:
    the normalised digit; normalise, then transform with zero padding (the padded area
    is 0, brighter than the normalised background -mean/std); transform, then
    normalise (fix 1); normalise, then pad with the background value (fix 2).
    """
    img = as_hwc(digit)
    norm = (img - mean) / std
    bg = -mean / std
    wrong = transform_image(norm, theta, None, align_corners, "zeros")
    fix1 = (transform_image(img, theta, None, align_corners, "zeros") - mean) / std
    fix2 = transform_image(norm - bg, theta, None, align_corners, "zeros") + bg
    panels = [(norm, "normalised input\n(background = -mean/std = %.2f)" % bg),
              (wrong, "normalise, then warp\nzero padding ≠ background"),
              (fix1, "fix 1: warp, then normalise"),
              (fix2, "fix 2: pad with the\nbackground value")]
    lo = min(float(p.min()) for p, _ in panels)
    hi = max(float(p.max()) for p, _ in panels)
    fig = new_figure((11.0, 3.4), layout="constrained")
    axes = fig.subplots(1, 4)
    for ax, (p, title) in zip(axes, panels):
        im = show_image(ax, p, vmin=lo, vmax=hi)
        clean_axes(ax, title)
    axes[1].spines[:].set_edgecolor("red")
    axes[1].spines[:].set_linewidth(2)
    fig.colorbar(im, ax=list(axes), shrink=0.8, label="value fed to the network")
    return fig


def plot_align_corners_difference(image, theta, padding_mode: str = "zeros",
                                  out_hw: Optional[Sequence[int]] = None) -> Figure:
    """The same θ sampled with align_corners=True and False, and their difference."""
    img = as_hwc(image)
    a = transform_image(img, theta, out_hw, True, padding_mode)
    b = transform_image(img, theta, out_hw, False, padding_mode)
    diff = (a - b).mean(axis=2)
    lim = max(float(np.abs(diff).max()), 1e-12)
    fig = new_figure((10.0, 3.4), layout="constrained")
    axes = fig.subplots(1, 3)
    show_image(axes[0], a)
    clean_axes(axes[0], "align_corners=True")
    show_image(axes[1], b)
    clean_axes(axes[1], "align_corners=False")
    im = axes[2].imshow(diff, cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
    clean_axes(axes[2], f"difference (max |Δ| = {lim:.2f})")
    fig.colorbar(im, ax=axes[2], shrink=0.8)
    return fig


def plot_aliasing(image, theta, out_hw: Sequence[int], align_corners: bool = False,
                  blur_sigma: Optional[float] = None) -> Figure:
    """Sampling a big region into a small output: aliasing, and blurring first as the fix.

    Panels: the input with the sampled region; bilinear sampling straight away;
    Gaussian blur (std ``blur_sigma`` input pixels; by default half the sampling step)
    then sampling.
    """
    img = as_hwc(image)
    th = as_theta(theta)
    h, w = img.shape[:2]
    ho, wo = check_hw(out_hw)
    corners = region_corners(th, (h, w), align_corners, (ho, wo))
    if blur_sigma is None:
        blur_sigma = 0.5 * sample_spacing(corners, (ho, wo))
    naive = transform_image(img, th, (ho, wo), align_corners)
    blurred = np.moveaxis(gaussian_blur(np.moveaxis(img, -1, 0), blur_sigma), 0, -1)
    smooth = transform_image(blurred, th, (ho, wo), align_corners)
    fig = new_figure((10.0, 3.6), layout="constrained")
    axes = fig.subplots(1, 3)
    show_image(axes[0], img)
    draw_image_border(axes[0], (h, w))
    draw_sampled_region(axes[0], th, (h, w), align_corners, out_hw=(ho, wo))
    axes[0].set_facecolor(OUTSIDE_COLOR)
    set_view_limits(axes[0], (h, w), corners, margin=0.03)
    clean_axes(axes[0], f"input {h}×{w} + sampled region")
    show_image(axes[1], naive)
    clean_axes(axes[1], f"sampled to {ho}×{wo}: aliasing")
    show_image(axes[2], smooth)
    clean_axes(axes[2], f"blur (σ={blur_sigma:.1f} px), then sample")
    return fig


def plot_homography(image, matrix, align_corners: bool = False, padding_mode: str = "zeros",
                    out_hw: Optional[Sequence[int]] = None) -> Figure:
    """A projective warp: the input with the sampled quadrilateral, and the output.

    ``matrix`` (3, 3) maps output (x, y, 1) to homogeneous input coordinates; the grid
    comes from :func:`stn_course.sampler.homography_grid`.
    """
    img = as_hwc(image)
    m = np.asarray(matrix, dtype=np.float64).reshape(3, 3)
    h, w = img.shape[:2]
    ho, wo = check_hw(out_hw) if out_hw is not None else (h, w)
    c = img.shape[2]
    grid = sampler.homography_grid(m[None], (1, c, ho, wo), align_corners=align_corners)
    out = sampler.grid_sample(np.moveaxis(img, -1, 0)[None], grid, mode="bilinear",
                              padding_mode=padding_mode, align_corners=align_corners)
    out = np.moveaxis(np.asarray(out)[0], 0, -1)
    corners = region_corners(m, (h, w), align_corners, (ho, wo))
    pix = grid_to_pixels(np.asarray(grid)[0], (h, w), align_corners)
    fig = new_figure((9.0, 4.0), layout="constrained")
    ax_in, ax_out = fig.subplots(1, 2)
    show_image(ax_in, img)
    draw_image_border(ax_in, (h, w))
    ax_in.add_patch(Polygon(corners, closed=True, fill=False, ec=REGION_COLOR, lw=2, zorder=4))
    ax_in.scatter(corners[:, 0], corners[:, 1], s=[90, 40, 18, 18], c=REGION_COLOR,
                  edgecolors="white", zorder=5)
    step = max(1, int(np.ceil(max(ho, wo) / 12)))
    for i in range(0, ho, step):
        ax_in.plot(pix[i, :, 0], pix[i, :, 1], color=GRID_COLOR, lw=0.6, alpha=0.7)
    for j in range(0, wo, step):
        ax_in.plot(pix[:, j, 0], pix[:, j, 1], color=GRID_COLOR, lw=0.6, alpha=0.7)
    ax_in.set_facecolor(OUTSIDE_COLOR)
    set_view_limits(ax_in, (h, w), corners)
    clean_axes(ax_in, "input + sampled quadrilateral")
    show_image(ax_out, out)
    clean_axes(ax_out, "output of the homography")
    return fig
