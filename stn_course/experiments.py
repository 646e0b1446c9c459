"""Reproducible runs: one recipe (:mod:`stn_course.recipes`) → data, model, optimiser, training, results JSON.

The notebooks and the command line (``python -m stn_course train ...``) both call
:func:`run_experiment`, so every number in the course comes from the same code path,
and the command that reproduces it is stored beside it in ``results/<run>.json``
(:mod:`stn_course.results`). A run with a model shipped with the course loads it
(:mod:`stn_course.shipped`); its own checkpoints are :mod:`stn_course.checkpoints`'.
"""
from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch
from torch import nn

from .checkpoints import checkpoint_identity, load_checkpoint, restoring, resumable_problem, run_identity
from .errors import CourseError
from .loader import BatchLoader
from .names import OPTIMIZER_NAMES, SCHEDULE_NAMES
from .recipes import DATASETS, FINAL_DROP_AT, RunConfig, training_augmentation
from .registry import build_classifier
from .results import record_result
from .runlock import run_lock
from .shipped import fetch_shipped_checkpoint, load_shipped_checkpoint
from .train import History, fit, parameter_groups, print_log
from .utils import (checkpoint_dir, get_device, has_repository, recorded_results_dir, results_dir, set_seed,
                    shipped_checkpoint_dir)
from .validation import InvalidSettingError


@dataclass
class Experiment:
    """A built run: its model, its loaders and, once trained, its history."""

    config: RunConfig
    model: nn.Module
    train_loader: BatchLoader
    test_loader: BatchLoader
    history: History | None = None


def build_experiment(config: RunConfig, device: torch.device | None = None) -> Experiment:
    """Data and model for ``config`` (untrained); seeds everything from ``config.seed``."""
    device = device or get_device()
    set_seed(config.seed)
    splits = DATASETS[config.dataset](config.train_limit, config.test_limit, config.seed)
    for split, images in (("training", splits.train), ("test", splits.test)):
        if len(images) == 0:  # caught here, not by a division by zero after a whole epoch
            raise CourseError(f"The {split} set of {config.dataset} ({images.name}) holds no images: "
                              f"nothing to train or test on.")
    if config.batch_size > len(splits.train):  # one full batch an epoch would be another recipe
        raise InvalidSettingError(f"Invalid run setting: batch_size={config.batch_size} is larger than the training "
                                  f"set of {config.dataset} ({len(splits.train)} images); set batch_size <= "
                                  f"{len(splits.train)}.")
    # The model sees what the test set looks like (e.g. a 42x42 canvas for RTS).
    try:
        model = build_classifier(config.model, splits.test.image_shape, splits.train.mean, splits.train.std,
                                 num_classes=len(splits.train.classes), options=config.model_options).to(device)
    except ValueError as error:  # RunConfig checked the model against DATASET_INPUTS: the data differ from them
        raise InvalidSettingError(f"Invalid run setting: model {config.model!r} does not fit the images of "
                                  f"{config.dataset} ({'x'.join(map(str, splits.test.image_shape))}): {error}.") from error
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return Experiment(
        config=config,
        model=model,
        train_loader=BatchLoader(splits.train, config.batch_size, shuffle=True,
                                 augment=training_augmentation(config, splits),
                                 device=device, seed=config.seed, channels_last=config.channels_last),
        test_loader=BatchLoader(splits.test, 1000, device=device, channels_last=config.channels_last),
    )


def run_experiment(config: RunConfig, device: torch.device | None = None,
                   save: bool = True, **options) -> Experiment:
    """Build and train ``config``: :func:`build_experiment` then :func:`train_experiment`. A run
    that will train takes its lock (:mod:`stn_course.runlock`) before its data loads, so that a
    second copy of it is refused at once."""
    checkpoint = checkpoint_dir() / f"{config.name}.pt"
    shipped = options.get("use_shipped", True) and not checkpoint.exists() and \
        (shipped_checkpoint_dir() / f"{config.name}.pt").exists()
    early = options.get("use_checkpoints", True) and not shipped
    with run_lock(checkpoint) if early else contextlib.nullcontext():
        return train_experiment(build_experiment(config, device), save=save, **options)


