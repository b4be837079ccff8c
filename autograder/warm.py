"""Warm workers: nbgrader and the grader are imported once, and each submission is a fork.

Starting ``python -m autograder.worker`` costs a Python start and nbgrader's imports for every
submission -- about as long as the kernel's own start. A :class:`ForkServer` is a process that
pays that once (``python -m autograder.warm``) and then, for each submission, forks a child that
runs :func:`autograder.worker.main` on the submission's job: a fresh process per submission, as
before (its own session, its log, killed as a tree on timeout), only without the start-up.
Nothing a submission does reaches the next one: the student's code never runs in the worker or
the server, only in the sandboxes each forked worker starts afresh. Each worker is forked one job
ahead (:mod:`autograder.spare`), so that its sandboxes start while the job before it is graded.

The protocol on the server's stdin/stdout is one line each way: ``JOB LOG`` in, ``pid N`` and,
when that worker has ended, ``exit CODE`` out.
"""

from __future__ import annotations

import gc
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from autograder.isolation import kill_tree, release_groups

READY = "ready"


class ForkServer:
    """One warm server, used by one grading process for one submission at a time."""

    def __init__(self, env: dict[str, str]):
        self.env = env
        self.proc = None

    def _start(self) -> None:
        from autograder.grading import _die_with_grader

        self.proc = subprocess.Popen(
            [sys.executable, "-m", "autograder.warm"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, env=self.env, start_new_session=True,
            preexec_fn=_die_with_grader, text=True, bufsize=1)
        if self._line(time.monotonic() + 300) != READY:
            self.close()
            raise RuntimeError("the warm grading server did not start")

    def _line(self, deadline: float) -> str | None:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([self.proc.stdout], [], [], remaining)[0]:
            return None
        return self.proc.stdout.readline().strip()

    def run(self, job: Path, log: Path, timeout: float) -> int | None:
        """Run one worker; its exit code, or None when it outlived ``timeout`` (then killed)."""
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        deadline = time.monotonic() + timeout
        self.proc.stdin.write(f"{job}\t{log}\n")
        answer = self._line(deadline) or ""
        if not answer.startswith("pid "):
            self.close()
            raise RuntimeError(f"the warm grading server answered {answer!r}")
        pid = int(answer.split()[1])
        ended = self._line(deadline)
        if ended is None:  # past the limit: kill the worker and everything it started
            kill_tree(pid)
            release_groups(pid)
            self._line(time.monotonic() + 30)  # the server reports the killed worker
            return None
        if not ended.startswith("exit "):
            self.close()
            raise RuntimeError(f"the warm grading server answered {ended!r}")
        return int(ended.split()[1])

    def close(self) -> None:
        if self.proc is not None:
            # Its end of input first: the server stops its spare (and removes its control
            # groups); the whole tree is killed if it has not ended in time.
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                pass
            kill_tree(self.proc.pid)
            self.proc.wait()
            self.proc = None


def _die_with_server() -> None:
    """A fork does not inherit the parent-death signal: ask for it again."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def serve() -> None:
    """The server: import once, then hand each job line to a spare worker forked ahead of it."""
    import autograder.worker as worker
    from autograder.protocol import WorkerJob
    from autograder.spare import Spare

    worker.warm_up()
    # The forked workers share the server's objects copy-on-write; a collection in a worker
    # would touch (and so copy) every one of them. Frozen objects are never collected.
    gc.collect()
    gc.freeze()
    print(READY, flush=True)
    spare = None
    try:
        for line in sys.stdin:
            job, _, log = line.rstrip("\n").partition("\t")
            current = spare
            if current is not None and not current.hand(job, log):
                current.discard()  # it died waiting (killed from outside): start afresh
                current = None
            if current is None:
                current = Spare(None, worker.main)
                current.hand(job, log)
            print(f"pid {current.pid}", flush=True)
            # The next worker starts its sandboxes now, as this job's, while this one is graded.
            try:
                spare = Spare(WorkerJob.read(job), worker.main)
            except (OSError, ValueError, TypeError):
                spare = None
            print(f"exit {current.wait()}", flush=True)
    finally:
        if spare is not None:
            spare.discard()


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    serve()
