"""Due dates, the late-penalty rule and extensions (autograder/deadlines.py), and how the single
gradebook writer applies them (recording.Recorder): fast, no grading run."""

import csv
import datetime as dt
import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gradebook_fixture import ASSIGNMENT, build_gradebook  # noqa: E402

from autograder.deadlines import (LatePenalty, PenaltyRule, SettingsError, duration,
                                  load_settings, to_utc)

DAY = 86400
HOUR = 3600


# ---------------------------------------------------------------------------------------------
# The rule
@pytest.mark.parametrize("seconds_late, days, fraction", [
    (0, 0, 0.0),
    (1, 1, 0.10),                  # a second late is a started day
    (DAY, 1, 0.10),
    (DAY + 1, 2, 0.20),
    (3 * DAY - 1, 3, 0.30),
    (5 * DAY, 5, 0.50),
    (30 * DAY, 30, 0.50),          # capped
])
def test_ten_percent_per_started_day_capped_at_half(seconds_late, days, fraction):
    rule = PenaltyRule(per_day=0.10, cap=0.50)
    assert rule.days_late(seconds_late) == days
    assert rule.fraction(seconds_late) == pytest.approx(fraction)
    assert rule.penalty(8.0, seconds_late) == pytest.approx(8.0 * fraction)


def test_grace_period_and_scores_that_cannot_go_negative():
    rule = PenaltyRule(per_day=0.25, cap=1.0, grace_minutes=15)
    assert rule.penalty(10, 15 * 60) == 0            # inside the grace period: on time
    assert rule.penalty(10, 15 * 60 + 1) == 2.5      # just beyond it: one started day
    assert rule.penalty(10, 4 * DAY + 15 * 60) == 10  # four days: the whole score, no more
    assert rule.penalty(0, 10 * DAY) == 0
    assert rule.penalty(None, 10 * DAY) == 0


def test_rule_rejects_nonsense():
    for bad in ({"per_day": -0.1}, {"cap": 1.5}, {"grace_minutes": -1}):
        with pytest.raises(SettingsError):
            PenaltyRule(**bad)


def test_nbgrader_plugin_gives_the_rules_penalty():
    """The plugin nbgrader's AssignLatePenalties calls, configured like any nbgrader plugin."""
    from nbgrader.plugins import LateSubmissionPlugin
    from traitlets.config import Config

    c = Config()
    c.LatePenalty.per_day = 0.2
    c.LatePenalty.cap = 0.3
    plugin = LatePenalty(config=c)
    assert isinstance(plugin, LateSubmissionPlugin)
    assert plugin.late_submission_penalty("s", 10.0, HOUR) == pytest.approx(2.0)
    assert plugin.late_submission_penalty("s", 10.0, 9 * DAY) == pytest.approx(3.0)
    assert plugin.late_submission_penalty("s", 10.0, 0) == 0


def test_course_config_names_the_plugin_for_nbgrader(tmp_path):
    from autograder.course import Course

    (tmp_path / "course.toml").write_text("[late_penalty]\nper_day = 0.05\ncap = 0.2\n")
    c = Course(tmp_path).config()
    assert c.AssignLatePenalties.plugin_class == "autograder.deadlines.LatePenalty"
    assert (c.LatePenalty.per_day, c.LatePenalty.cap) == (0.05, 0.2)


# ---------------------------------------------------------------------------------------------
# course.toml
COURSE_TOML = """
course_id = "cs231n"
exchange = "/srv/x/exchange"
[late_penalty]
per_day = 0.1
cap = 0.5
[deadlines]
"01_activations" = "2026-10-09T23:59:00+02:00"
"02_preprocessing" = 2026-10-16T12:00:00Z
"03_initialisation" = 2026-10-23
[extensions]
"01_activations" = { alice = 2, bob = 0.5, carol = "2026-10-12T21:59:00Z" }
"""


def test_settings_file_dates_in_utc_and_extensions(tmp_path):
    (tmp_path / "course.toml").write_text(COURSE_TOML)
    s = load_settings(tmp_path)
    assert (s.course_id, s.exchange) == ("cs231n", "/srv/x/exchange")
    assert s.deadline("01_activations") == dt.datetime(2026, 10, 9, 21, 59)      # +02:00 -> UTC
    assert s.deadline("02_preprocessing") == dt.datetime(2026, 10, 16, 12, 0)    # a TOML datetime
    assert s.deadline("03_initialisation") == dt.datetime(2026, 10, 23, 23, 59, 59)  # a bare date
    assert s.deadline("04_batchnorm") is None
    assert s.extension("01_activations", "alice") == dt.timedelta(days=2)
    assert s.extension("01_activations", "bob") == dt.timedelta(hours=12)
    assert s.extension("01_activations", "carol") == dt.timedelta(days=3)         # a new due date
    assert s.extension("01_activations", "dave") is None
    assert s.due("01_activations", "alice") == dt.datetime(2026, 10, 11, 21, 59)
    assert s.due("01_activations", "dave") == dt.datetime(2026, 10, 9, 21, 59)
    assert s.due("04_batchnorm", "alice") is None


