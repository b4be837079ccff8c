"""Convolution as matrix multiplies, one per image (any kernel, any stride).

im2col: for each image, copy every receptive field into a column of a matrix
cols (C*HH*WW, positions); then out[n] = w.reshape(F, -1) @ cols[n] is the whole
convolution of image n. A row of ones appended to cols carries the bias through the same
multiply, and in the backward pass gives db as a by-product of dw.

Strides s > 1 are turned into stride 1 first (space to depth): split the padded input
into its s*s phases xp[:, :, a::s, b::s] and the kernel likewise; a stride-s convolution
is then a stride-1 convolution of the Cs = C*s*s phase channels with kh x kw =
ceil(HH/s) x ceil(WW/s) kernels. Where a phase kernel has no tap (HH or WW not a multiple
of s: 11 of the 36 taps of a 5x5 stride-2 kernel) its column is dropped rather than
multiplied by zero, which spares 30% of the copies and multiplies for bench layer D.

Full rows. NumPy pays a fixed cost for every contiguous run it copies (~10 ns) or adds
(~100 ns), and a window row is only W_out numbers long. So the output is computed on the
full width Ws of the (padded phase) image: for kernel offset (kh, kw), output position
p = i*Ws + j of a channel reads input p + kh*Ws + kw, i.e. the window is the flattened
channel shifted by one number. The Ws - W_out extra outputs per row mix the end of one
row with the start of the next; they are cropped off (forward) or given zero gradient
(backward). Then:
- rows of cols are ordered (kh, kw, channel) and are P = Hb*Ws long (a whole channel),
  of which the multiplies use the first L = H_out*Ws; so the rows of consecutive
  channels seen through one offset are ONE contiguous copy of the flattened phase
  images, shifted by kh*Ws + kw;
- col2im is likewise one contiguous add per such run and image, instead of one add per
  row of every window (5-6x slower in a micro-benchmark).
The crop costs one short copy per output row and filter, F*H_out runs per image, against
K*H_out saved in the im2col copy. So the forward pass uses full rows only when K > F (few
channels, big or strided kernels, like bench layer D); otherwise cols holds the exact
(H_out, W_out) windows and the multiply writes the output in place. The backward pass
always adds back in full rows.

The backward pass reuses cols: dw = dout[n] @ cols[n]^T summed over images, and
dx is w^T @ dout[n] scattered back (col2im).
"""

import functools
import math

import numpy as np

from .conv_blocks import blocks, owns_threads, run_blocks
from .conv_shapes import float_type
from .conv_workspace import Saved, workspace

# The column matrices are kept for the backward pass up to this size, else rebuilt there.
MAX_WORKSPACE_BYTES = 256 * 2**20
# Batch blocks twice conv_blocks' default. This path makes many short NumPy calls; each
# releases and retakes the GIL, and two threads doing that hand it back and forth at a
# cost comparable to the calls themselves (measured: bench layer D's forward pass in 4
# blocks took as long on 2 threads as on 1). Longer calls amortise it. Measured, forward
# + backward on 2 cores, 4 MiB -> 8 MiB blocks: layer D 7.9 -> 6.9 ms (float32) and
# 14.0 -> 11.5 ms (float64), layer A 11.1 -> 8.7 ms (float32).
BLOCK_BYTES = 8 * 2**20


@functools.lru_cache(maxsize=64)
def _tap_runs(Cs, s, kh, kw, HH, WW):
    """The (offset, phase channel) pairs of a phase kernel that meet a real kernel tap.

    Returns taps, their indices in the full (kh, kw, channel) order, and runs
    (row, ch, count, kh, kw): rows row .. row+count-1 of cols hold phase channels
    ch .. ch+count-1 seen through offset (kh, kw), one copy per image. Cached: a layer
    asks for the same kernel on every call.
    """
    taps, runs = [], []
    for i in range(kh):
        for j in range(kw):
            for ch in range(Cs):
                a, b = ch // s % s, ch % s  # the phase of channel ch
                if i * s + a >= HH or j * s + b >= WW:
                    continue
                full = (i * kw + j) * Cs + ch
                if runs and taps[-1] == full - 1 and runs[-1][3:] == (i, j):
                    row, ch0, count, _, _ = runs[-1]
                    runs[-1] = (row, ch0, count + 1, i, j)
                else:
                    runs.append((len(taps), ch, 1, i, j))
                taps.append(full)
    taps = np.array(taps)
    taps.flags.writeable = False  # shared by every call through the cache
    return taps, tuple(runs)


