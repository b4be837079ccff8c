"""Data loaders: the shipped digits (splits, determinism, preprocessing) and the CIFAR-10
reader on a tiny CIFAR-format data set written here."""

import pickle

import numpy as np
import pytest

from cs231n_lib import data as D

KEYS = {"X_train", "y_train", "X_val", "y_val", "X_test", "y_test"}


def test_digits_default_splits():
    d = D.load_digits()
    assert KEYS <= set(d)
    assert d["X_train"].shape == (1297, 1, 8, 8) and d["X_train"].dtype == np.float64
    assert d["X_val"].shape == (250, 1, 8, 8) and d["X_test"].shape == (250, 1, 8, 8)
    assert d["y_train"].dtype == np.int64
    labels = np.concatenate([d["y_train"], d["y_val"], d["y_test"]])
    assert len(labels) == 1797
    assert np.bincount(labels).min() > 170  # every digit well represented, no class lost
    assert set(np.unique(d["y_val"])) == set(range(10))


def test_digits_splits_are_disjoint_and_cover_the_set():
    d = D.load_digits(subtract_mean=False, scale=False, flatten=True)
    rows = np.concatenate([d["X_train"], d["X_val"], d["X_test"]])
    raw = np.load(D.DIGITS_PATH)["images"].reshape(1797, 64).astype(float)
    # Same multiset of images: sort rows lexicographically and compare.
    key = lambda a: a[np.lexsort(a.T[::-1])]
    np.testing.assert_array_equal(key(rows), key(raw))
    assert rows.min() == 0 and rows.max() == 16


def test_digits_are_deterministic_under_seed():
    a, b, c = D.load_digits(seed=0), D.load_digits(seed=0), D.load_digits(seed=1)
    for k in KEYS:
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a["y_train"], c["y_train"])


def test_mean_image_fitted_on_train_only():
    raw = D.load_digits(subtract_mean=False)
    d = D.load_digits()
    mean = raw["X_train"].mean(axis=0)
    np.testing.assert_allclose(d["mean_image"], mean)
    np.testing.assert_allclose(d["X_train"].mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(d["X_val"], raw["X_val"] - mean)
    np.testing.assert_allclose(d["X_test"], raw["X_test"] - mean)
    assert abs(d["X_val"].mean()) > 1e-6  # validation is not centred on its own mean


def test_digits_scale_flatten_dtype_and_sizes():
    d = D.load_digits(num_train=50, num_val=20, num_test=30, subtract_mean=False,
                      flatten=True, dtype=np.float32)
    assert d["X_train"].shape == (50, 64) and d["X_val"].shape == (20, 64)
    assert d["X_test"].shape == (30, 64) and d["X_train"].dtype == np.float32
    assert d["X_train"].min() >= 0 and d["X_train"].max() == 1.0


def test_digits_images_look_like_their_labels():
    # A nearest-class-mean classifier on raw pixels gets most digits right: labels and images
    # were not shuffled apart.
    d = D.load_digits(subtract_mean=False, flatten=True)
    means = np.stack([d["X_train"][d["y_train"] == c].mean(0) for c in range(10)])
    dists = ((d["X_test"][:, None, :] - means[None]) ** 2).sum(-1)
    assert np.mean(dists.argmin(1) == d["y_test"]) > 0.85


def test_digits_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="do not fit"):
        D.load_digits(num_val=1000, num_test=1000)
    with pytest.raises(ValueError, match="num_train must be an integer >= 1"):
        D.load_digits(num_train=0)
    with pytest.raises(FileNotFoundError, match="digits data set .*nothing.npz is missing"):
        D.load_digits(path=tmp_path / "nothing.npz")


# ------------------------------------------------------------------------- CIFAR-10


def write_cifar(folder, per_batch=6, skip=None):
    """A CIFAR-10-format folder: five training batches and a test batch of `per_batch` random
    images each, pickled as the originals are (bytes keys, data (N, 3072) uint8)."""
    rng = np.random.default_rng(0)
    folder.mkdir(exist_ok=True)
    batches = {}
    for name in D.CIFAR10_TRAIN_FILES + (D.CIFAR10_TEST_FILE,):
        X = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        y = [int(v) for v in rng.integers(10, size=per_batch)]
        batches[name] = (X, y)
        if name != skip:
            with open(folder / name, "wb") as f:
                pickle.dump({b"batch_label": name.encode(), b"data": X, b"labels": y,
                             b"filenames": [b"x.png"] * per_batch}, f, protocol=2)
    return batches


def test_cifar10_loader(tmp_path):
    batches = write_cifar(tmp_path / "cifar-10-batches-py")
    d = D.load_cifar10(tmp_path / "cifar-10-batches-py", num_training=25, num_validation=5,
                       num_test=4, subtract_mean=False)
    assert d["X_train"].shape == (25, 3, 32, 32) and d["X_val"].shape == (5, 3, 32, 32)
    assert d["X_test"].shape == (4, 3, 32, 32)
    X_all = np.concatenate([batches[n][0] for n in D.CIFAR10_TRAIN_FILES])
    y_all = np.concatenate([batches[n][1] for n in D.CIFAR10_TRAIN_FILES])
    # Each row of 3072 bytes is the R, G and B planes: image[c, i, j] = row[1024 c + 32 i + j].
    assert d["X_train"][7, 2, 3, 4] == X_all[7, 2 * 1024 + 3 * 32 + 4]
    np.testing.assert_array_equal(d["X_train"].reshape(25, -1), X_all[:25])
    np.testing.assert_array_equal(d["X_val"].reshape(5, -1), X_all[25:30])
    np.testing.assert_array_equal(d["y_train"], y_all[:25])
    np.testing.assert_array_equal(d["y_test"], batches["test_batch"][1][:4])


def test_cifar10_mean_subtraction_and_flatten(tmp_path):
    write_cifar(tmp_path)
    raw = D.load_cifar10(tmp_path, num_training=20, num_validation=4, num_test=6,
                         subtract_mean=False)
    d = D.get_data("cifar10", cifar_dir=tmp_path, num_training=20, num_validation=4,
                   num_test=6, flatten=True, scale=True)
    mean = raw["X_train"].mean(0).reshape(-1) / 255
    assert d["X_train"].shape == (20, 3072)
    np.testing.assert_allclose(d["mean_image"], mean)
    np.testing.assert_allclose(d["X_test"], raw["X_test"].reshape(6, -1) / 255 - mean,
                               atol=1e-12)


def test_cifar10_missing_file_names_it_and_says_where_to_get_it(tmp_path):
    write_cifar(tmp_path, skip="data_batch_3")
    with pytest.raises(FileNotFoundError,
                       match=r"'data_batch_3' not found in .*cifar-10-python\.tar\.gz"):
        D.load_cifar10(tmp_path)


def test_cifar10_too_few_images(tmp_path):
    write_cifar(tmp_path)
    with pytest.raises(ValueError, match="the training batches hold 30 images"):
        D.load_cifar10(tmp_path)


def test_cifar10_not_a_batch(tmp_path):
    write_cifar(tmp_path)
    with open(tmp_path / "test_batch", "wb") as f:
        pickle.dump({"something": 1}, f)
    with pytest.raises(ValueError, match="is not a CIFAR-10 python batch"):
        D.load_cifar10(tmp_path, num_training=20, num_validation=0, num_test=1)


def test_get_data_default_and_unknown():
    assert D.get_data()["X_train"].shape == (1297, 1, 8, 8)
    with pytest.raises(ValueError, match="unknown data set 'mnist'"):
        D.get_data("mnist")
