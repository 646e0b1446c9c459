"""Traffic signs (GTSRB) in notebook 06: the signs' sizes from the dataset's metadata, what
the transformers learned (the input zoom), a track's images and per-class errors. (Its
figures: :mod:`stn_course.figures.traffic_signs`; the published results beside ours:
:mod:`stn_course.published`, :func:`stn_course.report.gtsrb_table`.)

Conventions: images are float ``(N, 3, H, W)`` in [0, 1]; metadata comes from
:class:`stn_course.gtsrb.GTSRBData` (boxes in the original photograph's pixels).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .gtsrb import GTSRBData
from .parameterisation import zoom_from_theta


def sign_fraction(data: GTSRBData) -> torch.Tensor:
    """``(N,)``: the side of each sign's box as a fraction of its photograph's side,
    ``sqrt(box area / image area)`` (about 0.8: the crops keep a ~10% margin)."""
    box_w = (data.column("roi_x2") - data.column("roi_x1") + 1).double()
    box_h = (data.column("roi_y2") - data.column("roi_y1") + 1).double()
    return torch.sqrt(box_w * box_h / (data.column("width") * data.column("height")).double()).float()


def original_side(data: GTSRBData) -> torch.Tensor:
    """``(N,)``: each photograph's original side in pixels, ``sqrt(width * height)`` (before it was
    resized to the dataset's 32x32 or 48x48)."""
    return (data.column("width") * data.column("height")).double().sqrt().float()


@torch.no_grad()
def input_theta(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """``(N, 2, 3)``: the θ of the model's *input* transformer for ``images``, on the CPU."""
    transformer = model.input_transformer
    was_training = transformer.training
    transformer.eval()
    device = next(transformer.parameters()).device
    _, params, _ = transformer.transform_input(images.to(device))
    transformer.train(was_training)
    return params.detach().view(-1, 2, 3).float().cpu()


def input_zoom(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """``(N,)``: the zoom of the model's input transformer, the course's one zoom
    (:func:`stn_course.parameterisation.zoom_from_theta`, 1/√|det A|: above 1 it magnifies; the
    sampled region's side is 1/zoom of the image's)."""
    return torch.from_numpy(zoom_from_theta(input_theta(model, images).double().numpy())).float()


@dataclass
class CropAnalysis:
    """Does the input transformer crop to the sign? Its zoom against the zoom that would make the
    sign's box fill the frame (1 / :func:`sign_fraction`), with the confound held fixed: GTSRB's
    margin is a fixed number of pixels, so a small photograph's sign fills less of it, and the
    sign's share of the crop largely measures the photograph's original side."""

    zoom: np.ndarray  # (N,) the transformer's zoom
    fill: np.ndarray  # (N,) 1 / sign fraction: the zoom that fills the frame with the sign's box
    side: np.ndarray  # (N,) the photograph's original side (pixels)
    r_zoom_fill: float  # Pearson r(zoom, fill)
    r_fill_side: float  # r(fill, log side): how much the sign's share is the photograph's size
    r_partial: float  # r(zoom, fill) with log side held fixed (both regressed on it)
    r_within_bins: list[float]  # r(zoom, fill) within each quarter of the photographs by side
    aspect: float  # median a11 / a22: below 1 the sampled region is narrower than tall

    def __str__(self) -> str:
        bins = ", ".join(f"{r:.2f}" for r in self.r_within_bins)
        return (f"{len(self.zoom)} images: zoom median {np.median(self.zoom):.2f}, fill zoom median "
                f"{np.median(self.fill):.2f}\n"
                f"  r(zoom, fill zoom) = {self.r_zoom_fill:.2f}; r(fill zoom, log original side) = {self.r_fill_side:.2f}\n"
                f"  with the original side held fixed: partial r = {self.r_partial:.2f}; "
                f"within each quarter by side: {bins}\n"
                f"  median a11/a22 = {self.aspect:.2f} (below 1: the sampled region is narrower than tall)")


def _residual(values: np.ndarray, covariate: np.ndarray) -> np.ndarray:
    slope, intercept = np.polyfit(covariate, values, 1)
    return values - (slope * covariate + intercept)


def crop_analysis(theta: torch.Tensor, fraction: torch.Tensor, side: torch.Tensor) -> CropAnalysis:
    """:class:`CropAnalysis` of the input transformer's θ ``(N, 2, 3)`` against the signs' box
    fractions and the photographs' original sides ``(N,)`` (:func:`sign_fraction`, :func:`original_side`)."""
    theta_np = theta.double().numpy()
    zoom, fill = zoom_from_theta(theta_np), 1.0 / fraction.double().numpy()
    log_side = np.log(side.double().numpy())

    def r(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.corrcoef(a, b)[0, 1])

    quarters = np.quantile(log_side, [0.25, 0.5, 0.75])
    bin_of = np.searchsorted(quarters, log_side)
    within = [r(zoom[bin_of == b], fill[bin_of == b]) for b in range(4) if (bin_of == b).sum() > 2]
    return CropAnalysis(zoom=zoom, fill=fill, side=side.numpy(), r_zoom_fill=r(zoom, fill),
                        r_fill_side=r(fill, log_side),
                        r_partial=r(_residual(zoom, log_side), _residual(fill, log_side)), r_within_bins=within,
                        aspect=float(np.median(theta_np[:, 0, 0] / theta_np[:, 1, 1])))


def track_indices(data: GTSRBData, label: int, track: int) -> torch.Tensor:
    """Positions ``(30,)`` of one track's frames (one physical sign, the camera approaching)."""
    chosen = (data.data.labels == label) & (data.column("track") == track)
    return torch.nonzero(chosen).flatten()


def per_class_error_percent(labels: torch.Tensor, predictions: torch.Tensor, num_classes: int = 43) -> torch.Tensor:
    """``(num_classes,)``: each class's test error in percent (labels, predictions ``(N,)``)."""
    total = torch.bincount(labels, minlength=num_classes).clamp_min(1)
    wrong = torch.bincount(labels[labels != predictions], minlength=num_classes)
    return 100.0 * wrong / total
