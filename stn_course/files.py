"""File helpers in one place: every file the course writes lands whole (written beside its
place, then renamed), and a redrawn picture that looks the same leaves the old file alone.

* :func:`write_atomically`: call a writer on a temporary file, then rename it into place;
* :func:`save_atomically`: ``torch.save`` through :func:`write_atomically` (checkpoints, caches);
* :func:`save_figure`: a figure into the output folder's ``plots/`` (:func:`stn_course.utils.plots_dir`);
* :func:`replace_if_changed`, :func:`images_look_the_same`: keep a picture file unless it changed;
* :func:`show_course_figure`: show the course's own figure ``plots/<name>`` (a run not shipped).
"""
from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path
from typing import Any, Callable

import numpy as np


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
        with contextlib.suppress(OSError):  # a folder turned read-only must not hide the failed write
            tmp.unlink(missing_ok=True)
        raise


def save_atomically(obj: object, path: Path) -> None:
    """``torch.save`` ``obj`` to ``path`` atomically (:func:`write_atomically`)."""
    import torch  # here, not at the top: the figures save files without torch

    write_atomically(path, lambda tmp: torch.save(obj, tmp))


def save_figure(fig, name: str, dpi: int = 100):
    """Save ``fig`` (a matplotlib figure) as ``plots_dir() / name`` and return it, so a cell
    can end with ``save_figure(fig, "name.png")`` to both keep and show it. (The output
    folder's ``plots/``; the repository's ``plots/`` only with ``STN_COURSE_RECORD_PLOTS=1``.)"""
    from .utils import plots_dir

    replace_if_changed(plots_dir() / name, lambda tmp: fig.savefig(tmp, dpi=dpi, bbox_inches="tight"))
    return fig


def show_course_figure(name: str) -> None:
    """Display the course's own figure ``plots/<name>``, drawn by its run of a model that is not
    shipped (so a notebook can show it without training): the repository's, or downloaded
    from it (Colab); if neither, say where it is."""
    from IPython.display import Image, display

    from .course_files import course_file

    path = course_file(f"plots/{name}")  # the repository's, or downloaded from it (Colab)
    if path is None:
        print(f"The course's figure of this run is plots/{name} in the course's repository.")
        return
    print(f"The course's figure, drawn from its own run of the model (plots/{name}):")
    display(Image(filename=str(path)))


def images_look_the_same(first, second, level: int = 16, share: float = 1e-3) -> bool:
    """Whether two image files (PNG, or GIF with all frames) show the same picture: same size
    and frame count, and fewer than ``share`` of the pixel values differ by more than
    ``level`` grey levels. Re-rendering a figure moves a few anti-aliased pixels slightly;
    such a file is not worth a new version in git."""
    from PIL import Image, ImageSequence

    with Image.open(first) as a, Image.open(second) as b:
        frames_a = [np.asarray(frame.convert("RGBA"), dtype=np.int16) for frame in ImageSequence.Iterator(a)]
        frames_b = [np.asarray(frame.convert("RGBA"), dtype=np.int16) for frame in ImageSequence.Iterator(b)]
    if len(frames_a) != len(frames_b) or any(x.shape != y.shape for x, y in zip(frames_a, frames_b)):
        return False
    differing = sum(int((np.abs(x - y) > level).sum()) for x, y in zip(frames_a, frames_b))
    return differing <= share * sum(x.size for x in frames_a)


def replace_if_changed(path, write) -> None:
    """Call ``write(tmp_path)`` and move the result to ``path`` unless ``path`` already
    shows the same picture (:func:`images_look_the_same`): a full run leaves unchanged
    plots untouched in git."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.new{path.suffix}")
    write(tmp)
    if path.exists() and images_look_the_same(path, tmp):
        tmp.unlink()
    else:
        tmp.replace(path)
