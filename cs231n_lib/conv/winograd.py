"""3x3 stride-1 convolution by Winograd's minimal filtering, F(m x m, 3 x 3).

An m x m block of output needs a t x t tile of input, t = m + 2. Directly that is
m*m*9 multiplications per channel; Winograd (Lavin & Gray 2015, as cuDNN and oneDNN use
it) needs t*t, one per point of the transformed tile:

    Y = A^T [ (G g G^T) * (B^T d B) ] A        (* elementwise, t x t)

F(2x2, 3x3) does 16 multiplications where the direct way does 36 (2.25x fewer),
F(4x4, 3x3) 36 where it does 144 (4x fewer), and its transformed tiles are 36/16 = 2.25x
the input instead of 16/4 = 4x, so it also moves less memory. Its transforms hold
larger numbers (up to 5 and 1/24), which costs a few bits of float32 precision. The tile
size that needs fewer multiplications for the image at hand is used.

The t*t elementwise products summed over channels are t*t independent matrix multiplies,
M[k] = V[k] (tiles, C) @ U[k] (C, F), which BLAS does well. The transforms are matrix
products too: with a tile flattened to t*t numbers, B^T d B is (B^T (x) B^T) d, one
(t*t x t*t) matrix for every tile, and A^T M A is (A^T (x) A^T) M, whose rows for one
output row of the tile are written straight into channels-last images.

The backward pass is the same computation read backwards: dU[k] = V[k]^T @ dM[k] (-> dw),
dV[k] = dM[k] @ U[k]^T (-> dx), with the transposed transforms around them. Input tiles
overlap their neighbours by 2 pixels, so the tiles of dx are added where they overlap.

Where the time goes, measured on one core for one block of bench layer C (16 images,
float32): forward 0.88 ms, of which the multiplies 0.44, the two transforms 0.30 and the
changes of layout (images (N, C, H, W) to channels-last tiles and back) 0.14; backward
1.31 ms, of which the multiplies 0.78, the transforms and the overlap-add 0.44. With
fewer channels (layer B: C = 32, F = 64) the multiplies are a third of the time. No
layout avoids the changes: NCHW puts W innermost, the multiplies need C or F there.
"""

import math
from functools import lru_cache

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .blocks import blocks, owns_threads, run_blocks
from .shapes import float_type
from .workspace import Saved, workspace

