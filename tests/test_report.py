"""The tables made from results/, each number in its cell, and the README block and RESULTS.md written from them."""
import json
from dataclasses import asdict, replace

import pytest

from stn_course import records, report
from stn_course.recipes import recipe_config
from stn_course.utils import repo_root


def _record(dataset, model, accuracy, finished_at="2026-11-22T01:00:00+0000", variant="", **changes):
    config = replace(recipe_config(dataset, model, 8, variant=variant), **changes)
    return {"name": config.name, "config": asdict(config),
            "test_accuracy": accuracy, "test_error_percent": round(100 * (1 - accuracy), 3),
            "epochs": 8, "seconds_total": 600.0, "finished_at": finished_at,
            "machine": {"cuda": None, "cpu_count": 2, "torch": "2.14.1"}}


def test_table1_puts_each_result_in_its_cell_beside_the_paper():
    records = [_record("rts-mnist", "st-cnn-aff", 0.9, "2026-11-22T01:00:00+0000"),
               _record("rts-mnist", "st-cnn-aff", 0.99, "2026-11-22T02:00:00+0000"),
               _record("rot-mnist", "cnn", 0.985)]
    variant = _record("rts-mnist", "st-cnn-aff", 0.999, "2026-11-22T03:00:00+0000", variant="full-localisation-lr")
    table = report.distorted_mnist_table(records + [variant]).splitlines()
    assert table[0] == "| model | R | RTS | P | E | TC |"
    cnn = next(line for line in table if line.startswith("| cnn |")).split(" | ")
    aff = next(line for line in table if line.startswith("| st-cnn-aff |")).split(" | ")
    assert cnn[1] == "**1.50** (8 ep, 10 min) / 1.2" and cnn[2] == "— / 0.8"
    assert aff[2] == "**1.00** (8 ep, 10 min) / 0.5", "the latest of the default recipe's longest runs is shown"
    full_rate = next(line for line in table if line.startswith("| st-cnn-aff (full-localisation-lr) |")).split(" | ")
    assert full_rate[2] == "**0.10** (8 ep, 10 min) / 0.5" and full_rate[1] == "— / 0.7", \
        "a variant's runs get a row of their own, beside the paper's figures for the model"


def test_table1_keeps_runs_with_settings_changed_by_hand_apart(monkeypatch):
    by_hand = _record("rts-mnist", "st-cnn-aff", 0.999, "2026-11-22T03:00:00+0000", variant="window-28", amp=True)
    monkeypatch.setattr(report, "TABLE1_ROWS", [("st-cnn-aff", "", {}), ("st-cnn-aff", "window-28", {"amp": True})])
    table = report.distorted_mnist_table([_record("rts-mnist", "st-cnn-aff", 0.99), by_hand]).splitlines()
    assert table[2].startswith("| st-cnn-aff | — / 0.7 | **1.00** (8 ep, 10 min) / 0.5 |"), \
        "a later run with a setting changed by hand does not replace the default recipe's"
    assert table[3].startswith("| st-cnn-aff (window-28, amp=true) | — / 0.7 | **0.10** (8 ep, 10 min) / 0.5 |")


def test_table1_finds_a_row_whatever_the_order_of_its_settings(monkeypatch):
    run = _record("rts-mnist", "st-cnn-aff", 0.999, variant="window-28", channels_last=True, amp=True)
    monkeypatch.setattr(report, "TABLE1_ROWS", [("st-cnn-aff", "window-28", {"amp": True, "channels_last": True})])
    table = report.distorted_mnist_table([run]).splitlines()
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
    lines = report.speed_table([fp32, other, amp, both, lonely]).splitlines()
    assert lines[2:] == [
        "| rot-mnist | st-cnn-aff | full-localisation-lr | amp=true | 50 → 25 | **2.00x** "
        "| 1.00% (8 ep) → 0.50% (8 ep) |",
        "| rot-mnist | st-cnn-aff | full-localisation-lr | channels_last=true, amp=true | 50 → 20 | **2.50x** "
        "| 1.00% (8 ep) → 0.40% (8 ep) |"], "each beside the same recipe without speed settings; a run without one is left out"
    dropout = {**_record("rot-mnist", "st-cnn-aff", 0.993, variant="full-localisation-lr", amp=True, channels_last=True,
                         dropout=0.5), "seconds_per_epoch": [25]}
    smoothed = {**_record("rot-mnist", "st-cnn-aff", 0.997, variant="full-localisation-lr", amp=True,
                          channels_last=True, label_smoothing=0.1), "seconds_per_epoch": [20]}
    lines = report.regularisation_table([fp32, amp, both, dropout, smoothed]).splitlines()
    assert lines == [
        "| dataset | model | recipe | regularisation | test error without → with |", "|---|---|---|---|---|",
        "| rot-mnist | st-cnn-aff | full-localisation-lr_channels_last=true_amp=true | dropout=0.5 "
        "| 0.40% (8 ep) → 0.70% (8 ep) |",
        "| rot-mnist | st-cnn-aff | full-localisation-lr_channels_last=true_amp=true | label_smoothing=0.1 "
        "| 0.40% (8 ep) → 0.30% (8 ep) |"], \
        "each beside the same recipe, speed settings included, without dropout or label smoothing; errors only"
    assert "dropout" not in report.speed_table([fp32, amp, both, dropout]), "no speed-only base for the dropout run"


