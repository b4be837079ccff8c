"""The checks decided in the grader against a student's code run in a child (autograder/checks.py).

Every test runs the real catalogue (autograder/exercises) through ``run_checks`` with a
``LocalLauncher`` (the child without bubblewrap), on the solution cells of the source notebooks --
as they are, or with one cell replaced by what a careless or hostile student would hand in.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from functools import cache
from pathlib import Path

import nbformat
import numpy as np
import pytest

from autograder.boxed import wire
from autograder.checks import (LocalLauncher, OutsideResult, printable, judge, run_checks,
                               exercises_for)
from autograder.exercise import compare
from autograder.restore import grade_id, is_solution, solution_source

REPO = Path(__file__).resolve().parents[2]


@cache
def notebook(name: str) -> tuple[str, dict[str, str]]:
    """The setup cell and the solution cells {grade id: source} of a source notebook."""
    nb = nbformat.read(REPO / "notebooks" / name / f"{name}.ipynb", as_version=4)
    setup = next(c.source for c in nb.cells if grade_id(c) == "setup")
    cells = {grade_id(c): solution_source(c.source) for c in nb.cells
             if c.cell_type == "code" and is_solution(c) and grade_id(c)}
    return setup, cells


# What notebooks 00's and 01's solutions need, without the plotting and the data the real setup
# cells load: for the tests that restart the child several times. The solutions call the input
# checks the setup cells import.
LIGHT_SETUP = ("import numpy as np\nfrom cs231n_lib import layers\n"
               "from cs231n_lib.layers import (check_array, check_flattens_to, check_loss_inputs,\n"
               "                               check_shape)")


def grade(name: str, replace: dict[str, str] | None = None, only: tuple[str, ...] = (),
          timeout: float = 10, launcher=None, setup: str | None = None) -> tuple[OutsideResult, dict]:
    """Run the checks of ``name`` (or of the exercises ``only``) on its solutions, some replaced."""
    real_setup, cells = notebook(name)
    setup = real_setup if setup is None else setup
    cells = {**cells, **(replace or {})}
    exercises = [ex for ex in exercises_for(name) if not only or ex.name in only]
    result = run_checks(exercises, setup, list(cells.items()),
                        launcher or LocalLauncher([REPO], REPO), timeout=timeout)
    return result, judge(exercises, result)


def full_marks(verdict) -> bool:
    return (verdict.visible_ok and verdict.hidden_passed == verdict.hidden_total
            and not verdict.zero_reason)


def earns_nothing(verdict) -> bool:
    return not verdict.visible_ok and verdict.hidden_passed == 0


# ---------------------------------------------------------------------------------------------
# Correct solutions
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["00_backprop", "01_activations", "05_optimisers", "07_babysitting"])
def test_the_reference_solutions_pass_every_check(name, monkeypatch):
    """00: a Graph class built from proxies and callbacks, eval_numerical_gradient_array calling
    the grader's f; 05: config dicts updated by the calls; 07: random_search calling train_fn.

    The largest JSON body sent or received stays far below its cap (``Limits.max_json``)."""
    largest = [0]
    frame, parse = wire.Connection._frame, wire.Connection._parse

    def measured_frame(self, body, blob_size):
        head = frame(self, body, blob_size)
        largest[0] = max(largest[0], len(head) - wire.HEADER.size)
        return head

    def measured_parse(self, text):
        largest[0] = max(largest[0], len(text))
        return parse(self, text)

    monkeypatch.setattr(wire.Connection, "_frame", measured_frame)
    monkeypatch.setattr(wire.Connection, "_parse", measured_parse)
    # 07 trains its best_model on photo10 within the notebook's budget (15 s of CPU on one core).
    launcher = LocalLauncher([REPO], REPO, env={**os.environ, "OPENBLAS_NUM_THREADS": "1",
                                                "OMP_NUM_THREADS": "1"})
    result, verdicts = grade(name, timeout=30 if name == "07_babysitting" else 10, launcher=launcher)
    assert result.restarts == 0 and not result.errors and not result.cell_errors
    assert not result.calls and not result.tampered
    assert verdicts and all(full_marks(v) for v in verdicts.values()), \
        {n: v.lines for n, v in verdicts.items() if not full_marks(v)}
    assert 0 < largest[0] < wire.Limits().max_json // 100


# ---------------------------------------------------------------------------------------------
# Wrong and hostile students
# ---------------------------------------------------------------------------------------------
CHEAT = '''
import builtins, gc
import numpy as np

np.allclose = lambda *a, **k: True
np.array_equal = lambda *a, **k: True
builtins.print = lambda *a, **k: None
try:  # a grader that ran its checks here would now believe anything
    import autograder.exercise as _exercise
    from autograder.exercises import catalogue as _catalogue
    _exercise.compare = lambda *a, **k: (True, "")
    _exercise.rel_error = lambda *a, **k: 0.0
    _catalogue()
    for _o in gc.get_objects():
        if type(_o).__name__ == "Check":
            object.__setattr__(_o, "run", lambda ns, rng: {})
except ImportError:
    pass


def relu_forward(x):
    return np.ones_like(x), x
'''


# A correct relu_backward, for the cells below that get only relu_forward wrong.
RELU_BACKWARD = "\n\ndef relu_backward(dout, cache):\n    return dout * (cache > 0)\n"


def test_patching_numpy_print_or_the_checks_earns_nothing():
    result, verdicts = grade("01_activations", {"relu": CHEAT}, only=("relu", "sigmoid"))
    assert earns_nothing(verdicts["relu"])
    assert full_marks(verdicts["sigmoid"])
    assert np.allclose(0.0, 1.0) is False  # the grader's NumPy is its own


@pytest.mark.parametrize("source", [
    "def relu_forward(x):\n    return layers.relu_forward(x)",
    "from cs231n_lib.layers import relu_forward",
    # a reference saved around the wrapper, by reloading the module
    "import importlib\nfresh = importlib.reload(layers)\n"
    "def relu_forward(x):\n    return fresh.relu_forward(x)",
])
def test_calling_the_library_earns_nothing(source):
    """The backward pass is the student's own and right: the one call costs the whole pair."""
    result, verdicts = grade("01_activations", {"relu": source + RELU_BACKWARD},
                             only=("relu", "sigmoid"))
    assert result.calls == {"relu": ["cs231n_lib.layers.relu_forward"]}
    assert verdicts["relu"].zero_reason.startswith("your relu calls")
    assert earns_nothing(verdicts["relu"])
    assert full_marks(verdicts["sigmoid"])  # relu_forward is only forbidden to its own exercise


