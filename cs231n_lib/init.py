"""Weight initialisation: where the first step of training starts from.

Each function returns a (fan_in, fan_out) weight matrix. The scale matters: with std 0.01 the
activations of a deep tanh net shrink towards zero layer by layer (and the gradients with
them); with std 1 they saturate. Xavier's variance keeps the variance of a linear or tanh
layer's output equal to its input's; He's does the same for ReLU, which zeros half its inputs
(notebook 03 derives both from the variance of a sum of fan_in products).

`rng` may be None (fresh entropy), an int seed, or a numpy Generator.
"""

import numpy as np

from .layers import check_positive_int
from .registry import exercise


def check_fans(fan_in, fan_out, fn):
    """ValueError unless fan_in (and fan_out, if not None) is a positive integer."""
    check_positive_int(fan_in, "fan_in", fn)
    if fan_out is not None:
        check_positive_int(fan_out, "fan_out", fn)


def small_random(fan_in, fan_out, std=0.01, rng=None, dtype=np.float64):
    """Gaussian weights with a fixed standard deviation (0.01 by default).

    Inputs: fan_in, fan_out ints; std; rng; dtype. Returns: W (fan_in, fan_out).
    """
    check_fans(fan_in, fan_out, "small_random")
    rng = np.random.default_rng(rng)
    return (std * rng.standard_normal((fan_in, fan_out))).astype(dtype)


@exercise("03_initialisation")
def xavier(fan_in, fan_out, rng=None, dtype=np.float64):
    """Xavier/Glorot initialisation, for tanh nets: zero-mean Gaussian weights whose variance
    keeps the variance of a unit's output equal to that of its inputs, where the activation is
    close to linear. Which variance that is, section 2 derives.

    Inputs: fan_in, fan_out ints; rng; dtype. Returns: W (fan_in, fan_out).
    """
    check_fans(fan_in, fan_out, "xavier")
    generator = np.random.default_rng(rng)
    return (generator.standard_normal((fan_in, fan_out)) * np.sqrt(1.0 / fan_in)).astype(dtype)


@exercise("03_initialisation")
def he(fan_in, fan_out, rng=None, dtype=np.float64):
    """He/Kaiming initialisation, for ReLU nets: zero-mean Gaussian weights whose variance keeps
    the variance of the pre-activations the same from layer to layer although each ReLU zeros
    half of them. Which variance that is, section 2 derives.

    Inputs: fan_in, fan_out ints; rng; dtype. Returns: W (fan_in, fan_out).
    """
    check_fans(fan_in, fan_out, "he")
    generator = np.random.default_rng(rng)
    return (generator.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)).astype(dtype)


def zeros(fan_in, fan_out=None, rng=None, dtype=np.float64):
    """All zeros: right for biases, wrong for weights (every unit gets the same gradient).

    Inputs: fan_in; fan_out (omit it for a bias vector); rng is ignored and accepted only so
    that all the schemes share one signature. Returns: W (fan_in, fan_out) or b (fan_in,).
    """
    check_fans(fan_in, fan_out, "zeros")
    shape = (fan_in,) if fan_out is None else (fan_in, fan_out)
    return np.zeros(shape, dtype=dtype)
