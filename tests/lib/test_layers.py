"""Every layer: backward against centred differences (float64, many shapes), forward in both
float dtypes, bad input, and, where PyTorch is installed, forward and backward against torch."""

import os

import numpy as np
import pytest
from hypothesis import assume, example, given, settings, strategies as st

from cs231n_lib import layers as L
from cs231n_lib.gradcheck import eval_numerical_gradient, eval_numerical_gradient_array, rel_error

# Gradient checks compare every element with rel_error < 1e-7. Centred differences carry an
# absolute error near 1e-10, so an element that happens to be ~1e-4 (a rare cancellation in
# random data) fails although the gradient is right. The examples are therefore drawn
# deterministically (derandomize), so the suite never flakes; LIB_MAX_EXAMPLES=300 runs a
# larger random sweep by hand.
_SWEEP = os.environ.get("LIB_MAX_EXAMPLES")
FEW = settings(max_examples=int(_SWEEP or 12), deadline=None, derandomize=not _SWEEP,
               database=None)
sizes = st.integers(1, 6)  # batch size 1 and odd sizes; @example pins some of them
seeds = st.integers(0, 2**32 - 1)
TOL = 1e-7


def num_grad(f, x, dout):
    return eval_numerical_gradient_array(f, x, dout)


def away_from_zero(x, gap=0.05):
    """Shift values off the kink at 0 so that x +- h never crosses it."""
    return np.where(x >= 0, x + gap, x - gap)


# ------------------------------------------------------------------------- affine


@FEW
@given(N=sizes, dims=st.lists(sizes, min_size=1, max_size=3), M=sizes, seed=seeds)
@example(N=1, dims=[3, 5], M=1, seed=0)
@example(N=5, dims=[7], M=3, seed=1)
def test_affine_backward(N, dims, M, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, *dims))
    D = int(np.prod(dims))
    w, b = rng.standard_normal((D, M)), rng.standard_normal(M)
    dout = rng.standard_normal((N, M))
    out, cache = L.affine_forward(x, w, b)
    assert out.shape == (N, M)
    np.testing.assert_allclose(out, x.reshape(N, D) @ w + b)
    dx, dw, db = L.affine_backward(dout, cache)
    assert rel_error(dx, num_grad(lambda x: L.affine_forward(x, w, b)[0], x, dout)) < TOL
    assert rel_error(dw, num_grad(lambda w: L.affine_forward(x, w, b)[0], w, dout)) < TOL
    assert rel_error(db, num_grad(lambda b: L.affine_forward(x, w, b)[0], b, dout)) < TOL


def test_affine_rejects_mismatched_shapes(rng):
    x = rng.standard_normal((2, 3, 4))
    with pytest.raises(ValueError, match=r"flattens to \(N, 12\).*w has shape \(10, 5\)"):
        L.affine_forward(x, np.zeros((10, 5)), np.zeros(5))
    with pytest.raises(ValueError, match=r"b must have shape \(5,\), got \(4,\)"):
        L.affine_forward(x, np.zeros((12, 5)), np.zeros(4))
    with pytest.raises(ValueError, match="empty batch"):
        L.affine_forward(np.zeros((0, 12)), np.zeros((12, 5)), np.zeros(5))
    out, cache = L.affine_forward(x, np.zeros((12, 5)), np.zeros(5))
    with pytest.raises(ValueError, match=r"dout must have shape \(2, 5\)"):
        L.affine_backward(np.zeros((2, 4)), cache)


# ------------------------------------------------------------------------- activations

ELEMENTWISE = {
    "relu": (L.relu_forward, L.relu_backward, lambda x: np.maximum(x, 0), True),
    "sigmoid": (L.sigmoid_forward, L.sigmoid_backward, lambda x: 1 / (1 + np.exp(-x)), False),
    "tanh": (L.tanh_forward, L.tanh_backward, np.tanh, False),
    "leaky_relu": (L.leaky_relu_forward, L.leaky_relu_backward,
                   lambda x: np.where(x > 0, x, 0.01 * x), True),
    "elu": (L.elu_forward, L.elu_backward, lambda x: np.where(x > 0, x, np.exp(x) - 1), True),
}


