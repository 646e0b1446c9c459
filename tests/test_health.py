"""The health check of a spatial transformer (stn_course.health): its verdict on small,
fast versions of each way a transformer goes wrong, on the CPU in seconds."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from stn_course import health
from stn_course.clinic import LearnersTransformer
from stn_course.health import HealthReport, find_transformer, health_check
from stn_course.models import (ConvClassifier, Normalize, SeriesSTClassifier, SpatialTransformer, STClassifier,
                               localisation_net, st_cnn)
from stn_course.utils import repo_root

from .markers import requires_mnist

MEAN, STD = [0.1], [0.3]


def blobs(count: int = 256, seed: int = 0, centred: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Two classes of white bars (upright, lying) on black 28x28 images, anywhere on the canvas
    or all in its centre (nothing for a transformer to undo)."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.zeros(count, 1, 28, 28)
    labels = torch.randint(0, 2, (count,), generator=generator)
    for image, label in zip(images, labels):
        y, x = (14, 14) if centred else torch.randint(8, 20, (2,), generator=generator).tolist()
        half_height, half_width = (4, 2) if label == 0 else (2, 5)
        image[0, y - half_height:y + half_height, x - half_width:x + half_width] = 1
    return images, labels


def learners(**mistakes) -> LearnersTransformer:
    """A learner's own transformer (:mod:`stn_course.clinic`): it exposes θ as ``last_theta``."""
    return LearnersTransformer((1, 28, 28), **mistakes)


def classifier_with(transformer: nn.Module) -> STClassifier:
    return STClassifier(transformer, ConvClassifier((1, 28, 28), MEAN, STD, num_classes=2))


def train(model: nn.Module, lr: float, localisation_scale: float = 1.0, clip: float | None = None,
          steps: int = 30, centred: bool = False) -> nn.Module:
    """A short AdamW run on :func:`blobs` (about a second)."""
    torch.manual_seed(0)
    images, labels = blobs(centred=centred)
    localisation = [p for m in model.modules() if hasattr(m, "localisation") for p in m.localisation.parameters()]
    rest = [p for p in model.parameters() if all(p is not q for q in localisation)]
    optimizer = torch.optim.AdamW([{"params": rest, "lr": lr},
                                   {"params": localisation, "lr": lr * localisation_scale}])
    for step in range(steps):
        batch = torch.arange(step * 32, step * 32 + 32) % len(images)
        loss = F.cross_entropy(model(images[batch]), labels[batch])
        optimizer.zero_grad()
        loss.backward()
        if clip:
            nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
    return model


def check(model: nn.Module) -> HealthReport:
    return health_check(model, blobs(128, seed=1)[0])


def verdicts(report: HealthReport) -> str:
    return "\n".join(report.verdicts)


def test_a_localisation_learning_rate_far_too_high_blows_theta_up_and_points_leave_the_image():
    torch.manual_seed(0)
    report = check(train(st_cnn((1, 28, 28), MEAN, STD, num_classes=2), lr=0.05))
    assert "points leave the image" in verdicts(report) and "θ blew up" in verdicts(report)
    assert "lower the localisation learning rate, clip gradients" in verdicts(report)
    assert report.outside > 0.5 and not report.healthy
    # the fix: the localisation 10x slower, gradients clipped
    torch.manual_seed(0)
    fixed = check(train(st_cnn((1, 28, 28), MEAN, STD, num_classes=2), lr=0.05, localisation_scale=0.1, clip=1.0))
    assert "points leave" not in verdicts(fixed) and fixed.outside < 0.5 and fixed.healthy


def test_no_identity_initialisation_magnifies_the_output():
    torch.manual_seed(0)
    transformer = SpatialTransformer(localisation_net((1, 28, 28), 6))
    transformer.localisation[-1].reset_parameters()  # PyTorch's random init instead of the identity
    report = check(classifier_with(transformer))
    assert "output magnified" in verdicts(report) and "no identity initialisation" in verdicts(report)
    assert report.zoom[2] > 2.5
    # the fix: the course's transformer starts at the identity, exactly
    fixed = check(classifier_with(SpatialTransformer(localisation_net((1, 28, 28), 6))))
    assert fixed.verdicts == [health.EXACT_IDENTITY] and fixed.zoom == (1.0,) * 5


def test_normalising_before_sampling_is_found_as_a_grey_frame():
    torch.manual_seed(0)
    transformer = SpatialTransformer(localisation_net((1, 28, 28), 6))
    normalised_first = nn.Sequential(Normalize(MEAN, STD), transformer, nn.Flatten(), nn.Linear(28 * 28, 2))
    report = health_check(normalised_first, blobs(16)[0], transformer=transformer)
    assert "grey frame" in verdicts(report) and "sample the raw image and normalise after it" in verdicts(report)
    assert f"input for a black image is {-MEAN[0] / STD[0]:.3g}, but it pads with 0" in verdicts(report)
    # the course's order: sample the raw image, then normalise (the classifier's first layer)
    assert "grey frame" not in verdicts(check(classifier_with(SpatialTransformer(localisation_net((1, 28, 28), 6)))))


