"""Exercises of notebook 00: a graph's backward pass, numerical gradients, two losses."""

import numpy as np

from autograder.exercise import Check, Exercise, Mistake
from autograder.exercises import notebook_solutions
from cs231n_lib import gradcheck, layers

NOTEBOOK = "00_backprop"


# ---------------------------------------------------------------------------------------------
# Graph: the reference is the class of the notebook's solution cell, not a copy of it.
# ---------------------------------------------------------------------------------------------

Graph = notebook_solutions(NOTEBOOK, "Graph")["Graph"]


class _GraphOverwrites(Graph):
    def backward(self, dout):
        grads = {self.nodes[-1][0]: dout}
        for name, _, backward, inputs in reversed(self.nodes):
            local = backward(grads[name], self.caches[name])
            if len(inputs) == 1:
                local = (local,)
            for i, g in zip(inputs, local):
                grads[i] = g
        return grads


class _GraphSameUpstream(Graph):
    def backward(self, dout):
        grads = {self.nodes[-1][0]: dout}
        for name, _, backward, inputs in reversed(self.nodes):
            local = backward(dout, self.caches[name])
            if len(inputs) == 1:
                local = (local,)
            for i, g in zip(inputs, local):
                grads[i] = grads[i] + g if i in grads else g
        return grads


# Small layers for the probe graphs, each a (forward, backward) pair.
def _mul_forward(a, b):
    return a * b, (a, b)


def _mul_backward(dout, cache):
    a, b = cache
    return dout * b, dout * a


def _sin_forward(a):
    return np.sin(a), a


def _sin_backward(dout, cache):
    return dout * np.cos(cache)


def _add_forward(a, b):
    return a + b, None


def _add_backward(dout, cache):
    return dout, dout


def _lecture_graph(shape):
    """f(x1, x2) = x1 * x2 + sin(x1), elementwise: x1 feeds two nodes."""

    def run(ns, rng):
        x1, x2 = rng.standard_normal(shape), rng.standard_normal(shape)
        dout = rng.standard_normal(shape)
        g = ns["Graph"]()
        g.add("p", _mul_forward, _mul_backward, ["x1", "x2"])
        g.add("s", _sin_forward, _sin_backward, ["x1"])
        g.add("f", _add_forward, _add_backward, ["p", "s"])
        out = g.forward({"x1": x1, "x2": x2})
        grads = g.backward(dout)
        return {"f": out, "dx1": grads["x1"], "dx2": grads["x2"], "dp": grads["p"]}

    return run


def _affine_relu_graph(N, D, M, C):
    """scores = affine(relu(a) + a) with a = affine(x): a feeds both relu and the sum."""

    def run(ns, rng):
        x = rng.standard_normal((N, D))
        w1, b1 = rng.standard_normal((D, M)), rng.standard_normal(M)
        w2, b2 = rng.standard_normal((M, C)), rng.standard_normal(C)
        dout = rng.standard_normal((N, C))
        g = ns["Graph"]()
        g.add("a", layers.affine_forward, layers.affine_backward, ["x", "w1", "b1"])
        g.add("h", layers.relu_forward, layers.relu_backward, ["a"])
        g.add("r", _add_forward, _add_backward, ["h", "a"])
        g.add("scores", layers.affine_forward, layers.affine_backward, ["r", "w2", "b2"])
        g.forward({"x": x, "w1": w1, "b1": b1, "w2": w2, "b2": b2})
        grads = g.backward(dout)
        return {f"d{k}": grads[k] for k in ("x", "w1", "b1", "w2", "b2", "a")}

    return run


def _triple_fanout(shape):
    """y = sin(x * x) + x: x feeds three inputs of two nodes, through a chain."""

    def run(ns, rng):
        x = rng.standard_normal(shape)
        dout = rng.standard_normal(shape)
        g = ns["Graph"]()
        g.add("sq", _mul_forward, _mul_backward, ["x", "x"])
        g.add("s", _sin_forward, _sin_backward, ["sq"])
        g.add("y", _add_forward, _add_backward, ["s", "x"])
        g.forward({"x": x})
        grads = g.backward(dout)
        return {"dx": grads["x"], "dsq": grads["sq"]}

    return run


GRAPH = Exercise(
    name="Graph",
    reference={"Graph": Graph},
    checks=(
        Check("lecture graph x1*x2 + sin(x1)", _lecture_graph((3, 4)), hidden=False),
        Check("affine-relu with a skip, N=4", _affine_relu_graph(4, 5, 6, 3)),
        Check("affine-relu with a skip, batch of 1", _affine_relu_graph(1, 7, 2, 5)),
        Check("sin(x * x) + x: x used three times", _triple_fanout((5,))),
    ),
    mistakes=(
        Mistake("where a value feeds several nodes your backward keeps only the last gradient; "
                "gradients from the branches must be added", {"Graph": _GraphOverwrites}),
        Mistake("every node's backward gets the graph's final dout; each node needs the "
                "gradient accumulated for its own output", {"Graph": _GraphSameUpstream}),
    ),
)


