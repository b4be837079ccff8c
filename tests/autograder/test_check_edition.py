"""The edition the checks run on: every function an exercise forbids refuses, however reached.

The forbidden-call watch in the check child is advisory (the student's code runs in the same
process and can switch it off). What holds is the check edition (edition.build_check_edition):
the library functions that would solve an exercise are not there to be called. Tested on
notebook 06, whose exercises the vectorized conv core computes outright, and on notebook 04's
whole network (fc_net_loss), whose model the checks build in the check child.
"""

import nbformat
import pytest

from autograder.checks import LocalLauncher, exercises_for, judge, run_checks
from autograder.course import DEFAULT_NOTEBOOKS
from autograder.edition import build_check_edition, forbid_source
from autograder.restore import grade_id, is_solution

NOTEBOOK = "06_convolution"

# Ways a student can make the fast core do the exercise, and switch the watch off first.
SWITCH_OFF_THE_WATCH = (
    "import sys as _sys\n_child = _sys.modules.get('__main__')\n"
    "if hasattr(_child, 'Guard'):\n    _child.Guard._record = lambda self, dotted: False\n")
DELEGATIONS = {
    "the public fast layer": "from cs231n_lib.conv import conv_forward as _fast\n",
    "the GEMM core": ("from cs231n_lib.conv.gemm import conv_forward_gemm as _gemm\n"
                      "def _fast(x, w, b, p):\n    return _gemm(x, w, b, p['stride'], p['pad'])\n"),
    "the recompiled source": (
        "import inspect as _inspect, cs231n_lib.conv.gemm as _m\n_ns = {'__name__': 'cs231n_lib.conv.gemm', "
        "'__package__': 'cs231n_lib.conv'}\nexec(compile(_inspect.getsource(_m), 'copy.py', 'exec'), _ns)\n"
        "def _fast(x, w, b, p):\n    return _ns['conv_forward_gemm'](x, w, b, p['stride'], p['pad'])\n"),
}


@pytest.fixture(scope="module")
def check_edition(tmp_path_factory):
    exercises = exercises_for(NOTEBOOK)
    forbidden = {name for ex in exercises for name in ex.forbidden}
    return build_check_edition(NOTEBOOK, tmp_path_factory.mktemp("checks") / "library", forbidden)


def solutions():
    nb = nbformat.read(DEFAULT_NOTEBOOKS / NOTEBOOK / f"{NOTEBOOK}.ipynb", as_version=4)
    setup = next(c.source for c in nb.cells if grade_id(c) == "setup")
    cells = {grade_id(c): c.source for c in nb.cells
             if c.cell_type == "code" and is_solution(c) and grade_id(c)}
    return setup, cells


def test_the_fast_core_refuses_in_the_check_edition(check_edition):
    assert "cs231n_lib.conv.gemm.conv_forward_gemm" in check_edition.refused
    assert "cs231n_lib.conv.conv_forward" in check_edition.refused
    assert not any(name.startswith("cs231n_lib.conv.naive") for name in check_edition.refused)


def test_methods_and_whole_modules_are_refused():
    source = "class A:\n    def f(self):\n        '''doc'''\n        return 1\n\n\ndef g():\n    return 2\n"
    text, refused = forbid_source(source, "m", {"m.*"})
    assert refused == ["m.A.f", "m.g"]
    ns = {}
    exec(text, ns)
    with pytest.raises(PermissionError, match="forbidden: m.g may not be used"):
        ns["g"]()
    assert ns["A"].f.__doc__ == "doc"
    text, refused = forbid_source(source, "m", {"m.g"})
    assert refused == ["m.g"] and "return 1" in text


def test_the_reference_answers_still_earn_every_point(check_edition):
    setup, cells = solutions()
    exercises = [ex for ex in exercises_for(NOTEBOOK) if ex.name == "conv_forward_naive"]
    result = run_checks(exercises, setup, list(cells.items()),
                        LocalLauncher([check_edition.path]), timeout=60)
    verdict = judge(exercises, result)["conv_forward_naive"]
    assert verdict.hidden_passed == verdict.hidden_total and verdict.visible_ok, verdict


