"""The package's shape (issue #19): small files of one idea, functions that fit on a screen."""
import ast
from pathlib import Path

import pytest

from stn_course.utils import repo_root

MODULES = sorted((repo_root() / "stn_course").glob("*.py"))
MAX_FUNCTION_LINES = 60  # code lines, docstring excluded: one screen
MAX_MODULE_LINES = {"experiments.py": 500, "models.py": 500}


def code_lines(function: ast.FunctionDef) -> int:
    """Lines of a function's definition without its docstring."""
    lines = function.end_lineno - function.lineno + 1
    body = function.body
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
            and isinstance(body[0].value.value, str):
        lines -= body[0].end_lineno - body[0].lineno + 1
    return lines


def long_functions(path: Path, limit: int = MAX_FUNCTION_LINES) -> list[str]:
    tree = ast.parse(path.read_text())
    return [f"{path.name}:{node.lineno} {node.name} ({code_lines(node)} lines)" for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and code_lines(node) > limit]


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_functions_fit_on_a_screen(path):
    assert not long_functions(path), "split these into named steps"


def test_the_check_finds_a_long_function(tmp_path):
    source = tmp_path / "long.py"
    source.write_text('def f():\n    """Doc."""\n' + "    x = 1\n" * 61)
    assert long_functions(source) == ["long.py:1 f (62 lines)"]
    source.write_text('def f():\n    """Doc."""\n' + "    x = 1\n" * 59)
    assert long_functions(source) == []


@pytest.mark.parametrize("name, limit", MAX_MODULE_LINES.items())
def test_the_big_modules_stay_small(name, limit):
    assert len((repo_root() / "stn_course" / name).read_text().splitlines()) < limit


def test_every_module_is_in_the_readme_package_table():
    readme = (repo_root() / "README.md").read_text()
    missing = [path.name for path in MODULES
               if path.name not in ("__init__.py", "__main__.py") and f"`stn_course/{path.name}`" not in readme]
    assert not missing, f"add rows to README's package table for {missing}"
