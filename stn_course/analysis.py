"""What a trained classifier gets wrong: its misclassified test images, which digits it
confuses, and how many errors are digits that a distortion pushed partly out of the image.

    python -m stn_course errors --dataset proj-mnist --model st-cnn-aff --epochs 42 \\
        --variant full-localisation-lr --set channels_last=true --set amp=true

records ``results/errors_<run>.json`` for a finished run (:func:`error_summary`).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import torch
from torch import nn

from .loader import BatchLoader

#: a pixel of the outermost frame at least this bright (images in [0, 1]) is ink at the edge
EDGE_INK = 0.3


@dataclass
class ModelErrors:
    """A model's errors on a test set.

    Attributes:
        images: ``(E, C, H, W)`` the misclassified test images, in [0, 1], in test-set order.
        labels, predictions: ``(E,)`` their true and predicted classes.
        indices: ``(E,)`` their positions in the test set.
        touches_edge: ``(N,)`` for every test image, whether ink reaches its outermost pixels
            (:func:`touches_edge`).
        wrong: ``(N,)`` for every test image, whether the model misclassified it.
    """

    images: torch.Tensor
    labels: torch.Tensor
    predictions: torch.Tensor
    indices: torch.Tensor
    touches_edge: torch.Tensor
    wrong: torch.Tensor


def touches_edge(images: torch.Tensor, threshold: float = EDGE_INK) -> torch.Tensor:
    """``(N,)``: whether any pixel of the one-pixel frame around each image ``(N, C, H, W)``
    (in [0, 1]) is at least ``threshold``: ink there was most likely cut off by the canvas."""
    frame = torch.cat([images[..., 0, :], images[..., -1, :], images[..., 1:-1, 0], images[..., 1:-1, -1]], dim=-1)
    return frame.flatten(1).amax(dim=1) >= threshold


def collect_errors(model: nn.Module, loader: BatchLoader) -> ModelErrors:
    """Run ``model`` (in eval mode) over ``loader`` (not shuffled) and keep what it got wrong."""
    model.eval()
    kept: dict[str, list[torch.Tensor]] = {"images": [], "labels": [], "predictions": [], "indices": []}
    edge, wrong, start = [], [], 0
    with torch.no_grad():
        for images, labels in loader:
            predictions = model(images).argmax(dim=1)
            mistaken = predictions != labels
            kept["images"].append(images[mistaken].contiguous().cpu())
            kept["labels"].append(labels[mistaken].cpu())
            kept["predictions"].append(predictions[mistaken].cpu())
            kept["indices"].append(start + mistaken.nonzero().flatten().cpu())
            edge.append(touches_edge(images).cpu())
            wrong.append(mistaken.cpu())
            start += len(labels)
    return ModelErrors(**{name: torch.cat(parts) for name, parts in kept.items()},
                       touches_edge=torch.cat(edge), wrong=torch.cat(wrong))


def error_summary(errors: ModelErrors, top: int = 8) -> dict:
    """Counts for a results file: test images, errors, the error rate of images whose ink
    reaches the edge and of the others, and the ``top`` most frequent confusions
    (``{"true": class, "predicted": class, "count": ...}``)."""
    def percent(part: int, whole: int) -> float | None:
        return round(100 * part / whole, 3) if whole else None

    samples, wrong = len(errors.wrong), int(errors.wrong.sum())
    at_edge = int(errors.touches_edge.sum())
    wrong_at_edge = int((errors.wrong & errors.touches_edge).sum())
    confusions = Counter(zip(errors.labels.tolist(), errors.predictions.tolist())).most_common(top)
    return {
        "test_samples": samples,
        "errors": wrong,
        "error_percent": percent(wrong, samples),
        "edge_ink_threshold": EDGE_INK,
        "images_touching_edge": at_edge,
        "errors_touching_edge": wrong_at_edge,
        "error_percent_touching_edge": percent(wrong_at_edge, at_edge),
        "error_percent_inside": percent(wrong - wrong_at_edge, samples - at_edge),
        "confusions": [{"true": true, "predicted": predicted, "count": count}
                       for (true, predicted), count in confusions],
    }


def describe_error_summary(summary: dict, shown: int = 5) -> str:
    """A few lines in words for an :func:`error_summary` (as saved in a results file): how many
    test images are wrong, at the edge and inside, and the ``shown`` most frequent confusions."""
    def rate(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}%"

    lines = [f"{summary['errors']:,} of {summary['test_samples']:,} test images wrong ({rate(summary['error_percent'])}): "
             f"{rate(summary['error_percent_touching_edge'])} of the {summary['images_touching_edge']:,} whose ink "
             f"reaches the edge, {rate(summary['error_percent_inside'])} of the others."]
    confusions = summary["confusions"][:shown]
    if confusions:
        lines.append("Most frequent confusions (true -> predicted: count): "
                     + ", ".join(f"{c['true']} -> {c['predicted']}: {c['count']}" for c in confusions) + ".")
    return "\n".join(lines)
