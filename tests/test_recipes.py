"""Recipes: a RunConfig refuses each invalid field when it is built; every named recipe is valid."""
import math
from dataclasses import replace

import pytest

from stn_course import recipes
from stn_course.errors import CourseError
from stn_course.recipes import default_config
from stn_course.validation import InvalidSettingError


@pytest.mark.parametrize("field, value", [
    ("epochs", 0), ("epochs", 1.5), ("batch_size", True), ("lr", math.inf), ("weight_decay", -1e-4),
    ("seed", -1), ("log_interval", 0), ("dataset", "imagenet"), ("model", "vgg"), ("variant", "fast"),
    ("amp", "yes"), ("augment", 1), ("window", 0), ("nesterov", True), ("momentum", 0.9)])
def test_run_config_refuses_each_invalid_field_when_built(field, value):
    config = default_config("mnist", "cnn", 2)
    with pytest.raises(InvalidSettingError, match=field) as error:
        replace(config, **{field: value})
    assert isinstance(error.value, CourseError) and isinstance(error.value, ValueError)


def test_valid_settings_and_every_recipe_are_accepted():
    for dataset in recipes.DATASETS:
        for variant in ["", *recipes.VARIANTS]:
            model = "cifar-net-a" if variant == "momentum" else "st-cnn-aff"  # momentum: SGD only
            default_config(dataset, model, 3, variant=variant, quick=True)
    sgd = default_config("cifar10", "cifar-resnet", 2)
    assert (sgd.optimizer, sgd.momentum, sgd.nesterov) == ("sgd", 0.9, True)
    replace(sgd, max_grad_norm=None, window=None, amp=None, train_limit=None, label_smoothing=0.0, lr=1)
