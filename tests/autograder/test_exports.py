"""The exports a gradebook takes in (autograder/exports.py): one CSV per assignment and Canvas's
import file, beside nbgrader's grades.csv. Fast: the gradebook is built through nbgrader's API."""

import csv
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gradebook_fixture import ASSIGNMENT, at, build_gradebook  # noqa: E402

from autograder.exports import ASSIGNMENT_COLUMNS, CANVAS_ID_COLUMNS, CANVAS_POINTS_ROW


@pytest.fixture()
def course(tmp_path):
    """hw: due 9 Oct noon. ada on time (10/10), bob 2 days late (8/10, -20 %), cy an extension of
    3 days and 2 days late (6/10, no penalty), dee never submitted. lab2: only ada (4/4)."""
    from autograder.course import Course
    from autograder.recording import Recorder

    course = Course(tmp_path / "course")
    names = {"ada": ("Ada", "Lovelace"), "bob": ("Bob", "O'Neil, Jr.")}
    build_gradebook(course, ["ada", "bob", "cy", "dee"], {}, names=names)
    build_gradebook(course, [], {}, assignment="lab2", cells={"q": 4.0})
    (course.root / "course.toml").write_text(
        f'[deadlines]\n"{ASSIGNMENT}" = "2026-10-09T12:00:00Z"\n'
        f'[extensions]\n"{ASSIGNMENT}" = {{ cy = 3 }}\n')
    from autograder.grading import SubmissionResult

    def result(student, assignment, when, scores, points=5.0):
        return SubmissionResult(student, assignment, "graded", timestamp=when.isoformat(),
                                notebooks={assignment: {
                                    "grades": {g: {"auto_score": s, "max_score": points,
                                                   "needs_manual_grade": False}
                                               for g, s in scores.items()},
                                    "comments": {}, "autograded": None, "failure": None}})

    recorder = Recorder(course)
    recorder.merge(None, result("ada", ASSIGNMENT, at(9, 11), {"a": 5, "b": 5}))
    recorder.merge(None, result("bob", ASSIGNMENT, at(11, 11), {"a": 5, "b": 3}))
    recorder.merge(None, result("cy", ASSIGNMENT, at(11, 11), {"a": 5, "b": 1}))
    recorder.merge(None, result("ada", "lab2", at(20), {"q": 4}, points=4.0))
    return course


def read(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def test_one_file_per_assignment(course):
    from autograder.recording import export_grades

    export_grades(course)
    files = sorted(p.name for p in (course.root / "exports").iterdir())
    assert files == ["canvas.csv", "hw.csv", "lab2.csv"]
    rows = read(course.root / "exports" / "hw.csv")
    assert rows[0] == ASSIGNMENT_COLUMNS
    by = {row[0]: dict(zip(rows[0], row)) for row in rows[1:]}
    assert sorted(by) == ["ada", "bob", "cy", "dee"]
    assert by["ada"]["score"] == "10" and by["ada"]["late_penalty"] == "0"
    assert by["ada"]["due"] == "2026-10-09 12:00:00" and by["ada"]["seconds_late"] == "0"
    assert by["bob"]["last_name"] == "O'Neil, Jr." and by["bob"]["first_name"] == "Bob"
    assert (by["bob"]["raw_score"], by["bob"]["late_penalty"], by["bob"]["score"]) == ("8", "1.6", "6.4")
    assert by["bob"]["seconds_late"] == str(2 * 86400 - 3600)
    assert by["bob"]["timestamp"] == "2026-10-11 11:00:00"
    assert (by["cy"]["due"], by["cy"]["extension_days"]) == ("2026-10-12 12:00:00", "3")
    assert (by["cy"]["score"], by["cy"]["late_penalty"]) == ("6", "0")
    assert by["dee"]["submitted"] == "no" and by["dee"]["score"] == "0" and by["dee"]["timestamp"] == ""
    assert {row["max_score"] for row in by.values()} == {"10"}
    assert by["ada"]["needs_manual_grade"] == "no"

    lab2 = {row[0]: dict(zip(rows[0], row)) for row in read(course.root / "exports" / "lab2.csv")[1:]}
    assert lab2["ada"]["score"] == "4" and lab2["bob"]["submitted"] == "no"
    assert lab2["ada"]["due"] == ""   # no deadline: never late


def test_per_assignment_scores_agree_with_nbgraders_csv(course):
    from autograder.recording import export_grades

    export_grades(course)
    with open(course.root / "grades.csv", newline="") as f:
        nbgrader_rows = {(r["assignment"], r["student_id"]): r for r in csv.DictReader(f)}
    for assignment in ("hw", "lab2"):
        with open(course.root / "exports" / f"{assignment}.csv", newline="") as f:
            for row in csv.DictReader(f):
                if row["student_id"] == "bob":
                    continue  # nbgrader's CSV does not quote the comma in bob's last name
                theirs = nbgrader_rows[(assignment, row["student_id"])]
                assert float(row["score"]) == pytest.approx(float(theirs["score"]))
                assert float(row["raw_score"]) == pytest.approx(float(theirs["raw_score"]))
                assert float(row["max_score"]) == pytest.approx(float(theirs["max_score"]))


def test_canvas_gradebook_import_file(course):
    from autograder.recording import export_grades

    export_grades(course)
    rows = read(course.root / "exports" / "canvas.csv")
    assert rows[0] == CANVAS_ID_COLUMNS + ["hw", "lab2"]
    assert rows[1] == [CANVAS_POINTS_ROW, "", "", "", "", "10", "4"]
    students = {row[3]: row for row in rows[2:]}     # SIS Login ID: the course's student id
    assert sorted(students) == ["ada", "bob", "cy", "dee"]
    assert students["ada"][:5] == ["Lovelace, Ada", "", "", "ada", ""]
    assert students["bob"][0] == "O'Neil, Jr., Bob"   # quoted by csv, read back whole
    assert students["cy"][0] == "cy"                  # no names in the gradebook: the id
    assert students["ada"][5:] == ["10", "4"]
    assert students["bob"][5:] == ["6.4", "0"]        # after the late penalty; no lab2 submission
    assert students["dee"][5:] == ["0", "0"]
    assert all(len(row) == len(rows[0]) for row in rows)
    raw = (course.root / "exports" / "canvas.csv").read_text()
    assert '"O\'Neil, Jr., Bob"' in raw


def test_export_command_writes_all_three(course, capsys):
    from autograder.cli import main

    assert main(["--course", str(course.root), "export"]) == 0
    assert "exports" in capsys.readouterr().out
    for name in ("grades.csv", "exports/hw.csv", "exports/lab2.csv", "exports/canvas.csv"):
        assert (course.root / name).is_file(), name
