"""Due dates, the late-penalty rule and per-student extensions, from the course's ``course.toml``.

The course folder may hold a ``course.toml`` (``hub/setup.py`` writes one for the hub)::

    course_id = "cs231n"                  # nbgrader's course id (the exchange's folder)
    exchange = "/srv/cs231n-hub/exchange" # nbgrader's exchange root

    [late_penalty]
    per_day = 0.10        # fraction of the score taken off per day late, a started day counting
    cap = 0.50            # never more than this fraction of the score
    grace_minutes = 0     # a submission this close after its due date is on time

    [deadlines]
    "01_activations" = "2026-10-09T23:59:00+00:00"

    [extensions]
    "01_activations" = { alice = 2, bob = "2026-10-12T12:00:00+00:00" }

**The rule.** A submission's lateness is its timestamp (nbgrader's ``timestamp.txt``, written when
the student submits through the exchange) minus its due date: the assignment's deadline, moved by
the student's extension. Lateness up to ``grace_minutes`` counts as on time; beyond it every day
or part of a day costs ``per_day`` of the score, at most ``cap``::

    days    = ceil((seconds_late - 60 * grace_minutes) / 86400)       (0 when not late)
    penalty = score * min(cap, per_day * days)

With the defaults: 1 minute late is -10 %, 1 day and 1 minute late is -20 %, a week late -50 %.
The penalty is a share of the points earned, so it never takes a score below zero.

**Extensions** are a number of days (fractions allowed) or a new due date for that student.

**Where it applies.** Dates without a time zone are UTC; a bare date means the end of that day
(23:59:59 UTC). The grader computes the penalty when it records a submission
(:mod:`autograder.recording`), through nbgrader's own mechanism: the gradebook gets the due date
(``Assignment.duedate``) and the extension (``SubmittedAssignment.extension``), and
:class:`LatePenalty`, a ``LateSubmissionPlugin``, gives each notebook's
``late_submission_penalty``. nbgrader's CSV (``score = raw_score - late_submission_penalty``),
the exports of :mod:`autograder.exports` and nbgrader's feedback page ("Late submission penalty")
all read it from there. The course's nbgrader configuration names the same plugin
(``AssignLatePenalties.plugin_class``), so nbgrader run by hand applies the same rule. As in
nbgrader, the penalty is fixed when the submission is graded: hand grades given later do not
change it until the submission is graded again.
"""

from __future__ import annotations

import datetime as dt
import html
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from nbgrader.plugins import LateSubmissionPlugin
from traitlets import Float

SETTINGS_FILE = "course.toml"
DAY = 86400.0


class SettingsError(ValueError):
    """course.toml says something this module cannot take."""


# ---------------------------------------------------------------------------------------------
# The rule
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PenaltyRule:
    per_day: float = 0.10
    cap: float = 0.50
    grace_minutes: float = 0.0

    def __post_init__(self):
        if not 0 <= self.per_day <= 1 or not 0 <= self.cap <= 1 or self.grace_minutes < 0:
            raise SettingsError(f"late_penalty: per_day and cap must lie in [0, 1] and "
                                f"grace_minutes be >= 0, not {self}")

    def days_late(self, seconds_late: float) -> int:
        """Started days late, after the grace period (0 when on time)."""
        beyond = seconds_late - 60.0 * self.grace_minutes
        return math.ceil(beyond / DAY) if beyond > 0 else 0

    def fraction(self, seconds_late: float) -> float:
        """The share of the score taken off."""
        return min(self.cap, self.per_day * self.days_late(seconds_late))

    def penalty(self, score: float, seconds_late: float) -> float:
        """Points taken off a notebook that earned ``score``."""
        return round(max(0.0, score or 0.0) * self.fraction(seconds_late), 6)

    def describe(self) -> str:
        grace = f" after {self.grace_minutes:g} minutes' grace" if self.grace_minutes else ""
        return (f"{self.per_day:.0%} of the score for every day or part of a day late{grace}, "
                f"at most {self.cap:.0%}")


