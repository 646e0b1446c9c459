"""Seeds, devices, run mode and paths: decided here, in one place, for every notebook.

Run modes
---------
* **full** (default): notebooks do the real work. Figures and the results of runs a learner
  makes go to the output folder, outside the repository, so following the course never
  changes a tracked file. The course's own recorded runs are written to ``results/`` only
  when asked (``--record`` on the command line, ``record=True`` in the API, or
  ``STN_COURSE_RECORD=1``), its figures to ``plots/`` only with ``STN_COURSE_RECORD_PLOTS=1``.
* **quick** (``STN_COURSE_QUICK=1``, set by ``conftest.py`` under pytest): small subsets
  and few steps, so every notebook runs in well under a minute; figures, results and
  checkpoints go to a temporary output folder (``STN_COURSE_OUTPUT`` if set), so a test
  run never touches tracked files.

Paths (each environment variable overrides its default)
-------------------------------------------------------
* data root: ``STN_COURSE_DATA``, else ``data/`` in the repository (it may be read-only);
* decoded-tensor cache: ``STN_COURSE_CACHE``, else ``<data root>/cache``;
* checkpoints: ``STN_COURSE_CHECKPOINTS``, else ``<data root>/checkpoints`` (full mode) or
  the output folder (quick mode);
* output folder: ``STN_COURSE_OUTPUT``, else ``<data root>/stn_course_output`` (full mode)
  or a temporary folder (quick mode); results of unrecorded runs go to its ``results/``,
  figures to its ``plots/``.

A default under the data root that cannot be created (a read-only classroom mount) falls
back to ``~/.cache/stn_course`` (``$XDG_CACHE_HOME``), with a note saying so.
"""
from __future__ import annotations

import errno
import os
import platform
import random
import stat
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from .errors import CourseError

#: Where the course is published: Colab installs the package and downloads shipped
#: checkpoints from here. A fork (or a test) points both elsewhere with ``STN_COURSE_REPO_URL``.
DEFAULT_REPO_URL = "https://github.com/stn-course/stn-course"


def repo_url() -> str:
    """``$STN_COURSE_REPO_URL`` if set, else :data:`DEFAULT_REPO_URL` (no trailing slash)."""
    return (os.environ.get("STN_COURSE_REPO_URL") or DEFAULT_REPO_URL).rstrip("/")


#: the URL in effect when the package was imported (call :func:`repo_url` for the current one)
REPO_URL = repo_url()

#: The first code cell of every notebook: installs the package only inside Colab, and stops
#: the notebook with one clear message if that fails. The requirement is a bare git URL: pip
#: before 24 (Python 3.11 bundles 23.x) refuses ``"stn-course @ git+file:///..."`` as a path.
COLAB_SETUP_CELL = f"""\
import os
import sys

if "google.colab" in sys.modules:  # only on Colab: install the course package
    import importlib.util
    repo = os.environ.get("STN_COURSE_REPO_URL", "{DEFAULT_REPO_URL}")
    %pip install --quiet "git+{{repo}}"
    importlib.invalidate_caches()
    if importlib.util.find_spec("stn_course") is None:  # stop here, not one cell later
        raise RuntimeError(f"Could not install the course package from {{repo}} (pip says why above). "
                           "Check the address and the network, then run this cell again.")"""

PACKAGE_DIR = Path(__file__).resolve().parent


def has_repository() -> bool:
    """True when the package runs from a clone of the course (not installed alone, as on Colab)."""
    candidate = PACKAGE_DIR.parent
    return (candidate / "pyproject.toml").exists() and (candidate / "notebooks").is_dir()


def repo_root() -> Path:
    """The repository folder when the package is installed from a clone, else the cwd."""
    return PACKAGE_DIR.parent if has_repository() else Path.cwd()


def is_quick() -> bool:
    """True in quick (test) mode: ``STN_COURSE_QUICK`` is set to a true value."""
    return os.environ.get("STN_COURSE_QUICK", "").strip().lower() in {"1", "true", "yes", "on"}


