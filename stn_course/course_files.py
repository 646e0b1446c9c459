"""The course's own files when the package is installed without the repository (Colab): the
recorded results (``results/*.json``), the course's figures (``plots/``) and the shipped
recordings (``checkpoints/*_evolution.npz``), downloaded once from the repository's raw URLs
(``<REPO_URL>/raw/main/<path>``, :func:`stn_course.utils.repo_url`) into a local copy
beside the checkpoints. In a clone they are the repository's own, and nothing is downloaded.

``results/`` cannot be listed over HTTP, so the repository keeps its index,
``results/index.txt`` (one file name a line), written whenever a record goes into
``results/`` (:func:`write_results_index`) and checked against the folder by the tests.
"""
from __future__ import annotations

from pathlib import Path

from .utils import checkpoint_dir, has_repository, repo_root, repo_url

#: the index of ``results/``, relative to the repository
RESULTS_INDEX = "results/index.txt"


def local_copy_root() -> Path:
    """Where downloaded course files go: ``<checkpoints folder>/course`` (installed without the repository)."""
    return checkpoint_dir() / "course"


def raw_url(relative: str) -> str:
    """``<REPO_URL>/raw/main/<relative>``: where the repository serves its file ``relative``."""
    return f"{repo_url()}/raw/main/{relative}"


def download(relative: str, destination: Path) -> str | None:
    """Download the repository's file ``relative`` (:func:`raw_url`) to ``destination``; None if
    it worked, else why not, in one line (no network, not in the repository, a wrong
    ``STN_COURSE_REPO_URL``). The one download of the course's files: checkpoints too."""
    import torch  # here: the rest of the module needs no torch

    destination.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(raw_url(relative), str(destination), progress=False)
    except Exception as error:  # urllib, HTTP, file errors: said, never raised at the learner
        destination.unlink(missing_ok=True)
        return " ".join(str(error).split()) or type(error).__name__
    return None


def course_file(relative: str) -> Path | None:
    """The course's file ``relative`` (e.g. ``"plots/theta_view_digit.png"``): the repository's in
    a clone (None if it is not there); installed alone, a local copy, downloaded on first use
    (None, with one line saying why, if the download fails)."""
    if has_repository():
        path = repo_root() / relative
        return path if path.exists() else None
    path = local_copy_root() / relative
    if not path.exists():
        problem = download(relative, path)
        if problem:
            print(f"The course's file {relative}: could not download {raw_url(relative)} ({problem}).")
            return None
    return path


def course_results_dir() -> Path:
    """The course's recorded results: ``results/`` in a clone; installed alone, a local copy of
    every file ``results/index.txt`` lists, downloaded once (files that fail are left out, with
    one line saying how many)."""
    if has_repository():
        return repo_root() / "results"
    folder = local_copy_root() / "results"
    index = course_file(RESULTS_INDEX)
    if index is None:
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    names = [line.strip() for line in index.read_text().splitlines() if line.strip()]
    failed = [name for name in names if not (folder / name).exists() and download(f"results/{name}", folder / name)]
    if failed:
        print(f"{len(failed)} of the course's {len(names)} results records could not be downloaded "
              f"(e.g. {failed[0]}): the tables leave them out.")
    return folder


def results_index_text(folder: Path) -> str:
    """The index of a results folder: its ``*.json`` file names, sorted, one a line."""
    return "".join(f"{path.name}\n" for path in sorted(folder.glob("*.json")))


def write_results_index(folder: Path | None = None) -> Path:
    """Rewrite ``results/index.txt`` from the folder (after a record is written into it)."""
    folder = folder or repo_root() / "results"
    path = folder / Path(RESULTS_INDEX).name
    text = results_index_text(folder)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path
