"""Winograd F(2x2, 3x3) against the loops, numerically, and chunked."""

import numpy as np
import pytest
from hypothesis import given, settings

from cs231n_lib import conv_blocks, conv_winograd
from cs231n_lib.conv import conv_backward, conv_forward
from cs231n_lib.gradcheck import eval_numerical_gradient_array, rel_error

from conv_helpers import assert_matches_naive, conv_problems


def winograd_forward(x, w, b, conv_param):
    return conv_forward(x, w, b, dict(conv_param, method="winograd"))


@settings(max_examples=50, deadline=None)
@given(conv_problems(kernel=(3, 3), stride=1))
def test_winograd_matches_naive(p):
    # Odd and even output sizes, so the last tile sometimes sticks out of the image.
    assert_matches_naive(p, winograd_forward, conv_backward)


@pytest.mark.parametrize("shape, pad", [((2, 3, 5, 6, 2), 1), ((1, 2, 4, 4, 3), 0),
                                        ((2, 1, 3, 3, 1), 3)])
def test_winograd_gradients_numerically(rng, shape, pad):
    N, C, H, W, F = shape
    x, w, b = (rng.standard_normal(s) for s in ((N, C, H, W), (F, C, 3, 3), (F,)))
    cp = {"stride": 1, "pad": pad, "method": "winograd"}
    out, cache = conv_forward(x, w, b, cp)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = conv_backward(dout, cache)
    assert rel_error(dx, eval_numerical_gradient_array(
        lambda v: conv_forward(v, w, b, cp)[0], x, dout)) < 1e-8
    assert rel_error(dw, eval_numerical_gradient_array(
        lambda v: conv_forward(x, v, b, cp)[0], w, dout)) < 1e-8
    assert rel_error(db, eval_numerical_gradient_array(
        lambda v: conv_forward(x, w, v, cp)[0], b, dout)) < 1e-8


def test_winograd_blocked_and_rebuilt_equal_whole(rng, monkeypatch):
    x = rng.standard_normal((5, 4, 7, 6))
    w, b = rng.standard_normal((3, 4, 3, 3)), rng.standard_normal(3)
    cp = {"stride": 1, "pad": 1, "method": "winograd"}
    monkeypatch.setattr(conv_blocks, "MIN_BLOCKS", 1)
    monkeypatch.setattr(conv_blocks, "SPLIT_BYTES", 0)
    monkeypatch.setattr(conv_blocks, "workers", lambda: 1)

    def run():
        out, cache = conv_forward(x, w, b, cp)
        return (out,) + conv_backward(dout, cache), cache
    dout = rng.standard_normal(conv_forward(x, w, b, cp)[0].shape)
    whole, cache = run()
    assert cache[2][3] is not None  # V kept
    monkeypatch.setattr(conv_blocks, "MIN_BLOCKS", 3)
    monkeypatch.setattr(conv_blocks, "workers", lambda: 2)
    assert len(cache[2][2].blocks(8)) == 3
    blocked, _ = run()
    monkeypatch.setattr(conv_winograd, "MAX_WORKSPACE_BYTES", 0)
    rebuilt, cache = run()
    assert cache[2][3] is None  # V rebuilt block by block in the backward pass
    for got in (blocked, rebuilt):
        for a, e in zip(got, whole):
            np.testing.assert_allclose(a, e, rtol=1e-13, atol=1e-13)
    for a, e in zip(rebuilt, blocked):
        np.testing.assert_array_equal(a, e)


def test_winograd_float32_accuracy(rng):
    x = rng.standard_normal((4, 32, 8, 8)).astype(np.float32)
    w = (rng.standard_normal((16, 32, 3, 3)) / 17).astype(np.float32)
    b = np.zeros(16, np.float32)
    cp = {"stride": 1, "pad": 1}
    out, cache = conv_forward(x, w, b, dict(cp, method="winograd"))
    ref, ref_cache = conv_forward(*(a.astype(np.float64) for a in (x, w, b)), cp | {"method": "gemm"})
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    for g, r in zip(conv_backward(dout, cache), conv_backward(dout.astype(np.float64), ref_cache)):
        assert g.dtype == np.float32
        np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-3 * np.abs(r).max())


def test_auto_picks_winograd_only_where_it_applies(rng):
    from cs231n_lib.conv import WINOGRAD_MIN_CHANNELS
    C = WINOGRAD_MIN_CHANNELS
    b = np.zeros(2)
    _, cache = conv_forward(np.zeros((1, C, 4, 4)), np.zeros((2, C, 3, 3)), b, {"stride": 1, "pad": 1})
    assert cache[0] == "winograd"
    _, cache = conv_forward(np.zeros((1, C, 5, 5)), np.zeros((2, C, 3, 3)), b, {"stride": 2, "pad": 1})
    assert cache[0] == "gemm"
    _, cache = conv_forward(np.zeros((1, C, 4, 4)), np.zeros((2, C, 5, 5)), b, {"stride": 1, "pad": 2})
    assert cache[0] == "gemm"
