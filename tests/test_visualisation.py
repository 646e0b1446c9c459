"""Tools for looking inside trained spatial transformers (notebook 05): Grad-CAM, θ read back,
the moving digit. (Their figures: test_figures_visualising.py.)"""
import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from stn_course.distortions import moving_digit  # noqa: E402
from stn_course.figures import visualising  # noqa: E402
from stn_course.inspection import decomposed_theta, grad_cam, last_classifier_conv  # noqa: E402
from stn_course.registry import build_classifier  # noqa: E402

MEAN, STD = (0.1307,), (0.3081,)


def _blob(size=28):
    image = torch.zeros(1, 1, size, size)
    image[..., 8:20, 11:17] = 1.0
    return image


def test_moving_digit_follows_a_closed_path_and_animates(tmp_path):
    frames, params = moving_digit(_blob(), frames=12)
    assert frames.shape == (12, 1, 42, 42)
    assert params["angle"].shape == (12,) and params["shift_px"].shape == (12, 2)
    assert not torch.equal(frames[0], frames[3])
    path = visualising.animate_moving_input(frames, frames, tmp_path / "moving.gif")
    with Image.open(path) as gif:
        assert gif.n_frames == 12


def test_grad_cam_finds_the_evidence():
    """A hand-made classifier: channel 0 sees the left half, channel 1 the right half, and
    class 1's score is channel 1's total, so its evidence is the right half only."""
    class HalfFeatures(torch.nn.Module):
        def __init__(self):
            super().__init__()
            mask = torch.zeros(1, 2, 28, 28)
            mask[:, 0, :, :14] = 1
            mask[:, 1, :, 14:] = 1
            self.register_buffer("mask", mask)
            self.gain = torch.nn.Parameter(torch.ones(()))

        def forward(self, x):
            return x.expand(-1, 2, -1, -1) * self.mask * self.gain

    class Halves(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.features = HalfFeatures()

        def forward(self, x):
            return self.features(x).sum(dim=(2, 3))

    images = torch.rand(2, 1, 28, 28) + 0.1
    model = Halves()
    cam = grad_cam(model, images, layer=model.features, target=torch.tensor([1, 1]))
    assert cam.shape == (2, 28, 28) and cam.max() == pytest.approx(1.0)
    assert cam[:, :, :14].max() == 0 and cam[:, :, 14:].min() > 0
    cam_left = grad_cam(model, images, layer=model.features, target=torch.tensor([0, 0]))
    assert cam_left[:, :, 14:].max() == 0 and cam_left[:, :, :14].min() > 0


def test_grad_cam_layer_is_outside_the_localisation_network():
    model = build_classifier("st-cnn-aff", (1, 28, 28), MEAN, STD)
    assert last_classifier_conv(model) is model.classifier.features[3]
    cam = grad_cam(model, torch.rand(4, 1, 28, 28))
    assert cam.shape == (4, 14, 14)  # the second convolution works at 14x14
    assert model.training, "the model's mode is restored"


def test_decomposed_theta_reads_the_transformers_theta():
    model = build_classifier("st-cnn-aff", (1, 28, 28), MEAN, STD)
    with torch.no_grad():  # make the transformer predict a 30° rotation at scale 0.8
        from stn_course.parameterisation import theta_from_params
        model.transformer.localisation[-1].bias.copy_(
            torch.tensor(theta_from_params(angle=30, scale=0.8)).flatten())
    params = decomposed_theta(model, torch.rand(3, 1, 28, 28))
    np.testing.assert_allclose(params["angle"], [30, 30, 30], atol=1e-4)
    np.testing.assert_allclose(params["scale"][0], [0.8] * 3, atol=1e-5)
    with pytest.raises(ValueError, match="affine"):
        decomposed_theta(build_classifier("cnn", (1, 28, 28), MEAN, STD), torch.rand(1, 1, 28, 28))
