"""Tests for stn_course.plot: the sampled-region geometry, the θ view, the notebook pictures."""
import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from stn_course import plot, sampler  # noqa: E402

IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
H, W = 5, 8  # non-square on purpose: x and y must not be mixed up


@pytest.mark.parametrize("align_corners", [True, False])
def test_identity_corners_are_the_image_corners(align_corners):
    corners = plot.sampled_region_corners(IDENTITY, (H, W), align_corners)
    expected = [[0, 0], [W - 1, 0], [W - 1, H - 1], [0, H - 1]]  # TL, TR, BR, BL pixel centres
    np.testing.assert_allclose(corners, expected, atol=1e-12)


@pytest.mark.parametrize("align_corners", [True, False])
@pytest.mark.parametrize("out_hw", [(H, W), (3, 11), (1, 4)])
def test_corners_are_the_grid_corners(align_corners, out_hw):
    rng = np.random.default_rng(0)
    theta = IDENTITY + 0.3 * rng.standard_normal((2, 3))
    corners = plot.sampled_region_corners(theta, (H, W), align_corners, out_hw)
    grid = sampler.affine_grid(theta[None], (1, 1) + out_hw, align_corners=align_corners)[0]
    pix = plot.grid_to_pixels(grid, (H, W), align_corners)
    np.testing.assert_allclose(corners, pix[[0, 0, -1, -1], [0, -1, -1, 0]], atol=1e-12)


@pytest.mark.parametrize("align_corners", [True, False])
def test_corners_are_where_torch_takes_its_samples(align_corners):
    """Sample ramps whose value is the x (resp. y) pixel coordinate: at the output's
    corners torch's grid_sample must return exactly the corner coordinates we draw."""
    theta = np.array([[0.6, -0.2, 0.1], [0.25, 0.5, -0.15]])  # the region lies inside the image
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float64)
    ramps = torch.from_numpy(np.stack([xs, ys])[None])
    grid = F.affine_grid(torch.from_numpy(theta[None]), (1, 2, 6, 7), align_corners=align_corners)
    out = F.grid_sample(ramps, grid, mode="bilinear", padding_mode="zeros", align_corners=align_corners)
    out = out[0].numpy()  # (2, 6, 7): sampled x and y pixel coordinates
    rows, cols = [0, 0, -1, -1], [0, -1, -1, 0]  # TL, TR, BR, BL
    sampled = np.stack([out[0][rows, cols], out[1][rows, cols]], axis=-1)
    corners = plot.sampled_region_corners(theta, (H, W), align_corners, (6, 7))
    np.testing.assert_allclose(corners, sampled, atol=1e-9)


@pytest.mark.parametrize("align_corners", [True, False])
def test_zoom_in_gives_half_size_region_centred(align_corners):
    full = plot.sampled_region_corners(IDENTITY, (H, W), align_corners)
    half = plot.sampled_region_corners([[0.5, 0, 0], [0, 0.5, 0]], (H, W), align_corners)
    centre = [(W - 1) / 2, (H - 1) / 2]
    np.testing.assert_allclose(half.mean(axis=0), centre, atol=1e-12)
    np.testing.assert_allclose(half - centre, 0.5 * (full - centre), atol=1e-12)


@pytest.mark.parametrize("align_corners", [True, False])
def test_translation_moves_region_right_and_down(align_corners):
    base = plot.sampled_region_corners(IDENTITY, (H, W), align_corners)
    moved = plot.sampled_region_corners([[1, 0, 0.5], [0, 1, -0.25]], (H, W), align_corners)
    # normalised units: the full width (2 units) spans W (or W - 1) pixels
    sx = (W - 1) / 2 if align_corners else W / 2
    sy = (H - 1) / 2 if align_corners else H / 2
    np.testing.assert_allclose(moved - base, np.tile([0.5 * sx, -0.25 * sy], (4, 1)), atol=1e-12)


def test_unnormalize_matches_formulas():
    assert plot.unnormalize(-1.0, 10, True) == 0.0
    assert plot.unnormalize(1.0, 10, True) == 9.0
    assert plot.unnormalize(-1.0, 10, False) == -0.5
    assert plot.unnormalize(1.0, 10, False) == 9.5


@pytest.mark.parametrize("shape", [(12, 10), (12, 10, 3), (3, 12, 10), (1, 12, 10), (12, 10, 1), (1, 3, 12, 10)])
def test_plot_theta_view_gray_and_rgb(shape):
    rng = np.random.default_rng(1)
    image = rng.random(shape)
    theta = [[0.8, -0.3, 0.1], [0.3, 0.8, 0.0]]
    fig = plot.plot_theta_view(image, theta, align_corners=False)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 3
    channels = 3 if 3 in shape[:1] + shape[-1:] or len(shape) == 4 else 1
    assert fig.stn_output.shape == (12, 10, channels)
    np.testing.assert_allclose(fig.stn_output, plot.transform_image(image, theta, None, False))
    # a different output size, redrawn into the same figure
    fig2 = plot.plot_theta_view(image, theta, align_corners=True, padding_mode="border", out_hw=(7, 9), fig=fig)
    assert fig2 is fig and len(fig.axes) == 3
    assert fig.stn_output.shape == (7, 9, channels)
    fig.canvas.draw()  # renders without error


