import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from stn_course import inspection, models, train
from stn_course.models import SpatialTransformer, count_parameters, localisation_net, model_summary
from stn_course.names import ModelOptions
from stn_course.registry import build_classifier


MEAN, STD = (0.1307,), (0.3081,)


class FixedParams(nn.Module):
    """A 'localisation network' that outputs given parameters, for checking the grids."""

    def __init__(self, params: torch.Tensor) -> None:
        super().__init__()
        self.head = nn.Linear(1, params.shape[1])
        self.params = params

    def forward(self, x):
        return self.params


def _transformer(transform, params, **kwargs):
    st = SpatialTransformer(FixedParams(params), transform=transform, **kwargs)
    st.localisation.params = params  # identity initialisation only touched the unused head
    return st


def _reference_coordinates(height, width, align_corners):
    def axis(size):
        if align_corners:
            return [-1 + 2 * i / (size - 1) for i in range(size)]
        return [(2 * i + 1) / size - 1 for i in range(size)]
    return axis(height), axis(width)


def _reference_grid(point_map, height, width, align_corners):
    ys, xs = _reference_coordinates(height, width, align_corners)
    grid = np.zeros((height, width, 2))
    for i, y in enumerate(ys):
        for j, x in enumerate(xs):
            grid[i, j] = point_map(x, y)
    return grid


def _reference_tps(control, targets):
    """Slow TPS: solve the spline system with NumPy for one sample."""
    k = len(control)

    def u(a, b):
        r2 = float(np.sum((np.asarray(a) - np.asarray(b)) ** 2))
        return 0.0 if r2 == 0 else r2 * math.log(r2)

    system = np.zeros((k + 3, k + 3))
    for i in range(k):
        for j in range(k):
            system[i, j] = u(control[i], control[j])
        system[i, k:] = [1, *control[i]]
        system[k:, i] = [1, *control[i]]
    rhs = np.vstack([targets, np.zeros((3, 2))])
    coefficients = np.linalg.solve(system, rhs)

    def point_map(x, y):
        features = [u((x, y), c) for c in control] + [1, x, y]
        return np.asarray(features) @ coefficients
    return point_map


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("out_size", [None, (5, 7)])
def test_affine_grid_matches_the_formula(align_corners, out_size):
    theta = torch.tensor([[0.8, -0.3, 0.1, 0.2, 1.1, -0.25]], dtype=torch.float64)
    st = _transformer("affine", theta, align_corners=align_corners, out_size=out_size).double()
    x = torch.rand(1, 2, 6, 8, dtype=torch.float64)
    _, _, grid = st.transform_input(x)
    h, w = out_size or (6, 8)
    a = theta.view(2, 3).numpy()
    expected = _reference_grid(lambda px, py: a @ [px, py, 1], h, w, align_corners)
    np.testing.assert_allclose(grid[0].numpy(), expected, atol=1e-12)


@pytest.mark.parametrize("align_corners", [False, True])
def test_projective_grid_matches_the_formula(align_corners):
    params = torch.tensor([[0.9, 0.1, 0.05, -0.1, 1.05, 0.0, 0.2, -0.15]], dtype=torch.float64)
    st = _transformer("projective", params, align_corners=align_corners).double()
    _, _, grid = st.transform_input(torch.rand(1, 1, 5, 6, dtype=torch.float64))
    matrix = np.append(params.numpy()[0], 1.0).reshape(3, 3)

    def project(px, py):
        u, v, w = matrix @ [px, py, 1]
        return [u / w, v / w]
    np.testing.assert_allclose(grid[0].numpy(), _reference_grid(project, 5, 6, align_corners), atol=1e-12)


