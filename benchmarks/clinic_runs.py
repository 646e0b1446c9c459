"""The clinic's short runs: for each of the seven ways a spatial transformer goes wrong
(:data:`stn_course.clinic.CASES`), the run that shows the symptom and the run that fixes it,
each about 2 CPU-minutes or less, recorded in ``results/clinic_<case>.json`` with the machine,
the time and the command (:func:`stn_course.results.save_result`).

A run (:func:`stn_course.clinic.train_run`, which notebook 08 calls too) trains a
:class:`stn_course.clinic.ClinicNet` for ``--steps`` AdamW steps of 64 images on a subset of
the case's dataset. Every ``--log-every`` steps it logs the training loss and
what the health check (:func:`stn_course.health.health_check`) reads on a fixed probe of test
images (median zoom, points outside the input, distance of θ to the identity); at the end it
records the test accuracy, the health report (numbers and verdicts) and θ of the first 16 test
images (to draw the regions they sample). Batches are drawn from a generator seeded by the
step, so a run interrupted and resumed from its checkpoint (``clinic_<case>_<label>.pt`` in
:func:`stn_course.utils.checkpoint_dir`, written every ``--checkpoint-every`` steps) is the
same run; rerun the same command to resume.

    python benchmarks/clinic_runs.py                     # all seven cases (about 20 CPU-minutes)
    python benchmarks/clinic_runs.py --cases lr-too-high align-corners
    python benchmarks/clinic_runs.py --steps 20 --train-limit 512 --test-limit 256   # a quick look

Only the full budget (the defaults) writes into the course's ``results/``; any other budget,
and quick mode (``STN_COURSE_QUICK=1``, as the tests run it), writes to the output folder.
Set STN_COURSE_DATA if MNIST is not under data/.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from stn_course.clinic import CASES, FULL_BUDGET, train_case
from stn_course.results import save_result
from stn_course.utils import is_quick

#: the full budget: what the recorded runs use
DEFAULTS = FULL_BUDGET


def run_case(case: str, budget: dict, checkpoint_every: int, record: bool, command: str) -> Path:
    """Every run of ``case``, recorded together in ``clinic_<case>.json``."""
    return save_result(f"clinic_{case}", train_case(case, budget, checkpoint_every), command=command, record=record)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES), metavar="CASE",
                        help=f"cases to run (default: all: {', '.join(CASES)})")
    parser.add_argument("--steps", type=int, default=DEFAULTS["steps"], help="training steps of each run")
    parser.add_argument("--train-limit", type=int, default=DEFAULTS["train_limit"], help="training images")
    parser.add_argument("--test-limit", type=int, default=DEFAULTS["test_limit"], help="test images")
    parser.add_argument("--log-every", type=int, default=DEFAULTS["log_every"], help="steps between log entries")
    parser.add_argument("--checkpoint-every", type=int, default=100, help="steps between checkpoints")
    args = parser.parse_args(argv)
    if min(args.steps, args.train_limit, args.test_limit, args.log_every, args.checkpoint_every) < 1:
        parser.error("every count must be at least 1")
    return args


def main(argv: list[str] | None = None) -> list[Path]:
    args = parse(argv)
    budget = {"steps": args.steps, "train_limit": args.train_limit, "test_limit": args.test_limit,
              "log_every": args.log_every, "seed": DEFAULTS["seed"]}
    record = budget == DEFAULTS and not is_quick()  # only the full budget is the course's record
    command = " ".join(["python benchmarks/clinic_runs.py", *(sys.argv[1:] if argv is None else argv)])
    paths = [run_case(case, budget, args.checkpoint_every, record, command) for case in args.cases]
    for path in paths:
        print("written to", path)
    return paths


if __name__ == "__main__":
    main()
