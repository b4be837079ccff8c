"""Grading a class: one idempotent function per submission, one writer for the gradebook.

:func:`grade_submission` grades ONE submission and touches nothing shared: it restores the
notebook's structure (:mod:`autograder.restore`), builds a scratch course from the template
(the released assignment, no students), and runs nbgrader autograde there in its own subprocess
(:mod:`autograder.worker`) with

* a wall-clock limit for the whole submission, after which the process tree is killed,
* a memory cap (``RLIMIT_AS``, inherited by the kernel and the outside-check child),
* no network (a private network namespace from ``unshare -rn``, loopback up for the kernel's
  ZeroMQ; where the OS forbids it, a log line says grading runs with network),
* the per-cell timeout and output limit as nbgrader options.

It returns a :class:`SubmissionResult` (plain data: it pickles, so it can come back from a
process pool or a Dask worker). Every submission ends with a score and a reason -- a file that is
not a notebook, a timeout or a crash scores 0 with the reason said, and the batch goes on.

:class:`Recorder` is the single writer: it merges results into the course's gradebook through
nbgrader's ``Gradebook`` API and writes the autograded notebooks where nbgrader expects them.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path

import nbformat

from autograder.course import REPO_DIR, Course
from autograder.restore import NotANotebook, read_submission, rebuild
from autograder.sandbox import kill_tree

log = logging.getLogger("autograder")


@dataclass(frozen=True)
class GradingOptions:
    cell_timeout: int = 30            # seconds per cell (nbgrader's Execute.timeout)
    submission_timeout: float = 900   # wall-clock seconds for the whole submission
    memory_mb: int = 3072             # address-space cap of the grading processes
    allow_network: bool = False
    max_output_lines: int = 1000      # per cell, the rest truncated (nbgrader's LimitOutput)
    exercise_modules: tuple[str, ...] = ()   # extra exercise module files (tests)
    pythonpath: tuple[str, ...] = ()         # extra import paths for kernels (tests)


@dataclass(frozen=True)
class SubmissionJob:
    course: str
    student: str
    assignment: str
    options: GradingOptions = GradingOptions()

    def __str__(self) -> str:
        return f"{self.student}/{self.assignment}"


@dataclass
class SubmissionResult:
    student: str
    assignment: str
    status: str                      # "graded", "failed" (the student's file or code), "error" (ours)
    score: float = 0.0
    max_score: float = 0.0
    manual_pending: float = 0.0      # points of written answers awaiting a human grader
    reason: str = ""
    notes: list[str] = field(default_factory=list)
    hints: dict[str, list[str]] = field(default_factory=dict)
    zeroed: dict[str, str] = field(default_factory=dict)   # exercise -> why it earned nothing
    losses: dict[str, str] = field(default_factory=dict)   # exercise -> why it lost points
    notebooks: dict[str, dict] = field(default_factory=dict)
    timestamp: str | None = None
    seconds: float = 0.0

    def summary(self) -> dict:
        data = asdict(self)
        for nb in data["notebooks"].values():
            nb.pop("autograded", None)
        return data


# ---------------------------------------------------------------------------------------------
# Limits
# ---------------------------------------------------------------------------------------------
@cache
def network_isolation() -> list[str] | None:
    """The command prefix giving a process a private network namespace, or None (logged)."""
    prefix = ["unshare", "-rn", "--pid", "--fork", "--kill-child"]
    try:
        subprocess.run(prefix + ["true"], check=True, capture_output=True, timeout=20)
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("grading runs WITH network: a private network namespace (unshare -rn) is "
                    "not permitted here (%s)", str(exc).strip()[:200])
        return None
    return prefix + ["sh", "-c", 'ip link set lo up 2>/dev/null; exec "$@"', "sh"]


def _limit(memory_mb: int):
    def apply() -> None:
        cap = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        try:  # die with the process that started us (a killed Dask worker, a killed pool)
            import ctypes

            ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:
            pass
    return apply


# ---------------------------------------------------------------------------------------------
# One submission
# ---------------------------------------------------------------------------------------------
def _template_cells(course: Course, assignment: str) -> dict[str, dict]:
    """{notebook: {"grades": {id: max_score}, "comments": [ids]}} from the template gradebook."""
    from nbgrader.api import Gradebook

    cells = {}
    with Gradebook(course.template_db_url) as gb:
        for nb in gb.find_assignment(assignment).notebooks:
            cells[nb.name] = {"grades": {c.name: c.max_score for c in nb.grade_cells},
                              "comments": [c.name for c in nb.solution_cells] +
                                          [c.name for c in nb.task_cells]}
    return cells


def _zero_notebook(cells: dict, reason: str) -> dict:
    return {"grades": {gid: {"auto_score": 0.0, "max_score": points, "needs_manual_grade": False}
                       for gid, points in cells["grades"].items()},
            "comments": {cid: reason for cid in cells["comments"]},
            "autograded": None, "failure": reason}


def _find_student_file(folder: Path, name: str) -> Path | None:
    exact = folder / f"{name}.ipynb"
    if exact.exists():
        return exact
    candidates = sorted(folder.glob("*.ipynb"))
    return candidates[0] if len(candidates) == 1 else None


def grade_submission(job: SubmissionJob) -> SubmissionResult:
    """Grade one submission in a scratch course; idempotent, safe to run many at once."""
    start = time.monotonic()
    course = Course(job.course)
    options = job.options
    result = SubmissionResult(job.student, job.assignment, "graded")
    template = _template_cells(course, job.assignment)
    scratch = Path(tempfile.mkdtemp(prefix=f"grade-{job.student}-"))
    try:
        shutil.copytree(course.template_root / "source" / job.assignment,
                        scratch / "source" / job.assignment)
        shutil.copy(course.template_root / "gradebook.db", scratch / "gradebook.db")
        submitted = course.path("submitted", job.student, job.assignment)
        dest = scratch / "submitted" / job.student / job.assignment
        shutil.copytree(submitted, dest, ignore=shutil.ignore_patterns("*.ipynb", ".ipynb_checkpoints"))
        failures: dict[str, str] = {}
        for release_path in course.release_notebooks(job.assignment):
            name = release_path.stem
            found = _find_student_file(submitted, name)
            if found is None:
                failures[name] = f"no notebook {name}.ipynb was submitted"
                continue
            try:
                student_nb = read_submission(found)
            except NotANotebook as exc:
                failures[name] = f"{found.name}: {exc}"
                continue
            canonical, notes = rebuild(nbformat.read(release_path, as_version=4), student_nb)
            result.notes.extend(notes)
            nbformat.write(canonical, dest / f"{name}.ipynb")
        for name, reason in failures.items():
            result.notebooks[name] = _zero_notebook(template[name], reason)
        if len(failures) < len(template):
            _run_worker(job, scratch, result, template)
        if failures:
            result.status = "failed" if result.status == "graded" else result.status
            result.reason = "; ".join(failures.values()) + (f"; {result.reason}" if result.reason else "")
    except Exception as exc:  # a bug of ours: say so, never leave the student without a record
        log.exception("grading %s failed", job)
        result.status = "error"
        result.reason = f"grading error: {type(exc).__name__}: {exc}"
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    for name, cells in template.items():
        if name not in result.notebooks:
            result.notebooks[name] = _zero_notebook(cells, result.reason or "not graded")
    _totals(result)
    result.seconds = time.monotonic() - start
    return result


def _run_worker(job: SubmissionJob, scratch: Path, result: SubmissionResult, template: dict) -> None:
    options = job.options
    job_file = scratch / "job.json"
    job_file.write_text(json.dumps({"root": str(scratch), "student": job.student,
                                    "assignment": job.assignment, "options": asdict(options)}))
    command = [sys.executable, "-m", "autograder.worker", str(job_file)]
    prefix = None if options.allow_network else network_isolation()
    if prefix:
        command = prefix + command
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*options.pythonpath, str(REPO_DIR)]
                                        + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.setdefault("MPLBACKEND", "Agg")
    # One BLAS thread per kernel: submissions run side by side, one per core.
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, "1")
    with open(scratch / "worker.log", "wb") as logfile:
        proc = subprocess.Popen(command, cwd=scratch, env=env, stdin=subprocess.DEVNULL,
                                stdout=logfile, stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=_limit(options.memory_mb))
        try:
            proc.wait(timeout=options.submission_timeout)
        except subprocess.TimeoutExpired:
            result.status = "failed"
            result.reason = (f"grading took longer than {options.submission_timeout:g} s "
                             "(the limit per submission) and was stopped")
        finally:
            kill_tree(proc.pid)
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            proc.wait()
    report_file = scratch / "result.json"
    if result.status == "failed":
        return
    if not report_file.exists():
        tail = (scratch / "worker.log").read_text(errors="replace")[-1500:]
        if proc.returncode in (-signal.SIGKILL, 137):
            result.status, result.reason = "failed", "grading was killed (out of memory?)"
        else:
            result.status = "error"
            result.reason = f"the grading process ended without a result (exit {proc.returncode}): {tail}"
        return
    report = json.loads(report_file.read_text())
    if not report.get("success") and not report.get("notebooks"):
        result.status = "error"
        result.reason = "nbgrader autograde failed: " + (report.get("error") or "")[-1500:]
        return
    if not report.get("success"):
        result.status = "error"
        result.reason = "nbgrader autograde reported an error: " + (report.get("error") or "")[-800:]
    result.timestamp = report.get("timestamp")
    for name, recorded in report.get("notebooks", {}).items():
        graded = scratch / "autograded" / job.student / job.assignment / f"{name}.ipynb"
        recorded["autograded"] = graded.read_text() if graded.exists() else None
        recorded["failure"] = None
        result.notebooks[name] = recorded
        outside = scratch / f"{name}.outside.json"
        if outside.exists():
            data = json.loads(outside.read_text())
            result.notes.extend(data.get("notes", []))
            for ex, verdict in data.get("exercises", {}).items():
                if verdict.get("hints"):
                    result.hints[ex] = verdict["hints"]
                if verdict.get("zero_reason"):
                    result.zeroed[ex] = verdict["zero_reason"]
                if verdict.get("summary"):
                    result.losses[ex] = verdict["summary"]


def _totals(result: SubmissionResult) -> None:
    score = max_score = pending = 0.0
    for nb in result.notebooks.values():
        for grade in nb["grades"].values():
            max_score += grade["max_score"] or 0
            if grade["auto_score"] is None:
                pending += grade["max_score"] or 0
            else:
                score += grade["auto_score"]
    result.score, result.max_score, result.manual_pending = round(score, 6), max_score, pending
    if result.status == "graded" and not result.reason:
        parts = result.notes + list(result.losses.values())
        result.reason = "; ".join(parts)


# ---------------------------------------------------------------------------------------------
# The single writer
# ---------------------------------------------------------------------------------------------
class Recorder:
    """Merges results into the course gradebook and files, one at a time, in this process."""

    def __init__(self, course: Course):
        self.course = course
        self.results: list[SubmissionResult] = []

    def merge(self, job: SubmissionJob, result: SubmissionResult) -> None:
        from datetime import datetime

        from nbgrader.api import Gradebook

        course = self.course
        with warnings.catch_warnings(), Gradebook(course.db_url) as gb:
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
            gb.db.commit()
        folder = course.path("autograded", result.student, result.assignment)
        feedback = course.path("feedback", result.student, result.assignment)
        for path in (folder, feedback):
            if path.exists():
                shutil.rmtree(path)
        for name, nb in result.notebooks.items():
            if nb.get("autograded"):
                folder.mkdir(parents=True, exist_ok=True)
                (folder / f"{name}.ipynb").write_text(nb["autograded"])
        stamp_file = course.path("submitted", result.student, result.assignment) / "timestamp.txt"
        if stamp_file.exists() and folder.exists():
            shutil.copy(stamp_file, folder / "timestamp.txt")
        report = course.report_path(result.student, result.assignment)
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(json.dumps(result.summary(), indent=1))
        self.results.append(result)


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


def write_feedback(course: Course, results: list[SubmissionResult]) -> list[str]:
    """nbgrader generate_feedback for graded submissions; a short page for the others."""
    import html

    problems = []
    api = course.api()
    for r in results:
        graded = [n for n, nb in r.notebooks.items() if nb.get("autograded")]
        if graded:
            out = api.generate_feedback(r.assignment, r.student, force=True)
            if not out["success"]:
                problems.append(f"{r.student}/{r.assignment}: {(out.get('error') or out.get('log'))[-500:]}")
        for name, nb in r.notebooks.items():
            if not nb.get("autograded"):
                folder = course.path("feedback", r.student, r.assignment)
                folder.mkdir(parents=True, exist_ok=True)
                (folder / f"{name}.html").write_text(FAILED_FEEDBACK.format(
                    assignment=html.escape(r.assignment), name=html.escape(name), score=r.score,
                    max_score=r.max_score, reason=html.escape(nb.get("failure") or r.reason)))
    return problems


def export_grades(course: Course) -> Path:
    """nbgrader's CSV export of the whole gradebook to ``<course>/grades.csv``."""
    from nbgrader.plugins import CsvExportPlugin

    dest = course.root / "grades.csv"
    with course.gradebook() as gb:
        CsvExportPlugin(to=str(dest)).export(gb)
    return dest