def test_switching_off_the_watch_earns_nothing():
    source = ("import sys\ndef relu_forward(x):\n    sys.setprofile(None)\n"
              "    return np.maximum(x, 0), x")
    result, verdicts = grade("01_activations", {"relu": source + RELU_BACKWARD}, only=("relu",))
    assert result.tampered
    assert "switched off" in verdicts["relu"].zero_reason


def test_a_forward_pass_that_modifies_its_input_is_caught():
    source = "def relu_forward(x):\n    x[x < 0] = 0\n    return x, x" + RELU_BACKWARD
    _, verdicts = grade("01_activations", {"relu": source}, only=("relu",))
    v = verdicts["relu"]
    assert not full_marks(v) and "x_unchanged" in " ".join(v.lines)
    assert any("in place" in hint for hint in v.hints)


def test_an_input_left_changed_through_the_graders_callback_is_caught():
    """eval_numerical_gradient_array calls the grader's f on x; x must be restored afterwards."""
    source = '''
def eval_numerical_gradient_array(f, x, df, h=1e-5):
    grad = np.zeros_like(x)
    for ix in np.ndindex(x.shape):
        old = x[ix]
        x[ix] = old + h
        pos = np.array(f(x), copy=True)
        x[ix] = old - h
        neg = np.array(f(x), copy=True)
        grad[ix] = np.sum((pos - neg) * df) / (2 * h)
    return grad
'''
    _, verdicts = grade("00_backprop", {"eval_numerical_gradient_array": source},
                        only=("eval_numerical_gradient_array",))
    v = verdicts["eval_numerical_gradient_array"]
    assert earns_nothing(v)
    assert any("not restored" in hint for hint in v.hints)


