"""Data preprocessing: statistics fitted on the training set, applied to every split.

Each function takes the training data and any number of other splits (validation, test) and
returns all of them transformed with the *training* statistics only: the other splits stand for
data the model has not seen, so nothing may be learned from them, not even a mean.

Rows are examples: X (N, D) for feature vectors, X (N, C, H, W) for images.
"""

import numpy as np

from .registry import exercise


def check_data(X, name, fn, ndim=None):
    """X as a float array; ValueError if it has the wrong rank or no examples."""
    X = np.asarray(X)
    if not np.issubdtype(X.dtype, np.floating):
        X = X.astype(np.float64)
    if ndim is not None and X.ndim != ndim:
        raise ValueError(f"{fn}: {name} must have {ndim} dimensions, got shape {X.shape}")
    if X.shape[0] == 0:
        raise ValueError(f"{fn}: {name} is an empty batch (shape {X.shape})")
    return X


def check_splits(X_train, others, fn, start=1):
    """The other splits as float arrays; ValueError unless their examples have X_train's shape."""
    out = []
    for i, X in enumerate(others, start):
        X = check_data(X, f"split {i}", fn)
        if X.shape[1:] != X_train.shape[1:]:
            raise ValueError(
                f"{fn}: split {i} has examples of shape {X.shape[1:]}, "
                f"the training set {X_train.shape[1:]}")
        out.append(X)
    return out


@exercise("02_preprocessing")
def normalise(X_train, *others, eps=1e-8):
    """Zero-centre each feature and divide it by its standard deviation (training statistics).

    Inputs: X_train (N, D); others, arrays (N_i, D). Returns a tuple of the transformed arrays,
    X_train first. eps keeps a constant feature from dividing by zero.
    """
    X_train = check_data(X_train, "X_train", "normalise", ndim=2)
    others = check_splits(X_train, others, "normalise")
    mean = X_train.mean(axis=0)
    std = X_train.std(axis=0)
    return tuple((X - mean) / (std + eps) for X in (X_train, *others))


@exercise("02_preprocessing")
def pca_whiten(X_train, *others, whiten=True, eps=1e-5):
    """Decorrelate (PCA) and optionally whiten, with the training mean and covariance.

    The data are centred, then rotated onto the eigenvectors of the training covariance
    (X^T X / N of the centred training data), sorted by decreasing eigenvalue. With whiten=True
    each component is then divided by sqrt(eigenvalue + eps), so the training data get an
    identity covariance. Eigenvectors are defined up to sign, so each column may come out negated.

    Inputs: X_train (N, D); others (N_i, D). Returns a tuple of (N_i, D) arrays, X_train first.
    """
    X_train = check_data(X_train, "X_train", "pca_whiten", ndim=2)
    others = check_splits(X_train, others, "pca_whiten")
    mean = X_train.mean(axis=0)
    centred = X_train - mean
    cov = centred.T @ centred / X_train.shape[0]
    eigvals, eigvecs = np.linalg.eigh(cov)
    order = np.argsort(eigvals)[::-1]
    eigvals, eigvecs = eigvals[order], eigvecs[:, order]
    scale = np.sqrt(eigvals + eps) if whiten else np.ones_like(eigvals)
    return tuple((X - mean) @ eigvecs / scale for X in (X_train, *others))


@exercise("02_preprocessing")
def subtract_mean_image(X_train, *others):
    """Subtract the mean training image (one value per pixel and channel) from every image.

    Inputs: X_train (N, ...); others (N_i, ...) of the same image shape. Returns the tuple.
    """
    X_train = check_data(X_train, "X_train", "subtract_mean_image")
    others = check_splits(X_train, others, "subtract_mean_image")
    mean_image = X_train.mean(axis=0)
    return tuple(X - mean_image for X in (X_train, *others))


@exercise("02_preprocessing")
def subtract_channel_mean(X_train, *others):
    """Subtract the training mean of each colour channel (one value per channel).

    Inputs: X_train (N, C, H, W); others (N_i, C, H, W). Returns the tuple.
    """
    X_train = check_data(X_train, "X_train", "subtract_channel_mean", ndim=4)
    others = check_splits(X_train, others, "subtract_channel_mean")
    channel_mean = X_train.mean(axis=(0, 2, 3), keepdims=True)
    return tuple(X - channel_mean for X in (X_train, *others))
