"""Tests for the θ explorer widget, without a browser: controls -> θ -> re-rendered view."""
import matplotlib

matplotlib.use("Agg")

import base64  # noqa: E402
import html  # noqa: E402
import sys  # noqa: E402
import types  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from stn_course import coordinates, parameterisation  # noqa: E402
from stn_course.widgets import RAW_MODE, ThetaExplorer, downsample, theta_explorer  # noqa: E402


def _image(h=20, w=24):
    """An asymmetric test picture, so rotations and flips are visible."""
    img = np.zeros((h, w))
    img[3:8, 4:18] = 1.0
    img[8:16, 4:8] = 0.6
    return img


def _png(explorer):
    (out,) = explorer.view.outputs
    return base64.b64decode(out["data"]["image/png"])


@pytest.fixture
def explorer():
    return theta_explorer(_image())


def test_starts_at_identity_and_renders(explorer):
    np.testing.assert_allclose(explorer.theta, [[1, 0, 0], [0, 1, 0]], atol=1e-12)
    assert explorer.render_count == 1
    assert _png(explorer).startswith(b"\x89PNG")
    np.testing.assert_allclose(explorer.output_image[:, :, 0], _image(), atol=1e-12)
    assert "θ = [[1.000, 0.000, 0.000], [0.000, 1.000, 0.000]]" in explorer.label.value


def test_every_slider_changes_theta_and_rerenders(explorer):
    values = {"angle": 30.0, "scale_x": 0.5, "scale_y": 1.5, "shear": 0.2, "tx": 0.3, "ty": -0.4}
    for name, value in values.items():
        before_png, before_theta, count = _png(explorer), explorer.theta, explorer.render_count
        explorer.sliders[name].value = value
        assert explorer.render_count == count + 1, name
        assert not np.allclose(explorer.theta, before_theta), name
        assert _png(explorer) != before_png, name
    expected = parameterisation.theta_from_params(angle=30.0, scale=(0.5, 1.5), shear=0.2, translation=(0.3, -0.4))
    np.testing.assert_allclose(explorer.theta, expected, atol=1e-12)
    # the raw fields follow the sliders
    raw = [[float(explorer.raw_fields[f"{i}{j}"].value) for j in range(3)] for i in range(2)]
    np.testing.assert_allclose(raw, expected, atol=1e-6)


def test_translation_moves_region_and_output(explorer):
    corners = explorer.corners.copy()
    explorer.sliders["tx"].value = 0.5
    assert np.all(explorer.corners[:, 0] > corners[:, 0])
    np.testing.assert_allclose(explorer.corners[:, 1], corners[:, 1], atol=1e-12)
    # output pixel j samples input column j + 0.5 * W / 2 = j + 6
    np.testing.assert_allclose(explorer.output_image[:, :-6, 0], _image()[:, 6:], atol=1e-9)


def test_angle_90_rotates_square_image():
    img = _image(16, 16)
    ex = theta_explorer(img)
    ex.sliders["angle"].value = 90.0
    # θ = [[0, -1, 0], [1, 0, 0]]: the content turns counter-clockwise, as np.rot90 does
    np.testing.assert_allclose(ex.output_image[:, :, 0], np.rot90(img), atol=1e-12)
    np.testing.assert_allclose(ex.theta, [[0, -1, 0], [1, 0, 0]], atol=1e-12)


def test_raw_mode_round_trip(explorer):
    explorer.mode.value = RAW_MODE
    assert explorer.raw_box.layout.display == "flex"
    assert explorer.param_box.layout.display == "none"
    theta = np.array([[0.6, -0.5, 0.2], [0.4, 0.9, -0.1]])
    count = explorer.render_count
    for i in range(2):
        for j in range(3):
            explorer.raw_fields[f"{i}{j}"].value = float(theta[i, j])
    assert explorer.render_count == count + 6
    np.testing.assert_allclose(explorer.theta, theta, atol=1e-12)
    # the sliders show the decomposition, and it rebuilds the same θ
    p = explorer.params
    rebuilt = parameterisation.theta_from_params(angle=p["angle"], scale=(p["scale_x"], p["scale_y"]),
                                        shear=p["shear"], translation=(p["tx"], p["ty"]))
    np.testing.assert_allclose(rebuilt, theta, atol=1e-9)
    # back to parameters: θ is unchanged until a slider moves
    explorer.mode.value = "parameters"
    assert explorer.param_box.layout.display == "flex"
    np.testing.assert_allclose(explorer.theta, theta, atol=1e-12)
    explorer.sliders["angle"].value = 0.0
    assert not np.allclose(explorer.theta, theta)


