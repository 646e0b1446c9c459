"""Seeds, devices, run mode and paths: decided here, in one place, for every notebook.

Run modes
---------
* **full** (default): notebooks do the real work and write figures to ``plots/`` and
  results to ``results/`` in the repository.
* **quick** (``STN_COURSE_QUICK=1``, set by ``conftest.py`` under pytest): small subsets
  and few steps, so every notebook runs in well under a minute; figures, results and
  checkpoints go to a temporary output folder (``STN_COURSE_OUTPUT`` if set), so a test
  run never touches tracked files.

Paths
-----
* data root: ``STN_COURSE_DATA`` if set, else ``data/`` in the repository;
* decoded-tensor cache: ``STN_COURSE_CACHE`` if set, else ``<data root>/cache``;
* checkpoints: ``<data root>/checkpoints`` (full mode) or the output folder (quick mode).
"""
from __future__ import annotations

import json
import os
import platform
import random
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

#: Where the course lives; Colab installs the package from here (see the README).
REPO_URL = "https://github.com/stn-course/stn-course"

#: The first code cell of every notebook: installs the package only inside Colab.
COLAB_SETUP_CELL = f"""\
import sys

if "google.colab" in sys.modules:  # only on Colab: install the course package
    %pip install --quiet "stn-course @ git+{REPO_URL}\""""

PACKAGE_DIR = Path(__file__).resolve().parent


def repo_root() -> Path:
    """The repository folder when the package is installed from a clone, else the cwd."""
    candidate = PACKAGE_DIR.parent
    if (candidate / "pyproject.toml").exists() and (candidate / "notebooks").is_dir():
        return candidate
    return Path.cwd()


def is_quick() -> bool:
    """True in quick (test) mode: ``STN_COURSE_QUICK`` is set to a true value."""
    return os.environ.get("STN_COURSE_QUICK", "").strip().lower() in {"1", "true", "yes", "on"}


def quick_or_full(quick: Any, full: Any) -> Any:
    """Pick a setting by run mode, e.g. ``epochs = quick_or_full(1, 20)``."""
    return quick if is_quick() else full


def data_root() -> Path:
    """Folder holding the datasets: ``$STN_COURSE_DATA`` or ``<repo>/data``."""
    env = os.environ.get("STN_COURSE_DATA")
    return Path(env).expanduser().resolve() if env else repo_root() / "data"


def _quick_output_root() -> Path:
    env = os.environ.get("STN_COURSE_OUTPUT")
    if env:
        return Path(env).expanduser().resolve()
    return Path(tempfile.gettempdir()) / "stn_course_quick"


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir() -> Path:
    """Folder for decoded uint8 tensors: ``$STN_COURSE_CACHE`` or ``<data root>/cache``."""
    env = os.environ.get("STN_COURSE_CACHE")
    return _ensure(Path(env).expanduser().resolve() if env else data_root() / "cache")


def checkpoint_dir() -> Path:
    """Folder for training checkpoints (never inside git)."""
    if is_quick():
        return _ensure(_quick_output_root() / "checkpoints")
    return _ensure(data_root() / "checkpoints")


def plots_dir() -> Path:
    """Folder notebooks save figures to: ``plots/`` (full) or a temporary folder (quick)."""
    return _ensure(_quick_output_root() / "plots" if is_quick() else repo_root() / "plots")


def results_dir() -> Path:
    """Folder for results JSON: ``results/`` (full) or a temporary folder (quick)."""
    return _ensure(_quick_output_root() / "results" if is_quick() else repo_root() / "results")


def shipped_checkpoint_dir() -> Path:
    """Small trained checkpoints committed with the course (``checkpoints/``)."""
    return repo_root() / "checkpoints"


def set_seed(seed: int = 0) -> None:
    """Seed Python's ``random``, NumPy and PyTorch (CPU and every GPU)."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def get_device(prefer: str | None = None):
    """The device every notebook uses: CUDA when available, else the CPU.

    ``prefer`` (or the ``STN_COURSE_DEVICE`` environment variable) forces one, e.g. ``"cpu"``.
    """
    import torch

    choice = prefer or os.environ.get("STN_COURSE_DEVICE")
    if choice:
        device = torch.device(choice)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device {choice!r} was asked for, but CUDA is not available")
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


def save_result(name: str, payload: dict[str, Any], command: str) -> Path:
    """Write ``<results dir>/<name>.json`` with the payload, the command, machine and time."""
    record = {
        "name": name,
        "command": command,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "quick_mode": is_quick(),
        "machine": machine_info(),
        **payload,
    }
    path = results_dir() / f"{name}.json"
    write_atomically(path, lambda tmp: tmp.write_text(json.dumps(record, indent=2, sort_keys=False) + "\n"))
    return path


def write_atomically(path: Path, write: Callable[[Path], Any]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it to ``path``: a
    crash never leaves a broken file, and processes writing the same file at once (two runs
    filling one cache) never share a temporary file. (Not ``mkstemp``: its files are
    private to the user, and shipped checkpoints are committed.)"""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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
