"""The course's vocabulary: names defined once, read by the registry, the recipes and the
command line, and each model option with the models that take it."""
import os
import subprocess
import sys
from dataclasses import replace

import pytest

from stn_course import names
from stn_course.names import MODEL_OPTIONS, ModelOptions
from stn_course.utils import repo_root
from stn_course.validation import InvalidSettingError


def test_names_import_no_torch():
    probe = subprocess.run([sys.executable, "-c", "import sys, stn_course.names; "
                            "print(sorted(n for n in ('torch', 'numpy') if n in sys.modules))"],
                           capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(repo_root())})
    assert probe.stdout.strip() == "[]", probe.stderr


def test_the_package_names_exactly_the_vocabulary():
    from stn_course import recipes, registry

    assert tuple(registry.CLASSIFIERS) == names.MODEL_NAMES
    assert tuple(recipes.DATASETS) == names.DATASET_NAMES
    assert tuple(recipes.VARIANTS) == names.VARIANT_NAMES
    assert names.MODEL_NAMES[:4] == ("cnn", "st-cnn-aff", "st-cnn-proj", "st-cnn-tps")
    assert recipes.CONFIG_RULES["optimizer"].describe() == "one of 'adamw', 'sgd'"
    assert set(names.SCHEDULE_NAMES) == {"onecycle", "constant", "final-drop"}


def test_a_dictionary_that_does_not_name_the_vocabulary_is_refused_with_what_differs():
    names.require_names("test", ["mnist", "cifar10"], ("mnist", "cifar10"), "DATASET_NAMES")
    with pytest.raises(RuntimeError, match=r"missing \['cifar10'\], not in DATASET_NAMES \['svhn'\]"):
        names.require_names("test.DATASETS", ["mnist", "svhn"], ("mnist", "cifar10"), "DATASET_NAMES")
    with pytest.raises(RuntimeError, match="order differs"):
        names.require_names("test.DATASETS", ["cifar10", "mnist"], ("mnist", "cifar10"), "DATASET_NAMES")


def test_each_option_names_the_models_whose_builder_takes_it():
    import inspect

    from stn_course.registry import CLASSIFIERS

    assert MODEL_OPTIONS["window"] == ("st-cnn-aff", "st-cnn-proj", "st-cnn-tps", "st-vit")
    assert MODEL_OPTIONS["dropout"] == MODEL_OPTIONS["batchnorm"] == ("cnn", "st-cnn-aff", "st-cnn-proj", "st-cnn-tps")
    for option, takers in MODEL_OPTIONS.items():
        found = tuple(name for name, builder in CLASSIFIERS.items() if option in inspect.signature(builder).parameters)
        assert found == takers, option


def test_model_options_pass_only_what_was_changed_and_check_their_values_and_model():
    assert ModelOptions().changed() == {}
    assert ModelOptions(window=28, dropout=0.0).changed() == {"window": 28}
    with pytest.raises(InvalidSettingError, match=r"Invalid model option: dropout=1.0 .* must be .* in \[0, 1\)"):
        ModelOptions(dropout=1.0)
    ModelOptions(window=28).check_model("st-vit")
    with pytest.raises(InvalidSettingError, match="window=28 is not an option of model 'cnn'; window is an option of "
                                                  "st-cnn-aff, st-cnn-proj, st-cnn-tps, st-vit only"):
        ModelOptions(window=28).check_model("cnn")


def test_run_config_model_options_are_its_option_fields():
    from stn_course.recipes import RunConfig, default_config

    config = replace(default_config("rts-mnist", "st-cnn-aff", 8), window=28, batchnorm=True)
    assert config.model_options == ModelOptions(window=28, batchnorm=True)
    assert RunConfig().model_options == ModelOptions()
