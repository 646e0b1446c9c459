"""Results records read back (stn_course.records): a damaged or impossible record is named and never published."""
import json

import pytest

from stn_course import __main__ as cli


@pytest.fixture
def results_copy(tmp_path, monkeypatch):
    """A copy of the repository's results/ (report reads <repo>/results) with one good record."""
    import shutil

    from stn_course.utils import recorded_results_dir

    folder = tmp_path / "results"
    shutil.copytree(recorded_results_dir(), folder)
    from stn_course import records, report

    from stn_course import course_files

    monkeypatch.setattr(records, "recorded_results_dir", lambda: folder)  # the records are read from here
    monkeypatch.setattr(report, "recorded_results_dir", lambda: folder)
    monkeypatch.setattr(report, "repo_root", lambda: tmp_path)  # and the README and RESULTS.md written here
    monkeypatch.setattr(course_files, "repo_root", lambda: tmp_path)  # and the results' index
    return folder


def test_every_recorded_run_has_a_valid_config():
    """Nothing in results/ comes from a run with an invalid setting."""
    from stn_course.records import config_of
    from stn_course.utils import recorded_results_dir

    records = [json.loads(path.read_text()) for path in sorted(recorded_results_dir().glob("*.json"))]
    configs = [record for record in records if "config" in record]
    assert len(configs) > 20
    for record in configs:
        config_of(record)  # raises InvalidSettingError for an invalid one


@pytest.mark.parametrize("damage", ["truncated", "no machine", "invalid config", "a list"])
def test_report_names_a_bad_results_file_and_goes_on_with_the_others(results_copy, damage, capsys):
    from stn_course.records import BadResultWarning, load_run_results

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
    from stn_course.records import BadResultWarning, load_error_results

    good = len(load_error_results(results_copy))
    path = next(results_copy.glob("errors_*.json"))
    record = json.loads(path.read_text())
    del record["confusions"]
    path.write_text(json.dumps(record))
    with pytest.warns(BadResultWarning, match=f"Skipping {path}: it lacks 'confusions'"):
        assert len(load_error_results(results_copy)) == good - 1


@pytest.mark.parametrize("field, value, problem", [
    ("test_accuracy", 5.0, r"'test_accuracy' is 5.0, not a number in \[0, 1\]"),
    ("test_accuracy", float("nan"), r"'test_accuracy' is nan"),
    ("test_accuracy", "0.99", r"'test_accuracy' is '0.99'"),
    ("test_error_percent", 50.0, r"test error 50.0% disagrees with its test accuracy"),
    ("epochs", 2.5, r"'epochs' is 2.5, not an integer"),
    ("seconds_total", float("inf"), r"'seconds_total' is inf"),
    ("seconds_per_epoch", [1.0, -3.0], r"'seconds_per_epoch' is -3.0"),
    ("name", 7, r"'name' is not text"),
    ("machine.cpu_count", "two", r"machine's 'cpu_count' is 'two'")])
def test_an_impossible_value_in_a_results_file_is_named_and_never_published(results_copy, field, value, problem,
                                                                             capsys):
    from stn_course.records import BadResultWarning
    from stn_course.report import results_table

    path = results_copy / "mnist_st-cnn-aff_e5_s0.json"
    record = json.loads(path.read_text())
    if field.startswith("machine."):
        record["machine"][field.split(".")[1]] = value
    else:
        record[field] = value
    path.write_text(json.dumps(record))
    with pytest.warns(BadResultWarning, match=rf"Skipping {path}: its .*{problem}"):
        table = results_table(results_copy)
    assert "nan%" not in table and "500.00%" not in table and "mnist_st-cnn-aff_e5_s0`" not in table
    assert cli.main(["report", "--update-readme"]) == 1
    assert f"Warning: Skipping {path}" in capsys.readouterr().err


@pytest.mark.parametrize("field, value", [("error_percent", 150.0), ("errors", "3"), ("test_samples", 0),
                                          ("errors_touching_edge", 10 ** 9), ("confusions", [{"true": 1}])])
def test_an_impossible_value_in_an_error_analysis_is_named_and_left_out(results_copy, field, value):
    from stn_course.records import BadResultWarning, load_error_results

    good = len(load_error_results(results_copy))
    path = next(results_copy.glob("errors_*.json"))
    record = json.loads(path.read_text())
    record[field] = value
    path.write_text(json.dumps(record))
    with pytest.warns(BadResultWarning, match=rf"Skipping {path}: its '{field}'"):
        assert len(load_error_results(results_copy)) == good - 1