def quick_or_full(quick: Any, full: Any) -> Any:
    """Pick a setting by run mode, e.g. ``epochs = quick_or_full(1, 20)``."""
    return quick if is_quick() else full


#: data roots named by ``$STN_COURSE_DATA`` that did not exist when first asked for (a typo?)
NEW_DATA_ROOTS: set[Path] = set()


def data_root() -> Path:
    """Folder holding the datasets: ``$STN_COURSE_DATA`` or ``<repo>/data``. A folder named by
    ``$STN_COURSE_DATA`` that does not exist is noted once (it is created when data is
    downloaded into it, so a mistyped name would otherwise pass unseen)."""
    env = os.environ.get("STN_COURSE_DATA")
    if not env:
        return repo_root() / "data"
    root = Path(env).expanduser().resolve()
    if root not in NEW_DATA_ROOTS and not root.exists():
        NEW_DATA_ROOTS.add(root)
        print(f"Note: STN_COURSE_DATA={env} names a folder that did not exist; it is created for downloads "
              f"(check the name if your datasets are elsewhere).")
    return root


def _from_env(variable: str) -> Path | None:
    value = os.environ.get(variable)
    return Path(value).expanduser().resolve() if value else None


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def user_cache_root() -> Path:
    """``$XDG_CACHE_HOME/stn_course`` (default ``~/.cache/stn_course``): where defaults under
    a read-only data root go instead."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "stn_course"


_FALLBACKS_NOTED: set[Path] = set()


def _marked_read_only(folder: Path) -> bool:
    """A folder without any write permission bit: read-only by intent (a shared mount), even
    though root, who ignores the bits, could write there."""
    try:
        return not folder.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    except OSError:
        return False


def _ensure_default(path: Path, variable: str) -> Path:
    """Create a default folder under the data root, or, if that fails or the data root is
    marked read-only, the same folder under :func:`user_cache_root`, noting once which
    variable moves it."""
    try:
        if _marked_read_only(path.parent) and not path.is_dir():
            raise PermissionError(errno.EROFS, "the data root is read-only")
        return _ensure(path)
    except OSError as error:
        fallback = user_cache_root() / path.name
        if path not in _FALLBACKS_NOTED:
            _FALLBACKS_NOTED.add(path)
            print(f"Note: cannot create {path} ({error.strerror}); using {fallback} instead "
                  f"(set {variable} to choose the folder).")
        return _ensure(fallback)


def _folder(variable: str, name: str, quick: Callable[[], Path] | None = None) -> Path:
    """``$variable`` if set; else ``quick()`` in quick mode, if given; else ``<data root>/name``
    (or its fallback under a read-only data root, :func:`_ensure_default`)."""
    env = _from_env(variable)
    if env:
        return _ensure(env)
    if quick is not None and is_quick():
        return _ensure(quick())
    return _ensure_default(data_root() / name, variable)


def output_root() -> Path:
    """Folder for what a learner's runs produce: ``$STN_COURSE_OUTPUT``, else
    ``<data root>/stn_course_output`` (full mode) or a temporary folder (quick mode)."""
    return _folder("STN_COURSE_OUTPUT", "stn_course_output", lambda: Path(tempfile.gettempdir()) / "stn_course_quick")


def cache_dir() -> Path:
    """Folder for decoded uint8 tensors: ``$STN_COURSE_CACHE`` or ``<data root>/cache``."""
    return _folder("STN_COURSE_CACHE", "cache")


def checkpoint_dir() -> Path:
    """Folder for training checkpoints (never inside git): ``$STN_COURSE_CHECKPOINTS``, else
    ``<data root>/checkpoints`` (full mode) or the output folder (quick mode)."""
    return _folder("STN_COURSE_CHECKPOINTS", "checkpoints", lambda: output_root() / "checkpoints")


def _env_true(variable: str) -> bool:
    return os.environ.get(variable, "").strip().lower() in {"1", "true", "yes", "on"}


def should_record_plots() -> bool:
    """Whether figures go into the course's own ``plots/`` (which the README shows): only when
    the course's authors set ``STN_COURSE_RECORD_PLOTS=1`` to refresh them, in full mode, from a
    clone of the repository."""
    return _env_true("STN_COURSE_RECORD_PLOTS") and not is_quick() and has_repository()


def plots_dir() -> Path:
    """Folder notebooks save figures to: ``<output folder>/plots`` (:func:`output_root`, a
    temporary folder in quick mode), or the repository's ``plots/`` for the course's authors
    (:func:`should_record_plots`). Following the course never writes into ``plots/``."""
    return _ensure(repo_root() / "plots" if should_record_plots() else output_root() / "plots")


def recorded_results_dir() -> Path:
    """The course's recorded results (read by the tables): ``results/`` in the repository, or,
    installed without it (Colab), a local copy downloaded once (:mod:`stn_course.course_files`)."""
    if has_repository():
        return repo_root() / "results"
    from .course_files import course_results_dir  # here: it imports this module

    return course_results_dir()


def should_record(record: bool | None = None) -> bool:
    """Whether a result goes into the course's ``results/``: ``record`` if given, else
    ``$STN_COURSE_RECORD``; never in quick mode."""
    if record is None:
        record = _env_true("STN_COURSE_RECORD")
    return record and not is_quick()


def results_dir(record: bool | None = None) -> Path:
    """Folder results JSON are written to: ``results/`` in the repository for the course's
    recorded runs (:func:`should_record`), else ``<output folder>/results``."""
    return _ensure(recorded_results_dir() if should_record(record) else output_root() / "results")


def shipped_checkpoint_dir() -> Path:
    """Small trained checkpoints committed with the course: ``checkpoints/`` in the
    repository, or, for a package installed alone (Colab), a ``shipped`` folder beside the
    checkpoints, where :func:`stn_course.shipped.fetch_shipped_checkpoint` downloads them."""
    return repo_root() / "checkpoints" if has_repository() else checkpoint_dir() / "shipped"


def set_seed(seed: int = 0) -> None:
    """Seed Python's ``random``, NumPy and PyTorch (CPU and every GPU)."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class DeviceNotAvailableError(CourseError, RuntimeError):
    """A device was asked for that this machine does not have (e.g. cuda without CUDA)."""


