"""Convolution as matrix multiplies, one per image (any kernel, any stride).

im2col: for each image, copy every receptive field into a column of a matrix
cols (C*HH*WW, H_out*W_out); then out[n] = w.reshape(F, -1) @ cols[n] is the whole
convolution of image n, and it lands directly in NCHW order. The copies are done one
kernel offset (c, kh, kw) at a time: each is the (H_out, W_out) window of the padded
image shifted by (kh, kw), so numpy copies whole rows rather than single numbers.
A row of ones appended to cols carries the bias through the same multiply, and in the
backward pass gives db as a by-product of dw.

Strides s > 1 are turned into stride 1 first (space to depth): split the padded input
into its s*s phases xp[:, :, a::s, b::s] and the kernel likewise; a stride-s convolution
is then a stride-1 convolution of the C*s*s phase channels with ceil(HH/s) x ceil(WW/s)
kernels (zero where the kernel has no tap). So every window copy is a plain slice.

Measured alternative, dropped: "shifted rows" (each channel flattened, the output computed
on the full padded width so that every kernel offset is one long contiguous run) copies
faster but then has to crop the output, which cost more than it saved.

The backward pass reuses cols: dw = dout[n] @ cols[n]^T summed over images, and
dx is w^T @ dout[n] scattered back (col2im) with one slice-add per kernel offset.
"""

import math

import numpy as np

from .conv_blocks import blocks, run_blocks
from .conv_shapes import float_type
from .conv_workspace import workspace

# The column matrices are kept for the backward pass up to this size, else rebuilt there.
MAX_WORKSPACE_BYTES = 256 * 2**20


