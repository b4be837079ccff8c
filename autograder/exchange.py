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
  penalty reads it). Every account can write into ``inbound/``, and nbgrader's own collect only
  *warns* when a folder is not owned by the student it names, follows links, and believes the
  time the student's side wrote. This one does not (:func:`inbound_submissions`);
* :func:`release_feedback`: ``feedback/<student>/<A>/*.html`` into the exchange, under a name
  derived from the submitted notebook and its timestamp, so only the student holding that
  submission finds it ("Fetch Feedback" in the Assignments tab).
"""

from __future__ import annotations

import datetime as dt
import os
import pwd
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from autograder.checks import printable
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


# What one hand-in may hold: a notebook with its figures is a few MiB.
MAX_SUBMISSION_BYTES = 64 * 2**20
MAX_SUBMISSION_FILES = 200
# nbgrader writes timestamp.txt a moment before it copies the folder into the exchange; a
# claimed time this much older than the files themselves is not believed.
CLOCK_TOLERANCE = dt.timedelta(seconds=120)
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f %Z"   # nbgrader's Exchange.timestamp_format


class Refused(Exception):
    """One folder in ``inbound/`` is not a submission the grader accepts (the message says why)."""


@dataclass
class Submission:
    student: str
    entry: str                 # the folder's name in inbound/
    written: dt.datetime       # the latest change time (ctime) of the folder and its files
    files: dict = field(default_factory=dict)   # relative path -> bytes
    claimed: str = ""          # the student side's timestamp.txt

    @property
    def timestamp(self) -> str:
        """The time recorded: the student's claim unless the files were written after it.

        ctime cannot be set back by an account (``touch -d`` moves mtime only, and bumps ctime
        to now), so no file in the folder changed before ``written``. An honest claim is seconds
        before it. The claim is kept when honest because nbgrader's Fetch Feedback finds the
        feedback under a key made from it.
        """
        try:
            claimed = _parse(self.claimed)
        except Exception:  # noqa: BLE001 -- a claim that is no date (or overflows) is no claim
            return self.written.strftime(TIMESTAMP_FORMAT)
        if claimed + CLOCK_TOLERANCE < self.written:
            return self.written.strftime(TIMESTAMP_FORMAT)
        return self.claimed

    @property
    def forged(self) -> bool:
        return self.timestamp != self.claimed


def _parse(text: str) -> dt.datetime:
    from nbgrader.utils import parse_utc

    return parse_utc(text.strip()).replace(tzinfo=dt.timezone.utc)  # parse_utc's is naive UTC


def account_uid(student: str) -> int | None:
    try:
        return pwd.getpwnam(student).pw_uid
    except KeyError:
        return None


MAX_DEPTH = 8              # folders within folders
MAX_FOLDERS = 100


def _read_folder(top_fd: int, uid: int) -> tuple[dict, float]:
    """Every regular file below an open folder: {relative path: bytes}, and the latest ctime.

    Opened through file descriptors that refuse links, so nothing the student links to (another
    student's work, the instructor's source, /dev/zero) is ever read, even if a link replaces a
    file while this runs. Walked without recursion, and only so deep and so wide.
    """
    files, latest = {}, os.fstat(top_fd).st_ctime
    bytes_left, files_left, folders_left = MAX_SUBMISSION_BYTES, MAX_SUBMISSION_FILES, MAX_FOLDERS
    pending = [(top_fd, "", 0)]
    try:
        while pending:
            dir_fd, prefix, depth = pending.pop()
            try:
                for name in sorted(os.listdir(dir_fd)):
                    where = prefix + name
                    info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                    if info.st_uid != uid:
                        raise Refused(f"{where} is not owned by the student's account")
                    if stat.S_ISDIR(info.st_mode):
                        folders_left -= 1
                        if depth + 1 > MAX_DEPTH or folders_left < 0:
                            raise Refused(f"more than {MAX_FOLDERS} folders, or folders more "
                                          f"than {MAX_DEPTH} deep")
                        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW,
                                     dir_fd=dir_fd)
                        latest = max(latest, os.fstat(fd).st_ctime)
                        pending.append((fd, where + "/", depth + 1))
                        continue
                    if not stat.S_ISREG(info.st_mode):
                        raise Refused(f"{where} is a link or a special file, not a regular file")
                    files_left -= 1
                    if files_left < 0:
                        raise Refused(f"more than {MAX_SUBMISSION_FILES} files")
                    data, when = _read_file(dir_fd, name, uid, where, bytes_left)
                    bytes_left -= len(data)
                    files[where] = data
                    latest = max(latest, when)
            finally:
                if dir_fd != top_fd:
                    os.close(dir_fd)
    finally:
        for dir_fd, _, _ in pending:
            if dir_fd != top_fd:
                os.close(dir_fd)
    return files, latest


def _read_file(dir_fd: int, name: str, uid: int, where: str, budget: int) -> tuple[bytes, float]:
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    try:
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode) or opened.st_uid != uid:
            raise Refused(f"{where} changed while it was read")
        with os.fdopen(os.dup(fd), "rb") as handle:
            data = handle.read(budget + 1)
    finally:
        os.close(fd)
    if len(data) > budget:
        raise Refused(f"larger than {MAX_SUBMISSION_BYTES // 2**20} MiB in all")
    return data, opened.st_ctime


def read_inbound(path: Path, student: str, uid_of=account_uid) -> Submission:
    """One folder of ``inbound/``, checked and read, or :class:`Refused`."""
    uid = uid_of(student)
    if uid is None:
        raise Refused(f"there is no account named {student!r}")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        raise Refused("it is a link or a file, not a folder") from None
    try:
        owner = os.fstat(fd).st_uid
        if owner != uid:
            raise Refused(f"it names {student} but belongs to another account (uid {owner})")
        files, written = _read_folder(fd, uid)
    finally:
        os.close(fd)
    claimed = files.pop("timestamp.txt", b"").decode("utf-8", "replace").strip()[:100]
    return Submission(student, path.name, dt.datetime.fromtimestamp(written, dt.timezone.utc),
                      files, claimed)


def inbound_submissions(inbound: Path, assignment: str, uid_of=account_uid):
    """The latest acceptable submission of each student, and the folders refused with why.

    A folder is named ``<student>+<assignment>+<timestamp>[+<random>]`` by nbgrader's submit,
    and any account can create one with any name: it counts only when the account it names owns
    it and all it holds, holds only regular files (no links), and stays under the size caps.
    The latest is the one whose files were written last, whatever the names claim.
    """
    latest: dict[str, Submission] = {}
    refused: list[tuple[str, str]] = []
    for entry in sorted(os.listdir(inbound)) if inbound.is_dir() else []:
        parts = entry.rsplit("+", 3)  # as nbgrader reads them
        if len(parts) < 3 or parts[1] != assignment:
            continue
        try:
            submission = read_inbound(inbound / entry, parts[0], uid_of)
        except Refused as why:
            refused.append((entry, str(why)))
            continue
        except OSError as exc:
            refused.append((entry, f"it cannot be read: {exc.strerror}"))
            continue
        except Exception as exc:  # noqa: BLE001 -- one odd folder never stops the collect
            refused.append((entry, f"it cannot be read: {type(exc).__name__}"))
            continue
        if parts[0] not in latest or submission.written > latest[parts[0]].written:
            latest[parts[0]] = submission
    return latest, refused


def _store(submission: Submission, dest: Path) -> None:
    """Write the submission as ``submitted/<student>/<A>/`` in one step (a rename)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".collect-", dir=dest.parent))
    for relative, data in submission.files.items():
        target = staging / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    (staging / "timestamp.txt").write_text(submission.timestamp)
    staging.chmod(0o755)
    if dest.exists():
        shutil.rmtree(dest)
    staging.rename(dest)


def collect(course: Course, assignments: list[str], uid_of=account_uid, log=print):
    """Latest submissions into ``submitted/``: (student, assignment, timestamp) for each."""
    settings = load_settings(course.root)
    exchange_api(course)  # the same checks: a course with an exchange that exists
    inbound = Path(settings.exchange) / settings.course_id / "inbound"
    found = []
    for assignment in assignments:
        latest, refused = inbound_submissions(inbound, assignment, uid_of)
        for entry, why in refused:  # names any account chose: no escape sequence may pass
            log(printable(f"refused {inbound / entry}: {why}", 1000))
        for student, submission in sorted(latest.items()):
            dest = course.root / "submitted" / student / assignment
            stamp = dest / "timestamp.txt"
            if stamp.is_file():
                try:
                    if _parse(stamp.read_text()) >= _parse(submission.timestamp):
                        found.append((student, assignment, stamp.read_text().strip()))
                        continue
                except Exception:  # noqa: BLE001 -- an unreadable old stamp: take the new one
                    pass
            if submission.forged:
                log(printable(f"{student} {assignment}: timestamp.txt claims {submission.claimed!r} "
                              f"but the files were written at {submission.timestamp}; the latter "
                              "is recorded", 1000))
            _store(submission, dest)
            found.append((student, assignment, submission.timestamp))
    return found


def release_feedback(course: Course, pairs: list[tuple[str, str]]) -> None:
    """Feedback of these (student, assignment) pairs into the exchange."""
    api = exchange_api(course)
    for student, assignment in pairs:
        _check(api.release_feedback(assignment, student),
               f"release_feedback {assignment} {student}")
