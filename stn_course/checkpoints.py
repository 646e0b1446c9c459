"""A run's checkpoint file and the run it belongs to.

:func:`save_checkpoint` writes a checkpoint atomically with the identity of its run
(:func:`run_identity`: the run's name and every setting that changes its weights);
:func:`load_checkpoint` reads it back with ``torch.load(weights_only=True)`` and, given the
identity the caller expects, refuses another run's checkpoint under the same file name
(:class:`CheckpointMismatchError`). The training loop (:mod:`stn_course.train`) checkpoints
every epoch with these; the course's shipped checkpoints are :mod:`stn_course.shipped`'s.
"""
from __future__ import annotations

import contextlib
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import torch

from .errors import CourseError
from .files import save_atomically

if TYPE_CHECKING:
    from .recipes import RunConfig


def save_checkpoint(path: Path, state: dict, run: dict | None = None) -> None:
    """Write ``state`` to ``path`` atomically: a crash mid-write never leaves a broken file.
    ``run`` (the run's identity, ``{"name": ..., "config": {...}}``) is stored with it as
    ``state["run"]``, so that :func:`load_checkpoint` can tell a checkpoint of another run."""
    try:
        save_atomically(state if run is None else {**state, "run": run}, path)
    except (OSError, RuntimeError) as error:  # disk full: torch's writer says "unexpected pos"; read-only: EACCES
        raise checkpoint_write_error(path, error) from error


class CheckpointWriteError(CourseError):
    """A checkpoint could not be written (disk full, read-only folder); nothing half-written is left."""


def checkpoint_write_error(path: Path, error: BaseException) -> CheckpointWriteError:
    """The error for a failed write of the checkpoint ``path``: what failed, and that the same
    command resumes from the last complete checkpoint once there is room."""
    import errno

    code = getattr(error, "errno", None)
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if code in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT) or "unexpected pos" in text or "No space" in text:
        reason = "the disk is full (or a file-size limit was reached)"
    elif code in (errno.EACCES, errno.EPERM, errno.EROFS):
        reason = "its folder is not writable"
    else:
        reason = f"{type(error).__name__}: {text}"
    return CheckpointWriteError(
        f"Could not write the checkpoint {Path(path).resolve()}: {reason}. Nothing half-written was left. Free some "
        f"space or make {Path(path).resolve().parent} writable (or set STN_COURSE_CHECKPOINTS to another folder), "
        f"then run the same command again: it resumes from the last complete checkpoint.")


class CheckpointMismatchError(CourseError):
    """A checkpoint under a run's file name was written by another run."""


#: what to do about a bad checkpoint of the learner's own run
DELETE_FIX = "Delete it to train the run again (command line: add --restart)"


