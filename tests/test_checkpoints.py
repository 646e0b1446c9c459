"""A run's checkpoint file: written atomically with its run's identity, refused when read
by another run, and a bad file named in one message."""

from dataclasses import replace

import pytest
import torch

from stn_course import __main__ as cli
from stn_course import experiments
from stn_course.checkpoints import (CheckpointMismatchError, check_checkpoint_run, load_checkpoint, run_identity,
                                    save_checkpoint)
from stn_course.errors import CourseError
from stn_course.recipes import default_config

from .markers import requires_mnist


def test_a_run_identity_holds_its_name_and_every_field_that_changes_its_weights():
    config = default_config("rts-mnist", "st-cnn-aff", 8)
    identity = run_identity(config)
    assert identity["name"] == config.name == "rts-mnist_st-cnn-aff_e8_s0"
    assert "log_interval" not in identity["config"] and identity["config"]["lr"] == config.lr
    assert run_identity(replace(config, log_interval=7)) == identity, "the log interval changes no weight"
    shipped = run_identity(default_config("rts-mnist", "st-cnn-aff", 8, quick=True), shipped=True)
    assert not {"quick", "train_limit", "test_limit"} & set(shipped["config"])


def test_a_checkpoint_records_its_run_and_refuses_another(tmp_path, capsys):
    config = default_config("mnist", "cnn", 2)
    path = tmp_path / "run.pt"
    save_checkpoint(path, {"model": {"w": torch.ones(2)}, "epoch": 1}, run=run_identity(config))
    state = load_checkpoint(path, run=run_identity(config))
    assert state["run"] == run_identity(config) and state["epoch"] == 1
    with pytest.raises(CheckpointMismatchError, match=r"belongs to another run .*seed=0 there, 3 here.*--restart"):
        load_checkpoint(path, run=run_identity(replace(config, seed=3)) | {"name": config.name})
    # written before checkpoints carried their run: trusted by its file name, with a note
    check_checkpoint_run(path, {"model": {}}, run_identity(config))
    assert "does not record which run wrote it" in capsys.readouterr().out


def test_a_field_added_to_the_config_later_is_not_a_mismatch(tmp_path):
    config = default_config("mnist", "cnn", 2)
    older = run_identity(config)
    del older["config"]["batchnorm"]  # a checkpoint from before the field existed
    check_checkpoint_run(tmp_path / "run.pt", {"model": {}, "run": older}, run_identity(config))


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", None], ids=["empty", "random", "truncated"])
def test_a_bad_checkpoint_is_a_course_error_naming_the_file(tmp_path, content):
    path = tmp_path / "run.pt"
    if content is None:
        torch.save({"model": {"w": torch.zeros(1000)}, "epoch": 1}, path)
        path.write_bytes(path.read_bytes()[:200])
    else:
        path.write_bytes(content)
    with pytest.raises(CourseError, match=f"{path}.*cannot be read.*Delete it"):
        load_checkpoint(path)


@pytest.fixture
def checkpoints(tmp_path, monkeypatch):
    folder = tmp_path / "checkpoints"
    monkeypatch.setenv("STN_COURSE_CHECKPOINTS", str(folder))
    monkeypatch.setenv("STN_COURSE_OUTPUT", str(tmp_path / "output"))
    return folder


@requires_mnist
def test_a_checkpoint_of_another_recipe_under_a_runs_name_is_refused(checkpoints, capsys):
    trained = default_config("mnist", "cnn", 1, quick=True)
    experiments.run_experiment(trained, use_shipped=False)
    state = torch.load(checkpoints / f"{trained.name}.pt", weights_only=True)
    assert state["run"] == run_identity(trained) and state["run"]["name"] == trained.name
    other = replace(trained, lr=1e-3)
    foreign = checkpoints / f"{other.name}.pt"
    foreign.write_bytes((checkpoints / f"{trained.name}.pt").read_bytes())
    with pytest.raises(CheckpointMismatchError,
                       match=rf"{foreign}.*another run than {other.name}.*lr=0.002 there, 0.001 here.*Delete it"):
        experiments.run_experiment(other, use_shipped=False)
    with pytest.raises(CheckpointMismatchError, match=str(foreign)):
        experiments.load_trained(other)
    capsys.readouterr()
    args = ["train", "--dataset", "mnist", "--model", "cnn", "--epochs", "1", "--no-shipped", "--set", "lr=0.001"]
    assert cli.main(args) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"The checkpoint {foreign} belongs to another run") and "Traceback" not in err
    assert not (checkpoints.parent / "output" / "results" / f"{other.name}.json").exists()
    assert "add --restart" in err
    # the learner's way out: --restart deletes it, and the run trains
    assert cli.main(args + ["--restart"]) == 0
    assert f"Restarting {other.name}: deleted its checkpoint {foreign}" in capsys.readouterr().out
    assert experiments.load_trained(other)[0].history.epochs == 1


