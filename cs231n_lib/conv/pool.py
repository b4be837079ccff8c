"""Fast max pooling: one elementwise maximum per position in the pooling window.

A pool_height x pool_width window has pool_height * pool_width offsets; at offset (i, j)
the inputs of every window form the strided slice x[:, :, i::stride, j::stride]. The
output is the running maximum over those few slices, which is much faster than
reshaping into windows and reducing (and works for overlapping windows too).
"""

import numpy as np

from .shapes import pool_geometry


def _offset_slices(ph, pw, stride, H_out, W_out):
    for i in range(ph):
        for j in range(pw):
            yield (slice(None), slice(None), slice(i, i + stride * (H_out - 1) + 1, stride),
                   slice(j, j + stride * (W_out - 1) + 1, stride))


def max_pool_forward_fast(x, pool_param):
    """x (N, C, H, W) -> out (N, C, H_out, W_out) and cache (x, out, pool_param)."""
    ph, pw, stride, H_out, W_out = pool_geometry(x, pool_param)
    slices = _offset_slices(ph, pw, stride, H_out, W_out)
    out = x[next(slices)].copy()
    for s in slices:
        np.maximum(out, x[s], out=out)
    return out, (x, out, pool_param)


def max_pool_backward_fast(dout, cache):
    """dout (N, C, H_out, W_out) -> dx (N, C, H, W).

    Each window's gradient goes to its maximum; on a tie to the first one in row-major
    window order, like np.argmax in the naive version. Offsets are visited in that order
    and `routed` marks the windows already served.
    """
    x, out, pool_param = cache
    ph, pw, stride, H_out, W_out = pool_geometry(x, pool_param)
    if dout.shape != out.shape:
        raise ValueError(f"dout has shape {dout.shape}, expected {out.shape}")
    dx = np.zeros(x.shape, dtype=np.result_type(x, dout))
    routed = np.zeros(out.shape, dtype=bool)
    for s in _offset_slices(ph, pw, stride, H_out, W_out):
        hit = x[s] == out
        hit &= ~routed
        routed |= hit
        # += rather than =: overlapping windows can send gradient to the same input.
        dx[s] += np.where(hit, dout, 0)
    return dx
