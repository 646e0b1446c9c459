"""Looking inside a model: every tool runs it in eval mode and gives it back as it was."""
import numpy as np
import pytest
import torch
from torch import nn

from stn_course import inspection
from stn_course.parameterisation import theta_from_params
from stn_course.registry import build_classifier
from stn_course.utils import evaluating

MEAN, STD = (0.1307,), (0.3081,)


@pytest.mark.parametrize("training", [True, False])
def test_evaluating_runs_in_eval_mode_and_restores_the_mode_it_found(training):
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5)).train(training)
    with evaluating(model) as inside:
        assert inside is model and not model.training and not model[1].training
    assert model.training == training and model[1].training == training


@pytest.mark.parametrize("training", [True, False])
def test_evaluating_restores_the_mode_when_the_block_raises(training):
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5)).train(training)
    with pytest.raises(KeyError):
        with evaluating(model):
            raise KeyError("inside")
    assert model.training == training and model[1].training == training


def test_inspection_tools_give_the_model_back_in_training_mode():
    model = build_classifier("st-cnn-aff", (1, 28, 28), MEAN, STD).train()
    images = torch.rand(3, 1, 28, 28)
    outputs, params, grids = inspection.apply_transformer(model, images)
    assert outputs.shape == (3, 1, 28, 28) and params.shape == (3, 6) and grids.shape == (3, 28, 28, 2)
    torch.testing.assert_close(outputs, images)  # a fresh transformer is the identity
    assert inspection.grad_cam(model, images).shape == (3, 14, 14)  # the last conv, before its pool
    assert inspection.decomposed_theta(model, images)["scale"][0] == pytest.approx([1.0] * 3)
    assert all(module.training for module in model.modules())
    series = build_classifier("st-series", (1, 28, 28), MEAN, STD).train()
    inspection.series_regions(series, images)
    assert all(module.training for module in series.modules())


def test_grad_cam_restores_the_mode_when_the_model_fails():
    model = build_classifier("st-cnn-aff", (1, 28, 28), MEAN, STD).train()
    with pytest.raises(RuntimeError):
        inspection.grad_cam(model, torch.rand(2, 1, 20, 20))  # wrong input size for the classifier
    assert all(module.training for module in model.modules())
    assert not model.classifier.features[3]._forward_hooks, "the hook is removed"


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
    cam = inspection.grad_cam(model, images, layer=model.features, target=torch.tensor([1, 1]))
    assert cam.shape == (2, 28, 28) and cam.max() == pytest.approx(1.0)
    assert cam[:, :, :14].max() == 0 and cam[:, :, 14:].min() > 0
    cam_left = inspection.grad_cam(model, images, layer=model.features, target=torch.tensor([0, 0]))
    assert cam_left[:, :, 14:].max() == 0 and cam_left[:, :, :14].min() > 0


def test_grad_cam_layer_is_outside_the_localisation_network():
    model = build_classifier("st-cnn-aff", (1, 28, 28), MEAN, STD)
    assert inspection.last_classifier_conv(model) is model.classifier.features[3]
    cam = inspection.grad_cam(model, torch.rand(4, 1, 28, 28))
    assert cam.shape == (4, 14, 14)  # the second convolution works at 14x14
    assert model.training, "the model's mode is restored"


def test_decomposed_theta_reads_the_transformers_theta():
    model = build_classifier("st-cnn-aff", (1, 28, 28), MEAN, STD)
    with torch.no_grad():  # make the transformer predict a 30° rotation at scale 0.8
        model.transformer.localisation[-1].bias.copy_(
            torch.tensor(theta_from_params(angle=30, scale=0.8)).flatten())
    params = inspection.decomposed_theta(model, torch.rand(3, 1, 28, 28))
    np.testing.assert_allclose(params["angle"], [30, 30, 30], atol=1e-4)
    np.testing.assert_allclose(params["scale"][0], [0.8] * 3, atol=1e-5)
    np.testing.assert_allclose(params["zoom"], [1 / 0.8] * 3, rtol=1e-5)  # the one zoom: above 1 magnifies
    with pytest.raises(ValueError, match="affine"):
        inspection.decomposed_theta(build_classifier("cnn", (1, 28, 28), MEAN, STD), torch.rand(1, 1, 28, 28))


def test_every_inspection_tool_takes_images_on_any_device_and_answers_on_the_cpu(meta):
    model = build_classifier("st-cnn-aff", (1, 28, 28), (0.5,), (0.5,)).to(meta)
    series = build_classifier("st-series", (1, 28, 28), (0.5,), (0.5,)).to(meta)
    for images in (torch.zeros(2, 1, 28, 28), torch.zeros(2, 1, 28, 28, device=meta)):
        outputs = [*inspection.apply_transformer(model, images), inspection.grad_cam(model, images),
                   *inspection.series_regions(series, images)]
        assert {tensor.device.type for tensor in outputs} == {"cpu"}
        assert inspection.decomposed_theta(model, images)["angle"].shape == (2,)
