"""Reproducible runs: one named recipe → data, model, optimiser, training, results JSON.

The notebooks and the command line (``python -m stn_course train ...``) both call
:func:`run_experiment`, so every number in the course comes from the same code path,
and the command that reproduces it is stored beside it in ``results/<run>.json``.
"""
from __future__ import annotations

import shlex
import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from .analysis import collect_errors, error_summary
from .data import Augmentation, BatchLoader, ImageTensors, load_cifar10, load_mnist, random_crop_flip
from .errors import CourseError
from .models import count_parameters
from .registry import MODEL_NAMES, build_classifier
from .runlock import run_lock
from .train import History, TransformerRecorder, fit, load_checkpoint, parameter_groups, print_log, save_checkpoint
from .utils import (checkpoint_dir, get_device, has_repository, is_quick, output_root, recorded_results_dir,
                    repo_root, repo_url, results_dir, save_result, set_seed, shipped_checkpoint_dir)


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


def default_config(dataset: str, model: str, epochs: int, seed: int = 0, variant: str = "", *,
                   quick: bool = False) -> RunConfig:
    """The course's recipe for a dataset and model (:func:`recipe_config`), shrunk by
    :func:`quick_config` if ``quick``. The mode is the caller's to pass (notebooks and the
    command line pass ``quick=is_quick()``), so the same call always makes the same run."""
    config = recipe_config(dataset, model, epochs, seed, variant)
    return quick_config(config) if quick else config


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
        seed=config.seed, **{"amp": config.amp, **fit_options})
    return experiment


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
                           "config": asdict(experiment.config)})
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
    state = load_checkpoint(shipped)
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
    state = load_checkpoint(path) if path.exists() else None
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
