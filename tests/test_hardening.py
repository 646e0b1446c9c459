"""Issue #23: invalid settings, corrupt or foreign files and bad records are refused or named.

Each test reproduces one case of the issue; none touches tracked files or /work/shared.
"""
from __future__ import annotations

import json
import math
import re
import warnings
from dataclasses import replace

import pytest

from stn_course import __main__ as cli
from stn_course import experiments, recipes
from stn_course.checkpoints import run_identity
from stn_course.errors import CourseError
from stn_course.utils import data_root
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

    monkeypatch.setitem(recipes.DATASETS, "mnist", no_data)
    return tmp_path


@pytest.mark.parametrize("setting", INVALID_SETTINGS)
def test_an_invalid_setting_is_refused_before_any_data_with_its_range(setting, outputs, capsys):
    extra = ["--set", "optimizer=sgd"] if setting.startswith("momentum") else []
    assert cli.main(RUN + extra + ["--set", setting]) == 1
    err = capsys.readouterr().err
    name = setting.partition("=")[0]
    assert err.startswith(f"Invalid run setting: {name}=") and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
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
    config = recipes.default_config("mnist", "cnn", 2)
    with pytest.raises(InvalidSettingError, match=field) as error:
        replace(config, **{field: value})
    assert isinstance(error.value, CourseError) and isinstance(error.value, ValueError)


def test_valid_settings_and_every_recipe_are_accepted():
    for dataset in recipes.DATASETS:
        for variant in ["", *recipes.VARIANTS]:
            model = "cifar-net-a" if variant == "momentum" else "st-cnn-aff"  # momentum: SGD only
            recipes.default_config(dataset, model, 3, variant=variant, quick=True)
    sgd = recipes.default_config("cifar10", "cifar-resnet", 2)
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

requires_mnist = pytest.mark.skipif(not (data_root() / "MNIST").exists(), reason="needs MNIST under the data root")


@pytest.fixture
def checkpoints(tmp_path, monkeypatch):
    folder = tmp_path / "checkpoints"
    monkeypatch.setenv("STN_COURSE_CHECKPOINTS", str(folder))
    monkeypatch.setenv("STN_COURSE_OUTPUT", str(tmp_path / "output"))
    return folder


@requires_mnist
def test_a_checkpoint_of_another_recipe_under_a_runs_name_is_refused(checkpoints, capsys):
    import torch

    from stn_course.checkpoints import CheckpointMismatchError

    trained = recipes.default_config("mnist", "cnn", 1, quick=True)
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
def test_a_checkpoint_without_identity_is_loaded_by_its_name_with_a_note(checkpoints, capsys):
    import torch

    config = recipes.default_config("mnist", "cnn", 1, quick=True)
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
    from stn_course.checkpoints import load_checkpoint
    from stn_course.utils import shipped_checkpoint_dir

    shipped = sorted(shipped_checkpoint_dir().glob("*.pt"))
    assert shipped
    for path in shipped:
        config = config_of(torch.load(path, weights_only=True))
        assert config.name == path.stem
        recipe = recipes.recipe_config(config.dataset, config.model, config.epochs, config.seed, config.variant)
        recipe = replace(recipe, **config.changes)
        # the log interval changes no weight; limits shrunk for quick mode are not the recipe's
        for wanted in (recipe, replace(recipe, log_interval=1, train_limit=512, test_limit=256, quick=True)):
            load_checkpoint(path, run=run_identity(wanted, shipped=True))
        with pytest.raises(CourseError, match="belongs to another run"):
            load_checkpoint(path, run=run_identity(replace(recipe, seed=7), shipped=True))


@pytest.mark.parametrize("content", ["empty", "random", "truncated", "tensor", "no model"])
def test_a_bad_checkpoint_names_the_file(tmp_path, content):
    import torch

    from stn_course.checkpoints import load_checkpoint

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


# --- caches carry their key -----------------------------------------------------------------

@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("STN_COURSE_CACHE", str(folder))
    return folder


@pytest.fixture
def fake_cifar10(monkeypatch):
    """torchvision's CIFAR10 replaced by 7 images of 1s (train) or 2s (test)."""
    import numpy as np
    import torchvision

    class FakeCIFAR10:
        def __init__(self, root, train, download):
            self.data = np.full((7, 32, 32, 3), 1 if train else 2, dtype=np.uint8)
            self.targets = list(range(7))

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", FakeCIFAR10)


