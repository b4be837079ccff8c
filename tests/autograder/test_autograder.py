"""The grading pipeline end to end on the toy course: one student per way a submission can break.

The class is built from tests/autograder/grading_fixture.py's notebook (two exercises, ``double`` and
``square``; visible 1 point + hidden 2 points each, and a 1-point written answer) and graded once
per module through the command line, two submissions at a time. The failure modes break
``square``, the last exercise, so a student who should lose exactly that exercise scores 3 of the
6 automatic points.
"""

import csv
import html
import json
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path

import nbformat
import pytest

from feedback_text import visible_text
from grading_fixture import HIDDEN_LINES, write_fixture

from autograder import classroom
from autograder.course import Course
from autograder.checks import exercises_for

pytestmark = pytest.mark.slow

AUTO_MAX = 6.0   # 2 exercises x (1 visible + 2 hidden)
MAX = 7.0        # + the written answer, graded by hand
HALF = 3.0       # everything but square

# student -> (expected automatic score, words the reason must contain)
EXPECTED = {
    "correct": (AUTO_MAX, ""),
    "blank": (0.0, ""),
    "deleted_test_cell": (AUTO_MAX, "put back: square-visible, square-hidden"),
    "duplicated_cells": (AUTO_MAX, "duplicated cells were merged: square, square-visible"),
    "reordered_cells": (AUTO_MAX, "original order was restored"),
    "retyped_test_cell": (AUTO_MAX, "read-only cells were put back as released: square-visible"),
    "lost_metadata": (AUTO_MAX, "found by the name it defines"),
    "patched_allclose": (HALF, "square: visible checks failed outside your kernel"),
    "patched_library": (HALF, "square: visible checks failed outside your kernel"),
    "patched_checker": (HALF, "square: visible checks failed outside your kernel"),
    "calls_library": (HALF, "your square calls toylib.square: write it yourself; 0 points"),
    "stderr_warning": (AUTO_MAX, ""),
    "infinite_loop": (HALF, "your square cell did not finish within 4 s"),
    "sigint_ignoring_loop": (HALF, "ignored the interrupt: the kernel was stopped"),
    "memory_bomb": (HALF, "your square cell ran out of memory"),
    "network_attempt": (AUTO_MAX, ""),
    "enormous_output": (AUTO_MAX, ""),
    "corrupt_json": (0.0, "the notebook file is corrupt: invalid JSON"),
    "not_a_notebook": (0.0, "the file is not a notebook"),
    "tripler": (HALF, "double: visible checks failed outside your kernel"),
}


def tripler(source, release):
    """Correct, except that double triples its input: a catalogued mistake."""
    nb = classroom.correct(source, release)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "double")
    cell.source = "def double(x):\n    return 3 * np.asarray(x, dtype=float)"
    return nb


