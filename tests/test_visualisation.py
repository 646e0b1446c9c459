"""Tools for looking inside trained spatial transformers (notebook 05)."""
import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from stn_course import plot  # noqa: E402
from stn_course.distortions import moving_digit  # noqa: E402
from stn_course.inspection import decomposed_theta, grad_cam, last_classifier_conv  # noqa: E402
from stn_course.names import ModelOptions  # noqa: E402
from stn_course.registry import build_classifier  # noqa: E402
from stn_course.recording import TransformerRecorder  # noqa: E402

MEAN, STD = (0.1307,), (0.3081,)


def _blob(size=28):
    image = torch.zeros(1, 1, size, size)
    image[..., 8:20, 11:17] = 1.0
    return image


def test_evolution_gif_has_one_frame_per_recording(tmp_path):
    images = torch.rand(3, 1, 28, 28)
    model = build_classifier("st-cnn-aff", (1, 28, 28), MEAN, STD)
    recorder = TransformerRecorder(images, every=1)
    for step in range(3):
        with torch.no_grad():
            model.transformer.localisation[-1].bias[0] += 0.2  # a transformer that changes
        recorder(step, model)
    path = plot.animate_transformer_evolution(images, recorder.steps, recorder.outputs, recorder.grids,
                                              tmp_path / "evolution.gif", steps_per_epoch=10)
    with Image.open(path) as gif:
        assert gif.n_frames == 3
    assert path.stat().st_size < 2 * 1024 * 1024


def test_moving_digit_follows_a_closed_path_and_animates(tmp_path):
    frames, params = moving_digit(_blob(), frames=12)
    assert frames.shape == (12, 1, 42, 42)
    assert params["angle"].shape == (12,) and params["shift_px"].shape == (12, 2)
    assert not torch.equal(frames[0], frames[3])
    path = plot.animate_moving_input(frames, frames, tmp_path / "moving.gif")
    with Image.open(path) as gif:
        assert gif.n_frames == 12


