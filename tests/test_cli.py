"""The command line: instant help, every option documented, known errors as one message."""

import argparse
import os
import re
import subprocess
import sys
import time

import pytest

from stn_course import __main__ as cli
from stn_course import recipes
from stn_course.utils import repo_root

from .markers import requires_mnist


def _run_cli(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    environ = {**os.environ, "PYTHONPATH": str(repo_root()), **(env or {})}
    return subprocess.run([sys.executable, "-m", "stn_course", *args], capture_output=True, text=True,
                          env=environ, timeout=timeout, cwd=repo_root())


def test_train_help_is_instant_and_imports_no_torch():
    started = time.perf_counter()
    result = _run_cli("train", "--help", timeout=60)
    seconds = time.perf_counter() - started
    assert result.returncode == 0 and "--dataset" in result.stdout
    assert seconds < 3, f"`train --help` took {seconds:.1f} s"
    probe = subprocess.run([sys.executable, "-c", "import sys, stn_course.__main__ as m; m.build_parser(); "
                            "print(sorted(n for n in ('torch', 'numpy', 'stn_course.experiments', 'stn_course.recipes', "
                            "'stn_course.registry') if n in sys.modules))"],
                           capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(repo_root())})
    assert probe.stdout.strip() == "[]"


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


@pytest.mark.parametrize("command", ["train", "errors", "report"])
def test_every_option_has_a_help_text_and_its_default(command):
    parser = _subparsers(cli.build_parser())[command]
    text = parser.format_help()
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help, f"{action.option_strings} has no help text"
        shown = parser._get_formatter()._get_help_string(action)
        assert "(default:" in shown, f"{action.option_strings} does not show its default"
        assert action.option_strings[0] in text
    if command != "report":
        for option in ("--dataset", "--model", "--epochs", "--seed", "--variant", "--set", "--device", "--record"):
            assert option in text
        assert "(default: mnist)" in " ".join(text.split())
        assert "(default: 5)" in text


def test_the_command_line_reads_its_names_from_the_vocabulary_and_lists_none_itself():
    import inspect

    from stn_course import names

    parser = cli.build_parser()
    commands = _subparsers(parser)
    assert set(commands) == set(names.COMMAND_NAMES)
    for command in ("train", "errors", "record-evolution"):
        choices = {action.dest: action.choices for action in commands[command]._actions if action.choices}
        assert choices["dataset"] is names.DATASET_NAMES and choices["model"] is names.MODEL_NAMES, command
        if command != "record-evolution":
            assert choices["variant"] is names.VARIANT_NAMES
    source = inspect.getsource(cli)
    for name in (*names.DATASET_NAMES, *names.MODEL_NAMES, *names.VARIANT_NAMES):
        if name not in ("mnist", "st-cnn-aff", "rts-mnist"):  # the defaults
            assert f'"{name}"' not in source and f"'{name}'" not in source, f"__main__ spells {name!r} itself"


def test_epochs_below_one_are_refused_once_by_the_run_config(capsys):
    assert cli.main(["train", "--epochs", "0"]) == 1
    assert capsys.readouterr().err.startswith("Invalid run setting: epochs=0 is not allowed; epochs must be an integer >= 1")


def test_missing_dataset_is_one_message_and_exit_1_and_debug_shows_the_traceback(tmp_path):
    env = {"STN_COURSE_DATA": str(tmp_path / "empty"), "STN_COURSE_CACHE": str(tmp_path / "cache"),
           "STN_COURSE_OUTPUT": str(tmp_path / "out")}
    (tmp_path / "empty").mkdir()
    result = _run_cli("train", "--model", "cnn", env=env)
    assert result.returncode == 1
    assert "MNIST was not found" in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.startswith("MNIST was not found")
    debug = _run_cli("train", "--model", "cnn", "--debug", env=env)
    assert debug.returncode != 0 and "Traceback" in debug.stderr and "DatasetNotFoundError" in debug.stderr


def test_unfinished_run_for_errors_is_a_message_naming_the_command(tmp_path, monkeypatch, capsys):
    from stn_course import experiments

    def not_finished(config, device=None):
        raise experiments.RunNotFinishedError(f"{config.name} has not finished training; train it with\n  ...")

    monkeypatch.setattr(experiments, "load_trained", not_finished)
    assert cli.main(["errors", "--model", "cnn", "--device", "cpu"]) == 1
    assert "has not finished training" in capsys.readouterr().err


