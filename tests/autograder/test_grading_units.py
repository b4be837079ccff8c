"""The pieces of the grader that need no kernel: restoring structure, reading files, the sandbox."""

import json
import sys
import textwrap

import nbformat
import pytest

from grading_fixture import toy_notebook, write_fixture

from autograder import classroom
from autograder.preprocessors import HideHiddenTests, judge
from autograder.restore import NotANotebook, read_submission, rebuild, solution_source
from autograder.checks import LocalLauncher, exercises_for, run_checks


def release_of(source):
    """What nbgrader's generate_assignment makes of the toy notebook, near enough for these tests."""
    nb = nbformat.reads(nbformat.writes(source), as_version=4)
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution") and cell.cell_type == "code":
            name = meta["grade_id"]
            cell.source = f"def {name}(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()"
        if "BEGIN HIDDEN TESTS" in cell.source:
            cell.source = cell.source.split("### BEGIN HIDDEN TESTS")[0].rstrip()
    return nb


@pytest.fixture
def pair():
    source = toy_notebook()
    return source, release_of(source)


def ids(nb):
    return [c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells]


def sources(nb):
    return {c.metadata.get("nbgrader", {}).get("grade_id"): c.source for c in nb.cells}


def test_rebuild_of_a_correct_submission_changes_nothing(pair):
    source, release = pair
    student = classroom.correct(source, release)
    canonical, notes = rebuild(release, student)
    assert notes == []
    assert sources(canonical) == sources(student)


@pytest.mark.parametrize("mode", ["deleted_test_cell", "duplicated_cells", "reordered_cells",
                                  "retyped_test_cell", "lost_metadata"])
def test_rebuild_recovers_the_correct_notebook(pair, mode):
    source, release = pair
    exercises = exercises_for("toy", (_module(),))
    student, _ = classroom.FAILURE_MODES[mode](source, release, exercises)
    canonical, notes = rebuild(release, student)
    assert ids(canonical) == ids(release)
    assert sources(canonical) == sources(classroom.correct(source, release))
    assert notes, "a repair must be reported"


def test_duplicate_takes_the_edited_copy(pair):
    source, release = pair
    student = classroom.correct(source, release)
    cell = next(c for c in student.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "double")
    stub = next(c for c in release.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "double")
    student.cells.append(nbformat.reads(nbformat.writes(nbformat.v4.new_notebook(cells=[stub])),
                                        as_version=4).cells[0])  # an untouched copy, last
    canonical, _ = rebuild(release, student)
    assert sources(canonical)["double"] == cell.source


def test_solution_source_drops_only_the_markers():
    assert solution_source("def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION") == \
        "def f():\n    return 1"


@pytest.mark.parametrize("content, words", [
    (b'{"cells": [', "corrupt: invalid JSON"),
    (b"\x89PNG\r\n\x1a\n\x00\xff", "not a notebook"),
    (b'{"hello": 1}', "JSON but not a Jupyter notebook"),
    (b"[1, 2]", "JSON but not a Jupyter notebook"),
])
def test_unreadable_files_get_a_reason(tmp_path, content, words):
    path = tmp_path / "x.ipynb"
    path.write_bytes(content)
    with pytest.raises(NotANotebook, match=words):
        read_submission(path)


def test_a_huge_file_is_refused_before_it_is_parsed(tmp_path):
    from autograder.restore import MAX_NOTEBOOK_BYTES

    path = tmp_path / "x.ipynb"
    with open(path, "wb") as handle:  # sparse: costs no disk
        handle.truncate(MAX_NOTEBOOK_BYTES + 1)
    with pytest.raises(NotANotebook, match="larger than 32 MiB"):
        read_submission(path)


def test_missing_file_gets_a_reason(tmp_path):
    with pytest.raises(NotANotebook, match="cannot be read"):
        read_submission(tmp_path / "absent.ipynb")


# --- the sandbox --------------------------------------------------------------------------------
_MODULE = None


def _module():
    return _MODULE


@pytest.fixture(autouse=True, scope="module")
def toy_lib(tmp_path_factory):
    global _MODULE
    folder = tmp_path_factory.mktemp("toylib")
    fixture = write_fixture(folder)
    sys.path.insert(0, fixture["pythonpath"][0])
    _MODULE = fixture["exercise_modules"][0]
    yield fixture
    sys.path.remove(fixture["pythonpath"][0])


def outside(toy_lib, double_src, square_src="def square(x):\n    return np.asarray(x, dtype=float) ** 2",
            timeout=5):
    exercises = exercises_for("toy", toy_lib["exercise_modules"])
    result = run_checks(exercises, "import numpy as np\nimport toylib",
                        [("double", textwrap.dedent(double_src)), ("square", square_src)],
                        LocalLauncher(pythonpath=toy_lib["pythonpath"]), timeout=timeout)
    return result, judge(exercises, result)


def test_correct_definitions_pass_every_check(toy_lib):
    result, verdicts = outside(toy_lib, "def double(x):\n    return 2 * np.asarray(x, dtype=float)")
    assert result.restarts == 0
    for v in verdicts.values():
        assert (v.visible_ok, v.hidden_passed, v.hidden_total, v.zero_reason) == (True, 3, 3, "")


