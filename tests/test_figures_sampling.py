"""Notebook 01's figures and the θ view (stn_course.figures.sampling): they draw the
coordinates of stn_course.coordinates (tested in test_coordinates.py) and the images of the
NumPy sampler."""
import re

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Polygon  # noqa: E402

from stn_course import coordinates, plot  # noqa: E402
from stn_course.figures import sampling  # noqa: E402

IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


@pytest.mark.parametrize("shape", [(12, 10), (12, 10, 3), (3, 12, 10), (1, 12, 10), (12, 10, 1), (1, 3, 12, 10)])
def test_plot_theta_view_gray_and_rgb(shape):
    rng = np.random.default_rng(1)
    image = rng.random(shape)
    theta = [[0.8, -0.3, 0.1], [0.3, 0.8, 0.0]]
    view = sampling.plot_theta_view(image, theta, align_corners=False)
    assert isinstance(view, sampling.ThetaView) and isinstance(view.figure, Figure)
    assert len(view.figure.axes) == 3
    channels = 3 if 3 in shape[:1] + shape[-1:] or len(shape) == 4 else 1
    assert view.output.shape == (12, 10, channels)
    np.testing.assert_allclose(view.output, sampling.transform_image(image, theta, None, False))
    np.testing.assert_allclose(view.corners, coordinates.region_corners(theta, (12, 10), False))
    # the region drawn on the input panel is the one returned
    polygon = [p for p in view.figure.axes[0].patches if isinstance(p, Polygon)]
    assert len(polygon) == 1 and np.allclose(polygon[0].get_xy()[:4], view.corners)
    # a different output size, redrawn into the same figure and, being faster, its same axes
    axes = list(view.figure.axes)
    view2 = sampling.plot_theta_view(image, theta, align_corners=True, padding_mode="border", out_hw=(7, 9),
                                 fig=view.figure)
    assert view2.figure is view.figure and view.figure.axes == axes
    assert view2.output.shape == (7, 9, channels)
    np.testing.assert_allclose(view2.corners, coordinates.region_corners(theta, (12, 10), True, (7, 9)))
    view.figure.canvas.draw()  # renders without error


def test_plot_theta_view_accepts_torch_and_uint8():
    img = torch.rand(1, 9, 9)
    view = sampling.plot_theta_view(img, torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]), align_corners=True)
    np.testing.assert_allclose(view.output[:, :, 0], img[0].numpy(), atol=1e-6)
    u8 = (np.arange(81, dtype=np.uint8).reshape(9, 9))
    view = sampling.plot_theta_view(u8, IDENTITY, align_corners=True)
    np.testing.assert_allclose(view.output[:, :, 0], u8 / 255.0, atol=1e-12)


@pytest.mark.parametrize("shape", [(5,), (2, 4, 5), (4, 5, 2), (2, 3, 4, 5), (1, 1, 1, 4, 5), (0, 5)])
def test_bad_image_shapes_raise(shape):
    with pytest.raises(ValueError):
        sampling.plot_theta_view(np.zeros(shape), IDENTITY)


def test_bad_theta_raises():
    with pytest.raises(ValueError):
        sampling.plot_theta_view(np.zeros((4, 4)), np.eye(3))


@pytest.mark.parametrize("align_corners", [True, False])
def test_identity_output_equals_input(align_corners):
    image = np.random.default_rng(2).random((6, 7, 3))
    out = sampling.transform_image(image, IDENTITY, None, align_corners)
    np.testing.assert_allclose(out, image, atol=1e-12)


def _images_shown(fig: Figure) -> list:
    return [image.get_array() for ax in fig.axes for image in ax.get_images()]