@pytest.mark.parametrize("source", [
    "class Liar(float):\n    def __eq__(self, other):\n        return True\n\n"
    "def relu_forward(x):\n    return [Liar(1)] * len(x), x",
    "class Anything:\n    def __len__(self):\n        return 4\n"
    "    def __getitem__(self, i):\n        return self\n\n"
    "def relu_forward(x):\n    return Anything(), x",
], ids=["float-subclass", "sequence-of-itself"])
def test_objects_in_place_of_numbers_earn_nothing(source):
    result, verdicts = grade("01_activations", {"relu": source}, only=("relu",),
                             setup=LIGHT_SETUP)
    assert earns_nothing(verdicts["relu"])
    assert result.restarts == 0


@pytest.mark.parametrize("value", [
    "[[1.0, 2.0], [3.0]]",                  # ragged: np.asarray raises ValueError
    "[[1.0, 2.0], 'ab']",
    "10 ** 350",                            # sent as an int, no float holds it: OverflowError
    "np.array(10 ** 30)",                   # an object array the wire sends as a reference
    "np.zeros((0, 2 ** 40))",               # empty, with an absurd extent
    "'\\x1b[2Kfull marks'",
    "[np.zeros(3), [1.0, [2.0]]]",
    "{'a': 1.0}",
], ids=["ragged", "ragged-str", "huge-int", "object-array", "absurd-shape", "text", "nested",
        "dict"])
def test_any_value_a_student_returns_fails_its_check_alone(value):
    """maxout_backward's check passes dx, dw and db straight on to the comparison."""
    source = f"def maxout_backward(dout, cache):\n    v = {value}\n    return v, v, v"
    result, verdicts = grade("01_activations", {"maxout_backward": source},
                             only=("maxout_backward", "relu"), setup=LIGHT_SETUP)
    v = verdicts["maxout_backward"]
    assert earns_nothing(v) and full_marks(verdicts["relu"])
    assert len(v.lines) == 3 and all(line.startswith("FAIL") and ": " in line for line in v.lines)


def test_compare_answers_every_value_with_a_verdict():
    want = {"ok": True, "x": np.zeros((2, 3))}
    for got in (np.array([True, False]), np.array([]), [1, 2], "True", None):
        assert compare(want, {"ok": got, "x": np.zeros((2, 3))}, 1e-7)[0] is False
    for got in (10 ** 400, [[1.0, 2.0], [3.0]], [10 ** 400] * 6, np.array(["a"] * 6).reshape(2, 3),
                np.zeros((0, 2 ** 40)), {"a": 1}, object(), np.array([1 + 1j]), [[{}] * 3] * 2):
        ok, why = compare(want, {"ok": True, "x": got}, 1e-7)
        assert ok is False and why.startswith("x: ") and "\n" not in why
    assert compare(want, {"ok": np.array(True), "x": [[0.0] * 3] * 2}, 1e-7) == (True, "")


def test_compare_checks_the_shape_before_converting():
    """A large array of bytes is not blown up eightfold into float64 to learn its shape is wrong."""
    import tracemalloc

    got = np.zeros(50_000_000, dtype=np.uint8)
    tracemalloc.start()
    try:
        ok, why = compare({"x": np.zeros(3)}, {"x": got}, 1e-7)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert not ok and "shape" in why
    assert peak < 10 << 20


CONTROLS = ("\x1b[2K\x1b[1A\x1b]0;owned\x07\x00\x08\x7f\x9b31m\x85\u2028\u2029\u202e\u2066"
            "\u200b\u200f\ufeff\u00ad\r\n\t")


def test_text_from_the_child_loses_every_control_character():
    every = "".join(map(chr, range(0x20))) + "".join(map(chr, range(0x7f, 0xa0)))
    for raw in (CONTROLS, every, "a" + every + "b", CONTROLS * 100):
        text = printable(raw)
        assert text.isprintable() and len(text) <= 200, repr(text)
    assert printable("a\x1b[2Kb\nc\u202ed") == "a[2Kb cd"
    assert printable("déjà vu ✓ ∑ 漢字") == "déjà vu ✓ ∑ 漢字"


