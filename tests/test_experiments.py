import json
from dataclasses import asdict, replace

import pytest
import torch

from stn_course import experiments
from stn_course.__main__ import main
from stn_course.utils import results_dir

from .markers import requires_cifar_folder, requires_mnist


def test_quick_mode_shrinks_every_run():
    config = experiments.default_config("rts-mnist", "st-cnn-aff", epochs=30)
    assert (config.epochs, config.train_limit, config.test_limit) == (1, 512, 256)


def test_cifar_networks_train_like_the_pytorch_tutorial():
    config = experiments.default_config("cifar10", "cifar-net-b", epochs=50)
    assert (config.optimizer, config.lr, config.batch_size, config.schedule) == ("sgd", 0.01, 64, "constant")
    assert (config.momentum, config.max_grad_norm, config.localisation_lr_scale) == (0.0, None, 1.0)
    assert config.name == "cifar10_cifar-net-b_e1_s0"


def test_a_variant_changes_the_recipe_the_name_and_the_command():
    config = experiments.default_config("cifar10", "cifar-net-a", epochs=50, variant="momentum")
    assert (config.momentum, config.localisation_lr_scale) == (0.9, 0.1) and config.name.endswith("_momentum")
    assert config.command().endswith("--variant momentum")
    with pytest.raises(ValueError, match="unknown variant"):
        experiments.default_config("cifar10", "cifar-net-a", 50, variant="adam")


def test_final_drop_schedule_divides_the_rate_by_ten_for_the_last_fifth():
    # tests run in quick mode, which shrinks every run to one epoch
    config = replace(experiments.default_config("cifar10", "cifar-net-b", 50, variant="no-augment-drop"), epochs=5)
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
    with pytest.raises(ValueError, match="unknown schedule"):
        experiments.make_scheduler(replace(config, schedule="cosine"), optimizer, 10)


@requires_mnist
def test_no_augment_variant_trains_on_plain_images():
    distorted = experiments.build_experiment(experiments.default_config("rot-mnist", "cnn", 1))
    plain = experiments.build_experiment(experiments.default_config("rot-mnist", "cnn", 1, variant="no-augment"))
    assert distorted.train_loader.augment is not None and plain.train_loader.augment is None


@requires_mnist
def test_window_variant_trains_an_st_cnn_that_samples_a_smaller_window():
    config = experiments.default_config("rts-mnist", "st-cnn-aff", 8, variant="window-28")
    assert config.name == "rts-mnist_st-cnn-aff_e1_s0_window-28" and config.localisation_lr_scale == 1.0
    assert replace(config, window=20).name == "rts-mnist_st-cnn-aff_e1_s0_window-28_window=20"
    by_hand = replace(experiments.default_config("rts-mnist", "st-cnn-aff", 8), window=28)
    assert by_hand.name == "rts-mnist_st-cnn-aff_e1_s0_window=28" != config.name, \
        "a window set by hand (at a tenth of the localisation rate) is not the window-28 variant's run"
    experiment = experiments.run_experiment(config, save=False, use_checkpoints=False)
    assert experiment.model.transformer.out_size == (28, 28)
    assert experiment.history.epochs == 1 and 0 <= experiment.history.test_accuracy[0] <= 1


@requires_mnist
def test_classifier_settings_reach_the_model():
    config = replace(experiments.default_config("rts-mnist", "cnn", 8), dropout=0.5, batchnorm=True)
    model = experiments.build_experiment(config, torch.device("cpu")).model
    assert [m.p for m in model.head if isinstance(m, torch.nn.Dropout)] == [0.5]
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.features) == 2
    assert config.name == "rts-mnist_cnn_e1_s0_dropout=0.5_batchnorm=true"


def test_every_setting_changed_by_hand_names_the_run_and_its_command():
    config = experiments.default_config("rts-mnist", "st-cnn-aff", 8)
    assert config.recipe == "" and config.name == "rts-mnist_st-cnn-aff_e1_s0", "quick-mode limits name nothing"
    assert replace(config, train_limit=1000).name == "rts-mnist_st-cnn-aff_e1_s0_train_limit=1000", \
        "a limit set by hand names the run, so it never shares the whole run's checkpoint"
    changed = replace(config, window=28, amp=True, lr=0.001, max_grad_norm=None, augment=False)
    assert changed.changes == {"lr": 0.001, "max_grad_norm": None, "augment": False, "window": 28, "amp": True}
    assert changed.name == ("rts-mnist_st-cnn-aff_e1_s0_lr=0.001_max_grad_norm=none_augment=false_window=28_amp=true")
    assert changed.command().endswith("--seed 0 --set lr=0.001 --set max_grad_norm=none --set augment=false "
                                      "--set window=28 --set amp=true")
    # what a variant sets is part of its recipe; only settings beyond it name the run
    variant = experiments.default_config("rts-mnist", "st-cnn-aff", 8, variant="window-28")
    assert replace(variant, amp=True).recipe == "window-28_amp=true"
    assert replace(config, **dict(map(experiments.parse_setting, changed.command().split(" --set ")[1:]))) == changed, \
        "the command's settings read back to the same run"


