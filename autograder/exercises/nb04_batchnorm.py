"""Notebook 04: batch normalisation, layer normalisation and spatial batchnorm.

A backward pass is checked together with the student's own forward pass (its cache is whatever
the student's forward returns), so each buggy backward below comes with a forward of its own.
"""

import numpy as np

from autograder.exercise import Check, Exercise, Mistake
from cs231n_lib import conv, layers
from cs231n_lib.models import fc_net

NOTEBOOK = "04_batchnorm"


# ---- a plain forward/backward pair to build the typical mistakes from ----

def _bn_forward(variant=None, axis=0):
    """Batchnorm (axis 0) or layernorm (axis 1) forward with an optional mistake."""

    def forward(x, gamma, beta, param):
        param = param if param is not None else {}
        eps = param.get("eps", 1e-5)
        momentum = param.get("momentum", 0.9)
        mode = param.get("mode", "train")
        if axis == 0 and mode == "test":
            mean = param.get("running_mean", np.zeros(x.shape[1]))
            var = param.get("running_var", np.zeros(x.shape[1]))
            if variant == "test_uses_batch":
                mean, var = x.mean(axis=0), x.var(axis=0)
            return gamma * (x - mean) / np.sqrt(var + eps) + beta, None
        mu = x.mean(axis=axis, keepdims=True)
        var = x.var(axis=axis, keepdims=True, ddof=1 if variant == "unbiased" else 0)
        std = np.sqrt(var) + eps if variant == "eps_outside" else np.sqrt(var + eps)
        x_hat = (x - mu) / std
        if axis == 0:
            rm = param.get("running_mean", np.zeros(x.shape[1]))
            rv = param.get("running_var", np.zeros(x.shape[1]))
            if variant == "running_swapped":
                param["running_mean"] = (1 - momentum) * rm + momentum * mu[0]
                param["running_var"] = (1 - momentum) * rv + momentum * var[0]
            else:
                param["running_mean"] = momentum * rm + (1 - momentum) * mu[0]
                param["running_var"] = momentum * rv + (1 - momentum) * var[0]
        return gamma * x_hat + beta, (x, x_hat, 1 / np.sqrt(var + eps), gamma, axis)

    return forward


def _bn_backward(variant=None):
    """Backward of _bn_forward (either axis) through the graph, with an optional mistake."""

    def backward(dout, cache):
        x, x_hat, inv_std, gamma, axis = cache
        n = x.shape[axis]
        dbeta = dout.sum(axis=0)
        dgamma = dout.sum(axis=0) if variant == "dgamma_no_xhat" else (dout * x_hat).sum(axis=0)
        dx_hat = dout * gamma
        xc = x - x.mean(axis=axis, keepdims=True)
        if variant == "no_var_path":
            dxc = dx_hat * inv_std
        else:
            dvar = (dx_hat * xc).sum(axis=axis, keepdims=True) * -0.5 * inv_std**3
            dxc = dx_hat * inv_std + dvar * 2 * xc / n
        if variant == "no_mean_path":
            return dxc, dgamma, dbeta
        return dxc - dxc.sum(axis=axis, keepdims=True) / n, dgamma, dbeta

    return backward


def _bn_pair(variant, forward_name, backward_name, axis=0):
    return {forward_name: _bn_forward(None, axis), backward_name: _bn_backward(variant)}


# ---- spatial batchnorm built on the pair, with the reshape mistakes ----

def _spatial(kind):
    """(forward, backward) of spatial batchnorm; kind None | 'no_transpose' | 'per_pixel'."""
    forward2d, backward2d = _bn_forward(), _bn_backward()

    def to2d(x):
        N, C, H, W = x.shape
        if kind == "no_transpose":
            return x.reshape(-1, C)
        if kind == "per_pixel":
            return x.reshape(N, -1)
        return x.transpose(0, 2, 3, 1).reshape(-1, C)

    def from2d(y, shape):
        N, C, H, W = shape
        if kind in ("no_transpose", "per_pixel"):
            return y.reshape(shape)
        return y.reshape(N, H, W, C).transpose(0, 3, 1, 2)

    def tile(p, shape):
        if kind == "per_pixel":
            return np.repeat(p, shape[2] * shape[3])
        return p

    def forward(x, gamma, beta, bn_param):
        g, b = tile(gamma, x.shape), tile(beta, x.shape)
        out, cache = forward2d(to2d(x), g, b, bn_param)
        return from2d(out, x.shape), (cache, x.shape)

    def backward(dout, cache):
        cache2d, shape = cache
        dx, dg, db = backward2d(to2d(dout), cache2d)
        if kind == "per_pixel":
            dg = dg.reshape(shape[1], -1).sum(axis=1)
            db = db.reshape(shape[1], -1).sum(axis=1)
        return from2d(dx, shape), dg, db

    return forward, backward


