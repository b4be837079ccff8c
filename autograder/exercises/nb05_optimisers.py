"""Notebook 05: update rules, inverted dropout and the L2 penalty.

The update rules are deterministic, so their checks compare the new weights and the state left
in ``config`` after a few steps. AdaGrad and RMSProp are one exercise, ``rmsprop``: the student
writes both in one cell (RMSProp is AdaGrad with a leaky cache), and its checks run both. Dropout is random and the notebook does not prescribe how the
mask is drawn, so its checks compare what any correct inverted dropout must satisfy (kept units
scaled by 1/p, the rest zero, about a fraction p kept, identity at test time, the backward pass
using the forward's mask) rather than the mask itself.
"""

import numpy as np

from autograder.exercise import Check, Exercise, Mistake
from autograder.exercises import notebook_solutions
from cs231n_lib import layers, optim

NOTEBOOK = "05_optimisers"

_STATE_KEYS = ("velocity", "cache", "m", "v", "t")


def _steps(rule, shape, n_steps, config):
    """A check body: ``n_steps`` updates of ``rule`` on rng-drawn weights and gradients."""

    def run(ns, rng):
        w = rng.standard_normal(shape)
        grads = [rng.standard_normal(shape) for _ in range(n_steps)]
        cfg = {k: np.array(v) if isinstance(v, np.ndarray) else v for k, v in config.items()}
        out = {}
        for i, dw in enumerate(grads):
            w, cfg = ns[rule](w, dw, cfg)
            out[f"w_{i}"] = np.array(w, dtype=np.float64)
        for key in _STATE_KEYS:
            if key in cfg:
                out[key] = np.array(cfg[key], dtype=np.float64)
        return out

    return run


def _rule_checks(rule, visible_config, hidden_configs, prefix=""):
    """One visible check and a hidden one per config; ``prefix`` names the rule in an exercise
    that checks two rules (AdaGrad and RMSProp)."""
    checks = [Check(f"{prefix}visible", _steps(rule, (4, 5), 3, visible_config), hidden=False)]
    for i, (shape, n, cfg) in enumerate(hidden_configs):
        checks.append(Check(f"{prefix}hidden_{i}", _steps(rule, shape, n, cfg)))
    return tuple(checks)


# ---- typical wrong update rules (config handling as in cs231n_lib.optim) ----

def _momentum_forgets_velocity(w, dw, config=None):
    config = dict(config or {})
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("momentum", 0.9)
    v = config["momentum"] * np.zeros_like(w) - config["learning_rate"] * dw  # state never read back
    config["velocity"] = v
    return w + v, config


def _momentum_old_velocity(w, dw, config=None):
    config = dict(config or {})
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("momentum", 0.9)
    v_old = config.get("velocity", np.zeros_like(w))
    config["velocity"] = config["momentum"] * v_old - config["learning_rate"] * dw
    return w + v_old, config  # steps with last iteration's velocity


def _nesterov_as_classical(w, dw, config=None):
    config = dict(config or {})
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("momentum", 0.9)
    v = config["momentum"] * config.get("velocity", np.zeros_like(w)) - config["learning_rate"] * dw
    config["velocity"] = v
    return w + v, config


def _nesterov_missing_one_plus_mu(w, dw, config=None):
    config = dict(config or {})
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("momentum", 0.9)
    mu = config["momentum"]
    v_prev = config.get("velocity", np.zeros_like(w))
    v = mu * v_prev - config["learning_rate"] * dw
    config["velocity"] = v
    return w - mu * v_prev + v, config


def _adagrad(accumulate=True, sqrt=True):
    def rule(w, dw, config=None):
        config = dict(config or {})
        config.setdefault("learning_rate", 1e-2)
        config.setdefault("epsilon", 1e-8)
        cache = config.get("cache", np.zeros_like(w)) if accumulate else np.zeros_like(w)
        cache = cache + dw**2
        config["cache"] = cache
        denom = np.sqrt(cache) if sqrt else cache
        return w - config["learning_rate"] * dw / (denom + config["epsilon"]), config

    return rule


