"""Experiment cells: the notebook's plots and training runs, which earn no points.

Every point is decided outside the kernel (:class:`autograder.preprocessors.OutsideChecks` calls
the student's functions in a child of its own), so at grading time the kernel only has to show
the student what their own cells did: the setup, their solutions and the visible tests. A code
cell of the course tagged ``experiment`` (a plot, a sweep, a training run) is not run there; it
gets one line saying so, and ``grade --run-experiments`` runs it as before. This is most of a
submission's time in the later notebooks.

The tag comes from the release notebook (:func:`autograder.restore.rebuild` keeps only the
student's solution cells), so a student can neither add it nor remove it. What the rule needs
from the notebooks is checked by :func:`needed_experiments`: no cell that still runs at grading
uses a name that only an experiment cell defines.

A graded cell whose work the check child does anyway can be tagged ``graded-outside``: notebook
07's ``train_best_model`` trains a model for ten seconds, and the checks need that model in the
child, so the kernel would train it a second time only to print a validation accuracy the visible
check computes again. Such a cell is not run in the kernel either; the child still runs the
solution cell (it runs every solution cell), and the test cell still gets the checks' verdict.
``--run-experiments`` runs these too.
"""

from __future__ import annotations

import ast

TAG = "experiment"
NOT_RUN = ("[an experiment: not run at grading, as it earns no points. "
           "Its output is the one your own run of the notebook shows.]\n")
OUTSIDE_TAG = "graded-outside"
RUN_OUTSIDE = ("[graded outside your kernel: the grader ran your solution cell on its own, in the "
               "process its checks call, and did not run this cell a second time here. The "
               "checks' verdict is what counts.]\n")


def _tagged(cell, tag: str) -> bool:
    return cell.get("cell_type") == "code" and tag in cell.get("metadata", {}).get("tags", [])


def is_experiment(cell) -> bool:
    return _tagged(cell, TAG)


def is_graded_outside(cell) -> bool:
    return _tagged(cell, OUTSIDE_TAG)


def skipped_at_grading(cell) -> bool:
    """Not run in the grading kernel (unless ``--run-experiments``): an experiment, or a graded
    cell the check child runs in its stead."""
    return is_experiment(cell) or is_graded_outside(cell)


def _code(source: str) -> str:
    # IPython magics and shell lines are not Python; they define nothing the analysis needs.
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line
                     for line in source.splitlines())


def names(source: str) -> tuple[set[str], set[str]]:
    """(defined, used): the names a cell binds, and those it reads without binding them itself.

    Nested scopes are included and the order inside the cell is not: a loop variable the cell
    binds is not a name it needs from earlier cells.
    """
    try:
        tree = ast.parse(_code(source))
    except SyntaxError:
        return set(), set()
    defined, used = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (used if isinstance(node.ctx, ast.Load) else defined).add(node.id)
        elif isinstance(node, ast.arg):
            defined.add(node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            defined.update((a.asname or a.name).split(".")[0] for a in node.names)
    return defined, used - defined


def needed_experiments(cells) -> list[tuple[int, int, str]]:
    """(skipped cell, later cell, name): a cell run at grading reads what only a cell skipped
    at grading (an experiment, or a cell graded outside the kernel) defined.

    Empty when skipping those cells cannot change what the other cells see by name.
    """
    problems = []
    defined_by_run: set[str] = set()
    only_in_experiments: dict[str, int] = {}
    for index, cell in enumerate(cells):
        if cell.get("cell_type") != "code":
            continue
        defined, used = names(cell["source"])
        if skipped_at_grading(cell):
            for name in defined - defined_by_run:
                only_in_experiments[name] = index
            continue
        for name in sorted(used & only_in_experiments.keys()):
            problems.append((only_in_experiments[name], index, name))
        defined_by_run |= defined
        for name in defined:
            only_in_experiments.pop(name, None)
    return problems
