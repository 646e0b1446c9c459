"""Traffic signs (GTSRB) in notebook 06: the dataset's metadata, what the transformers learned,
per-class errors, the published results beside ours, and the figures that show them.

Conventions: images are float ``(N, 3, H, W)`` in [0, 1]; metadata comes from
:class:`stn_course.gtsrb.GTSRBData` (boxes in the original photograph's pixels).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from .gtsrb import GTSRBData
from .plot import as_hwc, new_figure

#: published single-number results on the official test set, typed from the papers / posts
#: (citations, not our runs): name, test accuracy %, input size, augmentation, source
PUBLISHED = (
    {"name": "Moodstocks: CNN with two spatial transformers", "accuracy": 99.61, "input": "48x48",
     "augmentation": "none", "source": "Moodstocks, github.com/moodstocks/gtsrb.torch (2015)"},
    {"name": "Moodstocks: the same CNN without transformers", "accuracy": 98.42, "input": "48x48",
     "augmentation": "none", "source": "Moodstocks, gtsrb.torch (2015)"},
    {"name": "IDSIA: committee of 25 CNNs (winner, IJCNN 2011)", "accuracy": 99.46, "input": "48x48",
     "augmentation": "translation, rotation, scaling; contrast normalisations",
     "source": "Cireşan et al., Neural Networks 32 (2012)"},
)


def sign_fraction(data: GTSRBData) -> torch.Tensor:
    """``(N,)``: the side of each sign's box as a fraction of its photograph's side,
    ``sqrt(box area / image area)`` (about 0.8: the crops keep a ~10% margin)."""
    box_w = (data.column("roi_x2") - data.column("roi_x1") + 1).double()
    box_h = (data.column("roi_y2") - data.column("roi_y1") + 1).double()
    return torch.sqrt(box_w * box_h / (data.column("width") * data.column("height")).double()).float()


@torch.no_grad()
def input_zoom(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """``(N,)``: the side of the region the model's *input* transformer samples, as a fraction
    of the image's side, ``sqrt(|det A|)`` of θ's 2x2 part (1: the whole image; 0.8: it
    crops to the central 80%)."""
    transformer = model.input_transformer
    was_training = transformer.training
    transformer.eval()
    device = next(transformer.parameters()).device
    _, params, _ = transformer.transform_input(images.to(device))
    transformer.train(was_training)
    theta = params.view(-1, 2, 3).cpu()
    return torch.linalg.det(theta[:, :, :2]).abs().sqrt()


def track_indices(data: GTSRBData, label: int, track: int) -> torch.Tensor:
    """Positions ``(30,)`` of one track's frames (one physical sign, the camera approaching)."""
    chosen = (data.data.labels == label) & (data.column("track") == track)
    return torch.nonzero(chosen).flatten()


def per_class_error_percent(labels: torch.Tensor, predictions: torch.Tensor, num_classes: int = 43) -> torch.Tensor:
    """``(num_classes,)``: each class's test error in percent (labels, predictions ``(N,)``)."""
    total = torch.bincount(labels, minlength=num_classes).clamp_min(1)
    wrong = torch.bincount(labels[labels != predictions], minlength=num_classes)
    return 100.0 * wrong / total


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


def plot_zoom_vs_size(fraction: np.ndarray, zoom: np.ndarray, correlation: float) -> Figure:
    """Scatter of the transformer's zoom against the sign's true share of the image side."""
    fig = new_figure((4.6, 4.0), layout="constrained")
    ax = fig.subplots()
    ax.scatter(fraction, zoom, s=4, alpha=0.4)
    low, high = min(fraction.min(), zoom.min()), max(fraction.max(), zoom.max())
    ax.plot([low, high], [low, high], "k--", lw=1, label="zoom = sign size")
    ax.set(xlabel="sign box side / image side (from the metadata)",
           ylabel="sampled side / image side (input transformer)",
           title=f"Pearson correlation r = {correlation:.2f}")
    ax.legend(loc="upper left")
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


def results_table(records: Sequence[dict]) -> str:
    """Markdown: the published results (:data:`PUBLISHED`) and our GTSRB runs (results JSON
    records from :func:`stn_course.experiments.load_run_results`) in one table."""
    lines = ["| model | test accuracy | input | augmentation | epochs | training time | source |",
             "| --- | ---: | --- | --- | ---: | ---: | --- |"]
    for row in PUBLISHED:
        lines.append(f"| {row['name']} | {row['accuracy']:.2f}% | {row['input']} | {row['augmentation']} "
                     f"| | | {row['source']} (published) |")
    for record in records:
        config = record["config"]
        augmentation = "small random affine (±10°, scale 0.9–1.1, shift ±1.6 px)" if config["augment"] else "none"
        lines.append(f"| ours: `{config['model']}` | {100 * record['test_accuracy']:.2f}% | 32x32 | {augmentation} "
                     f"| {record['epochs']} | {record['seconds_total'] / 60:.0f} min | `{record['command']}` |")
    return "\n".join(lines)
