"""One run at a time per checkpoint: a lock file holding the pid, and stale temporaries cleaned.

Two identical ``train`` commands (or a notebook and a command) would otherwise write the
same checkpoint file in turn, each resuming from the other's epochs. :func:`run_lock`
creates ``<checkpoint>.lock`` with the process id; a second run finds it and is refused
with a :class:`~stn_course.errors.CourseError`, unless the pid in it is no longer running
(a killed run), in which case the lock is taken over. Holding the lock, the run removes
the ``<checkpoint>.*.tmp`` files an interrupted checkpoint write left behind
(:func:`stn_course.files.write_atomically` names its temporaries so).
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

from .errors import CourseError


def lock_path(checkpoint: Path) -> Path:
    """``<checkpoint>.lock``, e.g. ``mnist_cnn_e5_s0.pt.lock``."""
    return checkpoint.with_name(checkpoint.name + ".lock")


def pid_is_running(pid: int) -> bool:
    """True if a process with this id exists (signal 0 checks without sending anything)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by another user
        return True
    return True


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None  # vanished, empty or garbled: treated as stale


def acquire(checkpoint: Path) -> Path:
    """Create the lock file of ``checkpoint`` holding this process's id; take over a stale
    one. Raises CourseError if a running process holds it."""
    path = lock_path(checkpoint)
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(3):  # a stale lock removed by us or by a racing run: try again
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            pid = _read_pid(path)
            if pid is not None and pid != os.getpid() and pid_is_running(pid):
                raise CourseError(
                    f"Another run of {checkpoint.stem} is in progress (process {pid}, lock file {path}).\n"
                    f"Wait for it to finish, or stop it; if no such run exists, delete {path}.") from None
            path.unlink(missing_ok=True)  # stale: its process has ended
            continue
        with os.fdopen(fd, "w") as file:
            file.write(f"{os.getpid()}\n")
        return path
    raise CourseError(f"Could not take the lock {path}: other runs keep creating it; try again.")


def remove_stale_temporaries(checkpoint: Path) -> list[Path]:
    """Delete the ``<checkpoint>.*.tmp`` files left by interrupted writes (call it holding
    the lock: no one else writes this checkpoint then). Returns what was removed."""
    removed = []
    for tmp in checkpoint.parent.glob(f"{checkpoint.name}.*.tmp"):
        tmp.unlink(missing_ok=True)
        removed.append(tmp)
    return removed


#: the lock files this process holds now (a run locks before loading its data, then again to train)
_HELD: set[Path] = set()


@contextlib.contextmanager
def run_lock(checkpoint: Path) -> Iterator[Path]:
    """Hold the lock of ``checkpoint`` for the duration of a run, cleaning stale temporaries.
    Re-entrant: a lock this process already holds is held on, and released by its first holder."""
    path = lock_path(checkpoint)
    if path.resolve() in _HELD:
        yield path
        return
    path = acquire(checkpoint)
    _HELD.add(path.resolve())
    try:
        remove_stale_temporaries(checkpoint)
        yield path
    finally:
        _HELD.discard(path.resolve())
        if _read_pid(path) == os.getpid():
            # a folder turned read-only must not hide the error that ended the run: a lock left
            # behind names a process that has ended, and the next run takes it over
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
