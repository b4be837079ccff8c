"""Max pooling: the strided-slice maximum against the loops, and numerically."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cs231n_lib.conv import (max_pool_backward, max_pool_backward_naive, max_pool_forward,
                             max_pool_forward_naive)
from cs231n_lib.gradcheck import eval_numerical_gradient_array, rel_error


@st.composite
def pool_problems(draw):
    ph, pw, s = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    H_out, W_out = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    N, C = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shape = (N, C, (H_out - 1) * s + ph, (W_out - 1) * s + pw)
    # Rounded values make ties common: both paths must send the gradient to the same input.
    x = np.round(rng.standard_normal(shape), draw(st.sampled_from([0, 1, 8])))
    return x, {"pool_height": ph, "pool_width": pw, "stride": s}, \
        rng.standard_normal((N, C, H_out, W_out))


@settings(max_examples=60, deadline=None)
@given(pool_problems())
def test_fast_pool_matches_naive(problem):
    x, pp, dout = problem
    out, cache = max_pool_forward(x, pp)
    ref, ref_cache = max_pool_forward_naive(x, pp)
    np.testing.assert_array_equal(out, ref)
    # Same routing; overlapping windows may add their shares in another order.
    np.testing.assert_allclose(max_pool_backward(dout, cache),
                               max_pool_backward_naive(dout, ref_cache), rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("forward, backward", [(max_pool_forward, max_pool_backward),
                                               (max_pool_forward_naive, max_pool_backward_naive)])
@pytest.mark.parametrize("shape, pp", [
    ((2, 3, 8, 8), (2, 2, 2)),  # non-overlapping
    ((1, 2, 7, 5), (3, 3, 2)),  # overlapping
    ((2, 1, 6, 7), (2, 3, 1)),  # overlapping, rectangular
])
def test_pool_gradients_numerically(rng, forward, backward, shape, pp):
    # Distinct values spaced far apart, so a step of h never changes which input is the max.
    x = rng.permutation(np.prod(shape)).reshape(shape) * 0.1
    param = dict(zip(("pool_height", "pool_width", "stride"), pp))
    out, cache = forward(x, param)
    dout = rng.standard_normal(out.shape)
    num = eval_numerical_gradient_array(lambda v: forward(v, param)[0], x, dout)
    assert rel_error(backward(dout, cache), num) < 1e-8


def test_pool_keeps_float32(rng):
    x = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    out, cache = max_pool_forward(x, {"pool_height": 2, "pool_width": 2, "stride": 2})
    assert out.dtype == np.float32
    assert max_pool_backward(np.ones_like(out), cache).dtype == np.float32