def test_tables_compare_recipes_at_seed_0_and_the_seed_table_sets_seeds_side_by_side():
    seed0 = _record("rts-mnist", "st-cnn-aff", 0.9934, variant="window-28")
    seed1 = _record("rts-mnist", "st-cnn-aff", 0.9924, "2026-11-22T02:00:00+0000", variant="window-28", seed=1)
    lonely = _record("rot-mnist", "cnn", 0.985)
    assert report.longest_runs([seed0, seed1])[("rts-mnist", "st-cnn-aff", "window-28")] is seed0, \
        "a later run with another seed does not replace the seed-0 run in the tables"
    assert report.longest_runs([seed0, seed1], seed=1)[("rts-mnist", "st-cnn-aff", "window-28")] is seed1
    lines = report.seed_table([seed1, lonely, seed0]).splitlines()
    assert lines[2:] == ["| rts-mnist | st-cnn-aff | window-28 | 8 | 0.66% (seed 0), 0.76% (seed 1) | 0.71% | 0.10 points |"]


def test_a_shorter_later_run_does_not_replace_a_longer_one_and_only_table1_models_are_timed():
    longer = {**_record("rts-mnist", "cnn", 0.9869, "2026-11-24T10:00:00+0000", amp=True), "epochs": 24}
    shorter = {**_record("rts-mnist", "cnn", 0.9844, "2026-12-06T03:00:00+0000", amp=True), "epochs": 16}
    rerun = {**longer, "finished_at": "2026-12-07T00:00:00+0000", "test_error_percent": 1.2}
    assert report.longest_runs([longer, shorter])[("rts-mnist", "cnn", "amp=true")] is longer, \
        "a run at a smaller budget (a comparison) does not replace the recipe's longer run"
    assert report.longest_runs([longer, shorter, rerun])[("rts-mnist", "cnn", "amp=true")] is rerun, "latest of equals"
    vit_fp32 = {**_record("rts-mnist", "vit", 0.9649), "seconds_per_epoch": [244]}
    vit_amp = {**_record("rts-mnist", "vit", 0.9806, amp=True), "seconds_per_epoch": [50]}
    cnn_fp32 = {**_record("rts-mnist", "cnn", 0.98), "seconds_per_epoch": [79]}
    table = report.speed_table([vit_fp32, vit_amp, cnn_fp32, {**longer, "seconds_per_epoch": [46]}])
    assert "| vit |" not in table and "| cnn |" in table, "the settings tables time Table 1's models only"
    one_thread, two_threads = {"torch_threads": 1}, {"torch_threads": 2}
    table = report.speed_table([{**cnn_fp32, "machine": two_threads},
                                {**longer, "seconds_per_epoch": [46], "machine": one_thread}])
    assert "| cnn |" not in table, "seconds per epoch with 2 threads against 1 measure the threads, not the settings"


