"""Figures of notebook 06 (stn_course.figures.traffic_signs), on a small made-up GTSRB."""
import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from stn_course.data import ImageTensors  # noqa: E402
from stn_course.figures import traffic_signs  # noqa: E402
from stn_course.gtsrb import GTSRB_CLASSES, GTSRBData  # noqa: E402


def _signs(count=86):
    labels = torch.arange(count) % len(GTSRB_CLASSES)
    images = torch.randint(0, 256, (count, 3, 32, 32), dtype=torch.uint8)
    data = ImageTensors(images=images, labels=labels, classes=GTSRB_CLASSES, mean=(0.5,) * 3, std=(0.25,) * 3,
                        name="gtsrb-test")
    sides = torch.full((count,), 40)
    meta = torch.stack([torch.zeros(count, dtype=torch.int64), sides, sides, sides * 0 + 4, sides * 0 + 4,
                        sides - 5, sides - 5], dim=1)
    return GTSRBData(data, meta)


def test_dataset_figures_show_every_class_and_its_count():
    signs = _signs()
    examples = traffic_signs.plot_class_examples(signs)
    assert sum(1 for ax in examples.axes if ax.get_images()) == len(GTSRB_CLASSES)
    counts = traffic_signs.plot_class_counts(signs, signs)
    heights = [patch.get_height() for patch in counts.axes[0].patches]
    assert sum(heights) == 2 * len(signs.data.labels)
    sizes = traffic_signs.plot_sizes(signs)
    assert len(sizes.axes) == 2
    for fig in (examples, counts, sizes):
        fig.canvas.draw()


def test_zoom_and_per_class_error_figures():
    from stn_course.traffic_signs import crop_analysis

    fraction = torch.linspace(0.5, 0.9, 20)
    theta = torch.zeros(20, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = fraction * 0.9  # zoom 1 / (0.9 fraction)
    crop = crop_analysis(theta, fraction, torch.linspace(30, 200, 20))
    fig = traffic_signs.plot_zoom_vs_size(crop)
    assert len(fig.axes[0].collections) >= 1 and len(fig.axes) == 2, "the scatter and its colour bar"
    assert fig.axes[0].get_title().startswith("r = 1.00; with the original side fixed")
    errors = {"cnn": torch.rand(len(GTSRB_CLASSES)), "st-cnn": torch.rand(len(GTSRB_CLASSES))}
    fig = traffic_signs.plot_per_class_errors(errors, GTSRB_CLASSES)
    assert len(fig.axes[0].patches) == 2 * len(GTSRB_CLASSES)
    fig.canvas.draw()