# B^T, G, A^T per output block size m (Lavin & Gray 2015; points 0, +-1, +-2, infinity).
_MATRICES = {
    2: ([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
        [[1, 0, 0], [1 / 2, 1 / 2, 1 / 2], [1 / 2, -1 / 2, 1 / 2], [0, 0, 1]],
        [[1, 1, 1, 0], [0, 1, -1, -1]]),
    4: ([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
         [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]],
        [[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
         [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]],
        [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]]),
}
TILE_SIZES = tuple(_MATRICES)

# The transformed input V is kept for the backward pass up to this size.
MAX_WORKSPACE_BYTES = 256 * 2**20


@lru_cache(maxsize=None)
def transforms(m, dtype):
    """(B^T (x) B^T, G (x) G, A^T (x) A^T) for F(m x m, 3 x 3) in `dtype`, read-only."""
    BT, G, AT = (np.array(a, dtype=np.float64) for a in _MATRICES[m])
    mats = tuple(np.kron(a, a).astype(dtype) for a in (BT, G, AT))
    for a in mats:
        a.flags.writeable = False  # shared by every call through the cache
    return mats


def tile_size(H_out, W_out):
    """The output block size m that needs the fewest multiplications for this image."""
    def products(m):
        return math.ceil(H_out / m) * math.ceil(W_out / m) * (m + 2) ** 2
    return min(TILE_SIZES, key=products)  # ties go to the smaller, more precise tile


class _Geometry:
    def __init__(self, x_shape, F, pad, m):
        N, C, H, W = x_shape
        self.N, self.C, self.H, self.W, self.F, self.pad = N, C, H, W, F, pad
        self.H_out, self.W_out = H + 2 * pad - 2, W + 2 * pad - 2
        self.m = m if m is not None else tile_size(self.H_out, self.W_out)
        self.t = self.m + 2
        self.T = self.t ** 2  # points of a transformed tile
        self.Th, self.Tw = math.ceil(self.H_out / self.m), math.ceil(self.W_out / self.m)
        # Padded input: the last tile row and column may stick out of the image; the
        # gradient buffer has room for the overlap of one more tile (m >= 2 rows).
        self.Hp, self.Wp = self.m * self.Th + 2, self.m * self.Tw + 2

    def tiles(self, n):
        return n * self.Th * self.Tw

    def blocks(self):
        # Per image: tiles, V, M and the output transform's result, about 2x (V + M),
        # counted in numbers, not bytes: blocks of the same number of images measured
        # fastest in both dtypes (4 MiB of float32, 8 MiB of float64; bench B and C).
        numbers = 2 * self.tiles(1) * self.T * (self.C + self.F)
        return blocks(self.N, numbers * 4)

    def keeps_V(self, itemsize):
        return self.T * self.tiles(self.N) * self.C * itemsize <= MAX_WORKSPACE_BYTES


def _transformed_filters(w, g):
    """w (F, C, 3, 3) -> U (T, C, F) = G w G^T, one matrix per point of a tile."""
    _, GG, _ = transforms(g.m, w.dtype)
    taps = w.reshape(g.F, g.C, 9).transpose(2, 1, 0).reshape(9, g.C * g.F)
    return (GG @ taps).reshape(g.T, g.C, g.F)


def _filters_gradient(dU, g):
    """Adjoint of _transformed_filters: dU (T, C, F) -> dw (F, C, 3, 3) = G^T dU G."""
    _, GG, _ = transforms(g.m, dU.dtype)
    dtaps = GG.T @ dU.reshape(g.T, g.C * g.F)
    return np.ascontiguousarray(dtaps.reshape(3, 3, g.C, g.F).transpose(3, 2, 0, 1))


def _transform_input(x, g, V):
    """x block (n, C, H, W) -> V (T, tiles, C) = (B^T (x) B^T) tile, written in place."""
    n, p = x.shape[0], g.pad
    d = workspace("wino-x", (n, g.Hp, g.Wp, g.C), x.dtype, zeroed=True, tag=(g.H, g.W, p))
    d[:, p:p + g.H, p:p + g.W] = x.transpose(0, 2, 3, 1)
    # Tile (i, j) starts at row m*i, column m*j; each of its t rows is one contiguous run
    # of t*C numbers of the channels-last image, so the copy into tiles moves long runs.
    s = d.itemsize
    windows = as_strided(d, (n, g.Th, g.Tw, g.t, g.t * g.C),
                         (g.Hp * g.Wp * g.C * s, g.m * g.Wp * g.C * s, g.m * g.C * s,
                          g.Wp * g.C * s, s), writeable=False)
    tiles = workspace("wino-tiles", (n, g.Th, g.Tw, g.t, g.t * g.C), x.dtype)
    np.copyto(tiles, windows)
    BB, _, _ = transforms(g.m, x.dtype)
    np.matmul(BB, tiles.reshape(g.tiles(n), g.T, g.C), out=V.transpose(1, 0, 2))


def _forward_block(V, U, b, g, out):
    """out block (n, F, H_out, W_out) <- A^T [U . V] A + b."""
    n = out.shape[0]
    P = g.tiles(n)
    M = workspace("wino-M", (g.T, P, g.F), V.dtype)
    np.matmul(V, U, out=M)
    # Column 1 of A^T is all ones (row 1 of A too), so adding b at the transformed point
    # (1, 1) adds it to every output of the tile, at 1/(m*m) of the cost.
    M[g.t + 1] += b
    # Output transform, written straight into channels-last images: for every tile and
    # output row i, (m x T) rows of A^T (x) A^T times the tile's (T x F) products give
    # the m x F numbers of that image row, contiguous. One batched product, no pass
    # over an intermediate array.
    _, _, AA = transforms(g.m, V.dtype)
    images = workspace("wino-y", (n, g.Th, g.m, g.Tw, g.m, g.F), V.dtype)
    tiles = M.reshape(g.T, n, g.Th, g.Tw, g.F).transpose(1, 2, 3, 0, 4)[:, :, :, None]
    np.matmul(AA.reshape(g.m, g.m, g.T), tiles, out=images.transpose(0, 1, 3, 2, 4, 5))
    images = images.reshape(n, g.m * g.Th, g.m * g.Tw, g.F)[:, :g.H_out, :g.W_out]
    out[...] = images.transpose(0, 3, 1, 2)


def _backward_block(dout, V, UT, g, dx, dU):
    """dx block written, and this block's share of dU (T, C, F); returns its share of db."""
    n = dout.shape[0]
    P = g.tiles(n)
    # dout -> channels-last images (zero where the last tiles stick out) -> one m x m
    # block of F numbers per tile, in two copies with long innermost runs, as forward.
    images = workspace("wino-dy", (n, g.m * g.Th, g.m * g.Tw, g.F), dout.dtype, zeroed=True,
                       tag=(g.H_out, g.W_out))
    images[:, :g.H_out, :g.W_out] = dout.transpose(0, 2, 3, 1)
    dY = workspace("wino-dY", (n, g.Th, g.Tw, g.m, g.m, g.F), dout.dtype)
    dY[...] = images.reshape(n, g.Th, g.m, g.Tw, g.m, g.F).transpose(0, 1, 3, 2, 4, 5)
    BB, _, AA = transforms(g.m, dout.dtype)
    dM = workspace("wino-dM", (g.T, P, g.F), dout.dtype)
    np.matmul(AA.T, dY.reshape(n, g.Th, g.Tw, g.m * g.m, g.F),
              out=dM.reshape(g.T, n, g.Th, g.Tw, g.F).transpose(1, 2, 3, 0, 4))
    np.matmul(V.transpose(0, 2, 1), dM, out=dU)
    dV = workspace("wino-dV", (g.T, P, g.C), dout.dtype)
    np.matmul(dM, UT, out=dV)
    dtiles = workspace("wino-dtiles", (P, g.T, g.C), dout.dtype)
    np.matmul(BB.T, dV.transpose(1, 0, 2), out=dtiles)
    _add_tiles(dtiles.reshape(n, g.Th, g.Tw, g.t, g.t, g.C), g, dx)
    # b was added at the transformed point (1, 1) of every tile: db sums dM there.
    return dM[g.t + 1].sum(axis=0)


def _add_tiles(dtiles, g, dx):
    """dx block (n, C, H, W) <- the tiles' gradients, added where tiles overlap.

    The padded gradient image is cut into m x m cells, one more row and column of cells
    than tiles: a tile's first m rows and columns fall in its own cell, its last 2 in the
    next cell down or right.
    """
    n, m, Th, Tw = dtiles.shape[0], g.m, g.Th, g.Tw
    d = workspace("wino-dx", (n, Th + 1, m, Tw + 1, m, g.C), dtiles.dtype)
    t = dtiles.transpose(0, 1, 3, 2, 4, 5)  # (n, Th, t rows, Tw, t columns, C)
    d[:, :Th, :, :Tw] = t[:, :, :m, :, :m]
    d[:, Th] = 0
    d[:, :Th, :, Tw] = 0
    d[:, :Th, :, 1:, :2] += t[:, :, :m, :, m:]
    d[:, 1:, :2, :Tw] += t[:, :, m:, :, :m]
    d[:, 1:, :2, 1:, :2] += t[:, :, m:, :, m:]
    p = g.pad
    image = d.reshape(n, (Th + 1) * m, (Tw + 1) * m, g.C)
    dx[...] = image[:, p:p + g.H, p:p + g.W].transpose(0, 3, 1, 2)


def _block_input(x, g, V, i, s):
    """Block i's transformed input: the kept one, or recomputed into scratch."""
    if V is not None:
        return V[i]
    Vb = workspace("wino-V", (g.T, g.tiles(s.stop - s.start), g.C), x.dtype)
    _transform_input(x[s], g, Vb)
    return Vb


@owns_threads
def conv_forward_winograd(x, w, b, pad, m=None):
    """3x3 stride-1 convolution: out (N, F, H + 2*pad - 2, W + 2*pad - 2) and a cache.

    m: the output block size, 2 or 4 (None: the one with fewer multiplications). The
    transformed input V (T/m^2 times the input) is kept for the backward pass unless it
    would exceed MAX_WORKSPACE_BYTES; then the backward pass recomputes it block by block.
    """
    if m is not None and m not in TILE_SIZES:
        raise ValueError(f"Winograd output block size must be one of {TILE_SIZES}, got {m}")
    dtype = float_type(x, w, b)
    x, w, b = (np.asarray(a, dtype=dtype) for a in (x, w, b))
    g = _Geometry(x.shape, w.shape[0], pad, m)
    U = _transformed_filters(w, g)
    out = np.empty((g.N, g.F, g.H_out, g.W_out), dtype=dtype)
    slices = g.blocks()
    V = Saved([(g.T, g.tiles(s.stop - s.start), g.C) for s in slices], dtype) \
        if g.keeps_V(x.itemsize) else None

    def forward(i_s):
        i, s = i_s
        if V is not None:
            _transform_input(x[s], g, V[i])
        _forward_block(_block_input(x, g, V, i, s), U, b, g, out[s])
    run_blocks(forward, list(enumerate(slices)))
    return out, (x, U, g, V)


@owns_threads
def conv_backward_winograd(dout, cache):
    """dx (N, C, H, W), dw (F, C, 3, 3), db (F,) from the cache of conv_forward_winograd."""
    x, U, g, V = cache
    dtype = float_type(dout, x)
    UT = np.ascontiguousarray(U.transpose(0, 2, 1))  # BLAS runs dM @ U^T 2x faster so
    dout = np.asarray(dout, dtype=dtype)
    dx = np.empty(x.shape, dtype=dtype)

    slices = g.blocks()
    # The blocks' shares of dU, in memory reused across calls, added up in block order:
    # the same sums whatever the number of cores.
    shares = Saved([(g.T, g.C, g.F)] * len(slices), dtype)

    def backward(i_s):
        i, s = i_s
        return _backward_block(dout[s], _block_input(x, g, V, i, s), UT, g, dx[s], shares[i])
    db = sum(run_blocks(backward, list(enumerate(slices))))
    dU = shares[0]
    for i in range(1, len(slices)):
        dU += shares[i]
    return dx, _filters_gradient(dU, g), db
