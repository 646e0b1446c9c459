"""Puts every pytest run (unit tests and ``--nbval`` notebooks) in quick mode, on the CPU.

The variables are set before nbval starts any kernel, so notebooks see them too:
small subsets, few steps, and all figures, results and checkpoints written to a
temporary folder, so that a test run leaves ``git status`` clean.
"""
import os
import tempfile
from pathlib import Path


def pytest_configure(config):
    os.environ["STN_COURSE_QUICK"] = "1"
    os.environ["STN_COURSE_OUTPUT"] = tempfile.mkdtemp(prefix="stn_course_test_")
    # Decoded tensors are kept between test runs, outside the repository and outside
    # a (possibly shared, read-only) data root.
    os.environ.setdefault("STN_COURSE_CACHE", str(Path(tempfile.gettempdir()) / "stn_course_cache"))
    # Tests (and notebooks under nbval) run on the CPU, where results are reproducible and
    # recorded, unless a test is about the device: a GPU would otherwise train them in float16.
    # STN_COURSE_TEST_DEVICE=cuda runs them on a GPU on purpose (benchmarks/gpu_check.py).
    os.environ["STN_COURSE_DEVICE"] = os.environ.get("STN_COURSE_TEST_DEVICE", "cpu")
    # Progress bars would write to stderr, which nbval compares.
    os.environ.setdefault("TQDM_DISABLE", "1")
