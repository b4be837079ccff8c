"""Rebuild digits.npz from the copy of the UCI digits that scikit-learn ships.

    pip download --no-deps -d /tmp/skl scikit-learn
    python data/make_digits.py /tmp/skl/scikit_learn-*.whl

scikit-learn is not a dependency of this project: the wheel is only read as a zip archive.
"""

import gzip
import io
import sys
import zipfile
from pathlib import Path

import numpy as np


def main(wheel):
    with zipfile.ZipFile(wheel) as z:
        raw = gzip.decompress(z.read("sklearn/datasets/data/digits.csv.gz"))
    table = np.loadtxt(io.BytesIO(raw), delimiter=",")
    images = table[:, :64].reshape(-1, 8, 8).astype(np.uint8)  # integer counts 0..16
    labels = table[:, 64].astype(np.uint8)
    out = Path(__file__).with_name("digits.npz")
    np.savez_compressed(out, images=images, labels=labels)
    print(f"wrote {out}: images {images.shape}, labels {labels.shape}")


if __name__ == "__main__":
    main(sys.argv[1])
