"""Experiment cells (autograder/experiments.py) and the deferred pyplot (autograder/boxed/deferred.py)."""

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from autograder.course import Course
from autograder.experiments import (NOT_RUN, OUTSIDE_TAG, RUN_OUTSIDE, TAG, is_experiment,
                                    is_graded_outside, names, needed_experiments)
from autograder.preprocessors import GuardedExecute, is_hidden_test
from autograder.restore import is_solution

REPO = Path(__file__).resolve().parents[2]


def experiment(source):
    return new_code_cell(source, metadata={"tags": [TAG]})


def test_names_are_what_a_cell_binds_and_what_it_needs_from_before():
    defined, used = names("import numpy as np\nfor i in range(3):\n    total = np.sum(x) + i\n"
                          "def f(a, *rest, k=1):\n    return a + k + scale\n%matplotlib inline\n")
    assert defined >= {"np", "i", "total", "f", "a", "rest", "k"}
    assert used == {"range", "x", "scale"}


def test_a_name_only_an_experiment_defined_is_reported_where_it_is_read():
    cells = [new_code_cell("x = 1"), experiment("y = x + 1\nplt_data = [y]"),
             new_code_cell("print(x)"), new_code_cell("print(plt_data)")]
    assert needed_experiments(cells) == [(1, 3, "plt_data")]


def graded_outside(source):
    return new_code_cell(source, metadata={"tags": [OUTSIDE_TAG]})


def test_a_name_only_a_cell_graded_outside_defined_is_reported_too():
    cells = [new_code_cell("x = 1"), graded_outside("model = x"), graded_outside("print(model)"),
             new_code_cell("print(model)")]
    assert needed_experiments(cells) == [(1, 3, "model")]


def test_a_name_a_running_cell_defined_first_is_not_a_problem():
    cells = [new_code_cell("y = 0"), experiment("y = 5"), new_code_cell("print(y)"),
             experiment("z = 1"), new_code_cell("z = 2\nprint(z)")]
    assert needed_experiments(cells) == []


@pytest.mark.parametrize("assignment", Course().available_assignments())
def test_every_course_notebook_can_skip_its_experiments(assignment):
    nb = nbformat.read(REPO / "notebooks" / assignment / f"{assignment}.ipynb", as_version=4)
    assert needed_experiments(nb.cells) == []
    tagged = [c for c in nb.cells if is_experiment(c)]
    assert tagged, "a notebook with no experiment cell"
    assert all(not c.metadata.get("nbgrader") for c in tagged), "only the course's own cells are experiments"
    # A cell graded outside is a solution cell (the check child runs it) or a visible test (the
    # checks give its verdict); a hidden test is never run in the kernel anyway.
    for cell in filter(is_graded_outside, nb.cells):
        assert cell.metadata.get("nbgrader", {}).get("grade_id"), cell.source[:80]
        assert not is_hidden_test(cell) and not is_experiment(cell), cell.source[:80]
        assert is_solution(cell) or cell.metadata["nbgrader"].get("grade"), cell.source[:80]


def run_notebook(cells, **options):
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    GuardedExecute(kernel_name="python3", timeout=60, **options).preprocess(nb, {"metadata": {"path": "."}})
    return ["".join(o.get("text", "") for o in c.outputs) for c in nb.cells]


def test_experiments_are_not_run_at_grading_unless_asked():
    cells = [new_code_cell("x = 20"), experiment("print(x + 1)"), new_code_cell("print(x + 2)")]
    assert run_notebook(cells) == ["", NOT_RUN, "22\n"]
    assert run_notebook(cells, run_experiments=True) == ["", "21\n", "22\n"]


def test_cells_graded_outside_are_not_run_in_the_kernel_unless_asked():
    cells = [new_code_cell("x = 20"), graded_outside("x = x + 1\nprint(x)"), new_code_cell("print(x + 2)")]
    assert run_notebook(cells) == ["", RUN_OUTSIDE, "22\n"]
    assert run_notebook(cells, run_experiments=True) == ["", "21\n", "23\n"]


def test_notebook_07_grades_its_training_cell_and_its_visible_test_outside():
    """train_best_model (ten seconds of training) runs once per submission: in the check child,
    which runs every solution cell, tagged or not; its visible test reads what it made."""
    nb = nbformat.read(REPO / "notebooks" / "07_babysitting" / "07_babysitting.ipynb", as_version=4)
    outside = [c.metadata["nbgrader"]["grade_id"] for c in nb.cells if is_graded_outside(c)]
    assert outside == ["train_best_model", "train_best_model-visible"]


DEFERRED = """
import sys
sys.path.insert(0, {boxed!r})
import deferred
deferred.defer_matplotlib()
import matplotlib.pyplot as plt
import matplotlib
print(type(matplotlib).__name__, type(plt).__name__, "matplotlib.rcsetup" in sys.modules)
plt.rcParams["figure.figsize"] = (7, 4)
print(type(sys.modules["matplotlib.pyplot"]).__name__, matplotlib.rcParams["figure.figsize"])
import matplotlib.image as mpimg
from matplotlib import animation  # a submodule matplotlib's own import does not load
real = sys.modules["matplotlib"]
print(mpimg.imread.__module__, matplotlib.image is mpimg, animation is real.animation,
      matplotlib.__version__ == real.__version__)
from matplotlib import pyplot
fig, ax = plt.subplots()
print(type(sys.modules["matplotlib.pyplot"]).__name__, pyplot.gcf() is fig, plt.gcf() is fig,
      matplotlib.pyplot.gcf() is fig)
"""


def test_matplotlib_and_pyplot_are_imported_only_when_something_of_them_is_used():
    code = DEFERRED.format(boxed=str(REPO / "autograder" / "boxed"))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={"MPLBACKEND": "Agg", "PATH": "/usr/bin:/bin"}, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["Deferred DeferredPyplot False",  # nothing of them ran
                                        "DeferredPyplot [7.0, 4.0]",  # rcParams: matplotlib only
                                        "matplotlib.image True True True",
                                        "module True True True"]
