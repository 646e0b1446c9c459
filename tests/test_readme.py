"""The README states only what the repository can show."""
import re

from stn_course.report import README_BLOCKS
from stn_course.utils import repo_root

README = (repo_root() / "README.md").read_text()


def _block(name: str) -> str:
    match = re.search(rf"<!-- {name}:start -->\n(.*?)<!-- {name}:end -->", README, re.S)
    assert match, f"README has no {name} block"
    return match.group(1).strip()


def test_generated_blocks_are_made_from_the_results_files():
    for name, make in README_BLOCKS.items():
        assert _block(name) == make(), f"rerun `python -m stn_course report --update-readme` ({name} is stale)"


def test_ci_runs_the_readme_commands():
    ci = (repo_root() / ".ci" / "run").read_text()
    commands = re.findall(r"```bash\n(.*?)```", README, re.S)
    setup, tests = commands[0].splitlines()[0].split("#")[0].strip(), commands[2].strip()
    assert setup == "pip install -r requirements.txt" and setup in ci.splitlines()
    assert tests in [line.strip() for line in ci.splitlines()]


def test_requirements_do_not_pin_torch():
    requirements = (repo_root() / "requirements.txt").read_text().splitlines()
    torch_lines = [line for line in requirements if re.match(r"torch(vision)?\b", line)]
    assert torch_lines and all("==" not in line and "<" not in line for line in torch_lines)
    assert "-e ." in requirements