@pytest.mark.parametrize("name", ELEMENTWISE)
@FEW
@given(shape=st.lists(sizes, min_size=1, max_size=3), seed=seeds)
@example(shape=[1], seed=0)
@example(shape=[5, 3, 1], seed=1)
def test_activation_backward(name, shape, seed):
    forward, backward, reference, kink = ELEMENTWISE[name]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    if kink:
        x = away_from_zero(x)
    dout = rng.standard_normal(shape)
    out, cache = forward(x)
    np.testing.assert_allclose(out, reference(x), rtol=1e-12, atol=1e-15)
    dx = backward(dout, cache)
    assert rel_error(dx, num_grad(lambda x: forward(x)[0], x, dout)) < TOL


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_activation_dtype_preserved(name, rng):
    forward, backward, _, _ = ELEMENTWISE[name]
    x64 = rng.standard_normal((3, 5))
    out64, _ = forward(x64)
    out32, cache32 = forward(x64.astype(np.float32))
    assert out64.dtype == np.float64 and out32.dtype == np.float32
    np.testing.assert_allclose(out32, out64, rtol=1e-5, atol=1e-6)
    assert backward(np.ones((3, 5), np.float32), cache32).dtype == np.float32


def test_activations_at_the_kink_use_the_right_sided_convention():
    x = np.array([-1.0, 0.0, 1.0])
    np.testing.assert_array_equal(L.relu_backward(np.ones(3), L.relu_forward(x)[1]), [0, 0, 1])
    np.testing.assert_array_equal(
        L.leaky_relu_backward(np.ones(3), L.leaky_relu_forward(x)[1]), [0.01, 0.01, 1])


def test_sigmoid_does_not_overflow():
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        out, _ = L.sigmoid_forward(np.array([-1000.0, 0.0, 1000.0]))
    np.testing.assert_array_equal(out, [0.0, 0.5, 1.0])


def test_elu_alpha_and_leaky_alpha_are_used():
    x = np.array([-2.0, 3.0])
    np.testing.assert_allclose(L.elu_forward(x, alpha=0.5)[0], [0.5 * np.expm1(-2), 3.0])
    np.testing.assert_allclose(L.leaky_relu_forward(x, alpha=0.2)[0], [-0.4, 3.0])


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_activation_rejects_bad_input(name):
    forward, backward, _, _ = ELEMENTWISE[name]
    with pytest.raises(ValueError, match="empty batch"):
        forward(np.zeros((0, 3)))
    _, cache = forward(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"dout must have shape \(2, 3\), got \(3, 2\)"):
        backward(np.ones((3, 2)), cache)


# ------------------------------------------------------------------------- maxout


@FEW
@given(N=sizes, D=sizes, K=st.integers(1, 4), M=sizes, seed=seeds)
@example(N=1, D=3, K=3, M=5, seed=0)
@example(N=5, D=1, K=2, M=3, seed=2)
def test_maxout_backward(N, D, K, M, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, D))
    w, b = rng.standard_normal((K, D, M)), rng.standard_normal((K, M))
    scores = np.einsum("nd,kdm->nkm", x, w) + b
    if K > 1:  # keep the winning piece clear of a tie, where max has a kink
        top2 = np.sort(scores, axis=1)[:, -2:, :]
        assume(np.min(top2[:, 1] - top2[:, 0]) > 1e-3)
    dout = rng.standard_normal((N, M))
    out, cache = L.maxout_forward(x, w, b)
    np.testing.assert_allclose(out, scores.max(axis=1))
    dx, dw, db = L.maxout_backward(dout, cache)
    f = lambda: L.maxout_forward(x, w, b)[0]
    assert rel_error(dx, num_grad(lambda _: f(), x, dout)) < TOL
    assert rel_error(dw, num_grad(lambda _: f(), w, dout)) < TOL
    assert rel_error(db, num_grad(lambda _: f(), b, dout)) < TOL


