"""Spare workers: the next submission's kernel and check child start while this one is graded.

A submission's kernel takes about half a second to start (Python, ipykernel, a handshake) and its
check child a sixth of one (Python, NumPy): time in which its worker waits and does nothing. So
the warm server (:mod:`autograder.warm`) forks each worker *before* its submission arrives -- a
spare -- and the spare starts a kernel and a check child at once, each in a fresh sandbox over a
fresh folder of its own, while the submission before it is still being graded. When its job
comes, the spare's worker adopts both, and nbgrader runs the notebook in that kernel exactly as
in one it started itself.

What is shared is only time: the spare is forked from the server, never from a worker, and its
kernel and child have seen nothing but their own start-up -- the student's code reaches them
only after the job arrives. A spare is speculative: it starts its sandboxes with the settings
of the submission before it (the same assignment, as the grader hands a worker its jobs in
assignment order). When the job's settings differ (another assignment's library, other
limits), the spare stops what it started and the worker starts its own, as without a spare.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from jupyter_core.utils import run_sync

from autograder.protocol import WorkerJob

# What the worker adopts is found here: a worker process grades one submission, so one slot each.
_kernel = None        # a started autograder.kernel.SandboxedKernelManager
_checks = None        # (launcher, process): a started check child
adopted: list[str] = []   # what the worker took: "kernel", "check child" (its report says)


def same_sandbox(a: dict, b: dict) -> bool:
    """Two sandbox settings that differ at most in their writable folder."""
    return {**a, "workdir": None} == {**b, "workdir": None}


@dataclass
class Started:
    """What a spare started, and the settings it started them with."""

    kernel_sandbox: dict
    checks_sandbox: dict


def start(previous: WorkerJob, folder: Path) -> Started:
    """In the spare: a kernel and a check child, sandboxed as ``previous``'s would be, in ``folder``."""
    global _kernel, _checks
    from jupyter_client.kernelspec import NATIVE_KERNEL_NAME
    from nbclient import NotebookClient

    from autograder.isolation import ChildLauncher
    from autograder.kernel import SandboxedKernelManager, sandbox_from_spec
    from autograder.worker import autograde_config

    config = autograde_config(previous)
    kernel_sandbox = {**config.SandboxedKernelManager.sandbox, "workdir": str(folder / "k")}
    checks_sandbox = {**config.OutsideChecks.sandbox, "workdir": str(folder / "c")}
    config.SandboxedKernelManager.sandbox = kernel_sandbox
    started = Started(kernel_sandbox, checks_sandbox)

    launcher = ChildLauncher(sandbox_from_spec(checks_sandbox))
    _checks = (launcher, launcher.start())
    km = SandboxedKernelManager(kernel_name=NATIVE_KERNEL_NAME, config=config)
    # The arguments nbclient gives the kernels it starts itself (its in-memory history).
    history = NotebookClient.ipython_hist_file.default_value
    run_sync(km.start_kernel)(extra_arguments=[f"--HistoryManager.hist_file={history}"])
    _kernel = km
    return started


def adopt(config, started: Started | None) -> None:
    """In the worker: give the submission what its spare started, if it was started alike.

    ``config`` is the submission's own; where the spare's sandboxes match it, the configuration
    is pointed at the spare's folders (so that nothing starts over in another), and the kernel
    and the check child are left for :func:`take_kernel` and :func:`take_checks`.
    """
    global _kernel, _checks
    if started is not None and same_sandbox(config.SandboxedKernelManager.sandbox, started.kernel_sandbox):
        config.SandboxedKernelManager.sandbox = started.kernel_sandbox
    else:
        _drop_kernel()
    if started is not None and same_sandbox(config.OutsideChecks.sandbox, started.checks_sandbox):
        config.OutsideChecks.sandbox = started.checks_sandbox
    else:
        _drop_checks()