class LatePenalty(LateSubmissionPlugin):
    """nbgrader's late-submission plugin with the course's rule (``c.LatePenalty.*``)."""

    per_day = Float(PenaltyRule.per_day, help="fraction of the score per day late").tag(config=True)
    cap = Float(PenaltyRule.cap, help="largest fraction of the score taken off").tag(config=True)
    grace_minutes = Float(PenaltyRule.grace_minutes, help="lateness forgiven").tag(config=True)

    def rule(self) -> PenaltyRule:
        return PenaltyRule(self.per_day, self.cap, self.grace_minutes)

    def late_submission_penalty(self, student_id: str, score: float, total_seconds_late: float):
        return self.rule().penalty(score, total_seconds_late)


# ---------------------------------------------------------------------------------------------
# The settings file
# ---------------------------------------------------------------------------------------------
def to_utc(value, where: str) -> dt.datetime:
    """A TOML date-time, date or ISO string as a naive UTC datetime (nbgrader's convention)."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            try:
                value = dt.date.fromisoformat(value)
            except ValueError:
                raise SettingsError(f"{where}: not a date: {value!r}") from None
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return value
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time(23, 59, 59))
    raise SettingsError(f"{where}: not a date: {value!r}")


@dataclass
class CourseSettings:
    course_id: str | None = None
    exchange: str | None = None
    rule: PenaltyRule = PenaltyRule()
    deadlines: dict[str, dt.datetime] = field(default_factory=dict)
    # assignment -> student -> extension (nbgrader's: added to the assignment's due date)
    extensions: dict[str, dict[str, dt.timedelta]] = field(default_factory=dict)

    def deadline(self, assignment: str) -> dt.datetime | None:
        return self.deadlines.get(assignment)

    def extension(self, assignment: str, student: str) -> dt.timedelta | None:
        return self.extensions.get(assignment, {}).get(student)

    def due(self, assignment: str, student: str) -> dt.datetime | None:
        """The student's due date: the deadline moved by the extension."""
        deadline = self.deadline(assignment)
        if deadline is None:
            return None
        return deadline + (self.extension(assignment, student) or dt.timedelta(0))

    def seconds_late(self, assignment: str, student: str, timestamp: dt.datetime | None) -> float:
        due = self.due(assignment, student)
        if due is None or timestamp is None:
            return 0.0
        return max(0.0, (timestamp - due).total_seconds())


def parse_settings(data: dict) -> CourseSettings:
    """course.toml's contents (already parsed) as :class:`CourseSettings`."""
    known = {"course_id", "exchange", "late_penalty", "deadlines", "extensions"}
    unknown = set(data) - known
    if unknown:
        raise SettingsError(f"course.toml: unknown setting(s) {', '.join(sorted(unknown))}; "
                            f"known: {', '.join(sorted(known))}")
    penalty = data.get("late_penalty", {})
    extra = set(penalty) - {"per_day", "cap", "grace_minutes"}
    if extra:
        raise SettingsError(f"late_penalty: unknown key(s) {', '.join(sorted(extra))}")
    rule = PenaltyRule(**{k: float(v) for k, v in penalty.items()})
    deadlines = {str(a): to_utc(v, f"deadlines.{a}") for a, v in data.get("deadlines", {}).items()}
    extensions: dict[str, dict[str, dt.timedelta]] = {}
    for assignment, students in data.get("extensions", {}).items():
        if not isinstance(students, dict):
            raise SettingsError(f"extensions.{assignment}: a table of student = days or date")
        for student, value in students.items():
            where = f"extensions.{assignment}.{student}"
            if isinstance(value, bool):
                raise SettingsError(f"{where}: days or a date, not {value!r}")
            if isinstance(value, (int, float)):
                if value < 0:
                    raise SettingsError(f"{where}: a negative extension")
                extension = dt.timedelta(days=value)
            else:
                if assignment not in deadlines:
                    raise SettingsError(f"{where}: a new due date, but {assignment} has no "
                                        "deadline in [deadlines]")
                extension = to_utc(value, where) - deadlines[assignment]
            extensions.setdefault(str(assignment), {})[str(student)] = extension
    return CourseSettings(data.get("course_id"), data.get("exchange"), rule, deadlines, extensions)


def load_settings(course_root: str | Path) -> CourseSettings:
    """``<course>/course.toml``; without one, no deadlines (nothing is ever late)."""
    path = Path(course_root) / SETTINGS_FILE
    if not path.is_file():
        return CourseSettings()
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: {exc}") from None
    return parse_settings(data)


