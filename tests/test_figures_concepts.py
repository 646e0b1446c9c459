"""Figures of notebook 00 (stn_course.figures.concepts)."""
import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib.patches import Polygon  # noqa: E402

from stn_course import coordinates  # noqa: E402
from stn_course.figures import concepts  # noqa: E402
from stn_course.figures.sampling import transform_image  # noqa: E402


def test_gallery_shows_each_region_and_its_output():
    image = np.random.default_rng(0).random((20, 24))
    thetas = {"identity": np.eye(2, 3), "zoom": np.array([[0.5, 0.0, 0.2], [0.0, 0.5, 0.0]])}
    fig = concepts.plot_transform_gallery(image, thetas)
    assert [ax.get_title() for ax in fig.axes[:2]] == ["identity", "zoom"]
    region = [p for p in fig.axes[1].patches if isinstance(p, Polygon)][0]
    np.testing.assert_allclose(region.get_xy()[:4], coordinates.region_corners(thetas["zoom"], (20, 24), False))
    np.testing.assert_allclose(fig.axes[3].get_images()[0].get_array(), transform_image(image, thetas["zoom"])[..., 0])
    fig.canvas.draw()


def test_bilinear_kernel_peaks_at_the_pixel_centre():
    fig = concepts.plot_bilinear_kernel()
    line = fig.axes[0].lines[0]
    assert max(line.get_ydata()) == 1.0 and line.get_xdata()[np.argmax(line.get_ydata())] == 0.0
