"""The checks of a submission, decided in the grader while the student's code runs in a sandbox.

Student code is hostile. So it runs in a child process (:mod:`autograder.boxed.child`, started by
a :class:`Launcher`, inside bubblewrap or not) that only executes the student's cells and calls
the student's functions when asked; the grader talks to it over :mod:`autograder.boxed.wire`.
Every ``Check.run`` runs *here*, on a :class:`RemoteNamespace` whose entries are proxies of the
student's definitions: the inputs are drawn here, the calls go to the child, the results come
back as plain data, and the reference outputs, the comparison, the points and the hints never
leave this process. Patching ``np.allclose``, the check objects or the library in the child
changes nothing the grader looks at.

:func:`run_checks` watches the child. Each cell of the job and each check has ``timeout`` seconds;
a cell that hangs or kills the child is recorded and skipped when the child is started again (at
most :data:`MAX_RESTARTS` times), and a check that hangs, kills the child or sends garbage fails
with a one-line reason before the child is restarted for the next check. :func:`judge` then turns
the outputs into a :class:`Verdict` per exercise.
"""

from __future__ import annotations

import importlib.util
import os
import re
import resource
import signal
import subprocess
import sys
import time
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from autograder.boxed import wire
from autograder.exercise import Exercise, rng_for

MAX_RESTARTS = 12
STARTUP_GRACE = 30.0     # starting Python and running the setup cell is not the student's time
SHARED_MARGIN = 0.5      # CPU seconds a cell's own budget must have left to blame the shared one
BACKSTOP_FACTOR = 2      # a step also ends after this many times its limit on the wall clock (+10 s)
FEEDBACK_CHARS = 200     # any text from the child that can reach the feedback
CHILD = Path(__file__).resolve().parent / "boxed" / "child.py"
GAVE_UP = "the checks could not be run (the process kept failing)"


# ---------------------------------------------------------------------------------------------
# Which exercises a notebook has
# ---------------------------------------------------------------------------------------------
def load_module_file(path: str):
    """An exercise module given by file (tests keep theirs outside the package)."""
    name = "autograder_extra_" + Path(path).stem
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def exercises_for(notebook: str, modules: tuple[str, ...] | list[str] = ()) -> list:
    """The exercises of ``notebook``: from the catalogue, plus any extra module files."""
    found = []
    for path in modules:
        module = load_module_file(path)
        if module.NOTEBOOK == notebook:
            found.extend(module.EXERCISES)
    if not found:
        from autograder.exercises import catalogue

        found.extend(catalogue().get(notebook, {}).values())
    return found


# ---------------------------------------------------------------------------------------------
# Starting the child
# ---------------------------------------------------------------------------------------------
class Launcher(Protocol):
    """How the child is started: ``python <child_path>`` with the protocol on stdin and stdout.

    ``start`` returns the child with ``stdin`` and ``stdout`` as pipes (the protocol), stderr
    discarded, in a session of its own; ``stop`` kills it and everything it started, and closes
    the pipes. ``child_path`` is where child.py is as the started process sees it.
    """

    child_path: str

    def start(self) -> subprocess.Popen: ...

    def stop(self, proc: subprocess.Popen) -> None: ...