def test_errors_prints_a_short_summary_besides_the_file(tmp_path, monkeypatch, capsys):
    import json

    from stn_course import results

    saved = tmp_path / "errors_run.json"
    saved.write_text(json.dumps({"test_samples": 100, "errors": 3, "error_percent": 3.0, "images_touching_edge": 10,
                                 "errors_touching_edge": 1, "error_percent_touching_edge": 10.0,
                                 "error_percent_inside": 2.222, "confusions": [{"true": 4, "predicted": 9, "count": 2}]}))
    monkeypatch.setattr(results, "record_errors", lambda config, device=None, record=None: saved)
    assert cli.main(["errors", "--model", "cnn", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "3 of 100 test images wrong (3.00%)" in out and "4 -> 9: 2" in out
    assert out.rstrip().endswith(f"Saved the errors to {saved}")


def test_report_mine_lists_a_learners_own_runs_below_the_courses(tmp_path, monkeypatch, capsys):
    import json
    import shutil

    course = next(path for path in sorted((repo_root() / "results").glob("mnist_*.json")))
    own = tmp_path / "out" / "results"
    own.mkdir(parents=True)
    record = json.loads(course.read_text())
    record["name"] = "mnist_cnn_e1_s0_mine"
    (own / "mnist_cnn_e1_s0_mine.json").write_text(json.dumps(record))
    shutil.copy(course, own / course.name)
    monkeypatch.setenv("STN_COURSE_OUTPUT", str(tmp_path / "out"))
    assert cli.main(["report"]) == 0
    assert "mnist_cnn_e1_s0_mine" not in capsys.readouterr().out, "only with --mine"
    assert cli.main(["report", "--mine"]) == 0
    out = capsys.readouterr().out
    course_part, _, own_part = out.partition(f"Your own runs, from {own.resolve()}:")
    assert f"`{course.stem}`" in course_part and "mnist_cnn_e1_s0_mine" not in course_part
    assert "`mnist_cnn_e1_s0_mine`" in own_part and f"`{course.stem}`" in own_part
    shutil.rmtree(own)
    monkeypatch.setenv("STN_COURSE_OUTPUT", str(tmp_path / "empty"))
    assert cli.main(["report", "--mine"]) == 0
    assert "None yet" in capsys.readouterr().out


def _tracked_results() -> dict[str, float]:
    return {path.name: path.stat().st_mtime for path in (repo_root() / "results").glob("*")}


@requires_mnist
def test_a_learners_run_writes_outside_the_repository(tmp_path, monkeypatch, capsys):
    """Full mode, no --record: checkpoint and result under the data root, results/ untouched."""
    from stn_course import utils

    data = tmp_path / "data"
    data.mkdir()
    (data / "MNIST").symlink_to(utils.data_root() / "MNIST")
    for variable in ("STN_COURSE_OUTPUT", "STN_COURSE_CHECKPOINTS", "STN_COURSE_RECORD"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("STN_COURSE_QUICK", "0")
    monkeypatch.setenv("STN_COURSE_DATA", str(data))
    before = _tracked_results()
    args = ["train", "--model", "cnn", "--epochs", "1", "--set", "train_limit=256", "--set", "test_limit=128",
            "--device", "cpu"]
    assert cli.main(args) == 0
    name = "mnist_cnn_e1_s0_train_limit=256_test_limit=128"
    result = data / "stn_course_output" / "results" / f"{name}.json"
    checkpoint = data / "checkpoints" / f"{name}.pt"
    assert result.exists() and checkpoint.exists()
    out = capsys.readouterr().out
    assert str(result) in out and str(checkpoint) in out
    assert _tracked_results() == before
    # Loading it again says so, with the time recorded when it trained.
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "loaded, not trained" in out and "trained in" in out and f"delete {checkpoint}" in out
    # --record writes into the course's results/ (redirected here, as tests touch no tracked file)
    monkeypatch.setattr(utils, "recorded_results_dir", lambda: tmp_path / "recorded")
    checkpoint.unlink()
    assert cli.main(args + ["--record"]) == 0
    assert (tmp_path / "recorded" / f"{name}.json").exists()
    assert _tracked_results() == before


@pytest.fixture
def read_only_data_root(tmp_path, monkeypatch):
    """A data root holding MNIST that no folder can be created in: chmod 555, and, since
    chmod does not stop root, ``Path.mkdir`` refused inside it as a read-only mount would."""
    from pathlib import Path

    from stn_course import utils

    data = tmp_path / "shared"
    data.mkdir()
    (data / "MNIST").symlink_to(utils.data_root() / "MNIST")
    data.chmod(0o555)
    if os.geteuid() == 0:
        real_mkdir = Path.mkdir

        def mkdir(self, *args, **kwargs):
            if data.resolve() in self.resolve().parents and not self.exists():
                raise OSError(30, "Read-only file system", str(self))
            return real_mkdir(self, *args, **kwargs)

        monkeypatch.setattr(Path, "mkdir", mkdir)
    monkeypatch.setenv("STN_COURSE_QUICK", "0")
    monkeypatch.setenv("STN_COURSE_DATA", str(data))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    for variable in ("STN_COURSE_OUTPUT", "STN_COURSE_CHECKPOINTS", "STN_COURSE_RECORD"):
        monkeypatch.delenv(variable, raising=False)
    yield data
    data.chmod(0o755)


@requires_mnist
def test_a_read_only_data_root_works_with_and_without_a_checkpoint_folder(read_only_data_root, tmp_path,
                                                                          monkeypatch, capsys):
    contents = sorted(path.name for path in read_only_data_root.iterdir())
    args = ["train", "--model", "cnn", "--epochs", "1", "--set", "train_limit=128", "--set", "test_limit=64",
            "--device", "cpu"]
    name = "mnist_cnn_e1_s0_train_limit=128_test_limit=64"
    monkeypatch.setenv("STN_COURSE_CHECKPOINTS", str(tmp_path / "my-checkpoints"))
    assert cli.main(args) == 0
    assert (tmp_path / "my-checkpoints" / f"{name}.pt").exists()
    monkeypatch.delenv("STN_COURSE_CHECKPOINTS")
    assert cli.main(args + ["--seed", "1"]) == 0
    assert (tmp_path / "xdg" / "stn_course" / "checkpoints" / f"{name.replace('_s0', '_s1')}.pt").exists()
    assert "set STN_COURSE_CHECKPOINTS" in capsys.readouterr().out
    assert sorted(path.name for path in read_only_data_root.iterdir()) == contents


RUN = ["train", "--dataset", "mnist", "--model", "cnn", "--epochs", "2",
       "--set", "train_limit=1024", "--set", "test_limit=500"]


#: invalid settings, with the words the message must hold
INVALID_SETTINGS = {
    "max_grad_norm=-1": "max_grad_norm must be a finite number > 0, or none",
    "max_grad_norm=0": "max_grad_norm must be a finite number > 0",
    "label_smoothing=-0.5": r"label_smoothing must be a finite number in \[0, 1\)",
    "localisation_lr_scale=-1": r"localisation_lr_scale must be a finite number in \[0, 10\]",
    "test_limit=0": "test_limit must be an integer >= 1, or none",
    "train_limit=0": "train_limit must be an integer >= 1",
    "train_limit=-5": "train_limit must be an integer >= 1",
    "batch_size=0": "batch_size must be an integer >= 1",
    "window=-5": "window must be an integer >= 1, or none",
    "dropout=1.5": r"dropout must be a finite number in \[0, 1\)",
    "lr=-1": r"lr must be a finite number in \(0, 10\]",
    "lr=nan": r"lr must be a finite number in \(0, 10\]",
    "lr=inf": r"lr must be a finite number in \(0, 10\]",
    "optimizer=foo": "optimizer must be one of 'adamw', 'sgd'",
    "schedule=cosine": "schedule must be one of 'onecycle'",
    "momentum=1.5": "momentum",
    "lr=1e308": r"lr must be a finite number in \(0, 10\]",  # AdamW's float32 step would overflow
}


@pytest.fixture
def outputs(tmp_path, monkeypatch):
    """Checkpoints and results in empty temporary folders, and a dataset that fails if loaded."""
    monkeypatch.setenv("STN_COURSE_CHECKPOINTS", str(tmp_path / "checkpoints"))
    monkeypatch.setenv("STN_COURSE_OUTPUT", str(tmp_path / "output"))

    def no_data(*args):
        raise AssertionError("data was loaded for an invalid setting")

    monkeypatch.setitem(recipes.DATASETS, "mnist", no_data)
    return tmp_path


@pytest.mark.parametrize("setting", INVALID_SETTINGS)
def test_an_invalid_setting_is_refused_before_any_data_with_its_range(setting, outputs, capsys):
    extra = ["--set", "optimizer=sgd"] if setting.startswith("momentum") else []
    assert cli.main(RUN + extra + ["--set", setting]) == 1
    err = capsys.readouterr().err
    name = setting.partition("=")[0]
    assert err.startswith(f"Invalid run setting: {name}=") and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert re.search(INVALID_SETTINGS[setting], err), err
    written = [path for path in outputs.rglob("*") if path.is_file()]
    assert written == [], f"an invalid run wrote {written}"


def test_a_setting_of_the_wrong_type_is_an_argparse_error_naming_the_field(outputs, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(RUN + ["--set", "lr=fast"])
    assert exit_.value.code == 2
    assert "--set: lr takes a float, got 'fast'" in capsys.readouterr().err



#: settings that fit no model or dataset, or that would be lost (model, settings), with the
#: words the message must hold
MISFITTING_SETTINGS = [
    ("st-cnn-aff", ["window=3"], r"model 'st-cnn-aff', window=3 does not fit dataset 'mnist' \(1x28x28 inputs.*4"),
    ("st-cnn-aff", ["window=100"], r"window=100 does not fit dataset 'mnist'.*input's side 28, got 100"),
    ("st-vit", ["window=5"], r"window=5 does not fit.*multiples of patch_size"),
    ("cnn", ["window=8"], r"window=8 is not an option of model 'cnn'"),
    ("vit", ["dropout=0.5"], r"dropout=0.5 is not an option of model 'vit'"),
    ("cnn", ["localisation_lr_scale=5"], r"localisation_lr_scale changes nothing for model 'cnn'"),
    ("cnn", ["lr=0.1", "lr=0.2"], r"lr set more than once \(--set lr=0.1 --set lr=0.2\); give each field once"),
    ("cnn", ["batch_size=100000"], r"batch_size=100000 is larger than the training set \(train_limit=1024\)"),
    ("st-parallel", [], r"model 'st-parallel' does not fit dataset 'mnist'.*100 classes"),
]


@pytest.mark.parametrize("model, settings, words", MISFITTING_SETTINGS,
                         ids=[f"{model} {' '.join(settings)}" for model, settings, _ in MISFITTING_SETTINGS])
def test_a_setting_that_does_not_fit_the_model_is_refused_before_any_data(model, settings, words, outputs, capsys):
    run = ["train", "--dataset", "mnist", "--model", model, "--epochs", "2", "--set", "train_limit=1024"]
    assert cli.main(run + [argument for setting in settings for argument in ("--set", setting)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Invalid run setting: ") and len(err.strip().splitlines()) == 1, err
    assert re.search(words, err), err
    assert [path for path in outputs.rglob("*") if path.is_file()] == []


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_cuda_on_a_machine_without_it_is_one_line_naming_the_option(outputs, capsys):
    assert cli.main(RUN + ["--device", "cuda"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("The device 'cuda' was asked for (--device), but CUDA is not available")
    assert len(err.strip().splitlines()) == 1
    with pytest.raises(RuntimeError):  # --debug: the traceback
        cli.main(["--debug"] + RUN + ["--device", "cuda"])


@requires_mnist
def test_ctrl_c_during_training_is_one_line_with_status_130_and_the_command_resumes(outputs, monkeypatch, capsys):
    from stn_course import train

    monkeypatch.setitem(recipes.DATASETS, "mnist", recipes._mnist)  # the fixture's dataset refuses to load
    original = train.train_one_epoch

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(train, "train_one_epoch", interrupted)
    assert cli.main(RUN + ["--no-shipped"]) == 130
    err = capsys.readouterr().err
    assert err.startswith("Interrupted: mnist_cnn_e1_s0_train_limit=1024_test_limit=500 stopped during epoch 1 of 1: "
                          "no epoch had finished") and "the same command" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    with pytest.raises(KeyboardInterrupt):
        cli.main(["--debug"] + RUN + ["--no-shipped"])
    monkeypatch.setattr(train, "train_one_epoch", original)
    assert cli.main(RUN + ["--no-shipped"]) == 0
