"""The worked solutions (``notebooks/solutions/NN_slug_solutions.ipynb``): one per exercise of
their notebook, each ending with an assertion, with a link back (nbval checks that they run)."""
import re
from pathlib import Path

import pytest

from stn_course.utils import COLAB_SETUP_CELL, repo_root
from .notebook_utils import assert_stored_from_a_full_run_without_errors
from .notebook_utils import cells as _cells
from .notebook_utils import source as _source

NOTEBOOKS = repo_root() / "notebooks"
SOLUTIONS = sorted((NOTEBOOKS / "solutions").glob("*.ipynb"))


def _notebook_of(solutions: Path) -> Path:
    return NOTEBOOKS / solutions.name.replace("_solutions.ipynb", ".ipynb")


def _exercises(notebook: Path) -> list[str]:
    """The numbered items of the notebook's last markdown section, '## Exercises'."""
    text = _source([c for c in _cells(notebook) if c["cell_type"] == "markdown"][-1])
    assert text.startswith("## Exercises"), notebook.name
    return re.findall(r"^(\d+)\. ", text, flags=re.MULTILINE)


def _solution_sections(path: Path) -> dict[str, list[dict]]:
    """Cells under each '## Exercise N' heading, by N."""
    sections: dict[str, list[dict]] = {}
    current = None
    for cell in _cells(path):
        if cell["cell_type"] == "markdown":
            heading = re.match(r"## Exercise (\d+)\b", _source(cell))
            if heading:
                current = heading.group(1)
                sections[current] = []
                continue
        if current is not None:
            sections[current].append(cell)
    return sections


def test_solutions_are_named_after_a_notebook():
    for path in SOLUTIONS:
        assert re.fullmatch(r"(\d\d|appendix)_[a-z0-9_]+_solutions\.ipynb", path.name), path.name
        assert _notebook_of(path).exists(), path.name


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_solutions_open_with_a_link_back_to_their_notebook(path):
    first = _source(_cells(path)[0])
    assert first.startswith("# ") and f"(../{_notebook_of(path).name})" in first


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_first_code_cell_is_the_guarded_colab_setup(path):
    first_code = next(cell for cell in _cells(path) if cell["cell_type"] == "code")
    assert _source(first_code) == COLAB_SETUP_CELL and not first_code.get("outputs")


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_every_exercise_has_a_solution_ending_with_an_assertion(path):
    exercises = _exercises(_notebook_of(path))
    sections = _solution_sections(path)
    assert exercises and list(sections) == exercises, (exercises, list(sections))
    for number, cells in sections.items():
        code = [c for c in cells if c["cell_type"] == "code"]
        assert code, f"exercise {number} has no code"
        assert re.search(r"^\s*assert\b", _source(code[-1]), flags=re.MULTILINE), \
            f"exercise {number}'s last code cell checks nothing with an assert"


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_solution_outputs_come_from_a_run_without_errors(path):
    assert_stored_from_a_full_run_without_errors(path)


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_notebook_links_to_its_solutions(path):
    notebook = _notebook_of(path)
    assert any(f"solutions/{path.name}" in _source(c) for c in _cells(notebook) if c["cell_type"] == "markdown")


@pytest.mark.parametrize("notebook", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_every_notebook_with_exercises_has_worked_solutions(notebook):
    if _exercises(notebook):
        solutions = NOTEBOOKS / "solutions" / notebook.name.replace(".ipynb", "_solutions.ipynb")
        assert solutions.exists(), f"{notebook.name}: its exercises need {solutions.name}"
