"""The course's conventions, checked on every notebook (nbval checks that they run)."""
import json
import re
from pathlib import Path

import pytest

from stn_course.utils import COLAB_SETUP_CELL, REPO_URL, repo_root

NOTEBOOKS = sorted((repo_root() / "notebooks").glob("*.ipynb"))


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def _source(cell: dict) -> str:
    return "".join(cell["source"])


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 2


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_name_is_numbered_slug(path):
    assert re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", path.name)


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
    code = [c for c in _cells(path) if c["cell_type"] == "code"]
    assert all(c.get("execution_count") for c in code[1:]), "every cell (but Colab's) was run"
    for cell in code:
        for output in cell.get("outputs", []):
            assert output["output_type"] != "error", _source(cell)[:80]
            text = "".join(output.get("text", ""))
            assert "STN_COURSE_QUICK" not in text and "stn_course_test_" not in text


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


SOLUTIONS = sorted((repo_root() / "notebooks" / "solutions").glob("*.ipynb"))


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_solutions_belong_to_a_notebook_and_link_back_to_it(path):
    assert path.name.endswith("_solutions.ipynb")
    notebook = path.parent.parent / path.name.replace("_solutions.ipynb", ".ipynb")
    assert notebook.exists(), f"{path.name}: no notebook {notebook.name}"
    first = _source(_cells(path)[0])
    assert first.startswith("# ") and f"(../{notebook.name})" in first.split("\n\n")[1]
    assert f"(solutions/{path.name})" in "".join(_source(c) for c in _cells(notebook)), "the notebook links to it"


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_every_solution_ends_with_an_assertion(path):
    """Each ``## N.`` section's last code cell asserts, so a broken solution fails under nbval."""
    sections: dict[str, list[str]] = {}
    heading = None
    for cell in _cells(path):
        text = _source(cell)
        if cell["cell_type"] == "markdown" and re.match(r"## \d+\.", text):
            heading = text.splitlines()[0]
            sections[heading] = []
        elif cell["cell_type"] == "code" and heading is not None:
            sections[heading].append(text)
    assert sections, f"{path.name} has no '## 1. ...' solution sections"
    for heading, code in sections.items():
        assert code and re.search(r"^\s*assert ", code[-1], re.MULTILINE), f"{heading}: end with an assertion"


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_solutions_are_stored_run_with_the_colab_cell(path):
    code = [c for c in _cells(path) if c["cell_type"] == "code"]
    assert _source(code[0]) == COLAB_SETUP_CELL
    assert all(c.get("execution_count") for c in code[1:]), "every cell (but Colab's) was run"
    assert not any(o["output_type"] == "error" for c in code for o in c.get("outputs", []))
    assert not any("NBVAL_" in _source(c) for c in code)
