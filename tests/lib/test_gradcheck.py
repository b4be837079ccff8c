"""The numerical gradient tools: they are the yardstick for every other test."""

import numpy as np
import pytest

from cs231n_lib.gradcheck import (eval_numerical_gradient, eval_numerical_gradient_array,
                                  grad_check_sparse, rel_error)


def test_rel_error_is_the_elementwise_maximum():
    x = np.array([1.0, 2.0, 0.0])
    y = np.array([1.0, 2.2, 0.0])
    # 0.2 / 4.2 from the middle element; the zero pair uses the 1e-8 floor and gives 0.
    assert rel_error(x, y) == pytest.approx(0.2 / 4.2)


def test_rel_error_floor_for_tiny_values():
    assert rel_error(np.array([1e-12]), np.array([0.0])) == pytest.approx(1e-4)


def test_rel_error_rejects_shape_mismatch():
    with pytest.raises(ValueError, match=r"shapes differ, \(2,\) vs \(3,\)"):
        rel_error(np.zeros(2), np.zeros(3))


def test_numerical_gradient_of_a_known_function(rng):
    x = rng.standard_normal((3, 4))
    f = lambda x: np.sum(np.sin(x) * x)
    grad = eval_numerical_gradient(f, x.copy())
    assert rel_error(grad, np.cos(x) * x + np.sin(x)) < 1e-8


def test_numerical_gradient_restores_x(rng):
    x = rng.standard_normal(5)
    x0 = x.copy()
    eval_numerical_gradient(lambda x: np.sum(x**3), x)
    eval_numerical_gradient_array(lambda x: x**2, x, np.ones(5))
    np.testing.assert_array_equal(x, x0)


def test_numerical_gradient_array_is_the_vector_jacobian_product(rng):
    x = rng.standard_normal((4, 3))
    A = rng.standard_normal((3, 5))
    df = rng.standard_normal((4, 5))
    grad = eval_numerical_gradient_array(lambda x: np.tanh(x @ A), x, df)
    exact = (df * (1 - np.tanh(x @ A) ** 2)) @ A.T
    assert rel_error(grad, exact) < 1e-8


def test_centred_difference_beats_one_sided():
    # The centred difference of exp at 0 with h=1e-3 is off by ~h^2/6, a one-sided one by ~h/2.
    f = lambda x: float(np.exp(x[0]))
    grad = eval_numerical_gradient(f, np.array([0.0]), h=1e-3)
    assert abs(grad[0] - 1) < 1e-6


def test_grad_check_sparse_reports_errors(rng, capsys):
    x = rng.standard_normal((5, 5))
    f = lambda x: np.sum(x**2)
    errs = grad_check_sparse(f, x, 2 * x, num_checks=4, rng=0)
    assert len(errs) == 4 and max(errs) < 1e-8
    bad = grad_check_sparse(f, x, 3 * x, num_checks=3, rng=0)
    assert min(bad) > 0.1
    assert "relative error" in capsys.readouterr().out


def test_grad_check_sparse_rejects_wrong_shape():
    with pytest.raises(ValueError, match="analytic_grad has shape"):
        grad_check_sparse(lambda x: 0.0, np.zeros((2, 2)), np.zeros(3))
