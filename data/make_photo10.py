"""Build photo10.npz: ten CC0 / public-domain colour photographs and the table of the 12,000
32x32 crops cut from them (cs231n_lib.data.load_photo10 renders the crops; data/README.md
gives each photograph's author, licence and package).

    mkdir -p /tmp/photo10 && cd /tmp/photo10
    pip download --no-deps scikit-image==0.26.0
    apt-get download blender-data=3.4.1+dfsg-2 lomiri-wallpapers-16.04=20.04.0-2
    pip install OpenEXR                          # reads Blender's .exr panoramas
    cd -
    python data/make_photo10.py /tmp/photo10           # writes data/photo10.npz (~15 s)
    python data/make_photo10.py /tmp/photo10 --check   # rebuilds and compares; writes nothing
    python data/make_photo10.py --baselines            # four classifiers' accuracies (~15 min)

None of these packages is a dependency of the project: the wheel is read as a zip archive and
the .deb files as ar archives; each photograph is checked against its SHA-256.
"""

import argparse
import hashlib
import io
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from cs231n_lib.data import PHOTO10_CLASSES, PHOTO10_SPLITS, render_photo10  # noqa: E402

OUT = Path(__file__).with_name("photo10.npz")
SEED = 0
BLOCK = 64  # each photograph is cut into BLOCK x BLOCK blocks; each block is in one split
PER_CLASS = {"train": 1000, "val": 100, "test": 100}
SIDES = (32, 64)  # a crop's window side, in pixels of the prepared photograph (inclusive)
# Colour jitter, in percent: brightness, contrast, saturation, and each channel's gain.
JITTER = ((70, 130), (70, 130), (60, 140), (90, 110), (90, 110), (90, 110))

BLENDER, SKIMAGE = "blender-data_*.deb", "scikit_image-*.whl"
LOMIRI = "lomiri-wallpapers-16.04_*.deb"
WORLD = "./usr/share/blender/datafiles/studiolights/world/"
# class: (package file, path inside it, SHA-256 of that file), in label order.
SOURCES = {
    "city": (BLENDER, WORLD + "city.exr",
             "70940108df90c0721799d29f758ca79e67e509d9a2636487e639db7779561524"),
    "courtyard": (BLENDER, WORLD + "courtyard.exr",
                  "1518fa37da6a8a389810a7a70262c410553018a51f0be9e248155b9bb363ff3d"),
    "forest": (BLENDER, WORLD + "forest.exr",
               "63ad3243d0f9c29bd1f51b9a3bbf5c0ad25ea39299698dba6cfc29d1660d6008"),
    "interior": (BLENDER, WORLD + "interior.exr",
                 "4f6810b182ade346eac6964bf02405adf430c321b8853a644316af4e05d0fdb5"),
    "sunrise": (BLENDER, WORLD + "sunrise.exr",
                "b97206217e29763d62d9a65ad2d7058460acfb4824659e7a59f5bde374f21937"),
    "sunset": (BLENDER, WORLD + "sunset.exr",
               "a164f20b86bc43ba4afd66c988a20a9dd5f1a0a5d8e960aed57a33f78119c168"),
    "astronaut": (SKIMAGE, "skimage/data/astronaut.png",
                  "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5"),
    "cat": (SKIMAGE, "skimage/data/chelsea.png",
            "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb"),
    "coffee": (SKIMAGE, "skimage/data/coffee.png",
               "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7"),
    "dandelions": (LOMIRI, "./usr/share/backgrounds/seeding_by_Clements_Engelhardt.jpg",
                   "a5634d1ab5e41a3568e92d4a894a500c92b891f9ff734e50bd224d6e185a605f"),
}
# SHA-256 of each prepared photograph (uint8 H x W x 3, C order), as stored in photo10.npz.
PREPARED = {
    "city": "3e960290d68fb0aa56650cb703244df880167f4f35690fadfde62591fbaf6cac",
    "courtyard": "43dd572bfecb404b7cb3b197fa6fed71f43823c8af2129b7dc504b63ec248997",
    "forest": "7467351a3db20c6be90b303d6d2776131e7bcfe054b2ea36e0b0911a080e60a7",
    "interior": "7519002faffde7915c72ab298cdb19857e5f416dee159ca7b036961dff20e4a8",
    "sunrise": "7219495a68f5829fb050038f587ab982c9578c26dd5f6dd6bb94b2ed9df65642",
    "sunset": "b406f6e3708330c8bef77fc58acdac0392f8744655a96996946b872af0cffdc6",
    "astronaut": "a8c429c18afa7b0fd5673e598d73a21225d94c864a71bbb3885126fdecb41071",
    "cat": "416b729128bfb2c3d1eb69bf9b1734a796293abc17939267b2dc94f8a5784031",
    "coffee": "0ce2b51640b9c95f19617f03eabf40c3f0368589cc1ee1190b70966165ac184f",
    "dandelions": "67f4ac3bcefb15310d3161b58d5cbee6fb5679cc429581f0005100ea0137fa4b",
}


