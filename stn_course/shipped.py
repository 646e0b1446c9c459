"""The trained models shipped with the course: ``checkpoints/<run name>.pt`` in the
repository (float16 weights, small), loaded instead of training when a learner's run has
none of its own.

:func:`ship_checkpoint` writes one (``python -m stn_course train ... --ship``);
:func:`fetch_shipped_checkpoint` downloads one when the package is installed without the
repository (Colab); :func:`load_shipped_checkpoint` finds, checks (the run's identity,
:func:`stn_course.checkpoints.run_identity`) and loads one into a built experiment.
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from .checkpoints import load_checkpoint, restoring, run_identity, save_checkpoint
from .results import describe_finished_run
from .train import History
from .course_files import download, raw_url
from .utils import checkpoint_dir, has_repository, repo_root, shipped_checkpoint_dir

if TYPE_CHECKING:
    from .experiments import Experiment


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


def fetch_shipped_checkpoint(name: str, instead: str = "training it instead") -> bool:
    """When the package is installed without the repository (Colab), download
    ``<repo URL>/raw/main/checkpoints/<name>.pt`` (:func:`stn_course.utils.repo_url`,
    ``$STN_COURSE_REPO_URL``) into :func:`shipped_checkpoint_dir`. From a clone, do nothing
    and return False. A failed download prints one line, what failed and why, then
    ``instead`` (what the caller does next, e.g. ``"training it instead, 5 epochs"``), and
    returns False."""
    if has_repository():
        return False
    path = shipped_checkpoint_dir() / f"{name}.pt"
    problem = download(f"checkpoints/{name}.pt", path)
    if problem:  # not shipped, or no network: the caller does what ``instead`` says
        print(f"Could not download the shipped model {name} from {raw_url(f'checkpoints/{name}.pt')} ({problem}): "
              f"{instead}.")
        return False
    return True


#: whether this process has said how to train a shipped run instead (said once: notebook 05 loads eight)
TRAIN_HINT_SHOWN = False


def load_shipped_checkpoint(experiment: Experiment, instead: str | None = None) -> bool:
    """Load ``checkpoints/<name>.pt`` (shipped with the course) into the experiment, unless a
    checkpoint of the same run exists in :func:`checkpoint_dir` (then training resumes or
    loads from there). Returns True if the shipped weights were loaded. ``instead``: what the
    caller does if a download fails (:func:`fetch_shipped_checkpoint`; default: it trains
    the run's epochs)."""
    name = experiment.config.name
    shipped = shipped_checkpoint_dir() / f"{name}.pt"
    if (checkpoint_dir() / f"{name}.pt").exists():
        return False
    epochs = experiment.config.epochs
    instead = instead or f"training it instead, {epochs} epoch{'s' if epochs != 1 else ''}"
    if not shipped.exists() and not fetch_shipped_checkpoint(name, instead):
        return False
    # a damaged shipped file is the repository's (tracked): restore it or train, never delete it
    fix = (f"Restore it (git checkout -- checkpoints/{name}.pt), or train the run yourself: pass use_shipped=False "
           f"(command line: --no-shipped)")
    state = load_checkpoint(shipped, run=run_identity(experiment.config, shipped=True), fix=fix)
    model = experiment.model
    device = next(model.parameters()).device
    with restoring(shipped, f"the model of {name}", fix):
        model.load_state_dict({key: value.to(device=device, dtype=model.state_dict()[key].dtype)
                               for key, value in state["model"].items()})
        experiment.history = History(**state["history"])
    # relative inside the repository: notebooks store this line, and it must not name the reader's folders
    shown = shipped.relative_to(repo_root()) if shipped.is_relative_to(repo_root()) else shipped
    print(f"Loaded the trained model shipped with the course, {shown}: {describe_finished_run(name, experiment.history)}.")
    global TRAIN_HINT_SHOWN
    if not TRAIN_HINT_SHOWN:
        TRAIN_HINT_SHOWN = True
        print("To train it yourself instead, pass use_shipped=False (command line: --no-shipped).")
    return True