def get_device(prefer: str | None = None):
    """The device every notebook uses: CUDA when available, else the CPU.

    ``prefer`` (or the ``STN_COURSE_DEVICE`` environment variable) forces one, e.g. ``"cpu"``.
    """
    import torch

    choice = prefer or os.environ.get("STN_COURSE_DEVICE")
    if choice:
        where = "--device" if prefer else "STN_COURSE_DEVICE"
        try:
            device = torch.device(choice)
        except RuntimeError:  # e.g. "gpu"
            raise DeviceNotAvailableError(f"The device {choice!r} ({where}) is not a device: use cpu or cuda "
                                          f"(or cuda:0, cuda:1, …).") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise DeviceNotAvailableError(f"The device {choice!r} was asked for ({where}), but CUDA is not available "
                                          f"on this machine: use cpu{' (unset STN_COURSE_DEVICE)' if not prefer else ''}"
                                          f", or leave the device out to use CUDA where there is one.")
        if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceNotAvailableError(f"The device {choice!r} ({where}) does not exist: this machine has "
                                          f"{torch.cuda.device_count()} CUDA device(s); use cuda or cuda:0.")
        return device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def machine_info() -> dict[str, Any]:
    """What ran a result: recorded in every ``results/*.json``."""
    import torch

    info = {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "processor": platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    return info


@contextmanager
def evaluating(model) -> Iterator:
    """``with evaluating(model):`` runs the block with ``model`` (an ``nn.Module``) in eval
    mode, then restores the mode it had (train or eval), also when the block raises.

    Only the mode: gradients are the block's business (Grad-CAM needs them).
    """
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)
