"""Spare workers (autograder/spare.py): a submission's kernel and check child, started while the
submission before it was graded, grade it exactly as ones started for it would; a spare started
with other settings is stopped, not used; and nothing a spare started outlives its server."""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from traitlets.config import Config

from grading_fixture import write_fixture

from autograder import spare
from autograder.classroom import blank, correct, hand_in, read_pair
from autograder.course import Course
from autograder.grading import GradingOptions, close_servers, grade_class
from autograder.isolation import CGROUP_ROOT, GROUP_PREFIX, release_groups


def test_same_sandbox_ignores_only_the_writable_folder():
    a = {"workdir": "/tmp/one", "pythonpath": ["/lib/a"], "limits": {"memory_mb": 512}}
    assert spare.same_sandbox(a, {**a, "workdir": "/tmp/two"})
    assert not spare.same_sandbox(a, {**a, "pythonpath": ["/lib/b"]})
    assert not spare.same_sandbox(a, {**a, "limits": {"memory_mb": 1024}})


class FakeKernel:
    """Stands for a started kernel manager: records that it was stopped."""

    def __init__(self, sandbox):
        self.sandbox, self.kernel_name, self.has_kernel, self.stopped = sandbox, "python3", True, False
        self.died = False

    async def shutdown_kernel(self, now=False):
        self.stopped = now

    async def is_alive(self):
        return not self.died


class FakeLauncher:
    def __init__(self):
        self.stopped = []

    def stop(self, proc):
        self.stopped.append(proc)


class Running:
    def poll(self):
        return None


def started_alike(tmp_path):
    kernel = {"workdir": str(tmp_path / "k"), "pythonpath": ["/lib/a"], "limits": {"memory_mb": 512}}
    checks = {**kernel, "workdir": str(tmp_path / "c")}
    return spare.Started(kernel, checks)


@pytest.fixture
def waiting(tmp_path, monkeypatch):
    """A spare's kernel and check child, waiting for their job in the worker's slots."""
    started = started_alike(tmp_path)
    km, launcher, proc = FakeKernel(started.kernel_sandbox), FakeLauncher(), Running()
    monkeypatch.setattr(spare, "_kernel", km)
    monkeypatch.setattr(spare, "_checks", (launcher, proc))
    monkeypatch.setattr(spare, "adopted", [])
    return SimpleNamespace(started=started, km=km, launcher=launcher, proc=proc)


def config_for(kernel_sandbox, checks_sandbox):
    config = Config()
    config.SandboxedKernelManager.sandbox = kernel_sandbox
    config.OutsideChecks.sandbox = checks_sandbox
    return config


def test_a_spare_started_alike_is_adopted_and_pointed_at(waiting):
    started, km, launcher, proc = waiting.started, waiting.km, waiting.launcher, waiting.proc
    # The submission's own settings name its own folders; the rest is as the spare's.
    config = config_for({**started.kernel_sandbox, "workdir": "/scratch/box-kernel"},
                        {**started.checks_sandbox, "workdir": "/scratch/box-checks"})
    spare.adopt(config, started)
    assert config.SandboxedKernelManager.sandbox == started.kernel_sandbox
    assert config.OutsideChecks.sandbox == started.checks_sandbox
    assert spare.take_kernel("python3") is km
    assert spare.take_kernel("python3") is None  # once
    assert spare.take_checks() == (launcher, proc)
    assert spare.adopted == ["kernel", "check child"]
    assert not km.stopped and not launcher.stopped


def test_a_spare_started_otherwise_is_stopped_not_used(waiting):
    started, km, launcher, proc = waiting.started, waiting.km, waiting.launcher, waiting.proc
    other = {**started.kernel_sandbox, "workdir": "/scratch/box-kernel", "pythonpath": ["/lib/b"]}
    config = config_for(other, {**other, "workdir": "/scratch/box-checks"})
    spare.adopt(config, started)
    assert config.SandboxedKernelManager.sandbox == other  # the submission's own, untouched
    assert km.stopped and launcher.stopped == [proc]
    assert spare.take_kernel("python3") is None and spare.take_checks() is None
    assert spare.adopted == []


def test_a_kernel_that_died_waiting_is_not_adopted(waiting):
    waiting.km.died = True
    assert spare.take_kernel("python3") is None
    assert waiting.km.stopped and spare.adopted == []


def test_a_check_child_that_died_waiting_is_not_adopted(waiting, monkeypatch):
    dead = SimpleNamespace(poll=lambda: 1)
    monkeypatch.setattr(spare, "_checks", (waiting.launcher, dead))
    assert spare.take_checks() is None
    assert waiting.launcher.stopped == [dead] and spare.adopted == []


def test_a_kernel_of_another_kind_is_not_adopted(waiting):
    assert spare.take_kernel("julia") is None
    assert waiting.km.stopped and spare.adopted == []


