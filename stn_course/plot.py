"""Drawing primitives for the course's figures, with matplotlib.

Everything here draws what it is given: images and coordinates as arrays (pixel
coordinates put the centre of pixel ``(row i, column j)`` at ``(x=j, y=i)``, which is also
where ``imshow`` draws it, so outlines sit on the pixels they mean). It computes no
coordinates, samples no image and runs no model: the figures, one module per notebook in
:mod:`stn_course.figures`, do that (with :mod:`stn_course.coordinates` and the samplers)
and draw with these.

Figures are :class:`CourseFigure` objects, created without ``pyplot`` (:func:`new_figure`),
so nothing is left open behind the caller's back; in a notebook, end a cell with the
figure (``fig``) or call ``display(fig)`` to show it; it shows itself as a PNG even without
``%matplotlib inline``.

Colours are the same in every figure: the sampled region is orange, the sampling grid is
blue, the image border is grey.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Polygon, Rectangle

#: Colour of the sampled-region outline.
REGION_COLOR = "#ff7f0e"
#: Colour of a second transformer's region.
SECOND_REGION_COLOR = "#2ca02c"
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
# Arrays in, checked
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


def as_theta(theta) -> np.ndarray:
    """θ as a float64 (2, 3) array (accepts (2, 3), (1, 2, 3) and torch tensors)."""
    if hasattr(theta, "detach"):
        theta = theta.detach().cpu().numpy()
    arr = np.asarray(theta, dtype=np.float64)
    if arr.shape == (1, 2, 3):
        arr = arr[0]
    if arr.shape != (2, 3):
        raise ValueError(f"theta must have shape (2, 3), got {arr.shape}")
    return arr


def check_hw(hw) -> HW:
    """``(height, width)`` as two positive ints."""
    h, w = (int(v) for v in hw)
    if h < 1 or w < 1:
        raise ValueError(f"sizes must be positive, got {hw}")
    return h, w


def format_theta(theta, decimals: int = 2) -> str:
    """θ on one line, e.g. ``[[1.00, 0.00, 0.00], [0.00, 1.00, 0.00]]``."""
    th = as_theta(theta) + 0.0  # turns -0.0 into 0.0
    th = np.round(th, decimals) + 0.0
    rows = [", ".join(f"{v:.{decimals}f}" for v in row) for row in th]
    return "[[" + "], [".join(rows) + "]]"


# ---------------------------------------------------------------------------
# Axes: images, limits, outlines
# ---------------------------------------------------------------------------

def show_image(ax: Axes, img_hwc: np.ndarray, vmin=None, vmax=None, cmap: str = "gray", **kw):
    """imshow a (H, W, C) image: gray with a colour map, RGB clipped to [0, 1]."""
    if img_hwc.shape[2] == 1:
        data = img_hwc[:, :, 0]
        if vmin is None and vmax is None:
            lo, hi = float(np.nanmin(data)), float(np.nanmax(data))
            vmin, vmax = (0.0, 1.0) if (lo >= 0.0 and hi <= 1.0) else (lo, hi)
        return ax.imshow(data, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest", **kw)
    return ax.imshow(np.clip(img_hwc, 0.0, 1.0), interpolation="nearest", **kw)


def clean_axes(ax: Axes, title: Optional[str] = None) -> None:
    """No ticks, equal aspect, optional title."""
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_aspect("equal")
    if title is not None:
        ax.set_title(title, fontsize=10)


def set_view_limits(ax: Axes, in_hw: HW, points: np.ndarray, margin: float = 0.06) -> None:
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
    h, w = check_hw(in_hw)
    ax.add_patch(Rectangle((-0.5, -0.5), w, h, fill=False, ec=color, lw=1.0, ls="--", zorder=2))


def draw_region(ax: Axes, corners: np.ndarray, color: str = REGION_COLOR, label: Optional[str] = None,
                lw: float = 2.0) -> np.ndarray:
    """Draw a sampled region from its corners ``(4, 2)`` in input pixels (the output's
    top-left, top-right, bottom-right, bottom-left) as a quadrilateral with four corner dots.

    The output's top-left corner gets a bigger dot and the top-right a medium one, so
    rotations and flips can be read off. Returns ``corners``.
    """
    corners = np.asarray(corners, dtype=np.float64)
    ax.add_patch(Polygon(corners, closed=True, fill=False, ec=color, lw=lw, zorder=4, label=label))
    ax.scatter(corners[:, 0], corners[:, 1], s=[90, 40, 18, 18], c=color, edgecolors="white",
               linewidths=0.8, zorder=5)
    return corners


def draw_grid_lines(ax: Axes, pix: np.ndarray, step: Optional[int] = None, color: str = GRID_COLOR,
                    max_points: int = 1600) -> np.ndarray:
    """Draw a sampling grid given in input pixels ``(Ho, Wo, 2)``: every ``step``-th row and
    column as a line (``step`` defaults to about 12 lines per side) and its points (all of
    them when there are at most ``max_points``, otherwise those on the drawn lines).
    Returns ``pix``.
    """
    ho, wo = pix.shape[:2]
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


def draw_outline(ax: Axes, path: np.ndarray, corners: np.ndarray, color: str = REGION_COLOR,
                 lw: float = 1.5) -> np.ndarray:
    """Draw the outline of a region, ``path`` ``(P, 2)`` in input pixels, with dots at its
    ``corners`` ``(4, 2)`` (the output's top-left one bigger, as in :func:`draw_region`).
    Returns ``path``."""
    ax.plot(path[:, 0], path[:, 1], color=color, lw=lw, zorder=4)
    ax.scatter(corners[:, 0], corners[:, 1], s=[40, 18, 8, 8], c=color, edgecolors="white",
               linewidths=0.5, zorder=5)
    return path