class _Geometry:
    """Sizes of the stride-1, full-row problem a convolution is turned into."""

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
        # One more zero row, so that the last offset's window stays inside its channel.
        self.Hb = self.Hs + (self.kw > 1)
        self.Cs = C * s * s  # phase channels
        self.P = self.Hb * self.Ws  # a flattened phase channel
        self.L = self.H_out * self.Ws  # output positions per image, cropped ones included
        # The rows of cols: (offset, phase channel) pairs that meet a real kernel tap.
        self.taps, self.runs = _tap_runs(self.Cs, s, self.kh, self.kw, HH, WW)
        self.K = len(self.taps)  # the GEMM's inner size, = C*HH*WW
        self.rows = self.K > F and self.Ws > self.W_out  # full rows in cols too
        # Each run as one full-row window: (where it starts in an image's flattened cols,
        # where in the flattened phase image, its length across the run's channels).
        # Precomputed, since with short copies the Python around each is a fair share.
        self.full_row_runs = tuple(
            (row * self.P, ch * self.P + kh * self.Ws + kw, (count - 1) * self.P + self.L)
            for row, ch, count, kh, kw in self.runs)
        self.cols_len = self.P if self.rows else self.H_out * self.W_out  # per row of cols

    def blocks(self, itemsize):
        # Per image: the columns, their gradient and the GEMM result.
        per_image = (self.K * (self.cols_len + self.P) + self.F * self.L) * itemsize
        return blocks(self.N, per_image, BLOCK_BYTES)

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
    """w (F, C, HH, WW) -> (F, K): the kernel in its phases, ordered (kh, kw, c, a, b),
    the real taps only."""
    s = g.s
    wp = np.zeros((g.F, g.C, g.kh * s, g.kw * s), dtype=w.dtype)
    wp[:, :, :g.HH, :g.WW] = w
    full = wp.reshape(g.F, g.C, g.kh, s, g.kw, s).transpose(0, 2, 4, 1, 3, 5)
    return full.reshape(g.F, -1)[:, g.taps]


def _phase_weights_backward(dw2, g):
    """Adjoint of _phase_weights: (F, K) -> (F, C, HH, WW)."""
    s = g.s
    full = np.zeros((g.F, g.kh * g.kw * g.Cs), dtype=dw2.dtype)
    full[:, g.taps] = dw2
    d = full.reshape(g.F, g.kh, g.kw, g.C, s, s).transpose(0, 3, 1, 4, 2, 5)
    return np.ascontiguousarray(d.reshape(g.F, g.C, g.kh * s, g.kw * s)[:, :, :g.HH, :g.WW])


def _image_buffer(x, g):
    """x block (n, C, H, W) -> zero-padded phase images (n, Cs, Hb, Ws)."""
    n, s = x.shape[0], g.s
    tag = (g.C, g.H, g.W, s, g.pad)
    buf = workspace("gemm-x", (n, g.Cs, g.Hb, g.Ws), x.dtype, zeroed=True, tag=tag)
    img = buf.reshape(n, g.C, s, s, g.Hb, g.Ws)
    for a, b, src, dst in g.phases():
        img[:, :, a, b, dst[0], dst[1]] = x[:, :, src[0], src[1]]
    return buf


