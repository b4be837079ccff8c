"""The course on a real JupyterHub, driven through Chromium: the whole round trip of issue 15.

hub/setup.py (what `make hub` runs) makes an instructor and two students as real accounts, with a
state folder, exchange and course of the test's own; hub/run.py starts JupyterHub on 127.0.0.1.

1. The instructor releases 01_activations (notebook and library edition) into the exchange.
2. Student 1 logs in, fetches it in the Assignments tab, writes the answers into the notebook
   through the hub (the contents API of their own server) and submits.
3. The deadline passes (course.toml gets it now); student 2 does the same, late.
4. Student 1 cannot read student 2's submission: not through the hub (their server and contents
   API), not in the exchange, not in student 2's home.
5. The instructor collects, grades with the project's pipeline and releases feedback
   (`python -m autograder collect / grade / feedback --release`, run as the instructor).
   Student 2's late penalty is in grades.csv, the exports and the feedback.
6. Student 1 fetches the feedback in the Assignments tab and opens it: its score is there.

Screenshots in test-artifacts/hub/. Needs root (accounts), Chromium (/usr/bin/chromium), npm's
configurable-http-proxy (setup installs it) and bubblewrap; `.ci/run` provides all of them. Outside
CI a missing one skips the test with the reason; in CI (CI=true) it fails instead.
"""

import csv
import datetime as dt
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "hub"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
ASSIGNMENT = "01_activations"
INSTRUCTOR, STUDENT1, STUDENT2 = "hubprof", "hubstu1", "hubstu2"
COURSE_ID = "cs231n-hubtest"
STATE = Path("/srv/cs231n-hub-test")
SPAWN_MS = 180_000
UI_MS = 120_000

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def unavailable(reason):
    """Skip where a developer lacks something; in CI the hub test must run, so fail."""
    if os.environ.get("CI"):
        pytest.fail(f"the hub test cannot run in CI: {reason}")
    pytest.skip(reason)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def as_user(user, *argv, check=True, timeout=1200, env=None):
    """A command run as one of the hub's accounts (what that user could do in a terminal)."""
    run = subprocess.run(["runuser", "-u", user, "--", "env", f"HOME=/home/{user}",
                          *(f"{k}={v}" for k, v in (env or {}).items()), *argv],
                         capture_output=True, text=True, timeout=timeout, cwd="/")
    if check:
        assert run.returncode == 0, f"{argv} as {user}:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    return run


@pytest.fixture(scope="module")
def playwright_api():
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        unavailable("the hub test creates Unix accounts: run it as root (CI does)")
    if not Path(CHROMIUM).is_file():
        unavailable(f"no Chromium at {CHROMIUM}: apt-get install chromium")
    if shutil.which("bwrap") is None:
        unavailable("no bwrap: apt-get install bubblewrap")
    if shutil.which("npm") is None and shutil.which("configurable-http-proxy") is None:
        unavailable("neither npm nor configurable-http-proxy: apt-get install npm")
    from playwright import sync_api

    return sync_api