def load_results(course: Course, assignments: list[str] | None = None) -> list[SubmissionResult]:
    found = []
    for assignment in assignments or course.released():
        for path in sorted((course.root / "reports" / assignment).glob("*.json")):
            found.append(SubmissionResult(**json.loads(path.read_text())))
    return found


def format_table(results: list[SubmissionResult]) -> str:
    rows = [("student", "assignment", "score", "max", "to hand-grade", "status", "time", "reason")]
    for r in sorted(results, key=lambda r: (r.assignment, r.student)):
        reason = r.reason.replace("\n", " ")
        rows.append((r.student, r.assignment, f"{r.score:g}", f"{r.max_score:g}",
                     f"{r.manual_pending:g}" if r.manual_pending else "-", r.status,
                     f"{r.seconds:.1f}s", reason[:160] + ("..." if len(reason) > 160 else "")))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths)) + "  " + row[-1]
             for row in rows]
    lines.insert(1, "-" * min(150, max(len(line) for line in lines)))
    return "\n".join(lines)


def _could_not_grade(job: SubmissionJob, error: BaseException) -> SubmissionResult:
    """The record of a submission the executor gave up on (e.g. its worker died too often)."""
    return SubmissionResult(job.student, job.assignment, "error",
                            reason=f"grading could not run: {type(error).__name__}: {str(error)[:300]}")


def grade_class(course: Course, assignments: list[str] | None = None,
                options: GradingOptions = GradingOptions(), executor=None,
                students: list[str] | None = None) -> list[SubmissionResult]:
    """Grade every submission found, merge, write feedback and grades.csv; the results."""
    from autograder.parallel import run_all

    assignments = assignments or course.released()
    if not assignments:
        raise ValueError(f"nothing released in {course.root} (run `release` first)")
    missing = [a for a in assignments if a not in course.released()]
    if missing:
        raise ValueError(f"not released yet: {', '.join(missing)} (run `release` first)")
    jobs = [SubmissionJob(str(course.root), s, a, options) for s, a in course.submissions(assignments)
            if students is None or s in students]
    if course.db_url.startswith("sqlite:///"):
        Path(course.db_url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    recorder = Recorder(course)
    run_all(grade_submission, jobs, recorder.merge, executor, on_error=_could_not_grade)
    problems = write_feedback(course, recorder.results)
    export_grades(course)
    if problems:
        raise RuntimeError("feedback failed for:\n" + "\n".join(problems))
    return recorder.results
