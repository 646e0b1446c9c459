"""A run's results file: what it records, where it goes, how it is found and described."""
import json

from stn_course import results
from stn_course.train import History


def test_a_result_records_the_command_machine_and_mode_outside_the_repository(monkeypatch, tmp_path):
    monkeypatch.setenv("STN_COURSE_QUICK", "1")
    monkeypatch.setenv("STN_COURSE_OUTPUT", str(tmp_path))
    path = results.save_result("demo", {"accuracy": 0.5}, command="python demo.py")
    assert tmp_path.resolve() in path.parents
    record = json.loads(path.read_text())
    assert record["accuracy"] == 0.5 and record["command"] == "python demo.py" and record["name"] == "demo"
    assert record["quick_mode"] is True and "cpu_count" in record["machine"]
    assert results.find_result("demo") == path and results.find_result("no-such-run") is None


def test_durations_read_as_seconds_then_minutes():
    assert results.format_duration(42.4) == "42 s"
    assert results.format_duration(246) == "4.1 min"


def test_a_finished_run_is_described_from_its_results_file_or_else_its_history(monkeypatch, tmp_path):
    monkeypatch.setenv("STN_COURSE_QUICK", "1")
    monkeypatch.setenv("STN_COURSE_OUTPUT", str(tmp_path))
    history = History(test_accuracy=[0.5, 0.9944], seconds=[30.0, 40.0])
    assert results.describe_finished_run("run", history) == "2 epochs, test accuracy 99.44% (recorded), trained in 1.2 min"
    results.save_result("run", {"seconds_total": 246.0}, command="python -m stn_course train")
    described = results.describe_finished_run("run", history)
    assert described.startswith("2 epochs, test accuracy 99.44% (recorded), trained in 4.1 min on ")


def test_a_run_result_records_what_its_training_computed_in(monkeypatch, tmp_path):
    import torch

    from stn_course.data import ImageTensors
    from stn_course.experiments import Experiment
    from stn_course.loader import BatchLoader
    from stn_course.recipes import default_config

    monkeypatch.setenv("STN_COURSE_OUTPUT", str(tmp_path))
    data = ImageTensors(images=torch.zeros(4, 1, 8, 8, dtype=torch.uint8), labels=torch.zeros(4, dtype=torch.long),
                        classes=("0", "1"), mean=(0.5,), std=(0.5,), name="toy")
    history = History(train_loss=[1.0, 0.9], test_loss=[1.0, 0.9], test_accuracy=[0.5, 0.75], test_correct=[2, 3],
                      seconds=[1.0, 1.0], lr=[0.1, 0.1], precision=["float32", "float16 autocast"])
    experiment = Experiment(config=default_config("mnist", "cnn", 2), model=torch.nn.Linear(2, 2),
                            train_loader=BatchLoader(data, 2), test_loader=BatchLoader(data, 4), history=history)
    record = json.loads(results.record_result(experiment, record=False).read_text())
    assert record["precision"] == ["float16 autocast", "float32"]
    assert record["history"]["precision"] == ["float32", "float16 autocast"]
