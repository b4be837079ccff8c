"""Rebuild the canonical notebook a submission should have been.

nbgrader grades cells by their metadata, so a student who deleted, duplicated, reordered or
retyped a test cell, or whose solution cell lost its metadata (copied into a fresh cell), scores
0 even with correct code. Grading therefore starts from the *release* notebook -- every cell in
its place, tests as written -- and only carries the student's answers over:

* a solution cell (code or a written answer) is matched by its grade id; when the student has
  several cells with that id (a duplicate) the last one they edited wins;
* a code solution cell whose metadata was lost is found by the name it defines: the exercise
  name is the grade id (``def relu_backward``), or for a pair written in one cell the names the
  released cell defines (``sigmoid``: ``def sigmoid_forward``, ``def sigmoid_backward``); the
  last code cell defining them all is taken.

Everything else the student typed (scratch cells, edits to locked cells) is dropped: the rules
of every notebook say each exercise must live in its own cell.
"""

from __future__ import annotations

import ast
import copy
import json
import warnings

import nbformat
from nbformat import NotebookNode


class NotANotebook(ValueError):
    """The submitted file cannot be read as a Jupyter notebook (the message says why)."""


# A notebook with its figures is a few MiB; parsing a huge one would cost the grader's memory.
MAX_NOTEBOOK_BYTES = 32 * 2**20


def read_submission(path) -> NotebookNode:
    """The submitted notebook, or :class:`NotANotebook` with a one-line reason."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_NOTEBOOK_BYTES + 1)
    except OSError as exc:
        raise NotANotebook(f"the file cannot be read: {exc.strerror}") from None
    if len(raw) > MAX_NOTEBOOK_BYTES:
        raise NotANotebook(f"the notebook file is larger than {MAX_NOTEBOOK_BYTES // 2**20} MiB "
                           "(clear the outputs and hand it in again)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise NotANotebook("the file is not a notebook (it is not even text: a binary file?)") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NotANotebook(f"the notebook file is corrupt: invalid JSON ({exc.msg} at line "
                           f"{exc.lineno}, column {exc.colno})") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise NotANotebook("the file is JSON but not a Jupyter notebook (no list of cells)")
    try:
        with warnings.catch_warnings():  # duplicate cell ids etc.: nbformat repairs them
            warnings.simplefilter("ignore")
            nb = nbformat.reads(text, as_version=4)
    except Exception as exc:  # nbformat raises many kinds on odd documents
        raise NotANotebook(f"the file is not a valid notebook: {str(exc).splitlines()[0][:200]}") from None
    for cell in nb.cells:
        if not isinstance(cell.get("source", ""), str) or cell.get("cell_type") not in (
                "code", "markdown", "raw"):
            raise NotANotebook("the notebook has a malformed cell")
    return nb


def nbgrader_meta(cell) -> dict:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return meta if isinstance(meta, dict) else {}


def grade_id(cell) -> str | None:
    return nbgrader_meta(cell).get("grade_id")


def is_solution(cell) -> bool:
    return bool(nbgrader_meta(cell).get("solution"))


def defined_names(source: str) -> set[str]:
    """Top-level function and class names a code cell defines (empty when it does not parse)."""
    if isinstance(source, list):
        source = "".join(source)
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return set()
    return {node.name for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}


def rebuild(release: NotebookNode, student: NotebookNode) -> tuple[NotebookNode, list[str]]:
    """The release notebook with the student's answers in place, and notes on what was repaired."""
    notes: list[str] = []
    canonical = copy.deepcopy(release)
    by_id: dict[str, list] = {}
    for cell in student.cells:
        gid = grade_id(cell)
        if gid:
            by_id.setdefault(gid, []).append(cell)

    release_ids = [grade_id(c) for c in release.cells if grade_id(c)]
    student_ids = [grade_id(c) for c in student.cells if grade_id(c) in set(release_ids)]
    missing = [g for g in release_ids if g not in by_id]
    duplicated = sorted({g for g in student_ids if student_ids.count(g) > 1})
    seen = [g for g in dict.fromkeys(student_ids)]
    if missing:
        notes.append("cells missing from the submission were put back: " + ", ".join(missing))
    if duplicated:
        notes.append("duplicated cells were merged: " + ", ".join(duplicated))
    if seen != [g for g in release_ids if g in seen]:
        notes.append("cells had been moved; the original order was restored")
    edited = [grade_id(c) for c in release.cells
              if grade_id(c) in by_id and not is_solution(c) and nbgrader_meta(c).get("locked")
              and any(s.source != c.source for s in by_id[grade_id(c)])]
    if edited:
        notes.append("edited read-only cells were put back as released: " + ", ".join(edited))

    for index, cell in enumerate(canonical.cells):
        if not is_solution(cell):
            continue
        gid = grade_id(cell)
        candidates = [c for c in by_id.get(gid, []) if c.get("cell_type") == cell.cell_type]
        chosen = None
        if candidates:
            edited = [c for c in candidates if c.source != cell.source]
            chosen = (edited or candidates)[-1]
        elif cell.cell_type == "code":
            # Metadata lost: a code solution cell is known by the name it defines, its grade id,
            # or, for a pair written in one cell (sigmoid: sigmoid_forward, sigmoid_backward), by
            # every name the released cell defines.
            released = defined_names(cell.source)
            names = {gid} if gid in released or not released else released
            defining = [c for c in student.cells
                        if c.get("cell_type") == "code" and names <= defined_names(c.source)]
            if defining:
                chosen = defining[-1]
                what = "names" if len(names) > 1 else "name"
                notes.append(f"the cell defining {' and '.join(sorted(names))} had lost its "
                             f"grading metadata; it was found by the {what} it defines")
        if chosen is not None:
            cell.source = chosen.source
    return canonical, notes


def solution_source(source: str) -> str:
    """A source notebook's solution cell as a student who solved it would write it."""
    lines = [line for line in source.splitlines()
             if line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION")]
    return "\n".join(lines)