def test_maxout_dtype_and_bad_shapes(rng):
    x = rng.standard_normal((4, 2, 3)).astype(np.float32)
    w = rng.standard_normal((3, 6, 5)).astype(np.float32)
    b = np.zeros((3, 5), np.float32)
    out, cache = L.maxout_forward(x, w, b)
    assert out.dtype == np.float32 and out.shape == (4, 5)
    dx, dw, db = L.maxout_backward(np.ones((4, 5), np.float32), cache)
    assert dx.shape == x.shape and dx.dtype == dw.dtype == db.dtype == np.float32
    with pytest.raises(ValueError, match=r"b must have shape \(3, 5\), got \(5,\)"):
        L.maxout_forward(x, w, np.zeros(5))
    with pytest.raises(ValueError, match="w must have 3 dimensions"):
        L.maxout_forward(x, np.zeros((6, 5)), b)


# ------------------------------------------------------------------------- dropout


@FEW
@given(N=sizes, D=sizes, p=st.sampled_from([0.3, 0.5, 0.9, 1.0]), seed=seeds)
@example(N=1, D=1, p=0.5, seed=0)
@example(N=5, D=3, p=0.3, seed=1)
def test_dropout_backward(N, D, p, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, D))
    dout = rng.standard_normal((N, D))
    param = {"mode": "train", "p": p, "seed": seed}
    out, cache = L.dropout_forward(x, param)
    dx = L.dropout_backward(dout, cache)
    assert rel_error(dx, num_grad(lambda x: L.dropout_forward(x, param)[0], x, dout)) < TOL
    kept = out != 0
    np.testing.assert_allclose(out[kept], x[kept] / p)  # inverted: kept units scaled by 1/p


def test_dropout_statistics_and_test_mode(rng):
    x = rng.standard_normal((500, 400)) + 5
    for p in (0.25, 0.75):
        out, _ = L.dropout_forward(x, {"mode": "train", "p": p, "seed": 1})
        assert abs(np.mean(out != 0) - p) < 0.01          # fraction kept
        assert abs(out.mean() - x.mean()) < 0.05          # expectation unchanged
        out_test, cache = L.dropout_forward(x, {"mode": "test", "p": p})
        np.testing.assert_array_equal(out_test, x)
        np.testing.assert_array_equal(L.dropout_backward(x, cache), x)


def test_dropout_seed_fixes_the_mask_and_no_seed_varies(rng):
    x = rng.standard_normal((20, 20))
    a = L.dropout_forward(x, {"mode": "train", "p": 0.5, "seed": 3})[0]
    b = L.dropout_forward(x, {"mode": "train", "p": 0.5, "seed": 3})[0]
    c = L.dropout_forward(x, {"mode": "train", "p": 0.5})[0]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_dropout_dtype(rng):
    x = rng.standard_normal((4, 5)).astype(np.float32)
    out, cache = L.dropout_forward(x, {"mode": "train", "p": 0.5, "seed": 0})
    assert out.dtype == np.float32
    assert L.dropout_backward(np.ones_like(x), cache).dtype == np.float32


def test_dropout_bad_params():
    x = np.ones((2, 2))
    with pytest.raises(ValueError, match="unknown dropout mode 'eval'"):
        L.dropout_forward(x, {"mode": "eval", "p": 0.5})
    with pytest.raises(ValueError, match="dropout_param is missing the required key 'p'"):
        L.dropout_forward(x, {"mode": "train"})
    with pytest.raises(ValueError, match=r"keep probability and must be in \(0, 1\]"):
        L.dropout_forward(x, {"mode": "train", "p": 0.0})


# ------------------------------------------------------------------------- batchnorm