@pytest.mark.parametrize("route", list(DELEGATIONS))
def test_delegating_to_the_core_earns_nothing_even_with_the_watch_off(check_edition, route):
    setup, cells = solutions()
    cells["conv_forward_naive"] = (SWITCH_OFF_THE_WATCH + DELEGATIONS[route]
                                   + "def conv_forward_naive(x, w, b, conv_param):\n"
                                     "    return _fast(x, w, b, conv_param)\n")
    exercises = [ex for ex in exercises_for(NOTEBOOK) if ex.name == "conv_forward_naive"]
    result = run_checks(exercises, setup, list(cells.items()),
                        LocalLauncher([check_edition.path]), timeout=60)
    verdict = judge(exercises, result)["conv_forward_naive"]
    assert verdict.hidden_passed == 0 and not verdict.visible_ok
    assert verdict.zero_reason.startswith("your conv_forward_naive calls cs231n_lib.conv"), verdict


# ---- notebook 04: the whole network, whose model lives in the check child ----
NET_NOTEBOOK = "04_batchnorm"
NET_DELEGATIONS = {
    "the model's loss": "def fc_net_loss(model, X, y=None):\n    return model.loss(X, y)\n",
    "the library's fc_net_loss": (
        "from cs231n_lib.models import fc_net as _fc\n"
        "def fc_net_loss(model, X, y=None):\n    return _fc.fc_net_loss(model, X, y)\n"),
}


@pytest.fixture(scope="module")
def net_check_edition(tmp_path_factory):
    exercises = exercises_for(NET_NOTEBOOK)
    forbidden = {name for ex in exercises for name in ex.forbidden}
    return build_check_edition(NET_NOTEBOOK, tmp_path_factory.mktemp("checks04") / "library",
                               forbidden)


def _net_verdict(edition, replace=None, name="fc_net_loss"):
    """``replace``: the new source of ``name``'s cell, or a function of the notebook's cells
    returning {grade id: new source} (to rewrite several cells)."""
    nb = nbformat.read(DEFAULT_NOTEBOOKS / NET_NOTEBOOK / f"{NET_NOTEBOOK}.ipynb", as_version=4)
    setup = next(c.source for c in nb.cells if grade_id(c) == "setup")
    cells = {grade_id(c): c.source for c in nb.cells
             if c.cell_type == "code" and is_solution(c) and grade_id(c)}
    if callable(replace):
        cells.update(replace(cells))
    elif replace is not None:
        cells[name] = replace
    exercises = [ex for ex in exercises_for(NET_NOTEBOOK) if ex.name == name]
    result = run_checks(exercises, setup, list(cells.items()), LocalLauncher([edition.path]),
                        timeout=60)
    return judge(exercises, result)[name]


def test_the_network_is_checked_on_a_model_built_in_the_child(net_check_edition):
    assert {"cs231n_lib.models.fc_net.fc_net_loss",
            "cs231n_lib.models.fc_net.FullyConnectedNet.loss"} <= set(net_check_edition.refused)
    verdict = _net_verdict(net_check_edition)
    assert verdict.hidden_passed == verdict.hidden_total and verdict.visible_ok, verdict


@pytest.mark.parametrize("route", list(NET_DELEGATIONS))
def test_delegating_the_network_to_the_library_earns_nothing(net_check_edition, route):
    verdict = _net_verdict(net_check_edition, SWITCH_OFF_THE_WATCH + NET_DELEGATIONS[route])
    assert verdict.hidden_passed == 0 and not verdict.visible_ok, verdict