def kill_tree(pid: int) -> None:
    """SIGKILL a process and every descendant (a child may start its own sessions)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    doomed, todo = [], [pid]
    while todo:
        p = todo.pop()
        doomed.append(p)
        todo.extend(children.get(p, []))
    for p in doomed:
        try:
            os.kill(p, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


class LocalLauncher:
    """The child as a plain subprocess of this Python, *without* a sandbox (tests, --no-sandbox).

    ``pythonpath``: the folders the student's imports come from (a course's library);
    ``cwd``: where the child runs; ``memory_mb``: an address-space cap (RLIMIT_AS), if any.
    """

    def __init__(self, pythonpath: Sequence[str | os.PathLike] = (), cwd: str | os.PathLike | None = None,
                 *, memory_mb: int | None = None, env: Mapping[str, str] | None = None):
        self.pythonpath = [str(p) for p in pythonpath]
        self.cwd = None if cwd is None else str(cwd)
        self.memory_mb = memory_mb
        self.env = dict(os.environ if env is None else env)
        self.child_path = str(CHILD)

    def start(self) -> subprocess.Popen:
        env = dict(self.env, PYTHONPATH=os.pathsep.join(self.pythonpath), MPLBACKEND="Agg")
        limit = None
        if self.memory_mb is not None:
            cap = self.memory_mb << 20

            def limit():
                resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

        return subprocess.Popen([sys.executable, self.child_path], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0,
                                cwd=self.cwd, env=env, start_new_session=True, preexec_fn=limit)

    def stop(self, proc: subprocess.Popen) -> None:
        if proc.poll() is None:  # not yet reaped, so its pid cannot belong to another process
            kill_tree(proc.pid)
        try:  # what it started in its session, even after it has gone
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                pipe.close()
        proc.wait()


# ---------------------------------------------------------------------------------------------
# What the checks found
# ---------------------------------------------------------------------------------------------
@dataclass
class OutsideResult:
    """Per-check outputs (or errors), and what went wrong around them."""

    outputs: dict[str, dict | None] = field(default_factory=dict)   # "ex/check" -> outputs
    errors: dict[str, str] = field(default_factory=dict)            # "ex/check" -> message
    cell_errors: dict[str, str] = field(default_factory=dict)       # grade id -> message
    calls: dict[str, list[str]] = field(default_factory=dict)       # exercise -> forbidden calls
    tampered: bool = False
    restarts: int = 0


class RemoteNamespace(Mapping):
    """The student's namespace as ``Check.run`` sees it: each entry a proxy of the child's object."""

    def __init__(self, conn: wire.Connection):
        self._conn = conn

    def __getitem__(self, name):
        if type(name) is not str:
            raise KeyError(name)
        try:
            return self._conn.request("get", name)
        except KeyError:  # the remote KeyError: the name is not defined there
            raise KeyError(name) from None

    def _names(self) -> list[str]:
        names = self._conn.request("names")
        if type(names) is not list or not all(type(n) is str for n in names):
            raise self._conn._break(wire.ProtocolError("the names of the namespace are not strings"))
        return names

    def __iter__(self):
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())


def _safe_char(c: str) -> str:
    """A character of text from the child as it may be printed: itself, a space, or nothing."""
    category = unicodedata.category(c)
    if category[0] == "Z" or c in "\t\n\v\f\r\x1c\x1d\x1e\x1f\x85":
        return " "        # separators and line breaks: one line, words kept apart
    if category[0] == "C":
        return ""         # C0, DEL, C1 (ESC, CSI...), bidi and other format characters, ...
    return c


def printable(value, limit: int = FEEDBACK_CHARS) -> str:
    """Text from the child, safe for the feedback and the instructor's terminal: one line of
    printable characters (no control, escape, bidi or other format character), capped."""
    try:
        text = str(value)
    except Exception:  # an object whose __str__ fails
        text = f"({type(value).__name__})"
    if not text.isprintable():  # any character outside letters, marks, numbers, symbols, " "
        cut = len(text) > 4 * limit
        text = "".join(_safe_char(c) for c in text[: 4 * limit]) + ("..." if cut else "")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _holds_proxy(value, depth: int = 0) -> bool:
    if isinstance(value, wire.Proxy):
        return True
    if isinstance(value, (list, tuple)) and depth < 32:
        return any(_holds_proxy(v, depth + 1) for v in value)
    return False


def plain_outputs(outputs) -> dict:
    """A check's outputs as plain numbers, strings and arrays; TypeError on anything else.

    A check returns what the student's code computed, possibly an object of the child (a proxy):
    that is refused here, before NumPy could start asking the child questions about it. Whatever
    else goes wrong with a value (a ragged list, an int too large for any float, a shape NumPy
    cannot hold...) is a TypeError too: it fails the check, never the grading.
    """
    if not isinstance(outputs, dict):
        raise TypeError(f"the check returned {type(outputs).__name__}, not a dict")
    clean = {}
    for key, value in outputs.items():
        key = printable(key, 100)
        if value is None or isinstance(value, (bool, np.bool_)):
            clean[key] = None if value is None else bool(value)
        elif isinstance(value, str):
            clean[key] = printable(value)
        elif isinstance(value, (int, np.integer)):
            clean[key] = int(value)
        elif isinstance(value, (float, np.floating)):
            clean[key] = float(value)
        else:
            if _holds_proxy(value):
                raise TypeError(f"{key}: an object of your code, not numbers")
            try:
                array = np.array(value)
            except Exception as exc:  # ValueError (ragged), OverflowError, MemoryError, ...
                raise TypeError(f"{key}: not an array of numbers ({type(exc).__name__})") from None
            if array.dtype.kind not in "biufc":
                raise TypeError(f"{key}: not numbers ({type(value).__name__})")
            clean[key] = array
    return clean


# ---------------------------------------------------------------------------------------------
# Running the checks
# ---------------------------------------------------------------------------------------------
def _no_notes(text: str) -> None:
    raise wire.ProtocolError("a note after the job")


def _describe(item: str) -> str:
    kind, _, name = item.partition(" ")
    return f"your {name} cell" if kind == "cell" else f"check {name}"


def exit_code(proc: subprocess.Popen, wait: float = 2.0) -> int | None:
    """How ``proc`` ended (negative: the signal), or None if it is still running after ``wait`` s.

    The process is left unreaped (``WNOWAIT``): until the launcher stops it, its pid stays its
    own, so killing what it started can never hit an unrelated process that reused the number.
    """
    until = time.monotonic() + wait
    while True:
        try:
            info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:  # already reaped
            return proc.returncode
        if info is not None and info.si_pid == proc.pid:
            return info.si_status if info.si_code == os.CLD_EXITED else -info.si_status
        if time.monotonic() > until:
            return None
        time.sleep(0.01)


_TICKS = os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds used by ``pid`` and its descendants (their reaped children included)."""
    children: dict[int, list[int]] = {}
    times: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
        # utime, stime, cutime, cstime: fields 14-17 of stat, 12-15 after the name
        times[int(entry)] = sum(int(x) for x in fields[11:15]) / _TICKS
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        total += times.get(p, 0.0)
        todo.extend(children.get(p, []))
    return total


