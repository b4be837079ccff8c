"""ThreeLayerConvNet: shapes, initial loss, gradients, and memorising a small set."""

import numpy as np
import pytest

from cs231n_lib.gradcheck import eval_numerical_gradient, rel_error
from cs231n_lib.models import ThreeLayerConvNet
from cs231n_lib.optim import adam


def small_net(**kw):
    args = dict(input_dim=(3, 8, 8), num_filters=4, filter_size=3, hidden_dim=7,
                num_classes=5, dtype=np.float64, seed=0)
    return ThreeLayerConvNet(**(args | kw))


def test_param_shapes_and_dtype():
    net = ThreeLayerConvNet(dtype=np.float32)
    shapes = {k: v.shape for k, v in net.params.items()}
    assert shapes == {"W1": (32, 3, 7, 7), "b1": (32,), "W2": (32 * 16 * 16, 100),
                      "b2": (100,), "W3": (100, 10), "b3": (10,)}
    assert all(v.dtype == np.float32 for v in net.params.values())
    scores = net.loss(np.zeros((2, 3, 32, 32)))
    assert scores.shape == (2, 10) and scores.dtype == np.float32


def test_grads_keyed_like_params_and_float32(rng):
    net = small_net(dtype=np.float32)
    loss, grads = net.loss(rng.standard_normal((3, 3, 8, 8)), np.array([0, 1, 4]))
    assert grads.keys() == net.params.keys()
    for k, g in grads.items():
        assert g.shape == net.params[k].shape and g.dtype == np.float32


def test_initial_loss_is_log_num_classes(rng):
    net = ThreeLayerConvNet(input_dim=(3, 16, 16), num_filters=8, hidden_dim=20,
                            num_classes=10, weight_scale=1e-3, seed=1, dtype=np.float64)
    X = rng.standard_normal((20, 3, 16, 16))
    loss, _ = net.loss(X, rng.integers(10, size=20))
    assert abs(loss - np.log(10)) < 1e-3


@pytest.mark.parametrize("reg", [0.0, 0.7])
def test_gradients_numerically(rng, reg):
    net = small_net(weight_scale=0.2, reg=reg)
    X = rng.standard_normal((3, 3, 8, 8))
    y = np.array([1, 0, 4])
    _, grads = net.loss(X, y)
    for name, param in net.params.items():
        num = eval_numerical_gradient(lambda _: net.loss(X, y)[0], param)
        assert rel_error(grads[name], num) < 1e-5, (name, rel_error(grads[name], num))


def test_overfits_fifty_examples(rng):
    net = small_net(num_filters=8, hidden_dim=50, num_classes=10, weight_scale=1e-2)
    X = rng.standard_normal((50, 3, 8, 8))
    y = rng.integers(10, size=50)
    configs = {k: {"learning_rate": 1e-2} for k in net.params}
    for _ in range(150):
        _, grads = net.loss(X, y)
        for k in net.params:
            net.params[k], configs[k] = adam(net.params[k], grads[k], configs[k])
    accuracy = np.mean(np.argmax(net.loss(X), axis=1) == y)
    assert accuracy == 1.0


@pytest.mark.parametrize("kwargs, message", [
    (dict(filter_size=4), r"filter_size must be odd"),
    (dict(input_dim=(3, 7, 8)), r"even image size, got 7x8"),
    (dict(reg=-1.0), r"reg must be non-negative"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        small_net(**kwargs)
