"""The Jupyter kernel that executes a submission, started inside a sandbox.

nbgrader's ``Execute`` (an nbclient ``NotebookClient``) starts its kernel through the
``kernel_manager_class`` it is configured with. :class:`SandboxedKernelManager` is that class:

* the kernel talks to the grader over ZeroMQ **IPC sockets** in the sandbox's one writable
  folder (the sandbox has no network, not even the host's loopback), named by a connection file
  written there; the folder is bind-mounted at the same path inside, so both ends agree on it;
* its command line is the sandbox's (:mod:`autograder.isolation`) around ``ipykernel_launcher``
  (:mod:`autograder.boxed.kernel_launcher`, which defers matplotlib's import to its first use and
  starts without ipykernel's debugger);
* interrupts travel as ``interrupt_request`` messages: a SIGINT would reach bubblewrap outside,
  not the kernel in its PID namespace, and would kill the sandbox instead of interrupting a cell.

The sandbox's settings come from the configuration (``SandboxedKernelManager.sandbox``, plain
JSON), which the worker fills in.
"""

from __future__ import annotations

import copy
import os
import subprocess
from pathlib import Path

import zmq
import zmq.asyncio
from jupyter_client.manager import AsyncKernelManager
from traitlets import Dict

from autograder.isolation import Limits, Sandbox

MAX_MESSAGE = 64 * 1024 * 1024  # bytes of one message from the kernel
LAUNCHER = Path(__file__).resolve().parent / "boxed" / "kernel_launcher.py"


def sandbox_from_spec(spec: dict) -> Sandbox:
    return Sandbox(spec["workdir"], readable=spec.get("readable", ()),
                   pythonpath=spec.get("pythonpath", ()), limits=Limits(**spec.get("limits", {})),
                   enabled=spec.get("enabled", True), env=spec.get("env"))


class SandboxedKernelManager(AsyncKernelManager):
    """A kernel manager whose kernels run in a sandbox and listen on IPC sockets."""

    sandbox = Dict(help="Sandbox settings: workdir, readable, pythonpath, limits, enabled").tag(config=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._box = sandbox_from_spec(self.sandbox)
        if self._box.enabled and str(LAUNCHER.parent) not in self._box.readable:
            self._box.readable.append(str(LAUNCHER.parent))
        sockets = self._box.workdir / "k"
        sockets.mkdir(exist_ok=True)
        self.transport = "ipc"
        self.ip = str(sockets / "k")
        self.connection_file = str(sockets / "connection.json")

    @property
    def kernel_spec(self):
        spec = super().kernel_spec
        if spec is not None and spec.interrupt_mode != "message":
            spec = copy.copy(spec)
            spec.interrupt_mode = "message"
            self._kernel_spec = spec
        return spec

    def client(self, **kwargs):
        """A client whose sockets drop any message over MAX_MESSAGE: the kernel is the student's,
        and an enormous message would be decoded in the grader's memory."""
        context = zmq.asyncio.Context()
        context.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE)
        return super().client(context=context, **kwargs)

    def format_kernel_cmd(self, extra_arguments=None):
        argv = [self._box.python, str(LAUNCHER), "-f",
                os.path.realpath(self.connection_file), *(extra_arguments or [])]
        return self._box.command(argv)

    async def _async_launch_kernel(self, kernel_cmd, **kw):
        # Only the sandbox decides the kernel's environment and folder.
        kw["env"] = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        kw["cwd"] = str(self._box.workdir)
        kw["stdout"] = kw["stderr"] = subprocess.DEVNULL  # the kernel's own chatter, not the student's
        if not self._box.enabled:
            kw["env"] = self._box.environment()
            kw["cwd"] = str(Path(self._box.workdir) / "home")
        await super()._async_launch_kernel(kernel_cmd, **kw)
        process = getattr(self.provisioner, "process", None)
        if process is not None:
            self._box.watch(process)

    _launch_kernel = _async_launch_kernel

    async def _async_shutdown_kernel(self, now: bool = False, restart: bool = False) -> None:
        # Look at what the student's code left behind before it all goes.
        self.observations = self._box.observe()
        await super()._async_shutdown_kernel(now=now, restart=restart)

    shutdown_kernel = _async_shutdown_kernel