# ---- the whole network: fc_net_loss ----
#
# The model is built in the student's process (FullyConnectedNet from the setup cell) from a seed
# and a weight scale the check draws, so both runs see the same parameters; what comes back is
# data: the loss, every gradient, the keys of the gradients and the batchnorm running averages
# the train-mode call left in the model.

def _net_run(hidden_dims, normalization, reg, n, input_shape=(6,), num_classes=4,
             activation="relu", scores_only=False):
    def run(ns, rng):
        seed = int(rng.integers(2**31))
        scale = float(rng.uniform(0.2, 1.0))
        X = rng.normal(rng.uniform(-1, 1), rng.uniform(0.5, 2), size=(n, *input_shape))
        y = rng.integers(num_classes, size=n)
        X_test = rng.standard_normal((n + 2, *input_shape))
        model = ns["FullyConnectedNet"](list(hidden_dims), input_dim=int(np.prod(input_shape)),
                                        num_classes=num_classes, activation=activation,
                                        normalization=normalization, reg=reg, init=scale,
                                        seed=seed)
        loss_fn = ns["fc_net_loss"]
        if scores_only:
            return {"scores": np.asarray(loss_fn(model, X), dtype=np.float64)}
        loss, grads = loss_fn(model, X, y)
        out = {"loss": float(loss), "grad_keys": ", ".join(sorted(str(k) for k in grads))}
        for k in sorted(model.params):
            out[f"d{k}"] = np.asarray(grads[k], dtype=np.float64)
        if normalization == "batchnorm":
            for i, bn_param in enumerate(model.bn_params):
                out[f"running_mean{i + 1}"] = np.asarray(bn_param["running_mean"], dtype=np.float64)
            # then test mode: batchnorm uses the running averages the train call left
            out["test_scores"] = np.asarray(loss_fn(model, X_test), dtype=np.float64)
        return out

    return run


def _net_mistake(kind):
    """The reference fc_net_loss with one typical mistake in the regularisation."""

    def fc_net_loss(model, X, y=None):
        result = fc_net.fc_net_loss(model, X, y)
        if y is None:
            return result
        loss, grads = result
        grads = dict(grads)
        for k, p in model.params.items():
            if kind == "no_half" and k.startswith("W"):
                loss += 0.5 * model.reg * np.sum(p * p)
            elif kind == "no_reg_grad" and k.startswith("W"):
                grads[k] = grads[k] - model.reg * p
            elif kind == "reg_all" and not k.startswith("W"):
                loss += 0.5 * model.reg * np.sum(p * p)
                grads[k] = grads[k] + model.reg * p
        return loss, grads

    return fc_net_loss


def _net_exercise():
    from autograder.exercises import NUMERICAL_GRADIENTS

    reference = {"FullyConnectedNet": fc_net.FullyConnectedNet, "fc_net_loss": fc_net.fc_net_loss}
    return Exercise(
        name="fc_net_loss",
        reference=reference,
        checks=(
            Check("visible", _net_run([7, 5], "batchnorm", 0.1, 6), hidden=False, tol=1e-6),
            Check("depth_0", _net_run([], None, 0.3, 5, input_shape=(2, 3, 2), num_classes=3),
                  tol=1e-6),
            Check("depth_1_plain", _net_run([9], None, 0.0, 7), tol=1e-6),
            Check("depth_2_layernorm_tanh", _net_run([5, 8], "layernorm", 0.05, 4,
                                                     activation="tanh"), tol=1e-6),
            Check("depth_3_batchnorm", _net_run([6, 7, 5], "batchnorm", 0.2, 9,
                                                input_shape=(1, 3, 3), num_classes=5), tol=1e-6),
            Check("depth_3_layernorm", _net_run([4, 3, 6], "layernorm", 0.7, 5, num_classes=2),
                  tol=1e-6),
            Check("batch_of_one", _net_run([5, 4], None, 0.1, 1), tol=1e-6),
            Check("batch_of_one_layernorm", _net_run([3], "layernorm", 0.4, 1, num_classes=3),
                  tol=1e-6),
            Check("scores_only", _net_run([5, 5], "layernorm", 0.1, 3, scores_only=True),
                  tol=1e-6),
            Check("scores_only_depth_0", _net_run([], None, 0.0, 4, input_shape=(3, 3),
                                                  scores_only=True), tol=1e-6),
        ),
        mistakes=(
            Mistake("your loss adds reg * sum(W^2): the L2 penalty is 0.5 * reg * sum(W^2), whose "
                    "gradient is reg * W", {"fc_net_loss": _net_mistake("no_half")}),
            Mistake("your weight gradients lack the regularisation term: add reg * W to each dW",
                    {"fc_net_loss": _net_mistake("no_reg_grad")}),
            Mistake("your net regularises the biases, gammas or betas too: the L2 penalty is on the "
                    "weights only", {"fc_net_loss": _net_mistake("reg_all")}),
        ),
        forbidden=("cs231n_lib.models.fc_net.fc_net_loss",
                   "cs231n_lib.models.fc_net.FullyConnectedNet.loss") + NUMERICAL_GRADIENTS,
    )


