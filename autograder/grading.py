"""Grading a class: one idempotent function per submission, one writer for the gradebook.

:func:`grade_submission` grades ONE submission and touches nothing shared: it restores the
notebook's structure (:mod:`autograder.restore`), builds a scratch course from the template (the
released assignment, no students), and runs nbgrader autograde there in a worker process
(:mod:`autograder.worker`, speaking :mod:`autograder.protocol`) under a wall-clock limit, after
which every process of the submission is killed. The student's code runs only in sandboxes
(:mod:`autograder.isolation`): the kernel, and the child the checks call. The sandboxes see the
assignment's student edition of the library (stubs where answers are due), never the repository.

It returns a :class:`SubmissionResult` (plain data: it pickles, so it can come back from a
process pool or a Dask worker). Every submission ends with a score and a reason -- a file that is
not a notebook, a timeout or a crash scores 0 with the reason said, and the batch goes on.
:mod:`autograder.recording` merges the results into the gradebook and writes feedback.
"""

from __future__ import annotations

import atexit
import copy
import functools
import logging
import os
import re
import resource
import shutil
import signal
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

from autograder.checks import printable
from autograder.course import REPO_DIR, Course
from autograder.isolation import NO_SANDBOX_WARNING, Limits, release_groups, require_bwrap
from autograder.protocol import BadReport, WorkerJob, read_report
from autograder.recording import (Recorder, export_grades, format_table,  # noqa: F401 (re-exported)
                                  load_results, write_feedback)
from autograder.restore import NotANotebook, read_submission, rebuild
from cs231n_lib.data import PHOTO10_CROPS_VARIABLE

log = logging.getLogger("autograder")


@dataclass(frozen=True)
class GradingOptions:
    cell_timeout: int = 30            # seconds per cell (nbgrader's Execute.timeout)
    submission_timeout: float = 900   # wall-clock seconds for the whole submission
    memory_mb: int = 3072             # address-space cap of each sandboxed process
    allow_network: bool = False
    max_output_lines: int = 1000      # per cell, the rest truncated (nbgrader's LimitOutput)
    sandbox: bool = True              # False: --no-sandbox, student code runs unconfined
    exercise_modules: tuple[str, ...] = ()   # extra exercise module files (tests)
    pythonpath: tuple[str, ...] = ()         # extra import paths inside the sandboxes (tests)
    run_experiments: bool = False     # also run the experiment cells, which earn no points

    def limits(self) -> Limits:
        return Limits(memory_mb=self.memory_mb, allow_network=self.allow_network)


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
    prestarted: list[str] = field(default_factory=list)  # started before the job came (spare.py)
    late_penalty: float = 0.0        # points off for lateness (recording.Recorder, deadlines.py)
    seconds_late: float = 0.0        # after the due date, the student's extension included

    def summary(self) -> dict:
        data = asdict(self)
        for nb in data["notebooks"].values():
            nb.pop("autograded", None)
        return data


# ---------------------------------------------------------------------------------------------
# The worker's own limits (it runs no student code, but it must not outlive its grader)
# ---------------------------------------------------------------------------------------------
def _die_with_grader() -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    try:  # a killed Dask worker or pool process takes its worker along
        import ctypes

        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def edition_folder(course: Course, assignment: str) -> Path:
    """The student edition of the library the assignment is graded with (released with it)."""
    return course.template_root / "release" / assignment / "library"


def sandbox_settings(course: Course, job: "SubmissionJob") -> dict:
    """What the submission's sandboxes see: the edition (the kernel), the check edition (the check
    child: the exercises' forbidden functions refuse to run), extra paths, the limits."""
    options = job.options
    pythonpath = [str(p) for p in options.pythonpath]
    edition = edition_folder(course, job.assignment)
    checked = course.check_edition_path(job.assignment)
    # photo10's training and validation crops, rendered once at release (Course.render_photo10).
    crops = course.photo10_crops()["sandbox"]
    rendered = crops.is_file()
    return {"pythonpath": ([str(edition)] if edition.is_dir() else []) + pythonpath,
            "checks_pythonpath": ([str(checked)] if checked.is_dir() else []) + pythonpath,
            "readable": [str(crops)] if rendered else [],
            "env": {PHOTO10_CROPS_VARIABLE: str(crops)} if rendered else {},
            "limits": asdict(options.limits()), "enabled": options.sandbox}


