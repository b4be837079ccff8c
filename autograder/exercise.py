"""What an exercise is, for grading.

An exercise is one name a student defines in a solution cell (``relu_backward``, ``he``,
``Graph``...). Grading never trusts the student's kernel: the student's definitions are run on
probe inputs, and the *outputs* are compared with the reference implementation's outputs by code
that lives in the grader's own process. This module holds the data model and the pure
comparison logic shared by

* the hidden test cells of the source notebooks (``check_exercise`` runs it in-process, so an
  instructor executing a source notebook sees every check pass), and
* the autograder, which runs ``Check.run`` on the student's namespace in a sandboxed child
  process and on the reference namespace in its own process, then calls ``compare``.

A ``Check.run`` must draw all its random inputs from the ``rng`` it is given *before* it calls
anything in ``ns``, so that both runs see the same inputs; it returns a flat dict of arrays or
plain numbers. A ``Mistake`` is a known wrong implementation: if the student's outputs match it,
the feedback names the mistake ("sigmoid backward is missing (1 - s)").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

Namespace = Mapping[str, Any]
Outputs = dict[str, Any]


@dataclass(frozen=True)
class Check:
    """One probe of an exercise: inputs drawn from ``rng``, outputs of the functions in ``ns``."""

    name: str
    run: Callable[[Namespace, np.random.Generator], Outputs]
    hidden: bool = True  # False: mirrors a visible test cell, re-verified outside the kernel
    tol: float = 1e-7  # bound on rel_error for every output
    # CPU seconds the check may take in the child (None: the per-step limit). A check that only
    # asks a trained model for scores gets a small one, so no training can hide in the asking.
    cpu_limit: float | None = None


@dataclass(frozen=True)
class Mistake:
    """A typical wrong answer: the reference with some functions replaced by buggy ones."""

    hint: str
    patch: Mapping[str, Callable]


@dataclass(frozen=True)
class Exercise:
    """A graded definition of a notebook, with its reference and its catalogue of mistakes."""

    name: str
    reference: Mapping[str, Any]  # the namespace a perfect student would have
    checks: tuple[Check, ...]
    mistakes: tuple[Mistake, ...] = ()
    # Dotted names of library functions that solve the exercise outright; a solution that calls
    # one of them earns nothing for this exercise.
    forbidden: tuple[str, ...] = ()
    seed: int = 0

    def check_named(self, name: str) -> Check:
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(f"exercise {self.name!r} has no check named {name!r}")


@dataclass
class CheckResult:
    exercise: str
    check: str
    hidden: bool
    passed: bool
    message: str = ""


@dataclass
class ExerciseReport:
    exercise: str
    results: list[CheckResult] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)

    def fraction_passed(self, hidden: bool | None = None) -> float:
        chosen = [r for r in self.results if hidden is None or r.hidden == hidden]
        return sum(r.passed for r in chosen) / len(chosen) if chosen else 1.0


def rel_error(x, y) -> float:
    """max |x - y| / max(|x| + |y|, 1e-8), elementwise then max (the API.md definition)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.size == 0:
        return 0.0
    return float(np.max(np.abs(x - y) / np.maximum(np.abs(x) + np.abs(y), 1e-8)))


def rng_for(exercise: Exercise, check: Check) -> np.random.Generator:
    """The generator a check draws its inputs from: the same in every process."""
    key = f"{exercise.name}/{check.name}".encode()
    return np.random.default_rng([exercise.seed, *key])


def _equal(got, want) -> bool:
    """``got == want`` for a plain reference value (str, bool, None); never raises."""
    try:
        return bool(got == want)
    except Exception:  # an array of several values has no single truth value: not equal
        return False


def _brief(value) -> str:
    """A short description of a value for a message (never the whole of a large one)."""
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    try:
        text = repr(value)
    except Exception:
        text = type(value).__name__
    return text if len(text) <= 60 else text[:57] + "..."


