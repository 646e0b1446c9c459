"""The conventions shared by the NumPy reference and the torch code (stn_course.conventions)."""
import ast

import numpy as np
import torch
import torch.nn.functional as F

from stn_course import conventions, coordinates, geometry, sampler
from stn_course.utils import repo_root


def test_modes_are_the_ones_torch_understands():
    image, grid = torch.rand(1, 1, 4, 4), torch.zeros(1, 2, 2, 2)
    for mode in conventions.MODES:
        for padding_mode in conventions.PADDING_MODES:
            F.grid_sample(image, grid, mode=mode, padding_mode=padding_mode, align_corners=False)


def test_one_horizon_clamp_for_numpy_and_torch():
    assert sampler.MIN_HOMOGENEOUS_W is geometry.MIN_HOMOGENEOUS_W is conventions.MIN_HOMOGENEOUS_W
    assert coordinates.MIN_HOMOGENEOUS_W is conventions.MIN_HOMOGENEOUS_W
    horizon = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])  # w' = x: 0 on the middle column
    assert np.isfinite(sampler.homography_grid(horizon[None], (1, 1, 3, 3), True)).all()


def test_no_torch_module_imports_the_numpy_sampler():
    """Torch code takes what it shares with the NumPy reference from conventions.py."""
    offenders = []
    for path in sorted((repo_root() / "stn_course").rglob("*.py")):
        tree = ast.parse(path.read_text())
        modules = {(node.module or "") for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        modules |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) for alias in node.names}
        uses_torch = any(m.split(".")[0] == "torch" for m in modules)
        uses_sampler = any(m.split(".")[-1] == "sampler" for m in modules) or "sampler" in names
        if uses_torch and uses_sampler:
            offenders.append(path.name)
    assert offenders == []
