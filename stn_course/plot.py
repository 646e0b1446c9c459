"""Pictures of spatial transformers, drawn with matplotlib.

Every function here is a plain function of its arguments: it either draws on an
``Axes`` it is given or returns a new figure (a :class:`CourseFigure`, created without
``pyplot``, so nothing is left open behind the caller's back). In a notebook, end a
cell with the figure (``fig``) or call ``display(fig)`` to show it; it shows itself as
a PNG even without ``%matplotlib inline``. New plotting functions should create their
figures with :func:`new_figure`.

Conventions (the same as :mod:`stn_course.sampler` and PyTorch):

* normalised coordinates run from -1 (left / top) to +1 (right / bottom);
* θ (2x3) maps an OUTPUT location to the INPUT location it samples from;
* pixel coordinates put the centre of pixel ``(row i, column j)`` at ``(x=j, y=i)``,
  which is also where ``imshow`` draws it, so outlines sit on the pixels they mean.

Colours are the same in every figure: the sampled region is orange, the sampling
grid is blue, the image border is grey.

This module draws; it computes no coordinates. Where a transform reads, in input
pixels (corners of the sampled region, grids in pixels, bilinear neighbours, the
blur against aliasing) comes from :mod:`stn_course.sampler`.

Sections:

1. images and small array helpers (:func:`as_hwc`, :func:`transform_image`, :func:`zone_plate`);
2. drawing the sampled region and the sampling grid;
3. the θ view (:func:`plot_theta_view`, :class:`ThetaView`; used by the θ explorer widget);
4. pictures for notebook 01 (align_corners, bilinear weights, pitfalls, aliasing, homographies);
5. trained models: learning curves, inputs beside what the transformer made of them;
6. pictures for notebook 00 (a gallery of transforms, the bilinear kernel);
7. animations (GIFs, written with matplotlib's Pillow writer);
8. pictures for notebooks 04 and 05 (recovered transforms, θ distributions, aliasing in a
   trained transformer, Grad-CAM, two transformers side by side).
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Polygon, Rectangle
from matplotlib.ticker import MaxNLocator

from stn_course import sampler

#: Colour of the sampled-region outline.
REGION_COLOR = "#ff7f0e"
#: Colour of the sampling grid.
GRID_COLOR = "#1f77b4"
#: Colour of the image border drawn under outlines.
BORDER_COLOR = "#7f7f7f"
#: Face colour of axes areas outside the image.
OUTSIDE_COLOR = "#eeeeee"

HW = Tuple[int, int]


class CourseFigure(Figure):
    """A :class:`~matplotlib.figure.Figure` that shows itself in Jupyter as a PNG.

    Created without ``pyplot``, so it needs no backend and leaves no global state;
    ``_repr_png_`` makes ``display(fig)`` (or a cell ending in ``fig``) draw it even where
    matplotlib's inline backend is not active.
    """

    def _repr_png_(self) -> bytes:
        import io

        buf = io.BytesIO()
        self.savefig(buf, format="png", bbox_inches="tight")
        return buf.getvalue()


def new_figure(figsize: Tuple[float, float], **kwargs) -> Figure:
    """A new :class:`CourseFigure` (no pyplot), e.g. ``new_figure((8, 3), layout="constrained")``."""
    return CourseFigure(figsize=figsize, **kwargs)


# ---------------------------------------------------------------------------
# Images and small array helpers
# ---------------------------------------------------------------------------

def as_hwc(image) -> np.ndarray:
    """Return ``image`` as a float64 array of shape (H, W, C) with C = 1 or 3.

    Accepts (H, W), (H, W, C), (C, H, W) and (1, C, H, W), with C = 1 or 3, as a
    NumPy array or a torch tensor. uint8 images are scaled to [0, 1]. An array whose
    first and last axes could both be channels (e.g. (3, 5, 3)) is read as (H, W, C).
    Anything else raises ``ValueError``.
    """
    if hasattr(image, "detach"):  # torch tensor
        image = image.detach().cpu().numpy()
    arr = np.asarray(image)
    if arr.dtype == np.uint8:
        arr = arr.astype(np.float64) / 255.0
    elif arr.dtype == bool or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"image must hold numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if arr.ndim == 4:
        if arr.shape[0] != 1:
            raise ValueError(f"a 4-D image must be a batch of one (1, C, H, W), got shape {arr.shape}")
        arr = arr[0]
    if arr.ndim == 2:
        arr = arr[:, :, None]
    elif arr.ndim == 3:
        if arr.shape[-1] in (1, 3):
            pass
        elif arr.shape[0] in (1, 3):
            arr = np.moveaxis(arr, 0, -1)
        else:
            raise ValueError(
                f"a 3-D image must be (H, W, C) or (C, H, W) with C = 1 or 3, got shape {arr.shape}")
    else:
        raise ValueError(f"image must be (H, W), (H, W, C) or (C, H, W), got shape {arr.shape}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"image must not be empty, got shape {arr.shape}")
    return arr


def _as_theta(theta) -> np.ndarray:
    """θ as a float64 (2, 3) array (accepts (2, 3), (1, 2, 3) and torch tensors)."""
    if hasattr(theta, "detach"):
        theta = theta.detach().cpu().numpy()
    arr = np.asarray(theta, dtype=np.float64)
    if arr.shape == (1, 2, 3):
        arr = arr[0]
    if arr.shape != (2, 3):
        raise ValueError(f"theta must have shape (2, 3), got {arr.shape}")
    return arr


def _hw(hw) -> HW:
    h, w = (int(v) for v in hw)
    if h < 1 or w < 1:
        raise ValueError(f"sizes must be positive, got {hw}")
    return h, w


def transform_image(image, theta, out_hw: Optional[Sequence[int]] = None, align_corners: bool = False,
                    padding_mode: str = "zeros", mode: str = "bilinear") -> np.ndarray:
    """Warp ``image`` with θ using :mod:`stn_course.sampler`; returns (Ho, Wo, C) float64.

    ``out_hw`` defaults to the input's size.
    """
    img = as_hwc(image)
    th = _as_theta(theta)
    ho, wo = _hw(out_hw) if out_hw is not None else img.shape[:2]
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


def _show(ax: Axes, img_hwc: np.ndarray, vmin=None, vmax=None, cmap: str = "gray", **kw):
    """imshow a (H, W, C) image: gray with a colour map, RGB clipped to [0, 1]."""
    if img_hwc.shape[2] == 1:
        data = img_hwc[:, :, 0]
        if vmin is None and vmax is None:
            lo, hi = float(np.nanmin(data)), float(np.nanmax(data))
            vmin, vmax = (0.0, 1.0) if (lo >= 0.0 and hi <= 1.0) else (lo, hi)
        return ax.imshow(data, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest", **kw)
    return ax.imshow(np.clip(img_hwc, 0.0, 1.0), interpolation="nearest", **kw)


def _clean(ax: Axes, title: Optional[str] = None) -> None:
    """No ticks, equal aspect, optional title."""
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_aspect("equal")
    if title is not None:
        ax.set_title(title, fontsize=10)


# ---------------------------------------------------------------------------
# Drawing the sampled region and the sampling grid
# ---------------------------------------------------------------------------

def _set_view_limits(ax: Axes, in_hw: HW, points: np.ndarray, margin: float = 0.06) -> None:
    """Show the whole image and all ``points`` (N, 2), with a margin; y axis downwards."""
    h, w = in_hw
    xs = np.concatenate([[-0.5, w - 0.5], points[:, 0]])
    ys = np.concatenate([[-0.5, h - 0.5], points[:, 1]])
    xs, ys = xs[np.isfinite(xs)], ys[np.isfinite(ys)]
    span = max(xs.max() - xs.min(), ys.max() - ys.min(), 1.0)
    pad = margin * span
    ax.set_xlim(xs.min() - pad, xs.max() + pad)
    ax.set_ylim(ys.max() + pad, ys.min() - pad)


def draw_image_border(ax: Axes, in_hw: Sequence[int], color: str = BORDER_COLOR) -> None:
    """Dashed outline of the image's extent (pixel edges, -0.5 to W-0.5)."""
    h, w = _hw(in_hw)
    ax.add_patch(Rectangle((-0.5, -0.5), w, h, fill=False, ec=color, lw=1.0, ls="--", zorder=2))