def _columns(x, g, cols):
    """x block (n, C, H, W) -> cols (n, K + 1, cols_len), the column matrices, filled.

    Each run of rows holds phase channels seen through one kernel offset: with full rows,
    the flattened images shifted by the offset (the multiplies use [..., :L]); else the
    exact (H_out, W_out) windows. The last row is ones, so that the bias rides along in
    the multiply.
    """
    n = x.shape[0]
    buf = _image_buffer(x, g)
    cols[:, g.K] = 1
    flat = buf.reshape(n, g.Cs * g.P)
    if g.rows:  # one run per image
        cols_flat = cols.reshape(n, (g.K + 1) * g.P)
        for at, start, span in g.full_row_runs:
            cols_flat[:, at:at + span] = flat[:, start:start + span]
    else:  # H_out runs per image and channel
        for row, ch, count, kh, kw in g.runs:
            cols[:, row:row + count].reshape(n, count, g.H_out, g.W_out)[...] = \
                buf[:, ch:ch + count, kh:kh + g.H_out, kw:kw + g.W_out]
    return cols


def _forward_block(cols, w2b, g, out):
    """out (n, F, H_out, W_out) <- [w2 | b] @ cols[i] for every image (cropped if full rows)."""
    n = out.shape[0]
    if not g.rows:
        np.matmul(w2b, cols, out=out.reshape(n, g.F, g.H_out * g.W_out))
        return
    res = workspace("gemm-out", (n, g.F, g.H_out, g.Ws), out.dtype)
    np.matmul(w2b, cols[:, :, :g.L], out=res.reshape(n, g.F, g.L))
    out[...] = res[..., :g.W_out]


def _backward_block(dout, cols, w2, g, dx):
    """dx block (n, C, H, W) written; returns this block's share of [dw2 | db] (F, K + 1)."""
    n = dout.shape[0]
    # Zero gradient on the cropped outputs: they add nothing to dw or dx.
    dres = workspace("gemm-dout", (n, g.F, g.H_out, g.Ws), dout.dtype, zeroed=True,
                     tag=(g.W_out,))
    dres[..., :g.W_out] = dout
    dres = dres.reshape(n, g.F, g.L)
    # [dw2 | db]^T = cols @ dout^T (the ones row gives db): BLAS runs this (K+1, F) product
    # with its long inner dimension 1.5-2x faster than the (F, K+1) one (measured).
    if g.rows:
        dw2bT = np.matmul(cols[:, :, :g.L], dres.transpose(0, 2, 1))
    else:
        dw2bT = np.matmul(cols, dout.reshape(n, g.F, -1).transpose(0, 2, 1))
    dw2b = dw2bT.sum(axis=0).T
    # The gradient columns [..., L:] are never written: zero, so col2im may add them.
    dcols = workspace("gemm-dcols", (n, g.K, g.P), dout.dtype, zeroed=True, tag=(g.L,))
    np.matmul(w2.T, dres, out=dcols[:, :, :g.L])
    dflat = workspace("gemm-dx", (n, g.Cs * g.P), dout.dtype)
    dflat.fill(0)
    # col2im: each run adds its window back where it came from.
    dcols_flat = dcols.reshape(n, g.K * g.P)
    for at, start, span in g.full_row_runs:
        dflat[:, start:start + span] += dcols_flat[:, at:at + span]
    img = dflat.reshape(n, g.C, g.s, g.s, g.Hb, g.Ws)
    for a, b, src, dst in g.phases():
        dx[:, :, src[0], src[1]] = img[:, :, a, b, dst[0], dst[1]]
    return dw2b


def _block_columns(x, g, kept, s, i):
    """Block i's column matrix: the kept one, or rebuilt into scratch."""
    if kept is not None:
        return kept[i]
    n = s.stop - s.start
    return _columns(x[s], g, workspace("gemm-cols", (n, g.K + 1, g.cols_len), x.dtype))


@owns_threads
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
    kept = None
    if g.K * g.cols_len * g.N * x.itemsize <= MAX_WORKSPACE_BYTES:
        kept = Saved([(s.stop - s.start, g.K + 1, g.cols_len) for s in slices], dtype)

    def forward(i_s):
        i, s = i_s
        cols = _columns(x[s], g, kept[i]) if kept is not None else _block_columns(x, g, None, s, i)
        _forward_block(cols, w2b, g, out[s])
    run_blocks(forward, list(enumerate(slices)))
    return out, (x, w, w2, g, kept)


@owns_threads
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
