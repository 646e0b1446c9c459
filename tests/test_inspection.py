"""Looking inside a model: every tool runs it in eval mode and gives it back as it was."""
import pytest
import torch
from torch import nn

from stn_course import inspection
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
