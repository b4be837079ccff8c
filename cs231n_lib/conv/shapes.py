"""Shape checks shared by every convolution and pooling path.

A bad shape must fail loudly with the sizes in the message, before any arithmetic,
so the naive and the fast paths reject exactly the same inputs.
"""

import operator

import numpy as np


def float_type(*arrays):
    """The float dtype the arrays compute in: their common type, integers promoted to float64.

    (A weak Python float keeps float32 as float32 but turns integers into float64.)
    """
    return np.result_type(*arrays, 1.0)


def check_images(x):
    """ValueError unless x is a batch of images (N, C, H, W)."""
    if getattr(x, "ndim", None) != 4:
        raise ValueError(f"x must have shape (N, C, H, W), got shape {getattr(x, 'shape', None)}")


def _int_param(params, key, minimum, where):
    if key not in params:
        raise ValueError(f"{where} needs the key {key!r}; got keys {sorted(params)}")
    try:
        value = operator.index(params[key])
    except TypeError:
        raise ValueError(f"{where}[{key!r}] must be an integer, got {params[key]!r}") from None
    if value < minimum:
        raise ValueError(f"{where}[{key!r}] must be >= {minimum}, got {value}")
    return value


def conv_geometry(x, w, b, conv_param):
    """Check a convolution's inputs and return (stride, pad, H_out, W_out).

    x: (N, C, H, W); w: (F, C, HH, WW); b: (F,); conv_param keys 'stride', 'pad'.
    H_out = 1 + (H + 2 * pad - HH) / stride must be a whole number, likewise W_out.
    """
    check_images(x)
    if getattr(w, "ndim", None) != 4:
        raise ValueError(f"w must have shape (F, C, HH, WW), got shape {getattr(w, 'shape', None)}")
    N, C, H, W = x.shape
    F, Cw, HH, WW = w.shape
    if Cw != C:
        raise ValueError(f"channels do not match: x has C={C} (shape {x.shape}) "
                         f"but w has C={Cw} (shape {w.shape})")
    if getattr(b, "shape", None) != (F,):
        raise ValueError(f"b must have shape (F,) = ({F},), got {getattr(b, 'shape', None)}")
    if not isinstance(conv_param, dict):
        raise ValueError(f"conv_param must be a dict with keys 'stride' and 'pad', got {conv_param!r}")
    stride = _int_param(conv_param, "stride", 1, "conv_param")
    pad = _int_param(conv_param, "pad", 0, "conv_param")
    sizes = []
    for name, size, k in (("height", H, HH), ("width", W, WW)):
        span = size + 2 * pad - k
        if span < 0:
            raise ValueError(f"filter {name} {k} is larger than the padded input {name} "
                             f"{size} + 2*{pad} = {size + 2 * pad}")
        if span % stride:
            raise ValueError(f"stride {stride} does not tile the input {name}: "
                             f"{size} + 2*pad({pad}) - filter({k}) = {span} "
                             f"is not a multiple of {stride}")
        sizes.append(1 + span // stride)
    return stride, pad, sizes[0], sizes[1]


def pool_geometry(x, pool_param):
    """Check a max pool's inputs and return (pool_height, pool_width, stride, H_out, W_out).

    x: (N, C, H, W); pool_param keys 'pool_height', 'pool_width', 'stride'.
    """
    check_images(x)
    if not isinstance(pool_param, dict):
        raise ValueError("pool_param must be a dict with keys 'pool_height', 'pool_width', "
                         f"'stride', got {pool_param!r}")
    ph = _int_param(pool_param, "pool_height", 1, "pool_param")
    pw = _int_param(pool_param, "pool_width", 1, "pool_param")
    stride = _int_param(pool_param, "stride", 1, "pool_param")
    _, _, H, W = x.shape
    sizes = []
    for name, size, k in (("height", H, ph), ("width", W, pw)):
        if k > size:
            raise ValueError(f"pool {name} {k} is larger than the input {name} {size}")
        if (size - k) % stride:
            raise ValueError(f"stride {stride} does not tile the input {name}: "
                             f"{size} - pool({k}) = {size - k} is not a multiple of {stride}")
        sizes.append(1 + (size - k) // stride)
    return ph, pw, stride, sizes[0], sizes[1]
