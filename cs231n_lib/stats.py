"""Per-layer statistics of a deep, bias-free net on random data (notebook 03, init explorer).

The experiment of the initialisation lecture: push unit-Gaussian data through L layers
h_l = act(h_{l-1} @ W_l) and watch the spread of each layer's activations. A good scheme keeps
it roughly constant with depth; a bad one makes it collapse to zero or saturate. The backward
pass shows the same story for the weight gradients.
"""

import numpy as np

from cs231n_lib import init as _init
from cs231n_lib.registry import exercise

# Each activation as (f(a), f'(a) written in terms of the output h), so the backward pass needs
# only the cached outputs.
ACTIVATIONS = {
    "tanh": (np.tanh, lambda h: 1 - h * h),
    "relu": (lambda a: np.maximum(a, 0), lambda h: (h > 0).astype(h.dtype)),
    "sigmoid": (lambda a: 0.5 * (1 + np.tanh(a / 2)), lambda h: h * (1 - h)),
    "linear": (lambda a: a, lambda h: np.ones_like(h)),
}

SCHEMES = ("xavier", "he", "small", "large")


def get_activation(name, fn):
    """The pair (f, f' in terms of the output) of activation `name`; ValueError if unknown."""
    if name not in ACTIVATIONS:
        raise ValueError(f"{fn}: unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


@exercise("03_initialisation")
def forward_stats(x, weights, activation="tanh"):
    """Forward pass of a bias-free deep net, with the mean and std of every layer's output.

    Inputs:
    - x: (N, D) input batch.
    - weights: list of L matrices, W_1 (D, M_1), W_l (M_{l-1}, M_l).
    - activation: 'tanh', 'relu', 'sigmoid' or 'linear'.

    Returns (means, stds, hs): means and stds (L,), over all N * M_l activations of each layer;
    hs the list of the L activation arrays h_l (N, M_l).
    """
    act, _ = get_activation(activation, "forward_stats")
    h = np.asarray(x, dtype=np.float64)
    if h.ndim != 2:
        raise ValueError(f"forward_stats: x must have shape (N, D), got {h.shape}")
    hs = []
    for l, w in enumerate(weights, 1):
        if w.shape[0] != h.shape[1]:
            raise ValueError(
                f"forward_stats: layer {l} gets inputs of width {h.shape[1]} "
                f"but its weights have shape {w.shape}")
        h = act(h @ w)
        hs.append(h)
    means = np.array([h.mean() for h in hs])
    stds = np.array([h.std() for h in hs])
    return means, stds, hs


def weight_grad_norms(x, weights, hs, dout, activation="tanh"):
    """Backward pass of the net of forward_stats: the Frobenius norm of each dL/dW_l.

    Inputs: x (N, D); weights and hs as in forward_stats; dout (N, M_L), the upstream gradient
    of the last layer's output; activation as in forward_stats. Returns: norms (L,).
    """
    _, local = get_activation(activation, "weight_grad_norms")
    inputs = [np.asarray(x, dtype=np.float64)] + list(hs[:-1])
    norms = np.zeros(len(weights))
    dh = dout
    for l in reversed(range(len(weights))):
        da = dh * local(hs[l])
        norms[l] = np.linalg.norm(inputs[l].T @ da)
        dh = da @ weights[l].T
    return norms


def make_weights(depth, width, scheme, input_dim=None, std=None, rng=None):
    """Weights of a depth-layer, width-unit net: scheme 'xavier', 'he', 'small' (std 0.01),
    'large' (std 1), or 'std' with the given std. Returns a list of depth arrays."""
    rng = np.random.default_rng(rng)
    dims = [input_dim or width] + [width] * depth
    if scheme == "xavier":
        make = lambda i, o: _init.xavier(i, o, rng=rng)
    elif scheme == "he":
        make = lambda i, o: _init.he(i, o, rng=rng)
    elif scheme in ("small", "large", "std"):
        s = {"small": 0.01, "large": 1.0}.get(scheme, std)
        if s is None or s <= 0:
            raise ValueError(f"make_weights: scheme 'std' needs a positive std, got {std!r}")
        make = lambda i, o: _init.small_random(i, o, std=s, rng=rng)
    else:
        raise ValueError(f"make_weights: unknown scheme {scheme!r}; choose one of {SCHEMES + ('std',)}")
    return [make(i, o) for i, o in zip(dims[:-1], dims[1:])]


def deep_net_experiment(depth=10, width=500, activation="tanh", scheme="xavier", std=None,
                        num_examples=500, seed=0):
    """The lecture's experiment in one call: random data through a fresh deep net.

    Returns a dict with 'means', 'stds', 'grad_norms' (each (depth,)) and 'hs' (the activations).
    """
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((num_examples, width))
    weights = make_weights(depth, width, scheme, std=std, rng=rng)
    means, stds, hs = forward_stats(x, weights, activation)
    dout = rng.standard_normal(hs[-1].shape)
    norms = weight_grad_norms(x, weights, hs, dout, activation)
    return {"means": means, "stds": stds, "grad_norms": norms, "hs": hs}