def test_tps_grid_matches_a_slow_reference_and_interpolates_its_control_points():
    torch.manual_seed(0)
    control = models.tps_control_points(4).double()
    targets = control + 0.1 * torch.randn_like(control)
    st = _transformer("tps", targets.view(1, -1), align_corners=True).double()
    _, _, grid = st.transform_input(torch.rand(1, 1, 7, 7, dtype=torch.float64))
    expected = _reference_grid(_reference_tps(control.numpy(), targets.numpy()), 7, 7, True)
    np.testing.assert_allclose(grid[0].numpy(), expected, atol=1e-8)
    # With align_corners=True and a 7x7 output, pixels 0, 2, 4, 6 sit on the 4x4 control points.
    on_control = grid[0, ::2, ::2].reshape(-1, 2)
    torch.testing.assert_close(on_control, targets, atol=1e-8, rtol=0)


@pytest.mark.parametrize("name", ["st-cnn-aff", "st-cnn-proj", "st-cnn-tps"])
def test_transformers_start_at_the_identity(name):
    model = build_classifier(name, (1, 28, 28), MEAN, STD)
    x = torch.rand(3, 1, 28, 28)
    out = model.transformer(x)
    torch.testing.assert_close(out, x, atol=1e-4, rtol=0)
    head = [m for m in model.transformer.localisation.modules() if isinstance(m, nn.Linear)][-1]
    assert torch.count_nonzero(head.weight) == 0
    assert model.transformer.last_theta.shape == (3, model.transformer.num_params)
    assert model.transformer.last_grid.shape == (3, 28, 28, 2)


@pytest.mark.parametrize("shape", [(1, 28, 28), (1, 42, 42), (1, 60, 60)])
def test_parameter_counts_are_close_to_the_baseline(shape):
    baseline = count_parameters(build_classifier("cnn", shape, MEAN, STD))
    for name in ("st-cnn-aff", "st-cnn-proj", "st-cnn-tps"):
        assert abs(count_parameters(build_classifier(name, shape, MEAN, STD)) - baseline) < 0.01 * baseline


def test_large_canvases_get_an_attention_window():
    """On 60x60 cluttered MNIST the transformer samples a 30x30 window for the classifier."""
    model = build_classifier("st-cnn-aff", (1, 60, 60), MEAN, STD)
    assert model(torch.rand(2, 1, 60, 60)).shape == (2, 10)
    assert model.transformer.last_grid.shape == (2, 30, 30, 2)
    assert build_classifier("st-cnn-aff", (1, 42, 42), MEAN, STD).transformer.out_size is None


def test_window_sets_the_transformers_output_and_keeps_the_parameter_count():
    baseline = count_parameters(build_classifier("cnn", (1, 42, 42), MEAN, STD))
    model = build_classifier("st-cnn-aff", (1, 42, 42), MEAN, STD, options=ModelOptions(window=28))
    assert model(torch.rand(2, 1, 42, 42)).shape == (2, 10)
    assert model.transformer.last_grid.shape == (2, 28, 28, 2)
    assert abs(count_parameters(model) - baseline) < 0.01 * baseline
    with pytest.raises(ValueError, match="between 4 and the input's side 42"):
        build_classifier("st-cnn-aff", (1, 42, 42), MEAN, STD, options=ModelOptions(window=60))
    with pytest.raises(ValueError, match="window=28 is not an option of model 'cnn'; window is an option of "
                                         "st-cnn-aff, st-cnn-proj, st-cnn-tps, st-vit only"):
        build_classifier("cnn", (1, 42, 42), MEAN, STD, options=ModelOptions(window=28))