# ---- checks ----

def _params(rng, shape, channels_axis):
    d = shape[channels_axis]
    x = rng.normal(rng.uniform(-3, 3), rng.uniform(0.5, 4), size=shape)
    gamma = rng.uniform(0.5, 2.0, size=d)
    beta = rng.normal(size=d)
    return x, gamma, beta


def _forward_run(name, shape, bn_param, channels_axis=1, n_train=3):
    """``n_train`` train-mode batches, then one test-mode batch; outputs and running averages."""

    def run(ns, rng):
        batches = [_params(rng, shape, channels_axis)[0] for _ in range(n_train + 1)]
        _, gamma, beta = _params(rng, shape, channels_axis)
        param = dict(bn_param, mode="train")
        out = {}
        for i, x in enumerate(batches[:-1]):
            y, _ = ns[name](x, gamma, beta, param)
            out[f"train_out_{i}"] = np.asarray(y, dtype=np.float64)
        out["running_mean"] = np.asarray(param["running_mean"], dtype=np.float64)
        out["running_var"] = np.asarray(param["running_var"], dtype=np.float64)
        param["mode"] = "test"
        y, _ = ns[name](batches[-1], gamma, beta, param)
        out["test_out"] = np.asarray(y, dtype=np.float64)
        return out

    return run


def _layernorm_run(shape, ln_param):
    def run(ns, rng):
        x, _, _ = _params(rng, shape, 1)
        x = x * rng.uniform(0.5, 2, size=(shape[0], 1)) + rng.normal(size=(shape[0], 1))
        _, gamma, beta = _params(rng, shape, 1)
        y, _ = ns["layernorm_forward"](x, gamma, beta, dict(ln_param))
        return {"out": np.asarray(y, dtype=np.float64)}

    return run


def _backward_run(forward, backward, shape, param, channels_axis=1):
    def run(ns, rng):
        x, gamma, beta = _params(rng, shape, channels_axis)
        dout = rng.standard_normal(shape)
        _, cache = ns[forward](x, gamma, beta, dict(param))
        dx, dgamma, dbeta = ns[backward](dout, cache)
        return {"dx": np.asarray(dx, dtype=np.float64), "dgamma": np.asarray(dgamma, dtype=np.float64),
                "dbeta": np.asarray(dbeta, dtype=np.float64)}

    return run


def _backward_checks(forward, backward, param, shapes, visible_shape, channels_axis=1):
    checks = [Check("visible", _backward_run(forward, backward, visible_shape, param, channels_axis),
                    hidden=False, tol=1e-6)]
    for i, (shape, extra) in enumerate(shapes):
        checks.append(Check(f"hidden_{i}", _backward_run(forward, backward, shape, {**param, **extra},
                                                         channels_axis), tol=1e-6))
    return tuple(checks)


_BN_BACKWARD_SHAPES = [((2, 1), {}), ((7, 13), {"eps": 1e-2}), ((64, 3), {})]
_BN_BACKWARD_MISTAKES = (
    ("your dx ignores the term through the batch mean: mu depends on every x, so dx needs "
     "-sum(dx_centred) / N as well", "no_mean_path"),
    ("your dx ignores the path through the batch variance: var depends on every x too", "no_var_path"),
    ("your dgamma is sum(dout): it should be sum(dout * x_hat) over the batch", "dgamma_no_xhat"),
)


