"""3x3 stride-1 convolution by Winograd's minimal filtering, F(2x2, 3x3).

Each 2x2 block of output needs a 4x4 tile of input. Directly that is 2*2*3*3 = 36
multiplications per channel; Winograd (Lavin & Gray 2015, as cuDNN and oneDNN use it)
needs 16, one per point of the transformed tile:

    Y = A^T [ (G g G^T) * (B^T d B) ] A        (* elementwise, 4x4)

The transforms B^T, G, A^T hold only 0, +-1 and +-1/2, so they are a few additions, and
the 16 elementwise products summed over channels are 16 independent matrix multiplies,
U[k] (F, C) @ V[k] (C, tiles), which is where the time goes and what BLAS does best.

The backward pass is the same computation read backwards: the gradients of the 16
products give dU[k] = dM[k] @ V[k]^T (-> dw) and dV[k] = U[k]^T @ dM[k] (-> dx), with the
transposed transforms around them. Every tile of dx overlaps its neighbours by 2 pixels,
so the input transform's adjoint adds into them.
"""

import math

import numpy as np

from .conv_workspace import workspace

G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])

# The column matrix of a chunk (the transformed input, 16 numbers per 4 pixels) stays below this.
MAX_WORKSPACE_BYTES = 256 * 2**20


# Layout. Everything between the two transposes is channels-last, (N, H, W, C): then a
# tile row or column is picked on an outer axis and every addition of the transforms
# runs over long contiguous stretches, and the 16 products are plain (P, C) @ (C, F)
# matrix multiplies over the P = N*Th*Tw tiles.


def _input_transform(d, out):
    """out[i, j] = (B^T d B)[i, j] for every 4x4 tile, one axis at a time.

    d: (N, 2*Th + 2, 2*Tw + 2, C) padded images; out: (4, 4, N, Th, Tw, C).
    B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]: along an axis,
    v0 = d0 - d2, v1 = d1 + d2, v2 = d2 - d1, v3 = d1 - d3.
    """
    Th, Tw = out.shape[3:5]
    r = [d[:, i:i + 2 * Th:2] for i in range(4)]  # tile rows, each (N, Th, Wb, C)
    t = workspace("wino-rows", (4,) + r[0].shape, d.dtype)
    np.subtract(r[0], r[2], out=t[0])
    np.add(r[1], r[2], out=t[1])
    np.subtract(r[2], r[1], out=t[2])
    np.subtract(r[1], r[3], out=t[3])
    for i in range(4):
        c = [t[i][:, :, j:j + 2 * Tw:2] for j in range(4)]
        np.subtract(c[0], c[2], out=out[i, 0])
        np.add(c[1], c[2], out=out[i, 1])
        np.subtract(c[2], c[1], out=out[i, 2])
        np.subtract(c[1], c[3], out=out[i, 3])


def _input_transform_backward(dv, dd):
    """Adjoint of _input_transform: dd (N, Hb, Wb, C) <- B dv B^T, overlapping tiles added.

    dv: (4, 4, N, Th, Tw, C). Along an axis input offset 0 gets dv0, 1 gets dv1 - dv2 + dv3,
    2 gets dv1 + dv2 - dv0 and 3 gets -dv3; offsets 2, 3 of one tile are 0, 1 of the next.
    """
    Th, Tw = dv.shape[3:5]
    N, Hb, Wb, C = dd.shape
    t = workspace("wino-drows", (4, N, Th, Wb, C), dd.dtype)
    for i in range(4):
        ti, v = t[i], dv[i]
        ti[:, :, 0:2 * Tw:2] = v[0]
        odd = ti[:, :, 1:2 * Tw:2]
        np.subtract(v[1], v[2], out=odd)
        odd += v[3]
        ti[:, :, 2 * Tw:] = 0
        even = ti[:, :, 2:2 * Tw + 2:2]
        even += v[1]
        even += v[2]
        even -= v[0]
        ti[:, :, 3:2 * Tw + 3:2] -= v[3]
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


