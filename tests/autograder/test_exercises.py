"""The exercise catalogue (autograder/exercises), generic over every notebook.

For each exercise: the reference passes every check and gets no hint; each known mistake fails
at least one check and is named by its own hint; there are enough visible and hidden checks and
mistakes; checks are deterministic and return data the grader can ship between processes.
Against the notebooks: every solution cell has an exercise and every exercise a solution cell,
and each hidden test cell checks its own exercise.
"""

from __future__ import annotations

import importlib
import io
import json
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest

from autograder.exercise import compare, evaluate, rng_for, run_safely
from autograder.exercises import catalogue

ROOT = Path(__file__).resolve().parents[2]
ALL = [(nb, ex) for nb, exercises in sorted(catalogue().items()) for ex in exercises.values()]
IDS = [f"{nb}:{ex.name}" for nb, ex in ALL]
MISTAKES = [(nb, ex, i) for nb, ex in ALL for i in range(len(ex.mistakes))]
MISTAKE_IDS = [f"{nb}:{ex.name}:{i}" for nb, ex, i in MISTAKES]


def test_catalogue_names_are_unique_and_not_empty():
    names = [ex.name for _, ex in ALL]
    assert names, "the catalogue is empty"
    assert len(names) == len(set(names))


@pytest.mark.parametrize("nb, ex", ALL, ids=IDS)
def test_reference_passes_without_hints(nb, ex):
    report = evaluate(ex, ex.reference)
    failed = [f"{r.check}: {r.message}" for r in report.results if not r.passed]
    assert not failed, failed
    assert report.hints == []


@pytest.mark.parametrize("nb, ex", ALL, ids=IDS)
def test_enough_checks_and_mistakes(nb, ex):
    visible = [c for c in ex.checks if not c.hidden]
    hidden = [c for c in ex.checks if c.hidden]
    assert len(visible) >= 1, "at least one check mirrors the visible test cell"
    assert len(hidden) >= 2, "at least two hidden checks on other inputs"
    assert len(ex.mistakes) >= 2, "at least two typical mistakes with hints"
    assert len({c.name for c in ex.checks}) == len(ex.checks), "check names are unique"
    hints = [m.hint for m in ex.mistakes]
    assert len(set(hints)) == len(hints) and all(h.strip() for h in hints)
    pair = {f"{ex.name}_forward", f"{ex.name}_backward"}  # an activation's two passes, one cell
    assert ex.name in ex.reference or pair <= set(ex.reference), \
        "the reference namespace defines the exercise itself"


@pytest.mark.parametrize("nb, ex, i", MISTAKES, ids=MISTAKE_IDS)
def test_each_mistake_is_caught_and_named(nb, ex, i):
    mistake = ex.mistakes[i]
    report = evaluate(ex, {**ex.reference, **mistake.patch})
    assert not all(r.passed for r in report.results), f"no check catches: {mistake.hint}"
    assert mistake.hint in report.hints, f"the hint is not given: {mistake.hint}"


@pytest.mark.parametrize("nb, ex", ALL, ids=IDS)
def test_checks_are_deterministic_and_shippable(nb, ex):
    for check in ex.checks:
        first, error = run_safely(check, ex.reference, rng_for(ex, check))
        assert first is not None, error
        again, _ = run_safely(check, ex.reference, rng_for(ex, check))
        ok, why = compare(first, again, 0.0)
        assert ok, f"{check.name} differs between two runs: {why}"
        arrays, plain = {}, {}
        for key, value in first.items():
            assert isinstance(key, str)
            if isinstance(value, np.ndarray):
                assert value.dtype != object, f"{check.name}: {key} is an object array"
                arrays[key] = value
            else:
                assert isinstance(value, (bool, int, float, str, np.generic)) or value is None, \
                    f"{check.name}: {key} is a {type(value).__name__}"
                plain[key] = value.item() if isinstance(value, np.generic) else value
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        buffer.seek(0)
        with np.load(buffer, allow_pickle=False) as loaded:
            assert set(loaded.files) == set(arrays)
        json.dumps(plain)


@pytest.mark.parametrize("nb, ex", ALL, ids=IDS)
def test_forbidden_names_exist(nb, ex):
    """A forbidden name is a library function, a method (``module.Class.method``),
    ``module.*`` (all of a module's functions), or ``__main__.f``: the function ``f`` of
    another solution cell of the same notebook (the student's own)."""
    for dotted in ex.forbidden:
        if dotted.startswith("__main__."):
            own = dotted[len("__main__."):]
            assert own != ex.name and own in catalogue()[nb], dotted
            continue
        module, _, attr = dotted.rpartition(".")
        try:
            found = importlib.import_module(module)
        except ModuleNotFoundError:  # module.Class.method
            module, _, cls = module.rpartition(".")
            found = getattr(importlib.import_module(module), cls)
            assert isinstance(found, type), dotted
        if attr == "*":
            assert any(callable(v) and getattr(v, "__module__", "") == module
                       for v in vars(found).values()), dotted
        else:
            assert callable(getattr(found, attr)), dotted


def _cells(notebook):
    path = ROOT / "notebooks" / notebook / f"{notebook}.ipynb"
    assert path.is_file(), f"the catalogue names notebook {notebook}, but {path} is missing"
    return nbformat.read(path, as_version=4).cells


@pytest.mark.parametrize("notebook", sorted(catalogue()))
def test_exercises_match_solution_cells(notebook):
    cells = _cells(notebook)
    solutions = {c.metadata["nbgrader"]["grade_id"] for c in cells
                 if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution")}
    assert solutions == set(catalogue()[notebook]), \
        f"solution cells {sorted(solutions)} vs exercises {sorted(catalogue()[notebook])}"
    for c in cells:
        gid = c.metadata.get("nbgrader", {}).get("grade_id", "")
        if gid.endswith("-hidden"):
            named = re.findall(r'check_exercise\("([^"]+)"', c.source)
            assert named == [gid[: -len("-hidden")]], f"{gid} checks {named}"


def test_every_notebook_with_exercises_is_in_the_catalogue():
    for path in sorted((ROOT / "notebooks").glob("*/*.ipynb")):
        if path.parent.name != path.stem:
            continue
        cells = nbformat.read(path, as_version=4).cells
        if any(c.metadata.get("nbgrader", {}).get("solution") and c.cell_type == "code" for c in cells):
            assert path.stem in catalogue(), f"{path.stem} has solution cells but no exercise module"
