"""How long does the θ explorer take to redraw?

Moves the angle slider of a :func:`stn_course.widgets.theta_explorer` on a random RGB
picture (shrunk to at most 160 pixels a side, as in the notebooks) and prints each
redraw's time (``last_render_ms``: drawing the θ view and encoding its PNG). A redraw
well under a second keeps the sliders responsive; this used to be a test, but a time
depends on the machine and what else runs on it, so it is measured here instead.

Run from the repository root: ``python benchmarks/widgets.py [redraws]``.
"""
from __future__ import annotations

import statistics
import sys
from pathlib import Path

try:
    import stn_course  # noqa: F401  (installed with `pip install -e .`)
except ImportError:  # running from a clone without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402

from stn_course.widgets import theta_explorer  # noqa: E402


def redraw_times(redraws: int = 10, side: int = 300) -> list[float]:
    """Milliseconds of ``redraws`` redraws, each after a new angle."""
    explorer = theta_explorer(np.random.default_rng(0).random((side, side - 20, 3)))
    times = []
    for index in range(redraws):
        explorer.sliders["angle"].value = 10.0 * (index + 1)
        times.append(explorer.last_render_ms)
    return times


def main(redraws: int = 10) -> None:
    times = redraw_times(redraws)
    print(f"θ explorer redraw over {len(times)} redraws: best {min(times):.0f} ms, "
          f"median {statistics.median(times):.0f} ms")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