class CpuBudget:
    """A step's time limit counted in the CPU time of the child's processes.

    A machine busy with other gradings stretches the wall clock, not the CPU time a student's
    code needs: counted in CPU seconds, a limit never fails correct code for being slow to get
    a core, and a memory bomb meets the memory cap before its time is up. Code that sleeps or
    waits uses no CPU: a wall-clock backstop, twice the limit and 10 s, catches it.

    The grader's own thread counts too (the budget is made and asked in the thread that talks to
    the child): while it waits for the child it uses no CPU, so what it uses in the step is the
    work the child asked of it -- a child that floods the grader's callbacks spends its budget
    on them, instead of idling cheaply while the grader works.
    """

    def __init__(self, proc, seconds: float):
        self.pid, self.seconds = proc.pid, seconds
        # The sandbox's control group, where there is one: it also counts the processes that
        # ended unseen (a walk over /proc misses children whose parent ignores SIGCHLD).
        self.group = getattr(proc, "cpu_seconds", None)
        if self.group is not None and self.group() is None:  # no group is counted here
            self.group = None
        self.start = self._used()
        self.wall_end = time.monotonic() + BACKSTOP_FACTOR * seconds + 10
        self.checked_at, self.cpu_left = time.monotonic(), seconds

    def _used(self) -> float:
        # The group holds every process of the sandbox from its first instruction on, so where
        # it is counted it is all there is to read; the walk over /proc (every process on the
        # machine, a few milliseconds each time) is the fallback where there is no group.
        used = self.group() if self.group is not None else None
        if used is None:
            used = tree_cpu_seconds(self.pid)
        return used + time.thread_time()

    def cpu_left_now(self) -> float:
        """The CPU seconds left, read now."""
        return self.seconds - (self._used() - self.start)

    def left(self) -> float:
        now = time.monotonic()
        if now - self.checked_at >= 0.2:  # /proc is read a few times a second, not per message
            self.cpu_left = self.cpu_left_now()
            self.checked_at = now
        return min(self.cpu_left, self.wall_end - now)


