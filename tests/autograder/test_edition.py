"""The student edition of the library (autograder/edition.py) and its markers.

* every graded exercise with a twin in the library is marked ``@exercise(<its notebook>)``, and
  nothing else is;
* an edition stubs exactly the exercises of its assignment and later ones, keeping signature and
  docstring, and the stub says where to write the function;
* no line of a withheld reference appears anywhere in the release folder (sources, notebook,
  bytecode);
* ``use`` hands a notebook's functions to the models, Solver and widgets.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from autograder.edition import (LIBRARY_DIR, body_statements, build_edition, is_withheld,
                                marked_functions, stub_message)
from autograder.exercises import catalogue

ASSIGNMENTS = sorted(catalogue())


def library_functions() -> dict[str, tuple[Path, ast.FunctionDef]]:
    """Every top-level function of the library's sources, by name (the first one seen)."""
    found = {}
    for path in sorted(LIBRARY_DIR.rglob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef):
                found.setdefault(node.name, (path, node))
    return found


def marks() -> dict[str, str]:
    """{function name: notebook} of every ``@exercise`` in the library's sources."""
    found = {}
    for path in sorted(LIBRARY_DIR.rglob("*.py")):
        for node, notebook in marked_functions(ast.parse(path.read_text())):
            assert node.name not in found, f"{node.name} is marked twice"
            found[node.name] = notebook
    return found


def test_markers_match_the_catalogue():
    """Every library function an exercise asks for (its references: one exercise may cover
    several, as ``rmsprop`` covers ``adagrad``) is marked for that exercise's notebook."""
    functions = library_functions()
    expected = {name: notebook for notebook, exercises in catalogue().items()
                for exercise in exercises.values() for name in exercise.reference if name in functions}
    assert marks() == expected


def test_registry_sees_the_same_markers():
    from cs231n_lib.registry import exercises

    assert exercises() == marks()


def test_withheld_by_deadline():
    assert is_withheld("04_batchnorm", "04_batchnorm")
    assert is_withheld("05_optimisers", "04_batchnorm")
    assert not is_withheld("00_backprop", "04_batchnorm")
    assert is_withheld("00_backprop", "04_batchnorm", all_stubs=True)


@pytest.fixture(scope="module")
def editions(tmp_path_factory):
    root = tmp_path_factory.mktemp("editions")
    return {a: build_edition(a, root / a) for a in ASSIGNMENTS}


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_edition_stubs_this_and_later_assignments(editions, assignment):
    edition = editions[assignment]
    every = marks()
    assert edition.stubbed == {n: nb for n, nb in every.items() if nb >= assignment}
    assert edition.kept == {n: nb for n, nb in every.items() if nb < assignment}
    assert not list(edition.path.rglob("*.pyc"))


def _functions_of(package: Path) -> dict[str, ast.FunctionDef]:
    found = {}
    for path in sorted(package.rglob("*.py")):
        for node, _ in marked_functions(ast.parse(path.read_text())):
            found[node.name] = node
    return found


def test_stub_keeps_signature_and_docstring(editions):
    edition = editions[ASSIGNMENTS[0]]  # every exercise is stubbed in the first edition
    reference = library_functions()
    stubs = _functions_of(edition.path / "cs231n_lib")
    assert set(stubs) == set(marks())
    for name, stub in stubs.items():
        ref = reference[name][1]
        assert ast.dump(stub.args) == ast.dump(ref.args), name
        assert ast.get_docstring(stub) == ast.get_docstring(ref), name
        (statement,) = body_statements(stub)
        assert ast.unparse(statement) == (
            f"raise NotImplementedError('{stub_message(name, marks()[name])}')")


def test_everything_else_is_copied_verbatim(editions):
    edition = editions[ASSIGNMENTS[-1]]
    for path in LIBRARY_DIR.rglob("*.py"):
        if "__pycache__" in path.parts:
            continue
        text = path.read_text()
        if "@exercise(" not in text:
            assert (edition.path / "cs231n_lib" / path.relative_to(LIBRARY_DIR)).read_text() == text


