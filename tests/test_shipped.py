"""The trained models shipped with the course: written small, loaded instead of training,
and downloaded when the package is installed without the repository."""

import re
from dataclasses import replace

import pytest
import torch

from stn_course import shipped
from stn_course.errors import CourseError
from stn_course.recipes import recipe_config


def test_shipped_checkpoint_is_loaded_instead_of_training(tmp_path, monkeypatch, capsys):
    from stn_course.data import ImageTensors
    from stn_course.loader import BatchLoader
    from stn_course.experiments import Experiment, train_experiment
    from stn_course.recipes import RunConfig
    from stn_course.registry import build_classifier
    from stn_course.train import History

    monkeypatch.setattr(shipped, "shipped_checkpoint_dir", lambda: tmp_path / "shipped")
    monkeypatch.setenv("STN_COURSE_CHECKPOINTS", str(tmp_path / "runs"))
    data = ImageTensors(torch.zeros(4, 1, 28, 28, dtype=torch.uint8), torch.arange(4), tuple("0123456789"),
                        (0.1,), (0.3,), "tiny")
    config = RunConfig(epochs=2)

    def experiment(seed):
        torch.manual_seed(seed)
        model = build_classifier("st-cnn-aff", (1, 28, 28), (0.1,), (0.3,))
        return Experiment(config, model, BatchLoader(data, 2), BatchLoader(data, 2))

    trained = experiment(1)
    trained.history = History(train_loss=[1.0, 0.5], test_loss=[1.0, 0.4], test_accuracy=[0.5, 0.75],
                              test_correct=[2, 3], seconds=[1.0, 1.0], lr=[0.1, 0.1])
    path = shipped.ship_checkpoint(trained)
    assert path.stat().st_size < 2 * 1024 * 1024, "shipped checkpoints stay under 2 MB"

    monkeypatch.setattr(shipped, "TRAIN_HINT_SHOWN", False)  # as in a fresh process
    fresh = train_experiment(experiment(2), save=False)
    out = capsys.readouterr().out
    assert "shipped with the course" in out and "pass use_shipped=False" in out
    assert fresh.history.test_accuracy == [0.5, 0.75]
    again = capsys.readouterr().out if train_experiment(experiment(3), save=False) else ""
    assert "shipped with the course" in again and "use_shipped" not in again, "how to train: said once a process"
    for key, value in trained.model.state_dict().items():
        torch.testing.assert_close(fresh.model.state_dict()[key], value, atol=2e-3, rtol=2e-3)


def test_an_installed_package_fetches_a_shipped_checkpoint_and_falls_back_to_training(tmp_path, monkeypatch):
    monkeypatch.setattr(shipped, "shipped_checkpoint_dir", lambda: tmp_path)
    monkeypatch.setattr(shipped, "has_repository", lambda: True)
    assert shipped.fetch_shipped_checkpoint("run") is False, "a clone has its checkpoints: nothing is downloaded"

    monkeypatch.setattr(shipped, "has_repository", lambda: False)  # installed alone, as on Colab
    monkeypatch.setenv("STN_COURSE_REPO_URL", "https://example.org/a-fork/")
    asked = []

    def fake_download(url, dest, progress):
        asked.append(url)
        if "missing" in url:
            raise OSError("HTTP Error 404")
        torch.save({"ok": True}, dest)

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    assert shipped.fetch_shipped_checkpoint("run") is True and (tmp_path / "run.pt").exists()
    assert asked[0] == "https://example.org/a-fork/raw/main/checkpoints/run.pt"
    assert shipped.fetch_shipped_checkpoint("missing") is False and not (tmp_path / "missing.pt").exists()