class _Geometry:
    def __init__(self, x_shape, F, pad):
        N, C, H, W = x_shape
        self.N, self.C, self.H, self.W, self.F, self.pad = N, C, H, W, F, pad
        self.H_out, self.W_out = H + 2 * pad - 2, W + 2 * pad - 2
        self.Th, self.Tw = math.ceil(self.H_out / 2), math.ceil(self.W_out / 2)
        # One extra zero row/column when the output size is odd: the last tile sticks out.
        self.Hb, self.Wb = 2 * self.Th + 2, 2 * self.Tw + 2

    def chunks(self, itemsize):
        per_image = 16 * max(self.C, self.F) * self.Th * self.Tw * itemsize
        step = max(1, min(self.N, MAX_WORKSPACE_BYTES // per_image))
        return [slice(i, min(i + step, self.N)) for i in range(0, self.N, step)]


def _transformed_input(x, g):
    """x chunk (n, C, H, W) -> V (16, n*Th*Tw, C)."""
    n = x.shape[0]
    p = g.pad
    buf = workspace("wino-x", (n, g.Hb, g.Wb, g.C), x.dtype, zeroed=True, tag=(g.H, g.W, p))
    buf[:, p:p + g.H, p:p + g.W] = x.transpose(0, 2, 3, 1)
    V = np.empty((4, 4, n, g.Th, g.Tw, g.C), dtype=x.dtype)
    _input_transform(buf, V)
    return V.reshape(16, n * g.Th * g.Tw, g.C)


def _transformed_filters(w):
    """w (F, C, 3, 3) -> U (16, C, F) = G w G^T, one matrix per transformed tile point."""
    Gd = G.astype(w.dtype)
    U = np.einsum("ai,fcij,bj->abcf", Gd, w, Gd, optimize=True)
    return np.ascontiguousarray(U.reshape(16, w.shape[1], w.shape[0]))


def _forward_chunk(V, U, b, g, out):
    n = out.shape[0]
    M = workspace("wino-M", (16, V.shape[1], g.F), V.dtype)
    for k in range(16):
        np.matmul(V[k], U[k], out=M[k])
    M = M.reshape(4, 4, n, g.Th, g.Tw, g.F)
    # Output transform A^T M A, A^T = [[1, 1, 1, 0], [0, 1, -1, -1]], rows then columns,
    # the second step writing each output phase (i, j) of a channels-last image.
    S = workspace("wino-S", (2, 4, n, g.Th, g.Tw, g.F), V.dtype)
    np.add(M[0], M[1], out=S[0])
    S[0] += M[2]
    np.subtract(M[1], M[2], out=S[1])
    S[1] -= M[3]
    y = workspace("wino-y", (n, g.Th, 2, g.Tw, 2, g.F), V.dtype)
    for i in range(2):
        s = S[i]
        dst = y[:, :, i, :, 0]
        np.add(s[0], s[1], out=dst)
        dst += s[2]
        dst += b
        dst = y[:, :, i, :, 1]
        np.subtract(s[1], s[2], out=dst)
        dst -= s[3]
        dst += b
    y = y.reshape(n, 2 * g.Th, 2 * g.Tw, g.F)
    out[...] = y[:, :g.H_out, :g.W_out].transpose(0, 3, 1, 2)


def _backward_chunk(dout, V, U, g, dx, dU):
    n = dout.shape[0]
    P = n * g.Th * g.Tw
    # Channels-last dY, zero where the last tile sticks out.
    dy = workspace("wino-dy", (n, 2 * g.Th, 2 * g.Tw, g.F), dout.dtype, zeroed=True,
                   tag=(g.H_out, g.W_out))
    dy[:, :g.H_out, :g.W_out] = dout.transpose(0, 2, 3, 1)
    # dM = A dY A^T with A = [[1, 0], [1, 1], [1, -1], [0, -1]]: columns, then rows.
    T = workspace("wino-dT", (4, n, 2 * g.Th, g.Tw, g.F), dout.dtype)
    y0, y1 = dy[:, :, 0::2], dy[:, :, 1::2]
    T[0] = y0
    np.add(y0, y1, out=T[1])
    np.subtract(y0, y1, out=T[2])
    np.negative(y1, out=T[3])
    dM = workspace("wino-dM", (4, 4, n, g.Th, g.Tw, g.F), dout.dtype)
    r0, r1 = T[:, :, 0::2], T[:, :, 1::2]  # (4, n, Th, Tw, F) each, indexed by column
    dM[0] = r0
    np.add(r0, r1, out=dM[1])
    np.subtract(r0, r1, out=dM[2])
    np.negative(r1, out=dM[3])
    dM = dM.reshape(16, P, g.F)
    dV = workspace("wino-dV", (16, P, g.C), dout.dtype)
    for k in range(16):
        dU[k] += V[k].T @ dM[k]
        np.matmul(dM[k], U[k].T, out=dV[k])
    dbuf = workspace("wino-dx", (n, g.Hb, g.Wb, g.C), dout.dtype)
    _input_transform_backward(dV.reshape(4, 4, n, g.Th, g.Tw, g.C), dbuf)
    p = g.pad
    dx[...] = dbuf[:, p:p + g.H, p:p + g.W].transpose(0, 3, 1, 2)


def conv_forward_winograd(x, w, b, pad):
    """3x3 stride-1 convolution: out (N, F, H + 2*pad - 2, W + 2*pad - 2) and a cache."""
    dtype = np.result_type(x, w, b)
    x, w, b = (np.asarray(a, dtype=dtype) for a in (x, w, b))
    g = _Geometry(x.shape, w.shape[0], pad)
    U = _transformed_filters(w)
    out = np.empty((g.N, g.F, g.H_out, g.W_out), dtype=dtype)
    chunks = g.chunks(x.itemsize)
    V = None
    for c in chunks:
        V = _transformed_input(x[c], g)
        _forward_chunk(V, U, b, g, out[c])
    return out, (x, U, g, V if len(chunks) == 1 else None)


def conv_backward_winograd(dout, cache):
    """dx (N, C, H, W), dw (F, C, 3, 3), db (F,) from the cache of conv_forward_winograd."""
    x, U, g, V = cache
    dtype = np.result_type(dout, x)
    dout = np.asarray(dout, dtype=dtype)
    dx = np.empty(x.shape, dtype=dtype)
    dU = np.zeros(U.shape, dtype=dtype)
    for c in g.chunks(x.itemsize):
        chunk_V = V if V is not None else _transformed_input(x[c], g)
        _backward_chunk(dout[c], chunk_V, U, g, dx[c], dU)
    Gd = G.astype(dtype)
    dw = np.einsum("ai,abcf,bj->fcij", Gd, dU.reshape(4, 4, g.C, g.F), Gd, optimize=True)
    return dx, np.ascontiguousarray(dw), dout.sum(axis=(0, 2, 3))