def test_grad_cam_finds_the_evidence():
    """A hand-made classifier: channel 0 sees the left half, channel 1 the right half, and
    class 1's score is channel 1's total, so its evidence is the right half only."""
    class HalfFeatures(torch.nn.Module):
        def __init__(self):
            super().__init__()
            mask = torch.zeros(1, 2, 28, 28)
            mask[:, 0, :, :14] = 1
            mask[:, 1, :, 14:] = 1
            self.register_buffer("mask", mask)
            self.gain = torch.nn.Parameter(torch.ones(()))

        def forward(self, x):
            return x.expand(-1, 2, -1, -1) * self.mask * self.gain

    class Halves(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.features = HalfFeatures()

        def forward(self, x):
            return self.features(x).sum(dim=(2, 3))

    images = torch.rand(2, 1, 28, 28) + 0.1
    model = Halves()
    cam = grad_cam(model, images, layer=model.features, target=torch.tensor([1, 1]))
    assert cam.shape == (2, 28, 28) and cam.max() == pytest.approx(1.0)
    assert cam[:, :, :14].max() == 0 and cam[:, :, 14:].min() > 0
    cam_left = grad_cam(model, images, layer=model.features, target=torch.tensor([0, 0]))
    assert cam_left[:, :, 14:].max() == 0 and cam_left[:, :, :14].min() > 0


def test_grad_cam_layer_is_outside_the_localisation_network():
    model = build_classifier("st-cnn-aff", (1, 28, 28), MEAN, STD)
    assert last_classifier_conv(model) is model.classifier.features[3]
    cam = grad_cam(model, torch.rand(4, 1, 28, 28))
    assert cam.shape == (4, 14, 14)  # the second convolution works at 14x14
    assert model.training, "the model's mode is restored"


def test_recovered_vs_applied_reports_the_correlation():
    applied = {"rotation (°)": np.linspace(-90, 90, 50)}
    fig = plot.plot_recovered_vs_applied(applied, {"rotation (°)": -applied["rotation (°)"]})
    assert fig.axes[0].get_title().endswith("r = -1.000")
    two_models = {"model A": applied["rotation (°)"], "model B": applied["rotation (°)"]}
    recovered = {"model A": two_models["model A"], "model B": np.cos(two_models["model B"])}
    fig = plot.plot_recovered_vs_applied(two_models, recovered,
                                         quantities={"model A": "rotation (°)", "model B": "rotation (°)"})
    assert fig.axes[0].get_title() == "model A: r = 1.000" and fig.axes[1].get_xlabel() == "applied rotation (°)"


def test_smoothing_before_downsampling_removes_aliasing():
    """Stripes of period 3 pixels sampled every 4 pixels alias into a coarse pattern (between
    0 and 0.5); blurred first, they become the flat grey (1/3) they are on average."""
    stripes = (torch.arange(32) % 3 == 0).float().view(1, 1, 1, 32).expand(1, 1, 32, 32)
    identity = torch.tensor([[1.0, 0.0, 0.0, 0.0, 1.0, 0.0]])
    fig = plot.plot_downsampling_aliasing(stripes, identity, out_hw=(8, 8))
    plain = np.asarray(fig.axes[1].get_images()[0].get_array())
    smooth = np.asarray(fig.axes[2].get_images()[0].get_array())
    assert np.ptp(plain) > 0.45
    assert np.ptp(smooth[:, 1:-1]) < 0.1 and abs(smooth[:, 1:-1].mean() - 1 / 3) < 0.05


def test_decomposed_theta_reads_the_transformers_theta():
    model = build_classifier("st-cnn-aff", (1, 28, 28), MEAN, STD)
    with torch.no_grad():  # make the transformer predict a 30° rotation at scale 0.8
        from stn_course.sampler import theta_from_params
        model.transformer.localisation[-1].bias.copy_(
            torch.tensor(theta_from_params(angle=30, scale=0.8)).flatten())
    params = decomposed_theta(model, torch.rand(3, 1, 28, 28))
    np.testing.assert_allclose(params["angle"], [30, 30, 30], atol=1e-4)
    np.testing.assert_allclose(params["scale"][0], [0.8] * 3, atol=1e-5)
    with pytest.raises(ValueError, match="affine"):
        decomposed_theta(build_classifier("cnn", (1, 28, 28), MEAN, STD), torch.rand(1, 1, 28, 28))


def test_grad_cam_figure_shows_each_input_and_transformed_image_under_its_own_map():
    images, transformed = torch.rand(2, 1, 28, 28), torch.rand(2, 1, 20, 20)
    cnn_cams, st_cams = torch.rand(2, 14, 14), torch.rand(2, 5, 5)
    fig = plot.plot_grad_cam(images, cnn_cams, transformed, st_cams)
    assert [ax.get_title() for ax in fig.axes[:4]] == ["input", "CNN: Grad-CAM", "ST-CNN: transformed", "ST-CNN: Grad-CAM"]
    for row in range(2):
        panels = [[np.asarray(image.get_array()) for image in ax.get_images()] for ax in fig.axes[4 * row:4 * row + 4]]
        for picture in panels[0][:1] + panels[1][:1]:
            np.testing.assert_array_equal(picture, images[row, 0].numpy())
        for picture in panels[2][:1] + panels[3][:1]:
            np.testing.assert_array_equal(picture, transformed[row, 0].numpy())
        assert [len(images_shown) for images_shown in panels] == [1, 2, 1, 2], "maps only over panels 2 and 4"
        np.testing.assert_array_equal(panels[1][1], cnn_cams[row].numpy())
        np.testing.assert_array_equal(panels[3][1], st_cams[row].numpy())
        # each map is stretched over the image it belongs to
        assert fig.axes[4 * row + 3].get_images()[1].get_extent() == [-0.5, 19.5, 19.5, -0.5]


def test_two_transformers_figure_outlines_both_regions():
    images = torch.rand(2, 1, 32, 64)
    left = torch.nn.functional.affine_grid(torch.tensor([[[0.5, 0, -0.5], [0, 1, 0]]]).expand(2, 2, 3),
                                           [2, 1, 28, 28], align_corners=False)
    right = torch.nn.functional.affine_grid(torch.tensor([[[0.5, 0, 0.5], [0, 1, 0]]]).expand(2, 2, 3),
                                            [2, 1, 28, 28], align_corners=False)
    fig = plot.plot_two_transformers(images, [left, right], [images[:, :, :28, :28]] * 2)
    outlines = [line.get_xdata() for line in fig.axes[0].get_lines()]
    assert len(outlines) == 2
    assert max(outlines[0]) < 32 < min(outlines[1]), "left region on the left, right region on the right"


def test_transformer_at_work_titles_each_input_with_its_label():
    model = build_classifier("st-cnn-aff", (1, 42, 42), (0.1307,), (0.3081,), options=ModelOptions(window=28))
    labels = ["7 read as 1", "9 read as 4", "6 read as 0"]
    fig = plot.plot_transformer_at_work(model, torch.rand(3, 1, 42, 42), labels=labels)
    assert [ax.get_title() for ax in fig.axes if ax.get_title()] == labels
    assert fig.axes[-1].get_images() == [] and fig.axes[4].get_images()[0].get_array().shape[:2] == (28, 28), \
        "the outputs are the 28x28 windows; unused panels stay empty"


def test_misread_digits_are_titled_with_what_the_model_read():
    from stn_course.analysis import ModelErrors

    model = build_classifier("st-cnn-aff", (1, 28, 28), (0.1307,), (0.3081,))
    errors = ModelErrors(images=torch.rand(20, 1, 28, 28), labels=torch.arange(20) % 10,
                         predictions=(torch.arange(20) + 1) % 10, indices=torch.arange(20),
                         touches_edge=torch.zeros(100, dtype=torch.bool), wrong=torch.zeros(100, dtype=torch.bool))
    titles = [ax.get_title() for ax in plot.plot_misread(model, errors, count=3).axes if ax.get_title()]
    assert titles == ["0 read as 1", "1 read as 2", "2 read as 3"]
    with pytest.raises(ValueError, match="no errors"):
        plot.plot_misread(model, ModelErrors(*(torch.zeros(0),) * 4, torch.zeros(5), torch.zeros(5)))


def test_histories_figure_draws_one_line_per_run_in_both_panels():
    from stn_course.train import History

    runs = {"plain SGD": History(train_loss=[2.0, 1.5, 1.2], test_accuracy=[0.3, 0.4, 0.5]),
            "momentum": History(train_loss=[1.8, 1.2], test_accuracy=[0.4, 0.55])}
    loss_ax, accuracy_ax = plot.plot_histories(runs).axes
    assert [line.get_label() for line in accuracy_ax.lines] == ["plain SGD", "momentum"]
    np.testing.assert_allclose(accuracy_ax.lines[1].get_ydata(), [40.0, 55.0])
    np.testing.assert_allclose(loss_ax.lines[0].get_xdata(), [1, 2, 3])


def test_theta_distributions_histogram_each_model_and_mark_the_identity():
    from stn_course.sampler import params_from_theta, theta_from_params

    zoomed = params_from_theta(np.stack([theta_from_params(angle=10, scale=0.5, translation=(0.2, 0.0))] * 5))
    identity = params_from_theta(np.stack([np.eye(2, 3)] * 5))
    fig = plot.plot_theta_distributions({"zoomed": zoomed, "identity": identity})
    rotation_ax, zoom_ax, tx_ax, ty_ax = fig.axes
    labels = [container.patches[0].get_label() for container in rotation_ax.containers]
    assert labels == ["zoomed", "identity"]
    # the zoomed model's five images all land in the zoom-0.5 bin, the identity's at 1
    zoom_bins = {label: [(patch.get_x(), patch.get_height()) for patch in container.patches
                         if patch.get_height() > 0] for label, container in zip(labels, zoom_ax.containers)}
    (left, count), = zoom_bins["zoomed"]
    assert count == 5 and left <= 0.5 < left + zoom_ax.containers[0].patches[0].get_width()
    assert zoom_bins["identity"][0][1] == 5 and zoom_bins["identity"][0][0] <= 1.0
    assert [line.get_xdata()[0] for line in (rotation_ax.lines[0], zoom_ax.lines[0], tx_ax.lines[0])] == [0, 1, 0]


def test_moving_digit_gif_is_readable_and_shows_the_sampled_region(tmp_path):
    frames, _ = moving_digit(_blob(), frames=3)
    identity = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]).expand(3, 2, 3)
    grids = torch.nn.functional.affine_grid(identity, [3, 1, 42, 42], align_corners=False)
    plain = plot.animate_moving_input(frames, frames, tmp_path / "plain.gif")
    outlined = plot.animate_moving_input(frames, frames, tmp_path / "outlined.gif", grids=grids)
    with Image.open(plain) as gif:
        assert gif.size[0] >= 400 and gif.size[1] >= 220  # readable: well above the old 264x144
        plain_frame = np.asarray(gif.convert("RGB"), dtype=float)
    with Image.open(outlined) as gif:
        outlined_frame = np.asarray(gif.convert("RGB"), dtype=float)
    # The orange outline and corner dots: pixels with much more red than blue.
    assert ((outlined_frame[..., 0] - outlined_frame[..., 2]) > 100).sum() > 100
    assert ((plain_frame[..., 0] - plain_frame[..., 2]) > 100).sum() == 0