def test_dropout_is_active_in_training_only_and_adds_no_parameters():
    torch.manual_seed(0)
    plain = build_classifier("st-cnn-aff", (1, 42, 42), MEAN, STD, options=ModelOptions(window=28))
    model = build_classifier("st-cnn-aff", (1, 42, 42), MEAN, STD, options=ModelOptions(window=28, dropout=0.5))
    assert count_parameters(model) == count_parameters(plain)
    model.load_state_dict(plain.state_dict())
    x = torch.rand(4, 1, 42, 42)
    model.eval()
    plain.eval()
    assert torch.equal(model(x), plain(x)), "dropout changes nothing at test time"
    model.train()
    assert not torch.allclose(model(x), model(x)), "while training each pass drops other units"
    with pytest.raises(ValueError, match=r"dropout must be a finite number in \[0, 1\)"):
        build_classifier("cnn", (1, 28, 28), MEAN, STD, options=ModelOptions(dropout=1.0))
    with pytest.raises(ValueError, match="dropout is an option of cnn, st-cnn-aff, st-cnn-proj, st-cnn-tps only"):
        build_classifier("tutorial-stn", (1, 28, 28), MEAN, STD, options=ModelOptions(dropout=0.5))


def test_batchnorm_follows_each_convolution_and_keeps_the_sizes_matched():
    baseline = build_classifier("cnn", (1, 42, 42), MEAN, STD, options=ModelOptions(batchnorm=True))
    model = build_classifier("st-cnn-aff", (1, 42, 42), MEAN, STD, options=ModelOptions(window=28, batchnorm=True))
    for classifier in (baseline, model.classifier):
        norms = [m for m in classifier.features if isinstance(m, nn.BatchNorm2d)]
        assert [norm.num_features for norm in norms] == [32, 64]
        assert all(conv.bias is None for conv in classifier.features if isinstance(conv, nn.Conv2d))
    assert abs(count_parameters(model) - count_parameters(baseline)) < 0.01 * count_parameters(baseline)
    before = model.classifier.features[1].running_mean.clone()
    model.train()(torch.rand(4, 1, 42, 42))
    assert not torch.equal(model.classifier.features[1].running_mean, before), "training updates the running means"
    with pytest.raises(ValueError, match="batchnorm is an option of cnn, st-cnn-aff, st-cnn-proj, st-cnn-tps only"):
        build_classifier("st-series", (1, 42, 42), MEAN, STD, options=ModelOptions(batchnorm=True))


def test_downsampling_output_size_and_what_it_samples():
    st = SpatialTransformer(localisation_net((1, 28, 28), 6), out_size=(14, 10))
    assert st(torch.rand(2, 1, 28, 28)).shape == (2, 1, 14, 10)
    # At the identity with align_corners=False, a half-size output pixel's centre lies
    # between four input pixels: bilinear sampling averages them, as 2x2 average pooling.
    half = SpatialTransformer(localisation_net((1, 28, 28), 6), out_size=(14, 14))
    x = torch.rand(2, 1, 28, 28)
    torch.testing.assert_close(half(x), torch.nn.functional.avg_pool2d(x, 2), atol=1e-5, rtol=0)


@pytest.mark.parametrize("transform", ["affine", "projective", "tps"])
def test_geometry_stays_float32_under_mixed_precision(transform):
    torch.manual_seed(0)
    st = SpatialTransformer(localisation_net((1, 28, 28), {"affine": 6, "projective": 8, "tps": 32}[transform]),
                            transform=transform)
    nn.init.normal_(st.localisation[-1].weight, std=0.05)  # away from the identity
    x = torch.rand(3, 1, 28, 28)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output, params, grid = st.transform_input(x)
    assert output.dtype == params.dtype == grid.dtype == torch.float32
    # the grid is exactly the float32 grid of the (bfloat16-computed) parameters
    torch.testing.assert_close(grid, st.grid(params, torch.Size((3, 1, 28, 28))), rtol=0, atol=0)
    assert (params - st.transform_input(x)[1]).abs().max() < 0.05, "bfloat16 θ close to float32 θ"


