"""Recording grades: the gradebook, the autograded notebooks, feedback, the export, the table.

Everything here runs in the coordinating process, one submission at a time: :class:`Recorder`
is the gradebook's single writer, so any number of grading workers never means many writers.
Its input is a :class:`autograder.grading.SubmissionResult`, plain data that the grader built
from its worker's checked report -- never anything a sandbox wrote.
"""

from __future__ import annotations

import html
import json
import shutil
import warnings
from pathlib import Path

from autograder.checks import printable
from autograder.course import Course
from autograder.deadlines import deadline_note, load_settings, record_lateness, with_note

# ---------------------------------------------------------------------------------------------
# The single writer
# ---------------------------------------------------------------------------------------------
class Recorder:
    """Merges results into the course gradebook and files, one at a time, in this process."""

    def __init__(self, course: Course):
        self.course = course
        self.results: list = []
        self._gradebook = None

    def gradebook(self):
        """The gradebook, opened on the first merge and kept open: a new connection for each
        result would also compile every one of nbgrader's queries anew (SQLAlchemy keeps its
        compiled statements per connection pool)."""
        from nbgrader.api import Gradebook

        if self._gradebook is None:
            self._gradebook = Gradebook(self.course.db_url)
        return self._gradebook

    def close(self) -> None:
        if self._gradebook is not None:
            self._gradebook.close()
            self._gradebook = None

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def merge(self, job, result) -> None:
        course = self.course
        gb = self.gradebook()
        try:
            lateness = self._record(gb, result)
        except BaseException:
            gb.db.rollback()  # the kept session must stay usable for the next result
            raise
        result.late_penalty, result.seconds_late = lateness.penalty, lateness.seconds_late
        if lateness.note():
            result.reason = "; ".join(filter(None, [lateness.note(), result.reason]))
        folder = course.path("autograded", result.student, result.assignment)
        feedback = course.path("feedback", result.student, result.assignment)
        for path in (folder, feedback):
            if path.exists():
                shutil.rmtree(path)
        for name, nb in result.notebooks.items():
            if nb.get("autograded"):
                folder.mkdir(parents=True, exist_ok=True)
                (folder / f"{name}.ipynb").write_text(nb["autograded"])
        # nbgrader's generate_feedback carries these to feedback/, where release_feedback needs
        # both: the exchange names a student's feedback after the submission's secret.
        for name in ("timestamp.txt", "submission_secret.txt"):
            kept = course.path("submitted", result.student, result.assignment) / name
            if kept.exists() and folder.exists():
                shutil.copy(kept, folder / name)
        report = course.report_path(result.student, result.assignment)
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(json.dumps(result.summary(), indent=1))
        self.results.append(result)

    def _record(self, gb, result):
        """The result's grades, comments and lateness in the gradebook, committed."""
        from datetime import datetime

        with warnings.catch_warnings():
            # nbgrader's own update_or_create_submission trips SQLAlchemy autoflush warnings.
            warnings.simplefilter("ignore")
            gb.update_or_create_student(result.student)
            stamp = datetime.fromisoformat(result.timestamp) if result.timestamp else None
            kwargs = {"timestamp": stamp} if stamp else {}
            gb.update_or_create_submission(result.assignment, result.student, **kwargs)
            for name, nb in result.notebooks.items():
                for gid, g in nb["grades"].items():
                    grade = gb.find_grade(gid, name, result.assignment, result.student)
                    grade.auto_score = g["auto_score"]
                    grade.needs_manual_grade = (grade.manual_score is not None) or g["auto_score"] is None
                for cid, text in nb["comments"].items():
                    comment = gb.find_comment(cid, name, result.assignment, result.student)
                    comment.auto_comment = text
            # Due date, extension and late penalty from course.toml, nbgrader's way (deadlines.py).
            lateness = record_lateness(gb, load_settings(self.course.root), result.assignment,
                                       result.student)
            gb.db.commit()
        return lateness


