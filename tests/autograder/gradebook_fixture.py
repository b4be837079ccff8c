"""A small nbgrader gradebook built through nbgrader's own API (no release, no grading run), for
the fast tests of deadlines and exports: one assignment ``hw`` with one notebook ``hw`` holding
two autograded cells ``a`` and ``b`` worth 5 points each."""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from pathlib import Path

ASSIGNMENT = "hw"
CELLS = {"a": 5.0, "b": 5.0}


_EMPTY: list[Path] = []


def _empty_gradebook(dest: Path) -> None:
    """A new gradebook costs nbgrader an `alembic` run: make one per test session, copy it."""
    from nbgrader.api import Gradebook

    if not _EMPTY:
        path = Path(tempfile.mkdtemp(prefix="empty-gradebook-")) / "gradebook.db"
        Gradebook(f"sqlite:///{path}").close()
        _EMPTY.append(path)
    shutil.copy(_EMPTY[0], dest)


def build_gradebook(course, students, submissions, assignment=ASSIGNMENT, cells=CELLS,
                    names=None, duedate=None):
    """``submissions``: {student: (timestamp, {cell: score})}; ``names``: {student: (first, last)}."""
    from nbgrader.api import Gradebook

    course.root.mkdir(parents=True, exist_ok=True)
    if course.db_url.startswith("sqlite:///") and not Path(course.db_url[10:]).exists():
        _empty_gradebook(Path(course.db_url[10:]))
    names = names or {}
    with Gradebook(course.db_url) as gb:
        gb.update_or_create_assignment(assignment, duedate=duedate)
        gb.update_or_create_notebook(assignment, assignment)
        for cell, points in cells.items():
            gb.update_or_create_grade_cell(cell, assignment, assignment, max_score=points,
                                           cell_type="code")
        for student in students:
            first, last = names.get(student, (None, None))
            gb.update_or_create_student(student, first_name=first, last_name=last)
        for student, (timestamp, scores) in submissions.items():
            gb.update_or_create_submission(assignment, student, timestamp=timestamp)
            for cell, score in scores.items():
                gb.find_grade(cell, assignment, assignment, student).auto_score = score
            gb.db.commit()
    return course


def at(day, hour=12):
    return dt.datetime(2026, 10, day, hour, 0)
