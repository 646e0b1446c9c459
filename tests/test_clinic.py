"""The usual mistakes as code (stn_course.clinic): each option does what the clinic says it does."""
import pytest
import torch
import torch.nn.functional as F

from stn_course import clinic
from stn_course.clinic import (CASES, FULL_BUDGET, ClinicNet, LearnersTransformer, build_run, case_data,
                               load_case_records, train_case, train_run, transformer_outputs)
from stn_course.errors import CourseError
from stn_course.health import HEALTHY

from .markers import requires_mnist

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


# --- The short runs (train_case), their records and what notebook 08 draws from them ---

#: what each recorded case's runs must show: a verdict beginning, per run label
EXPECTED_VERDICTS = {
    "lr-too-high": {"broken": "points leave the image", "fixed": "no symptom"},
    "no-identity-init": {"broken": "output magnified", "fixed": "no symptom"},
    "normalise-first": {"broken": "grey frame", "fixed": "no symptom"},
    "align-corners": {"broken": "the identity does not give the image back", "fixed": "θ stays at the identity"},
    "integer-theta": {"broken": "θ holds only whole numbers", "fixed": "no symptom"},
    "bounded-theta": {"unbounded": "points leave the image", "bounded": "θ sits at its bound"},
    "nothing-to-undo": {"as-is": "θ stays at the identity"},
}


def test_every_recorded_case_shows_its_symptom_broken_and_none_fixed():
    records = load_case_records()
    assert list(records) == list(CASES) == list(EXPECTED_VERDICTS)
    for case, record in records.items():
        assert record["budget"] == FULL_BUDGET and not record["quick_mode"], case
        assert list(record["runs"]) == list(CASES[case].runs), case
        for label, start in EXPECTED_VERDICTS[case].items():
            verdicts = record["runs"][label]["health"]["verdicts"]
            assert any(v.startswith(start) for v in verdicts), f"{case}/{label}: {verdicts}"
            if start == "no symptom":
                assert verdicts == [HEALTHY], f"{case}/{label}: {verdicts}"


def test_a_missing_record_says_how_to_make_it(tmp_path, monkeypatch):
    monkeypatch.setattr(clinic, "recorded_results_dir", lambda: tmp_path)
    with pytest.raises(CourseError, match="clinic_lr-too-high.json is missing.*RETRAIN = True"):
        load_case_records()


def _record(theta: list, settings: dict) -> dict:
    return {"settings": {"run": settings}, "runs": {"run": {"theta_first_test_images": theta}}}


def test_transformer_outputs_redraw_a_run_with_its_mistakes():
    x = images(2)
    zoom_out = [[[2.0, 0.0, 0.0], [0.0, 2.0, 0.0]]] * 2
    plain = transformer_outputs(_record(zoom_out, {}), "run", x, [0.5], [0.25])
    assert torch.allclose(plain, scaled(x, 2.0)) and plain[:, :, 0, 0].eq(0).all()  # the frame: black
    grey = transformer_outputs(_record(zoom_out, {"normalise_first": True}), "run", x, [0.5], [0.25])
    assert torch.allclose(grey[:, :, 0, 0], torch.tensor(0.5)), "normalised first, the frame is the mean"
    assert torch.allclose(grey[:, :, 14, 14], plain[:, :, 14, 14], atol=1e-6)
    identity = [[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]] * 2
    mismatched = transformer_outputs(_record(identity, {"align_corners": [False, True]}), "run", x, [0.5], [0.25])
    assert torch.allclose(mismatched, scaled(x, 27 / 28), atol=1e-5), "the identity scaled by (W-1)/W"


@requires_mnist
def test_train_case_records_each_run_with_its_log_health_and_theta(tmp_path, monkeypatch):
    monkeypatch.setenv("STN_COURSE_CHECKPOINTS", str(tmp_path))
    budget = {"steps": 4, "train_limit": 128, "test_limit": 32, "log_every": 2, "seed": 0}
    record = train_case("align-corners", budget)
    assert record["case"] == "align-corners" and record["budget"] == budget
    assert record["settings"]["broken"]["align_corners"] == [False, True]
    for label, run in record["runs"].items():
        assert run["steps"] == 4 and [entry["step"] for entry in run["log"]] == [2, 4]
        assert len(run["theta_first_test_images"]) == 16 and 0 <= run["test_accuracy"] <= 1
    assert record["runs"]["broken"]["health"]["verdicts"][0].startswith("the identity does not give the image back")
    assert {p.name for p in tmp_path.iterdir()} == {"clinic_align-corners_broken.pt", "clinic_align-corners_fixed.pt"}
    again = train_case("align-corners", budget)  # finished checkpoints: loaded, not trained again
    assert again["runs"]["fixed"]["log"] == record["runs"]["fixed"]["log"]


@requires_mnist
def test_own_settings_train_under_their_own_label(tmp_path, monkeypatch):
    monkeypatch.setenv("STN_COURSE_CHECKPOINTS", str(tmp_path))
    budget = {"steps": 2, "train_limit": 64, "test_limit": 16, "log_every": 1, "seed": 0}
    splits = case_data("nothing-to-undo", budget)
    run = train_run("nothing-to-undo", "mine", splits, budget,
                    settings={"lr": 1e-3, "localisation_lr_scale": 0.0, "max_grad_norm": None})
    assert run["health"]["verdicts"][0].startswith("θ is exactly the identity"), "a localisation rate of 0 never moves θ"
    assert (tmp_path / "clinic_nothing-to-undo_mine.pt").exists()
