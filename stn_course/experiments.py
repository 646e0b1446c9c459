"""Reproducible runs: one named recipe → data, model, optimiser, training, results JSON.

The notebooks and the command line (``python -m stn_course train ...``) both call
:func:`run_experiment`, so every number in the course comes from the same code path,
and the command that reproduces it is stored beside it in ``results/<run>.json``.
"""
from __future__ import annotations

import json
import re
import shlex
import statistics
import sys
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn

from .analysis import collect_errors, error_summary
from .data import Augmentation, BatchLoader, ImageTensors, load_cifar10, load_mnist, random_crop_flip
from .models import MODEL_NAMES, build_classifier, count_parameters, parameter_groups
from .train import History, TransformerRecorder, fit, load_checkpoint, print_log, save_checkpoint
from .utils import (REPO_URL, checkpoint_dir, get_device, is_quick, repo_root, results_dir, save_result,
                    set_seed, shipped_checkpoint_dir)


@dataclass(frozen=True)
class DatasetSplits:
    """Training images (distorted on the fly by ``train_augment``) and the fixed test set."""

    train: ImageTensors
    test: ImageTensors
    train_augment: Augmentation | None = None


def _mnist(train_limit: int | None, test_limit: int | None, seed: int) -> DatasetSplits:
    return DatasetSplits(load_mnist(train=True, limit=train_limit), load_mnist(train=False, limit=test_limit))


def _distorted_mnist(kind: str) -> Callable[[int | None, int | None, int], DatasetSplits]:
    def load(train_limit: int | None, test_limit: int | None, seed: int) -> DatasetSplits:
        from .distortions import distorted_mnist_test, distortion

        return DatasetSplits(load_mnist(train=True, limit=train_limit),
                             distorted_mnist_test(kind, seed=seed, limit=test_limit),
                             train_augment=distortion(kind))
    return load


def _two_digit_mnist(train_limit: int | None, test_limit: int | None, seed: int) -> DatasetSplits:
    from .distortions import two_digit_mnist

    return DatasetSplits(two_digit_mnist(True, seed=seed, limit=train_limit),
                         two_digit_mnist(False, seed=seed, limit=test_limit))


def _cifar10(train_limit: int | None, test_limit: int | None, seed: int) -> DatasetSplits:
    return DatasetSplits(load_cifar10(train=True, limit=train_limit), load_cifar10(train=False, limit=test_limit),
                         train_augment=random_crop_flip)


def _gtsrb(validation: bool) -> Callable[[int | None, int | None, int], DatasetSplits]:
    def load(train_limit: int | None, test_limit: int | None, seed: int) -> DatasetSplits:
        from .data import gtsrb_splits, random_affine

        return DatasetSplits(*gtsrb_splits(validation, train_limit, test_limit), train_augment=random_affine)
    return load


