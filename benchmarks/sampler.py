"""How fast is the NumPy sampler next to PyTorch's CPU kernels?

Times the spatial transformer's two pieces at batch 64 on MNIST-sized (1x28x28) and
CIFAR-sized (3x32x32) float32 images, bilinear, zero padding, ``align_corners=False``:

* forward: ``affine_grid`` + ``grid_sample`` (and ``grid_sample`` alone);
* backward: dL/dinput and dL/dθ given dL/doutput (``grid_sample_backward`` +
  ``affine_grid_backward`` against PyTorch's autograd of the same graph).

Each time is the best of several ``timeit``-style repeats. The NumPy and PyTorch
functions are timed in alternation, repeat by repeat, so that other work on the machine
slows both sides alike. PyTorch runs with its default number of threads (reported), and
again with one thread, like NumPy.

The NumPy code allocates many short-lived arrays of a few hundred KB. With its default
settings glibc may hand such memory back to the OS when it is freed and take it back,
page by page, on the next call, which is slow on some machines (virtual machines in
particular). How often it does so depends on the sizes the process has freed before
(glibc adapts its thresholds to them), so here, where NumPy alternates with PyTorch, it
is a property of this process as much as of the code. The NumPy timings are therefore
taken again with freed memory kept in the process (``mallopt``, the same as setting
``MALLOC_TRIM_THRESHOLD_`` and ``MALLOC_MMAP_THRESHOLD_``).

Run from the repository root: ``python benchmarks/sampler.py``. Writes
``results/sampler_benchmark.json``.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

try:
    import stn_course  # noqa: F401  (installed with `pip install -e .`)
except ImportError:  # running from a clone without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch
import torch.nn.functional as F

from stn_course import parameterisation, sampler
from stn_course.results import save_result

BATCH = 64
IMAGES = [(1, 28, 28), (3, 32, 32)]
PASSES = ("forward", "grid_sample", "backward")
NUMBER = 5  # calls per timing (few, so that some timings miss the other work on the machine)
REPEAT = 40  # timings per function; the best one is kept
COMMAND = "python benchmarks/sampler.py"

Timings = Dict[str, float]  # pass -> seconds per call


def race(functions: Dict[str, Callable[[], object]]) -> Timings:
    """Best seconds per call of each function, timed in alternation (REPEAT rounds)."""
    best = {}
    for name, fn in functions.items():
        fn()  # warm-up
        best[name] = float("inf")
    for _ in range(REPEAT):
        for name, fn in functions.items():
            start = time.perf_counter()
            for _ in range(NUMBER):
                fn()
            best[name] = min(best[name], (time.perf_counter() - start) / NUMBER)
    return best


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed memory in the process (no-op elsewhere); True if it did."""
    name = ctypes.util.find_library("c")
    if sys.platform != "linux" or not name:
        return False
    libc = ctypes.CDLL(name)
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(libc.mallopt(m_mmap_threshold, 64 << 20)) and bool(libc.mallopt(m_trim_threshold, 256 << 20))


def make_case(channels: int, height: int, width: int, seed: int = 0) -> Dict[str, object]:
    rng = np.random.default_rng(seed)
    size = (BATCH, channels, height, width)
    x = rng.random(size, dtype=np.float32)
    theta = parameterisation.theta_from_params(
        angle=rng.uniform(-30, 30, BATCH),
        scale=(rng.uniform(0.7, 1.2, BATCH), rng.uniform(0.7, 1.2, BATCH)),
        translation=(rng.uniform(-0.3, 0.3, BATCH), rng.uniform(-0.3, 0.3, BATCH)),
    ).astype(np.float32)
    grad_output = rng.standard_normal(size, dtype=np.float32)
    return {"size": size, "x": x, "theta": theta, "grad_output": grad_output,
            "grid": sampler.affine_grid(theta, size)}


def numpy_functions(case: Dict[str, object]) -> Dict[str, Callable[[], object]]:
    size, x, theta, grid, grad_output = (case[k] for k in ("size", "x", "theta", "grid", "grad_output"))

    def forward():
        return sampler.grid_sample(x, sampler.affine_grid(theta, size))

    def backward():
        _, grad_grid = sampler.grid_sample_backward(x, grid, grad_output)
        return sampler.affine_grid_backward(grad_grid, size)

    return {"forward": forward, "grid_sample": lambda: sampler.grid_sample(x, grid), "backward": backward}


def torch_functions(case: Dict[str, object]) -> Dict[str, Callable[[], object]]:
    size = list(case["size"])
    x = torch.from_numpy(case["x"])
    theta = torch.from_numpy(case["theta"])
    grid = torch.from_numpy(case["grid"])
    grad_output = torch.from_numpy(case["grad_output"])

    def forward():
        with torch.no_grad():
            return F.grid_sample(x, F.affine_grid(theta, size, align_corners=False), align_corners=False)

    def grid_sample_only():
        with torch.no_grad():
            return F.grid_sample(x, grid, align_corners=False)

    # Backward only: the graph is built once, autograd.grad walks it on every call.
    x_req, theta_req = x.clone().requires_grad_(), theta.clone().requires_grad_()
    out = F.grid_sample(x_req, F.affine_grid(theta_req, size, align_corners=False), align_corners=False)

    def backward():
        return torch.autograd.grad(out, (x_req, theta_req), grad_output, retain_graph=True)

    return {"forward": forward, "grid_sample": grid_sample_only, "backward": backward}


