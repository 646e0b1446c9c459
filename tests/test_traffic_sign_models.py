"""The traffic-sign models (GTSRB): registered, 43 logits, transformers at the identity, a short training."""

import json
from dataclasses import replace

import pytest
import torch

from stn_course.experiments import run_experiment
from stn_course.gtsrb import load_gtsrb
from stn_course.names import MODEL_NAMES
from stn_course.recipes import default_config
from stn_course.registry import build_classifier
from stn_course.traffic_sign_models import BNTrafficSignNet, HistogramEqualize, TrafficSignNet
from stn_course.utils import data_root, results_dir


pytestmark = pytest.mark.skipif(not (data_root() / "GTSRB" / "gtsrb32.npz").exists(),
                                reason="GTSRB (gtsrb32.npz) is not under the data root")


@pytest.fixture(scope="module")
def train_set():
    return load_gtsrb(train=True)


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




def classifier_convolutions(model):
    """The convolutions of a traffic-sign network outside its localisation networks, in order."""
    inside = {id(m) for name, m in model.named_modules() if "transformer" in name}
    return [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and id(m) not in inside]


@pytest.mark.parametrize("options, widths", [({}, [64, 64, 128, 128, 256]), ({"base_width": 32}, [32, 32, 64, 64, 128])])
def test_batch_norm_networks_have_five_3x3_convolutions_with_batch_norm_at_their_widths(options, widths):
    from stn_course.names import ModelOptions

    for name in ("gtsrb-bn-cnn", "gtsrb-bn-st-cnn"):
        model = build_classifier(name, (3, 32, 32), (0.5,) * 3, (0.25,) * 3, num_classes=43,
                                 options=ModelOptions(**options))
        convolutions = classifier_convolutions(model)
        assert [c.out_channels for c in convolutions] == widths and {c.kernel_size for c in convolutions} == {(3, 3)}
        batch_norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        assert [b.num_features for b in batch_norms] == widths
        assert (model.input_transformer is None) == (name == "gtsrb-bn-cnn")
        assert model(torch.rand(3, 3, 32, 32)).shape == (3, 43)


@pytest.mark.parametrize("st_after, maps", [(1, (2, 64, 16, 16)), (2, (2, 64, 8, 8))])
def test_batch_norm_st_cnn_starts_at_the_identity_after_the_block_it_is_given(st_after, maps):
    from stn_course.names import ModelOptions

    model = build_classifier("gtsrb-bn-st-cnn", (3, 32, 32), (0.5,) * 3, (0.25,) * 3, num_classes=43,
                             options=ModelOptions(st_after=st_after)).eval()
    images = torch.rand(2, 3, 32, 32)
    seen = []
    model.feature_transformer.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].shape))
    with torch.no_grad():
        assert torch.allclose(model.input_transformer(images), images, atol=1e-5)
        logits = model(images)
        assert seen == [maps]
        features = model.block1(model.standardize(images))
        features = features if st_after == 1 else model.block2(features)
        assert torch.allclose(model.feature_transformer(features), features, atol=1e-5)
        cnn = build_classifier("gtsrb-bn-cnn", (3, 32, 32), (0.5,) * 3, (0.25,) * 3, num_classes=43).eval()
        cnn.load_state_dict({k: v for k, v in model.state_dict().items() if "transformer" not in k})
        assert torch.allclose(cnn(images), logits, atol=1e-4), "at the identity it is its CNN"
    with pytest.raises(ValueError, match="st_after must be 1 or 2"):
        BNTrafficSignNet((3, 32, 32), (0.5,) * 3, (0.25,) * 3, st_after=3)


def test_histogram_equalisation_spreads_a_dark_image_over_the_range_and_keeps_black_black():
    dark = torch.linspace(0, 0.2, 3 * 32 * 32).reshape(1, 3, 32, 32)
    equalised = HistogramEqualize()(dark)
    assert equalised.shape == dark.shape and equalised.dtype == dark.dtype
    assert equalised.max() > 0.95 and equalised.mean() > 2 * dark.mean()
    # order is kept within a channel: equalisation is monotone
    flat = equalised[0, 0].flatten()
    assert bool((flat[1:] >= flat[:-1]).all())
    assert HistogramEqualize()(torch.zeros(2, 3, 8, 8)).abs().max() == 0


@pytest.mark.parametrize("name", ["gtsrb-bn-cnn", "gtsrb-bn-st-cnn"])
def test_equalising_networks_keep_their_weights_and_see_equalised_images(name):
    from stn_course.names import ModelOptions

    plain = build_classifier(name, (3, 32, 32), (0.5,) * 3, (0.25,) * 3, num_classes=43).eval()
    equalising = build_classifier(name, (3, 32, 32), (0.5,) * 3, (0.25,) * 3, num_classes=43,
                                  options=ModelOptions(equalize=True)).eval()
    equalising.load_state_dict(plain.state_dict())  # no parameters of its own: shipped weights load
    images = torch.rand(2, 3, 32, 32) * 0.3
    with torch.no_grad():
        assert torch.allclose(equalising(images), plain(HistogramEqualize()(images)), atol=1e-5)
        assert not torch.allclose(equalising(images), plain(images), atol=1e-3)


def test_batch_norm_st_cnn_trains_a_quick_run_with_brightness_and_contrast_jitter():
    config = replace(default_config("gtsrb-val", "gtsrb-bn-st-cnn", 10, quick=True), base_width=8,
                     brightness_contrast=0.3, label_smoothing=0.1)
    experiment = run_experiment(config, save=False, use_checkpoints=False, progress=False)
    assert experiment.train_loader.augment is not None and experiment.history.epochs == 1
    assert 0 <= experiment.history.test_accuracy[0] <= 1
