"""Looking inside a trained model: what its spatial transformer does to given images,
where two transformers in series read the input, Grad-CAM heat maps, and θ decomposed
into angle, scale, shear and translation.

Every tool runs the model in eval mode (:func:`stn_course.utils.evaluating`) and gives it
back in the mode it had; results are on the CPU, ready to plot.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .models import SeriesSTClassifier, SpatialTransformer, compose_affine, transformer_of
from .parameterisation import params_from_theta, zoom_from_theta
from .utils import evaluating


@torch.no_grad()
def apply_transformer(model: nn.Module, images: torch.Tensor,
                      transformer: SpatialTransformer | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run one spatial transformer of ``model`` (default: its first) on ``images`` ``(N, C, H, W)``.

    Returns ``(outputs (N, C, Ho, Wo), params (N, P), grids (N, Ho, Wo, 2))`` on the CPU,
    in eval mode, e.g. for plotting what a trained transformer does.
    """
    transformer = transformer or transformer_of(model)
    if transformer is None:
        raise ValueError("model has no SpatialTransformer")
    with evaluating(transformer):
        device = next(transformer.parameters()).device
        outputs, params, grids = transformer.transform_input(images.to(device))
    return outputs.cpu(), params.cpu(), grids.cpu()


@torch.no_grad()
def series_regions(model: SeriesSTClassifier, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Where each of two transformers in series reads the *input* ``(N, C, H, W)``.

    Returns ``(first_output, first_grid, second_view, second_grid)``: the input
    transformer's output and grid, and, for the feature-map transformer, its θ composed
    with the first (:func:`~stn_course.models.compose_affine`) as a grid on the input, with
    the input sampled there (what its feature samples correspond to). All on the CPU.
    """
    align_corners = model.feature_transformer.align_corners
    with evaluating(model):
        images = images.to(next(model.parameters()).device)
        first_output, first_params, first_grid = model.input_transformer.transform_input(images)
        features = model.conv1(model.normalize(first_output))
        _, second_params, _ = model.feature_transformer.transform_input(features)
    composed = compose_affine(first_params.view(-1, 2, 3), second_params.view(-1, 2, 3))
    second_grid = F.affine_grid(composed, list(images.shape), align_corners=align_corners)
    second_view = F.grid_sample(images, second_grid, mode="bilinear", padding_mode="zeros",
                                align_corners=align_corners)
    return first_output.cpu(), first_grid.cpu(), second_view.cpu(), second_grid.cpu()


def last_classifier_conv(model: nn.Module) -> nn.Conv2d:
    """The last ``nn.Conv2d`` of ``model`` outside any localisation network (Grad-CAM's layer)."""
    inside_localisation = {id(m) for st in model.modules() if isinstance(st, SpatialTransformer)
                           for m in st.localisation.modules()}
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d) and id(m) not in inside_localisation]
    if not convs:
        raise ValueError("model has no convolution outside its localisation networks")
    return convs[-1]


def grad_cam(model: nn.Module, images: torch.Tensor, layer: nn.Module | None = None,
             target: torch.Tensor | None = None, normalise: bool = True) -> torch.Tensor:
    """Grad-CAM heat maps (Selvaraju et al., 2017): where ``layer`` looks for the class.

    Args:
        model: a classifier returning logits.
        images: ``(N, C, H, W)``, on any device (moved to the model's).
        layer: a convolution of the model (default :func:`last_classifier_conv`). For an
            ST-CNN that layer sees the *transformed* image, so the map is in its coordinates.
        target: classes ``(N,)`` to explain; default the predicted ones.
        normalise: scale each map to a maximum of 1 (for drawing). Set False to compare maps'
            strengths, e.g. one image's maps for two classes.
    Returns:
        ``(N, H_l, W_l)`` maps at the layer's resolution, on the CPU: in [0, 1] if
        ``normalise``, else in the units of activation x gradient (>= 0).
    """
    layer = layer or last_classifier_conv(model)
    captured: list[torch.Tensor] = []
    handle = layer.register_forward_hook(lambda module, inputs, output: captured.append(output))
    try:
        with evaluating(model), torch.enable_grad():
            logits = model(images.to(next(model.parameters()).device))
            target = logits.argmax(1) if target is None else target.to(logits.device)
            score = logits.gather(1, target.view(-1, 1)).sum()
            activations = captured[-1]
            gradients, = torch.autograd.grad(score, activations)
    finally:
        handle.remove()
    weights = gradients.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * activations).sum(dim=1)).detach()
    if not normalise:
        return cam.cpu()
    peak = cam.flatten(1).max(dim=1).values.clamp_min(1e-12).view(-1, 1, 1)
    return (cam / peak).cpu()


def decomposed_theta(model: nn.Module, images: torch.Tensor) -> dict:
    """The affine θ the model's transformer predicts for ``images`` ``(N, C, H, W)``,
    decomposed into angle (degrees), scale, shear and translation, arrays of ``N``
    (:func:`stn_course.parameterisation.params_from_theta`), and its ``zoom``
    (:func:`stn_course.parameterisation.zoom_from_theta`: 1/√|det A|, above 1 magnifies)."""
    transformer = transformer_of(model)
    if transformer is None or transformer.transform != "affine":
        raise ValueError("decomposed_theta needs a model with an affine SpatialTransformer")
    _, params, _ = apply_transformer(model, images)
    theta = params.view(-1, 2, 3).double().numpy()
    return {**params_from_theta(theta), "zoom": zoom_from_theta(theta)}