def deb_member(deb, name):
    """One file of a Debian package: an ar archive whose data.tar.* holds the files."""
    blob = Path(deb).read_bytes()
    pos = 8  # after the b"!<arch>\n" magic
    while pos < len(blob):
        header = blob[pos:pos + 60]
        size = int(header[48:58])
        if header[:16].decode().strip().rstrip("/").startswith("data.tar"):
            with tarfile.open(fileobj=io.BytesIO(blob[pos + 60:pos + 60 + size])) as tar:
                return tar.extractfile(name).read()
        pos += 60 + size + size % 2
    raise ValueError(f"{deb} has no data.tar member")


def read_source(folder, name):
    pattern, member, sha256 = SOURCES[name]
    found = sorted(Path(folder).glob(pattern))
    if not found:
        raise FileNotFoundError(f"no {pattern} in {folder}: see this script's docstring")
    if pattern.endswith(".whl"):
        with zipfile.ZipFile(found[-1]) as z:
            blob = z.read(member)
    else:
        blob = deb_member(found[-1], member)
    digest = hashlib.sha256(blob).hexdigest()
    if digest != sha256:
        raise ValueError(f"{member} in {found[-1].name} has SHA-256 {digest}, not {sha256}: "
                         f"not the photograph data/README.md describes")
    return blob, digest


def tone_map(rgb):
    """A linear HDR panorama band to 8-bit sRGB: the 90th percentile of luminance goes to 0.9."""
    luminance = rgb @ np.array([0.2126, 0.7152, 0.0722])
    x = np.clip(rgb * (0.9 / np.percentile(luminance, 90)), 0, 1)
    x = np.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1 / 2.4) - 0.055)
    return np.rint(x * 255).astype(np.uint8)


def prepare(name, blob):
    """The photograph as the crops see it: (H, W, 3) uint8."""
    from PIL import Image
    if SOURCES[name][0] == BLENDER:
        import OpenEXR  # pip install OpenEXR
        with tempfile.NamedTemporaryFile(suffix=".exr") as f:
            f.write(blob)
            f.flush()
            with OpenEXR.File(f.name) as exr:
                rgb = np.asarray(exr.channels()["RGB"].pixels, dtype=np.float64)
        # The equirectangular panorama (1024 x 512) between latitudes -45 and +45 degrees:
        # nearer the poles the projection stretches the picture too much.
        return tone_map(rgb[128:384])
    image = Image.open(io.BytesIO(blob)).convert("RGB")
    if name == "dandelions":  # 5312 x 2988: shrink to the scale of the other photographs
        image = image.resize((640, 360), Image.LANCZOS)
    return np.asarray(image)


