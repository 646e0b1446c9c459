"""The benchmark scripts' measuring functions, on a few batches."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from stn_course.utils import data_root

from .markers import requires_mnist


@pytest.fixture(scope="module")
def pipeline_benchmark():
    path = Path(__file__).parents[1] / "benchmarks" / "pipeline.py"
    spec = importlib.util.spec_from_file_location("pipeline_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@requires_mnist
def test_stn_overhead_interleaves_the_models_and_reports_the_median_turn(pipeline_benchmark, capsys):
    overhead = pipeline_benchmark.stn_overhead(limit=6, rounds=3)
    assert set(overhead["ratios"]) == {"st-cnn-aff", "st-cnn-aff, 28x28 window"} and overhead["rounds"] == 3
    for ratio in overhead["ratios"].values():
        assert len(ratio["turns"]) == 3 and ratio["median"] == pytest.approx(sorted(ratio["turns"])[1], abs=1e-3)
    assert overhead["ratio"] == overhead["ratios"]["st-cnn-aff"]["median"]
    assert {run["batches"] for run in overhead["runs"].values()} == {6}
    assert "over 3 rounds" in capsys.readouterr().out


def test_endless_goes_on_past_the_end_of_an_epoch(pipeline_benchmark):
    batches = pipeline_benchmark.endless([1, 2])
    assert [next(batches) for _ in range(5)] == [1, 2, 1, 2, 1]


def test_widget_benchmark_times_each_redraw():
    path = Path(__file__).parents[1] / "benchmarks" / "widgets.py"
    spec = importlib.util.spec_from_file_location("widgets_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    times = module.redraw_times(redraws=2, side=40)
    assert len(times) == 2 and all(0 < t < 60_000 for t in times)


@pytest.fixture(scope="module")
def gpu_check():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"
    spec = importlib.util.spec_from_file_location("gpu_check", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def gtsrb_selection(tmp_path, monkeypatch):
    """benchmarks/gtsrb_selection.py, its records and checkpoints in a fresh (quick-mode) output folder."""
    monkeypatch.setenv("STN_COURSE_OUTPUT", str(tmp_path))
    monkeypatch.delenv("STN_COURSE_CHECKPOINTS", raising=False)
    path = Path(__file__).parents[1] / "benchmarks" / "gtsrb_selection.py"
    spec = importlib.util.spec_from_file_location("gtsrb_selection", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "gtsrb_selection", module)  # its dataclass looks itself up there
    spec.loader.exec_module(module)
    return module


def test_the_gpu_check_stops_at_once_without_cuda(gpu_check, monkeypatch, capsys):
    module = gpu_check
    monkeypatch.setattr(module.torch.cuda, "is_available", lambda: False)
    for step in ("check_tests", "check_notebooks", "time_epochs", "save_result"):  # none may start
        monkeypatch.setattr(module, step, lambda *args, **kwargs: pytest.fail("ran without CUDA"))
    assert module.main([]) == 2
    assert capsys.readouterr().err.strip() == module.NO_CUDA


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the command on a machine without CUDA")
def test_the_gpu_check_command_fails_fast_and_clearly_without_cuda():
    import subprocess
    import sys
    import time

    root = Path(__file__).resolve().parents[1]
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "benchmarks/gpu_check.py"], cwd=root, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 2 and "needs a GPU" in done.stderr and done.stdout == ""
    assert time.perf_counter() - started < 60


def test_the_gpu_checks_runs_are_the_courses_and_its_test_summary_names_the_failures(gpu_check, monkeypatch):
    from stn_course.recipes import default_config

    for dataset, model in gpu_check.MAIN_MODELS.values():
        default_config(dataset, model, epochs=1)  # raises for a renamed dataset or model
    tail = "....F.\nFAILED tests/test_x.py::test_y - AssertionError\n1 failed, 5 passed in 3.0s\n"
    monkeypatch.setattr(gpu_check, "run_step", lambda command, env, limit: {"status": "failed (exit 1)",
                                                                            "seconds": 3.0, "output_tail": tail})
    result = gpu_check.check_tests({}, 10)
    assert result == {"status": "failed (exit 1)", "seconds": 3.0, "summary": "1 failed, 5 passed in 3.0s",
                      "failed": ["tests/test_x.py::test_y"]}


@requires_mnist
def test_clinic_runs_record_each_case_and_resume_from_their_checkpoints(tmp_path, monkeypatch, capsys):
    import json

    from stn_course.utils import repo_root

    monkeypatch.setenv("STN_COURSE_OUTPUT", str(tmp_path))  # quick mode: results and checkpoints there
    monkeypatch.delenv("STN_COURSE_CHECKPOINTS", raising=False)
    path = Path(__file__).parents[1] / "benchmarks" / "clinic_runs.py"
    spec = importlib.util.spec_from_file_location("clinic_runs", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    tracked = sorted(p.name for p in (repo_root() / "results").glob("clinic_*.json"))
    args = ["--cases", "align-corners", "integer-theta", "--steps", "4", "--train-limit", "128",
            "--test-limit", "64", "--log-every", "2", "--checkpoint-every", "2"]
    written = module.main(args)
    assert [p.name for p in written] == ["clinic_align-corners.json", "clinic_integer-theta.json"]
    assert all(p.parent == tmp_path / "results" for p in written)
    record = json.loads(written[0].read_text())
    assert record["command"] == "python benchmarks/clinic_runs.py " + " ".join(args)
    assert record["machine"]["cpu_count"] >= 1 and record["quick_mode"] is True and record["finished_at"]
    assert set(record["runs"]) == {"broken", "fixed"} and record["settings"]["broken"]["align_corners"] == [False, True]
    broken, fixed = record["runs"]["broken"], record["runs"]["fixed"]
    assert [entry["step"] for entry in broken["log"]] == [2, 4] and broken["steps"] == 4
    mismatch = "align_corners is False in affine_grid but True in grid_sample"
    assert any(mismatch in verdict for verdict in broken["health"]["verdicts"])
    assert not any("align_corners" in v for v in fixed["health"]["verdicts"])
    assert len(broken["theta_first_test_images"]) == 16 and 0 <= broken["test_accuracy"] <= 1
    integer = json.loads(written[1].read_text())["runs"]["broken"]["health"]["verdicts"]
    assert integer[0].startswith("θ holds only whole numbers")
    assert (tmp_path / "checkpoints" / "clinic_align-corners_broken.pt").exists()
    # the same command again resumes each finished run from its checkpoint: nothing retrained, same log
    capsys.readouterr()
    again = json.loads(module.main(["--cases", "align-corners", *args[3:]])[0].read_text())
    assert "resuming at step 4" in capsys.readouterr().out
    assert again["runs"]["broken"]["log"] == broken["log"]
    assert sorted(p.name for p in (repo_root() / "results").glob("clinic_*.json")) == tracked


def _never(command):
    raise AssertionError(f"nothing should run: {command}")


def test_gtsrb_selection_dry_run_prints_every_validation_command_and_runs_nothing(gtsrb_selection, capsys,
                                                                                   monkeypatch):
    monkeypatch.delenv("STN_COURSE_QUICK", raising=False)  # the full runs' commands (a dry run writes nothing)
    assert len(gtsrb_selection.CANDIDATES) <= 14, "at most 15 candidates, the combined one included"
    assert gtsrb_selection.main(["--dry-run"], runner=_never) == 0
    lines = capsys.readouterr().out.splitlines()
    commands = [line[9:] for line in lines if line.startswith(("to run   python -m stn_course train ",
                                                                "done     python -m stn_course train "))]
    commands = commands[:len(gtsrb_selection.CANDIDATES)]  # the candidates first (then the combined and final runs)
    assert len(commands) == len(gtsrb_selection.CANDIDATES) == len(set(commands))
    for line in lines[1:1 + len(commands)]:  # done exactly when its record is in results/ (the runs go on)
        name = gtsrb_selection.candidate_config(gtsrb_selection.CANDIDATES[lines.index(line) - 1]).name
        assert line.startswith("done" if gtsrb_selection.recorded(name) else "to run"), line
    assert all("--dataset gtsrb-val " in line and line.endswith(" --record") for line in commands)
    assert "--model gtsrb-bn-cnn " in commands[1] and all("--model gtsrb-bn-st-cnn " in c for c in commands[2:])
    assert "--epochs 10 " in commands[0] and "--set amp=true" in commands[0] and "--ship" not in " ".join(commands)
    if any(not gtsrb_selection.recorded(gtsrb_selection.candidate_config(c).name) for c in gtsrb_selection.CANDIDATES):
        assert lines[-1].startswith("The choice follows the validation runs; then the final runs")
    else:  # the course's selection has run: the choice, round 2, then the final runs and their jitter tests
        assert any(line.startswith("Chosen: ") for line in lines)
        round_2 = [gtsrb_selection.candidate_config(c, seed).command() for c in gtsrb_selection.ROUND_2_CANDIDATES
                   for seed in gtsrb_selection.ROUND_2_SEEDS]
        start = lines.index("Round 2 on gtsrb-val, seeds 0, 1:")
        assert [line[9:].removesuffix(" --record") for line in lines[start + 1:start + 1 + len(round_2)]] == round_2
        if gtsrb_selection.choose_round_2(gtsrb_selection.ROUND_2_CANDIDATES) is None:
            assert lines[-1].startswith("to run   python -m stn_course train --dataset gtsrb-val ")
        else:
            assert any("train --dataset gtsrb --model gtsrb-bn-cnn " in line for line in lines)
            assert lines[-1].split()[-1] == "--record" and " jitter --dataset gtsrb " in lines[-1]


def _validation_record(selection, candidate, accuracy, seed=0):
    """A synthetic results record of ``candidate``'s validation run (of 1000 images), where --record writes it."""
    from dataclasses import asdict

    from stn_course.utils import results_dir

    config = selection.candidate_config(candidate, seed)
    record = {"name": config.name, "config": asdict(config), "test_accuracy": accuracy, "epochs": config.epochs,
              "test_correct": round(1000 * accuracy), "seconds_total": 60.0}
    (results_dir(record=True) / f"{config.name}.json").write_text(json.dumps(record))


