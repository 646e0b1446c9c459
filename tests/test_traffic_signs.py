"""GTSRB: the data layer (track hold-out, shapes, metadata) and the traffic-sign models."""
import json
from dataclasses import replace

import pytest
import torch

from stn_course.data import GTSRB_CLASSES, GTSRB_META_COLUMNS, load_gtsrb, random_affine, split_tracks
from stn_course.experiments import run_experiment
from stn_course.names import MODEL_NAMES
from stn_course.recipes import default_config
from stn_course.registry import build_classifier
from stn_course.traffic_sign_models import TrafficSignNet
from stn_course.utils import data_root, results_dir

pytestmark = pytest.mark.skipif(not (data_root() / "GTSRB" / "gtsrb32.npz").exists(),
                                reason="GTSRB (gtsrb32.npz) is not under the data root")


@pytest.fixture(scope="module")
def train_set():
    return load_gtsrb(train=True)


def test_shapes_labels_and_metadata(train_set):
    data = train_set.data
    assert data.images.shape == (39209, 3, 32, 32) and data.images.dtype == torch.uint8
    assert data.labels.shape == (39209,) and set(data.labels.unique().tolist()) == set(range(43))
    assert len(data.classes) == len(GTSRB_CLASSES) == 43
    assert train_set.meta.shape == (39209, len(GTSRB_META_COLUMNS))
    # the sign's box lies inside the original photograph
    width, height = train_set.column("width"), train_set.column("height")
    assert (train_set.column("roi_x2") < width).all() and (train_set.column("roi_y2") < height).all()
    assert (train_set.column("roi_x1") < train_set.column("roi_x2")).all()


def test_test_set_has_no_tracks():
    test = load_gtsrb(train=False, limit=300)
    assert len(test.data) == 300 and (test.column("track") == -1).all()


def test_track_hold_out_puts_no_track_on_both_sides(train_set):
    train, validation = split_tracks(train_set, fraction=0.1, seed=0)
    assert len(train.data) + len(validation.data) == len(train_set.data)
    assert not set(train.track_keys.tolist()) & set(validation.track_keys.tolist())
    # every class keeps tracks on both sides, and about a tenth of the images are held out
    assert set(validation.data.labels.tolist()) == set(range(43)) == set(train.data.labels.tolist())
    assert 0.07 < len(validation.data) / len(train_set.data) < 0.13


def test_track_keys_separate_classes_sharing_a_track_number(train_set):
    # track numbers restart in every class: class 0 and class 1 both have a track 0
    first = train_set.column("track") == 0
    assert len(train_set.data.labels[first].unique()) > 1
    assert len(train_set.track_keys.unique()) > len(train_set.column("track").unique())


def test_random_affine_keeps_shape_and_range_and_moves_pixels():
    images = torch.rand(8, 3, 32, 32)
    out = random_affine(images, torch.Generator().manual_seed(0))
    assert out.shape == images.shape and out.min() >= 0 and out.max() <= 1
    assert not torch.allclose(out, images)
    identity = random_affine(images, torch.Generator().manual_seed(0), degrees=0, scale=(1, 1), shift=0)
    assert torch.allclose(identity, images, atol=1e-5)


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


def _no_network(*args, **kwargs):
    from urllib.error import URLError

    raise URLError("no network (simulated)")


def test_gtsrb48_without_originals_or_network_says_where_it_looked_and_what_to_do(tmp_path, monkeypatch):
    import torchvision.datasets

    from stn_course.errors import CourseError

    monkeypatch.setenv("STN_COURSE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(torchvision.datasets, "GTSRB", _no_network)  # offline, even where a network is
    with pytest.raises(CourseError) as raised:
        load_gtsrb(train=True, root=tmp_path, size=48)
    message = str(raised.value)
    assert "GTSRB at 48x48 was not found" in message
    assert str(tmp_path / "gtsrb" / "GTSRB" / "Training") in message  # the folder searched
    assert "download=True" in message and "internet access" in message  # what to do
    assert str(tmp_path / "GTSRB" / "gtsrb32.npz") in message and "`gtsrb`" in message  # the offline alternative


def _write_fake_originals(folder, sizes):
    """torchvision's GTSRB training layout: Training/<class>/<track>_<frame>.ppm and GT-<class>.csv."""
    from PIL import Image

    for label in (0, 1):
        images = folder / "gtsrb" / "GTSRB" / "Training" / f"{label:05d}"
        images.mkdir(parents=True)
        rows = ["Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId"]
        for index, (width, height) in enumerate(sizes):
            name = f"{index // 2:05d}_{index % 2:05d}.ppm"
            Image.new("RGB", (width, height), (200, 10 * label, 30)).save(images / name)
            rows.append(f"{name};{width};{height};1;2;{width - 2};{height - 3};{label}")
        (images / f"GT-{label:05d}.csv").write_text("\n".join(rows) + "\n")


def test_originals_are_resized_to_48_with_tracks_and_boxes_from_the_csv_files(tmp_path, monkeypatch):
    import torchvision.datasets

    monkeypatch.setenv("STN_COURSE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(torchvision.datasets, "GTSRB", lambda *args, **kwargs: None)  # "already downloaded"
    sizes = [(30, 31), (64, 60), (120, 118), (25, 25)]
    _write_fake_originals(tmp_path, sizes)
    data = load_gtsrb(train=True, root=tmp_path, size=48)
    assert data.data.images.shape == (8, 3, 48, 48) and data.data.images.dtype == torch.uint8
    assert data.data.labels.tolist() == [0] * 4 + [1] * 4
    assert data.column("track").tolist() == [0, 0, 1, 1] * 2
    assert data.column("width").tolist() == [w for w, _ in sizes] * 2
    assert data.column("roi_y2").tolist() == [h - 3 for _, h in sizes] * 2
    assert data.data.images[4:, 1].float().mean().item() == pytest.approx(10, abs=1)  # class 1's green
    # the second load comes from the cache, not the files
    for path in (tmp_path / "gtsrb").rglob("*.ppm"):
        path.unlink()
    assert torch.equal(load_gtsrb(train=True, root=tmp_path, size=48).data.images, data.data.images)
