"""The course's conventions, checked on every notebook (nbval checks that they run)."""
import json
import re

import pytest
import torch

from stn_course.utils import COLAB_SETUP_CELL, REPO_URL, repo_root
from .notebook_utils import assert_stored_from_a_full_run_without_errors, code_cell, planted
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


# The check cells of notebooks 01 and 02 against the learner's usual mistakes, planted in the
# learner's cells: each check must fail with a message that says what is wrong, and pass on the
# notebook's own code (and on correct code written differently).
NOTEBOOK_01 = repo_root() / "notebooks" / "01_numpy_spatial_transformer.ipynb"
NOTEBOOK_02 = repo_root() / "notebooks" / "02_stn_on_mnist.ipynb"


def _run_01(to_pixels=None, one_pixel_backward=None):
    """Notebook 01's cells up to its backward checks, with the learner's functions given or its own."""
    cell = lambda start: code_cell(NOTEBOOK_01, start)  # noqa: E731
    namespace, dtype = {}, torch.get_default_dtype()   # the notebook computes in float64
    try:
        _run_01_cells(cell, namespace, to_pixels, one_pixel_backward)
    finally:
        torch.set_default_dtype(dtype)


def _run_01_cells(cell, namespace, to_pixels, one_pixel_backward):
    for code in [cell("import inspect"), cell("identity = np.eye(2, 3)"), cell("def pixel_centres"),
                 cell("def my_affine_grid"), to_pixels or cell("def to_pixels"), cell("def read_pixels"),
                 cell("def my_grid_sample"), one_pixel_backward or cell("def one_pixel_backward")]:
        exec(code, namespace)
    for check in ["# Check: the pixel centres of step 1", "grid = my_affine_grid(THETAS, OUT_SIZE)",
                  "# Check: the package gives your numbers", "U6 = IMAGES[0, 0]",
                  "for point in [np.array([0.21, -0.37]), np.array([-0.97, 0.93])]"]:
        exec(cell(check), namespace)


def test_notebook_01s_checks_pass_on_its_own_code(capsys):
    _run_01()
    assert "agrees with the pixel numbers 0..8" in capsys.readouterr().out


@pytest.mark.parametrize("cell, mistake, instead, message", [
    ("def to_pixels", "((coord + 1) * size - 1) / 2", "(coord + 1) * size / 2",
     r"to_pixels.*differs from the pixel numbers 0\.\.8 by up to 0\.5"),
    ("def one_pixel_backward", "slope_x * width / 2", "slope_x * width",
     r"dL/dpoint at .*differs from central finite differences by up to .*at index \(0,\)"),
    ("def one_pixel_backward", "slope_y * height / 2", "slope_y * height",
     r"dL/dpoint at .*differs from central finite differences by up to .*at index \(1,\)"),
    ("def one_pixel_backward", "grad_U[row, col] = g * weight", "grad_U[row, col] = weight",
     r"dL/dU at .*differs from central finite differences by up to .*at index \(\d, \d\)"),
])
def test_notebook_01s_checks_say_which_number_is_wrong_where_and_by_how_much(cell, mistake, instead, message):
    wrong = planted(code_cell(NOTEBOOK_01, cell), mistake, instead)
    with pytest.raises(AssertionError, match=message):
        _run_01(**{cell.removeprefix("def "): wrong})


@pytest.fixture(scope="module")
def notebook_02():
    """Notebook 02's imports, configuration and (quick-mode) data, once for the module."""
    namespace = {}
    for start in ["import contextlib", "config = default_config", "experiment = build_experiment"]:
        exec(code_cell(NOTEBOOK_02, start), namespace)
    return namespace


def _run_02(namespace, **learners):
    """Notebook 02's learner cells (those given in ``learners``, by the name they define, or its own) and
    the checks after them."""
    namespace = dict(namespace)
    for start in ["class MySpatialTransformer", "# Check: a new transformer is the identity", "class MySTCNN",
                  "package_model = experiment.model", "def copy_weights_by_shape", "def train_epoch",
                  "# Check, on two batches"]:
        name = start.split()[1].split("(")[0]
        exec(learners.get(name) or code_cell(NOTEBOOK_02, start), namespace)


