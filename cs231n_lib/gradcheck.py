"""Numerical gradients by centred differences, and the relative error used to compare them.

An analytic gradient is only trusted once it agrees with a numerical one. The centred difference

    df/dx_i ~ (f(x + h e_i) - f(x - h e_i)) / (2 h)

has error O(h^2), against O(h) for the one-sided difference, so it is the one to use. Run the
checks in float64: in float32 the rounding error of f alone swamps differences of size 1e-5.

Reading `rel_error`: around 1e-7 or below, the gradient is right; 1e-4 to 1e-2 is suspicious
unless the function has kinks (ReLU, max) near the checked points; above 1e-2, it is wrong.
"""

import numpy as np

from .registry import exercise


@exercise("00_backprop")
def rel_error(x, y):
    """Largest elementwise relative error between two arrays of the same shape.

    max over elements of |x - y| / max(|x| + |y|, 1e-8); the floor keeps two tiny values
    (both near zero) from producing a huge ratio.

    Inputs: x, y arrays (or scalars) of the same shape. Output: a Python float.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"rel_error: shapes differ, {x.shape} vs {y.shape}")
    if x.size == 0:
        return 0.0
    return float(np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y))))


def eval_numerical_gradient(f, x, verbose=False, h=1e-5):
    """Numerical gradient of a scalar function f at x, one coordinate at a time.

    Inputs:
    - f: callable taking one array (x's shape) and returning a scalar.
    - x: float array of any shape; modified during the call and restored before returning.
    - verbose: print each coordinate and its gradient.
    - h: step size.

    Output: grad, an array of x's shape.
    """
    grad = np.empty_like(x)
    for ix in np.ndindex(x.shape):
        old = x[ix]
        x[ix] = old + h
        fxph = f(x)
        x[ix] = old - h
        fxmh = f(x)
        x[ix] = old
        grad[ix] = (fxph - fxmh) / (2 * h)
        if verbose:
            print(ix, grad[ix])
    return grad


@exercise("00_backprop")
def eval_numerical_gradient_array(f, x, df, h=1e-5):
    """Numerical gradient of sum(f(x) * df) with respect to x, for an array-valued f.

    This is what a backward pass computes: df is the upstream gradient dL/df(x), and the
    result is dL/dx by the chain rule, without ever forming the Jacobian of f.

    Inputs:
    - f: callable taking one array (x's shape) and returning an array of df's shape.
    - x: float array of any shape; modified during the call and restored before returning.
    - df: upstream gradient, same shape as f(x).
    - h: step size.

    Output: grad, an array of x's shape.
    """
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=[["readwrite"]])
    while not it.finished:
        ix = it.multi_index
        old = x[ix]
        x[ix] = old + h
        pos = np.array(f(x), copy=True)
        x[ix] = old - h
        neg = np.array(f(x), copy=True)
        x[ix] = old
        grad[ix] = np.sum((pos - neg) * df) / (2 * h)
        it.iternext()
    return grad


def grad_check_sparse(f, x, analytic_grad, num_checks=10, h=1e-5, rng=None):
    """Compare an analytic gradient with centred differences at a few random coordinates.

    For large parameters (a full check would call f twice per element) this samples
    `num_checks` coordinates and prints numerical, analytic and relative error for each.

    Inputs:
    - f: callable taking one array (x's shape) and returning a scalar.
    - x: float array; modified during the call and restored before returning.
    - analytic_grad: array of x's shape.
    - num_checks: number of coordinates to sample.
    - h: step size.
    - rng: numpy Generator or seed for choosing the coordinates.

    Output: the list of relative errors, one per sampled coordinate.
    """
    if np.shape(analytic_grad) != np.shape(x):
        raise ValueError(
            f"grad_check_sparse: analytic_grad has shape {np.shape(analytic_grad)}, "
            f"x has shape {np.shape(x)}")
    rng = np.random.default_rng(rng)
    errors = []
    for _ in range(num_checks):
        ix = tuple(int(rng.integers(m)) for m in x.shape)
        old = x[ix]
        x[ix] = old + h
        fxph = f(x)
        x[ix] = old - h
        fxmh = f(x)
        x[ix] = old
        grad_numerical = (fxph - fxmh) / (2 * h)
        grad_analytic = analytic_grad[ix]
        err = rel_error(grad_numerical, grad_analytic)
        errors.append(err)
        print(f"numerical: {grad_numerical:f} analytic: {grad_analytic:f}, "
              f"relative error: {err:e}")
    return errors
