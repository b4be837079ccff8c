"""Collecting from nbgrader's exchange (autograder/exchange.py) when students are hostile.

Every account can create folders in ``inbound/``. These tests hand in as the current account
("ada") and make "bob" another uid, so a folder that names bob but is ada's is an impostor's.
"""

import datetime as dt
import os
import subprocess
from pathlib import Path

import pytest

from autograder import exchange
from autograder.course import Course

A = "hw"
ME = os.getuid()
UIDS = {"ada": ME, "bob": ME + 1}


def uid_of(student):
    return UIDS.get(student)


def stamp(when: dt.datetime) -> str:
    return when.strftime(exchange.TIMESTAMP_FORMAT)


def hand_in(inbound: Path, student: str, claimed: dt.datetime, files: dict, name_time=None) -> Path:
    """What nbgrader's submit leaves: a folder with the files and timestamp.txt."""
    folder = inbound / f"{student}+{A}+{stamp(name_time or claimed)}+{os.urandom(4).hex()}"
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    (folder / "timestamp.txt").write_text(stamp(claimed))
    return folder


@pytest.fixture()
def now():
    return dt.datetime.now(dt.timezone.utc)


@pytest.fixture()
def course(tmp_path):
    root = tmp_path / "course"
    root.mkdir()
    (tmp_path / "exchange" / "cs").mkdir(parents=True)
    (root / "course.toml").write_text(f'course_id = "cs"\nexchange = "{tmp_path / "exchange"}"\n')
    return Course(root), tmp_path / "exchange" / "cs" / "inbound"


def collected(course, log=None):
    lines = [] if log is None else log
    found = exchange.collect(course, [A], uid_of=uid_of, log=lines.append)
    return {student: stamp_ for student, _, stamp_ in found}


def test_an_honest_submission_is_collected_with_its_own_timestamp(course, now):
    course, inbound = course
    hand_in(inbound, "ada", now - dt.timedelta(seconds=2), {f"{A}.ipynb": "ada's work"})
    assert collected(course) == {"ada": stamp(now - dt.timedelta(seconds=2))}
    folder = course.root / "submitted" / "ada" / A
    assert (folder / f"{A}.ipynb").read_text() == "ada's work"
    # The claim is kept: nbgrader's Fetch Feedback finds the feedback by it.
    assert (folder / "timestamp.txt").read_text() == stamp(now - dt.timedelta(seconds=2))


def test_a_folder_naming_a_classmate_is_refused(course, now):
    course, inbound = course
    hand_in(inbound, "bob", now + dt.timedelta(days=1), {f"{A}.ipynb": "not bob's work"})
    log = []
    assert collected(course, log) == {}
    assert not (course.root / "submitted" / "bob").exists()
    assert any("names bob but belongs to another account" in line for line in log), log


@pytest.mark.parametrize("trick", ["link_inside", "entry_is_link", "fifo", "nested_link"])
def test_links_and_special_files_are_never_followed(course, now, tmp_path, trick):
    course, inbound = course
    secret = tmp_path / "instructor_source.ipynb"
    secret.write_text("SOLUTIONS")
    if trick == "entry_is_link":
        real = hand_in(tmp_path / "elsewhere", "ada", now, {f"{A}.ipynb": "x"})
        inbound.mkdir(parents=True)
        (inbound / real.name).symlink_to(real)
    else:
        folder = hand_in(inbound, "ada", now, {})
        if trick == "link_inside":
            (folder / f"{A}.ipynb").symlink_to(secret)
        elif trick == "fifo":
            os.mkfifo(folder / f"{A}.ipynb")  # reading it would block the collect forever
        else:
            (folder / "sub").mkdir()
            (folder / "sub" / "x.ipynb").symlink_to(secret)
    log = []
    assert collected(course, log) == {}
    assert len(log) == 1 and log[0].startswith("refused"), log
    assert "SOLUTIONS" not in "".join(p.read_text() for p in course.root.rglob("*") if p.is_file())


def test_a_timestamp_forged_into_the_past_is_replaced_by_when_the_files_were_written(course, now):
    course, inbound = course
    claimed = now - dt.timedelta(days=3)  # "I handed in before the deadline"
    hand_in(inbound, "ada", claimed, {f"{A}.ipynb": "late work"})
    log = []
    recorded = exchange._parse(collected(course, log)["ada"])
    assert abs((recorded - dt.datetime.now(dt.timezone.utc)).total_seconds()) < 60
    assert any("claims" in line and "recorded" in line for line in log), log


def test_the_latest_is_the_one_written_last_whatever_its_name_says(course, now):
    course, inbound = course
    hand_in(inbound, "ada", now, {f"{A}.ipynb": "first"}, name_time=now + dt.timedelta(days=9))
    hand_in(inbound, "ada", now, {f"{A}.ipynb": "second"})
    collected(course)
    assert (course.root / "submitted" / "ada" / A / f"{A}.ipynb").read_text() == "second"


def test_size_caps(course, now, monkeypatch):
    course, inbound = course
    monkeypatch.setattr(exchange, "MAX_SUBMISSION_BYTES", 1000)
    hand_in(inbound, "ada", now, {f"{A}.ipynb": "x" * 2000})
    log = []
    assert collected(course, log) == {}
    assert "larger than" in log[0]


def test_no_account_of_that_name(course, now):
    course, inbound = course
    hand_in(inbound, "zed", now, {f"{A}.ipynb": "x"})
    log = []
    assert collected(course, log) == {}
    assert "no account named 'zed'" in log[0]


def test_a_deep_tree_is_refused_alone_and_the_class_is_still_collected(course, now):
    course, inbound = course
    deep = hand_in(inbound, "ada", now, {f"{A}.ipynb": "x"})
    folder = deep
    for _ in range(1100):  # deeper than Python's recursion limit
        folder = folder / "d"
        folder.mkdir()
    log = []
    try:
        assert collected(course, log) == {}
        assert "deep" in log[0]
    finally:  # too deep for shutil.rmtree (pytest's clean-up of old runs) on Python 3.11
        subprocess.run(["rm", "-rf", str(deep)], check=True)


@pytest.mark.parametrize("claim", ["0001-01-01 00:00:00 +1400", "9999-12-31 23:59:59 -1400", "yesterday",
                                   "\x1b[2J"])
def test_a_claim_that_is_no_date_is_no_claim(course, now, claim):
    course, inbound = course
    folder = hand_in(inbound, "ada", now, {f"{A}.ipynb": "x"})
    (folder / "timestamp.txt").write_text(claim)
    recorded = exchange._parse(collected(course)["ada"])
    assert abs((recorded - dt.datetime.now(dt.timezone.utc)).total_seconds()) < 60


def test_names_any_account_chose_are_logged_without_escape_sequences(course, now):
    course, inbound = course
    folder = hand_in(inbound, "ada", now, {})
    (folder / "\x1b]52;c;ZWNobyBwd25lZA==\x07\x1b[2K.ipynb").symlink_to("/etc/hostname")
    (inbound / "ada\x1b[1A+hw+x\nhw  bob  submitted").mkdir()
    log = []
    collected(course, log)
    assert log and not any(c in "".join(log) for c in "\x1b\x07\n"), log
