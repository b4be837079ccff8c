"""Notebook 06: the naive convolution and max-pooling layers.

Backward checks run the student's own forward pass first (its cache is the student's), so every
buggy backward below comes with a matching forward. Shapes cover strides, padding, odd sizes,
rectangular filters and batch size 1.
"""

import numpy as np

from autograder.exercise import Check, Exercise, Mistake
from cs231n_lib import conv

NOTEBOOK = "06_convolution"


# ---- plain loops to build the typical mistakes from ----

def _conv_forward(kind=None):
    def forward(x, w, b, conv_param):
        stride = 1 if kind == "no_stride" else conv_param["stride"]
        pad = conv_param["pad"]
        N, C, H, W = x.shape
        F, _, HH, WW = w.shape
        xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
        H_out = (H + 2 * pad - HH) // stride + 1
        W_out = (W + 2 * pad - WW) // stride + 1
        k = w[:, :, ::-1, ::-1] if kind == "flipped" else w
        out = np.zeros((N, F, H_out, W_out))
        for i in range(H_out):
            for j in range(W_out):
                window = xp[:, :, i * stride:i * stride + HH, j * stride:j * stride + WW]
                out[:, :, i, j] = np.tensordot(window, k, axes=([1, 2, 3], [1, 2, 3]))
        if kind != "no_bias":
            out += b[None, :, None, None]
        return out, (x, w, b, conv_param)

    return forward


def _conv_backward(kind=None):
    def backward(dout, cache):
        x, w, b, conv_param = cache
        stride, pad = conv_param["stride"], conv_param["pad"]
        F, _, HH, WW = w.shape
        xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
        dxp = np.zeros_like(xp)
        dw = np.zeros_like(w)
        for i in range(dout.shape[2]):
            for j in range(dout.shape[3]):
                rows = slice(i * stride, i * stride + HH)
                cols = slice(j * stride, j * stride + WW)
                contribution = np.tensordot(dout[:, :, i, j], w, axes=([1], [0]))
                if kind == "assign":
                    dxp[:, :, rows, cols] = contribution
                else:
                    dxp[:, :, rows, cols] += contribution
                dw += np.tensordot(dout[:, :, i, j], xp[:, :, rows, cols], axes=([0], [0]))
        db = dout.sum(axis=(0, 2, 3))
        if kind == "dw_transposed":
            dw = dw.transpose(0, 1, 3, 2)
        if kind == "dx_padded":
            return dxp, dw, db
        return dxp[:, :, pad:pad + x.shape[2], pad:pad + x.shape[3]], dw, db

    return backward


def _pool_forward(kind=None):
    def forward(x, pool_param):
        ph, pw = pool_param["pool_height"], pool_param["pool_width"]
        stride = ph if kind == "stride_is_pool" else pool_param["stride"]
        N, C, H, W = x.shape
        H_out, W_out = (H - ph) // stride + 1, (W - pw) // stride + 1
        out = np.zeros((N, C, H_out, W_out))
        for i in range(H_out):
            for j in range(W_out):
                window = x[:, :, i * stride:i * stride + ph, j * stride:j * stride + pw]
                out[:, :, i, j] = window.mean(axis=(2, 3)) if kind == "average" else window.max(axis=(2, 3))
        return out, (x, pool_param)

    return forward


def _pool_backward(kind=None):
    def backward(dout, cache):
        x, pool_param = cache
        ph, pw, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
        dx = np.zeros_like(x, dtype=np.float64)
        for n in range(x.shape[0]):
            for c in range(x.shape[1]):
                for i in range(dout.shape[2]):
                    for j in range(dout.shape[3]):
                        r, s = i * stride, j * stride
                        window = x[n, c, r:r + ph, s:s + pw]
                        g = dout[n, c, i, j]
                        if kind == "every_element":
                            dx[n, c, r:r + ph, s:s + pw] += g
                            continue
                        a, bb = np.unravel_index(np.argmax(window), window.shape)
                        if kind == "assign":
                            dx[n, c, r + a, s + bb] = g
                        else:
                            dx[n, c, r + a, s + bb] += g
        return dx

    return backward