@pytest.fixture(scope="module")
def hub(playwright_api):
    """A fresh hub: setup (accounts, venv, configs), a fresh course and exchange, JupyterHub."""
    sys.path.insert(0, str(REPO / "hub"))
    import setup as hub_setup

    for user in (INSTRUCTOR, STUDENT1, STUDENT2):   # last run's homes: a fresh course and work
        home = Path("/home") / user
        if home.exists():
            shutil.rmtree(home)
    if STATE.exists():
        shutil.rmtree(STATE)
    started = time.monotonic()
    settings = hub_setup.setup(hub_setup.DEFAULT_PREFIX, STATE, INSTRUCTOR, [STUDENT1, STUDENT2],
                               COURSE_ID)
    setup_seconds = time.monotonic() - started
    venv_python = str(Path(settings["venv"]) / "bin" / "python")
    course = Path(settings["course"])
    accounts = json.loads((STATE / "accounts.json").read_text())

    # 1. The instructor releases the assignment: the course folder and the exchange.
    as_user(INSTRUCTOR, venv_python, "-m", "autograder", "--course", str(course), "release",
            ASSIGNMENT)
    outbound = STATE / "exchange" / COURSE_ID / "outbound" / ASSIGNMENT
    assert (outbound / f"{ASSIGNMENT}.ipynb").is_file()
    assert (outbound / "library" / "cs231n_lib" / "layers.py").is_file(), "no edition released"

    port = free_port()
    env = dict(os.environ, CS231N_HUB_API_PORT=str(free_port()),
               CS231N_HUB_PROXY_PORT=str(free_port()))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()
    log = open(ARTIFACTS / "jupyterhub.log", "w")
    started = time.monotonic()
    server = subprocess.Popen(
        [sys.executable, str(REPO / "hub" / "run.py"), f"--port={port}", f"--state={STATE}",
         f"--instructor={INSTRUCTOR}", f"--students={STUDENT1},{STUDENT2}",
         f"--course-id={COURSE_ID}"], env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, (ARTIFACTS / "jupyterhub.log").read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"{base}/hub/api/", timeout=5):
                    break
            except OSError:
                assert time.monotonic() < deadline, "the hub did not answer within 180 s"
                time.sleep(0.5)
        print(f"setup {setup_seconds:.1f} s; hub answering {time.monotonic() - started:.1f} s after start")
        yield {"base": base, "course": course, "python": venv_python, "accounts": accounts,
               "settings": settings}
    finally:
        os.killpg(server.pid, 15)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, 9)
            server.wait()
        log.close()


@pytest.fixture(scope="module")
def browser(playwright_api):
    with playwright_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


# ---------------------------------------------------------------------------------------------
# Driving the hub as a student

def shot(page, name):
    page.screenshot(path=str(ARTIFACTS / name))