#: dataset name → loader(train_limit, test_limit, seed)
DATASETS: dict[str, Callable[[int | None, int | None, int], DatasetSplits]] = {
    "mnist": _mnist,
    "rot-mnist": _distorted_mnist("rot"),
    "rts-mnist": _distorted_mnist("rts"),
    "proj-mnist": _distorted_mnist("proj"),
    "elastic-mnist": _distorted_mnist("elastic"),
    "clutter-mnist": _distorted_mnist("clutter"),
    "two-digit-mnist": _two_digit_mnist,
    "cifar10": _cifar10,
    "gtsrb": _gtsrb(validation=False),  # traffic signs, tested on the official test set
    "gtsrb-val": _gtsrb(validation=True),  # tested on held-out training tracks (choosing recipes)
}


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a run; ``name`` keys its checkpoint and results file."""

    dataset: str = "mnist"
    model: str = "st-cnn-aff"
    epochs: int = 5
    batch_size: int = 128
    optimizer: str = "adamw"  # or "sgd"
    lr: float = 2e-3
    momentum: float = 0.0  # SGD only
    nesterov: bool = False  # SGD only
    schedule: str = "onecycle"  # or "constant", or "final-drop" (constant, a tenth of it for the last fifth)
    localisation_lr_scale: float = 0.1
    weight_decay: float = 1e-4
    max_grad_norm: float | None = 5.0
    label_smoothing: float = 0.0
    augment: bool = True  # apply the dataset's training augmentation (crop + flip, or the distortion)
    channels_last: bool = False  # memory format of model and batches (faster convolutions)
    window: int | None = None  # ST-CNNs: side of the transformer's output (None: the model's default)
    dropout: float = 0.0  # CNN and ST-CNNs: dropout before the classifier's last layer
    batchnorm: bool = False  # CNN and ST-CNNs: batch normalisation after each of the classifier's convolutions
    amp: bool | None = None  # mixed precision: float16 on CUDA, bfloat16 on the CPU (None: on CUDA only)
    log_interval: int = 500
    seed: int = 0
    train_limit: int | None = None
    test_limit: int | None = None
    variant: str = ""  # a named change to the default recipe (see VARIANTS)
    quick: bool = False  # shrunk for quick (test) mode by quick_config; its limits then name nothing

    @property
    def name(self) -> str:
        """``<dataset>_<model>_e<epochs>_s<seed>`` and, unless it is the default, ``_<recipe>``."""
        name, recipe = f"{self.dataset}_{self.model}_e{self.epochs}_s{self.seed}", self.recipe
        return f"{name}_{recipe}" if recipe else name

    @property
    def changes(self) -> dict[str, object]:
        """The fields set by hand: those that differ from the recipe of this dataset, model and
        variant (:func:`recipe_config`), apart from the run's identity and the log interval
        (:data:`UNNAMED_FIELDS`). A limit set by hand names the run; those of a quick run
        (:func:`quick_config`) do not."""
        recipe = recipe_config(self.dataset, self.model, self.epochs, self.seed, self.variant)
        if self.quick:
            recipe = quick_config(recipe)
        return {field.name: getattr(self, field.name) for field in fields(self)
                if field.name not in UNNAMED_FIELDS and getattr(self, field.name) != getattr(recipe, field.name)}

    @property
    def recipe(self) -> str:
        """The recipe's label: the variant, then each change set by hand as ``field=value``,
        e.g. ``"full-localisation-lr_amp=true"``; ``""`` for the default recipe. Two runs with
        different settings never share a label, so never a checkpoint or a results file."""
        return "_".join(recipe_parts(self.variant, self.changes))

    def command(self, subcommand: str = "train") -> str:
        """The command line that reproduces this run (``train``), or another command of
        ``python -m stn_course`` on it (e.g. ``errors``)."""
        parts = ["python", "-m", "stn_course", subcommand, "--dataset", self.dataset,
                 "--model", self.model, "--epochs", str(self.epochs), "--seed", str(self.seed)]
        if self.variant:
            parts += ["--variant", self.variant]
        for name, value in self.changes.items():
            parts += ["--set", f"{name}={_format_setting(value)}"]
        return shlex.join(parts)


#: RunConfig fields that never enter a run's recipe label: the name spells out the run's
#: identity, the log interval changes no result, and quick runs live in a temporary folder.
UNNAMED_FIELDS = frozenset({"dataset", "model", "epochs", "seed", "variant", "log_interval", "quick"})


def recipe_parts(variant: str = "", changes: dict[str, object] | None = None) -> list[str]:
    """The parts of a recipe's label (:attr:`RunConfig.recipe`): the variant, then each change
    as ``field=value``, as on the command line (``=`` never occurs in a variant's name, so a
    change can never pass for a variant)."""
    # in RunConfig's order of fields, so that the same settings always spell the same label
    order = [field.name for field in fields(RunConfig)]
    changes = sorted((changes or {}).items(), key=lambda change: order.index(change[0]))
    return ([variant] if variant else []) + [f"{name}={_format_setting(value)}" for name, value in changes]


def _format_setting(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return "none" if value is None else str(value)


def parse_setting(text: str) -> tuple[str, object]:
    """``"window=28"`` → ``("window", 28)``: one RunConfig field set by hand on the command
    line (``--set``), its value converted to the field's type (``none`` for None, ``true`` /
    ``false`` for booleans). Raises ValueError with the settable fields for anything else."""
    # only fields that name a run: a setting the name did not show would share another run's checkpoint
    settable = {field.name: str(field.type) for field in fields(RunConfig) if field.name not in UNNAMED_FIELDS}
    name, equals, raw = text.partition("=")
    name, raw = name.strip(), raw.strip()
    if not equals or name not in settable:
        raise ValueError(f"expected FIELD=VALUE with FIELD one of {', '.join(settable)}; got {text!r}")
    kind = settable[name]
    if raw.lower() == "none":
        if "None" not in kind:
            raise ValueError(f"{name} cannot be none")
        return name, None
    base = kind.split("|")[0].strip()
    try:
        if base == "bool":
            value = {"true": True, "false": False}[raw.lower()]
        elif base == "int":
            value = int(raw)
        elif base == "float":
            value = float(raw)
        else:
            value = raw
    except (KeyError, ValueError):
        raise ValueError(f"{name} takes a{'n' if base == 'int' else ''} {base}, got {raw!r}") from None
    return name, value


#: where the "final-drop" schedule divides the learning rate by 10, as a fraction of training
FINAL_DROP_AT = 0.8


#: named changes to a default recipe, for comparisons (``--variant`` on the command line)
VARIANTS: dict[str, dict] = {
    # SGD with momentum; the localisation network then needs 10x less and clipping, or θ blows up.
    "momentum": {"momentum": 0.9, "localisation_lr_scale": 0.1, "max_grad_norm": 5.0},
    # Without the training augmentation (CIFAR-10: no random crop and flip).
    "no-augment": {"augment": False},
    # As "no-augment", with the learning rate cut to a tenth for the last fifth of the epochs:
    # under a constant rate the test accuracy swings by several points from one epoch to the
    # next, so the last epoch's accuracy is partly luck; the cut lets the run settle.
    "no-augment-drop": {"augment": False, "schedule": "final-drop"},
    # The localisation network at the full learning rate (clipping kept): on R-MNIST the default
    # tenth leaves the transformer turning digits hardly at all, the classifier doing the work.
    "full-localisation-lr": {"localisation_lr_scale": 1.0},
    # As "full-localisation-lr", with the transformer's output a 28x28 window of the 42x42 RTS
    # canvas: attention, as on the cluttered canvas; the classifier works on 28x28 as on MNIST.
    "window-28": {"localisation_lr_scale": 1.0, "window": 28},
}


def default_config(dataset: str, model: str, epochs: int, seed: int = 0, variant: str = "") -> RunConfig:
    """The course's recipe for a dataset and model (:func:`recipe_config`), shrunk by
    :func:`quick_config` in quick (test) mode."""
    config = recipe_config(dataset, model, epochs, seed, variant)
    return quick_config(config) if is_quick() else config


def recipe_config(dataset: str, model: str, epochs: int, seed: int = 0, variant: str = "") -> RunConfig:
    """The course's recipe for a dataset and model, whatever the mode.

    * The CIFAR-10 networks of the course material (``cifar-net-a``, ``cifar-net-b``) train
      like the PyTorch STN tutorial: plain SGD, lr 0.01, batch 64, no schedule, no clipping
      (variants: ``"momentum"``, ``"no-augment"``, ``"no-augment-drop"``).
    * The strong CIFAR-10 models (``cifar-st-resnet``, ``cifar-resnet``): SGD with Nesterov
      momentum, one-cycle schedule, label smoothing 0.1, weight decay 5e-4, batch 256,
      channels-last memory format.
    * Everything else: AdamW with a one-cycle schedule.

    Elsewhere transformers' localisation networks train at a tenth of the learning rate,
    with gradient clipping (norm 5).
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose from {sorted(DATASETS)}")
    if model not in MODEL_NAMES:
        raise ValueError(f"unknown model {model!r}; choose from {MODEL_NAMES}")
    if variant and variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose from {sorted(VARIANTS)}")
    config = RunConfig(dataset=dataset, model=model, epochs=epochs, seed=seed)
    if model.startswith("cifar-net"):
        config = replace(config, batch_size=64, optimizer="sgd", lr=0.01, schedule="constant",
                         localisation_lr_scale=1.0, weight_decay=0.0, max_grad_norm=None)
    elif model in ("cifar-resnet", "cifar-st-resnet"):
        config = replace(config, batch_size=256, optimizer="sgd", lr=0.2, momentum=0.9, nesterov=True,
                         weight_decay=5e-4, label_smoothing=0.1, channels_last=True, log_interval=100)
    elif model.startswith("gtsrb-"):  # traffic signs: the default recipe, logged 3 times an epoch
        config = replace(config, log_interval=100)
    if variant:
        config = replace(config, **VARIANTS[variant], variant=variant)
    return config