def _eps_for(n):
    """eps for a gradient check over n values.

    With only two values to normalise, the outputs are +-1 * sqrt(var / (var + eps)) whatever
    x is, so dout/dx is of order eps and a centred difference cannot resolve it to 1e-7.
    A larger eps makes the dependence on x visible without changing the formulas checked.
    """
    return 1.0 if n == 2 else 1e-5


def _norm_inputs(rng, N, D):
    x = rng.standard_normal((N, D)) + 1.5
    gamma = rng.standard_normal(D) + 1
    beta = rng.standard_normal(D)
    dout = rng.standard_normal((N, D))
    return x, gamma, beta, dout


@pytest.mark.parametrize("backward", [L.batchnorm_backward, L.batchnorm_backward_alt])
@FEW
@given(N=sizes, D=sizes, seed=seeds)
@example(N=1, D=3, seed=0)
@example(N=2, D=5, seed=1)
@example(N=5, D=3, seed=2)
def test_batchnorm_backward(backward, N, D, seed):
    rng = np.random.default_rng(seed)
    x, gamma, beta, dout = _norm_inputs(rng, N, D)
    assume(N < 3 or x.std(axis=0).min() > 0.3)  # a tight cluster makes f too curved for h
    bn_param = {"mode": "train", "eps": _eps_for(N)}
    _, cache = L.batchnorm_forward(x, gamma, beta, bn_param)
    dx, dgamma, dbeta = backward(dout, cache)
    f = lambda _: L.batchnorm_forward(x, gamma, beta, dict(bn_param))[0]
    assert rel_error(dx, num_grad(f, x, dout)) < TOL
    assert rel_error(dgamma, num_grad(f, gamma, dout)) < TOL
    assert rel_error(dbeta, num_grad(f, beta, dout)) < TOL


def test_batchnorm_two_backwards_agree(rng):
    x, gamma, beta, dout = _norm_inputs(rng, 50, 7)
    _, cache = L.batchnorm_forward(x, gamma, beta, {"mode": "train"})
    for a, b in zip(L.batchnorm_backward(dout, cache), L.batchnorm_backward_alt(dout, cache)):
        assert rel_error(a, b) < 1e-10


def test_batchnorm_train_normalises_and_updates_running_averages_in_place(rng):
    x, gamma, beta, _ = _norm_inputs(rng, 200, 3)
    running_mean = np.ones(3)
    bn_param = {"mode": "train", "running_mean": running_mean, "running_var": np.ones(3)}
    out, _ = L.batchnorm_forward(x, np.ones(3), np.zeros(3), bn_param)
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(out.std(axis=0), np.sqrt(x.var(0) / (x.var(0) + 1e-5)))
    assert bn_param["running_mean"] is running_mean  # the same array, updated in place
    np.testing.assert_allclose(running_mean, 0.9 + 0.1 * x.mean(axis=0))
    np.testing.assert_allclose(bn_param["running_var"], 0.9 + 0.1 * x.var(axis=0))
    out, _ = L.batchnorm_forward(x, gamma, beta, bn_param)
    np.testing.assert_allclose(out, gamma * (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5) + beta)


def test_batchnorm_test_mode_uses_running_averages(rng):
    x, gamma, beta, _ = _norm_inputs(rng, 10, 4)
    bn_param = {"mode": "train", "momentum": 0.0}
    L.batchnorm_forward(x, gamma, beta, bn_param)  # momentum 0: running = this batch's stats
    bn_param["mode"] = "test"
    x_new = rng.standard_normal((3, 4))
    out, cache = L.batchnorm_forward(x_new, gamma, beta, bn_param)
    expected = gamma * (x_new - x.mean(0)) / np.sqrt(x.var(0) + 1e-5) + beta
    np.testing.assert_allclose(out, expected)
    with pytest.raises(ValueError, match="needs a cache from a 'train' mode forward pass"):
        L.batchnorm_backward(np.ones((3, 4)), cache)