def test_set_theta_and_reset(explorer):
    explorer.set_theta([[0.5, 0, 0.1], [0, 0.5, 0]])
    np.testing.assert_allclose(explorer.theta, [[0.5, 0, 0.1], [0, 0.5, 0]], atol=1e-12)
    assert explorer.sliders["scale_x"].value == pytest.approx(0.5)
    assert explorer.sliders["tx"].value == pytest.approx(0.1)
    explorer.reset()
    np.testing.assert_allclose(explorer.theta, [[1, 0, 0], [0, 1, 0]], atol=1e-12)


def test_align_corners_and_padding_rerender():
    explorer = theta_explorer(0.1 + 0.8 * _image())  # edges are not 0: border padding differs from zeros
    explorer.sliders["scale_x"].value = 1.5  # zoom out: padding shows
    explorer.sliders["scale_y"].value = 1.5
    zeros = explorer.output_image.copy()
    explorer.padding.value = "border"
    assert not np.allclose(explorer.output_image, zeros)
    count, png = explorer.render_count, _png(explorer)
    explorer.align_corners_box.value = True
    assert explorer.render_count == count + 1 and _png(explorer) != png
    assert explorer.align_corners is True and explorer.padding_mode == "border"


def test_large_images_are_shrunk_and_redraws_report_their_time():
    """How long a redraw takes is measured by benchmarks/widgets.py, not asserted here."""
    ex = theta_explorer(np.random.default_rng(0).random((300, 280, 3)))  # shrunk to <= 160 px
    assert ex.image.shape == (150, 140, 3)  # block means of 2x2 pixels
    ex.sliders["angle"].value = 10.0
    assert ex.render_count == 2 and ex.last_render_ms > 0
    np.testing.assert_allclose(ex.corners, coordinates.region_corners(ex.theta, (150, 140), False))


def test_downsample():
    img = np.arange(36, dtype=float).reshape(6, 6) / 36
    small = downsample(img, 3)
    assert small.shape == (3, 3, 1)
    assert small[0, 0, 0] == pytest.approx(img[:2, :2].mean())
    assert downsample(img, None).shape == (6, 6, 1)


@pytest.mark.parametrize("shape", [(5,), (2, 4, 5), (2, 3, 4, 5)])
def test_bad_image_shapes_raise(shape):
    with pytest.raises(ValueError):
        theta_explorer(np.zeros(shape))


def test_rgb_and_chw_images():
    rng = np.random.default_rng(5)
    for img in (rng.random((12, 14, 3)), rng.random((3, 12, 14))):
        ex = theta_explorer(img, align_corners=True, padding_mode="reflection")
        assert isinstance(ex, ThetaExplorer)
        assert ex.output_image.shape == (12, 14, 3)
        assert ex.align_corners is True and ex.padding_mode == "reflection"


def test_css_classes_for_the_browser_test(explorer):
    classes = {c for s in explorer.sliders.values() for c in s._dom_classes}
    assert {"stn-angle", "stn-scale-x", "stn-scale-y", "stn-shear", "stn-tx", "stn-ty"} <= classes
    assert "stn-theta-explorer" in explorer._dom_classes
    assert "stn-view" in explorer.view._dom_classes


def test_colab_widget_manager_is_enabled(monkeypatch):
    calls = []
    google = types.ModuleType("google")
    colab = types.ModuleType("google.colab")
    colab.output = types.SimpleNamespace(enable_custom_widget_manager=lambda: calls.append(1))
    google.colab = colab
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    theta_explorer(_image())
    assert calls == [1]


# ---------------------------------------------------------------------------------------
# Typed values: exact, validated, explained
# ---------------------------------------------------------------------------------------

def test_reflection_with_a_huge_raw_theta_returns(tmp_path):
    """1e308 in a raw θ field with reflection padding froze the kernel (the sampler spun on
    index INT_MIN). Run in a child process with a timeout, so a hang fails the test."""
    import subprocess
    from pathlib import Path

    code = ("import matplotlib; matplotlib.use('Agg')\n"
            "import numpy as np\nfrom stn_course.widgets import theta_explorer\n"
            "ex = theta_explorer(np.random.default_rng(0).random((20, 24)), padding_mode='reflection')\n"
            "ex.mode.value = 'raw θ'\nex.raw_fields['00'].value = 1e308\n"
            "assert ex.theta[0, 0] == 1e308 and ex.render_count == 2\nprint('ok')\n")
    done = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True, text=True,
                          timeout=300, cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_nan_or_inf_typed_is_refused_and_the_last_theta_restored(explorer, bad):
    explorer.mode.value = RAW_MODE
    explorer.raw_fields["01"].value = 0.25
    good, count, sliders = explorer.theta, explorer.render_count, explorer.params
    explorer.raw_fields["01"].value = bad
    np.testing.assert_array_equal(explorer.theta, good)
    assert explorer.raw_fields["01"].value == "0.25"  # the field shows the kept value again
    assert explorer.params == sliders and explorer.render_count == count
    assert "finite" in explorer.message.value
    explorer.raw_fields["01"].value = 0.5  # a good value afterwards clears the message
    assert explorer.theta[0, 1] == 0.5 and "finite" not in explorer.message.value