def quick_config(config: RunConfig) -> RunConfig:
    """The same run, shrunk for quick (test) mode: a few hundred images, one epoch."""
    return replace(config, epochs=1, train_limit=512, test_limit=256, quick=True)


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
                   save: bool = True, **fit_options) -> Experiment:
    """Build and train ``config``: :func:`build_experiment` then :func:`train_experiment`."""
    return train_experiment(build_experiment(config, device), save=save, **fit_options)


def train_experiment(experiment: Experiment, save: bool = True, use_checkpoints: bool = True,
                     replay_log: bool = False, **fit_options) -> Experiment:
    """Train a built experiment (resuming or loading its checkpoint), then record the result.

    The checkpoint lives in :func:`stn_course.utils.checkpoint_dir` as ``<name>.pt``;
    the result goes to ``results/<name>.json`` (a temporary folder in quick mode).
    With ``use_checkpoints=False`` it trains from scratch, loading and writing nothing
    (e.g. to record the transformer while it learns). With ``replay_log``, a run that is
    only loaded prints the log it printed while training.
    """
    config = experiment.config
    if use_checkpoints and load_shipped_checkpoint(experiment):
        if replay_log:
            print_log(experiment.history)
        return experiment  # nothing to record: the shipped model comes with its results file
    groups = parameter_groups(experiment.model, config.lr, config.localisation_lr_scale)
    if config.optimizer == "sgd":
        optimizer = torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov,
                                    weight_decay=config.weight_decay)
    elif config.optimizer == "adamw":
        optimizer = torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)
    else:
        raise ValueError(f"unknown optimizer {config.optimizer!r}; choose 'sgd' or 'adamw'")
    scheduler = make_scheduler(config, optimizer, len(experiment.train_loader))
    checkpoint = checkpoint_dir() / f"{config.name}.pt" if use_checkpoints else None
    experiment.history = fit(
        experiment.model, optimizer, experiment.train_loader, experiment.test_loader, config.epochs,
        scheduler=scheduler, step_scheduler_every_batch=True, max_grad_norm=config.max_grad_norm,
        log_interval=config.log_interval, label_smoothing=config.label_smoothing, checkpoint=checkpoint,
        seed=config.seed, **{"amp": config.amp, **fit_options})
    only_loaded = experiment.history.trained_now == 0
    if only_loaded and replay_log:
        print_log(experiment.history)
    # A finished run that was only loaded keeps the result recorded when it trained.
    already_recorded = only_loaded and (results_dir() / f"{config.name}.json").exists()
    if save and use_checkpoints and experiment.history.epochs == config.epochs and not already_recorded:
        record_result(experiment)
    return experiment


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
                           "config": asdict(experiment.config)})
    return path


