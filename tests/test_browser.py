"""A student's day in a real browser: JupyterLab as `make lab` starts it, driven by Chromium.

The test starts JupyterLab through jupyter/lab.py (the launcher `make lab` uses) on a throw-away
copy of notebook 01 and drives Debian's Chromium with Playwright:

1. open the student's copy, run the cells up to the saturation explorer, see the widget render;
2. move its input-scale slider and see the figure change;
3. press nbgrader's Validate button and read the dialog;
4. keep a screenshot of each step in test-artifacts/browser/.

Needs /usr/bin/chromium (`apt-get install chromium`) or CHROMIUM=/path/to/chromium; without it
the test is skipped with that reason. Never `playwright install`: it downloads a browser.
"""

import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LAUNCHER = REPO / "jupyter" / "lab.py"
ASSIGNMENT = "01_activations"
SOURCE_NOTEBOOK = REPO / "notebooks" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
EXPLORER_CALL = "saturation_explorer("
ARTIFACTS = REPO / "test-artifacts" / "browser"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
# The notebook runs in the page's kernel and again inside Validate, on 2 shared cores.
RUN_TIMEOUT_MS = 180_000
VALIDATE_TIMEOUT_MS = 300_000

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def playwright_api():
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no Chromium at {CHROMIUM}: `apt-get install chromium` (Debian) to run the "
                    "browser test, or set CHROMIUM to a Chromium binary")
    sync_api = pytest.importorskip("playwright.sync_api")
    return sync_api


# ---------------------------------------------------------------------------------------------
# The student's copy: what `nbgrader generate_assignment` hands out, then filled in.

def student_version(source):
    """The release version of a source notebook: nbgrader's own preprocessors, in its order."""
    from nbgrader.preprocessors import (CheckCellMetadata, ClearHiddenTests, ClearMarkScheme,
                                        ClearOutput, ClearSolutions, ComputeChecksums, LockCells)
    nb, resources = source, {}
    for step in (LockCells, ClearSolutions, ClearOutput, CheckCellMetadata, ComputeChecksums,
                 ClearHiddenTests, ClearMarkScheme, ComputeChecksums, CheckCellMetadata):
        nb, resources = step().preprocess(nb, resources)
    return nb


