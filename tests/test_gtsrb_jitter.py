"""The GTSRB-jitter test sets: seeded, documented strengths beyond the training jitter, and a
finished run's accuracy on them recorded with its command."""
import inspect
import json
from dataclasses import replace

import pytest
import torch

from stn_course import gtsrb_jitter
from stn_course.augment import random_affine
from stn_course.data import ImageTensors
from stn_course.gtsrb_jitter import JITTER_STRENGTHS, jitter_ranges, jitter_theta, jittered
from stn_course.utils import data_root

requires_gtsrb = pytest.mark.skipif(not (data_root() / "GTSRB" / "gtsrb32.npz").exists(),
                                    reason="GTSRB (gtsrb32.npz) is not under the data root")


def _images(count=6, side=16):
    generator = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (count, 3, side, side), generator=generator, dtype=torch.uint8)
    return ImageTensors(pixels, torch.arange(count) % 3, ("a", "b", "c"), (0.5,) * 3, (0.25,) * 3, "tiny")


def test_strengths_are_multiples_of_the_training_jitter_as_documented():
    defaults = inspect.signature(random_affine).parameters
    assert gtsrb_jitter.TRAINING_JITTER == pytest.approx({"degrees": defaults["degrees"].default,
                                                          "zoom": 1 - defaults["scale"].default[0],
                                                          "shift": defaults["shift"].default})
    assert defaults["scale"].default[1] == pytest.approx(1 + gtsrb_jitter.TRAINING_JITTER["zoom"])
    assert list(JITTER_STRENGTHS) == ["none", "weak", "medium", "strong"]
    flat = lambda ranges: [ranges["degrees"], *ranges["scale"], ranges["shift"]]
    assert flat(jitter_ranges("strong")) == pytest.approx([40.0, 0.6, 1.4, 0.4])
    assert flat(jitter_ranges("weak")) == pytest.approx([20.0, 0.8, 1.2, 0.2])
    assert flat(jitter_ranges("none")) == [0.0, 1.0, 1.0, 0.0]
    for strength in ("weak", "medium", "strong"):  # each row of the module's table
        ranges = jitter_ranges(strength)
        row = (f"{strength:<9}  {JITTER_STRENGTHS[strength]:<6}  ±{ranges['degrees']:.0f}°        "
               f"{ranges['scale'][0]:.1f}–{ranges['scale'][1]:.1f}     ±{ranges['shift']:.1f}")
        assert row in gtsrb_jitter.__doc__, row
    with pytest.raises(ValueError, match="unknown jitter strength 'huge'; choose from none, weak, medium, strong"):
        jitter_ranges("huge")


def test_the_draws_are_seeded_and_grow_with_the_strength_in_the_same_direction():
    weak, strong = jitter_theta(500, "weak"), jitter_theta(500, "strong")
    assert torch.equal(weak, jitter_theta(500, "weak")) and not torch.equal(weak, jitter_theta(500, "weak", seed=1))
    angle = lambda theta: torch.rad2deg(torch.atan2(theta[:, 1, 0], theta[:, 0, 0]))
    assert angle(weak).abs().max() <= 20 + 1e-4 and angle(strong).abs().max() > 35
    assert torch.allclose(angle(strong), 2 * angle(weak), atol=1e-3), "the same draw, twice as far"
    assert torch.allclose(strong[:, :, 2], 2 * weak[:, :, 2], atol=1e-6)
    zoom = 1 / torch.linalg.det(strong[:, :, :2]).sqrt()
    assert 0.6 - 1e-4 <= zoom.min() < 0.65 and 1.35 < zoom.max() <= 1.4 + 1e-4


def test_jittered_images_are_uint8_warped_by_their_theta_and_none_is_the_test_set():
    data = _images()
    assert torch.equal(jittered(data, "none").images, data.images)
    strong = jittered(data, "strong")
    assert strong.images.dtype == torch.uint8 and strong.images.shape == data.images.shape
    assert strong.name == "tiny-jitter-strong" and torch.equal(strong.labels, data.labels)
    expected = torch.nn.functional.grid_sample(
        data.images.float() / 255, torch.nn.functional.affine_grid(jitter_theta(6, "strong"), [6, 3, 16, 16],
                                                                   align_corners=False),
        padding_mode="border", align_corners=False)
    assert (strong.images.float() - 255 * expected).abs().max() <= 0.5 + 1e-3
    assert torch.equal(jittered(data, "strong", batch=4).images, strong.images), "batches change nothing"
    assert not torch.equal(jittered(data, "weak").images, strong.images)


