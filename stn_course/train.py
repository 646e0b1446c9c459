"""One training loop for every notebook and the command line.

* Logs in the classic PyTorch-example format::

      Train Epoch: 1 [0/60000 (0%)]	Loss: 2.306755
      Test set: Average loss: 0.0412, Accuracy: 9871/10000 (99%)

  plus seconds per epoch, and a tqdm progress bar (quiet in quick mode).
* A checkpoint after every epoch (model, optimiser, scheduler, loss scaler, epoch, history), written
  atomically and read with ``torch.load(weights_only=True)`` (:mod:`stn_course.checkpoints`). Calling :func:`fit` again
  with the same checkpoint resumes where the run stopped (e.g. after a Colab
  disconnect), or simply loads the finished model: "load if present, otherwise train".
  Each checkpoint records its run (``run``: name and config) and is checked when resumed:
  another run's checkpoint under the same file name is refused. Checkpoints from before
  this have no record and are trusted by their file name, with a note; the course's shipped
  checkpoints are checked by the config they store.
* Every epoch re-seeds PyTorch and the loader from ``(seed, epoch)``, so on the CPU an
  interrupted and resumed run ends with exactly the weights of an uninterrupted one.
"""
from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .checkpoints import (DELETE_FIX, IncompatibleCheckpointError, checkpoint_identity, load_checkpoint, restoring,
                          resumable_problem, save_checkpoint, unidentified_checkpoint_error)
from .errors import CourseError
from .loader import BatchLoader
from .models import SpatialTransformer, transformer_of
from .utils import is_quick

StepCallback = Callable[[int, nn.Module], None]


@dataclass
class History:
    """Per-epoch record of a run (lists indexed by epoch - 1)."""

    train_loss: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)
    test_correct: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    log: list[str] = field(default_factory=list)  # the printed training log, line by line
    # share of the transformer's sampling points inside the input on the last test batch
    sampled_inside: list[float] = field(default_factory=list)
    # what each epoch computed in (Precision.name): "float32", "float16 autocast" (CUDA) or
    # "bfloat16 autocast" (CPU); empty in checkpoints from before it was recorded
    precision: list[str] = field(default_factory=list)
    # epochs trained by the fit() call that returned this history (0: a finished run was
    # only loaded); not saved with the history
    trained_now: int = field(default=0, compare=False)
    # loaded from a checkpoint that does not record its run: for viewing, never recorded; not saved
    unidentified: bool = field(default=False, compare=False)

    @property
    def epochs(self) -> int:
        return len(self.test_accuracy)

    def as_dict(self) -> dict:
        record = asdict(self)
        del record["trained_now"], record["unidentified"]
        return record


#: below this share of sampling points inside the input, :func:`fit` warns that θ may have blown up
THETA_WARNING_INSIDE = 0.25


def sampled_inside(model: nn.Module) -> float | None:
    """Share of the sampling points of ``model``'s first spatial transformer's last grid that
    fall inside the input (``|x|, |y| <= 1``), or None if it has no transformer or no grid yet."""
    transformer = transformer_of(model)
    if transformer is None or transformer.last_grid is None:
        return None
    return (transformer.last_grid.abs() <= 1).all(dim=-1).float().mean().item()


def print_log(history: History) -> None:
    """Print the log a run printed while it trained (kept in ``history.log``)."""
    print("\n".join(history.log) if history.log else "(no log was kept for this run)")


class ThetaDivergedError(CourseError, RuntimeError):
    """The loss or the transformer's parameters became non-finite during training (the
    message says what to change, so the command line shows it without a traceback)."""


def evaluate(model: nn.Module, loader: BatchLoader, precision: Precision | None = None) -> tuple[float, int, int]:
    """Average cross-entropy loss, number correct and number of samples over ``loader``,
    under ``precision``'s evaluation autocast if given (:meth:`Precision.evaluation`)."""
    if loader.num_samples == 0:  # an average over nothing: refuse rather than divide by zero
        raise ValueError("cannot evaluate on an empty test set (0 samples)")
    model.eval()
    # summed on the device, in float64 as Python's floats would be: one GPU sync at the end
    total_loss = torch.zeros((), dtype=torch.float64, device=loader.device)
    correct = torch.zeros((), dtype=torch.int64, device=loader.device)
    with torch.no_grad(), (precision.evaluation() if precision is not None else nullcontext()):
        for images, labels in loader:
            logits = model(images)
            total_loss += F.cross_entropy(logits.float(), labels, reduction="sum").double()
            correct += (logits.argmax(dim=1) == labels).sum()
    return total_loss.item() / loader.num_samples, int(correct.item()), loader.num_samples