# ---- checks ----

def _conv_inputs(rng, x_shape, w_shape):
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0])
    return x, w, b


def _conv_forward_run(x_shape, w_shape, stride, pad):
    def run(ns, rng):
        x, w, b = _conv_inputs(rng, x_shape, w_shape)
        out, _ = ns["conv_forward_naive"](x, w, b, {"stride": stride, "pad": pad})
        return {"out": np.asarray(out, dtype=np.float64)}

    return run


def _conv_backward_run(x_shape, w_shape, stride, pad):
    def run(ns, rng):
        x, w, b = _conv_inputs(rng, x_shape, w_shape)
        H_out = (x_shape[2] + 2 * pad - w_shape[2]) // stride + 1
        W_out = (x_shape[3] + 2 * pad - w_shape[3]) // stride + 1
        dout = rng.standard_normal((x_shape[0], w_shape[0], H_out, W_out))
        _, cache = ns["conv_forward_naive"](x, w, b, {"stride": stride, "pad": pad})
        dx, dw, db = ns["conv_backward_naive"](dout, cache)
        return {"dx": np.asarray(dx, dtype=np.float64), "dw": np.asarray(dw, dtype=np.float64),
                "db": np.asarray(db, dtype=np.float64)}

    return run


def _pool_param(ph, pw, stride):
    return {"pool_height": ph, "pool_width": pw, "stride": stride}


def _pool_forward_run(x_shape, ph, pw, stride):
    def run(ns, rng):
        x = rng.standard_normal(x_shape)
        out, _ = ns["max_pool_forward_naive"](x, _pool_param(ph, pw, stride))
        return {"out": np.asarray(out, dtype=np.float64)}

    return run


def _pool_backward_run(x_shape, ph, pw, stride):
    def run(ns, rng):
        x = rng.standard_normal(x_shape)
        H_out, W_out = (x_shape[2] - ph) // stride + 1, (x_shape[3] - pw) // stride + 1
        dout = rng.standard_normal((x_shape[0], x_shape[1], H_out, W_out))
        _, cache = ns["max_pool_forward_naive"](x, _pool_param(ph, pw, stride))
        dx = ns["max_pool_backward_naive"](dout, cache)
        return {"dx": np.asarray(dx, dtype=np.float64)}

    return run


# (x shape, w shape, stride, pad): the visible case first, then odd sizes / batch 1 / rectangular
# filters / stride 3.
_CONV_CASES = (
    ((2, 3, 4, 4), (3, 3, 4, 4), 2, 1),
    ((1, 1, 5, 7), (2, 1, 3, 3), 1, 0),
    ((3, 2, 7, 6), (4, 2, 3, 2), 1, 2),
    ((2, 3, 7, 7), (2, 3, 3, 3), 3, 1),
)
_CONV_BACKWARD_CASES = (
    ((2, 3, 5, 5), (2, 3, 3, 3), 1, 1),
    ((1, 1, 5, 7), (2, 1, 3, 3), 2, 0),
    ((3, 2, 6, 6), (4, 2, 3, 3), 1, 2),
    ((2, 3, 7, 7), (2, 3, 3, 3), 2, 1),
)
# (x shape, pool height, pool width, stride)
_POOL_CASES = (
    ((2, 3, 4, 4), 2, 2, 2),
    ((1, 1, 5, 5), 3, 3, 1),
    ((2, 2, 7, 6), 2, 3, 1),
    ((3, 1, 7, 7), 3, 3, 2),
)


def _cases(run, cases, tol=1e-9):
    checks = [Check("visible", run(*cases[0]), hidden=False, tol=tol)]
    checks += [Check(f"hidden_{i}", run(*case), tol=tol) for i, case in enumerate(cases[1:])]
    return tuple(checks)


