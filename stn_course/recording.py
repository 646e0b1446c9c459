"""A transformer learning, recorded once and shipped: notebook 05's "Watching it learn"
(RTS MNIST) and notebook 06's "Learning to crop" (traffic signs).

All of recording θ over an epoch lives here: :class:`TransformerRecorder`, the training
callback that records what the transformer does to fixed images;
:func:`record_transformer_training`, one run trained from scratch with it; and the shipped
recordings of a run (a :class:`~stn_course.recipes.RunConfig`): :func:`record_evolution`,
:func:`load_evolution`, :func:`find_evolution`. The animation itself is a figure
(:func:`stn_course.figures.visualising.animate_transformer_evolution`).

Recording means training an ST-CNN for one epoch from the identity (minutes on a CPU;
the file stores how long it took), so the course records it once, with

    python -m stn_course record-evolution --record
    python -m stn_course record-evolution --dataset gtsrb --model gtsrb-st-cnn --record

and ships the θ history in ``checkpoints/`` (a compressed ``.npz`` of a few kB). The
animation's frames are recomputed from it: a frame's grid is ``affine_grid(θ)`` and its
output ``grid_sample`` of the fixed images on that grid, exactly what the transformer did.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .experiments import Experiment, build_experiment, train_experiment
from .inspection import apply_transformer
from .models import transformer_of
from .recipes import RunConfig, default_config
from .files import write_atomically
from .results import save_result
from .course_files import download, raw_url
from .utils import checkpoint_dir, has_repository, machine_info, shipped_checkpoint_dir


def evolution_run(dataset: str, model: str) -> RunConfig:
    """The run a recording of ``dataset`` and ``model`` trains (``record-evolution --dataset
    --model``): one epoch of the default recipe, from the identity."""
    return default_config(dataset, model, 1)


#: the recorded run: one epoch of the default RTS ST-CNN, from the identity
EVOLUTION_RUN = evolution_run("rts-mnist", "st-cnn-aff")
#: the command that (re)makes the shipped recording
EVOLUTION_COMMAND = "python -m stn_course record-evolution --record"
#: notebook 06's recording: one epoch of the traffic-sign network with two transformers
TRAFFIC_SIGN_EVOLUTION_RUN = evolution_run("gtsrb", "gtsrb-st-cnn")


def evolution_command(run: RunConfig = EVOLUTION_RUN) -> str:
    """The command that (re)makes the shipped recording of ``run``."""
    if run == EVOLUTION_RUN:
        return EVOLUTION_COMMAND
    return f"python -m stn_course record-evolution --dataset {run.dataset} --model {run.model} --record"


def evolution_path(run: RunConfig = EVOLUTION_RUN) -> Path:
    """Where the shipped recording of ``run`` lives: ``checkpoints/<run name>_evolution.npz``."""
    return shipped_checkpoint_dir() / f"{run.name}_evolution.npz"


def find_evolution(run: RunConfig = EVOLUTION_RUN) -> Path:
    """The shipped recording if it is there (installed without the repository: downloaded from
    it once), else a learner's own: the same file name under :func:`stn_course.utils.checkpoint_dir`
    (outside the repository; it may not exist yet)."""
    shipped = evolution_path(run)
    if not shipped.exists() and not has_repository():  # Colab: the repository's recording, downloaded once
        problem = download(f"checkpoints/{shipped.name}", shipped)
        if problem:
            print(f"The shipped recording {shipped.name}: could not download "
                  f"{raw_url(f'checkpoints/{shipped.name}')} ({problem}).")
    return shipped if shipped.exists() else checkpoint_dir() / shipped.name


class TransformerRecorder:
    """An ``on_step`` callback for :func:`stn_course.train.fit`: what the spatial transformer
    does to a fixed set of images, from step 0 and then every ``every`` optimiser steps.

    After training, ``steps`` (list of int), ``outputs`` (list of ``(N, C, Ho, Wo)``),
    ``grids`` (list of ``(N, Ho, Wo, 2)``) and ``params`` (list of ``(N, P)``, e.g. θ) hold
    one entry per recording, on the CPU, for e.g.
    :func:`stn_course.figures.visualising.animate_transformer_evolution`.
    """

    def __init__(self, images: torch.Tensor, every: int) -> None:
        if every < 1:
            raise ValueError(f"every must be positive, got {every}")
        self.images = images
        self.every = every
        self.steps: list[int] = []
        self.outputs: list[torch.Tensor] = []
        self.grids: list[torch.Tensor] = []
        self.params: list[torch.Tensor] = []

    def __call__(self, step: int, model: nn.Module) -> None:
        if step % self.every:
            return
        outputs, params, grids = apply_transformer(model, self.images)
        self.steps.append(step)
        self.outputs.append(outputs)
        self.grids.append(grids)
        self.params.append(params)


def record_transformer_training(config: RunConfig, images: torch.Tensor, every: int,
                                device: torch.device | None = None) -> tuple[Experiment, TransformerRecorder]:
    """Train ``config`` once from scratch while a :class:`TransformerRecorder`
    records what the transformer does to ``images`` every ``every`` steps (from step 0)."""
    experiment = build_experiment(config, device)
    recorder = TransformerRecorder(images, every)
    train_experiment(experiment, save=False, use_checkpoints=False, on_step=recorder)
    return experiment, recorder


@dataclass(frozen=True)
class TransformerEvolution:
    """A recorded transformer training, ready for
    :func:`stn_course.figures.visualising.animate_transformer_evolution`.

    ``images`` ``(N, C, H, W)`` are the fixed test images; for each of the T recordings,
    ``steps[t]`` is the optimiser step, ``thetas[t]`` ``(N, 2, 3)`` the affine θ, and
    ``outputs[t]`` ``(N, C, Ho, Wo)`` and ``grids[t]`` ``(N, Ho, Wo, 2)`` what it produced.
    ``record`` holds how it was made (command, machine, time, seconds, test accuracy).
    """

    images: torch.Tensor
    steps: list[int]
    thetas: torch.Tensor
    outputs: list[torch.Tensor]
    grids: list[torch.Tensor]
    steps_per_epoch: int
    record: dict


def record_evolution(path: Path | None = None, every: int = 15, count: int = 8,
                     device: torch.device | None = None, save: bool = True, config: RunConfig | None = None,
                     record: bool = False, run: RunConfig = EVOLUTION_RUN) -> Path:
    """Train ``run`` (default :data:`EVOLUTION_RUN`; or ``config``, e.g. a shrunk one in tests) from scratch,
    recording θ for the first ``count`` test images every ``every`` steps, and write it to
    ``path``, with, if ``save``, a results record (command, machine, time). The default path
    is the checkpoint folder, outside the repository; with ``record`` (the course's
    maintainers) it is the shipped file (:func:`evolution_path`) and the record goes to
    ``results/``. The command, machine and time are also stored in the file itself."""
    if path is None:
        path = evolution_path(run) if record else checkpoint_dir() / evolution_path(run).name
    path = Path(path)
    config = config or run
    command = evolution_command(run)
    images = build_fixed_images(config, count)
    start = time.perf_counter()
    experiment, recorder = record_transformer_training(config, images, every=every, device=device)
    seconds = time.perf_counter() - start
    transformer = transformer_of(experiment.model)
    record = {"run": config.name, "command": command, "every": every,
              "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine_info(),
              "seconds": round(seconds, 1), "test_accuracy": experiment.history.test_accuracy[-1]}
    arrays = {
        "images": images.numpy().astype(np.float32),
        "steps": np.asarray(recorder.steps, dtype=np.int64),
        "thetas": torch.stack(recorder.params).view(len(recorder.steps), -1, 2, 3).numpy().astype(np.float32),
        "out_size": np.asarray(recorder.outputs[0].shape[-2:], dtype=np.int64),
        "align_corners": np.asarray(transformer.align_corners),
        "padding_mode": np.asarray(transformer.padding_mode),
        "steps_per_epoch": np.asarray(len(experiment.train_loader)),
        "record": np.asarray(json.dumps(record)),
    }
    write_atomically(path, lambda tmp: _save_npz(tmp, arrays))
    check_replay(load_evolution(path), recorder.outputs)
    if save:  # nested: a top-level test accuracy would make it a training result (load_run_results)
        save_result(f"{config.name}_evolution", {"file": path.name, "frames": len(recorder.steps),
                                                 "recording": record}, command, record=record)
    return path


def _save_npz(path: Path, arrays: dict) -> None:
    with open(path, "wb") as file:  # a file object: np.savez would append ".npz" to the temporary name
        np.savez_compressed(file, **arrays)


def build_fixed_images(config: RunConfig, count: int) -> torch.Tensor:
    """The first ``count`` images ``(count, C, H, W)`` of ``config``'s test set, on the CPU."""
    return next(iter(build_experiment(config, torch.device("cpu")).test_loader))[0][:count].cpu()


