import json
from dataclasses import replace

import pytest
import torch

from stn_course import experiments, recipes
from stn_course.__main__ import main
from stn_course.recipes import default_config
from stn_course.utils import results_dir

from .markers import requires_cifar_folder, requires_mnist


def test_quick_shrinks_a_run_only_when_asked():
    config = experiments.default_config("rts-mnist", "st-cnn-aff", epochs=30, quick=True)
    assert (config.epochs, config.train_limit, config.test_limit) == (1, 512, 256)
    # pytest runs in quick mode (conftest.py): the mode variable alone changes nothing
    config = experiments.default_config("rts-mnist", "st-cnn-aff", epochs=30)
    assert (config.epochs, config.train_limit, config.test_limit, config.quick) == (30, None, None, False)


def test_cifar_networks_train_like_the_pytorch_tutorial():
    config = experiments.default_config("cifar10", "cifar-net-b", epochs=50)
    assert (config.optimizer, config.lr, config.batch_size, config.schedule) == ("sgd", 0.01, 64, "constant")
    assert (config.momentum, config.max_grad_norm, config.localisation_lr_scale) == (0.0, None, 1.0)
    assert config.name == "cifar10_cifar-net-b_e50_s0"


def test_a_variant_changes_the_recipe_the_name_and_the_command():
    config = experiments.default_config("cifar10", "cifar-net-a", epochs=50, variant="momentum", quick=True)
    assert (config.momentum, config.localisation_lr_scale) == (0.9, 0.1) and config.name.endswith("_momentum")
    assert config.command().endswith("--variant momentum")
    with pytest.raises(ValueError, match="unknown variant"):
        experiments.default_config("cifar10", "cifar-net-a", 50, variant="adam", quick=True)


def test_final_drop_schedule_divides_the_rate_by_ten_for_the_last_fifth():
    # a quick run is one small epoch: five epochs here so that the schedule has a last fifth
    config = experiments.default_config("cifar10", "cifar-net-b", 50, variant="no-augment-drop", quick=True)
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
    distorted = experiments.build_experiment(experiments.default_config("rot-mnist", "cnn", 1, quick=True))
    plain = experiments.build_experiment(experiments.default_config("rot-mnist", "cnn", 1, variant="no-augment",
                                                                    quick=True))
    assert distorted.train_loader.augment is not None and plain.train_loader.augment is None


@requires_mnist
def test_window_variant_trains_an_st_cnn_that_samples_a_smaller_window():
    config = experiments.default_config("rts-mnist", "st-cnn-aff", 8, variant="window-28", quick=True)
    assert config.name == "rts-mnist_st-cnn-aff_e1_s0_window-28" and config.localisation_lr_scale == 1.0
    assert replace(config, window=20).name == "rts-mnist_st-cnn-aff_e1_s0_window-28_window=20"
    by_hand = replace(experiments.default_config("rts-mnist", "st-cnn-aff", 8, quick=True), window=28)
    assert by_hand.name == "rts-mnist_st-cnn-aff_e1_s0_window=28" != config.name, \
        "a window set by hand (at a tenth of the localisation rate) is not the window-28 variant's run"
    experiment = experiments.run_experiment(config, save=False, use_checkpoints=False)
    assert experiment.model.transformer.out_size == (28, 28)
    assert experiment.history.epochs == 1 and 0 <= experiment.history.test_accuracy[0] <= 1


@requires_mnist
def test_classifier_settings_reach_the_model():
    config = replace(experiments.default_config("rts-mnist", "cnn", 8, quick=True), dropout=0.5, batchnorm=True)
    model = experiments.build_experiment(config, torch.device("cpu")).model
    assert [m.p for m in model.head if isinstance(m, torch.nn.Dropout)] == [0.5]
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.features) == 2
    assert config.name == "rts-mnist_cnn_e1_s0_dropout=0.5_batchnorm=true"