def test_a_cifar_training_cache_copied_over_the_test_cache_is_detected_and_rebuilt(cache, tmp_path, fake_cifar10):
    from stn_course.data import CacheWarning, load_cifar10

    with warnings.catch_warnings():  # normal operation: building and reading caches warns nothing
        warnings.simplefilter("error")
        assert load_cifar10(train=True, root=tmp_path).images.unique().tolist() == [1]
        assert load_cifar10(train=False, root=tmp_path).images.unique().tolist() == [2]
        assert load_cifar10(train=False, root=tmp_path).images.unique().tolist() == [2]
    train_file, test_file = (next(cache.glob(f"cifar10-*-{split}-all*.pt")) for split in ("train", "test"))
    test_file.write_bytes(train_file.read_bytes())
    with pytest.warns(CacheWarning, match=rf"{test_file} holds .*'split': 'train'.*rebuilding it"):
        assert load_cifar10(train=False, root=tmp_path).images.unique().tolist() == [2]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_cifar10(train=False, root=tmp_path).images.unique().tolist() == [2]  # rebuilt for good


@pytest.mark.parametrize("damage", ["truncated", "empty", "random", "bare tensor"])
def test_a_corrupt_cache_file_is_named_and_rebuilt(cache, tmp_path, fake_cifar10, damage):
    import torch

    from stn_course.data import CacheWarning, load_cifar10

    load_cifar10(train=False, root=tmp_path, limit=5)
    path = next(cache.glob("cifar10-*.pt"))
    if damage == "bare tensor":  # what the old distorted-test cache held: no key
        torch.save(torch.zeros(5, 3, 32, 32, dtype=torch.uint8), path)
    else:
        path.write_bytes({"truncated": path.read_bytes()[:150], "empty": b"", "random": bytes(range(256)) * 9}[damage])
    with pytest.warns(CacheWarning, match=f"{path} .*rebuilding it"):
        assert load_cifar10(train=False, root=tmp_path, limit=5).images.unique().tolist() == [2]


@requires_mnist
def test_two_digit_mnist_caches_each_jitter_apart(cache):
    from stn_course.distortions import two_digit_mnist

    jittered = two_digit_mnist(False, limit=50)
    plain = two_digit_mnist(False, limit=50, jitter=0)
    assert jittered.image_shape == (1, 32, 64) and plain.image_shape == (1, 28, 56)
    assert two_digit_mnist(False, limit=50, jitter=0).images.equal(plain.images)


@requires_mnist
def test_a_distorted_test_cache_of_another_seed_is_detected(cache):
    from stn_course.data import CacheWarning
    from stn_course.distortions import distorted_mnist_test

    seed0, seed1 = distorted_mnist_test("rot", seed=0, limit=40), distorted_mnist_test("rot", seed=1, limit=40)
    assert not seed0.images.equal(seed1.images)
    file0, file1 = (next(cache.glob(f"mnist-rot-test-s{seed}-40*.pt")) for seed in (0, 1))
    file0.write_bytes(file1.read_bytes())
    with pytest.warns(CacheWarning, match=f"{file0} holds"):
        assert distorted_mnist_test("rot", seed=0, limit=40).images.equal(seed0.images)


# --- a corrupt raw data file is named as corrupt, not missing -------------------------------

@pytest.fixture
def mnist_copy(tmp_path):
    """A data root whose MNIST files link to the real ones (never modified)."""
    from stn_course.data import MNIST_RAW_FILES

    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in MNIST_RAW_FILES:
        (raw / name).symlink_to(data_root() / "MNIST" / "raw" / name)
    return tmp_path / "data"


@requires_mnist
@pytest.mark.parametrize("damage", ["truncated", "empty", "random", "extra"])
def test_a_corrupt_mnist_file_is_reported_as_corrupt_with_its_path(mnist_copy, damage, monkeypatch):
    from stn_course.data import DatasetCorruptError, load_mnist

    monkeypatch.setattr("socket.socket.connect", lambda *args: (_ for _ in ()).throw(OSError("no network")))
    path = mnist_copy / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    original = path.resolve().read_bytes()
    path.unlink()
    path.write_bytes({"truncated": original[:5000], "empty": b"", "random": bytes(range(256)) * 40,
                      "extra": original + b"\0"}[damage])
    with pytest.raises(DatasetCorruptError, match=f"The MNIST file {path} is corrupt: .*Delete it") as caught:
        load_mnist(train=True, root=mnist_copy)
    assert "not found" not in str(caught.value)
    assert isinstance(caught.value, CourseError)


