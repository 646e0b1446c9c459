"""The package's shape: small files of one idea, functions that fit on a screen."""
import ast
from pathlib import Path

import pytest

from stn_course.utils import repo_root

PACKAGE = repo_root() / "stn_course"
#: every module of the package, in subpackages too (e.g. ``figures/``)
MODULES = sorted(PACKAGE.rglob("*.py"))
MAX_FUNCTION_LINES = 60  # code lines, docstring excluded: one screen
MAX_MODULE_LINES = 600  # lines of a module, all included: one idea, readable in one sitting
#: modules held to a tighter limit than :data:`MAX_MODULE_LINES` (at most this many lines)
TIGHTER_MODULE_LIMITS = {"experiments.py": 499, "models.py": 499}


def module_id(path: Path, package: Path = PACKAGE) -> str:
    """``sampler.py``, ``figures/sampling.py``: a module's path inside the package."""
    return path.relative_to(package).as_posix()


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


def module_too_long(path: Path, package: Path = PACKAGE) -> str | None:
    """What is wrong with a module's length, or None."""
    name = module_id(path, package)
    limit = TIGHTER_MODULE_LIMITS.get(name, MAX_MODULE_LINES)
    count = len(path.read_text().splitlines())
    if count <= limit:
        return None
    return (f"stn_course/{name} has {count} lines, over the limit of {limit}: split it by idea "
            f"into modules of one idea each (and move their tests to tests/test_<module>.py)")


def test_the_package_has_its_modules():
    assert {"__init__.py", "sampler.py", "data.py", "train.py"} <= {module_id(path) for path in MODULES}


@pytest.mark.parametrize("path", MODULES, ids=module_id)
def test_functions_fit_on_a_screen(path):
    assert not long_functions(path), "split these into named steps"


def test_the_check_finds_a_long_function(tmp_path):
    source = tmp_path / "long.py"
    source.write_text('def f():\n    """Doc."""\n' + "    x = 1\n" * 61)
    assert long_functions(source) == ["long.py:1 f (62 lines)"]
    source.write_text('def f():\n    """Doc."""\n' + "    x = 1\n" * 59)
    assert long_functions(source) == []


@pytest.mark.parametrize("path", MODULES, ids=module_id)
def test_every_module_is_at_most_600_lines_or_its_tighter_limit(path):
    problem = module_too_long(path)
    assert problem is None, problem


def test_the_check_finds_a_long_module(tmp_path):
    (tmp_path / "figures").mkdir()
    source = tmp_path / "figures" / "big.py"
    source.write_text("x = 1\n" * 601)
    assert module_too_long(source, tmp_path) == (
        "stn_course/figures/big.py has 601 lines, over the limit of 600: split it by idea into modules "
        "of one idea each (and move their tests to tests/test_<module>.py)")
    source.write_text("x = 1\n" * 600)
    assert module_too_long(source, tmp_path) is None
    tight = tmp_path / "models.py"
    tight.write_text("x = 1\n" * 500)
    assert module_too_long(tight, tmp_path).startswith("stn_course/models.py has 500 lines, over the limit of 499")


def test_every_module_is_in_the_readme_package_table():
    readme = (repo_root() / "README.md").read_text()
    table = readme[readme.index("## The package"):]  # its modules are named relative to stn_course/
    table = table[:table.index("\n## ")] if "\n## " in table else table
    missing = [module_id(path) for path in MODULES
               if path.name not in ("__init__.py", "__main__.py") and f"`{module_id(path)}`" not in table]
    assert not missing, f"add rows to README's package table for {missing}"


def test_the_package_docstring_names_every_module():
    import stn_course

    doc = " ".join(stn_course.__doc__.split())
    missing = [module_id(path) for path in MODULES if path.name not in ("__init__.py", "__main__.py")
               and f"``{module_id(path)[:-3].replace('/', '.')}``" not in doc]
    assert not missing, f"name these modules in stn_course/__init__.py's docstring: {missing}"