def fetch_shipped_checkpoint(name: str) -> bool:
    """On Colab, where the package is installed without the repository's ``checkpoints/``,
    download ``checkpoints/<name>.pt`` from the repository (``REPO_URL``). Elsewhere, or if
    the download fails, do nothing and return False (the caller then trains)."""
    if "google.colab" not in sys.modules:
        return False
    path = shipped_checkpoint_dir() / f"{name}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(f"{REPO_URL}/raw/main/checkpoints/{name}.pt", str(path), progress=False)
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
    state = load_checkpoint(shipped)
    model = experiment.model
    device = next(model.parameters()).device
    model.load_state_dict({key: value.to(device=device, dtype=model.state_dict()[key].dtype)
                           for key, value in state["model"].items()})
    experiment.history = History(**state["history"])
    print(f"Loaded the trained model shipped with the course, checkpoints/{name}.pt "
          f"({experiment.history.epochs} epochs, test accuracy {100 * experiment.history.test_accuracy[-1]:.2f}% "
          f"when trained); rerun without it to train yourself.")
    return True


def load_trained(config: RunConfig, device: torch.device | None = None) -> tuple[Experiment, bool]:
    """The finished run ``config``, loaded, never trained, and whether its weights are the
    shipped float16 ones (``checkpoints/``, rounded, so a prediction or two may differ from
    the run's) rather than the run's own checkpoint in :func:`checkpoint_dir`. Raises
    FileNotFoundError, with the command that trains it, if the run has not finished."""
    experiment = build_experiment(config, device)
    if load_shipped_checkpoint(experiment):
        return experiment, True
    path = checkpoint_dir() / f"{config.name}.pt"
    state = load_checkpoint(path) if path.exists() else None
    if state is None or state["epoch"] < config.epochs:
        raise FileNotFoundError(f"{config.name} has not finished training; train it with\n  {config.command()}")
    experiment.model.load_state_dict(state["model"])
    experiment.history = History(**state["history"])
    return experiment, False


def record_errors(config: RunConfig, device: torch.device | None = None) -> Path:
    """Load the finished run ``config`` (:func:`load_trained`) and write
    ``results/errors_<run name>.json``: what it gets wrong on its test set
    (:func:`stn_course.analysis.error_summary`), with the command that repeats it."""
    experiment, shipped = load_trained(config, device)
    summary = error_summary(collect_errors(experiment.model, experiment.test_loader))
    weights = "shipped float16" if shipped else "trained"
    return save_result(f"errors_{config.name}", {"run": config.name, "weights": weights, **summary},
                       config.command("errors"))


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


def load_run_results(folder: Path | None = None) -> list[dict]:
    """Every training result (``results/*.json`` with a test accuracy), sorted by name."""
    folder = folder or repo_root() / "results"
    records = [json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))]
    return [record for record in records if "test_accuracy" in record]


def load_error_results(folder: Path | None = None) -> list[dict]:
    """Every error analysis (``results/errors_*.json``, :func:`record_errors`), sorted by run."""
    folder = folder or repo_root() / "results"
    return [json.loads(path.read_text()) for path in sorted(folder.glob("errors_*.json"))]


