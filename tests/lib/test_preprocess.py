"""cs231n_lib.preprocess: statistics fitted on the training split, applied to every split."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from cs231n_lib import preprocess as P


def cloud(rng, n, d):
    a = rng.standard_normal((d, d)) + 2 * np.eye(d)
    return rng.standard_normal((n, d)) @ a + 3 * rng.standard_normal(d)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(5, 40), d=st.integers(1, 5), m=st.integers(1, 4), seed=st.integers(0, 10**6))
def test_normalise_uses_training_statistics(n, d, m, seed):
    rng = np.random.default_rng(seed)
    tr, te = cloud(rng, n, d), cloud(rng, m, d)
    tr_n, te_n = P.normalise(tr, te)
    np.testing.assert_allclose(tr_n.mean(axis=0), 0, atol=1e-9)
    np.testing.assert_allclose(tr_n.std(axis=0), 1, rtol=1e-6)
    np.testing.assert_allclose(te_n, (te - tr.mean(0)) / (tr.std(0) + 1e-8))


@settings(max_examples=25, deadline=None)
@given(n=st.integers(20, 60), d=st.integers(1, 5), seed=st.integers(0, 10**6))
def test_pca_whiten(n, d, seed):
    rng = np.random.default_rng(seed)
    tr, te = cloud(rng, n, d), cloud(rng, 3, d)
    rot_tr, rot_te = P.pca_whiten(tr, te, whiten=False)
    cov = rot_tr.T @ rot_tr / n
    np.testing.assert_allclose(cov, np.diag(np.diag(cov)), atol=1e-8)
    assert np.all(np.diff(np.diag(cov)) <= 1e-9), "decreasing variances"
    # a rotation: distances to the training mean are kept
    np.testing.assert_allclose(np.linalg.norm(rot_te, axis=1), np.linalg.norm(te - tr.mean(0), axis=1))
    w_tr, w_te = P.pca_whiten(tr, te)
    np.testing.assert_allclose(w_tr.T @ w_tr / n, np.eye(d) * (np.diag(cov) / (np.diag(cov) + 1e-5)),
                               atol=1e-8)
    np.testing.assert_allclose(np.abs(w_te), np.abs(rot_te) / np.sqrt(np.diag(cov) + 1e-5))


def test_image_means():
    rng = np.random.default_rng(0)
    tr, va, te = rng.random((10, 3, 4, 5)), rng.random((2, 3, 4, 5)), rng.random((1, 3, 4, 5))
    out = P.subtract_mean_image(tr, va, te)
    assert len(out) == 3
    np.testing.assert_allclose(out[0].mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(out[2], te - tr.mean(axis=0))
    out = P.subtract_channel_mean(tr, va, te)
    np.testing.assert_allclose(out[0].mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(out[1], va - tr.mean(axis=(0, 2, 3)).reshape(1, 3, 1, 1))
    # the inputs are left untouched
    assert not np.allclose(tr.mean(axis=0), 0)


def test_bad_input():
    with pytest.raises(ValueError, match=r"split 1 has examples of shape \(3,\), the training set \(2,\)"):
        P.normalise(np.ones((4, 2)), np.ones((1, 3)))
    with pytest.raises(ValueError, match="X_train must have 2 dimensions"):
        P.pca_whiten(np.ones((4, 2, 2)))
    with pytest.raises(ValueError, match="X_train must have 4 dimensions"):
        P.subtract_channel_mean(np.ones((4, 2)))
    with pytest.raises(ValueError, match="empty batch"):
        P.subtract_mean_image(np.ones((0, 2)))
