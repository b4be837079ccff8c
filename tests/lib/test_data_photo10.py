"""photo10: the shipped file against its build script, the loader, the splits, the renderer
against a plain reference, and the claim that it is harder than the digits. Fast: nothing is
downloaded; the package readers run on tiny packages written here."""

import hashlib
import importlib.util
import io
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from cs231n_lib import data as D
from cs231n_lib.models import FullyConnectedNet
from cs231n_lib.solver import Solver

SCRIPT = Path(__file__).resolve().parents[2] / "data" / "make_photo10.py"
_spec = importlib.util.spec_from_file_location("make_photo10", SCRIPT)
make = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make)

SPLITS = {"train": 10000, "val": 1000, "test": 1000}


@pytest.fixture(scope="module")
def stored():
    with np.load(D.PHOTO10_PATH) as f:
        return {key: f[key] for key in f.files}


@pytest.fixture(scope="module")
def raw():
    """The whole data set as rendered: uint8 pixels, no preprocessing."""
    return D.load_photo10(subtract_mean=False, scale=False, dtype=np.uint8)


def sha256(array):
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def test_file_is_small_and_holds_the_recorded_photographs(stored):
    assert D.PHOTO10_PATH.stat().st_size <= 25_000_000
    assert tuple(stored["class_names"]) == D.PHOTO10_CLASSES == tuple(make.SOURCES)
    for k, name in enumerate(D.PHOTO10_CLASSES):
        H, W = stored["photo_sizes"][k]
        assert H >= 256 and W >= 448, name  # room for at least 4 x 7 blocks
        photo = stored["photos"][k]
        assert sha256(photo[:H, :W]) == make.PREPARED[name], name
        assert not photo[H:].any() and not photo[:, W:].any(), name  # only zeros as padding


def test_file_matches_what_the_build_script_makes(stored, raw):
    # The crop table is the script's, to the bit...
    table, crops = make.make_table(stored["photos"], stored["photo_sizes"])
    assert set(table) | {"photos", "photo_sizes", "class_names"} | {
        f"{s}_sha256" for s in SPLITS} == set(stored)
    for key, value in table.items():
        assert value.dtype == stored[key].dtype, key
        np.testing.assert_array_equal(value, stored[key], err_msg=key)
    # ... and so are the crops: the script's, the loader's and the checksums in the file agree.
    for split in SPLITS:
        assert sha256(crops[split]) == str(stored[f"{split}_sha256"]), split
        np.testing.assert_array_equal(raw[f"X_{split}"], crops[split])


