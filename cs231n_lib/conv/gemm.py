"""Convolution as one matrix multiply per block of images (any kernel, any stride).

im2col: copy every receptive field into a column of a matrix cols (C*HH*WW, positions);
then out = w.reshape(F, -1) @ cols is the whole convolution. A row of ones appended to
cols carries the bias through the same multiply, and in the backward pass gives db as
a by-product of dw.

Strides s > 1 are turned into stride 1 first (space to depth): split the padded input
into its s*s phases xp[:, :, a::s, b::s] and the kernel likewise; a stride-s convolution
is then a stride-1 convolution of the Cs = C*s*s phase channels with kh x kw =
ceil(HH/s) x ceil(WW/s) kernels. Where a phase kernel has no tap (HH or WW not a multiple
of s: 11 of the 36 taps of a 5x5 stride-2 kernel) its row of cols is dropped rather than
multiplied by zero, which spares 30% of the copies and multiplies for bench layer D.

Shifted copies instead of windows. NumPy pays a fixed cost for every contiguous run it
copies (~10 ns) or adds (~100 ns), and a window row is only W_out numbers long. So the
padded phase images are stored channel by channel, and within a channel image after
image: buf (Cs, n, Hs, Ws), flattened. Output position p = i*Ws + j of an image reads,
through kernel offset (kh, kw), input p + kh*Ws + kw: the same flattened buffer shifted
by one number. So the row of cols for (offset, channel) is ONE contiguous copy of that
channel for the whole block, shifted, and the rows of consecutive channels seen through
one offset are one copy too: 25 copies build bench layer D's cols, whatever the block
size. The multiply computes every position of the Hs x Ws phase image; the ones outside
the H_out x W_out output (the last rows and columns of each image, which mix one row or
image with the next) are cropped off in the forward pass and given zero gradient in the
backward pass. Where every phase starts and ends with rows (columns) of padding zeros,
consecutive images (rows) share them, so Hs x Ws is smaller than the (H_out + kh - 1) x
(W_out + kw - 1) a phase image has alone. The cropped positions cost
(Hs*Ws)/(H_out*W_out) - 1 more copies and multiplies: 6% for bench layer A (33x33 for a
32x32 output), 13% for D (17x17 for 16x16).

The layout also makes each product one large matrix multiply per block, with the
positions of all its images as the long dimension:
- forward:  out (F, n*Hs*Ws) = [w2 | b] @ cols;
- backward: [dw2 | db] = dout @ cols^T, whose inner dimension is all the block's
  positions (or one image's, summed image by image: see SMALL_GEMM), and
  dcols = w2^T @ dout, added back (col2im) by the same contiguous runs that built cols.

Where the time goes. These products have F (16-32) or C*HH*WW (27-75) as their short
dimensions, so BLAS does a few multiplies per number it loads: they run at a third of
the machine's matmul peak, and the copies around them move the whole of cols (6-13x
the input) through memory several times. `python -m cs231n_lib.bench` prints what each
pass has to move beside the time it takes.
"""

import functools
import math

import numpy as np

from .blocks import blocks, owns_threads, run_blocks
from .shapes import float_type
from .workspace import Saved, workspace

# The column matrices are kept for the backward pass up to this size, else rebuilt there.
MAX_WORKSPACE_BYTES = 256 * 2**20
# Batch blocks twice blocks' default. Each block is a few dozen NumPy calls, each
# of which releases and retakes the GIL, and two threads doing that hand it back and
# forth at a cost comparable to short calls (measured: bench layer D's forward pass in 4
# blocks took as long on 2 threads as on 1). Longer calls amortise it.
BLOCK_BYTES = 8 * 2**20
# OpenBLAS multiplies a product of at most this many multiply-adds (M*N*K) with a kernel
# that reads the operands in place (x86-64, Skylake-X kernel), where a larger one first
# copies both into packed panels. dw sums over all of a block's positions; where one
# image's share of that sum is a product just below this size, summing image by image
# skips the packing. Measured, float64: bench layer A (0.98e6 per image) a tenth less
# backward time; at D (0.23e6 per image) products of a few images each were slower than
# the block's one product, so smaller images keep it.
SMALL_GEMM = 100**3