class _Transformer(torch.nn.Module):
    """A stand-in input transformer that predicts given parameters ``(N, 6)``, image after image."""

    def __init__(self, params):
        super().__init__()
        self.params, self.calls = params, 0

    def transform_input(self, images):
        params = self.params[self.calls:self.calls + len(images)]
        self.calls += len(images)
        return images, params, None


def _model(params):
    model = torch.nn.Module()
    model.input_transformer = _Transformer(params)
    return model


def test_theta_read_back_sees_a_transformer_that_undoes_the_jitter():
    applied = jitter_theta(64, "strong")
    data = _images(64)
    inverse = torch.linalg.inv(torch.cat([applied, torch.tensor([[[0.0, 0, 1]]]).expand(64, 1, 3)], dim=1))
    undo = gtsrb_jitter.theta_read_back(_model(inverse[:, :2].reshape(64, 6)), data, applied, torch.device("cpu"))
    assert undo["rotation_correlation"] == pytest.approx(-1, abs=1e-3)
    assert undo["scale_correlation"] == pytest.approx(-1, abs=1e-3)
    assert undo["mean_abs_rotation_degrees"] > 10
    copy = gtsrb_jitter.theta_read_back(_model(applied.reshape(64, 6)), data, applied, torch.device("cpu"))
    assert copy["rotation_correlation"] == pytest.approx(1, abs=1e-3), "one that repeats the jitter correlates +1"
    still = _model(torch.tensor([1.0, 0, 0, 0, 1, 0]).repeat(64, 1))
    assert gtsrb_jitter.theta_read_back(still, data, applied, torch.device("cpu")) == {
        "rotation_correlation": None, "scale_correlation": None, "mean_abs_rotation_degrees": 0.0}


def test_only_runs_on_the_official_test_set_are_jittered():
    from stn_course.errors import CourseError
    from stn_course.recipes import default_config

    with pytest.raises(CourseError, match="they test runs on gtsrb or gtsrb48, not gtsrb-val"):
        gtsrb_jitter.record_jitter(default_config("gtsrb-val", "gtsrb-bn-st-cnn", 4, quick=True))


@requires_gtsrb
def test_the_command_records_a_finished_runs_accuracy_at_each_strength(capsys):
    from stn_course.__main__ import main
    from stn_course.recipes import default_config
    from stn_course.utils import results_dir

    options = ["--dataset", "gtsrb", "--model", "gtsrb-bn-st-cnn", "--epochs", "3", "--set", "base_width=8"]
    assert main(["train", *options]) == 0
    assert main(["jitter", *options]) == 0
    config = replace(default_config("gtsrb", "gtsrb-bn-st-cnn", 3, quick=True), base_width=8)
    path = results_dir() / f"jitter_{config.name}.json"
    assert f"Saved the jitter results to {path}" in capsys.readouterr().out
    record = json.loads(path.read_text())
    assert record["command"] == config.command("jitter") and record["machine"]["cpu_count"] >= 1
    assert record["run"] == config.name and record["weights"] == "trained" and record["jitter_seed"] == 0
    rows = record["strengths"]
    assert [row["strength"] for row in rows] == list(JITTER_STRENGTHS)
    assert {row["samples"] for row in rows} == {256} and all(0 <= row["accuracy"] <= 1 for row in rows)
    run = json.loads((results_dir() / f"{config.name}.json").read_text())
    assert rows[0]["correct"] == run["test_correct"], "strength none is the run's own test set"
    assert rows[3]["degrees"] == 40 and rows[3]["scale"] == pytest.approx([0.6, 1.4])
    assert "theta_read_back" not in rows[0] and set(rows[3]["theta_read_back"]) == {
        "rotation_correlation", "scale_correlation", "mean_abs_rotation_degrees"}
    test_set = gtsrb_jitter.jitter_test_set("medium", limit=256)
    assert len(test_set) == 256 and test_set.name.endswith("-jitter-medium[:256]")
