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
