"""The GEMM path (im2col per block of images; space to depth for strides > 1) against the loops."""

import numpy as np
import pytest
from hypothesis import given, settings

from cs231n_lib.conv import blocks, conv_backward, conv_forward, gemm
from cs231n_lib.gradcheck import eval_numerical_gradient_array, rel_error

from conv_helpers import assert_matches_naive, conv_problems


def gemm_forward(x, w, b, conv_param):
    return conv_forward(x, w, b, dict(conv_param, method="gemm"))


@settings(max_examples=60, deadline=None)
@given(conv_problems())
def test_gemm_matches_naive(p):
    assert_matches_naive(p, gemm_forward, conv_backward)


@pytest.mark.parametrize("shape, stride, pad", [
    ((2, 3, 6, 7, 2, 3, 3), 1, 1),  # K = 27 > F = 2
    ((2, 2, 7, 5, 3, 5, 3), 2, 2),
    ((2, 1, 6, 7, 9, 3, 2), 1, 1),  # K = 6 <= F = 9
    ((2, 1, 7, 7, 17, 3, 3), 2, 1),  # K = 1*2*2*2*2 = 16 <= F = 17
    ((1, 2, 5, 6, 3, 1, 1), 1, 0),  # 1x1: no shift, no cropped positions, no slack
    ((3, 2, 9, 4, 2, 4, 1), 1, 0),  # shifts by whole rows only
    ((1, 1, 5, 9, 2, 1, 5), 2, 2),  # shifts within a row only, batch of one
])
def test_shifted_columns_match_naive(rng, shape, stride, pad):
    # The shifted copies of the last channel of the last image read past its end (into
    # cropped positions): the buffer's slack must cover that (exactly, at stride 1, where
    # every channel meets the last kernel offset).
    N, C, H, W, F, HH, WW = shape
    p = dict(x=rng.standard_normal((N, C, H, W)), w=rng.standard_normal((F, C, HH, WW)),
             b=rng.standard_normal(F), conv_param={"stride": stride, "pad": pad})
    out, cache = gemm_forward(p["x"], p["w"], p["b"], p["conv_param"])
    g = cache[2][3]
    assert g.K == C * HH * WW  # one column per real kernel tap, none for the phase padding
    last_read = max(start + count * N * g.P for _, count, start in g.shifted_runs(N))
    assert last_read <= g.Cs * N * g.P + g.slack
    assert last_read == g.Cs * N * g.P + g.slack or stride > 1
    p["dout"] = rng.standard_normal(out.shape)
    assert_matches_naive(p, gemm_forward, conv_backward)


@pytest.mark.parametrize("shape, stride, pad, Hs, Ws", [
    ((3, 3, 31, 31, 4, 5, 5), 2, 2, 17, 17),  # bench layer D: of 18x18, one row and column shared
    ((3, 3, 32, 32, 4, 3, 3), 1, 1, 33, 33),  # bench layer A: of 34x34
    ((3, 1, 6, 7, 2, 3, 3), 1, 0, 6, 7),  # no padding, nothing to share
    ((3, 1, 5, 5, 2, 3, 3), 2, 1, 4, 4),  # phase 0 starts and ends with zeros, phase 1 does not
    ((3, 2, 4, 9, 2, 3, 5), 1, 3, 8, 12),  # 3 zero rows, but only kh - 1 = 2 are read past
])
def test_images_and_rows_share_their_padding_zeros(rng, shape, stride, pad, Hs, Ws):
    # The rows the last outputs of one image (row) read past its end are the next one's
    # leading padding zeros, where every phase has them: the same numbers as alone.
    N, C, H, W, F, HH, WW = shape
    p = dict(x=rng.standard_normal((N, C, H, W)), w=rng.standard_normal((F, C, HH, WW)),
             b=rng.standard_normal(F), conv_param={"stride": stride, "pad": pad})
    out, cache = gemm_forward(p["x"], p["w"], p["b"], p["conv_param"])
    g = cache[2][3]
    assert (g.Hs, g.Ws) == (Hs, Ws)
    p["dout"] = rng.standard_normal(out.shape)
    assert_matches_naive(p, gemm_forward, conv_backward)


@pytest.mark.parametrize("shape, stride, pad", [
    ((2, 3, 5, 7, 2, 3, 3), 1, 1),
    ((1, 2, 7, 7, 3, 5, 3), 2, 2),
    ((2, 2, 7, 4, 2, 2, 2), 3, 2),
])
def test_gemm_gradients_numerically(rng, shape, stride, pad):
    N, C, H, W, F, HH, WW = shape
    x, w, b = (rng.standard_normal(s) for s in ((N, C, H, W), (F, C, HH, WW), (F,)))
    cp = {"stride": stride, "pad": pad, "method": "gemm"}
    out, cache = conv_forward(x, w, b, cp)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = conv_backward(dout, cache)
    for grad, arg in ((dx, 0), (dw, 1), (db, 2)):
        args = [x, w, b]

        def f(v, arg=arg, args=args):
            args = list(args)
            args[arg] = v
            return conv_forward(*args, cp)[0]
        assert rel_error(grad, eval_numerical_gradient_array(f, args[arg], dout)) < 1e-8


