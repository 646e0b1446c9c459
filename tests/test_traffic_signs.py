"""What notebook 06 reads from the traffic-sign models and data (stn_course.traffic_signs)."""
import numpy as np
import pytest
import torch

from stn_course.parameterisation import theta_from_params
from stn_course.traffic_signs import crop_analysis, input_theta, input_zoom


class _Input(torch.nn.Module):
    """A stand-in input transformer predicting a fixed θ (as the course's models' transform_input does)."""

    def __init__(self, theta: np.ndarray) -> None:
        super().__init__()
        self.theta = torch.nn.Parameter(torch.tensor(theta, dtype=torch.float32).flatten())

    def transform_input(self, images):
        params = self.theta.expand(len(images), 6)
        return images, params, None


def test_input_zoom_is_the_courses_one_zoom():
    model = torch.nn.Module()
    model.input_transformer = _Input(theta_from_params(scale=0.8))  # samples 80% of the side
    images = torch.rand(3, 3, 32, 32)
    assert input_theta(model, images).shape == (3, 2, 3)
    np.testing.assert_allclose(input_zoom(model, images).numpy(), [1 / 0.8] * 3, rtol=1e-6)  # magnifies x1.25


def test_crop_analysis_holds_the_photographs_size_fixed():
    """A zoom that follows only the photograph's size correlates with the sign's fill zoom
    (both depend on the size) but not once the size is held fixed."""
    generator = np.random.default_rng(0)
    side = np.exp(generator.uniform(np.log(25), np.log(250), 2000))
    log_side = np.log(side)
    fraction = 1 / (2.2 - 0.2 * log_side + generator.normal(0, 0.03, 2000))  # fill zoom linear in log side
    zoom = 2.5 - 0.2 * log_side + generator.normal(0, 0.03, 2000)  # follows the size alone
    theta = torch.zeros(2000, 2, 3, dtype=torch.float64)
    theta[:, 0, 0] = torch.tensor(0.9 / zoom)
    theta[:, 1, 1] = torch.tensor(1 / (0.9 * zoom))  # a11/a22 = 0.81, det = 1/zoom²
    crop = crop_analysis(theta, torch.tensor(fraction), torch.tensor(side))
    assert crop.r_zoom_fill > 0.5 and crop.r_fill_side < -0.5
    assert abs(crop.r_partial) < 0.1, "nothing left once the size is held fixed"
    assert len(crop.r_within_bins) == 4 and max(crop.r_within_bins) < crop.r_zoom_fill  # bins only narrow it
    np.testing.assert_allclose(crop.zoom, zoom, rtol=1e-9)
    assert crop.aspect == pytest.approx(0.81)
    assert "partial r = " in str(crop) and "median a11/a22 = 0.81" in str(crop)
