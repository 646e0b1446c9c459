"""The shipped recording of a transformer learning, and notebook 05 loading it instead of training."""
import json
from dataclasses import replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from stn_course import recording  # noqa: E402

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "05_visualising_spatial_transformers.ipynb"


def test_shipped_recording_is_small_and_loads_with_the_expected_shapes():
    path = recording.evolution_path()
    assert path.exists(), f"{path} is missing: make it with `{recording.EVOLUTION_COMMAND}`"
    assert path.stat().st_size < 1_000_000
    evolution = recording.load_evolution(path)
    frames = len(evolution.steps)
    assert evolution.images.shape == (8, 1, 42, 42)
    assert evolution.thetas.shape == (frames, 8, 2, 3)
    assert evolution.steps[0] == 0 and evolution.steps_per_epoch == 469  # one full epoch of 60000 / 128
    assert evolution.steps[-1] > evolution.steps_per_epoch - evolution.record["every"]
    assert len(evolution.outputs) == len(evolution.grids) == frames
    assert evolution.outputs[0].shape == (8, 1, 42, 42) and evolution.grids[0].shape == (8, 42, 42, 2)
    # Training starts from the identity, and then the transformer moves.
    identity = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    assert torch.allclose(evolution.thetas[0], identity.expand(8, 2, 3), atol=1e-6)
    assert not torch.allclose(evolution.thetas[-1], identity.expand(8, 2, 3), atol=1e-2)
    assert torch.allclose(evolution.outputs[0], evolution.images, atol=1e-5)  # identity: output = input
    record = evolution.record
    # recorded before the command gained --record (it then wrote the shipped file by default)
    assert record["command"].startswith("python -m stn_course record-evolution") and record["machine"]["cpu_count"] >= 1
    assert {"finished_at", "machine", "seconds", "test_accuracy"} <= set(record)


def test_record_then_load_replays_the_training_frames(tmp_path):
    small = replace(recording.default_config(*recording.EVOLUTION_RUN), train_limit=512, test_limit=64)
    path = recording.record_evolution(tmp_path / "evolution.npz", every=2, count=3, save=False, config=small)
    evolution = recording.load_evolution(path)
    assert evolution.images.shape[0] == 3 and evolution.steps == list(range(0, 2 * len(evolution.steps), 2))
    assert evolution.record["run"].startswith("rts-mnist_st-cnn-aff_e1_s0")


def test_check_replay_fails_when_the_frames_differ():
    images = torch.rand(2, 1, 42, 42)
    thetas = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]).expand(1, 2, 2, 3)
    grids = [torch.nn.functional.affine_grid(thetas[0], [2, 1, 42, 42], align_corners=False)]
    evolution = recording.TransformerEvolution(images, [0], thetas, [images.clone()], grids, 10, {})
    recording.check_replay(evolution, [images])
    with pytest.raises(RuntimeError, match="does not replay"):
        recording.check_replay(evolution, [images + 0.1])


def _cell(source_start: str) -> str:
    notebook = json.loads(NOTEBOOK.read_text())
    cells = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
    matches = ["".join(cell["source"]) for cell in cells if "".join(cell["source"]).lstrip().startswith(source_start)]
    assert len(matches) == 1, f"expected one code cell starting with {source_start!r}"
    return matches[0]


def test_notebook_05_loads_the_recording_and_trains_nothing(monkeypatch, tmp_path):
    """Run notebook 05's import cell and its "Watching it learn" cell with every way to train
    replaced by an error: with the shipped file present, the cell must load it."""
    def no_training(*args, **kwargs):
        raise AssertionError("notebook 05 trained instead of loading the shipped recording")

    import stn_course.experiments
    import stn_course.train

    monkeypatch.setattr(stn_course.train, "fit", no_training)
    monkeypatch.setattr(stn_course.experiments, "fit", no_training)
    monkeypatch.setattr(stn_course.experiments, "record_transformer_training", no_training)
    monkeypatch.setattr(recording, "record_evolution", no_training)
    monkeypatch.setattr(recording, "record_transformer_training", no_training)
    namespace: dict = {"display": lambda *objects: None}  # IPython's built-in in a notebook
    exec(_cell("import numpy as np"), namespace)
    cell = _cell("TRAIN_IF_MISSING")
    exec(cell, namespace)
    assert namespace["TRAIN_IF_MISSING"] is False
    evolution = namespace["evolution"]
    assert isinstance(evolution, recording.TransformerEvolution) and len(evolution.steps) > 10
    assert namespace["recording_path"] == recording.evolution_path()
    assert np.isfinite(evolution.thetas.numpy()).all()


def test_the_recordings_results_file_is_not_taken_for_a_training_run():
    from stn_course.report import load_run_results

    names = [record["name"] for record in load_run_results()]
    assert not any(name.endswith("_evolution") for name in names)
