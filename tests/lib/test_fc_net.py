"""FullyConnectedNet: parameter layout, loss at init, gradient checks of every parameter with
each normalisation and dropout, determinism under seed, overfitting a small set, bad input."""

import numpy as np
import pytest

from cs231n_lib.gradcheck import eval_numerical_gradient, rel_error
from cs231n_lib.models import FullyConnectedNet
from cs231n_lib.models.fc_net import ACTIVATIONS

N, D, C = 5, 7, 4


def small_problem(seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((N, D)), rng.integers(C, size=N)


def test_params_are_named_and_shaped():
    model = FullyConnectedNet([6, 5], input_dim=D, num_classes=C, normalization="batchnorm")
    shapes = {k: v.shape for k, v in model.params.items()}
    assert shapes == {"W1": (7, 6), "b1": (6,), "gamma1": (6,), "beta1": (6,),
                      "W2": (6, 5), "b2": (5,), "gamma2": (5,), "beta2": (5,),
                      "W3": (5, 4), "b3": (4,)}
    np.testing.assert_array_equal(model.params["gamma1"], 1)
    np.testing.assert_array_equal(model.params["b2"], 0)


@pytest.mark.parametrize("init, std", [("he", np.sqrt(2 / 400)), ("xavier", np.sqrt(1 / 400)),
                                       (0.05, 0.05)])
def test_init_schemes_set_the_weight_scale(init, std):
    model = FullyConnectedNet([300], input_dim=400, num_classes=10, init=init, seed=0)
    assert model.params["W1"].std() == pytest.approx(std, rel=0.03)


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_initial_loss_near_ln_c(activation):
    # Small weights: scores near zero, softmax near uniform, loss near ln(C).
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((100, 20)), rng.integers(10, size=100)
    model = FullyConnectedNet([30, 30], input_dim=20, num_classes=10, activation=activation,
                              init=1e-3, seed=0)
    loss, _ = model.loss(X, y)
    assert loss == pytest.approx(np.log(10), rel=1e-3)


def test_regularisation_adds_half_reg_sum_of_squared_weights_only():
    X, y = small_problem()
    model = FullyConnectedNet([6], input_dim=D, num_classes=C, normalization="layernorm",
                              seed=0)
    for k in model.params:  # nonzero biases and gammas, to show they are not penalised
        model.params[k] = model.params[k] + 0.5
    loss0, grads0 = model.loss(X, y)
    model.reg = 0.3
    loss1, grads1 = model.loss(X, y)
    W = [model.params["W1"], model.params["W2"]]
    assert loss1 - loss0 == pytest.approx(0.15 * sum(np.sum(w * w) for w in W))
    for k in model.params:
        extra = 0.3 * model.params[k] if k.startswith("W") else 0
        np.testing.assert_allclose(grads1[k] - grads0[k], extra, atol=1e-12)


CONFIGS = [
    dict(hidden_dims=[6], normalization=None),
    dict(hidden_dims=[6, 5], normalization=None, activation="tanh", reg=0.7),
    dict(hidden_dims=[6, 5], normalization="batchnorm", reg=0.1),
    dict(hidden_dims=[6, 5], normalization="layernorm", activation="elu"),
    dict(hidden_dims=[6, 5], dropout_keep_ratio=0.6, activation="sigmoid"),
    dict(hidden_dims=[6, 5], normalization="batchnorm", dropout_keep_ratio=0.7,
         activation="leaky_relu", reg=0.2),
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "-".join(
    str(c.get(k)) for k in ("normalization", "dropout_keep_ratio", "activation")))
def test_gradient_check_all_params(config):
    X, y = small_problem()
    model = FullyConnectedNet(input_dim=D, num_classes=C, seed=123, init=0.5, **config)
    loss, grads = model.loss(X, y)
    assert set(grads) == set(model.params)
    for name in sorted(model.params):
        f = lambda _: model.loss(X, y)[0]
        num = eval_numerical_gradient(f, model.params[name])
        # 1e-6, not 1e-7: through a composite net some gradient elements are ~1e-4, where the
        # centred difference's ~1e-11 absolute error alone is a 1e-7 relative one; and
        # ReLU-family kinks may sit within h of a unit's input.
        assert rel_error(num, grads[name]) < 1e-6, name


def test_seed_makes_the_net_deterministic():
    X, y = small_problem()
    kw = dict(hidden_dims=[6, 5], input_dim=D, num_classes=C, dropout_keep_ratio=0.5)
    a, b = FullyConnectedNet(seed=4, **kw), FullyConnectedNet(seed=4, **kw)
    c = FullyConnectedNet(seed=5, **kw)
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])
    assert not np.array_equal(a.params["W1"], c.params["W1"])
    assert a.loss(X, y)[0] == b.loss(X, y)[0] == a.loss(X, y)[0]


def test_unfixed_dropout_masks_vary_per_call_yet_are_deterministic_under_seed():
    X, y = small_problem()
    kw = dict(hidden_dims=[50], input_dim=D, num_classes=C, dropout_keep_ratio=0.5, seed=2,
              fix_dropout_masks=False)
    a, b = FullyConnectedNet(**kw), FullyConnectedNet(**kw)
    losses_a = [a.loss(X, y)[0] for _ in range(3)]
    assert losses_a == [b.loss(X, y)[0] for _ in range(3)]
    assert len(set(losses_a)) == 3
    fixed = FullyConnectedNet(**dict(kw, fix_dropout_masks=None))  # the default with a seed
    assert fixed.loss(X, y)[0] == fixed.loss(X, y)[0]