def draw_sampled_region(ax: Axes, theta, in_hw: Sequence[int], align_corners: bool,
                        color: str = REGION_COLOR, out_hw: Optional[Sequence[int]] = None,
                        label: Optional[str] = None, lw: float = 2.0) -> np.ndarray:
    """Draw the sampled region as a quadrilateral with four corner dots.

    The output's top-left corner gets a bigger dot and the top-right a medium one, so
    rotations and flips can be read off. Returns the corners (see
    :func:`stn_course.sampler.region_corners`).
    """
    corners = sampler.region_corners(_as_theta(theta), _hw(in_hw), align_corners, out_hw)
    ax.add_patch(Polygon(corners, closed=True, fill=False, ec=color, lw=lw, zorder=4, label=label))
    ax.scatter(corners[:, 0], corners[:, 1], s=[90, 40, 18, 18], c=color, edgecolors="white",
               linewidths=0.8, zorder=5)
    return corners


def draw_sampling_grid(ax: Axes, theta, in_hw: Sequence[int], out_hw: Sequence[int],
                       align_corners: bool, step: Optional[int] = None, color: str = GRID_COLOR,
                       max_points: int = 1600) -> np.ndarray:
    """Draw the points where the output samples the input, and every ``step``-th grid line.

    The grid comes from :func:`stn_course.sampler.affine_grid`. ``step`` defaults to
    about 12 lines per side. All points are drawn when there are at most ``max_points``,
    otherwise only those on the drawn lines. Returns the grid in pixel coordinates
    (Ho, Wo, 2).
    """
    th = _as_theta(theta)
    h, w = _hw(in_hw)
    ho, wo = _hw(out_hw)
    grid = sampler.affine_grid(th[None], (1, 1, ho, wo), align_corners=align_corners)[0]
    pix = sampler.grid_to_pixels(grid, (h, w), align_corners)
    if step is None:
        step = max(1, int(np.ceil(max(ho, wo) / 12)))
    rows = sorted(set(range(0, ho, step)) | {ho - 1})
    cols = sorted(set(range(0, wo, step)) | {wo - 1})
    for i in rows:
        ax.plot(pix[i, :, 0], pix[i, :, 1], color=color, lw=0.8, alpha=0.8, zorder=3)
    for j in cols:
        ax.plot(pix[:, j, 0], pix[:, j, 1], color=color, lw=0.8, alpha=0.8, zorder=3)
    if ho * wo <= max_points:
        pts = pix.reshape(-1, 2)
    else:
        pts = pix[np.ix_(rows, cols)].reshape(-1, 2)
    ax.scatter(pts[:, 0], pts[:, 1], s=4, c=color, zorder=4, linewidths=0)
    return pix


