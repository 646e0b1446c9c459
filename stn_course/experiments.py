"""Reproducible runs: one named recipe → data, model, optimiser, training, results JSON.

The notebooks and the command line (``python -m stn_course train ...``) both call
:func:`run_experiment`, so every number in the course comes from the same code path,
and the command that reproduces it is stored beside it in ``results/<run>.json``.
"""
from __future__ import annotations

import shlex
from dataclasses import asdict, dataclass
from typing import Callable

import torch
from torch import nn

from .data import BatchLoader, ImageTensors, load_mnist
from .models import build_classifier, count_parameters, parameter_groups
from .train import History, fit
from .utils import checkpoint_dir, get_device, is_quick, save_result, set_seed

DATASETS: dict[str, Callable[..., ImageTensors]] = {"mnist": load_mnist}
MODELS = ("cnn", "st-cnn-aff", "st-cnn-proj", "st-cnn-tps")


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a run; ``name`` keys its checkpoint and results file."""

    dataset: str = "mnist"
    model: str = "st-cnn-aff"
    epochs: int = 5
    batch_size: int = 128
    lr: float = 2e-3
    localisation_lr_scale: float = 0.1
    weight_decay: float = 1e-4
    max_grad_norm: float | None = 5.0
    seed: int = 0
    train_limit: int | None = None
    test_limit: int | None = None

    @property
    def name(self) -> str:
        return f"{self.dataset}_{self.model}_e{self.epochs}_s{self.seed}"

    def command(self) -> str:
        """The command line that reproduces this run."""
        parts = ["python", "-m", "stn_course", "train", "--dataset", self.dataset,
                 "--model", self.model, "--epochs", str(self.epochs), "--seed", str(self.seed)]
        return shlex.join(parts)


def quick_config(config: RunConfig) -> RunConfig:
    """The same run, shrunk for quick (test) mode: a few hundred images, one epoch."""
    from dataclasses import replace

    return replace(config, epochs=1, train_limit=512, test_limit=256)


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
    load = DATASETS[config.dataset]
    train_data = load(train=True, limit=config.train_limit)
    test_data = load(train=False, limit=config.test_limit)
    model = build_classifier(config.model, train_data.image_shape, train_data.mean, train_data.std,
                             num_classes=len(train_data.classes)).to(device)
    return Experiment(
        config=config,
        model=model,
        train_loader=BatchLoader(train_data, config.batch_size, shuffle=True, device=device, seed=config.seed),
        test_loader=BatchLoader(test_data, 1000, device=device),
    )


def run_experiment(config: RunConfig, device: torch.device | None = None,
                   save: bool = True, **fit_options) -> Experiment:
    """Build and train ``config`` (resuming or loading its checkpoint), then record the result.

    The checkpoint lives in :func:`stn_course.utils.checkpoint_dir` as ``<name>.pt``;
    the result goes to ``results/<name>.json`` (a temporary folder in quick mode).
    """
    experiment = build_experiment(config, device)
    optimizer = torch.optim.AdamW(
        parameter_groups(experiment.model, config.lr, config.localisation_lr_scale),
        lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=[group["lr"] for group in optimizer.param_groups],
        epochs=config.epochs, steps_per_epoch=len(experiment.train_loader))
    experiment.history = fit(
        experiment.model, optimizer, experiment.train_loader, experiment.test_loader, config.epochs,
        scheduler=scheduler, step_scheduler_every_batch=True, max_grad_norm=config.max_grad_norm,
        checkpoint=checkpoint_dir() / f"{config.name}.pt", seed=config.seed, **fit_options)
    if save and experiment.history.epochs == config.epochs:
        record_result(experiment)
    return experiment


def record_result(experiment: Experiment) -> None:
    """Write ``results/<run name>.json``: accuracy, error, timing, parameters, command."""
    history, config = experiment.history, experiment.config
    accuracy = history.test_accuracy[-1]
    save_result(config.name, {
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
    }, command=config.command())
