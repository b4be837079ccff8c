"""photo10's crops rendered once (save_photo10_crops) and read back by load_photo10 wherever
$CS231N_PHOTO10_CROPS names the files: the same arrays as rendering, only the splits asked for,
and a file made from other data is not believed."""

import numpy as np
import pytest

from cs231n_lib import data as D


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """The default load, rendered; and the crops saved in two files (train + val, test)."""
    folder = tmp_path_factory.mktemp("crops")
    train_val = D.save_photo10_crops(folder / "train_val.npz")
    test = D.save_photo10_crops(folder / "test.npz", ("test",))
    return D.load_photo10(), train_val, test


def same(a, b):
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], np.ndarray):
            assert a[key].dtype == b[key].dtype and np.array_equal(a[key], b[key]), key
        else:
            assert a[key] == b[key], key


def test_only_the_splits_asked_for_are_saved(rendered):
    _, train_val, test = rendered
    with np.load(train_val) as f:
        assert sorted(f.files) == ["train", "train_sha256", "val", "val_sha256"]
        assert f["train"].shape == (10000, 3, 32, 32) and f["val"].dtype == np.uint8
    with np.load(test) as f:
        assert sorted(f.files) == ["test", "test_sha256"]


def test_loading_from_the_saved_crops_gives_the_rendered_arrays(rendered, monkeypatch):
    expected, train_val, test = rendered
    monkeypatch.setenv(D.PHOTO10_CROPS_VARIABLE, f"{train_val}:{test}")

    def no_rendering(*args, **kwargs):
        raise AssertionError("rendered although every split was saved")

    monkeypatch.setattr(D, "render_photo10", no_rendering)
    same(D.load_photo10(), expected)
    prefix = D.load_photo10(num_train=300, num_val=20, num_test=0, flatten=True, dtype=np.float64)
    monkeypatch.undo()
    same(prefix, D.load_photo10(num_train=300, num_val=20, num_test=0, flatten=True, dtype=np.float64))


def test_a_split_no_file_holds_is_rendered(rendered, monkeypatch):
    expected, train_val, _ = rendered
    monkeypatch.setenv(D.PHOTO10_CROPS_VARIABLE, str(train_val))
    same(D.load_photo10(), expected)


def test_crops_saved_from_other_data_are_not_believed(rendered, monkeypatch, tmp_path):
    expected, train_val, _ = rendered
    with np.load(train_val) as f:
        arrays = {key: f[key] for key in f.files}
    arrays["train"] = np.zeros_like(arrays["train"])
    arrays["train_sha256"] = np.array("0" * 64)   # another version of the data
    np.savez(tmp_path / "stale.npz", **arrays)
    monkeypatch.setenv(D.PHOTO10_CROPS_VARIABLE, f"{tmp_path / 'missing.npz'}:{tmp_path / 'stale.npz'}")
    same(D.load_photo10(), expected)


def test_a_copy_without_a_split_cannot_save_it(tmp_path):
    with np.load(D.PHOTO10_PATH) as f:
        np.savez(tmp_path / "no_test.npz", **{k: f[k] for k in f.files if not k.startswith("test_")})
    with pytest.raises(ValueError, match="has no test split"):
        D.save_photo10_crops(tmp_path / "out.npz", ("train", "test"), path=tmp_path / "no_test.npz")
    assert not list(tmp_path.glob("*out.npz*"))