def test_gtsrb_selection_chooses_from_validation_records_and_combines_the_changes_that_won(gtsrb_selection,
                                                                                            monkeypatch):
    Candidate = gtsrb_selection.Candidate
    monkeypatch.setattr(gtsrb_selection, "BASE_SETTINGS", {"label_smoothing": 0.1})
    candidates = (Candidate("base"), Candidate("cnn", model="gtsrb-bn-cnn"), Candidate("lr", {"lr": 0.004}),
                  Candidate("no smoothing", {"label_smoothing": 0.0}), Candidate("smoothing 0.2", {"label_smoothing": 0.2}),
                  Candidate("longer", {"epochs": 14}))
    monkeypatch.setattr(gtsrb_selection, "CANDIDATES", candidates)
    assert gtsrb_selection.choose(candidates) is None and gtsrb_selection.combined_candidate() is None
    for candidate, accuracy in zip(candidates, (0.990, 0.999, 0.993, 0.991, 0.992, 0.989)):
        _validation_record(gtsrb_selection, candidate, accuracy)
    assert gtsrb_selection.choose(candidates).label == "lr", "the CNN's record does not compete"
    combined = gtsrb_selection.combined_candidate()
    assert combined.changes == {"lr": 0.004, "label_smoothing": 0.2}, "the better of two changes to one setting"
    assert combined.label == "combined: lr, smoothing 0.2"
    assert gtsrb_selection.choose([*candidates, combined]) is None, "chosen once the combined candidate has run"
    _validation_record(gtsrb_selection, combined, 0.993)
    assert gtsrb_selection.choose([*candidates, combined]).label == "lr", "a tie goes to the earlier candidate"
    finals = gtsrb_selection.final_configs(combined)
    assert [(c.dataset, c.model, c.seed, c.lr, c.label_smoothing) for c in finals[:2]] == [
        ("gtsrb", "gtsrb-bn-st-cnn", 0, 0.004, 0.2), ("gtsrb", "gtsrb-bn-cnn", 0, 0.004, 0.2)]
    assert [c.seed for c in finals] == [0, 0, 1, 1, 2, 2]
    test_record = gtsrb_selection.candidate_config(candidates[0])
    path = next(Path(gtsrb_selection.results_dir(record=True)).glob(f"{test_record.name}.json"))
    path.write_text(path.read_text().replace('"gtsrb-val"', '"gtsrb"'))
    with pytest.raises(ValueError, match="is not a validation run"):
        gtsrb_selection.choose(candidates)


