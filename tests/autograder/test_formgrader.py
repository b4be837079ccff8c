"""One pipeline: the formgrader's Autograde and Generate Feedback grade as `python -m autograder grade`.

* the course's server configuration (jupyter/) loads autograder.formgrader, which makes nbgrader's
  formgrader handlers build a CourseGraderAPI (fast);
* the grading options of the formgrader default to the command line's (fast);
* `make clean` never deletes a course; `make clean-course` refuses unless CONFIRM=yes (fast);
* end to end (slow): a hostile student of the toy course (tests/autograder/grading_fixture.py) is graded by
  the CLI in one copy of the course and through the formgrader's HTTP API, in a JupyterLab started
  by jupyter/lab.py, in another; the reports, grades.csv rows and the formgrader's score agree.
"""

import csv
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from feedback_text import visible_text  # noqa: E402
from grading_fixture import HIDDEN_LINES, write_fixture  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
LAUNCHER = REPO / "jupyter" / "lab.py"


# ---------------------------------------------------------------------------------------------
# The hook and its options

HOOK_PROBE = """
import sys
from jupyter_server.serverapp import ServerApp
app = ServerApp()
app.initialize(["--port=0", "--no-browser", "--ServerApp.root_dir=" + sys.argv[1]])
from nbgrader.server_extensions.formgrader import base
import autograder.formgrader as fg
print("EXTENSIONS", sorted(app.extension_manager.extensions))
print("API", base.NbGraderAPI.__module__ + "." + base.NbGraderAPI.__qualname__, fg.installed())
"""


