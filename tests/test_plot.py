"""Drawing primitives (stn_course.plot): arrays in, checked; outlines drawn where they are given."""
import matplotlib

matplotlib.use("Agg")

import ast  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import Polygon  # noqa: E402

from stn_course import plot  # noqa: E402
from stn_course.utils import repo_root  # noqa: E402


@pytest.mark.parametrize("shape, expected", [((12, 10), (12, 10, 1)), ((12, 10, 3), (12, 10, 3)),
                                             ((3, 12, 10), (12, 10, 3)), ((1, 3, 12, 10), (12, 10, 3))])
def test_as_hwc_puts_channels_last(shape, expected):
    assert plot.as_hwc(np.zeros(shape)).shape == expected
    assert plot.as_hwc(torch.zeros(shape)).shape == expected


@pytest.mark.parametrize("shape", [(5,), (2, 4, 5), (4, 5, 2), (2, 3, 4, 5), (1, 1, 1, 4, 5), (0, 5)])
def test_bad_image_shapes_raise(shape):
    with pytest.raises(ValueError):
        plot.as_hwc(np.zeros(shape))


def test_as_hwc_scales_uint8_and_refuses_booleans():
    np.testing.assert_allclose(plot.as_hwc(np.full((2, 2), 255, np.uint8)), 1.0)
    with pytest.raises(ValueError):
        plot.as_hwc(np.zeros((2, 2), bool))


def test_theta_and_sizes_are_checked():
    assert plot.as_theta(torch.eye(2, 3)[None]).shape == (2, 3)
    with pytest.raises(ValueError):
        plot.as_theta(np.eye(3))
    assert plot.check_hw((3.0, 4)) == (3, 4)
    with pytest.raises(ValueError):
        plot.check_hw((0, 4))


def test_format_theta():
    assert plot.format_theta([[1, -0.0, 0], [0, 1, 0.006]]) == "[[1.00, 0.00, 0.00], [0.00, 1.00, 0.01]]"


def test_outlines_are_drawn_where_they_are_given():
    fig = plot.new_figure((3, 3))
    ax = fig.add_subplot()
    corners = np.array([[0.0, 0.0], [4.0, 0.5], [4.5, 3.0], [0.5, 2.5]])
    assert plot.draw_region(ax, corners) is not None
    polygon = [p for p in ax.patches if isinstance(p, Polygon)]
    np.testing.assert_allclose(polygon[0].get_xy()[:4], corners)
    path = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    plot.draw_outline(ax, path, corners)
    np.testing.assert_allclose(np.asarray(ax.lines[-1].get_xydata()), path)
    pix = np.stack(np.meshgrid(np.arange(30.0), np.arange(20.0)), axis=-1)  # (20, 30, 2)
    lines_before = len(ax.lines)
    plot.draw_grid_lines(ax, pix, step=10)
    assert len(ax.lines) - lines_before == 3 + 4  # rows 0, 10, 19; columns 0, 10, 20, 29
    plot.set_view_limits(ax, (20, 30), corners)
    assert ax.get_ylim()[0] > ax.get_ylim()[1]  # y axis downwards, as images are drawn
    plot.draw_image_border(ax, (20, 30))
    fig.canvas.draw()


def test_figures_show_themselves_as_png():
    fig = plot.new_figure((1, 1))
    assert fig._repr_png_().startswith(b"\x89PNG")


def test_plot_only_draws():
    """plot.py imports no model, sampler, coordinates, geometry or torch code, and calls no grid_sample."""
    tree = ast.parse((repo_root() / "stn_course" / "plot.py").read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {f"{node.module}.{alias.name}" if node.module else alias.name
                 for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert all(name.split(".")[0] in {"__future__", "io", "matplotlib", "numpy", "typing"} for name in imported), imported
    called = {node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
              for node in ast.walk(tree) if isinstance(node, ast.Call)}
    assert "grid_sample" not in called