@pytest.mark.parametrize("grid, sample", [(False, True), (True, False)])
def test_align_corners_differing_between_affine_grid_and_grid_sample_is_found(grid, sample):
    torch.manual_seed(0)
    report = check(classifier_with(learners(align_corners=(grid, sample))))
    assert "the identity does not give the image back" in verdicts(report)
    assert f"align_corners is {grid} in affine_grid but {sample} in grid_sample" in verdicts(report)
    assert "W/(W-1)" in verdicts(report)
    for same in (False, True):
        matched = check(classifier_with(learners(align_corners=(same, same))))
        assert "align_corners" not in verdicts(matched)


def test_theta_written_into_an_integer_tensor_is_found_truncated():
    torch.manual_seed(0)
    transformer = learners(integer_theta=True)
    with torch.no_grad():  # a θ slightly off the identity, as after a few steps: 0.97 truncates to 0
        transformer.localisation[-1].bias.add_(torch.tensor([-0.03, 0.02, 0.1, -0.01, -0.02, -0.1]))
    report = check(classifier_with(transformer))
    assert report.verdicts == [health.TRUNCATED]
    assert "whole numbers" in verdicts(report) and "integer tensor" in verdicts(report)
    # stored as float after the truncation: still whole numbers, still found
    stored_as_float = TruncatedStoredAsFloat((1, 28, 28), integer_theta=True)
    stored_as_float.load_state_dict(transformer.state_dict())
    assert check(classifier_with(stored_as_float)).verdicts == [health.TRUNCATED]
    # trained from the identity: truncation also cuts the gradient, so θ never leaves the identity
    assert check(train(classifier_with(learners(integer_theta=True)), lr=2e-3, steps=10)).verdicts == \
        [health.TRUNCATED]
    trained = check(train(classifier_with(TruncatedStoredAsFloat((1, 28, 28), integer_theta=True)), lr=2e-3, steps=10))
    assert trained.verdicts == [health.EXACT_IDENTITY] and "integer tensor" in verdicts(trained)


class TruncatedStoredAsFloat(LearnersTransformer):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        output = super().forward(x)
        self.last_theta = self.last_theta.float()
        return output


def test_a_bounded_theta_saturates_where_an_unbounded_one_blows_up():
    torch.manual_seed(0)
    unbounded = check(train(classifier_with(learners()), lr=0.05))
    assert "θ blew up" in verdicts(unbounded)
    torch.manual_seed(0)
    bounded = check(train(classifier_with(learners(bound=0.5)), lr=0.05))
    assert "θ sits at its bound" in verdicts(bounded) and "a bounded θ cannot blow up" in verdicts(bounded)
    assert "blew up" not in verdicts(bounded) and bounded.outside < 0.5


def test_a_transformer_with_nothing_to_undo_stays_at_the_identity_and_that_is_not_a_bug():
    torch.manual_seed(0)
    model = train(st_cnn((1, 28, 28), MEAN, STD, num_classes=2), lr=2e-3, localisation_scale=0.1, clip=5.0,
                  centred=True)
    report = health_check(model, blobs(128, seed=1, centred=True)[0])
    assert len(report.verdicts) == 1 and report.verdicts[0].startswith("θ stays at the identity")
    assert "nothing to undo (not a bug)" in str(report) and report.healthy
    assert 0 < report.distance[2] < 0.1  # it trained, and stayed


def test_a_third_of_the_output_in_the_padding_is_said():
    transformer = learners()
    with torch.no_grad():  # shifted up by a fifth of the image and zoomed out a little, as cifar-net-a does
        transformer.localisation[-1].bias.copy_(torch.tensor([1.15, 0.0, 0.0, 0.0, 1.15, -0.4]))
    report = check(classifier_with(transformer))
    assert 0.3 < report.outside <= 0.5
    assert report.verdicts[0] == health.PADDED.format(outside=report.outside)  # then: the same θ for every image
    assert "padding_mode='border'" in str(report)


def test_the_report_reads_well_and_needs_only_last_theta():
    report = check(classifier_with(learners()))
    text = str(report)
    assert text.startswith("Spatial transformer health check (128 images, read from θ)")
    for row in ("zoom (>1 magnifies)", "rotation (degrees)", "shear", "translation x", "translation y",
                "distance to identity", "Verdict:"):
        assert row in text
    assert report.zoom == (1.0,) * 5 and report.outside == 0.0
    assert report.transformer == "transformer" and report.transformers == 1
    series = SeriesSTClassifier((1, 28, 28), MEAN, STD)
    both = [health_check(series, blobs(8)[0], transformer=t) for t in (None, series.feature_transformer)]
    assert [(r.transformer, r.transformers) for r in both] == [("input_transformer", 2), ("feature_transformer", 2)]
    assert "read from θ; of feature_transformer, one of 2 transformers)" in str(both[1])
    with pytest.raises(ValueError, match="last_theta"):
        find_transformer(ConvClassifier((1, 28, 28), MEAN, STD))