def plugin_config(c, settings: CourseSettings):
    """Name :class:`LatePenalty` with the course's rule in an nbgrader configuration."""
    c.AssignLatePenalties.plugin_class = f"{LatePenalty.__module__}.{LatePenalty.__name__}"
    c.LatePenalty.per_day = settings.rule.per_day
    c.LatePenalty.cap = settings.rule.cap
    c.LatePenalty.grace_minutes = settings.rule.grace_minutes
    return c


# ---------------------------------------------------------------------------------------------
# In the gradebook
# ---------------------------------------------------------------------------------------------
def duration(seconds: float) -> str:
    """A lateness in the unit a person would use: 40 s, 12 min, 5.2 h, 3.1 days."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < DAY:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / DAY:.1f} days"


@dataclass
class Lateness:
    due: dt.datetime | None
    extension: dt.timedelta | None
    seconds_late: float
    penalty: float          # points, all notebooks together
    rule: str

    def note(self) -> str:
        if not self.seconds_late:
            return ""
        return (f"submitted {duration(self.seconds_late)} after the due date "
                f"{self.due:%Y-%m-%d %H:%M} UTC"
                f"{' (with extension)' if self.extension else ''}: late penalty "
                f"-{self.penalty:g} point(s) ({self.rule})")


def record_lateness(gb, settings: CourseSettings, assignment: str, student: str) -> Lateness:
    """Due date, extension and each notebook's penalty into the gradebook, nbgrader's way.

    ``gb`` is an open nbgrader ``Gradebook`` in which the submission's grades are already
    recorded; the caller commits.
    """
    record = gb.find_assignment(assignment)
    record.duedate = settings.deadline(assignment)
    submission = gb.find_submission(assignment, student)
    submission.extension = settings.extension(assignment, student)
    gb.db.flush()
    seconds = submission.total_seconds_late  # nbgrader's own: timestamp - (duedate + extension)
    plugin = LatePenalty(per_day=settings.rule.per_day, cap=settings.rule.cap,
                         grace_minutes=settings.rule.grace_minutes)
    total = 0.0
    for notebook in submission.notebooks:
        penalty = None
        if seconds > 0:
            penalty = plugin.late_submission_penalty(student, notebook.score, seconds)
            # nbgrader's own bounds (AssignLatePenalties._check_late_penalty)
            penalty = min(max(penalty, 0.0), notebook.score or 0.0)
        notebook.late_submission_penalty = penalty
        total += penalty or 0.0
    return Lateness(submission.duedate, submission.extension, seconds, round(total, 6),
                    settings.rule.describe())


# ---------------------------------------------------------------------------------------------
# On the feedback page
# ---------------------------------------------------------------------------------------------
NOTE_CLASS = "deadline-note"


def deadline_note(settings: CourseSettings, assignment: str, student: str, seconds_late: float,
                  penalty: float) -> str:
    """One sentence for the student: due date, extension, on time or the penalty. '' without
    a deadline."""
    due = settings.due(assignment, student)
    if due is None:
        return ""
    text = f"Due {due:%Y-%m-%d %H:%M} UTC"
    extension = settings.extension(assignment, student)
    if extension:
        text += f" (with your extension of {duration(extension.total_seconds())})"
    if seconds_late > 0:
        return (f"{text}; submitted {duration(seconds_late)} late: late penalty -{penalty:g} "
                f"point(s), by the course's rule: {settings.rule.describe()}.")
    return f"{text}; submitted on time."


def with_note(page: str, note: str) -> str:
    """The feedback page with the note as its first paragraph (replacing an older one)."""
    import re

    page = re.sub(rf'\n?<p class="{NOTE_CLASS}"[^>]*>.*?</p>\n', "", page, flags=re.S)
    if not note:
        return page
    paragraph = (f'<p class="{NOTE_CLASS}" style="margin:1em;font-weight:bold">'
                 f"{html.escape(note)}</p>\n")
    at = re.search(r"<body[^>]*>", page)
    return page[:at.end()] + "\n" + paragraph + page[at.end():] if at else paragraph + page
