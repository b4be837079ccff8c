"""Initialisation schemes: shapes, variances, determinism under rng, bad fans."""

import numpy as np
import pytest

from cs231n_lib import init


@pytest.mark.parametrize("scheme, var", [
    (init.xavier, lambda fan_in: 1 / fan_in),
    (init.he, lambda fan_in: 2 / fan_in),
    (lambda fi, fo, rng: init.small_random(fi, fo, rng=rng), lambda fan_in: 1e-4),
    (lambda fi, fo, rng: init.small_random(fi, fo, std=0.5, rng=rng), lambda fan_in: 0.25),
])
@pytest.mark.parametrize("fan_in", [50, 400])
def test_variance(scheme, var, fan_in):
    W = scheme(fan_in, 300, rng=0)
    assert W.shape == (fan_in, 300) and W.dtype == np.float64
    # 15000+ samples: the sample variance is within a few percent of the target.
    assert W.var() == pytest.approx(var(fan_in), rel=0.05)
    assert abs(W.mean()) < 0.05 * np.sqrt(var(fan_in))


def test_he_keeps_relu_activations_from_shrinking():
    # Ten ReLU layers: He keeps the second moment of the activations, Xavier halves it each layer.
    rng = np.random.default_rng(0)
    x0 = rng.standard_normal((500, 256))
    for scheme, lo, hi in ((init.he, 0.5, 2.0), (init.xavier, 0.5**10 / 2, 0.5**10 * 2)):
        x = x0
        for _ in range(10):
            x = np.maximum(0, x @ scheme(256, 256, rng=rng))
        ratio = np.mean(x**2) / np.mean(x0**2)
        assert lo < ratio < hi, (scheme.__name__, ratio)


@pytest.mark.parametrize("scheme", [init.xavier, init.he, init.small_random])
def test_rng_determinism_and_dtype(scheme):
    a = scheme(4, 3, rng=7)
    b = scheme(4, 3, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, scheme(4, 3, rng=8))
    assert scheme(4, 3, rng=0, dtype=np.float32).dtype == np.float32


def test_zeros():
    np.testing.assert_array_equal(init.zeros(3, 2), np.zeros((3, 2)))
    assert init.zeros(5).shape == (5,)
    assert init.zeros(2, 2, dtype=np.float32).dtype == np.float32


@pytest.mark.parametrize("scheme", [init.xavier, init.he, init.small_random, init.zeros])
def test_bad_fans(scheme):
    with pytest.raises(ValueError, match="fan_in must be a positive integer, got 0"):
        scheme(0, 3)
    with pytest.raises(ValueError, match="fan_out must be a positive integer, got 2.5"):
        scheme(3, 2.5)