def _unreachable_url() -> str:
    """An address where nothing listens: a port that was free a moment ago."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/no-course"


def test_a_failed_download_says_in_one_line_what_failed_and_that_notebook_02s_run_trains(
        tmp_path, monkeypatch, capsys):
    from stn_course import experiments
    from stn_course.data import ImageTensors
    from stn_course.loader import BatchLoader
    from stn_course.recipes import default_config
    from stn_course.registry import build_classifier

    monkeypatch.setattr(shipped, "has_repository", lambda: False)  # installed alone, as on Colab
    monkeypatch.setattr(shipped, "shipped_checkpoint_dir", lambda: tmp_path / "shipped")
    monkeypatch.setenv("STN_COURSE_CHECKPOINTS", str(tmp_path / "runs"))
    url = _unreachable_url()
    monkeypatch.setenv("STN_COURSE_REPO_URL", url)
    config = default_config("mnist", "st-cnn-aff", epochs=5, quick=False)  # notebook 02's run, full mode
    data = ImageTensors(torch.zeros(2, 1, 28, 28, dtype=torch.uint8), torch.arange(2), tuple("0123456789"),
                        (0.1,), (0.3,), "tiny")
    model = build_classifier("st-cnn-aff", (1, 28, 28), (0.1,), (0.3,))
    experiment = experiments.Experiment(config, model, BatchLoader(data, 2), BatchLoader(data, 2))

    class TrainingStarted(Exception):
        pass

    def train(*args, **kwargs):
        raise TrainingStarted

    monkeypatch.setattr(experiments, "_train", train)
    with pytest.raises(TrainingStarted):
        experiments.train_experiment(experiment)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1, lines
    assert re.fullmatch(rf"Could not download the shipped model {config.name} from "
                        rf"{re.escape(url)}/raw/main/checkpoints/{config.name}\.pt \(.+\): "
                        r"training it instead, 5 epochs\.", lines[0]), lines[0]
    assert not (tmp_path / "shipped" / f"{config.name}.pt").exists(), "no half-downloaded file is left"


def test_every_shipped_checkpoint_matches_the_recipe_of_its_name_in_both_modes():
    import torch

    from stn_course.records import config_of
    from stn_course.checkpoints import load_checkpoint, run_identity
    from stn_course.utils import shipped_checkpoint_dir

    shipped = sorted(shipped_checkpoint_dir().glob("*.pt"))
    assert shipped
    for path in shipped:
        config = config_of(torch.load(path, weights_only=True))
        assert config.name == path.stem
        recipe = recipe_config(config.dataset, config.model, config.epochs, config.seed, config.variant)
        recipe = replace(recipe, **config.changes)
        # the log interval changes no weight; limits shrunk for quick mode are not the recipe's
        for wanted in (recipe, replace(recipe, log_interval=1, train_limit=512, test_limit=256, quick=True)):
            load_checkpoint(path, run=run_identity(wanted, shipped=True))
        with pytest.raises(CourseError, match="belongs to another run"):
            load_checkpoint(path, run=run_identity(replace(recipe, seed=7), shipped=True))


@pytest.mark.parametrize("damage", ["truncated", "renamed key"])
def test_a_damaged_shipped_checkpoint_suggests_no_shipped_never_deleting_it(tmp_path, monkeypatch, damage):
    from stn_course.data import ImageTensors
    from stn_course.experiments import Experiment, train_experiment
    from stn_course.loader import BatchLoader
    from stn_course.recipes import RunConfig
    from stn_course.registry import build_classifier
    from stn_course.train import History

    monkeypatch.setattr(shipped, "shipped_checkpoint_dir", lambda: tmp_path / "shipped")
    monkeypatch.setenv("STN_COURSE_CHECKPOINTS", str(tmp_path / "runs"))
    data = ImageTensors(torch.zeros(4, 1, 28, 28, dtype=torch.uint8), torch.arange(4), tuple("0123456789"),
                        (0.1,), (0.3,), "tiny")
    experiment = Experiment(RunConfig(epochs=2), build_classifier("st-cnn-aff", (1, 28, 28), (0.1,), (0.3,)),
                            BatchLoader(data, 2), BatchLoader(data, 2))
    experiment.history = History(train_loss=[1.0, 0.5], test_loss=[1.0, 0.4], test_accuracy=[0.5, 0.75],
                                 test_correct=[2, 3], seconds=[1.0, 1.0], lr=[0.1, 0.1])
    path = shipped.ship_checkpoint(experiment)
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:5000])
    else:  # written before a layer was renamed
        state = torch.load(path, weights_only=True)
        state["model"] = {key.replace("transformer.", "stn."): value for key, value in state["model"].items()}
        torch.save(state, path)
    with pytest.raises(CourseError, match=rf"{path}.*Restore it \(git checkout -- checkpoints/.*--no-shipped") as caught:
        train_experiment(experiment, save=False)
    assert "Delete it" not in str(caught.value)
