"""Puts every pytest run (unit tests and ``--nbval`` notebooks) in quick mode.

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
    # Progress bars would write to stderr, which nbval compares.
    os.environ.setdefault("TQDM_DISABLE", "1")