def test_edition_imports_and_stubs_raise_their_message(editions, tmp_path):
    """The edition of 04 in a clean interpreter: 00-03 work, 04 and later say where to write
    them."""
    code = """
import numpy as np
import cs231n_lib
from cs231n_lib import layers, optim
from cs231n_lib.data import load_digits
assert cs231n_lib.__file__.startswith(%r), cs231n_lib.__file__
loss, _ = layers.softmax_loss(np.zeros((2, 3)), np.array([0, 1]))
assert abs(loss - np.log(3)) < 1e-12
assert load_digits()["X_train"].shape[1:] == (1, 8, 8)
x, gamma, beta = np.ones((2, 3)), np.ones(3), np.zeros(3)
for call in (lambda: layers.batchnorm_forward(x, gamma, beta, {"mode": "train"}),
             lambda: optim.adam(np.ones(2), np.ones(2))):
    try:
        call()
    except NotImplementedError as exc:
        print(exc)
""" % str(editions["04_batchnorm"].path)
    env = {"PYTHONPATH": str(editions["04_batchnorm"].path), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "batchnorm_forward is yours to write in notebook 04_batchnorm",
        "adam is yours to write in notebook 05_optimisers"]


# ---------------------------------------------------------------------------------------------
# No answer in the release folder
# ---------------------------------------------------------------------------------------------

def normalise(line: str) -> str:
    return re.sub(r"\s+", " ", line.split("#")[0]).strip()


def answer_lines(name: str) -> set[str]:
    """The normalised lines of the body of a reference: long enough to mean something."""
    path, node = library_functions()[name]
    source = path.read_text().splitlines()
    lines = set()
    for statement in body_statements(node):
        for line in source[statement.lineno - 1:statement.end_lineno]:
            line = normalise(line)
            if len(line) >= 20 and not re.fullmatch(r"return [\w, ().\[\]]*", line):
                lines.add(line)
    return lines


def release_lines(folder: Path) -> dict[str, set[str]]:
    """{file: its normalised lines} for every text file of a release folder (notebooks by cell)."""
    found = {}
    for path in folder.rglob("*"):
        if not path.is_file() or path.suffix in (".npz", ".png", ".pyc"):
            continue
        if path.suffix == ".ipynb":
            cells = json.loads(path.read_text())["cells"]
            text = "\n".join("".join(c["source"]) for c in cells)
        else:
            text = path.read_text()
        found[str(path.relative_to(folder))] = {normalise(line) for line in text.splitlines()}
    return found


def published_lines(assignment: str) -> set[str]:
    """Lines the instructor's notebook gives the student on purpose: its prose, its code outside
    solution regions (e.g. ``eps = bn_param.get("eps", 1e-5)`` before ``### BEGIN SOLUTION``)."""
    path = LIBRARY_DIR.parent / "notebooks" / assignment / f"{assignment}.ipynb"
    lines = set()
    for cell in json.loads(path.read_text())["cells"]:
        source = "".join(cell["source"])
        if cell.get("metadata", {}).get("nbgrader", {}).get("solution") and cell["cell_type"] == "code":
            source = re.sub(r"### BEGIN SOLUTION.*?### END SOLUTION", "", source, flags=re.S)
        elif cell.get("metadata", {}).get("nbgrader", {}).get("solution"):
            continue  # a written answer: the release replaces it
        lines |= {normalise(line) for line in source.splitlines()}
    return lines


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    from autograder.course import Course

    course = Course(tmp_path_factory.mktemp("course"))
    course.release(ASSIGNMENTS)
    return course


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_no_withheld_answer_in_the_release_folder(released, assignment):
    folder = released.path("release", assignment=assignment)
    assert (folder / "library" / "pyproject.toml").is_file()
    assert not list(folder.rglob("*.pyc")), "bytecode would carry the compiled answers"
    files = release_lines(folder)
    published = published_lines(assignment)
    leaks = []
    for name, notebook in marks().items():
        if not is_withheld(notebook, assignment):
            continue
        for line in answer_lines(name) - published:
            leaks += [f"{file}: {line!r} (from {name})" for file, lines in files.items()
                      if line in lines]
    assert not leaks, "\n".join(leaks)