class Listener:
    """A TCP server on the host's loopback: a grading kernel must not be able to reach it."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.running = True
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self):
        self.running = False
        self.thread.join()
        self.sock.close()


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("toyclass")
    fixture = write_fixture(folder)
    course = Course(folder / "course", fixture["notebooks"])
    course.release(["toy"])
    source, release = classroom.read_pair(course, "toy")
    sys.path.insert(0, fixture["pythonpath"][0])  # the exercise module imports the toy library
    try:
        exercises = exercises_for("toy", fixture["exercise_modules"])
    finally:
        sys.path.remove(fixture["pythonpath"][0])
    listener = Listener()
    try:
        for student in EXPECTED:
            if student in ("correct", "blank"):
                nb = getattr(classroom, student)(source, release)
            elif student == "tripler":
                nb = tripler(source, release)
            elif student == "network_attempt":
                nb, _ = classroom.network_attempt(source, release, exercises, port=listener.port)
            else:
                nb, _ = classroom.FAILURE_MODES[student](source, release, exercises)
            classroom.hand_in(course, student, "toy", nb)
        classroom.hand_in(course, "partly_wrong", "toy", classroom.partly_wrong(source, release))
        command = [sys.executable, "-m", "autograder", "--course", str(course.root),
                   "--notebooks", str(fixture["notebooks"]), "grade", "--workers", "2",
                   "--timeout", "4", "--memory-mb", "2048",
                   "--exercises", fixture["exercise_modules"][0],
                   "--pythonpath", fixture["pythonpath"][0]]
        run = subprocess.run(command, capture_output=True, text=True, timeout=1200)
    finally:
        listener.close()
    reports = {p.stem: json.loads(p.read_text())
               for p in (course.root / "reports" / "toy").glob("*.json")}
    return course, run, reports, listener


def test_grade_exits_zero_and_prints_the_table(graded):
    course, run, reports, _ = graded
    assert run.returncode == 0, run.stderr[-3000:]
    for student in [*EXPECTED, "partly_wrong"]:
        assert re.search(rf"^{student}\s+toy\s", run.stdout, re.M), run.stdout


@pytest.mark.parametrize("student", list(EXPECTED))
def test_each_student_gets_the_expected_score_and_reason(graded, student):
    _, _, reports, _ = graded
    report = reports[student]
    score, words = EXPECTED[student]
    assert report["score"] == pytest.approx(score), report
    assert report["max_score"] == MAX
    assert words in report["reason"], report["reason"]
    assert report["status"] == ("failed" if score == 0 and words else "graded")


def test_partly_wrong_is_strictly_between(graded):
    report = graded[2]["partly_wrong"]
    assert 0 < report["score"] < AUTO_MAX
    assert report["status"] == "graded"


def test_written_answers_wait_for_a_human_unless_blank(graded):
    reports = graded[2]
    assert reports["correct"]["manual_pending"] == 1.0
    assert reports["blank"]["manual_pending"] == 0.0  # unchanged answer: nbgrader scores it 0


def test_everyone_is_in_grades_csv_as_nbgrader_exports_it(graded):
    course, _, reports, _ = graded
    with open(course.root / "grades.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0])[:4] == ["assignment", "duedate", "timestamp", "student_id"]
    assert {"score", "max_score", "raw_score"} <= set(rows[0])
    by_student = {r["student_id"]: r for r in rows}
    assert set(by_student) == set(reports)
    for student, report in reports.items():
        assert float(by_student[student]["score"]) == pytest.approx(report["score"])
        assert float(by_student[student]["max_score"]) == MAX


def test_no_hidden_test_line_reaches_any_feedback(graded):
    course = graded[0]
    files = sorted((course.root / "feedback").rglob("*.html"))
    assert len(files) == len(graded[2])
    for path in files:
        raw, text = path.read_text(), visible_text(path)
        for line in HIDDEN_LINES:
            assert line not in text and html.escape(line) not in raw, (path, line)


def test_the_feedback_names_the_library_call_and_shows_the_partial_credit(graded):
    course = graded[0]
    text = visible_text(course.root / "feedback" / "calls_library" / "toy" / "toy.html")
    assert "your square calls toylib.square: write it yourself" in text
    text = visible_text(course.root / "feedback" / "correct" / "toy" / "toy.html")
    assert "hidden checks: 3 of 3 passed" in text


def _cells(course, student):
    nb = nbformat.read(course.root / "autograded" / student / "toy" / "toy.ipynb", as_version=4)
    return {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in nb.cells}


def test_a_patched_allclose_passes_in_the_kernel_and_fails_outside(graded):
    cell = _cells(graded[0], "patched_allclose")["square-visible"]
    assert "square: visible check passed" in cell.outputs[0].text  # the kernel was fooled
    assert [o.ename for o in cell.outputs if o.output_type == "error"] == ["OutsideCheckFailed"]


def test_a_patched_checker_passes_in_the_kernel_and_scores_nothing(graded):
    cell = _cells(graded[0], "patched_checker")["square-hidden"]
    text = cell.outputs[0].text
    assert "raised in your kernel" not in text  # the kernel's own check was fooled
    assert "hidden checks: 0 of 3 passed" in text


def test_a_warning_on_stderr_does_not_cost_points(graded):
    cell = _cells(graded[0], "stderr_warning")["square-visible"]
    assert any("only a warning" in o.get("text", "") for o in cell.outputs)


def test_enormous_output_is_truncated(graded):
    cell = _cells(graded[0], "enormous_output")["square"]
    text = "".join(o.text for o in cell.outputs if o.output_type == "stream")
    assert "Output truncated" in text
    assert len(text.splitlines()) <= 1001


def test_the_network_is_out_of_reach(graded):
    course, _, _, listener = graded
    cell = _cells(course, "network_attempt")["square"]
    text = "".join(o.get("text", "") for o in cell.outputs)
    assert "network: blocked" in text
    assert listener.connections == 0


def test_a_hint_names_a_catalogued_mistake(graded):
    """double written as 3 * x: the catalogue's hint, in the report and in the feedback."""
    course, _, reports, _ = graded
    assert reports["tripler"]["hints"] == {"double": ["your double triples x"]}
    assert "hint: your double triples x" in reports["tripler"]["reason"]
    assert all(not reports[s]["hints"] for s in ("correct", "stderr_warning", "lost_metadata"))
    text = visible_text(course.root / "feedback" / "tripler" / "toy" / "toy.html")
    assert "hint: your double triples x" in text