# ---------------------------------------------------------------------------------------------
# Numerical gradient and relative error
# ---------------------------------------------------------------------------------------------


def _one_sided(f, x, df, h=1e-5):
    grad = np.zeros_like(x)
    fx = np.array(f(x), copy=True)
    for ix in np.ndindex(x.shape):
        old = x[ix]
        x[ix] = old + h
        pos = np.array(f(x), copy=True)
        x[ix] = old
        grad[ix] = np.sum((pos - fx) * df) / h
    return grad


def _not_restored(f, x, df, h=1e-5):
    grad = np.zeros_like(x)
    for ix in np.ndindex(x.shape):
        old = x[ix]
        x[ix] = old + h
        pos = np.array(f(x), copy=True)
        x[ix] = old - h
        neg = np.array(f(x), copy=True)
        grad[ix] = np.sum((pos - neg) * df) / (2 * h)
    return grad


def _ignores_df(f, x, df, h=1e-5):
    grad = np.zeros_like(x)
    for ix in np.ndindex(x.shape):
        old = x[ix]
        x[ix] = old + h
        pos = np.array(f(x), copy=True)
        x[ix] = old - h
        neg = np.array(f(x), copy=True)
        x[ix] = old
        grad[ix] = np.sum(pos - neg) / (2 * h)
    return grad


def _numgrad_probe(shape, kind, h=None):
    def run(ns, rng):
        x = rng.standard_normal(shape)
        x0 = x.copy()
        if kind == "tanh-scale":
            a = rng.standard_normal(shape)
            f = lambda z: np.tanh(z) * a
            out_shape = shape
        elif kind == "matmul-cube":
            w = rng.standard_normal((shape[-1], 3))
            f = lambda z: (z ** 3) @ w
            out_shape = shape[:-1] + (3,)
        else:  # "sin-sum": every output depends on every input
            f = lambda z: np.sin(z) * np.sum(z ** 2)
            out_shape = shape
        df = rng.standard_normal(out_shape)
        kwargs = {} if h is None else {"h": h}
        grad = ns["eval_numerical_gradient_array"](f, x, df, **kwargs)
        return {"grad": grad, "x_unchanged": bool(np.array_equal(x, x0))}

    return run


NUMGRAD = Exercise(
    name="eval_numerical_gradient_array",
    reference={"eval_numerical_gradient_array": gradcheck.eval_numerical_gradient_array},
    checks=(
        Check("tanh(x) * a, x of shape (4, 5)", _numgrad_probe((4, 5), "tanh-scale"), hidden=False,
              tol=1e-6),
        Check("(x**3) @ w, x of shape (3, 4)", _numgrad_probe((3, 4), "matmul-cube"), tol=1e-6),
        Check("sin(x) * sum(x**2), 3-D x", _numgrad_probe((2, 3, 2), "sin-sum"), tol=1e-6),
        Check("step h=1e-4, batch of 1", _numgrad_probe((1, 6), "tanh-scale", h=1e-4), tol=1e-6),
    ),
    mistakes=(
        Mistake("one-sided difference in the numerical gradient: use (f(x+h) - f(x-h)) / (2h)",
                {"eval_numerical_gradient_array": _one_sided}),
        Mistake("x[ix] is not restored to its old value after the two evaluations",
                {"eval_numerical_gradient_array": _not_restored}),
        Mistake("the difference f(x+h) - f(x-h) must be weighted by the upstream gradient df "
                "before summing", {"eval_numerical_gradient_array": _ignores_df}),
    ),
    forbidden=("cs231n_lib.gradcheck.eval_numerical_gradient_array",
               "cs231n_lib.gradcheck.eval_numerical_gradient"),
)


def _rel_no_floor(x, y):
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.max(np.abs(x - y) / (np.abs(x) + np.abs(y))))


def _rel_global(x, y):
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    return float(np.max(np.abs(x - y)) / max(np.max(np.abs(x) + np.abs(y)), 1e-8))


def _rel_max_denominator(x, y):
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    return float(np.max(np.abs(x - y) / np.maximum(np.maximum(np.abs(x), np.abs(y)), 1e-8)))


def _rel_probe(kind):
    def run(ns, rng):
        if kind == "known":
            x, y = np.array([1.0, 2.0, 4.0]), np.array([1.0, 2.2, 4.0])
        elif kind == "zeros":
            x = rng.standard_normal((3, 4))
            x[0] = 0.0
            y = x + 1e-6 * rng.standard_normal((3, 4))
            y[0] = 0.0
        else:  # "scales": entries of very different magnitudes
            x = rng.standard_normal(6) * np.logspace(-6, 3, 6)
            y = x * (1 + 1e-3 * rng.standard_normal(6))
        return {"rel": float(ns["rel_error"](x, y)), "self": float(ns["rel_error"](x, x.copy()))}

    return run


