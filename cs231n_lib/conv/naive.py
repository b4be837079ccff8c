"""The readable reference: convolution and max pooling as plain loops.

These are the definitions the fast paths in gemm, winograd and pool are
tested against, and the yardstick for their speed. Each output pixel is one dot product
between a filter and the window of the (padded) input under it.
"""

import numpy as np

from ..registry import exercise
from .shapes import conv_geometry, float_type, pool_geometry


@exercise("06_convolution")
def conv_forward_naive(x, w, b, conv_param):
    """Convolution (cross-correlation, as in every CNN library) by loops.

    x: (N, C, H, W); w: (F, C, HH, WW); b: (F,); conv_param: {'stride', 'pad'}.
    Returns out: (N, F, H_out, W_out) and cache = (x, w, b, conv_param), where
    H_out = 1 + (H + 2 * pad - HH) // stride and W_out likewise.
    """
    stride, pad, H_out, W_out = conv_geometry(x, w, b, conv_param)
    N = x.shape[0]
    F, _, HH, WW = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = np.zeros((N, F, H_out, W_out), dtype=float_type(x, w, b))
    for n in range(N):
        for f in range(F):
            for i in range(H_out):
                for j in range(W_out):
                    window = xp[n, :, i * stride:i * stride + HH, j * stride:j * stride + WW]
                    out[n, f, i, j] = np.sum(window * w[f]) + b[f]
    cache = (x, w, b, conv_param)
    return out, cache


@exercise("06_convolution")
def conv_backward_naive(dout, cache):
    """Backward pass of conv_forward_naive by the same loops.

    dout: (N, F, H_out, W_out). Returns dx: (N, C, H, W), dw: (F, C, HH, WW), db: (F,).
    Each output pixel sent its filter's weights to its window (-> dx) and its window's
    values to its filter (-> dw).
    """
    x, w, b, conv_param = cache
    stride, pad, H_out, W_out = conv_geometry(x, w, b, conv_param)
    if dout.shape != (x.shape[0], w.shape[0], H_out, W_out):
        raise ValueError(f"dout has shape {dout.shape}, expected "
                         f"{(x.shape[0], w.shape[0], H_out, W_out)}")
    N = x.shape[0]
    F, _, HH, WW = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dxp = np.zeros_like(xp, dtype=float_type(dout, w))
    dw = np.zeros_like(w, dtype=float_type(dout, x))
    db = dout.sum(axis=(0, 2, 3))
    for n in range(N):
        for f in range(F):
            for i in range(H_out):
                for j in range(W_out):
                    rows = slice(i * stride, i * stride + HH)
                    cols = slice(j * stride, j * stride + WW)
                    dxp[n, :, rows, cols] += w[f] * dout[n, f, i, j]
                    dw[f] += xp[n, :, rows, cols] * dout[n, f, i, j]
    dx = dxp[:, :, pad:pad + x.shape[2], pad:pad + x.shape[3]]
    return dx, dw, db


@exercise("06_convolution")
def max_pool_forward_naive(x, pool_param):
    """Max pooling by loops.

    x: (N, C, H, W); pool_param: {'pool_height', 'pool_width', 'stride'}.
    Returns out: (N, C, H_out, W_out) and cache = (x, pool_param).
    """
    height, width, stride, H_out, W_out = pool_geometry(x, pool_param)
    N, C = x.shape[:2]
    out = np.empty((N, C, H_out, W_out), dtype=x.dtype)
    for n in range(N):
        for c in range(C):
            for i in range(H_out):
                for j in range(W_out):
                    window = x[n, c, i * stride:i * stride + height, j * stride:j * stride + width]
                    out[n, c, i, j] = window.max()
    cache = (x, pool_param)
    return out, cache


@exercise("06_convolution")
def max_pool_backward_naive(dout, cache):
    """Backward pass of max_pool_forward_naive.

    dout: (N, C, H_out, W_out). Returns dx: (N, C, H, W). Each window's gradient goes to
    its maximum; on a tie, to the first maximum in row-major order (np.argmax's choice).
    """
    x, pool_param = cache
    height, width, stride, H_out, W_out = pool_geometry(x, pool_param)
    N, C = x.shape[:2]
    dx = np.zeros_like(x, dtype=np.result_type(x, dout))
    for n in range(N):
        for c in range(C):
            for i in range(H_out):
                for j in range(W_out):
                    window = x[n, c, i * stride:i * stride + height, j * stride:j * stride + width]
                    a, bb = np.unravel_index(np.argmax(window), window.shape)
                    dx[n, c, i * stride + a, j * stride + bb] += dout[n, c, i, j]
    return dx