@pytest.mark.slow
def test_the_editions_the_sandboxes_import_are_compiled_and_the_students_is_not(released):
    assignment = ASSIGNMENTS[0]
    for library in (released.edition_path(assignment, released.template_root),
                    released.check_edition_path(assignment)):
        modules = list((library / "cs231n_lib").rglob("*.py"))
        assert modules and all(Path(importlib.util.cache_from_source(p)).is_file() for p in modules)
    assert not list(released.path("release", assignment=assignment).rglob("*.pyc"))


def test_compiled_edition_holds_only_stubs(editions):
    """What Python compiles from an edition (its bytecode) has no withheld answer either."""
    edition = editions[ASSIGNMENTS[0]]
    for path in (edition.path / "cs231n_lib").rglob("*.py"):
        module = compile(path.read_text(), str(path), "exec")
        for const in module.co_consts:
            if hasattr(const, "co_name") and const.co_name in edition.stubbed:
                assert set(const.co_names) == {"NotImplementedError"}, const.co_name


# ---------------------------------------------------------------------------------------------
# use(): the library runs the notebook's functions
# ---------------------------------------------------------------------------------------------

@pytest.fixture
def registry():
    import cs231n_lib

    yield cs231n_lib
    cs231n_lib.reset()


def test_use_routes_models_and_solver_to_the_given_functions(registry):
    from cs231n_lib import layers, optim
    from cs231n_lib.models import FullyConnectedNet
    from cs231n_lib.solver import Solver

    calls = []

    def batchnorm_forward(x, gamma, beta, bn_param):
        calls.append("batchnorm_forward")
        return layers.batchnorm_forward.__replaces__(x, gamma, beta, bn_param)

    def adam(w, dw, config=None):
        calls.append("adam")
        return adam.__replaces__(w, dw, config)

    registry.use(batchnorm_forward, adam)
    assert layers.batchnorm_forward is batchnorm_forward and optim.adam is adam
    rng = np.random.default_rng(0)
    data = {"X_train": rng.standard_normal((20, 4)), "y_train": rng.integers(0, 3, 20),
            "X_val": rng.standard_normal((5, 4)), "y_val": rng.integers(0, 3, 5)}
    net = FullyConnectedNet([6], input_dim=4, num_classes=3, normalization="batchnorm", seed=0)
    Solver(net, data, update_rule="adam", num_epochs=1, batch_size=10, verbose=False).train()
    assert {"batchnorm_forward", "adam"} <= set(calls)
    registry.reset()
    assert layers.batchnorm_forward is batchnorm_forward.__replaces__


def test_use_reaches_re_exports_and_widgets(registry):
    from cs231n_lib import conv
    from cs231n_lib.widgets.saturation import activation_and_gradient

    def conv_forward_naive(x, w, b, conv_param):
        return "mine"

    def sigmoid_forward(x):
        return np.zeros_like(x), np.zeros_like(x)

    registry.use(conv_forward_naive, sigmoid_forward)
    assert conv.conv_forward_naive is conv.naive.conv_forward_naive is conv_forward_naive
    out, grad = activation_and_gradient("sigmoid", np.array([0.0, 1.0]))
    assert np.array_equal(out, [0.0, 0.0]) and np.array_equal(grad, [0.0, 0.0])


def test_use_refuses_an_unwritten_function_with_the_stub_message(registry):
    def relu_forward(x):
        """The notebook's placeholder."""
        # YOUR CODE HERE
        raise NotImplementedError()

    with pytest.raises(NotImplementedError, match="relu_forward is yours to write in notebook "
                                                  "01_activations"):
        registry.use(relu_forward)


def test_use_refuses_a_name_that_is_no_exercise(registry):
    def affine_sideways(x):
        return x

    with pytest.raises(ValueError, match="no exercise named 'affine_sideways'"):
        registry.use(affine_sideways)


def test_the_leak_detector_finds_the_reference_itself():
    """The check above can fail: run on the library's own folder it finds every answer."""
    lines = set().union(*release_lines(LIBRARY_DIR).values())
    for name in marks():
        assert answer_lines(name) and answer_lines(name) <= lines, name


