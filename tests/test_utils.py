import os
import random

import numpy as np
import pytest
import torch

from stn_course import utils


def test_set_seed_makes_every_generator_repeat():
    utils.set_seed(123)
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    utils.set_seed(123)
    second = (random.random(), np.random.rand(), torch.rand(1).item())
    utils.set_seed(124)
    third = (random.random(), np.random.rand(), torch.rand(1).item())
    assert first == second
    assert all(a != b for a, b in zip(first, third))


def test_get_device_prefers_cuda_only_when_available(monkeypatch):
    monkeypatch.delenv("STN_COURSE_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert utils.get_device().type == expected
    assert utils.get_device("cpu").type == "cpu"
    monkeypatch.setenv("STN_COURSE_DEVICE", "cpu")
    assert utils.get_device().type == "cpu"


def test_the_tests_run_on_the_cpu_unless_a_gpu_run_asks():
    # conftest.py pins the device for every test and notebook kernel; a test about the device unsets it
    assert os.environ["STN_COURSE_DEVICE"] == os.environ.get("STN_COURSE_TEST_DEVICE", "cpu")
    assert utils.get_device() == torch.device(os.environ.get("STN_COURSE_TEST_DEVICE", "cpu"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_get_device_refuses_missing_cuda(monkeypatch):
    from stn_course.errors import CourseError

    with pytest.raises(CourseError, match=r"The device 'cuda' was asked for \(--device\), but CUDA is not available.*use cpu"):
        utils.get_device("cuda")
    monkeypatch.setenv("STN_COURSE_DEVICE", "cuda:1")
    with pytest.raises(CourseError, match=r"\(STN_COURSE_DEVICE\), but CUDA is not available.*unset STN_COURSE_DEVICE"):
        utils.get_device()


def test_get_device_refuses_a_name_that_is_no_device():
    from stn_course.errors import CourseError

    with pytest.raises(CourseError, match=r"The device 'gpu' \(--device\) is not a device: use cpu or cuda"):
        utils.get_device("gpu")


def test_data_root_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("STN_COURSE_DATA", str(tmp_path))
    assert utils.data_root() == tmp_path.resolve()
    monkeypatch.delenv("STN_COURSE_DATA")
    assert utils.data_root() == utils.repo_root() / "data"


def test_a_data_root_that_does_not_exist_is_noted_once(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("STN_COURSE_DATA", str(tmp_path / "datsets"))  # mistyped
    assert utils.data_root() == tmp_path / "datsets"
    out = capsys.readouterr().out
    assert f"STN_COURSE_DATA={tmp_path / 'datsets'} names a folder that did not exist" in out
    utils.data_root()
    assert capsys.readouterr().out == "", "noted once"
    monkeypatch.setenv("STN_COURSE_DATA", str(tmp_path))
    utils.data_root()
    assert capsys.readouterr().out == "", "an existing folder is not noted"


def test_quick_mode_writes_outside_the_repository(monkeypatch, tmp_path):
    monkeypatch.setenv("STN_COURSE_QUICK", "1")
    monkeypatch.setenv("STN_COURSE_OUTPUT", str(tmp_path))
    for folder in (utils.plots_dir(), utils.results_dir(), utils.checkpoint_dir()):
        assert tmp_path.resolve() in folder.parents


def test_full_mode_records_into_the_repository_only_when_asked(monkeypatch, tmp_path):
    monkeypatch.setenv("STN_COURSE_QUICK", "0")
    monkeypatch.setenv("STN_COURSE_DATA", str(tmp_path))
    for variable in ("STN_COURSE_OUTPUT", "STN_COURSE_CHECKPOINTS", "STN_COURSE_RECORD", "STN_COURSE_RECORD_PLOTS"):
        monkeypatch.delenv(variable, raising=False)
    assert utils.plots_dir() == tmp_path.resolve() / "stn_course_output" / "plots"
    assert utils.results_dir(record=True) == utils.repo_root() / "results"
    assert utils.results_dir() == tmp_path.resolve() / "stn_course_output" / "results"
    assert utils.checkpoint_dir() == tmp_path.resolve() / "checkpoints"
    monkeypatch.setenv("STN_COURSE_RECORD", "1")
    assert utils.results_dir() == utils.repo_root() / "results"
    assert utils.plots_dir() == tmp_path.resolve() / "stn_course_output" / "plots", "plots have their own switch"
    monkeypatch.setenv("STN_COURSE_RECORD_PLOTS", "1")
    assert utils.plots_dir() == utils.repo_root() / "plots"
    monkeypatch.delenv("STN_COURSE_RECORD_PLOTS")
    monkeypatch.setenv("STN_COURSE_OUTPUT", str(tmp_path / "out"))
    monkeypatch.setenv("STN_COURSE_CHECKPOINTS", str(tmp_path / "ckpt"))
    assert utils.results_dir(record=False) == (tmp_path / "out" / "results").resolve()
    assert utils.checkpoint_dir() == (tmp_path / "ckpt").resolve()
    monkeypatch.setenv("STN_COURSE_QUICK", "1")
    assert utils.results_dir(record=True) == (tmp_path / "out" / "results").resolve(), "quick runs never record"
    monkeypatch.setenv("STN_COURSE_RECORD_PLOTS", "1")
    assert utils.plots_dir() == (tmp_path / "out" / "plots").resolve(), "quick runs never write plots/"
    monkeypatch.setenv("STN_COURSE_QUICK", "0")
    monkeypatch.setattr(utils, "has_repository", lambda: False)
    assert utils.plots_dir() == (tmp_path / "out" / "plots").resolve(), "installed alone: no course plots/"


def test_defaults_under_an_unwritable_data_root_fall_back_to_the_user_cache(monkeypatch, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("mkdir under a file fails, even for root")
    monkeypatch.setenv("STN_COURSE_QUICK", "0")
    monkeypatch.setenv("STN_COURSE_DATA", str(blocker / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    for variable in ("STN_COURSE_OUTPUT", "STN_COURSE_CHECKPOINTS", "STN_COURSE_CACHE"):
        monkeypatch.delenv(variable, raising=False)
    assert utils.checkpoint_dir() == tmp_path / "xdg" / "stn_course" / "checkpoints"
    assert utils.results_dir() == tmp_path / "xdg" / "stn_course" / "stn_course_output" / "results"
    assert utils.cache_dir() == tmp_path / "xdg" / "stn_course" / "cache"
    assert "set STN_COURSE_CHECKPOINTS" in capsys.readouterr().out


def test_repo_url_follows_the_environment(monkeypatch):
    monkeypatch.setenv("STN_COURSE_REPO_URL", "http://127.0.0.1:8000/fork/")
    assert utils.repo_url() == "http://127.0.0.1:8000/fork"
    monkeypatch.delenv("STN_COURSE_REPO_URL")
    assert utils.repo_url() == utils.DEFAULT_REPO_URL
    assert 'os.environ.get("STN_COURSE_REPO_URL"' in utils.COLAB_SETUP_CELL


def test_quick_or_full(monkeypatch):
    monkeypatch.setenv("STN_COURSE_QUICK", "1")
    assert utils.quick_or_full("q", "f") == "q"
    monkeypatch.setenv("STN_COURSE_QUICK", "")
    assert utils.quick_or_full("q", "f") == "f"


def test_a_data_root_without_write_bits_is_left_alone_even_by_root(monkeypatch, tmp_path, capsys):
    """A shared mount marked read-only (mode 555) gets nothing written into it, though root
    could write there."""
    data = tmp_path / "shared"
    data.mkdir()
    monkeypatch.setenv("STN_COURSE_QUICK", "0")
    monkeypatch.setenv("STN_COURSE_DATA", str(data))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    for variable in ("STN_COURSE_OUTPUT", "STN_COURSE_CHECKPOINTS", "STN_COURSE_CACHE"):
        monkeypatch.delenv(variable, raising=False)
    data.chmod(0o555)
    try:
        assert utils.checkpoint_dir() == tmp_path / "xdg" / "stn_course" / "checkpoints"
        assert utils.cache_dir() == tmp_path / "xdg" / "stn_course" / "cache"
        assert list(data.iterdir()) == []
    finally:
        data.chmod(0o755)
    assert utils.checkpoint_dir() == data.resolve() / "checkpoints"  # writable again: used
