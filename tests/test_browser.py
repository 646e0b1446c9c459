"""The θ explorer, tested in a real browser.

Runs the course's own notebook 01 in JupyterLab, driven by a headless Chromium through
playwright (connected over the DevTools protocol to a Chromium this test starts itself),
and checks that moving the explorer's controls redraws the output and moves the
sampled-region outline, and that the kernel sees the new θ.

Needs ``/usr/bin/chromium`` (Debian: ``apt-get install -y chromium``) and the Python
``playwright`` package (never run ``playwright install``); skipped otherwise.
Run it alone with ``pytest -m browser tests/test_browser.py``.

Screenshots go to pytest's ``tmp_path``; the course's authors set ``STN_COURSE_SAVE_SCREENSHOT=1``
(or ``STN_COURSE_RECORD_PLOTS=1``) to also write ``plots/theta_explorer_browser.png`` for the README.
"""
from __future__ import annotations

import ast
import importlib.util
import os
import re
import shutil
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest

from .browser_utils import CHROMIUM, Chromium, LabServer, processes_mentioning

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "01_numpy_spatial_transformer.ipynb"
RENDER_TIMEOUT_S = 180  # generous: the machine may be shared and loaded
STEP_TIMEOUT_MS = 60_000
EXACT_CELL = 'print("exact theta:", repr(explorer.theta.tolist()))'


def _missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} not found (Debian: apt-get install -y chromium)"
    if importlib.util.find_spec("playwright") is None:
        return "the playwright Python package is not installed (pip install playwright; no `playwright install`)"
    return None


pytestmark = [pytest.mark.browser, pytest.mark.skipif(_missing() is not None, reason=_missing() or "")]


# ---------------------------------------------------------------------------
# Small helpers driving the page
# ---------------------------------------------------------------------------

def copy_notebook_without_outputs(dest: Path) -> Path:
    """The course's notebook 01, outputs and saved widget state removed, in ``dest``."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    nb.metadata.pop("widgets", None)
    # A cell of the test's own (not in the course's notebook): θ exactly as the kernel
    # holds it, every digit (repr), to check that typed values are not rounded.
    nb.cells.append(nbformat.v4.new_code_cell(EXACT_CELL))
    path = dest / NOTEBOOK.name
    nbformat.write(nb, path)
    return path


def run_all_cells(page) -> None:
    """Run > Run All Cells, through the menu bar."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()


def label_text(explorer) -> str:
    return explorer.locator(".stn-theta-label").inner_text()


def theta_from_label(text: str) -> np.ndarray:
    """The θ printed in the explorer's label (or the check cell): ``[[a, b, c], [d, e, f]]``."""
    match = re.search(r"\[\[([-\d., ]+)\], \[([-\d., ]+)\]\]", text)
    assert match, f"no θ in {text!r}"
    return np.array([[float(v) for v in row.split(",")] for row in match.groups()])


def corners_from_label(text: str) -> np.ndarray:
    """The four (x, y) sampled-region corners printed in the explorer's label."""
    tail = text.split("corners", 1)[1]
    pairs = re.findall(r"\((-?[\d.]+), (-?[\d.]+)\)", tail)
    assert len(pairs) == 4, f"no corners in {text!r}"
    return np.array([[float(x), float(y)] for x, y in pairs])


def view_src(explorer) -> str:
    return explorer.locator(".stn-view img").first.get_attribute("src") or ""


def wait_for_redraw(page, explorer, old_label: str, old_src: str) -> None:
    """Wait until both the label and the output image differ from before."""
    deadline = time.monotonic() + STEP_TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        if label_text(explorer) != old_label and view_src(explorer) not in ("", old_src):
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"the θ explorer did not redraw within {STEP_TIMEOUT_MS / 1000:.0f} s "
                         f"(label still {label_text(explorer)!r})")


def wait_until(page, condition, what: str) -> None:
    deadline = time.monotonic() + STEP_TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        if condition():
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"timed out after {STEP_TIMEOUT_MS / 1000:.0f} s waiting for {what}")