def test_gtsrb_round_2_chooses_by_held_out_images_over_both_seeds_and_records_its_final_runs(gtsrb_selection,
                                                                                               monkeypatch):
    from stn_course.results import save_result

    Candidate = gtsrb_selection.Candidate
    monkeypatch.setattr(gtsrb_selection, "BASE_SETTINGS", {"label_smoothing": 0.1})
    # (quick mode shrinks epochs, so the candidates differ in other settings)
    candidates = (Candidate("first", {"lr": 0.004}), Candidate("smoothing 0.2", {"lr": 0.004, "label_smoothing": 0.2}),
                  Candidate("equalised", {"lr": 0.004, "equalize": True}))
    monkeypatch.setattr(gtsrb_selection, "ROUND_2_CANDIDATES", candidates)
    _validation_record(gtsrb_selection, candidates[0], 0.997)
    assert gtsrb_selection.choose_round_2(candidates) is None, "not before every seed of every candidate has run"
    for candidate, (seed_0, seed_1) in zip(candidates, ((0.997, 0.990), (0.999, 0.994), (0.994, 0.995))):
        _validation_record(gtsrb_selection, candidate, seed_0, seed=0)
        _validation_record(gtsrb_selection, candidate, seed_1, seed=1)
    assert gtsrb_selection.held_out_correct(candidates[1]) == 1993
    assert gtsrb_selection.choose_round_2(candidates).label == "smoothing 0.2", "the sum over seeds, not seed 0's best"
    for candidate in candidates[1:]:  # 999 + 998 each: a tie
        _validation_record(gtsrb_selection, candidate, 0.999, seed=0)
        _validation_record(gtsrb_selection, candidate, 0.998, seed=1)
    assert gtsrb_selection.choose_round_2(candidates).label == "smoothing 0.2", "a tie goes to the earlier"
    _validation_record(gtsrb_selection, candidates[2], 1.0, seed=1)
    assert gtsrb_selection.choose_round_2(candidates).label == "equalised"
    with pytest.raises(RuntimeError, match="round 1's record"):
        gtsrb_selection.record_round_2(candidates[2])
    round_1_finals = [config.name for config in gtsrb_selection.final_configs(candidates[0])]
    save_result("gtsrb_selection", {"rule": "round 1's", "chosen": "x", "final_runs": round_1_finals},
                command="python benchmarks/gtsrb_selection.py", record=True)
    gtsrb_selection.record_round_2(candidates[2])
    record = gtsrb_selection.recorded("gtsrb_selection")
    assert record["rule"] == "round 1's" and record["round_1_final_runs"] == round_1_finals
    assert record["round_2"]["chosen"] == "equalised" and record["round_2"]["seeds"] == [0, 1]
    assert record["round_2"]["candidates"][1]["runs"][1] == gtsrb_selection.candidate_config(candidates[1], 1).name
    assert record["final_runs"][:2] == [config.name for config in gtsrb_selection.final_configs(candidates[2])][:2]
    assert all("equalize=true" in name for name in record["final_runs"])
    finished = record["finished_at"]
    gtsrb_selection.record_round_2(candidates[2])
    assert gtsrb_selection.recorded("gtsrb_selection")["round_1_final_runs"] == round_1_finals
    assert gtsrb_selection.recorded("gtsrb_selection")["finished_at"] == finished, "unchanged: not rewritten"


