"""Figures of notebook 05 (stn_course.figures.visualising): aliasing in a trained
transformer, Grad-CAM, two transformers, and the animations."""
import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from stn_course.distortions import moving_digit  # noqa: E402
from stn_course.figures import visualising  # noqa: E402
from stn_course.recording import TransformerRecorder  # noqa: E402
from stn_course.registry import build_classifier  # noqa: E402

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
    path = visualising.animate_transformer_evolution(images, recorder.steps, recorder.outputs, recorder.grids,
                                              tmp_path / "evolution.gif", steps_per_epoch=10)
    with Image.open(path) as gif:
        assert gif.n_frames == 3
    assert path.stat().st_size < 2 * 1024 * 1024


def test_smoothing_before_downsampling_removes_aliasing():
    """Stripes of period 3 pixels sampled every 4 pixels alias into a coarse pattern (between
    0 and 0.5); blurred first, they become the flat grey (1/3) they are on average."""
    stripes = (torch.arange(32) % 3 == 0).float().view(1, 1, 1, 32).expand(1, 1, 32, 32)
    identity = torch.tensor([[1.0, 0.0, 0.0, 0.0, 1.0, 0.0]])
    fig = visualising.plot_downsampling_aliasing(stripes, identity, out_hw=(8, 8))
    plain = np.asarray(fig.axes[1].get_images()[0].get_array())
    smooth = np.asarray(fig.axes[2].get_images()[0].get_array())
    assert np.ptp(plain) > 0.45
    assert np.ptp(smooth[:, 1:-1]) < 0.1 and abs(smooth[:, 1:-1].mean() - 1 / 3) < 0.05


def test_grad_cam_figure_shows_each_input_and_transformed_image_under_its_own_map():
    images, transformed = torch.rand(2, 1, 28, 28), torch.rand(2, 1, 20, 20)
    cnn_cams, st_cams = torch.rand(2, 14, 14), torch.rand(2, 5, 5)
    fig = visualising.plot_grad_cam(images, cnn_cams, transformed, st_cams)
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
    fig = visualising.plot_two_transformers(images, [left, right], [images[:, :, :28, :28]] * 2)
    outlines = [line.get_xdata() for line in fig.axes[0].get_lines()]
    assert len(outlines) == 2
    assert max(outlines[0]) < 32 < min(outlines[1]), "left region on the left, right region on the right"


def test_moving_digit_gif_is_readable_and_shows_the_sampled_region(tmp_path):
    frames, _ = moving_digit(_blob(), frames=3)
    identity = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]).expand(3, 2, 3)
    grids = torch.nn.functional.affine_grid(identity, [3, 1, 42, 42], align_corners=False)
    plain = visualising.animate_moving_input(frames, frames, tmp_path / "plain.gif")
    outlined = visualising.animate_moving_input(frames, frames, tmp_path / "outlined.gif", grids=grids)
    with Image.open(plain) as gif:
        assert gif.size[0] >= 400 and gif.size[1] >= 220  # readable: well above the old 264x144
        plain_frame = np.asarray(gif.convert("RGB"), dtype=float)
    with Image.open(outlined) as gif:
        outlined_frame = np.asarray(gif.convert("RGB"), dtype=float)
    # The orange outline and corner dots: pixels with much more red than blue.
    assert ((outlined_frame[..., 0] - outlined_frame[..., 2]) > 100).sum() > 100
    assert ((plain_frame[..., 0] - plain_frame[..., 2]) > 100).sum() == 0


def test_moving_digit_follows_a_closed_path_and_animates(tmp_path):
    frames, params = moving_digit(_blob(), frames=12)
    assert frames.shape == (12, 1, 42, 42)
    assert params["angle"].shape == (12,) and params["shift_px"].shape == (12, 2)
    assert not torch.equal(frames[0], frames[3])
    path = visualising.animate_moving_input(frames, frames, tmp_path / "moving.gif")
    with Image.open(path) as gif:
        assert gif.n_frames == 12
