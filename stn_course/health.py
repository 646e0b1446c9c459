"""Diagnosing a spatial transformer from its θ: :func:`health_check` runs a model on a batch of
images and reads what its transformer did: where the sampling points fall, the zoom, rotation,
shear and translation in θ, how far θ is from the identity, and a verdict line per symptom
with its likely cause (θ blew up, output shrunk or magnified, mirrored, in the padding, no
identity initialisation, grey frame, ``align_corners`` mismatch, truncated θ, saturated bound,
a localisation that ignores its input, nothing to undo). Zoom is
:func:`stn_course.parameterisation.zoom_from_theta` (above 1 magnifies), as in the notebooks.
The sampling is probed too: a black image is fed through the model to see what the transformer
pads against, and its output is compared with its input resampled with its θ.

It works on the course's models and on a learner's own ``nn.Module``. What it needs is **one
attribute**: the transformer is a submodule (or the model itself) whose ``forward`` takes the
images ``(N, C, H, W)`` and returns the sampled images, and which stores the θ it used in
``last_theta`` after each forward, ``(N, 6)`` or ``(N, 2, 3)`` for an affine transformer, as
:class:`stn_course.models.SpatialTransformer` does. Optional: ``last_grid`` ``(N, H_out,
W_out, 2)`` (for projective and TPS transformers, which are read through an affine fit of
their grid), ``align_corners`` and ``padding_mode`` (defaults ``False`` and ``"zeros"``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .errors import CourseError
from .models import transformer_of
from .parameterisation import params_from_theta, zoom_from_theta
from .utils import evaluating

if TYPE_CHECKING:  # annotations only
    from .recipes import RunConfig

IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
#: quantiles every distribution is summarised by: min, 5%, median, 95%, max
QUANTILES = (0.0, 0.05, 0.5, 0.95, 1.0)

# Symptoms, each with its likely cause and fix: the verdict lines of a report.
NOT_FINITE = "θ is not finite (NaN or inf): training diverged — lower the localisation learning rate, clip gradients"
BLOWN_UP = ("points leave the image ({outside:.0%} of sampling points outside the input, |θ| up to {peak:.3g}): "
            "θ blew up — lower the localisation learning rate, clip gradients (max_grad_norm)")
SHRUNK = ("output shrunk onto the padding (median zoom x{zoom:.2f}, {outside:.0%} of points outside): "
          "θ's scale grew — a lower localisation learning rate or a bounded θ keeps it in the image")
OFF_IMAGE = ("points leave the image ({outside:.0%} of sampling points outside the input): θ moved the sampled "
             "region off the input — lower the localisation learning rate, clip gradients")
PADDED = ("{outside:.0%} of the output is padding (sampling points outside the input): θ zooms out or shifts "
          "past the edge — harmless where the padding is the background (black MNIST); on photos it is a black "
          "frame: padding_mode='border', a bounded θ or a lower localisation learning rate keep it in")
MAGNIFIED = ("output magnified (median zoom x{zoom:.2f}): the transformer reads a small patch — from the start this "
             "means no identity initialisation (zero the localisation's last weights, identity bias); "
             "learned on a large canvas it is attention")
MIRRORED = ("θ mirrors {share:.0%} of the images (det A < 0): a random, not identity, initialisation "
            "(zero the localisation's last weights, identity bias)")
TRUNCATED = ("θ holds only whole numbers: it was written into an integer tensor, which truncates "
             "(0.9 becomes 0) — build θ as a float tensor, e.g. params.view(-1, 2, 3)")
EXACT_IDENTITY = ("θ is exactly the identity for every image: the localisation's last layer is still at its "
                  "identity initialisation — untrained, or no gradient reaches it (e.g. θ written into an integer "
                  "tensor, which truncates it and cuts the gradient)")
NEAR_IDENTITY = ("θ stays at the identity (for 90% of the images rotation within ±{angle:.1f}°, translation within "
                 "±{shift:.2f}, zoom x{low:.2f} to x{high:.2f}): nothing to undo (not a bug) — the images need no "
                 "transforming, e.g. plain MNIST; on distorted data, check the localisation learns")
SATURATED = ("θ sits at its bound in {share:.0%} of the images (a saturated tanh): a bounded θ cannot blow up, "
             "but at the bound its gradient vanishes and it stops learning — lower the localisation learning "
             "rate or widen the bound")
CONSTANT = ("θ is the same for every image (and not the identity): the localisation ignores its input — its "
            "ReLUs died after too large steps, or a bounded θ saturated; lower the localisation learning rate, "
            "clip gradients")
GREY_FRAME = ("grey frame where sampling points leave the input ({outside:.1%} of them now): the transformer's "
              "input for a black image is {value:.3g}, but it pads with 0 — an image transformer should sample the "
              "raw image and normalise after it (pytorch/tutorials#1117); a feature transformer can pad with 'border'")
ALIGN_CORNERS = ("the identity does not give the image back: align_corners is {grid} in affine_grid but "
                 "{sample} in grid_sample, so θ is scaled by W/(W-1) about the centre — pass the same value to both")
INCONSISTENT = ("the output is not the input sampled with last_theta: θ changed after it was stored "
                "(e.g. truncated in an integer tensor) or another sampler is used")
HEALTHY = "no symptom: most sampling points stay in the image and the zoom is in a usual range"


@dataclass
class HealthReport:
    """What :func:`health_check` found: numbers, then one verdict line per symptom.

    Every distribution is ``(min, 5%, median, 95%, max)`` over the images (:data:`QUANTILES`).
    """

    images: int
    source: str  # "θ", or "affine fit of the grid" for projective and TPS transformers
    outside: float  # share of sampling points outside the input (|x| or |y| > 1)
    zoom: tuple[float, ...]  # parameterisation.zoom_from_theta: above 1 magnifies
    rotation: tuple[float, ...]  # degrees
    shear: tuple[float, ...]
    translation_x: tuple[float, ...]
    translation_y: tuple[float, ...]
    distance: tuple[float, ...]  # ||θ - identity|| (Frobenius)
    mirrored: float  # share of images with det A < 0
    verdicts: list[str] = field(default_factory=list)
    transformer: str = ""  # its name in the model ("" for the model itself)
    transformers: int = 1  # how many the model has (each with a last_theta)

    @property
    def healthy(self) -> bool:
        """No symptom, or only "θ stays at the identity" (not a bug)."""
        return all(verdict == HEALTHY or verdict.startswith(NEAR_IDENTITY[:18]) for verdict in self.verdicts)

    def __str__(self) -> str:
        def row(name: str, values: tuple[float, ...]) -> str:
            return f"  {name:<22}" + "  ".join(f"{v:>9.3g}" for v in values)

        which = f"; of {self.transformer}, one of {self.transformers} transformers" if self.transformers > 1 else ""
        lines = [f"Spatial transformer health check ({self.images} images, read from {self.source}{which})",
                 f"  sampling points outside the input: {self.outside:.1%}; mirrored (det < 0): {self.mirrored:.1%}",
                 f"  {'':<22}" + "  ".join(f"{name:>9}" for name in ("min", "5%", "median", "95%", "max")),
                 row("zoom (>1 magnifies)", self.zoom), row("rotation (degrees)", self.rotation),
                 row("shear", self.shear), row("translation x", self.translation_x),
                 row("translation y", self.translation_y), row("distance to identity", self.distance),
                 "Verdict:"]
        return "\n".join(lines + [f"  - {verdict}" for verdict in self.verdicts])


def find_transformer(model: nn.Module) -> nn.Module:
    """The course's first :class:`~stn_course.models.SpatialTransformer` in ``model``, else the
    first submodule (the model itself included) with a ``last_theta`` attribute."""
    found = transformer_of(model) or next((m for m in model.modules() if hasattr(m, "last_theta")), None)
    if found is None:
        raise ValueError("no spatial transformer found: give the module that samples the images a `last_theta` "
                         "attribute holding the θ of its last forward, (N, 6) or (N, 2, 3)")
    return found


@torch.no_grad()
def _run(model: nn.Module, transformer: nn.Module, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``model`` on ``images`` in eval mode; the transformer's input and output, on the CPU."""
    captured: list[tuple[torch.Tensor, torch.Tensor]] = []
    handle = transformer.register_forward_hook(
        lambda module, inputs, output: captured.append((inputs[0], output[0] if isinstance(output, tuple) else output)))
    try:
        with evaluating(model):
            device = next(model.parameters()).device
            model(images.to(device))
    finally:
        handle.remove()
    if not captured:
        raise ValueError("the model did not call its transformer")
    return captured[0][0].detach().float().cpu(), captured[0][1].detach().float().cpu()


