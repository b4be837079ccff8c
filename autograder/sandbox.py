"""Outside-the-kernel checks: the student's definitions run in a child process, numbers come back.

The grader must not trust anything the student's kernel can change. So for the hidden checks a
fresh child process (this module's ``main``) executes the setup cell and the student's solution
cells, then calls each ``Check.run`` of the notebook's exercises on that namespace and ships the
*outputs* back as plain data -- arrays in an ``.npz`` file written with ``allow_pickle=False``,
everything else as JSON -- never a pickle, so nothing the student made can travel back as an
object. The parent (:func:`run_outside`) compares them with the reference outputs it computes
itself.

While a check of an exercise runs, calls to the library functions the exercise ``forbidden``
are recorded and refused: the module attributes are wrapped (so ``cs231n_lib.layers.relu_backward``
raises), and a profile hook watches for the original functions' code however it was reached
(a reload, a saved reference). The exercise's own reference implementation counts as forbidden.

The child is watched step by step: it reports each step (a cell, a check) on a pipe before and
after running it. A step that outlives the timeout, or kills the process (a crash, a memory
bomb), is recorded as failed and the child is started again without it, so one runaway cell
costs only its own exercise.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

MAX_RESTARTS = 12
MEMORY_EXIT = 86  # the child exits with this after a MemoryError, so its memory is released


# ---------------------------------------------------------------------------------------------
# Which exercises a notebook has (shared by both sides)
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
# The child
# ---------------------------------------------------------------------------------------------
class ForbiddenCall(Exception):
    pass


def _resolve(dotted: str):
    """(module, attribute name, object) for ``pkg.mod.name`` or ``pkg.mod.Class.method``."""
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            module = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        owner, obj = module, module
        try:
            for attr in parts[cut:]:
                owner, obj = obj, getattr(obj, attr)
        except AttributeError:
            return None
        return owner, parts[-1], obj
    return None


def _codes(obj) -> list:
    if hasattr(obj, "__code__"):
        return [obj.__code__]
    if isinstance(obj, type):
        return [v.__code__ for v in vars(obj).values() if hasattr(v, "__code__")]
    return []


class Guard:
    """Records (and refuses) calls to forbidden functions while an exercise is being checked."""

    def __init__(self, exercises):
        self.active: str | None = None
        self.calls: dict[str, list[str]] = {}
        self.tampered = False
        self.codes: dict[tuple[str, str], str] = {}   # (file, qualname) -> dotted name
        self.forbidders: dict[str, set[str]] = {}     # dotted name -> exercises forbidding it
        for ex in exercises:
            for dotted in ex.forbidden:
                found = _resolve(dotted)
                if found is None:
                    continue
                owner, attr, obj = found
                self._forbid(ex.name, dotted, obj)
                setattr(owner, attr, self._wrapper(dotted, obj))
            reference = ex.reference.get(ex.name)
            if reference is not None:
                label = f"the reference solution {getattr(reference, '__module__', '?')}." \
                        f"{getattr(reference, '__qualname__', ex.name)}"
                self._forbid(ex.name, label, reference)

    def _forbid(self, exercise: str, dotted: str, obj) -> None:
        self.forbidders.setdefault(dotted, set()).add(exercise)
        for code in _codes(obj):
            self.codes.setdefault((code.co_filename, code.co_qualname), dotted)

    def _record(self, dotted: str) -> bool:
        if self.active is not None and self.active in self.forbidders.get(dotted, ()):
            calls = self.calls.setdefault(self.active, [])
            if dotted not in calls:
                calls.append(dotted)
            return True
        return False

    def _wrapper(self, dotted, original):
        guard = self

        if isinstance(original, type):
            return original  # classes are watched by the profile hook only

        def forbidden(*args, **kwargs):
            if guard._record(dotted):
                raise ForbiddenCall(f"{dotted} may not be used in this exercise")
            return original(*args, **kwargs)

        forbidden.__name__ = getattr(original, "__name__", "forbidden")
        forbidden.__doc__ = getattr(original, "__doc__", None)
        return forbidden

    def _profile(self, frame, event, arg):
        if event == "call" and self.active is not None:
            code = frame.f_code
            dotted = self.codes.get((code.co_filename, code.co_qualname))
            if dotted is not None:
                self._record(dotted)

    def start(self) -> None:
        sys.setprofile(self._profile)
        threading.setprofile(self._profile)

    def verify(self) -> None:
        if sys.getprofile() != self._profile:
            self.tampered = True
            sys.setprofile(self._profile)


def _pack(outputs, npz_path: str) -> dict:
    """A check's outputs as JSON plus an npz of arrays; raises TypeError on anything else."""
    if not isinstance(outputs, dict):
        raise TypeError(f"the check returned {type(outputs).__name__}, not a dict")
    values, arrays = {}, {}
    for i, (key, value) in enumerate(outputs.items()):
        key = str(key)
        if isinstance(value, (bool, np.bool_)):
            values[key] = bool(value)
        elif value is None:
            values[key] = None
        elif isinstance(value, str):
            values[key] = str(value)
        elif isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            values[key] = int(value)
        elif isinstance(value, (float, np.floating)):
            values[key] = float(value)
        else:
            array = np.asarray(value)
            if array.dtype.kind not in "biufc":
                raise TypeError(f"{key}: not numbers ({type(value).__name__})")
            arrays[f"a{i}"] = np.array(array)
            values[key] = {"array": f"a{i}"}
    if arrays:
        np.savez(npz_path, allow_pickle=False, **arrays)
    return values


