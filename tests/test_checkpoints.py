"""A run's checkpoint file: written atomically with its run's identity, refused when read
by another run, and a bad file named in one message."""
from dataclasses import replace

import pytest
import torch

from stn_course.checkpoints import (CheckpointMismatchError, check_checkpoint_run, load_checkpoint, run_identity,
                                    save_checkpoint)
from stn_course.errors import CourseError
from stn_course.recipes import default_config


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
