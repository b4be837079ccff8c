"""The grading pipeline on the course's real notebooks.

Every notebook under notebooks/ that has exercises in the catalogue is released and graded for a
correct, a blank and a partly wrong student (built from the source notebook); the failure modes
that depend on a notebook's content run on the fastest notebook only (the toy course of
tests/autograder/test_autograder.py covers every mode). One grading run per module, two at a time.
"""

import html

import nbformat
import pytest

from autograder import classroom
from autograder.course import Course
from autograder.exercises import catalogue
from autograder.grading import GradingOptions, grade_class
from autograder.parallel import PoolExecutor
from autograder.preprocessors import HIDDEN_BEGIN, HIDDEN_END

from feedback_text import visible_text

pytestmark = pytest.mark.slow

NOTEBOOKS = [a for a in Course().available_assignments() if a in catalogue()]
FASTEST = next((a for a in ("01_activations", "03_initialisation") if a in NOTEBOOKS),
               NOTEBOOKS[0] if NOTEBOOKS else None)
# student -> does the student keep every automatic point?
MODES = {"deleted_test_cell": True, "lost_metadata": True, "stderr_warning": True,
         "patched_allclose": False, "calls_library": False}
BUILDERS = {"correct": classroom.correct, "blank": classroom.blank,
            "partly_wrong": classroom.partly_wrong}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    if not NOTEBOOKS:
        pytest.skip("no notebook with exercises in notebooks/ yet")
    course = Course(tmp_path_factory.mktemp("course"))
    course.release(NOTEBOOKS)
    targets = {}
    for assignment in NOTEBOOKS:
        source, release = classroom.read_pair(course, assignment)
        for student, build in BUILDERS.items():
            classroom.hand_in(course, student, assignment, build(source, release))
        if assignment == FASTEST:
            exercises = list(catalogue()[assignment].values())
            for mode in MODES:
                nb, targets[mode] = classroom.FAILURE_MODES[mode](source, release, exercises)
                classroom.hand_in(course, mode, assignment, nb)
    with PoolExecutor(2) as executor:
        results = grade_class(course, NOTEBOOKS, GradingOptions(cell_timeout=60), executor)
    return course, {(r.student, r.assignment): r for r in results}, targets


def auto_max(result):
    return result.max_score - result.manual_pending


@pytest.mark.parametrize("assignment", NOTEBOOKS)
def test_correct_student_gets_every_automatic_point(graded, assignment):
    r = graded[1][("correct", assignment)]
    assert r.status == "graded", r.reason
    assert r.score == pytest.approx(auto_max(r)) and r.score > 0, (r.reason, r.hints)
    assert r.losses == {} and r.hints == {}


@pytest.mark.parametrize("assignment", NOTEBOOKS)
def test_blank_student_gets_nothing(graded, assignment):
    r = graded[1][("blank", assignment)]
    assert (r.status, r.score, r.manual_pending) == ("graded", 0.0, 0.0), r.reason


@pytest.mark.parametrize("assignment", NOTEBOOKS)
def test_partly_wrong_student_is_strictly_between(graded, assignment):
    r = graded[1][("partly_wrong", assignment)]
    full = graded[1][("correct", assignment)].score
    assert 0 < r.score < full, r.reason


@pytest.mark.parametrize("mode", list(MODES))
def test_failure_modes_on_the_fastest_notebook(graded, mode):
    _, results, targets = graded
    r = results[(mode, FASTEST)]
    full = results[("correct", FASTEST)].score
    assert r.status == "graded", r.reason
    if MODES[mode]:
        assert r.score == pytest.approx(full), r.reason
    else:
        assert r.score < full
        assert targets[mode] in r.losses, r.losses
    if mode == "calls_library":
        assert f"your {targets[mode]} calls cs231n_lib." in r.reason


def hidden_lines(course, assignment):
    nb = nbformat.read(course.root / "source" / assignment / f"{assignment}.ipynb", as_version=4)
    lines = set()
    for cell in nb.cells:
        inside = False
        for line in cell.source.splitlines():
            if HIDDEN_BEGIN in line:
                inside = True
            elif HIDDEN_END in line:
                inside = False
            elif inside and line.strip():
                lines.add(line.strip())
    return lines


def test_no_hidden_test_line_in_any_feedback(graded):
    course, results, _ = graded
    files = sorted((course.root / "feedback").rglob("*.html"))
    assert len(files) == len(results)
    for path in files:
        assignment = path.parent.name
        raw, text = path.read_text(), visible_text(path)
        lines = hidden_lines(course, assignment)
        assert lines
        for line in lines:
            assert line not in text and html.escape(line) not in raw, (path, line)
