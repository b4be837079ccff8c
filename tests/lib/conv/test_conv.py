"""The public conv module: every name, spatial batchnorm, and PyTorch as an outside check."""

import numpy as np
import pytest

from cs231n_lib import conv
from cs231n_lib.conv import (conv_backward, conv_forward, spatial_batchnorm_backward,
                             spatial_batchnorm_forward)
from cs231n_lib.gradcheck import eval_numerical_gradient_array, rel_error

API = ["conv_forward", "conv_backward", "conv_forward_naive", "conv_backward_naive",
       "max_pool_forward", "max_pool_backward", "max_pool_forward_naive",
       "max_pool_backward_naive", "spatial_batchnorm_forward", "spatial_batchnorm_backward"]


@pytest.mark.parametrize("name", API)
def test_api_names_are_documented_functions(name):
    fn = getattr(conv, name)
    assert callable(fn) and "(N, " in fn.__doc__


def test_spatial_batchnorm_normalises_each_channel(rng):
    x = 4 * rng.standard_normal((5, 3, 4, 6)) + 7
    gamma, beta = np.array([1.0, 2.0, 3.0]), np.array([0.0, -1.0, 5.0])
    out, _ = spatial_batchnorm_forward(x, gamma, beta, {"mode": "train"})
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), beta, atol=1e-10)
    np.testing.assert_allclose(out.std(axis=(0, 2, 3)), gamma, rtol=1e-4)


def test_spatial_batchnorm_test_mode_uses_running_averages(rng):
    bn = {"mode": "train", "momentum": 0.0}
    x = 3 * rng.standard_normal((6, 2, 3, 3)) - 2
    spatial_batchnorm_forward(x, np.ones(2), np.zeros(2), bn)
    bn["mode"] = "test"
    out, _ = spatial_batchnorm_forward(x, np.ones(2), np.zeros(2), bn)
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-10)


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (1, 2, 3, 3), (4, 1, 2, 1)])
def test_spatial_batchnorm_gradients_numerically(rng, shape):
    C = shape[1]
    x = 2 * rng.standard_normal(shape) + 1
    gamma, beta = rng.standard_normal(C), rng.standard_normal(C)
    out, cache = spatial_batchnorm_forward(x, gamma, beta, {"mode": "train"})
    dout = rng.standard_normal(out.shape)
    dx, dgamma, dbeta = spatial_batchnorm_backward(dout, cache)

    def f(x_, g_, b_):
        return spatial_batchnorm_forward(x_, g_, b_, {"mode": "train"})[0]
    assert rel_error(dx, eval_numerical_gradient_array(lambda v: f(v, gamma, beta), x, dout)) < 1e-7
    assert rel_error(dgamma, eval_numerical_gradient_array(lambda v: f(x, v, beta), gamma, dout)) < 1e-7
    assert rel_error(dbeta, eval_numerical_gradient_array(lambda v: f(x, gamma, v), beta, dout)) < 1e-7


@pytest.mark.parametrize("method, shape, stride, pad", [
    ("auto", (3, 16, 9, 8, 5, 3, 3), 1, 1),
    ("gemm", (3, 16, 9, 8, 5, 3, 3), 1, 1),
    ("winograd", (2, 2, 6, 7, 3, 3, 3), 1, 0),
    ("auto", (2, 3, 11, 11, 4, 5, 5), 2, 2),
    ("auto", (2, 4, 7, 9, 3, 3, 2), 3, 1),
    ("gemm", (2, 2, 6, 6, 3, 3, 3), 1, 0),
])
def test_against_torch(rng, torch, method, shape, stride, pad):
    N, C, H, W, F, HH, WW = shape
    x, w, b = (rng.standard_normal(s) for s in ((N, C, H, W), (F, C, HH, WW), (F,)))
    out, cache = conv_forward(x, w, b, {"stride": stride, "pad": pad, "method": method})
    dout = rng.standard_normal(out.shape)
    dx, dw, db = conv_backward(dout, cache)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    tout = torch.nn.functional.conv2d(tx, tw, tb, stride=stride, padding=pad)
    tout.backward(torch.tensor(dout))
    for mine, theirs in ((out, tout), (dx, tx.grad), (dw, tw.grad), (db, tb.grad)):
        np.testing.assert_allclose(mine, theirs.detach().numpy(), rtol=1e-10, atol=1e-10)


def test_max_pool_against_torch(rng, torch):
    x = rng.standard_normal((2, 3, 9, 7))
    out, cache = conv.max_pool_forward(x, {"pool_height": 3, "pool_width": 3, "stride": 2})
    dout = rng.standard_normal(out.shape)
    tx = torch.tensor(x, requires_grad=True)
    tout = torch.nn.functional.max_pool2d(tx, 3, stride=2)
    tout.backward(torch.tensor(dout))
    np.testing.assert_array_equal(out, tout.detach().numpy())
    np.testing.assert_allclose(conv.max_pool_backward(dout, cache), tx.grad.numpy(), atol=1e-14)


def test_blocks_on_threads_leave_blas_threads_as_they_were(rng, monkeypatch):
    import threadpoolctl
    from cs231n_lib.conv import blocks
    monkeypatch.setattr(blocks, "workers", lambda: 2)
    monkeypatch.setattr(blocks, "SPLIT_BYTES", 0)
    before = [i["num_threads"] for i in threadpoolctl.threadpool_info()]
    x, w, b = rng.standard_normal((4, 16, 6, 6)), rng.standard_normal((5, 16, 3, 3)), np.zeros(5)
    out, cache = conv_forward(x, w, b, {"stride": 1, "pad": 1})
    conv_backward(out, cache)
    assert [i["num_threads"] for i in threadpoolctl.threadpool_info()] == before


@pytest.mark.parametrize("method", ["gemm", "winograd"])
def test_integer_inputs_compute_in_float64(method):
    x = np.arange(2 * 2 * 4 * 4).reshape(2, 2, 4, 4)
    w = np.arange(3 * 2 * 3 * 3).reshape(3, 2, 3, 3) % 5 - 2
    b = np.array([1, 0, -1])
    cp = {"stride": 1, "pad": 1}
    out, cache = conv_forward(x, w, b, dict(cp, method=method))
    ref, ref_cache = conv.conv_forward_naive(x, w, b, cp)
    assert out.dtype == ref.dtype == np.float64
    np.testing.assert_allclose(out, ref, atol=1e-9)
    dout = np.ones(out.shape, dtype=int)
    for g, r in zip(conv_backward(dout, cache), conv.conv_backward_naive(dout, ref_cache)):
        assert g.dtype == np.float64
        np.testing.assert_allclose(g, r, atol=1e-9)


def test_without_threadpoolctl_blocks_run_in_the_calling_thread(monkeypatch):
    import threading

    from cs231n_lib.conv import blocks
    monkeypatch.setattr(blocks, "_blas", False)  # as if threadpoolctl were missing
    monkeypatch.setattr(blocks, "workers", lambda: 2)
    seen = blocks.run_blocks(lambda s: threading.get_ident(), [slice(0, 1), slice(1, 2)])
    assert seen == [threading.get_ident()] * 2
