"""Layers of a neural network, each a pair of pure functions.

`X_forward(inputs...) -> (out, cache)` computes the layer's output and keeps in `cache` what
the backward pass needs; `X_backward(dout, cache)` takes the upstream gradient dL/dout and
returns the gradients with respect to the forward inputs, in the order of those inputs.
No layer keeps state between calls: the one exception, batchnorm's running averages, lives in
the `bn_param` dict the caller owns.

Shapes: N is the batch size, D the number of input features, M the number of outputs.
Inputs to affine and maxout may have any shape (N, d1, ..., dk); they are flattened to (N, D)
with D = d1 * ... * dk.

Contents:
- affine, relu, sigmoid, tanh, leaky_relu, elu, maxout
- dropout (inverted; p is the probability of KEEPING a unit)
- batchnorm (with `batchnorm_backward_alt`, the simplified closed form), layernorm
- softmax_loss, svm_loss
- check_* helpers: the shared input checks that turn bad input into a clear ValueError.
"""

import numpy as np

from .registry import exercise

# The element-wise activations, each an `<name>_forward` / `<name>_backward` pair below.
ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "elu")

# ---------------------------------------------------------------------------------------------
# Input checks. Every public function runs its inputs through these, so that a wrong shape or
# an unknown key fails with a message naming it rather than a numpy broadcast error later on.
# ---------------------------------------------------------------------------------------------


def check_array(x, name, ndim=None, min_ndim=None):
    """Return x as a float ndarray; ValueError if it is empty in the batch or has the wrong rank.

    Float arrays are returned as they are (same object, same dtype), others become float64.
    """
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        if not (np.issubdtype(x.dtype, np.integer) or x.dtype == np.bool_):
            raise ValueError(f"{name} must hold numbers, got dtype {x.dtype}")
        x = x.astype(np.float64)
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {x.shape}")
    if min_ndim is not None and x.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimensions, got shape {x.shape}")
    if x.ndim >= 1 and x.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (shape {x.shape})")
    if x.size == 0:
        raise ValueError(f"{name} is empty (shape {x.shape})")
    return x


def check_shape(a, expected, name):
    """ValueError unless a.shape == expected."""
    if np.shape(a) != tuple(expected):
        raise ValueError(f"{name} must have shape {tuple(expected)}, got {np.shape(a)}")


