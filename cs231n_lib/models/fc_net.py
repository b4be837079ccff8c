"""A fully connected network of any depth, built from the layers in cs231n_lib.layers.

Architecture, for L = len(hidden_dims) + 1 layers:

    {affine - [batchnorm | layernorm] - activation - [dropout]} x (L - 1) - affine - softmax

Parameters live in `self.params`: W1, b1, ..., WL, bL for the affine layers and, with a
normalisation, gamma1, beta1, ..., gamma(L-1), beta(L-1). The loss adds 0.5 * reg * sum(W^2)
over the weights only: biases and the normalisation's gamma, beta are not regularised.
"""

import numpy as np

from cs231n_lib import init as initialisers
from cs231n_lib import layers
from cs231n_lib.layers import (batchnorm_backward_alt, batchnorm_forward, layernorm_backward,
                               layernorm_forward)
from cs231n_lib.registry import exercise

# Names, not functions: each forward pass looks the pair up in `layers` at call time, so that a
# student's own activation handed to the library with `cs231n_lib.use` is the one the net runs.
ACTIVATIONS = {
    name: (f"{name}_forward", f"{name}_backward")
    for name in layers.ACTIVATIONS
}
NORMALIZATIONS = (None, "batchnorm", "layernorm")
INITS = ("he", "xavier")


