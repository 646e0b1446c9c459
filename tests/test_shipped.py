"""Shipped checkpoints: each matches the recipe its name gives, in full and in quick mode."""
from dataclasses import replace

import pytest

from stn_course import experiments
from stn_course.errors import CourseError
from stn_course.recipes import recipe_config


def test_every_shipped_checkpoint_matches_the_recipe_of_its_name_in_both_modes():
    import torch

    from stn_course.report import config_of
    from stn_course.train import load_checkpoint
    from stn_course.utils import shipped_checkpoint_dir

    shipped = sorted(shipped_checkpoint_dir().glob("*.pt"))
    assert shipped
    for path in shipped:
        config = config_of(torch.load(path, weights_only=True))
        assert config.name == path.stem
        recipe = recipe_config(config.dataset, config.model, config.epochs, config.seed, config.variant)
        recipe = replace(recipe, **config.changes)
        # the log interval changes no weight; limits shrunk for quick mode are not the recipe's
        for wanted in (recipe, replace(recipe, log_interval=1, train_limit=512, test_limit=256, quick=True)):
            load_checkpoint(path, run=experiments.run_identity(wanted, shipped=True))
        with pytest.raises(CourseError, match="belongs to another run"):
            load_checkpoint(path, run=experiments.run_identity(replace(recipe, seed=7), shipped=True))