def take_kernel(kernel_name: str | None):
    """The spare's kernel (once), if :func:`adopt` kept it, it is of this kind and still alive."""
    global _kernel
    km, _kernel = _kernel, None
    if km is None:
        return None
    if (kernel_name or km.kernel_name) == km.kernel_name and km.has_kernel and run_sync(km.is_alive)():
        adopted.append("kernel")
        return km
    _stop_kernel(km)  # another kind, or one that died waiting: the worker starts a new one
    return None


def take_checks():
    """The spare's check child as (launcher, process), once, if :func:`adopt` kept it and it
    is still alive."""
    global _checks
    found, _checks = _checks, None
    if found is None:
        return None
    launcher, proc = found
    if proc.poll() is None:
        adopted.append("check child")
        return found
    launcher.stop(proc)
    return None


def release() -> None:
    """Stop whatever the worker did not adopt."""
    _drop_kernel()
    _drop_checks()


def _drop_kernel() -> None:
    global _kernel
    if _kernel is not None:
        _stop_kernel(_kernel)
        _kernel = None


def _drop_checks() -> None:
    global _checks
    if _checks is not None:
        launcher, proc = _checks
        launcher.stop(proc)
        _checks = None


def _stop_kernel(km) -> None:
    try:
        run_sync(km.shutdown_kernel)(now=True)
    except Exception:  # already gone is fine: the worker's end removes its control groups
        pass


# ---------------------------------------------------------------------------------------------
# The server's side
# ---------------------------------------------------------------------------------------------
class Spare:
    """A worker forked ahead of its job: ``hand(job, log)`` gives it one, ``wait()`` its exit."""

    def __init__(self, previous: WorkerJob | None, run):
        """Fork now; the child starts its sandboxes (as ``previous``'s) and waits for a job,
        then runs ``run(job_path, started)`` and exits with what it returns."""
        # Short: the kernel's socket paths live under it, and a socket path has at most 107 bytes.
        self.folder = Path(tempfile.mkdtemp(prefix="spare-", dir="/tmp"))
        read, self._write = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            os.close(self._write)
            os._exit(_child(read, previous, self.folder, run))
        os.close(read)

    def hand(self, job: str, log: str) -> bool:
        """Give the spare its job; False if it died waiting (then :meth:`discard` it)."""
        try:
            os.write(self._write, json.dumps([job, log]).encode() + b"\n")
        except OSError:  # no reader left: the spare is gone
            return False
        os.close(self._write)
        return True

    def wait(self) -> int:
        _, status = os.waitpid(self.pid, 0)
        shutil.rmtree(self.folder, ignore_errors=True)
        return os.waitstatus_to_exitcode(status)

    def discard(self) -> None:
        """A spare no job came for (the server is closing): it stops what it started."""
        from autograder.isolation import kill_tree, release_groups

        try:
            os.close(self._write)  # the spare reads no job, and stops its kernel and child
        except OSError:
            pass
        for _ in range(100):
            try:
                if os.waitpid(self.pid, os.WNOHANG) != (0, 0):
                    break
            except ChildProcessError:  # reaped already
                break
            time.sleep(0.05)
        else:
            kill_tree(self.pid)
            os.waitpid(self.pid, 0)
        release_groups(self.pid)
        shutil.rmtree(self.folder, ignore_errors=True)


def _child(read: int, previous: WorkerJob | None, folder: Path, run) -> int:
    from autograder.isolation import private_mounts
    from autograder.warm import _die_with_server

    try:
        os.setsid()
        _die_with_server()
        nothing = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(nothing, fd)
        private_mounts()  # first, while this process has one thread: each sandbox's folder a tmpfs
        started, failure = None, None
        if previous is not None:
            try:
                started = start(previous, folder)
            except Exception as exc:  # the worker starts its own, and its log says why
                release()
                failure = f"the spare's kernel did not start: {type(exc).__name__}: {exc}"
        with os.fdopen(read, "rb") as pipe:
            line = pipe.readline()
        if not line:  # the server closed without a job
            release()
            return 0
        job, log = json.loads(line)
        out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(out, 1)
        os.dup2(out, 2)
        if failure:
            print(failure, flush=True)
        os.chdir(Path(job).parent)
        return run(job, started)
    except BaseException:
        return 70
