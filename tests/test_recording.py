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
from stn_course.recipes import default_config  # noqa: E402
from stn_course.registry import build_classifier  # noqa: E402

from .markers import requires_mnist  # noqa: E402

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
    small = replace(recording.EVOLUTION_RUN, train_limit=512, test_limit=64)
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
    from stn_course.records import load_run_results

    names = [record["name"] for record in load_run_results()]
    assert not any(name.endswith("_evolution") for name in names)


def test_recorder_keeps_step_zero_and_every_kth_step():
    model = build_classifier("st-cnn-aff", (1, 28, 28), (0.1307,), (0.3081,))
    recorder = recording.TransformerRecorder(torch.rand(3, 1, 28, 28), every=5)
    for step in range(12):
        recorder(step, model)
    assert recorder.steps == [0, 5, 10]
    assert recorder.outputs[0].shape == (3, 1, 28, 28) and recorder.grids[0].shape == (3, 28, 28, 2)
    assert recorder.params[0].shape == (3, 6)  # θ, row-major 2x3
    with pytest.raises(ValueError, match="every"):
        recording.TransformerRecorder(torch.rand(1, 1, 28, 28), every=0)


@requires_mnist
def test_recording_a_training_run_writes_no_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("STN_COURSE_CHECKPOINTS", str(tmp_path))
    config = default_config("mnist", "st-cnn-aff", 5, quick=True)
    experiment, recorder = recording.record_transformer_training(config, torch.rand(2, 1, 28, 28), every=2)
    assert recorder.steps == [0, 2, 4] and experiment.history.epochs == 1
    assert not list(tmp_path.iterdir())


def test_shipped_training_recording_is_small_starts_at_the_identity_and_says_how_it_was_made():
    run = recording.TRAFFIC_SIGN_EVOLUTION_RUN
    path = recording.evolution_path(run)
    assert path.name == "gtsrb_gtsrb-st-cnn_e1_s0_evolution.npz" and path.stat().st_size < 1_000_000
    evolution = recording.load_evolution(path)
    frames = len(evolution.steps)
    assert evolution.images.shape == (8, 3, 32, 32) and evolution.thetas.shape == (frames, 8, 2, 3)
    assert evolution.steps[0] == 0 and evolution.steps_per_epoch == 307  # one full epoch of 39209 / 128
    assert evolution.steps[-1] > evolution.steps_per_epoch - evolution.record["every"]
    identity = torch.tensor([[1.0, 0, 0], [0, 1, 0]])
    assert torch.allclose(evolution.thetas[0], identity.expand(8, 2, 3), atol=1e-6)
    assert not torch.allclose(evolution.thetas[-1], identity.expand(8, 2, 3), atol=1e-2)
    assert torch.allclose(evolution.outputs[0], evolution.images, atol=1e-5)
    record = evolution.record
    assert record["run"] == "gtsrb_gtsrb-st-cnn_e1_s0" and record["command"] == recording.evolution_command(run)
    assert record["command"] == "python -m stn_course record-evolution --dataset gtsrb --model gtsrb-st-cnn --record"
    assert record["machine"]["cpu_count"] >= 1 and record["seconds"] > 0


def test_notebook_06_loads_the_training_recording_and_trains_nothing(monkeypatch):
    """Notebook 06's import cell and its "Learning to crop" cell with every way to train replaced
    by an error: with the shipped file present, the cell loads it."""
    from pathlib import Path

    import stn_course.experiments
    import stn_course.train
    def no_training(*args, **kwargs):
        raise AssertionError("notebook 06 trained instead of loading the shipped recording")

    for module, name in [(stn_course.train, "fit"), (stn_course.experiments, "fit"),
                         (recording, "record_evolution"), (recording, "record_transformer_training")]:
        monkeypatch.setattr(module, name, no_training)
    notebook = json.loads((Path(__file__).resolve().parent.parent / "notebooks" / "06_traffic_signs.ipynb").read_text())
    sources = ["".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code"]
    namespace: dict = {"display": lambda *objects: None}  # IPython's built-in in a notebook
    exec(next(source for source in sources if source.startswith("import inspect")), namespace)
    (cell,) = [source for source in sources if source.startswith("recording_path = find_evolution")]
    exec(cell, namespace)
    assert namespace["TRAIN_IF_MISSING"] is False
    assert namespace["recording_path"] == recording.evolution_path(recording.TRAFFIC_SIGN_EVOLUTION_RUN)
    assert len(namespace["evolution"].steps) > 10 and namespace["path"].exists()


def test_record_evolution_command_takes_the_traffic_sign_run_and_defaults_to_rts():
    from stn_course.__main__ import build_parser

    parser = build_parser()
    args = parser.parse_args(["record-evolution", "--dataset", "gtsrb", "--model", "gtsrb-st-cnn", "--record"])
    assert (args.dataset, args.model, args.record) == ("gtsrb", "gtsrb-st-cnn", True)
    default = parser.parse_args(["record-evolution"])
    assert (default.dataset, default.model, default.record) == ("rts-mnist", "st-cnn-aff", False)


def test_record_evolution_records_the_run_config_of_its_dataset_and_model(monkeypatch, capsys):
    from stn_course.__main__ import main

    runs = []
    monkeypatch.setattr(recording, "record_evolution", lambda record, run: runs.append((record, run)) or "file.npz")
    assert main(["record-evolution"]) == 0
    assert main(["record-evolution", "--dataset", "gtsrb", "--model", "gtsrb-st-cnn", "--record"]) == 0
    assert runs == [(False, recording.EVOLUTION_RUN), (True, recording.TRAFFIC_SIGN_EVOLUTION_RUN)]
    assert recording.EVOLUTION_RUN == default_config("rts-mnist", "st-cnn-aff", 1)
    assert recording.evolution_command() == recording.EVOLUTION_COMMAND
    assert recording.evolution_path().name == "rts-mnist_st-cnn-aff_e1_s0_evolution.npz"
