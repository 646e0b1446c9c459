"""Every classifier by name: the registry builds what it names and refuses what it does not."""

import pytest
import torch

from stn_course import models, registry
from stn_course.names import MODEL_NAMES
from stn_course.registry import build_classifier

MEAN, STD = (0.1307,), (0.3081,)


def test_registry_builds_every_model_it_names_and_lists_them_for_an_unknown_name():
    shapes = {"st-parallel": ((1, 32, 64), 100), "cifar-net-a": ((3, 32, 32), 10), "cifar-net-b": ((3, 32, 32), 10),
              "cifar-resnet": ((3, 32, 32), 10), "cifar-st-resnet": ((3, 32, 32), 10)}
    shapes.update({name: ((3, 32, 32), 43) for name in MODEL_NAMES if name.startswith("gtsrb-")})
    without_transformer = ("cnn", "cifar-resnet", "gtsrb-cnn", "gtsrb-cnn-wide", "gtsrb-bn-cnn", "vit")
    assert MODEL_NAMES == tuple(registry.CLASSIFIERS)
    for name in MODEL_NAMES:
        shape, classes = shapes.get(name, ((1, 28, 28), 10))
        model = build_classifier(name, shape, MEAN * shape[0], STD * shape[0], num_classes=classes).eval()
        assert model(torch.rand(2, *shape)).shape == (2, classes), name
        has_transformer = models.transformer_of(model) is not None
        assert has_transformer == (name not in without_transformer), name
    assert build_classifier("st-cnn-tps", (1, 28, 28), MEAN, STD).transformer.transform == "tps"
    with pytest.raises(ValueError) as error:
        build_classifier("st-cnn-sim", (1, 28, 28), MEAN, STD)
    assert str(error.value) == f"unknown model 'st-cnn-sim'; choose from {', '.join(MODEL_NAMES)}"


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_model_trains_on_the_device_its_parameters_are_on(meta, name):
    shapes = {"st-parallel": ((1, 32, 64), 100)}
    shapes.update({name: ((3, 32, 32), 10) for name in MODEL_NAMES if name.startswith("cifar-")})
    shapes.update({name: ((3, 32, 32), 43) for name in MODEL_NAMES if name.startswith("gtsrb-")})
    shape, classes = shapes.get(name, ((1, 28, 28), 10))
    model = build_classifier(name, shape, MEAN * shape[0], STD * shape[0], num_classes=classes).to(meta)
    logits = model(torch.zeros(2, *shape, device=meta))
    assert logits.device == meta and logits.shape == (2, classes)
    logits.sum().backward()
    assert {p.grad.device for p in model.parameters() if p.requires_grad} == {meta}