class FullyConnectedNet:
    """A fully connected net with softmax loss, any number of hidden layers.

    Arguments:
    - hidden_dims: list of hidden layer sizes (may be empty: a linear softmax classifier).
    - input_dim: D, the size of one flattened input.
    - num_classes: C.
    - activation: 'relu', 'sigmoid', 'tanh', 'leaky_relu' or 'elu'.
    - normalization: None, 'batchnorm' or 'layernorm' (after each hidden affine layer).
    - dropout_keep_ratio: probability of keeping a hidden unit; 1 means no dropout.
    - reg: L2 strength.
    - init: 'he' or 'xavier' (cs231n_lib.init, derived in notebook 03), or a float, the std of
      the weights.
    - dtype: numpy float type of the parameters and computations (float64 for gradient checks).
    - seed: makes the net deterministic: the weights (and dropout masks) are drawn from
      `self.rng`, a Generator seeded with it.
    - fix_dropout_masks: True draws every training-mode dropout mask from the same seed, so
      repeated loss calls see the same function: gradient checks need that, training does
      not want it (the net would always drop the same units). False draws fresh masks from
      `self.rng` at each call (deterministic under seed all the same). None, the default,
      means True when a seed is given, as CS231n's FullyConnectedNet does: pass False to
      train with dropout and a seed.

    Attributes: params (dict of arrays), bn_params (list of dicts, one per hidden layer, holding
    the mode and for batchnorm the running averages), dropout_param, rng.
    """

    def __init__(self, hidden_dims, input_dim=3 * 32 * 32, num_classes=10, activation="relu",
                 normalization=None, dropout_keep_ratio=1, reg=0.0, init="he",
                 dtype=np.float64, seed=None, fix_dropout_masks=None):
        hidden_dims = list(hidden_dims)
        for name, value in [("input_dim", input_dim), ("num_classes", num_classes)] + [
                (f"hidden_dims[{i}]", h) for i, h in enumerate(hidden_dims)]:
            layers.check_positive_int(value, name, "FullyConnectedNet")
        if activation not in ACTIVATIONS:
            raise ValueError(f"FullyConnectedNet: unknown activation {activation!r}; "
                             f"expected one of {list(ACTIVATIONS)}")
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"FullyConnectedNet: unknown normalization {normalization!r}; "
                             f"expected one of {list(NORMALIZATIONS)}")
        if not 0 < dropout_keep_ratio <= 1:
            raise ValueError(f"FullyConnectedNet: dropout_keep_ratio must be in (0, 1], "
                             f"got {dropout_keep_ratio}")
        if isinstance(init, str):
            if init not in INITS:
                raise ValueError(f"FullyConnectedNet: unknown init {init!r}; expected one of "
                                 f"{list(INITS)} or a float weight scale")
        elif not isinstance(init, (int, float, np.floating)) or isinstance(init, bool) or init < 0:
            raise ValueError(f"FullyConnectedNet: init must be 'he', 'xavier' or a "
                             f"non-negative float weight scale, got {init!r}")
        if reg < 0:
            raise ValueError(f"FullyConnectedNet: reg must be non-negative, got {reg}")

        self.hidden_dims = hidden_dims
        self.input_dim = int(input_dim)
        self.num_classes = int(num_classes)
        self.activation = activation
        self.normalization = normalization
        self.use_dropout = dropout_keep_ratio != 1
        self.reg = reg
        self.num_layers = len(hidden_dims) + 1
        self.dtype = dtype
        self.seed = seed
        self.rng = np.random.default_rng(seed)

        self.params = {}
        dims = [self.input_dim] + hidden_dims + [self.num_classes]
        for i in range(self.num_layers):
            fan_in, fan_out = dims[i], dims[i + 1]
            if init == "he":
                W = initialisers.he(fan_in, fan_out, rng=self.rng)
            elif init == "xavier":
                W = initialisers.xavier(fan_in, fan_out, rng=self.rng)
            else:
                W = initialisers.small_random(fan_in, fan_out, std=init, rng=self.rng)
            self.params[f"W{i + 1}"] = W
            self.params[f"b{i + 1}"] = np.zeros(fan_out)
            if normalization is not None and i < self.num_layers - 1:
                self.params[f"gamma{i + 1}"] = np.ones(fan_out)
                self.params[f"beta{i + 1}"] = np.zeros(fan_out)
        for k, v in self.params.items():
            self.params[k] = v.astype(dtype)

        self.dropout_param = {}
        if self.use_dropout:
            self.dropout_param = {"mode": "train", "p": dropout_keep_ratio}
            if fix_dropout_masks is None:
                fix_dropout_masks = seed is not None
            if fix_dropout_masks:
                self.dropout_param["seed"] = (seed if seed is not None
                                              else int(self.rng.integers(2**63)))
        self.bn_params = [{"mode": "train"} for _ in range(self.num_layers - 1)]

    def loss(self, X, y=None):
        """Scores, or loss and gradients.

        Inputs:
        - X: (N, d1, ..., dk) with d1 * ... * dk = input_dim.
        - y: (N,) integer labels in [0, num_classes), or None.

        Returns: scores (N, C) if y is None (test mode: dropout off, batchnorm uses its running
        averages); otherwise (loss, grads) in train mode, grads keyed like self.params.
        """
        # Looked up at call time, so that a student's fc_net_loss handed to the library with
        # `cs231n_lib.use` is the one the net, the Solver and the widgets run.
        return fc_net_loss(self, X, y)

    def _dropout_param_for(self, layer, mode):
        """The dropout_param for one hidden layer's dropout in this forward pass."""
        if mode == "test" or "seed" in self.dropout_param:
            # A fixed seed gives fixed masks; layers get different ones so they are not
            # all alike.
            param = dict(self.dropout_param)
            if "seed" in param:
                param["seed"] = [int(param["seed"]), layer]
            return param
        return dict(self.dropout_param, seed=int(self.rng.integers(2**63)))


