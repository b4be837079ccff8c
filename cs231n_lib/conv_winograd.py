"""3x3 stride-1 convolution by Winograd's minimal filtering, F(2x2, 3x3).

Each 2x2 block of output needs a 4x4 tile of input. Directly that is 2*2*3*3 = 36
multiplications per channel; Winograd (Lavin & Gray 2015, as cuDNN and oneDNN use it)
needs 16, one per point of the transformed tile:

    Y = A^T [ (G g G^T) * (B^T d B) ] A        (* elementwise, 4x4)

The transforms B^T, G, A^T hold only 0, +-1 and +-1/2, so they are a few additions, and
the 16 elementwise products summed over channels are 16 independent matrix multiplies,
M[k] = V[k] (tiles, C) @ U[k] (C, F), which BLAS does well.

The backward pass is the same computation read backwards: the gradients of the 16
products give dU[k] = V[k]^T @ dM[k] (-> dw) and dV[k] = dM[k] @ U[k]^T (-> dx), with the
transposed transforms around them. Every tile of dx overlaps its neighbours by 2 pixels,
so the input transform's adjoint adds into them.

Where the time goes: V and M are 4x the input and 4x the output, and numpy passes over
them once per addition of a transform, so beside the multiplies the layer is bound by
memory traffic. Hence the choices below: channels-last tiles (long contiguous runs),
even and odd columns stored apart, the output transform as one (4 x 16) matrix product
instead of 12 additions, the bias added once per tile instead of once per pixel.
"""

import math

import numpy as np

from .conv_blocks import blocks, run_blocks
from .conv_shapes import float_type
from .conv_workspace import workspace

G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])
A_T = np.array([[1.0, 1.0, 1.0, 0.0], [0.0, 1.0, -1.0, -1.0]])
_AA = np.kron(A_T, A_T)  # (4, 16): rows (i, j) of the 2x2 output, columns (a, b) of the tile

# The transformed input (16 numbers per 4 pixels) is kept for the backward pass up to this size.
MAX_WORKSPACE_BYTES = 256 * 2**20


# Layout. Everything between the two transposes is channels-last, (N, H, W, C): then a
# tile row or column is picked on an outer axis and every addition of the transforms
# runs over long contiguous stretches, and the 16 products are plain (P, C) @ (C, F)
# matrix multiplies over the P = N*Th*Tw tiles.


