"""Coordinates for pictures (stn_course.coordinates): where a grid reads, in input pixels,
checked against the sampler's own grids and against PyTorch's grid_sample."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from stn_course import coordinates, sampler


IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
H, W = 5, 8  # non-square on purpose: x and y must not be mixed up


@pytest.mark.parametrize("align_corners", [True, False])
def test_identity_corners_are_the_image_corners(align_corners):
    corners = coordinates.region_corners(IDENTITY, (H, W), align_corners)
    expected = [[0, 0], [W - 1, 0], [W - 1, H - 1], [0, H - 1]]  # TL, TR, BR, BL pixel centres
    np.testing.assert_allclose(corners, expected, atol=1e-12)


@pytest.mark.parametrize("align_corners", [True, False])
@pytest.mark.parametrize("out_hw", [(H, W), (3, 11), (1, 4)])
def test_corners_are_the_grid_corners(align_corners, out_hw):
    rng = np.random.default_rng(0)
    theta = IDENTITY + 0.3 * rng.standard_normal((2, 3))
    corners = coordinates.region_corners(theta, (H, W), align_corners, out_hw)
    grid = sampler.affine_grid(theta[None], (1, 1) + out_hw, align_corners=align_corners)[0]
    pix = coordinates.grid_to_pixels(grid, (H, W), align_corners)
    np.testing.assert_allclose(corners, pix[[0, 0, -1, -1], [0, -1, -1, 0]], atol=1e-12)
    matrix = np.vstack([theta, [0.1, -0.2, 1.0]])  # the same for a homography, with its divide
    corners = coordinates.region_corners(matrix, (H, W), align_corners, out_hw)
    grid = sampler.homography_grid(matrix[None], (1, 1) + out_hw, align_corners=align_corners)[0]
    pix = coordinates.grid_to_pixels(grid, (H, W), align_corners)
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
    corners = coordinates.region_corners(theta, (H, W), align_corners, (6, 7))
    np.testing.assert_allclose(corners, sampled, atol=1e-9)


@pytest.mark.parametrize("align_corners", [True, False])
def test_zoom_in_gives_half_size_region_centred(align_corners):
    full = coordinates.region_corners(IDENTITY, (H, W), align_corners)
    half = coordinates.region_corners([[0.5, 0, 0], [0, 0.5, 0]], (H, W), align_corners)
    centre = [(W - 1) / 2, (H - 1) / 2]
    np.testing.assert_allclose(half.mean(axis=0), centre, atol=1e-12)
    np.testing.assert_allclose(half - centre, 0.5 * (full - centre), atol=1e-12)
    assert coordinates.sample_spacing(half, (H, W)) == pytest.approx(0.5)


@pytest.mark.parametrize("align_corners", [True, False])
def test_translation_moves_region_right_and_down(align_corners):
    base = coordinates.region_corners(IDENTITY, (H, W), align_corners)
    moved = coordinates.region_corners(torch.tensor([[1, 0, 0.5], [0, 1, -0.25]]), (H, W), align_corners)
    # normalised units: the full width (2 units) spans W (or W - 1) pixels
    sx = (W - 1) / 2 if align_corners else W / 2
    sy = (H - 1) / 2 if align_corners else H / 2
    np.testing.assert_allclose(moved - base, np.tile([0.5 * sx, -0.25 * sy], (4, 1)), atol=1e-12)


def test_region_corners_refuses_other_shapes():
    with pytest.raises(ValueError, match="matrix"):
        coordinates.region_corners(np.eye(4), (H, W), False)


def test_grid_outline_is_the_closed_border_of_the_grid():
    grid = sampler.affine_grid(IDENTITY[None], (1, 1, 3, 4), align_corners=True)[0]
    path = coordinates.grid_outline_pixels(grid, (3, 4), True)
    expected = [(0, 0), (1, 0), (2, 0), (3, 0), (3, 1), (3, 2), (2, 2), (1, 2), (0, 2), (0, 1), (0, 0)]
    np.testing.assert_allclose(path, expected, atol=1e-12)


def test_bilinear_neighbours_match_torch():
    img = np.random.default_rng(3).random((3, 3))
    x, y = 0.7, 1.4
    weights = coordinates.bilinear_neighbours(x, y)
    assert set(weights) == {(0, 1), (1, 1), (0, 2), (1, 2)}
    assert weights[(1, 1)] == pytest.approx(0.7 * 0.6) and abs(sum(weights.values()) - 1) < 1e-12
    value = sum(w * img[yy, xx] for (xx, yy), w in weights.items())
    g = torch.tensor([[[sampler.normalise([x, y], 3, True).tolist()]]], dtype=torch.float64)
    ref = F.grid_sample(torch.from_numpy(img)[None, None], g, align_corners=True)
    assert abs(value - ref.item()) < 1e-12