def test_shapes_dtypes_and_labels(raw):
    for split, n in SPLITS.items():
        X, y = raw[f"X_{split}"], raw[f"y_{split}"]
        assert X.shape == (n, 3, 32, 32) and X.dtype == np.uint8
        assert y.shape == (n,) and y.dtype == np.int64
        assert np.array_equal(np.bincount(y, minlength=10), np.full(10, n // 10)), split
    assert raw["class_names"] == D.PHOTO10_CLASSES
    # Real photographs: every crop has some texture, and dark and bright pixels both occur.
    assert raw["X_train"].reshape(10000, -1).std(axis=1).min() > 0
    assert raw["X_train"].min() == 0 and raw["X_train"].max() == 255


def test_default_load_scales_subtracts_the_training_mean_and_takes_prefixes(raw):
    d = D.load_photo10(num_train=300, num_val=50, num_test=40)
    assert d["X_train"].shape == (300, 3, 32, 32) and d["X_train"].dtype == np.float32
    assert d["X_val"].shape == (50, 3, 32, 32) and d["X_test"].shape == (40, 3, 32, 32)
    assert d["class_names"] == D.PHOTO10_CLASSES
    mean = raw["X_train"][:300].astype(np.float32).mean(axis=0) / 255
    np.testing.assert_allclose(d["mean_image"], mean, atol=1e-6)
    for split, n in (("train", 300), ("val", 50), ("test", 40)):
        np.testing.assert_array_equal(d[f"y_{split}"], raw[f"y_{split}"][:n])
        np.testing.assert_allclose(d[f"X_{split}"], raw[f"X_{split}"][:n] / 255 - mean,
                                   atol=1e-6)
    flat = D.load_photo10(num_train=10, num_val=3, num_test=5, subtract_mean=False,
                          flatten=True)
    assert flat["X_train"].shape == (10, 3072) and flat["X_val"].shape == (3, 3072)
    assert 0 <= flat["X_train"].min() and flat["X_train"].max() <= 1


def test_no_crop_and_no_pixel_is_shared_between_splits(raw, stored):
    crops = np.concatenate([raw[f"X_{split}"] for split in SPLITS])
    assert len({crop.tobytes() for crop in crops}) == len(crops)  # not even within a split
    # Stronger: the windows of two splits never overlap in a photograph, so a test crop shows
    # a part of its photograph that no training crop shows.
    boxes = {s: stored[f"{s}_boxes"].astype(np.int64) for s in SPLITS}
    labels = {s: stored[f"{s}_labels"] for s in SPLITS}
    for c in range(10):
        H, W = stored["photo_sizes"][c]
        for s in SPLITS:
            top, left, side = boxes[s][labels[s] == c].T
            assert (side >= 32).all() and (side <= 64).all()
            assert (top >= 0).all() and (left >= 0).all()
            assert (top + side <= H).all() and (left + side <= W).all()
        for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
            ta, la, sa = boxes[a][labels[a] == c].T[:, :, None]
            tb, lb, sb = boxes[b][labels[b] == c].T[:, None, :]
            overlap = (ta < tb + sb) & (tb < ta + sa) & (la < lb + sb) & (lb < la + sa)
            assert not overlap.any(), (D.PHOTO10_CLASSES[c], a, b)


def test_build_is_deterministic_on_a_small_subset(stored):
    photos, sizes = stored["photos"], stored["photo_sizes"]
    few = {"train": 3, "val": 2, "test": 2}
    a, crops_a = make.make_table(photos, sizes, seed=0, per_class=few)
    b, crops_b = make.make_table(photos, sizes, seed=0, per_class=few)
    c, _ = make.make_table(photos, sizes, seed=1, per_class=few)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    for split in SPLITS:
        np.testing.assert_array_equal(crops_a[split], crops_b[split])
    assert not all(np.array_equal(a[key], c[key]) for key in a)
    assert np.array_equal(np.bincount(a["train_labels"]), np.full(10, 3))
    assert crops_a["val"].shape == (20, 3, 32, 32)


def test_flat_and_repeated_crops_are_drawn_again():
    # Grey photographs with texture only in the first 8 columns of each 64-pixel block: about
    # half the windows of a first draw are one flat colour, and the build draws them again.
    photos = np.full((10, 256, 448, 3), 90, np.uint8)
    noise = np.random.default_rng(0).integers(0, 256, (10, 256, 448, 3), dtype=np.uint8)
    textured = np.arange(448) % 64 < 8
    photos[:, :, textured] = noise[:, :, textured]
    sizes = np.array([[256, 448]] * 10)
    few = {"train": 5, "val": 2, "test": 2}
    table, crops = make.make_table(photos, sizes, per_class=few)
    everything = np.concatenate(list(crops.values())).reshape(-1, 3, 1024)
    assert not (everything == everything[:, :, :1]).all(axis=(1, 2)).any()
    assert len({crop.tobytes() for crop in everything}) == len(everything)
    # A window is flat unless it starts in its block's first 8 columns: every kept one does.
    for split in SPLITS:
        assert (table[f"{split}_boxes"][:, 1] % 64 < 8).all()
    photos[:] = 90  # nothing but flat crops: the build gives up rather than loop for ever
    with pytest.raises(RuntimeError, match="found no new crop"):
        make.make_table(photos, sizes, per_class=few)


def reference_crop(photo, top, left, side, flip, jitter):
    """One crop the plain way: bilinear weights in 64ths, rounded; jitter in float64."""
    window = photo[top:top + side, left:left + side].astype(np.int64)
    q = (2 * np.arange(32) + 1) * side - 32
    i0, f = q // 64, q % 64
    i1 = np.minimum(i0 + 1, side - 1)
    x = np.zeros((32, 32, 3), np.int64)
    for i in range(32):
        for j in range(32):
            total = ((64 - f[i]) * (64 - f[j]) * window[i0[i], i0[j]]
                     + (64 - f[i]) * f[j] * window[i0[i], i1[j]]
                     + f[i] * (64 - f[j]) * window[i1[i], i0[j]]
                     + f[i] * f[j] * window[i1[i], i1[j]])
            x[i, j] = (total + 2048) // 4096
    if flip:
        x = x[:, ::-1]
    b, c, s, *gains = np.asarray(jitter) / 100
    grey = (x @ [299, 587, 114] / 1000)[..., None]
    y = grey + s * (x - grey)
    y = grey.mean() + c * (y - grey.mean())
    y = y * b * np.array(gains)
    return np.clip(np.rint(y), 0, 255).transpose(2, 0, 1)


def test_renderer_agrees_with_a_plain_reference(stored):
    rng = np.random.default_rng(5)
    rows = rng.choice(1000, 12, replace=False)
    boxes, labels = stored["test_boxes"][rows], stored["test_labels"][rows]
    flips, jitter = stored["test_flips"][rows], stored["test_jitter"][rows]
    # Without colour jitter the rendering is exact integer arithmetic: equal to the bit.
    plain = np.full((12, 6), 100, np.uint8)
    got = D.render_photo10(stored["photos"], labels, boxes, flips, plain, chunk=5)
    for k in range(12):
        want = reference_crop(stored["photos"][labels[k]], *boxes[k], flips[k], plain[k])
        np.testing.assert_array_equal(got[k], want)
    # With it, float32 and float64 may round a pixel differently, never by more than 1.
    got = D.render_photo10(stored["photos"], labels, boxes, flips, jitter)
    for k in range(12):
        want = reference_crop(stored["photos"][labels[k]], *boxes[k], flips[k], jitter[k])
        assert np.abs(got[k].astype(int) - want).max() <= 1
        assert np.mean(got[k] == want) > 0.99


def nearest_class_mean(X_train, y_train, X_test, y_test):
    means = np.stack([X_train[y_train == c].mean(0) for c in range(10)])
    d2 = (X_test ** 2).sum(1)[:, None] - 2 * X_test @ means.T + (means ** 2).sum(1)
    return np.mean(d2.argmin(1) == y_test)


def softmax_and_two_layer(data, steps):
    """Test accuracies of a linear softmax classifier and a 2-layer net, `steps` Adam steps."""
    accuracies = []
    for hidden, rate in (([], 1e-2), ([100], 1e-3)):
        model = FullyConnectedNet(hidden, input_dim=data["X_train"].shape[1], reg=1e-3,
                                  dtype=np.float32, seed=0)
        epochs = max(1, round(steps * 100 / len(data["y_train"])))
        Solver(model, data, update_rule="adam", optim_config={"learning_rate": rate},
               num_epochs=epochs, batch_size=100, verbose=False, seed=0).train()
        accuracies.append(np.mean(model.loss(data["X_test"]).argmax(1) == data["y_test"]))
    return accuracies


def test_harder_than_the_digits(raw):
    # Measured (200 Adam steps; Solver seeds 0 to 3): nearest class mean 0.91 on the digits and
    # 0.23 on photo10; linear softmax 0.95-0.96 and 0.30-0.33; the 2-layer net 0.94-0.96 and
    # 0.40-0.48 (chance: 0.10). The margins below are wide on purpose.
    digits = D.load_digits(dtype=np.float32, flatten=True)
    photos = {key: value for key, value in raw.items() if key.startswith("y_")}
    mean = raw["X_train"].reshape(10000, -1).mean(axis=0, dtype=np.float32) / 255
    for split in SPLITS:
        photos[f"X_{split}"] = raw[f"X_{split}"].reshape(-1, 3072).astype(np.float32) / 255 - mean
    ncm = {name: nearest_class_mean(d["X_train"], d["y_train"], d["X_test"], d["y_test"])
           for name, d in (("digits", digits), ("photo10", photos))}
    assert ncm["digits"] > 0.85 and ncm["photo10"] < 0.35, ncm
    with threadpool_limits(1):  # one BLAS thread: no oversubscription on a busy machine
        (soft_digits, mlp_digits), (soft_photos, mlp_photos) = (
            softmax_and_two_layer(digits, 200), softmax_and_two_layer(photos, 200))
    assert soft_digits > 0.85 and mlp_digits > 0.85, (soft_digits, mlp_digits)
    assert soft_photos < 0.5, soft_photos
    assert mlp_photos > 0.3, mlp_photos  # three times chance: there is something to learn
    assert mlp_photos > soft_photos + 0.05, (soft_photos, mlp_photos)


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="train split has 10000 images, fewer than"):
        D.load_photo10(num_train=10001)
    with pytest.raises(ValueError, match="num_train must be an integer >= 1"):
        D.load_photo10(num_train=0)
    with pytest.raises(ValueError, match="num_test must be an integer >= 0"):
        D.load_photo10(num_test=-1)
    with pytest.raises(FileNotFoundError, match="photo10 data set .*nothing.npz is missing"):
        D.load_photo10(path=tmp_path / "nothing.npz")


# --------------------------------------------------------- reading the packages (offline)

def tiny_deb(path, files):
    """A Debian package: an ar archive of debian-binary, control.tar.xz and data.tar.xz."""
    def tar(entries):
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:xz") as t:
            for name, blob in entries.items():
                info = tarfile.TarInfo(name)
                info.size = len(blob)
                t.addfile(info, io.BytesIO(blob))
        return buffer.getvalue()

    out = bytearray(b"!<arch>\n")
    for name, blob in (("debian-binary", b"2.0\n"), ("control.tar.xz", tar({"./control": b"x"})),
                       ("data.tar.xz", tar(files))):
        out += f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(blob):<10}`\n".encode() + blob
        out += b"\n" * (len(blob) % 2)
    path.write_bytes(bytes(out))


def test_package_readers_check_each_photograph(tmp_path, monkeypatch):
    from PIL import Image
    image = np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    png = io.BytesIO()
    Image.fromarray(image).save(png, format="PNG")
    png = png.getvalue()
    tiny_deb(tmp_path / "lomiri-wallpapers-16.04_1.0_all.deb", {"./usr/x/odd.bin": b"odd",
                                                                 "./usr/x/photo.png": png})
    with zipfile.ZipFile(tmp_path / "scikit_image-9.9-py3-none-any.whl", "w") as z:
        z.writestr("skimage/data/chelsea.png", png)
    digest = hashlib.sha256(png).hexdigest()
    monkeypatch.setitem(make.SOURCES, "cat", (make.SKIMAGE, "skimage/data/chelsea.png", digest))
    monkeypatch.setitem(make.SOURCES, "dandelions", (make.LOMIRI, "./usr/x/photo.png", digest))
    for name in ("cat", "dandelions"):
        blob, got = make.read_source(tmp_path, name)
        assert blob == png and got == digest
    np.testing.assert_array_equal(make.prepare("cat", png), image)
    assert make.prepare("dandelions", png).shape == (360, 640, 3)  # shrunk to a fixed size
    monkeypatch.setitem(make.SOURCES, "cat", (make.SKIMAGE, "skimage/data/chelsea.png", "0" * 64))
    with pytest.raises(ValueError, match="not the photograph data/README.md describes"):
        make.read_source(tmp_path, "cat")
    with pytest.raises(FileNotFoundError, match="no blender-data_"):
        make.read_source(tmp_path, "city")


def test_tone_map_puts_the_90th_percentile_of_luminance_at_0_9():
    values = np.linspace(0.01, 10, 1001)
    grey = np.repeat(values[:, None, None], 3, axis=2)  # luminance = value
    out = make.tone_map(grey)[:, 0, 0].astype(int)
    assert out.dtype == int and np.all(np.diff(out) >= 0)
    at_p90 = out[np.argmin(np.abs(values - np.percentile(values, 90)))]
    assert abs(at_p90 - 255 * (1.055 * 0.9 ** (1 / 2.4) - 0.055)) <= 1  # sRGB of 0.9
    assert out[-1] == 255 and out[0] < 10
