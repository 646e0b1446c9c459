"""Traffic signs (GTSRB) in notebook 06: the signs' sizes from the dataset's metadata, what
the transformers learned (the input zoom), a track's images and per-class errors. (Its
figures: :mod:`stn_course.figures.traffic_signs`; the published results beside ours:
:mod:`stn_course.published`, :func:`stn_course.report.gtsrb_table`.)

Conventions: images are float ``(N, 3, H, W)`` in [0, 1]; metadata comes from
:class:`stn_course.gtsrb.GTSRBData` (boxes in the original photograph's pixels).
"""
from __future__ import annotations

import torch
from torch import nn

from .gtsrb import GTSRBData


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
