"""Recipes: what a run is (its RunConfig, checked when built), the course's default recipe
per model, variants, and the recipe label that names a run."""

import math
from dataclasses import replace

import pytest
import torch

from stn_course import recipes
from stn_course.errors import CourseError
from stn_course.names import MODEL_OPTIONS
from stn_course.recipes import default_config
from stn_course.validation import InvalidSettingError


def test_quick_shrinks_a_run_only_when_asked():
    config = recipes.default_config("rts-mnist", "st-cnn-aff", epochs=30, quick=True)
    assert (config.epochs, config.train_limit, config.test_limit) == (1, 512, 256)
    # pytest runs in quick mode (conftest.py): the mode variable alone changes nothing
    config = recipes.default_config("rts-mnist", "st-cnn-aff", epochs=30)
    assert (config.epochs, config.train_limit, config.test_limit, config.quick) == (30, None, None, False)


def test_cifar_networks_train_like_the_pytorch_tutorial():
    config = recipes.default_config("cifar10", "cifar-net-b", epochs=50)
    assert (config.optimizer, config.lr, config.batch_size, config.schedule) == ("sgd", 0.01, 64, "constant")
    assert (config.momentum, config.max_grad_norm, config.localisation_lr_scale) == (0.0, None, 1.0)
    assert config.name == "cifar10_cifar-net-b_e50_s0"


def test_a_variant_changes_the_recipe_the_name_and_the_command():
    config = recipes.default_config("cifar10", "cifar-net-a", epochs=50, variant="momentum", quick=True)
    assert (config.momentum, config.localisation_lr_scale) == (0.9, 0.1) and config.name.endswith("_momentum")
    assert config.command().endswith("--variant momentum")
    with pytest.raises(InvalidSettingError, match="variant='adam' is not allowed; variant must be one of ''"):
        recipes.default_config("cifar10", "cifar-net-a", 50, variant="adam", quick=True)


def test_every_setting_changed_by_hand_names_the_run_and_its_command():
    config = recipes.default_config("rts-mnist", "st-cnn-aff", 8, quick=True)
    assert config.recipe == "" and config.name == "rts-mnist_st-cnn-aff_e1_s0", "quick-mode limits name nothing"
    assert replace(config, train_limit=1000).name == "rts-mnist_st-cnn-aff_e1_s0_train_limit=1000", \
        "a limit set by hand names the run, so it never shares the whole run's checkpoint"
    changed = replace(config, window=28, amp=True, lr=0.001, max_grad_norm=None, augment=False)
    assert changed.changes == {"lr": 0.001, "max_grad_norm": None, "augment": False, "window": 28, "amp": True}
    assert changed.name == ("rts-mnist_st-cnn-aff_e1_s0_lr=0.001_max_grad_norm=none_augment=false_window=28_amp=true")
    assert changed.command().endswith("--seed 0 --set lr=0.001 --set max_grad_norm=none --set augment=false "
                                      "--set window=28 --set amp=true")
    # what a variant sets is part of its recipe; only settings beyond it name the run
    variant = recipes.default_config("rts-mnist", "st-cnn-aff", 8, variant="window-28", quick=True)
    assert replace(variant, amp=True).recipe == "window-28_amp=true"
    assert replace(config, **dict(map(recipes.parse_setting, changed.command().split(" --set ")[1:]))) == changed, \
        "the command's settings read back to the same run"


def test_outside_quick_mode_any_limit_names_the_run():
    config = recipes.default_config("mnist", "st-cnn-aff", 5)
    assert config.name == "mnist_st-cnn-aff_e5_s0"
    shrunk = replace(config, train_limit=512, test_limit=256)
    assert shrunk.name == "mnist_st-cnn-aff_e5_s0_train_limit=512_test_limit=256"
    assert shrunk.command().endswith("--set train_limit=512 --set test_limit=256")