def test_escape_codes_of_a_student_never_reach_the_feedback():
    raising = f"def relu_forward(x):\n    raise ValueError({CONTROLS!r} + 'x' * 50)"
    cell = f"raise RuntimeError({CONTROLS!r})"
    returning = f"def maxout_backward(dout, cache):\n    return {CONTROLS!r}, None, None"
    result, verdicts = grade("01_activations", {"relu": raising, "sigmoid": cell,
                                                "maxout_backward": returning},
                             only=("relu", "sigmoid", "maxout_backward"),
                             setup=LIGHT_SETUP)
    texts = [*result.errors.values(), *result.cell_errors.values()]
    for v in verdicts.values():
        assert not full_marks(v)
        texts += [*v.lines, v.summary, *v.hints, *v.visible_failures]
    assert any("owned" in t for t in texts)
    for t in texts:
        assert t.isprintable(), repr(t)


FORGER = '''
import gc, sys, time
_wire = sys.modules["wire"]
_conn = next(o for o in gc.get_objects() if type(o) is _wire.Connection)
_end, _next = time.monotonic() + 4, 0.0
while time.monotonic() < _end:  # 4 s of CPU, a "done" note every 0.4 s
    if time.monotonic() > _next:
        _conn.note("done cell sigmoid")
        _next = time.monotonic() + 0.4


def sigmoid_forward(x):
    s = 1 / (1 + np.exp(-x))
    return s, s
'''


def test_forged_notes_do_not_extend_a_cells_time():
    """Each accepted note starts a new budget: a cell that keeps saying "done" would never end."""
    start = time.monotonic()
    result, verdicts = grade("01_activations", {"sigmoid": FORGER},
                             only=("sigmoid", "relu"), timeout=1, setup=LIGHT_SETUP)
    assert result.cell_errors["sigmoid"].startswith("your sigmoid cell ")
    assert result.restarts == 1
    assert earns_nothing(verdicts["sigmoid"]) and full_marks(verdicts["relu"])
    assert time.monotonic() - start < 15


def test_not_implemented_and_undefined():
    result, verdicts = grade("01_activations", {
        "relu": "def relu_forward(x):\n    raise NotImplementedError\n\n\n"
                "def relu_backward(dout, cache):\n    raise NotImplementedError",
        "sigmoid": "pass"}, only=("relu", "sigmoid"))
    assert verdicts["relu"].summary == "relu: not implemented yet"
    assert "sigmoid_forward is not defined" in verdicts["sigmoid"].lines[0]


def test_a_cell_that_loops_forever_costs_only_its_exercise():
    result, verdicts = grade("01_activations", {"sigmoid": "while True:\n    pass"},
                             only=("sigmoid", "relu"), timeout=2, setup=LIGHT_SETUP)
    assert result.cell_errors["sigmoid"] == "your sigmoid cell did not finish within 2 s"
    assert result.restarts == 1
    assert earns_nothing(verdicts["sigmoid"]) and full_marks(verdicts["relu"])


def test_a_cell_that_raises_system_exit_is_one_error():
    result, verdicts = grade("01_activations", {"sigmoid": "raise SystemExit(3)"},
                             only=("sigmoid", "relu"))
    assert result.cell_errors == {"sigmoid": "SystemExit: 3"} and result.restarts == 0
    assert earns_nothing(verdicts["sigmoid"]) and full_marks(verdicts["relu"])


def capped():
    return LocalLauncher([REPO], REPO, memory_mb=2048)


def test_a_cell_that_exhausts_memory_costs_only_its_exercise():
    result, verdicts = grade("01_activations", {"sigmoid": "hog = np.ones(1 << 34)"},
                             only=("sigmoid", "relu"), launcher=capped(),
                             setup=LIGHT_SETUP)
    assert result.cell_errors["sigmoid"] == \
        "your sigmoid cell ran out of memory (the memory cap)"
    assert full_marks(verdicts["relu"])


