"""Grades in the shapes a gradebook takes in, beside nbgrader's own ``grades.csv``.

``python -m autograder export`` (and every ``grade``) writes, from the course's gradebook:

* ``grades.csv``: nbgrader's CSV export, unchanged (one row per student and assignment);
* ``exports/<assignment>.csv``: one file per assignment, one row per student of the gradebook::

      student_id,last_name,first_name,email,submitted,timestamp,due,extension_days,
      seconds_late,raw_score,late_penalty,score,max_score,needs_manual_grade

  ``due`` is the student's own due date (deadline plus extension, UTC), ``score`` is
  ``raw_score - late_penalty`` (never below 0); a student who did not submit has
  ``submitted = no`` and a score of 0. ``needs_manual_grade = yes`` means written answers are still
  to be graded by hand, so ``score`` may still rise;
* ``exports/canvas.csv``: Canvas's gradebook import format. The columns Canvas identifies a
  student by (``Student``, ``ID``, ``SIS User ID``, ``SIS Login ID``, ``Section``), then one
  column per assignment; the first row under the header is Canvas's ``Points Possible`` row, the
  others are students, scored after the late penalty (0 without a submission). ``SIS Login ID``
  is the student's id in the course (their hub login), which is what Canvas matches on when
  ``ID`` is blank; ``Student`` is "Last, First" when the gradebook has the names. Canvas creates a
  new column for a header it does not know: rename a header to the Canvas assignment's
  "Name (id)" to fill an existing column instead.

Both are written with Python's ``csv`` module (RFC 4180 quoting), UTF-8, one header row.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

ASSIGNMENT_COLUMNS = ["student_id", "last_name", "first_name", "email", "submitted", "timestamp",
                      "due", "extension_days", "seconds_late", "raw_score", "late_penalty",
                      "score", "max_score", "needs_manual_grade"]
CANVAS_ID_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
CANVAS_POINTS_ROW = "Points Possible"


def _number(value) -> str:
    return f"{round(float(value or 0.0), 6):g}"


def _when(value: dt.datetime | None) -> str:
    return value.isoformat(sep=" ") if value is not None else ""


def assignment_rows(gb, assignment: str) -> list[dict]:
    """One dict per student of the gradebook for one assignment (the columns above)."""
    from nbgrader.api import MissingEntry

    record = gb.find_assignment(assignment)
    rows = []
    for student in sorted(gb.students, key=lambda s: s.id):
        row = {"student_id": student.id, "last_name": student.last_name or "",
               "first_name": student.first_name or "", "email": student.email or "",
               "max_score": _number(record.max_score)}
        try:
            submission = gb.find_submission(assignment, student.id)
        except MissingEntry:
            row.update(submitted="no", timestamp="", due=_when(record.duedate), extension_days="",
                       seconds_late="0", raw_score="0", late_penalty="0", score="0",
                       needs_manual_grade="no")
        else:
            penalty = submission.late_submission_penalty or 0.0
            extension = submission.extension
            row.update(submitted="yes", timestamp=_when(submission.timestamp),
                       due=_when(submission.duedate),
                       extension_days=(_number(extension.total_seconds() / 86400)
                                       if extension else ""),
                       seconds_late=_number(submission.total_seconds_late),
                       raw_score=_number(submission.score), late_penalty=_number(penalty),
                       score=_number(max(0.0, submission.score - penalty)),
                       needs_manual_grade="yes" if submission.needs_manual_grade else "no")
        rows.append(row)
    return rows


def write_assignment_csv(gb, assignment: str, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=ASSIGNMENT_COLUMNS)
        writer.writeheader()
        writer.writerows(assignment_rows(gb, assignment))
    return path


def canvas_rows(gb) -> tuple[list[str], list[list[str]]]:
    """The header and rows of Canvas's import file (Points Possible first)."""
    assignments = sorted(a.name for a in gb.assignments)
    header = CANVAS_ID_COLUMNS + assignments
    rows = [[CANVAS_POINTS_ROW, "", "", "", ""]
            + [_number(gb.find_assignment(a).max_score) for a in assignments]]
    scores = {a: {row["student_id"]: row["score"] for row in assignment_rows(gb, a)}
              for a in assignments}
    for student in sorted(gb.students, key=lambda s: s.id):
        name = (f"{student.last_name}, {student.first_name}"
                if student.last_name and student.first_name else student.id)
        rows.append([name, "", "", student.id, ""] + [scores[a][student.id] for a in assignments])
    return header, rows


def write_canvas_csv(gb, path: Path) -> Path:
    header, rows = canvas_rows(gb)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def export_all(course) -> list[Path]:
    """``exports/<assignment>.csv`` for every assignment of the gradebook, and ``canvas.csv``."""
    folder = course.root / "exports"
    written = []
    with course.gradebook() as gb:
        for assignment in sorted(a.name for a in gb.assignments):
            written.append(write_assignment_csv(gb, assignment, folder / f"{assignment}.csv"))
        written.append(write_canvas_csv(gb, folder / "canvas.csv"))
    return written
