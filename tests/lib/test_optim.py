"""Update rules: two steps worked out by hand, state carried in config, defaults, bad input,
and (where PyTorch is installed) agreement with torch.optim over several steps."""

import numpy as np
import pytest

from cs231n_lib import optim

RULES = ["sgd", "sgd_momentum", "nesterov_momentum", "adagrad", "rmsprop", "adam"]

# Two steps from w = 1 with gradients 0.5 then 0.2 (arrays of one element), worked by hand.
W0, G1, G2 = 1.0, 0.5, 0.2


def two_steps(rule, **config):
    w = np.array([W0])
    w1, config = getattr(optim, rule)(w, np.array([G1]), dict(config))
    w2, config = getattr(optim, rule)(w1, np.array([G2]), config)
    return w1[0], w2[0], config


def test_sgd_by_hand():
    w1, w2, _ = two_steps("sgd", learning_rate=0.1)
    assert w1 == pytest.approx(0.95)        # 1 - 0.1 * 0.5
    assert w2 == pytest.approx(0.93)        # 0.95 - 0.1 * 0.2


def test_sgd_momentum_by_hand():
    w1, w2, config = two_steps("sgd_momentum", learning_rate=0.1, momentum=0.9)
    # v1 = -0.05, w1 = 0.95; v2 = 0.9 * -0.05 - 0.02 = -0.065, w2 = 0.885
    assert w1 == pytest.approx(0.95)
    assert w2 == pytest.approx(0.885)
    assert config["velocity"][0] == pytest.approx(-0.065)


def test_nesterov_momentum_by_hand():
    w1, w2, config = two_steps("nesterov_momentum", learning_rate=0.1, momentum=0.9)
    # v1 = -0.05; w1 = 1 - 0.9 * 0 + 1.9 * -0.05 = 0.905
    # v2 = 0.9 * -0.05 - 0.02 = -0.065; w2 = 0.905 + 0.9 * 0.05 + 1.9 * -0.065 = 0.8265
    assert w1 == pytest.approx(0.905)
    assert w2 == pytest.approx(0.8265)
    assert config["velocity"][0] == pytest.approx(-0.065)


def test_adagrad_by_hand():
    w1, w2, config = two_steps("adagrad", learning_rate=0.1, epsilon=0.0)
    # cache1 = 0.25, step = 0.1 * 0.5 / 0.5; cache2 = 0.29, step = 0.1 * 0.2 / sqrt(0.29)
    assert w1 == pytest.approx(0.9)
    assert w2 == pytest.approx(0.9 - 0.02 / np.sqrt(0.29))
    assert config["cache"][0] == pytest.approx(0.29)


def test_rmsprop_by_hand():
    w1, w2, config = two_steps("rmsprop", learning_rate=0.1, decay_rate=0.9, epsilon=0.0)
    # cache1 = 0.1 * 0.25 = 0.025; cache2 = 0.9 * 0.025 + 0.1 * 0.04 = 0.0265
    assert w1 == pytest.approx(1 - 0.05 / np.sqrt(0.025))
    assert w2 == pytest.approx(w1 - 0.02 / np.sqrt(0.0265))
    assert config["cache"][0] == pytest.approx(0.0265)


def test_adam_by_hand():
    w1, w2, config = two_steps("adam", learning_rate=0.1, beta1=0.9, beta2=0.999, epsilon=0.0)
    # t=1: m = 0.05, v = 0.00025; bias-corrected 0.5 and 0.25; step 0.1 * 0.5 / 0.5 = 0.1.
    assert w1 == pytest.approx(0.9)
    # t=2: m = 0.045 + 0.02 = 0.065, v = 0.00024975 + 0.00004 = 0.00028975;
    # m_hat = 0.065 / 0.19, v_hat = 0.00028975 / 0.001999.
    assert w2 == pytest.approx(0.9 - 0.1 * (0.065 / 0.19) / np.sqrt(0.00028975 / 0.001999))
    assert config["t"] == 2
    assert config["m"][0] == pytest.approx(0.065)
    assert config["v"][0] == pytest.approx(0.00028975)


def test_adam_first_step_has_size_learning_rate():
    # With t incremented before the correction, the first step is lr * sign(dw) (eps aside),
    # whatever the gradient's scale; a rule that forgot it would divide by 1 - beta**0 = 0.
    for g in (1e-4, 3.0):
        w1, _ = optim.adam(np.array([0.0]), np.array([g]), {"learning_rate": 0.01})
        assert w1[0] == pytest.approx(-0.01, rel=1e-3)