def format_train_log(epoch: int, seen: int, total: int, batch_index: int, batches: int, loss: float) -> str:
    """``Train Epoch: 1 [0/60000 (0%)]\\tLoss: 2.306755`` as in the PyTorch examples."""
    return f"Train Epoch: {epoch} [{seen}/{total} ({100.0 * batch_index / batches:.0f}%)]\tLoss: {loss:.6f}"


def format_test_log(loss: float, correct: int, total: int) -> str:
    """``Test set: Average loss: 0.0412, Accuracy: 9871/10000 (99%)``."""
    return f"Test set: Average loss: {loss:.4f}, Accuracy: {correct}/{total} ({100.0 * correct / total:.0f}%)"


@dataclass
class FitOptions:
    """How :func:`fit` trains; every field is also a keyword argument of :func:`fit`.

    Attributes:
        scheduler: steps once per epoch, or once per batch if ``step_scheduler_every_batch``
            (e.g. ``OneCycleLR``).
        checkpoint: file written after every epoch; if it exists and ``resume``, training
            continues after its last epoch (a finished run is just loaded).
        log_interval: print a ``Train Epoch`` line every this many batches; default: a few
            lines an epoch (:func:`default_log_interval`). On a GPU the loss is also checked
            for NaN only then: reading it waits for the GPU.
        max_grad_norm: clip the gradient norm (guards against θ blowing up).
        label_smoothing: of the cross-entropy loss.
        seed: base seed; epoch ``e`` runs with ``torch.manual_seed(seed * 1000 + e)``.
        on_step: ``on_step(global_step, model)`` after every optimiser step (and once
            with step 0 before training), e.g. to record θ during training.
        progress: show a tqdm bar; default: not in quick mode.
        amp: mixed precision: float16 with loss scaling on CUDA, bfloat16 on the CPU (faster
            on CPUs with native bfloat16, e.g. AVX-512 BF16 or AMX, slower on others);
            default: on when the model is on CUDA. Spatial transformers keep their
            sampling in float32 (see :class:`~stn_course.models.SpatialTransformer`).
        stop_after_epoch: return after this epoch as if interrupted (for tests and demos).
        run: the run's identity, stored in every checkpoint and checked when one is resumed
            (:func:`save_checkpoint`, :func:`load_checkpoint`).
    """

    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
    step_scheduler_every_batch: bool = False
    checkpoint: str | Path | None = None
    resume: bool = True
    log_interval: int | None = None
    max_grad_norm: float | None = None
    label_smoothing: float = 0.0
    seed: int = 0
    on_step: StepCallback | None = None
    progress: bool | None = None
    amp: bool | None = None
    stop_after_epoch: int | None = None
    run: dict | None = None

    def __post_init__(self) -> None:
        # fit is public: a negative clipping norm would silently reverse every gradient
        if self.max_grad_norm is not None and not (math.isfinite(self.max_grad_norm) and self.max_grad_norm > 0):
            raise ValueError(f"max_grad_norm must be a finite number > 0, or None (no clipping); "
                             f"got {self.max_grad_norm}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.log_interval is not None and self.log_interval < 1:
            raise ValueError(f"log_interval must be at least 1, got {self.log_interval}")


@dataclass
class Precision:
    """Mixed precision for one run: autocast's settings and the loss scaler."""

    device_type: str
    enabled: bool
    # bfloat16 has float32's range, so only float16 (CUDA) needs the loss scaled
    scaler: torch.amp.GradScaler

    @classmethod
    def for_device(cls, device: torch.device, amp: bool | None) -> "Precision":
        """``amp`` None: on for CUDA, off for the CPU."""
        enabled = device.type == "cuda" if amp is None else amp
        return cls(device.type, enabled, torch.amp.GradScaler("cuda", enabled=enabled and device.type == "cuda"))

    def autocast(self) -> torch.autocast:
        dtype = torch.float16 if self.device_type == "cuda" else torch.bfloat16
        return torch.autocast(self.device_type, dtype=dtype, enabled=self.enabled)

    @property
    def name(self) -> str:
        """What training computes in: ``"float32"``, or mixed precision's ``"float16 autocast"``
        (CUDA) or ``"bfloat16 autocast"`` (CPU)."""
        if not self.enabled:
            return "float32"
        return f"{'float16' if self.device_type == 'cuda' else 'bfloat16'} autocast"

    def evaluation(self):
        """Testing's autocast: training's on CUDA; none on the CPU, where runs were recorded
        testing in float32 (and bfloat16 is slow on CPUs without native support)."""
        return self.autocast() if self.device_type == "cuda" else nullcontext()


def fit(model: nn.Module, optimizer: torch.optim.Optimizer, train_loader: BatchLoader,
        test_loader: BatchLoader, epochs: int, options: FitOptions | None = None, **overrides) -> History:
    """Train ``model`` for ``epochs`` epochs, testing after each, checkpointing each.

    Args:
        model: takes float ``(N, C, H, W)`` batches, returns logits ``(N, classes)``.
        train_loader, test_loader: :class:`~stn_course.loader.BatchLoader` on the model's device.
        options: a :class:`FitOptions`; ``overrides`` replace its fields, e.g.
            ``fit(..., checkpoint="run.pt", seed=1)``.
    Returns:
        the :class:`History` of all epochs, resumed ones included.
    Raises:
        ThetaDivergedError: the loss became NaN or infinite.
    """
    options = replace(options or FitOptions(), **overrides)
    precision = Precision.for_device(next(model.parameters()).device, options.amp)
    if precision.device_type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input sizes: pick the fastest convolutions once
    history, start_epoch = resume(model, optimizer, options, epochs, precision)
    global_step = (start_epoch - 1) * len(train_loader)
    if options.on_step is not None and global_step == 0:
        options.on_step(0, model)
    for epoch in range(start_epoch, epochs + 1):
        started = time.perf_counter()
        train_loss, global_step = train_one_epoch(model, optimizer, train_loader, epoch, epochs, global_step,
                                                  options, precision, history)
        end_epoch(model, optimizer, test_loader, epoch, train_loss, started, options, history, precision)
        if options.stop_after_epoch is not None and epoch >= options.stop_after_epoch:
            break
    return history


def resume(model: nn.Module, optimizer: torch.optim.Optimizer, options: FitOptions,
           epochs: int, precision: Precision | None = None) -> tuple[History, int]:
    """Load ``options.checkpoint`` into model, optimiser, scheduler (and ``precision``'s
    loss scaler, if it scales) if it exists (and ``options.resume``); returns the history
    so far and the first epoch still to train."""
    checkpoint = Path(options.checkpoint) if options.checkpoint is not None else None
    if checkpoint is None or not options.resume or not checkpoint.exists():
        return History(), 1
    state = load_checkpoint(checkpoint, map_location=next(model.parameters()).device, run=options.run)
    problem = resumable_problem(state)
    if problem:
        raise IncompatibleCheckpointError(f"The checkpoint {checkpoint.resolve()} cannot be resumed: {problem} (it was "
                                          f"written by other code). {DELETE_FIX}.")
    unidentified = options.run is not None and checkpoint_identity(state) is None
    if unidentified and state["epoch"] < epochs:  # training on would launder another run's weights
        raise unidentified_checkpoint_error(checkpoint, options.run.get("name"), "resume")
    with restoring(checkpoint, "this run's model, optimiser and history"):
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if options.scheduler is not None and state.get("scheduler") is not None:
            options.scheduler.load_state_dict(state["scheduler"])
        if precision is not None and precision.scaler.is_enabled() and state.get("scaler"):
            precision.scaler.load_state_dict(state["scaler"])
        history = History(**state["history"], unidentified=unidentified)
    if state["epoch"] < epochs:
        print(f"Resuming from {checkpoint.name}: epoch {state['epoch']} of {epochs} done.")
        if precision is not None and history.precision and history.precision[-1] != precision.name:
            print(f"Note: it trained in {history.precision[-1]}; here it goes on in {precision.name}.")
    else:
        print(f"Loaded the finished run {checkpoint.name} ({history.epochs} epoch{'s' * (history.epochs != 1)}, "
              f"test accuracy {100 * history.test_accuracy[-1]:.2f}% when it trained); to train it again, "
              f"delete {checkpoint.resolve()}")
    return history, state["epoch"] + 1


def train_one_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, loader: BatchLoader, epoch: int,
                    epochs: int, global_step: int, options: FitOptions, precision: Precision,
                    history: History) -> tuple[float, int]:
    """One pass over ``loader``: the core loop (forward, loss, backward, step). Logs every
    ``options.log_interval`` batches (default: :func:`default_log_interval`) into ``history.log``;
    returns the mean training loss and the global step after the epoch."""
    torch.manual_seed(options.seed * 1000 + epoch)
    loader.set_epoch(epoch)
    model.train()
    scaler, scheduler = precision.scaler, options.scheduler
    # summed on the device in float64 (as Python's floats would be): no GPU sync per batch
    running_loss = torch.zeros((), dtype=torch.float64, device=loader.device)
    # loss.item() waits for a GPU, so there the finiteness check runs at the log interval (and
    # on the last batch); on the CPU it costs nothing and runs every batch
    log_interval = options.log_interval or default_log_interval(len(loader))
    check_every = 1 if loader.device.type == "cpu" else log_interval
    progress = not is_quick() if options.progress is None else options.progress
    bar = tqdm(loader, total=len(loader), desc=f"epoch {epoch}/{epochs}", leave=False, disable=not progress)
    for batch_index, (images, labels) in enumerate(bar):
        optimizer.zero_grad(set_to_none=True)
        with precision.autocast():
            loss = F.cross_entropy(model(images), labels, label_smoothing=options.label_smoothing)
        running_loss += loss.detach().double() * labels.shape[0]  # non-finite once any loss is
        if batch_index % check_every == 0 or batch_index == len(loader) - 1:
            check_finite(running_loss.item(), epoch, batch_index)
        scaler.scale(loss).backward()
        if options.max_grad_norm is not None:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), options.max_grad_norm)
        scaler.step(optimizer)
        scaler.update()
        if scheduler is not None and options.step_scheduler_every_batch:
            scheduler.step()
        global_step += 1
        if batch_index % log_interval == 0:
            line = format_train_log(epoch, batch_index * loader.batch_size, loader.num_samples,
                                    batch_index, len(loader), loss.item())
            bar.write(line)
            history.log.append(line)
        if options.on_step is not None:
            options.on_step(global_step, model)
    return running_loss.item() / loader.num_samples, global_step