@pytest.mark.parametrize("body,why", [
    ("return np.ones(1 << 34), None", "ran out of memory (the memory cap)"),
    ("import os\n    os._exit(3)", "ended the process (exit code 3)"),
    ("while True:\n        pass", "did not finish within 1 s"),
    # garbage written straight onto the protocol's pipe
    ("import os, stat\n    for fd in range(3, 256):\n        try:\n"
     "            if stat.S_ISFIFO(os.fstat(fd).st_mode):\n"
     "                os.write(fd, b'not a message at all' * 4)\n"
     "        except OSError:\n            pass\n    return np.maximum(x, 0), x",
     "sent something that is not plain data"),
], ids=["memory", "exit", "hang", "garbage"])
def test_a_check_that_breaks_the_child_fails_alone(body, why):
    source = f"def relu_forward(x):\n    {body}" + RELU_BACKWARD
    result, verdicts = grade("01_activations", {"relu": source},
                             only=("relu", "sigmoid"), timeout=1, launcher=capped(),
                             setup=LIGHT_SETUP)
    # Every check of relu calls relu_forward: 4 of the forward pass, 3 of the backward pass.
    checks = [k for k in result.errors if k.startswith("relu/")]
    assert len(checks) == 7 and all(result.errors[k] == why for k in checks), result.errors
    assert result.restarts == 7  # the child is started again for each next check
    assert earns_nothing(verdicts["relu"]) and full_marks(verdicts["sigmoid"])


def test_a_child_flooding_the_graders_callback_is_stopped_at_the_deadline():
    source = ("def eval_numerical_gradient_array(f, x, df, h=1e-5):\n"
              "    while True:\n        f(x)")
    start = time.monotonic()
    result, verdicts = grade("00_backprop", {"eval_numerical_gradient_array": source},
                             only=("eval_numerical_gradient_array",), timeout=1, setup=LIGHT_SETUP)
    assert set(result.errors.values()) == {"did not finish within 1 s"}
    assert time.monotonic() - start < 20


def test_judge_and_verdict_are_still_importable_from_the_preprocessors():
    from autograder import checks, preprocessors

    assert preprocessors.judge is checks.judge and preprocessors.Verdict is checks.Verdict


# ---------------------------------------------------------------------------------------------
# The child on its own
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def child():
    launcher = LocalLauncher([REPO], REPO)
    proc = launcher.start()
    conn = wire.Connection(proc.stdout.fileno(), proc.stdin.fileno(), timeout=30)
    yield conn
    launcher.stop(proc)


def job(setup: str, cells=()) -> dict:
    return {"setup": setup, "cells": [list(c) for c in cells], "skip": [], "forbidden": {}}


def test_the_child_imports_nothing_of_the_grader_and_prints_go_nowhere(child):
    setup = ("import os, sys\nprint('x' * 100000)\nos.write(1, b'noise')\nos.write(2, b'noise')\n"
             "sys.stderr.write('more')\n"
             "leaked = sorted(m for m in sys.modules if m.split('.')[0] == 'autograder')")
    notes = []
    child.on_note = notes.append
    assert child.request("job", job(setup, [("f", "def f(x):\n    return x + 1")])) == {"cells": {}}
    assert notes == ["start cell setup", "done cell setup", "start cell f", "done cell f"]
    assert child.request("get", "leaked") == []
    assert child.request("get", "f")(np.arange(3)).tolist() == [1, 2, 3]


def test_rpc_round_trip_overhead(child):
    """1000 calls of a tiny function in the child: the cost of one request and its answer."""
    child.request("job", job("def tiny(x):\n    return x"))
    tiny = child.request("get", "tiny")
    tiny(0)
    start = time.perf_counter()
    for i in range(1000):
        assert tiny(i) == i
    per_call = (time.perf_counter() - start) / 1000
    print(f"RPC round trip: {per_call * 1e6:.0f} us per call")
    assert per_call < 0.005


def test_a_hidden_checks_inputs_are_not_quoted_back_through_an_exception():
    source = ("import numpy as np\n"
              "def relu_forward(x):\n"
              "    raise ValueError('HIDDEN INPUT ' + repr(np.asarray(x).ravel()[:12]))\n")
    result, verdicts = grade("01_activations", {"relu": source}, only=("relu",))
    lines = verdicts["relu"].lines
    visible = [line for line in lines if "visible check" in line]
    hidden = [line for line in lines if "visible check" not in line and "check" in line]
    assert visible and all("HIDDEN INPUT" in line for line in visible)  # the student's own view
    assert hidden and not any("HIDDEN INPUT" in line for line in hidden), hidden
    assert all("its message is not shown" in line for line in hidden)


