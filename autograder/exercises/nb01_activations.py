"""Exercises of notebook 01: five elementwise activations, each a forward/backward pair, and maxout.

An elementwise activation is one exercise: the student writes its forward pass and derives its
backward pass in the same cell, so the checks of both passes and the mistakes of both are one
catalogue entry (``sigmoid``: ``sigmoid_forward`` and ``sigmoid_backward``). The forward checks
come first: a student who has the forward right and the backward wrong keeps their share.
"""

import numpy as np

from autograder.exercise import Check, Exercise, Mistake
from autograder.exercises import NUMERICAL_GRADIENTS
from cs231n_lib import layers

NOTEBOOK = "01_activations"

L = layers


def _forward_probe(name, shape, scale=1.0, kwargs=None, dtype=np.float64):
    """Output of ns[name](x) and whether x was left untouched."""

    def run(ns, rng):
        x = (scale * rng.standard_normal(shape)).astype(dtype)
        x0 = x.copy()
        out, _ = ns[name](x, **(kwargs or {}))
        return {"out": np.asarray(out, dtype=np.float64), "x_unchanged": bool(np.array_equal(x, x0))}

    return run


def _backward_probe(act, shape, scale=1.0, kwargs=None):
    """dx of the pair act_forward / act_backward (the cache is the namespace's own)."""

    def run(ns, rng):
        x = scale * rng.standard_normal(shape)
        dout = rng.standard_normal(shape)
        _, cache = ns[f"{act}_forward"](x, **(kwargs or {}))
        dx = ns[f"{act}_backward"](dout, cache)
        return {"dx": np.asarray(dx, dtype=np.float64)}

    return run


def _pair_ref(act):
    return {f"{act}_forward": getattr(L, f"{act}_forward"),
            f"{act}_backward": getattr(L, f"{act}_backward")}


def _elementwise(act, forward_mistakes, backward_mistakes, kwargs_probe=None):
    """The exercise of one elementwise activation: its forward and its backward pass.

    The two visible checks mirror the notebook's visible test cell; the hidden ones probe a
    wide range, a batch of one, float32 (forward) and the ``alpha`` argument where there is one.
    """
    kw = kwargs_probe or {}
    forward = f"{act}_forward"
    return Exercise(
        name=act,
        reference=_pair_ref(act),
        checks=(
            Check("forward, x of shape (4, 5)", _forward_probe(forward, (4, 5), 3.0), hidden=False),
            Check("backward, x of shape (4, 5)", _backward_probe(act, (4, 5), 3.0), hidden=False),
            Check("forward, 1-D x, wide range", _forward_probe(forward, (11,), 8.0, kw)),
            Check("forward, batch of 1, 3-D x", _forward_probe(forward, (1, 3, 2), 2.0)),
            Check("forward, float32 x", _forward_probe(forward, (6, 2), 2.0, kw, np.float32),
                  tol=1e-6),
            Check("backward, 1-D x, wide range", _backward_probe(act, (13,), 6.0, kw)),
            Check("backward, batch of 1, 3-D x", _backward_probe(act, (1, 2, 3), 2.0)),
        ),
        mistakes=forward_mistakes + backward_mistakes,
        # The backward is to be derived: neither the library's pair nor a numerical gradient.
        forbidden=(f"cs231n_lib.layers.{act}_forward", f"cs231n_lib.layers.{act}_backward",
                   *NUMERICAL_GRADIENTS),
    )


def _with_cache_of_input(fn):
    """A forward that caches its input x (so buggy backwards can use x)."""
    return lambda x, *a, **k: (fn(x, *a, **k), x)