def _conv_backward_patch(kind):
    return {"conv_forward_naive": _conv_forward(), "conv_backward_naive": _conv_backward(kind)}


def _pool_backward_patch(kind):
    return {"max_pool_forward_naive": _pool_forward(), "max_pool_backward_naive": _pool_backward(kind)}


# The vectorized core computes every one of these exercises: while they are checked, all of it
# is out of bounds (``module.*``: every function of the module), not only its public names.
FAST_PATH = ("cs231n_lib.conv.*", "cs231n_lib.conv.gemm.*", "cs231n_lib.conv.winograd.*",
             "cs231n_lib.conv.pool.*")

EXERCISES = (
    Exercise(
        name="conv_forward_naive",
        reference={"conv_forward_naive": conv.conv_forward_naive},
        checks=_cases(_conv_forward_run, _CONV_CASES),
        mistakes=(
            Mistake("your conv_forward_naive flips the filter (true convolution): CNN layers compute "
                    "the cross-correlation, w[f] laid over the window as it is",
                    {"conv_forward_naive": _conv_forward("flipped")}),
            Mistake("your conv_forward_naive leaves out the bias b[f]", {"conv_forward_naive": _conv_forward("no_bias")}),
            Mistake("your conv_forward_naive ignores the stride: move the window by conv_param['stride']",
                    {"conv_forward_naive": _conv_forward("no_stride")}),
        ),
        forbidden=("cs231n_lib.conv.conv_forward_naive", "cs231n_lib.conv.conv_forward", *FAST_PATH),
    ),
    Exercise(
        name="conv_backward_naive",
        reference={"conv_forward_naive": conv.conv_forward_naive, "conv_backward_naive": conv.conv_backward_naive},
        checks=_cases(_conv_backward_run, _CONV_BACKWARD_CASES),
        mistakes=(
            Mistake("your dw of the convolution is transposed (height and width swapped in each filter)",
                    _conv_backward_patch("dw_transposed")),
            Mistake("your conv_backward_naive assigns dx window by window: overlapping windows must ADD "
                    "their contributions (+=)", _conv_backward_patch("assign")),
            Mistake("your conv_backward_naive returns dx of the padded input: crop the padding off",
                    _conv_backward_patch("dx_padded")),
        ),
        forbidden=("cs231n_lib.conv.conv_backward_naive", "cs231n_lib.conv.conv_backward", *FAST_PATH),
    ),
    Exercise(
        name="max_pool_forward_naive",
        reference={"max_pool_forward_naive": conv.max_pool_forward_naive},
        checks=_cases(_pool_forward_run, _POOL_CASES),
        mistakes=(
            Mistake("your max_pool_forward_naive averages each window: max pooling keeps its largest value",
                    {"max_pool_forward_naive": _pool_forward("average")}),
            Mistake("your max_pool_forward_naive moves the window by the pool size: use pool_param['stride']",
                    {"max_pool_forward_naive": _pool_forward("stride_is_pool")}),
        ),
        forbidden=("cs231n_lib.conv.max_pool_forward_naive", "cs231n_lib.conv.max_pool_forward", *FAST_PATH),
    ),
    Exercise(
        name="max_pool_backward_naive",
        reference={"max_pool_forward_naive": conv.max_pool_forward_naive,
                   "max_pool_backward_naive": conv.max_pool_backward_naive},
        checks=_cases(_pool_backward_run, _POOL_CASES),
        mistakes=(
            Mistake("your max pool backward sends the gradient to every window element: only the "
                    "window's maximum gets it", _pool_backward_patch("every_element")),
            Mistake("your max pool backward assigns instead of adding: when windows overlap, an input "
                    "that is the maximum of several windows collects all their gradients (+=)",
                    _pool_backward_patch("assign")),
        ),
        forbidden=("cs231n_lib.conv.max_pool_backward_naive", "cs231n_lib.conv.max_pool_backward", *FAST_PATH),
    ),
)
