"""The course's own files without the repository (stn_course.course_files): results, figures
and recordings downloaded from the repository's raw URLs, here served from a local folder."""
import functools
import http.server
import threading

import pytest

from stn_course import course_files, recording, utils
from stn_course.utils import repo_root


def test_the_results_index_lists_every_record():
    folder = repo_root() / "results"
    assert (folder / "index.txt").read_text() == course_files.results_index_text(folder), \
        "run python -m stn_course report --update-readme (or record with --record, which keeps it)"


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 (the base class's name): no line per request
        pass


@pytest.fixture
def served(tmp_path, monkeypatch):
    """The repository served at http://127.0.0.1:<port>/raw/main/..., and the package told it runs
    without the repository (as on Colab), its copies going under tmp_path."""
    root = tmp_path / "site"
    (root / "raw").mkdir(parents=True)
    (root / "raw" / "main").symlink_to(repo_root())
    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("STN_COURSE_REPO_URL", f"http://127.0.0.1:{server.server_port}")
    monkeypatch.setenv("STN_COURSE_CHECKPOINTS", str(tmp_path / "checkpoints"))
    for module in (course_files, utils, recording):
        monkeypatch.setattr(module, "has_repository", lambda: False)
    yield tmp_path / "checkpoints" / "course"
    server.shutdown()


def test_without_the_repository_the_records_figures_and_recordings_are_downloaded(served):
    folder = utils.recorded_results_dir()
    assert folder == served / "results"
    assert sorted(p.name for p in folder.glob("*.json")) == sorted(
        p.name for p in (repo_root() / "results").glob("*.json"))
    figure = course_files.course_file("plots/theta_view_digit.png")
    assert figure == served / "plots" / "theta_view_digit.png"
    assert figure.read_bytes() == (repo_root() / "plots" / "theta_view_digit.png").read_bytes()
    path = recording.find_evolution()
    assert path.exists() and path.read_bytes() == (repo_root() / "checkpoints" / path.name).read_bytes()


def test_a_file_the_repository_lacks_is_one_line_not_an_error(served, capsys):
    assert course_files.course_file("plots/no_such_figure.png") is None
    line, = capsys.readouterr().out.splitlines()
    assert line.startswith("The course's file plots/no_such_figure.png: could not download http://127.0.0.1:")
