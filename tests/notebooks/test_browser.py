"""A student's day in a real browser: JupyterLab as `make lab` starts it, driven by Chromium.

The test starts JupyterLab through jupyter/lab.py (the launcher `make lab` uses) on a throw-away
copy of notebook 01 and drives Debian's Chromium with Playwright:

1. open the student's copy, run the cells up to the saturation explorer, see the widget render;
2. move its input-scale slider and see the figure change;
3. press nbgrader's Validate button and read the dialog;
4. keep a screenshot of each step in test-artifacts/browser/.

Then the instructor's side, in the same JupyterLab: a throw-away course (notebook 01 released, one
hostile submission handed in under submitted/ before the server starts) is opened with
`lab.py --course`; Nbgrader -> Formgrader -> the assignment's submissions -> Autograde on the
hostile student must show the score `python -m autograder grade` gives that student in a copy of
the same course, and Generate Feedback must write the project's feedback.

Needs /usr/bin/chromium (`apt-get install chromium`) or CHROMIUM=/path/to/chromium; without it
the test is skipped with that reason. Never `playwright install`: it downloads a browser.
"""

import csv
import json
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

REPO = Path(__file__).resolve().parents[2]
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
# Autograde runs the whole pipeline for one submission (default limit: 900 s).
AUTOGRADE_TIMEOUT_MS = 900_000
HOSTILE = "hostile"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def playwright_api():
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no Chromium at {CHROMIUM}: `apt-get install chromium` (Debian) to run the "
                    "browser test, or set CHROMIUM to a Chromium binary")
    import playwright.sync_api

    return playwright.sync_api


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


def hostile_submission(source, release):
    """Every answer right but sigmoid_forward, which is wrong (its backward is right); the same
    solution cell patches np.allclose, and the visible test cell under it is edited to always
    pass."""
    from autograder import classroom
    from autograder.restore import grade_id

    nb = classroom.correct(source, release)
    for cell in nb.cells:
        if grade_id(cell) == "sigmoid":
            cell.source = ("import numpy as np\nnp.allclose = lambda *a, **k: True\n\n"
                           "def sigmoid_forward(x):\n    out = 1.0 / (1.0 + np.exp(x))\n"
                           "    return out, out\n\n\n"
                           "def sigmoid_backward(dout, cache):\n    return dout * cache * (1 - cache)\n")
        elif grade_id(cell) == "sigmoid-visible":
            cell.source = "assert True\nprint('all visible checks passed')"
    return nb


@pytest.fixture(scope="module")
def courses(student_copy, tmp_path_factory):
    """The course the formgrader opens (inside the server's root folder) and a copy for the CLI,
    both with notebook 01 released and the hostile student handed in."""
    from autograder import classroom
    from autograder.course import Course

    notebook, _ = student_copy
    course = Course(notebook.parent.parent / "course")
    course.release([ASSIGNMENT])
    classroom.hand_in(course, HOSTILE, ASSIGNMENT, hostile_submission(*classroom.read_pair(course, ASSIGNMENT)))
    cli_course = tmp_path_factory.mktemp("cli") / "course"
    shutil.copytree(course.root, cli_course)
    return course.root, cli_course


# ---------------------------------------------------------------------------------------------
# JupyterLab, started the way `make lab` starts it.

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(student_copy, courses, tmp_path_factory, playwright_api):
    notebook, _ = student_copy
    course, _ = courses
    state = tmp_path_factory.mktemp("lab-state")
    port, token = free_port(), secrets.token_hex(16)
    env = dict(os.environ,
               JUPYTERLAB_SETTINGS_DIR=str(state / "user-settings"),  # throw-away settings
               JUPYTERLAB_WORKSPACES_DIR=str(state / "workspaces"),
               JUPYTER_RUNTIME_DIR=str(state / "runtime"))
    cmd = [sys.executable, str(LAUNCHER), f"--port={port}", f"--token={token}", "--no-browser",
           f"--notebook-dir={notebook.parent.parent}", f"--course={course}"]
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