def load_evolution(path: Path | None = None) -> TransformerEvolution:
    """Read a recording (default: the shipped one) and recompute its frames from θ."""
    with np.load(Path(path) if path is not None else evolution_path()) as data:
        images = torch.from_numpy(data["images"])
        thetas = torch.from_numpy(data["thetas"])
        height, width = (int(side) for side in data["out_size"])
        align_corners, padding_mode = bool(data["align_corners"]), str(data["padding_mode"])
        steps, steps_per_epoch = data["steps"].tolist(), int(data["steps_per_epoch"])
        record = json.loads(str(data["record"]))
    size = [len(images), images.shape[1], height, width]
    grids = [F.affine_grid(theta, size, align_corners=align_corners) for theta in thetas]
    outputs = [F.grid_sample(images, grid, mode="bilinear", padding_mode=padding_mode,
                             align_corners=align_corners) for grid in grids]
    return TransformerEvolution(images, steps, thetas, outputs, grids, steps_per_epoch, record)


def check_replay(evolution: TransformerEvolution, outputs: list[torch.Tensor], atol: float = 1e-5) -> None:
    """Raise if the frames recomputed from the stored θ differ from those recorded in training."""
    worst = max(float((replayed - recorded).abs().max()) for replayed, recorded in zip(evolution.outputs, outputs))
    if len(outputs) != len(evolution.outputs) or worst > atol:
        raise RuntimeError(f"the recording does not replay the training: outputs differ by {worst:.2g}")