class Earliest:
    """Several budgets at once: the step ends when the first of them runs out."""

    def __init__(self, *budgets):
        self.budgets = budgets

    def left(self) -> float:
        return min(b.left() for b in self.budgets)


class _Session:
    """One ``run_checks``: the child of the moment, the cells to skip, the result so far."""

    def __init__(self, exercises, setup: str, cells, launcher: Launcher, timeout: float):
        self.exercises = list(exercises)
        self.setup = setup
        self.cells = [(str(gid), str(source)) for gid, source in cells]
        self.launcher = launcher
        self.timeout = timeout
        self.skipped: dict[str, str] = {}
        self.result = OutsideResult()
        self.proc: subprocess.Popen | None = None
        self.conn: wire.Connection | None = None

    # --- the child's life --------------------------------------------------------------------
    def start(self) -> bool:
        """A child that has run the job; False once the restarts are used up."""
        items = ["cell setup"] + [f"cell {gid}" for gid, _ in self.cells]
        job = {"setup": self.setup, "cells": [list(c) for c in self.cells],
               "forbidden": {ex.name: list(ex.forbidden) for ex in self.exercises}}
        while self.result.restarts <= MAX_RESTARTS:
            self.proc = self.launcher.start()
            started: list[str] = []
            # Exactly the notes the child sends, in order: "start X", "done X" for each step not
            # skipped. Each one accepted starts a new budget, so each may come once: a repeated
            # or forged note (the student's code can write on the pipe) breaks the protocol.
            notes = [f"{word} {item}" for item in items if item not in self.skipped
                     for word in ("start", "done")]
            heard = 0
            # The solution cells share one budget as well as each having its own: work spread
            # over several cells (a model trained a little in each) meets the same limit as
            # work done in one.
            shared: list[CpuBudget] = []
            step: list[CpuBudget] = []    # the budget of the cell now running, alone

            def on_note(text: str) -> None:
                nonlocal heard
                if heard >= len(notes) or text != notes[heard]:
                    raise wire.ProtocolError("a note out of order")
                heard += 1
                word, _, item = text.partition(" ")
                if word == "start":
                    started.append(item)
                if (word, item) == ("done", "cell setup"):
                    shared.append(CpuBudget(self.proc, self.timeout))
                # The setup cell is the course's (imports, data): it gets the start-up's grace.
                grace = STARTUP_GRACE if (word, item) == ("start", "cell setup") else 0.0
                step[:] = [CpuBudget(self.proc, self.timeout + grace)]
                self.conn.deadline = Earliest(*step, *shared)

            self.conn = wire.Connection(self.proc.stdout.fileno(), self.proc.stdin.fileno(),
                                        serve=wire.SERVED_BY_GRADER, on_note=on_note)
            self.conn.deadline = CpuBudget(self.proc, self.timeout + STARTUP_GRACE)
            try:
                report = self.conn.request("job", dict(job, skip=sorted(self.skipped)))
                cells = report["cells"] if type(report) is dict and type(report.get("cells")) is dict else None
                if cells is None:
                    raise wire.ProtocolError("the job's report is not a dict of cell errors")
                if heard != len(notes):
                    raise wire.ProtocolError("the job's report came before its cells were run")
            except (wire.WireError, wire.RemoteError) as exc:
                current = started[-1] if started else "cell setup"
                why = self.why(exc)
                # The shared budget ran out, not this cell's own: the cells before it used the rest.
                if (isinstance(exc, wire.DeadlineExceeded) and shared and step
                        and step[0].cpu_left_now() > SHARED_MARGIN):
                    why = (f"did not finish within the {self.timeout:g} s of CPU that the solution "
                           "cells share (with the cells before it)")
                self.skipped[current] = f"{_describe(current)} {why}"
                self.stop()
                self.result.restarts += 1
                continue
            self.result.cell_errors = {printable(k, 100): printable(v) for k, v in cells.items()}
            self.conn.on_note = _no_notes
            return True
        return False

    def stop(self) -> None:
        if self.proc is not None:
            self.launcher.stop(self.proc)
        self.proc = self.conn = None

    def why(self, exc: Exception) -> str:
        """The one-line reason a step failed, from how the connection broke."""
        if isinstance(exc, wire.DeadlineExceeded):
            return f"did not finish within {self.timeout:g} s"
        if isinstance(exc, wire.ConnectionLost):
            code = exit_code(self.proc)
            if code is None:  # closed its pipes but lives on
                self.launcher.stop(self.proc)
                code = self.proc.returncode
            if code == wire.MEMORY_EXIT:
                return "ran out of memory (the memory cap)"
            return f"ended the process (exit code {code})"
        return "sent something that is not plain data"

    # --- one check ---------------------------------------------------------------------------
    def check(self, ex: Exercise, check) -> None:
        key = f"{ex.name}/{check.name}"
        if self.conn is None and not self.start():
            self.result.outputs[key], self.result.errors[key] = None, GAVE_UP
            return
        conn = self.conn
        conn.deadline = CpuBudget(self.proc, check.cpu_limit or self.timeout)
        outputs, error = None, ""
        try:
            conn.request("begin", ex.name)
            try:
                raw = check.run(RemoteNamespace(conn), rng_for(ex, check))
            except NotImplementedError:
                error = "not implemented yet"
            except Exception as exc:  # the student's code may raise anything, here or there
                if conn.broken is not None:
                    raise conn.broken
                error = f"raised {printable(type(exc).__name__, 60)}: {printable(exc)}"
                if check.hidden and not FORBIDDEN_REFUSAL.search(error) and not UNDEFINED.fullmatch(error):
                    # A message could quote the hidden inputs back into the feedback.
                    error = (f"raised {printable(type(exc).__name__, 60)} (in a hidden check "
                             "its message is not shown)")
            else:
                try:
                    outputs = plain_outputs(raw)
                except Exception as exc:  # TypeError, and whatever else a value can provoke
                    error = f"returned something that is not plain numbers: {printable(exc)}"
            if conn.broken is not None:  # a wire failure the check's own code swallowed
                raise conn.broken
            self.watch(ex, conn.request("end"))
            conn.forget()
        except wire.WireError as exc:
            outputs, error = None, self.why(exc)
            self.stop()
            self.result.restarts += 1
        except wire.RemoteError as exc:  # begin or end refused: the child's machinery is broken
            outputs, error = None, f"the process failed ({printable(exc, 100)})"
            self.stop()
            self.result.restarts += 1
        self.result.outputs[key] = outputs
        if outputs is None:
            self.result.errors[key] = error or "failed"

    def watch(self, ex: Exercise, report) -> None:
        """Record what the guard saw during one check of ``ex``."""
        if (type(report) is not dict or type(report.get("calls")) is not list
                or type(report.get("tampered")) is not bool):
            raise self.conn._break(wire.ProtocolError("the guard's report is malformed"))
        allowed = set(ex.forbidden)
        for call in report["calls"]:
            if type(call) is str and call in allowed:
                seen = self.result.calls.setdefault(ex.name, [])
                if call not in seen:
                    seen.append(call)
        self.result.tampered |= report["tampered"]

    def run(self) -> OutsideResult:
        try:
            self.start()
            for ex in self.exercises:
                for check in ex.checks:
                    self.check(ex, check)
        finally:
            self.stop()
        for item, why in self.skipped.items():
            self.result.cell_errors[item.partition(" ")[2]] = why
        return self.result


