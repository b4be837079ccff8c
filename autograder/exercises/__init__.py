"""The catalogue of graded exercises, one module per notebook.

Each module in this package defines ``NOTEBOOK`` (the assignment folder name, e.g.
``"01_activations"``) and ``EXERCISES`` (a tuple of :class:`autograder.exercise.Exercise`).
Exercise names are unique across the course, so a hidden test cell names just the exercise.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import replace
from functools import cache

from autograder.exercise import Exercise, evaluate


# A backward pass is to be derived, not approximated: the library's numerical gradient would
# earn a backward exercise's points without a single derivative.
NUMERICAL_GRADIENTS = ("cs231n_lib.gradcheck.eval_numerical_gradient",
                       "cs231n_lib.gradcheck.eval_numerical_gradient_array")


@cache
def catalogue() -> dict[str, dict[str, Exercise]]:
    """{notebook: {exercise name: Exercise}} over every module of this package."""
    found: dict[str, dict[str, Exercise]] = {}
    seen: dict[str, str] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        notebook = module.NOTEBOOK
        for exercise in module.EXERCISES:
            if "backward" in exercise.name:
                exercise = replace(exercise, forbidden=exercise.forbidden + NUMERICAL_GRADIENTS)
            if exercise.name in seen:
                raise ValueError(
                    f"exercise {exercise.name!r} is defined for both {seen[exercise.name]} and {notebook}"
                )
            seen[exercise.name] = notebook
            found.setdefault(notebook, {})[exercise.name] = exercise
    return found


def notebook_solutions(notebook: str, *names: str) -> dict:
    """The instructor's solution cells of ``notebook`` that define ``names``, run on their own.

    One source per answer: an exercise with no twin in the library (``Graph``, ``l2_regularise``,
    ``random_search``...) takes its reference from the source notebook's solution cell rather
    than from a copy typed again here. The cells see NumPy and one another, nothing else (the
    notebook's rules: a solution cell needs only itself and the setup cell's imports).
    """
    import json

    import numpy as np

    from autograder.course import DEFAULT_NOTEBOOKS

    path = DEFAULT_NOTEBOOKS / notebook / f"{notebook}.ipynb"
    cells = {c["metadata"].get("nbgrader", {}).get("grade_id"): "".join(c["source"])
             for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"}
    namespace = {"np": np, "__name__": f"notebooks.{notebook}"}
    for name in names:
        if name not in cells:
            raise KeyError(f"{path} has no solution cell {name!r}")
        exec(compile(cells[name], f"{path}:{name}", "exec"), namespace)
    return {name: namespace[name] for name in names}


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
