"""Convolutional layers: convolution, max pooling, spatial batch normalisation.

Each layer is a pair `X_forward(...) -> (out, cache)`, `X_backward(dout, cache)`.
Images are NCHW: x (N, C, H, W); filters w (F, C, HH, WW); bias b (F,).

The convolution has three implementations that compute the same thing:
- conv_forward_naive / conv_backward_naive (naive.py): loops, the definition;
- "gemm" (gemm.py): im2col with one matrix multiply per block of images (the
  positions of all the block's images side by side), any kernel size; a stride s > 1 is
  first turned into stride 1 by splitting the input into its s*s phases;
- "winograd" (winograd.py): 3x3 stride-1 filters with 36 multiplications per 4x4
  output block and channel instead of 144 (or 16 per 2x2 block instead of 36).
conv_forward takes "winograd" for 3x3 stride-1 layers with at least WINOGRAD_MIN_CHANNELS
input channels and "gemm" otherwise; conv_param['method'] ('auto' | 'gemm' | 'winograd')
overrides the choice, e.g. to compare them. Both fast paths cut the batch into blocks
sized to keep their scratch arrays to a few MiB; the blocks run side by side on the
cores, with BLAS held to one thread while a layer runs (blocks.py; needs
threadpoolctl, else the blocks run one after another), and reuse their scratch arrays
between calls (workspace.py). `python -m cs231n_lib.bench` times them. For the
textbook im2col (one gather, one matrix multiply for the whole batch) see notebook 06.
"""

import numpy as np

from ..layers import batchnorm_backward_alt, batchnorm_forward
from ..registry import exercise
from .gemm import conv_backward_gemm, conv_forward_gemm
from .naive import (conv_backward_naive, conv_forward_naive, max_pool_backward_naive,
                    max_pool_forward_naive)
from .pool import max_pool_backward_fast, max_pool_forward_fast
from .shapes import check_images, conv_geometry
from .winograd import conv_backward_winograd, conv_forward_winograd

__all__ = [
    "conv_forward", "conv_backward", "conv_forward_naive", "conv_backward_naive",
    "max_pool_forward", "max_pool_backward", "max_pool_forward_naive", "max_pool_backward_naive",
    "spatial_batchnorm_forward", "spatial_batchnorm_backward",
]

_METHODS = ("auto", "gemm", "winograd")

# Winograd moves 4x the input and 4x the output through memory to save multiplications;
# with few input channels there is little to save. Measured: at C=3 (bench layer A) gemm
# is 3-4x faster, at C=32 and C=64 (layers B, C) winograd is the faster one.
WINOGRAD_MIN_CHANNELS = 16


def _method(x, w, stride, conv_param):
    method = conv_param.get("method", "auto")
    if method not in _METHODS:
        raise ValueError(f"unknown conv_param['method'] {method!r}; expected one of {_METHODS}")
    winograd_fits = w.shape[2:] == (3, 3) and stride == 1
    if method == "winograd" and not winograd_fits:
        raise ValueError(f"method 'winograd' needs 3x3 filters and stride 1, got filters "
                         f"{w.shape[2]}x{w.shape[3]} and stride {stride}")
    if method == "auto":
        method = "winograd" if winograd_fits and x.shape[1] >= WINOGRAD_MIN_CHANNELS else "gemm"
    return method


def conv_forward(x, w, b, conv_param):
    """Convolution layer, vectorized.

    Inputs:
    - x: (N, C, H, W) images; w: (F, C, HH, WW) filters; b: (F,) biases.
    - conv_param: dict with 'stride' (>= 1) and 'pad' (zeros added on each side), and
      optionally 'method' ('auto' | 'gemm' | 'winograd').
    Returns:
    - out: (N, F, H_out, W_out), H_out = 1 + (H + 2 * pad - HH) // stride, W_out likewise
      (the division must be exact, else ValueError).
    - cache: for conv_backward.
    """
    stride, pad, _, _ = conv_geometry(x, w, b, conv_param)
    method = _method(x, w, stride, conv_param)
    if method == "winograd":
        out, cache = conv_forward_winograd(x, w, b, pad)
    else:
        out, cache = conv_forward_gemm(x, w, b, stride, pad)
    return out, (method, out.shape, cache)


def conv_backward(dout, cache):
    """Backward pass of conv_forward.

    Inputs: dout (N, F, H_out, W_out); cache from conv_forward.
    Returns: dx (N, C, H, W), dw (F, C, HH, WW), db (F,).
    """
    method, out_shape, inner = cache
    if np.shape(dout) != out_shape:
        raise ValueError(f"dout has shape {np.shape(dout)}, expected {out_shape}")
    if method == "winograd":
        return conv_backward_winograd(dout, inner)
    return conv_backward_gemm(dout, inner)


def max_pool_forward(x, pool_param):
    """Max pooling, vectorized.

    Inputs: x (N, C, H, W); pool_param with 'pool_height', 'pool_width', 'stride'.
    Returns: out (N, C, H_out, W_out), H_out = 1 + (H - pool_height) // stride (exact);
    cache for max_pool_backward.
    """
    return max_pool_forward_fast(x, pool_param)


def max_pool_backward(dout, cache):
    """Backward pass of max_pool_forward: dout (N, C, H_out, W_out) -> dx (N, C, H, W)."""
    return max_pool_backward_fast(dout, cache)


@exercise("04_batchnorm")
def spatial_batchnorm_forward(x, gamma, beta, bn_param):
    """Batch normalisation for images: per channel, over the batch and all positions.

    A channel's feature detector is the same at every position, so its statistics are
    taken over N*H*W values rather than N.

    Inputs: x (N, C, H, W); gamma, beta (C,); bn_param as for batchnorm_forward
    ('mode', optional 'eps', 'momentum', 'running_mean', 'running_var').
    Returns: out (N, C, H, W); cache for spatial_batchnorm_backward.
    """
    check_images(x)
    N, C, H, W = shape = x.shape
    # (N, C, H, W) -> (N*H*W, C): every pixel of every image is one sample of C features.
    rows = x.transpose(0, 2, 3, 1).reshape(N * H * W, C)
    out_rows, bn_cache = batchnorm_forward(rows, gamma, beta, bn_param)
    out = np.ascontiguousarray(out_rows.reshape(N, H, W, C).transpose(0, 3, 1, 2))
    cache = (shape, bn_cache)
    return out, cache


@exercise("04_batchnorm")
def spatial_batchnorm_backward(dout, cache):
    """Backward pass of spatial_batchnorm_forward.

    Inputs: dout (N, C, H, W); cache.
    Returns: dx (N, C, H, W), dgamma (C,), dbeta (C,).
    """
    shape, bn_cache = cache
    if np.shape(dout) != shape:
        raise ValueError(f"dout has shape {np.shape(dout)}, expected {shape}")
    N, C, H, W = shape
    drows = dout.transpose(0, 2, 3, 1).reshape(N * H * W, C)
    dx_rows, dgamma, dbeta = batchnorm_backward_alt(drows, bn_cache)
    dx = np.ascontiguousarray(dx_rows.reshape(N, H, W, C).transpose(0, 3, 1, 2))
    return dx, dgamma, dbeta
