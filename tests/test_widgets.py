"""Tests for the θ explorer widget, without a browser: controls -> θ -> re-rendered view."""
import matplotlib

matplotlib.use("Agg")

import base64  # noqa: E402
import sys  # noqa: E402
import types  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from stn_course import sampler  # noqa: E402
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
    expected = sampler.theta_from_params(angle=30.0, scale=(0.5, 1.5), shear=0.2, translation=(0.3, -0.4))
    np.testing.assert_allclose(explorer.theta, expected, atol=1e-12)
    # the raw fields follow the sliders
    raw = [[explorer.raw_fields[f"{i}{j}"].value for j in range(3)] for i in range(2)]
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
    rebuilt = sampler.theta_from_params(angle=p["angle"], scale=(p["scale_x"], p["scale_y"]),
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
    np.testing.assert_allclose(ex.corners, sampler.region_corners(ex.theta, (150, 140), False))


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