def run_checks(exercises, setup: str, cells, launcher: Launcher, timeout: float = 30) -> OutsideResult:
    """Run every check of ``exercises`` here against the student's code run by ``launcher``.

    ``setup`` is the notebook's setup cell, ``cells`` its solution cells as (grade id, source).
    """
    return _Session(exercises, setup, cells, launcher, timeout).run()


# ---------------------------------------------------------------------------------------------
# The verdict
# ---------------------------------------------------------------------------------------------
@dataclass
class Verdict:
    """An exercise judged outside the kernel."""

    exercise: str
    visible_ok: bool = True
    hidden_passed: int = 0
    hidden_total: int = 0
    lines: list[str] = field(default_factory=list)          # one per check, for the feedback
    visible_failures: list[str] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)
    forbidden: list[str] = field(default_factory=list)
    zero_reason: str = ""                                     # set: the exercise earns nothing
    summary: str = ""                                         # why points were lost, one line

    @property
    def hidden_fraction(self) -> float:
        if self.hidden_total == 0:
            return 1.0 if self.visible_ok else 0.0
        return self.hidden_passed / self.hidden_total


FORBIDDEN_REFUSAL = re.compile(r"forbidden: ([\w.]+) may not be used")
# A name the student's cell never defined: the check found no such key in the namespace.
UNDEFINED = re.compile(r"raised KeyError: '(\w+)'")