def default_log_interval(batches: int, lines: int = 5) -> int:
    """A round log interval (1, 2 or 5 times a power of ten) that prints between about half of
    ``lines`` and ``lines`` ``Train Epoch`` lines in an epoch of ``batches`` batches (MNIST's 469
    batches of 128: every 100, five lines)."""
    target = max(1, math.ceil(batches / lines))
    power = 10 ** (len(str(target)) - 1)
    return next(step * power for step in (1, 2, 5, 10) if step * power >= target)


def check_finite(loss: float, epoch: int, batch_index: int) -> None:
    """Raise :class:`ThetaDivergedError` if ``loss`` is NaN or infinite."""
    if not math.isfinite(loss):
        raise ThetaDivergedError(
            f"loss became {loss} at epoch {epoch}, batch {batch_index}: lower the "
            f"learning rate (especially the localisation network's) or set max_grad_norm")


def end_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, test_loader: BatchLoader, epoch: int,
              train_loss: float, started: float, options: FitOptions, history: History,
              precision: Precision | None = None) -> None:
    """After an epoch: step a per-epoch scheduler, test (under ``precision``'s evaluation
    autocast), log, record in ``history``, checkpoint (with the loss scaler's state if it scales)."""
    lr = optimizer.param_groups[0]["lr"]
    if options.scheduler is not None and not options.step_scheduler_every_batch:
        options.scheduler.step()
    test_loss, correct, total = evaluate(model, test_loader, precision)
    seconds = time.perf_counter() - started
    log_epoch(model, epoch, format_test_log(test_loss, correct, total), seconds, history)
    history.train_loss.append(train_loss)
    history.test_loss.append(test_loss)
    history.test_accuracy.append(correct / total)
    history.test_correct.append(correct)
    history.seconds.append(seconds)
    history.lr.append(lr)
    if precision is not None:
        history.precision.append(precision.name)
    if options.checkpoint is not None:
        save_checkpoint(Path(options.checkpoint), {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": options.scheduler.state_dict() if options.scheduler is not None else None,
            "epoch": epoch,
            "history": history.as_dict(),
            **({"scaler": precision.scaler.state_dict()} if precision is not None and precision.scaler.is_enabled()
               else {}),
        }, run=options.run)
    history.trained_now += 1