def test_a_backward_pass_approximated_numerically_earns_nothing():
    source = ("from cs231n_lib.gradcheck import eval_numerical_gradient_array\n"
              "def relu_forward(x):\n"
              "    return np.maximum(x, 0), x\n"
              "def relu_backward(dout, cache):\n"
              "    x = cache\n"
              "    return eval_numerical_gradient_array(lambda z: np.maximum(z, 0), x.copy(), dout)\n")
    result, verdicts = grade("01_activations", {"relu": source}, only=("relu",))
    assert verdicts["relu"].zero_reason.startswith(
        "your relu calls cs231n_lib.gradcheck.eval_numerical_gradient_array"), verdicts["relu"]


# ---------------------------------------------------------------------------------------------
# Notebook 07's open exercise: best_model, graded on photo10's test split
# ---------------------------------------------------------------------------------------------
def _partly_right(accuracy: float, split: str = "test"):
    """A model right on the first ``accuracy`` share of ``split``'s images, chance elsewhere."""
    from autograder.exercises import nb07_babysitting as nb07

    data = nb07.photo10_splits()
    X, y = data[f"X_{split}"], data[f"y_{split}"]
    known = {row.tobytes(): int(label) for row, label in zip(X[: round(accuracy * len(y))], y)}
    wrong = {row.tobytes(): (int(label) + 1) % 10 for row, label in zip(X, y)}

    class Model:
        def loss(self, X, y=None):
            rows = [np.asarray(r, dtype=np.float32).tobytes() for r in X]
            return np.eye(10)[[known.get(r, wrong.get(r, 0)) for r in rows]]

    return Model()


@pytest.mark.parametrize("accuracy, points", [(0.0, 0), (0.16, 0), (0.17, 1), (0.30, 2), (0.40, 4),
                                              (0.45, 5), (0.9, 5)])
def test_best_model_earns_a_point_per_fifth_of_the_way_to_the_bar(accuracy, points):
    from autograder.exercise import evaluate
    from autograder.exercises import find
    from autograder.exercises.nb07_babysitting import BAR, THRESHOLDS

    assert BAR == 0.45 and THRESHOLDS == (0.17, 0.24, 0.31, 0.38, 0.45)
    report = evaluate(find("train_best_model"), {"best_model": _partly_right(accuracy)})
    hidden = [r for r in report.results if r.hidden]
    assert len(hidden) == 5 and sum(r.passed for r in hidden) == points


def test_best_model_is_judged_on_test_labels_the_child_never_has():
    """The child runs the student's cell; the scores come back and the grader counts. A model
    that returns the same scores for every image earns nothing; one that is not there fails by
    name; the scores' shape is checked."""
    constant = ("class Constant:\n    def loss(self, X, y=None):\n"
                "        return np.zeros((len(X), 10))\n\nbest_model = Constant()\n")
    wrong_shape = ("class Flat:\n    def loss(self, X, y=None):\n"
                   "        return np.zeros(len(X))\n\nbest_model = Flat()\n")
    for cell, why in ((constant, "val_accuracy_reaches_the_bar: expected True"),
                      (wrong_shape, "must return scores of shape (1000, 10)"),
                      ("pass\n", "best_model is not defined")):
        result, verdicts = grade("07_babysitting", replace={"train_best_model": cell}, only=("train_best_model",))
        verdict = verdicts["train_best_model"]
        assert earns_nothing(verdict) and why in " ".join(verdict.lines), verdict.lines


def test_the_reference_best_model_clears_the_bar_on_other_seeds():
    """The notebook's claim: the reference solution clears the bar whatever its seed."""
    from threadpoolctl import threadpool_limits

    from autograder.exercises.nb07_babysitting import BAR, photo10_splits, test_accuracy
    from cs231n_lib.data import load_photo10

    _, cells = notebook("07_babysitting")
    photo10 = load_photo10(num_test=0)
    test = photo10_splits()
    for seed in (1, 2):
        namespace = {"photo10": photo10}
        exec("import numpy as np\nfrom cs231n_lib.models import FullyConnectedNet\n"
             "from cs231n_lib.solver import Solver\n", namespace)
        with threadpool_limits(1):
            exec(cells["train_best_model"].replace("seed=0", f"seed={seed}"), namespace)
        accuracy = test_accuracy(namespace["best_model"].loss(test["X_test"]), test["y_test"])
        print(f"seed {seed}: test accuracy {accuracy:.3f}")
        assert accuracy >= BAR + 0.01, (seed, accuracy)


