"""The sandboxed process: runs a student's cells, then runs their functions when the grader asks.

Started by the grader as ``python .../boxed/child.py`` with the protocol on its stdin and stdout.
It never decides anything: it executes the setup cell and the student's solution cells in one
namespace, then answers the grader's requests (:mod:`wire`) -- look up a name, call a function on
the grader's inputs, read an attribute or an item -- and hands back what the student's code
computed, as plain data. The checks, the reference outputs and the comparison all stay in the
grader, out of reach of the code that runs here.

The job (the first request, ``job``) carries the setup cell, the solution cells as
``[grade id, source]`` pairs, the cells to skip (those that hung or killed an earlier child) and,
for each exercise, the library functions it forbids. For every cell the child sends the note
"start cell <id>" before and "done cell <id>" after, so the grader knows which step to blame if
this process hangs or dies. Around each check the grader sends ``begin <exercise>`` and ``end``:
in between, calls of that exercise's forbidden functions are refused and recorded
(:class:`Guard`), and ``end`` returns them.

Only the standard library and NumPy are used here (IPython, when a cell has magics): the
``autograder`` package is not importable inside the sandbox.
"""

from __future__ import annotations

import os
import sys


def take_the_pipes() -> tuple[int, int]:
    """Keep the protocol's pipes on private descriptors and point 0, 1 and 2 at /dev/null.

    Done first, before anything can print: whatever the student's code writes to stdout or
    stderr (or to descriptors 0-2 directly) then goes nowhere instead of into the protocol.
    """
    rfd, wfd = os.dup(0), os.dup(1)   # os.dup's copies are not inherited by subprocesses
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    return rfd, wfd


if __name__ == "__main__":
    PIPES = take_the_pipes()

import importlib  # noqa: E402  (after the pipes are safe)
import threading  # noqa: E402

import deferred  # noqa: E402  (this file's own folder, first on sys.path)
import wire  # noqa: E402


# ---------------------------------------------------------------------------------------------
# The watch on forbidden library functions
# ---------------------------------------------------------------------------------------------
class ForbiddenCall(Exception):
    pass


OWN = "__main__."  # a forbidden name of the student's own namespace, not of the library


def _resolve(dotted: str):
    """(owner, attribute name, object) for ``pkg.mod.name`` or ``pkg.mod.Class.method``."""
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
    """Refuses and records calls of the functions an exercise forbids, while it is checked.

    Two nets, because a student can reach a library function in many ways: the module attribute
    is replaced by a wrapper that refuses the call (``from lib import f`` in a cell then gets the
    wrapper), and a profile hook recognises the original function's code object however it was
    reached (a reloaded module, a reference saved before the wrapper went in). The hook runs only
    between ``begin`` and ``end``; if the student's code removes it, ``end`` says so.

    A name ``__main__.f`` is the student's own ``f``, from the namespace the cells ran in (04's
    closed-form backward may not call the student's graph version): only the hook watches it,
    looked up at ``begin``, when the cells have run. It is recognised by its code's content, not
    its name (a copy made with ``__code__.replace`` is the same code), together with every function
    of the student's cells that ``f`` reaches by name (a helper both of them call).

    The hook sees only the threads started after ``begin`` and this process, so a check that
    begins with other threads alive, forks, or finds the guard's own methods replaced is reported
    as tampered with, as is a hook removed.
    """

    def __init__(self, forbidden: dict, namespace: dict | None = None):
        self.active: str | None = None
        self.calls: list[str] = []
        self.codes: dict[tuple[str, str], str] = {}   # (file, qualname) -> dotted name
        self.own_codes: dict[tuple, str] = {}          # content of a student's code -> dotted name
        self.forked, self.threads_at_begin = False, 1
        self.forbidders: dict[str, set[str]] = {}     # dotted name -> exercises forbidding it
        self.namespace = namespace if namespace is not None else {}
        for exercise, names in forbidden.items():
            for dotted in names:
                if dotted.startswith(OWN):
                    self.forbidders.setdefault(dotted, set()).add(exercise)
                    continue
                found = _resolve(dotted)
                if found is None:
                    continue
                owner, attr, obj = found
                # A name two exercises forbid is wrapped once, and its code is the original's:
                # never the wrapper's, which every wrapped function shares.
                wrapped = getattr(obj, "_forbidden_wrapper", False)
                if wrapped:
                    obj = obj._forbidden_original
                self.forbidders.setdefault(dotted, set()).add(exercise)
                for code in _codes(obj):
                    self.codes.setdefault((code.co_filename, code.co_qualname), dotted)
                if not isinstance(obj, type) and not wrapped:
                    setattr(owner, attr, self._wrapper(dotted, obj))

    def _record(self, dotted: str) -> bool:
        if self.active is not None and self.active in self.forbidders.get(dotted, ()):
            if dotted not in self.calls:
                self.calls.append(dotted)
            return True
        return False

    def _wrapper(self, dotted: str, original):
        guard = self

        def forbidden(*args, **kwargs):
            if guard._record(dotted):
                raise ForbiddenCall(f"{dotted} may not be used in this exercise")
            return original(*args, **kwargs)

        forbidden.__name__ = getattr(original, "__name__", "forbidden")
        forbidden.__doc__ = getattr(original, "__doc__", None)
        forbidden._forbidden_wrapper = True
        forbidden._forbidden_original = original
        return forbidden

    def _profile(self, frame, event, arg):
        if event == "call" and self.active is not None:
            code = frame.f_code
            dotted = self.codes.get((code.co_filename, code.co_qualname))
            if dotted is None and self.own_codes:
                dotted = self.own_codes.get(_content(code))
            if dotted is not None:
                self._record(dotted)

    def _watch_own(self, dotted: str) -> None:
        """Watch the student's ``f`` and the functions of their cells it reaches by name."""
        todo = [self.namespace.get(dotted[len(OWN):])]
        seen: set[int] = set()
        while todo:
            obj = todo.pop()
            try:
                codes = _codes(obj)
            except Exception:  # whatever the student bound to the name: no code to watch
                continue
            for code in codes:
                for inner in _nested(code):
                    if id(inner) in seen or not inner.co_filename.startswith("<"):
                        continue   # library and NumPy code is not the student's
                    seen.add(id(inner))
                    self.codes[(inner.co_filename, inner.co_qualname)] = dotted
                    self.own_codes[_content(inner)] = dotted
                    todo.extend(self.namespace.get(name) for name in inner.co_names)

    def begin(self, exercise: str) -> None:
        for dotted, exercises in self.forbidders.items():
            if dotted.startswith(OWN) and exercise in exercises:
                self._watch_own(dotted)
        self.active, self.calls, self.forked = exercise, [], False
        self.threads_at_begin = threading.active_count()
        sys.setprofile(self._profile)
        threading.setprofile(self._profile)

    def at_fork(self) -> None:
        if self.active is not None:
            self.forked = True

    def end(self) -> dict:
        tampered = (sys.getprofile() != self._profile or self.forked
                    or self.threads_at_begin > 1
                    or type(self) is not Guard or "_record" in vars(self) or "_profile" in vars(self)
                    or Guard._record is not _GUARD_METHODS[0] or Guard._profile is not _GUARD_METHODS[1])
        sys.setprofile(None)
        threading.setprofile(None)
        self.active = None
        return {"calls": list(self.calls), "tampered": tampered}