def test_errors_table_reads_each_error_analysis(tmp_path):
    record = {"name": "errors_proj-mnist_cnn_e8_s0", "run": "proj-mnist_cnn_e8_s0", "weights": "trained",
              "test_samples": 10000,
              "errors": 150, "error_percent": 1.5, "images_touching_edge": 2500, "errors_touching_edge": 90,
              "error_percent_touching_edge": 3.6, "error_percent_inside": 0.8,
              "confusions": [{"true": 2, "predicted": 7, "count": 8}, {"true": 3, "predicted": 5, "count": 7},
                             {"true": 7, "predicted": 2, "count": 6}, {"true": 1, "predicted": 7, "count": 5}]}
    (tmp_path / "errors_proj-mnist_cnn_e8_s0.json").write_text(json.dumps(record))
    (tmp_path / "proj-mnist_cnn_e8_s0.json").write_text(json.dumps(_record("proj-mnist", "cnn", 0.985)))
    assert records.load_error_results(tmp_path) == [record], "only the error analyses"
    lines = report.errors_table([record, {**record, "weights": "shipped float16"}]).splitlines()
    assert lines[2] == ("| `proj-mnist_cnn_e8_s0` | 1.50% (150) | 25.0% | 3.60% (90) | 0.80% (60) "
                        "| 2→7 (8), 3→5 (7), 7→2 (6) |")
    assert lines[3].startswith("| `proj-mnist_cnn_e8_s0` (shipped float16 weights) | 1.50% (150) |")


def test_results_table_lists_every_training_result(tmp_path):
    (tmp_path / "run.json").write_text(json.dumps({
        **_record("mnist", "cnn", 0.99), "name": "mnist_cnn_e5_s0", "command": "python -m stn_course train",
        "machine": {"cuda": None, "cpu_count": 2, "torch": "2.x"}}))
    (tmp_path / "sampler_benchmark.json").write_text(json.dumps({"name": "sampler_benchmark"}))
    lines = report.results_table(tmp_path).splitlines()
    assert len(lines) == 3 and lines[2].startswith("| `mnist_cnn_e5_s0` | 99.00% | 1.00% | 8 | 10.0 min | 2-core CPU")


