"""The course's conventions, checked on every notebook (nbval checks that they run)."""
import json
import re

import pytest

from stn_course.utils import COLAB_SETUP_CELL, REPO_URL, repo_root
from .notebook_utils import assert_stored_from_a_full_run_without_errors
from .notebook_utils import cells as _cells
from .notebook_utils import source as _source

NOTEBOOKS = sorted((repo_root() / "notebooks").glob("*.ipynb"))
#: A course notebook is numbered (``03_distorted_mnist.ipynb``) or an appendix
#: (``appendix_training_on_a_cpu.ipynb``).
NOTEBOOK_NAME = re.compile(r"(\d\d|appendix)_[a-z0-9_]+\.ipynb")


def test_the_notebooks_are_numbered_from_00_without_gaps_and_listed_in_order_in_the_readme():
    names = [path.name for path in NOTEBOOKS if path.name[:2].isdigit()]  # appendices come after
    assert [name[:2] for name in names] == [f"{number:02d}" for number in range(len(names))]
    readme = (repo_root() / "README.md").read_text()
    table = re.findall(r"^\| (\d\d) \| \[`notebooks/([^`]+)`\]", readme, flags=re.MULTILINE)
    assert table == [(name[:2], name) for name in names]
    assert len(names) >= 6, "the course's notebooks 00 to 05 at least"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_name_is_numbered_or_appendix_slug(path):
    assert NOTEBOOK_NAME.fullmatch(path.name)


@pytest.mark.parametrize("name, allowed", [
    ("03_distorted_mnist.ipynb", True), ("appendix_training_on_a_cpu.ipynb", True),
    ("appendix.ipynb", False), ("3_distorted.ipynb", False), ("Appendix_x.ipynb", False),
    ("appendix_x.ipynb.bak", False), ("extra_notes.ipynb", False),
])
def test_the_naming_rule_allows_numbered_and_appendix_notebooks_only(name, allowed):
    assert bool(NOTEBOOK_NAME.fullmatch(name)) == allowed


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_first_code_cell_is_the_guarded_colab_setup(path):
    first_code = next(cell for cell in _cells(path) if cell["cell_type"] == "code")
    assert _source(first_code) == COLAB_SETUP_CELL
    assert not first_code.get("outputs"), "the Colab cell prints nothing outside Colab"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_opens_with_what_you_will_learn_and_ends_with_summary_and_exercises(path):
    markdown = [_source(c) for c in _cells(path) if c["cell_type"] == "markdown"]
    assert markdown[0].startswith("# ") and "learn" in markdown[0].lower()
    headings = [line for text in markdown for line in text.splitlines() if line.startswith("## ")]
    assert headings[-2:] == ["## Summary", "## Exercises"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_outputs_come_from_a_full_run_without_errors(path):
    assert_stored_from_a_full_run_without_errors(path)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_readme_lists_the_notebook_with_a_colab_badge(path):
    readme = (repo_root() / "README.md").read_text()
    assert f"notebooks/{path.name}" in readme
    badge = f"https://colab.research.google.com/github/{REPO_URL.removeprefix('https://github.com/')}/blob/main/notebooks/{path.name}"
    assert badge in readme


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_test_markers_are_cell_tags_not_comments_in_learner_code(path):
    """nbval's markers live in cell metadata, so learners read clean code."""
    for i, cell in enumerate(_cells(path)):
        if cell["cell_type"] == "code":
            assert "NBVAL_" not in _source(cell), f"{path.name} cell {i}: use an nbval-* cell tag"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_opens_with_prerequisites_what_you_will_learn_and_run_time(path):
    markdown = [_source(c) for c in _cells(path) if c["cell_type"] == "markdown"]
    opening = "\n".join(markdown[:2])
    for heading in ("Prerequisites", "What you will learn", "Run time"):
        assert heading in opening, f"{path.name}: the opening says nothing under {heading!r}"
    assert "GPU" in opening, f"{path.name}: give the run time on a Colab GPU too (an estimate, marked so)"


RUN_TIME_RECORDS = sorted((repo_root() / "results").glob("run_time_*.json"))


@pytest.mark.parametrize("record", RUN_TIME_RECORDS, ids=lambda p: p.stem)
def test_the_run_time_a_notebook_states_is_its_recorded_one(record):
    """A markdown cell cannot read a file, so the opening quotes the run-time record by hand:
    it must name the record and state its measured seconds (rounded), or it goes stale."""
    measured = json.loads(record.read_text())
    notebook = repo_root() / measured["notebook"]
    opening = "\n".join(_source(c) for c in _cells(notebook)[:2] if c["cell_type"] == "markdown")
    section = opening[opening.index("Run time"):]
    assert f"results/{record.name}" in section, f"{notebook.name}: name {record.name} in the Run time section"
    stated = {int(n) for n in re.findall(r"(\d+) s\b", section)}
    for key in ("full_mode_nbconvert_wall_seconds", "quick_mode_nbval_seconds",
                "solutions_full_mode_nbconvert_wall_seconds"):
        seconds = measured.get(key)
        if seconds is None or (key.startswith("solutions") and seconds >= 90):  # minutes, said in words
            continue
        assert round(seconds) in stated, \
            f"{notebook.name}: the Run time section should state {key} = {round(seconds)} s ({record.name})"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_exercise_says_what_it_costs(path):
    exercises = _source([c for c in _cells(path) if c["cell_type"] == "markdown"][-1])
    items = re.split(r"^\d+\. ", exercises, flags=re.MULTILINE)[1:]
    assert items, f"{path.name}: no numbered exercises"
    for number, item in enumerate(items, 1):
        assert re.search(r"CPU|GPU|second|minute|hour", item), f"{path.name}, exercise {number}: say what it costs"
