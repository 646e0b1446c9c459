"""The GTSRB-jitter test sets: the official test set with more geometric variation than training saw.

Where does a spatial transformer earn its keep? Training already jitters every sign a little
(:func:`stn_course.augment.random_affine`: rotation ±10°, zoom 0.9–1.1, shift ±0.1 of the
half-side, i.e. ±1.6 px at 32x32). A jitter test set turns, zooms and shifts each test image
by a random affine map drawn the same way with ranges :data:`JITTER_STRENGTHS` times as wide:

=========  ======  ==========  ==========  ================
strength   times   rotation    zoom        shift (at 32x32)
=========  ======  ==========  ==========  ================
none       0       0°          1           0
weak       2       ±20°        0.8–1.2     ±0.2 (±3.2 px)
medium     3       ±30°        0.7–1.3     ±0.3 (±4.8 px)
strong     4       ±40°        0.6–1.4     ±0.4 (±6.4 px)
=========  ======  ==========  ==========  ================

Each range is uniform; borders are repeated as in training; images are rounded back to uint8.
The draws come from one generator seeded by ``seed`` (default :data:`JITTER_SEED`), for the
whole test set at once, so a set is the same on every machine and a limited (quick) set is a
subset of the full one; and since every strength scales the same uniform draws, an image is
turned the same way at every strength, only further: the strengths are one distortion growing.

:func:`record_jitter` (``python -m stn_course jitter`` with a finished run's options) writes
``jitter_<run>.json``: the run's accuracy at each strength and, for a model with an input
transformer, how its θ follows the applied jitter (:func:`theta_read_back`).
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from .augment import random_affine_theta, warp_affine
from .data import ImageTensors, spread_indices
from .errors import CourseError
from .loader import BatchLoader
from .train import evaluate

if TYPE_CHECKING:
    from .recipes import RunConfig

#: the training jitter's ranges (:func:`stn_course.augment.random_affine`'s defaults), one "time"
TRAINING_JITTER = {"degrees": 10.0, "zoom": 0.1, "shift": 0.1}
#: strength name → multiple of :data:`TRAINING_JITTER`
JITTER_STRENGTHS = {"none": 0, "weak": 2, "medium": 3, "strong": 4}
#: the seed of the course's jitter sets
JITTER_SEED = 0
#: the datasets whose runs are tested on the jitter sets (made from their official test set)
JITTER_DATASETS = {"gtsrb": 32, "gtsrb48": 48}


def jitter_ranges(strength: str) -> dict[str, object]:
    """``random_affine``'s arguments at ``strength`` (a name of :data:`JITTER_STRENGTHS`)."""
    if strength not in JITTER_STRENGTHS:
        raise ValueError(f"unknown jitter strength {strength!r}; choose from {', '.join(JITTER_STRENGTHS)}")
    times = JITTER_STRENGTHS[strength]
    zoom = TRAINING_JITTER["zoom"] * times
    return {"degrees": TRAINING_JITTER["degrees"] * times, "scale": (1 - zoom, 1 + zoom),
            "shift": TRAINING_JITTER["shift"] * times}


def jitter_theta(count: int, strength: str, seed: int = JITTER_SEED) -> torch.Tensor:
    """The θ ``(count, 2, 3)`` that makes the jitter set at ``strength`` from ``count`` images:
    output coordinates → coordinates in the original image."""
    generator = torch.Generator().manual_seed(seed)
    return random_affine_theta(count, generator, **jitter_ranges(strength))


def jittered(data: ImageTensors, strength: str, seed: int = JITTER_SEED, batch: int = 2048) -> ImageTensors:
    """``data`` (uint8 ``(N, C, H, W)``) with each image warped by :func:`jitter_theta`, uint8,
    named ``<name>-jitter-<strength>``. Strength ``"none"`` returns the images unchanged."""
    if JITTER_STRENGTHS[strength] == 0:
        return replace(data, name=f"{data.name}-jitter-none")
    theta = jitter_theta(len(data), strength, seed)
    parts = [warp_affine(data.images[start:start + batch].float() / 255, theta[start:start + batch])
             for start in range(0, len(data), batch)]
    images = (torch.cat(parts) * 255).round_().clamp_(0, 255).to(torch.uint8)
    return replace(data, images=images, name=f"{data.name}-jitter-{strength}")


def jitter_test_set(strength: str, size: int = 32, limit: int | None = None, seed: int = JITTER_SEED) -> ImageTensors:
    """The official GTSRB test set at ``size`` x ``size``, jittered at ``strength``
    (:func:`jittered`, drawn for the whole set), then ``limit`` images kept, spread evenly."""
    from .gtsrb import load_gtsrb

    return jittered(load_gtsrb(train=False, size=size).data, strength, seed).subset(limit)


