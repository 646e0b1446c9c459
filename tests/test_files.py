"""File helpers (stn_course.files): atomic writes and pictures kept unless they changed."""
import os
import threading

import numpy as np
import pytest
import torch

from stn_course import utils
from stn_course.files import images_look_the_same, replace_if_changed, save_atomically, save_figure, write_atomically
from stn_course.plot import new_figure


def test_a_failed_write_leaves_neither_a_file_nor_a_temporary(tmp_path):
    path = tmp_path / "sub" / "out.txt"

    def crash(tmp):
        tmp.write_text("half")
        raise RuntimeError("crash")

    with pytest.raises(RuntimeError):
        write_atomically(path, crash)
    assert list((tmp_path / "sub").iterdir()) == []
    write_atomically(path, lambda tmp: tmp.write_text("whole"))
    assert path.read_text() == "whole" and [p.name for p in path.parent.iterdir()] == ["out.txt"]


def test_concurrent_atomic_writes_of_one_file_all_succeed(tmp_path):
    # Two runs started together fill the same cache file: each write must land whole,
    # and no temporary file may be left behind.
    path = tmp_path / "cache" / "shared.pt"
    errors = []

    def write(value: int) -> None:
        try:
            for _ in range(5):
                save_atomically({"value": torch.full((1000,), value)}, path)
        except Exception as error:  # noqa: BLE001 - collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=write, args=(value,)) for value in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    saved = torch.load(path, weights_only=True)["value"]
    assert saved.unique().numel() == 1 and 0 <= saved[0].item() < 4
    assert [p.name for p in path.parent.iterdir()] == ["shared.pt"]
    # an ordinary file (shipped checkpoints are committed): permissions follow the umask
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_redrawn_plot_that_looks_the_same_is_not_rewritten(tmp_path):
    """Full runs must not dirty git with invisible pixel changes."""
    import matplotlib.pyplot as plt

    path = tmp_path / "line.png"

    def draw(offset, title):
        fig, ax = plt.subplots(figsize=(2, 2))
        ax.plot([0, 1], [0, 1 + offset])
        replace_if_changed(path, lambda tmp: fig.savefig(tmp, dpi=50, metadata={"Title": title}))
        plt.close(fig)

    draw(0.0, "first")
    first = path.read_bytes()
    draw(1e-9, "second")  # other bytes (metadata), the same picture: the file is kept as it was
    assert path.read_bytes() == first
    draw(0.5, "third")  # a visibly different picture replaces it
    assert path.read_bytes() != first
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind


def test_images_look_the_same_tells_pictures_apart(tmp_path):
    from PIL import Image

    picture = np.zeros((20, 20, 3), np.uint8)
    Image.fromarray(picture).save(tmp_path / "a.png")
    picture[0, 0] = 255  # one pixel of 400: under the share of pixels allowed to differ
    Image.fromarray(picture).save(tmp_path / "b.png")
    picture[:10] = 255
    Image.fromarray(picture).save(tmp_path / "c.png")
    Image.fromarray(picture[:10]).save(tmp_path / "d.png")
    assert images_look_the_same(tmp_path / "a.png", tmp_path / "a.png")
    assert not images_look_the_same(tmp_path / "a.png", tmp_path / "c.png")
    assert not images_look_the_same(tmp_path / "c.png", tmp_path / "d.png")  # other size


def test_save_figure_writes_into_plots_dir_and_returns_the_figure():
    fig = new_figure((1, 1))
    fig.add_subplot().plot([0, 1])
    assert save_figure(fig, "test_files_line.png", dpi=20) is fig
    assert (utils.plots_dir() / "test_files_line.png").exists()


def test_a_full_mode_figure_goes_to_the_output_folder_never_into_the_repository(monkeypatch, tmp_path):
    monkeypatch.setenv("STN_COURSE_QUICK", "0")
    monkeypatch.setenv("STN_COURSE_OUTPUT", str(tmp_path / "out"))
    monkeypatch.delenv("STN_COURSE_RECORD_PLOTS", raising=False)
    monkeypatch.setenv("STN_COURSE_RECORD", "1")  # recording results does not record figures
    course_plots = utils.repo_root() / "plots"
    before = {path.name: path.stat().st_mtime_ns for path in course_plots.iterdir()}
    fig = new_figure((1, 1))
    fig.add_subplot().plot([0, 1])
    try:
        save_figure(fig, "test_files_full_mode.png", dpi=20)
        assert (tmp_path / "out" / "plots" / "test_files_full_mode.png").exists()
        assert {path.name: path.stat().st_mtime_ns for path in course_plots.iterdir()} == before
    finally:  # even when it fails, the repository keeps no trace
        (course_plots / "test_files_full_mode.png").unlink(missing_ok=True)
