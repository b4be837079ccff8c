"""A tiny course for the grading tests: one notebook, two exercises, a toy library.

Written into a temporary folder by the tests, so the pipeline can be exercised without the real
notebooks; the exercise module lives there too and is handed to the grader explicitly.
"""

import textwrap
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

TOYLIB = '''
import numpy as np


def double(x):
    return 2 * np.asarray(x, dtype=float)


def square(x):
    return np.asarray(x, dtype=float) ** 2
'''

EXERCISES = '''
import numpy as np

import toylib
from autograder.exercise import Check, Exercise, Mistake, evaluate

NOTEBOOK = "toy"


def probe(name, shape):
    def run(ns, rng):
        x = rng.standard_normal(shape)
        return {"y": np.asarray(ns[name](x), dtype=float)}
    return run


def exercise(name, ref, wrong):
    return Exercise(
        name=name,
        reference={name: ref},
        checks=(Check("two numbers", probe(name, (2,)), hidden=False),
                Check("3 by 5", probe(name, (3, 5))),
                Check("one number", probe(name, (1,))),
                Check("4-D", probe(name, (2, 1, 3, 2)))),
        mistakes=wrong,
        forbidden=(f"toylib.{name}",),
    )


EXERCISES = (
    exercise("double", toylib.double,
             (Mistake("your double triples x", {"double": lambda x: 3 * x}),
              Mistake("your double adds 2 instead of multiplying", {"double": lambda x: x + 2}))),
    exercise("square", toylib.square,
             (Mistake("your square returns |x|", {"square": lambda x: np.abs(x)}),
              Mistake("your square doubles x", {"square": lambda x: 2 * x}))),
)


def check(name, ns):
    ex = {e.name: e for e in EXERCISES}[name]
    report = evaluate(ex, ns)
    assert all(r.passed for r in report.results), [r.message for r in report.results]
'''

HIDDEN_LINES = ("from toy_exercises import check", 'check("double", globals())',
                'check("square", globals())')


def meta(grade_id, grade=False, solution=False, locked=False, points=None):
    m = {"grade": grade, "solution": solution, "locked": locked, "grade_id": grade_id,
         "schema_version": 3, "task": False}
    if points is not None:
        m["points"] = points
    return {"nbgrader": m}


def toy_notebook():
    cells = [new_markdown_cell("# Toy\nHidden checks run only when your notebook is graded.")]
    setup = new_code_cell("import numpy as np\nimport toylib", metadata=meta("setup", locked=True))
    setup.metadata["tags"] = ["setup"]
    cells.append(setup)
    for name, body, example in (("double", "2 * np.asarray(x, dtype=float)", ("[1.0, 2.0]", "[2.0, 4.0]")),
                                ("square", "np.asarray(x, dtype=float) ** 2", ("[1.0, 3.0]", "[1.0, 9.0]"))):
        cells.append(new_code_cell(
            f"def {name}(x):\n    ### BEGIN SOLUTION\n    return {body}\n    ### END SOLUTION",
            metadata=meta(name, solution=True)))
        cells.append(new_code_cell(
            f"assert np.allclose({name}(np.array({example[0]})), {example[1]})\nprint('{name}: visible check passed')",
            metadata=meta(f"{name}-visible", grade=True, locked=True, points=1)))
        cells.append(new_code_cell(
            "# Hidden checks: they run only when your notebook is graded.\n### BEGIN HIDDEN TESTS\n"
            f"from toy_exercises import check\ncheck(\"{name}\", globals())\n### END HIDDEN TESTS",
            metadata=meta(f"{name}-hidden", grade=True, locked=True, points=2)))
    cells.append(new_code_cell("print(double(np.arange(3)), square(np.arange(3)))"))
    cells.append(new_markdown_cell("Why does doubling commute with squaring up to a factor?\n\n"
                                   "### BEGIN SOLUTION\nsquare(double(x)) = 4 square(x).\n### END SOLUTION",
                                   metadata=meta("q_why", grade=True, solution=True, points=1)))
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def write_fixture(folder: Path) -> dict:
    """notebooks/toy/toy.ipynb, toylib.py and toy_exercises.py under ``folder``."""
    (folder / "notebooks" / "toy").mkdir(parents=True)
    nbformat.write(toy_notebook(), folder / "notebooks" / "toy" / "toy.ipynb")
    (folder / "lib").mkdir()
    (folder / "lib" / "toylib.py").write_text(textwrap.dedent(TOYLIB))
    (folder / "lib" / "toy_exercises.py").write_text(textwrap.dedent(EXERCISES))
    return {"notebooks": folder / "notebooks", "pythonpath": (str(folder / "lib"),),
            "exercise_modules": (str(folder / "lib" / "toy_exercises.py"),)}