# ---------------------------------------------------------------------------------------------
# The instructor: Autograde and Generate Feedback in the formgrader, against the CLI.

def cli_grade(course):
    """`python -m autograder grade` on the course; the hostile student's report and CSV row."""
    run = subprocess.run([sys.executable, "-m", "autograder", "--course", str(course), "grade",
                          ASSIGNMENT, "--workers", "1"],
                         capture_output=True, text=True, timeout=1200, cwd=REPO)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads((course / "reports" / ASSIGNMENT / f"{HOSTILE}.json").read_text())
    with open(course / "grades.csv", newline="") as f:
        row = [r for r in csv.DictReader(f) if r["student_id"] == HOSTILE]
    assert len(row) == 1, row
    return report, row[0], run.stdout


def modal_text(frame, timeout):
    modal = frame.locator(".modal.in, .modal.show").last
    modal.wait_for(timeout=timeout)
    text = modal.inner_text()
    modal.locator(".modal-footer button").click()
    modal.wait_for(state="detached", timeout=30_000)
    return text


def test_instructor_autogrades_a_hostile_submission_in_the_formgrader(lab, page, courses):
    base, token = lab
    course, cli_course = courses
    report, row, table = cli_grade(cli_course)
    started = time.monotonic()
    try:
        page.goto(f"{base}/lab?token={token}")
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile("^Nbgrader$")).wait_for(
            timeout=RUN_TIMEOUT_MS)
        menu(page, "Nbgrader", "Formgrader")
        frame = page.frame_locator("#formgrader iframe")
        assignment_row = frame.locator("tr", has=frame.locator("td.name", has_text=ASSIGNMENT))
        assignment_row.locator("td.num-submissions a").click(timeout=RUN_TIMEOUT_MS)
        student_row = frame.locator("tr", has=frame.locator("td.student-id", has_text=HOSTILE))
        student_row.locator("td.status", has_text="needs autograding").wait_for(timeout=RUN_TIMEOUT_MS)
        shot(page, "10_formgrader_submissions.png")

        # Autograde (the flash icon) on the hostile student only.
        student_row.locator("td.autograde a").click()
        text = modal_text(frame, AUTOGRADE_TIMEOUT_MS)
        assert "Successfully autograded" in text, text
        score_cell = student_row.locator("td.score")
        page.wait_for_function("el => /\\d/.test(el.innerText)", arg=score_cell.element_handle(),
                               timeout=60_000)
        shown = score_cell.inner_text().strip()
        shot(page, "11_formgrader_autograded.png")

        # Generate Feedback (the speech-bubble icon) on the same student.
        feedback_file = course / "feedback" / HOSTILE / ASSIGNMENT / f"{ASSIGNMENT}.html"
        feedback_file.unlink()
        student_row.locator("td.generate-feedback a").click()
        feedback_text = modal_text(frame, RUN_TIMEOUT_MS)
        assert "Successfully generated feedback" in feedback_text, feedback_text
        shot(page, "12_formgrader_feedback.png")
    except Exception:
        shot(page, "failure_formgrader.png")
        raise
    finally:
        print(f"formgrader drive took {time.monotonic() - started:.1f} s")

    # The formgrader shows what the CLI gives: "score / max", rounded to 2 places by nbgrader.
    def fmt(x):
        return f"{round(float(x), 2):g}"

    assert shown == f"{fmt(row['raw_score'])} / {fmt(row['max_score'])}", (shown, row, table)
    assert float(row["raw_score"]) == pytest.approx(report["score"])
    assert report["score"] < report["max_score"], "patching np.allclose and the visible test paid"
    graded = json.loads((course / "reports" / ASSIGNMENT / f"{HOSTILE}.json").read_text())
    for key in ("score", "max_score", "manual_pending", "status", "reason", "zeroed", "losses"):
        assert graded[key] == report[key], key
    assert feedback_file.is_file() and "could not be graded" not in feedback_file.read_text()
