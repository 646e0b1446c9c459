"""README.md is a front page that states only what the repository can show; RESULTS.md holds every table."""
import re

from stn_course.report import README_BLOCKS, readme_with_blocks, results_page
from stn_course.utils import repo_root

README = (repo_root() / "README.md").read_text()
GENERATED = re.compile(r"<!-- (\w+):start -->\n.*?<!-- \1:end -->", re.S)
PERCENTAGE = re.compile(r"\d+(?:\.\d+)?\s?%")


def _hand_typed_percentages(text: str) -> list[str]:
    """Percentages in ``text`` outside its generated blocks."""
    return PERCENTAGE.findall(GENERATED.sub("", text))


def test_generated_blocks_are_made_from_the_results_files():
    for name in README_BLOCKS:
        assert f"<!-- {name}:start -->\n" in README and f"<!-- {name}:end -->" in README, f"README has no {name} block"
    assert readme_with_blocks(README) == README, "rerun `python -m stn_course report --update-readme` (README is stale)"


def test_results_page_is_made_from_the_results_files():
    assert (repo_root() / "RESULTS.md").read_text() == results_page(), \
        "rerun `python -m stn_course report --update-readme` (RESULTS.md is stale)"


def test_readme_is_a_front_page():
    assert len(README.encode()) < 15_000, "move tables to RESULTS.md (report.RESULTS_SECTIONS)"
    assert "[RESULTS.md](RESULTS.md)" in README


def test_readme_types_no_percentage_by_hand():
    assert _hand_typed_percentages(README) == [], "generate the figure (stn_course/report.py) or drop it"
    sample = "an error of 0.46 % here\n<!-- headline:start -->\n| 1.2% |\n<!-- headline:end -->\nand 99%"
    assert _hand_typed_percentages(sample) == ["0.46 %", "99%"], "the check sees typed figures, not generated ones"


def test_notebooks_table_lists_every_notebook():
    section = README.split("## Notebooks\n")[1].split("\n## ")[0]
    listed = re.findall(r"^\| (\d\d|appendix) \| \[`notebooks/([^`]+)`\]\(notebooks/\2\)", section, re.M)
    notebooks = sorted(path.name for path in (repo_root() / "notebooks").glob("*.ipynb"))
    assert [name for _, name in listed] == notebooks
    assert all(name.startswith(number) for number, name in listed)


def test_local_links_and_pictures_exist():
    targets = re.findall(r"\]\(((?!https?://|#)[^)\s]+)\)", README)
    assert "RESULTS.md" in targets and any(target.startswith("plots/") for target in targets)
    assert [target for target in targets if not (repo_root() / target).exists()] == []


def test_ci_runs_the_readme_commands():
    ci = [line.strip() for line in (repo_root() / ".ci" / "run").read_text().splitlines()]
    commands = [line.split("#")[0].strip() for block in re.findall(r"```bash\n(.*?)```", README, re.S)
                for line in block.splitlines()]
    setup, tests = "pip install -r requirements.txt", "pytest --nbval notebooks tests"
    assert setup in commands and setup in ci
    assert tests in commands and tests in ci


def test_requirements_do_not_pin_torch():
    requirements = (repo_root() / "requirements.txt").read_text().splitlines()
    torch_lines = [line for line in requirements if re.match(r"torch(vision)?\b", line)]
    assert torch_lines and all("==" not in line and "<" not in line for line in torch_lines)
    assert "-e ." in requirements