def test_sampling_happens_before_normalisation():
    """A zoom-out pads with 0 = black in [0, 1] input, i.e. with MNIST's own background."""
    theta = torch.tensor([[2.0, 0.0, 0.0, 0.0, 2.0, 0.0]])
    st = _transformer("affine", theta)
    x = torch.zeros(1, 1, 28, 28)
    x[..., 10:18, 10:18] = 1.0
    out = st(x)
    assert out[..., :5, :].abs().max() == 0  # the padded border equals the background
    normalised_background = (0 - MEAN[0]) / STD[0]
    assert models.Normalize(MEAN, STD)(out)[..., :5, :].allclose(torch.tensor(normalised_background))


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="transform must be one of"):
        SpatialTransformer(localisation_net((1, 28, 28), 6), transform="similarity")
    with pytest.raises(ValueError, match="needs 8 parameters"):
        SpatialTransformer(localisation_net((1, 28, 28), 6), transform="projective")
    with pytest.raises(ValueError, match="must end with an nn.Linear"):
        SpatialTransformer(nn.Conv2d(1, 6, 3))
    with pytest.raises(TypeError, match="floating-point"):
        SpatialTransformer(localisation_net((1, 28, 28), 6))(torch.zeros(1, 1, 28, 28, dtype=torch.uint8))
    with pytest.raises(ValueError, match="unknown model"):
        build_classifier("resnet", (1, 28, 28), MEAN, STD)


def test_localisation_trains_slower():
    model = build_classifier("st-cnn-aff", (1, 28, 28), MEAN, STD)
    groups = train.parameter_groups(model, lr=1e-3, localisation_lr_scale=0.1)
    by_name = {g["name"]: g for g in groups}
    assert by_name["localisation"]["lr"] == pytest.approx(1e-4)
    n_loc = sum(p.numel() for p in by_name["localisation"]["params"])
    assert n_loc == count_parameters(model.transformer.localisation)
    assert n_loc + sum(p.numel() for p in by_name["classifier"]["params"]) == count_parameters(model)


def test_parallel_transformers_give_a_joint_distribution_over_digit_pairs():
    model = build_classifier("st-parallel", (1, 32, 64), MEAN, STD, num_classes=100)
    log_joint = model(torch.rand(3, 1, 32, 64))
    assert log_joint.shape == (3, 100)
    torch.testing.assert_close(log_joint.exp().sum(1), torch.ones(3))
    # log p(i, j) = log p_first(i) + log p_second(j): the table has rank one in probability.
    joint = log_joint.exp().view(3, 10, 10)
    torch.testing.assert_close(joint, joint.sum(2, keepdim=True) * joint.sum(1, keepdim=True))
    assert [t.out_size for t in model.transformers] == [(28, 28), (28, 28)]
    with pytest.raises(ValueError, match="100 classes"):
        build_classifier("st-parallel", (1, 32, 64), MEAN, STD, num_classes=10)


def test_series_transformers_start_at_the_identity_and_compose():
    model = build_classifier("st-series", (1, 42, 42), MEAN, STD)
    assert model(torch.rand(2, 1, 42, 42)).shape == (2, 10)
    identity = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    for transformer in (model.input_transformer, model.feature_transformer):
        torch.testing.assert_close(transformer.last_theta.view(-1, 2, 3)[0], identity)
    outer = torch.tensor([[[0.5, 0.1, 0.2], [-0.1, 0.6, -0.3]]])
    inner = torch.tensor([[[0.9, 0.0, 0.1], [0.2, 1.1, 0.0]]])
    point = torch.tensor([0.3, -0.4, 1.0])
    through_both = outer[0] @ torch.cat([inner[0] @ point, torch.ones(1)])
    torch.testing.assert_close(models.compose_affine(outer, inner)[0] @ point, through_both)


def test_series_regions_at_the_start_cover_the_whole_input():
    model = build_classifier("st-series", (1, 28, 28), MEAN, STD)
    images = torch.rand(2, 1, 28, 28)
    first_output, first_grid, second_view, second_grid = inspection.series_regions(model, images)
    torch.testing.assert_close(first_output, images, atol=1e-5, rtol=0)
    torch.testing.assert_close(second_view, images, atol=1e-5, rtol=0)
    torch.testing.assert_close(second_grid, first_grid)