def test_in_full_mode_any_limit_names_the_run(monkeypatch):
    monkeypatch.setenv("STN_COURSE_QUICK", "0")
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
        experiments.default_config("svhn", "cnn", 1)
    with pytest.raises(ValueError, match="unknown model"):
        experiments.default_config("mnist", "vgg", 1)


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
    experiment = experiments.run_experiment(experiments.default_config("cifar10", "cifar-net-b", 50), save=False)
    assert experiment.model.transformer.last_theta.shape[1] == 6
    assert experiment.history.epochs == 1


@requires_cifar_folder
@pytest.mark.parametrize("model", ["cifar-st-resnet", "cifar-resnet"])
def test_strong_cifar_models_train_in_channels_last(model):
    experiment = experiments.run_experiment(experiments.default_config("cifar10", model, 14), save=False)
    images, _ = next(iter(experiment.train_loader))
    assert images.is_contiguous(memory_format=torch.channels_last)
    assert experiment.history.epochs == 1 and 0 <= experiment.history.test_accuracy[0] <= 1
    assert (experiment.model.transformer is not None) == (model == "cifar-st-resnet")


def test_command_line_rejects_bad_arguments(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--dataset", "imagenet"])
    assert "invalid choice" in capsys.readouterr().err


def _record(dataset, model, accuracy, finished_at="2026-11-22T01:00:00+0000", variant="", **changes):
    config = replace(experiments.recipe_config(dataset, model, 8, variant=variant), **changes)
    return {"name": config.name, "config": asdict(config),
            "test_accuracy": accuracy, "test_error_percent": round(100 * (1 - accuracy), 3),
            "epochs": 8, "seconds_total": 600.0, "finished_at": finished_at}


def test_table1_puts_each_result_in_its_cell_beside_the_paper():
    records = [_record("rts-mnist", "st-cnn-aff", 0.9, "2026-11-22T01:00:00+0000"),
               _record("rts-mnist", "st-cnn-aff", 0.99, "2026-11-22T02:00:00+0000"),
               _record("rot-mnist", "cnn", 0.985)]
    variant = _record("rts-mnist", "st-cnn-aff", 0.999, "2026-11-22T03:00:00+0000", variant="full-localisation-lr")
    table = experiments.distorted_mnist_table(records + [variant]).splitlines()
    assert table[0] == "| model | R | RTS | P | E | TC |"
    cnn = next(line for line in table if line.startswith("| cnn |")).split(" | ")
    aff = next(line for line in table if line.startswith("| st-cnn-aff |")).split(" | ")
    assert cnn[1] == "**1.50** (8 ep, 10 min) / 1.2" and cnn[2] == "— / 0.8"
    assert aff[2] == "**1.00** (8 ep, 10 min) / 0.5", "the latest run of the default recipe is shown"
    full_rate = next(line for line in table if line.startswith("| st-cnn-aff (full-localisation-lr) |")).split(" | ")
    assert full_rate[2] == "**0.10** (8 ep, 10 min) / 0.5" and full_rate[1] == "— / 0.7", \
        "a variant's runs get a row of their own, beside the paper's figures for the model"


def test_table1_keeps_runs_with_settings_changed_by_hand_apart(monkeypatch):
    by_hand = _record("rts-mnist", "st-cnn-aff", 0.999, "2026-11-22T03:00:00+0000", variant="window-28", amp=True)
    monkeypatch.setattr(experiments, "TABLE1_ROWS", [("st-cnn-aff", "", {}), ("st-cnn-aff", "window-28", {"amp": True})])
    table = experiments.distorted_mnist_table([_record("rts-mnist", "st-cnn-aff", 0.99), by_hand]).splitlines()
    assert table[2].startswith("| st-cnn-aff | — / 0.7 | **1.00** (8 ep, 10 min) / 0.5 |"), \
        "a later run with a setting changed by hand does not replace the default recipe's"
    assert table[3].startswith("| st-cnn-aff (window-28, amp=true) | — / 0.7 | **0.10** (8 ep, 10 min) / 0.5 |")


def test_table1_finds_a_row_whatever_the_order_of_its_settings(monkeypatch):
    run = _record("rts-mnist", "st-cnn-aff", 0.999, variant="window-28", channels_last=True, amp=True)
    monkeypatch.setattr(experiments, "TABLE1_ROWS", [("st-cnn-aff", "window-28", {"amp": True, "channels_last": True})])
    table = experiments.distorted_mnist_table([run]).splitlines()
    assert table[2].startswith("| st-cnn-aff (window-28, channels_last=true, amp=true) | — / 0.7 "
                               "| **0.10** (8 ep, 10 min) / 0.5 |"), "the row is labelled as the run's name spells it"


def test_settings_tables_pair_each_run_with_its_recipe_without_those_settings():
    fp32 = {**_record("rot-mnist", "st-cnn-aff", 0.99, variant="full-localisation-lr"), "seconds_per_epoch": [50, 40, 60]}
    other = {**_record("rot-mnist", "cnn", 0.98), "seconds_per_epoch": [10]}
    amp = {**_record("rot-mnist", "st-cnn-aff", 0.995, variant="full-localisation-lr", amp=True),
           "seconds_per_epoch": [30, 20, 25, 25]}
    both = {**_record("rot-mnist", "st-cnn-aff", 0.996, variant="full-localisation-lr", amp=True, channels_last=True),
            "seconds_per_epoch": [20]}
    lonely = {**_record("proj-mnist", "st-cnn-aff", 0.99, amp=True), "seconds_per_epoch": [20]}
    lines = experiments.speed_table([fp32, other, amp, both, lonely]).splitlines()
    assert lines[2:] == [
        "| rot-mnist | st-cnn-aff | full-localisation-lr | amp=true | 50 → 25 | **2.00x** "
        "| 1.00% (8 ep) → 0.50% (8 ep) |",
        "| rot-mnist | st-cnn-aff | full-localisation-lr | channels_last=true, amp=true | 50 → 20 | **2.50x** "
        "| 1.00% (8 ep) → 0.40% (8 ep) |"], "each beside the same recipe without speed settings; a run without one is left out"
    dropout = {**_record("rot-mnist", "st-cnn-aff", 0.993, variant="full-localisation-lr", amp=True, channels_last=True,
                         dropout=0.5), "seconds_per_epoch": [25]}
    smoothed = {**_record("rot-mnist", "st-cnn-aff", 0.997, variant="full-localisation-lr", amp=True,
                          channels_last=True, label_smoothing=0.1), "seconds_per_epoch": [20]}
    lines = experiments.regularisation_table([fp32, amp, both, dropout, smoothed]).splitlines()
    assert lines == [
        "| dataset | model | recipe | regularisation | test error without → with |", "|---|---|---|---|---|",
        "| rot-mnist | st-cnn-aff | full-localisation-lr_channels_last=true_amp=true | dropout=0.5 "
        "| 0.40% (8 ep) → 0.70% (8 ep) |",
        "| rot-mnist | st-cnn-aff | full-localisation-lr_channels_last=true_amp=true | label_smoothing=0.1 "
        "| 0.40% (8 ep) → 0.30% (8 ep) |"], \
        "each beside the same recipe, speed settings included, without dropout or label smoothing; errors only"
    assert "dropout" not in experiments.speed_table([fp32, amp, both, dropout]), "no speed-only base for the dropout run"


def test_tables_compare_recipes_at_seed_0_and_the_seed_table_sets_seeds_side_by_side():
    seed0 = _record("rts-mnist", "st-cnn-aff", 0.9934, variant="window-28")
    seed1 = _record("rts-mnist", "st-cnn-aff", 0.9924, "2026-11-22T02:00:00+0000", variant="window-28", seed=1)
    lonely = _record("rot-mnist", "cnn", 0.985)
    assert experiments.latest_results([seed0, seed1])[("rts-mnist", "st-cnn-aff", "window-28")] is seed0, \
        "a later run with another seed does not replace the seed-0 run in the tables"
    assert experiments.latest_results([seed0, seed1], seed=1)[("rts-mnist", "st-cnn-aff", "window-28")] is seed1
    lines = experiments.seed_table([seed1, lonely, seed0]).splitlines()
    assert lines[2:] == ["| rts-mnist | st-cnn-aff | window-28 | 8 | 0.66% (seed 0), 0.76% (seed 1) | 0.71% | 0.10 points |"]


def test_errors_table_reads_each_error_analysis(tmp_path):
    record = {"name": "errors_proj-mnist_cnn_e8_s0", "run": "proj-mnist_cnn_e8_s0", "weights": "trained",
              "test_samples": 10000,
              "errors": 150, "error_percent": 1.5, "images_touching_edge": 2500, "errors_touching_edge": 90,
              "error_percent_touching_edge": 3.6, "error_percent_inside": 0.8,
              "confusions": [{"true": 2, "predicted": 7, "count": 8}, {"true": 3, "predicted": 5, "count": 7},
                             {"true": 7, "predicted": 2, "count": 6}, {"true": 1, "predicted": 7, "count": 5}]}
    (tmp_path / "errors_proj-mnist_cnn_e8_s0.json").write_text(json.dumps(record))
    (tmp_path / "proj-mnist_cnn_e8_s0.json").write_text(json.dumps(_record("proj-mnist", "cnn", 0.985)))
    assert experiments.load_error_results(tmp_path) == [record], "only the error analyses"
    lines = experiments.errors_table([record, {**record, "weights": "shipped float16"}]).splitlines()
    assert lines[2] == ("| `proj-mnist_cnn_e8_s0` | 1.50% (150) | 25.0% | 3.60% (90) | 0.80% (60) "
                        "| 2→7 (8), 3→5 (7), 7→2 (6) |")
    assert lines[3].startswith("| `proj-mnist_cnn_e8_s0` (shipped float16 weights) | 1.50% (150) |")


def test_results_table_lists_every_training_result(tmp_path):
    import json

    (tmp_path / "run.json").write_text(json.dumps({
        **_record("mnist", "cnn", 0.99), "name": "mnist_cnn_e5_s0", "command": "python -m stn_course train",
        "machine": {"cuda": None, "cpu_count": 2, "torch": "2.x"}}))
    (tmp_path / "sampler_benchmark.json").write_text(json.dumps({"name": "sampler_benchmark"}))
    lines = experiments.results_table(tmp_path).splitlines()
    assert len(lines) == 3 and lines[2].startswith("| `mnist_cnn_e5_s0` | 99.00% | 1.00% | 8 | 10.0 min | 2-core CPU")


def test_shipped_checkpoint_is_loaded_instead_of_training(tmp_path, monkeypatch, capsys):
    import torch

    from stn_course import experiments as ex
    from stn_course.data import BatchLoader, ImageTensors
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
    config = ex.default_config("mnist", "st-cnn-aff", 5)
    experiment, recorder = ex.record_transformer_training(config, torch.rand(2, 1, 28, 28), every=2)
    assert recorder.steps == [0, 2, 4] and experiment.history.epochs == 1
    assert not list(tmp_path.iterdir())


def test_colab_fetches_a_shipped_checkpoint_and_falls_back_to_training(tmp_path, monkeypatch):
    import sys
    import types

    import torch

    from stn_course import experiments as ex

    monkeypatch.setattr(ex, "shipped_checkpoint_dir", lambda: tmp_path)
    assert ex.fetch_shipped_checkpoint("run") is False, "outside Colab nothing is downloaded"

    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    asked = []

    def fake_download(url, dest, progress):
        asked.append(url)
        if "missing" in url:
            raise OSError("HTTP Error 404")
        torch.save({"ok": True}, dest)

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    assert ex.fetch_shipped_checkpoint("run") is True and (tmp_path / "run.pt").exists()
    assert asked[0].endswith("/raw/main/checkpoints/run.pt") and asked[0].startswith(ex.REPO_URL)
    assert ex.fetch_shipped_checkpoint("missing") is False and not (tmp_path / "missing.pt").exists()


def test_cifar10_table_shows_each_run_beside_its_reported_accuracy():
    def record(model, accuracy, **config):
        config = {"dataset": "cifar10", "model": model, "optimizer": "sgd", "lr": 0.01, **config}
        return {"name": f"cifar10_{model}", "config": config, "test_accuracy": accuracy, "parameters": 802_492,
                "epochs": 50, "seconds_total": 600.0, "command": f"python -m stn_course train --model {model}"}

    table = experiments.cifar10_table([
        record("cifar-net-b", 0.6612, momentum=0.9, variant="momentum"),
        record("cifar-st-resnet", 0.9, lr=0.2, momentum=0.9, nesterov=True, schedule="onecycle", label_smoothing=0.1),
        {**record("cnn", 0.99), "config": {"dataset": "mnist", "model": "cnn"}},
    ])
    rows = table.splitlines()[2:]
    assert len(rows) == 2
    assert ("| `cifar-net-b` (momentum) | SGD lr 0.01, momentum 0.9, crop + flip | 802,492 | 50 | **66.12%** "
            "| 65% reported | 10.0 min |") in rows[0]
    assert "momentum 0.9 (Nesterov), one-cycle, label smoothing 0.1" in rows[1] and "≥ 85% target" in rows[1]
    dropped = record("cifar-net-b", 0.65, schedule="final-drop", augment=False, variant="no-augment-drop")
    assert "| SGD lr 0.01, lr ÷ 10 from epoch 41, no augmentation |" in experiments.cifar10_table([dropped])
    # how many CPU threads a run had is part of its time (runs often shared the machine)
    on_cpu = {**record("cifar-net-b", 0.65), "machine": {"cuda": None, "torch_threads": 1}}
    on_gpu = {**record("cifar-net-b", 0.65), "machine": {"cuda": "Tesla T4", "torch_threads": 2}}
    assert "| 10.0 min (1 CPU thread) |" in experiments.cifar10_table([on_cpu])
    assert "| 10.0 min |" in experiments.cifar10_table([on_gpu])


def test_pipeline_table_states_both_ratios(tmp_path):
    def run(seconds, accuracy=0.98):
        return {"seconds": seconds, "batches": 100, "seconds_per_epoch": seconds, "test_accuracy": accuracy}

    comparison = {"runs": {"tutorial DataLoader + PIL": run(30.0), "course tensor pipeline": run(10.0)},
                  "speedup": 3.0, "num_workers": 2}
    with_data = {"tutorial DataLoader + PIL": {**run(30.0), "data_seconds_per_epoch": 20.0},
                 "course tensor pipeline": {**run(10.0), "data_seconds_per_epoch": 0.5}}
    rts = {**comparison, "dataset": "rts-mnist", "model": "tutorial-stn", "speedup": 4.5,
           "runs": with_data, "data_speedup": 40.0}
    record = {"finished_at": "2026-11-22T06:00:00+0000", "batch_size": 64, "batches_per_measurement": 300,
              "machine": {"cpu_count": 2, "processor": "x86_64", "torch": "2.14.1"},
              # the first entry is keyed as older records were: by model alone, on MNIST
              "pipeline": {"tutorial-stn": comparison, "rts-mnist/tutorial-stn": rts},
              "stn_overhead": {"runs": {"cnn": run(60.0), "st-cnn-aff": run(66.0)}, "ratio": 1.1}}
    (tmp_path / "pipeline_benchmark.json").write_text(json.dumps(record))
    table = experiments.pipeline_benchmark_table(tmp_path)
    assert "| course tensor pipeline | mnist | `tutorial-stn` | 10.0 |  | 98.00% | **3.00x** faster |" in table
    assert "| tutorial DataLoader + PIL (2 workers) | rts-mnist | `tutorial-stn` | 30.0 | 20.0 | 98.00% | |" in table
    assert ("| course tensor pipeline | rts-mnist | `tutorial-stn` | 10.0 | 0.5 | 98.00% "
            "| **4.50x** faster; 40x for the data alone |") in table
    assert "| training | rts-mnist | `st-cnn-aff` | 66.0 | | | **1.10x** the CNN's time |" in table
    assert "300 batches per measurement" in table
    record["pipeline"]["tutorial-stn"]["speedup"] = 0.8
    (tmp_path / "pipeline_benchmark.json").write_text(json.dumps(record))
    assert "| **0.80x** the speed (1.25x slower) |" in experiments.pipeline_benchmark_table(tmp_path)
    record["stn_overhead"]["rounds"] = 3
    record["stn_overhead"]["runs"]["st-cnn-aff, 28x28 window"] = run(50.0)
    record["stn_overhead"]["ratios"] = {"st-cnn-aff": {"median": 1.1, "turns": [1.2, 1.1, 1.05]},
                                        "st-cnn-aff, 28x28 window": {"median": 0.8, "turns": [0.8, 0.9, 0.7]}}
    (tmp_path / "pipeline_benchmark.json").write_text(json.dumps(record))
    table = experiments.pipeline_benchmark_table(tmp_path)
    assert "| `st-cnn-aff` | 66.0 | | | **1.10x** the CNN's time (median of 3 interleaved turns, 1.05–1.20) |" in table
    assert ("| training | rts-mnist | `st-cnn-aff`, 28x28 window | 50.0 | | | **0.80x** the CNN's time "
            "(median of 3 interleaved turns, 0.70–0.90) |") in table
    assert "no benchmark recorded" in experiments.pipeline_benchmark_table(tmp_path / "empty")
