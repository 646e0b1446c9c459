"""Figures of notebooks 02-04 (training spatial transformers on MNIST, distorted MNIST and
CIFAR-10), also shown again in 05-07: learning curves, rows of images, inputs with the
region the transformer sampled beside its outputs (:func:`plot_transformer_at_work` runs
the model for that), misread digits, recovered against applied transforms, and
distributions of what trained transformers do."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..plot import as_hwc, clean_axes, new_figure, show_image
from .sampling import draw_grid_outline


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


def plot_image_rows(rows: dict, columns: Optional[int] = None) -> Figure:
    """One row of images per entry of ``rows`` (title → ``(N, C, H, W)`` in [0, 1]); rows
    may have different image sizes (e.g. each distortion of distorted MNIST)."""
    columns = columns or max(len(images) for images in rows.values())
    fig = new_figure((1.3 * columns + 1.2, 1.35 * len(rows)), layout="constrained")
    axes = np.asarray(fig.subplots(len(rows), columns)).reshape(len(rows), columns)
    for (title, images), row in zip(rows.items(), axes):
        for index, ax in enumerate(row):
            clean_axes(ax)
            for spine in ax.spines.values():
                spine.set_visible(False)
            if index < len(images):
                show_image(ax, as_hwc(images[index]), 0.0, 1.0)
        row[0].set_ylabel(title, rotation=0, ha="right", va="center", fontsize=10)
    return fig


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
            clean_axes(ax)
            ax.axis("off")
            if index >= len(pictures):
                continue
            show_image(ax, pictures[index], 0.0, 1.0)
            if pictures is inputs and grids is not None:
                draw_grid_outline(ax, grids[index], pictures[index].shape[:2], align_corners)
                h, w = pictures[index].shape[:2]
                pad = 0.25 * max(h, w)
                ax.set_xlim(-0.5 - pad, w - 0.5 + pad)
                ax.set_ylim(h - 0.5 + pad, -0.5 - pad)
            if pictures is inputs and labels is not None:
                ax.set_title(labels[index], fontsize=8)
    return fig


def plot_transformer_at_work(model, images, labels: Optional[Sequence[str]] = None) -> Figure:
    """``images`` ``(N, C, H, W)`` with the region that ``model``'s spatial transformer samples
    drawn on each (orange), beside the transformer's outputs (``align_corners=False``, the
    course's convention); ``labels``, if given, titles each input (e.g. ``"7 read as 1"``)."""
    from ..inspection import apply_transformer  # torch: only when a model is run

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
    (degrees), zoom (its ``zoom``, :func:`stn_course.parameterisation.zoom_from_theta`: above 1
    magnifies), and horizontal and vertical
    translation (normalised units: 1 is half the image). The identity is a dashed line."""
    quantities = {
        "rotation (°)": (lambda p: p["angle"], 0.0),
        "zoom (>1 magnifies)": (lambda p: p["zoom"], 1.0),
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
