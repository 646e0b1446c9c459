"""Issue #23: invalid settings, corrupt or foreign files and bad records are refused or named.

Each test reproduces one case of the issue; none touches tracked files or /work/shared.
"""
from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest

from stn_course import __main__ as cli
from stn_course import experiments
from stn_course.errors import CourseError
from stn_course.validation import InvalidSettingError

RUN = ["train", "--dataset", "mnist", "--model", "cnn", "--epochs", "2",
       "--set", "train_limit=1024", "--set", "test_limit=500"]

#: the invalid settings of the issue (and a few more), with the words the message must hold
INVALID_SETTINGS = {
    "max_grad_norm=-1": "max_grad_norm must be a finite number > 0, or none",
    "max_grad_norm=0": "max_grad_norm must be a finite number > 0",
    "label_smoothing=-0.5": r"label_smoothing must be a finite number in \[0, 1\)",
    "localisation_lr_scale=-1": "localisation_lr_scale must be a finite number >= 0",
    "test_limit=0": "test_limit must be an integer >= 1, or none",
    "train_limit=0": "train_limit must be an integer >= 1",
    "train_limit=-5": "train_limit must be an integer >= 1",
    "batch_size=0": "batch_size must be an integer >= 1",
    "window=-5": "window must be an integer >= 1, or none",
    "dropout=1.5": r"dropout must be a finite number in \[0, 1\)",
    "lr=-1": "lr must be a finite number > 0",
    "lr=nan": "lr must be a finite number > 0",
    "lr=inf": "lr must be a finite number > 0",
    "optimizer=foo": "optimizer must be one of 'adamw', 'sgd'",
    "schedule=cosine": "schedule must be one of 'onecycle'",
    "momentum=1.5": "momentum",
}


@pytest.fixture
def outputs(tmp_path, monkeypatch):
    """Checkpoints and results in empty temporary folders, and a dataset that fails if loaded."""
    monkeypatch.setenv("STN_COURSE_CHECKPOINTS", str(tmp_path / "checkpoints"))
    monkeypatch.setenv("STN_COURSE_OUTPUT", str(tmp_path / "output"))

    def no_data(*args):
        raise AssertionError("data was loaded for an invalid setting")

    monkeypatch.setitem(experiments.DATASETS, "mnist", no_data)
    return tmp_path


@pytest.mark.parametrize("setting", INVALID_SETTINGS)
def test_an_invalid_setting_is_refused_before_any_data_with_its_range(setting, outputs, capsys):
    extra = ["--set", "optimizer=sgd"] if setting.startswith("momentum") else []
    assert cli.main(RUN + extra + ["--set", setting]) == 1
    err = capsys.readouterr().err
    name = setting.partition("=")[0]
    assert err.startswith(f"Invalid run setting: {name}=") and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    import re
    assert re.search(INVALID_SETTINGS[setting], err), err
    written = [path for path in outputs.rglob("*") if path.is_file()]
    assert written == [], f"an invalid run wrote {written}"


def test_a_setting_of_the_wrong_type_is_an_argparse_error_naming_the_field(outputs, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(RUN + ["--set", "lr=fast"])
    assert exit_.value.code == 2
    assert "--set: lr takes a float, got 'fast'" in capsys.readouterr().err


@pytest.mark.parametrize("field, value", [
    ("epochs", 0), ("epochs", 1.5), ("batch_size", True), ("lr", math.inf), ("weight_decay", -1e-4),
    ("seed", -1), ("log_interval", 0), ("dataset", "imagenet"), ("model", "vgg"), ("variant", "fast"),
    ("amp", "yes"), ("augment", 1), ("window", 0), ("nesterov", True), ("momentum", 0.9)])
def test_run_config_refuses_each_invalid_field_when_built(field, value):
    config = experiments.default_config("mnist", "cnn", 2)
    with pytest.raises(InvalidSettingError, match=field) as error:
        replace(config, **{field: value})
    assert isinstance(error.value, CourseError) and isinstance(error.value, ValueError)


def test_valid_settings_and_every_recipe_are_accepted():
    for dataset in experiments.DATASETS:
        for variant in ["", *experiments.VARIANTS]:
            model = "cifar-net-a" if variant == "momentum" else "st-cnn-aff"  # momentum: SGD only
            experiments.default_config(dataset, model, 3, variant=variant, quick=True)
    sgd = experiments.default_config("cifar10", "cifar-resnet", 2)
    assert (sgd.optimizer, sgd.momentum, sgd.nesterov) == ("sgd", 0.9, True)
    replace(sgd, max_grad_norm=None, window=None, amp=None, train_limit=None, label_smoothing=0.0, lr=1)


def test_every_recorded_run_has_a_valid_config():
    """Nothing in results/ comes from a run with an invalid setting."""
    from stn_course.report import config_of
    from stn_course.utils import recorded_results_dir

    records = [json.loads(path.read_text()) for path in sorted(recorded_results_dir().glob("*.json"))]
    configs = [record for record in records if "config" in record]
    assert len(configs) > 20
    for record in configs:
        config_of(record)  # raises InvalidSettingError for an invalid one


# --- checkpoints identify their run ---------------------------------------------------------

requires_mnist = pytest.mark.skipif(not (Path(__import__("stn_course.utils").utils.data_root()) / "MNIST").exists(),
                                    reason="needs MNIST under the data root")


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

    trained = experiments.default_config("mnist", "cnn", 1, quick=True)
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
    # the learner's way out: delete it, and the run trains
    foreign.unlink()
    assert experiments.run_experiment(other, use_shipped=False).history.trained_now == 1


@requires_mnist
def test_a_checkpoint_without_identity_is_loaded_by_its_name_with_a_note(checkpoints, capsys):
    import torch

    config = experiments.default_config("mnist", "cnn", 1, quick=True)
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


def test_every_shipped_checkpoint_matches_the_recipe_of_its_name_in_both_modes():
    import torch

    from stn_course.report import config_of
    from stn_course.train import load_checkpoint
    from stn_course.utils import shipped_checkpoint_dir

    shipped = sorted(shipped_checkpoint_dir().glob("*.pt"))
    assert shipped
    for path in shipped:
        config = config_of(torch.load(path, weights_only=True))
        assert config.name == path.stem
        recipe = experiments.recipe_config(config.dataset, config.model, config.epochs, config.seed, config.variant)
        recipe = replace(recipe, **config.changes)
        # the log interval changes no weight; limits shrunk for quick mode are not the recipe's
        for wanted in (recipe, replace(recipe, log_interval=1, train_limit=512, test_limit=256, quick=True)):
            load_checkpoint(path, run=experiments.run_identity(wanted, shipped=True))
        with pytest.raises(CourseError, match="belongs to another run"):
            load_checkpoint(path, run=experiments.run_identity(replace(recipe, seed=7), shipped=True))


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