def _affine(transformer: nn.Module, count: int) -> tuple[torch.Tensor, str]:
    """θ ``(N, 2, 3)`` float64: the transformer's own for an affine one, else a least-squares
    affine fit of its last grid (where each output point reads)."""
    theta = getattr(transformer, "last_theta", None)
    if theta is None:
        raise ValueError("the transformer's last_theta is None after a forward: store θ there")
    theta = theta.detach().cpu()
    if theta[0].numel() == 6:
        return theta.reshape(count, 2, 3).double(), "θ"
    grid = getattr(transformer, "last_grid", None)
    if grid is None:
        raise ValueError("a transformer with other than 6 parameters needs last_grid (N, H_out, W_out, 2)")
    grid = grid.detach().cpu().double()
    # the output points in normalised coordinates: the identity's grid, with the transformer's convention
    base = F.affine_grid(torch.from_numpy(IDENTITY)[None], [1, 1, *grid.shape[1:3]],
                         align_corners=getattr(transformer, "align_corners", False)).flatten(1, 2)[0]
    points = torch.cat([base, torch.ones(len(base), 1, dtype=torch.float64)], dim=1)  # (P, 3)
    grid = grid.flatten(1, 2)  # (N, P, 2)
    fit = torch.linalg.lstsq(points.expand(count, -1, -1), grid).solution  # (N, 3, 2)
    return fit.transpose(1, 2), "affine fit of the grid"


