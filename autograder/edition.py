"""The student edition of the library: ``cs231n_lib`` with the answers not yet due taken out.

The library holds the reference answer of every graded exercise, each marked in its source with
``@exercise("<notebook>")`` (``cs231n_lib/registry.py``). The edition released with assignment A
is the same package with the body of every exercise of A and of every later assignment replaced
by a stub::

    @exercise("01_activations")
    def relu_forward(x):
        \"\"\"(the reference's docstring, unchanged)\"\"\"
        raise NotImplementedError("relu_forward is yours to write in notebook 01_activations")

The exercises of earlier assignments keep their reference: a course publishes its solutions after
the deadline, and notebook 04 may use a working ``softmax_loss``. Everything that is not an
exercise (the vectorized conv core, Solver, data, widgets, the models' plumbing) is copied as it
is. The replacement works on the syntax tree's line numbers, so the rest of each file is kept
byte for byte, comments included.

The edition is a folder ``library/`` with a ``pyproject.toml`` and the package: putting the folder
on ``PYTHONPATH`` imports it, ``pip install library/`` installs it (as ``cs231n-lib-student``,
version ``0.1.0+<assignment>``).
"""

from __future__ import annotations

import ast
import shutil
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
LIBRARY_DIR = REPO_DIR / "cs231n_lib"
DATA_FILES = ("digits.npz", "photo_chelsea.png", "photo10.npz")  # data/ files the notebooks load

PYPROJECT = """\
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "cs231n-lib-student"
version = "{version}"
description = "The student edition of cs231n_lib for assignment {assignment}"
requires-python = ">=3.11"
dependencies = ["numpy>=2.0", "matplotlib>=3.8", "ipywidgets>=8.1"]

[tool.setuptools.packages.find]
include = ["cs231n_lib*"]

[tool.setuptools.package-data]
cs231n_lib = ["data_files/*"]
"""


def stub_message(name: str, notebook: str) -> str:
    """What a stub says when called; the grader recognises a call to a stub by it."""
    return f"{name} is yours to write in notebook {notebook}"


def marked_functions(tree: ast.Module) -> list[tuple[ast.FunctionDef, str]]:
    """(function, notebook) for every top-level function decorated with ``@exercise("...")``."""
    found = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef):
            continue
        for deco in node.decorator_list:
            if (isinstance(deco, ast.Call) and isinstance(deco.func, ast.Name)
                    and deco.func.id == "exercise" and len(deco.args) == 1
                    and isinstance(deco.args[0], ast.Constant)):
                found.append((node, deco.args[0].value))
    return found


def body_statements(node: ast.FunctionDef) -> list[ast.stmt]:
    """The statements of a function after its docstring: what a stub replaces."""
    body = node.body
    if (body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)):
        body = body[1:]
    return body


def is_withheld(notebook: str, assignment: str, all_stubs: bool = False) -> bool:
    """Whether the edition for ``assignment`` stubs an exercise of ``notebook``.

    Assignments are ordered by their folder names (00_..., 01_...): the exercises of the
    assignment itself and of every later one are withheld, earlier ones are past their deadline.
    """
    return all_stubs or notebook >= assignment


def edition_source(source: str, assignment: str, all_stubs: bool = False
                   ) -> tuple[str, dict[str, str], dict[str, str]]:
    """One module's source in the edition.

    Returns (text, {stubbed name: notebook}, {kept name: notebook}).
    """
    lines = source.splitlines(keepends=True)
    stubbed, kept = {}, {}
    # Bottom-up, so that the line numbers of the functions still to rewrite stay valid.
    for node, notebook in sorted(marked_functions(ast.parse(source)), key=lambda m: -m[0].lineno):
        if not is_withheld(notebook, assignment, all_stubs):
            kept[node.name] = notebook
            continue
        body = body_statements(node)
        first, last = body[0].lineno - 1, node.end_lineno  # 0-based start, exclusive end
        indent = lines[first][: len(lines[first]) - len(lines[first].lstrip())]
        if body is not node.body:
            # Comments between the docstring and the first statement belong to the answer too.
            first = node.body[0].end_lineno
        stub = f'{indent}raise NotImplementedError("{stub_message(node.name, notebook)}")\n'
        lines[first:last] = [stub]
        stubbed[node.name] = notebook
    return "".join(lines), stubbed, kept


_STUDENT_PHOTO10: dict[tuple, bytes] = {}