def assign_blocks(size, rng):
    """The top-left corners of one photograph's blocks, for each split: a list of 3 (k, 2) arrays.

    The grid of whole BLOCK x BLOCK blocks is centred on the photograph; about a tenth of the
    blocks (at least two) go to validation, as many to test, the rest to training.
    """
    H, W = size
    rows, cols = H // BLOCK, W // BLOCK
    corners = np.array([((H - rows * BLOCK) // 2 + r * BLOCK, (W - cols * BLOCK) // 2 + c * BLOCK)
                        for r in range(rows) for c in range(cols)])
    held_out = max(2, round(0.1 * len(corners)))
    order = rng.permutation(len(corners))
    return [corners[np.sort(order[2 * held_out:])], corners[np.sort(order[:held_out])],
            corners[np.sort(order[held_out:2 * held_out])]]


def draw(rng, blocks, split, labels):
    """Windows, flips and jitter for crops of the given labels in one split (0, 1 or 2)."""
    n = len(labels)
    counts = np.array([len(b[split]) for b in blocks])
    which = (rng.random(n) * counts[labels]).astype(np.int64)
    corner = np.array([blocks[c][split][k] for c, k in zip(labels, which)]).reshape(n, 2)
    side = rng.integers(SIDES[0], SIDES[1] + 1, n)
    offset = rng.integers(0, BLOCK - side[:, None] + 1, (n, 2))
    return {"boxes": np.column_stack([corner + offset, side]).astype(np.int16),
            "flips": rng.random(n) < 0.5,
            "jitter": np.column_stack([rng.integers(lo, hi + 1, n)
                                       for lo, hi in JITTER]).astype(np.uint8)}


def make_table(photos, sizes, seed=SEED, per_class=PER_CLASS):
    """The crops of every split: the table (labels, boxes (top, left, side), flips, jitter in
    percent) and the rendered crops. Deterministic under seed.

    photos: (P, H, W, 3) zero-padded photographs, sizes: their (H, W). A crop of one flat
    colour (a clipped sky...) or equal to an earlier crop is drawn again, so that no two crops
    of the data set are the same.
    """
    rng = np.random.default_rng(seed)
    blocks = [assign_blocks(size, rng) for size in sizes]
    seen = set()

    def fresh(crop):
        planes = crop.reshape(3, -1)
        if (planes == planes[:, :1]).all() or crop.tobytes() in seen:
            return False
        seen.add(crop.tobytes())
        return True

    table, crops = {}, {}
    for i, split in enumerate(PHOTO10_SPLITS):
        labels = rng.permutation(np.repeat(np.arange(len(sizes), dtype=np.uint8),
                                           per_class[split]))
        columns = draw(rng, blocks, i, labels)
        X = np.empty((len(labels), 3, 32, 32), np.uint8)
        todo = np.arange(len(labels))
        for _ in range(100):
            X[todo] = render_photo10(photos, labels[todo], columns["boxes"][todo],
                                     columns["flips"][todo], columns["jitter"][todo])
            todo = np.array([k for k in todo if not fresh(X[k])], dtype=np.int64)
            if not len(todo):
                break
            for key, value in draw(rng, blocks, i, labels[todo]).items():
                columns[key][todo] = value
        else:
            raise RuntimeError(f"{split}: found no new crop for {len(todo)} crops in 100 draws")
        table[f"{split}_labels"] = labels
        table.update({f"{split}_{key}": value for key, value in columns.items()})
        crops[split] = X
    return table, crops


def pad(photos):
    """The photographs in one zero-padded (P, H, W, 3) array, and their sizes."""
    sizes = np.array([p.shape[:2] for p in photos])
    out = np.zeros((len(photos), *sizes.max(axis=0), 3), np.uint8)
    for k, p in enumerate(photos):
        out[k, :p.shape[0], :p.shape[1]] = p
    return out, sizes


def build(folder):
    photos = []
    for name in PHOTO10_CLASSES:
        blob, digest = read_source(folder, name)
        photo = prepare(name, blob)
        prepared = hashlib.sha256(photo.tobytes()).hexdigest()
        print(f"{name:>10}: {SOURCES[name][1].split('/')[-1]} sha256 {digest}, prepared "
              f"{photo.shape[1]}x{photo.shape[0]} sha256 {prepared}")
        if prepared != PREPARED[name]:
            print(f"    differs from the recorded {PREPARED[name]} (another Pillow, OpenEXR "
                  f"or NumPy?)")
        photos.append(photo)
    padded, sizes = pad(photos)
    table, crops = make_table(padded, sizes)
    checksums = {f"{split}_sha256": np.array(hashlib.sha256(X.tobytes()).hexdigest())
                 for split, X in crops.items()}
    return {"photos": padded, "photo_sizes": sizes, "class_names": np.array(PHOTO10_CLASSES),
            **table, **checksums}


def check(contents):
    """Compare a fresh build with the file on disk, array by array."""
    with np.load(OUT) as f:
        same = {key: key in f.files and np.array_equal(f[key], value)
                for key, value in contents.items()}
    for key, ok in same.items():
        print(f"{key:>14}: {'same' if ok else 'DIFFERENT'}")
    return all(same.values())


def nearest_class_mean(data):
    flat = {k: data[k].reshape(len(data[k]), -1) for k in ("X_train", "X_test")}
    means = np.stack([flat["X_train"][data["y_train"] == c].mean(0) for c in range(10)])
    d2 = (flat["X_test"] ** 2).sum(1)[:, None] - 2 * flat["X_test"] @ means.T + (means ** 2).sum(1)
    return float(np.mean(d2.argmin(1) == data["y_test"]))


def baselines(steps=1000, rates=(1e-3, 3e-3, 1e-2)):
    """Test accuracy of four classifiers on photo10 and on the 8x8 digits (chance: 0.10).

    Each net takes `steps` Adam steps on minibatches of 100 at each learning rate of `rates`
    and keeps the weights and the rate with the best validation accuracy.
    """
    from cs231n_lib.data import load_digits, load_photo10
    from cs231n_lib.models import FullyConnectedNet, ThreeLayerConvNet
    from cs231n_lib.solver import Solver

    def fit(make_model, data):
        epochs = max(1, round(steps * 100 / len(data["y_train"])))
        best = (-1.0, None, None)
        for rate in rates:
            model = make_model()
            solver = Solver(model, data, update_rule="adam", optim_config={"learning_rate": rate},
                            lr_decay=0.95, batch_size=100, num_epochs=epochs, verbose=False,
                            seed=0)
            solver.train()
            best = max(best, (solver.best_val_acc, rate, solver.best_params), key=lambda b: b[0])
        model.params = best[2]
        test = float(np.mean(model.loss(data["X_test"]).argmax(1) == data["y_test"]))
        return f"test accuracy {test:.3f} (validation {best[0]:.3f}, learning rate {best[1]:g})"

    sets = {"digits": load_digits(dtype=np.float32), "photo10": load_photo10()}
    for name, data in sets.items():
        shape = data["X_train"].shape[1:]
        D = int(np.prod(shape))
        rows = {
            "nearest class mean": lambda: f"test accuracy {nearest_class_mean(data):.3f}",
            "linear softmax": lambda: fit(lambda: FullyConnectedNet(
                [], input_dim=D, reg=1e-3, dtype=np.float32, seed=0), data),
            "2-layer net (100 ReLU)": lambda: fit(lambda: FullyConnectedNet(
                [100], input_dim=D, reg=1e-3, dtype=np.float32, seed=0), data),
            "ThreeLayerConvNet (32 5x5)": lambda: fit(lambda: ThreeLayerConvNet(
                input_dim=shape, num_filters=32, filter_size=5, hidden_dim=100,
                weight_scale=1e-2, reg=1e-3, seed=0), data),
        }
        for label, run in rows.items():
            start = time.perf_counter()
            result = run()
            print(f"{name:>8} {label:<27} {result} [{time.perf_counter() - start:.0f} s]",
                  flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", nargs="?", help="folder holding the three downloaded packages")
    parser.add_argument("--check", action="store_true",
                        help="rebuild and compare with data/photo10.npz; write nothing")
    parser.add_argument("--baselines", action="store_true",
                        help="train four classifiers on photo10 and the digits, print accuracies")
    args = parser.parse_args(argv)
    if args.baselines:
        baselines()
        return 0
    if not args.folder:
        parser.error("give the folder holding the packages (or --baselines)")
    contents = build(args.folder)
    if args.check:
        return 0 if check(contents) else 1
    np.savez_compressed(OUT, **contents)
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e6:.1f} MB): "
          + ", ".join(f"{s} {len(contents[f'{s}_labels'])}" for s in PHOTO10_SPLITS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