def _input_transform(d, out):
    """out[i, j] = (B^T d B)[i, j] for every 4x4 tile, one axis at a time.

    d: (N, 2*Th + 2, 2, Tw + 1, C), padded images with even and odd columns apart (column
    2*m + q at [:, :, q, m]), so a tile column is a contiguous slice; out: (4, 4, N, Th, Tw, C).
    B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]: along an axis,
    v0 = d0 - d2, v1 = d1 + d2, v2 = d2 - d1, v3 = d1 - d3.
    """
    Th, Tw = out.shape[3:5]
    r = [d[:, i:i + 2 * Th:2] for i in range(4)]  # tile rows, each (N, Th, 2, Tw + 1, C)
    t = workspace("wino-rows", (4,) + r[0].shape, d.dtype)
    np.subtract(r[0], r[2], out=t[0])
    np.add(r[1], r[2], out=t[1])
    np.subtract(r[2], r[1], out=t[2])
    np.subtract(r[1], r[3], out=t[3])
    for i in range(4):
        c = [t[i][:, :, j % 2, j // 2:j // 2 + Tw] for j in range(4)]
        np.subtract(c[0], c[2], out=out[i, 0])
        np.add(c[1], c[2], out=out[i, 1])
        np.subtract(c[2], c[1], out=out[i, 2])
        np.subtract(c[1], c[3], out=out[i, 3])


def _input_transform_backward(dv, dd):
    """Adjoint of _input_transform: dd (N, Hb, 2, Tw + 1, C) <- B dv B^T, overlaps added.

    dv: (4, 4, N, Th, Tw, C). Along an axis input offset 0 gets dv0, 1 gets dv1 - dv2 + dv3,
    2 gets dv1 + dv2 - dv0 and 3 gets -dv3; offsets 2, 3 of one tile are 0, 1 of the next.
    """
    Th, Tw = dv.shape[3:5]
    t = workspace("wino-drows", (4, dd.shape[0], Th) + dd.shape[2:], dd.dtype)
    for i in range(4):
        ti, v = t[i], dv[i]
        ti[:, :, 0, :Tw] = v[0]
        odd = ti[:, :, 1, :Tw]
        np.subtract(v[1], v[2], out=odd)
        odd += v[3]
        ti[:, :, :, Tw] = 0
        even = ti[:, :, 0, 1:]
        even += v[1]
        even += v[2]
        even -= v[0]
        ti[:, :, 1, 1:] -= v[3]
    dd[:, 0:2 * Th:2] = t[0]
    odd = dd[:, 1:2 * Th:2]
    np.subtract(t[1], t[2], out=odd)
    odd += t[3]
    dd[:, 2 * Th:] = 0
    even = dd[:, 2:2 * Th + 2:2]
    even += t[1]
    even += t[2]
    even -= t[0]
    dd[:, 3:2 * Th + 3:2] -= t[3]


def _column_phases(W, pad, Wh):
    """For q = 0, 1: x's columns that land in padded columns 2*m + q, and their m range."""
    for q in range(2):
        m0 = -(-(pad - q) // 2) if pad > q else 0
        c0 = 2 * m0 + q - pad
        cnt = min(len(range(c0, W, 2)), Wh - m0)
        yield q, slice(c0, c0 + 2 * cnt - 1 if cnt else c0, 2), slice(m0, m0 + cnt)


class _Geometry:
    def __init__(self, x_shape, F, pad):
        N, C, H, W = x_shape
        self.N, self.C, self.H, self.W, self.F, self.pad = N, C, H, W, F, pad
        self.H_out, self.W_out = H + 2 * pad - 2, W + 2 * pad - 2
        self.Th, self.Tw = math.ceil(self.H_out / 2), math.ceil(self.W_out / 2)
        # One extra zero row/column when the output size is odd: the last tile sticks out.
        self.Hb, self.Wb = 2 * self.Th + 2, 2 * self.Tw + 2

    def blocks(self, itemsize):
        # Per image: V, M and the transforms' intermediates, about 2x (V + M).
        per_image = 2 * 16 * self.Th * self.Tw * (self.C + self.F) * itemsize
        return blocks(self.N, per_image)

    def keeps_V(self, itemsize):
        return 16 * self.N * self.Th * self.Tw * self.C * itemsize <= MAX_WORKSPACE_BYTES


def _transform_input(x, g, V):
    """x block (n, C, H, W) -> V (4, 4, n, Th, Tw, C), written in place."""
    n = x.shape[0]
    p = g.pad
    buf = workspace("wino-x", (n, g.Hb, 2, g.Tw + 1, g.C), x.dtype, zeroed=True,
                    tag=(g.H, g.W, p))
    for q, cols, ms in _column_phases(g.W, p, g.Tw + 1):
        buf[:, p:p + g.H, q, ms] = x[:, :, :, cols].transpose(0, 2, 3, 1)
    _input_transform(buf, V)


def _transformed_filters(w):
    """w (F, C, 3, 3) -> U (16, C, F) = G w G^T, one matrix per transformed tile point."""
    Gd = G.astype(w.dtype)
    U = np.einsum("ai,fcij,bj->abcf", Gd, w, Gd, optimize=True)
    return np.ascontiguousarray(U.reshape(16, w.shape[1], w.shape[0]))


def _forward_block(V, U, b, g, out):
    """out block (n, F, H_out, W_out) <- A^T [U . V] A + b."""
    n = out.shape[0]
    V = V.reshape(16, n * g.Th * g.Tw, g.C)
    M = workspace("wino-M", (16, V.shape[1], g.F), V.dtype)
    for k in range(16):
        np.matmul(V[k], U[k], out=M[k])
    # A^T e1 e1^T A is all ones (e1 the second unit vector), so adding b to the transformed
    # point (1, 1) adds it to all four outputs of the tile, at 1/16 of the cost.
    M[5] += b
    # Output transform A^T M A as one small matrix product over all tiles and channels:
    # Y[(i, j)] = sum_k AA[(i, j), k] M[k], AA = A^T (x) A^T (Kronecker), 4 x 16.
    Y = workspace("wino-Y", (4, M.shape[1] * g.F), V.dtype)
    np.matmul(_AA.astype(V.dtype), M.reshape(16, -1), out=Y)
    Y = Y.reshape(2, 2, n, g.Th, g.Tw, g.F)
    y = workspace("wino-y", (n, g.Th, 2, g.Tw, 2, g.F), V.dtype)
    for i in range(2):
        for j in range(2):
            y[:, :, i, :, j] = Y[i, j]
    y = y.reshape(n, 2 * g.Th, 2 * g.Tw, g.F)
    out[...] = y[:, :g.H_out, :g.W_out].transpose(0, 3, 1, 2)


def _backward_block(dout, V, U, g, dx):
    """dx block written; returns this block's share of dU (16, C, F)."""
    n = dout.shape[0]
    P = n * g.Th * g.Tw
    V = V.reshape(16, P, g.C)
    # Channels-last dY, zero where the last tile sticks out.
    dy = workspace("wino-dy", (n, 2 * g.Th, 2 * g.Tw, g.F), dout.dtype, zeroed=True,
                   tag=(g.H_out, g.W_out))
    dy[:, :g.H_out, :g.W_out] = dout.transpose(0, 2, 3, 1)
    # dM = A dY A^T with A = [[1, 0], [1, 1], [1, -1], [0, -1]]. Along the tile's columns,
    # row i of dY becomes R[i] = (y0, y0 + y1, y0 - y1, -y1) with y0, y1 = dY[i, 0], dY[i, 1];
    # along its rows, dM[0] = R[0], dM[1] = R[0] + R[1], dM[2] = R[0] - R[1], dM[3] = -R[1].
    # Single terms are used in place (contiguous, so each is a (P, F) matrix) and every
    # minus sign in front of a whole dM[k] moves onto the small U[k] and dU[k].
    dY = workspace("wino-dY", (2, 2, n, g.Th, g.Tw, g.F), dout.dtype)
    dy6 = dy.reshape(n, g.Th, 2, g.Tw, 2, g.F)
    for i in range(2):
        for j in range(2):
            dY[i, j] = dy6[:, :, i, :, j]
    sums = workspace("wino-dR", (2, 2, n, g.Th, g.Tw, g.F), dout.dtype)
    R = []  # R[i][b] = (array, sign)
    for i in range(2):
        y0, y1 = dY[i]
        np.add(y0, y1, out=sums[i, 0])
        np.subtract(y0, y1, out=sums[i, 1])
        R.append([(y0, 1), (sums[i, 0], 1), (sums[i, 1], 1), (y1, -1)])
    mid = workspace("wino-dM", (2, 4, n, g.Th, g.Tw, g.F), dout.dtype)  # dM[1], dM[2]
    dM = [R[0], [], [], [(r, -sg) for r, sg in R[1]]]
    for b in range(4):
        (r0, sg), (r1, _) = R[0][b], R[1][b]  # both rows carry the same sign
        np.add(r0, r1, out=mid[0, b])
        np.subtract(r0, r1, out=mid[1, b])
        dM[1].append((mid[0, b], sg))
        dM[2].append((mid[1, b], sg))
    terms = [(m.reshape(P, g.F), sg) for row in dM for m, sg in row]
    dU = np.empty((16, g.C, g.F), dtype=dout.dtype)
    dV = workspace("wino-dV", (16, P, g.C), dout.dtype)
    for k, (dMk, sg) in enumerate(terms):
        np.matmul(V[k].T, dMk, out=dU[k])
        np.matmul(dMk, U[k].T if sg > 0 else -U[k].T, out=dV[k])
        if sg < 0:
            np.negative(dU[k], out=dU[k])
    dbuf = workspace("wino-dx", (n, g.Hb, 2, g.Tw + 1, g.C), dout.dtype)
    _input_transform_backward(dV.reshape(4, 4, n, g.Th, g.Tw, g.C), dbuf)
    p = g.pad
    for q, cols, ms in _column_phases(g.W, p, g.Tw + 1):
        dx[:, :, :, cols] = dbuf[:, p:p + g.H, q, ms].transpose(0, 3, 1, 2)
    return dU


def _block_input(x, g, V, s):
    """The transformed input of block s: a view of the kept V, or recomputed into scratch."""
    if V is not None:
        return V[:, :, s]
    n = s.stop - s.start
    Vb = workspace("wino-V", (4, 4, n, g.Th, g.Tw, g.C), x.dtype)
    _transform_input(x[s], g, Vb)
    return Vb


def conv_forward_winograd(x, w, b, pad):
    """3x3 stride-1 convolution: out (N, F, H + 2*pad - 2, W + 2*pad - 2) and a cache.

    The transformed input V (4x the input) is kept for the backward pass unless it would
    exceed MAX_WORKSPACE_BYTES; then the backward pass recomputes it block by block.
    """
    dtype = float_type(x, w, b)
    x, w, b = (np.asarray(a, dtype=dtype) for a in (x, w, b))
    g = _Geometry(x.shape, w.shape[0], pad)
    U = _transformed_filters(w)
    out = np.empty((g.N, g.F, g.H_out, g.W_out), dtype=dtype)
    V = np.empty((4, 4, g.N, g.Th, g.Tw, g.C), dtype) if g.keeps_V(x.itemsize) else None

    def forward(s):
        if V is not None:
            _transform_input(x[s], g, V[:, :, s])
        _forward_block(_block_input(x, g, V, s), U, b, g, out[s])
    run_blocks(forward, g.blocks(x.itemsize))
    return out, (x, U, g, V)


def conv_backward_winograd(dout, cache):
    """dx (N, C, H, W), dw (F, C, 3, 3), db (F,) from the cache of conv_forward_winograd."""
    x, U, g, V = cache
    dtype = float_type(dout, x)
    dout = np.asarray(dout, dtype=dtype)
    dx = np.empty(x.shape, dtype=dtype)

    def backward(s):
        return _backward_block(dout[s], _block_input(x, g, V, s), U, g, dx[s])
    dU = sum(run_blocks(backward, g.blocks(x.itemsize)))  # in block order: deterministic
    Gd = G.astype(dtype)
    dw = np.einsum("ai,abcf,bj->fcij", Gd, dU.reshape(4, 4, g.C, g.F), Gd, optimize=True)
    return dx, np.ascontiguousarray(dw), dout.sum(axis=(0, 2, 3))
