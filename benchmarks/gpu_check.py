"""The GPU check: what only a machine with CUDA can show, in one command and at most 10 minutes.

    python benchmarks/gpu_check.py        # writes results/gpu_check_<gpu>.json

1. The unit tests with the device pinned to CUDA (``STN_COURSE_TEST_DEVICE=cuda``: every test
   that trains through :func:`stn_course.utils.get_device` runs on the GPU, in float16 autocast
   by default); tests that build CPU tensors themselves stay on the CPU.
2. Notebooks 02, 06 and 07 executed in full mode on the GPU, in a temporary copy of the
   repository (the stored outputs, ``plots/`` and ``results/`` stay untouched).
3. One timed epoch, from scratch, of each notebook's main model, with the course's recipe and
   the default precision on CUDA (float16 autocast with loss scaling). A dataset missing under
   the data root (``STN_COURSE_DATA``) is recorded as skipped.

The record names the GPU, torch's CUDA, TF32 settings and bfloat16 support. Each step has a
time limit, and the whole check stops starting new steps after :data:`BUDGET_SECONDS`.
Without CUDA the check stops at once (exit status 2) with one line saying so.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script from a clone: this clone's package

from stn_course.errors import CourseError
from stn_course.experiments import run_experiment
from stn_course.recipes import default_config
from stn_course.results import save_result
from stn_course.utils import data_root

COMMAND = "python benchmarks/gpu_check.py"
#: the whole check stops starting steps after this (each step also has its own limit)
BUDGET_SECONDS = 540
TESTS_SECONDS = 300
NOTEBOOK_SECONDS = 90
NOTEBOOKS = ("02_stn_on_mnist", "06_traffic_signs", "07_spatial_vs_vision_transformers")
#: each notebook's main model: (dataset, model), timed for one epoch
MAIN_MODELS = {
    "02": ("mnist", "st-cnn-aff"),
    "03": ("rts-mnist", "st-cnn-aff"),
    "04": ("cifar10", "cifar-st-resnet"),
    "05": ("rts-mnist", "st-series"),
    "06": ("gtsrb", "gtsrb-bn-st-cnn"),
    "07": ("rts-mnist", "st-vit"),
}
NO_CUDA = ("gpu_check: no CUDA device (torch.cuda.is_available() is False): this check needs a GPU. "
           "Nothing was run or written.")


def device_info() -> dict:
    """What the GPU is and how torch uses it."""
    properties = torch.cuda.get_device_properties(0)
    return {"name": properties.name, "capability": f"{properties.major}.{properties.minor}",
            "memory_gib": round(properties.total_memory / 2**30, 1), "torch_cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(), "bf16_supported": torch.cuda.is_bf16_supported(),
            "tf32_convolutions": torch.backends.cudnn.allow_tf32,
            "tf32_matmul": torch.backends.cuda.matmul.allow_tf32}


def run_step(command: list[str], env: dict, limit: float, cwd: Path = REPO) -> dict:
    """Run ``command``; its exit status, seconds and the tail of its output (or a time-out)."""
    started = time.perf_counter()
    try:
        done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=limit,
                              check=False)
    except subprocess.TimeoutExpired:
        return {"status": "timed out", "limit_seconds": round(limit),
                "seconds": round(time.perf_counter() - started, 1)}
    output = done.stdout + done.stderr
    return {"status": "passed" if done.returncode == 0 else f"failed (exit {done.returncode})",
            "seconds": round(time.perf_counter() - started, 1), "output_tail": output[-3000:]}


def check_tests(env: dict, limit: float) -> dict:
    """The unit tests with the device pinned to CUDA; the summary line and the failures' names."""
    result = run_step([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests",
                       "-m", "not browser and not install"], {**env, "STN_COURSE_TEST_DEVICE": "cuda"}, limit)
    tail = result.pop("output_tail", "")
    result["summary"] = next((line for line in reversed(tail.splitlines()) if re.search(r"\d+ (passed|failed)", line)),
                             None)
    result["failed"] = re.findall(r"^FAILED (\S+)", tail, re.MULTILINE)
    return result


