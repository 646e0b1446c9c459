"""Run All as a learner does: the short notebooks executed in full mode in a clean clone.

    python benchmarks/full_mode_check.py            # prints what it found; exit 1 if anything failed
    python benchmarks/full_mode_check.py --record   # also writes results/full_mode_check.json

Each main notebook (not the solutions) whose recorded full-mode run (``results/run_time_*.json``)
takes under :data:`SHORT_SECONDS` is executed in full mode, as ``jupyter nbconvert --execute``
writes it to a separate folder (never ``--inplace``), in a fresh ``git clone`` of this
repository's last commit, with the checkpoints and the output folder outside the clone. Then:
no executed cell may hold an error, and the clone's ``git status`` must stay clean (running a
notebook never changes a file of the repository). The data comes from ``$STN_COURSE_DATA``.

It takes a few minutes, so it is not part of ``pytest`` (the suite stays under 10 minutes on
the course's 2-core machine); its last result is recorded under ``results/``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script from a clone: this clone's package

from gpu_check import run_step  # noqa: E402 (benchmarks/ is the script's folder)

from stn_course.results import save_result  # noqa: E402

COMMAND = "python benchmarks/full_mode_check.py --record"
#: notebooks whose recorded full-mode run takes less than this are checked
SHORT_SECONDS = 120
#: the most one notebook may take here before it counts as failed
NOTEBOOK_LIMIT_SECONDS = 600


def short_notebooks(results: Path = REPO / "results", limit: float = SHORT_SECONDS) -> list[str]:
    """The main notebooks (``notebooks/NN_name.ipynb``) whose recorded full-mode run is under ``limit`` s."""
    chosen = []
    for path in sorted(results.glob("run_time_*.json")):
        record = json.loads(path.read_text())
        seconds = record.get("full_mode_nbconvert_wall_seconds")
        if seconds is not None and seconds < limit and "/solutions/" not in record["notebook"]:
            chosen.append(record["notebook"])
    return chosen


def stored_errors(notebook: Path) -> list[str]:
    """``"cell N: ErrorName"`` for each cell of an executed notebook that holds an error."""
    cells = json.loads(notebook.read_text())["cells"]
    return [f"cell {index}: {output.get('ename')}" for index, cell in enumerate(cells)
            for output in cell.get("outputs", []) if output.get("output_type") == "error"]


def changed_files(clone: Path) -> list[str]:
    """What ``git status --porcelain`` lists in ``clone``: files changed, added or left behind."""
    status = subprocess.run(["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True, check=True)
    return status.stdout.splitlines()


def check(folder: Path, notebooks: list[str]) -> dict:
    """Clone, execute each notebook in full mode into ``folder/executed``, and check errors and the tree."""
    clone = folder / "clone"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
    env = {key: value for key, value in os.environ.items() if key not in ("STN_COURSE_QUICK", "PYTHONPATH")}
    env.update(PYTHONPATH=str(clone), STN_COURSE_OUTPUT=str(folder / "output"),
               STN_COURSE_CHECKPOINTS=str(folder / "checkpoints"))
    runs = {}
    for notebook in notebooks:
        run = run_step([sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
                        "--output-dir", str(folder / "executed"), notebook], env, NOTEBOOK_LIMIT_SECONDS, cwd=clone)
        executed = folder / "executed" / Path(notebook).name
        run["errors"] = stored_errors(executed) if executed.exists() else ["not written"]
        if run["status"] == "passed" and not run["errors"]:
            run.pop("output_tail", None)
        runs[notebook] = run
    return {"notebooks": runs, "git_status_after": changed_files(clone)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", action="store_true", help="write results/full_mode_check.json")
    args = parser.parse_args(argv)
    if not os.environ.get("STN_COURSE_DATA"):
        print("Set STN_COURSE_DATA to the folder that holds the datasets (the clone has none).", file=sys.stderr)
        return 2
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="stn_full_mode_check_") as folder:
        result = check(Path(folder), short_notebooks())
    passed = not result["git_status_after"] and all(
        run["status"] == "passed" and not run["errors"] for run in result["notebooks"].values())
    for notebook, run in result["notebooks"].items():
        print(f"{notebook}: {run['status']}, {run['seconds']} s" + (f", errors {run['errors']}" if run["errors"] else ""))
    print("git status after the runs:", "clean" if not result["git_status_after"] else result["git_status_after"])
    if args.record:
        path = save_result("full_mode_check", {"passed": passed, "seconds_total": round(time.perf_counter() - started, 1),
                                               "short_seconds": SHORT_SECONDS, **result}, COMMAND, record=True)
        print("Recorded:", path)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