def test_an_extension_moves_the_students_lateness_only(tmp_path):
    (tmp_path / "course.toml").write_text(COURSE_TOML)
    s = load_settings(tmp_path)
    submitted = dt.datetime(2026, 10, 10, 21, 59)          # a day after the deadline
    assert s.seconds_late("01_activations", "dave", submitted) == DAY
    assert s.seconds_late("01_activations", "alice", submitted) == 0   # two days' extension
    assert s.seconds_late("01_activations", "bob", submitted) == DAY / 2
    assert s.rule.penalty(10, s.seconds_late("01_activations", "bob", submitted)) == 1.0
    assert s.seconds_late("04_batchnorm", "dave", submitted) == 0      # no deadline: never late
    assert s.seconds_late("01_activations", "dave", None) == 0


def test_no_settings_file_means_nothing_is_late(tmp_path):
    s = load_settings(tmp_path)
    assert s.deadlines == {} and s.course_id is None and s.rule == PenaltyRule()


@pytest.mark.parametrize("text, words", [
    ("deadline = 1", "unknown setting"),
    ("[late_penalty]\nper_week = 1", "unknown key"),
    ("[deadlines]\na = \"next friday\"", "not a date"),
    ("[extensions]\na = { s = -1 }", "negative"),
    ("[extensions]\na = { s = \"2026-01-01\" }", "no deadline"),
    ("[extensions]\na = 3", "a table"),
    ("[extensions]\na = { s = true }", "days or a date"),
    ("course_id = ", "course.toml"),
])
def test_settings_file_mistakes_are_named(tmp_path, text, words):
    (tmp_path / "course.toml").write_text(text)
    with pytest.raises(SettingsError, match=words):
        load_settings(tmp_path)


def test_lateness_in_words():
    assert [duration(s) for s in (33, 720, 5.2 * HOUR, 3.1 * DAY)] == \
        ["33 s", "12 min", "5.2 h", "3.1 days"]


def test_to_utc_keeps_naive_times_as_utc():
    assert to_utc("2026-01-01T10:00:00", "x") == dt.datetime(2026, 1, 1, 10)
    assert to_utc(dt.datetime(2026, 1, 1, 10, tzinfo=dt.timezone(dt.timedelta(hours=-5))), "x") \
        == dt.datetime(2026, 1, 1, 15)


# ---------------------------------------------------------------------------------------------
# The single writer applies it: gradebook, grades.csv, the result's reason
def _result(student, timestamp, scores):
    from autograder.grading import SubmissionResult

    return SubmissionResult(
        student, ASSIGNMENT, "graded", timestamp=timestamp.isoformat(),
        notebooks={ASSIGNMENT: {
            "grades": {gid: {"auto_score": score, "max_score": 5.0, "needs_manual_grade": False}
                       for gid, score in scores.items()},
            "comments": {}, "autograded": None, "failure": None}})