def test_cifar10_table_shows_each_run_beside_its_reported_accuracy():
    def record(model, accuracy, **config):
        config = {"dataset": "cifar10", "model": model, "optimizer": "sgd", "lr": 0.01, **config}
        return {"name": f"cifar10_{model}", "config": config, "test_accuracy": accuracy, "parameters": 802_492,
                "epochs": 50, "seconds_total": 600.0, "command": f"python -m stn_course train --model {model}"}

    table = report.cifar10_table([
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
    assert "| SGD lr 0.01, lr ÷ 10 from epoch 41, no augmentation |" in report.cifar10_table([dropped])
    # how many CPU threads a run had is part of its time (runs often shared the machine)
    on_cpu = {**record("cifar-net-b", 0.65), "machine": {"cuda": None, "torch_threads": 1}}
    on_gpu = {**record("cifar-net-b", 0.65), "machine": {"cuda": "Tesla T4", "torch_threads": 2}}
    assert "| 10.0 min (1 CPU thread) |" in report.cifar10_table([on_cpu])
    assert "| 10.0 min |" in report.cifar10_table([on_gpu])


def test_pipeline_table_states_both_ratios(tmp_path):
    def run(seconds, data_seconds, accuracy=0.98):
        return {"seconds": seconds, "batches": 100, "seconds_per_epoch": seconds,
                "data_seconds_per_epoch": data_seconds, "test_accuracy": accuracy}

    runs = {"tutorial DataLoader + PIL": run(30.0, 20.0), "course tensor pipeline": run(10.0, 0.5)}
    record = {"finished_at": "2026-11-22T06:00:00+0000", "batch_size": 64, "batches_per_measurement": 300,
              "machine": {"cpu_count": 2, "processor": "x86_64", "torch": "2.14.1"},
              "pipeline": {"rts-mnist/tutorial-stn": {"dataset": "rts-mnist", "model": "tutorial-stn", "runs": runs,
                                                      "speedup": 4.5, "data_speedup": 40.0, "num_workers": 2}},
              "stn_overhead": {"runs": {"cnn": run(60.0, 1.0), "st-cnn-aff": run(66.0, 1.0),
                                        "st-cnn-aff, 28x28 window": run(50.0, 1.0)},
                               "ratios": {"st-cnn-aff": {"median": 1.1, "turns": [1.2, 1.1, 1.05]},
                                          "st-cnn-aff, 28x28 window": {"median": 0.8, "turns": [0.8, 0.9, 0.7]}},
                               "ratio": 1.1, "rounds": 3}}
    (tmp_path / "pipeline_benchmark.json").write_text(json.dumps(record))
    table = report.pipeline_benchmark_table(tmp_path)
    assert "| tutorial DataLoader + PIL (2 workers) | rts-mnist | `tutorial-stn` | 30.0 | 20.0 | 98.00% | |" in table
    assert ("| course tensor pipeline | rts-mnist | `tutorial-stn` | 10.0 | 0.5 | 98.00% "
            "| **4.50x** faster; 40x for the data alone |") in table
    assert "| training | rts-mnist | `cnn` | 60.0 | | | |" in table
    assert ("| training | rts-mnist | `st-cnn-aff` | 66.0 | | | **1.10x** the CNN's time "
            "(median of 3 interleaved turns, 1.05–1.20) |") in table
    assert ("| training | rts-mnist | `st-cnn-aff`, 28x28 window | 50.0 | | | **0.80x** the CNN's time "
            "(median of 3 interleaved turns, 0.70–0.90) |") in table
    assert "300 batches per measurement" in table
    record["pipeline"]["rts-mnist/tutorial-stn"]["speedup"] = 0.8
    record["batches_per_measurement"] = None
    (tmp_path / "pipeline_benchmark.json").write_text(json.dumps(record))
    table = report.pipeline_benchmark_table(tmp_path)
    assert "| **0.80x** the speed (1.25x slower); 40x for the data alone |" in table
    assert "(whole epochs)" in table
    assert "no benchmark recorded" in report.pipeline_benchmark_table(tmp_path / "empty")


def test_every_stored_pipeline_record_has_the_fields_the_table_reads():
    # the table reads only the current record format: a stored record of an older one would fail here
    record = json.loads((repo_root() / "results" / "pipeline_benchmark.json").read_text())
    for comparison in record["pipeline"].values():
        assert {"dataset", "model", "data_speedup"} <= comparison.keys()
        assert all("data_seconds_per_epoch" in run for run in comparison["runs"].values())
    assert all(ratio["turns"] for ratio in record["stn_overhead"]["ratios"].values())
    assert "| training | rts-mnist | `cnn` |" in report.pipeline_benchmark_table()


def test_headline_table_sets_the_best_run_of_each_cell_beside_the_reference():
    records = [_record("rts-mnist", "st-cnn-aff", 0.99), _record("rts-mnist", "cnn", 0.995),
               _record("rts-mnist", "st-cnn-aff", 0.996, variant="window-28"),
               _record("rts-mnist", "st-series", 0.999),  # not a model of the paper's Table 1
               _record("rts-mnist", "st-cnn-aff", 0.998, variant="window-28", seed=1),  # seed 0 only
               {**_record("cifar10", "cifar-net-b", 0.6612), "name": "net-b"}]
    rows = {line.split(" | ")[0]: line for line in report.headline_table(records).splitlines()[2:]}
    assert rows["| rts-mnist (RTS)"] == ("| rts-mnist (RTS) | test error | 0.5% (paper, st-cnn-aff, st-cnn-tps) "
                                         "| **0.40%** | `rts-mnist_st-cnn-aff_e8_s0_window-28` |")
    assert rows["| MNIST"] == "| MNIST | test error | — | — | not run yet |"
    assert rows["| CIFAR-10, `cifar-net-b`"] == ("| CIFAR-10, `cifar-net-b` | test accuracy | 65% (course material) "
                                                "| **66.12%** | `net-b` |")
    assert "≥ 85% (the course's target) | — |" in rows["| CIFAR-10, `cifar-st-resnet`"]


def test_update_writes_the_readme_blocks_and_the_results_page(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "README_BLOCKS", {"headline": lambda: "| new |"})
    monkeypatch.setattr(report, "RESULTS_SECTIONS", [("Heading", "What it shows.", lambda: "| table |")])
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- headline:start -->\n| old |\n<!-- headline:end -->\nend\n")
    report.update_readme_results(readme, tmp_path / "RESULTS.md")
    assert readme.read_text() == "intro\n<!-- headline:start -->\n| new |\n<!-- headline:end -->\nend\n"
    assert (tmp_path / "RESULTS.md").read_text().endswith("## Heading\n\nWhat it shows.\n\n| table |\n")
    readme.write_text("no blocks\n")
    with pytest.raises(ValueError, match="headline"):
        report.update_readme_results(readme, tmp_path / "RESULTS.md")


# --- a bad results file is named and left out ----------------------------------------------

def test_the_traffic_sign_table_names_brightness_and_contrast_jitter_where_a_run_used_it():
    plain = {**_record("gtsrb", "gtsrb-bn-st-cnn", 0.99), "command": "plain"}
    jittered = {**_record("gtsrb", "gtsrb-bn-st-cnn", 0.995, brightness_contrast=0.3), "command": "jittered"}
    rows = {line.split(" | ")[-1]: line for line in report.gtsrb_table([plain, jittered]).splitlines()[-2:]}
    assert "shift ±1.6 px) | 8 | 2-core CPU, 10 min |" in rows["`plain` |"]
    assert "shift ±1.6 px), brightness and contrast ×(1 ± 0.3) | 8 |" in rows["`jittered` |"]


def test_the_round_2_table_shows_each_seed_and_the_images_right_over_both():
    base = {"label_smoothing": 0.1, "brightness_contrast": 0.5}
    runs = {}
    for label, changes, accuracies in [("first", {}, (0.99, 0.995)), ("equalised", {"equalize": True}, (0.995, 0.995))]:
        for seed, accuracy in enumerate(accuracies):
            record = _record("gtsrb-val", "gtsrb-bn-st-cnn", accuracy, **base, **changes, seed=seed)
            record.update(test_correct=round(1000 * accuracy), test_samples=1000)
            runs[label, seed] = record
    selection = {"base": {"epochs": 8}, "rule": "x"}
    assert report.round_2_table(selection, []).startswith("Round 2 not recorded yet")
    selection["round_2"] = {"rule": "the most images right", "seeds": [0, 1], "chosen": "equalised", "candidates": [
        {"label": "first", "changes": base, "runs": [runs["first", 0]["name"], runs["first", 1]["name"]]},
        {"label": "equalised", "changes": {**base, "equalize": True},
         "runs": [runs["equalised", 0]["name"], runs["equalised", 1]["name"]]},
        {"label": "longer", "changes": {**base, "epochs": 16}, "runs": ["a", "b"]}]}
    table = report.round_2_table(selection, list(runs.values())).splitlines()
    assert table[0] == "| candidate | change from round 1's choice | epochs | seed 0 | seed 1 | held-out images right |"
    assert table[2] == "| first | — | 8 | 99.00% | 99.50% | 1985 / 2000 |"
    assert table[3] == "| **equalised** (chosen) | equalize=true | 8 | 99.50% | 99.50% | **1990 / 2000** |"
    assert table[4] == "| longer | epochs=16 | 16 | — | — | — |"
    assert table[-1] == "Chosen: the most images right."


def test_the_selection_table_shows_each_candidates_validation_run_and_the_choice():
    base = {"label_smoothing": 0.1, "amp": True}
    runs = {label: _record("gtsrb-val", model, accuracy, **base, **changes) for label, model, accuracy, changes in [
        ("base", "gtsrb-bn-st-cnn", 0.99, {}), ("cnn", "gtsrb-bn-cnn", 0.985, {}),
        ("faster", "gtsrb-bn-st-cnn", 0.995, {"lr": 0.004})]}
    test_run = _record("gtsrb", "gtsrb-bn-st-cnn", 0.5, **base)  # a test number of the same name is never shown
    test_run["name"] = runs["base"]["name"]
    selection = {"base": {"model": "gtsrb-bn-st-cnn", "epochs": 8, "settings": base}, "rule": "the best",
                 "chosen": runs["faster"]["name"],
                 "candidates": [{"label": "base", "model": "gtsrb-bn-st-cnn", "changes": {}, "run": runs["base"]["name"]},
                                {"label": "cnn", "model": "gtsrb-bn-cnn", "changes": {}, "run": runs["cnn"]["name"]},
                                {"label": "faster", "model": "gtsrb-bn-st-cnn", "changes": {"lr": 0.004},
                                 "run": runs["faster"]["name"]},
                                {"label": "longer", "model": "gtsrb-bn-st-cnn", "changes": {"epochs": 12},
                                 "run": "not run yet"}]}
    table = report.selection_table(selection, [test_run, *runs.values()]).splitlines()
    assert table[0] == "| candidate | change from the base | model | epochs | validation accuracy |"
    assert table[2] == "| base | — | `gtsrb-bn-st-cnn` | 8 | 99.00% |"
    assert table[3] == "| cnn | — | `gtsrb-bn-cnn` | 8 | 98.50% |"
    assert table[4] == "| **faster** (chosen) | lr=0.004 | `gtsrb-bn-st-cnn` | 8 | **99.50%** |"
    assert table[5] == "| longer | epochs=12 | `gtsrb-bn-st-cnn` | 12 | — |"
    assert table[7] == "Base: `gtsrb-bn-st-cnn`, 8 epochs, label_smoothing=0.1, amp=true. Chosen: the best."