def test_model_summary_lists_layers_shapes_and_the_total():
    model = build_classifier("cifar-net-b", (3, 32, 32), (0.5,) * 3, (0.25,) * 3)
    summary = model_summary(model, (3, 32, 32))
    assert summary.splitlines()[-1].split() == ["total", "802,492"]
    assert re.search(r"^transformer +SpatialTransformer +\(1, 3, 32, 32\) +0$", summary, re.M)
    assert re.search(r"^classifier\.1 +Conv2d +\(1, 6, 28, 28\) +456$", summary, re.M)
    rows = [line for line in summary.splitlines()[2:-2]]
    assert sum(int(line.split()[-1].replace(",", "")) for line in rows) == 802_492


def test_the_tutorial_network_has_the_tutorials_layers():
    model = build_classifier("tutorial-stn", (1, 28, 28), MEAN, STD)
    assert count_parameters(model) == 27_360  # the PyTorch STN tutorial's Net, counted by hand
    assert model.fc1.in_features == 320 and model.transformer.localisation[-3].in_features == 90
    assert model(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    # On RTS's 42x42 canvas (the pipeline benchmark) only the two flattened sizes change.
    rts_model = build_classifier("tutorial-stn", (1, 42, 42), MEAN, STD)
    assert rts_model.fc1.in_features == 20 * 7 * 7 and rts_model.transformer.localisation[-3].in_features == 10 * 7 * 7
    assert rts_model(torch.rand(2, 1, 42, 42)).shape == (2, 10)
    with pytest.raises(ValueError, match="tutorial-stn takes"):
        build_classifier("tutorial-stn", (3, 32, 32), MEAN, STD)


def _shifted_transformer(padding_mode: str) -> SpatialTransformer:
    """An affine transformer whose identity bias is replaced by a shift of half the image."""
    localisation = nn.Sequential(nn.Flatten(), nn.Linear(16, 6))
    transformer = SpatialTransformer(localisation, padding_mode=padding_mode, align_corners=False)
    with torch.no_grad():
        localisation[1].bias.copy_(torch.tensor([1.0, 0.0, 0.6, 0.0, 1.0, 0.0]))
    return transformer


@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
def test_spatial_transformer_samples_with_its_own_padding_mode(padding_mode):
    images = torch.rand(2, 1, 4, 4) + 0.5  # no zero pixels: zeros padding is visible
    theta = torch.tensor([[1.0, 0.0, 0.6], [0.0, 1.0, 0.0]]).expand(2, 2, 3)
    grid = F.affine_grid(theta, [2, 1, 4, 4], align_corners=False)
    expected = F.grid_sample(images, grid, mode="bilinear", padding_mode=padding_mode, align_corners=False)
    output = _shifted_transformer(padding_mode)(images)
    torch.testing.assert_close(output, expected)
    others = {"zeros", "border", "reflection"} - {padding_mode}
    for other in others:  # the modes really differ on this input, so the test can tell them apart
        assert not torch.allclose(expected, F.grid_sample(images, grid, padding_mode=other, align_corners=False))


@pytest.mark.parametrize("transform", ["affine", "projective", "tps"])
def test_a_spatial_transformer_trains_on_the_device_its_parameters_are_on(meta, transform):
    transformer = SpatialTransformer(localisation_net((1, 20, 20), {"affine": 6, "projective": 8, "tps": 32}[transform]),
                                     transform=transform, out_size=(12, 12)).to(meta)
    images = torch.zeros(2, 1, 20, 20, device=meta, requires_grad=True)
    output, params, grid = transformer.transform_input(images)
    assert output.device == params.device == grid.device == meta and output.shape == (2, 1, 12, 12)
    output.sum().backward()
    assert images.grad.device == meta
    composed = models.compose_affine(torch.zeros(2, 2, 3, device=meta), torch.zeros(2, 2, 3, device=meta))
    assert composed.device == meta