class _Geometry:
    """Sizes of the stride-1 problem a (possibly strided) convolution is turned into."""

    def __init__(self, x_shape, w_shape, stride, pad):
        N, C, H, W = x_shape
        F, _, HH, WW = w_shape
        s = stride
        self.N, self.C, self.H, self.W, self.F, self.HH, self.WW = N, C, H, W, F, HH, WW
        self.s, self.pad = s, pad
        self.H_out = (H + 2 * pad - HH) // s + 1
        self.W_out = (W + 2 * pad - WW) // s + 1
        self.kh, self.kw = math.ceil(HH / s), math.ceil(WW / s)  # phase kernel
        self.Hs = self.H_out + self.kh - 1  # phase image height
        self.Ws = self.W_out + self.kw - 1
        self.Cs = C * s * s  # phase channels
        self.K = self.Cs * self.kh * self.kw  # GEMM inner size
        self.L = self.H_out * self.W_out  # output positions per image

    def blocks(self, itemsize):
        # Per image: the columns, their gradient and the GEMM result.
        return blocks(self.N, (2 * self.K + self.F) * self.L * itemsize)

    def phases(self):
        """For each phase (a, b): its slice of x and where it lands in the phase image."""
        s, p = self.s, self.pad
        for a in range(s):
            i0 = -(-(p - a) // s) if p > a else 0  # first phase row inside x
            r0 = a + s * i0 - p  # the x row it holds
            nr = len(range(r0, self.H, s))
            for b in range(s):
                j0 = -(-(p - b) // s) if p > b else 0
                c0 = b + s * j0 - p
                nc = len(range(c0, self.W, s))
                yield a, b, (slice(r0, None, s), slice(c0, None, s)), \
                    (slice(i0, i0 + nr), slice(j0, j0 + nc))


def _phase_weights(w, g):
    """w (F, C, HH, WW) -> (F, C*s*s*kh*kw): the kernel split into its stride phases."""
    s = g.s
    if s == 1:
        return w.reshape(g.F, g.K)
    wp = np.zeros((g.F, g.C, g.kh * s, g.kw * s), dtype=w.dtype)
    wp[:, :, :g.HH, :g.WW] = w
    return wp.reshape(g.F, g.C, g.kh, s, g.kw, s).transpose(0, 1, 3, 5, 2, 4).reshape(g.F, g.K)


def _phase_weights_backward(dw2, g):
    """Adjoint of _phase_weights: (F, K) -> (F, C, HH, WW), dropping the padding taps."""
    s = g.s
    if s == 1:
        return dw2.reshape(g.F, g.C, g.HH, g.WW)
    d = dw2.reshape(g.F, g.C, s, s, g.kh, g.kw).transpose(0, 1, 4, 2, 5, 3)
    return np.ascontiguousarray(d.reshape(g.F, g.C, g.kh * s, g.kw * s)[:, :, :g.HH, :g.WW])


def _image_buffer(x, g):
    """x block (n, C, H, W) -> zero-padded phase images (n, Cs, Hs, Ws)."""
    n, s = x.shape[0], g.s
    tag = (g.C, g.H, g.W, s, g.pad)
    buf = workspace("gemm-x", (n, g.Cs, g.Hs, g.Ws), x.dtype, zeroed=True, tag=tag)
    img = buf.reshape(n, g.C, s, s, g.Hs, g.Ws)
    for a, b, src, dst in g.phases():
        img[:, :, a, b, dst[0], dst[1]] = x[:, :, src[0], src[1]]
    return buf


def _columns(x, g, cols=None):
    """x block (n, C, H, W) -> column matrices (n, K + 1, H_out*W_out).

    Row (c, kh, kw) of image n is the (H_out, W_out) window of phase image c shifted by
    (kh, kw); the last row is ones, so that the bias rides along in the multiply.
    """
    n = x.shape[0]
    buf = _image_buffer(x, g)
    if cols is None:
        cols = np.empty((n, g.K + 1, g.L), dtype=x.dtype)
    cols[:, g.K] = 1
    win = cols[:, :g.K].reshape(n, g.Cs, g.kh, g.kw, g.H_out, g.W_out)
    for kh in range(g.kh):
        for kw in range(g.kw):
            win[:, :, kh, kw] = buf[:, :, kh:kh + g.H_out, kw:kw + g.W_out]
    return cols


def _forward_block(cols, w2b, g, out):
    """out (n, F, H_out, W_out) <- [w2 | b] @ cols[i] for every image, straight into place."""
    n = out.shape[0]
    np.matmul(w2b, cols, out=out.reshape(n, g.F, g.L))


def _backward_block(dout, cols, w2, g, dx):
    """dx block (n, C, H, W) written; returns this block's share of [dw2 | db] (F, K + 1)."""
    n = dout.shape[0]
    dres = dout.reshape(n, g.F, g.L)
    dw2b = np.matmul(dres, cols.transpose(0, 2, 1)).sum(axis=0)  # the ones row gives db
    dcols = workspace("gemm-dcols", (n, g.K, g.L), dout.dtype)
    np.matmul(w2.T, dres, out=dcols)
    dcols = dcols.reshape(n, g.Cs, g.kh, g.kw, g.H_out, g.W_out)
    dbuf = workspace("gemm-dx", (n, g.Cs, g.Hs, g.Ws), dout.dtype)
    dbuf.fill(0)
    # col2im: each kernel offset adds its windows back where they came from.
    for kh in range(g.kh):
        for kw in range(g.kw):
            dbuf[:, :, kh:kh + g.H_out, kw:kw + g.W_out] += dcols[:, :, kh, kw]
    img = dbuf.reshape(n, g.C, g.s, g.s, g.Hs, g.Ws)
    for a, b, src, dst in g.phases():
        dx[:, :, src[0], src[1]] = img[:, :, a, b, dst[0], dst[1]]
    return dw2b


def _block_columns(x, g, kept, s, i):
    """Block i's column matrix: the kept one, or rebuilt into scratch."""
    if kept is not None:
        return kept[i]
    n = s.stop - s.start
    return _columns(x[s], g, workspace("gemm-cols", (n, g.K + 1, g.L), x.dtype))


def conv_forward_gemm(x, w, b, stride, pad):
    """out (N, F, H_out, W_out) and the cache for conv_backward_gemm.

    The column matrices are kept for the backward pass unless together they would exceed
    MAX_WORKSPACE_BYTES; then the backward pass rebuilds them block by block.
    """
    dtype = float_type(x, w, b)
    x, w, b = (np.asarray(a, dtype=dtype) for a in (x, w, b))
    g = _Geometry(x.shape, w.shape, stride, pad)
    w2 = _phase_weights(w, g)
    w2b = np.concatenate([w2, b[:, None]], axis=1)
    out = np.empty((g.N, g.F, g.H_out, g.W_out), dtype=dtype)
    slices = g.blocks(x.itemsize)
    keep = g.K * g.L * g.N * x.itemsize <= MAX_WORKSPACE_BYTES

    def forward(i_s):
        i, s = i_s
        cols = _columns(x[s], g) if keep else _block_columns(x, g, None, s, i)
        _forward_block(cols, w2b, g, out[s])
        return cols if keep else None
    kept = run_blocks(forward, list(enumerate(slices)))
    return out, (x, w, w2, g, kept if keep else None)


def conv_backward_gemm(dout, cache):
    """dx (N, C, H, W), dw (F, C, HH, WW), db (F,) from the cache of conv_forward_gemm."""
    x, w, w2, g, kept = cache
    dtype = float_type(dout, x)
    dout = np.asarray(dout, dtype=dtype)
    dx = np.empty(x.shape, dtype=dtype)

    def backward(i_s):
        i, s = i_s
        return _backward_block(dout[s], _block_columns(x, g, kept, s, i), w2, g, dx[s])
    dw2b = sum(run_blocks(backward, list(enumerate(g.blocks(x.itemsize)))))  # block order
    return dx, _phase_weights_backward(dw2b[:, :-1], g), dw2b[:, -1].copy()