def _closed_form(variant=None):
    """The closed form of the batchnorm backward pass (on _bn_forward's cache), with the
    slips of a derivation: gamma dropped, or the x_hat factor of the variance term lost."""

    def backward(dout, cache):
        _, x_hat, inv_std, gamma, _ = cache
        n = dout.shape[0]
        dbeta, dgamma = dout.sum(axis=0), (dout * x_hat).sum(axis=0)
        scale = inv_std / n if variant == "no_gamma" else gamma * inv_std / n
        last = dgamma if variant == "no_xhat_factor" else x_hat * dgamma
        return scale * (n * dout - dbeta - last), dgamma, dbeta

    return backward


_CLOSED_FORM_MISTAKES = (
    ("your batchnorm_backward_alt's dx lacks gamma: the loss reaches x_hat through "
     "gamma * x_hat, so dL/dx_hat = gamma * dout", "no_gamma"),
    ("your batchnorm_backward_alt's dx subtracts sum(dout * x_hat) without the factor x_hat: "
     "the Jacobian's last term is x_hat_i * x_hat_j", "no_xhat_factor"),
)


def _bn_backward_exercise(name, library_fn, own_forbidden=(), closed_form_mistakes=()):
    """``own_forbidden``: functions of the student's own notebook (``__main__.<name>``) that this
    exercise may not call, as the closed form may not hand its work to the graph version."""
    return Exercise(
        name=name,
        reference={"batchnorm_forward": layers.batchnorm_forward, name: library_fn},
        checks=_backward_checks("batchnorm_forward", name, {"mode": "train"}, _BN_BACKWARD_SHAPES, (10, 5)),
        mistakes=tuple(Mistake(hint.replace("your dx", f"your {name}'s dx").replace("your dgamma", f"your {name}'s dgamma"),
                               _bn_pair(v, "batchnorm_forward", name)) for hint, v in _BN_BACKWARD_MISTAKES)
        + tuple(Mistake(hint, {"batchnorm_forward": _bn_forward(), name: _closed_form(v)})
                for hint, v in closed_form_mistakes),
        forbidden=("cs231n_lib.layers.batchnorm_backward", "cs231n_lib.layers.batchnorm_backward_alt")
        + tuple(own_forbidden),
    )


def _spatial_forward_patch(kind):
    return {"spatial_batchnorm_forward": _spatial(kind)[0]}


def _spatial_backward_patch(kind):
    f, b = _spatial(kind)
    return {"spatial_batchnorm_forward": f, "spatial_batchnorm_backward": b}