def test_grade_fails_loudly_when_grading_itself_cannot_run(tmp_path):
    run = subprocess.run([sys.executable, "-m", "autograder", "--course", str(tmp_path), "grade"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode != 0
    assert "nothing released" in run.stderr


def _student_copy(course, student, tmp_path, pythonpath):
    import os

    folder = tmp_path / student
    folder.mkdir()
    path = folder / "toy.ipynb"
    path.write_text((course.root / "submitted" / student / "toy" / "toy.ipynb").read_text())
    env = dict(os.environ, PYTHONPATH=pythonpath + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return path, env


def test_validate_says_hidden_checks_run_only_at_grading(graded, tmp_path):
    course = graded[0]
    lib = str(course.root.parent / "lib")
    path, env = _student_copy(course, "correct", tmp_path, lib)
    run = subprocess.run([sys.executable, "-m", "autograder", "validate", str(path)],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "All visible checks passed." in run.stdout
    assert "not full marks: hidden checks (4 points) run only when your notebook is graded" in run.stdout
    path, env = _student_copy(course, "blank", tmp_path, lib)
    run = subprocess.run([sys.executable, "-m", "autograder", "validate", str(path)],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 1, run.stdout + run.stderr
    # two visible test cells and the unanswered written question
    assert "3 cell(s) FAILED (visible checks, or written answers left empty)" in run.stdout, run.stdout
    assert "NotImplementedError" in run.stdout, run.stdout


def test_nbgrader_validate_with_the_course_config_does_not_claim_full_marks(graded, tmp_path):
    """`nbgrader validate` itself, started where autograder/nbgrader_config.py is found."""
    from autograder.course import PACKAGE_DIR

    course = graded[0]
    path, env = _student_copy(course, "correct", tmp_path, str(course.root.parent / "lib"))
    nbgrader = Path(sys.executable).with_name("nbgrader")
    run = subprocess.run([str(nbgrader), "validate", str(path)], capture_output=True, text=True,
                         env=env, cwd=PACKAGE_DIR, timeout=300)
    assert "All visible checks passed. That is not full marks" in run.stdout, run.stdout + run.stderr
    assert "passes all the tests" not in run.stdout


def test_a_submission_past_its_wall_clock_limit_scores_zero_and_leaves_no_process(graded):
    """Killed at the limit -- kernel included -- and recorded as 0 with the reason."""
    import os

    from autograder.grading import GradingOptions, SubmissionJob, grade_submission

    course = graded[0]
    lib = str(course.root.parent / "lib")
    options = GradingOptions(submission_timeout=2, exercise_modules=(str(Path(lib) / "toy_exercises.py"),),
                             pythonpath=(lib,))
    student = "overtime_student"  # a name no other grading on this machine uses
    source, release = classroom.read_pair(course, "toy")
    # It sleeps well past the limit, so the limit fires however fast this machine grades.
    notebook = classroom.correct(source, release)
    first = next(c for c in notebook.cells if c.cell_type == "code"
                 and c.metadata.get("nbgrader", {}).get("solution"))
    first.source = "import time\ntime.sleep(120)\n" + first.source
    classroom.hand_in(course, student, "toy", notebook)
    result = grade_submission(SubmissionJob(str(course.root), student, "toy", options))
    assert (result.status, result.score) == ("failed", 0.0)
    assert "grading took longer than 2 s" in result.reason
    import time

    def still_running():
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:  # the worker names the scratch course; the kernel and the checks run inside it
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
                cwd = os.readlink(f"/proc/{pid}/cwd")
            except (OSError, IndexError):
                continue
            # A zombie (Z) has already exited: only its parent's wait() is outstanding.
            if state not in "ZX" and f"grade-{student}-" in cmdline + cwd:
                found.append((pid, state, cmdline, cwd))
        return found

    # SIGKILL is delivered at once but a process takes a moment to die: allow a few seconds.
    deadline = time.monotonic() + 10
    while (mine := still_running()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert mine == []
