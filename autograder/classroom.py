"""Sample students made from the source notebooks: for ``demo``, the tests and the benchmark.

Every builder takes the source notebook (with solutions) and the release notebook (what students
receive) and returns the notebook a student would hand in -- or raw bytes, for the students whose
file is not a notebook at all. The failure modes are the ways real submissions break nbgrader.
"""

from __future__ import annotations

import copy
import json
import random

import nbformat

from autograder.restore import grade_id, is_solution, solution_source


def _code_solutions(nb):
    return [c for c in nb.cells if c.cell_type == "code" and is_solution(c) and grade_id(c)]


def correct(source, release):
    """The release notebook with every solution cell (and written answer) from the source."""
    nb = copy.deepcopy(release)
    answers = {grade_id(c): solution_source(c.source) for c in source.cells if is_solution(c)}
    for cell in nb.cells:
        if is_solution(cell) and grade_id(cell) in answers:
            cell.source = answers[grade_id(cell)]
    return nb


def blank(source, release):
    """Hands in the release notebook untouched."""
    return copy.deepcopy(release)


def partly_wrong(source, release):
    """Solves the first half of the exercises; the rest are left as released."""
    nb = correct(source, release)
    solutions = _code_solutions(release)
    keep = {grade_id(c) for c in solutions[: max(1, len(solutions) // 2)]}
    stubs = {grade_id(c): c.source for c in solutions}
    for cell in nb.cells:
        gid = grade_id(cell)
        if gid in stubs and gid not in keep:
            cell.source = stubs[gid]
    return nb


# ---------------------------------------------------------------------------------------------
# Failure modes: each returns (notebook or bytes, the exercise it targets or None)
# ---------------------------------------------------------------------------------------------
PERTURB = '''
def _perturbed(value):
    import numpy as _np
    if isinstance(value, tuple):
        return tuple(_perturbed(v) for v in value)
    if isinstance(value, list):
        return [_perturbed(v) for v in value]
    if isinstance(value, _np.ndarray) and value.dtype.kind == "f":
        return value * 1.5 + 0.25
    if isinstance(value, float):
        return value * 1.5 + 0.25
    return value


_right_{name} = {name}


def {name}(*args, **kwargs):
    return _perturbed(_right_{name}(*args, **kwargs))
'''


def _cell(nb, gid):
    return next(c for c in nb.cells if grade_id(c) == gid)


def function_exercises(exercises) -> list:
    """Exercises whose answer is a function (not a class): the ones a wrapper can make wrong."""
    return [ex for ex in exercises if callable(ex.reference.get(ex.name))
            and not isinstance(ex.reference.get(ex.name), type)]


def target(exercises, release):
    """The exercise the failure modes break: the last function exercise of the notebook.

    Last, because later exercises may use earlier ones, and none comes after it.
    """
    present = {grade_id(c) for c in _code_solutions(release)}
    candidates = [ex for ex in function_exercises(exercises) if ex.name in present]
    return candidates[-1]


def _first_visible(nb, name):
    return next(c for c in nb.cells if (grade_id(c) or "").startswith(f"{name}-visible"))


def deleted_test_cell(source, release, exercises):
    nb = correct(source, release)
    ex = target(exercises, release)
    nb.cells = [c for c in nb.cells if not (grade_id(c) or "").startswith(f"{ex.name}-")]
    return nb, ex.name


def duplicated_cells(source, release, exercises):
    nb = correct(source, release)
    ex = target(exercises, release)
    for gid in (ex.name, _first_visible(nb, ex.name).metadata.nbgrader.grade_id):
        cell = _cell(nb, gid)
        nb.cells.insert(nb.cells.index(cell) + 1, copy.deepcopy(cell))
    return nb, ex.name


def reordered_cells(source, release, exercises):
    """Test cells moved above their solution, and the whole notebook shuffled after the setup."""
    nb = correct(source, release)
    head, rest = nb.cells[:2], nb.cells[2:]
    random.Random(0).shuffle(rest)
    nb.cells = head + rest
    return nb, None


def retyped_test_cell(source, release, exercises):
    nb = correct(source, release)
    ex = target(exercises, release)
    _first_visible(nb, ex.name).source = "# I trust my code\npass"
    return nb, ex.name


def lost_metadata(source, release, exercises):
    """The solution pasted into a fresh cell (no nbgrader metadata) at the end; original deleted."""
    nb = correct(source, release)
    ex = target(exercises, release)
    cell = _cell(nb, ex.name)
    nb.cells.remove(cell)
    nb.cells.append(nbformat.v4.new_code_cell(cell.source))
    return nb, ex.name


def _wrong(nb, name, prelude=""):
    cell = _cell(nb, name)
    cell.source = prelude + cell.source + "\n" + PERTURB.format(name=name)


def _patching(prelude):
    """A student who solves the exercise wrongly but patches something first, to pass anyway."""
    def build(source, release, exercises):
        nb = correct(source, release)
        ex = target(exercises, release)
        _wrong(nb, ex.name, prelude)
        return nb, ex.name
    return build


patched_allclose = _patching("import numpy as np\nnp.allclose = lambda *a, **k: True\n"
                             "np.testing.assert_allclose = lambda *a, **k: None\n")
# Whatever they patch may not be importable where their code runs: they try, and carry on.
patched_library = _patching("try:\n    import cs231n_lib.gradcheck as _gc\n"
                            "    _gc.rel_error = lambda *a, **k: 0.0\n    rel_error = _gc.rel_error\n"
                            "except ImportError:\n    pass\n")
patched_checker = _patching("try:\n    import autograder.exercise as _ae\n    import autograder.exercises as _ax\n"
                            "    _ae.compare = lambda *a, **k: (True, '')\n"
                            "    _ax.check_exercise = lambda *a, **k: None\n"
                            "except ImportError:\n    pass\n")


def calls_library(source, release, exercises):
    nb = correct(source, release)
    present = {grade_id(c) for c in _code_solutions(release)}
    ex = [e for e in function_exercises(exercises) if e.forbidden and e.name in present][-1]
    module, _, attr = ex.forbidden[0].rpartition(".")
    _cell(nb, ex.name).source = (f"import {module}\n\n\ndef {ex.name}(*args, **kwargs):\n"
                                 f"    return {module}.{attr}(*args, **kwargs)\n")
    return nb, ex.name


def stderr_warning(source, release, exercises):
    nb = correct(source, release)
    ex = target(exercises, release)
    cell = _cell(nb, ex.name)
    cell.source += (f"\n\n_quiet_{ex.name} = {ex.name}\n\n\ndef {ex.name}(*args, **kwargs):\n"
                    "    import sys\n    print('warning: this is only a warning', file=sys.stderr)\n"
                    f"    return _quiet_{ex.name}(*args, **kwargs)\n")
    return nb, ex.name


def _prepend(source, release, exercises, code):
    nb = correct(source, release)
    ex = target(exercises, release)
    cell = _cell(nb, ex.name)
    cell.source = code + "\n" + cell.source
    return nb, ex.name


def infinite_loop(source, release, exercises):
    return _prepend(source, release, exercises, "while True:\n    pass\n")


def sigint_ignoring_loop(source, release, exercises):
    return _prepend(source, release, exercises,
                    "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass\n")


def memory_bomb(source, release, exercises):
    return _prepend(source, release, exercises,
                    "import numpy as _np\n_hoard = []\nwhile True:\n"
                    "    _hoard.append(_np.ones(256 * 1024 * 1024, dtype=_np.uint8))\n")


def network_attempt(source, release, exercises, port: int = 9):
    """Tries to reach a server on the grading machine's loopback; must not get through."""
    return _prepend(source, release, exercises,
                    "import socket\ntry:\n"
                    f"    socket.create_connection(('127.0.0.1', {port}), timeout=2).sendall(b'leak')\n"
                    "    print('network: reached the host')\n"
                    "except OSError as exc:\n    print('network: blocked', type(exc).__name__)\n")


def enormous_output(source, release, exercises):
    return _prepend(source, release, exercises,
                    "for _i in range(20000):\n    print('spam', _i)\n")


def corrupt_json(source, release, exercises):
    text = nbformat.writes(correct(source, release))
    return text[: len(text) // 2].encode(), None


def not_a_notebook(source, release, exercises):
    return b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, None


FAILURE_MODES = {
    "deleted_test_cell": deleted_test_cell,
    "duplicated_cells": duplicated_cells,
    "reordered_cells": reordered_cells,
    "retyped_test_cell": retyped_test_cell,
    "lost_metadata": lost_metadata,
    "patched_allclose": patched_allclose,
    "patched_library": patched_library,
    "patched_checker": patched_checker,
    "calls_library": calls_library,
    "stderr_warning": stderr_warning,
    "infinite_loop": infinite_loop,
    "sigint_ignoring_loop": sigint_ignoring_loop,
    "memory_bomb": memory_bomb,
    "network_attempt": network_attempt,
    "enormous_output": enormous_output,
    "corrupt_json": corrupt_json,
    "not_a_notebook": not_a_notebook,
}


def hand_in(course, student: str, assignment: str, notebook) -> None:
    """Put a submission where ``grade`` looks for it."""
    folder = course.path("submitted", student, assignment)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{assignment}.ipynb"
    if isinstance(notebook, bytes):
        path.write_bytes(notebook)
    else:
        path.write_text(nbformat.writes(notebook))
    (folder / "timestamp.txt").write_text("2026-11-21 12:00:00.000000 UTC")


def read_pair(course, assignment: str):
    source = nbformat.read(course.root / "source" / assignment / f"{assignment}.ipynb", as_version=4)
    release = nbformat.read(course.root / "release" / assignment / f"{assignment}.ipynb", as_version=4)
    return source, release


def build_demo_class(course, assignments: list[str]) -> list[str]:
    """A correct, a blank and a partly wrong student for each assignment."""
    students = {"correct": correct, "blank": blank, "partly_wrong": partly_wrong}
    for assignment in assignments:
        source, release = read_pair(course, assignment)
        for student, build in students.items():
            hand_in(course, student, assignment, build(source, release))
    return list(students)


def dump(obj) -> str:
    return json.dumps(obj, indent=1, default=str)