def _rmsprop(kind):
    def rule(w, dw, config=None):
        config = dict(config or {})
        config.setdefault("learning_rate", 1e-2)
        config.setdefault("decay_rate", 0.99)
        config.setdefault("epsilon", 1e-8)
        d = config["decay_rate"]
        cache = config.get("cache", np.zeros_like(w))
        if kind == "no_one_minus":
            cache = d * cache + dw**2
        elif kind == "no_leak":  # AdaGrad's sum: the cache forgets nothing
            cache = cache + dw**2
        else:  # the decay rate applied to the new gradient instead of the old cache
            cache = (1 - d) * cache + d * dw**2
        config["cache"] = cache
        return w - config["learning_rate"] * dw / (np.sqrt(cache) + config["epsilon"]), config

    return rule


def _adam(kind):
    def rule(w, dw, config=None):
        config = dict(config or {})
        config.setdefault("learning_rate", 1e-3)
        config.setdefault("beta1", 0.9)
        config.setdefault("beta2", 0.999)
        config.setdefault("epsilon", 1e-8)
        b1, b2 = config["beta1"], config["beta2"]
        m = config.get("m", np.zeros_like(w))
        v = config.get("v", np.zeros_like(w))
        t = config.get("t", 0)
        if kind != "t_after":
            t = t + 1
        # m_as_velocity: momentum's sum of gradients, not a leaky average (no factor 1 - beta1)
        m = b1 * m + (dw if kind == "m_as_velocity" else (1 - b1) * dw)
        v = b2 * v + (1 - b2) * (dw if kind == "v_not_squared" else dw**2)
        if kind == "no_bias_correction":
            m_hat, v_hat = m, v
        elif kind == "correction_without_t":  # the first step's factor, used at every step
            m_hat, v_hat = m / (1 - b1), v / (1 - b2)
        elif kind == "t_after":
            t = t + 1
            with np.errstate(all="ignore"):
                m_hat, v_hat = m / (1 - b1 ** (t - 1)), v / (1 - b2 ** (t - 1))
        else:
            m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        with np.errstate(all="ignore"):
            next_w = w - config["learning_rate"] * m_hat / (np.sqrt(np.abs(v_hat)) + config["epsilon"])
        config.update(m=m, v=v, t=t)
        return next_w, config

    return rule


# ---- dropout: behavioural checks that hold for any way of drawing the mask ----

def _dropout_forward_run(shape, p, seed):
    def run(ns, rng):
        x = rng.uniform(0.5, 2.0, size=shape) * rng.choice([-1.0, 1.0], size=shape)
        f = ns["dropout_forward"]
        out, _ = f(x, {"p": p, "mode": "train", "seed": seed})
        out2, _ = f(x, {"p": p, "mode": "train", "seed": seed})
        out_test, _ = f(x, {"p": p, "mode": "test", "seed": seed})
        out = np.asarray(out)
        kept = out != 0
        return {
            "shape": np.array(out.shape, dtype=np.float64),
            "kept_units_scaled_by_1_over_p": bool(np.allclose(out[kept], x[kept] / p)),
            "keep_fraction_near_p": bool(abs(kept.mean() - p) < 4 * np.sqrt(p * (1 - p) / x.size) + 1e-12),
            "same_seed_same_mask": bool(np.array_equal(out, np.asarray(out2))),
            "test_output": np.asarray(out_test, dtype=np.float64),
        }

    return run