def _outside(transformer: nn.Module, theta: torch.Tensor, output: torch.Tensor) -> float:
    """Share of sampling points outside the input: from ``last_grid``, else from θ."""
    grid = getattr(transformer, "last_grid", None)
    if grid is None:
        corners = getattr(transformer, "align_corners", False)
        grid = F.affine_grid(theta.float(), list(output.shape), align_corners=corners)
    grid = grid.detach().cpu()
    return float((grid.abs() > 1).any(dim=-1).float().mean()) if torch.isfinite(grid).all() else 1.0


def _quantiles(values: np.ndarray) -> tuple[float, ...]:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return (float("nan"),) * len(QUANTILES)
    return tuple(float(v) for v in np.quantile(values, QUANTILES))


@torch.no_grad()
def health_check(model: nn.Module, images: torch.Tensor, transformer: nn.Module | None = None) -> HealthReport:
    """Diagnose the spatial transformer of ``model`` on ``images`` ``(N, C, H, W)`` (as the model
    takes them, e.g. in [0, 1]): θ read and decomposed, the sampling probed, one verdict per symptom.

    Args:
        model: a trained or training classifier (run in eval mode; its mode is given back).
        images: a batch of test images (a few hundred is plenty).
        transformer: the module that samples; default :func:`find_transformer`'s choice (after
            one forward pass if need be: a module may set ``last_theta`` only when it runs).
    """
    if transformer is None and not any(hasattr(module, "last_theta") for module in model.modules()):
        with evaluating(model), torch.no_grad():
            model(images[:1])
    transformer = transformer or find_transformer(model)
    inputs, outputs = _run(model, transformer, images)
    raw = transformer.last_theta.detach().cpu()
    theta, source = _affine(transformer, len(inputs))
    readings = _readings(theta.numpy())
    report = HealthReport(images=len(inputs), source=source, outside=_outside(transformer, theta, outputs),
                          **readings)
    report.verdicts = _theta_verdicts(report, raw, theta.numpy())
    report.transformer = next(name for name, module in model.named_modules() if module is transformer) \
        if any(module is transformer for module in model.modules()) else ""
    report.transformers = sum(hasattr(module, "last_theta") for module in model.modules())
    probes = [_grey_frame(model, transformer, images, report.outside)]
    if source == "θ" and torch.isfinite(theta).all():
        probes.append(_sampling(transformer, inputs, outputs, theta))
    found = [verdict for verdict in probes if verdict]
    if found:  # a bug in the code: θ near the identity is then no sign of health
        report.verdicts = [v for v in report.verdicts if not v.startswith(NEAR_IDENTITY[:18])]
    report.verdicts += found
    if not report.verdicts:
        report.verdicts = [HEALTHY]
    return report


