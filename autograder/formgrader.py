"""The formgrader's Autograde and Generate Feedback buttons, routed to the course's pipeline.

In ``make lab`` (JupyterLab with nbgrader's formgrader) the instructor's **Autograde** of
(assignment, student) runs ``grading.grade_class(course, [assignment], options, executor,
students=[student])`` -- exactly what ``python -m autograder grade`` runs for that submission:
restored structure, scratch course, limits, checks outside the student's kernel, the single
gradebook writer, feedback and ``grades.csv``. **Generate Feedback** (one student or all) runs
the project's feedback writer, ``grading.write_feedback``, on the recorded results, like
``python -m autograder feedback``. Plain nbgrader would instead run the checks inside the
student's kernel and show hidden tests in the feedback.

The hook, and why this one
--------------------------
nbgrader 0.9.6's formgrader handlers (``server_extensions/formgrader/apihandlers.py``) hold no
API object: every request builds a fresh one in ``BaseHandler.api`` (``formgrader/base.py``)::

    api = NbGraderAPI(self.coursedir, self.authenticator, parent=self.coursedir.parent)

``NbGraderAPI`` is looked up in ``base``'s module namespace *at request time*.
``AutogradeHandler`` then calls ``api.autograde(assignment, student)``, and
``GenerateFeedbackHandler`` / ``GenerateAllFeedbackHandler`` call
``api.generate_feedback(assignment[, student])``. So this module binds
``formgrader.base.NbGraderAPI`` to :class:`CourseGraderAPI`, a subclass overriding just those two
methods. Every other button (listing, manual grading, release, collect) stays nbgrader's own, and
the handlers keep nbgrader's authentication, XSRF and course-folder checks. The alternatives are
worse:

* wrapping ``NbGraderAPI.autograde`` / ``generate_feedback`` on the class would also catch the
  project's own uses of them (the grading worker runs ``NbGraderAPI.autograde`` in the scratch
  course, ``write_feedback`` calls ``NbGraderAPI.generate_feedback``): the pipeline would call
  itself;
* new tornado handlers on the same URLs work only if they are registered before nbgrader's (the
  first matching rule wins), i.e. on Jupyter's extension load order, and must copy the
  decorators;
* configuring nbgrader's converters (``Autograde.autograde_preprocessors``) reaches only the
  preprocessors, not the rest of the pipeline (restored notebook structure, scratch course,
  memory and time limits, the isolation of student code, the single writer).

The hook is installed when Jupyter loads this module as a server extension
(``jupyter/jupyter_server_config.py`` enables it in ``ServerApp.jpserver_extensions``), so it
is in place before the first request, whatever the order in which extensions load.

Course and options
------------------
The course is the formgrader's own: ``CourseDirectory.root`` and ``db_url`` from the course's
nbgrader configuration (``autograder/course`` for ``make lab``). The grading options come from
the same configuration, in the ``CourseGrading`` section (``jupyter/nbgrader_config.py``); their
defaults are :class:`~autograder.grading.GradingOptions`' own, which are the command line's. Each
submission is graded in a fresh ``spawn`` process (``parallel.PoolExecutor``), never inside the
Jupyter server, which has threads of its own.

nbgrader's formgrader handlers are synchronous: like nbgrader's own Autograde, the server does
not answer other requests while a submission is graded (at most ``submission_timeout``).
"""

from __future__ import annotations

import io
import logging
import traceback
from dataclasses import fields
from pathlib import Path

from nbgrader.apps.api import NbGraderAPI
from traitlets import Bool, Int, List, Unicode
from traitlets.config import LoggingConfigurable

from autograder.grading import GradingOptions

_DEFAULTS = {f.name: f.default for f in fields(GradingOptions)}


class CourseGrading(LoggingConfigurable):
    """The options of the formgrader's Autograde (``c.CourseGrading.*`` in the nbgrader config).

    Defaults are ``GradingOptions``' defaults, i.e. what ``python -m autograder grade`` uses
    without options.
    """

    cell_timeout = Int(_DEFAULTS["cell_timeout"],
                       help="seconds per cell (grade --timeout)").tag(config=True)
    submission_timeout = Int(int(_DEFAULTS["submission_timeout"]),
                             help="wall-clock seconds per submission (grade --submission-timeout)"
                             ).tag(config=True)
    memory_mb = Int(_DEFAULTS["memory_mb"],
                    help="address-space cap of the grading processes (grade --memory-mb)"
                    ).tag(config=True)
    max_output_lines = Int(_DEFAULTS["max_output_lines"],
                           help="output lines kept per cell (grade --max-output-lines)").tag(config=True)
    allow_network = Bool(_DEFAULTS["allow_network"],
                         help="let student code use the network (grade --allow-network)").tag(config=True)
    exercise_modules = List(Unicode(), list(_DEFAULTS["exercise_modules"]),
                            help="extra exercise module files (grade --exercises)").tag(config=True)
    pythonpath = List(Unicode(), list(_DEFAULTS["pythonpath"]),
                      help="folders added to the grading kernels' import path (grade --pythonpath)"
                      ).tag(config=True)
    sandbox = Bool(_DEFAULTS.get("sandbox", True),
                   help="run student code in the sandbox (False: grade --no-sandbox)").tag(config=True)
    workers = Int(1, help="grading processes (grade --workers); one submission needs one"
                  ).tag(config=True)

    def options(self) -> GradingOptions:
        values = {"cell_timeout": self.cell_timeout, "submission_timeout": self.submission_timeout,
                  "memory_mb": self.memory_mb, "max_output_lines": self.max_output_lines,
                  "allow_network": self.allow_network, "sandbox": self.sandbox,
                  "exercise_modules": tuple(str(Path(f).resolve()) for f in self.exercise_modules),
                  "pythonpath": tuple(str(Path(d).resolve()) for d in self.pythonpath)}
        # Only the options this version of the pipeline has (an option it lacks is never set).
        return GradingOptions(**{k: v for k, v in values.items() if k in _DEFAULTS})


