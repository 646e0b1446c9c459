"""The usual mistakes as code (stn_course.clinic): each option does what the clinic says it does."""
import pytest
import torch
import torch.nn.functional as F

from stn_course.clinic import CASES, ClinicNet, LearnersTransformer, build_run

SHAPE = (1, 28, 28)


def images(count: int = 4) -> torch.Tensor:
    return torch.rand(count, *SHAPE, generator=torch.Generator().manual_seed(0))


def scaled(x: torch.Tensor, scale: float) -> torch.Tensor:
    """``x`` sampled with θ = diag(scale) and matching align_corners (False)."""
    theta = torch.tensor([[scale, 0.0, 0.0], [0.0, scale, 0.0]]).expand(len(x), 2, 3)
    return F.grid_sample(x, F.affine_grid(theta, list(x.shape), align_corners=False), align_corners=False)


def test_a_fresh_transformer_is_the_identity_and_stores_its_theta():
    x = images()
    transformer = LearnersTransformer(SHAPE)
    torch.testing.assert_close(transformer(x), x)
    assert transformer.last_theta.shape == (4, 2, 3) and transformer.last_theta.dtype == torch.float32
    torch.testing.assert_close(transformer.last_theta, torch.eye(2, 3).expand(4, 2, 3))


@pytest.mark.parametrize("corners, scale", [((False, True), 27 / 28), ((True, False), 28 / 27)])
def test_align_corners_mismatched_scales_the_identity_by_w_over_w_minus_1(corners, scale):
    x = images()
    output = LearnersTransformer(SHAPE, align_corners=corners)(x)
    assert (output - x).abs().max() > 0.1  # the identity no longer gives the image back
    torch.testing.assert_close(output, scaled(x, scale), atol=1e-5, rtol=0)


def test_an_integer_theta_is_truncated_and_cut_off_from_the_gradient():
    transformer = LearnersTransformer(SHAPE, integer_theta=True)
    with torch.no_grad():
        transformer.localisation[-1].bias.copy_(torch.tensor([0.97, 0.2, -0.6, 1.5, 1.0, 0.0]))
    transformer(images())
    assert transformer.last_theta.dtype == torch.long
    assert transformer.last_theta[0].tolist() == [[0, 0, 0], [1, 1, 0]]  # toward zero
    assert not transformer.theta(images()).requires_grad


def test_a_bounded_theta_stays_within_its_bound_of_the_identity():
    transformer = LearnersTransformer(SHAPE, bound=0.5)
    torch.testing.assert_close(transformer(images()), images())  # starts at the identity
    with torch.no_grad():
        transformer.localisation[-1].bias.fill_(1e3)
    transformer(images())
    assert (transformer.last_theta - torch.eye(2, 3)).abs().max() <= 0.5


def test_without_identity_initialisation_theta_starts_elsewhere():
    torch.manual_seed(0)
    transformer = LearnersTransformer(SHAPE, identity_init=False)
    transformer(images())
    assert (transformer.last_theta - torch.eye(2, 3)).abs().max() > 0.05


def test_normalising_first_hands_the_transformer_a_normalised_image():
    seen = []
    model = ClinicNet(SHAPE, [0.1], [0.3], normalise_first=True)
    model.transformer.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0]))
    model(torch.zeros(2, *SHAPE))
    torch.testing.assert_close(seen[0], torch.full((2, *SHAPE), -0.1 / 0.3))
    plain = ClinicNet(SHAPE, [0.1], [0.3])
    plain.transformer.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0]))
    plain(torch.zeros(2, *SHAPE))
    assert seen[1].abs().max() == 0


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_run_of_every_case_builds_with_its_localisation_rate(case):
    for label, settings in CASES[case].runs.items():
        model, optimizer, clip = build_run(case, label, (1, 42, 42), [0.1], [0.3])
        groups = {group["name"]: group for group in optimizer.param_groups}
        assert groups["localisation"]["lr"] == pytest.approx(settings["lr"] * settings["localisation_lr_scale"])
        assert clip == settings["max_grad_norm"]
        count = sum(p.numel() for group in optimizer.param_groups for p in group["params"])
        assert count == sum(p.numel() for p in model.parameters())
        assert model(torch.zeros(2, 1, 42, 42)).shape == (2, 10)