def type_into_readout(page, slider, value: str) -> None:
    """Type a value into a slider's readout and press Enter."""
    readout = slider.locator(".widget-readout")
    readout.click()
    page.keyboard.press("Control+A")
    page.keyboard.type(value)
    page.keyboard.press("Enter")


def drag_handle(page, slider, dx: float) -> None:
    """Drag a slider's handle horizontally by ``dx`` pixels with the mouse."""
    box = slider.locator(".noUi-handle").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + dx / 2, y, steps=5)
    page.mouse.move(x + dx, y, steps=5)
    page.mouse.up()


def readout_value(slider) -> float:
    return float(slider.locator(".widget-readout").inner_text())


def type_raw_theta(page, explorer, values: dict) -> None:
    """Type each value into its raw θ field (key ``"rc"``: row, column) and wait for the redraw."""
    for key, value in values.items():
        label, src = label_text(explorer), view_src(explorer)
        box = explorer.locator(f".stn-theta-{key} input")
        box.fill(value)
        box.press("Enter")
        wait_for_redraw(page, explorer, label, src)


def type_bad_raw_text(page, explorer, key: str, text: str) -> None:
    """Type text that is no finite number into a raw θ field; wait for the red message that
    names it, and check that the field shows θ's entry again."""
    box = explorer.locator(f".stn-theta-{key} input")
    before = box.input_value()
    box.fill(text)
    box.press("Enter")
    message = explorer.locator(".stn-message")
    deadline = time.monotonic() + STEP_TIMEOUT_MS / 1000
    while f"'{text}'" not in message.inner_text() and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    shown = message.inner_text()
    assert f"θ[{key[0]},{key[1]}] = '{text}'" in shown and "finite numbers" in shown, shown
    assert message.locator("span").evaluate("e => getComputedStyle(e).color") == "rgb(187, 0, 0)", "red"
    assert box.input_value() == before, f"{text!r} left in the field"


def run_cell_until(page, cell, done) -> str:
    """Run ``cell`` and return its output text once it has run again (a new execution count,
    since the text may come back the same) and ``done(text)`` holds."""
    old_prompt = cell.locator(".jp-InputPrompt").inner_text()
    cell.locator(".jp-InputPrompt").click()
    page.keyboard.press("Control+Enter")
    deadline = time.monotonic() + STEP_TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        prompt = cell.locator(".jp-InputPrompt").inner_text()
        text = cell.locator(".jp-OutputArea").inner_text()
        if prompt not in (old_prompt, "[*]:") and done(text):
            return text
        page.wait_for_timeout(100)
    raise AssertionError(f"running the cell gave no new output; it shows: {text!r}")


def run_exact_cell(page) -> list:
    """Run the test's own last cell and return the θ it printed, parsed exactly (repr)."""
    cell = page.locator(".jp-CodeCell", has_text="exact theta:").last
    text = run_cell_until(page, cell, lambda text: "exact theta: [[" in text)
    return ast.literal_eval(text.split("exact theta:", 1)[1].strip())


def rerun_check_cell(page) -> str:
    """Re-run the cell that prints ``explorer.theta`` and return its new output text."""
    cell = page.locator(".jp-CodeCell", has_text="explorer theta:").first
    return run_cell_until(page, cell, lambda text: "explorer theta:" in text and "turned 90°" in text)


# ---------------------------------------------------------------------------
# The test
# ---------------------------------------------------------------------------