def _unpack(values: dict, npz_path: str) -> dict:
    arrays = np.load(npz_path, allow_pickle=False) if os.path.exists(npz_path) else {}
    outputs = {}
    for key, value in values.items():
        if isinstance(value, dict):
            outputs[key] = np.array(arrays[value["array"]])
        else:
            outputs[key] = value
    return outputs


class _Shell:
    """Enough of IPython's ``get_ipython()`` for magics in a cell to be no-ops."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def _compile_cell(source: str, name: str):
    if any(line.lstrip().startswith(("%", "!")) for line in source.splitlines()):
        from IPython.core.inputtransformer2 import TransformerManager

        source = TransformerManager().transform_cell(source)
    return compile(source, f"<{name} cell>", "exec")


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc)[:300]}"


def main(job_path: str) -> None:
    from autograder.exercise import rng_for, run_safely

    job = json.loads(Path(job_path).read_text())
    progress = os.fdopen(job["progress_fd"], "w", buffering=1)
    skip = set(job["skip"])
    out = Path(job["out"])
    exercises = exercises_for(job["notebook"], job["modules"])
    guard = Guard(exercises)
    results: dict[str, Any] = {"cells": {}, "checks": {}, "calls": {}, "tampered": False}

    def step(item: str, action) -> None:
        if item in skip:
            return
        progress.write(f"start {item}\n")
        try:
            action()
        except MemoryError:
            progress.write(f"memory {item}\n")
            os._exit(MEMORY_EXIT)
        progress.write(f"done {item}\n")

    ns: dict[str, Any] = {"__name__": "__main__", "get_ipython": lambda: _Shell(),
                          "display": lambda *a, **k: None}

    def run_cell(name: str, source: str):
        def action():
            try:
                exec(_compile_cell(source, name), ns)
            except MemoryError:
                raise
            except BaseException as exc:  # SystemExit too: a cell must not end the child
                results["cells"][name] = _one_line(exc)
        return action

    step("cell setup", run_cell("setup", job["setup"]))
    for name, source in job["cells"]:
        step(f"cell {name}", run_cell(name, source))
    guard.start()
    for ex in exercises:
        for check in ex.checks:
            key = f"{ex.name}/{check.name}"

            def action(ex=ex, check=check, key=key):
                guard.active = ex.name
                try:
                    outputs, error = run_safely(check, ns, rng_for(ex, check))
                finally:
                    guard.active = None
                    guard.verify()
                if error.startswith("raised MemoryError"):
                    raise MemoryError
                entry = {"error": error}
                if outputs is not None:
                    try:
                        entry["values"] = _pack(outputs, str(out / f"{len(results['checks'])}.npz"))
                        entry["npz"] = f"{len(results['checks'])}.npz"
                    except (TypeError, ValueError) as exc:
                        entry["error"] = f"returned something that is not plain numbers: {exc}"
                results["checks"][key] = entry
            step(f"check {key}", action)
    sys.setprofile(None)
    threading.setprofile(None)
    results["calls"] = guard.calls
    results["tampered"] = guard.tampered
    tmp = out / "results.json.tmp"
    tmp.write_text(json.dumps(results))
    tmp.rename(out / "results.json")
    progress.write("finished\n")
    progress.close()
    os._exit(0)  # skip interpreter shutdown: student objects' __del__ must not run


# ---------------------------------------------------------------------------------------------
# The parent
# ---------------------------------------------------------------------------------------------
@dataclass
class OutsideResult:
    """What the child reported: per-check outputs (or errors), and what went wrong around them."""

    outputs: dict[str, dict | None] = field(default_factory=dict)   # "ex/check" -> outputs
    errors: dict[str, str] = field(default_factory=dict)            # "ex/check" -> message
    cell_errors: dict[str, str] = field(default_factory=dict)       # grade id -> message
    calls: dict[str, list[str]] = field(default_factory=dict)       # exercise -> forbidden calls
    tampered: bool = False
    restarts: int = 0


def kill_tree(pid: int) -> None:
    """SIGKILL a process and every descendant (kernels start their own sessions)."""
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


def _describe(item: str) -> str:
    kind, _, name = item.partition(" ")
    return f"your {name} cell" if kind == "cell" else f"check {name}"


def run_outside(notebook: str, setup: str, cells: list[tuple[str, str]], modules=(),
                cwd: str | None = None, timeout: float = 30, env: dict | None = None) -> OutsideResult:
    """Run the child until it finishes, skipping steps that hang or kill it."""
    skipped: dict[str, str] = {}
    result = OutsideResult()
    with tempfile.TemporaryDirectory(prefix="outside-") as tmp:
        out = Path(tmp)
        for attempt in range(MAX_RESTARTS + 1):
            for f in out.glob("*.npz"):
                f.unlink()
            read_fd, write_fd = os.pipe()
            job = {"notebook": notebook, "setup": setup, "cells": cells, "modules": list(modules),
                   "skip": sorted(skipped), "out": str(out), "progress_fd": write_fd}
            (out / "job.json").write_text(json.dumps(job))
            child_env = dict(env or os.environ)
            child_env.setdefault("MPLBACKEND", "Agg")
            proc = subprocess.Popen(
                [sys.executable, "-m", "autograder.sandbox", str(out / "job.json")],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                cwd=cwd, env=child_env, pass_fds=(write_fd,), start_new_session=True)
            os.close(write_fd)
            current, buffer, finished = "cell setup", b"", False
            # Starting Python and importing numpy is not the student's time: allow extra.
            deadline = time.monotonic() + timeout + 30
            try:
                while True:
                    ready, _, _ = select.select([read_fd], [], [], max(0.0, deadline - time.monotonic()))
                    if not ready:
                        skipped[current] = f"{_describe(current)} did not finish within {timeout:g} s"
                        break
                    data = os.read(read_fd, 65536)
                    if not data:
                        proc.wait()
                        if not finished:
                            if proc.returncode == MEMORY_EXIT:
                                why = "ran out of memory (the memory cap)"
                            else:
                                why = f"ended the process (exit code {proc.returncode})"
                            skipped[current] = f"{_describe(current)} {why}"
                        break
                    buffer += data
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        word, _, item = line.decode(errors="replace").partition(" ")
                        if word == "start":
                            current = item
                            deadline = time.monotonic() + timeout
                        elif word == "done":
                            deadline = time.monotonic() + timeout
                        elif word == "finished":
                            finished = True
            finally:
                os.close(read_fd)
                kill_tree(proc.pid)
                proc.wait()
            if finished and (out / "results.json").exists():
                break
            result.restarts += 1
        else:
            finished = False

        data = json.loads((out / "results.json").read_text()) if finished else {}
        result.cell_errors = {k: v for k, v in data.get("cells", {}).items()}
        for item, why in skipped.items():
            kind, _, name = item.partition(" ")
            if kind == "cell":
                result.cell_errors[name] = why
            else:
                result.errors[name] = why
        for key, entry in data.get("checks", {}).items():
            if entry.get("values") is not None:
                result.outputs[key] = _unpack(entry["values"], str(out / entry["npz"]))
            else:
                result.outputs[key] = None
                result.errors[key] = entry.get("error") or "failed"
        result.calls = data.get("calls", {})
        result.tampered = bool(data.get("tampered"))
        if not finished:
            result.tampered = False
            result.errors.setdefault("*", "the checks could not be run (the process kept failing)")
    return result


if __name__ == "__main__":
    main(sys.argv[1])
