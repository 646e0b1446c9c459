import json
from dataclasses import replace

import pytest
import torch

from stn_course import experiments, recipes
from stn_course.__main__ import main
from stn_course.recipes import default_config
from stn_course.utils import results_dir

from .markers import requires_cifar_folder, requires_mnist


def test_final_drop_schedule_divides_the_rate_by_ten_for_the_last_fifth():
    # a quick run is one small epoch: five epochs here so that the schedule has a last fifth
    config = default_config("cifar10", "cifar-net-b", 50, variant="no-augment-drop", quick=True)
    config = replace(config, epochs=5)
    assert (config.augment, config.schedule, config.lr) == (False, "final-drop", 0.01)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=config.lr)
    scheduler = experiments.make_scheduler(config, optimizer, steps_per_epoch=10)
    rates = []
    for _ in range(50):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates[:40] == [0.01] * 40 and rates[40:] == pytest.approx([0.001] * 10)
    assert experiments.make_scheduler(replace(config, schedule="constant"), optimizer, 10) is None
    with pytest.raises(ValueError, match="schedule='cosine' is not allowed; schedule must be one of 'onecycle'"):
        replace(config, schedule="cosine")  # refused when the config is built, before any scheduler


@requires_mnist
def test_no_augment_variant_trains_on_plain_images():
    distorted = experiments.build_experiment(default_config("rot-mnist", "cnn", 1, quick=True))
    plain = experiments.build_experiment(default_config("rot-mnist", "cnn", 1, variant="no-augment", quick=True))
    assert distorted.train_loader.augment is not None and plain.train_loader.augment is None


@requires_mnist
def test_window_variant_trains_an_st_cnn_that_samples_a_smaller_window():
    config = default_config("rts-mnist", "st-cnn-aff", 8, variant="window-28", quick=True)
    assert config.name == "rts-mnist_st-cnn-aff_e1_s0_window-28" and config.localisation_lr_scale == 1.0
    assert replace(config, window=20).name == "rts-mnist_st-cnn-aff_e1_s0_window-28_window=20"
    by_hand = replace(default_config("rts-mnist", "st-cnn-aff", 8, quick=True), window=28)
    assert by_hand.name == "rts-mnist_st-cnn-aff_e1_s0_window=28" != config.name, \
        "a window set by hand (at a tenth of the localisation rate) is not the window-28 variant's run"
    experiment = experiments.run_experiment(config, save=False, use_checkpoints=False)
    assert experiment.model.transformer.out_size == (28, 28)
    assert experiment.history.epochs == 1 and 0 <= experiment.history.test_accuracy[0] <= 1


@requires_mnist
def test_classifier_settings_reach_the_model():
    config = replace(default_config("rts-mnist", "cnn", 8, quick=True), dropout=0.5, batchnorm=True)
    model = experiments.build_experiment(config, torch.device("cpu")).model
    assert [m.p for m in model.head if isinstance(m, torch.nn.Dropout)] == [0.5]
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.features) == 2
    assert config.name == "rts-mnist_cnn_e1_s0_dropout=0.5_batchnorm=true"