@pytest.mark.skipif(not (data_root() / "GTSRB" / "gtsrb32.npz").exists(), reason="GTSRB is not under the data root")
def test_gtsrb_selection_runs_chooses_and_trains_the_finals_once_on_a_tiny_budget(gtsrb_selection, monkeypatch,
                                                                                    capsys):
    from stn_course.__main__ import main as course
    from stn_course.report import selection_table
    from stn_course.results import find_result

    Candidate = gtsrb_selection.Candidate
    monkeypatch.setattr(gtsrb_selection, "BASE_SETTINGS", {"base_width": 8, "brightness_contrast": 0.3})
    monkeypatch.setattr(gtsrb_selection, "CANDIDATES", (Candidate("base"), Candidate("cnn", model="gtsrb-bn-cnn"),
                                                        Candidate("narrow", {"base_width": 4})))
    monkeypatch.setattr(gtsrb_selection, "ROUND_2_CANDIDATES", (Candidate("base"), Candidate("narrow", {"base_width": 4})))
    monkeypatch.setattr(gtsrb_selection, "FINAL_SEEDS", (0,))
    ran = []

    def in_process(command):
        assert command[:3] == ["python", "-m", "stn_course"] and command[-1] == "--record"
        ran.append(command[3])
        assert course(command[3:]) == 0

    assert gtsrb_selection.main([], runner=in_process) == 0
    assert ran[:3] == ["train"] * 3 and ran[-4:] == ["train", "train", "jitter", "jitter"]
    assert len(ran) == 3 + 2 + 4, "round 2 trains what round 1 did not: base and narrow at seed 1"
    selection = json.loads(find_result("gtsrb_selection").read_text())
    assert selection["command"] == "python benchmarks/gtsrb_selection.py" and selection["machine"]["cpu_count"] >= 1
    chosen = next(row for row in selection["candidates"] if row["run"] == selection["chosen"])
    finals = [json.loads(find_result(name).read_text()) for name in selection["final_runs"]]
    assert [(r["config"]["dataset"], r["config"]["model"]) for r in finals] == [("gtsrb", "gtsrb-bn-st-cnn"),
                                                                                ("gtsrb", "gtsrb-bn-cnn")]
    assert all(r["config"]["base_width"] == chosen["changes"].get("base_width", 8) for r in finals)
    assert all(find_result(f"jitter_{name}") for name in selection["final_runs"])
    from stn_course.records import load_run_results

    table = selection_table(selection, load_run_results(gtsrb_selection.results_dir(record=True)))
    rows = table.splitlines()[2:5]
    assert all("%" in row for row in rows) and sum("(chosen)" in row for row in rows) == 1
    capsys.readouterr()
    count = len(ran)
    assert gtsrb_selection.main([], runner=in_process) == 0 and len(ran) == count, "finished runs are skipped"
    assert gtsrb_selection.main(["--dry-run"], runner=_never) == 0
    out = capsys.readouterr().out
    # round 2 lists its seed-0 runs again (round 1 made them)
    assert "to run" not in out and out.count("done     python -m stn_course") == count + 2