def _burn(seconds: float) -> str:
    return f"import time\n_t0 = time.process_time()\nwhile time.process_time() - _t0 < {seconds}:\n    pass\n"


def test_a_model_that_knows_the_validation_images_by_heart_earns_nothing():
    memo = ("_known = {r.tobytes(): int(l) for r, l in zip(photo10['X_val'], photo10['y_val'])}\n\n\n"
            "class Memo:\n    def loss(self, X, y=None):\n"
            "        rows = [np.asarray(r, dtype=np.float32).tobytes() for r in X]\n"
            "        return np.eye(10)[[_known.get(r, 0) for r in rows]]\n\n\nbest_model = Memo()\n")
    _, verdicts = grade("07_babysitting", replace={"train_best_model": memo}, only=("train_best_model",))
    verdict = verdicts["train_best_model"]
    assert earns_nothing(verdict), verdict.lines
    assert "not_fitted_to_the_validation_split: expected True" in " ".join(verdict.lines), verdict.lines


def test_a_model_that_trains_when_it_is_asked_for_scores_earns_nothing():
    """Training deferred to the first loss(X) call would escape the cell's budget: asking for
    scores has a few seconds of CPU of its own (SCORING_CPU)."""
    from autograder.exercises.nb07_babysitting import SCORING_CPU

    lazy = ("class Lazy:\n    def loss(self, X, y=None):\n"
            + "".join("        " + line + "\n" for line in _burn(SCORING_CPU + 2).splitlines())
            + "        return np.zeros((len(X), 10))\n\n\nbest_model = Lazy()\n")
    _, verdicts = grade("07_babysitting", replace={"train_best_model": lazy}, only=("train_best_model",))
    verdict = verdicts["train_best_model"]
    assert earns_nothing(verdict) and "did not finish" in " ".join(verdict.lines), verdict.lines


def test_work_spread_over_several_cells_meets_one_budget():
    """Each solution cell has the step limit, and all of them share it once more: training a
    little in each of two cells, each under the limit, ends in the second."""
    _, cells = notebook("07_babysitting")
    result, verdicts = grade("07_babysitting", timeout=3, only=("random_search", "train_best_model"),
                             replace={"random_search": cells["random_search"] + "\n" + _burn(2),
                                      "train_best_model": _burn(2) + "best_model = None\n"})
    assert result.cell_errors["train_best_model"].endswith(
        "did not finish within the 3 s of CPU that the solution cells share (with the cells before it)"), \
        result.cell_errors
    assert full_marks(verdicts["random_search"]) and earns_nothing(verdicts["train_best_model"])


FORK_FARM = '''import os, signal, time
signal.signal(signal.SIGCHLD, signal.SIG_IGN)   # the children are reaped unseen
for _ in range(8):
    if os.fork() == 0:
        _t0 = time.process_time()
        while time.process_time() - _t0 < 0.8:
            pass
        os._exit(0)
    time.sleep(1.0)
'''


def test_work_in_children_that_end_unseen_counts_against_the_budget(tmp_path):
    """A cell whose work runs in short-lived children, never waited for, leaves no CPU time in
    /proc: the sandbox's control group counts it (here 6.4 s against a limit of 2 s, ended by the
    CPU budget, not by the wall-clock backstop of 14 s)."""
    from autograder.isolation import ChildLauncher, Sandbox

    sandbox = Sandbox(tmp_path / "work", readable=[REPO], pythonpath=[REPO])
    assert sandbox.cgroups.cpu_seconds() is not None, "no control group counts CPU time here"
    start = time.monotonic()
    result, verdicts = grade("01_activations", {"sigmoid": FORK_FARM}, only=("sigmoid", "relu"),
                             timeout=2, setup=LIGHT_SETUP, launcher=ChildLauncher(sandbox))
    sandbox.release()
    assert result.cell_errors["sigmoid"] == "your sigmoid cell did not finish within 2 s", result.cell_errors
    assert earns_nothing(verdicts["sigmoid"]) and full_marks(verdicts["relu"])