def check_notebooks(env: dict, limit: float, deadline: float) -> dict:
    """Notebooks 02, 06 and 07 executed in full mode in a temporary copy of the repository."""
    results = {}
    with tempfile.TemporaryDirectory(prefix="stn_gpu_check_") as folder:
        copy = Path(folder) / "repo"
        shutil.copytree(REPO, copy, ignore=shutil.ignore_patterns(".git", "data", "__pycache__", ".venv"))
        full = {key: value for key, value in env.items() if key != "STN_COURSE_QUICK"}
        full.update(PYTHONPATH=str(copy), STN_COURSE_OUTPUT=str(Path(folder) / "output"),
                    STN_COURSE_CHECKPOINTS=str(Path(folder) / "checkpoints"))
        for name in NOTEBOOKS:
            left = deadline - time.perf_counter()
            if left < 30:
                results[name] = {"status": "not run: the check's time budget was spent"}
                continue
            results[name] = run_step([sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
                                      "--output-dir", str(Path(folder) / "executed"), f"notebooks/{name}.ipynb"],
                                     full, min(limit, left), cwd=copy)
            if results[name]["status"] == "passed":
                del results[name]["output_tail"]
    return results


def time_epochs(deadline: float) -> dict:
    """One epoch from scratch of each notebook's main model on the GPU: seconds and test accuracy."""
    epochs: dict[str, dict] = {}
    for notebook, (dataset, model) in MAIN_MODELS.items():
        key = f"{notebook} {dataset}/{model}"
        if deadline - time.perf_counter() < 20:
            epochs[key] = {"status": "not run: the check's time budget was spent"}
            continue
        try:
            config = default_config(dataset, model, epochs=1)
            history = run_experiment(config, device=torch.device("cuda"), save=False, use_checkpoints=False,
                                     use_shipped=False, progress=False).history
        except CourseError as error:  # e.g. the dataset is not under the data root
            epochs[key] = {"status": f"skipped: {str(error).splitlines()[0]}"}
            continue
        except Exception as error:  # noqa: BLE001 - a GPU failure is what this check is for: record it
            first_line = str(error).splitlines()[0] if str(error) else ""
            epochs[key] = {"status": f"failed: {type(error).__name__}: {first_line}"}
            continue
        epochs[key] = {"status": "passed", "epoch_seconds": round(history.seconds[0], 2),
                       "epoch_test_accuracy": history.test_accuracy[0], "batch_size": config.batch_size,
                       "precision": "float32" if config.amp is False else "float16 autocast"}
    return epochs


def main(argv: list[str] | None = None) -> int:
    if not torch.cuda.is_available():
        print(NO_CUDA, file=sys.stderr)
        return 2
    started = time.perf_counter()
    deadline = started + BUDGET_SECONDS
    env = {**os.environ, "STN_COURSE_DATA": str(data_root()), "PYTHONPATH": str(REPO)}
    info = device_info()
    print(f"gpu_check on {info['name']}: unit tests on CUDA (at most {TESTS_SECONDS} s) ...", flush=True)
    tests = check_tests(env, TESTS_SECONDS)
    print(f"  {tests.get('summary') or tests['status']}\nnotebooks 02, 06, 07 in full mode ...", flush=True)
    notebooks = check_notebooks(env, NOTEBOOK_SECONDS, deadline)
    print("  " + ", ".join(f"{name[:2]}: {result['status']}" for name, result in notebooks.items()), flush=True)
    print("one epoch of each notebook's main model ...", flush=True)
    epochs = time_epochs(deadline)
    slug = re.sub(r"[^a-z0-9]+", "-", info["name"].lower()).strip("-")
    path = save_result(f"gpu_check_{slug}", {"device": info, "tests": tests, "notebooks": notebooks,
                                             "epochs": epochs, "seconds": round(time.perf_counter() - started)},
                       COMMAND, record=True)
    print(f"Wrote {path}")
    failed = tests["status"] != "passed" or any(r["status"] != "passed" for r in notebooks.values()) or \
        any(r["status"].startswith("failed") for r in epochs.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
