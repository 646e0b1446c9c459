"""Tests for stn_course.geometry (the torch grid generators), against PyTorch's affine_grid
and the NumPy twins in stn_course.sampler; and that no package module reaches into
another one's private names."""
from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import stn_course
from stn_course import conventions, geometry, sampler

PACKAGE = Path(stn_course.__file__).parent


@pytest.mark.parametrize("align_corners", [True, False])
@pytest.mark.parametrize("size", [(1, 1, 5, 8), (2, 3, 4, 5)])
def test_base_and_affine_grids_are_pytorchs(align_corners, size):
    identity = torch.eye(2, 3, dtype=torch.float64).expand(size[0], 2, 3)
    expected = F.affine_grid(identity, list(size), align_corners=align_corners)
    base = geometry.base_grid(size[2], size[3], align_corners, dtype=torch.float64)
    assert base.shape == (size[2], size[3], 2)
    torch.testing.assert_close(base.expand_as(expected), expected, atol=1e-12, rtol=0)
    theta = identity + 0.2 * torch.randn(size[0], 2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(geometry.affine_grid(theta, size, align_corners),
                               F.affine_grid(theta, list(size), align_corners=align_corners))


@pytest.mark.parametrize("align_corners", [True, False])
def test_projective_grid_matches_the_numpy_homography_grid(align_corners):
    matrix = torch.tensor([[[0.9, 0.1, 0.05], [-0.1, 1.05, 0.0], [0.2, -0.15, 1.0]],
                           [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]], dtype=torch.float64)
    size = (2, 1, 6, 7)
    grid = geometry.projective_grid(matrix, size, align_corners)
    np.testing.assert_allclose(grid.numpy(), sampler.homography_grid(matrix.numpy(), size, align_corners), atol=1e-12)
    torch.testing.assert_close(grid[1], F.affine_grid(matrix[1:, :2], [1, 1, 6, 7], align_corners=align_corners)[0])


def test_projective_grid_clamps_w_like_the_numpy_one_and_keeps_gradients_finite():
    """w' = x is zero in the middle column: both grid generators clamp |w'| to
    MIN_HOMOGENEOUS_W with its sign kept, instead of raising or dividing by zero."""
    matrix = torch.tensor([[[1.0, 0, 0], [0, 1, 0], [1, 0, 0]]], dtype=torch.float64, requires_grad=True)
    grid = geometry.projective_grid(matrix, (1, 1, 3, 3), True)
    assert torch.isfinite(grid).all()
    np.testing.assert_array_equal(grid.detach().numpy(), sampler.homography_grid(matrix.detach().numpy(), (1, 1, 3, 3), True))
    assert grid[0, 2, 1, 1].item() == pytest.approx(1 / geometry.MIN_HOMOGENEOUS_W)
    negative = torch.tensor([[[1.0, 0, 0], [0, 1, 0], [0, 0, -1e-9]]], dtype=torch.float64)
    assert geometry.projective_grid(negative, (1, 1, 2, 2), True)[0, 0, 0, 0].item() == pytest.approx(1e6)
    grid.sum().backward()
    assert torch.isfinite(matrix.grad).all()
    assert geometry.MIN_HOMOGENEOUS_W is conventions.MIN_HOMOGENEOUS_W


def test_homography_from_points_maps_the_four_points():
    torch.manual_seed(0)
    source = torch.tensor([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]]).expand(5, 4, 2).double()
    target = source + 0.2 * torch.randn(5, 4, 2, dtype=torch.float64)
    matrix = geometry.homography_from_points(source, target)
    assert matrix.shape == (5, 3, 3) and (matrix[:, 2, 2] == 1).all()
    homogeneous = torch.cat([source, torch.ones(5, 4, 1, dtype=torch.float64)], -1) @ matrix.transpose(1, 2)
    torch.testing.assert_close(homogeneous[..., :2] / homogeneous[..., 2:], target)


