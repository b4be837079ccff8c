"""Exercises of notebook 02: preprocessing fitted on the training split only.

The two ways of centring images are one exercise, ``subtract_channel_mean``: the student writes
``subtract_mean_image`` and ``subtract_channel_mean`` in one cell (one mean and one subtraction
each, over different axes), and its checks run both.
"""

import numpy as np

from autograder.exercise import Check, Exercise, Mistake
from cs231n_lib import preprocess as P

NOTEBOOK = "02_preprocessing"


def _cloud(rng, n, d):
    """A correlated, off-centre Gaussian cloud: distinct covariance eigenvalues of order 1-10."""
    a = rng.standard_normal((d, d)) + 2 * np.eye(d)
    return rng.standard_normal((n, d)) @ a + 5 * rng.standard_normal(d)


def _probe(name, shapes, kind="cloud", kwargs=None, absolute=False):
    """Outputs of ns[name](X_train, *others); `absolute` drops the sign of each PCA column."""

    def run(ns, rng):
        if kind == "cloud":
            d = shapes[0][1]
            a = rng.standard_normal((d, d)) + 2 * np.eye(d)
            centre = 5 * rng.standard_normal(d)
            splits = [rng.standard_normal(s) @ a + centre for s in shapes]
        else:  # images: an offset per channel and per pixel
            offset = 3 * rng.standard_normal(shapes[0][1:])
            splits = [rng.random(s) + offset + 0.5 * rng.standard_normal() for s in shapes]
        originals = [s.copy() for s in splits]
        out = ns[name](*splits, **(kwargs or {}))
        if len(out) != len(splits):
            return {"n_returned": len(out)}
        result = {"n_returned": len(out),
                  "inputs_unchanged": all(np.array_equal(a, b) for a, b in zip(splits, originals))}
        for i, X in enumerate(out):
            X = np.asarray(X, dtype=np.float64)
            result[f"split{i}"] = np.abs(X) if absolute else X
        if absolute:
            result["train_cov"] = np.abs(out[0].T @ out[0] / out[0].shape[0])
        return result

    return run


# --- normalise -------------------------------------------------------------------------------
def _normalise_own_stats(X_train, *others, eps=1e-8):
    return tuple(P.normalise(X)[0] for X in (X_train, *others))


def _normalise_per_example(X_train, *others, eps=1e-8):
    def f(X):
        return (X - X.mean(axis=1, keepdims=True)) / (X.std(axis=1, keepdims=True) + eps)
    return tuple(f(X) for X in (X_train, *others))


def _normalise_no_centre(X_train, *others, eps=1e-8):
    std = X_train.std(axis=0)
    return tuple(X / (std + eps) for X in (X_train, *others))


NORMALISE = Exercise(
    name="normalise",
    reference={"normalise": P.normalise},
    checks=(
        Check("train (50, 2) and test (20, 2)", _probe("normalise", [(50, 2), (20, 2)]),
              hidden=False),
        Check("train, val and test, D=5", _probe("normalise", [(40, 5), (7, 5), (1, 5)])),
        Check("a single test example", _probe("normalise", [(30, 3), (1, 3)])),
    ),
    mistakes=(
        Mistake("the test split was normalised with its own mean and std; use the training "
                "statistics for every split", {"normalise": _normalise_own_stats}),
        Mistake("statistics were taken over each example (axis=1); take them over the examples "
                "of each feature (axis=0)", {"normalise": _normalise_per_example}),
        Mistake("normalise must zero-centre each feature before dividing by its std",
                {"normalise": _normalise_no_centre}),
    ),
    forbidden=("cs231n_lib.preprocess.normalise",),
)


# --- PCA and whitening -----------------------------------------------------------------------
def _pca_divide_by_eigenvalue(X_train, *others, whiten=True, eps=1e-5):
    rotated = P.pca_whiten(X_train, *others, whiten=False)
    var = rotated[0].var(axis=0)
    return tuple(X / (var + eps) if whiten else X for X in rotated)


def _pca_uncentred(X_train, *others, whiten=True, eps=1e-5):
    cov = X_train.T @ X_train / X_train.shape[0]
    vals, vecs = np.linalg.eigh(cov)
    order = np.argsort(vals)[::-1]
    vals, vecs = vals[order], vecs[:, order]
    scale = np.sqrt(vals + eps) if whiten else 1.0
    return tuple(X @ vecs / scale for X in (X_train, *others))


def _pca_ascending(X_train, *others, whiten=True, eps=1e-5):
    return tuple(X[:, ::-1] for X in P.pca_whiten(X_train, *others, whiten=whiten, eps=eps))


def _pca_own_mean(X_train, *others, whiten=True, eps=1e-5):
    out = P.pca_whiten(X_train, *others, whiten=whiten, eps=eps)
    return (out[0],) + tuple(X - X.mean(axis=0) for X in out[1:])


def _pca_unbiased_cov(X_train, *others, whiten=True, eps=1e-5):
    N = X_train.shape[0]
    rotated = P.pca_whiten(X_train, *others, whiten=False)
    var = rotated[0].var(axis=0) * N / (N - 1)
    return tuple(X / np.sqrt(var + eps) if whiten else X for X in rotated)