def errors_table(records: list[dict], confusions: int = 3) -> str:
    """Error analyses as Markdown: per run, the test error, the share of test digits whose ink
    reaches the image's edge, the error rate on those and on the rest, and the most frequent
    confusions (``9→4 (6)``: six 9s read as 4). A run analysed with its shipped float16
    weights says so."""
    lines = ["| run | test error | digits touching the edge | error on those | error on the rest "
             "| most frequent confusions |", "|---|---|---|---|---|---|"]

    def percent(value: float | None) -> str:
        return "—" if value is None else f"{value:.2f}%"

    for record in records:
        pairs = ", ".join(f"{c['true']}→{c['predicted']} ({c['count']})" for c in record["confusions"][:confusions])
        at_edge = record["errors_touching_edge"]
        shipped = " (shipped float16 weights)" if record["weights"] == "shipped float16" else ""
        lines.append(f"| `{record['run']}`{shipped} | {record['error_percent']:.2f}% ({record['errors']}) "
                     f"| {100 * record['images_touching_edge'] / record['test_samples']:.1f}% "
                     f"| {percent(record['error_percent_touching_edge'])} ({at_edge}) "
                     f"| {percent(record['error_percent_inside'])} ({record['errors'] - at_edge}) | {pairs} |")
    return "\n".join(lines)


def results_table(folder: Path | None = None) -> str:
    """The README's results table (Markdown), made from ``results/*.json``."""
    lines = [
        "| run | test accuracy | test error | epochs | training time | machine | command |",
        "|---|---|---|---|---|---|---|",
    ]
    for record in load_run_results(folder):
        machine = record["machine"]
        where = machine["cuda"] or f"{machine['cpu_count']}-core CPU"
        lines.append(
            f"| `{record['name']}` | {100 * record['test_accuracy']:.2f}% | {record['test_error_percent']:.2f}% "
            f"| {record['epochs']} | {record['seconds_total'] / 60:.1f} min | {where}, torch {machine['torch']} "
            f"| `{record['command']}` |")
    return "\n".join(lines)


#: CIFAR-10 test accuracy (%) reported by the course material, and the course's target for its own model
CIFAR10_REPORTED = {"cifar-net-a": 60.0, "cifar-net-b": 65.0}
CIFAR10_TARGET = {"cifar-st-resnet": 85.0, "cifar-resnet": 85.0}


def cifar10_table(records: list[dict]) -> str:
    """CIFAR-10 runs as Markdown: model, recipe, parameters, epochs, test accuracy beside
    the reported or target accuracy, training time, and the command that reproduces it."""
    lines = ["| model | recipe | parameters | epochs | test accuracy | reported / target | training time | command |",
             "|---|---|---|---|---|---|---|---|"]
    for record in sorted((r for r in records if r["config"]["dataset"] == "cifar10"), key=lambda r: r["name"]):
        config = record["config"]
        model = config["model"]
        recipe = f"{config['optimizer'].upper()} lr {config['lr']:g}"
        if config.get("momentum"):
            recipe += f", momentum {config['momentum']:g}" + (" (Nesterov)" if config.get("nesterov") else "")
        if config.get("schedule") == "onecycle":
            recipe += ", one-cycle"
        elif config.get("schedule") == "final-drop":
            recipe += f", lr ÷ 10 from epoch {round(FINAL_DROP_AT * record['epochs']) + 1}"
        if config.get("label_smoothing"):
            recipe += f", label smoothing {config['label_smoothing']:g}"
        recipe += ", crop + flip" if config.get("augment", True) else ", no augmentation"
        if model in CIFAR10_REPORTED:
            goal = f"{CIFAR10_REPORTED[model]:.0f}% reported"
        elif model in CIFAR10_TARGET:
            goal = f"≥ {CIFAR10_TARGET[model]:.0f}% target"
        else:
            goal = ""
        variant = f" ({config['variant']})" if config.get("variant") else ""
        time = f"{record['seconds_total'] / 60:.1f} min"
        machine = record.get("machine")
        if machine and not machine.get("cuda"):
            threads = machine["torch_threads"]
            time += f" ({threads} CPU thread{'s' if threads > 1 else ''})"
        lines.append(f"| `{model}`{variant} | {recipe} | {record['parameters']:,} | {record['epochs']} "
                     f"| **{100 * record['test_accuracy']:.2f}%** | {goal} | {time} | `{record['command']}` |")
    return "\n".join(lines)


