"""The clinic's short runs: for each of the seven ways a spatial transformer goes wrong
(:data:`stn_course.clinic.CASES`), the run that shows the symptom and the run that fixes it,
each about 2 CPU-minutes or less, recorded in ``results/clinic_<case>.json`` with the machine,
the time and the command (:func:`stn_course.results.save_result`).

A run trains a :class:`stn_course.clinic.ClinicNet` for ``--steps`` AdamW steps of 64 images
on a subset of the case's dataset. Every ``--log-every`` steps it logs the training loss and
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
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from stn_course.clinic import CASES, build_run
from stn_course.files import write_atomically
from stn_course.health import health_check
from stn_course.recipes import DATASETS
from stn_course.results import save_result
from stn_course.utils import checkpoint_dir, is_quick, set_seed

BATCH = 64
#: the full budget: what the recorded runs use
DEFAULTS = {"steps": 400, "train_limit": 10_000, "test_limit": 1000, "log_every": 25, "seed": 0}
PROBE = 256  # test images the health check reads while a run trains
SHOWN = 16  # test images whose θ is recorded at the end


def batch(splits, step: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The training batch of ``step``: drawn (and distorted) with a generator seeded by the step."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + step)
    index = torch.randint(len(splits.train), (BATCH,), generator=generator)
    images = splits.train.images[index].float().div_(255.0)
    if splits.train_augment is not None:
        images = splits.train_augment(images, generator)
    return images, splits.train.labels[index]


def test_images(splits, count: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = splits.test.images[:count], splits.test.labels[:count]
    return images.float().div(255.0), labels


def health_line(model: torch.nn.Module, probe: torch.Tensor) -> dict:
    """What the health check reads on the probe images, for the log."""
    if not any(p.isfinite().all() for p in model.parameters()):
        return {"zoom": None, "outside": 1.0, "distance": None}
    try:
        report = health_check(model, probe)
    except (RuntimeError, ValueError):  # e.g. a grid of NaN after θ overflowed
        return {"zoom": None, "outside": 1.0, "distance": None}
    return {"zoom": finite(report.zoom[2]), "outside": report.outside, "distance": finite(report.distance[2])}


def load_state(path: Path, identity: dict, model, optimizer) -> dict:
    """The run's progress from its checkpoint (if it belongs to this run), else a fresh start."""
    fresh = {"step": 0, "log": [], "seconds": 0.0}
    if not path.exists():
        return fresh
    state = torch.load(path, map_location="cpu", weights_only=False)
    if state.get("identity") != identity:
        print(f"  {path.name} belongs to another run ({state.get('identity')}): starting afresh")
        return fresh
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    print(f"  resuming at step {state['step']} from {path}")
    return {key: state[key] for key in fresh}


def save_state(path: Path, identity: dict, model, optimizer, progress: dict) -> None:
    state = {"identity": identity, "model": model.state_dict(), "optimizer": optimizer.state_dict(), **progress}
    write_atomically(path, lambda tmp: torch.save(state, tmp))


def train_run(case: str, label: str, splits, budget: dict, checkpoint_every: int) -> dict:
    """Train (or resume, or load) one run; returns its record."""
    set_seed(budget["seed"])
    shape, mean, std = splits.test.image_shape, splits.train.mean, splits.train.std
    model, optimizer, clip = build_run(case, label, shape, mean, std, num_classes=len(splits.train.classes))
    identity = {"case": case, "label": label, "settings": repr(CASES[case].runs[label]), **budget}
    path = checkpoint_dir() / f"clinic_{case}_{label}.pt"
    progress = load_state(path, identity, model, optimizer)
    probe = test_images(splits, PROBE)[0]
    losses: list[float] = []
    started = time.perf_counter() - progress["seconds"]
    while progress["step"] < budget["steps"]:
        step = progress["step"]
        images, labels = batch(splits, step, budget["seed"])
        model.train()
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        losses.append(loss.item())
        progress["step"] = step + 1
        if progress["step"] % budget["log_every"] == 0 or progress["step"] == budget["steps"]:
            progress["log"].append({"step": progress["step"], "loss": sum(losses) / len(losses),
                                    **health_line(model, probe)})
            losses = []
        if progress["step"] % checkpoint_every == 0 or progress["step"] == budget["steps"]:
            progress["seconds"] = time.perf_counter() - started
            save_state(path, identity, model, optimizer, progress)
    return finish(model, splits, label, progress)


@torch.no_grad()
def finish(model: torch.nn.Module, splits, label: str, progress: dict) -> dict:
    """The record of a finished run: its log, test accuracy, health report and a few θ."""
    images, labels = test_images(splits)
    model.eval()
    predictions = torch.cat([model(chunk).argmax(1) for chunk in images.split(500)])
    accuracy = float((predictions == labels).float().mean())
    report = health_check(model, images[:1000])
    model(images[:SHOWN])
    theta = model.transformer.last_theta.float().tolist()
    print(f"  {label}: test accuracy {100 * accuracy:.2f}% after {progress['step']} steps "
          f"({progress['seconds']:.0f} s); verdict: {' | '.join(report.verdicts)}")
    numbers = {key: finite(value) for key, value in vars(report).items() if key != "verdicts"}
    return {"steps": progress["step"], "seconds": round(progress["seconds"], 1), "test_accuracy": accuracy,
            "log": progress["log"], "health": {**numbers, "verdicts": report.verdicts, "text": str(report)},
            "theta_first_test_images": theta}


def finite(value):
    """A number, or a tuple of them, with NaN and inf as None (valid JSON)."""
    if isinstance(value, tuple):
        return [finite(v) for v in value]
    return value if not isinstance(value, float) or math.isfinite(value) else None


def run_case(case: str, budget: dict, checkpoint_every: int, record: bool, command: str) -> Path:
    """Every run of ``case``, recorded together in ``clinic_<case>.json``."""
    print(f"{case}: {CASES[case].title}")
    splits = DATASETS[CASES[case].dataset](budget["train_limit"], budget["test_limit"], budget["seed"])
    runs = {label: train_run(case, label, splits, budget, checkpoint_every) for label in CASES[case].runs}
    payload = {"case": case, "title": CASES[case].title, "dataset": CASES[case].dataset, "batch_size": BATCH,
               "budget": budget, "settings": {label: {k: (list(v) if isinstance(v, tuple) else v)
                                                      for k, v in CASES[case].runs[label].items()}
                                              for label in CASES[case].runs},
               "runs": runs}
    return save_result(f"clinic_{case}", payload, command=command, record=record)


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
