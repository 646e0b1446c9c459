"""The traffic-sign models on GTSRB: their shapes and start, a short training, the recorded training."""
import json
from dataclasses import replace

import pytest
import torch

from stn_course.experiments import default_config, run_experiment
from stn_course.registry import MODEL_NAMES, build_classifier
from stn_course.traffic_sign_models import TrafficSignNet
from stn_course.utils import data_root, results_dir

pytestmark = pytest.mark.skipif(not (data_root() / "GTSRB" / "gtsrb32.npz").exists(),
                                reason="GTSRB (gtsrb32.npz) is not under the data root")


@pytest.mark.parametrize("name", ["gtsrb-cnn", "gtsrb-st-cnn", "gtsrb-cnn-wide", "gtsrb-st-cnn-wide"])
def test_models_are_registered_and_give_43_logits(name):
    assert name in MODEL_NAMES
    model = build_classifier(name, (3, 32, 32), (0.5,) * 3, (0.25,) * 3, num_classes=43)
    assert isinstance(model, TrafficSignNet)
    assert model(torch.rand(5, 3, 32, 32)).shape == (5, 43)


def test_transformers_start_at_the_identity():
    model = build_classifier("gtsrb-st-cnn", (3, 32, 32), (0.5,) * 3, (0.25,) * 3, num_classes=43).eval()
    images = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model.input_transformer(images), images, atol=1e-5)
        features = model.block1(model.standardize(images))
        assert torch.allclose(model.feature_transformer(features), features, atol=1e-5)
        # so at initialisation the ST-CNN computes what its CNN would with the same weights
        cnn = build_classifier("gtsrb-cnn", (3, 32, 32), (0.5,) * 3, (0.25,) * 3, num_classes=43).eval()
        cnn.load_state_dict({k: v for k, v in model.state_dict().items() if "transformer" not in k})
        assert torch.allclose(cnn(images), model(images), atol=1e-4)


def test_cnn_has_no_transformer():
    model = build_classifier("gtsrb-cnn", (3, 32, 32), (0.5,) * 3, (0.25,) * 3, num_classes=43)
    assert model.input_transformer is None and model.feature_transformer is None


def test_short_training_learns_and_records():
    """A few quick-mode epochs on held-out tracks: the loss falls, θ moves, a result is recorded."""
    config = replace(default_config("gtsrb-val", "gtsrb-st-cnn", epochs=1, quick=True), epochs=3)
    assert config.quick and config.train_limit == 512
    experiment = run_experiment(config, progress=False)
    history = experiment.history
    assert history.epochs == 3 and len(experiment.test_loader.data) == 256
    assert history.train_loss[-1] < history.train_loss[0]
    theta = experiment.model.input_transformer.last_theta
    assert not torch.allclose(theta, torch.tensor([1.0, 0, 0, 0, 1, 0]).expand_as(theta))
    record = json.loads((results_dir() / f"{config.name}.json").read_text())
    assert record["test_correct"] == history.test_correct[-1] and record["epochs"] == 3


@pytest.mark.parametrize("name", ["gtsrb-cnn-wide", "gtsrb-st-cnn-wide"])
def test_wide_models_have_moodstocks_widths_run_at_48_and_start_at_the_identity(name):
    model = build_classifier(name, (3, 48, 48), (0.5,) * 3, (0.25,) * 3, num_classes=43).eval()
    assert [model.block1[0].out_channels, model.block2[0].out_channels, model.block3[0].out_channels] == [150, 200, 300]
    assert model.head[1].out_features == 350, "Moodstocks' --cnn 150,200,300,350"
    images = torch.rand(2, 3, 48, 48)
    with torch.no_grad():
        assert model(images).shape == (2, 43)
        if name == "gtsrb-cnn-wide":
            assert model.input_transformer is None and model.feature_transformer is None
            return
        assert torch.allclose(model.input_transformer(images), images, atol=1e-5)
        features = model.block2(model.block1(model.standardize(images)))
        assert model.feature_block == 2 and features.shape == (2, 200, 12, 12), "after block 2, as Moodstocks"
        assert torch.allclose(model.feature_transformer(features), features, atol=1e-5)


def test_shipped_training_recording_is_small_starts_at_the_identity_and_says_how_it_was_made():
    from stn_course import recording

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
    from stn_course import recording

    def no_training(*args, **kwargs):
        raise AssertionError("notebook 06 trained instead of loading the shipped recording")

    for module, name in [(stn_course.train, "fit"), (stn_course.experiments, "fit"),
                         (stn_course.experiments, "record_transformer_training"), (recording, "record_evolution"),
                         (recording, "record_transformer_training")]:
        monkeypatch.setattr(module, name, no_training)
    notebook = json.loads((Path(__file__).resolve().parent.parent / "notebooks" / "06_traffic_signs.ipynb").read_text())
    sources = ["".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code"]
    namespace: dict = {"display": lambda *objects: None}  # IPython's built-in in a notebook
    exec(next(source for source in sources if source.startswith("import inspect")), namespace)
    (cell,) = [source for source in sources if source.startswith("TRAIN_IF_MISSING")]
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