PCA = Exercise(
    name="pca_whiten",
    reference={"pca_whiten": P.pca_whiten},
    checks=(
        Check("2-D cloud, whitened", _probe("pca_whiten", [(200, 2), (50, 2)], absolute=True),
              hidden=False, tol=1e-4),
        Check("2-D cloud, PCA only", _probe("pca_whiten", [(200, 2), (50, 2)],
                                            kwargs={"whiten": False}, absolute=True), tol=1e-4),
        Check("D=4 with val and test", _probe("pca_whiten", [(300, 4), (10, 4), (1, 4)],
                                              absolute=True), tol=1e-4),
    ),
    mistakes=(
        Mistake("whitening divides each component by the square root of its eigenvalue "
                "(its std), not by the eigenvalue", {"pca_whiten": _pca_divide_by_eigenvalue}),
        Mistake("the covariance must be computed from centred data, and every split centred "
                "with the training mean", {"pca_whiten": _pca_uncentred}),
        Mistake("the components must come in order of decreasing eigenvalue (np.linalg.eigh "
                "returns them increasing)", {"pca_whiten": _pca_ascending}),
        Mistake("the val/test splits were centred with their own mean; use the training mean",
                {"pca_whiten": _pca_own_mean}),
        Mistake("the covariance here is X^T X / N; np.cov divides by N - 1 (pass bias=True)",
                {"pca_whiten": _pca_unbiased_cov}),
    ),
    forbidden=("cs231n_lib.preprocess.pca_whiten",),
)


# --- images ----------------------------------------------------------------------------------
def _mean_image_scalar(X_train, *others):
    m = X_train.mean()
    return tuple(X - m for X in (X_train, *others))


def _mean_image_own(X_train, *others):
    return tuple(X - X.mean(axis=0) for X in (X_train, *others))


def _mean_image_per_image(X_train, *others):
    return tuple(X - X.mean(axis=tuple(range(1, X.ndim)), keepdims=True) for X in (X_train, *others))


def _channel_mean_image(X_train, *others):
    return P.subtract_mean_image(X_train, *others)


def _channel_mean_own(X_train, *others):
    return tuple(X - X.mean(axis=(0, 2, 3), keepdims=True) for X in (X_train, *others))


def _channel_mean_scalar(X_train, *others):
    m = X_train.mean()
    return tuple(X - m for X in (X_train, *others))


CENTRING = Exercise(
    name="subtract_channel_mean",  # one cell: subtract_mean_image, then subtract_channel_mean
    reference={"subtract_mean_image": P.subtract_mean_image,
               "subtract_channel_mean": P.subtract_channel_mean},
    checks=(
        Check("mean image: grey 8x8 images (N, 1, 8, 8)",
              _probe("subtract_mean_image", [(30, 1, 8, 8), (10, 1, 8, 8)], "images"), hidden=False),
        Check("channel mean: colour images (N, 3, 6, 6)",
              _probe("subtract_channel_mean", [(20, 3, 6, 6), (5, 3, 6, 6)], "images"), hidden=False),
        Check("mean image: colour images with val and test",
              _probe("subtract_mean_image", [(12, 3, 5, 4), (3, 3, 5, 4), (1, 3, 5, 4)], "images")),
        Check("mean image: flat vectors (N, D)",
              _probe("subtract_mean_image", [(25, 6), (4, 6)], "images")),
        Check("channel mean: grey images, val and test",
              _probe("subtract_channel_mean", [(15, 1, 8, 8), (4, 1, 8, 8), (2, 1, 8, 8)], "images")),
        Check("channel mean: two channels, a batch of 1 to transform",
              _probe("subtract_channel_mean", [(9, 2, 3, 5), (1, 2, 3, 5)], "images")),
    ),
    mistakes=(
        Mistake("the mean image has one value per pixel (mean over axis 0); your "
                "subtract_mean_image subtracts a single number",
                {"subtract_mean_image": _mean_image_scalar}),
        Mistake("your subtract_mean_image centres each split with its own mean image; use the "
                "training mean for all", {"subtract_mean_image": _mean_image_own}),
        Mistake("your subtract_mean_image subtracts each image's own mean; the mean image "
                "averages over the training examples", {"subtract_mean_image": _mean_image_per_image}),
        Mistake("your subtract_channel_mean subtracts the mean image (one value per pixel); the "
                "channel mean is one value per channel, averaged over N, H and W",
                {"subtract_channel_mean": _channel_mean_image}),
        Mistake("your subtract_channel_mean centres each split with its own channel means; use "
                "the training means", {"subtract_channel_mean": _channel_mean_own}),
        Mistake("your subtract_channel_mean subtracts a single mean over all channels; take one "
                "mean per channel", {"subtract_channel_mean": _channel_mean_scalar}),
    ),
    forbidden=("cs231n_lib.preprocess.subtract_mean_image", "cs231n_lib.preprocess.subtract_channel_mean"),
)

EXERCISES = (NORMALISE, PCA, CENTRING)