def test_dropout_without_seed_draws_new_masks_and_test_mode_is_deterministic():
    X, y = small_problem()
    model = FullyConnectedNet([50], input_dim=D, num_classes=C, dropout_keep_ratio=0.5)
    assert model.loss(X, y)[0] != model.loss(X, y)[0]
    np.testing.assert_array_equal(model.loss(X), model.loss(X))


def test_dtype_float32():
    X, y = small_problem()
    model = FullyConnectedNet([6, 5], input_dim=D, num_classes=C, normalization="batchnorm",
                              dtype=np.float32, seed=0)
    assert all(v.dtype == np.float32 for v in model.params.values())
    loss, grads = model.loss(X, y)
    assert all(g.dtype == np.float32 for g in grads.values())
    assert model.loss(X).dtype == np.float32


def test_batchnorm_test_mode_uses_running_averages():
    X, y = small_problem()
    model = FullyConnectedNet([6], input_dim=D, num_classes=C, normalization="batchnorm",
                              seed=0)
    before = model.loss(X[:1])
    model.loss(X, y)  # a training pass moves the running averages
    assert model.bn_params[0]["running_mean"].shape == (6,)
    assert not np.allclose(model.loss(X[:1]), before)


def test_overfits_fifty_examples():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((50, 30)), rng.integers(10, size=50)
    model = FullyConnectedNet([100, 100], input_dim=30, num_classes=10, seed=0)
    lr = 0.1
    for _ in range(300):
        loss, grads = model.loss(X, y)
        for k in model.params:
            model.params[k] -= lr * grads[k]
    assert np.mean(np.argmax(model.loss(X), axis=1) == y) == 1.0
    assert loss < 0.05


@pytest.mark.parametrize("kwargs, message", [
    (dict(activation="softplus"), "unknown activation 'softplus'"),
    (dict(normalization="groupnorm"), "unknown normalization 'groupnorm'"),
    (dict(init="lecun"), "unknown init 'lecun'"),
    (dict(init=-1.0), "non-negative float weight scale"),
    (dict(dropout_keep_ratio=0), r"dropout_keep_ratio must be in \(0, 1\]"),
    (dict(hidden_dims=[5, 0]), r"hidden_dims\[1\] must be a positive integer, got 0"),
    (dict(reg=-0.1), "reg must be non-negative"),
])
def test_bad_constructor_arguments(kwargs, message):
    args = dict(hidden_dims=[5], input_dim=D, num_classes=C)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        FullyConnectedNet(**args)


def test_bad_loss_input():
    model = FullyConnectedNet([5], input_dim=D, num_classes=C)
    with pytest.raises(ValueError, match=r"X has shape \(3, 6\), which flattens to 6 features, "
                                         r"not input_dim = 7"):
        model.loss(np.zeros((3, 6)))
    with pytest.raises(ValueError, match="empty batch"):
        model.loss(np.zeros((0, D)))
    with pytest.raises(ValueError, match=r"y must have shape \(3,\)"):
        model.loss(np.zeros((3, D)), np.zeros(2, int))
    with pytest.raises(ValueError, match=r"labels outside \[0, 4\)"):
        model.loss(np.zeros((3, D)), np.array([0, 1, 9]))


def test_image_shaped_input_is_flattened():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((4, 1, 8, 8))
    model = FullyConnectedNet([5], input_dim=64, num_classes=3, seed=0)
    np.testing.assert_array_equal(model.loss(X), model.loss(X.reshape(4, 64)))


def test_loss_is_fc_net_loss_the_exercise_of_notebook_04():
    from cs231n_lib.models.fc_net import fc_net_loss
    from cs231n_lib.registry import exercises

    assert exercises()["fc_net_loss"] == "04_batchnorm"
    X, y = small_problem()
    model = FullyConnectedNet([6, 5], input_dim=D, num_classes=C, normalization="batchnorm",
                              reg=0.2, seed=3)
    loss, grads = model.loss(X, y)
    loss2, grads2 = fc_net_loss(model, X, y)
    assert loss == loss2 and all(np.array_equal(grads[k], grads2[k]) for k in model.params)
    np.testing.assert_array_equal(model.loss(X), fc_net_loss(model, X))


def test_use_routes_the_net_and_the_solver_to_a_students_fc_net_loss():
    import cs231n_lib
    from cs231n_lib.models import fc_net
    from cs231n_lib.solver import Solver

    calls = []

    def fc_net_loss(model, X, y=None):
        calls.append(y is None)
        return fc_net_loss.__replaces__(model, X, y)

    X, y = small_problem()
    model = FullyConnectedNet([6], input_dim=D, num_classes=C, seed=0)
    try:
        cs231n_lib.use(fc_net_loss)
        assert fc_net.fc_net_loss is fc_net_loss
        model.loss(X, y)
        data = {"X_train": X, "y_train": y, "X_val": X, "y_val": y}
        Solver(model, data, num_epochs=1, batch_size=5, verbose=False).train()
    finally:
        cs231n_lib.reset()
    assert fc_net.fc_net_loss is not fc_net_loss
    assert calls[0] is False and True in calls[1:] and False in calls[1:]
