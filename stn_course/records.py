"""The course's results records read back: every JSON record of a run or an error analysis
that a table uses is read here and checked (types, finite ranges, the test error agreeing with
the accuracy), so a damaged or impossible record is left out with a :class:`BadResultWarning`
naming its file, never published (:mod:`stn_course.report` makes the tables).
"""
from __future__ import annotations

import json
import math
import warnings
from dataclasses import fields
from pathlib import Path

from .recipes import RunConfig
from .utils import recorded_results_dir


class BadResultWarning(UserWarning):
    """A results file that cannot be read or lacks what a table needs: left out, and named."""


#: what a training result (:func:`stn_course.results.record_result`) must hold to be tabled
RUN_RESULT_KEYS = ("name", "command", "finished_at", "machine", "config", "test_accuracy", "test_error_percent",
                   "epochs", "seconds_total")
#: what its ``machine`` (:func:`stn_course.utils.machine_info`) must hold
MACHINE_KEYS = ("cuda", "cpu_count", "torch")
#: what an error analysis (:func:`stn_course.results.record_errors`) must hold
ERROR_RESULT_KEYS = ("run", "weights", "errors", "error_percent", "test_samples", "images_touching_edge",
                     "errors_touching_edge", "error_percent_touching_edge", "error_percent_inside", "confusions")


def read_result(path: Path) -> dict | None:
    """The JSON object in ``path``, or None, with a :class:`BadResultWarning` naming the file,
    if it cannot be read (e.g. truncated by an interrupted write)."""
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as error:
        warnings.warn(f"Skipping {path}: it cannot be read as JSON ({error}).", BadResultWarning, stacklevel=2)
        return None
    if not isinstance(record, dict):
        warnings.warn(f"Skipping {path}: it holds a {type(record).__name__}, not a record.", BadResultWarning,
                      stacklevel=2)
        return None
    return record


def value_problem(record: dict, key: str, low: float, high: float = math.inf, integer: bool = False,
                  optional: bool = False, where: str = "") -> str | None:
    """What is wrong with ``record[key]`` as a number in ``[low, high]`` (an int if ``integer``;
    None allowed if ``optional``), or None: a table must never print "nan%" or "500.00%"."""
    value = record.get(key)
    if value is None and optional:
        return None
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not (math.isfinite(value) and low <= value <= high):
        wanted = f"{'an integer' if integer else 'a number'} in [{low:g}, {high:g}]"
        return f"its {where}{key!r} is {value!r}, not {wanted}"
    return None


def run_result_problem(record: dict) -> str | None:
    """What makes a training result unusable in the tables (a missing field, a value of the
    wrong type or out of range, an invalid config), or None."""
    missing = [key for key in RUN_RESULT_KEYS if key not in record]
    if missing:
        return f"it lacks {', '.join(map(repr, missing))}"
    machine = record["machine"]
    if not isinstance(machine, dict) or any(key not in machine for key in MACHINE_KEYS):
        return f"its 'machine' lacks one of {', '.join(map(repr, MACHINE_KEYS))}"
    texts = [repr(key) for key in ("name", "command", "finished_at") if not isinstance(record[key], str)]
    texts += [f"machine's {key!r}" for key in ("torch",) if not isinstance(machine[key], str)]
    if not isinstance(machine["cuda"], (str, type(None), bool)):
        texts.append("machine's 'cuda'")
    if texts:
        return f"its {', '.join(texts)} {'is' if len(texts) == 1 else 'are'} not text"
    checks = [value_problem(record, "test_accuracy", 0, 1), value_problem(record, "test_error_percent", 0, 100),
              value_problem(record, "epochs", 1, integer=True), value_problem(record, "seconds_total", 0),
              value_problem(record, "parameters", 0, integer=True, optional=True),
              value_problem(machine, "cpu_count", 1, integer=True, optional=True, where="machine's "),
              value_problem(machine, "torch_threads", 1, integer=True, optional=True, where="machine's ")]
    per_epoch = record.get("seconds_per_epoch", [])
    checks.append(None if isinstance(per_epoch, list) else "its 'seconds_per_epoch' is not a list")
    checks += [value_problem({"seconds_per_epoch": value}, "seconds_per_epoch", 0)
               for value in (per_epoch if isinstance(per_epoch, list) else [])]
    problem = next(filter(None, checks), None)
    if problem is None and abs(100 * (1 - record["test_accuracy"]) - record["test_error_percent"]) > 0.01:
        problem = (f"its test error {record['test_error_percent']}% disagrees with its test accuracy "
                   f"{record['test_accuracy']}")
    if problem:
        return problem
    try:
        config_of(record)
    except (TypeError, ValueError, AttributeError) as error:  # InvalidSettingError is a ValueError
        return f"its config is invalid ({error})"
    return None


def load_run_results(folder: Path | None = None) -> list[dict]:
    """Every training result (``results/*.json`` with a test accuracy or a config), sorted by
    name. A file that cannot be read or lacks what the tables need is left out, with a
    :class:`BadResultWarning` naming it: a bad record is never used."""
    folder = folder or recorded_results_dir()
    records = []
    for path in sorted(folder.glob("*.json")):
        record = read_result(path)
        if record is None or not ("test_accuracy" in record or "config" in record):
            continue  # unreadable (named), or not a training result (benchmarks, error analyses)
        problem = run_result_problem(record)
        if problem:
            warnings.warn(f"Skipping {path}: {problem}.", BadResultWarning, stacklevel=2)
        else:
            records.append(record)
    return records


def load_error_results(folder: Path | None = None) -> list[dict]:
    """Every error analysis (``results/errors_*.json``, :func:`stn_course.results.record_errors`), sorted by run;
    a bad file is left out with a :class:`BadResultWarning` naming it."""
    folder = folder or recorded_results_dir()
    records = []
    for path in sorted(folder.glob("errors_*.json")):
        record = read_result(path)
        problem = record is not None and error_result_problem(record)
        if problem:
            warnings.warn(f"Skipping {path}: {problem}.", BadResultWarning, stacklevel=2)
        elif record is not None:
            records.append(record)
    return records


def error_result_problem(record: dict) -> str | None:
    """What makes an error analysis unusable in its table (a missing field, a value of the
    wrong type or out of range), or None."""
    missing = [key for key in ERROR_RESULT_KEYS if key not in record]
    if missing:
        return f"it lacks {', '.join(map(repr, missing))}"
    if not isinstance(record["run"], str) or not isinstance(record["weights"], str):
        return "its 'run' or 'weights' is not text"
    samples = record["test_samples"]
    checks = [value_problem(record, "test_samples", 1, integer=True), value_problem(record, "error_percent", 0, 100)]
    checks += [value_problem(record, key, 0, samples if isinstance(samples, int) else math.inf, integer=True)
               for key in ("errors", "images_touching_edge", "errors_touching_edge")]
    checks += [value_problem(record, key, 0, 100, optional=True)
               for key in ("error_percent_touching_edge", "error_percent_inside")]
    problem = next(filter(None, checks), None)
    confusions = record["confusions"]
    if problem is None and (not isinstance(confusions, list) or not all(
            isinstance(c, dict) and {"true", "predicted", "count"} <= set(c) for c in confusions)):
        problem = "its 'confusions' is not a list of {'true', 'predicted', 'count'}"
    return problem or None


def config_of(record: dict) -> RunConfig:
    """The :class:`RunConfig` of a results record (fields added since it was written take their defaults)."""
    known = {field.name for field in fields(RunConfig)}
    return RunConfig(**{key: value for key, value in record["config"].items() if key in known})
