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