def _dropout_backward_run(shape, p, seed):
    def run(ns, rng):
        x = rng.uniform(0.5, 2.0, size=shape) * rng.choice([-1.0, 1.0], size=shape)
        dout = rng.standard_normal(shape)
        out, cache = ns["dropout_forward"](x, {"p": p, "mode": "train", "seed": seed})
        dx = np.asarray(ns["dropout_backward"](dout, cache))
        kept = np.asarray(out) != 0
        _, cache_test = ns["dropout_forward"](x, {"p": p, "mode": "test", "seed": seed})
        dx_test = np.asarray(ns["dropout_backward"](dout, cache_test), dtype=np.float64)
        return {
            "dx_zero_where_dropped": bool(np.all(dx[~kept] == 0)),
            "dx_kept_is_dout_over_p": bool(np.allclose(dx[kept], dout[kept] / p)),
            "dx_test": dx_test,
        }

    return run


def _dropout_mistake(kind):
    def forward(x, dropout_param):
        p, mode = dropout_param["p"], dropout_param["mode"]
        rng = np.random.default_rng(dropout_param.get("seed"))
        if kind == "drop_prob":
            mask = rng.random(x.shape) >= p  # p read as the probability of dropping
        else:
            mask = rng.random(x.shape) < p
        if mode == "train":
            out = x * mask if kind == "no_rescale" else x * mask / (p if kind != "drop_prob" else 1 - p)
        else:
            out = x * p if kind == "scale_at_test" else x
        return out, (dropout_param, mask)

    def backward(dout, cache):
        dropout_param, mask = cache
        p = dropout_param["p"]
        if dropout_param["mode"] != "train":
            return dout
        if kind == "backward_no_rescale":
            return dout * mask
        if kind == "backward_no_mask":
            return dout / p
        return dout * mask / p if kind != "drop_prob" else dout * mask / (1 - p)

    return forward, backward


def _dropout_forward_mistake(kind):
    f, _ = _dropout_mistake(kind)
    return f


def _dropout_backward_mistake(kind):
    f, b = _dropout_mistake(kind)
    return {"dropout_forward": f, "dropout_backward": b}


# ---- L2 penalty on a model's weights ----

# The library has no L2 helper (models add the penalty themselves): the notebook's solution cell
# is the reference.
l2_regularise = notebook_solutions(NOTEBOOK, "l2_regularise")["l2_regularise"]


def _l2_mistake(kind):
    def l2(loss, grads, params, reg):
        new_grads = dict(grads)
        for name, value in params.items():
            if kind == "biases" or name.startswith("W"):
                penalty = reg * np.sum(value * value) if kind == "no_half" else 0.5 * reg * np.sum(value * value)
                loss = loss + penalty
                new_grads[name] = grads[name] + (0.5 * reg * value if kind == "half_grad" else reg * value)
        return loss, new_grads

    return l2


def _l2_run(dims, reg):
    def run(ns, rng):
        params, grads = {}, {}
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:]), start=1):
            params[f"W{i}"] = rng.standard_normal((a, b))
            params[f"b{i}"] = rng.standard_normal(b)
            grads[f"W{i}"] = rng.standard_normal((a, b))
            grads[f"b{i}"] = rng.standard_normal(b)
        loss = float(rng.uniform(1, 3))
        new_loss, new_grads = ns["l2_regularise"](loss, dict(grads), params, reg)
        out = {"loss": float(new_loss)}
        out.update({f"d{k}": np.asarray(v, dtype=np.float64) for k, v in sorted(new_grads.items())})
        return out

    return run