@pytest.mark.parametrize("rule", RULES)
def test_defaults_are_set_and_state_carried(rule, rng):
    w, dw = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    next_w, config = getattr(optim, rule)(w, dw)
    assert next_w.shape == w.shape and not np.array_equal(next_w, w)
    expected_lr = 1e-3 if rule == "adam" else 1e-2
    assert config["learning_rate"] == expected_lr
    # The same config object comes back and is used again: a second step differs from a
    # fresh one exactly for the rules with state.
    again, config2 = getattr(optim, rule)(next_w, dw, config)
    assert config2 is config
    fresh, _ = getattr(optim, rule)(next_w, dw)
    assert np.array_equal(again, fresh) == (rule == "sgd")


def test_default_hyperparameters():
    w, dw = np.zeros(2), np.ones(2)
    assert optim.sgd_momentum(w, dw)[1]["momentum"] == 0.9
    assert optim.nesterov_momentum(w, dw)[1]["momentum"] == 0.9
    assert optim.rmsprop(w, dw)[1]["decay_rate"] == 0.99
    c = optim.adam(w, dw)[1]
    assert (c["beta1"], c["beta2"], c["epsilon"], c["t"]) == (0.9, 0.999, 1e-8, 1)


@pytest.mark.parametrize("rule", RULES)
def test_rules_do_not_modify_w_and_keep_float32(rule, rng):
    w = rng.standard_normal(5).astype(np.float32)
    w0 = w.copy()
    next_w, _ = getattr(optim, rule)(w, np.ones(5, np.float32))
    np.testing.assert_array_equal(w, w0)
    assert next_w.dtype == np.float32


@pytest.mark.parametrize("rule", RULES)
def test_bad_input(rule):
    f = getattr(optim, rule)
    with pytest.raises(ValueError, match=r"w has shape \(3,\) but dw has shape \(4,\)"):
        f(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="config must be a dict"):
        f(np.zeros(3), np.zeros(3), [0.1])


def test_state_of_the_wrong_shape_is_rejected():
    with pytest.raises(ValueError, match=r"config\['velocity'\] has shape \(2,\)"):
        optim.sgd_momentum(np.zeros(3), np.zeros(3), {"velocity": np.zeros(2)})


def test_momentum_on_a_ravine_beats_sgd():
    # f(x, y) = x^2/2 + 50 y^2: SGD must keep lr * 100 below 2 and so crawls along x.
    grad = lambda w: np.array([w[0], 100 * w[1]])
    results = {}
    for rule in ("sgd", "sgd_momentum", "nesterov_momentum"):
        w, config = np.array([10.0, 1.0]), {"learning_rate": 0.01}
        for _ in range(100):
            w, config = getattr(optim, rule)(w, grad(w), config)
        results[rule] = np.linalg.norm(w)
    assert results["sgd_momentum"] < results["sgd"] / 10
    assert results["nesterov_momentum"] < results["sgd"] / 10


# ------------------------------------------------------------------------- against PyTorch

TORCH = {
    "sgd": ("SGD", dict(lr=0.05), dict(learning_rate=0.05)),
    "sgd_momentum": ("SGD", dict(lr=0.05, momentum=0.8),
                     dict(learning_rate=0.05, momentum=0.8)),
    "nesterov_momentum": ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True),
                          dict(learning_rate=0.05, momentum=0.8)),
    "adagrad": ("Adagrad", dict(lr=0.05, eps=1e-8), dict(learning_rate=0.05, epsilon=1e-8)),
    "rmsprop": ("RMSprop", dict(lr=0.01, alpha=0.95, eps=1e-8),
                dict(learning_rate=0.01, decay_rate=0.95, epsilon=1e-8)),
    "adam": ("Adam", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-8),
             dict(learning_rate=0.01, beta1=0.8, beta2=0.99, epsilon=1e-8)),
}


@pytest.mark.parametrize("rule", RULES)
def test_matches_torch_optim(rule, torch, rng):
    # torch's SGD keeps v' = -v / lr; with a constant rate the iterates are the same,
    # including Nesterov's, which torch writes as w -= lr * (g + mu * v').
    name, torch_kwargs, config = TORCH[rule]
    w = rng.standard_normal((3, 2))
    wt = torch.tensor(w.copy(), dtype=torch.float64, requires_grad=True)
    opt = getattr(torch.optim, name)([wt], **torch_kwargs)
    for _ in range(6):
        g = rng.standard_normal((3, 2))
        w, config = getattr(optim, rule)(w, g, config)
        wt.grad = torch.tensor(g)
        opt.step()
        np.testing.assert_allclose(w, wt.detach().numpy(), rtol=1e-10, atol=1e-12)