def test_server_config_routes_the_formgrader_to_the_pipeline(tmp_path):
    """A Jupyter server started with the course configuration builds CourseGraderAPI per request."""
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(REPO / "jupyter"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"), AUTOGRADER_COURSE=str(tmp_path / "c"))
    run = subprocess.run([sys.executable, "-c", HOOK_PROBE, str(tmp_path)], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in run.stdout.splitlines() if " " in line)
    assert "'autograder.formgrader'" in lines["EXTENSIONS"], run.stdout
    assert "'nbgrader.server_extensions.formgrader'" in lines["EXTENSIONS"], run.stdout
    assert lines["API"] == "autograder.formgrader.CourseGraderAPI True", run.stdout


def test_only_the_formgraders_api_is_replaced():
    """The pipeline's own NbGraderAPI (worker, write_feedback) stays nbgrader's."""
    from nbgrader.apps.api import NbGraderAPI
    from nbgrader.server_extensions.formgrader import base

    import autograder.formgrader as fg

    before = base.NbGraderAPI
    try:
        fg.install()
        fg.install()  # idempotent
        assert base.NbGraderAPI is fg.CourseGraderAPI and fg.installed()
        assert NbGraderAPI.autograde is not fg.CourseGraderAPI.autograde
        assert NbGraderAPI.generate_feedback is not fg.CourseGraderAPI.generate_feedback
        import nbgrader.apps

        assert nbgrader.apps.NbGraderAPI is NbGraderAPI
    finally:
        base.NbGraderAPI = before


def test_grading_options_default_to_the_command_lines():
    from traitlets.config import Config

    from autograder.formgrader import CourseGrading
    from autograder.grading import GradingOptions

    assert CourseGrading().options() == GradingOptions()
    c = Config()
    c.CourseGrading.cell_timeout = 7
    c.CourseGrading.memory_mb = 1024
    options = CourseGrading(config=c).options()
    assert (options.cell_timeout, options.memory_mb) == (7, 1024)


# ---------------------------------------------------------------------------------------------
# make clean

def test_make_clean_never_deletes_a_course(tmp_path):
    if shutil.which("make") is None:
        pytest.skip("no `make` on this machine")
    shutil.copy(REPO / "Makefile", tmp_path / "Makefile")
    (tmp_path / "pyproject.toml").write_text("")
    course = tmp_path / "autograder" / "course"
    for path in (course / "gradebook.db", course / "submitted" / "s" / "a" / "a.ipynb",
                 course / "__pycache__" / "x.pyc", tmp_path / ".venv" / "bin" / "python",
                 tmp_path / "test-artifacts" / "x.png", tmp_path / ".pytest_cache" / "x",
                 tmp_path / "pkg" / "__pycache__" / "y.pyc"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")

    run = subprocess.run(["make", "clean"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert (course / "gradebook.db").exists() and (course / "submitted" / "s" / "a" / "a.ipynb").exists()
    assert (course / "__pycache__" / "x.pyc").exists()
    for gone in (".venv", "test-artifacts", ".pytest_cache", "pkg/__pycache__"):
        assert not (tmp_path / gone).exists(), gone

    refused = subprocess.run(["make", "clean-course"], cwd=tmp_path, capture_output=True, text=True,
                             timeout=60)
    assert refused.returncode != 0
    assert "CONFIRM=yes" in refused.stdout and (course / "gradebook.db").exists()
    refused = subprocess.run(["make", "clean-course", "CONFIRM=y"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and (course / "gradebook.db").exists()

    done = subprocess.run(["make", "clean-course", "CONFIRM=yes"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert not course.exists()


# ---------------------------------------------------------------------------------------------
# End to end: the formgrader's buttons against the CLI

STUDENT = "mallory"
ASSIGNMENT = "toy"


def hostile(source, release):
    """Solves square, gets double wrong, patches np.allclose in the solution cell and edits the
    visible test cell of double so that it always passes."""
    from autograder import classroom
    from autograder.restore import grade_id

    nb = classroom.correct(source, release)
    for cell in nb.cells:
        if grade_id(cell) == "double":
            cell.source = ("import numpy as np\nnp.allclose = lambda *a, **k: True\n"
                           "def double(x):\n    return 3 * np.asarray(x, dtype=float)\n")
        elif grade_id(cell) == "double-visible":
            cell.source = "assert True\nprint('double: visible check passed')"
    return nb


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _request(base, token, path, method="GET"):
    req = urllib.request.Request(f"{base}{path}", method=method, data=b"" if method == "POST" else None,
                                 headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(req, timeout=900) as response:
        return json.loads(response.read())


def _report(course_root):
    data = json.loads((course_root / "reports" / ASSIGNMENT / f"{STUDENT}.json").read_text())
    data.pop("seconds")
    data.pop("prestarted")  # how this run's worker started its kernel, not what it decided
    return data


def _csv_row(course_root):
    with open(course_root / "grades.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["student_id"] == STUDENT]
    assert len(rows) == 1, rows
    return rows[0]


@pytest.fixture(scope="module")
def toy_courses(tmp_path_factory):
    """One released toy course with the hostile student and an honest one, and a copy of it."""
    from autograder import classroom
    from autograder.course import Course

    folder = tmp_path_factory.mktemp("formgrader")
    fixture = write_fixture(folder)
    root = folder / "server-root"
    course = Course(root / "course", fixture["notebooks"])
    course.release([ASSIGNMENT])
    source, release = classroom.read_pair(course, ASSIGNMENT)
    classroom.hand_in(course, STUDENT, ASSIGNMENT, hostile(source, release))
    classroom.hand_in(course, "honest", ASSIGNMENT, classroom.correct(source, release))
    cli_root = folder / "cli-course"
    shutil.copytree(course.root, cli_root)
    return folder, fixture, course, cli_root


@pytest.mark.slow
def test_formgrader_autograde_and_feedback_are_the_clis(toy_courses):
    folder, fixture, course, cli_root = toy_courses
    options = ["--timeout", "10", "--memory-mb", "2048"]

    # 1. The command line, in a copy of the course.
    cli = subprocess.run(
        [sys.executable, "-m", "autograder", "--course", str(cli_root), "grade", ASSIGNMENT,
         "--workers", "1", "--exercises", fixture["exercise_modules"][0],
         "--pythonpath", fixture["pythonpath"][0], *options],
        capture_output=True, text=True, timeout=900, cwd=REPO)
    assert cli.returncode == 0, cli.stdout[-3000:] + cli.stderr[-3000:]

    # 2. The formgrader: JupyterLab as `make lab` starts it, on the other copy. The course's
    #    grading options live in nbgrader_config.py of the server's working folder (nbgrader reads
    #    it as the course's configuration), like the CLI options above.
    workdir = folder / "workdir"
    workdir.mkdir()
    (workdir / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        f"c.CourseGrading.exercise_modules = [{fixture['exercise_modules'][0]!r}]\n"
        f"c.CourseGrading.pythonpath = [{fixture['pythonpath'][0]!r}]\n"
        "c.CourseGrading.cell_timeout = 10\nc.CourseGrading.memory_mb = 2048\n")
    port, token = free_port(), secrets.token_hex(16)
    state = folder / "lab-state"
    env = dict(os.environ, JUPYTERLAB_SETTINGS_DIR=str(state / "user-settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(state / "workspaces"),
               JUPYTER_RUNTIME_DIR=str(state / "runtime"))
    cmd = [sys.executable, str(LAUNCHER), f"--port={port}", f"--token={token}", "--no-browser",
           f"--notebook-dir={course.root.parent}", f"--course={course.root}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    log_path = folder / "jupyterlab.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, log_path.read_text()[-3000:]
            try:
                _request(base, token, "/api/status")
                break
            except OSError:
                assert time.monotonic() < deadline, log_path.read_text()[-3000:]
                time.sleep(0.3)
        before = _request(base, token, f"/formgrader/api/submission/{ASSIGNMENT}/{STUDENT}")
        assert not before["autograded"], before

        graded = _request(base, token, f"/formgrader/api/submission/{ASSIGNMENT}/{STUDENT}/autograde",
                          "POST")
        assert graded["success"], graded
        assert f"{STUDENT}/{ASSIGNMENT}:" in graded["log"], graded
        shown = _request(base, token, f"/formgrader/api/submission/{ASSIGNMENT}/{STUDENT}")

        feedback_file = course.root / "feedback" / STUDENT / ASSIGNMENT / f"{ASSIGNMENT}.html"
        feedback_file.unlink()
        feedback = _request(
            base, token, f"/formgrader/api/assignment/{ASSIGNMENT}/{STUDENT}/generate_feedback", "POST")
        assert feedback["success"], feedback
        missing = _request(
            base, token, f"/formgrader/api/assignment/{ASSIGNMENT}/nobody/generate_feedback", "POST")
        assert not missing["success"] and "autograde first" in missing["error"], missing
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()

    # Same report, same gradebook row, same score in the formgrader.
    report, cli_report = _report(course.root), _report(cli_root)
    assert report == cli_report
    assert report["max_score"] > report["score"], "the hostile student gained from patching"
    row, cli_row = _csv_row(course.root), _csv_row(cli_root)
    assert row == cli_row
    assert shown["autograded"] and shown["score"] == pytest.approx(float(cli_row["raw_score"]))
    assert shown["score"] == pytest.approx(cli_report["score"])
    assert shown["max_score"] == pytest.approx(cli_report["max_score"])
    # Only the student asked for was graded.
    assert not (course.root / "reports" / ASSIGNMENT / "honest.json").exists()
    assert (cli_root / "reports" / ASSIGNMENT / "honest.json").exists()

    # Generate Feedback wrote the project's feedback: nbgrader's page without hidden tests, the
    # same text as the CLI's.
    text = visible_text(feedback_file)
    assert "could not be graded" not in text
    assert not [line for line in HIDDEN_LINES if line in text]
    cli_text = visible_text(cli_root / "feedback" / STUDENT / ASSIGNMENT / f"{ASSIGNMENT}.html")
    assert text == cli_text
