"""Grading a class in parallel gives exactly the serial grades: on a process pool, and on a Dask
cluster of separate processes one of whose workers is killed in the middle of the run.

The class is the toy course of tests/autograder/grading_fixture.py (one notebook, two exercises), released
once per module; each test grades its own copy of it with ``python -m autograder grade``.
"""

import csv
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

import psutil  # noqa: E402

from grading_fixture import write_fixture  # noqa: E402

from autograder.classroom import blank, correct, hand_in, partly_wrong, read_pair  # noqa: E402
from autograder.course import Course  # noqa: E402
from autograder.grading import GradingOptions, grade_class  # noqa: E402
from autograder.parallel import Outcome, SerialExecutor  # noqa: E402


def mistaken(source, release):
    """Correct, except that double triples its input: a catalogued mistake, so it gets a hint."""
    nb = correct(source, release)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "double")
    cell.source = "def double(x):\n    return 3 * np.asarray(x, dtype=float)"
    return nb


CLASS = {"ada": correct, "bo": blank, "cy": partly_wrong, "di": mistaken}


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """A released toy course with the four students' submissions, and its grading options."""
    folder = tmp_path_factory.mktemp("toy")
    fixture = write_fixture(folder)
    course = Course(folder / "course", fixture["notebooks"])
    course.release(["toy"])
    source, release = read_pair(course, "toy")
    for student, build in CLASS.items():
        hand_in(course, student, "toy", build(source, release))
    options = [*(f"--exercises={m}" for m in fixture["exercise_modules"]),
               *(f"--pythonpath={d}" for d in fixture["pythonpath"]), "--submission-timeout=300"]
    return course, options


def grade(course: Course, options: list[str], *how: str) -> subprocess.CompletedProcess:
    """``python -m autograder grade`` on the course, as an instructor runs it."""
    command = [sys.executable, "-m", "autograder", "--course", str(course.root),
               "--notebooks", str(course.notebooks), "grade", "toy", *options, *how]
    return subprocess.run(command, capture_output=True, text=True, timeout=900)


def graded_ok(done: subprocess.CompletedProcess) -> None:
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "4 submission(s) graded" in done.stdout


def copy_of(course: Course, dest: Path) -> Course:
    shutil.copytree(course.root, dest)
    return Course(dest, course.notebooks)


