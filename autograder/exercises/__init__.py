"""The catalogue of graded exercises, one module per notebook.

Each module in this package defines ``NOTEBOOK`` (the assignment folder name, e.g.
``"01_activations"``) and ``EXERCISES`` (a tuple of :class:`autograder.exercise.Exercise`).
Exercise names are unique across the course, so a hidden test cell names just the exercise.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from autograder.exercise import Exercise, evaluate


@cache
def catalogue() -> dict[str, dict[str, Exercise]]:
    """{notebook: {exercise name: Exercise}} over every module of this package."""
    found: dict[str, dict[str, Exercise]] = {}
    seen: dict[str, str] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        notebook = module.NOTEBOOK
        for exercise in module.EXERCISES:
            if exercise.name in seen:
                raise ValueError(
                    f"exercise {exercise.name!r} is defined for both {seen[exercise.name]} and {notebook}"
                )
            seen[exercise.name] = notebook
            found.setdefault(notebook, {})[exercise.name] = exercise
    return found


def find(name: str) -> Exercise:
    for exercises in catalogue().values():
        if name in exercises:
            return exercises[name]
    raise KeyError(f"no exercise named {name!r} in the catalogue")


def check_exercise(name: str, namespace) -> None:
    """The body of a hidden test cell: every check of ``name`` on the kernel's namespace.

    In the instructor's source notebook this runs in the kernel; at grading time the autograder
    replaces the verdict with one computed outside the student's kernel.
    """
    report = evaluate(find(name), namespace)
    failed = [r for r in report.results if not r.passed]
    for r in report.results:
        print(f"{'ok  ' if r.passed else 'FAIL'} {r.check}" + (f": {r.message}" if r.message else ""))
    for hint in report.hints:
        print(f"hint: {hint}")
    if failed:
        raise AssertionError(f"{len(failed)} of {len(report.results)} checks of {name} failed")
