"""Figures of notebook 08 (stn_course.figures.clinic)."""
import matplotlib

matplotlib.use("Agg")

import torch  # noqa: E402

from stn_course.figures import clinic  # noqa: E402


def _run(zoom: float | None, accuracy: float) -> dict:
    log = [{"step": step, "loss": 2.3 - 0.1 * step, "outside": 0.1, "zoom": zoom} for step in (10, 20)]
    return {"log": log, "test_accuracy": accuracy, "theta_first_test_images": [[[zoom or 1.0, 0, 0], [0, 1.0, 0]]] * 4}


def test_a_case_shows_the_readings_regions_and_outputs_of_each_run():
    record = {"title": "a case", "runs": {"broken": _run(1e-4, 0.1), "fixed": _run(1.2, 0.9)}}
    images = torch.rand(4, 1, 28, 28)
    outputs = {"broken": torch.zeros(4, 1, 28, 28), "fixed": images}
    fig = clinic.plot_case(record, images, outputs)
    curves, pictures = fig.axes[:3], fig.axes[3:]
    assert [ax.get_title() for ax in curves] == ["training loss", "points outside the input",
                                                 "median zoom (log scale)"]
    assert curves[2].get_yscale() == "log" and len(pictures) == 2 * 2 * 4
    assert pictures[0].get_title() == "broken: 10.0%" and pictures[8].get_title() == "fixed: 90.0%"
    texts = [t.get_text() for ax in pictures for t in ax.texts]
    assert texts == ["region far\noff the image"] * 4, "only the all-padding outputs are said in words"
    fig.canvas.draw()
    record["runs"]["broken"] = _run(None, 0.1)  # a zoom no longer finite: a gap, and a linear axis
    assert clinic.plot_case(record, images, outputs).axes[2].get_yscale() == "linear"


def test_the_clinic_at_a_glance_has_one_bar_per_run():
    records = {"one": {"runs": {"broken": {"test_accuracy": 0.1}, "fixed": {"test_accuracy": 0.9}}},
               "two": {"runs": {"as-is": {"test_accuracy": 0.98}}}}
    fig = clinic.plot_clinic_accuracies(records)
    assert len(fig.axes[0].patches) == 3
    fig.canvas.draw()