# --- sigmoid ---------------------------------------------------------------------------------
_sig = lambda x: L.sigmoid_forward(x)[0]
SIGMOID = _elementwise(
    "sigmoid",
    (
        Mistake("sign error: sigmoid is 1 / (1 + exp(-x)), yours is 1 / (1 + exp(x))",
                {"sigmoid_forward": lambda x: (_sig(-x), _sig(-x))}),
        Mistake("operator precedence: 1 / 1 + np.exp(-x) is 1 + exp(-x); put the denominator "
                "in parentheses", {"sigmoid_forward": lambda x: (1 + np.exp(-x), None)}),
    ),
    (
        Mistake("your sigmoid_backward is missing the (1 - s) factor",
                {"sigmoid_forward": L.sigmoid_forward,
                 "sigmoid_backward": lambda dout, s: dout * s}),
        Mistake("sigmoid_backward must use the output s = sigmoid(x): dx = dout * s * (1 - s); "
                "yours uses the input x in place of s",
                {"sigmoid_forward": _with_cache_of_input(_sig),
                 "sigmoid_backward": lambda dout, x: dout * x * (1 - x)}),
        Mistake("sigmoid_backward returns the local gradient s * (1 - s) without multiplying "
                "by dout", {"sigmoid_forward": L.sigmoid_forward,
                            "sigmoid_backward": lambda dout, s: s * (1 - s)}),
    ),
)

# --- tanh ------------------------------------------------------------------------------------
TANH = _elementwise(
    "tanh",
    (
        Mistake("tanh(x) = 2 * sigmoid(2x) - 1: yours is 2 * sigmoid(x) - 1",
                {"tanh_forward": lambda x: (np.tanh(x / 2), None)}),
        Mistake("your tanh_forward gives values in (0, 1): that is the sigmoid, not tanh",
                {"tanh_forward": lambda x: (_sig(x), None)}),
    ),
    (
        Mistake("tanh_backward: the local gradient is 1 - t**2; the square is missing",
                {"tanh_forward": L.tanh_forward, "tanh_backward": lambda dout, t: dout * (1 - t)}),
        Mistake("tanh_backward must use the output t = tanh(x): dx = dout * (1 - t**2); yours "
                "uses the input x", {"tanh_forward": _with_cache_of_input(np.tanh),
                                     "tanh_backward": lambda dout, x: dout * (1 - x * x)}),
    ),
)


# --- ReLU ------------------------------------------------------------------------------------
def _relu_in_place(x):
    x[x < 0] = 0
    return x, x


RELU = _elementwise(
    "relu",
    (
        Mistake("relu_forward changed its input x in place: work on a copy (np.maximum(x, 0))",
                {"relu_forward": _relu_in_place}),
        Mistake("relu is max(0, x): yours lets the negative part through and zeros the positive "
                "part", {"relu_forward": lambda x: (np.minimum(x, 0), x)}),
    ),
    (
        Mistake("relu_backward passes the gradient where x < 0; it should where x > 0",
                {"relu_backward": lambda dout, x: dout * (x < 0)}),
        Mistake("relu_backward returns the mask (x > 0) without multiplying by dout",
                {"relu_backward": lambda dout, x: (x > 0).astype(float)}),
        Mistake("relu_backward masks with dout > 0; the mask comes from the forward input x > 0",
                {"relu_backward": lambda dout, x: dout * (dout > 0)}),
    ),
)


# --- leaky ReLU ------------------------------------------------------------------------------
def _leaky_fixed(x, alpha=0.01):
    return np.where(x > 0, x, 0.01 * x), (x, 0.01)


LEAKY = _elementwise(
    "leaky_relu",
    (
        Mistake("leaky_relu_forward ignores its alpha argument (always 0.01)",
                {"leaky_relu_forward": _leaky_fixed}),
        Mistake("leaky_relu_forward zeros negative inputs like a plain ReLU; they should be "
                "multiplied by alpha", {"leaky_relu_forward": lambda x, alpha=0.01: (np.maximum(x, 0), (x, 0.0))}),
    ),
    (
        Mistake("leaky_relu_backward gives 0 for x < 0; the slope there is alpha",
                {"leaky_relu_backward": lambda dout, c: dout * (c[0] > 0)}),
        Mistake("leaky_relu_backward uses 0.01 instead of the alpha given to the forward pass",
                {"leaky_relu_backward": lambda dout, c: np.where(c[0] > 0, dout, 0.01 * dout)}),
    ),
    kwargs_probe={"alpha": 0.2},
)


# --- ELU -------------------------------------------------------------------------------------
def _elu_no_minus_one(x, alpha=1.0):
    with np.errstate(over="ignore"):
        out = np.where(x > 0, x, alpha * np.exp(np.minimum(x, 0)))
    return out, (x, out, alpha)


def _elu_fixed_alpha(x, alpha=1.0):
    return L.elu_forward(x, 1.0)