def log_in(browser, hub, user):
    """A new browser session, logged in; returns the page on the user's JupyterLab."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(f"{hub['base']}/hub/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", hub["accounts"][user])
    page.click("input[type=submit], button[type=submit]")
    page.wait_for_url(re.compile(rf".*/user/{user}/lab.*"), timeout=SPAWN_MS)
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile("^Nbgrader$")).wait_for(timeout=UI_MS)
    return page


def open_assignments(page):
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile("^Nbgrader$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile("^Assignment List$")).click()
    page.locator("#released_assignments_list").wait_for(timeout=UI_MS)
    page.wait_for_selector("#released_assignments_list_loading", state="hidden", timeout=UI_MS)


def row(page, listing, text=ASSIGNMENT):
    return page.locator(f"#{listing} .list_item:not(.nested_list_item)", has_text=text).first


def contents_api(page, user, path, method="GET", body=None):
    """A request to a server's contents API with the page's session (what the page's code does)."""
    return page.evaluate(
        """async ([url, method, body]) => {
            const xsrf = (document.cookie.match(/_xsrf=([^;]+)/) || [])[1] || "";
            const r = await fetch(url, {method, headers: {"Content-Type": "application/json",
                                                          "X-XSRFToken": decodeURIComponent(xsrf)},
                                        body: body === null ? undefined : body,
                                        redirect: "manual"});
            return {status: r.status, text: r.type === "opaqueredirect" ? "" : await r.text()};
        }""", [f"/user/{user}/api/contents/{path}", method, body])


def filled_notebook(course):
    """Every answer of the released notebook written in (the source's solutions)."""
    import nbformat

    from autograder import classroom
    from autograder.course import Course

    source, release = classroom.read_pair(Course(course), ASSIGNMENT)
    return nbformat.writes(classroom.correct(source, release))


def fetch_work_submit(browser, hub, user, shot_prefix):
    page = log_in(browser, hub, user)
    open_assignments(page)
    released = row(page, "released_assignments_list")
    released.wait_for(timeout=UI_MS)
    shot(page, f"{shot_prefix}_1_released.png")
    released.locator("button", has_text="Fetch").click()
    fetched = row(page, "fetched_assignments_list")
    fetched.wait_for(timeout=UI_MS)
    # The fetched folder holds the notebook and the library edition the kernels import.
    listing = contents_api(page, user, ASSIGNMENT)
    assert listing["status"] == 200, listing
    assert {"01_activations.ipynb", "library"} <= {c["name"] for c in json.loads(listing["text"])["content"]}
    # The student writes the answers into the notebook (through their server's contents API).
    model = json.dumps({"type": "notebook", "format": "json",
                        "content": json.loads(filled_notebook(hub["course"]))})
    saved = contents_api(page, user, f"{ASSIGNMENT}/{ASSIGNMENT}.ipynb", "PUT", model)
    assert saved["status"] == 200, saved
    fetched.locator("button", has_text="Submit").click()
    submitted = row(page, "submitted_assignments_list")
    submitted.wait_for(timeout=UI_MS)
    assert "feedback" not in submitted.inner_text().replace("Fetch Feedback", "")  # none yet
    shot(page, f"{shot_prefix}_2_submitted.png")
    return page


# ---------------------------------------------------------------------------------------------

def test_round_trip_on_the_hub(hub, browser):
    course, python = hub["course"], hub["python"]
    inbound = STATE / "exchange" / COURSE_ID / "inbound"
    try:
        # 2. Student 1, on time.
        page1 = fetch_work_submit(browser, hub, STUDENT1, "s1")
        stamps = [p.name for p in inbound.iterdir() if p.name.startswith(f"{STUDENT1}+")]
        assert len(stamps) == 1, stamps
        # 3. The deadline: now. Student 2 submits after it.
        due = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) + dt.timedelta(seconds=1)
        settings = (course / "course.toml").read_text()
        settings = settings.replace("[deadlines]\n", f'[deadlines]\n"{ASSIGNMENT}" = "{due.isoformat()}"\n')
        (course / "course.toml").write_text(settings)
        time.sleep(2)
        page2 = fetch_work_submit(browser, hub, STUDENT2, "s2")

        # 4. Student 1 cannot read student 2's work.
        other = contents_api(page1, STUDENT2, f"{ASSIGNMENT}/{ASSIGNMENT}.ipynb")
        assert other["status"] in (0, 302, 403, 404), other        # not student 1's server
        assert "cells" not in other["text"]
        escape = contents_api(page1, STUDENT1, f"..%2F{STUDENT2}%2F{ASSIGNMENT}")
        assert escape["status"] in (400, 403, 404), escape
        assert as_user(STUDENT1, "ls", str(inbound), check=False).returncode != 0
        assert as_user(STUDENT1, "cat", f"/home/{STUDENT2}/{ASSIGNMENT}/{ASSIGNMENT}.ipynb",
                       check=False).returncode != 0
        assert as_user(STUDENT1, "ls", str(course), check=False).returncode != 0
        assert as_user(STUDENT1, "ls", hub["settings"]["course_src"], check=False).returncode != 0
        page2.context.close()

        # 5. The instructor: collect, grade, release feedback.
        collected = as_user(INSTRUCTOR, python, "-m", "autograder", "--course", str(course),
                            "collect", ASSIGNMENT)
        assert f"{STUDENT1}" in collected.stdout and f"{STUDENT2}" in collected.stdout, collected.stdout
        graded = as_user(INSTRUCTOR, python, "-m", "autograder", "--course", str(course), "grade",
                         ASSIGNMENT, "--workers", "1")
        print(graded.stdout)
        released = as_user(INSTRUCTOR, python, "-m", "autograder", "--course", str(course),
                           "feedback", ASSIGNMENT, "--release")
        assert "released" in released.stdout, released.stdout

        with open(course / "grades.csv", newline="") as f:
            rows = {r["student_id"]: r for r in csv.DictReader(f)}
        first, second = rows[STUDENT1], rows[STUDENT2]
        raw = float(first["raw_score"])
        assert raw > 0 and float(first["late_submission_penalty"] or 0) == 0
        assert float(first["score"]) == raw
        assert float(second["raw_score"]) == pytest.approx(raw)
        assert float(second["late_submission_penalty"]) == pytest.approx(0.1 * raw)   # 10 %: day 1
        assert float(second["score"]) == pytest.approx(0.9 * raw)
        with open(course / "exports" / "canvas.csv", newline="") as f:
            canvas = {r[3]: r for r in list(csv.reader(f))[2:]}
        assert float(canvas[STUDENT2][5]) == pytest.approx(0.9 * raw)
        late_feedback = (course / "feedback" / STUDENT2 / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text()
        assert "Late submission penalty" in late_feedback
        assert re.search(r"Due [0-9-]+ [0-9:]+ UTC; submitted [0-9.]+ (s|min) late: late penalty "
                         r"-[0-9.]+ point", late_feedback), late_feedback[:3000]

        # The instructor's formgrader (their own JupyterLab on the hub) shows the same grades.
        prof = log_in(browser, hub, INSTRUCTOR)
        prof.locator(".lm-MenuBar-itemLabel", has_text=re.compile("^Nbgrader$")).click()
        prof.locator(".lm-Menu-itemLabel", has_text=re.compile("^Formgrader$")).click()
        grader = prof.frame_locator("#formgrader iframe")
        grader.locator("tr", has=grader.locator("td.name", has_text=ASSIGNMENT)).locator(
            "td.num-submissions a").click(timeout=UI_MS)
        for student, row_ in ((STUDENT1, first), (STUDENT2, second)):
            cell = grader.locator("tr", has=grader.locator("td.student-id", has_text=student)).locator(
                "td.score")
            cell.wait_for(timeout=UI_MS)
            assert cell.inner_text().strip().startswith(f"{float(row_['raw_score']):g} /"), student
        shot(prof, "instructor_formgrader.png")
        prof.context.close()

        # 6. Student 1 fetches the feedback and opens it.
        page1.reload()
        page1.locator(".lm-MenuBar-itemLabel", has_text=re.compile("^Nbgrader$")).wait_for(timeout=UI_MS)
        open_assignments(page1)
        submitted = row(page1, "submitted_assignments_list")
        submitted.wait_for(timeout=UI_MS)
        submitted.locator("text=feedback available to fetch").wait_for(timeout=UI_MS)
        shot(page1, "s1_3_feedback_available.png")
        submitted.locator("button", has_text="Fetch Feedback").click()
        view = submitted.locator("a", has_text="view feedback")
        view.wait_for(timeout=UI_MS)
        shot(page1, "s1_4_feedback_fetched.png")
        view.click()          # opens the file browser on the feedback folder
        page1.locator(".jp-DirListing-item", has_text=f"{ASSIGNMENT}.html").dblclick()
        frame = page1.frame_locator(".jp-HTMLViewer iframe")
        score = frame.locator("text=/Score: [0-9.]+ \\/ [0-9.]+/").first
        score.wait_for(timeout=UI_MS)
        shown = score.inner_text()
        frame.locator("text=submitted on time").wait_for(timeout=UI_MS)   # the deadline note
        shot(page1, "s1_5_feedback_open.png")
        m = re.search(r"Score: ([0-9.]+) / ([0-9.]+)", shown)
        assert m and float(m[1]) == pytest.approx(raw), shown
        assert float(m[2]) == pytest.approx(float(first["max_score"])), shown
    except Exception:
        for p in browser.contexts:
            for pg in p.pages:
                pg.screenshot(path=str(ARTIFACTS / f"failure_{id(pg)}.png"))
        raise