EXERCISES = (
    Exercise(
        name="sgd_momentum",
        reference={"sgd_momentum": optim.sgd_momentum},
        checks=_rule_checks(
            "sgd_momentum",
            {"learning_rate": 1e-2, "momentum": 0.9},
            [((7,), 5, {"learning_rate": 0.3, "momentum": 0.5}),
             ((1, 1), 4, {"learning_rate": 1e-3, "momentum": 0.99}),
             ((3, 2, 2), 2, {})],
        ),
        mistakes=(
            Mistake("your sgd_momentum does not carry the velocity from one call to the next: "
                    "read config['velocity'] before updating it", {"sgd_momentum": _momentum_forgets_velocity}),
            Mistake("your sgd_momentum steps with the old velocity: update the velocity first, then "
                    "move w by the new one", {"sgd_momentum": _momentum_old_velocity}),
        ),
        forbidden=("cs231n_lib.optim.sgd_momentum", "cs231n_lib.optim.nesterov_momentum"),
    ),
    Exercise(
        name="nesterov_momentum",
        reference={"nesterov_momentum": optim.nesterov_momentum},
        checks=_rule_checks(
            "nesterov_momentum",
            {"learning_rate": 1e-2, "momentum": 0.9},
            [((7,), 5, {"learning_rate": 0.3, "momentum": 0.5}),
             ((1, 1), 4, {"learning_rate": 1e-3, "momentum": 0.99}),
             ((3, 2, 2), 2, {})],
        ),
        mistakes=(
            Mistake("your nesterov_momentum is classical momentum (w += v): Nesterov's update is "
                    "w += -mu * v_prev + (1 + mu) * v", {"nesterov_momentum": _nesterov_as_classical}),
            Mistake("your nesterov_momentum is missing the (1 + mu) factor on the new velocity",
                    {"nesterov_momentum": _nesterov_missing_one_plus_mu}),
        ),
        forbidden=("cs231n_lib.optim.nesterov_momentum",),
    ),
    Exercise(
        name="rmsprop",  # one cell: adagrad, then rmsprop, AdaGrad with a leaky cache
        reference={"adagrad": optim.adagrad, "rmsprop": optim.rmsprop},
        checks=_rule_checks(
            "adagrad",
            {"learning_rate": 1e-2},
            [((7,), 5, {"learning_rate": 0.3}), ((1, 1), 4, {"learning_rate": 1e-3, "epsilon": 1e-6}),
             ((3, 2, 2), 2, {})],
            prefix="adagrad_",
        ) + _rule_checks(
            "rmsprop",
            {"learning_rate": 1e-2, "decay_rate": 0.99},
            [((7,), 5, {"learning_rate": 0.3, "decay_rate": 0.9}),
             ((1, 1), 4, {"learning_rate": 1e-3, "decay_rate": 0.5, "epsilon": 1e-6}),
             ((3, 2, 2), 2, {})],
            prefix="rmsprop_",
        ),
        mistakes=(
            Mistake("your adagrad does not accumulate: cache must be the running SUM of squared "
                    "gradients kept in config['cache']", {"adagrad": _adagrad(accumulate=False)}),
            Mistake("your adagrad divides by the cache itself: divide by its square root",
                    {"adagrad": _adagrad(sqrt=False)}),
            Mistake("your rmsprop's cache does not leak: it sums the squared gradients as "
                    "AdaGrad's does; keep only the fraction decay_rate of the old cache",
                    {"rmsprop": _rmsprop("no_leak")}),
            Mistake("your rmsprop adds the whole squared gradient: the new term needs the factor "
                    "(1 - decay_rate)", {"rmsprop": _rmsprop("no_one_minus")}),
            Mistake("your rmsprop swaps the weights: decay_rate multiplies the old cache and "
                    "(1 - decay_rate) the new squared gradient", {"rmsprop": _rmsprop("swapped")}),
        ),
        forbidden=("cs231n_lib.optim.adagrad", "cs231n_lib.optim.rmsprop"),
    ),
    Exercise(
        name="adam",
        reference={"adam": optim.adam},
        checks=_rule_checks(
            "adam",
            {"learning_rate": 1e-3, "beta1": 0.9, "beta2": 0.999},
            [((7,), 5, {"learning_rate": 0.1, "beta1": 0.5, "beta2": 0.9}),
             ((1, 1), 4, {"learning_rate": 1e-2, "epsilon": 1e-6}),
             ((3, 2, 2), 2, {"t": 10, "m": np.full((3, 2, 2), 0.1), "v": np.full((3, 2, 2), 0.2)})],
        ),
        mistakes=(
            Mistake("your adam has no bias correction: divide m by (1 - beta1**t) and v by "
                    "(1 - beta2**t)", {"adam": _adam("no_bias_correction")}),
            Mistake("your adam increments t after the bias correction: increment it first, so the "
                    "first step uses t = 1", {"adam": _adam("t_after")}),
            Mistake("your adam's second moment averages the gradient, not its square",
                    {"adam": _adam("v_not_squared")}),
            Mistake("your adam's first moment sums the gradients as momentum's velocity does: "
                    "like v, m is a leaky average, with the factor (1 - beta1) on the new gradient",
                    {"adam": _adam("m_as_velocity")}),
            Mistake("your adam's bias correction does not depend on t: after t steps from zero, "
                    "m is (1 - beta1**t) times the gradient's average, so divide by that",
                    {"adam": _adam("correction_without_t")}),
        ),
        forbidden=("cs231n_lib.optim.adam",),
    ),
    Exercise(
        name="dropout_forward",
        reference={"dropout_forward": layers.dropout_forward},
        checks=(
            Check("visible", _dropout_forward_run((500, 40), 0.5, 0), hidden=False),
            Check("keep_0.8", _dropout_forward_run((2000, 30), 0.8, 123)),
            Check("keep_0.25_batch_1", _dropout_forward_run((1, 50000), 0.25, 7)),
            Check("images", _dropout_forward_run((10, 3, 20, 20), 0.6, 42)),
        ),
        mistakes=(
            Mistake("your dropout does not rescale by 1/p in training (inverted dropout divides the "
                    "kept units by p)", {"dropout_forward": _dropout_forward_mistake("no_rescale")}),
            Mistake("your dropout reads p as the probability of DROPPING a unit: p is the "
                    "probability of keeping it", {"dropout_forward": _dropout_forward_mistake("drop_prob")}),
            Mistake("your dropout scales at test time: with inverted dropout the test pass is the "
                    "identity", {"dropout_forward": _dropout_forward_mistake("scale_at_test")}),
        ),
        forbidden=("cs231n_lib.layers.dropout_forward",),
    ),
    Exercise(
        name="dropout_backward",
        reference={"dropout_forward": layers.dropout_forward, "dropout_backward": layers.dropout_backward},
        checks=(
            Check("visible", _dropout_backward_run((500, 40), 0.5, 0), hidden=False),
            Check("keep_0.8", _dropout_backward_run((200, 30), 0.8, 123)),
            Check("batch_1", _dropout_backward_run((1, 77), 0.3, 7)),
            Check("images", _dropout_backward_run((4, 3, 5, 5), 0.6, 42)),
        ),
        mistakes=(
            Mistake("your dropout_backward does not divide by p: the gradient flows through the "
                    "same 1/p scaling as the forward pass", _dropout_backward_mistake("backward_no_rescale")),
            Mistake("your dropout_backward ignores the mask: dropped units pass no gradient",
                    _dropout_backward_mistake("backward_no_mask")),
        ),
        forbidden=("cs231n_lib.layers.dropout_backward",),
    ),
    Exercise(
        name="l2_regularise",
        reference={"l2_regularise": l2_regularise},
        checks=(
            Check("visible", _l2_run((4, 3, 2), 0.1), hidden=False),
            Check("three_layers", _l2_run((6, 5, 4, 3), 2.5)),
            Check("one_unit", _l2_run((1, 1), 1e-3)),
            Check("no_reg", _l2_run((3, 2), 0.0)),
        ),
        mistakes=(
            Mistake("your l2_regularise also penalises the biases: only the weight matrices "
                    "(keys starting with 'W') are regularised", {"l2_regularise": _l2_mistake("biases")}),
            Mistake("your penalty and its gradient disagree: 0.5 * reg * sum(W**2) has gradient "
                    "reg * W", {"l2_regularise": _l2_mistake("no_half")}),
            Mistake("your l2 gradient is 0.5 * reg * W: the derivative of 0.5 * reg * W**2 is reg * W",
                    {"l2_regularise": _l2_mistake("half_grad")}),
        ),
    ),
)