def test_settings_are_parsed_to_their_fields_types():
    parse = recipes.parse_setting
    assert parse("window=28") == ("window", 28) and parse("amp=True") == ("amp", True)
    assert parse("dropout=0.5") == ("dropout", 0.5) and parse("batchnorm=true") == ("batchnorm", True)
    assert parse("lr=2e-3") == ("lr", 0.002) and parse("max_grad_norm=none") == ("max_grad_norm", None)
    assert parse("schedule=constant") == ("schedule", "constant")
    assert parse("train_limit=1000") == ("train_limit", 1000)
    for text, message in [("window", "FIELD=VALUE"), ("colour=red", "FIELD=VALUE"), ("epochs=3", "FIELD=VALUE"),
                          ("window=big", "takes an int"), ("amp=maybe", "takes a bool"), ("lr=none", "cannot be none")]:
        with pytest.raises(ValueError, match=message):
            parse(text)


def test_unknown_names_are_refused_by_the_run_config_with_the_names_allowed():
    with pytest.raises(InvalidSettingError, match="dataset='svhn' is not allowed; dataset must be one of 'cifar10'"):
        recipes.default_config("svhn", "cnn", 1, quick=True)
    with pytest.raises(InvalidSettingError, match="model='vgg' is not allowed; model must be one of 'cnn', 'st-cnn-aff'"):
        recipes.default_config("mnist", "vgg", 1, quick=True)


@pytest.mark.parametrize("model, option, value", [("cnn", "window", 28), ("tutorial-stn", "dropout", 0.5),
                                                  ("st-series", "batchnorm", True), ("vit", "window", 14)])
def test_an_option_the_model_does_not_take_is_refused_when_the_run_config_is_built(model, option, value):
    with pytest.raises(InvalidSettingError) as error:
        replace(recipes.default_config("rts-mnist", model, 8), **{option: value})
    message = str(error.value)
    assert message.startswith(f"Invalid run setting: {option}={value!r} is not an option of model {model!r}")
    assert ", ".join(MODEL_OPTIONS[option]) in message
    with pytest.raises(InvalidSettingError, match=f"{option} is an option of"):
        recipes.RunConfig(model=model, **{option: value})


def test_a_variant_setting_an_option_the_model_does_not_take_is_refused_when_built():
    assert recipes.default_config("rts-mnist", "st-vit", 8, variant="window-28").window == 28
    with pytest.raises(InvalidSettingError, match="window=28 is not an option of model 'cnn'"):
        recipes.default_config("rts-mnist", "cnn", 8, variant="window-28")


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
            if variant == "momentum" and dataset != "cifar10":
                continue  # momentum: SGD only, the recipe of the CIFAR-10 networks (which take 3x32x32 images)
            model = "cifar-net-a" if variant == "momentum" else "st-cnn-aff"
            default_config(dataset, model, 3, variant=variant, quick=True)
    sgd = default_config("cifar10", "cifar-resnet", 2)
    assert (sgd.optimizer, sgd.momentum, sgd.nesterov) == ("sgd", 0.9, True)
    replace(sgd, max_grad_norm=None, window=None, amp=None, train_limit=None, label_smoothing=0.0, lr=1)


def test_brightness_contrast_follows_the_dataset_augmentation_names_the_run_and_needs_augment():
    from stn_course.augment import random_affine
    from stn_course.data import ImageTensors

    images = ImageTensors(torch.zeros(2, 3, 8, 8, dtype=torch.uint8), torch.zeros(2, dtype=torch.int64), ("a",),
                          (0.5,) * 3, (0.25,) * 3, "tiny")
    splits = recipes.DatasetSplits(images, images, train_augment=random_affine)
    config = default_config("gtsrb", "gtsrb-bn-st-cnn", 10)
    assert recipes.training_augmentation(config, splits) is random_affine
    assert recipes.training_augmentation(replace(config, augment=False), splits) is None
    jittered = replace(config, brightness_contrast=0.3)
    assert jittered.name == "gtsrb_gtsrb-bn-st-cnn_e10_s0_brightness_contrast=0.3"
    assert jittered.command().endswith("--set brightness_contrast=0.3")
    assert recipes.parse_setting("brightness_contrast=0.3") == ("brightness_contrast", 0.3)
    batch = torch.full((64, 3, 8, 8), 0.5)
    out = recipes.training_augmentation(jittered, splits)(batch, torch.Generator().manual_seed(0))
    assert out.shape == batch.shape and out.std(dim=(1, 2, 3)).max() < 1e-6 < out.mean(dim=(1, 2, 3)).std()
    with pytest.raises(InvalidSettingError, match="brightness_contrast jitters the training augmentation"):
        replace(jittered, augment=False)
    with pytest.raises(InvalidSettingError, match=r"brightness_contrast must be a finite number in \[0, 1\)"):
        replace(config, brightness_contrast=1.0)


