"""Figures of notebook 06 (traffic signs, GTSRB): examples of each class, class counts,
sign sizes, the transformer's zoom against the sign's size, per-class errors, and the
error on the jitter test sets against their strength.
Images are float ``(N, 3, H, W)`` in [0, 1]; metadata comes from
:class:`stn_course.gtsrb.GTSRBData`."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

from ..gtsrb import GTSRBData
from ..traffic_signs import CropAnalysis, sign_fraction
from ..plot import as_hwc, new_figure


def plot_class_examples(data: GTSRBData, columns: int = 11) -> Figure:
    """One image of every class (the middle frame of its first track), titled with its id."""
    classes = data.data.classes
    rows = -(-len(classes) // columns)
    fig = new_figure((1.1 * columns, 1.25 * rows), layout="constrained")
    axes = np.asarray(fig.subplots(rows, columns)).reshape(-1)
    for ax in axes:
        ax.axis("off")
    for label, ax in enumerate(axes[:len(classes)]):
        positions = torch.nonzero(data.data.labels == label).flatten()
        image = data.data.images[positions[len(positions) // 2]].float() / 255
        ax.imshow(as_hwc(image))
        ax.set_title(str(label), fontsize=9)
    return fig


def plot_class_counts(train: GTSRBData, test: GTSRBData) -> Figure:
    """Images per class in the training and test sets (bars), on one axis."""
    fig = new_figure((11, 3.0), layout="constrained")
    ax = fig.subplots()
    classes = np.arange(len(train.data.classes))
    for data, offset, name in ((train, -0.2, "training"), (test, 0.2, "test")):
        counts = torch.bincount(data.data.labels, minlength=len(classes)).numpy()
        ax.bar(classes + offset, counts, width=0.4, label=name)
    ax.set(xlabel="class", ylabel="images", xticks=classes, xlim=(-0.7, len(classes) - 0.3))
    ax.tick_params(axis="x", labelsize=7)
    ax.legend()
    return fig


def plot_sizes(data: GTSRBData) -> Figure:
    """Histograms of the original photographs' sides and of the sign's share of the side."""
    fig = new_figure((10, 3.0), layout="constrained")
    ax_side, ax_fraction = fig.subplots(1, 2)
    side = torch.sqrt((data.column("width") * data.column("height")).float()).numpy()
    ax_side.hist(side, bins=60, color="tab:blue")
    ax_side.set(xlabel="original side (pixels, geometric mean of width and height)", ylabel="images", yscale="log")
    ax_fraction.hist(sign_fraction(data).numpy(), bins=60, color="tab:orange")
    ax_fraction.set(xlabel="sign box side / image side", ylabel="images")
    return fig


def plot_zoom_vs_size(crop: CropAnalysis) -> Figure:
    """The input transformer's zoom against the zoom that would fill the frame with the sign's box
    (a :class:`stn_course.traffic_signs.CropAnalysis`), each point coloured by its photograph's
    original side: the colour shows how much of the correlation is the photograph's size."""
    fig = new_figure((5.4, 4.0), layout="constrained")
    ax = fig.subplots()
    points = ax.scatter(crop.fill, crop.zoom, s=4, alpha=0.5, c=np.log2(crop.side), cmap="viridis")
    low, high = min(crop.fill.min(), crop.zoom.min()), max(crop.fill.max(), crop.zoom.max())
    ax.plot([low, high], [low, high], "k--", lw=1, label="zoom = fill zoom (crops to the box)")
    ax.set(xlabel="fill zoom: 1 / (sign box side / image side)", ylabel="input transformer's zoom (>1 magnifies)",
           title=f"r = {crop.r_zoom_fill:.2f}; with the original side fixed, {crop.r_partial:.2f}")
    bar = fig.colorbar(points, ax=ax)
    bar.set_label("original side (pixels)")
    ticks = np.arange(np.floor(np.log2(crop.side.min())), np.ceil(np.log2(crop.side.max())) + 1)
    bar.set_ticks(ticks, labels=[f"{2 ** t:.0f}" for t in ticks])
    ax.legend(loc="upper left", fontsize=8)
    return fig


def plot_per_class_errors(errors: dict[str, torch.Tensor], names: Sequence[str]) -> Figure:
    """Per-class test error (%) of each model (``{model name: (classes,)}``), as bars."""
    fig = new_figure((11, 3.2), layout="constrained")
    ax = fig.subplots()
    classes = np.arange(len(names))
    width = 0.8 / len(errors)
    for index, (model, percent) in enumerate(errors.items()):
        ax.bar(classes + (index - (len(errors) - 1) / 2) * width, percent.numpy(), width=width, label=model)
    ax.set(xlabel="class", ylabel="test error (%)", xticks=classes, xlim=(-0.7, len(names) - 0.3))
    ax.tick_params(axis="x", labelsize=7)
    ax.legend()
    return fig


def plot_jitter_curves(errors: dict[str, dict[str, list[float]]], times: dict[str, int]) -> Figure:
    """Test error (%) against jitter strength (``{model: {strength: [error of each seed]}}``, from
    :func:`stn_course.gtsrb_results.jitter_errors`; ``times``: strength → multiple of the training
    jitter, the x axis): the seeds' mean as a line, their range as a band, on a log scale."""
    fig = new_figure((5.4, 3.6), layout="constrained")
    ax = fig.subplots()
    for model, by_strength in errors.items():
        x = np.array([times[strength] for strength in by_strength])
        values = [np.array(seeds) for seeds in by_strength.values()]
        ax.plot(x, [v.mean() for v in values], "o-", label=f"{model} (mean of {len(values[0])} seeds)")
        ax.fill_between(x, [v.min() for v in values], [v.max() for v in values], alpha=0.25)
    ax.set(xlabel="jitter strength (times the training jitter: ±10°, zoom ±0.1, shift ±1.6 px)",
           ylabel="test error (%)", yscale="log", xticks=sorted(times.values()))
    ax.legend(fontsize=8)
    return fig