def load_checkpoint(path: Path, map_location: torch.device | str = "cpu", run: dict | None = None,
                    fix: str = DELETE_FIX) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint` (tensors and plain data only).

    Raises CourseError naming the file if it is truncated, empty or not a checkpoint, ending
    with ``fix`` (what to do). With ``run`` (the identity the caller expects, as passed to
    :func:`save_checkpoint`), the checkpoint's own identity must match (:func:`check_checkpoint_run`)."""
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as error:  # torch raises zip, unpickling, EOF or key errors for a bad file
        raise CourseError(f"The checkpoint {Path(path).resolve()} cannot be read ({type(error).__name__}: "
                          f"{str(error).splitlines()[0] if str(error) else 'no details'}): it is truncated or "
                          f"not a checkpoint. {fix}.") from error
    if not isinstance(state, dict) or "model" not in state:
        raise CourseError(f"The checkpoint {Path(path).resolve()} holds no model (it is a "
                          f"{type(state).__name__}{' without a model' if isinstance(state, dict) else ''}): it is "
                          f"not a checkpoint of a run. {fix}.")
    if run is not None:
        check_checkpoint_run(Path(path), state, run)
    return state


def check_checkpoint_run(path: Path, state: dict, run: dict) -> None:
    """Refuse a checkpoint written by another run than ``run`` (``{"name", "config"}``).

    The checkpoint's identity is ``state["run"]``, or for the course's shipped checkpoints,
    which predate it, their ``state["config"]``. Names must agree, and so must every config
    field both record (a field added to the config later is absent from older checkpoints).
    A checkpoint with no identity at all (written before checkpoints carried one) is trusted
    by its file name for viewing, with a note saying so: no result is recorded from it
    (:func:`checkpoint_identity` is None), and training does not resume it."""
    stored = checkpoint_identity(state)
    if stored is None:
        print(f"Note: {path.resolve()} does not record which run wrote it (it predates checkpoints that do); "
              f"loading it as {run.get('name')}, by its file name, for viewing only: no result is recorded from "
              f"it. To record {run.get('name')}, train it again (command line: add --restart).")
        return
    expected, found = run.get("config", {}), stored.get("config", {})
    differences = [f"{key}={found[key]!r} there, {expected[key]!r} here"
                   for key in expected if key in found and found[key] != expected[key]]
    if "name" in stored and stored["name"] != run.get("name"):
        differences.insert(0, f"run {stored['name']}")
    if differences:
        raise CheckpointMismatchError(
            f"The checkpoint {path.resolve()} belongs to another run than {run.get('name')} "
            f"({'; '.join(differences)}). Delete it to train {run.get('name')} from scratch (command line: "
            f"add --restart), or set STN_COURSE_CHECKPOINTS to another folder to keep it.")


class IncompatibleCheckpointError(CourseError):
    """A checkpoint that is readable but does not fit the run (older code, another format)."""


def resumable_problem(state: dict) -> str | None:
    """What keeps a loaded checkpoint from being resumed or shown as a finished run (no
    optimiser state, an epoch that is not a whole number >= 1, no history), or None."""
    epoch = state.get("epoch")
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 1:
        return f"its epoch is {epoch!r}, not a whole number >= 1"
    if not isinstance(state.get("history"), dict):
        return "it holds no training history"
    if not isinstance(state.get("optimizer"), dict):
        return "it holds no optimizer state"
    return None


@contextlib.contextmanager
def restoring(path: Path, what: str, fix: str = DELETE_FIX) -> Iterator[None]:
    """Turn the errors of restoring ``what`` (e.g. a model's weights) from the checkpoint
    ``path`` into one :class:`IncompatibleCheckpointError` naming the file: a key renamed or
    a layer resized since the checkpoint was written, or a field of another type."""
    try:
        yield
    except (RuntimeError, ValueError, KeyError, TypeError) as error:
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise IncompatibleCheckpointError(
            f"The checkpoint {Path(path).resolve()} does not fit {what}: it was written by other (older?) code "
            f"({type(error).__name__}: {detail[:300]}). {fix}.") from error


def checkpoint_identity(state: dict) -> dict | None:
    """The run a loaded checkpoint says it belongs to (``{"name", "config"}``, or for the
    course's shipped checkpoints ``{"config"}``), or None for one that does not say (written
    before checkpoints carried their run): such a checkpoint may be viewed, never recorded."""
    return state.get("run") or ({"config": state["config"]} if isinstance(state.get("config"), dict) else None)


class UnidentifiedCheckpointError(CourseError):
    """A checkpoint that does not record its run was to be resumed or turned into a result."""


def unidentified_checkpoint_error(path: Path, name: str, what: str) -> UnidentifiedCheckpointError:
    """The error for ``what`` (e.g. "resume it") with the checkpoint ``path`` of no recorded run."""
    return UnidentifiedCheckpointError(
        f"The checkpoint {Path(path).resolve()} does not record which run wrote it, so it cannot {what} for "
        f"{name}: it may be another run's. Delete it to train {name} from scratch (command line: add --restart).")


#: fields that change no weight (the log interval), left out of a checkpoint's identity
IDENTITY_IGNORED = frozenset({"log_interval"})
#: also left out when a shipped (full) run stands in for a quick one, which shrinks only these
SHIPPED_IDENTITY_IGNORED = IDENTITY_IGNORED | {"quick", "train_limit", "test_limit"}


def run_identity(config: RunConfig, shipped: bool = False) -> dict:
    """What a checkpoint of ``config`` records, and is checked against when loaded
    (:func:`load_checkpoint`): the run's name and every field that changes
    its weights. ``shipped``: the identity a shipped checkpoint must match, which a quick run
    (shrunk limits) loads in place of training."""
    ignored = SHIPPED_IDENTITY_IGNORED if shipped else IDENTITY_IGNORED
    return {"name": config.name,
            "config": {key: value for key, value in asdict(config).items() if key not in ignored}}