@pytest.mark.parametrize("text", ["abc", "0.5x", "1e400", "", "nan", "-inf"])
def test_bad_text_typed_in_a_raw_field_gets_the_red_message_and_the_last_theta(explorer, text):
    """The browser sends the field's text as typed; what is not a finite number is refused
    with the same red message as NaN, never read as a part of it (0.5x as 0.5)."""
    explorer.mode.value = RAW_MODE
    explorer.raw_fields["01"].value = "0.25"
    good, count = explorer.theta, explorer.render_count
    explorer.raw_fields["01"].value = text
    np.testing.assert_array_equal(explorer.theta, good)
    assert explorer.raw_fields["01"].value == "0.25" and explorer.render_count == count
    assert "color:#b00" in explorer.message.value and "finite numbers" in explorer.message.value
    assert f"θ[0,1] = {html.escape(repr(text))}" in explorer.message.value
    explorer.raw_fields["01"].value = " -0.125 "  # spaces around a number are fine
    assert explorer.theta[0, 1] == -0.125 and "finite" not in explorer.message.value


def test_set_theta_accepts_2x3_and_homogeneous_3x3(explorer):
    explorer.set_theta(np.eye(3))
    np.testing.assert_array_equal(explorer.theta, np.eye(2, 3))
    m = np.array([[0.5, 0.1, 0.2], [-0.1, 0.7, 0.3], [0.0, 0.0, 1.0]])
    explorer.set_theta(m)
    np.testing.assert_array_equal(explorer.theta, m[:2])
    explorer.set_theta(m[None, :2])
    np.testing.assert_array_equal(explorer.theta, m[:2])


@pytest.mark.parametrize("bad, match", [
    (np.ones((3, 3)), "projective"),
    (np.ones(6), r"shape \(6,\)"),
    (np.ones((2, 2)), r"\(2, 3\)"),
    (np.full((2, 3), np.nan), "finite"),
])
def test_set_theta_says_what_it_wants(explorer, bad, match):
    before = explorer.theta
    with pytest.raises(ValueError, match=match):
        explorer.set_theta(bad)
    np.testing.assert_array_equal(explorer.theta, before)


def test_typed_raw_values_are_kept_exactly_despite_slider_echoes(explorer):
    """The browser snaps a slider set from θ to its 0.01 step and sends the snapped value
    back (0.777 -> 0.78); that echo must not round θ. A real move of the slider still counts."""
    explorer.mode.value = RAW_MODE
    explorer.raw_fields["00"].value = 0.777
    explorer.raw_fields["12"].value = -0.123
    assert explorer.theta[0, 0] == 0.777 and explorer.theta[1, 2] == -0.123
    explorer.sliders["scale_x"].value = 0.78  # the echo, as the browser sends it
    explorer.sliders["ty"].value = -0.12
    assert explorer.theta[0, 0] == 0.777 and explorer.theta[1, 2] == -0.123
    assert explorer.raw_fields["00"].value == "0.777"
    explorer.sliders["scale_x"].value = 0.5  # a real change: θ follows the sliders
    assert explorer.theta[0, 0] == pytest.approx(0.5)


def test_out_of_range_slider_value_is_clamped_with_a_note(explorer):
    explorer.sliders["scale_x"].value = 5.0  # as typed into the readout
    assert explorer.sliders["scale_x"].value == 2.0 and explorer.theta[0, 0] == pytest.approx(2.0)
    assert "scale x is at the end of its range" in explorer.message.value
    explorer.sliders["scale_x"].value = 1.0
    assert "end of its range" not in explorer.message.value


def test_raw_theta_beyond_the_sliders_is_kept_with_a_note(explorer):
    explorer.mode.value = RAW_MODE
    explorer.raw_fields["00"].value = 3.5
    assert explorer.theta[0, 0] == 3.5 and explorer.sliders["scale_x"].value == 2.0
    assert "scale x = 3.5 is beyond its slider" in explorer.message.value


@pytest.mark.parametrize("theta, words", [
    (np.zeros((2, 3)), "2x2 part is zero"),
    ([[1.0, 2.0, 0.0], [0.5, 1.0, 0.0]], "degenerate"),
    ([[0.2, 0.0, 1.4], [0.0, 0.2, 0.0]], "outside the input"),
])
def test_black_output_gets_a_one_line_explanation(explorer, theta, words):
    explorer.set_theta(theta)
    assert words in explorer.message.value and "<br>" not in explorer.message.value
    explorer.set_theta(np.eye(2, 3))
    assert explorer.message.value == ""