@requires_mnist
def test_a_checkpoint_without_identity_is_viewed_never_recorded_nor_resumed(checkpoints, capsys):
    from stn_course.checkpoints import UnidentifiedCheckpointError
    from stn_course.results import record_errors

    seed0, seed1 = (default_config("mnist", "cnn", 1, seed, quick=True) for seed in (0, 1))
    experiments.run_experiment(seed1, use_shipped=False)
    state = torch.load(checkpoints / f"{seed1.name}.pt", weights_only=True)
    del state["run"]  # the older format, copied over seed 0's file
    path = checkpoints / f"{seed0.name}.pt"
    torch.save(state, path)
    capsys.readouterr()
    experiment = experiments.run_experiment(seed0, use_shipped=False)
    assert experiment.history.trained_now == 0 and experiment.history.unidentified
    out = capsys.readouterr().out
    assert f"Note: {path} does not record which run wrote it" in out and "Loaded the finished run" in out
    assert f"Not recording {seed0.name}" in out
    assert not (checkpoints.parent / "output" / "results" / f"{seed0.name}.json").exists()
    with pytest.raises(UnidentifiedCheckpointError, match=f"{path} does not record which run.*--restart"):
        record_errors(seed0)
    assert not list((checkpoints.parent / "output").rglob(f"errors_{seed0.name}.json"))
    longer = replace(seed0, epochs=2)  # an unfinished run is not trained on from it
    torch.save(state, checkpoints / f"{longer.name}.pt")
    with pytest.raises(UnidentifiedCheckpointError, match="cannot resume"):
        experiments.run_experiment(longer, use_shipped=False)


@pytest.mark.parametrize("content", ["empty", "random", "truncated", "tensor", "no model"])
def test_a_bad_checkpoint_names_the_file(tmp_path, content):
    path = tmp_path / "run.pt"
    if content == "truncated":
        torch.save({"model": {"w": torch.zeros(1000)}, "epoch": 1}, path)
        path.write_bytes(path.read_bytes()[:300])
    elif content == "tensor":
        torch.save(torch.zeros(3), path)
    elif content == "no model":
        torch.save({"images": torch.zeros(3, dtype=torch.uint8)}, path)
    else:
        path.write_bytes(b"" if content == "empty" else bytes(range(256)) * 40)
    with pytest.raises(CourseError, match=f"The checkpoint {path} (cannot be read|holds no model).*Delete it"):
        load_checkpoint(path)


def test_a_full_disk_while_writing_a_checkpoint_is_one_error_and_leaves_nothing_half_written(tmp_path):
    """A file-size limit (in a child process) makes torch's writer fail as on a full disk."""
    import subprocess
    import sys

    script = f"""
import resource, signal, torch
from pathlib import Path
from stn_course.checkpoints import CheckpointWriteError, save_checkpoint
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG instead of killing the process
resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
save_checkpoint(Path({str(tmp_path / 'small.pt')!r}), {{"model": {{"w": torch.zeros(10)}}, "epoch": 1}})
try:
    save_checkpoint(Path({str(tmp_path / 'run.pt')!r}), {{"model": {{"w": torch.zeros(1_000_000)}}, "epoch": 1}})
except CheckpointWriteError as error:
    print(error)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    path = tmp_path / "run.pt"
    assert done.stdout.startswith(f"Could not write the checkpoint {path}: the disk is full"), done.stdout
    assert "run the same command again: it resumes" in done.stdout
    assert sorted(file.name for file in tmp_path.iterdir()) == ["small.pt"], "nothing half-written"


def test_a_read_only_checkpoint_folder_names_the_failed_write_not_the_lock(tmp_path, monkeypatch):
    import errno
    import os

    from stn_course import files
    from stn_course.checkpoints import CheckpointWriteError
    from stn_course.runlock import lock_path, run_lock

    path = tmp_path / "run.pt"

    def read_only(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path))

    with pytest.raises(CheckpointWriteError, match=f"Could not write the checkpoint {path}: its folder is not "
                                                   f"writable.*same command again") as caught:
        with run_lock(path):
            monkeypatch.setattr(files.os, "replace", read_only)  # the folder turns read-only
            monkeypatch.setattr(type(path), "unlink", read_only)
            save_checkpoint(path, {"model": {}, "epoch": 1})
    monkeypatch.undo()
    assert lock_path(path).read_text().split()[0] == str(os.getpid()), "the lock stays: its process will end"
    assert isinstance(caught.value.__cause__, PermissionError)