def test_plot_theta_view_accepts_torch_and_uint8():
    img = torch.rand(1, 9, 9)
    fig = plot.plot_theta_view(img, torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]), align_corners=True)
    np.testing.assert_allclose(fig.stn_output[:, :, 0], img[0].numpy(), atol=1e-6)
    u8 = (np.arange(81, dtype=np.uint8).reshape(9, 9))
    fig = plot.plot_theta_view(u8, IDENTITY, align_corners=True)
    np.testing.assert_allclose(fig.stn_output[:, :, 0], u8 / 255.0, atol=1e-12)


@pytest.mark.parametrize("shape", [(5,), (2, 4, 5), (4, 5, 2), (2, 3, 4, 5), (1, 1, 1, 4, 5), (0, 5)])
def test_bad_image_shapes_raise(shape):
    with pytest.raises(ValueError):
        plot.plot_theta_view(np.zeros(shape), IDENTITY)


def test_bad_theta_raises():
    with pytest.raises(ValueError):
        plot.plot_theta_view(np.zeros((4, 4)), np.eye(3))


@pytest.mark.parametrize("align_corners", [True, False])
def test_identity_output_equals_input(align_corners):
    image = np.random.default_rng(2).random((6, 7, 3))
    out = plot.transform_image(image, IDENTITY, None, align_corners)
    np.testing.assert_allclose(out, image, atol=1e-12)


def test_bilinear_weights_match_torch():
    img = np.random.default_rng(3).random((3, 3))
    x, y = 0.7, 1.4
    weights = plot.bilinear_weights(x, y)
    assert abs(sum(weights.values()) - 1) < 1e-12
    value = sum(w * img[yy, xx] for (xx, yy), w in weights.items())
    # pixel (x, y) -> normalised, align_corners=True
    g = torch.tensor([[[[x / (3 - 1) * 2 - 1, y / (3 - 1) * 2 - 1]]]], dtype=torch.float64)
    ref = F.grid_sample(torch.from_numpy(img)[None, None], g, align_corners=True)
    assert abs(value - ref.item()) < 1e-12


def test_gaussian_blur_keeps_constants_and_mean():
    const = np.full((10, 12), 0.3)
    np.testing.assert_allclose(plot.gaussian_blur(const, 2.0)[:, :, 0], const)
    zp = plot.zone_plate(64)
    blurred = plot.gaussian_blur(zp, 1.5)
    assert blurred.shape == (64, 64, 1)
    assert blurred.std() < zp.std()


def test_notebook_pictures_draw():
    rng = np.random.default_rng(4)
    digit = rng.random((28, 28))
    figs = [
        plot.plot_align_corners_conventions(4),
        plot.plot_bilinear_example(rng.random((3, 3)), 0.6, 1.3),
        plot.plot_padding_pitfall(digit, [[1.4, 0, 0], [0, 1.4, 0]]),
        plot.plot_align_corners_difference(digit, [[0.5, 0, 0], [0, 0.5, 0]]),
        plot.plot_aliasing(plot.zone_plate(64), IDENTITY, (16, 16)),
        plot.plot_homography(digit, [[1.0, 0.2, 0], [0.0, 1.0, 0], [0.3, 0.0, 1.0]]),
    ]
    for fig in figs:
        assert isinstance(fig, Figure)
        fig.canvas.draw()


def test_padding_pitfall_fixes_keep_background():
    digit = np.zeros((10, 10))
    digit[4:6, 4:6] = 1.0
    fig = plot.plot_padding_pitfall(digit, [[2.0, 0, 0], [0, 2.0, 0]])
    assert len(fig.axes) == 5  # four panels and a colour bar
    bg = -0.1307 / 0.3081
    wrong = plot.transform_image((digit - 0.1307) / 0.3081, [[2.0, 0, 0], [0, 2.0, 0]], None, False)
    assert np.isclose(wrong[0, 0, 0], 0.0) and not np.isclose(wrong[0, 0, 0], bg)


def test_format_theta():
    assert plot.format_theta([[1, -0.0, 0], [0, 1, 0.006]]) == "[[1.00, 0.00, 0.00], [0.00, 1.00, 0.01]]"


def test_figures_show_themselves_as_png():
    fig = plot.plot_theta_view(np.zeros((4, 4)), IDENTITY)
    assert fig._repr_png_().startswith(b"\x89PNG")