@pytest.mark.parametrize("mode", ["train", "test"])
def test_batchnorm_float32(mode, rng):
    x, gamma, beta, _ = _norm_inputs(rng, 8, 5)
    p64, p32 = {"mode": mode}, {"mode": mode}
    out64, _ = L.batchnorm_forward(x, gamma, beta, p64)
    out32, cache = L.batchnorm_forward(*(a.astype(np.float32) for a in (x, gamma, beta)), p32)
    assert out32.dtype == np.float32 and p32["running_mean"].dtype == np.float32
    np.testing.assert_allclose(out32, out64, rtol=1e-4, atol=1e-4)
    if mode == "train":
        grads = L.batchnorm_backward_alt(np.ones((8, 5), np.float32), cache)
        assert all(g.dtype == np.float32 for g in grads)


def test_batchnorm_bad_input():
    x = np.ones((4, 3))
    with pytest.raises(ValueError, match="bn_param is missing the required key 'mode'"):
        L.batchnorm_forward(x, np.ones(3), np.zeros(3), {})
    with pytest.raises(ValueError, match="unknown batchnorm mode 'eval'"):
        L.batchnorm_forward(x, np.ones(3), np.zeros(3), {"mode": "eval"})
    with pytest.raises(ValueError, match=r"gamma must have shape \(3,\), got \(4,\)"):
        L.batchnorm_forward(x, np.ones(4), np.zeros(3), {"mode": "train"})
    with pytest.raises(ValueError, match=r"x must have 2 dimensions, got shape \(4, 3, 1\)"):
        L.batchnorm_forward(x[..., None], np.ones(3), np.zeros(3), {"mode": "train"})
    with pytest.raises(ValueError, match="empty batch"):
        L.batchnorm_forward(np.ones((0, 3)), np.ones(3), np.zeros(3), {"mode": "train"})
    with pytest.raises(ValueError, match=r"running_mean'\] must have shape \(3,\)"):
        L.batchnorm_forward(x, np.ones(3), np.zeros(3),
                            {"mode": "train", "running_mean": np.zeros(2)})


# ------------------------------------------------------------------------- layernorm


@FEW
@given(N=sizes, D=st.integers(2, 7), seed=seeds)
@example(N=1, D=5, seed=0)
@example(N=3, D=2, seed=1)
@example(N=5, D=7, seed=2)
def test_layernorm_backward(N, D, seed):
    rng = np.random.default_rng(seed)
    x, gamma, beta, dout = _norm_inputs(rng, N, D)
    assume(D < 3 or x.std(axis=1).min() > 0.3)
    ln_param = {"eps": _eps_for(D)}
    out, cache = L.layernorm_forward(x, gamma, beta, ln_param)
    dx, dgamma, dbeta = L.layernorm_backward(dout, cache)
    f = lambda _: L.layernorm_forward(x, gamma, beta, ln_param)[0]
    assert rel_error(dx, num_grad(f, x, dout)) < TOL
    assert rel_error(dgamma, num_grad(f, gamma, dout)) < TOL
    assert rel_error(dbeta, num_grad(f, beta, dout)) < TOL