@pytest.fixture(scope="module")
def full_mode_check():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "full_mode_check.py"
    sys.path.insert(0, str(path.parent))  # it imports run_step from gpu_check, beside it
    spec = importlib.util.spec_from_file_location("full_mode_check", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_full_mode_check_takes_the_short_main_notebooks_from_their_run_time_records(full_mode_check, tmp_path):
    for name, seconds in (("00_a", 20.0), ("03_b", 3000.0), ("solutions/00_a_solutions", 10.0), ("07_c", None)):
        record = {"notebook": f"notebooks/{name}.ipynb", "full_mode_nbconvert_wall_seconds": seconds}
        (tmp_path / f"run_time_{name.replace('/', '_')}.json").write_text(json.dumps(record))
    assert full_mode_check.short_notebooks(tmp_path) == ["notebooks/00_a.ipynb"]
    assert "notebooks/02_stn_on_mnist.ipynb" in full_mode_check.short_notebooks()


def test_the_full_mode_check_finds_a_stored_error_and_a_changed_file(full_mode_check, tmp_path):
    notebook = tmp_path / "x.ipynb"
    cells = [{"cell_type": "code", "outputs": [{"output_type": "stream", "text": "ok"}]},
             {"cell_type": "code", "outputs": [{"output_type": "error", "ename": "ValueError"}]}]
    notebook.write_text(json.dumps({"cells": cells}))
    assert full_mode_check.stored_errors(notebook) == ["cell 1: ValueError"]
    subprocess.run(["git", "init", "--quiet", str(tmp_path)], check=True)
    assert full_mode_check.changed_files(tmp_path) == ["?? x.ipynb"]
