"""The loop reference: a hand-computed case and centred numerical gradients."""

import numpy as np
import pytest

from cs231n_lib.conv import conv_backward_naive, conv_forward_naive
from cs231n_lib.gradcheck import eval_numerical_gradient_array, rel_error


def test_hand_computed_cross_correlation():
    # One 3x3 image, a 2x2 kernel, stride 1, no pad: each output is a window's dot product.
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    w = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    out, _ = conv_forward_naive(x, w, np.array([0.5]), {"stride": 1, "pad": 0})
    expected = [[0 + 2 + 9 + 16, 1 + 4 + 12 + 20], [3 + 8 + 18 + 28, 4 + 10 + 21 + 32]]
    np.testing.assert_array_equal(out[0, 0], np.array(expected) + 0.5)


def test_padding_is_zeros():
    x = np.ones((1, 1, 1, 1))
    out, _ = conv_forward_naive(x, np.ones((1, 1, 3, 3)), np.zeros(1), {"stride": 1, "pad": 1})
    np.testing.assert_array_equal(out, np.ones((1, 1, 1, 1)))


@pytest.mark.parametrize("shape, stride, pad", [
    ((2, 3, 7, 7, 4, 3, 3), 2, 1),
    ((1, 2, 5, 6, 3, 2, 3), 1, 0),
    ((2, 1, 6, 6, 2, 4, 4), 2, 3),
    ((1, 1, 4, 4, 1, 1, 1), 3, 0),
])
def test_naive_gradients_numerically(rng, shape, stride, pad):
    N, C, H, W, F, HH, WW = shape
    x = rng.standard_normal((N, C, H, W))
    w = rng.standard_normal((F, C, HH, WW))
    b = rng.standard_normal(F)
    cp = {"stride": stride, "pad": pad}
    out, cache = conv_forward_naive(x, w, b, cp)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = conv_backward_naive(dout, cache)
    assert rel_error(dx, eval_numerical_gradient_array(
        lambda v: conv_forward_naive(v, w, b, cp)[0], x, dout)) < 1e-8
    assert rel_error(dw, eval_numerical_gradient_array(
        lambda v: conv_forward_naive(x, v, b, cp)[0], w, dout)) < 1e-8
    assert rel_error(db, eval_numerical_gradient_array(
        lambda v: conv_forward_naive(x, w, v, cp)[0], b, dout)) < 1e-8