def _angle_and_log_scale(theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotation angle (degrees) and log of the area scale ``log |det A|`` of θ ``(N, 2, 3)``."""
    angle = torch.rad2deg(torch.atan2(theta[:, 1, 0] - theta[:, 0, 1], theta[:, 0, 0] + theta[:, 1, 1]))
    return angle, torch.linalg.det(theta[:, :, :2]).abs().clamp_min(1e-12).log()


def _correlation(a: torch.Tensor, b: torch.Tensor) -> float | None:
    """Pearson's correlation of two ``(N,)`` tensors, None where either is constant."""
    a, b = a.double() - a.double().mean(), b.double() - b.double().mean()
    norm = a.norm() * b.norm()
    return round(float((a * b).sum() / norm), 4) if norm > 0 else None


@torch.no_grad()
def theta_read_back(model: torch.nn.Module, data: ImageTensors, applied: torch.Tensor,
                    device: torch.device) -> dict[str, float | None]:
    """How the model's input transformer answers the applied jitter θ ``(N, 2, 3)``: the
    correlation over the images of its rotation with the applied rotation, and of its log
    area scale with the applied one. A transformer that undoes the jitter turns and zooms
    the other way (correlations near -1); one that ignores it gives about 0."""
    transformer = model.eval().input_transformer
    thetas = [transformer.transform_input(data.images[start:start + 1000].to(device).float() / 255)[1].cpu()
              for start in range(0, len(data), 1000)]
    read = torch.cat(thetas).view(-1, 2, 3).float()
    (applied_angle, applied_scale), (read_angle, read_scale) = map(_angle_and_log_scale, (applied, read))
    return {"rotation_correlation": _correlation(applied_angle, read_angle),
            "scale_correlation": _correlation(applied_scale, read_scale),
            "mean_abs_rotation_degrees": round(float(read_angle.abs().mean()), 3)}


def jitter_results(model: torch.nn.Module, size: int, device: torch.device, limit: int | None = None,
                   channels_last: bool = False, seed: int = JITTER_SEED) -> list[dict]:
    """One row per strength of :data:`JITTER_STRENGTHS`: its ranges, the model's accuracy and
    error on that jitter set and, for a model with an input transformer, :func:`theta_read_back`."""
    from .gtsrb import load_gtsrb

    test = load_gtsrb(train=False, size=size).data
    # the positions subset(limit) keeps, for the θ of the kept images
    keep = slice(None) if limit is None or limit >= len(test) else torch.from_numpy(spread_indices(len(test), limit))
    rows = []
    for strength, times in JITTER_STRENGTHS.items():
        images = jittered(test, strength, seed).subset(limit)
        _, correct, samples = evaluate(model, BatchLoader(images, 1000, device=device, channels_last=channels_last))
        ranges = jitter_ranges(strength)
        row = {"strength": strength, "times_training_jitter": times,
               "degrees": ranges["degrees"], "scale": list(ranges["scale"]), "shift": ranges["shift"],
               "accuracy": correct / samples, "error_percent": round(100 * (1 - correct / samples), 3),
               "correct": correct, "samples": samples}
        if getattr(model, "input_transformer", None) is not None and times:
            row["theta_read_back"] = theta_read_back(model, images, jitter_theta(len(test), strength, seed)[keep],
                                                     device)
        rows.append(row)
    return rows


def record_jitter(config: RunConfig, device: torch.device | None = None, record: bool | None = None) -> Path:
    """Load the finished run ``config`` (:func:`~stn_course.experiments.load_trained`; a run on
    ``gtsrb`` or ``gtsrb48``) and write ``jitter_<run name>.json``: :func:`jitter_results` on
    its test set's jitter sets (quick mode: its ``test_limit`` images), with the command that
    repeats it, the machine and the time (:func:`stn_course.results.save_result`)."""
    from .experiments import load_trained
    from .results import save_result

    if config.dataset not in JITTER_DATASETS:
        raise CourseError(f"The jitter sets are made from GTSRB's official test set: they test runs on "
                          f"{' or '.join(JITTER_DATASETS)}, not {config.dataset} (a gtsrb-val run is never "
                          f"tested: its recipe is chosen on held-out tracks).")
    experiment, shipped = load_trained(config, device)
    rows = jitter_results(experiment.model, JITTER_DATASETS[config.dataset], experiment.test_loader.device,
                          limit=config.test_limit, channels_last=config.channels_last)
    return save_result(f"jitter_{config.name}", {
        "run": config.name, "model": config.model, "seed": config.seed,
        "weights": "shipped float16" if shipped else "trained", "jitter_seed": JITTER_SEED, "strengths": rows,
    }, config.command("jitter"), record=record)
