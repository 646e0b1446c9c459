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
    ratios = overhead["round_ratios"]
    assert overhead["rounds"] == 3 and len(ratios) == 3
    assert overhead["ratio"] == pytest.approx(sorted(ratios)[1], abs=1e-3)
    assert {run["batches"] for run in overhead["runs"].values()} == {6}
    assert "median of 3 rounds" in capsys.readouterr().out


def test_endless_goes_on_past_the_end_of_an_epoch(pipeline_benchmark):
    batches = pipeline_benchmark.endless([1, 2])
    assert [next(batches) for _ in range(5)] == [1, 2, 1, 2, 1]
