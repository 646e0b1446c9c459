"""Figures of notebook 07 (stn_course.figures.vision_transformers)."""
import matplotlib

matplotlib.use("Agg")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from stn_course.figures import vision_transformers  # noqa: E402


def test_patches_and_position_similarity():
    fig = vision_transformers.plot_patches(torch.rand(1, 28, 28), 7, "digit")
    assert "28x28, 7x7 patches" in fig.axes[0].get_title()
    fig = vision_transformers.plot_position_similarity(torch.randn(1 + 16, 8), (4, 4))
    assert sum(1 for ax in fig.axes if ax.get_images()) == 16
    fig.canvas.draw()


def test_where_they_look_and_deformable_sampling():
    images = torch.rand(2, 1, 28, 28)
    grid = F.affine_grid(torch.tensor([[[0.5, 0.0, 0.0], [0.0, 0.5, 0.0]]]).expand(2, 2, 3), [2, 1, 14, 14],
                         align_corners=False)
    fig = vision_transformers.plot_where_they_look(images, {"ViT": torch.rand(2, 4, 4)}, {"ST": grid})
    assert len(fig.axes) == 4
    fig = vision_transformers.plot_deformable_sampling(torch.rand(1, 28, 28), torch.zeros(2), 0.3 * torch.randn(4, 2),
                                                       torch.full((4,), 0.25), torch.eye(2, 3))
    fig.canvas.draw()