def test_every_setting_changed_by_hand_names_the_run_and_its_command():
    config = experiments.default_config("rts-mnist", "st-cnn-aff", 8, quick=True)
    assert config.recipe == "" and config.name == "rts-mnist_st-cnn-aff_e1_s0", "quick-mode limits name nothing"
    assert replace(config, train_limit=1000).name == "rts-mnist_st-cnn-aff_e1_s0_train_limit=1000", \
        "a limit set by hand names the run, so it never shares the whole run's checkpoint"
    changed = replace(config, window=28, amp=True, lr=0.001, max_grad_norm=None, augment=False)
    assert changed.changes == {"lr": 0.001, "max_grad_norm": None, "augment": False, "window": 28, "amp": True}
    assert changed.name == ("rts-mnist_st-cnn-aff_e1_s0_lr=0.001_max_grad_norm=none_augment=false_window=28_amp=true")
    assert changed.command().endswith("--seed 0 --set lr=0.001 --set max_grad_norm=none --set augment=false "
                                      "--set window=28 --set amp=true")
    # what a variant sets is part of its recipe; only settings beyond it name the run
    variant = experiments.default_config("rts-mnist", "st-cnn-aff", 8, variant="window-28", quick=True)
    assert replace(variant, amp=True).recipe == "window-28_amp=true"
    assert replace(config, **dict(map(experiments.parse_setting, changed.command().split(" --set ")[1:]))) == changed, \
        "the command's settings read back to the same run"


def test_outside_quick_mode_any_limit_names_the_run():
    config = experiments.default_config("mnist", "st-cnn-aff", 5)
    assert config.name == "mnist_st-cnn-aff_e5_s0"
    shrunk = replace(config, train_limit=512, test_limit=256)
    assert shrunk.name == "mnist_st-cnn-aff_e5_s0_train_limit=512_test_limit=256"
    assert shrunk.command().endswith("--set train_limit=512 --set test_limit=256")


def test_settings_are_parsed_to_their_fields_types():
    parse = experiments.parse_setting
    assert parse("window=28") == ("window", 28) and parse("amp=True") == ("amp", True)
    assert parse("dropout=0.5") == ("dropout", 0.5) and parse("batchnorm=true") == ("batchnorm", True)
    assert parse("lr=2e-3") == ("lr", 0.002) and parse("max_grad_norm=none") == ("max_grad_norm", None)
    assert parse("schedule=constant") == ("schedule", "constant")
    assert parse("train_limit=1000") == ("train_limit", 1000)
    for text, message in [("window", "FIELD=VALUE"), ("colour=red", "FIELD=VALUE"), ("epochs=3", "FIELD=VALUE"),
                          ("window=big", "takes an int"), ("amp=maybe", "takes a bool"), ("lr=none", "cannot be none")]:
        with pytest.raises(ValueError, match=message):
            parse(text)


