"""Reproducible runs: one recipe (:mod:`stn_course.recipes`) → data, model, optimiser, training, results JSON.

The notebooks and the command line (``python -m stn_course train ...``) both call
:func:`run_experiment`, so every number in the course comes from the same code path,
and the command that reproduces it is stored beside it in ``results/<run>.json``.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from .analysis import collect_errors, error_summary
from .errors import CourseError
from .loader import BatchLoader
from .models import count_parameters
from .registry import build_classifier
from .runlock import run_lock
from .train import History, TransformerRecorder, fit, load_checkpoint, parameter_groups, print_log, save_checkpoint
from .recipes import (DATASETS, FINAL_DROP_AT, VARIANTS, DatasetSplits, RunConfig, default_config,  # noqa: F401
                      parse_setting, quick_config, recipe_config, recipe_parts)  # re-exported for notebooks
from .utils import (checkpoint_dir, get_device, has_repository, is_quick, output_root, recorded_results_dir,
                    repo_root, repo_url, results_dir, save_result, set_seed, shipped_checkpoint_dir)


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
    if config.dataset not in DATASETS:
        raise ValueError(f"unknown dataset {config.dataset!r}; choose from {sorted(DATASETS)}")
    device = device or get_device()
    set_seed(config.seed)
    splits = DATASETS[config.dataset](config.train_limit, config.test_limit, config.seed)
    for split, images in (("training", splits.train), ("test", splits.test)):
        if len(images) == 0:  # caught here, not by a division by zero after a whole epoch
            raise CourseError(f"The {split} set of {config.dataset} ({images.name}) holds no images: "
                              f"nothing to train or test on.")
    # The model sees what the test set looks like (e.g. a 42x42 canvas for RTS).
    model = build_classifier(config.model, splits.test.image_shape, splits.train.mean, splits.train.std,
                             num_classes=len(splits.train.classes), window=config.window,
                             dropout=config.dropout, batchnorm=config.batchnorm).to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return Experiment(
        config=config,
        model=model,
        train_loader=BatchLoader(splits.train, config.batch_size, shuffle=True,
                                 augment=splits.train_augment if config.augment else None,
                                 device=device, seed=config.seed, channels_last=config.channels_last),
        test_loader=BatchLoader(splits.test, 1000, device=device, channels_last=config.channels_last),
    )


def run_experiment(config: RunConfig, device: torch.device | None = None,
                   save: bool = True, **options) -> Experiment:
    """Build and train ``config``: :func:`build_experiment` then :func:`train_experiment`."""
    return train_experiment(build_experiment(config, device), save=save, **options)


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
    else:
        raise ValueError(f"unknown optimizer {config.optimizer!r}; choose 'sgd' or 'adamw'")
    scheduler = make_scheduler(config, optimizer, len(experiment.train_loader))
    experiment.history = fit(
        experiment.model, optimizer, experiment.train_loader, experiment.test_loader, config.epochs,
        scheduler=scheduler, step_scheduler_every_batch=True, max_grad_norm=config.max_grad_norm,
        log_interval=config.log_interval, label_smoothing=config.label_smoothing, checkpoint=checkpoint,
        seed=config.seed, run=run_identity(config), **{"amp": config.amp, **fit_options})
    return experiment


#: fields that change no weight (the log interval), left out of a checkpoint's identity
IDENTITY_IGNORED = frozenset({"log_interval"})
#: also left out when a shipped (full) run stands in for a quick one, which shrinks only these
SHIPPED_IDENTITY_IGNORED = IDENTITY_IGNORED | {"quick", "train_limit", "test_limit"}


def run_identity(config: RunConfig, shipped: bool = False) -> dict:
    """What a checkpoint of ``config`` records, and is checked against when loaded
    (:func:`stn_course.train.load_checkpoint`): the run's name and every field that changes
    its weights. ``shipped``: the identity a shipped checkpoint must match, which a quick run
    (shrunk limits) loads in place of training."""
    ignored = SHIPPED_IDENTITY_IGNORED if shipped else IDENTITY_IGNORED
    return {"name": config.name,
            "config": {key: value for key, value in asdict(config).items() if key not in ignored}}


def find_result(name: str) -> Path | None:
    """``<name>.json`` among the course's recorded results or, failing that, the learner's own
    (the output folder), or None. Quick mode looks only in its temporary folder."""
    folders = [results_dir(record=False)] if is_quick() else [recorded_results_dir(), output_root() / "results"]
    return next((folder / f"{name}.json" for folder in folders if (folder / f"{name}.json").exists()), None)


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
    if config.schedule != "constant":
        raise ValueError(f"unknown schedule {config.schedule!r}; choose 'onecycle', 'final-drop' or 'constant'")
    return None


def record_transformer_training(config: RunConfig, images: torch.Tensor, every: int,
                                device: torch.device | None = None) -> tuple[Experiment, TransformerRecorder]:
    """Train ``config`` once from scratch while a :class:`~stn_course.train.TransformerRecorder`
    records what the transformer does to ``images`` every ``every`` steps (from step 0)."""
    experiment = build_experiment(config, device)
    recorder = TransformerRecorder(images, every)
    train_experiment(experiment, save=False, use_checkpoints=False, on_step=recorder)
    return experiment, recorder


def ship_checkpoint(experiment: Experiment) -> Path:
    """Save the trained weights (float16, to stay small) and history to ``checkpoints/<name>.pt``
    in the repository, so readers can load the model instead of training it."""
    path = shipped_checkpoint_dir() / f"{experiment.config.name}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    weights = {key: value.half() if value.is_floating_point() else value
               for key, value in experiment.model.state_dict().items()}
    save_checkpoint(path, {"model": weights, "history": experiment.history.as_dict(),
                           "config": asdict(experiment.config)}, run=run_identity(experiment.config, shipped=True))
    return path


def fetch_shipped_checkpoint(name: str) -> bool:
    """When the package is installed without the repository (Colab), download
    ``<repo URL>/raw/main/checkpoints/<name>.pt`` (:func:`stn_course.utils.repo_url`,
    ``$STN_COURSE_REPO_URL``) into :func:`shipped_checkpoint_dir`. From a clone, or if the
    download fails, do nothing and return False (the caller then trains)."""
    if has_repository():
        return False
    path = shipped_checkpoint_dir() / f"{name}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(f"{repo_url()}/raw/main/checkpoints/{name}.pt", str(path), progress=False)
    except Exception:  # not shipped, or no network: train instead
        path.unlink(missing_ok=True)
        return False
    return True


def load_shipped_checkpoint(experiment: Experiment) -> bool:
    """Load ``checkpoints/<name>.pt`` (shipped with the course) into the experiment, unless a
    checkpoint of the same run exists in :func:`checkpoint_dir` (then training resumes or
    loads from there). Returns True if the shipped weights were loaded."""
    name = experiment.config.name
    shipped = shipped_checkpoint_dir() / f"{name}.pt"
    if (checkpoint_dir() / f"{name}.pt").exists():
        return False
    if not shipped.exists() and not fetch_shipped_checkpoint(name):
        return False
    state = load_checkpoint(shipped, run=run_identity(experiment.config, shipped=True))
    model = experiment.model
    device = next(model.parameters()).device
    model.load_state_dict({key: value.to(device=device, dtype=model.state_dict()[key].dtype)
                           for key, value in state["model"].items()})
    experiment.history = History(**state["history"])
    # relative inside the repository: notebooks store this line, and it must not name the reader's folders
    shown = shipped.relative_to(repo_root()) if shipped.is_relative_to(repo_root()) else shipped
    print(f"Loaded the trained model shipped with the course, {shown}: {describe_finished_run(name, experiment.history)}."
          f"\nTo train it yourself instead, pass use_shipped=False (command line: --no-shipped).")
    return True


def describe_finished_run(name: str, history: History) -> str:
    """What a loaded run recorded when it trained: ``"5 epochs, test accuracy 99.44% (recorded),
    trained in 4.1 min on a 2-core x86_64 CPU"`` (the time and machine from its results
    JSON, :func:`find_result`; from the history alone if there is none)."""
    epochs = history.epochs
    text = f"{epochs} epoch{'s' if epochs != 1 else ''}, test accuracy {100 * history.test_accuracy[-1]:.2f}% (recorded)"
    path = find_result(name)
    try:
        record = json.loads(path.read_text()) if path else {}
    except (OSError, ValueError):
        record = {}
    seconds = record.get("seconds_total", sum(history.seconds))
    machine = record.get("machine") or {}
    where = f" on a {machine.get('cpu_count')}-core {machine.get('processor')} CPU" if machine.get("cpu_count") else ""
    if machine.get("cuda"):
        where = f" on {machine['cuda']}"
    return f"{text}, trained in {format_duration(seconds)}{where}"


def format_duration(seconds: float) -> str:
    """``"42 s"`` under a minute, else ``"4.1 min"``."""
    return f"{seconds:.0f} s" if seconds < 60 else f"{seconds / 60:.1f} min"


def load_trained(config: RunConfig, device: torch.device | None = None) -> tuple[Experiment, bool]:
    """The finished run ``config``, loaded, never trained, and whether its weights are the
    shipped float16 ones (``checkpoints/``, rounded, so a prediction or two may differ from
    the run's) rather than the run's own checkpoint in :func:`checkpoint_dir`. Raises
    FileNotFoundError, with the command that trains it, if the run has not finished."""
    experiment = build_experiment(config, device)
    if load_shipped_checkpoint(experiment):
        return experiment, True
    path = checkpoint_dir() / f"{config.name}.pt"
    state = load_checkpoint(path, run=run_identity(config)) if path.exists() else None
    if state is None or state["epoch"] < config.epochs:
        raise RunNotFinishedError(f"{config.name} has not finished training; train it with\n  {config.command()}")
    experiment.model.load_state_dict(state["model"])
    experiment.history = History(**state["history"])
    return experiment, False


class RunNotFinishedError(CourseError, FileNotFoundError):
    """A finished run was asked for (e.g. by ``errors``) that has not finished training."""


def record_errors(config: RunConfig, device: torch.device | None = None, record: bool | None = None) -> Path:
    """Load the finished run ``config`` (:func:`load_trained`) and write
    ``results/errors_<run name>.json``: what it gets wrong on its test set
    (:func:`stn_course.analysis.error_summary`), with the command that repeats it."""
    experiment, shipped = load_trained(config, device)
    summary = error_summary(collect_errors(experiment.model, experiment.test_loader))
    weights = "shipped float16" if shipped else "trained"
    return save_result(f"errors_{config.name}", {"run": config.name, "weights": weights, **summary},
                       config.command("errors"), record=record)


def record_result(experiment: Experiment, record: bool | None = None) -> Path:
    """Write ``<run name>.json`` (accuracy, error, timing, parameters, command) to the output
    folder, or to the course's ``results/`` if ``record`` (:func:`stn_course.utils.results_dir`)."""
    history, config = experiment.history, experiment.config
    accuracy = history.test_accuracy[-1]
    return save_result(config.name, {
        "config": asdict(config),
        "test_accuracy": accuracy,
        "test_error_percent": round(100 * (1 - accuracy), 3),
        "test_correct": history.test_correct[-1],
        "test_samples": experiment.test_loader.num_samples,
        "epochs": history.epochs,
        "seconds_total": round(sum(history.seconds), 1),
        "seconds_per_epoch": [round(s, 2) for s in history.seconds],
        "parameters": count_parameters(experiment.model),
        "device": str(next(experiment.model.parameters()).device),
        "history": history.as_dict(),
        "quick": is_quick(),
    }, command=config.command(), record=record)
