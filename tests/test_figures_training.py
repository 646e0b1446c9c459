"""Figures of notebooks 02-04 (stn_course.figures.training), also shown in 05-07."""
import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from stn_course.figures import training  # noqa: E402
from stn_course.names import ModelOptions  # noqa: E402
from stn_course.registry import build_classifier  # noqa: E402


def test_recovered_vs_applied_reports_the_correlation():
    applied = {"rotation (°)": np.linspace(-90, 90, 50)}
    fig = training.plot_recovered_vs_applied(applied, {"rotation (°)": -applied["rotation (°)"]})
    assert fig.axes[0].get_title().endswith("r = -1.000")
    two_models = {"model A": applied["rotation (°)"], "model B": applied["rotation (°)"]}
    recovered = {"model A": two_models["model A"], "model B": np.cos(two_models["model B"])}
    fig = training.plot_recovered_vs_applied(two_models, recovered,
                                         quantities={"model A": "rotation (°)", "model B": "rotation (°)"})
    assert fig.axes[0].get_title() == "model A: r = 1.000" and fig.axes[1].get_xlabel() == "applied rotation (°)"


def test_transformer_at_work_titles_each_input_with_its_label():
    model = build_classifier("st-cnn-aff", (1, 42, 42), (0.1307,), (0.3081,), options=ModelOptions(window=28))
    labels = ["7 read as 1", "9 read as 4", "6 read as 0"]
    fig = training.plot_transformer_at_work(model, torch.rand(3, 1, 42, 42), labels=labels)
    assert [ax.get_title() for ax in fig.axes if ax.get_title()] == labels
    assert fig.axes[-1].get_images() == [] and fig.axes[4].get_images()[0].get_array().shape[:2] == (28, 28), \
        "the outputs are the 28x28 windows; unused panels stay empty"


def test_misread_digits_are_titled_with_what_the_model_read():
    from stn_course.analysis import ModelErrors

    model = build_classifier("st-cnn-aff", (1, 28, 28), (0.1307,), (0.3081,))
    errors = ModelErrors(images=torch.rand(20, 1, 28, 28), labels=torch.arange(20) % 10,
                         predictions=(torch.arange(20) + 1) % 10, indices=torch.arange(20),
                         touches_edge=torch.zeros(100, dtype=torch.bool), wrong=torch.zeros(100, dtype=torch.bool))
    titles = [ax.get_title() for ax in training.plot_misread(model, errors, count=3).axes if ax.get_title()]
    assert titles == ["0 read as 1", "1 read as 2", "2 read as 3"]
    with pytest.raises(ValueError, match="no errors"):
        training.plot_misread(model, ModelErrors(*(torch.zeros(0),) * 4, torch.zeros(5), torch.zeros(5)))


def test_histories_figure_draws_one_line_per_run_in_both_panels():
    from stn_course.train import History

    runs = {"plain SGD": History(train_loss=[2.0, 1.5, 1.2], test_accuracy=[0.3, 0.4, 0.5]),
            "momentum": History(train_loss=[1.8, 1.2], test_accuracy=[0.4, 0.55])}
    loss_ax, accuracy_ax = training.plot_histories(runs).axes
    assert [line.get_label() for line in accuracy_ax.lines] == ["plain SGD", "momentum"]
    np.testing.assert_allclose(accuracy_ax.lines[1].get_ydata(), [40.0, 55.0])
    np.testing.assert_allclose(loss_ax.lines[0].get_xdata(), [1, 2, 3])


def test_theta_distributions_histogram_each_model_and_mark_the_identity():
    from stn_course.parameterisation import params_from_theta, theta_from_params, zoom_from_theta

    def decomposed(theta):  # what stn_course.inspection.decomposed_theta returns
        return {**params_from_theta(theta), "zoom": zoom_from_theta(theta)}

    zoomed = decomposed(np.stack([theta_from_params(angle=10, scale=0.5, translation=(0.2, 0.0))] * 5))
    identity = decomposed(np.stack([np.eye(2, 3)] * 5))
    fig = training.plot_theta_distributions({"zoomed": zoomed, "identity": identity})
    rotation_ax, zoom_ax, tx_ax, ty_ax = fig.axes
    labels = [container.patches[0].get_label() for container in rotation_ax.containers]
    assert labels == ["zoomed", "identity"]
    # the zoomed model's five images (scale 0.5: zoom 2, magnified) all land in one bin at 2, the identity's at 1
    zoom_bins = {label: [(patch.get_x(), patch.get_height()) for patch in container.patches
                         if patch.get_height() > 0] for label, container in zip(labels, zoom_ax.containers)}
    (left, count), = zoom_bins["zoomed"]
    assert count == 5 and left <= 2.0 < left + zoom_ax.containers[0].patches[0].get_width()
    assert zoom_ax.get_title() == "zoom (>1 magnifies)"
    assert zoom_bins["identity"][0][1] == 5 and zoom_bins["identity"][0][0] <= 1.0
    assert [line.get_xdata()[0] for line in (rotation_ax.lines[0], zoom_ax.lines[0], tx_ax.lines[0])] == [0, 1, 0]