REL_ERROR = Exercise(
    name="rel_error",
    reference={"rel_error": gradcheck.rel_error},
    checks=(
        Check("known case [1, 2, 4] vs [1, 2.2, 4]", _rel_probe("known"), hidden=False),
        Check("zeros in the same places", _rel_probe("zeros")),
        Check("entries from 1e-6 to 1e3", _rel_probe("scales")),
    ),
    mistakes=(
        Mistake("0 / 0 gives nan where both arrays are zero: floor the denominator at 1e-8",
                {"rel_error": _rel_no_floor}),
        Mistake("the ratio must be taken elementwise and then maximised, not max |x - y| over "
                "max(|x| + |y|)", {"rel_error": _rel_global}),
        Mistake("divide by |x| + |y|, not by max(|x|, |y|)", {"rel_error": _rel_max_denominator}),
    ),
    forbidden=("cs231n_lib.gradcheck.rel_error",),
)


# ---------------------------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------------------------


def _softmax_unshifted(x, y):
    N = x.shape[0]
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        e = np.exp(x)
        p = e / e.sum(axis=1, keepdims=True)
        loss = -np.log(p[np.arange(N), y]).mean()
    dx = p.copy()
    dx[np.arange(N), y] -= 1
    return loss, dx / N


def _softmax_summed(x, y):
    loss, dx = layers.softmax_loss(x, y)
    return loss * x.shape[0], dx * x.shape[0]


def _softmax_no_onehot(x, y):
    loss, dx = layers.softmax_loss(x, y)
    dx = dx.copy()
    dx[np.arange(x.shape[0]), y] += 1 / x.shape[0]
    return loss, dx


def _svm_counts_correct(x, y):
    # The correct class's own "margin" is always 1; counting it adds 1 to every example's
    # loss, while its +1 and -1 cancel in dx.
    loss, dx = layers.svm_loss(x, y)
    return loss + 1.0, dx


def _svm_no_count(x, y):
    loss, dx = layers.svm_loss(x, y)
    dx = dx.copy()
    dx[np.arange(x.shape[0]), y] = 0
    return loss, dx


def _svm_summed(x, y):
    loss, dx = layers.svm_loss(x, y)
    return loss * x.shape[0], dx * x.shape[0]


def _loss_probe(fn, N, C, scale=1.0, big=False, dtype=np.float64):
    def run(ns, rng):
        x = (scale * rng.standard_normal((N, C))).astype(dtype)
        y = rng.integers(0, C, size=N)
        if big:
            x[0, :5] = [1000.0, 995.0, 10.0, 10.0, 1.0]
            y[0] = 1
        loss, dx = ns[fn](x, y)
        return {"loss": float(loss), "dx": np.asarray(dx, dtype=np.float64)}

    return run


SOFTMAX = Exercise(
    name="softmax_loss",
    reference={"softmax_loss": layers.softmax_loss},
    checks=(
        Check("N=5, C=4 small scores", _loss_probe("softmax_loss", 5, 4), hidden=False),
        Check("scores [1000, 995, 10, 10, 1]", _loss_probe("softmax_loss", 3, 6, big=True)),
        Check("batch of 1, C=10", _loss_probe("softmax_loss", 1, 10, scale=3.0)),
        Check("float32 scores", _loss_probe("softmax_loss", 7, 3, dtype=np.float32), tol=1e-5),
    ),
    mistakes=(
        Mistake("softmax overflows: shift every row of scores by its max before exp",
                {"softmax_loss": _softmax_unshifted}),
        Mistake("the loss and dx must be averaged over the N examples, not summed",
                {"softmax_loss": _softmax_summed}),
        Mistake("dx at the correct class is p - 1: the -1 (divided by N) is missing",
                {"softmax_loss": _softmax_no_onehot}),
    ),
    forbidden=("cs231n_lib.layers.softmax_loss",),
)

SVM = Exercise(
    name="svm_loss",
    reference={"svm_loss": layers.svm_loss},
    checks=(
        Check("N=5, C=4", _loss_probe("svm_loss", 5, 4), hidden=False),
        Check("batch of 1, C=7", _loss_probe("svm_loss", 1, 7)),
        Check("N=9, C=3, large scores", _loss_probe("svm_loss", 9, 3, scale=5.0, big=False)),
    ),
    mistakes=(
        Mistake("the sum of margins must skip the correct class j = y_i (it always adds 1)",
                {"svm_loss": _svm_counts_correct}),
        Mistake("dx at the correct class is minus the number of violated margins (divided by N); "
                "yours leaves it at 0", {"svm_loss": _svm_no_count}),
        Mistake("the loss and dx must be averaged over the N examples, not summed",
                {"svm_loss": _svm_summed}),
    ),
    forbidden=("cs231n_lib.layers.svm_loss",),
)

EXERCISES = (GRAPH, NUMGRAD, REL_ERROR, SOFTMAX, SVM)