def our_groups() -> set[str]:
    found = set()
    for controller in [CGROUP_ROOT, *(p for p in CGROUP_ROOT.iterdir() if p.is_dir())]:
        try:
            found |= {f"{controller.name}/{p.name}" for p in controller.iterdir() if p.name.startswith(GROUP_PREFIX)}
        except OSError:
            pass
    return found


@pytest.mark.slow
def test_kernels_started_ahead_grade_as_kernels_started_for_the_job(tmp_path):
    fixture = write_fixture(tmp_path)
    course = Course(tmp_path / "course", fixture["notebooks"])
    course.release(["toy"])
    source, release = read_pair(course, "toy")
    # The same correct notebook first (nothing started ahead of it) and last (started ahead).
    for student, build in (("a_first", correct), ("b_blank", blank), ("c_last", correct)):
        hand_in(course, student, "toy", build(source, release))
    options = GradingOptions(exercise_modules=tuple(fixture["exercise_modules"]),
                             pythonpath=tuple(fixture["pythonpath"]), submission_timeout=300)
    release_groups(None)
    before, folders = our_groups(), set(Path("/tmp").glob("spare-*"))
    try:
        results = {r.student: r for r in grade_class(course, ["toy"], options)}
    finally:
        close_servers()
    assert results["a_first"].prestarted == []
    assert results["b_blank"].prestarted == ["kernel", "check child"]
    assert results["c_last"].prestarted == ["kernel", "check child"]
    first, last = results["a_first"], results["c_last"]
    assert first.status == last.status == "graded"
    assert first.score == last.score > results["b_blank"].score
    cells = {name: {g: v["auto_score"] for g, v in nb["grades"].items()} for name, nb in first.notebooks.items()}
    assert cells == {name: {g: v["auto_score"] for g, v in nb["grades"].items()}
                     for name, nb in last.notebooks.items()}
    report = json.loads((course.root / "reports" / "toy" / "c_last.json").read_text())
    assert report["prestarted"] == ["kernel", "check child"]
    # The last spare (no job came for it) was stopped with its server: its groups and its
    # folder are gone.
    assert our_groups() <= before
    assert set(Path("/tmp").glob("spare-*")) <= folders


def test_an_adopted_kernel_that_dies_before_it_answers_is_replaced(monkeypatch):
    from nbclient.client import NotebookClient

    from autograder.preprocessors import GuardedExecute

    calls = []

    async def start_client(self):
        calls.append("client")
        if calls.count("client") == 1:
            self._notes.append("what the dead kernel's sandbox showed")
            raise RuntimeError("Kernel died before replying to kernel_info")
        return "a client"

    async def start_kernel(self):
        calls.append("fresh kernel")

    monkeypatch.setattr(NotebookClient, "async_start_new_kernel_client", start_client)
    monkeypatch.setattr(GuardedExecute, "async_start_new_kernel", start_kernel)
    monkeypatch.setattr(GuardedExecute, "create_kernel_manager",
                        lambda self: calls.append("new manager"))
    execute = GuardedExecute()
    execute._notes, execute._adopted = ["before"], True
    assert execute.start_new_kernel_client() == "a client"
    assert calls == ["client", "new manager", "fresh kernel", "client"]
    assert execute._notes == ["before"]  # nothing of the spare's kernel in the student's notes
    # A kernel started for the job is not retried: its failure is the submission's.
    execute._adopted = False
    calls.clear()
    with pytest.raises(RuntimeError, match="Kernel died"):
        execute.start_new_kernel_client()
    assert calls == ["client"]


@pytest.mark.slow
def test_a_spare_killed_while_waiting_costs_the_next_student_nothing(tmp_path):
    import os
    import signal
    import time

    import psutil

    from autograder import grading
    from autograder.grading import SubmissionJob, grade_submission

    fixture = write_fixture(tmp_path)
    course = Course(tmp_path / "course", fixture["notebooks"])
    course.release(["toy"])
    source, release = read_pair(course, "toy")
    for student in ("a", "b"):
        hand_in(course, student, "toy", correct(source, release))
    options = GradingOptions(exercise_modules=tuple(fixture["exercise_modules"]),
                             pythonpath=tuple(fixture["pythonpath"]), submission_timeout=300)
    try:
        first = grade_submission(SubmissionJob(str(course.root), "a", "toy", options))
        (server,) = grading._servers.values()
        (waiting,) = psutil.Process(server.proc.pid).children()  # the spare for the next job
        os.kill(waiting.pid, signal.SIGKILL)
        for _ in range(300):  # dead: a zombie until its server reaps it
            if waiting.status() == psutil.STATUS_ZOMBIE:
                break
            time.sleep(0.1)
        second = grade_submission(SubmissionJob(str(course.root), "b", "toy", options))
    finally:
        close_servers()
    assert first.status == second.status == "graded", (second.status, second.reason)
    assert second.score == first.score > 0
    assert second.prestarted == []  # graded by a worker started for it