def sampler_benchmark_table(folder: Path | None = None) -> str:
    """The README's NumPy-vs-PyTorch sampler table, from ``results/sampler_benchmark.json``."""
    path = (folder or repo_root() / "results") / "sampler_benchmark.json"
    if not path.exists():
        return "(no benchmark recorded yet: run `python benchmarks/sampler.py`)"
    record = json.loads(path.read_text())
    threads = record["machine"]["torch_threads"]
    lines = [f"| image (batch {record['settings']['batch']}) | pass | NumPy | torch, {threads} threads | ratio "
             "| torch, 1 thread | ratio |", "|---|---|---|---|---|---|---|"]
    for row in record["rows"]:
        lines.append(f"| {row['image']} | {row['pass']} | {1000 * row['numpy_s']:.3f} ms | {1000 * row['torch_s']:.3f} ms "
                     f"| {row['ratio']:.2f}x | {1000 * row['torch_1_thread_s']:.3f} ms | {row['ratio_1_thread']:.2f}x |")
    machine = record["machine"]
    lines.append("")
    lines.append(f"Measured {record['finished_at'][:16].replace('T', ' ')} on a {machine['cpu_count']}-core "
                 f"{machine['processor']} CPU, NumPy {machine['numpy']}, torch {machine['torch']}; "
                 f"ratio = NumPy time / torch time.")
    return "\n".join(lines)


def pipeline_benchmark_table(folder: Path | None = None) -> str:
    """The README's data-pipeline and STN-overhead table, from ``results/pipeline_benchmark.json``."""
    path = (folder or repo_root() / "results") / "pipeline_benchmark.json"
    if not path.exists():
        return "(no benchmark recorded yet: run `python benchmarks/pipeline.py`)"
    record = json.loads(path.read_text())
    lines = ["| measurement | data | model | seconds per epoch | the data alone | test accuracy after training "
             "| ratio |", "|---|---|---|---|---|---|---|"]

    def data_alone(run: dict) -> str:
        # older records timed whole training epochs only
        return f"{run['data_seconds_per_epoch']:.1f}" if "data_seconds_per_epoch" in run else ""

    for key, comparison in record["pipeline"].items():
        # older records keyed comparisons by model alone, all on MNIST
        dataset, model = comparison.get("dataset", "mnist"), comparison.get("model", key)
        (tutorial_name, tutorial), (course_name, course) = comparison["runs"].items()
        speedup = comparison["speedup"]
        ratio = f"**{speedup:.2f}x** " + ("faster" if speedup >= 1 else f"the speed ({1 / speedup:.2f}x slower)")
        if "data_speedup" in comparison:
            ratio += f"; {comparison['data_speedup']:.0f}x for the data alone"
        lines.append(f"| {tutorial_name} ({comparison['num_workers']} workers) | {dataset} | `{model}` "
                     f"| {tutorial['seconds_per_epoch']:.1f} | {data_alone(tutorial)} "
                     f"| {100 * tutorial['test_accuracy']:.2f}% | |")
        lines.append(f"| {course_name} | {dataset} | `{model}` | {course['seconds_per_epoch']:.1f} "
                     f"| {data_alone(course)} | {100 * course['test_accuracy']:.2f}% | {ratio} |")
    overhead = record["stn_overhead"]
    lines.append(f"| training | rts-mnist | `cnn` | {overhead['runs']['cnn']['seconds_per_epoch']:.1f} | | | |")
    # older records timed one ST-CNN once: its ratio alone, in "ratio"
    ratios = overhead.get("ratios") or {"st-cnn-aff": {"median": overhead["ratio"], "turns": None}}
    for name, ratio in ratios.items():
        model, _, detail = name.partition(", ")
        text = f"**{ratio['median']:.2f}x** the CNN's time"
        if ratio["turns"]:
            text += (f" (median of {overhead['rounds']} interleaved turns, "
                     f"{min(ratio['turns']):.2f}–{max(ratio['turns']):.2f})")
        lines.append(f"| training | rts-mnist | `{model}`{', ' + detail if detail else ''} "
                     f"| {overhead['runs'][name]['seconds_per_epoch']:.1f} | | | {text} |")
    machine = record["machine"]
    measured = "whole epochs" if record["batches_per_measurement"] is None else \
        f"{record['batches_per_measurement']} batches per measurement, scaled to an epoch"
    lines += ["", f"Measured {record['finished_at'][:16].replace('T', ' ')} on a {machine['cpu_count']}-core "
              f"{machine['processor']} CPU ({measured}), torch {machine['torch']}, batch {record['batch_size']}."]
    return "\n".join(lines)