def worker_env(course: Course) -> dict[str, str]:
    """The worker's own additions to its environment: all of photo10's rendered crops, the test
    split's too (never mounted in a sandbox), for the checks that score on it."""
    rendered = [str(p) for p in course.photo10_crops().values() if p.is_file()]
    return {PHOTO10_CROPS_VARIABLE: os.pathsep.join(rendered)} if rendered else {}


# ---------------------------------------------------------------------------------------------
# One submission
# ---------------------------------------------------------------------------------------------
def _template_cells(course: Course, assignment: str) -> dict[str, dict]:
    """{notebook: {"grades": {id: max_score}, "comments": [ids]}} from the template gradebook
    (read once per grading process, until a new release rewrites that gradebook)."""
    database = course.template_root / "gradebook.db"
    stat = database.stat() if database.exists() else None
    version = (stat.st_mtime_ns, stat.st_size) if stat else None
    return copy.deepcopy(_read_template_cells(course.template_db_url, assignment, version))


@functools.lru_cache(maxsize=64)
def _read_template_cells(db_url: str, assignment: str, version) -> dict[str, dict]:
    from nbgrader.api import Gradebook

    cells = {}
    with Gradebook(db_url) as gb:
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
    if not options.sandbox:
        result.notes.append(NO_SANDBOX_WARNING)
    template = _template_cells(course, job.assignment)
    # Short: the kernel's socket paths live under it, and a socket path has at most 107 bytes.
    label = re.sub(r"[^A-Za-z0-9_.]", "_", job.student)[:24]
    base = tempfile.gettempdir()
    scratch = Path(tempfile.mkdtemp(prefix=f"grade-{label}-", dir=base if len(base) <= 30 else "/tmp"))
    try:
        shutil.copytree(course.template_root / "source" / job.assignment,
                        scratch / "source" / job.assignment)
        shutil.copy(course.template_root / "gradebook.db", scratch / "gradebook.db")
        submitted = course.path("submitted", job.student, job.assignment)
        dest = scratch / "submitted" / job.student / job.assignment
        dest.mkdir(parents=True)
        if (submitted / "timestamp.txt").is_file():  # nbgrader reads it (late submissions)
            shutil.copy(submitted / "timestamp.txt", dest / "timestamp.txt")
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


_servers: dict = {}  # PYTHONPATH -> autograder.warm.ForkServer


@atexit.register
def close_servers() -> None:
    """Stop this process's warm servers: each stops its spare (and removes its control groups)."""
    for server in _servers.values():
        server.close()
    _servers.clear()


def _fork_server(env: dict[str, str]):
    """This process's warm worker server for these import paths (started on first use)."""
    from autograder.warm import ForkServer

    key = env["PYTHONPATH"]
    if key not in _servers:
        _servers[key] = ForkServer(env)
    return _servers[key]