def run_if_available(config: RunConfig, device: torch.device | None = None, train_if_missing: bool = False,
                     **options) -> Experiment | None:
    """"Load if present, otherwise train, if asked": :func:`run_experiment` when the run's model
    is shipped with the course (downloaded on Colab), or has a checkpoint of yours (finished or
    interrupted), or in quick mode, or when ``train_if_missing``; otherwise print one line, the
    training it would take (from the course's record of the run) and the flag that allows it,
    and return None. For runs too long to start unannounced (notebooks 03 and 04)."""
    name = config.name
    present = (checkpoint_dir() / f"{name}.pt").exists() or (shipped_checkpoint_dir() / f"{name}.pt").exists()
    if present or train_if_missing or config.quick:
        return run_experiment(config, device, **options)
    cost = training_cost(config)
    if fetch_shipped_checkpoint(name, instead=f"not training it ({cost}; set TRAIN_IF_MISSING = True to train it)"):
        return run_experiment(config, device, **options)
    if has_repository():  # else the failed download said it, in one line
        print(f"{name} is not shipped with the course and has no checkpoint here: not training it ({cost}). "
              f"Set TRAIN_IF_MISSING = True at the top to train it here.")
    return None


def training_cost(config: RunConfig) -> str:
    """What training ``config`` takes, from the course's record of the run if there is one:
    ``"the course's run took 47 min on a 2-core CPU, 60 epochs"``; else its epochs."""
    epochs = f"{config.epochs} epoch{'s' if config.epochs != 1 else ''}"
    path = recorded_results_dir() / f"{config.name}.json"
    try:
        record = json.loads(path.read_text())
        machine = record["machine"]
        where = machine["cuda"] if machine.get("cuda") else f"a {machine['cpu_count']}-core CPU"
        return f"the course's run took {record['seconds_total'] / 60:.0f} min on {where}, {epochs}"
    except (OSError, ValueError, KeyError, TypeError):  # no record (or not a run's): the epochs alone
        return f"{epochs} to train"


def train_experiment(experiment: Experiment, save: bool = True, use_checkpoints: bool = True,
                     replay_log: bool = False, record: bool | None = None, use_shipped: bool = True,
                     **fit_options) -> Experiment:
    """Train a built experiment (resuming or loading its checkpoint), then save the result.

    The checkpoint lives in :func:`stn_course.utils.checkpoint_dir` as ``<name>.pt``, guarded
    by a lock file while the run trains (:mod:`stn_course.runlock`); the result goes to
    ``<name>.json`` in the output folder, or in the course's ``results/`` if ``record``
    (:func:`stn_course.utils.results_dir`). With ``use_shipped=False`` a model shipped with
    the course is not loaded (the run trains). With ``use_checkpoints=False`` it trains from
    scratch, loading and writing nothing (e.g. to record the transformer while it learns).
    With ``replay_log``, a run that is only loaded prints the log it printed while training.
    """
    config = experiment.config
    if use_checkpoints and use_shipped and load_shipped_checkpoint(experiment):
        if replay_log:
            print_log(experiment.history)
        return experiment  # nothing to record: the shipped model comes with its results file
    if not use_checkpoints:
        return _train(experiment, None, **fit_options)
    checkpoint = checkpoint_dir() / f"{config.name}.pt"
    with run_lock(checkpoint):
        _train(experiment, checkpoint, **fit_options)
    only_loaded = experiment.history.trained_now == 0
    if only_loaded and replay_log:
        print_log(experiment.history)
    # A finished run that was only loaded keeps the result recorded when it trained.
    already_recorded = only_loaded and (results_dir(record) / f"{config.name}.json").exists()
    if save and experiment.history.epochs == config.epochs and not already_recorded:
        if experiment.history.unidentified:  # loaded for viewing: its accuracy may be another run's
            print(f"Not recording {config.name}: its checkpoint {checkpoint} does not record which run wrote it. "
                  f"To record it, train it again (command line: add --restart).")
        else:
            record_result(experiment, record=record)
    return experiment


