"""Figures of notebook 05 (visualising spatial transformers): aliasing inside a trained
transformer (:func:`plot_downsampling_aliasing` samples with torch's ``grid_sample``),
Grad-CAM beside the transformer, two transformers side by side, and the animations (GIFs,
written with matplotlib's Pillow writer) of a transformer learning and of a moving input;
notebook 06 shows the animations too."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
from matplotlib.figure import Figure

from ..files import replace_if_changed
from ..plot import REGION_COLOR, SECOND_REGION_COLOR, as_hwc, check_hw, clean_axes, new_figure, show_image
from .sampling import draw_grid_outline, draw_sampled_region, gaussian_blur


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
            show_image(ax_in, inputs[index], 0.0, 1.0)
            draw_grid_outline(ax_in, grids[frame][index], (h, w), align_corners)
            pad = 0.25 * max(h, w)
            ax_in.set_xlim(-0.5 - pad, w - 0.5 + pad)
            ax_in.set_ylim(h - 0.5 + pad, -0.5 - pad)
            show_image(ax_out, as_hwc(outputs[frame][index]), 0.0, 1.0)
            for ax in (ax_in, ax_out):
                clean_axes(ax)
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
            show_image(ax, as_hwc(images[frame]), 0.0, 1.0)
            clean_axes(ax, title)
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
# What trained transformers do
# ---------------------------------------------------------------------------

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
    ho, wo = check_hw(out_hw)
    if sigma is None:
        sigma = 0.5 * max(h / ho, w / wo)
    blurred = torch.as_tensor(gaussian_blur(images, sigma), dtype=torch.float32)
    grid = F.affine_grid(thetas, [n, c, ho, wo], align_corners=align_corners)
    sharp = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=align_corners)
    smooth = F.grid_sample(blurred, grid, mode="bilinear", padding_mode="zeros", align_corners=align_corners)
    fig = new_figure((6.0, 2.0 * n), layout="constrained")
    axes = np.asarray(fig.subplots(n, 3)).reshape(n, 3)
    for row, (image, theta, plain, smoothed) in enumerate(zip(images, thetas, sharp, smooth)):
        show_image(axes[row, 0], as_hwc(image), 0.0, 1.0)
        draw_sampled_region(axes[row, 0], theta.numpy(), (h, w), align_corners, out_hw=(ho, wo), lw=1.2)
        show_image(axes[row, 1], as_hwc(plain), 0.0, 1.0)
        show_image(axes[row, 2], as_hwc(smoothed), 0.0, 1.0)
        for ax in axes[row]:
            clean_axes(ax)
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
            show_image(ax, base, 0.0, 1.0)
            if cam is not None:
                h, w = base.shape[:2]
                ax.imshow(np.asarray(cam), cmap="jet", alpha=alpha, extent=(-0.5, w - 0.5, h - 0.5, -0.5),
                          vmin=0.0, vmax=1.0, interpolation="bilinear")
            clean_axes(ax, titles[col] if row == 0 else None)
    return fig


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
        show_image(axes[row, 0], picture, 0.0, 1.0)
        for grid, color in zip(grids, colors):
            draw_grid_outline(axes[row, 0], grid[row], (h, w), align_corners, color=color)
        pad = 0.15 * max(h, w)
        axes[row, 0].set_xlim(-0.5 - pad, w - 0.5 + pad)
        axes[row, 0].set_ylim(h - 0.5 + pad, -0.5 - pad)
        for col, (output, name, color) in enumerate(zip(outputs, names, colors), start=1):
            show_image(axes[row, col], as_hwc(output[row]), 0.0, 1.0)
            for spine in axes[row, col].spines.values():
                spine.set_edgecolor(color)
                spine.set_linewidth(2.0)
            clean_axes(axes[row, col], name if row == 0 else None)
        clean_axes(axes[row, 0], "input" if row == 0 else None)
    return fig
