import torch
from torch import nn

from stn_course.analysis import collect_errors, describe_error_summary, error_summary, touches_edge
from stn_course.data import ImageTensors
from stn_course.loader import BatchLoader


def test_touches_edge_looks_at_the_outermost_pixels_only():
    images = torch.zeros(4, 1, 8, 8)
    images[1, 0, 0, 5] = 1.0  # top row
    images[2, 0, 4, 7] = 0.5  # right column
    images[3, 0, 1:7, 1:7] = 1.0  # a block that stops one pixel short of every edge
    assert touches_edge(images).tolist() == [False, True, True, False]
    assert touches_edge(images, threshold=0.6).tolist() == [False, True, False, False]


class ReadsTheCentre(nn.Module):
    """Predicts 1 if the centre pixel is bright, else 0."""

    def forward(self, x):
        bright = x[:, 0, 4, 4] > 0.5
        return torch.stack([(~bright).float(), bright.float()], dim=1)


def test_collect_errors_keeps_what_the_model_got_wrong_and_where_it_was():
    images = torch.zeros(6, 1, 8, 8, dtype=torch.uint8)
    images[[1, 3, 4], 0, 4, 4] = 255  # the model reads these as 1
    images[[3, 5], 0, 0, 0] = 255  # ink at the edge
    labels = torch.tensor([0, 1, 1, 0, 1, 1])  # wrong: 2 (reads 0), 3 (reads 1), 5 (reads 0)
    data = ImageTensors(images, labels, ("zero", "one"), (0.5,), (0.5,), "toy")
    errors = collect_errors(ReadsTheCentre(), BatchLoader(data, batch_size=4))
    assert errors.indices.tolist() == [2, 3, 5], "positions across batches"
    assert errors.labels.tolist() == [1, 0, 1] and errors.predictions.tolist() == [0, 1, 0]
    assert errors.images.shape == (3, 1, 8, 8) and errors.images.max() <= 1
    summary = error_summary(errors)
    assert summary["test_samples"] == 6 and summary["errors"] == 3 and summary["error_percent"] == 50.0
    assert summary["images_touching_edge"] == 2 and summary["errors_touching_edge"] == 2
    assert summary["error_percent_touching_edge"] == 100.0 and summary["error_percent_inside"] == 25.0
    assert summary["confusions"] == [{"true": 1, "predicted": 0, "count": 2}, {"true": 0, "predicted": 1, "count": 1}]


def test_a_model_without_errors_has_an_empty_summary():
    images = torch.zeros(3, 1, 8, 8, dtype=torch.uint8)
    data = ImageTensors(images, torch.zeros(3, dtype=torch.long), ("zero", "one"), (0.5,), (0.5,), "toy")
    summary = error_summary(collect_errors(ReadsTheCentre(), BatchLoader(data, batch_size=2)))
    assert summary["errors"] == 0 and summary["confusions"] == []
    assert summary["error_percent_touching_edge"] is None, "no image touches the edge"


def test_an_error_summary_in_words_gives_the_count_and_the_top_confusions():
    summary = {"test_samples": 10000, "errors": 56, "error_percent": 0.56, "images_touching_edge": 300,
               "errors_touching_edge": 9, "error_percent_touching_edge": 3.0, "error_percent_inside": 0.485,
               "confusions": [{"true": t, "predicted": p, "count": c}
                              for t, p, c in [(4, 9, 7), (7, 2, 5), (9, 4, 4), (3, 5, 3), (2, 7, 2), (8, 3, 1)]]}
    text = describe_error_summary(summary)
    assert text.splitlines() == [
        "56 of 10,000 test images wrong (0.56%): 3.00% of the 300 whose ink reaches the edge, 0.48% of the others.",
        "Most frequent confusions (true -> predicted: count): 4 -> 9: 7, 7 -> 2: 5, 9 -> 4: 4, 3 -> 5: 3, 2 -> 7: 2."]
    none = describe_error_summary({**summary, "errors": 0, "error_percent": 0.0, "error_percent_touching_edge": None,
                                   "confusions": []})
    assert len(none.splitlines()) == 1 and "- of the 300" in none


def test_touches_edge_runs_on_the_images_device(meta):
    assert touches_edge(torch.zeros(3, 1, 28, 28, device=meta)).device == meta
