"""nbgrader's exchange for the course: publish a release, collect submissions, release feedback.

On a JupyterHub (``hub/``) students fetch and submit through nbgrader's exchange, a folder that
every account can reach. The course's ``course.toml`` (:mod:`autograder.deadlines`) names it and
the course id::

    course_id = "cs231n"
    exchange = "/srv/cs231n-hub/exchange"

These functions are nbgrader's own exchange operations on the course folder, run by the
instructor (``python -m autograder release`` / ``collect`` / ``feedback --release``):

* :func:`publish`: ``release/<A>/`` -- the student notebook *and* ``library/``, the student
  edition -- into ``<exchange>/<course_id>/outbound/<A>/``, where the Assignments tab offers it;
* :func:`collect`: each student's latest submission from ``<exchange>/<course_id>/inbound/`` into
  ``submitted/<student>/<A>/`` with its ``timestamp.txt`` (the time of the submit; the late
  penalty reads it). nbgrader takes a submission only from a folder owned by the account of the
  same name, so no student hands in for another;
* :func:`release_feedback`: ``feedback/<student>/<A>/*.html`` into the exchange, under a name
  derived from the submitted notebook and its timestamp, so only the student holding that
  submission finds it ("Fetch Feedback" in the Assignments tab).
"""

from __future__ import annotations

from pathlib import Path

from autograder.course import Course
from autograder.deadlines import load_settings


class NoExchange(RuntimeError):
    """The course has no exchange configured."""


def exchange_api(course: Course):
    """nbgrader's API on the course folder, with the course's id and exchange."""
    settings = load_settings(course.root)
    if not settings.course_id or not settings.exchange:
        raise NoExchange(f"{course.root / 'course.toml'} names no course_id and exchange: "
                         "the exchange is for a course on a JupyterHub (hub/setup.py writes it)")
    config = course.config()
    config.CourseDirectory.course_id = settings.course_id
    config.Exchange.root = settings.exchange
    # A release replaces what was published before (release again after fixing a notebook).
    config.ExchangeReleaseAssignment.force = True
    if not Path(settings.exchange).is_dir():
        raise NoExchange(f"the exchange {settings.exchange} does not exist (hub/setup.py makes it)")
    return course.api(config)


def _check(result: dict, what: str) -> str:
    result = result or {}
    if not result.get("success"):
        raise RuntimeError(f"nbgrader {what} failed:\n{result.get('error') or result.get('log')}")
    return result.get("log") or ""


def publish(course: Course, assignments: list[str]) -> None:
    """Put the released assignments (notebook and library edition) where students fetch them."""
    api = exchange_api(course)
    for assignment in assignments:
        _check(api.release_assignment(assignment), f"release_assignment {assignment}")


def collect(course: Course, assignments: list[str]) -> list[tuple[str, str, str]]:
    """Latest submissions into ``submitted/``: (student, assignment, timestamp) for each."""
    api = exchange_api(course)
    found = []
    for assignment in assignments:
        _check(api.collect(assignment, update=True), f"collect {assignment}")
        folder = course.root / "submitted"
        for student in sorted(folder.iterdir()) if folder.is_dir() else []:
            stamp = student / assignment / "timestamp.txt"
            if stamp.is_file():
                found.append((student.name, assignment, stamp.read_text().strip()))
    return found


def release_feedback(course: Course, pairs: list[tuple[str, str]]) -> None:
    """Feedback of these (student, assignment) pairs into the exchange."""
    api = exchange_api(course)
    for student, assignment in pairs:
        _check(api.release_feedback(assignment, student),
               f"release_feedback {assignment} {student}")