WRITTEN_DIFFERENTLY = {"MySpatialTransformer": '''
class MySpatialTransformer(nn.Module):
    def __init__(self):
        super().__init__()
        self.convs = nn.Sequential(nn.Conv2d(1, 20, 5), nn.MaxPool2d(2), nn.ReLU(), nn.Conv2d(20, 20, 5), nn.ReLU())
        self.fc, self.theta = nn.Linear(20 * 8 * 8, 20), nn.Linear(20, 6)
        nn.init.zeros_(self.theta.weight)
        with torch.no_grad():
            self.theta.bias.copy_(torch.tensor([1.0, 0, 0, 0, 1, 0]))

    def forward(self, x):
        self.last_theta = self.theta(F.relu(self.fc(torch.flatten(self.convs(x), 1)))).view(-1, 2, 3)
        grid = F.affine_grid(self.last_theta, list(x.shape), align_corners=False)
        self.last_theta = self.last_theta.detach()
        return F.grid_sample(x, grid, align_corners=False)
''', "MySTCNN": '''
class MySTCNN(nn.Module):
    def __init__(self, mean, std, hidden):
        super().__init__()
        self.mean, self.std = mean[0], std[0]
        self.conv1, self.conv2 = nn.Conv2d(1, 32, 5, padding=2), nn.Conv2d(32, 64, 5, padding=2)
        self.transformer = MySpatialTransformer()
        self.fc1, self.fc2 = nn.Linear(64 * 7 * 7, hidden), nn.Linear(hidden, 10)

    def forward(self, x):
        x = (self.transformer(x) - self.mean) / self.std
        x = F.max_pool2d(F.relu(self.conv2(F.max_pool2d(F.relu(self.conv1(x)), 2))), 2)
        return self.fc2(F.relu(self.fc1(x.view(len(x), -1))))
'''}


@pytest.mark.parametrize("learners", [{}, WRITTEN_DIFFERENTLY], ids=["the notebook's", "written differently"])
def test_notebook_02s_checks_pass_on_correct_modules(notebook_02, learners, capsys):
    _run_02(notebook_02, **learners)
    out = capsys.readouterr().out
    assert "same θ" in out and "each step used its own batch's gradient" in out


@pytest.mark.parametrize("cell, mistake, instead, message", [
    ("MySpatialTransformer", 'padding_mode="zeros", align_corners=False)', 'padding_mode="zeros", align_corners=True)',
     "θ is the identity, but the output differs from the input .*the same align_corners"),
    ("MySpatialTransformer", "align_corners=False", "align_corners=True",   # in both: the identity still holds
     "θ agrees, but your transformer's output differs .*align_corners=False"),
    ("MySpatialTransformer", 'padding_mode="zeros", align_corners', 'padding_mode="border", align_corners',
     "θ agrees, but your transformer's output differs .*padding_mode='zeros'"),
    ("MySpatialTransformer", 'mode="bilinear"', 'mode="nearest"',
     "θ agrees, but your transformer's output differs .*mode='bilinear'"),
    ("MySTCNN", "x = (x - self.mean) / self.std", "x = x",
     "the logits differ .*normalise after the transformer"),
    ("train_epoch", "optimizer.zero_grad()\n", "\n",
     r"the last step's gradients differ .*optimizer\.zero_grad\(\)"),
    ("test", 'F.cross_entropy(logits, labels, reduction="sum")', "F.cross_entropy(logits, labels)",
     r"test returns a loss of .*the mean cross-entropy per image is .*\(50 times as much\)"),
])
def test_notebook_02s_checks_fail_on_planted_mistakes_with_their_message(notebook_02, cell, mistake, instead, message):
    start = "def train_epoch" if cell in ("train_epoch", "test") else f"class {cell}"
    name = start.split()[1]
    code = code_cell(NOTEBOOK_02, start)
    wrong = code.replace(mistake, instead) if mistake == "align_corners=False" else planted(code, mistake, instead)
    with pytest.raises(AssertionError, match=message):
        _run_02(notebook_02, **{name: wrong})
