"""Figures of notebook 07: an image cut into patches, the ViT's positional-embedding
similarity, where a ViT and a spatial transformer look, and deformable attention's
sampling points. Every function returns a :class:`~stn_course.plot.CourseFigure`; images
are ``(C, H, W)`` or ``(N, C, H, W)`` in [0, 1]."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from ..coordinates import grid_to_pixels
from ..plot import as_hwc, new_figure
from .sampling import draw_grid_outline


def _gray_or_rgb(ax, image) -> None:
    hwc = as_hwc(image)
    ax.imshow(hwc[..., 0] if hwc.shape[2] == 1 else np.clip(hwc, 0, 1), cmap="gray", vmin=0, vmax=1,
              interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def plot_patches(image, patch: int, title: str = "") -> Figure:
    """Left: ``image`` ``(C, H, W)`` with its ``patch`` x ``patch`` grid; right: the patches
    as the ViT reads them, a sequence, row by row (token 1, 2, ...; token 0 is the class token)."""
    channels, height, width = image.shape
    rows, cols = height // patch, width // patch
    fig = new_figure((9, 3.6), layout="constrained")
    left, right = fig.subfigures(1, 2, width_ratios=[1, 1.6])
    ax = left.subplots()
    _gray_or_rgb(ax, image)
    for k in range(1, rows):
        ax.axhline(k * patch - 0.5, color="tab:orange", lw=0.8)
    for k in range(1, cols):
        ax.axvline(k * patch - 0.5, color="tab:orange", lw=0.8)
    ax.set_title(f"{title} {height}x{width}, {patch}x{patch} patches", fontsize=10)
    per_row = int(np.ceil(np.sqrt(rows * cols * 2.5)))
    axes = right.subplots(int(np.ceil(rows * cols / per_row)), per_row, squeeze=False)
    for index, ax in enumerate(axes.flat):
        if index >= rows * cols:
            ax.axis("off")
        else:  # framed, so that black patches still show as tiles
            r, c = divmod(index, cols)
            for spine in ax.spines.values():
                spine.set_color("0.6")
            _gray_or_rgb(ax, image[:, r * patch:(r + 1) * patch, c * patch:(c + 1) * patch])
            ax.set_title(str(index + 1), fontsize=6, pad=1)
    right.suptitle(f"{rows * cols} patches of {channels}x{patch}x{patch} = {channels * patch * patch} pixel values, "
                   f"each embedded as one token",
                   fontsize=10)
    return fig


def plot_position_similarity(position: torch.Tensor, grid_size: tuple[int, int]) -> Figure:
    """Cosine similarity of each patch's learned positional embedding with every other's:
    one small map per patch, at its place in the grid (as in Dosovitskiy et al., Fig. 7).
    ``position``: ``(1 + patches, dim)``, the class token's first (left out)."""
    rows, cols = grid_size
    embeddings = F.normalize(position[1:].detach().float().cpu(), dim=-1)
    similarity = (embeddings @ embeddings.T).view(rows * cols, rows, cols).numpy()
    fig = new_figure((1.1 * cols + 1, 1.1 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for index, ax in enumerate(axes.flat):
        image = ax.imshow(similarity[index], cmap="viridis", vmin=-1, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(image, ax=axes, shrink=0.8, label="cosine similarity")
    fig.suptitle("learned positional embeddings: each patch's similarity to every other")
    return fig


def _overlay(ax, image, heat: np.ndarray) -> None:
    """``heat`` (h, w), stretched over the image's extent, on a dimmed image."""
    _gray_or_rgb(ax, image * 0.6)
    height, width = image.shape[-2:]
    ax.imshow(heat / max(heat.max(), 1e-12), cmap="inferno", alpha=0.55, extent=(-0.5, width - 0.5, height - 0.5, -0.5),
              interpolation="bilinear")


def plot_where_they_look(images: torch.Tensor, heat_maps: dict[str, torch.Tensor],
                         grids: dict[str, torch.Tensor], align_corners: bool = False,
                         labels: Sequence[str] | None = None) -> Figure:
    """One column per image ``(N, C, H, W)``: first a row with each spatial transformer's
    sampled region outlined (``grids``: name → ``(N, Ho, Wo, 2)``), then one row per ViT
    heat map (``heat_maps``: name → ``(N, h, w)``, e.g. class-token attention per patch)."""
    count = images.shape[0]
    colours = ["tab:orange", "tab:cyan", "tab:green"]
    fig = new_figure((1.5 * count + 1.5, 1.6 * (1 + len(heat_maps))), layout="constrained")
    axes = fig.subplots(1 + len(heat_maps), count, squeeze=False)
    for i in range(count):
        _gray_or_rgb(axes[0, i], images[i])
        for colour, grid in zip(colours, grids.values()):
            draw_grid_outline(axes[0, i], grid[i].cpu().numpy(), images.shape[-2:], align_corners, color=colour)
        axes[0, i].set_xlim(-0.5, images.shape[-1] - 0.5)
        axes[0, i].set_ylim(images.shape[-2] - 0.5, -0.5)
        if labels is not None:
            axes[0, i].set_title(labels[i], fontsize=8)
        for row, heat in enumerate(heat_maps.values(), start=1):
            _overlay(axes[row, i], images[i], heat[i].detach().cpu().numpy())
    axes[0, 0].set_ylabel("sampled regions", fontsize=8)
    fig.suptitle("sampled region of " + ", ".join(f"{name} ({colour[4:]})" for name, colour in zip(grids, colours))
                 + "; below, where the ViT's class token looks", fontsize=10)
    for row, name in enumerate(heat_maps, start=1):
        axes[row, 0].set_ylabel(name, fontsize=8)
    return fig


def plot_deformable_sampling(image: torch.Tensor, reference: torch.Tensor, offsets: torch.Tensor,
                             weights: torch.Tensor, theta: torch.Tensor, out_size: int = 12,
                             align_corners: bool = False) -> Figure:
    """Left: a spatial transformer's sampling grid (θ ``(2, 3)``, ``out_size`` points per
    side) on ``image`` ``(C, H, W)``; right: deformable attention's few sampling points for
    one query, ``reference`` ``(2,)`` plus ``offsets`` ``(K, 2)`` (normalised x, y), dot
    areas proportional to their attention ``weights`` ``(K,)``. Both read the image with
    the same bilinear ``grid_sample``."""
    size = image.shape[-2:]
    grid = F.affine_grid(theta[None], [1, 1, out_size, out_size], align_corners=align_corners)[0]
    grid_pixels = grid_to_pixels(grid.numpy(), size, align_corners).reshape(-1, 2)
    points = grid_to_pixels((reference + offsets).numpy(), size, align_corners)
    ref = grid_to_pixels(reference[None].numpy(), size, align_corners)[0]
    fig = new_figure((7, 3.4), layout="constrained")
    left, right = fig.subplots(1, 2)
    for ax in (left, right):
        _gray_or_rgb(ax, image)
    left.scatter(grid_pixels[:, 0], grid_pixels[:, 1], s=6, c="tab:orange")
    left.set_title(f"spatial transformer: θ (6 numbers)\n→ {out_size}x{out_size} sampling points", fontsize=9)
    right.scatter(points[:, 0], points[:, 1], s=600 * weights.numpy(), c="tab:cyan", edgecolors="white")
    for point in points:
        right.annotate("", point, ref, arrowprops={"arrowstyle": "->", "color": "tab:cyan"})
    right.scatter([ref[0]], [ref[1]], marker="x", s=60, c="tab:red")
    right.set_title(f"deformable attention: one query (x)\n→ {len(points)} offsets and weights "
                    "(a model predicts them from the query)", fontsize=9)
    return fig