EXERCISES = (
    Exercise(
        name="batchnorm_forward",
        reference={"batchnorm_forward": layers.batchnorm_forward},
        checks=(
            Check("visible", _forward_run("batchnorm_forward", (200, 3), {}), hidden=False, tol=1e-6),
            Check("momentum_and_eps", _forward_run("batchnorm_forward", (9, 4), {"momentum": 0.5, "eps": 1e-3}), tol=1e-6),
            Check("two_examples", _forward_run("batchnorm_forward", (2, 1), {"eps": 1e-2}, n_train=5), tol=1e-6),
            Check("wide", _forward_run("batchnorm_forward", (16, 33), {"momentum": 0.0}, n_train=1), tol=1e-6),
        ),
        mistakes=(
            Mistake("your batchnorm_forward uses the batch's statistics at test time: test mode must "
                    "use running_mean and running_var", {"batchnorm_forward": _bn_forward("test_uses_batch")}),
            Mistake("your running averages are weighted the wrong way round: running = momentum * "
                    "running + (1 - momentum) * batch statistic",
                    {"batchnorm_forward": _bn_forward("running_swapped")}),
            Mistake("your batchnorm_forward uses the unbiased variance (divides by N - 1): batchnorm "
                    "divides by N", {"batchnorm_forward": _bn_forward("unbiased")}),
        ),
        forbidden=("cs231n_lib.layers.batchnorm_forward",),
    ),
    _bn_backward_exercise("batchnorm_backward", layers.batchnorm_backward),
    _bn_backward_exercise("batchnorm_backward_alt", layers.batchnorm_backward_alt,
                          own_forbidden=("__main__.batchnorm_backward",),
                          closed_form_mistakes=_CLOSED_FORM_MISTAKES),
    Exercise(
        name="layernorm_forward",
        reference={"layernorm_forward": layers.layernorm_forward},
        checks=(
            Check("visible", _layernorm_run((4, 20), {}), hidden=False, tol=1e-6),
            Check("one_example", _layernorm_run((1, 7), {"eps": 1e-2}), tol=1e-6),
            Check("tall", _layernorm_run((30, 3), {"eps": 0.5}), tol=1e-6),
        ),
        mistakes=(
            Mistake("your layernorm_forward normalises each feature over the batch (that is batchnorm): "
                    "normalise each example over its features",
                    {"layernorm_forward": lambda x, g, b, p: _bn_forward(None, axis=0)(x, g, b, dict(p, mode="train"))}),
            Mistake("your layernorm_forward adds eps outside the square root: divide by sqrt(var + eps)",
                    {"layernorm_forward": _bn_forward("eps_outside", axis=1)}),
        ),
        forbidden=("cs231n_lib.layers.layernorm_forward",),
    ),
    Exercise(
        name="layernorm_backward",
        reference={"layernorm_forward": layers.layernorm_forward, "layernorm_backward": layers.layernorm_backward},
        checks=_backward_checks("layernorm_forward", "layernorm_backward", {},
                                [((1, 6), {}), ((5, 2), {"eps": 1e-2}), ((3, 40), {})], (4, 10)),
        mistakes=(
            Mistake("your layernorm_backward ignores the term through each example's mean",
                    _bn_pair("no_mean_path", "layernorm_forward", "layernorm_backward", axis=1)),
            Mistake("your layernorm_backward ignores the path through each example's variance",
                    _bn_pair("no_var_path", "layernorm_forward", "layernorm_backward", axis=1)),
        ),
        forbidden=("cs231n_lib.layers.layernorm_backward",),
    ),
    Exercise(
        name="spatial_batchnorm_forward",
        reference={"batchnorm_forward": layers.batchnorm_forward,
                   "spatial_batchnorm_forward": conv.spatial_batchnorm_forward},
        checks=(
            Check("visible", _forward_run("spatial_batchnorm_forward", (4, 3, 5, 6), {}), hidden=False, tol=1e-6),
            Check("one_image", _forward_run("spatial_batchnorm_forward", (1, 2, 4, 3), {"momentum": 0.5}), tol=1e-6),
            Check("one_channel", _forward_run("spatial_batchnorm_forward", (5, 1, 3, 3), {"eps": 1e-2}), tol=1e-6),
            Check("many_channels", _forward_run("spatial_batchnorm_forward", (3, 8, 2, 5), {}, n_train=1), tol=1e-6),
        ),
        mistakes=(
            Mistake("your spatial_batchnorm_forward reshapes (N, C, H, W) to (-1, C) without moving the "
                    "channel axis last first, which mixes channels: transpose to (N, H, W, C), then reshape",
                    _spatial_forward_patch("no_transpose")),
            Mistake("your spatial_batchnorm_forward normalises every pixel separately: the statistics "
                    "are per channel, over N, H and W", _spatial_forward_patch("per_pixel")),
        ),
        forbidden=("cs231n_lib.conv.spatial_batchnorm_forward",),
    ),
    Exercise(
        name="spatial_batchnorm_backward",
        reference={"batchnorm_forward": layers.batchnorm_forward,
                   "batchnorm_backward": layers.batchnorm_backward,
                   "batchnorm_backward_alt": layers.batchnorm_backward_alt,
                   "spatial_batchnorm_forward": conv.spatial_batchnorm_forward,
                   "spatial_batchnorm_backward": conv.spatial_batchnorm_backward},
        checks=_backward_checks("spatial_batchnorm_forward", "spatial_batchnorm_backward", {"mode": "train"},
                                [((1, 2, 3, 3), {}), ((3, 1, 4, 2), {"eps": 1e-2}), ((2, 5, 2, 3), {})],
                                (2, 3, 4, 5)),
        mistakes=(
            Mistake("your spatial batchnorm reshapes without moving the channel axis last, which mixes "
                    "channels", _spatial_backward_patch("no_transpose")),
            Mistake("your spatial batchnorm normalises every pixel separately: the statistics are per "
                    "channel, over N, H and W", _spatial_backward_patch("per_pixel")),
        ),
        forbidden=("cs231n_lib.conv.spatial_batchnorm_backward",),
    ),
    _net_exercise(),
)