def compare(expected: Outputs, actual: Any, tol: float) -> tuple[bool, str]:
    """Whether ``actual`` matches ``expected`` output by output, with a message saying why not.

    ``actual`` is the student's: whatever it holds (a ragged list, an int too large for a float,
    an array of the wrong shape or of a billion elements), the answer is a verdict, not an
    exception, and an output is checked for its shape before it is converted (so a large array
    of small integers is never blown up into float64).
    """
    if not isinstance(actual, Mapping):
        return False, f"expected a dict of outputs, got {type(actual).__name__}"
    for key, want in expected.items():
        if key not in actual:
            return False, f"{key}: missing"
        got = actual[key]
        if isinstance(want, (str, bool, np.bool_)) or want is None:
            if not _equal(got, want):
                return False, f"{key}: expected {want!r}, got {_brief(got)}"
            continue
        want_arr = np.asarray(want, dtype=np.float64)
        not_numbers = f"{key}: expected numbers, got {type(got).__name__}"
        try:
            got_arr = np.asarray(got)
        except Exception:  # ValueError (ragged), MemoryError, RecursionError, ...
            return False, not_numbers
        if got_arr.dtype.kind not in "biufcO":  # text, bytes, dates...
            return False, not_numbers
        if got_arr.shape != want_arr.shape:
            return False, f"{key}: expected shape {want_arr.shape}, got {got_arr.shape}"
        try:
            got_arr = np.asarray(got_arr, dtype=np.float64)
        except Exception:  # objects that are not numbers, an int too large for a float, ...
            return False, not_numbers
        finite = np.isfinite(want_arr)
        if not np.array_equal(finite, np.isfinite(got_arr)):
            return False, f"{key}: contains nan or inf where the reference is finite (or the reverse)"
        err = rel_error(got_arr[finite], want_arr[finite])
        if err > tol:
            return False, f"{key}: relative error {err:.2e} (allowed {tol:.0e})"
    return True, ""


def run_safely(check: Check, ns: Namespace, rng: np.random.Generator) -> tuple[Outputs | None, str]:
    """``check.run`` with any exception turned into a one-line message (never a traceback)."""
    try:
        return check.run(ns, rng), ""
    except NotImplementedError:
        return None, "not implemented yet"
    except Exception as exc:  # a student's code may raise anything
        return None, f"raised {type(exc).__name__}: {str(exc)[:300]}"


def expected_outputs(exercise: Exercise, check: Check) -> Outputs:
    outputs, error = run_safely(check, exercise.reference, rng_for(exercise, check))
    if outputs is None:
        raise RuntimeError(f"reference of {exercise.name!r} fails check {check.name!r}: {error}")
    return outputs


def diagnose(exercise: Exercise, actual: Mapping[str, Outputs | None]) -> list[str]:
    """Hints for the mistakes whose outputs the student's outputs reproduce.

    ``actual`` maps check names to the student's outputs. A mistake is named when it differs from
    the reference on at least one check and the student agrees with it on every check it was run on.
    """
    hints = []
    for mistake in exercise.mistakes:
        buggy_ns = {**exercise.reference, **mistake.patch}
        differs, agrees = False, True
        for check in exercise.checks:
            got = actual.get(check.name)
            if got is None:
                continue
            buggy, error = run_safely(check, buggy_ns, rng_for(exercise, check))
            if buggy is None:
                continue
            if not compare(expected_outputs(exercise, check), buggy, check.tol)[0]:
                differs = True
            try:
                same = compare(buggy, got, check.tol)[0]
            except Exception:  # the student's outputs: whatever they provoke, no agreement
                same = False
            if not same:
                agrees = False
                break
        if differs and agrees:
            hints.append(mistake.hint)
    return hints


def evaluate(exercise: Exercise, ns: Namespace, hidden: bool | None = None) -> ExerciseReport:
    """Run the checks on ``ns`` in this process and compare with the reference (with hints)."""
    report = ExerciseReport(exercise.name)
    actual: dict[str, Outputs | None] = {}
    for check in exercise.checks:
        if hidden is not None and check.hidden != hidden:
            continue
        outputs, error = run_safely(check, ns, rng_for(exercise, check))
        actual[check.name] = outputs
        if outputs is None:
            report.results.append(CheckResult(exercise.name, check.name, check.hidden, False, error))
            continue
        ok, why = compare(expected_outputs(exercise, check), outputs, check.tol)
        report.results.append(CheckResult(exercise.name, check.name, check.hidden, ok, why))
    if not all(r.passed for r in report.results):
        report.hints = diagnose(exercise, actual)
    return report