def _readings(theta: np.ndarray) -> dict:
    """The distributions of :class:`HealthReport` from θ ``(N, 2, 3)``."""
    finite = np.isfinite(theta).all(axis=(1, 2))
    safe = np.where(finite[:, None, None], theta, IDENTITY)
    params = params_from_theta(safe)

    def keep(values: np.ndarray) -> np.ndarray:  # NaN for the images whose θ is not finite
        return np.where(finite, values, np.nan)

    det = np.linalg.det(safe[:, :, :2])
    return {"zoom": _quantiles(keep(zoom_from_theta(safe))), "rotation": _quantiles(keep(params["angle"])),
            "shear": _quantiles(keep(params["shear"])),
            "translation_x": _quantiles(keep(params["translation"][0])),
            "translation_y": _quantiles(keep(params["translation"][1])),
            "distance": _quantiles(keep(np.linalg.norm(safe - IDENTITY, axis=(1, 2)))),
            "mirrored": float(np.mean(det[finite] < 0)) if finite.any() else 0.0}


def _theta_verdicts(report: HealthReport, raw: torch.Tensor, theta: np.ndarray) -> list[str]:
    """The symptoms θ itself shows (see the module's constants for each cause)."""
    if not np.isfinite(theta).all():
        return [NOT_FINITE]
    peak = float(np.abs(theta).max())
    if not raw.is_floating_point() or (np.all(theta == np.round(theta)) and not np.all(theta == IDENTITY)):
        return [TRUNCATED]
    if np.all(theta == IDENTITY):
        return [EXACT_IDENTITY]
    zoom = report.zoom[2]
    verdicts = []
    blown_up = report.outside > 0.5 and peak > 3
    if blown_up:
        verdicts.append(BLOWN_UP.format(outside=report.outside, peak=peak))
    elif zoom < 0.6:
        verdicts.append(SHRUNK.format(zoom=zoom, outside=report.outside))
    elif report.outside > 0.5:
        verdicts.append(OFF_IMAGE.format(outside=report.outside))
    elif report.outside > 0.3:
        verdicts.append(PADDED.format(outside=report.outside))
    if zoom > 2.5:
        verdicts.append(MAGNIFIED.format(zoom=zoom))
    if report.mirrored > 0.05 and not blown_up:  # a diverging θ swings through every orientation
        verdicts.append(MIRRORED.format(share=report.mirrored))
    verdicts += _saturated_or_constant(theta)
    if not verdicts and report.outside < 0.05:
        verdicts += _near_identity(report)
    return verdicts


def _near_identity(report: HealthReport) -> list[str]:
    """"Nothing to undo": for 90% of the images (5% to 95%) θ rotates by less than 10°, shifts by
    less than 0.1 (a twentieth of the image) and zooms by x0.8 to x1.3."""
    angle = max(abs(report.rotation[1]), abs(report.rotation[3]))
    shift = max(abs(v) for v in (*report.translation_x[1:4], *report.translation_y[1:4]))
    low, high = report.zoom[1], report.zoom[3]
    if angle < 10 and shift < 0.1 and 0.8 < low and high < 1.3:
        return [NEAR_IDENTITY.format(angle=angle, shift=shift, low=low, high=high)]
    return []


