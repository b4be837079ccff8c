"""One source per answer: each exercise's reference is written once.

An exercise with a twin in the library (a function marked ``@exercise("<notebook>")``) is
written out twice, in the library and in the instructor notebook's solution cell of the same
name. The two must be the same text: the signature and the docstring, and the body, which in
the notebook is the lines it gives the student (input checks before ``### BEGIN SOLUTION``, the
``return`` after ``### END SOLUTION``) around the solution region. Texts are compared after
normalisation: dedented, trailing spaces stripped, blank and comment-only lines dropped.

An exercise without a twin (``Graph``, ``l2_regularise``, ``random_search``) has a single
text already, its notebook's solution cell: the catalogue takes
its reference from that cell (``autograder.exercises.notebook_solutions``) and types none.

Fast: it reads sources, it runs no notebook.
"""

from __future__ import annotations

import ast
import json
import re
import textwrap
from pathlib import Path

import pytest

from autograder.edition import LIBRARY_DIR, marked_functions
from autograder.exercises import catalogue

ROOT = LIBRARY_DIR.parent
NOTEBOOKS = ROOT / "notebooks"
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"


def normalise(text: str) -> list[str]:
    lines = [line.rstrip() for line in textwrap.dedent(text).splitlines()]
    lines = [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
    return textwrap.dedent("\n".join(lines)).splitlines()


def library_twins() -> dict[str, tuple[str, Path, str]]:
    """{name: (notebook, file, source of the function without its decorator)}."""
    found = {}
    for path in sorted(LIBRARY_DIR.rglob("*.py")):
        text = path.read_text()
        lines = text.splitlines()
        for node, notebook in marked_functions(ast.parse(text)):
            assert node.name not in found, f"{node.name} is marked twice"
            found[node.name] = (notebook, path,
                                "\n".join(lines[node.lineno - 1:node.end_lineno]))
    return found


def solution_cells(notebook: str) -> dict[str, str]:
    """{grade id: source} of the solution code cells of an instructor notebook."""
    path = NOTEBOOKS / notebook / f"{notebook}.ipynb"
    return {c["metadata"]["nbgrader"]["grade_id"]: "".join(c["source"])
            for c in json.loads(path.read_text())["cells"]
            if c["cell_type"] == "code" and c["metadata"].get("nbgrader", {}).get("solution")}


def defining_cells(notebook: str, name: str) -> list[str]:
    """The solution cells of ``notebook`` that define ``name`` at their top level: a cell holds
    its exercise's function, or the functions it builds in one place (AdaGrad, then RMSProp)."""
    return [source for source in solution_cells(notebook).values()
            if name in {n.name for n in ast.parse(textwrap.dedent(source)).body
                        if isinstance(n, ast.FunctionDef)}]


def parts(source: str, name: str) -> tuple[str, str | None, str]:
    """(signature, docstring, body after the docstring) of the function ``name`` in ``source``;
    the solution markers are left in the body's text."""
    source = textwrap.dedent(source)
    tree = ast.parse(source)
    node = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name), None)
    assert node is not None, f"no top-level function {name} in its cell"
    lines = source.splitlines()
    docstring = ast.get_docstring(node, clean=False)
    statements = node.body[1:] if docstring is not None else node.body
    assert statements, f"{name} has no body"
    first = statements[0].lineno - 1
    # comment lines right above the first statement belong to the body
    while first > node.body[0].lineno and lines[first - 1].strip().startswith("#"):
        first -= 1
    signature = ast.unparse(node.args), ast.unparse(node.returns) if node.returns else None
    body = "\n".join(lines[first:node.end_lineno])
    if lines[node.end_lineno:] and lines[node.end_lineno].strip() == "### END SOLUTION":
        body += "\n" + lines[node.end_lineno]  # a region that closes the function (no given tail)
    return signature, docstring, body


TWINS = library_twins()


def test_every_twin_has_a_solution_cell():
    for name, (notebook, path, _) in TWINS.items():
        assert len(defining_cells(notebook, name)) == 1, (
            f"{path.name}: {name} is marked @exercise({notebook!r}) but not one solution cell "
            f"of {notebook} defines it")