def format_theta(theta, decimals: int = 2) -> str:
    """θ on one line, e.g. ``[[1.00, 0.00, 0.00], [0.00, 1.00, 0.00]]``."""
    th = _as_theta(theta) + 0.0  # turns -0.0 into 0.0
    th = np.round(th, decimals) + 0.0
    rows = [", ".join(f"{v:.{decimals}f}" for v in row) for row in th]
    return "[[" + "], [".join(rows) + "]]"


# ---------------------------------------------------------------------------
# The θ view (used by the θ explorer and notebooks 00 and 01)
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
    th = _as_theta(theta)
    h, w = img.shape[:2]
    ho, wo = _hw(out_hw) if out_hw is not None else (h, w)
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

    _show(ax_in, img, vmin, vmax)
    draw_image_border(ax_in, (h, w))
    corners = draw_sampled_region(ax_in, th, (h, w), align_corners, out_hw=(ho, wo))
    ax_in.set_facecolor(OUTSIDE_COLOR)

    _show(ax_grid, img, vmin, vmax, alpha=0.45)
    draw_image_border(ax_grid, (h, w))
    pix = draw_sampling_grid(ax_grid, th, (h, w), (ho, wo), align_corners)
    ax_grid.set_facecolor(OUTSIDE_COLOR)

    everything = np.concatenate([corners, pix[[0, 0, -1, -1], [0, -1, 0, -1]]])
    for ax in (ax_in, ax_grid):
        _set_view_limits(ax, (h, w), everything)

    _show(ax_out, out, vmin, vmax)
    for spine in ax_out.spines.values():
        spine.set_edgecolor(REGION_COLOR)
        spine.set_linewidth(2.0)
    ax_out.scatter([0], [0], s=90, c=REGION_COLOR, edgecolors="white", linewidths=0.8, zorder=5,
                   clip_on=False)

    _clean(ax_in, "input + sampled region")
    _clean(ax_grid, f"sampling grid ({ho}×{wo} points)")
    _clean(ax_out, f"output ({ho}×{wo})")
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
    weights = sampler.bilinear_neighbours(x, y)
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
        im = _show(ax, p, vmin=lo, vmax=hi)
        _clean(ax, title)
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
    _show(axes[0], a)
    _clean(axes[0], "align_corners=True")
    _show(axes[1], b)
    _clean(axes[1], "align_corners=False")
    im = axes[2].imshow(diff, cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
    _clean(axes[2], f"difference (max |Δ| = {lim:.2f})")
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
    th = _as_theta(theta)
    h, w = img.shape[:2]
    ho, wo = _hw(out_hw)
    corners = sampler.region_corners(th, (h, w), align_corners, (ho, wo))
    if blur_sigma is None:
        blur_sigma = 0.5 * sampler.sample_spacing(corners, (ho, wo))
    naive = transform_image(img, th, (ho, wo), align_corners)
    blurred = np.moveaxis(sampler.gaussian_blur(np.moveaxis(img, -1, 0), blur_sigma), 0, -1)
    smooth = transform_image(blurred, th, (ho, wo), align_corners)
    fig = new_figure((10.0, 3.6), layout="constrained")
    axes = fig.subplots(1, 3)
    _show(axes[0], img)
    draw_image_border(axes[0], (h, w))
    draw_sampled_region(axes[0], th, (h, w), align_corners, out_hw=(ho, wo))
    axes[0].set_facecolor(OUTSIDE_COLOR)
    _set_view_limits(axes[0], (h, w), corners, margin=0.03)
    _clean(axes[0], f"input {h}×{w} + sampled region")
    _show(axes[1], naive)
    _clean(axes[1], f"sampled to {ho}×{wo}: aliasing")
    _show(axes[2], smooth)
    _clean(axes[2], f"blur (σ={blur_sigma:.1f} px), then sample")
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
    ho, wo = _hw(out_hw) if out_hw is not None else (h, w)
    c = img.shape[2]
    grid = sampler.homography_grid(m[None], (1, c, ho, wo), align_corners=align_corners)
    out = sampler.grid_sample(np.moveaxis(img, -1, 0)[None], grid, mode="bilinear",
                              padding_mode=padding_mode, align_corners=align_corners)
    out = np.moveaxis(np.asarray(out)[0], 0, -1)
    corners = sampler.region_corners(m, (h, w), align_corners, (ho, wo))
    pix = sampler.grid_to_pixels(np.asarray(grid)[0], (h, w), align_corners)
    fig = new_figure((9.0, 4.0), layout="constrained")
    ax_in, ax_out = fig.subplots(1, 2)
    _show(ax_in, img)
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
    _set_view_limits(ax_in, (h, w), corners)
    _clean(ax_in, "input + sampled quadrilateral")
    _show(ax_out, out)
    _clean(ax_out, "output of the homography")
    return fig


# ---------------------------------------------------------------------------
# Trained models: learning curves, inputs beside what the transformer made of them
# ---------------------------------------------------------------------------

def plot_history(history, title: Optional[str] = None) -> Figure:
    """Train and test loss, and test accuracy, per epoch (a :class:`~stn_course.train.History`)."""
    epochs = np.arange(1, len(history.test_accuracy) + 1)
    fig = new_figure((9.0, 3.2), layout="constrained")
    ax_loss, ax_acc = fig.subplots(1, 2)
    ax_loss.plot(epochs, history.train_loss, "o-", label="train")
    ax_loss.plot(epochs, history.test_loss, "s-", label="test")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    ax_loss.legend()
    ax_acc.plot(epochs, 100 * np.asarray(history.test_accuracy), "s-", color="C1")
    ax_acc.set(xlabel="epoch", ylabel="%", title="test accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    if title:
        fig.suptitle(title)
    return fig


def plot_histories(histories: dict, title: Optional[str] = None) -> Figure:
    """Several runs on one figure (label → :class:`~stn_course.train.History`): training
    loss and test accuracy per epoch."""
    fig = new_figure((9.0, 3.2), layout="constrained")
    ax_loss, ax_acc = fig.subplots(1, 2)
    for index, (label, history) in enumerate(histories.items()):
        epochs = np.arange(1, len(history.test_accuracy) + 1)
        ax_loss.plot(epochs, history.train_loss, "-", color=f"C{index}", label=label)
        ax_acc.plot(epochs, 100 * np.asarray(history.test_accuracy), "-", color=f"C{index}", label=label)
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="training loss")
    ax_acc.set(xlabel="epoch", ylabel="%", title="test accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    ax_acc.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def draw_grid_outline(ax: Axes, grid, in_hw: Sequence[int], align_corners: bool,
                      color: str = REGION_COLOR, lw: float = 1.5) -> np.ndarray:
    """Draw the region a sampling grid reads from, with dots at its four corners (the
    output's top-left one bigger, as in :func:`draw_sampled_region`)."""
    path = sampler.grid_outline_pixels(grid, in_hw, align_corners)
    ax.plot(path[:, 0], path[:, 1], color=color, lw=lw, zorder=4)
    corners = sampler.grid_to_pixels(grid, in_hw, align_corners)[[0, 0, -1, -1], [0, -1, -1, 0]]
    ax.scatter(corners[:, 0], corners[:, 1], s=[40, 18, 8, 8], c=color, edgecolors="white",
               linewidths=0.5, zorder=5)
    return path


def plot_transformed_batch(images, transformed, grids=None, align_corners: bool = False,
                           columns: int = 4, titles: Sequence[str] = ("input", "transformed"),
                           labels: Optional[Sequence[str]] = None) -> Figure:
    """Inputs (with the sampled region outlined) beside the spatial transformer's outputs.

    Args:
        images: ``(N, C, H, W)`` in [0, 1] (tensor or array) — the course's models take
            un-normalised input, so nothing needs un-normalising here.
        transformed: ``(N, C, Ho, Wo)`` in [0, 1].
        grids: the sampling grids ``(N, Ho, Wo, 2)`` (``SpatialTransformer.last_grid``);
            when given, each input shows the region its output was sampled from.
        columns: images per row in each block.
        labels: optional text under each input (e.g. the predicted class).
    """
    inputs = [as_hwc(image) for image in images]
    outputs = [as_hwc(image) for image in transformed]
    rows = -(-len(inputs) // columns)
    fig = new_figure((2 * 1.6 * columns + 0.4, 1.7 * rows + 0.5), layout="constrained")
    blocks = fig.subfigures(1, 2, wspace=0.04)
    for block, pictures, title in zip(blocks, (inputs, outputs), titles):
        axes = np.atleast_1d(block.subplots(rows, columns)).reshape(rows, columns)
        block.suptitle(title)
        for index, ax in enumerate(axes.flat):
            _clean(ax)
            ax.axis("off")
            if index >= len(pictures):
                continue
            _show(ax, pictures[index], 0.0, 1.0)
            if pictures is inputs and grids is not None:
                draw_grid_outline(ax, grids[index], pictures[index].shape[:2], align_corners)
                h, w = pictures[index].shape[:2]
                pad = 0.25 * max(h, w)
                ax.set_xlim(-0.5 - pad, w - 0.5 + pad)
                ax.set_ylim(h - 0.5 + pad, -0.5 - pad)
            if pictures is inputs and labels is not None:
                ax.set_title(labels[index], fontsize=8)
    return fig


# ---------------------------------------------------------------------------
# Pictures for notebook 00
# ---------------------------------------------------------------------------

def plot_transform_gallery(image, named_thetas: dict, align_corners: bool = False,
                           padding_mode: str = "zeros", out_hw: Optional[Sequence[int]] = None) -> Figure:
    """One column per named θ: the input with its sampled region and sampling points (top),
    the output (bottom). ``named_thetas`` maps a title to a (2, 3) θ."""
    img = as_hwc(image)
    h, w = img.shape[:2]
    ho, wo = _hw(out_hw) if out_hw is not None else (h, w)
    columns = len(named_thetas)
    fig = new_figure((2.6 * columns, 5.4), layout="constrained")
    axes = np.asarray(fig.subplots(2, columns)).reshape(2, columns)
    for (name, theta), ax_in, ax_out in zip(named_thetas.items(), axes[0], axes[1]):
        _show(ax_in, img, alpha=0.8)
        draw_image_border(ax_in, (h, w))
        draw_sampling_grid(ax_in, theta, (h, w), (ho, wo), align_corners, step=max(1, max(ho, wo) // 6),
                           max_points=0)
        corners = draw_sampled_region(ax_in, theta, (h, w), align_corners, out_hw=(ho, wo))
        _set_view_limits(ax_in, (h, w), corners)
        ax_in.set_facecolor(OUTSIDE_COLOR)
        _clean(ax_in, name)
        _show(ax_out, transform_image(img, theta, (ho, wo), align_corners, padding_mode))
        _clean(ax_out, "output")
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


def plot_image_rows(rows: dict, columns: Optional[int] = None) -> Figure:
    """One row of images per entry of ``rows`` (title → ``(N, C, H, W)`` in [0, 1]); rows
    may have different image sizes (e.g. each distortion of distorted MNIST)."""
    columns = columns or max(len(images) for images in rows.values())
    fig = new_figure((1.3 * columns + 1.2, 1.35 * len(rows)), layout="constrained")
    axes = np.asarray(fig.subplots(len(rows), columns)).reshape(len(rows), columns)
    for (title, images), row in zip(rows.items(), axes):
        for index, ax in enumerate(row):
            _clean(ax)
            for spine in ax.spines.values():
                spine.set_visible(False)
            if index < len(images):
                _show(ax, as_hwc(images[index]), 0.0, 1.0)
        row[0].set_ylabel(title, rotation=0, ha="right", va="center", fontsize=10)
    return fig


def plot_transformer_at_work(model, images, labels: Optional[Sequence[str]] = None) -> Figure:
    """``images`` ``(N, C, H, W)`` with the region that ``model``'s spatial transformer samples
    drawn on each (orange), beside the transformer's outputs (``align_corners=False``, the
    course's convention); ``labels``, if given, titles each input (e.g. ``"7 read as 1"``)."""
    from .inspection import apply_transformer

    outputs, _, grids = apply_transformer(model, images)
    return plot_transformed_batch(images, outputs, grids, align_corners=False, labels=labels)


def plot_misread(model, errors, count: int = 16) -> Figure:
    """The first ``count`` test images ``model`` got wrong (``errors``, a
    :class:`stn_course.analysis.ModelErrors` from ``collect_errors(model, ...)``), each titled
    ``"<true> read as <predicted>"``, with the region the transformer samples beside what it
    passes to the classifier (:func:`plot_transformer_at_work`)."""
    if len(errors.images) == 0:
        raise ValueError("the model made no errors: nothing to show")
    labels = [f"{true} read as {predicted}"
              for true, predicted in zip(errors.labels[:count].tolist(), errors.predictions[:count].tolist())]
    return plot_transformer_at_work(model, errors.images[:count], labels)


# ---------------------------------------------------------------------------
# Animations (GIFs, written with matplotlib's Pillow writer)
# ---------------------------------------------------------------------------

def animate_transformer_evolution(images, steps: Sequence[int], outputs: Sequence, grids: Sequence,
                                  path, align_corners: bool = False, fps: int = 4, dpi: int = 60,
                                  steps_per_epoch: Optional[int] = None):
    """A GIF of a transformer learning: for fixed ``images`` ``(N, C, H, W)``, the sampled
    region on each input (top) and the output (bottom), one frame per recording
    (e.g. from :class:`stn_course.recording.TransformerRecorder`), with a step counter.

    Returns the path written.
    """
    from matplotlib.animation import FuncAnimation, PillowWriter

    inputs = [as_hwc(image) for image in images]
    count = len(inputs)
    h, w = inputs[0].shape[:2]
    fig = new_figure((1.5 * count, 3.4), layout="constrained", dpi=dpi)
    axes = np.asarray(fig.subplots(2, count)).reshape(2, count)
    title = fig.suptitle("")

    def draw(frame: int):
        for index in range(count):
            ax_in, ax_out = axes[0, index], axes[1, index]
            ax_in.clear()
            ax_out.clear()
            _show(ax_in, inputs[index], 0.0, 1.0)
            draw_grid_outline(ax_in, grids[frame][index], (h, w), align_corners)
            pad = 0.25 * max(h, w)
            ax_in.set_xlim(-0.5 - pad, w - 0.5 + pad)
            ax_in.set_ylim(h - 0.5 + pad, -0.5 - pad)
            _show(ax_out, as_hwc(outputs[frame][index]), 0.0, 1.0)
            for ax in (ax_in, ax_out):
                _clean(ax)
                ax.axis("off")
        text = f"step {steps[frame]}"
        if steps_per_epoch:
            text += f"  (epoch {steps[frame] / steps_per_epoch:.2f})"
        title.set_text(text)
        return []

    animation = FuncAnimation(fig, draw, frames=len(steps), blit=False)
    replace_if_changed(path, lambda tmp: animation.save(str(tmp), writer=PillowWriter(fps=fps), dpi=dpi))
    return path


def animate_moving_input(inputs, outputs, path, grids: Optional[Sequence] = None, align_corners: bool = False,
                         fps: int = 8, dpi: int = 100):
    """A GIF with the moving input on the left and the transformer's output on the right
    (both ``(T, C, H, W)``): a good transformer's output stays almost still. With the
    sampling ``grids`` ``(T, Ho, Wo, 2)``, each input shows the region its output was
    sampled from, with the corner dots of :func:`animate_transformer_evolution`.

    At the default ``dpi`` a frame is 440x240 pixels: big enough to read the digits, small
    enough to keep the notebook that stores it under 2 MB."""
    from matplotlib.animation import FuncAnimation, PillowWriter

    fig = new_figure((4.4, 2.4), layout="constrained", dpi=dpi)
    ax_in, ax_out = fig.subplots(1, 2)
    h, w = as_hwc(inputs[0]).shape[:2]

    def draw(frame: int):
        for ax, images, title in ((ax_in, inputs, "input"), (ax_out, outputs, "transformer output")):
            ax.clear()
            _show(ax, as_hwc(images[frame]), 0.0, 1.0)
            _clean(ax, title)
        if grids is not None:
            draw_grid_outline(ax_in, grids[frame], (h, w), align_corners)
            # Keep the whole input in view when the region reaches outside it.
            ax_in.set_xlim(-0.5, w - 0.5)
            ax_in.set_ylim(h - 0.5, -0.5)
        return []

    animation = FuncAnimation(fig, draw, frames=len(inputs), blit=False)
    replace_if_changed(path, lambda tmp: animation.save(str(tmp), writer=PillowWriter(fps=fps), dpi=dpi))
    return path


# ---------------------------------------------------------------------------
# Pictures for notebooks 04 and 05: what trained transformers do
# ---------------------------------------------------------------------------

def plot_recovered_vs_applied(applied: dict, recovered: dict, quantities: dict | None = None) -> Figure:
    """Scatter plots of each transformation parameter recovered from θ against the one
    that was applied, one panel per key (e.g. ``{"rotation (°)": array, "scale": array}``),
    with the correlation in each title. ``quantities`` names what a panel's axes measure
    when its key is something else (e.g. ``{"R, tenth rate": "rotation (°)"}``): two panels
    can then show the same quantity for two models."""
    quantities = quantities or {}
    names = list(applied)
    fig = new_figure((3.6 * len(names), 3.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(names)))
    for ax, name in zip(axes, names):
        x, y = np.asarray(applied[name], dtype=float), np.asarray(recovered[name], dtype=float)
        correlation = np.corrcoef(x, y)[0, 1]
        ax.scatter(x, y, s=6, alpha=0.5)
        quantity = quantities.get(name, name)
        ax.set(xlabel=f"applied {quantity}", ylabel=f"{quantity} recovered from θ",
               title=f"{name}: r = {correlation:.3f}")
        ax.grid(alpha=0.3)
    return fig


def plot_theta_distributions(decomposed: dict) -> Figure:
    """Histograms of what trained affine transformers do over a set of images, one colour
    per model (label → the dict of :func:`stn_course.inspection.decomposed_theta`): rotation
    (degrees), zoom (``sqrt(|sx * sy|)``: below 1 zooms in), and horizontal and vertical
    translation (normalised units: 1 is half the image). The identity is a dashed line."""
    quantities = {
        "rotation (°)": (lambda p: p["angle"], 0.0),
        "zoom √|sx·sy|": (lambda p: np.sqrt(np.abs(p["scale"][0] * p["scale"][1])), 1.0),
        "translation x": (lambda p: p["translation"][0], 0.0),
        "translation y": (lambda p: p["translation"][1], 0.0),
    }
    fig = new_figure((3.0 * len(quantities), 2.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(quantities)))
    for ax, (name, (read, identity)) in zip(axes, quantities.items()):
        values = {label: np.asarray(read(params), dtype=float) for label, params in decomposed.items()}
        low = min(v.min() for v in values.values())
        high = max(v.max() for v in values.values())
        span = max(high - low, 1e-3)
        bins = np.linspace(low - 0.05 * span, high + 0.05 * span, 41)
        for index, (label, value) in enumerate(values.items()):
            ax.hist(value, bins=bins, color=f"C{index}", alpha=0.55, label=label)
        ax.axvline(identity, color="k", ls="--", lw=1)
        ax.set(title=name, yticks=[])
        ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.ticklabel_format(axis="x", useOffset=False)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    return fig


def plot_downsampling_aliasing(images, thetas, out_hw: Sequence[int], sigma: Optional[float] = None,
                               align_corners: bool = False) -> Figure:
    """A spatial transformer whose output is smaller than the region it samples, without and
    with smoothing first: bilinear sampling reads only the 4 nearest pixels, so details
    finer than the output's pixel spacing alias unless the input is blurred before.

    Args:
        images: ``(N, C, H, W)`` in [0, 1] (torch).
        thetas: ``(N, 2, 3)`` affine θ (e.g. a trained transformer's).
        out_hw: the small output size.
        sigma: Gaussian blur (input pixels) before sampling; default: half the ratio of
            input to output size, the usual anti-aliasing choice.
    """
    import torch
    import torch.nn.functional as F

    images = torch.as_tensor(images, dtype=torch.float32)
    thetas = torch.as_tensor(thetas, dtype=torch.float32).view(-1, 2, 3)
    n, c, h, w = images.shape
    ho, wo = _hw(out_hw)
    if sigma is None:
        sigma = 0.5 * max(h / ho, w / wo)
    blurred = torch.as_tensor(sampler.gaussian_blur(images, sigma), dtype=torch.float32)
    grid = F.affine_grid(thetas, [n, c, ho, wo], align_corners=align_corners)
    sharp = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=align_corners)
    smooth = F.grid_sample(blurred, grid, mode="bilinear", padding_mode="zeros", align_corners=align_corners)
    fig = new_figure((6.0, 2.0 * n), layout="constrained")
    axes = np.asarray(fig.subplots(n, 3)).reshape(n, 3)
    for row, (image, theta, plain, smoothed) in enumerate(zip(images, thetas, sharp, smooth)):
        _show(axes[row, 0], as_hwc(image), 0.0, 1.0)
        draw_sampled_region(axes[row, 0], theta.numpy(), (h, w), align_corners, out_hw=(ho, wo), lw=1.2)
        _show(axes[row, 1], as_hwc(plain), 0.0, 1.0)
        _show(axes[row, 2], as_hwc(smoothed), 0.0, 1.0)
        for ax in axes[row]:
            _clean(ax)
    axes[0, 0].set_title("input + region", fontsize=9)
    axes[0, 1].set_title(f"sampled to {ho}x{wo}", fontsize=9)
    axes[0, 2].set_title(f"blurred (σ={sigma:.1f}), then sampled", fontsize=9)
    return fig


def plot_grad_cam(images, cnn_cams, transformed, st_cams, alpha: float = 0.5) -> Figure:
    """Where each classifier looks (Grad-CAM), for a few images ``(N, C, H, W)``:
    the input, the CNN's map over the input, the ST-CNN's transformed input, and the
    ST-CNN's map over what its classifier saw. Maps ``(N, h, w)`` in [0, 1] are
    stretched to the image they belong to."""
    n = len(images)
    fig = new_figure((7.6, 1.9 * n), layout="constrained")
    axes = np.asarray(fig.subplots(n, 4)).reshape(n, 4)
    titles = ("input", "CNN: Grad-CAM", "ST-CNN: transformed", "ST-CNN: Grad-CAM")
    for row in range(n):
        picture, output = as_hwc(images[row]), as_hwc(transformed[row])
        for col, (base, cam) in enumerate(((picture, None), (picture, cnn_cams[row]),
                                           (output, None), (output, st_cams[row]))):
            ax = axes[row, col]
            _show(ax, base, 0.0, 1.0)
            if cam is not None:
                h, w = base.shape[:2]
                ax.imshow(np.asarray(cam), cmap="jet", alpha=alpha, extent=(-0.5, w - 0.5, h - 0.5, -0.5),
                          vmin=0.0, vmax=1.0, interpolation="bilinear")
            _clean(ax, titles[col] if row == 0 else None)
    return fig


#: Colour of a second transformer's region.
SECOND_REGION_COLOR = "#2ca02c"


def plot_two_transformers(images, grids: Sequence, outputs: Sequence,
                          names: Sequence[str] = ("transformer 1", "transformer 2"),
                          align_corners: bool = False) -> Figure:
    """Two transformers on the same inputs ``(N, C, H, W)``: each input with both sampled
    regions (orange, green) and each transformer's output. ``grids``: two ``(N, Ho, Wo, 2)``
    grids in the input's normalised coordinates; ``outputs``: two ``(N, C, Ho, Wo)``."""
    n = len(images)
    fig = new_figure((7.5, 1.9 * n), layout="constrained")
    axes = np.asarray(fig.subplots(n, 3, gridspec_kw={"width_ratios": [2, 1, 1]})).reshape(n, 3)
    colors = (REGION_COLOR, SECOND_REGION_COLOR)
    for row in range(n):
        picture = as_hwc(images[row])
        h, w = picture.shape[:2]
        _show(axes[row, 0], picture, 0.0, 1.0)
        for grid, color in zip(grids, colors):
            draw_grid_outline(axes[row, 0], grid[row], (h, w), align_corners, color=color)
        pad = 0.15 * max(h, w)
        axes[row, 0].set_xlim(-0.5 - pad, w - 0.5 + pad)
        axes[row, 0].set_ylim(h - 0.5 + pad, -0.5 - pad)
        for col, (output, name, color) in enumerate(zip(outputs, names, colors), start=1):
            _show(axes[row, col], as_hwc(output[row]), 0.0, 1.0)
            for spine in axes[row, col].spines.values():
                spine.set_edgecolor(color)
                spine.set_linewidth(2.0)
            _clean(axes[row, col], name if row == 0 else None)
        _clean(axes[row, 0], "input" if row == 0 else None)
    return fig