def test_layernorm_normalises_each_example(rng):
    x, _, _, _ = _norm_inputs(rng, 4, 50)
    out, _ = L.layernorm_forward(x, np.ones(50), np.zeros(50), {"eps": 0.0})
    np.testing.assert_allclose(out.mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(out.std(axis=1), 1)
    out32, cache = L.layernorm_forward(x.astype(np.float32), np.ones(50, np.float32),
                                       np.zeros(50, np.float32), {})
    assert out32.dtype == np.float32
    assert L.layernorm_backward(np.ones((4, 50), np.float32), cache)[0].dtype == np.float32


def test_layernorm_bad_input():
    with pytest.raises(ValueError, match=r"beta must have shape \(3,\), got \(2,\)"):
        L.layernorm_forward(np.ones((4, 3)), np.ones(3), np.zeros(2), {})
    with pytest.raises(ValueError, match="ln_param must be a dict"):
        L.layernorm_forward(np.ones((4, 3)), np.ones(3), np.zeros(3), None)


# ------------------------------------------------------------------------- losses


@FEW
@given(N=sizes, C=st.integers(2, 7), seed=seeds)
@example(N=1, C=3, seed=0)
@example(N=5, C=7, seed=1)
def test_softmax_loss_gradient(N, C, seed):
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((N, C)), rng.integers(C, size=N)
    loss, dx = L.softmax_loss(x, y)
    p = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
    assert loss == pytest.approx(-np.log(p[np.arange(N), y]).mean(), rel=1e-12)
    assert rel_error(dx, eval_numerical_gradient(lambda x: L.softmax_loss(x, y)[0], x)) < TOL


@FEW
@given(N=sizes, C=st.integers(2, 7), seed=seeds)
@example(N=1, C=3, seed=0)
@example(N=5, C=7, seed=1)
def test_svm_loss_gradient(N, C, seed):
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((N, C)), rng.integers(C, size=N)
    margins = x - x[np.arange(N), y][:, None] + 1
    margins[np.arange(N), y] = 5  # the correct class has no margin
    assume(np.min(np.abs(margins)) > 1e-3)  # away from the hinge's kink
    loss, dx = L.svm_loss(x, y)
    margins[np.arange(N), y] = 0
    assert loss == pytest.approx(np.maximum(margins, 0).sum() / N, rel=1e-12)
    assert rel_error(dx, eval_numerical_gradient(lambda x: L.svm_loss(x, y)[0], x)) < TOL


@pytest.mark.parametrize("loss_fn", [L.softmax_loss, L.svm_loss])
def test_losses_are_stable_for_huge_scores(loss_fn):
    x = np.array([[1000.0, 995.0, 10.0, 10.0, 1.0]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss, dx = loss_fn(x, np.array([1]))
    assert np.isfinite(loss) and np.all(np.isfinite(dx))
    if loss_fn is L.softmax_loss:
        assert loss == pytest.approx(5 + np.log1p(np.exp(-5) + 2 * np.exp(-990) + np.exp(-999)))
    else:
        assert loss == pytest.approx(6.0)


@pytest.mark.parametrize("loss_fn", [L.softmax_loss, L.svm_loss])
def test_losses_at_uniform_scores_and_float32(loss_fn, rng):
    C = 10
    loss, _ = loss_fn(np.zeros((7, C)), rng.integers(C, size=7))
    assert loss == pytest.approx(np.log(C) if loss_fn is L.softmax_loss else C - 1)
    x = rng.standard_normal((7, C))
    y = rng.integers(C, size=7)
    loss32, dx32 = loss_fn(x.astype(np.float32), y)
    loss64, dx64 = loss_fn(x, y)
    assert dx32.dtype == np.float32
    assert loss32 == pytest.approx(loss64, rel=1e-5)
    np.testing.assert_allclose(dx32, dx64, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("loss_fn", [L.softmax_loss, L.svm_loss])
def test_losses_bad_input(loss_fn):
    x = np.zeros((3, 4))
    with pytest.raises(ValueError,
                       match=r"y must have shape \(3,\) to match the scores, got \(2,\)"):
        loss_fn(x, np.array([0, 1]))
    with pytest.raises(ValueError, match=r"labels outside \[0, 4\): min 0, max 4"):
        loss_fn(x, np.array([0, 1, 4]))
    with pytest.raises(ValueError, match="integer class labels"):
        loss_fn(x, np.array([0.5, 1, 2]))
    with pytest.raises(ValueError, match="empty batch"):
        loss_fn(np.zeros((0, 4)), np.zeros(0, int))
    with pytest.raises(ValueError, match=r"x must have 2 dimensions"):
        loss_fn(np.zeros(4), np.array([0]))


# ------------------------------------------------------------------------- both dtypes


def _layer_calls(rng, N, D, dtype):
    """(name, forward output) for every layer on float inputs of the given dtype."""
    a = lambda *shape: rng.standard_normal(shape).astype(dtype)
    x, gamma, beta = a(N, D), a(D) + 1, a(D)
    y = rng.integers(D, size=N)
    yield "affine", L.affine_forward(x, a(D, 3), a(3))[0]
    for name, (forward, _, _, _) in ELEMENTWISE.items():
        yield name, forward(x)[0]
    yield "maxout", L.maxout_forward(x, a(2, D, 3), a(2, 3))[0]
    yield "dropout", L.dropout_forward(x, {"mode": "train", "p": 0.5, "seed": 0})[0]
    yield "batchnorm", L.batchnorm_forward(x, gamma, beta, {"mode": "train"})[0]
    yield "batchnorm_test", L.batchnorm_forward(
        x, gamma, beta, {"mode": "test", "running_mean": a(D), "running_var": a(D) ** 2})[0]
    yield "layernorm", L.layernorm_forward(x, gamma, beta, {})[0]
    yield "softmax_loss", L.softmax_loss(x, y)[1]
    yield "svm_loss", L.svm_loss(x, y)[1]


@FEW
@given(N=sizes, D=st.integers(2, 6), seed=seeds)
@example(N=1, D=3, seed=0)
def test_every_forward_in_float32_and_float64(N, D, seed):
    out64 = dict(_layer_calls(np.random.default_rng(seed), N, D, np.float64))
    out32 = dict(_layer_calls(np.random.default_rng(seed), N, D, np.float32))
    for name in out64:
        assert out64[name].dtype == np.float64, name
        assert out32[name].dtype == np.float32, name
        # float32 inputs are float64 inputs rounded to 24 bits; outputs agree to ~1e-5.
        np.testing.assert_allclose(out32[name], out64[name], rtol=2e-4, atol=2e-4,
                                   err_msg=name)


# ------------------------------------------------------------------------- against PyTorch


def _t(torch, a):
    return torch.tensor(a, dtype=torch.float64, requires_grad=True)


def _close(ours, theirs, tol=1e-10):
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else theirs
    np.testing.assert_allclose(ours, theirs, rtol=tol, atol=tol)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_activations_match_torch(name, torch, rng):
    F = torch.nn.functional
    fns = {"relu": F.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh,
           "leaky_relu": lambda t: F.leaky_relu(t, 0.01), "elu": lambda t: F.elu(t, 1.0)}
    x = away_from_zero(2 * rng.standard_normal((4, 6)))
    dout = rng.standard_normal((4, 6))
    forward, backward, _, _ = ELEMENTWISE[name]
    out, cache = forward(x)
    xt = _t(torch, x)
    outt = fns[name](xt)
    outt.backward(torch.tensor(dout))
    _close(out, outt)
    _close(backward(dout, cache), xt.grad)


def test_affine_and_maxout_match_torch(torch, rng):
    x, dout = rng.standard_normal((5, 2, 3)), rng.standard_normal((5, 4))
    w, b = rng.standard_normal((6, 4)), rng.standard_normal(4)
    out, cache = L.affine_forward(x, w, b)
    xt, wt, bt = _t(torch, x), _t(torch, w), _t(torch, b)
    outt = xt.reshape(5, 6) @ wt + bt
    outt.backward(torch.tensor(dout))
    _close(out, outt)
    for ours, theirs in zip(L.affine_backward(dout, cache), (xt, wt, bt)):
        _close(ours, theirs.grad)

    w, b = rng.standard_normal((3, 6, 4)), rng.standard_normal((3, 4))
    out, cache = L.maxout_forward(x, w, b)
    xt, wt, bt = _t(torch, x), _t(torch, w), _t(torch, b)
    outt = (torch.einsum("nd,kdm->nkm", xt.reshape(5, 6), wt) + bt).max(dim=1).values
    outt.backward(torch.tensor(dout))
    _close(out, outt)
    for ours, theirs in zip(L.maxout_backward(dout, cache), (xt, wt, bt)):
        _close(ours, theirs.grad)


def test_dropout_matches_torch_given_the_same_mask(torch, rng):
    # Torch draws its own masks; recover ours from the cache and check the arithmetic around it.
    x, dout = rng.standard_normal((6, 5)), rng.standard_normal((6, 5))
    out, cache = L.dropout_forward(x, {"mode": "train", "p": 0.7, "seed": 5})
    keep = (cache[1] != 0)
    xt = _t(torch, x)
    outt = xt * torch.tensor(keep, dtype=torch.float64) / 0.7
    outt.backward(torch.tensor(dout))
    _close(out, outt)
    _close(L.dropout_backward(dout, cache), xt.grad)
    # Test mode is the identity in both.
    _close(L.dropout_forward(x, {"mode": "test", "p": 0.7})[0],
           torch.nn.functional.dropout(_t(torch, x), 0.3, training=False))


def test_batchnorm_matches_torch(torch, rng):
    x, gamma, beta, dout = _norm_inputs(rng, 9, 4)
    rm, rv = rng.standard_normal(4), rng.random(4) + 0.5
    bn_param = {"mode": "train", "running_mean": rm.copy(), "running_var": rv.copy()}
    out, cache = L.batchnorm_forward(x, gamma, beta, bn_param)
    xt, gt, bt = _t(torch, x), _t(torch, gamma), _t(torch, beta)
    rmt, rvt = torch.tensor(rm), torch.tensor(rv)
    outt = torch.nn.functional.batch_norm(xt, rmt, rvt, gt, bt, training=True,
                                          momentum=0.1, eps=1e-5)
    outt.backward(torch.tensor(dout))
    _close(out, outt)
    for backward in (L.batchnorm_backward, L.batchnorm_backward_alt):
        for ours, theirs in zip(backward(dout, cache), (xt, gt, bt)):
            _close(ours, theirs.grad, 1e-9)
    # torch's momentum 0.1 is our 0.9 (weight on the old value). Torch keeps the unbiased
    # batch variance in running_var, we keep the biased one (as CS231n does).
    _close(bn_param["running_mean"], rmt)
    _close(bn_param["running_var"], 0.9 * rv + 0.1 * x.var(axis=0))
    bn_param["mode"] = "test"
    out, _ = L.batchnorm_forward(x, gamma, beta, bn_param)
    outt = torch.nn.functional.batch_norm(
        torch.tensor(x), torch.tensor(bn_param["running_mean"]),
        torch.tensor(bn_param["running_var"]), gt, bt, training=False, eps=1e-5)
    _close(out, outt)


def test_layernorm_matches_torch(torch, rng):
    x, gamma, beta, dout = _norm_inputs(rng, 5, 7)
    out, cache = L.layernorm_forward(x, gamma, beta, {})
    xt, gt, bt = _t(torch, x), _t(torch, gamma), _t(torch, beta)
    outt = torch.nn.functional.layer_norm(xt, (7,), gt, bt, eps=1e-5)
    outt.backward(torch.tensor(dout))
    _close(out, outt)
    for ours, theirs in zip(L.layernorm_backward(dout, cache), (xt, gt, bt)):
        _close(ours, theirs.grad, 1e-9)


def test_losses_match_torch(torch, rng):
    F = torch.nn.functional
    x, y = 3 * rng.standard_normal((6, 5)), rng.integers(5, size=6)
    loss, dx = L.softmax_loss(x, y)
    xt = _t(torch, x)
    losst = F.cross_entropy(xt, torch.tensor(y))
    losst.backward()
    _close(loss, losst)
    _close(dx, xt.grad)
    # multi_margin_loss averages over classes as well as examples: ours is C times larger.
    loss, dx = L.svm_loss(x, y)
    xt = _t(torch, x)
    losst = F.multi_margin_loss(xt, torch.tensor(y), margin=1.0) * 5
    losst.backward()
    _close(loss, losst)
    _close(dx, xt.grad)