def test_the_batch_norm_sign_networks_take_their_width_and_second_transformer_position():
    config = replace(default_config("gtsrb", "gtsrb-bn-st-cnn", 10), base_width=48, st_after=2)
    assert config.model_options.changed() == {"base_width": 48, "st_after": 2}
    assert config.name == "gtsrb_gtsrb-bn-st-cnn_e10_s0_base_width=48_st_after=2"
    assert MODEL_OPTIONS["base_width"] == ("gtsrb-bn-cnn", "gtsrb-bn-st-cnn")
    assert MODEL_OPTIONS["st_after"] == ("gtsrb-bn-st-cnn",)
    assert MODEL_OPTIONS["equalize"] == ("gtsrb-bn-cnn", "gtsrb-bn-st-cnn")
    assert replace(config, equalize=True).name.endswith("_st_after=2_equalize=true")
    with pytest.raises(InvalidSettingError, match="st_after=2 is not an option of model 'gtsrb-bn-cnn'"):
        replace(config, model="gtsrb-bn-cnn")
    with pytest.raises(InvalidSettingError, match=r"st_after must be an integer in \[1, 2\]"):
        replace(config, st_after=3)


@pytest.mark.parametrize("dataset", ["mnist", "rts-mnist", "clutter-mnist", "two-digit-mnist", "cifar10", "gtsrb"])
def test_dataset_inputs_are_what_the_models_see(dataset):
    """The shapes that configs are checked against are the test sets' (where the data is here)."""
    from .markers import _has_cifar_folder, _has_mnist

    if not (_has_cifar_folder() if dataset == "cifar10" else _has_mnist() if "mnist" in dataset else True):
        pytest.skip("data not under the data root")
    try:
        splits = recipes.DATASETS[dataset](64, 64, 0)
    except CourseError:
        pytest.skip(f"{dataset} is not under the data root")
    assert (splits.test.image_shape, len(splits.test.classes)) == recipes.DATASET_INPUTS[dataset]


def test_a_model_that_does_not_fit_the_dataset_is_refused_when_the_config_is_built():
    with pytest.raises(InvalidSettingError, match=r"model 'st-cnn-aff', window=50 does not fit dataset 'rts-mnist' "
                                                  r"\(1x42x42 inputs, 10 classes\).*Change the model, the dataset or window"):
        replace(default_config("rts-mnist", "st-cnn-aff", 1), window=50)
    assert replace(default_config("rts-mnist", "st-cnn-aff", 1), window=42).window == 42
    with pytest.raises(InvalidSettingError, match="model 'cifar-resnet' does not fit dataset 'mnist'"):
        default_config("mnist", "cifar-resnet", 1)


def test_settings_given_by_hand_twice_or_without_effect_are_refused():
    config = default_config("mnist", "cnn", 1)
    recipes.check_hand_settings(config, [("lr", 0.1), ("seed", 1)])
    with pytest.raises(InvalidSettingError, match="lr set more than once"):
        recipes.check_hand_settings(config, [("lr", 0.1), ("lr", 0.2)])
    with pytest.raises(InvalidSettingError, match="localisation_lr_scale changes nothing for model 'cnn'"):
        recipes.check_hand_settings(config, [("localisation_lr_scale", 5.0)])
    recipes.check_hand_settings(default_config("mnist", "st-cnn-aff", 1), [("localisation_lr_scale", 5.0)])