# ---------------------------------------------------------------------------------------------
# Feedback, export, the table
# ---------------------------------------------------------------------------------------------
FAILED_FEEDBACK = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{assignment}: {name}</title></head>
<body><h1>{assignment}: {name}</h1>
<p>Score: {score:g} / {max_score:g}</p>
<p>Your submission could not be graded: {reason}</p>
</body></html>
"""


def write_feedback(course: Course, results: list, executor=None) -> list[str]:
    """nbgrader generate_feedback for graded submissions; a short page for the others.

    Each submission's pages are its own files, so when ``executor`` is a local process pool
    they are written in parallel on it; otherwise (one process, or a Dask cluster, whose
    workers never write into the course) here, one after another.
    """
    from autograder.parallel import PoolExecutor, SerialExecutor

    jobs = [(str(course.root), str(course.notebooks), course.db_url, r) for r in results]
    if not isinstance(executor, PoolExecutor) or len(jobs) < 2:
        executor = SerialExecutor()
    problems = []
    for outcome in executor.outcomes(feedback_one, jobs):
        if outcome.error is not None:
            r = outcome.job[-1]
            problems.append(f"{r.student}/{r.assignment}: {type(outcome.error).__name__}: {outcome.error}")
        elif outcome.result:
            problems.append(outcome.result)
    return problems


def feedback_one(job) -> str | None:
    """The feedback pages of one submission; a problem to report, or None."""
    root, notebooks, db_url, r = job
    course = Course(root, notebooks, db_url)
    problem = None
    # The autograded notebooks on disk, not in the result: a result read back from its
    # report (the `feedback` command) carries none.
    folder = course.path("autograded", r.student, r.assignment)
    graded = {n for n in r.notebooks if (folder / f"{n}.ipynb").is_file()}
    if graded:
        out = course.api().generate_feedback(r.assignment, r.student, force=True)
        if not out["success"]:
            problem = f"{r.student}/{r.assignment}: {(out.get('error') or out.get('log'))[-500:]}"
    for name, nb in r.notebooks.items():
        if name not in graded:
            folder = course.path("feedback", r.student, r.assignment)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{name}.html").write_text(FAILED_FEEDBACK.format(
                assignment=html.escape(r.assignment), name=html.escape(name), score=r.score,
                max_score=r.max_score, reason=html.escape(nb.get("failure") or r.reason)))
    # The student's due date, extension and any late penalty, at the top of each page.
    note = deadline_note(load_settings(course.root), r.assignment, r.student,
                         r.seconds_late, r.late_penalty)
    for page in sorted(course.path("feedback", r.student, r.assignment).glob("*.html")):
        page.write_text(with_note(page.read_text(), note))
    return problem


def export_grades(course: Course) -> Path:
    """nbgrader's CSV export of the whole gradebook to ``<course>/grades.csv``, and beside it
    one CSV per assignment and Canvas's import file in ``<course>/exports/`` (exports.py)."""
    from nbgrader.plugins import CsvExportPlugin

    from autograder.exports import export_all

    dest = course.root / "grades.csv"
    with course.gradebook() as gb:
        CsvExportPlugin(to=str(dest)).export(gb)
    export_all(course)
    return dest


def load_results(course: Course, assignments: list[str] | None = None) -> list:
    from autograder.grading import SubmissionResult

    found = []
    for assignment in assignments or course.released():
        for path in sorted((course.root / "reports" / assignment).glob("*.json")):
            found.append(SubmissionResult(**json.loads(path.read_text())))
    return found


def format_table(results: list) -> str:
    rows = [("student", "assignment", "score", "max", "to hand-grade", "status", "time", "reason")]
    for r in sorted(results, key=lambda r: (r.assignment, r.student)):
        # A reason can quote a submission (a corrupt file's field, say): in a terminal, an
        # escape sequence would move the cursor, retitle the window or write the clipboard.
        reason = printable(r.reason.replace("\n", " "), 163)
        rows.append((printable(r.student, 80), r.assignment, f"{r.score:g}", f"{r.max_score:g}",
                     f"{r.manual_pending:g}" if r.manual_pending else "-", r.status,
                     f"{r.seconds:.1f}s", reason))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths)) + "  " + row[-1]
             for row in rows]
    lines.insert(1, "-" * min(150, max(len(line) for line in lines)))
    return "\n".join(lines)