@requires_mnist
def test_intact_mnist_files_pass_the_check(mnist_copy):
    from stn_course.data import check_mnist_files, load_mnist

    check_mnist_files(mnist_copy)
    assert len(load_mnist(train=False, root=mnist_copy, limit=10)) == 10


# --- report names a bad results file --------------------------------------------------------

@pytest.fixture
def results_copy(tmp_path, monkeypatch):
    """A copy of the repository's results/ (report reads <repo>/results) with one good record."""
    import shutil

    from stn_course import report
    from stn_course.utils import recorded_results_dir

    folder = tmp_path / "results"
    shutil.copytree(recorded_results_dir(), folder)
    monkeypatch.setattr(report, "repo_root", lambda: tmp_path)
    return folder


@pytest.mark.parametrize("damage", ["truncated", "no machine", "invalid config", "a list"])
def test_report_names_a_bad_results_file_and_goes_on_with_the_others(results_copy, damage, capsys):
    from stn_course.report import BadResultWarning, load_run_results

    good = len(load_run_results(results_copy))
    path = results_copy / "mnist_st-cnn-aff_e5_s0.json"
    record = json.loads(path.read_text())
    if damage == "truncated":
        path.write_text(path.read_text()[:300])
    elif damage == "no machine":
        del record["machine"]
        path.write_text(json.dumps(record))
    elif damage == "invalid config":
        record["config"]["max_grad_norm"] = -1
        path.write_text(json.dumps(record))
    else:
        path.write_text("[1, 2]")
    with pytest.warns(BadResultWarning, match=f"Skipping {path}: "):
        records = load_run_results(results_copy)
    assert len(records) == good - 1 and path.stem not in {record["name"] for record in records}
    assert cli.main(["report"]) == 0
    out, err = capsys.readouterr()
    assert f"Warning: Skipping {path}" in err and "Traceback" not in err
    assert "`rts-mnist_cnn_e8_s0`" in out and "`mnist_st-cnn-aff_e5_s0`" not in out
    # the README is not regenerated without the bad file's row
    assert cli.main(["report", "--update-readme"]) == 1
    assert "Not updating the README" in capsys.readouterr().err


def test_a_bad_error_analysis_is_named_and_left_out(results_copy):
    from stn_course.report import BadResultWarning, load_error_results

    good = len(load_error_results(results_copy))
    path = next(results_copy.glob("errors_*.json"))
    record = json.loads(path.read_text())
    del record["confusions"]
    path.write_text(json.dumps(record))
    with pytest.warns(BadResultWarning, match=f"Skipping {path}: it lacks 'confusions'"):
        assert len(load_error_results(results_copy)) == good - 1


# --- nothing divides by zero after an epoch -------------------------------------------------

def test_evaluate_refuses_an_empty_test_set():
    import torch

    from stn_course.data import BatchLoader, ImageTensors
    from stn_course.train import evaluate

    empty = ImageTensors(torch.zeros(0, 1, 4, 4, dtype=torch.uint8), torch.zeros(0, dtype=torch.int64),
                         ("0",), (0.5,), (0.5,), "empty")
    with pytest.raises(ValueError, match="empty test set"):
        evaluate(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 1)), BatchLoader(empty, 4))


def test_an_empty_split_is_refused_before_training(monkeypatch):
    import torch

    from stn_course.data import ImageTensors

    def tiny(count):
        return ImageTensors(torch.zeros(count, 1, 28, 28, dtype=torch.uint8), torch.zeros(count, dtype=torch.int64),
                            tuple("0123456789"), (0.5,), (0.5,), f"tiny[{count}]")

    monkeypatch.setitem(recipes.DATASETS, "mnist", lambda *args: recipes.DatasetSplits(tiny(8), tiny(0)))
    with pytest.raises(CourseError, match=r"The test set of mnist \(tiny\[0\]\) holds no images"):
        experiments.build_experiment(recipes.default_config("mnist", "cnn", 1, quick=True))