def test_notebook_pictures_draw_what_they_say():
    rng = np.random.default_rng(4)
    digit = rng.random((28, 28))

    conventions = sampling.plot_align_corners_conventions(4)
    labels = [[t.get_text() for t in ax.texts if re.fullmatch(r"[+-]\d\.\d\d", t.get_text())]
              for ax in conventions.axes]
    assert labels == [["-1.00", "-0.33", "+0.33", "+1.00"], ["-0.75", "-0.25", "+0.25", "+0.75"]]

    patch = rng.random((3, 3))
    bilinear = sampling.plot_bilinear_example(patch, 0.6, 1.3)
    expected = sum(w * patch[yy, xx] for (xx, yy), w in coordinates.bilinear_neighbours(0.6, 1.3).items())
    assert f"value {expected:.4f}" in bilinear.axes[0].get_title()

    difference = sampling.plot_align_corners_difference(digit, [[0.5, 0, 0], [0, 0.5, 0]])
    shown = _images_shown(difference)
    np.testing.assert_allclose(shown[2], shown[0] - shown[1], atol=1e-12)

    pattern = sampling.zone_plate(64)
    aliasing = sampling.plot_aliasing(pattern, IDENTITY, (16, 16))
    _, naive, smooth = _images_shown(aliasing)
    assert naive.shape == smooth.shape == (16, 16)
    assert smooth.std() < naive.std(), "blurring first removes the aliased rings"
    assert "σ=2.0 px" in aliasing.axes[2].get_title()  # half of the 4-pixel sample spacing

    matrix = [[1.0, 0.2, 0], [0.0, 1.0, 0], [0.3, 0.0, 1.0]]
    homography = sampling.plot_homography(digit, matrix)
    polygon = [p for p in homography.axes[0].patches if isinstance(p, Polygon)]
    np.testing.assert_allclose(polygon[0].get_xy()[:4], coordinates.region_corners(matrix, (28, 28), False))
    for fig in (conventions, bilinear, difference, aliasing, homography):
        fig.canvas.draw()


def test_padding_pitfall_fixes_keep_background():
    digit = np.zeros((10, 10))
    digit[4:6, 4:6] = 1.0
    fig = sampling.plot_padding_pitfall(digit, [[2.0, 0, 0], [0, 2.0, 0]])
    assert len(fig.axes) == 5  # four panels and a colour bar
    bg = -0.1307 / 0.3081
    wrong = sampling.transform_image((digit - 0.1307) / 0.3081, [[2.0, 0, 0], [0, 2.0, 0]], None, False)
    assert np.isclose(wrong[0, 0, 0], 0.0) and not np.isclose(wrong[0, 0, 0], bg)


def test_figures_show_themselves_as_png():
    view = sampling.plot_theta_view(np.zeros((4, 4)), IDENTITY)
    assert view.figure._repr_png_().startswith(b"\x89PNG")
    assert view._repr_png_().startswith(b"\x89PNG")


def test_gaussian_blur_keeps_constants_and_mean_and_smooths():
    const = np.full((2, 10, 12), 0.3)
    np.testing.assert_allclose(sampling.gaussian_blur(const, 2.0), const)
    rng = np.random.default_rng(0)
    noise = rng.random((1, 3, 32, 32))
    blurred = sampling.gaussian_blur(noise, 1.5)
    assert blurred.shape == noise.shape
    assert blurred.std() < 0.5 * noise.std()
    assert blurred.mean() == pytest.approx(noise.mean(), abs=0.02)
    np.testing.assert_array_equal(sampling.gaussian_blur(noise, 0), noise)
    impulse = np.zeros((9, 9))
    impulse[4, 4] = 1.0
    spread = sampling.gaussian_blur(impulse, 1.0)
    assert spread.sum() == pytest.approx(1.0) and spread[4, 4] == spread.max()
    np.testing.assert_allclose(spread, spread.T, atol=1e-15)  # rows and columns alike


def test_draw_helpers_return_what_they_drew():
    fig = plot.new_figure((3, 3))
    ax = fig.add_subplot()
    theta = [[0.5, 0.0, 0.25], [0.0, 0.5, 0.0]]
    corners = sampling.draw_sampled_region(ax, theta, (10, 12), False, out_hw=(4, 5))
    np.testing.assert_allclose(corners, coordinates.region_corners(theta, (10, 12), False, (4, 5)))
    pix = sampling.draw_sampling_grid(ax, theta, (10, 12), (4, 5), False)
    assert pix.shape == (4, 5, 2)
    np.testing.assert_allclose(pix[0, 0], corners[0])
    grid = np.stack(np.meshgrid(np.linspace(-0.5, 0.5, 5), np.linspace(-0.5, 0.5, 4)), axis=-1)
    path = sampling.draw_grid_outline(ax, grid, (10, 12), False)
    np.testing.assert_allclose(path, coordinates.grid_outline_pixels(grid, (10, 12), False))