@pytest.mark.parametrize("name", sorted(TWINS))
def test_library_and_notebook_are_one_text(name):
    notebook, path, library_source = TWINS[name]
    cell, = defining_cells(notebook, name)
    lib_signature, lib_doc, lib_body = parts(library_source, name)
    nb_signature, nb_doc, nb_body = parts(cell, name)

    assert nb_signature == lib_signature, f"{name}: the signatures differ"
    assert nb_doc is not None and normalise(nb_doc) == normalise(lib_doc), (
        f"{name}: the docstrings of {path.name} and {notebook} differ")

    # Exactly one solution region, inside the function.
    body_lines = nb_body.splitlines()
    marks = [line.strip() for line in body_lines if line.strip() in (BEGIN, END)]
    assert marks == [BEGIN, END], f"{name}: expected one solution region in its function"
    region = re.search(rf"{BEGIN}\n(.*?)\n[ \t]*{END}", nb_body, re.S).group(1)
    assert normalise(region), f"{name}: empty solution region"

    # The given lines and the region, together, are the library's body.
    without_marks = "\n".join(line for line in body_lines if line.strip() not in (BEGIN, END))
    assert normalise(without_marks) == normalise(lib_body), (
        f"{name}: the body in {path.relative_to(ROOT)} and the solution in {notebook} differ; "
        "edit one and copy it to the other")

    # Nothing else in the cell: the cell is the function (or functions, each a twin).
    tree = ast.parse(textwrap.dedent(cell))
    assert all(isinstance(n, ast.FunctionDef) and TWINS.get(n.name, ("",))[0] == notebook
               for n in tree.body), f"{name}: the solution cell holds more than its functions"


def test_helpers_the_solutions_use_are_imported_by_the_setup_cell():
    """A solution cell re-run on its own (grading does) sees only the setup cell's names."""
    import builtins

    for notebook in sorted({nb for nb, _, _ in TWINS.values()}):
        path = NOTEBOOKS / notebook / f"{notebook}.ipynb"
        cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
        setup = next(c for c in cells if c["metadata"].get("nbgrader", {}).get("grade_id") == "setup")
        known = set(dir(builtins))
        for node in ast.walk(ast.parse("".join(setup["source"]))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                known |= {(a.asname or a.name).split(".")[0] for a in node.names}
            elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                known.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                known.add(node.id)
        # functions of this notebook, defined by its own cells (spatial batchnorm calls the
        # student's batchnorm_forward)
        for cell in cells:
            for node in ast.parse(textwrap.dedent("".join(cell["source"])).replace("%", "#")).body:
                if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                    known.add(node.name)
        for name, (nb, _, source) in TWINS.items():
            if nb != notebook:
                continue
            tree = ast.parse(textwrap.dedent(source))
            local = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)
                     and isinstance(n.ctx, ast.Store)}
            local |= {a.arg for n in ast.walk(tree) if isinstance(n, ast.arguments)
                      for a in n.args + n.kwonlyargs + n.posonlyargs
                      + [x for x in (n.vararg, n.kwarg) if x]}
            free = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)
                    and isinstance(n.ctx, ast.Load)} - local - known
            assert not free, f"{notebook}: {name} uses {sorted(free)}, which its setup cell lacks"


NO_TWIN = {"00_backprop": ("Graph",), "05_optimisers": ("l2_regularise",),
           "07_babysitting": ("random_search",)}


# Open exercises have no reference answer at all: any model will do, and the grader compares
# its predictions with labels it alone holds (notebook 07's train_best_model on photo10).
OPEN = {"07_babysitting": ("train_best_model",)}


def test_exercises_without_a_twin_are_exactly_these():
    exercises = {name: nb for nb, found in catalogue().items() for name in found}
    # An activation's exercise (sigmoid) is its two twins, sigmoid_forward and sigmoid_backward.
    without = {name for name in exercises if name not in TWINS
               and not {f"{name}_forward", f"{name}_backward"} <= set(TWINS)}
    open_names = {name for names in OPEN.values() for name in names}
    assert without - open_names == {name for names in NO_TWIN.values() for name in names}
    assert open_names <= without


@pytest.mark.parametrize("notebook,names", sorted(NO_TWIN.items()))
def test_exercises_without_a_twin_take_the_notebooks_solution(notebook, names):
    """The catalogue's reference is the object the notebook's solution cell defines: the module
    imports it through ``notebook_solutions``, and types no copy of its own."""
    import importlib

    module = importlib.import_module(f"autograder.exercises.nb{notebook}")
    source = Path(module.__file__).read_text()
    assert "notebook_solutions(" in source
    cells = solution_cells(notebook)
    for name in names:
        assert name in cells
        assert not re.search(rf"^\s*(def|class) {name}\b", source, re.M), (
            f"{module.__name__} defines its own {name}: take it from the notebook")
        exercise = catalogue()[notebook][name]
        references = exercise.reference if isinstance(exercise.reference, dict) else {}
        reference = references.get(name, getattr(module, name, None))
        if reference is None:  # held by a module-level mapping, e.g. _REFERENCE
            reference = next(v[name] for v in vars(module).values()
                             if isinstance(v, dict) and name in v)
        code = reference.__code__ if hasattr(reference, "__code__") else None
        filename = code.co_filename if code else reference.backward.__code__.co_filename
        assert filename.endswith(f"{notebook}.ipynb:{name}"), (
            f"{name}'s reference comes from {filename}, not from the notebook's solution cell")