def test_a_recompiled_library_function_is_the_stub(editions, tmp_path):
    """What a submission finds when it copies the library's source instead of calling it."""
    code = """
import inspect, textwrap
import numpy as np
from cs231n_lib import layers
source = textwrap.dedent(inspect.getsource(layers.relu_forward))
namespace = {"exercise": lambda notebook: (lambda f: f), "np": np}
exec(source, namespace)
try:
    namespace["relu_forward"](np.ones(3))
except NotImplementedError as exc:
    print(exc)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=tmp_path, env={"PYTHONPATH": str(editions["01_activations"].path),
                                               "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "relu_forward is yours to write in notebook 01_activations"


def test_all_stubs_edition_stubs_every_exercise(tmp_path):
    edition = build_edition("07_babysitting", tmp_path / "lib", all_stubs=True)
    assert edition.stubbed == marks() and not edition.kept
    assert "0.1.0+07_babysitting.allstubs" in (tmp_path / "lib" / "pyproject.toml").read_text()


@pytest.mark.slow
def test_release_command_writes_the_edition_beside_the_notebook(tmp_path, capsys):
    from autograder.cli import main
    from autograder.course import Course

    assert main(["--course", str(tmp_path), "release", "--all-stubs", "07_babysitting"]) == 0
    course = Course(tmp_path)
    for root in (None, course.template_root):
        library = course.edition_path("07_babysitting", root)
        assert library == Path(root or tmp_path) / "release" / "07_babysitting" / "library"
        assert (library.parent / "07_babysitting.ipynb").is_file()
        assert "raise NotImplementedError(\"adam is yours to write in notebook 05_optimisers\")" in (
            library / "cs231n_lib" / "optim.py").read_text()
    assert "library:" in capsys.readouterr().out


def test_use_sees_the_placeholder_among_given_lines(registry):
    def batchnorm_forward(x, gamma, beta, bn_param):
        mode = bn_param["mode"]
        # YOUR CODE HERE
        raise NotImplementedError()
        return out, cache  # noqa: F821 (the notebook's given last line)

    def layernorm_forward(x, gamma, beta, ln_param):
        if x is None:
            raise NotImplementedError()  # a deliberate branch, not the placeholder
        return x, None

    with pytest.raises(NotImplementedError, match="batchnorm_forward is yours to write"):
        registry.use(batchnorm_forward, layernorm_forward)
    from cs231n_lib import layers

    assert layers.layernorm_forward is layernorm_forward  # the written one is handed over


def test_photo10_in_the_edition_has_no_test_split(editions, tmp_path):
    """The edition's photo10 (notebook 07 grades a model on the test split): no test table, the
    test windows blacked out in the photographs, the same training and validation crops, and a
    loader that gives train and val only. The edition stays small."""
    import hashlib

    edition = editions["07_babysitting"]
    assert edition.size() < 8_000_000
    shipped = edition.path / "cs231n_lib" / "data_files" / "photo10.npz"
    with np.load(shipped) as f:
        table = {key: f[key] for key in f.files}
    assert not [key for key in table if key.startswith("test_")]
    with np.load(LIBRARY_DIR.parent / "data" / "photo10.npz") as f:
        full = {key: f[key] for key in f.files}
    for label, (top, left, side) in zip(full["test_labels"], full["test_boxes"].astype(int)):
        assert not table["photos"][label, top:top + side, left:left + side].any()
    code = (
        "import hashlib, sys, numpy as np\n"
        "from cs231n_lib import data as D\n"
        "assert 'data_files' in str(D.PHOTO10_PATH)\n"
        "d = D.load_photo10(subtract_mean=False, scale=False, dtype=np.uint8)\n"
        "assert d['X_test'].shape == (0, 3, 32, 32) and d['y_test'].shape == (0,)\n"
        "for s in ('train', 'val'): print(hashlib.sha256(d['X_' + s].tobytes()).hexdigest())\n"
        "try:\n    D.load_photo10(num_test=1)\nexcept ValueError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=tmp_path, env={"PYTHONPATH": str(edition.path), "PATH": "/usr/bin"})
    train, val, refusal = out.stdout.splitlines()
    assert (train, val) == (str(full["train_sha256"]), str(full["val_sha256"]))
    assert "holds no test split" in refusal
    del hashlib