ELU = _elementwise(
    "elu",
    (
        Mistake("ELU for x <= 0 is alpha * (exp(x) - 1): the - 1 is missing",
                {"elu_forward": _elu_no_minus_one}),
        Mistake("elu_forward ignores its alpha argument", {"elu_forward": _elu_fixed_alpha}),
    ),
    (
        Mistake("elu_backward for x <= 0 is alpha * exp(x) (= out + alpha); yours is "
                "alpha * (exp(x) - 1), the output itself",
                {"elu_backward": lambda dout, c: np.where(c[0] > 0, dout, dout * c[1])}),
        Mistake("elu_backward passes the gradient unchanged for x <= 0; there it is scaled by "
                "alpha * exp(x)", {"elu_backward": lambda dout, c: dout}),
    ),
    kwargs_probe={"alpha": 0.5},
)


# --- maxout ----------------------------------------------------------------------------------
def _maxout_probe(N, D, K, M, backward):
    def run(ns, rng):
        x = rng.standard_normal((N, D))
        w = rng.standard_normal((K, D, M))
        b = rng.standard_normal((K, M))
        dout = rng.standard_normal((N, M))
        out, cache = ns["maxout_forward"](x, w, b)
        if not backward:
            return {"out": np.asarray(out, dtype=np.float64)}
        dx, dw, db = ns["maxout_backward"](dout, cache)
        return {"dx": dx, "dw": dw, "db": db}

    return run


def _maxout_no_bias(x, w, b):
    return L.maxout_forward(x, w, np.zeros_like(b))


def _maxout_min(x, w, b):
    out, cache = L.maxout_forward(-x, -w, -b)
    return -out, cache


def _maxout_every_piece(dout, cache):
    x, w, idx = cache
    K = w.shape[0]
    dscores = np.repeat(dout[:, None, :], K, axis=1)
    return (np.einsum("nkm,kdm->nd", dscores, w), np.einsum("nd,nkm->kdm", x, dscores),
            dscores.sum(axis=0))


def _maxout_db_unsummed(dout, cache):
    dx, dw, _ = L.maxout_backward(dout, cache)
    x, w, idx = cache
    dscores = np.zeros((x.shape[0],) + w.shape[::2])
    np.put_along_axis(dscores, idx[:, None, :], dout[:, None, :], axis=1)
    return dx, dw, dscores


_MAXOUT_REF = {"maxout_forward": L.maxout_forward, "maxout_backward": L.maxout_backward}

MAXOUT_FWD = Exercise(
    name="maxout_forward",
    reference=_MAXOUT_REF,
    checks=(
        Check("N=4, D=5, K=3, M=6", _maxout_probe(4, 5, 3, 6, False), hidden=False),
        Check("batch of 1, K=2", _maxout_probe(1, 7, 2, 3, False)),
        Check("K=5 pieces, M=1", _maxout_probe(6, 3, 5, 1, False)),
    ),
    mistakes=(
        Mistake("maxout_forward leaves out the bias b[k] of each piece",
                {"maxout_forward": _maxout_no_bias}),
        Mistake("maxout takes the max over the K pieces; yours takes the min",
                {"maxout_forward": _maxout_min}),
    ),
    forbidden=("cs231n_lib.layers.maxout_forward",),
)

MAXOUT_BWD = Exercise(
    name="maxout_backward",
    reference=_MAXOUT_REF,
    checks=(
        Check("N=4, D=5, K=3, M=6", _maxout_probe(4, 5, 3, 6, True), hidden=False),
        Check("batch of 1, K=2", _maxout_probe(1, 7, 2, 3, True)),
        Check("K=5 pieces, M=1", _maxout_probe(6, 3, 5, 1, True)),
    ),
    mistakes=(
        Mistake("maxout_backward sends the gradient to every piece; only the winning piece of "
                "each output gets it", {"maxout_backward": _maxout_every_piece}),
        Mistake("db must be summed over the batch: shape (K, M), not (N, K, M)",
                {"maxout_backward": _maxout_db_unsummed}),
    ),
    forbidden=("cs231n_lib.layers.maxout_backward",),
)

EXERCISES = (SIGMOID, TANH, RELU, LEAKY, ELU, MAXOUT_FWD, MAXOUT_BWD)