def measure(case: Dict[str, object], threads: int, with_torch: bool) -> Dict[str, Timings]:
    """NumPy (and PyTorch with ``threads`` threads) timings for one image size."""
    torch.set_num_threads(threads)
    functions = {("numpy", p): f for p, f in numpy_functions(case).items()}
    if with_torch:
        functions.update({("torch", p): f for p, f in torch_functions(case).items()})
    best = race(functions)
    result: Dict[str, Timings] = {}
    for (side, pass_), seconds in best.items():
        result.setdefault(side, {})[pass_] = seconds
    return result


def print_table(rows: List[Dict[str, object]], numpy_key: str, title: str, threads: int) -> None:
    print(title)
    print(f"  {'image':<8} {'pass':<12} {'NumPy ms':>9} {f'torch {threads}T ms':>12} {'ratio':>7}"
          f" {'torch 1T ms':>12} {'ratio':>7}")
    for row in rows:
        numpy_ms = row[numpy_key] * 1e3
        torch_ms, torch1_ms = row["torch_s"] * 1e3, row["torch_1_thread_s"] * 1e3
        print(f"  {row['image']:<8} {row['pass']:<12} {numpy_ms:>9.3f} {torch_ms:>12.3f} {numpy_ms / torch_ms:>6.2f}x"
              f" {torch1_ms:>12.3f} {numpy_ms / torch1_ms:>6.2f}x")


def main() -> None:
    threads = torch.get_num_threads()  # PyTorch's default for this machine
    load: Optional[float] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    cases = {f"{c}x{h}x{w}": make_case(c, h, w) for c, h, w in IMAGES}

    default_threads = {name: measure(case, threads, with_torch=True) for name, case in cases.items()}
    one_thread = {name: measure(case, 1, with_torch=True) for name, case in cases.items()}
    torch.set_num_threads(threads)
    kept_memory = keep_freed_memory()
    numpy_kept = {name: measure(case, threads, with_torch=False)["numpy"] for name, case in cases.items()} \
        if kept_memory else {}

    rows = []
    for name in cases:
        for pass_ in PASSES:
            # Each NumPy time is the best over both of its default-malloc races.
            numpy_s = min(default_threads[name]["numpy"][pass_], one_thread[name]["numpy"][pass_])
            row = {
                "image": name,
                "pass": pass_,
                "numpy_s": numpy_s,
                "torch_s": default_threads[name]["torch"][pass_],
                "torch_1_thread_s": one_thread[name]["torch"][pass_],
            }
            row["ratio"] = row["numpy_s"] / row["torch_s"]
            row["ratio_1_thread"] = row["numpy_s"] / row["torch_1_thread_s"]
            if kept_memory:
                row["numpy_kept_memory_s"] = numpy_kept[name][pass_]
                row["ratio_kept_memory"] = row["numpy_kept_memory_s"] / row["torch_s"]
                row["ratio_kept_memory_1_thread"] = row["numpy_kept_memory_s"] / row["torch_1_thread_s"]
            rows.append(row)

    print(f"batch {BATCH}, float32, bilinear, zeros, align_corners=False; torch {torch.__version__} "
          f"(default {threads} threads), numpy {np.__version__}; best of {REPEAT} x {NUMBER} calls"
          + (f"; load average {load:.1f} at start" if load is not None else ""))
    print("forward = affine_grid + grid_sample; backward = dL/dinput and dL/dtheta from dL/doutput; "
          "ratio = NumPy / torch\n")
    print_table(rows, "numpy_s", "NumPy with glibc's default malloc settings:", threads)
    if kept_memory:
        print()
        print_table(rows, "numpy_kept_memory_s", "NumPy with freed memory kept in the process (mallopt):", threads)

    path = save_result(
        "sampler_benchmark",
        {
            "settings": {"batch": BATCH, "dtype": "float32", "mode": "bilinear", "padding_mode": "zeros",
                         "align_corners": False, "number": NUMBER, "repeat": REPEAT,
                         "torch_threads_default": threads, "load_average_1min_at_start": load,
                         "timing": "best of `repeat` timings of `number` calls, seconds per call; "
                                   "NumPy and torch timed in alternation"},
            "passes": {"forward": "affine_grid + grid_sample", "grid_sample": "grid_sample only",
                       "backward": "grid_sample_backward + affine_grid_backward vs torch.autograd.grad"},
            "malloc_kept_memory_measured": kept_memory,
            "rows": rows,
        },
        command=COMMAND,
    )
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