class _Captured:
    """Collects the ``autograder`` logger's records for the formgrader's log panel."""

    def __init__(self):
        self.buffer = io.StringIO()
        self.handler = logging.StreamHandler(self.buffer)
        self.handler.setFormatter(logging.Formatter("[%(levelname)s] %(message)s"))
        self.logger = logging.getLogger("autograder")

    def __enter__(self):
        self.logger.addHandler(self.handler)
        return self

    def __exit__(self, *exc):
        self.logger.removeHandler(self.handler)

    def text(self, *lines: str) -> str:
        return self.buffer.getvalue() + "".join(line + "\n" for line in lines)


def _line(r) -> str:
    text = f"{r.student}/{r.assignment}: {r.score:g} / {r.max_score:g} ({r.status})"
    if r.manual_pending:
        text += f", {r.manual_pending:g} point(s) to grade by hand"
    return text + (f": {r.reason}" if r.reason else "")


class CourseGraderAPI(NbGraderAPI):
    """nbgrader's API, with ``autograde`` and ``generate_feedback`` done by the course's pipeline."""

    def course(self):
        from autograder.course import Course

        return Course(self.coursedir.root, db_url=self.coursedir.db_url)

    def grading_options(self) -> GradingOptions:
        return CourseGrading(parent=self).options()

    def executor(self):
        from autograder.parallel import PoolExecutor

        return PoolExecutor(max(1, CourseGrading(parent=self).workers))

    def autograde(self, assignment_id, student_id, force=True, create=True):
        """``grade_class`` for this one submission; nbgrader's answer dict (success/log/error).

        ``force`` and ``create`` are nbgrader's: the pipeline always grades again and always
        records the student. ``success`` is False only when grading itself failed (the CLI's
        non-zero exit); a student's broken code is a score with a reason, as in the CLI's table.
        """
        from autograder.grading import grade_class

        with _Captured() as log:
            try:
                course = self.course()
                if (student_id, assignment_id) not in course.submissions([assignment_id]):
                    return {"success": False, "log": log.text(),
                            "error": f"no submission of {assignment_id} by {student_id} in "
                                     f"{course.path('submitted', student_id, assignment_id)}"}
                executor = self.executor()
                with executor:
                    results = grade_class(course, [assignment_id], self.grading_options(),
                                          executor, students=[student_id])
            except Exception:
                return {"success": False, "log": log.text(), "error": traceback.format_exc()}
            lines = [_line(r) for r in results]
            failed = [r for r in results if r.status == "error"]
            if failed or not results:
                return {"success": False, "log": log.text(*lines),
                        "error": "grading itself failed: " + ("; ".join(r.reason for r in failed)
                                                             or "no result")}
            return {"success": True, "log": log.text(*lines)}

    def generate_feedback(self, assignment_id, student_id=None, force=True):
        """``write_feedback`` on the recorded results of one student, or of every student."""
        from autograder.grading import load_results, write_feedback

        with _Captured() as log:
            try:
                course = self.course()
                results = [r for r in load_results(course, [assignment_id])
                           if student_id is None or r.student == student_id]
                if not results:
                    who = f" by {student_id}" if student_id else ""
                    return {"success": False, "log": log.text(),
                            "error": f"no graded submission of {assignment_id}{who}: autograde first"}
                _attach_autograded(course, results)
                problems = write_feedback(course, results)
            except Exception:
                return {"success": False, "log": log.text(), "error": traceback.format_exc()}
            lines = [f"feedback for {r.student}/{r.assignment} in "
                     f"{course.path('feedback', r.student, r.assignment)}" for r in results]
            if problems:
                return {"success": False, "log": log.text(*lines), "error": "\n".join(problems)}
            return {"success": True, "log": log.text(*lines)}


def _attach_autograded(course, results) -> None:
    """Give loaded results their autograded notebooks back, as ``write_feedback`` expects.

    The saved reports leave the notebook text out (``SubmissionResult.summary``); the recorder
    wrote it to ``autograded/<student>/<assignment>/``. Without it ``write_feedback`` would treat
    every notebook as ungradable.
    """
    for r in results:
        for name, nb in r.notebooks.items():
            if nb.get("autograded") or nb.get("failure"):
                continue
            path = course.path("autograded", r.student, r.assignment) / f"{name}.ipynb"
            if path.is_file():
                nb["autograded"] = path.read_text()


# ---------------------------------------------------------------------------------------------
# The server extension
# ---------------------------------------------------------------------------------------------
def install() -> None:
    """Make the formgrader's handlers build a :class:`CourseGraderAPI` for every request."""
    from nbgrader.server_extensions.formgrader import base

    if not (isinstance(base.NbGraderAPI, type) and issubclass(base.NbGraderAPI, CourseGraderAPI)):
        base.NbGraderAPI = CourseGraderAPI


def installed() -> bool:
    from nbgrader.server_extensions.formgrader import base

    return isinstance(base.NbGraderAPI, type) and issubclass(base.NbGraderAPI, CourseGraderAPI)


def _jupyter_server_extension_points():
    return [{"module": "autograder.formgrader"}]


def _load_jupyter_server_extension(serverapp) -> None:
    install()
    serverapp.log.info("autograder.formgrader: the formgrader's Autograde and Generate Feedback "
                       "run the course's grading pipeline (python -m autograder grade)")
