"""Convolution as one matrix multiply over "shifted rows" (any kernel, any stride).

The textbook im2col copies every window into a column: for a 3x3 kernel that is nine
short copies of W_out numbers per row of output, and the copying, not the multiply,
ends up taking most of the time. Two layout choices avoid it.

1. Stride 1, shifted rows. Keep the padded input channel-major, each channel flattened
   over (image, row, column): xbuf[c, n*Hp*Wp + r*Wp + q]. Compute the output on the full
   padded width Wp (throwing away the last WW-1 columns afterwards). Then kernel offset
   (kh, kw) reads the flat row of each image starting at kh*Wp + kw: a long contiguous run,
   so building the column matrix is HH*WW*C*N plain memcpys of H_out*Wp numbers, and the
   waste is only Wp/W_out extra columns.

2. Stride s > 1, space to depth. Split the padded input into its s*s phases
   xp[:, :, a::s, b::s] and the kernel likewise; a stride-s convolution is then a stride-1
   convolution of the C*s*s phase channels with ceil(HH/s) x ceil(WW/s) kernels (zeros where
   the kernel has no tap). The phases are written straight into the layout of (1).

The same column matrix serves the weight gradient, and the input gradient is its
transpose scattered back with one long-run add per kernel offset (col2im).
"""

import math

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .conv_blocks import blocks, run_blocks
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
        self.L = self.H_out * self.Ws  # output columns per image (full phase width)
        self.image = self.Hs * self.Ws
        # The last image's shifted row runs kw-1 numbers past its end: a zero tail.
        self.tail = self.kw - 1

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


def _image_buffer(x, g, n):
    """x block (n, C, H, W) -> channel-major phase images, flat: (Cs, n*Hs*Ws + tail)."""
    s = g.s
    tag = (n, g.C, g.H, g.W, s, g.pad, g.Hs, g.Ws)
    buf = workspace("gemm-x", (g.Cs, n * g.image + g.tail), x.dtype, zeroed=True, tag=tag)
    img = buf[:, :n * g.image].reshape(g.C, s, s, n, g.Hs, g.Ws)
    xt = x.transpose(1, 0, 2, 3)
    for a, b, src, dst in g.phases():
        img[:, a, b, :, dst[0], dst[1]] = xt[:, :, src[0], src[1]]
    return buf


def _shifted(buf, g, n, kh, kw):
    """View (Cs, n, L) of buf: kernel offset (kh, kw) of every output position."""
    start = buf[:, kh * g.Ws + kw:]
    it = buf.itemsize
    return as_strided(start, shape=(g.Cs, n, g.L), strides=(buf.strides[0], g.image * it, it),
                      writeable=buf.flags.writeable)


def _columns(x, g, cols=None):
    """x block (n, C, H, W) -> column matrix (K, n*L), rows ordered (c, a, b, kh, kw)."""
    n = x.shape[0]
    buf = _image_buffer(x, g, n)
    if cols is None:
        cols = np.empty((g.Cs, g.kh, g.kw, n, g.L), dtype=x.dtype)
    cols = cols.reshape(g.Cs, g.kh, g.kw, n, g.L)
    for kh in range(g.kh):
        for kw in range(g.kw):
            cols[:, kh, kw] = _shifted(buf, g, n, kh, kw)
    return cols.reshape(g.K, n * g.L)


def _forward_block(cols, w2, b, g, out):
    """out (n, F, H_out, W_out) <- w2 @ cols, cropped to W_out, plus b."""
    n = out.shape[0]
    res = workspace("gemm-res", (g.F, n * g.L), out.dtype)
    np.matmul(w2, cols, out=res)
    full = res.reshape(g.F, n, g.H_out, g.Ws)[..., :g.W_out]
    np.add(full.transpose(1, 0, 2, 3), b.reshape(1, -1, 1, 1), out=out)


def _backward_block(dout, cols, w2, g, dx):
    """dx block (n, C, H, W) written; returns this block's share of dw2 (F, K)."""
    n = dout.shape[0]
    dres = workspace("gemm-dres", (g.F, n, g.H_out, g.Ws), dout.dtype, zeroed=True,
                     tag=g.W_out)
    # Columns past W_out are never written, so they stay zero: no gradient from them.
    dres[..., :g.W_out] = dout.transpose(1, 0, 2, 3)
    dres = dres.reshape(g.F, n * g.L)
    dw2 = dres @ cols.T
    dcols = workspace("gemm-dcols", (g.K, n * g.L), dout.dtype)
    np.matmul(w2.T, dres, out=dcols)
    dcols = dcols.reshape(g.Cs, g.kh, g.kw, n, g.L)
    dbuf = workspace("gemm-dx", (g.Cs, n * g.image + g.tail), dout.dtype)
    dbuf.fill(0)
    # col2im: one long-run add per kernel offset.
    for kh in range(g.kh):
        for kw in range(g.kw):
            view = _shifted(dbuf, g, n, kh, kw)
            view += dcols[:, kh, kw]
    img = dbuf[:, :n * g.image].reshape(g.C, g.s, g.s, n, g.Hs, g.Ws)
    dxt = dx.transpose(1, 0, 2, 3)
    for a, b, src, dst in g.phases():
        dxt[:, :, src[0], src[1]] = img[:, a, b, :, dst[0], dst[1]]
    return dw2


def _block_columns(x, g, kept, s, i):
    """Block i's column matrix: the kept one, or rebuilt into scratch."""
    if kept is not None:
        return kept[i]
    n = s.stop - s.start
    return _columns(x[s], g, workspace("gemm-cols", (g.K, n * g.L), x.dtype))


def conv_forward_gemm(x, w, b, stride, pad):
    """out (N, F, H_out, W_out) and the cache for conv_backward_gemm.

    The column matrices are kept for the backward pass unless together they would exceed
    MAX_WORKSPACE_BYTES; then the backward pass rebuilds them block by block.
    """
    dtype = np.result_type(x, w, b)
    x, w, b = (np.asarray(a, dtype=dtype) for a in (x, w, b))
    g = _Geometry(x.shape, w.shape, stride, pad)
    w2 = _phase_weights(w, g)
    out = np.empty((g.N, g.F, g.H_out, g.W_out), dtype=dtype)
    slices = g.blocks(x.itemsize)
    keep = g.K * g.L * g.N * x.itemsize <= MAX_WORKSPACE_BYTES

    def forward(i_s):
        i, s = i_s
        cols = _columns(x[s], g) if keep else _block_columns(x, g, None, s, i)
        _forward_block(cols, w2, b, g, out[s])
        return cols if keep else None
    kept = run_blocks(forward, list(enumerate(slices)))
    return out, (x, w, w2, g, kept if keep else None)


def conv_backward_gemm(dout, cache):
    """dx (N, C, H, W), dw (F, C, HH, WW), db (F,) from the cache of conv_forward_gemm."""
    x, w, w2, g, kept = cache
    dtype = np.result_type(dout, x)
    dout = np.asarray(dout, dtype=dtype)
    dx = np.empty(x.shape, dtype=dtype)

    def backward(i_s):
        i, s = i_s
        return _backward_block(dout[s], _block_columns(x, g, kept, s, i), w2, g, dx[s])
    dw2 = sum(run_blocks(backward, list(enumerate(g.blocks(x.itemsize)))))  # block order
    db = dout.sum(axis=(0, 2, 3))
    return dx, _phase_weights_backward(dw2, g), db
