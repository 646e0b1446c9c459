"""A run's results file: what it measured, the command that repeats it, the machine and time.

:func:`save_result` writes any record (``<name>.json``) to the output folder, or to the
course's ``results/`` for its recorded runs (:func:`stn_course.utils.results_dir`);
:func:`record_result` writes a trained run's, :func:`record_errors` what a finished run gets
wrong. :func:`find_result` finds a run's file again, and :func:`describe_finished_run` says
in words what it recorded. The tables of :mod:`stn_course.report` are made from these files.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from .analysis import collect_errors, error_summary
from .checkpoints import unidentified_checkpoint_error
from .files import write_atomically
from .models import count_parameters
from .course_files import write_results_index
from .utils import (checkpoint_dir, has_repository, is_quick, machine_info, output_root, recorded_results_dir,
                    results_dir)

if TYPE_CHECKING:
    from .experiments import Experiment
    from .recipes import RunConfig
    from .train import History


def save_result(name: str, payload: dict[str, Any], command: str, record: bool | None = None) -> Path:
    """Write ``<results dir>/<name>.json`` with the payload, the command, machine and time:
    into the course's ``results/`` only if ``record`` (see :func:`results_dir`)."""
    document = {
        "name": name,
        "command": command,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "quick_mode": is_quick(),
        "machine": machine_info(),
        **payload,
    }
    path = results_dir(record) / f"{name}.json"
    write_atomically(path, lambda tmp: tmp.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n"))
    if path.parent == recorded_results_dir() and has_repository():  # what Colab downloads lists every record
        write_results_index(path.parent)
    return path


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
        # what training computed in, epoch by epoch as recorded (config.amp means float16 on CUDA)
        "precision": sorted(set(history.precision)),
        "history": history.as_dict(),
        "quick": is_quick(),
    }, command=config.command(), record=record)


def record_errors(config: RunConfig, device: torch.device | None = None, record: bool | None = None) -> Path:
    """Load the finished run ``config`` (:func:`~stn_course.experiments.load_trained`) and write
    ``results/errors_<run name>.json``: what it gets wrong on its test set
    (:func:`stn_course.analysis.error_summary`), with the command that repeats it."""
    from .experiments import load_trained  # here: experiments records its results with this module

    experiment, shipped = load_trained(config, device)
    if experiment.history.unidentified:  # its errors may be another run's
        raise unidentified_checkpoint_error(checkpoint_dir() / f"{config.name}.pt", config.name, "be recorded")
    summary = error_summary(collect_errors(experiment.model, experiment.test_loader))
    weights = "shipped float16" if shipped else "trained"
    return save_result(f"errors_{config.name}", {"run": config.name, "weights": weights, **summary},
                       config.command("errors"), record=record)


def find_result(name: str) -> Path | None:
    """``<name>.json`` among the course's recorded results or, failing that, the learner's own
    (the output folder), or None. Quick mode looks only in its temporary folder."""
    folders = [results_dir(record=False)] if is_quick() else [recorded_results_dir(), output_root() / "results"]
    return next((folder / f"{name}.json" for folder in folders if (folder / f"{name}.json").exists()), None)


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
