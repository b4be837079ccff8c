"""Exercises of notebook 03: Xavier and He initialisation, per-layer forward statistics.

Xavier and He are one exercise, ``he``: the student derives both scales from one variance
argument and writes both functions in one cell (xavier, then he); its checks run both.
"""

import numpy as np

from autograder.exercise import Check, Exercise, Mistake
from cs231n_lib import init, stats

NOTEBOOK = "03_initialisation"


def _init_probe(name, fan_in, fan_out):
    """Shape, spread and reproducibility of ns[name](fan_in, fan_out, rng=...)."""

    def run(ns, rng):
        seed = int(rng.integers(2**31))
        w = np.asarray(ns[name](fan_in, fan_out, rng=np.random.default_rng(seed)), dtype=float)
        again = np.asarray(ns[name](fan_in, fan_out, rng=np.random.default_rng(seed)), dtype=float)
        out = {"shape": np.array(w.shape, dtype=float),
               "same_rng_same_weights": bool(np.array_equal(w, again))}
        if w.size >= 10_000:  # statistics are meaningful only on a large matrix
            n = w.size
            std = w.std()
            kurtosis = np.mean((w - w.mean()) ** 4) / std**4
            out["std_times_sqrt_fan_in"] = std * np.sqrt(fan_in)
            out["zero_mean"] = bool(abs(w.mean()) < 5 * std / np.sqrt(n))
            out["gaussian"] = bool(abs(kurtosis - 3) < 0.3)
        return out

    return run


def _init_checks(name):
    """One visible and three hidden checks of ns[name], each named after the scheme."""
    return (
        Check(f"{name}: fan_in=500, fan_out=300", _init_probe(name, 500, 300), hidden=False, tol=0.02),
        Check(f"{name}: fan_in=50, fan_out=2000", _init_probe(name, 50, 2000), tol=0.02),
        Check(f"{name}: tiny layer 3 x 1", _init_probe(name, 3, 1), tol=0.02),
        Check(f"{name}: fan_in=2000, fan_out=64", _init_probe(name, 2000, 64), tol=0.02),
    )


def _gauss(std_fn):
    def make(fan_in, fan_out, rng=None):
        rng = np.random.default_rng(rng)
        return std_fn(fan_in, fan_out) * rng.standard_normal((fan_in, fan_out))
    return make


def _uniform_unit(fan_in, fan_out, rng=None):
    rng = np.random.default_rng(rng)
    return rng.random((fan_in, fan_out)) / np.sqrt(fan_in)


def _global_rng(std_fn):
    def make(fan_in, fan_out, rng=None):
        return std_fn(fan_in, fan_out) * np.random.standard_normal((fan_in, fan_out))
    return make


_INITS = ("cs231n_lib.init.xavier", "cs231n_lib.init.he", "cs231n_lib.init.small_random")

XAVIER_AND_HE = Exercise(
    name="he",  # one cell: xavier, then he, both from the variance of a sum of fan_in products
    reference={"xavier": init.xavier, "he": init.he},
    checks=_init_checks("xavier") + _init_checks("he"),
    mistakes=(
        Mistake("your xavier uses the variance as the standard deviation: rng.standard_normal "
                "draws with std 1, so scale it by the square root of the variance you derived",
                {"xavier": _gauss(lambda i, o: 1 / i)}),
        Mistake("your xavier scales with fan_out: Var(a) sums fan_in products, one per input of "
                "the unit", {"xavier": _gauss(lambda i, o: np.sqrt(1 / o))}),
        Mistake("your xavier has He's variance: without a ReLU nothing halves the second moment, "
                "so nothing needs doubling", {"xavier": _gauss(lambda i, o: np.sqrt(2 / i))}),
        Mistake("your xavier's weights are not zero-mean Gaussian: rng.random draws uniformly "
                "from [0, 1)", {"xavier": _uniform_unit}),
        Mistake("your he has Xavier's variance: the ReLU zeros half of its inputs and halves "
                "E[x^2], which the weights must make up for", {"he": _gauss(lambda i, o: np.sqrt(1 / i))}),
        Mistake("your he uses the variance as the standard deviation: scale the unit Gaussian "
                "by the square root of the variance you derived", {"he": _gauss(lambda i, o: 2 / i)}),
        Mistake("your he scales with fan_out: Var(a) sums fan_in products, one per input of "
                "the unit", {"he": _gauss(lambda i, o: np.sqrt(2 / o))}),
        Mistake("draw the weights from the rng argument, not from np.random",
                {"xavier": _global_rng(lambda i, o: np.sqrt(1 / i)),
                 "he": _global_rng(lambda i, o: np.sqrt(2 / i))}),
    ),
    forbidden=_INITS,
)


# --- forward statistics ----------------------------------------------------------------------
def _stats_probe(N, dims, activation, scale=1.0):
    def run(ns, rng):
        x = rng.standard_normal((N, dims[0]))
        weights = [scale * rng.standard_normal((i, o)) / np.sqrt(i) for i, o in zip(dims[:-1], dims[1:])]
        means, stds, hs = ns["forward_stats"](x, weights, activation)
        return {"means": np.asarray(means, dtype=float), "stds": np.asarray(stds, dtype=float),
                "n_layers": len(hs), "first": np.asarray(hs[0], dtype=float),
                "last": np.asarray(hs[-1], dtype=float)}

    return run


_ACT = {"tanh": np.tanh, "relu": lambda a: np.maximum(a, 0)}


def _stats_of_preactivations(x, weights, activation="tanh"):
    h, hs, pre = x, [], []
    for w in weights:
        a = h @ w
        h = _ACT[activation](a)
        hs.append(h)
        pre.append(a)
    return np.array([a.mean() for a in pre]), np.array([a.std() for a in pre]), hs


def _stats_per_unit(x, weights, activation="tanh"):
    means, _, hs = stats.forward_stats(x, weights, activation)
    return means, np.array([h.std(axis=0).mean() for h in hs]), hs


def _stats_linear_last(x, weights, activation="tanh"):
    h, hs = x, []
    for l, w in enumerate(weights):
        h = h @ w
        if l < len(weights) - 1:
            h = _ACT[activation](h)
        hs.append(h)
    return np.array([h.mean() for h in hs]), np.array([h.std() for h in hs]), hs


FORWARD_STATS = Exercise(
    name="forward_stats",
    reference={"forward_stats": stats.forward_stats},
    checks=(
        Check("tanh, 3 layers of 20, N=16", _stats_probe(16, [20, 20, 20, 20], "tanh"),
              hidden=False),
        Check("relu, widths 7-9-5-3-4", _stats_probe(11, [7, 9, 5, 3, 4], "relu", 1.5)),
        Check("tanh, one example, large weights", _stats_probe(1, [30, 12, 12], "tanh", 4.0)),
        Check("relu, a single layer", _stats_probe(25, [6, 10], "relu")),
    ),
    mistakes=(
        Mistake("the statistics must be of the activations h = act(x @ W), not of the "
                "pre-activations x @ W", {"forward_stats": _stats_of_preactivations}),
        Mistake("take the std over all N x M activations of a layer (h.std()), not per unit "
                "and then averaged", {"forward_stats": _stats_per_unit}),
        Mistake("the activation must be applied after every layer, the last one included",
                {"forward_stats": _stats_linear_last}),
    ),
    forbidden=("cs231n_lib.stats.forward_stats",),
)

EXERCISES = (XAVIER_AND_HE, FORWARD_STATS)