def test_theta_explorer_in_a_real_browser(tmp_path):
    from playwright.sync_api import sync_playwright

    work = tmp_path / "work"
    root = tmp_path / "lab"
    work.mkdir()
    root.mkdir()
    nb_path = copy_notebook_without_outputs(root)
    shots = tmp_path / "screenshots"
    shots.mkdir()

    server = LabServer(root, work)
    chromium = Chromium(work)
    try:
        server.start()
        cdp_url = chromium.start()
        with sync_playwright() as pw:
            browser = pw.chromium.connect_over_cdp(cdp_url)
            try:
                context = browser.contexts[0] if browser.contexts else browser.new_context()
                page = context.new_page()
                page.set_viewport_size({"width": 1400, "height": 1000})
                page.goto(server.url(f"lab/tree/{nb_path.name}"))
                page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=RENDER_TIMEOUT_S * 1000)
                server.wait_kernel_idle()
                run_all_cells(page)

                # -- the explorer renders ------------------------------------------------
                try:
                    page.wait_for_selector(".stn-theta-explorer .widget-slider", timeout=RENDER_TIMEOUT_S * 1000)
                except Exception:
                    page.screenshot(path=str(shots / "no_widget.png"))
                    pytest.fail(f"θ explorer did not render: no .widget-slider after {RENDER_TIMEOUT_S} s — "
                                "is the ipywidgets widget manager installed? (jupyterlab_widgets comes with "
                                f"ipywidgets 8); screenshot: {shots / 'no_widget.png'}\n"
                                f"server log:\n{server.log_tail()}")
                explorer = page.locator(".stn-theta-explorer").first  # the digit
                page.wait_for_selector(".stn-theta-explorer .stn-view img", timeout=RENDER_TIMEOUT_S * 1000)
                # the whole notebook has run once the check cell has printed
                page.wait_for_selector(".jp-CodeCell:has-text('explorer theta:') .jp-OutputArea-output",
                                       timeout=RENDER_TIMEOUT_S * 1000)
                server.wait_kernel_idle()
                explorer.scroll_into_view_if_needed()
                explorer.screenshot(path=str(shots / "0_identity.png"))
                start_label, start_src = label_text(explorer), view_src(explorer)
                np.testing.assert_allclose(theta_from_label(start_label), [[1, 0, 0], [0, 1, 0]])
                start_corners = corners_from_label(start_label)
                np.testing.assert_allclose(start_corners, [[0, 0], [27, 0], [27, 27], [0, 27]], atol=0.011)

                # -- angle 90 by typing into the readout: a quarter turn ---------------------
                angle = explorer.locator(".stn-angle")
                type_into_readout(page, angle, "90")
                wait_for_redraw(page, explorer, start_label, start_src)
                assert readout_value(angle) == pytest.approx(90.0)
                text = label_text(explorer)
                np.testing.assert_allclose(theta_from_label(text), [[0, -1, 0], [1, 0, 0]], atol=1e-3)
                # the outline turned: the output's top-left corner now reads the input's top-right
                np.testing.assert_allclose(corners_from_label(text)[0], [27, 0], atol=0.011)
                explorer.screenshot(path=str(shots / "1_angle_90.png"))
                check = rerun_check_cell(page)
                assert "turned 90° counter-clockwise: True" in check, check
                np.testing.assert_allclose(theta_from_label(check), [[0, -1, 0], [1, 0, 0]], atol=1e-4)

                # -- reset, then translate x by 0.5: the outline moves right by 7 pixels -----
                label, src = label_text(explorer), view_src(explorer)
                explorer.locator(".stn-reset").click()
                wait_for_redraw(page, explorer, label, src)
                label, src = label_text(explorer), view_src(explorer)
                assert src == start_src, "after reset the output should be the starting picture again"
                tx = explorer.locator(".stn-tx")
                type_into_readout(page, tx, "0.5")
                wait_for_redraw(page, explorer, label, src)
                moved = corners_from_label(label_text(explorer))
                np.testing.assert_allclose(moved - start_corners, np.tile([7.0, 0.0], (4, 1)), atol=0.011)
                explorer.screenshot(path=str(shots / "2_translate.png"))

                # -- drag the scale-x handle to the left: the region gets narrower ----------
                label, src = label_text(explorer), view_src(explorer)
                scale_x = explorer.locator(".stn-scale-x")
                drag_handle(page, scale_x, -30)
                wait_for_redraw(page, explorer, label, src)
                # a drag sends several values (continuous_update): wait for the last one
                wait_until(page, lambda: abs(theta_from_label(label_text(explorer))[0, 0]
                                             - readout_value(scale_x)) < 2e-3,
                           "the explorer to catch up with the dragged scale-x slider")
                sx = readout_value(scale_x)
                assert -2.0 <= sx < 0.95, f"dragging the handle left should lower scale x, got {sx}"
                narrow = corners_from_label(label_text(explorer))
                width_before = moved[1, 0] - moved[0, 0]
                np.testing.assert_allclose(narrow[1, 0] - narrow[0, 0], sx * width_before, atol=0.03)
                np.testing.assert_allclose(theta_from_label(label_text(explorer))[0, 0], sx, atol=2e-3)
                explorer.screenshot(path=str(shots / "3_scale_x.png"))

                # -- raw θ: reset, switch mode, type a zoom-in ---------------------------------
                label, src = label_text(explorer), view_src(explorer)
                explorer.locator(".stn-reset").click()
                wait_for_redraw(page, explorer, label, src)
                explorer.locator(".stn-mode button", has_text="raw θ").click()
                field = explorer.locator(".stn-theta-00 input")
                field.wait_for(state="visible", timeout=STEP_TIMEOUT_MS)
                type_raw_theta(page, explorer, {"00": "0.5", "11": "0.5"})
                text = label_text(explorer)
                np.testing.assert_allclose(theta_from_label(text), [[0.5, 0, 0], [0, 0.5, 0]], atol=1e-3)
                # half-size region centred on the image centre (13.5, 13.5)
                np.testing.assert_allclose(corners_from_label(text),
                                           [[6.75, 6.75], [20.25, 6.75], [20.25, 20.25], [6.75, 20.25]], atol=0.011)
                explorer.screenshot(path=str(shots / "4_raw_theta.png"))
                check = rerun_check_cell(page)
                np.testing.assert_allclose(theta_from_label(check), [[0.5, 0, 0], [0, 0.5, 0]], atol=1e-4)
                assert "turned 90° counter-clockwise: False" in check, check

                # -- raw θ typed with three decimals reaches the kernel exactly --
                # The sliders follow θ and the browser snaps them to their 0.01 step; that
                # snapped echo must not round θ (0.777 used to come back as 0.78).
                type_raw_theta(page, explorer, {"00": "0.777", "12": "-0.123"})
                page.wait_for_timeout(1000)  # let any slider echo reach the kernel first
                server.wait_kernel_idle()
                exact = run_exact_cell(page)
                assert exact == [[0.777, 0.0, 0.0], [0.0, 0.5, -0.123]], exact
                assert explorer.locator(".stn-theta-00 input").input_value() == "0.777"
                explorer.screenshot(path=str(shots / "4b_raw_exact.png"))

                # -- bad raw θ text: the kernel's red message, and the field shows θ again --
                for bad in ("abc", "0.5x", "1e400"):
                    type_bad_raw_text(page, explorer, "01", bad)
                assert run_exact_cell(page) == exact, "bad text never changes θ"

                page.screenshot(path=str(shots / "5_page.png"))
                if os.environ.get("STN_COURSE_SAVE_SCREENSHOT") or os.environ.get("STN_COURSE_RECORD_PLOTS"):
                    # a picture for the README: the explorer on the digit, rotated
                    explorer.locator(".stn-reset").click()
                    explorer.locator(".stn-mode button", has_text="parameters").click()
                    label, src = label_text(explorer), view_src(explorer)
                    type_into_readout(page, angle, "30")
                    wait_for_redraw(page, explorer, label, src)
                    label, src = label_text(explorer), view_src(explorer)
                    type_into_readout(page, explorer.locator(".stn-scale-y"), "0.8")
                    wait_for_redraw(page, explorer, label, src)
                    explorer.screenshot(path=str(shots / "readme.png"))
                    shutil.copy(shots / "readme.png", REPO / "plots" / "theta_explorer_browser.png")
                page.close()
            finally:
                browser.close()
    finally:
        chromium.stop()
        server.stop()

    left = processes_mentioning(str(tmp_path))
    assert not left, f"processes left behind: {left}"
    assert chromium.proc.poll() is not None and server.proc.poll() is not None
