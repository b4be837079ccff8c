"""Winograd F(2x2, 3x3) and F(4x4, 3x3) against the loops, numerically, and chunked."""

import numpy as np
import pytest
from hypothesis import given, settings

from cs231n_lib.conv import blocks, conv_backward, conv_forward, winograd
from cs231n_lib.gradcheck import eval_numerical_gradient_array, rel_error

from conv_helpers import assert_matches_naive, conv_problems


def winograd_forward(x, w, b, conv_param):
    return conv_forward(x, w, b, dict(conv_param, method="winograd"))


def tiled_forward(m):
    """conv_forward's signature, Winograd with output blocks of m x m."""
    def forward(x, w, b, conv_param):
        return winograd.conv_forward_winograd(x, w, b, conv_param["pad"], m=m)
    return forward


@settings(max_examples=50, deadline=None)
@given(conv_problems(kernel=(3, 3), stride=1))
def test_winograd_matches_naive(p):
    # Odd and even output sizes, so the last tile sometimes sticks out of the image.
    assert_matches_naive(p, winograd_forward, conv_backward)


@pytest.mark.parametrize("m", winograd.TILE_SIZES)
@settings(max_examples=40, deadline=None)
@given(p=conv_problems(kernel=(3, 3), stride=1))
def test_each_tile_size_matches_naive(m, p):
    assert_matches_naive(p, tiled_forward(m), winograd.conv_backward_winograd)


def test_tile_size_is_the_one_with_fewer_products():
    assert winograd.tile_size(8, 8) == 4  # 4 tiles x 36 against 16 tiles x 16
    assert winograd.tile_size(16, 16) == 4
    assert winograd.tile_size(6, 6) == 2  # 144 products either way: the finer tile
    assert winograd.tile_size(2, 2) == 2
    with pytest.raises(ValueError, match="block size must be one of"):
        winograd.conv_forward_winograd(np.zeros((1, 1, 4, 4)), np.zeros((1, 1, 3, 3)),
                                            np.zeros(1), 1, m=3)


@pytest.mark.parametrize("m", winograd.TILE_SIZES)
@pytest.mark.parametrize("shape, pad", [((2, 3, 5, 6, 2), 1), ((1, 2, 4, 4, 3), 0),
                                        ((2, 1, 3, 3, 1), 3), ((1, 2, 9, 7, 2), 1)])
def test_winograd_gradients_numerically(rng, shape, pad, m):
    N, C, H, W, F = shape
    x, w, b = (rng.standard_normal(s) for s in ((N, C, H, W), (F, C, 3, 3), (F,)))
    forward = tiled_forward(m)
    cp = {"stride": 1, "pad": pad}
    out, cache = forward(x, w, b, cp)
    assert cache[2].m == m
    dout = rng.standard_normal(out.shape)
    dx, dw, db = winograd.conv_backward_winograd(dout, cache)
    # The centred difference divides the forward pass's rounding (~1e-14 for F(4x4), whose
    # transforms hold larger numbers) by 2h = 2e-5: 1e-7 is what float64 allows here.
    tol = 1e-8 if m == 2 else 1e-7
    assert rel_error(dx, eval_numerical_gradient_array(
        lambda v: forward(v, w, b, cp)[0], x, dout)) < tol
    assert rel_error(dw, eval_numerical_gradient_array(
        lambda v: forward(x, v, b, cp)[0], w, dout)) < tol
    assert rel_error(db, eval_numerical_gradient_array(
        lambda v: forward(x, w, v, cp)[0], b, dout)) < tol


def test_winograd_blocked_and_rebuilt_equal_whole(rng, monkeypatch):
    x = rng.standard_normal((5, 4, 7, 6))
    w, b = rng.standard_normal((3, 4, 3, 3)), rng.standard_normal(3)
    cp = {"stride": 1, "pad": 1, "method": "winograd"}
    monkeypatch.setattr(blocks, "MIN_BLOCKS", 1)
    monkeypatch.setattr(blocks, "SPLIT_BYTES", 0)
    monkeypatch.setattr(blocks, "workers", lambda: 1)

    def run():
        out, cache = conv_forward(x, w, b, cp)
        return (out,) + conv_backward(dout, cache), cache
    dout = rng.standard_normal(conv_forward(x, w, b, cp)[0].shape)
    whole, cache = run()
    assert cache[2][3] is not None  # V kept
    monkeypatch.setattr(blocks, "MIN_BLOCKS", 3)
    monkeypatch.setattr(blocks, "workers", lambda: 2)
    assert len(cache[2][2].blocks()) == 3
    blocked, _ = run()
    monkeypatch.setattr(winograd, "MAX_WORKSPACE_BYTES", 0)
    rebuilt, cache = run()
    assert cache[2][3] is None  # V rebuilt block by block in the backward pass
    for got in (blocked, rebuilt):
        for a, e in zip(got, whole):
            np.testing.assert_allclose(a, e, rtol=1e-13, atol=1e-13)
    for a, e in zip(rebuilt, blocked):
        np.testing.assert_array_equal(a, e)


@pytest.mark.parametrize("m, bound", [(2, 2e-6), (4, 3e-5)])
def test_winograd_float32_accuracy(rng, m, bound):
    # F(4x4, 3x3)'s transforms hold numbers up to 8 and 1/24: ~10x the rounding error of
    # F(2x2, 3x3) or a plain matrix multiply, measured at 5e-6 to 1e-5 of the largest output.
    x = rng.standard_normal((4, 64, 8, 8))
    w = rng.standard_normal((32, 64, 3, 3)) * np.sqrt(2 / (9 * 64))
    b = rng.standard_normal(32)
    out, cache = winograd.conv_forward_winograd(*(a.astype(np.float32) for a in (x, w, b)), 1, m=m)
    ref, ref_cache = conv_forward(x, w, b, {"stride": 1, "pad": 1, "method": "gemm"})
    assert out.dtype == np.float32
    assert np.abs(out - ref).max() < bound * np.abs(ref).max()
    dout = rng.standard_normal(out.shape)
    grads = winograd.conv_backward_winograd(dout.astype(np.float32), cache)
    for g, r in zip(grads, conv_backward(dout, ref_cache)):
        assert g.dtype == np.float32
        assert np.abs(g - r).max() < bound * np.abs(r).max()


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
