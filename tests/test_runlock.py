"""One run per checkpoint at a time, and no leftovers of interrupted writes."""

import os
import subprocess
import sys
import pytest
from stn_course import runlock
from stn_course.errors import CourseError


def test_a_running_process_holding_the_lock_refuses_a_second_run(tmp_path):
    checkpoint = tmp_path / "run.pt"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        runlock.lock_path(checkpoint).write_text(f"{holder.pid}\n")
        with pytest.raises(CourseError, match=f"in progress \\(process {holder.pid}"):
            runlock.acquire(checkpoint)
        assert runlock.lock_path(checkpoint).read_text().strip() == str(holder.pid), "the holder's lock is kept"
    finally:
        holder.kill()
        holder.wait()


def test_a_stale_lock_is_taken_over_and_released(tmp_path):
    checkpoint = tmp_path / "run.pt"
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = int(finished.stdout)
    assert not runlock.pid_is_running(dead)
    runlock.lock_path(checkpoint).write_text(f"{dead}\n")
    with runlock.run_lock(checkpoint) as path:
        assert path.read_text().strip() == str(os.getpid())
    assert not path.exists()


def test_a_second_process_is_refused_while_the_lock_is_held(tmp_path):
    checkpoint = tmp_path / "run.pt"
    with runlock.run_lock(checkpoint):
        second = subprocess.run([sys.executable, "-c", "from pathlib import Path; from stn_course.runlock import acquire; "
                                 f"acquire(Path({str(checkpoint)!r}))"], capture_output=True, text=True,
                                env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert second.returncode != 0 and f"process {os.getpid()}" in second.stderr


def test_stale_temporaries_of_interrupted_writes_are_removed(tmp_path):
    checkpoint = tmp_path / "run.pt"
    stale = tmp_path / "run.pt.12345.0123abcd.tmp"
    other = tmp_path / "other.pt.12345.0123abcd.tmp"
    stale.write_bytes(b"half a checkpoint")
    other.write_bytes(b"another run's")
    with runlock.run_lock(checkpoint):
        assert not stale.exists()
    assert other.exists(), "only this run's temporaries are removed"


def test_training_refuses_a_locked_run(tmp_path, monkeypatch):
    import torch

    from stn_course import experiments as ex
    from stn_course.data import ImageTensors
    from stn_course.loader import BatchLoader
    from stn_course.recipes import RunConfig
    from stn_course.registry import build_classifier

    monkeypatch.setattr(ex, "checkpoint_dir", lambda: tmp_path)
    data = ImageTensors(torch.zeros(4, 1, 28, 28, dtype=torch.uint8), torch.arange(4), tuple("0123456789"),
                        (0.1,), (0.3,), "tiny")
    config = RunConfig(model="cnn", epochs=1)
    experiment = ex.Experiment(config, build_classifier("cnn", (1, 28, 28), (0.1,), (0.3,)),
                               BatchLoader(data, 2), BatchLoader(data, 2))
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        runlock.lock_path(tmp_path / f"{config.name}.pt").write_text(f"{holder.pid}\n")
        with pytest.raises(CourseError, match="in progress"):
            ex.train_experiment(experiment, save=False, use_shipped=False)
        assert experiment.history is None, "refused before training"
    finally:
        holder.kill()
        holder.wait()


def test_a_second_copy_of_a_run_is_refused_before_its_data_loads(tmp_path, monkeypatch):
    from stn_course import experiments as ex
    from stn_course import recipes
    from stn_course.recipes import RunConfig

    monkeypatch.setattr(ex, "checkpoint_dir", lambda: tmp_path)
    monkeypatch.setitem(recipes.DATASETS, "mnist", lambda *args: pytest.fail("the data loaded before the lock"))
    config = RunConfig(model="cnn", epochs=1)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        runlock.lock_path(tmp_path / f"{config.name}.pt").write_text(f"{holder.pid}\n")
        with pytest.raises(CourseError, match="in progress"):
            ex.run_experiment(config, use_shipped=False)
    finally:
        holder.kill()
        holder.wait()


def test_the_lock_is_reentrant_and_released_by_its_first_holder(tmp_path):
    checkpoint = tmp_path / "run.pt"
    with runlock.run_lock(checkpoint) as path:
        with runlock.run_lock(checkpoint):
            assert path.exists()
        assert path.exists(), "the inner holder leaves the lock to the outer one"
    assert not path.exists()
