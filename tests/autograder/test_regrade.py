"""`grade --student ID` regrades one student without touching the others; `feedback --student`.

The toy course (tests/autograder/grading_fixture.py), two students who hand in late. Graded together, both
lose 10 %; then one is given an extension in course.toml and regraded alone: the penalty goes from
that student's gradebook row, report and feedback, while the other's report, feedback and
gradebook row stay exactly as they were.
"""

import csv
import datetime as dt
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from grading_fixture import write_fixture  # noqa: E402

ASSIGNMENT = "toy"

pytestmark = pytest.mark.slow


def rows(course):
    with open(course.root / "grades.csv", newline="") as f:
        return {r["student_id"]: r for r in csv.DictReader(f)}


def stamp(course, student, when):
    path = course.path("submitted", student, ASSIGNMENT) / "timestamp.txt"
    path.write_text(when.strftime("%Y-%m-%d %H:%M:%S.%f UTC"))


def test_grade_one_student_leaves_the_others_alone(tmp_path):
    from autograder import classroom
    from autograder.cli import main
    from autograder.course import Course

    fixture = write_fixture(tmp_path)
    course = Course(tmp_path / "course", fixture["notebooks"])
    course.release([ASSIGNMENT])
    source, release = classroom.read_pair(course, ASSIGNMENT)
    due = dt.datetime(2026, 10, 9, 12, 0)
    for student in ("ann", "ben"):
        classroom.hand_in(course, student, ASSIGNMENT, classroom.correct(source, release))
        stamp(course, student, due + dt.timedelta(hours=3))
    (course.root / "course.toml").write_text(f'[deadlines]\n"{ASSIGNMENT}" = "{due.isoformat()}"\n')
    common = ["--course", str(course.root), "--notebooks", str(fixture["notebooks"])]
    grade = ["grade", ASSIGNMENT, "--workers", "1", "--timeout", "20",
             "--exercises", fixture["exercise_modules"][0], "--pythonpath", fixture["pythonpath"][0]]

    assert main(common + grade) == 0
    before = rows(course)
    raw = float(before["ann"]["raw_score"])
    assert raw > 0
    for student in ("ann", "ben"):
        assert float(before[student]["late_submission_penalty"]) == pytest.approx(0.1 * raw)
    ben_report = course.report_path("ben", ASSIGNMENT)
    ben_feedback = course.path("feedback", "ben", ASSIGNMENT) / f"{ASSIGNMENT}.html"
    ben_files = {p: (p.read_bytes(), os.stat(p).st_mtime_ns) for p in (ben_report, ben_feedback)}
    assert "Late submission penalty" in ben_feedback.read_text()
    assert "Due 2026-10-09 12:00 UTC; submitted 3.0 h late: late penalty" in ben_feedback.read_text()

    # ann gets a two-day extension and is regraded alone.
    (course.root / "course.toml").write_text(
        f'[deadlines]\n"{ASSIGNMENT}" = "{due.isoformat()}"\n[extensions]\n"{ASSIGNMENT}" = {{ ann = 2 }}\n')
    assert main(common + grade + ["--student", "ann"]) == 0
    after = rows(course)
    assert float(after["ann"]["late_submission_penalty"]) == 0
    assert float(after["ann"]["score"]) == pytest.approx(raw)
    assert after["ben"] == before["ben"]
    for path, (content, mtime) in ben_files.items():
        assert path.read_bytes() == content and os.stat(path).st_mtime_ns == mtime, path
    ann_feedback = course.path("feedback", "ann", ASSIGNMENT) / f"{ASSIGNMENT}.html"
    assert "Late submission penalty" not in ann_feedback.read_text()
    assert "(with your extension of 2.0 days); submitted on time." in ann_feedback.read_text()

    # feedback --student rewrites only that student's page.
    ann_feedback.unlink()
    assert main(common + ["feedback", ASSIGNMENT, "--student", "ann"]) == 0
    assert ann_feedback.is_file()
    assert os.stat(ben_feedback).st_mtime_ns == ben_files[ben_feedback][1]

    # --release needs an exchange: a course without one says so and exits non-zero.
    assert main(common + ["feedback", ASSIGNMENT, "--release"]) == 2
