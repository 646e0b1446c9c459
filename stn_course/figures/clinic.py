"""Figures of notebook 08 (when spatial transformers go wrong): one case of the clinic, its
runs side by side over training (loss, sampling points outside the input, median zoom) and at
the end (the region each run's θ samples on the first test images, and what it outputs); and
the clinic at a glance (every case's test accuracy, broken against fixed).

The records are ``results/clinic_<case>.json`` (:func:`stn_course.clinic.train_case`); the
outputs come from :func:`stn_course.clinic.transformer_outputs`.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

from ..plot import as_hwc, clean_axes, new_figure, show_image
from .sampling import draw_sampled_region

#: the run colours: a broken run red, the fix green, others in turn
RUN_COLORS = {"broken": "tab:red", "unbounded": "tab:red", "fixed": "tab:green", "bounded": "tab:blue",
              "as-is": "tab:green"}
#: the readings logged while a run trains: key and axis label
READINGS = (("loss", "training loss"), ("outside", "points outside the input"), ("zoom", "median zoom"))


def _curve(log: Sequence[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
    """Steps and values of ``key`` in a run's log (None, a θ no longer finite, as NaN)."""
    steps = np.array([entry["step"] for entry in log], dtype=float)
    values = np.array([np.nan if entry[key] is None else entry[key] for entry in log], dtype=float)
    return steps, values


def plot_case(record: dict, images: torch.Tensor, outputs: dict[str, torch.Tensor],
              align_corners: dict[str, bool] | None = None) -> Figure:
    """One clinic case: the three readings over training for each run (top), then for each run
    the region its θ samples on ``images`` ``(N, C, H, W)`` in [0, 1] and its ``outputs``
    (label -> ``(N, C, H, W)``, :func:`stn_course.clinic.transformer_outputs`). An output that
    is all padding has its region said in words (it lies far off the image). ``align_corners``:
    per run, the convention the region is drawn with (its grid's; default False)."""
    labels = list(outputs)
    count = len(images)
    fig = new_figure((max(1.35 * count, 9.0), 3.0 + 2.9 * len(labels)))
    # row 1 is a spacer between the curves' step axes and the first row of images
    grid = fig.add_gridspec(2 + 2 * len(labels), count, height_ratios=[1.6, 0.25] + [1.0] * 2 * len(labels),
                            hspace=0.45, wspace=0.35)
    thirds = np.array_split(np.arange(count), len(READINGS))
    for (key, title), columns in zip(READINGS, thirds):
        ax = fig.add_subplot(grid[0, columns[0]:columns[-1] + 1])
        values = []
        for label in labels:
            steps, curve = _curve(record["runs"][label]["log"], key)
            ax.plot(steps, curve, color=RUN_COLORS.get(label), label=label, lw=1.8)
            values.extend(curve[np.isfinite(curve)])
        positive = [value for value in values if value > 0]
        if key == "zoom" and positive and max(positive) / min(positive) > 20:  # a blow-up spans decades
            ax.set_yscale("log")
            title += " (log scale)"
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        if key == "loss":
            ax.legend(fontsize=7)
    height, width = images.shape[-2:]
    for row, label in enumerate(labels):
        theta = np.array(record["runs"][label]["theta_first_test_images"], dtype=float)
        corners = (align_corners or {}).get(label, False)
        accuracy = 100 * record["runs"][label]["test_accuracy"]
        for column in range(count):
            ax = fig.add_subplot(grid[2 + 2 * row, column])
            show_image(ax, as_hwc(images[column]), vmin=0, vmax=1)
            ax.set_xlim(-0.5, width - 0.5)
            ax.set_ylim(height - 0.5, -0.5)
            if np.isfinite(theta[column]).all():
                draw_sampled_region(ax, theta[column], (height, width), corners,
                                    color=RUN_COLORS.get(label, "tab:orange"), lw=1.5)
            clean_axes(ax, f"{label}: {accuracy:.1f}%" if column == 0 else None)
            ax = fig.add_subplot(grid[3 + 2 * row, column])
            show_image(ax, as_hwc(outputs[label][column]), vmin=0, vmax=1)
            if not outputs[label][column].any():  # every sampling point fell outside: all padding
                ax.text(width / 2, height / 2, "region far\noff the image", ha="center", va="center",
                        fontsize=7, color="white")
            clean_axes(ax, "its output" if column == 0 else None)
    fig.suptitle(record["title"], fontsize=11)
    return fig


def plot_clinic_accuracies(records: dict[str, dict]) -> Figure:
    """Every case's runs' test accuracy after the same budget, one group of bars per case."""
    fig = new_figure((10.0, 3.4))
    ax = fig.add_subplot(1, 1, 1)
    for position, (case, record) in enumerate(records.items()):
        runs = record["runs"]
        width = 0.8 / len(runs)
        for index, (label, run) in enumerate(runs.items()):
            x = position - 0.4 + width * (index + 0.5)
            ax.bar(x, 100 * run["test_accuracy"], width * 0.9, color=RUN_COLORS.get(label, "tab:gray"))
            ax.text(x, 100 * run["test_accuracy"] + 1, label, rotation=90, ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(records)), list(records), rotation=20, fontsize=8)
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 125)
    ax.set_title("Each case after the same short run: its broken and its fixed version", fontsize=10)
    return fig