def student_photo10(path: Path) -> bytes:
    """The photo10 file a student edition ships: the training and validation splits only.

    Notebook 07 grades a model by its accuracy on the test split, whose labels stay with the
    grader. So the edition's copy drops the test part of the crop table, and blacks out the
    windows the test crops are cut from in the photographs (else a student could look each test
    image up in its photograph). Every test window lies in blocks of its own, so the training and
    validation crops render to the same bytes (tests/autograder/test_edition.py checks it against the
    checksums the file carries). Made once per process and file version.
    """
    import io

    import numpy as np

    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if key not in _STUDENT_PHOTO10:
        with np.load(path) as f:
            table = {name: f[name] for name in f.files if not name.startswith("test_")}
            test_labels, test_boxes = f["test_labels"], f["test_boxes"].astype(np.int64)
        photos = table["photos"].copy()
        for label, (top, left, side) in zip(test_labels, test_boxes):
            photos[label, top:top + side, left:left + side] = 0
        table["photos"] = photos
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **table)
        _STUDENT_PHOTO10.clear()
        _STUDENT_PHOTO10[key] = buffer.getvalue()
    return _STUDENT_PHOTO10[key]


@dataclass
class Edition:
    """What ``build_edition`` wrote: the folder, and which exercises it stubs and keeps."""

    assignment: str
    path: Path
    stubbed: dict[str, str] = field(default_factory=dict)  # name -> notebook
    kept: dict[str, str] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)  # the check edition's forbidden functions

    def size(self) -> int:
        """Bytes of all the files in the edition's folder."""
        return sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())


def build_edition(assignment: str, dest: str | Path, all_stubs: bool = False,
                  library: Path = LIBRARY_DIR) -> Edition:
    """Write the edition of the library for ``assignment`` into the folder ``dest``.

    ``dest`` is replaced. It receives ``pyproject.toml`` and ``cs231n_lib/`` (sources only: no
    bytecode, which would carry the compiled answers) with the data files the notebooks load.
    """
    dest = Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    package = dest / "cs231n_lib"
    edition = Edition(assignment, dest)
    for src in sorted(library.rglob("*.py")):
        if "__pycache__" in src.parts:
            continue
        text, stubbed, kept = edition_source(src.read_text(), assignment, all_stubs)
        edition.stubbed.update(stubbed)
        edition.kept.update(kept)
        target = package / src.relative_to(library)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    (package / "data_files").mkdir()
    for name in DATA_FILES:
        if name == "photo10.npz":
            (package / "data_files" / name).write_bytes(student_photo10(REPO_DIR / "data" / name))
        else:
            shutil.copy(REPO_DIR / "data" / name, package / "data_files" / name)
    version = f"0.1.0+{assignment}" + (".allstubs" if all_stubs else "")
    (dest / "pyproject.toml").write_text(PYPROJECT.format(version=version, assignment=assignment))
    return edition


# ---------------------------------------------------------------------------------------------
# The edition the checks run on
# ---------------------------------------------------------------------------------------------
FORBIDDEN_MESSAGE = "forbidden: {name} may not be used while your exercises are checked"


def _stub_body(lines: list[str], node: ast.FunctionDef, statement: str) -> None:
    """Replace ``node``'s body after its docstring with one statement (lines edited in place)."""
    body = body_statements(node)
    first, last = (body[0].lineno - 1 if body else node.end_lineno), node.end_lineno
    if body is not node.body:
        first = node.body[0].end_lineno
    indent = " " * (node.col_offset + 4)
    lines[first:last] = [f"{indent}{statement}\n"]


def forbid_source(source: str, module: str, forbidden: set[str]) -> tuple[str, list[str]]:
    """One module with the functions ``forbidden`` names replaced by a refusal.

    ``forbidden`` holds dotted names (``cs231n_lib.conv.conv_forward``, a method as
    ``module.Class.method``) and whole modules as ``module.*``. Returns (text, names refused).
    """
    whole = f"{module}.*" in forbidden
    targets = []
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef):
            targets.append((node, f"{module}.{node.name}"))
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef):
                    targets.append((item, f"{module}.{node.name}.{item.name}"))
    chosen = [(n, name) for n, name in targets if whole or name in forbidden
              or name.rsplit(".", 1)[0] in forbidden]
    lines = source.splitlines(keepends=True)
    for node, name in sorted(chosen, key=lambda c: -c[0].lineno):
        _stub_body(lines, node, f'raise PermissionError("{FORBIDDEN_MESSAGE.format(name=name)}")')
    return "".join(lines), [name for _, name in chosen]


def build_check_edition(assignment: str, dest: str | Path, forbidden: set[str],
                        library: Path = LIBRARY_DIR) -> Edition:
    """The edition the grader's checks call the student's functions in.

    The student edition, and on top of it every library function an exercise of the assignment
    forbids refuses to run. A solution that delegates to the library -- directly, through a
    saved reference, or by recompiling the library's source -- meets the refusal, whatever it
    does to the (untrusted) watch on calls in the same process. The notebook's own kernel runs
    on the student edition, where those functions work for the experiments.
    """
    edition = build_edition(assignment, dest, library=library)
    package = Path(dest) / "cs231n_lib"
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        text, refused = forbid_source(path.read_text(), module, forbidden)
        if refused:
            path.write_text(text)
            edition.refused.extend(refused)
    return edition
