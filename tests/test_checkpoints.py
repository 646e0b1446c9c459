"""Checkpoints identify their run: one of another run, one without an identity, a damaged one."""
from dataclasses import replace

import pytest

from stn_course import __main__ as cli
from stn_course import experiments
from stn_course.errors import CourseError
from stn_course.recipes import default_config

from .markers import requires_mnist


@pytest.fixture
def checkpoints(tmp_path, monkeypatch):
    folder = tmp_path / "checkpoints"
    monkeypatch.setenv("STN_COURSE_CHECKPOINTS", str(folder))
    monkeypatch.setenv("STN_COURSE_OUTPUT", str(tmp_path / "output"))
    return folder


@requires_mnist
def test_a_checkpoint_of_another_recipe_under_a_runs_name_is_refused(checkpoints, capsys):
    import torch

    from stn_course.train import CheckpointMismatchError

    trained = default_config("mnist", "cnn", 1, quick=True)
    experiments.run_experiment(trained, use_shipped=False)
    state = torch.load(checkpoints / f"{trained.name}.pt", weights_only=True)
    assert state["run"] == experiments.run_identity(trained) and state["run"]["name"] == trained.name
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
def test_a_checkpoint_without_identity_is_loaded_by_its_name_with_a_note(checkpoints, capsys):
    import torch

    config = default_config("mnist", "cnn", 1, quick=True)
    experiments.run_experiment(config, use_shipped=False)
    path = checkpoints / f"{config.name}.pt"
    state = torch.load(path, weights_only=True)
    del state["run"]
    torch.save(state, path)
    capsys.readouterr()
    experiment = experiments.run_experiment(config, use_shipped=False)
    assert experiment.history.trained_now == 0
    out = capsys.readouterr().out
    assert f"Note: {path} does not record which run wrote it" in out and "Loaded the finished run" in out


@pytest.mark.parametrize("content", ["empty", "random", "truncated", "tensor", "no model"])
def test_a_bad_checkpoint_names_the_file(tmp_path, content):
    import torch

    from stn_course.train import load_checkpoint

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
