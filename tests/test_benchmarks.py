"""The benchmark scripts' measuring functions, on a few batches."""
import importlib.util
from pathlib import Path

import pytest

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