@pytest.mark.parametrize("double_src", [
    "def double(x):\n    return toylib.double(x)",
    "from toylib import double",
    # a saved reference to the original, taken around the wrapper by reloading the module
    "import importlib\nfresh = importlib.reload(toylib)\ndef double(x):\n    return fresh.double(x)",
])
def test_library_calls_are_caught_however_they_are_made(toy_lib, double_src):
    _, verdicts = outside(toy_lib, double_src)
    assert verdicts["double"].zero_reason.startswith("your double calls toylib.double")
    assert verdicts["square"].zero_reason == ""  # the other exercise is unaffected


def test_switching_off_the_watch_earns_nothing(toy_lib):
    _, verdicts = outside(toy_lib, "import sys\ndef double(x):\n    sys.setprofile(None)\n"
                                   "    return 2 * np.asarray(x, dtype=float)")
    assert "switched off" in verdicts["double"].zero_reason


def test_a_hanging_check_costs_only_its_exercise(toy_lib):
    result, verdicts = outside(toy_lib, "def double(x):\n    while True:\n        pass", timeout=2)
    assert verdicts["double"].hidden_passed == 0 and not verdicts["double"].visible_ok
    assert "did not finish within 2 s" in " ".join(verdicts["double"].lines)
    assert verdicts["square"].hidden_passed == 3
    assert result.restarts == 4  # one per check of double


def test_a_process_killing_cell_costs_only_its_exercise(toy_lib):
    result, verdicts = outside(toy_lib, "import os\nos._exit(3)\ndef double(x):\n    return 2 * x")
    assert "ended the process (exit code 3)" in verdicts["double"].lines[0]
    assert verdicts["square"].hidden_passed == 3


def test_outputs_that_are_not_plain_numbers_fail(toy_lib):
    _, verdicts = outside(toy_lib, "class Liar(float):\n    def __eq__(self, other):\n        return True\n"
                                   "def double(x):\n    return [Liar(1)] * len(x)")
    assert verdicts["double"].hidden_passed == 0


def test_hint_for_a_catalogued_mistake(toy_lib):
    _, verdicts = outside(toy_lib, "def double(x):\n    return 3 * x")
    assert verdicts["double"].hints == ["your double triples x"]
    assert verdicts["square"].hints == []


def test_hide_hidden_tests_strips_code_and_echoes():
    nb = toy_notebook()
    hidden = next(c for c in nb.cells if "BEGIN HIDDEN TESTS" in c.source)
    hidden.outputs = [nbformat.v4.new_output("error", ename="AssertionError", evalue="no",
                                             traceback=['check("double", globals())', "AssertionError"])]
    visible = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "double-visible")
    visible.outputs = [nbformat.v4.new_output("stream", name="stdout",
                                              text='ok\nfrom toy_exercises import check\nbye\n')]
    nb, _ = HideHiddenTests().preprocess(nb, {})
    dumped = nbformat.writes(nb)
    assert "toy_exercises" not in dumped and 'check(\\"double\\"' not in dumped
    assert visible.outputs[0].text == "ok\nbye\n"


def test_the_table_prints_no_escape_sequence_a_submission_wrote():
    from autograder.grading import SubmissionResult
    from autograder.recording import format_table

    reason = "the file is not a valid notebook: '\x1b[1A\x1b[2K\x1b]0;pwned\x07\x1b]52;c;ZWNobyBwd25lZA==\x07'"
    table = format_table([SubmissionResult("s\x1b[31m", "a", "failed", reason=reason)])
    assert "\x1b" not in table and "\x07" not in table
    assert "not a valid notebook" in table


def test_a_pair_cell_that_lost_its_metadata_is_found_by_both_names():
    """Notebook 01 writes an activation's two passes in one cell (grade id ``sigmoid``): pasted
    into a fresh cell, it is found because it defines both; a cell with only one of them is not
    taken for it."""
    import copy
    from pathlib import Path

    from nbgrader.preprocessors import ClearSolutions

    path = Path(__file__).resolve().parents[2] / "notebooks" / "01_activations" / "01_activations.ipynb"
    source = nbformat.read(path, as_version=4)
    release, _ = ClearSolutions().preprocess(copy.deepcopy(source), {})
    answer = solution_source(sources(source)["sigmoid"])

    student = classroom.correct(source, release)
    cell = next(c for c in student.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "sigmoid")
    student.cells.remove(cell)
    only_forward = answer.split("\n\n\ndef sigmoid_backward")[0]
    student.cells.append(nbformat.v4.new_code_cell(only_forward))
    canonical, _ = rebuild(release, student)
    assert sources(canonical)["sigmoid"] == sources(release)["sigmoid"]  # not taken: still the stub

    student.cells.append(nbformat.v4.new_code_cell(answer))
    canonical, notes = rebuild(release, student)
    assert sources(canonical)["sigmoid"] == answer
    assert any("sigmoid_backward and sigmoid_forward" in note and "the names it defines" in note
               for note in notes), notes