def _run_worker(job: SubmissionJob, scratch: Path, result: SubmissionResult, template: dict) -> None:
    options = job.options
    course = Course(job.course)
    worker_job = WorkerJob(str(scratch), job.student, job.assignment, asdict(options),
                           sandbox_settings(course, job), worker_env(course))
    worker_job.write(scratch)
    env = dict(os.environ)
    # The grader's own code first; then the instructor's extra folders (an exercise module's library).
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_DIR), *options.pythonpath]
                                        + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    server = _fork_server(env)
    returncode = server.run(scratch / "job.json", scratch / "worker.log", options.submission_timeout)
    if returncode is None:
        result.status = "failed"
        result.reason = (f"grading took longer than {options.submission_timeout:g} s "
                         "(the limit per submission) and was stopped")
        return
    try:
        report = read_report(scratch)
    except BadReport as exc:
        tail = (scratch / "worker.log").read_text(errors="replace")[-1500:]
        result.status = "error"
        result.reason = f"the grading process ended without a usable result ({exc}; exit {returncode}): {tail}"
        return
    if report["memory"]:  # what the student's code produced overwhelmed the grader: theirs
        result.status, result.reason = "failed", ("grading ran out of memory on what your code "
                                                  "produced (enormous outputs or values)")
        return
    if not report["success"]:
        result.status = "error"
        # The whole traceback goes to the grader's log; the reason (which the student's feedback
        # shows) keeps its last line, without the grader's file paths.
        log.error("nbgrader autograde failed for %s %s:\n%s", printable(job.student, 200), job.assignment,
                  "\n".join(printable(line, 2000) for line in report["error"].splitlines()))
        last = (report["error"].strip().splitlines() or ["(no message)"])[-1]
        result.reason = "nbgrader autograde reported an error: " + last[-300:]
        if not report["notebooks"]:
            return
    result.timestamp = report["timestamp"]
    result.prestarted = report["prestarted"]
    for name, recorded in report["notebooks"].items():
        graded = scratch / "autograded" / job.student / job.assignment / f"{name}.ipynb"
        recorded["autograded"] = graded.read_text() if graded.exists() else None
        recorded["failure"] = None
        result.notebooks[name] = recorded
    for outside in report["outside"].values():
        result.notes.extend(outside["notes"])
        for ex, verdict in outside["exercises"].items():
            if verdict["hints"]:
                result.hints[ex] = verdict["hints"]
            if verdict["zero_reason"]:
                result.zeroed[ex] = verdict["zero_reason"]
            if verdict["summary"]:
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


def _could_not_grade(job: SubmissionJob, error: BaseException) -> SubmissionResult:
    """The record of a submission the executor gave up on (e.g. its worker died too often)."""
    return SubmissionResult(job.student, job.assignment, "error",
                            reason=f"grading could not run: {type(error).__name__}: {str(error)[:300]}")


def submission_jobs(course: Course, assignments: list[str], options: GradingOptions,
                    students: list[str] | None = None) -> list[SubmissionJob]:
    """A job per submission, one assignment after another: a worker's spare starts its kernel
    with the previous job's settings (autograder.spare), which differ between assignments."""
    found = [(a, s) for s, a in course.submissions(assignments) if students is None or s in students]
    return [SubmissionJob(str(course.root), s, a, options) for a, s in sorted(found)]


def grade_class(course: Course, assignments: list[str] | None = None,
                options: GradingOptions = GradingOptions(), executor=None,
                students: list[str] | None = None) -> list[SubmissionResult]:
    """Grade every submission found, merge, write feedback and grades.csv; the results."""
    from autograder.parallel import run_all

    if options.sandbox:
        require_bwrap()
        release_groups(None)  # the control groups a grader killed earlier could not remove
    assignments = assignments or course.released()
    if not assignments:
        raise ValueError(f"nothing released in {course.root} (run `release` first)")
    missing = [a for a in assignments if a not in course.released()]
    if missing:
        raise ValueError(f"not released yet: {', '.join(missing)} (run `release` first)")
    jobs = submission_jobs(course, assignments, options, students)
    if course.db_url.startswith("sqlite:///"):
        Path(course.db_url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    with Recorder(course) as recorder:
        run_all(grade_submission, jobs, recorder.merge, executor, on_error=_could_not_grade)
    if options.sandbox:
        # Again at the end: a worker killed from outside while it was starting a sandbox (a Dask
        # worker's SIGKILL) can leave that sandbox running with no one left to stop it.
        release_groups(None)
    problems = write_feedback(course, recorder.results, executor)
    export_grades(course)
    if problems:
        raise RuntimeError("feedback failed for:\n" + "\n".join(problems))
    return recorder.results