def _run(x, w, b, cp, dout):
    out, cache = conv_forward(x, w, b, cp)
    return (out,) + conv_backward(dout, cache), cache


@pytest.mark.parametrize("stride, pad, k", [(1, 1, 3), (2, 2, 5), (3, 0, 3)])
def test_blocked_and_rebuilt_equal_whole(rng, monkeypatch, stride, pad, k):
    x = rng.standard_normal((7, 3, 9, 9))
    w, b = rng.standard_normal((4, 3, k, k)), rng.standard_normal(4)
    cp = {"stride": stride, "pad": pad, "method": "gemm"}
    monkeypatch.setattr(blocks, "MIN_BLOCKS", 1)
    monkeypatch.setattr(blocks, "SPLIT_BYTES", 0)
    monkeypatch.setattr(blocks, "workers", lambda: 1)
    dout = rng.standard_normal(conv_forward(x, w, b, cp)[0].shape)
    whole, cache = _run(x, w, b, cp, dout)
    assert len(cache[2][4]) == 1  # one block, its columns kept
    # Blocks of 2 images (2, 2, 2, 1), on two threads; then columns not kept but rebuilt.
    monkeypatch.setattr(blocks, "MIN_BLOCKS", 4)
    monkeypatch.setattr(blocks, "workers", lambda: 2)
    blocked, cache = _run(x, w, b, cp, dout)
    assert len(cache[2][4]) == 4
    monkeypatch.setattr(gemm, "MAX_WORKSPACE_BYTES", 0)
    rebuilt, cache = _run(x, w, b, cp, dout)
    assert cache[2][4] is None
    # Each image is computed alike; BLAS may block a narrower matrix differently and dw is
    # summed in parts, so equal up to rounding.
    for got in (blocked, rebuilt):
        for a, e in zip(got, whole):
            np.testing.assert_allclose(a, e, rtol=1e-13, atol=1e-13)
    for a, e in zip(rebuilt, blocked):
        np.testing.assert_array_equal(a, e)  # same blocks: same arithmetic, any thread count


def test_float32_in_float32_out(rng):
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    w = rng.standard_normal((4, 3, 5, 5)).astype(np.float32)
    b = np.zeros(4, np.float32)
    out, cache = conv_forward(x, w, b, {"stride": 1, "pad": 2, "method": "gemm"})
    grads = conv_backward(np.ones_like(out), cache)
    assert out.dtype == np.float32 and all(g.dtype == np.float32 for g in grads)
    ref, _ = conv_forward(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64),
                          {"stride": 1, "pad": 2, "method": "gemm"})
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)


def test_repeated_calls_do_not_share_results(rng):
    # Scratch arrays are reused between calls; outputs and caches must not be.
    cp = {"stride": 1, "pad": 1, "method": "gemm"}
    x1, x2 = rng.standard_normal((2, 2, 5, 5)), rng.standard_normal((2, 2, 5, 5))
    w, b = rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3)
    out1, cache1 = conv_forward(x1, w, b, cp)
    keep = out1.copy()
    dout = rng.standard_normal(out1.shape)
    g1 = [g.copy() for g in conv_backward(dout, cache1)]
    conv_forward(x2, w, b, cp)
    np.testing.assert_array_equal(out1, keep)
    for a, c in zip(conv_backward(dout, cache1), g1):
        np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("shape, stride, pad", [
    ((3, 3, 6, 7, 4, 3, 3), 1, 1),
    ((2, 2, 7, 7, 3, 5, 5), 2, 2),
    ((1, 2, 5, 6, 3, 3, 2), 1, 0),  # batch of one
])
def test_dw_summed_image_by_image(rng, monkeypatch, shape, stride, pad):
    # Where one image's dw product is just below SMALL_GEMM, dw is summed image by image.
    N, C, H, W, F, HH, WW = shape
    x, w, b = (rng.standard_normal(s) for s in ((N, C, H, W), (F, C, HH, WW), (F,)))
    cp = {"stride": stride, "pad": pad, "method": "gemm"}
    g = gemm._Geometry(x.shape, w.shape, stride, pad)
    monkeypatch.setattr(gemm, "SMALL_GEMM", g.F * (g.K + 1) * g.P)
    assert len(g.dw_chunks(N)) == N
    out, cache = conv_forward(x, w, b, cp)
    dout = rng.standard_normal(out.shape)
    assert_matches_naive(dict(x=x, w=w, b=b, conv_param=cp, dout=dout), gemm_forward,
                         conv_backward)
    _, dw, db = conv_backward(dout, cache)
    for grad, arg in ((dw, 1), (db, 2)):
        def f(v, arg=arg):
            args = [x, w, b]
            args[arg] = v
            return conv_forward(*args, cp)[0]
        assert rel_error(grad, eval_numerical_gradient_array(f, [x, w, b][arg], dout)) < 1e-8
    monkeypatch.setattr(gemm, "SMALL_GEMM", g.F * (g.K + 1) * g.P * 2)
    assert len(g.dw_chunks(N)) == 1  # an image's product too small: the block's one product