def test_command_line_refuses_a_bad_setting(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--dataset", "rts-mnist", "--set", "window=big"])
    assert "--set: window takes an int, got 'big'" in capsys.readouterr().err


@requires_mnist
def test_command_line_trains_and_records_a_result(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("STN_COURSE_OUTPUT", str(tmp_path))  # a fresh run, whatever ran before
    assert main(["train", "--dataset", "rts-mnist", "--model", "st-cnn-aff", "--epochs", "3", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "Test set: Average loss:" in out
    record = json.loads((results_dir() / "rts-mnist_st-cnn-aff_e1_s0.json").read_text())
    assert record["command"].startswith("python -m stn_course train --dataset rts-mnist --model st-cnn-aff")
    assert record["test_samples"] == 256 and 0 <= record["test_accuracy"] <= 1
    assert record["machine"]["cpu_count"] >= 1 and record["quick_mode"] is True

    # the errors of the run just trained, read back from its checkpoint
    assert main(["errors", "--dataset", "rts-mnist", "--model", "st-cnn-aff", "--epochs", "3", "--device", "cpu"]) == 0
    errors = json.loads((results_dir() / "errors_rts-mnist_st-cnn-aff_e1_s0.json").read_text())
    assert errors["command"].startswith("python -m stn_course errors --dataset rts-mnist --model st-cnn-aff")
    assert errors["test_samples"] == 256 and errors["errors"] == 256 - record["test_correct"]
    assert errors["weights"] == "trained", "the run's own checkpoint, not shipped float16 weights"
    assert sum(confusion["count"] for confusion in errors["confusions"]) <= errors["errors"]
    assert "test_accuracy" not in errors, "an errors file is not a training result"
    assert main(["errors", "--dataset", "rts-mnist", "--model", "cnn", "--epochs", "3", "--device", "cpu"]) == 1
    assert "has not finished training; train it with" in capsys.readouterr().err


@requires_cifar_folder
def test_cifar_net_b_runs_on_cifar10():
    config = default_config("cifar10", "cifar-net-b", 50, quick=True)
    experiment = experiments.run_experiment(config, save=False)
    assert experiment.model.transformer.last_theta.shape[1] == 6
    assert experiment.history.epochs == 1


@requires_cifar_folder
@pytest.mark.parametrize("model", ["cifar-st-resnet", "cifar-resnet"])
def test_strong_cifar_models_train_in_channels_last(model):
    experiment = experiments.run_experiment(default_config("cifar10", model, 14, quick=True), save=False)
    images, _ = next(iter(experiment.train_loader))
    assert images.is_contiguous(memory_format=torch.channels_last)
    assert experiment.history.epochs == 1 and 0 <= experiment.history.test_accuracy[0] <= 1
    assert (experiment.model.transformer is not None) == (model == "cifar-st-resnet")


def test_command_line_rejects_bad_arguments(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--dataset", "imagenet"])
    assert "invalid choice" in capsys.readouterr().err


def test_an_empty_split_is_refused_before_training(monkeypatch):
    from stn_course.data import ImageTensors
    from stn_course.errors import CourseError

    def tiny(count):
        return ImageTensors(torch.zeros(count, 1, 28, 28, dtype=torch.uint8), torch.zeros(count, dtype=torch.int64),
                            tuple("0123456789"), (0.5,), (0.5,), f"tiny[{count}]")

    monkeypatch.setitem(recipes.DATASETS, "mnist", lambda *args: recipes.DatasetSplits(tiny(8), tiny(0)))
    with pytest.raises(CourseError, match=r"The test set of mnist \(tiny\[0\]\) holds no images"):
        experiments.build_experiment(default_config("mnist", "cnn", 1, quick=True))


@requires_mnist
@pytest.mark.parametrize("dataset", ["rts-mnist", "cifar10"])
def test_the_test_loader_never_augments(dataset):
    from .markers import _has_cifar_folder

    if dataset == "cifar10" and not _has_cifar_folder():
        pytest.skip("no CIFAR-10 folder")
    model = "cnn" if dataset == "rts-mnist" else "cifar-net-b"
    experiment = experiments.build_experiment(default_config(dataset, model, 1, quick=True), torch.device("cpu"))
    assert experiment.train_loader.augment is not None, "the training set is augmented"
    loader = experiment.test_loader
    for epoch in (1, 2):
        loader.set_epoch(epoch)
        images = torch.cat([batch for batch, _ in loader])
        assert torch.equal(images, loader.data.images.float() / 255), "test images as they are, every epoch"


@requires_mnist
def test_the_config_reaches_the_training_loop(monkeypatch):
    seen = {}

    def fake_fit(model, optimizer, train_loader, test_loader, epochs, **options):
        seen.update(options, epochs=epochs, lrs=[group["lr"] for group in optimizer.param_groups])
        raise KeyboardInterrupt  # stop here: nothing to train

    monkeypatch.setattr(experiments, "fit", fake_fit)
    config = replace(default_config("rts-mnist", "st-cnn-aff", 3, seed=2, quick=True), label_smoothing=0.2,
                     max_grad_norm=3.0, log_interval=7, localisation_lr_scale=0.5, lr=0.01, schedule="constant")
    with pytest.raises(KeyboardInterrupt):
        experiments.run_experiment(config, save=False, use_checkpoints=False)
    assert (seen["label_smoothing"], seen["max_grad_norm"], seen["log_interval"], seen["seed"]) == (0.2, 3.0, 7, 2)
    assert seen["amp"] == config.amp and seen["epochs"] == config.epochs
    assert seen["lrs"] == pytest.approx([0.01, 0.005])


def test_a_batch_larger_than_the_training_set_is_refused_before_training(monkeypatch):
    from stn_course.data import ImageTensors
    from stn_course.validation import InvalidSettingError

    def tiny(count):
        return ImageTensors(torch.zeros(count, 1, 28, 28, dtype=torch.uint8), torch.zeros(count, dtype=torch.int64),
                            tuple("0123456789"), (0.5,), (0.5,), f"tiny[{count}]")

    monkeypatch.setitem(recipes.DATASETS, "mnist", lambda *args: recipes.DatasetSplits(tiny(100), tiny(10)))
    with pytest.raises(InvalidSettingError, match=r"batch_size=128 is larger than the training set of mnist "
                                                  r"\(100 images\); set batch_size <= 100"):
        experiments.build_experiment(default_config("mnist", "cnn", 1))
    assert len(experiments.build_experiment(replace(default_config("mnist", "cnn", 1), batch_size=100)).train_loader) == 1


@requires_mnist
def test_ctrl_c_says_where_the_run_stopped_and_the_same_call_resumes(tmp_path, monkeypatch):
    from stn_course import train

    monkeypatch.setenv("STN_COURSE_CHECKPOINTS", str(tmp_path / "checkpoints"))
    monkeypatch.setenv("STN_COURSE_OUTPUT", str(tmp_path / "output"))
    config = replace(default_config("mnist", "cnn", 2, quick=True), epochs=2)
    original = train.train_one_epoch

    def interrupted_in_epoch_2(model, optimizer, loader, epoch, *args):
        if epoch == 2:
            raise KeyboardInterrupt
        return original(model, optimizer, loader, epoch, *args)

    monkeypatch.setattr(train, "train_one_epoch", interrupted_in_epoch_2)
    checkpoint = tmp_path / "checkpoints" / f"{config.name}.pt"
    with pytest.raises(experiments.TrainingInterrupted, match=rf"Interrupted: {config.name} stopped during epoch 2 "
                                                              rf"of 2: its checkpoint {checkpoint} holds epoch 1; "
                                                              rf"the same command resumes from there"):
        experiments.run_experiment(config, use_shipped=False)
    monkeypatch.setattr(train, "train_one_epoch", original)
    history = experiments.run_experiment(config, use_shipped=False).history
    assert history.epochs == 2 and history.trained_now == 1
    assert issubclass(experiments.TrainingInterrupted, KeyboardInterrupt), "notebooks see a KeyboardInterrupt"


# --- run_if_available: runs too long to start unannounced (notebooks 03 and 04) ---

UNSHIPPED = default_config("clutter-mnist", "st-cnn-aff", 8)  # recorded in results/, not shipped


def _must_not_run(*args, **kwargs):
    raise AssertionError("run_if_available trained or loaded a run it should have announced")


def test_a_run_not_shipped_is_announced_with_its_minutes_and_not_trained(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("STN_COURSE_CHECKPOINTS", str(tmp_path))
    monkeypatch.setattr(experiments, "run_experiment", _must_not_run)
    assert not (experiments.shipped_checkpoint_dir() / f"{UNSHIPPED.name}.pt").exists()
    assert experiments.run_if_available(UNSHIPPED) is None
    lines = capsys.readouterr().out.splitlines()
    record = json.loads((experiments.recorded_results_dir() / f"{UNSHIPPED.name}.json").read_text())
    minutes = f"{record['seconds_total'] / 60:.0f} min"
    assert len(lines) == 1 and lines[0].startswith(f"{UNSHIPPED.name} is not shipped with the course")
    assert f"the course's run took {minutes} on a 2-core CPU, 8 epochs" in lines[0]
    assert "Set TRAIN_IF_MISSING = True" in lines[0]


def test_a_run_with_a_checkpoint_the_flag_or_quick_mode_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("STN_COURSE_CHECKPOINTS", str(tmp_path))
    monkeypatch.setattr(experiments, "run_experiment", lambda config, device=None, **options: ("ran", options))
    assert experiments.run_if_available(UNSHIPPED, train_if_missing=True, replay_log=True) == ("ran", {"replay_log": True})
    assert experiments.run_if_available(replace(UNSHIPPED, quick=True)) == ("ran", {})
    (tmp_path / f"{UNSHIPPED.name}.pt").write_bytes(b"")  # yours, finished or interrupted
    assert experiments.run_if_available(UNSHIPPED) == ("ran", {})


def test_without_the_repository_a_failed_download_says_so_in_one_line(tmp_path, monkeypatch, capsys):
    """Colab: the run is looked for online first; when that fails, one line says what failed
    and that nothing trains without the flag."""
    from stn_course import shipped

    monkeypatch.setenv("STN_COURSE_CHECKPOINTS", str(tmp_path))
    monkeypatch.setenv("STN_COURSE_REPO_URL", "http://127.0.0.1:9/nowhere")  # refused at once
    monkeypatch.setattr(shipped, "has_repository", lambda: False)
    monkeypatch.setattr(experiments, "has_repository", lambda: False)
    monkeypatch.setattr(experiments, "shipped_checkpoint_dir", lambda: tmp_path / "shipped")
    monkeypatch.setattr(shipped, "shipped_checkpoint_dir", lambda: tmp_path / "shipped")
    monkeypatch.setattr(experiments, "run_experiment", _must_not_run)
    assert experiments.run_if_available(UNSHIPPED) is None
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Could not download the shipped model {UNSHIPPED.name}")
    assert "not training it (the course's run took" in lines[0] and "set TRAIN_IF_MISSING = True" in lines[0]