@functools.lru_cache(maxsize=64)
def _tap_runs(Cs, s, kh, kw, HH, WW):
    """The (offset, phase channel) pairs of a phase kernel that meet a real kernel tap.

    Returns taps, their indices in the full (kh, kw, channel) order, and runs
    (row, ch, count, kh, kw): rows row .. row+count-1 of cols hold phase channels
    ch .. ch+count-1 seen through offset (kh, kw), one copy per block of images. Cached: a layer
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
    """Sizes of the stride-1 problem on phase images a convolution is turned into."""

    def __init__(self, x_shape, w_shape, stride, pad):
        N, C, H, W = x_shape
        F, _, HH, WW = w_shape
        s = stride
        self.N, self.C, self.H, self.W, self.F, self.HH, self.WW = N, C, H, W, F, HH, WW
        self.s, self.pad = s, pad
        self.H_out = (H + 2 * pad - HH) // s + 1
        self.W_out = (W + 2 * pad - WW) // s + 1
        self.kh, self.kw = math.ceil(HH / s), math.ceil(WW / s)  # phase kernel
        # A phase image needs H_out + kh - 1 rows, but its first and last rows are often
        # all padding zeros in every phase. Images stacked in the buffer can share those:
        # the rows an image's last outputs read past its end are then the zero rows at
        # the top of the next image. Likewise the columns: a row's zero columns at its end
        # are the next row's zero columns at its start. Fewer positions per image (bench
        # layer D: 17x17 rather than 18x18, A: 33x33 rather than 34x34) are fewer
        # numbers copied and multiplied at every step.
        self.Hs = self.H_out + self.kh - 1 - self._shared_zeros(H, self.H_out, self.kh)
        self.Ws = self.W_out + self.kw - 1 - self._shared_zeros(W, self.W_out, self.kw)
        self.Cs = C * s * s  # phase channels
        self.P = self.Hs * self.Ws  # positions per image, cropped ones included
        # The largest shift: the last channel of the last image reads this far past its
        # end (into positions that are cropped), so the buffer has this much more.
        self.slack = (self.kh - 1) * self.Ws + self.kw - 1
        # The rows of cols: (offset, phase channel) pairs that meet a real kernel tap.
        self.taps, self.runs = _tap_runs(self.Cs, s, self.kh, self.kw, HH, WW)
        self.K = len(self.taps)  # the GEMM's inner size, = C*HH*WW

    def blocks(self, itemsize):
        # Per image: the columns, their gradient and the GEMM result.
        per_image = ((self.K + 1) + self.K + self.F) * self.P * itemsize
        return blocks(self.N, per_image, BLOCK_BYTES)

    def dw_chunks(self, n):
        """Column slices of a block's n images for dw's product: one image each where an
        image's product is just below SMALL_GEMM, else the whole block."""
        if SMALL_GEMM // 2 < self.F * (self.K + 1) * self.P <= SMALL_GEMM:
            return [slice(i * self.P, (i + 1) * self.P) for i in range(n)]
        return [slice(0, n * self.P)]

    def shifted_runs(self, n):
        """Each run of rows of cols for a block of n images, as one contiguous copy:
        (first row, rows, where it starts in the flattened phase buffer)."""
        Q = n * self.P
        return [(row, count, ch * Q + kh * self.Ws + kw)
                for row, ch, count, kh, kw in self.runs]

    def _span(self, a, size):
        """Phase a of a padded axis of x of `size`: its first index inside x, the index
        of x it holds, and how many it holds."""
        s, p = self.s, self.pad
        i0 = -(-(p - a) // s) if p > a else 0
        r0 = a + s * i0 - p
        return i0, r0, len(range(r0, size, s))

    def _shared_zeros(self, size, n_out, k):
        """How many rows (or columns) of zeros one phase image can share with the next:
        as many as every phase has zeros both before and after its part of x, up to the
        k - 1 that the last outputs read past the end."""
        full = n_out + k - 1
        spans = [self._span(a, size) for a in range(self.s)]
        return max(0, min([k - 1] + [min(i0, full - i0 - n) for i0, _, n in spans]))

    def phases(self):
        """For each phase (a, b): its slice of x and where it lands in the phase image."""
        s = self.s
        for a in range(s):
            i0, r0, nr = self._span(a, self.H)  # first phase row inside x, its x row, rows
            for b in range(s):
                j0, c0, nc = self._span(b, self.W)
                yield a, b, (slice(r0, None, s), slice(c0, None, s)), \
                    (slice(i0, i0 + nr), slice(j0, j0 + nc))

    def phase_images(self, buf, n):
        """The flattened phase buffer of n images as (C, s, s, n, Hs, Ws)."""
        return buf[:self.Cs * n * self.P].reshape(self.C, self.s, self.s, n, self.Hs, self.Ws)


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
    """x block (n, C, H, W) -> the zero-padded phase images, flattened (Cs*n*Hs*Ws + slack)."""
    n = x.shape[0]
    tag = (g.C, g.H, g.W, g.s, g.pad)  # what decides where the padding zeros are
    buf = workspace("gemm-x", (g.Cs * n * g.P + g.slack,), x.dtype, zeroed=True, tag=tag)
    img, xt = g.phase_images(buf, n), x.transpose(1, 0, 2, 3)
    for a, b, src, dst in g.phases():
        img[:, a, b, :, dst[0], dst[1]] = xt[:, :, src[0], src[1]]
    return buf


def _columns(x, g, cols):
    """x block (n, C, H, W) -> cols (K + 1, n*Hs*Ws), the column matrix, filled.

    Each run of rows holds phase channels seen through one kernel offset: the flattened
    phase buffer shifted by the offset. The last row is ones, so that the bias rides
    along in the multiply.
    """
    n = x.shape[0]
    buf = _image_buffer(x, g)
    cols[g.K] = 1
    Q = n * g.P
    for row, count, start in g.shifted_runs(n):
        cols[row:row + count].reshape(count * Q)[...] = buf[start:start + count * Q]
    return cols


def _forward_block(cols, w2b, g, out):
    """out block (n, F, H_out, W_out) <- [w2 | b] @ cols, cropped."""
    n = out.shape[0]
    res = workspace("gemm-out", (g.F, n * g.P), out.dtype)
    np.matmul(w2b, cols, out=res)
    out.transpose(1, 0, 2, 3)[...] = \
        res.reshape(g.F, n, g.Hs, g.Ws)[:, :, :g.H_out, :g.W_out]


def _backward_block(dout, cols, w2, g, dx):
    """dx block (n, C, H, W) written; returns this block's share of [dw2 | db] (F, K + 1)."""
    n = dout.shape[0]
    # dout in the layout of the forward product, zero on the cropped positions: they add
    # nothing to dw or dx. Only the interior is written, so the zeros stay.
    dres = workspace("gemm-dout", (g.F, n, g.Hs, g.Ws), dout.dtype, zeroed=True,
                     tag=(g.H_out, g.W_out))
    dres[:, :, :g.H_out, :g.W_out] = dout.transpose(1, 0, 2, 3)
    dres = dres.reshape(g.F, n * g.P)
    dw2b = np.zeros((g.F, g.K + 1), dtype=dout.dtype)
    part = np.empty_like(dw2b)
    for cs in g.dw_chunks(n):
        np.matmul(dres[:, cs], cols[:, cs].T, out=part)  # the ones row gives db
        dw2b += part
    dcols = workspace("gemm-dcols", (g.K, n * g.P), dout.dtype)
    np.matmul(w2.T, dres, out=dcols)
    # col2im: each run adds its rows back where they were copied from.
    dbuf = workspace("gemm-dx", (g.Cs * n * g.P + g.slack,), dout.dtype)
    dbuf.fill(0)
    Q = n * g.P
    for row, count, start in g.shifted_runs(n):
        dbuf[start:start + count * Q] += dcols[row:row + count].reshape(count * Q)
    img, dxt = g.phase_images(dbuf, n), dx.transpose(1, 0, 2, 3)
    for a, b, src, dst in g.phases():
        dxt[:, :, src[0], src[1]] = img[:, a, b, :, dst[0], dst[1]]
    return dw2b


def _block_columns(x, g, kept, s, i):
    """Block i's column matrix: the kept one, or rebuilt into scratch."""
    if kept is not None:
        return kept[i]
    n = s.stop - s.start
    return _columns(x[s], g, workspace("gemm-cols", (g.K + 1, n * g.P), x.dtype))


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
    if (g.K + 1) * g.P * g.N * x.itemsize <= MAX_WORKSPACE_BYTES:
        kept = Saved([(g.K + 1, (s.stop - s.start) * g.P) for s in slices], dtype)

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


def traffic(x_shape, w_shape, stride, pad, itemsize):
    """What each step of this path has to move and compute, for the benchmark's table.

    Returns {"fwd": steps, "bwd": steps}, each step (name, bytes, flops) in the order the
    pass runs them: bytes counts every array the step reads or writes, once, even where
    the step reads it several times (the phase buffer, shifted) or reads and writes it (a
    gradient run added in place): a lower bound, as BLAS also copies its operands into
    packed panels. flops are the GEMMs' 2*M*N*K, cropped positions included.
    """
    g = _Geometry(x_shape, w_shape, stride, pad)
    Q = g.N * g.P  # columns of cols over the batch
    x, out, buf = g.N * g.C * g.H * g.W, g.N * g.F * g.H_out * g.W_out, g.Cs * Q
    K, F = g.K, g.F
    im2col = [("phase images", x + buf, 0),
              ("shifted copies", buf + (K + 1) * Q, 0)]  # read the buffer, write cols
    fwd = im2col + [("multiply", (K + 1) * Q + F * Q, 2 * F * (K + 1) * Q),
                    ("crop", F * Q + out, 0)]
    bwd = [("dout in", out + F * Q, 0),  # into the product's layout
           ("dw multiply", (K + 1) * Q + F * Q, 2 * F * (K + 1) * Q),  # [dw | db] = dout @ cols^T
           ("dcols multiply", F * Q + K * Q, 2 * K * F * Q),  # dcols = w^T @ dout
           ("col2im", K * Q + buf, 0),  # read dcols; add its runs into the gradient images
           ("dx", buf + x, 0)]  # phase images back into dx
    if (K + 1) * Q * itemsize > MAX_WORKSPACE_BYTES:
        bwd = im2col + bwd  # columns rebuilt, not kept
    return {name: [(step, n * itemsize, flops) for step, n, flops in steps]
            for name, steps in (("fwd", fwd), ("bwd", bwd))}