def judge(exercises, outside) -> dict[str, Verdict]:
    """Compare the child's outputs with the reference outputs computed here."""
    from autograder.exercise import compare, diagnose, expected_outputs

    verdicts = {}
    for ex in exercises:
        v = Verdict(ex.name)
        actual = {}
        cell_error = outside.cell_errors.get(ex.name)
        if cell_error:
            v.lines.append(f"your {ex.name} cell, run on its own: {cell_error}")
        for check in ex.checks:
            key = f"{ex.name}/{check.name}"
            got = outside.outputs.get(key)
            if got is None:
                ok, why = False, outside.errors.get(key) or outside.errors.get("*") or "failed"
                undefined = UNDEFINED.fullmatch(why)
                if undefined:
                    why = f"{undefined[1]} is not defined (its cell did not run to the end)"
            else:
                actual[check.name] = got
                want = expected_outputs(ex, check)   # the grader's own: its failure is a bug
                try:
                    ok, why = compare(want, got, check.tol)
                except Exception as exc:  # the student's outputs: they fail this check alone
                    ok, why = False, f"could not be compared ({type(exc).__name__})"
            label = "visible check" if not check.hidden else "check"
            v.lines.append(f"{'ok  ' if ok else 'FAIL'} {label} {check.name}" + (f": {why}" if why else ""))
            if check.hidden:
                v.hidden_total += 1
                v.hidden_passed += ok
            elif not ok:
                v.visible_ok = False
                v.visible_failures.append(f"{check.name}: {why}")
        # A forbidden function of the check edition refused to run (edition.build_check_edition).
        refused = [m[1] for c in ex.checks
                   for m in [FORBIDDEN_REFUSAL.search(outside.errors.get(f"{ex.name}/{c.name}", ""))] if m]
        calls = list(dict.fromkeys(outside.calls.get(ex.name, []) + refused))
        if calls:
            v.forbidden = calls
            called = ", ".join(f"your own {name[len('__main__.'):]}" if name.startswith("__main__.")
                               else name for name in v.forbidden)
            v.zero_reason = f"your {ex.name} calls {called}: write it yourself; 0 points for this exercise"
        elif outside.tampered:
            v.zero_reason = ("your code switched off or hid from the grader's watch on library calls "
                             "(its hook removed or replaced, or work done in threads or processes "
                             "it cannot see); 0 points for this exercise")
        if v.zero_reason:
            v.visible_ok, v.hidden_passed = False, 0
        elif v.hidden_passed < v.hidden_total or not v.visible_ok:
            try:
                v.hints = diagnose(ex, actual)
            except Exception as exc:  # a broken catalogue entry must not stop grading
                v.lines.append(f"(hints unavailable: {type(exc).__name__})")
        if v.zero_reason:
            v.summary = v.zero_reason
        elif cell_error:
            v.summary = f"your {ex.name} cell, run on its own: {cell_error}"
        elif all(outside.errors.get(f"{ex.name}/{c.name}") == "not implemented yet" for c in ex.checks):
            v.summary = f"{ex.name}: not implemented yet"
        elif not v.visible_ok:
            v.summary = f"{ex.name}: visible checks failed outside your kernel ({v.visible_failures[0]})"
        elif v.hidden_passed < v.hidden_total:
            v.summary = f"{ex.name}: {v.hidden_total - v.hidden_passed} of {v.hidden_total} hidden checks failed"
        if v.hints and v.summary:
            v.summary += f" -- hint: {v.hints[0]}"
        verdicts[ex.name] = v
    return verdicts