def log_epoch(model: nn.Module, epoch: int, test_line: str, seconds: float, history: History) -> None:
    """Print the epoch's summary (test line, seconds, a warning if θ seems to have blown up)
    and keep it in ``history.log``; record the transformer's share of points inside."""
    summary = ["", test_line, f"Epoch {epoch}: {seconds:.1f} s", ""]
    inside = sampled_inside(model)
    if inside is not None:
        history.sampled_inside.append(inside)
        if inside < THETA_WARNING_INSIDE:
            summary.insert(-1, f"Warning: the spatial transformer samples only {100 * inside:.0f}% of its points "
                               "inside the input: θ may have blown up (lower the localisation network's "
                               "learning rate or clip gradients).")
    print("\n".join(summary))
    history.log.extend(summary)


def parameter_groups(model: nn.Module, lr: float, localisation_lr_scale: float = 0.1) -> list[dict]:
    """Optimizer parameter groups: localisation networks train ``localisation_lr_scale``
    times slower than the rest, which keeps θ from blowing up early in training."""
    loc_ids = {id(p) for m in model.modules() if isinstance(m, SpatialTransformer)
               for p in m.localisation.parameters()}
    loc = [p for p in model.parameters() if id(p) in loc_ids]
    rest = [p for p in model.parameters() if id(p) not in loc_ids]
    groups = [{"params": rest, "lr": lr, "name": "classifier"}]
    if loc:
        groups.append({"params": loc, "lr": lr * localisation_lr_scale, "name": "localisation"})
    return groups