def outcome(course: Course) -> dict:
    """Everything grading decided, per student: grades.csv row, each cell's score, the hints."""
    found = {}
    with open(course.root / "grades.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len({(r["student_id"], r["assignment"]) for r in rows}), "duplicate rows"
    for row in rows:
        found[row["student_id"]] = {"score": float(row["score"]), "max": float(row["max_score"])}
    with course.gradebook() as gb:
        for student in found:
            submission = gb.find_submission("toy", student)
            found[student]["cells"] = {(nb.name, g.name): g.auto_score
                                       for nb in submission.notebooks for g in nb.grades}
    for result_file in (course.root / "reports" / "toy").glob("*.json"):
        report = json.loads(result_file.read_text())
        found[report["student"]]["hints"] = report["hints"]
    return found


def assert_sound_gradebook(course: Course) -> None:
    db = course.root / "gradebook.db"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT COUNT(*) FROM submitted_assignment").fetchone()[0] == len(CLASS)


@pytest.fixture(scope="module")
def serial(toy, tmp_path_factory):
    course, options = toy
    graded = copy_of(course, tmp_path_factory.mktemp("serial") / "course")
    graded_ok(grade(graded, options, "--workers=1"))
    result = outcome(graded)
    # The yardstick itself must be right, or agreeing with it proves nothing.
    assert set(result) == set(CLASS)
    assert result["ada"]["score"] == result["ada"]["max"] - 1  # all but the hand-graded answer
    assert result["bo"]["score"] == 0
    assert 0 < result["cy"]["score"] < result["ada"]["score"]
    assert result["di"]["hints"] == {"double": ["your double triples x"]}
    return result


def test_process_pool_grades_like_serial(toy, serial, tmp_path):
    course, options = toy
    graded = copy_of(course, tmp_path / "course")
    graded_ok(grade(graded, options, "--workers=2"))
    assert outcome(graded) == serial
    assert_sound_gradebook(graded)


# ---------------------------------------------------------------------------------------------
# A Dask cluster of separate processes on loopback
# ---------------------------------------------------------------------------------------------
@contextmanager
def dask_cluster(folder: Path, names=("a", "b")):
    """``dask scheduler`` and single-threaded ``dask worker`` processes on 127.0.0.1.

    Workers run without a nanny, so killing one's process kills the worker for good. On exit
    every process started here, and every process they started, is killed.
    """
    from distributed import Client

    scheduler_file = folder / "scheduler.json"
    procs: dict[str, subprocess.Popen] = {}

    def start(key, *args):
        with open(folder / f"{key}.log", "wb") as log:
            procs[key] = subprocess.Popen([sys.executable, "-m", "dask", *args], stdout=log,
                                          stderr=subprocess.STDOUT, start_new_session=True)

    try:
        start("scheduler", "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
              "--scheduler-file", str(scheduler_file))
        for name in names:
            start(name, "worker", "--scheduler-file", str(scheduler_file), "--host", "127.0.0.1",
                  "--nthreads", "1", "--no-nanny", "--no-dashboard", "--name", name)
        deadline = time.monotonic() + 120
        while not scheduler_file.exists():
            assert procs["scheduler"].poll() is None, (folder / "scheduler.log").read_text()
            assert time.monotonic() < deadline, "the scheduler did not start"
            time.sleep(0.1)
        with Client(scheduler_file=str(scheduler_file), timeout=120) as client:
            client.wait_for_workers(len(names), timeout=120)
            yield client, procs
    finally:
        for proc in procs.values():
            family = []
            try:
                family = psutil.Process(proc.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                pass
            for p in [proc, *family]:
                try:
                    p.kill()
                except (psutil.NoSuchProcess, ProcessLookupError):
                    pass
            proc.wait(timeout=30)


def grading_children(pid: int) -> list:
    """The processes below ``pid`` once one of them is a submission's kernel, else [].

    A kernel (``autograder/boxed/kernel_launcher.py``, inside the sandbox) runs only while a submission is graded;
    the worker's warm fork server waits between submissions and does not count.
    """
    try:
        below = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    for p in below:
        try:
            if "kernel_launcher.py" in " ".join(p.cmdline()):
                return below
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return []


def alive(p) -> bool:
    try:
        return p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_killed_dask_worker_loses_no_grade(toy, serial, tmp_path):
    course, options = toy
    graded = copy_of(course, tmp_path / "course")
    with dask_cluster(tmp_path) as (client, procs):
        victim = procs["a"]
        out, err = tmp_path / "grade.out", tmp_path / "grade.err"
        with open(out, "w") as stdout, open(err, "w") as stderr:  # files: a full pipe would block
            grading = subprocess.Popen(
                [sys.executable, "-m", "autograder", "--course", str(graded.root), "--notebooks",
                 str(graded.notebooks), "grade", "toy", *options,
                 f"--scheduler={client.scheduler.address}"], stdout=stdout, stderr=stderr)
        killed: dict = {}
        try:
            while grading.poll() is None:
                # Killed the moment its kernel is seen: a submission may take under a second.
                if orphans := grading_children(victim.pid):
                    os.kill(victim.pid, signal.SIGKILL)
                    killed["orphans"] = orphans
                    break
                time.sleep(0.02)
            grading.wait(timeout=900)
        finally:
            if grading.poll() is None:
                grading.kill()
        graded_ok(subprocess.CompletedProcess(grading.args, grading.returncode, out.read_text(),
                                              err.read_text()))
        assert killed.get("orphans"), "worker a was never seen grading, so it was not killed mid-run"
        assert victim.wait(timeout=30) == -signal.SIGKILL
        assert list(client.scheduler_info()["workers"].values())[0]["name"] == "b"
        # The submission worker a was grading was graded again on b: nothing lost, nothing doubled.
        assert outcome(graded) == serial
        assert_sound_gradebook(graded)
        # The grading processes of the dead worker died with it (no orphan kernels).
        survivors = [p for p in killed["orphans"] if alive(p)]
        for p in survivors:
            p.kill()
        assert not survivors, f"orphaned grading processes: {[p.cmdline() for p in survivors]}"


class GivesUpOn(SerialExecutor):
    """Serial, except that one student's job is lost as Dask loses it after too many worker deaths."""

    def __init__(self, student):
        self.student = student

    def outcomes(self, fn, jobs):
        for job in jobs:
            if job.student == self.student:
                yield Outcome(job, error=RuntimeError("KilledWorker: worker died 3 times"))
            else:
                yield Outcome(job, result=fn(job))


class LeavesASandboxBehind(SerialExecutor):
    """Serial, except that while the first job is graded a process in a sandbox's control group
    is left running by an owner that is gone: a worker killed as it started a sandbox."""

    def __init__(self, folder: Path):
        self.folder, self.left = folder, None

    def outcomes(self, fn, jobs):
        from autograder.isolation import Cgroups, cgroup_name

        gone = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                                  capture_output=True, text=True).stdout)
        group = Cgroups(cgroup_name(gone, self.folder), 64 * 1024 * 1024)
        assert group.available, "no writable control groups here"
        self.left = subprocess.Popen(group.prefix() + ["sleep", "600"], start_new_session=True)
        yield from super().outcomes(fn, jobs)


def test_a_sandbox_whose_worker_is_gone_is_stopped_when_grading_ends(toy, tmp_path):
    course, options = toy
    graded = copy_of(course, tmp_path / "course")
    executor = LeavesASandboxBehind(tmp_path / "box")
    grade_class(graded, ["toy"], GradingOptions(
        submission_timeout=300,
        exercise_modules=tuple(o.split("=", 1)[1] for o in options if o.startswith("--exercises=")),
        pythonpath=tuple(o.split("=", 1)[1] for o in options if o.startswith("--pythonpath="))),
        executor, students=["ada"])
    try:
        assert executor.left.wait(timeout=30) == -signal.SIGKILL
    finally:
        executor.left.kill()


def test_a_submission_the_executor_gives_up_on_is_recorded_not_lost(toy, serial, tmp_path):
    course, options = toy
    graded = copy_of(course, tmp_path / "course")
    fixture_options = GradingOptions(
        submission_timeout=300,
        exercise_modules=tuple(o.split("=", 1)[1] for o in options if o.startswith("--exercises=")),
        pythonpath=tuple(o.split("=", 1)[1] for o in options if o.startswith("--pythonpath=")))
    results = {r.student: r for r in grade_class(graded, ["toy"], fixture_options, GivesUpOn("cy"))}
    assert results["cy"].status == "error"
    assert "grading could not run" in results["cy"].reason and "KilledWorker" in results["cy"].reason
    found = outcome(graded)
    assert set(found) == set(CLASS), "every student has a row in grades.csv"
    assert found["cy"]["score"] == 0
    for student in set(CLASS) - {"cy"}:
        assert found[student]["score"] == serial[student]["score"]