def _train(experiment: Experiment, checkpoint: Path | None, **fit_options) -> Experiment:
    """The optimiser, schedule and :func:`~stn_course.train.fit` of ``experiment.config``."""
    config = experiment.config
    groups = parameter_groups(experiment.model, config.lr, config.localisation_lr_scale)
    if config.optimizer == "sgd":
        optimizer = torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov,
                                    weight_decay=config.weight_decay)
    elif config.optimizer == "adamw":
        optimizer = torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)
    else:  # a RunConfig holds one of OPTIMIZER_NAMES: only a name added there without its optimiser gets here
        raise NotImplementedError(f"optimizer {config.optimizer!r} (one of {OPTIMIZER_NAMES}) has no optimiser here")
    scheduler = make_scheduler(config, optimizer, len(experiment.train_loader))
    with interruptible(config, checkpoint):
        experiment.history = fit(
            experiment.model, optimizer, experiment.train_loader, experiment.test_loader, config.epochs,
            scheduler=scheduler, step_scheduler_every_batch=True, max_grad_norm=config.max_grad_norm,
            log_interval=config.log_interval, label_smoothing=config.label_smoothing, checkpoint=checkpoint,
            seed=config.seed, run=run_identity(config), **{"amp": config.amp, **fit_options})
    return experiment


class TrainingInterrupted(KeyboardInterrupt):
    """Training was interrupted (Ctrl-C); the message says where it stopped and what resumes it."""


@contextlib.contextmanager
def interruptible(config: RunConfig, checkpoint: Path | None) -> Iterator[None]:
    """Turn Ctrl-C while ``config`` trains into a :class:`TrainingInterrupted` (still a
    KeyboardInterrupt) saying the epoch it stopped in, what its checkpoint holds, and that the
    same command resumes (the command line prints it as one line, status 130)."""
    try:
        yield
    except KeyboardInterrupt as interrupt:
        if isinstance(interrupt, TrainingInterrupted):
            raise
        saved = 0
        if checkpoint is not None and checkpoint.exists():
            with contextlib.suppress(Exception):  # the last complete checkpoint's epoch, read without its tensors
                saved = int(torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True)["epoch"])
        if checkpoint is None:
            kept = "nothing was saved (this run keeps no checkpoint)"
        elif saved:
            kept = f"its checkpoint {checkpoint.resolve()} holds epoch {saved}; the same command resumes from there"
        else:
            kept = "no epoch had finished, so nothing was saved; the same command starts it again"
        raise TrainingInterrupted(f"Interrupted: {config.name} stopped during epoch {saved + 1} of "
                                  f"{config.epochs}: {kept}.") from None


def make_scheduler(config: RunConfig, optimizer: torch.optim.Optimizer,
                   steps_per_epoch: int) -> torch.optim.lr_scheduler.LRScheduler | None:
    """The learning-rate schedule of ``config``, stepped once per batch (``None``: constant).

    ``"onecycle"`` warms up to each parameter group's rate and anneals to nearly zero;
    ``"final-drop"`` keeps the rate, then divides it by 10 for the last fifth of the steps.
    """
    if config.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=[group["lr"] for group in optimizer.param_groups],
            epochs=config.epochs, steps_per_epoch=steps_per_epoch)
    if config.schedule == "final-drop":
        total_steps = config.epochs * steps_per_epoch
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[round(FINAL_DROP_AT * total_steps)],
                                                    gamma=0.1)
    if config.schedule != "constant":  # only a name added to SCHEDULE_NAMES without its schedule gets here
        raise NotImplementedError(f"schedule {config.schedule!r} (one of {SCHEDULE_NAMES}) has no scheduler here")
    return None


def load_trained(config: RunConfig, device: torch.device | None = None) -> tuple[Experiment, bool]:
    """The finished run ``config``, loaded, never trained, and whether its weights are the
    shipped float16 ones (``checkpoints/``, rounded, so a prediction or two may differ from
    the run's) rather than the run's own checkpoint in :func:`checkpoint_dir`. Raises
    FileNotFoundError, with the command that trains it, if the run has not finished."""
    experiment = build_experiment(config, device)
    if load_shipped_checkpoint(experiment, instead="the run has to be trained first"):
        return experiment, True
    path = checkpoint_dir() / f"{config.name}.pt"
    state = load_checkpoint(path, run=run_identity(config)) if path.exists() else None
    with restoring(path, f"the model of {config.name}"):
        if state is not None and resumable_problem(state):
            raise ValueError(resumable_problem(state))
        if state is None or state["epoch"] < config.epochs:
            raise RunNotFinishedError(f"{config.name} has not finished training; train it with\n  {config.command()}")
        experiment.model.load_state_dict(state["model"])
        experiment.history = History(**state["history"], unidentified=checkpoint_identity(state) is None)
    return experiment, False


class RunNotFinishedError(CourseError, FileNotFoundError):
    """A finished run was asked for (e.g. by ``errors``) that has not finished training."""