def test_recorder_applies_deadline_extension_and_penalty(tmp_path):
    from autograder.course import Course
    from autograder.recording import Recorder, export_grades

    course = Course(tmp_path / "course")
    build_gradebook(course, students=["early", "late", "extended", "verylate"], submissions={})
    due = dt.datetime(2026, 10, 9, 12, 0)
    (course.root / "course.toml").write_text(
        f'[deadlines]\n"{ASSIGNMENT}" = "{due.isoformat()}Z"\n'
        f'[extensions]\n"{ASSIGNMENT}" = {{ extended = 3 }}\n')
    recorder = Recorder(course)
    cases = {"early": due - dt.timedelta(hours=1), "late": due + dt.timedelta(hours=30),
             "extended": due + dt.timedelta(days=2), "verylate": due + dt.timedelta(days=12)}
    for student, stamp in cases.items():
        recorder.merge(None, _result(student, stamp, {"a": 5.0, "b": 3.0}))
    by_student = {r.student: r for r in recorder.results}
    assert by_student["early"].late_penalty == 0 and "late penalty" not in by_student["early"].reason
    assert by_student["late"].late_penalty == pytest.approx(8 * 0.2)     # 30 h: two started days
    assert by_student["late"].seconds_late == 30 * HOUR
    assert "late penalty -1.6 point(s)" in by_student["late"].reason
    assert "submitted 1.2 days after the due date 2026-10-09 12:00 UTC" in by_student["late"].reason
    assert by_student["extended"].late_penalty == 0                      # 2 days late, 3 granted
    assert by_student["verylate"].late_penalty == pytest.approx(8 * 0.5)  # capped

    with course.gradebook() as gb:
        assert gb.find_assignment(ASSIGNMENT).duedate == due
        extended = gb.find_submission(ASSIGNMENT, "extended")
        assert extended.extension == dt.timedelta(days=3)
        assert gb.find_submission(ASSIGNMENT, "late").late_submission_penalty == pytest.approx(1.6)

    export_grades(course)
    with open(course.root / "grades.csv", newline="") as f:
        rows = {r["student_id"]: r for r in csv.DictReader(f)}
    assert float(rows["late"]["raw_score"]) == 8 and float(rows["late"]["score"]) == pytest.approx(6.4)
    assert float(rows["late"]["late_submission_penalty"]) == pytest.approx(1.6)
    assert float(rows["extended"]["score"]) == 8
    assert rows["late"]["duedate"].startswith("2026-10-09 12:00")

    # Regrading after an extension is granted takes the penalty away again.
    (course.root / "course.toml").write_text(
        f'[deadlines]\n"{ASSIGNMENT}" = "{due.isoformat()}Z"\n'
        f'[extensions]\n"{ASSIGNMENT}" = {{ extended = 3, late = 2 }}\n')
    again = Recorder(course)
    again.merge(None, _result("late", cases["late"], {"a": 5.0, "b": 3.0}))
    assert again.results[0].late_penalty == 0
    with course.gradebook() as gb:
        assert gb.find_submission(ASSIGNMENT, "late").late_submission_penalty == 0
        assert gb.find_submission(ASSIGNMENT, "verylate").late_submission_penalty == pytest.approx(4)


def test_feedback_page_shows_the_penalty(tmp_path):
    """nbgrader's feedback template reads the notebook's late_submission_penalty (GetGrades)."""
    from nbgrader.preprocessors import GetGrades

    from autograder.course import Course

    course = Course(tmp_path / "course")
    build_gradebook(course, students=["late"], submissions={})
    from autograder.recording import Recorder

    due = dt.datetime(2026, 10, 9, 12, 0)
    (course.root / "course.toml").write_text(f'[deadlines]\n"{ASSIGNMENT}" = "{due.isoformat()}"\n')
    Recorder(course).merge(None, _result("late", due + dt.timedelta(minutes=5), {"a": 5.0, "b": 5.0}))
    import nbformat

    nb = nbformat.v4.new_notebook()
    resources = {"nbgrader": {"notebook": ASSIGNMENT, "assignment": ASSIGNMENT, "student": "late",
                              "db_url": course.db_url}}
    _, resources = GetGrades().preprocess(nb, resources)
    assert resources["nbgrader"]["late_penalty"] == pytest.approx(1.0)
    # the page's "Score" is after the penalty; the penalty has a line of its own
    assert math.isclose(resources["nbgrader"]["score"], 9.0)


def test_feedback_note_says_due_date_extension_and_penalty(tmp_path):
    from autograder.deadlines import deadline_note, with_note

    (tmp_path / "course.toml").write_text(COURSE_TOML)
    s = load_settings(tmp_path)
    late = deadline_note(s, "01_activations", "dave", 26 * HOUR, 2.4)
    assert late.startswith("Due 2026-10-09 21:59 UTC; submitted 1.1 days late: late penalty -2.4")
    assert "10% of the score for every day" in late
    extended = deadline_note(s, "01_activations", "alice", 0, 0)
    assert extended == "Due 2026-10-11 21:59 UTC (with your extension of 2.0 days); submitted on time."
    assert deadline_note(s, "04_batchnorm", "dave", 0, 0) == ""

    page = "<html><body class='x'>\n<h1>Score</h1></body></html>"
    once = with_note(page, late)
    assert once.index("deadline-note") < once.index("<h1>") and "-2.4" in once
    again = with_note(once, extended)          # regrading replaces the note, never stacks it
    assert again.count("deadline-note") == 1 and "-2.4" not in again
    assert with_note(again, "") == page
    assert with_note("<p>no body</p>", "<b>").startswith('<p class="deadline-note"')
    assert "&lt;b&gt;" in with_note("<p>no body</p>", "<b>")
