"""Shape strategies and reference checks shared by the convolution tests."""

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st

from cs231n_lib.conv import conv_backward_naive, conv_forward_naive


@st.composite
def conv_problems(draw, kernel=None, stride=None):
    """A float64 convolution whose stride and pad tile the input, with a random dout.

    Sizes are drawn through the output size, so every draw is valid: N, C, F in 1..3,
    rectangular kernels and images, stride 1-3, pad 0-3.
    """
    s = draw(st.integers(1, 3)) if stride is None else stride
    pad = draw(st.integers(0, 3))
    HH, WW = kernel if kernel else (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    H_out, W_out = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    H, W = (H_out - 1) * s + HH - 2 * pad, (W_out - 1) * s + WW - 2 * pad
    assume(H >= 1 and W >= 1)
    N, C, F = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return dict(x=rng.standard_normal((N, C, H, W)), w=rng.standard_normal((F, C, HH, WW)),
                b=rng.standard_normal(F), conv_param={"stride": s, "pad": pad},
                dout=rng.standard_normal((N, F, H_out, W_out)))


def assert_matches_naive(p, forward, backward, tol=1e-10):
    """forward/backward (conv_forward's signature) agree with the loops on out, dx, dw, db."""
    out, cache = forward(p["x"], p["w"], p["b"], p["conv_param"])
    ref_out, ref_cache = conv_forward_naive(p["x"], p["w"], p["b"], p["conv_param"])
    np.testing.assert_allclose(out, ref_out, rtol=tol, atol=tol)
    grads = backward(p["dout"], cache)
    ref = conv_backward_naive(p["dout"], ref_cache)
    for name, g, r in zip(("dx", "dw", "db"), grads, ref):
        assert g.shape == r.shape, name
        np.testing.assert_allclose(g, r, rtol=tol, atol=tol, err_msg=name)