#: The README's generated blocks (``<!-- NAME:start -->`` … ``<!-- NAME:end -->``): name → table.
README_BLOCKS: dict[str, Callable[[], str]] = {
    "table1": lambda: distorted_mnist_table(load_run_results()),
    "speed": lambda: speed_table(load_run_results()),
    "regularisation": lambda: regularisation_table(load_run_results()),
    "seeds": lambda: seed_table(load_run_results()),
    "errors": lambda: errors_table(load_error_results()),
    "results": results_table,
    "benchmark": sampler_benchmark_table,
    "pipeline": pipeline_benchmark_table,
}


def update_readme_results(readme: Path | None = None) -> None:
    """Rewrite the README's generated blocks (``<!-- NAME:start -->`` … ``<!-- NAME:end -->``,
    one per entry of :data:`README_BLOCKS`) from ``results/``."""
    readme = readme or repo_root() / "README.md"
    text = readme.read_text()
    for name, make in README_BLOCKS.items():
        pattern = re.compile(rf"(<!-- {name}:start -->\n).*?(<!-- {name}:end -->)", re.S)
        if not pattern.search(text):
            raise ValueError(f"{readme} has no <!-- {name}:start --> ... <!-- {name}:end --> block")
        text = pattern.sub(lambda m: m.group(1) + make() + "\n" + m.group(2), text)
    readme.write_text(text)


#: The paper's Table 1 (Jaderberg et al., 2015): test error (%) on distorted MNIST.
PAPER_TABLE1 = {
    "cnn": {"R": 1.2, "RTS": 0.8, "P": 1.5, "E": 1.4, "TC": 3.5},
    "st-cnn-aff": {"R": 0.7, "RTS": 0.5, "P": 0.8, "E": 1.2, "TC": 1.7},
    "st-cnn-proj": {"R": 0.8, "RTS": 0.6, "P": 0.8, "E": 1.3},
    "st-cnn-tps": {"R": 0.7, "RTS": 0.5, "P": 0.8, "E": 1.1},
}
TABLE1_COLUMNS = {"R": "rot-mnist", "RTS": "rts-mnist", "P": "proj-mnist", "E": "elastic-mnist", "TC": "clutter-mnist"}
#: Table 1's rows: (model, variant, settings changed by hand). A row other than the default holds
#: the runs of that change to the recipe, beside the paper's figures for the same model.
TABLE1_ROWS: list[tuple[str, str, dict]] = [
    ("cnn", "", {}), ("cnn", "", {"amp": True}), ("cnn", "", {"amp": True, "channels_last": True}),
    ("cnn", "", {"amp": True, "channels_last": True, "label_smoothing": 0.1}),
    ("st-cnn-aff", "", {}), ("st-cnn-aff", "", {"amp": True}),
    ("st-cnn-aff", "full-localisation-lr", {}), ("st-cnn-aff", "full-localisation-lr", {"amp": True}),
    ("st-cnn-aff", "full-localisation-lr", {"amp": True, "channels_last": True}),
    ("st-cnn-aff", "full-localisation-lr", {"amp": True, "channels_last": True, "label_smoothing": 0.1}),
    ("st-cnn-aff", "window-28", {}), ("st-cnn-aff", "window-28", {"amp": True}),
    ("st-cnn-aff", "window-28", {"amp": True, "channels_last": True}),
    ("st-cnn-aff", "window-28", {"amp": True, "channels_last": True, "label_smoothing": 0.1}),
    ("st-cnn-proj", "", {}), ("st-cnn-tps", "", {})]


def config_of(record: dict) -> RunConfig:
    """The :class:`RunConfig` of a results record (fields added since it was written take their defaults)."""
    known = {field.name for field in fields(RunConfig)}
    return RunConfig(**{key: value for key, value in record["config"].items() if key in known})


def latest_results(records: list[dict], seed: int = 0) -> dict[tuple[str, str, str], dict]:
    """The most recent finished record of ``seed`` for each (dataset, model, recipe label);
    the label (:attr:`RunConfig.recipe`) is ``""`` for the default recipe. The course's
    tables compare recipes at one seed; :func:`seed_table` shows what another seed changes."""
    latest: dict[tuple[str, str, str], dict] = {}
    for record in sorted(records, key=lambda r: r["finished_at"]):
        config = config_of(record)
        if config.seed == seed:
            latest[(config.dataset, config.model, config.recipe)] = record
    return latest


