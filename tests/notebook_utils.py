"""Reading stored notebooks in the tests (course notebooks and their solutions alike)."""
import json
from pathlib import Path


def cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def source(cell: dict) -> str:
    return "".join(cell["source"])


def assert_stored_from_a_full_run_without_errors(path: Path) -> None:
    """Every code cell but the Colab one ran, no output is an error, and no output comes from
    quick mode (its variable or temporary folders) or names a folder of the machine it ran on."""
    code = [c for c in cells(path) if c["cell_type"] == "code"]
    assert all(c.get("execution_count") for c in code[1:]), f"{path.name}: every cell (but Colab's) was run"
    for cell in code:
        for output in cell.get("outputs", []):
            assert output["output_type"] != "error", f"{path.name}: {source(cell)[:80]}"
            text = "".join(output.get("text", ""))
            for marker in ("STN_COURSE_QUICK", "stn_course_test_", "/work/", "/tmp/", "/root/", "/home/"):
                assert marker not in text, f"{path.name}: an output shows {marker!r}: {source(cell)[:80]}"


def code_cell(path: Path, start: str) -> str:
    """The source of the one code cell of ``path`` whose source starts with ``start``."""
    found = [source(c) for c in cells(path) if c["cell_type"] == "code" and source(c).startswith(start)]
    assert len(found) == 1, f"{path.name}: {len(found)} code cells start with {start!r}"
    return found[0]


def planted(code: str, mistake: str, instead: str) -> str:
    """``code`` with the learner's mistake planted: ``mistake`` (which must occur once) replaced by ``instead``."""
    assert code.count(mistake) == 1, f"{mistake!r} occurs {code.count(mistake)} times"
    return code.replace(mistake, instead)