# ---- notebook 04's closed form: derived, not handed to the student's own graph version ----
# Nothing in the library to refuse here: the watch recognises the code of the student's own
# batchnorm_backward (``__main__.batchnorm_backward``), however the closed form reaches it.
def _through_a_shared_helper(cells):
    """The graph walk moved into a helper that both backward passes call."""
    graph = cells["batchnorm_backward"].replace("def batchnorm_backward(", "def _bn_graph(")
    return {"batchnorm_backward": graph + "\n\ndef batchnorm_backward(dout, cache):\n"
                                          "    return _bn_graph(dout, cache)\n",
            "batchnorm_backward_alt": "def batchnorm_backward_alt(dout, cache):\n"
                                      "    return _bn_graph(dout, cache)\n"}


OWN_DELEGATIONS = {
    "a call": "def batchnorm_backward_alt(dout, cache):\n    return batchnorm_backward(dout, cache)\n",
    "a saved reference": ("_graph = batchnorm_backward\n\n\ndef batchnorm_backward_alt(dout, cache):\n"
                          "    return _graph(dout, cache)\n"),
    "the same function": "batchnorm_backward_alt = batchnorm_backward\n",
    # Found by a red team: the graph version reached where a watch by name does not look.
    "a copy of its code under another name": (
        "import types\nbatchnorm_backward_alt = types.FunctionType(\n"
        "    batchnorm_backward.__code__.replace(co_name='_bb', co_qualname='_bb'), globals())\n"),
    "a shared helper": _through_a_shared_helper,
}


def test_the_derived_closed_form_earns_every_point(net_check_edition):
    verdict = _net_verdict(net_check_edition, name="batchnorm_backward_alt")
    assert verdict.hidden_passed == verdict.hidden_total and verdict.visible_ok, verdict


@pytest.mark.parametrize("route", list(OWN_DELEGATIONS))
def test_a_closed_form_that_calls_the_graph_version_earns_nothing(net_check_edition, route):
    verdict = _net_verdict(net_check_edition, OWN_DELEGATIONS[route], name="batchnorm_backward_alt")
    assert verdict.hidden_passed == 0 and not verdict.visible_ok, verdict
    assert verdict.zero_reason.startswith(
        "your batchnorm_backward_alt calls your own batchnorm_backward: write it yourself"), verdict


# The watch itself dodged: work it cannot see, or its own methods replaced.
WATCH_DODGES = {
    "a thread started before the check": (
        "from concurrent.futures import ThreadPoolExecutor\n_pool = ThreadPoolExecutor(1)\n"
        "_pool.submit(int).result()\n\n\ndef batchnorm_backward_alt(dout, cache):\n"
        "    return _pool.submit(batchnorm_backward, dout, cache).result()\n"),
    "a forked process": (
        "import os\nimport pickle\n\n\ndef batchnorm_backward_alt(dout, cache):\n"
        "    r, w = os.pipe()\n    pid = os.fork()\n    if pid == 0:\n"
        "        os.write(w, pickle.dumps(batchnorm_backward(dout, cache)))\n        os._exit(0)\n"
        "    os.close(w)\n    data = b''\n    while chunk := os.read(r, 1 << 20):\n"
        "        data += chunk\n    os.waitpid(pid, 0)\n    return pickle.loads(data)\n"),
    "the guard's record replaced": (
        "import gc\nfor _o in gc.get_objects():\n    if type(_o).__name__ == 'Guard':\n"
        "        _o._record = lambda *a, **k: False\n\n\n"
        "def batchnorm_backward_alt(dout, cache):\n    return batchnorm_backward(dout, cache)\n"),
}


@pytest.mark.parametrize("route", list(WATCH_DODGES))
def test_a_closed_form_that_hides_from_the_watch_earns_nothing(net_check_edition, route):
    verdict = _net_verdict(net_check_edition, WATCH_DODGES[route], name="batchnorm_backward_alt")
    assert verdict.hidden_passed == 0 and not verdict.visible_ok, verdict
    assert verdict.zero_reason.startswith("your code switched off or hid from the grader's watch"), verdict