def filled_in(student, source):
    """The student's copy with every answer written in: the source's solutions (unmarked) in the
    code cells, its model answers in the written questions."""
    answers = {cell.metadata.nbgrader.grade_id: cell.source for cell in source.cells
               if cell.metadata.get("nbgrader", {}).get("solution")}
    for cell in student.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = "\n".join(line for line in answers[grade_id].splitlines()
                                    if line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION"))
    return student


@pytest.fixture(scope="module")
def student_copy(playwright_api, tmp_path_factory):
    """A fresh filled-in student copy of notebook 01 (Validate saves the file, so never reuse one)."""
    import nbformat

    source_path = SOURCE_NOTEBOOK
    folder = tmp_path_factory.mktemp("student") / ASSIGNMENT
    shutil.copytree(source_path.parent, folder, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    source = nbformat.read(source_path, as_version=4)
    student = filled_in(student_version(nbformat.read(source_path, as_version=4)), source)
    notebook = folder / source_path.name
    nbformat.write(student, notebook)
    explorer = [i for i, cell in enumerate(student.cells)
                if cell.cell_type == "code" and EXPLORER_CALL in cell.source]
    assert explorer, f"no cell of {source_path.name} calls {EXPLORER_CALL}...)"
    return notebook, explorer[0]


# ---------------------------------------------------------------------------------------------
# JupyterLab, started the way `make lab` starts it.

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(student_copy, tmp_path_factory, playwright_api):
    notebook, _ = student_copy
    state = tmp_path_factory.mktemp("lab-state")
    port, token = free_port(), secrets.token_hex(16)
    env = dict(os.environ,
               JUPYTERLAB_SETTINGS_DIR=str(state / "user-settings"),  # throw-away settings
               JUPYTERLAB_WORKSPACES_DIR=str(state / "workspaces"),
               JUPYTER_RUNTIME_DIR=str(state / "runtime"))
    cmd = [sys.executable, str(LAUNCHER), f"--port={port}", f"--token={token}", "--no-browser",
           f"--notebook-dir={notebook.parent.parent}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # CI containers run as root; Jupyter refuses root without it
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = open(ARTIFACTS / "jupyterlab.log", "w")
    server = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, f"JupyterLab exited; see {log.name}"
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"JupyterLab did not answer within 120 s; see {log.name}")
                time.sleep(0.3)
        yield base, token
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


@pytest.fixture(scope="module")
def page(lab, playwright_api, tmp_path_factory):
    with playwright_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM,
            headless=True, args=CHROMIUM_ARGS, viewport={"width": 1400, "height": 1000})
        try:
            yield context.new_page()
        finally:
            context.close()


# ---------------------------------------------------------------------------------------------
# Driving the page.

def shot(page, name):
    path = ARTIFACTS / name
    page.screenshot(path=str(path))
    return path


def wait_for_idle_kernel(page, timeout=RUN_TIMEOUT_MS):
    """Both indicators must say idle: the toolbar's reads idle before a kernel is even attached,
    and a Run sent in that window is silently dropped."""
    page.wait_for_selector(".jp-NotebookPanel-toolbar .jp-Notebook-ExecutionIndicator"
                           "[data-status='idle']", timeout=timeout)
    page.wait_for_function(
        "() => /\\|\\s*Idle/.test(document.querySelector('#jp-main-statusbar').innerText)",
        timeout=timeout)


def menu(page, top, item):
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{top}$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{re.escape(item)}$")).click()


def figure(cell):
    """The explorer's figure: the image data the kernel sent (its data: URL), once it is painted."""
    img = cell.locator(".jp-OutputArea img").last
    img.page.wait_for_function("img => img.complete && img.naturalWidth > 0",
                               arg=img.element_handle(), timeout=60_000)
    return img.get_attribute("src")


def test_student_day_in_jupyterlab(lab, page, student_copy, playwright_api):
    base, token = lab
    notebook, explorer_index = student_copy
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()
    started = time.monotonic()
    try:
        page.goto(f"{base}/lab/tree/{ASSIGNMENT}/{notebook.name}?token={token}")
        page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=RUN_TIMEOUT_MS)
        wait_for_idle_kernel(page)
        assert page.locator(".jp-Dialog").count() == 0, "a dialog covers the notebook on opening"
        shot(page, "00_opened.png")

        # 1. Run every cell above the explorer, then the explorer itself.
        cells = page.locator(".jp-Notebook .jp-Cell")
        explorer = cells.nth(explorer_index)
        explorer.scroll_into_view_if_needed()
        explorer.locator(".jp-InputPrompt").click()
        menu(page, "Run", "Run All Above Selected Cell")
        wait_for_idle_kernel(page)
        explorer.locator(".jp-InputPrompt").click()
        menu(page, "Run", "Run Selected Cell and Do not Advance")
        page.wait_for_function(
            "el => /\\[\\d+\\]/.test(el.innerText)",
            arg=explorer.locator(".jp-InputPrompt").element_handle(), timeout=RUN_TIMEOUT_MS)
        wait_for_idle_kernel(page)
        # JupyterLab shows errors and warnings alike as stderr; only errors carry a traceback.
        errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']",
                              has_text="Traceback (most recent call last)")
        assert errors.count() == 0, f"a cell raised: {errors.first.inner_text()[:2000]}"

        slider = explorer.locator(".widget-slider", has=page.locator(".widget-label",
                                                                    has_text=re.compile("scale", re.I)))
        try:
            slider.first.wait_for(timeout=60_000)
            explorer.locator(".jp-OutputArea img").last.wait_for(timeout=60_000)
        except playwright_api.TimeoutError:
            shown = explorer.locator(".jp-Cell-outputWrapper").inner_text()
            raise AssertionError(f"the explorer shows no input-scale slider and figure; its output "
                                 f"reads: {shown[-1000:]!r}") from None
        shown = explorer.inner_text()
        assert "Loading widget" not in shown and "Error displaying widget" not in shown, shown
        explorer.evaluate("el => el.scrollIntoView({block: 'start'})")
        shot(page, "01_explorer_rendered.png")

        # 2. Drag the input-scale slider's handle and wait for the figure to be redrawn.
        before = figure(explorer)
        before_png = explorer.locator(".jp-OutputArea img").last.screenshot()
        readout = slider.first.locator(".widget-readout")
        value_before = readout.inner_text() if readout.count() else None
        handle = slider.first.locator(".noUi-handle")
        track = slider.first.locator(".noUi-base").bounding_box()
        box = handle.bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.down()
        page.mouse.move(track["x"] + 0.9 * track["width"], box["y"] + box["height"] / 2, steps=10)
        page.mouse.up()
        deadline = time.monotonic() + 60
        while figure(explorer) == before:
            assert time.monotonic() < deadline, "the figure did not change after moving the slider"
            time.sleep(0.5)
        wait_for_idle_kernel(page)
        assert figure(explorer) != before
        after_png = explorer.locator(".jp-OutputArea img").last.screenshot()
        assert after_png != before_png, "new image data, but the page shows the same picture"
        if value_before is not None:
            assert readout.inner_text() != value_before
        (ARTIFACTS / "02a_figure_before.png").write_bytes(before_png)
        (ARTIFACTS / "02b_figure_after.png").write_bytes(after_png)
        shot(page, "02_slider_moved.png")

        # 3. Validate (it saves the notebook, then nbgrader runs it in the server).
        page.locator("jp-button.validate-button").click()
        page.locator(".jp-Dialog").wait_for(timeout=VALIDATE_TIMEOUT_MS)
        message = page.locator(".jp-Dialog #validation-message")
        assert message.count() == 1, page.locator(".jp-Dialog").inner_text()
        text = message.inner_text()
        note = message.evaluate("el => getComputedStyle(el, '::after').content")
        shot(page, "03_validate_result.png")
        assert "Success! Your notebook passes all the tests." in text, text
        assert "Hidden checks run only when your notebook is graded" in note, note
        page.locator(".jp-Dialog .jp-mod-accept").click()
    except Exception:
        shot(page, "failure.png")
        raise
    finally:
        print(f"browser drive took {time.monotonic() - started:.1f} s")