def _saturated_or_constant(theta: np.ndarray) -> list[str]:
    """A bound reached: the batch's largest deviation from the identity in an entry of θ,
    shared (to 1e-5) by at least a quarter of the images. If θ is the same for every image and
    away from the identity, it is at a bound only if all its deviations have one size (a tanh
    bound is one number); else the localisation ignores its input."""
    deviation = np.abs(theta - IDENTITY).reshape(len(theta), 6)
    if len(theta) > 1 and np.all(np.ptp(theta, axis=0) < 1e-6) and deviation.max() > 0.05:
        moved = deviation[0][deviation[0] > 1e-6]
        return [SATURATED.format(share=1.0)] if np.ptp(moved) < 1e-5 * moved.max() else [CONSTANT]
    bound = deviation.max(axis=0)
    at_bound = (deviation >= bound * (1 - 1e-5)) & (bound > 0.05)
    shared = at_bound.sum(axis=0) >= max(2, len(theta) // 4)
    share = float((at_bound & shared).any(axis=1).mean())
    return [SATURATED.format(share=share)] if share > 0.25 else []


def _grey_frame(model: nn.Module, transformer: nn.Module, images: torch.Tensor, outside: float) -> str | None:
    """Probe: does a black input (all 0) reach the transformer as 0, the value it pads with?"""
    padding = getattr(transformer, "padding_mode", "zeros")
    if padding != "zeros":
        return None  # "border" and "reflection" repeat the image's own values: no frame
    inputs, _ = _run(model, transformer, torch.zeros_like(images[:2]))
    value = float(inputs.flatten()[inputs.abs().flatten().argmax()])
    return GREY_FRAME.format(value=value, outside=outside) if abs(value) > 1e-3 else None


def _sampling(transformer: nn.Module, inputs: torch.Tensor, outputs: torch.Tensor, theta: torch.Tensor) -> str | None:
    """Probe: resample the transformer's input with its θ under each pair of ``align_corners``
    (affine_grid's, grid_sample's) and see which one gave its output."""
    if outputs.dim() != 4 or outputs.shape[:2] != inputs.shape[:2]:
        return None
    padding = getattr(transformer, "padding_mode", "zeros")
    scale = float(inputs.abs().max()) or 1.0
    errors = {}
    for grid_corners in (False, True):
        grid = F.affine_grid(theta.float(), list(outputs.shape), align_corners=grid_corners)
        for sample_corners in (False, True):
            expected = F.grid_sample(inputs, grid, padding_mode=padding, align_corners=sample_corners)
            errors[grid_corners, sample_corners] = float((expected - outputs).abs().max()) / scale
    (grid_corners, sample_corners), best = min(errors.items(), key=lambda item: item[1])
    if best > 1e-3:
        return INCONSISTENT
    matched = min(errors[False, False], errors[True, True])
    if grid_corners != sample_corners and matched > 10 * best:
        return ALIGN_CORNERS.format(grid=grid_corners, sample=sample_corners)
    return None


def diagnose_run(config: RunConfig, device: torch.device | None = None, images: int = 1000) -> list[HealthReport]:
    """:func:`health_check` of each spatial transformer of the finished run ``config`` (loaded
    like ``errors`` loads it, :func:`~stn_course.experiments.load_trained`) on the first
    ``images`` of its test set: what ``python -m stn_course diagnose`` prints."""
    from .experiments import load_trained  # here: experiments imports the whole training stack

    experiment, _ = load_trained(config, device)
    transformers = [module for module in experiment.model.modules() if hasattr(module, "last_theta")]
    if not transformers:
        raise CourseError(f"{config.model} has no spatial transformer to diagnose: "
                          f"choose a model with a spatial transformer")
    batches, count = [], 0
    for batch, _ in experiment.test_loader:
        batches.append(batch)
        count += len(batch)
        if count >= images:
            break
    probe = torch.cat(batches)[:images]
    return [health_check(experiment.model, probe, transformer) for transformer in transformers]