def check_positive_int(value, name, fn):
    """ValueError unless value is a positive integer (a bool is not one)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{fn}: {name} must be a positive integer, got {value!r}")


def check_keys(param, required, name):
    """ValueError naming the first required key missing from the dict `param`."""
    if not isinstance(param, dict):
        raise ValueError(f"{name} must be a dict, got {type(param).__name__}")
    for key in required:
        if key not in param:
            raise ValueError(f"{name} is missing the required key {key!r}")


def check_flattens_to(x, w, D, fn):
    """ValueError unless x (N, d1, ..., dk) flattens to the D input features w expects."""
    if int(np.prod(x.shape[1:])) != D:
        raise ValueError(
            f"{fn}: x of shape {x.shape} flattens to (N, {int(np.prod(x.shape[1:]))}) "
            f"but w has shape {w.shape}, expecting D = {D} input features")


def check_mode(mode, name, allowed=("train", "test")):
    """ValueError unless mode is one of the allowed strings."""
    if mode not in allowed:
        raise ValueError(f"unknown {name} mode {mode!r}; expected one of {list(allowed)}")


def check_labels(y, n, num_classes, name="y"):
    """Return y as an int array of shape (n,) with values in [0, num_classes)."""
    y = np.asarray(y)
    if y.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},) to match the scores, got {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        if np.issubdtype(y.dtype, np.floating) and np.all(y == np.round(y)):
            y = y.astype(np.int64)
        else:
            raise ValueError(f"{name} must hold integer class labels, got dtype {y.dtype}")
    if y.min() < 0 or y.max() >= num_classes:
        raise ValueError(
            f"{name} holds labels outside [0, {num_classes}): min {y.min()}, max {y.max()}")
    return y


# ---------------------------------------------------------------------------------------------
# Affine (fully connected)
# ---------------------------------------------------------------------------------------------


def affine_forward(x, w, b):
    """out = x_flat @ w + b.

    Inputs: x (N, d1, ..., dk); w (D, M) with D = d1 * ... * dk; b (M,).
    Returns: out (N, M); cache (x, w).
    """
    x = check_array(x, "affine_forward: x", min_ndim=1)
    w = check_array(w, "affine_forward: w", ndim=2)
    D, M = w.shape
    N = x.shape[0]
    check_flattens_to(x, w, D, "affine_forward")
    check_shape(b, (M,), "affine_forward: b")
    out = x.reshape(N, D) @ w + b
    return out, (x, w)


def affine_backward(dout, cache):
    """Backward pass of affine_forward.

    Inputs: dout (N, M); cache (x, w) from affine_forward.
    Returns: dx (N, d1, ..., dk), dw (D, M), db (M,).
    """
    x, w = cache
    N = x.shape[0]
    check_shape(dout, (N, w.shape[1]), "affine_backward: dout")
    dx = (dout @ w.T).reshape(x.shape)
    dw = x.reshape(N, -1).T @ dout
    db = dout.sum(axis=0)
    return dx, dw, db


# ---------------------------------------------------------------------------------------------
# Elementwise activations: x and out have any shape (N, ...); backward returns dx only.
# ---------------------------------------------------------------------------------------------


@exercise("01_activations")
def relu_forward(x):
    """out = max(0, x), elementwise.

    Inputs: x, any shape (N, ...). Returns: out (same shape); cache, what your backward needs.
    """
    x = check_array(x, "relu_forward: x")
    return np.maximum(x, 0), x


@exercise("01_activations")
def relu_backward(dout, cache):
    """Backward pass of relu_forward.

    Inputs: dout (x's shape); cache from relu_forward. Returns: dx (x's shape).
    """
    # The gradient flows only where the input was positive (0 at the kink: the left slope).
    x = cache
    check_shape(dout, x.shape, "relu_backward: dout")
    return dout * (x > 0)


@exercise("01_activations")
def sigmoid_forward(x):
    """out = 1 / (1 + exp(-x)), elementwise, without overflow for large |x|.

    Inputs: x, any shape. Returns: out (same shape); cache, what your backward needs.
    """
    x = check_array(x, "sigmoid_forward: x")
    # exp(-|x|) never overflows; the two branches are the same function rewritten.
    z = np.exp(-np.abs(x))
    out = np.where(x >= 0, 1 / (1 + z), z / (1 + z))
    return out, out


@exercise("01_activations")
def sigmoid_backward(dout, cache):
    """Backward pass of sigmoid_forward.

    Inputs: dout (x's shape); cache from sigmoid_forward. Returns: dx (x's shape).
    """
    # d sigma / dx = sigma (1 - sigma): the output alone gives the local gradient.
    out = cache
    check_shape(dout, out.shape, "sigmoid_backward: dout")
    return dout * out * (1 - out)


@exercise("01_activations")
def tanh_forward(x):
    """out = tanh(x), elementwise.

    Inputs: x, any shape. Returns: out (same shape); cache, what your backward needs.
    """
    x = check_array(x, "tanh_forward: x")
    out = np.tanh(x)
    return out, out


@exercise("01_activations")
def tanh_backward(dout, cache):
    """Backward pass of tanh_forward.

    Inputs: dout (x's shape); cache from tanh_forward. Returns: dx (x's shape).
    """
    # d tanh / dx = 1 - tanh^2, from the output alone.
    out = cache
    check_shape(dout, out.shape, "tanh_backward: dout")
    return dout * (1 - out * out)


@exercise("01_activations")
def leaky_relu_forward(x, alpha=0.01):
    """out = x where x > 0, alpha * x elsewhere, so that no unit is ever fully dead.

    Inputs: x, any shape; alpha, the slope for x <= 0.
    Returns: out (same shape); cache, what your backward needs.
    """
    x = check_array(x, "leaky_relu_forward: x")
    out = np.where(x > 0, x, alpha * x)
    return out, (x, alpha)


@exercise("01_activations")
def leaky_relu_backward(dout, cache):
    """Backward pass of leaky_relu_forward.

    Inputs: dout (x's shape); cache from leaky_relu_forward. Returns: dx (x's shape).
    """
    # Slope 1 where x > 0, alpha elsewhere: the alpha of the forward call, kept in the cache.
    x, alpha = cache
    check_shape(dout, x.shape, "leaky_relu_backward: dout")
    return np.where(x > 0, dout, alpha * dout)


@exercise("01_activations")
def elu_forward(x, alpha=1.0):
    """out = x where x > 0, alpha * (exp(x) - 1) elsewhere.

    Inputs: x, any shape; alpha, the negative saturation value.
    Returns: out (same shape); cache, what your backward needs.
    """
    x = check_array(x, "elu_forward: x")
    # expm1 of min(x, 0): accurate near 0 and no overflow warning from the unused branch.
    out = np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))
    return out, (x, out, alpha)


@exercise("01_activations")
def elu_backward(dout, cache):
    """Backward pass of elu_forward.

    Inputs: dout (x's shape); cache from elu_forward. Returns: dx (x's shape).
    """
    # For x <= 0 the slope is alpha * exp(x) = out + alpha: no new exponential.
    x, out, alpha = cache
    check_shape(dout, x.shape, "elu_backward: dout")
    return np.where(x > 0, dout, dout * (out + alpha))


@exercise("01_activations")
def maxout_forward(x, w, b):
    """Maxout: K affine maps of x, and the elementwise max over them.

    out[n, m] = max_k (x_flat[n] @ w[k, :, m] + b[k, m])

    Inputs: x (N, d1, ..., dk); w (K, D, M); b (K, M).
    Returns: out (N, M); cache (x, w, idx) with idx (N, M) the winning piece.
    """
    x = check_array(x, "maxout_forward: x", min_ndim=1)
    w = check_array(w, "maxout_forward: w", ndim=3)
    K, D, M = w.shape
    N = x.shape[0]
    check_flattens_to(x, w, D, "maxout_forward")
    check_shape(b, (K, M), "maxout_forward: b")
    scores = np.einsum("nd,kdm->nkm", x.reshape(N, D), w) + b  # (N, K, M)
    idx = np.argmax(scores, axis=1)  # (N, M)
    out = np.take_along_axis(scores, idx[:, None, :], axis=1)[:, 0, :]
    return out, (x, w, idx)


@exercise("01_activations")
def maxout_backward(dout, cache):
    """Backward pass of maxout_forward: each output routes its gradient to its winning piece.

    Inputs: dout (N, M); cache (x, w, idx).
    Returns: dx (N, d1, ..., dk), dw (K, D, M), db (K, M).
    """
    x, w, idx = cache
    K, D, M = w.shape
    N = x.shape[0]
    check_shape(dout, (N, M), "maxout_backward: dout")
    dscores = np.zeros((N, K, M), dtype=np.result_type(dout, w))
    np.put_along_axis(dscores, idx[:, None, :], dout[:, None, :], axis=1)
    dx = np.einsum("nkm,kdm->nd", dscores, w).reshape(x.shape)
    dw = np.einsum("nd,nkm->kdm", x.reshape(N, D), dscores)
    db = dscores.sum(axis=0)
    return dx, dw, db


# ---------------------------------------------------------------------------------------------
# Dropout
# ---------------------------------------------------------------------------------------------


@exercise("05_optimisers")
def dropout_forward(x, dropout_param):
    """Inverted dropout.

    In 'train' mode each unit is kept with probability p and the kept ones are scaled by 1/p,
    so the expected activation equals the test-time one and test mode is the identity.

    Inputs:
    - x: any shape (N, ...).
    - dropout_param: dict with keys
      - 'p': probability of KEEPING a unit, 0 < p <= 1;
      - 'mode': 'train' or 'test';
      - 'seed' (optional): if given, the mask is drawn from a Generator seeded with it, so the
        same call gives the same mask (gradient checks need that).
    Returns: out (x's shape); cache (a copy of dropout_param, mask), mask None in test mode.
    """
    check_keys(dropout_param, ("p", "mode"), "dropout_param")
    p, mode = dropout_param["p"], dropout_param["mode"]
    check_mode(mode, "dropout")
    if not 0 < p <= 1:
        raise ValueError(f"dropout_param['p'] is the keep probability and must be in (0, 1], "
                         f"got {p}")
    x = check_array(x, "dropout_forward: x")
    if mode == "train":
        rng = np.random.default_rng(dropout_param.get("seed"))
        mask = (rng.random(x.shape) < p).astype(x.dtype) / x.dtype.type(p)
        out = x * mask
    else:
        mask = None
        out = x
    # A copy: a model may flip the dict's mode before this cache's backward pass runs.
    cache = (dict(dropout_param), mask)
    return out, cache


@exercise("05_optimisers")
def dropout_backward(dout, cache):
    """Backward pass of dropout_forward.

    Inputs: dout (x's shape); cache (dropout_param, mask). Returns: dx.
    """
    _, mask = cache
    if mask is not None:
        check_shape(dout, mask.shape, "dropout_backward: dout")
        return dout * mask
    return dout


# ---------------------------------------------------------------------------------------------
# Batch normalisation and layer normalisation
# ---------------------------------------------------------------------------------------------


def check_norm_inputs(x, gamma, beta, fn):
    """x (N, D) as a float array; ValueError unless gamma and beta have shape (D,)."""
    x = check_array(x, f"{fn}: x", ndim=2)
    D = x.shape[1]
    check_shape(gamma, (D,), f"{fn}: gamma")
    check_shape(beta, (D,), f"{fn}: beta")
    return x


@exercise("04_batchnorm")
def batchnorm_forward(x, gamma, beta, bn_param):
    """Batch normalisation over the batch, per feature.

    Train mode: normalise with the batch mean and (biased) variance, then scale by gamma and
    shift by beta; update the running averages
        running_mean = momentum * running_mean + (1 - momentum) * batch mean
    (the same for running_var) in place in bn_param. Test mode: normalise with the running
    averages instead.

    Inputs:
    - x (N, D); gamma (D,); beta (D,).
    - bn_param: dict with 'mode' ('train' | 'test') and optional 'eps' (1e-5),
      'momentum' (0.9), 'running_mean' (D,), 'running_var' (D,) (zeros if absent).
    Returns: out (N, D); cache for batchnorm_backward (None in test mode).
    """
    check_keys(bn_param, ("mode",), "bn_param")
    mode = bn_param["mode"]
    check_mode(mode, "batchnorm")
    x = check_norm_inputs(x, gamma, beta, "batchnorm_forward")
    N, D = x.shape
    eps = bn_param.get("eps", 1e-5)
    momentum = bn_param.get("momentum", 0.9)
    running_mean = bn_param.setdefault("running_mean", np.zeros(D, dtype=x.dtype))
    running_var = bn_param.setdefault("running_var", np.zeros(D, dtype=x.dtype))
    check_shape(running_mean, (D,), "bn_param['running_mean']")
    check_shape(running_var, (D,), "bn_param['running_var']")

    if mode == "train":
        mu = x.mean(axis=0)
        xc = x - mu
        var = (xc * xc).mean(axis=0)
        inv_std = 1 / np.sqrt(var + eps)
        x_hat = xc * inv_std
        out = gamma * x_hat + beta
        # In place, so that whoever holds these arrays (a model, a checkpoint) sees the update.
        running_mean *= momentum
        running_mean += (1 - momentum) * mu
        running_var *= momentum
        running_var += (1 - momentum) * var
        cache = (x_hat, xc, inv_std, gamma)
    else:
        out = gamma * (x - running_mean) / np.sqrt(running_var + eps) + beta
        out = out.astype(x.dtype, copy=False)
        cache = None
    return out, cache


@exercise("04_batchnorm")
def batchnorm_backward(dout, cache):
    """Backward pass of batchnorm_forward (train mode), step by step through the graph.

    The forward graph: mu = mean(x); xc = x - mu; var = mean(xc^2); inv_std = (var + eps)^-1/2;
    x_hat = xc * inv_std; out = gamma * x_hat + beta. Walk it in reverse.

    Inputs: dout (N, D); cache from batchnorm_forward.
    Returns: dx (N, D), dgamma (D,), dbeta (D,).
    """
    if cache is None:
        raise ValueError("batchnorm_backward needs a cache from a 'train' mode forward pass")
    x_hat, xc, inv_std, gamma = cache
    N, D = x_hat.shape
    check_shape(dout, (N, D), "batchnorm_backward: dout")
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)
    dx_hat = dout * gamma
    dinv_std = (dx_hat * xc).sum(axis=0)
    dvar = dinv_std * -0.5 * inv_std**3
    dxc = dx_hat * inv_std + dvar * 2 * xc / N  # xc feeds both x_hat and var
    dmu = -dxc.sum(axis=0)
    dx = dxc + dmu / N
    return dx, dgamma, dbeta


@exercise("04_batchnorm")
def batchnorm_backward_alt(dout, cache):
    """Backward pass of batchnorm_forward in closed form, as derived in section 3.

    dx is one expression of dout, x_hat, gamma and inv_std with two sums over the batch: no
    walk through the graph, and no call to batchnorm_backward.

    Inputs: dout (N, D); cache from batchnorm_forward.
    Returns: dx (N, D), dgamma (D,), dbeta (D,).
    """
    if cache is None:
        raise ValueError("batchnorm_backward_alt needs a cache from a 'train' mode forward pass")
    x_hat, _, inv_std, gamma = cache
    N, D = x_hat.shape
    check_shape(dout, (N, D), "batchnorm_backward_alt: dout")
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)
    dx = (gamma * inv_std / N) * (N * dout - dbeta - x_hat * dgamma)
    return dx, dgamma, dbeta


@exercise("04_batchnorm")
def layernorm_forward(x, gamma, beta, ln_param):
    """Layer normalisation: normalise each example over its features.

    Unlike batchnorm it does not depend on the rest of the batch, so train and test behave
    the same and there are no running averages.

    Inputs: x (N, D); gamma (D,); beta (D,); ln_param: dict with optional 'eps' (1e-5).
    Returns: out (N, D); cache for layernorm_backward.
    """
    check_keys(ln_param, (), "ln_param")
    x = check_norm_inputs(x, gamma, beta, "layernorm_forward")
    eps = ln_param.get("eps", 1e-5)
    mu = x.mean(axis=1, keepdims=True)
    xc = x - mu
    var = (xc * xc).mean(axis=1, keepdims=True)
    inv_std = 1 / np.sqrt(var + eps)
    x_hat = xc * inv_std
    out = gamma * x_hat + beta
    cache = (x_hat, inv_std, gamma)
    return out, cache


@exercise("04_batchnorm")
def layernorm_backward(dout, cache):
    """Backward pass of layernorm_forward: batchnorm's closed form with the axes swapped.

    Inputs: dout (N, D); cache from layernorm_forward.
    Returns: dx (N, D), dgamma (D,), dbeta (D,).
    """
    x_hat, inv_std, gamma = cache
    N, D = x_hat.shape
    check_shape(dout, (N, D), "layernorm_backward: dout")
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)
    dx_hat = dout * gamma
    dx = (inv_std / D) * (D * dx_hat - dx_hat.sum(axis=1, keepdims=True)
                          - x_hat * (dx_hat * x_hat).sum(axis=1, keepdims=True))
    return dx, dgamma, dbeta


# ---------------------------------------------------------------------------------------------
# Losses: scores x (N, C), labels y (N,) in [0, C); both return the mean loss and dx (N, C).
# ---------------------------------------------------------------------------------------------


def check_loss_inputs(x, y, fn):
    """Scores x (N, C) as a float array and labels y (N,) as ints in [0, C); ValueError if not."""
    x = check_array(x, f"{fn}: x", ndim=2)
    y = check_labels(y, x.shape[0], x.shape[1], name=f"{fn}: y")
    return x, y


@exercise("00_backprop")
def softmax_loss(x, y):
    """Mean cross-entropy of the softmax of the scores, and its gradient.

    Scores are shifted by their row maximum first: the softmax is unchanged, and exp can no
    longer overflow (the largest exponent is 0).

    Inputs: x (N, C) scores; y (N,) labels in [0, C).
    Returns: loss (scalar), dx (N, C).
    """
    x, y = check_loss_inputs(x, y, "softmax_loss")
    N = x.shape[0]
    shifted = x - x.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_probs[np.arange(N), y].mean()
    dx = np.exp(log_probs)
    dx[np.arange(N), y] -= 1
    dx /= N
    return loss, dx


@exercise("00_backprop")
def svm_loss(x, y):
    """Mean multiclass SVM (hinge) loss with margin 1, and its gradient.

    L_i = sum over j != y_i of max(0, x_j - x_{y_i} + 1). Scores are shifted by their row
    maximum first, like softmax's; margins are differences, so the loss is unchanged.

    Inputs: x (N, C) scores; y (N,) labels in [0, C).
    Returns: loss (scalar), dx (N, C).
    """
    x, y = check_loss_inputs(x, y, "svm_loss")
    N = x.shape[0]
    shifted = x - x.max(axis=1, keepdims=True)
    correct = shifted[np.arange(N), y][:, None]
    margins = np.maximum(0, shifted - correct + 1)
    margins[np.arange(N), y] = 0
    loss = margins.sum() / N
    positive = (margins > 0).astype(x.dtype)
    dx = positive
    dx[np.arange(N), y] -= positive.sum(axis=1)
    dx /= N
    return loss, dx
