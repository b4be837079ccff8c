"""Every source notebook: nbgrader metadata, clean execution, and the student version it yields.

The grading contract (notebook form) is checked on the committed source notebooks; then each is
executed top to bottom with its solutions (all graded cells must pass, nothing may go to stderr
in a graded cell, since that zeroes its points), and the student version is generated with
nbgrader's own preprocessors and checked: no solution or hidden-test line survives, and with
the stubs in place every visible test fails with NotImplementedError.
"""

from __future__ import annotations

import ast
import copy
import os
import re
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*/*.ipynb"))
NOTEBOOKS = [p for p in NOTEBOOKS if p.parent.name == p.stem and ".ipynb_checkpoints" not in p.parts]
IDS = [p.stem for p in NOTEBOOKS]
TIMEOUT = 300  # per cell, generous: the machine running the suite may be busy

HIDDEN_CELL = re.compile(
    r"\A# Hidden checks: they run only when your notebook is graded\.\n"
    r"### BEGIN HIDDEN TESTS\n"
    r"from autograder\.exercises import check_exercise\n"
    r'check_exercise\("(?P<name>[A-Za-z_][A-Za-z0-9_]*)", globals\(\)\)\n'
    r"### END HIDDEN TESTS\n?\Z")


def nbg(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def kind(cell) -> str:
    """'setup', 'solution', 'visible', 'hidden', 'manual' or 'other'."""
    m = nbg(cell)
    gid = m.get("grade_id", "")
    if "setup" in cell.metadata.get("tags", []) or gid == "setup":
        return "setup"
    if cell.cell_type == "markdown" and m.get("grade") and m.get("solution"):
        return "manual"
    if cell.cell_type == "code" and m.get("solution"):
        return "solution"
    if cell.cell_type == "code" and m.get("grade"):
        return "hidden" if gid.endswith("-hidden") else "visible"
    return "other"


def defined_names(source: str) -> list[str]:
    tree = ast.parse(source)
    return [node.name for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))]


def solution_region(source: str) -> list[str]:
    lines, inside = [], False
    for line in source.splitlines():
        if "### BEGIN SOLUTION" in line:
            inside = True
        elif "### END SOLUTION" in line:
            inside = False
        elif inside and line.strip():
            lines.append(line.strip())
    return lines


def load(path: Path):
    return nbformat.read(path, as_version=4)


def test_every_notebook_folder_holds_its_notebook():
    folders = [d for d in (ROOT / "notebooks").iterdir()
               if d.is_dir() and re.fullmatch(r"\d\d_[a-z0-9_]+", d.name)]
    assert folders, "no notebooks/<NN_topic>/ folders"
    for d in folders:
        assert (d / f"{d.name}.ipynb").is_file(), f"{d} must hold {d.name}.ipynb"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_metadata(path):
    nb = load(path)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.lstrip().startswith("#"), \
        "the first cell is the markdown title with the points table"
    for phrase in ("grading re-runs your solution cells on their own",
                   "passing the visible checks is not full marks"):
        assert phrase in first.source, f"the rules in the first cell must say: {phrase!r}"

    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    for c in code_cells:
        assert c.outputs == [] and c.execution_count is None, \
            f"committed with outputs: {c.source[:60]!r}"

    setups = [c for c in nb.cells if kind(c) == "setup"]
    assert len(setups) == 1, "exactly one setup cell"
    assert setups[0] is code_cells[0], "the setup cell is the first code cell"
    assert "setup" in setups[0].metadata.get("tags", [])
    assert nbg(setups[0]) == {"grade": False, "solution": False, "locked": True,
                              "grade_id": "setup", "schema_version": 3, "task": False}

    grade_ids = [nbg(c)["grade_id"] for c in nb.cells if "grade_id" in nbg(c)]
    assert len(grade_ids) == len(set(grade_ids)), "grade_ids must be unique"

    solutions = {}
    for c in nb.cells:
        m, k = nbg(c), kind(c)
        if m.get("grade"):
            assert isinstance(m.get("points"), (int, float)) and m["points"] > 0, \
                f"graded cell {m.get('grade_id')} needs points"
        if k == "solution":
            name = m["grade_id"]
            assert m == {"grade": False, "solution": True, "locked": False, "grade_id": name,
                         "schema_version": 3, "task": False}
            # One exercise, one cell: its own name, an activation's forward/backward pair, or
            # the functions it builds on and then itself (05's adagrad, then rmsprop).
            names = defined_names(c.source)
            assert names[-1:] == [name] or names == [f"{name}_forward", f"{name}_backward"], \
                f"solution cell {name} must end with {name}, or define {name}_forward and {name}_backward"
            assert "### BEGIN SOLUTION" in c.source and "### END SOLUTION" in c.source
            solutions[name] = c
        elif k in ("visible", "hidden"):
            assert m["locked"] and not m["solution"]
        elif k == "manual":
            assert m["grade_id"].startswith("q_") and not m["locked"]

    assert solutions, "a notebook has at least one exercise"
    seen_solution = set()
    for c in nb.cells:
        k, gid = kind(c), nbg(c).get("grade_id", "")
        if k == "solution":
            seen_solution.add(gid)
        elif k == "visible":
            base = re.sub(r"-visible(-\d+)?$", "", gid)
            assert gid in (f"{base}-visible", *(f"{base}-visible-{i}" for i in range(2, 10))), gid
            assert base in seen_solution, f"{gid} must come after the solution cell {base}"
        elif k == "hidden":
            match = HIDDEN_CELL.match(c.source)
            assert match, f"hidden cell {gid} must have exactly the contract's shape"
            assert gid == f"{match['name']}-hidden", f"{gid} must check its own exercise"
            assert match["name"] in seen_solution
    for name in solutions:
        assert f"{name}-visible" in grade_ids, f"{name} has no visible test cell"
        assert f"{name}-hidden" in grade_ids, f"{name} has no hidden test cell"


def execute(nb, cwd: Path):
    from nbclient import NotebookClient

    client = NotebookClient(nb, timeout=TIMEOUT, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(cwd)}})
    start = time.perf_counter()
    old = os.environ.get("MPLBACKEND")
    os.environ["MPLBACKEND"] = "Agg"
    try:
        client.execute()
    finally:
        if old is None:
            os.environ.pop("MPLBACKEND", None)
        else:
            os.environ["MPLBACKEND"] = old
    return time.perf_counter() - start


def errors_of(cell):
    return [o for o in cell.get("outputs", []) if o.output_type == "error"]


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_source_notebook_runs_clean(path, record_property):
    nb = load(path)
    seconds = execute(nb, path.parent)
    record_property("execution_seconds", round(seconds, 1))
    print(f"\n{path.stem}: executed with solutions in {seconds:.1f} s")
    problems = []
    for c in nb.cells:
        if c.cell_type != "code":
            continue
        label = nbg(c).get("grade_id") or c.source.splitlines()[0][:60]
        for o in errors_of(c):
            problems.append(f"{label}: {o.ename}: {o.evalue[:200]}")
        if nbg(c).get("grade"):
            for o in c.outputs:
                if o.output_type == "stream" and o.name == "stderr":
                    problems.append(f"{label}: wrote to stderr (zeroes its points): {o.text[:200]}")
    assert not problems, "\n".join(problems)


def student_version(nb):
    from nbgrader.preprocessors import ClearHiddenTests, ClearOutput, ClearSolutions

    nb = copy.deepcopy(nb)
    resources = {}
    for pre in (ClearSolutions(), ClearHiddenTests(), ClearOutput()):
        nb, resources = pre.preprocess(nb, resources)
    return nb


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_student_version(path):
    source = load(path)
    student = student_version(source)
    assert len(student.cells) == len(source.cells)

    for src, stu in zip(source.cells, student.cells):
        k = kind(src)
        if k == "solution":
            outside = set(line.strip() for line in stu.source.splitlines())
            kept = [line for line in solution_region(src.source)
                    if line in outside and line not in _outside_region(src.source)]
            assert not kept, f"{nbg(src)['grade_id']}: solution lines left: {kept}"
            assert "raise NotImplementedError()" in stu.source
        elif k == "hidden":
            assert "check_exercise" not in stu.source and "HIDDEN TESTS" not in stu.source
        elif k == "manual":
            assert stu.source.strip() == "YOUR ANSWER HERE"
    text = "\n".join(c.source for c in student.cells)
    assert "### BEGIN SOLUTION" not in text and "### BEGIN HIDDEN TESTS" not in text

    # setup + solution stubs + visible tests only: every visible test must fail on the stubs.
    picked = [c for c in student.cells if kind(c) in ("setup", "solution", "visible")]
    run = nbformat.v4.new_notebook(cells=copy.deepcopy(picked), metadata=student.metadata)
    seconds = execute(run, path.parent)
    print(f"\n{path.stem}: student version (setup + stubs + visible tests) in {seconds:.1f} s")
    for c in run.cells:
        gid = nbg(c).get("grade_id")
        errs = errors_of(c)
        if kind(c) in ("setup", "solution"):
            assert not errs, f"{gid}: {[(e.ename, e.evalue) for e in errs]}"
        else:
            assert errs, f"{gid} passes on an unimplemented solution"
            assert errs[0].ename == "NotImplementedError", \
                f"{gid} fails with {errs[0].ename} on the stub, not NotImplementedError"


def _outside_region(source: str) -> set[str]:
    """Stripped lines of a solution cell that are outside its solution region (kept on purpose)."""
    keep, inside = set(), False
    for line in source.splitlines():
        if "### BEGIN SOLUTION" in line:
            inside = True
        elif "### END SOLUTION" in line:
            inside = False
        elif not inside:
            keep.add(line.strip())
    return keep