@exercise("04_batchnorm")
def fc_net_loss(model, X, y=None):
    """Scores, or loss and gradients, of the FullyConnectedNet `model` on X.

    For L = model.num_layers the net is
        {affine - [batchnorm | layernorm] - activation - [dropout]} x (L - 1) - affine - softmax
    with its parameters in model.params: W1, b1, ..., WL, bL and, when model.normalization is
    'batchnorm' or 'layernorm', gamma1, beta1, ..., gamma(L-1), beta(L-1). Hidden layer i uses
    model.bn_params[i - 1] as its bn_param (or ln_param) and, when model.use_dropout, the
    dropout_param model._dropout_param_for(i, mode). The loss adds
    0.5 * model.reg * sum(W^2) over the weights only (not the biases, gammas or betas).

    Inputs:
    - model: a FullyConnectedNet.
    - X: (N, d1, ..., dk) with d1 * ... * dk = model.input_dim.
    - y: (N,) integer labels in [0, num_classes), or None.

    Returns: scores (N, C) if y is None (test mode: dropout off, batchnorm uses its running
    averages); otherwise (loss, grads) in train mode, grads keyed like model.params.
    """
    X = layers.check_array(X, "FullyConnectedNet.loss: X", min_ndim=2)
    if int(np.prod(X.shape[1:])) != model.input_dim:
        raise ValueError(f"FullyConnectedNet.loss: X has shape {X.shape}, which flattens "
                         f"to {int(np.prod(X.shape[1:]))} features, not input_dim = "
                         f"{model.input_dim}")
    X = X.astype(model.dtype, copy=False)
    mode = "test" if y is None else "train"
    if model.use_dropout:
        model.dropout_param["mode"] = mode
    for bn_param in model.bn_params:
        bn_param["mode"] = mode
    # The layers of earlier notebooks come from the library, looked up at call time; the
    # normalisations are this notebook's own functions.
    act_forward = getattr(layers, f"{model.activation}_forward")
    act_backward = getattr(layers, f"{model.activation}_backward")
    params, L = model.params, model.num_layers
    # Forward: each hidden layer keeps the caches of its steps for the backward pass.
    caches = []
    h = X
    for i in range(1, L):
        h, cache_affine = layers.affine_forward(h, params[f"W{i}"], params[f"b{i}"])
        cache_norm = None
        if model.normalization == "batchnorm":
            h, cache_norm = batchnorm_forward(h, params[f"gamma{i}"], params[f"beta{i}"],
                                              model.bn_params[i - 1])
        elif model.normalization == "layernorm":
            h, cache_norm = layernorm_forward(h, params[f"gamma{i}"], params[f"beta{i}"],
                                              model.bn_params[i - 1])
        h, cache_act = act_forward(h)
        cache_drop = None
        if model.use_dropout:
            h, cache_drop = layers.dropout_forward(h, model._dropout_param_for(i, mode))
        caches.append((cache_affine, cache_norm, cache_act, cache_drop))
    scores, cache_scores = layers.affine_forward(h, params[f"W{L}"], params[f"b{L}"])
    if y is None:
        return scores
    # Loss: softmax on the scores plus the L2 penalty on the weights.
    loss, dscores = layers.softmax_loss(scores, y)
    loss += 0.5 * model.reg * sum(np.sum(params[f"W{i}"] ** 2) for i in range(1, L + 1))
    # Backward: the same steps in reverse order, hidden layer L - 1 down to 1.
    grads = {}
    dh, grads[f"W{L}"], grads[f"b{L}"] = layers.affine_backward(dscores, cache_scores)
    for i in range(L - 1, 0, -1):
        cache_affine, cache_norm, cache_act, cache_drop = caches[i - 1]
        if model.use_dropout:
            dh = layers.dropout_backward(dh, cache_drop)
        dh = act_backward(dh, cache_act)
        if model.normalization == "batchnorm":
            dh, grads[f"gamma{i}"], grads[f"beta{i}"] = batchnorm_backward_alt(dh, cache_norm)
        elif model.normalization == "layernorm":
            dh, grads[f"gamma{i}"], grads[f"beta{i}"] = layernorm_backward(dh, cache_norm)
        dh, grads[f"W{i}"], grads[f"b{i}"] = layers.affine_backward(dh, cache_affine)
    for i in range(1, L + 1):
        grads[f"W{i}"] = grads[f"W{i}"] + model.reg * params[f"W{i}"]
    return loss, grads