def test_tps_control_points_kernel_and_system_inverse():
    control = geometry.tps_control_points(3)
    assert control.shape == (9, 2) and control.dtype == torch.float64
    torch.testing.assert_close(control[[0, 2, 8]], torch.tensor([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0]], dtype=torch.float64))
    r2 = torch.tensor([0.0, 1.0, 4.0], dtype=torch.float64)
    torch.testing.assert_close(geometry.tps_kernel(r2), torch.tensor([0.0, 0.0, 4.0 * np.log(4.0)], dtype=torch.float64))
    inverse = geometry.tps_system_inverse(control)
    poly = torch.cat([torch.ones(9, 1, dtype=torch.float64), control], dim=1)
    distances = ((control[:, None] - control[None]) ** 2).sum(-1)
    system = torch.zeros(12, 12, dtype=torch.float64)
    system[:9, :9], system[:9, 9:], system[9:, :9] = geometry.tps_kernel(distances), poly, poly.T
    torch.testing.assert_close(inverse @ system, torch.eye(12, dtype=torch.float64), atol=1e-10, rtol=0)


@pytest.mark.parametrize("align_corners", [True, False])
def test_tps_grid_reproduces_affine_maps(align_corners):
    """A thin-plate spline that moves its control points by an affine map does not bend:
    its grid is that affine map's grid (the identity included)."""
    control = geometry.tps_control_points(4)
    theta = torch.tensor([[[0.8, -0.2, 0.1], [0.3, 1.1, -0.05]]], dtype=torch.float64)
    moved = (torch.cat([control, torch.ones(16, 1, dtype=torch.float64)], 1) @ theta[0].T).unsqueeze(0)
    size = (1, 1, 5, 6)
    torch.testing.assert_close(geometry.tps_grid(moved, size, align_corners),
                               F.affine_grid(theta, list(size), align_corners=align_corners), atol=1e-10, rtol=0)
    identity = geometry.tps_grid(control.unsqueeze(0), size, align_corners, control=control,
                                 system_inverse=geometry.tps_system_inverse(control))
    torch.testing.assert_close(identity[0], geometry.base_grid(5, 6, align_corners, dtype=torch.float64),
                               atol=1e-10, rtol=0)


def _private_imports(path: Path) -> list[str]:
    """``from .x import _y`` / ``from stn_course.x import _y`` and ``x._y`` for a sibling module x."""
    tree = ast.parse(path.read_text())
    siblings = {p.stem for p in PACKAGE.glob("*.py")}
    found, aliases = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            internal = node.level > 0 or module.split(".")[0] == "stn_course"
            for alias in node.names:
                if internal and alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(f"from {'.' * node.level}{module} import {alias.name}")
                if internal and alias.name in siblings:
                    aliases.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("stn_course."):
                    aliases.add(alias.asname or alias.name.split(".")[-1])
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                and node.attr.startswith("_") and not node.attr.startswith("__")):
            found.append(f"{node.value.id}.{node.attr}")
    return found


def test_no_module_imports_another_modules_private_names():
    offences = {path.name: _private_imports(path) for path in sorted(PACKAGE.glob("*.py"))}
    assert {name: found for name, found in offences.items() if found} == {}


def test_the_private_import_check_can_fail(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from .models import _secret\nfrom stn_course import sampler\nsampler._unnormalise_scale(3, True)\n")
    assert _private_imports(bad) == ["from .models import _secret", "sampler._unnormalise_scale"]


def test_the_device_check_fails_a_tensor_made_without_a_device(meta):
    points = torch.zeros(2, 16, 2, device=meta)
    with pytest.raises(AssertionError, match="mixes devices"):
        points - torch.zeros(16, 2)  # made on the CPU, as a forgotten device= would


def test_every_geometry_function_runs_on_the_input_device(meta):
    size = (2, 1, 12, 10)
    assert geometry.base_grid(12, 10, False, device=meta).device == meta
    theta = torch.zeros(2, 2, 3, device=meta, requires_grad=True)
    matrix = torch.zeros(2, 3, 3, device=meta, requires_grad=True)
    source = torch.zeros(2, 16, 2, device=meta, requires_grad=True)
    corners = torch.zeros(2, 4, 2, device=meta)
    control = geometry.tps_control_points().to(meta)
    grids = [geometry.affine_grid(theta, size, False), geometry.projective_grid(matrix, size, True),
             geometry.tps_grid(source, size, False),  # control points and system made here
             geometry.tps_grid(source, size, False, control=control)]
    for grid in grids:
        assert grid.device == meta and grid.shape == (2, 12, 10, 2)
        grid.sum().backward()
    assert theta.grad.device == matrix.grad.device == source.grad.device == meta
    assert geometry.tps_system_inverse(control).device == meta
    assert geometry.homography_from_points(corners, corners).device == meta
    assert geometry.tps_kernel(corners).device == meta