def test_projective_and_tps_transformers_are_read_through_an_affine_fit_of_their_grid():
    for transform in ("projective", "tps"):
        torch.manual_seed(0)
        report = check(st_cnn((1, 28, 28), MEAN, STD, num_classes=2, transform=transform))
        assert report.source == "affine fit of the grid"
        assert report.zoom[2] == pytest.approx(1.0, abs=1e-5) and report.distance[4] < 1e-4


@requires_mnist
def test_diagnose_reports_on_the_shipped_mnist_run(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(repo_root()), "STN_COURSE_QUICK": "0",
           "STN_COURSE_OUTPUT": str(tmp_path / "out"), "STN_COURSE_CHECKPOINTS": str(tmp_path / "checkpoints")}
    result = subprocess.run([sys.executable, "-m", "stn_course", "diagnose", "--dataset", "mnist", "--model",
                             "st-cnn-aff", "--epochs", "5", "--device", "cpu"],
                            capture_output=True, text=True, env=env, timeout=300, cwd=repo_root(), check=False)
    assert result.returncode == 0, result.stderr
    assert "Loaded the trained model shipped with the course" in result.stdout
    assert "Spatial transformer health check (1000 images, read from θ)" in result.stdout
    assert "θ stays at the identity" in result.stdout and "nothing to undo (not a bug)" in result.stdout
    assert result.stdout.count("Spatial transformer health check") == 1


@requires_mnist
def test_diagnose_reports_on_each_transformer_of_a_model_with_two(tmp_path, monkeypatch, capsys):
    from stn_course import experiments
    from stn_course.__main__ import main

    def loaded(config, device=None):  # an untrained two-transformer model, on a few MNIST test images
        from types import SimpleNamespace

        from stn_course.data import load_mnist
        test = load_mnist(train=False, limit=32)
        return SimpleNamespace(model=SeriesSTClassifier((1, 28, 28), MEAN, STD),
                               test_loader=[(test.images.float() / 255, test.labels)]), False

    monkeypatch.setattr(experiments, "load_trained", loaded)
    assert main(["diagnose", "--model", "st-series", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "(32 images, read from θ; of input_transformer, one of 2 transformers)" in out
    assert "(32 images, read from θ; of feature_transformer, one of 2 transformers)" in out
    assert out.count(health.EXACT_IDENTITY) == 2


def test_diagnose_on_a_model_without_a_transformer_is_one_message(monkeypatch, capsys):
    from types import SimpleNamespace

    from stn_course import experiments
    from stn_course.__main__ import main

    def loaded(config, device=None):
        return SimpleNamespace(model=ConvClassifier((1, 28, 28), MEAN, STD), test_loader=[]), True

    monkeypatch.setattr(experiments, "load_trained", loaded)
    assert main(["diagnose", "--model", "cnn", "--device", "cpu"]) == 1
    assert capsys.readouterr().err.startswith("cnn has no spatial transformer to diagnose")


def test_a_theta_the_same_for_every_image_is_a_saturated_bound_or_a_localisation_that_ignores_its_input():
    torch.manual_seed(0)
    ignoring = SpatialTransformer(localisation_net((1, 28, 28), 6))
    with torch.no_grad():  # zero weights (dead ReLUs do the same): θ is the bias, whatever the image
        ignoring.localisation[-1].bias.copy_(torch.tensor([1.2, 0.2, -0.05, -0.06, 0.95, 0.02]))
    report = check(classifier_with(ignoring))
    assert report.verdicts == [health.CONSTANT] and "ignores its input" in verdicts(report)
    saturated = learners(bound=0.5)
    with torch.no_grad():
        saturated.localisation[-1].bias.copy_(torch.tensor([1e3, -1e3, -1e3, 1e3, -1e3, 1e3]))
    report = check(classifier_with(saturated))
    assert health.SATURATED.format(share=1.0) in report.verdicts and health.CONSTANT not in report.verdicts


class _SetsThetaWhenItRuns(nn.Module):
    """A learner's transformer that creates ``last_theta`` in its forward pass only (notebook 08's)."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(1.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        theta = (torch.eye(2, 3) * self.scale).expand(len(x), 2, 3)
        self.last_theta = theta.detach()
        return F.grid_sample(x, F.affine_grid(theta, list(x.shape), align_corners=False), align_corners=False)


def test_a_transformer_that_sets_last_theta_only_when_it_runs_is_found_before_its_first_forward():
    model = _SetsThetaWhenItRuns()
    report = health_check(model, blobs(8)[0])
    assert report.transformer == "" and report.transformers == 1
    assert report.zoom == (1.0,) * 5 and report.verdicts[0].startswith("θ is exactly the identity")
    with pytest.raises(ValueError, match="last_theta"):  # a model with no transformer at all still says so
        health_check(ConvClassifier((1, 28, 28), MEAN, STD), blobs(8)[0])