def seed_table(records: list[dict]) -> str:
    """Runs that differ only in their seed (a new initialisation, batch order, training
    distortions and, for distorted MNIST, test set), as Markdown: each seed's test error, their
    mean and spread, for every recipe and number of epochs run with more than one seed."""
    by_run: dict[tuple, dict[int, dict]] = {}
    for record in sorted(records, key=lambda r: r["finished_at"]):
        config = config_of(record)
        by_run.setdefault((config.dataset, config.model, config.recipe, config.epochs), {})[config.seed] = record
    lines = ["| dataset | model | recipe | epochs | test error by seed | mean | spread |", "|---|---|---|---|---|---|---|"]
    for (dataset, model, recipe, epochs), seeds in sorted(by_run.items()):
        if len(seeds) < 2:
            continue
        errors = {seed: seeds[seed]["test_error_percent"] for seed in sorted(seeds)}
        by_seed = ", ".join(f"{error:.2f}% (seed {seed})" for seed, error in errors.items())
        spread = max(errors.values()) - min(errors.values())
        lines.append(f"| {dataset} | {model} | {recipe or 'default'} | {epochs} | {by_seed} "
                     f"| {statistics.mean(errors.values()):.2f}% | {spread:.2f} points |")
    return "\n".join(lines)


def distorted_mnist_table(records: list[dict]) -> str:
    """Table 1 as Markdown: our test error (%) beside the paper's, and our training time.

    One row per entry of :data:`TABLE1_ROWS`; cells read ``ours (epochs, minutes) / paper``,
    and a dash marks a run not recorded in ``records`` yet.
    """
    latest = latest_results(records)
    header = "| model | " + " | ".join(TABLE1_COLUMNS) + " |"
    lines = [header, "|---" * (len(TABLE1_COLUMNS) + 1) + "|"]
    for model, variant, changes in TABLE1_ROWS:
        paper = PAPER_TABLE1[model]
        parts = recipe_parts(variant, changes)
        cells = []
        for column, dataset in TABLE1_COLUMNS.items():
            record = latest.get((dataset, model, "_".join(parts)))
            ours = (f"**{record['test_error_percent']:.2f}** ({record['epochs']} ep, "
                    f"{record['seconds_total'] / 60:.0f} min)") if record else "—"
            cells.append(f"{ours} / {paper[column]}" if column in paper else ours)
        row = f"{model} ({', '.join(parts)})" if parts else model
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


#: RunConfig fields that change how fast a run computes, not what it computes (up to rounding)
SPEED_FIELDS = ("amp", "channels_last")
#: RunConfig fields that regularise the classifier without changing its size: dropout and batch
#: norm in its layers, label smoothing in its loss
REGULARISATION_FIELDS = ("dropout", "batchnorm", "label_smoothing")


def settings_table(records: list[dict], setting_fields: Sequence[str], heading: str, timed: bool = True) -> str:
    """Each run that sets one of ``setting_fields`` by hand beside the latest run of the same
    recipe without any of them, as Markdown: both errors and, if ``timed``, the median seconds
    per epoch of each and their ratio. ``heading`` names the settings column. A run whose
    recipe without the settings was never run is left out."""
    latest = latest_results(records)
    timing = " s/epoch without → with | speed-up |" if timed else ""
    lines = [f"| dataset | model | recipe | {heading} |{timing} test error without → with |",
             "|---|---|---|---|" + ("---|---|" if timed else "") + "---|"]
    for (dataset, model, recipe), record in sorted(latest.items()):
        config = config_of(record)
        settings = {name: value for name, value in config.changes.items() if name in setting_fields}
        if not settings:
            continue
        plain = recipe_config(config.dataset, config.model, config.epochs, config.seed, config.variant)
        base_recipe = replace(config, **{name: getattr(plain, name) for name in settings}).recipe
        base = latest.get((dataset, model, base_recipe))
        if base is None:
            continue
        cells = [dataset, model, base_recipe or "default", ", ".join(recipe_parts("", settings))]
        if timed:
            seconds = [statistics.median(r["seconds_per_epoch"]) for r in (base, record)]
            cells += [f"{seconds[0]:.0f} → {seconds[1]:.0f}", f"**{seconds[0] / seconds[1]:.2f}x**"]
        cells.append(f"{base['test_error_percent']:.2f}% ({base['epochs']} ep) → "
                     f"{record['test_error_percent']:.2f}% ({record['epochs']} ep)")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def speed_table(records: list[dict]) -> str:
    """Each run that sets a speed field (:data:`SPEED_FIELDS`: bfloat16 mixed precision,
    channels-last memory format) beside the same recipe without any (:func:`settings_table`)."""
    return settings_table(records, SPEED_FIELDS, "speed settings")


def regularisation_table(records: list[dict]) -> str:
    """Each run that regularises the classifier (:data:`REGULARISATION_FIELDS`: dropout, batch
    norm, label smoothing) beside the same recipe without it (:func:`settings_table`), errors
    only: the runs compared were often made on different days of a shared machine, whose
    speed varies more than these settings change it."""
    return settings_table(records, REGULARISATION_FIELDS, "regularisation", timed=False)
