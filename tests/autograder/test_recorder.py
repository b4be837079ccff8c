"""The single gradebook writer (recording.Recorder) keeps one gradebook open across results: what
it writes is in the gradebook for every other reader at once, and a result that fails half-way
leaves nothing behind and does not stop the next one. Fast: no grading run."""

import sys
from pathlib import Path

import pytest
from nbgrader.api import MissingEntry

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gradebook_fixture import ASSIGNMENT, build_gradebook  # noqa: E402

from autograder.course import Course  # noqa: E402
from autograder.grading import SubmissionResult  # noqa: E402
from autograder.recording import Recorder  # noqa: E402


def result(student, scores):
    return SubmissionResult(student, ASSIGNMENT, "graded", notebooks={ASSIGNMENT: {
        "grades": {gid: {"auto_score": score, "max_score": 5.0, "needs_manual_grade": False}
                   for gid, score in scores.items()},
        "comments": {}, "autograded": None, "failure": None}})


def scores_seen_by_another_reader(course, student):
    with course.gradebook() as gb:
        return {g.name: g.auto_score for g in gb.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, student).grades}


def test_one_open_gradebook_for_many_results_and_a_failed_one_rolled_back(tmp_path):
    course = Course(tmp_path / "course")
    build_gradebook(course, students=["ada", "bob", "cy"], submissions={})
    recorder = Recorder(course)
    recorder.merge(None, result("ada", {"a": 5.0, "b": 2.0}))
    assert scores_seen_by_another_reader(course, "ada") == {"a": 5.0, "b": 2.0}
    kept = recorder.gradebook()

    # A grade cell the gradebook does not have: bob's first score was already set in the
    # session when the second one failed; it may not stay.
    with pytest.raises(MissingEntry):
        recorder.merge(None, result("bob", {"a": 4.0, "nowhere": 1.0}))
    recorder.merge(None, result("cy", {"a": 1.0, "b": 1.0}))
    assert recorder.gradebook() is kept
    assert scores_seen_by_another_reader(course, "cy") == {"a": 1.0, "b": 1.0}
    # nbgrader commits the new submission itself; the score set before the failure is gone.
    assert scores_seen_by_another_reader(course, "bob") == {"a": None, "b": None}
    assert [r.student for r in recorder.results] == ["ada", "cy"]

    recorder.close()
    recorder.merge(None, result("ada", {"a": 3.0, "b": 3.0}))   # opened again after close
    assert scores_seen_by_another_reader(course, "ada") == {"a": 3.0, "b": 3.0}
    recorder.close()