def test_command_line_refuses_a_bad_setting(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--dataset", "rts-mnist", "--set", "window=big"])
    assert "--set: window takes an int, got 'big'" in capsys.readouterr().err


def test_unknown_names_are_refused():
    with pytest.raises(ValueError, match="unknown dataset"):
        experiments.default_config("svhn", "cnn", 1, quick=True)
    with pytest.raises(ValueError, match="unknown model"):
        experiments.default_config("mnist", "vgg", 1, quick=True)


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
    config = experiments.default_config("cifar10", "cifar-net-b", 50, quick=True)
    experiment = experiments.run_experiment(config, save=False)
    assert experiment.model.transformer.last_theta.shape[1] == 6
    assert experiment.history.epochs == 1


@requires_cifar_folder
@pytest.mark.parametrize("model", ["cifar-st-resnet", "cifar-resnet"])
def test_strong_cifar_models_train_in_channels_last(model):
    experiment = experiments.run_experiment(experiments.default_config("cifar10", model, 14, quick=True), save=False)
    images, _ = next(iter(experiment.train_loader))
    assert images.is_contiguous(memory_format=torch.channels_last)
    assert experiment.history.epochs == 1 and 0 <= experiment.history.test_accuracy[0] <= 1
    assert (experiment.model.transformer is not None) == (model == "cifar-st-resnet")


def test_command_line_rejects_bad_arguments(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--dataset", "imagenet"])
    assert "invalid choice" in capsys.readouterr().err


def test_shipped_checkpoint_is_loaded_instead_of_training(tmp_path, monkeypatch, capsys):
    import torch

    from stn_course import experiments as ex
    from stn_course.data import ImageTensors
    from stn_course.loader import BatchLoader
    from stn_course.registry import build_classifier
    from stn_course.train import History

    monkeypatch.setattr(ex, "shipped_checkpoint_dir", lambda: tmp_path / "shipped")
    monkeypatch.setattr(ex, "checkpoint_dir", lambda: tmp_path / "runs")
    data = ImageTensors(torch.zeros(4, 1, 28, 28, dtype=torch.uint8), torch.arange(4), tuple("0123456789"),
                        (0.1,), (0.3,), "tiny")
    config = ex.RunConfig(epochs=2)

    def experiment(seed):
        torch.manual_seed(seed)
        model = build_classifier("st-cnn-aff", (1, 28, 28), (0.1,), (0.3,))
        return ex.Experiment(config, model, BatchLoader(data, 2), BatchLoader(data, 2))

    trained = experiment(1)
    trained.history = History(train_loss=[1.0, 0.5], test_loss=[1.0, 0.4], test_accuracy=[0.5, 0.75],
                              test_correct=[2, 3], seconds=[1.0, 1.0], lr=[0.1, 0.1])
    path = ex.ship_checkpoint(trained)
    assert path.stat().st_size < 2 * 1024 * 1024, "shipped checkpoints stay under 2 MB"

    fresh = ex.train_experiment(experiment(2), save=False)
    assert "shipped with the course" in capsys.readouterr().out
    assert fresh.history.test_accuracy == [0.5, 0.75]
    for key, value in trained.model.state_dict().items():
        torch.testing.assert_close(fresh.model.state_dict()[key], value, atol=2e-3, rtol=2e-3)


@requires_mnist
def test_recording_a_training_run_writes_no_checkpoint(tmp_path, monkeypatch):
    import torch

    from stn_course import experiments as ex

    monkeypatch.setattr(ex, "checkpoint_dir", lambda: tmp_path)
    config = ex.default_config("mnist", "st-cnn-aff", 5, quick=True)
    experiment, recorder = ex.record_transformer_training(config, torch.rand(2, 1, 28, 28), every=2)
    assert recorder.steps == [0, 2, 4] and experiment.history.epochs == 1
    assert not list(tmp_path.iterdir())


def test_an_installed_package_fetches_a_shipped_checkpoint_and_falls_back_to_training(tmp_path, monkeypatch):
    import torch

    from stn_course import experiments as ex

    monkeypatch.setattr(ex, "shipped_checkpoint_dir", lambda: tmp_path)
    monkeypatch.setattr(ex, "has_repository", lambda: True)
    assert ex.fetch_shipped_checkpoint("run") is False, "a clone has its checkpoints: nothing is downloaded"

    monkeypatch.setattr(ex, "has_repository", lambda: False)  # installed alone, as on Colab
    monkeypatch.setenv("STN_COURSE_REPO_URL", "https://example.org/a-fork/")
    asked = []

    def fake_download(url, dest, progress):
        asked.append(url)
        if "missing" in url:
            raise OSError("HTTP Error 404")
        torch.save({"ok": True}, dest)

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    assert ex.fetch_shipped_checkpoint("run") is True and (tmp_path / "run.pt").exists()
    assert asked[0] == "https://example.org/a-fork/raw/main/checkpoints/run.pt"
    assert ex.fetch_shipped_checkpoint("missing") is False and not (tmp_path / "missing.pt").exists()


def test_an_empty_split_is_refused_before_training(monkeypatch):
    from stn_course.data import ImageTensors
    from stn_course.errors import CourseError

    def tiny(count):
        return ImageTensors(torch.zeros(count, 1, 28, 28, dtype=torch.uint8), torch.zeros(count, dtype=torch.int64),
                            tuple("0123456789"), (0.5,), (0.5,), f"tiny[{count}]")

    monkeypatch.setitem(recipes.DATASETS, "mnist", lambda *args: recipes.DatasetSplits(tiny(8), tiny(0)))
    with pytest.raises(CourseError, match=r"The test set of mnist \(tiny\[0\]\) holds no images"):
        experiments.build_experiment(default_config("mnist", "cnn", 1, quick=True))