def _content(code) -> tuple:
    """What a code object computes, whatever its name: a copy under another name matches."""
    consts = tuple(_content(c) if hasattr(c, "co_code") else repr(c) for c in code.co_consts)
    return (code.co_code, code.co_names, consts)


def _nested(code) -> list:
    """``code`` and the code of the functions defined inside it (closures, lambdas)."""
    found, todo = [], [code]
    while todo:
        c = todo.pop()
        found.append(c)
        todo.extend(k for k in c.co_consts if hasattr(k, "co_code"))
    return found


_GUARD_METHODS = (Guard._record, Guard._profile)


# ---------------------------------------------------------------------------------------------
# Running cells
# ---------------------------------------------------------------------------------------------
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
    try:
        text = str(exc)
    except Exception:
        text = ""
    return f"{type(exc).__name__}: {text[:300]}".replace("\n", " ")


class Child:
    """The student's namespace, the watch, and the requests the grader may make of them."""

    def __init__(self, rfd: int, wfd: int):
        self.ns: dict = {"__name__": "__main__", "get_ipython": lambda: _Shell(),
                         "display": lambda *a, **k: None}
        self.guard: Guard | None = None
        self.conn = wire.Connection(
            rfd, wfd, serve=wire.SERVED_BY_CHILD, namespace=self.ns, catch=BaseException,
            memory_exit=wire.MEMORY_EXIT,
            ops={"job": self.job, "begin": self.begin, "end": self.end})

    def job(self, job: dict) -> dict:
        """Run the setup cell and the solution cells; the one-line errors of those that raised."""
        skip = set(job["skip"])
        self.guard = Guard(job["forbidden"], self.ns)
        os.register_at_fork(before=self.guard.at_fork)
        errors: dict[str, str] = {}
        for name, source in [("setup", job["setup"]), *job["cells"]]:
            item = f"cell {name}"
            if item in skip:
                continue
            self.conn.note(f"start {item}")
            try:
                exec(_compile_cell(source, name), self.ns)
            except MemoryError:
                os._exit(wire.MEMORY_EXIT)
            except BaseException as exc:  # SystemExit too: a cell must not end the child
                errors[name] = _one_line(exc)
            self.conn.note(f"done {item}")
        return {"cells": errors}

    def begin(self, exercise: str) -> None:
        self.guard.begin(exercise)

    def end(self) -> dict:
        """The forbidden calls of the check that just ran; its objects are forgotten."""
        self.conn.forget()
        return self.guard.end()

    def serve(self) -> None:
        try:
            self.conn.serve_forever()
        except wire.WireError:
            pass


def main() -> None:
    deferred.defer_matplotlib()  # the checks never plot: importing matplotlib costs 0.4 s of CPU
    Child(*PIPES).serve()
    os._exit(0)  # skip interpreter shutdown: the student's objects' __del__ must not run


if __name__ == "__main__":
    main()
