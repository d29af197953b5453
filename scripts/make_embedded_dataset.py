"""Make ganaug's embedded demo dataset: a small, fixed Fashion-MNIST subset shipped inside the package.

    python scripts/make_embedded_dataset.py                      # from ../shared/data/fashion-mnist
    python scripts/make_embedded_dataset.py --source /usr/share/datasets/fashion-mnist --out x.npz

It draws ``--train-per-class`` images per class from the 60k training split and ``--test-per-class``
from the 10k test split with a fixed seed, and writes one NPZ with ``train_images``/``test_images``
(uint8 ``[N, 28, 28, 1]``), ``train_labels``/``test_labels`` (uint8) and ``classes`` (str).

The file is byte-for-byte reproducible: members are written in a fixed order with a fixed zip
timestamp and zlib level 9 (``np.savez_compressed`` stamps the current time, so it is not used).
Deflate rather than LZMA because zlib exists in every Python build, ``_lzma`` not always (pyenv).
Fashion-MNIST is MIT-licensed (Copyright 2017 Zalando SE); the notice ships beside the file.
"""

from __future__ import annotations

import argparse
import io
import sys
import zipfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = REPO.parent / "shared" / "data" / "fashion-mnist"
DEFAULT_OUT = REPO / "ganaug" / "assets" / "fashion_mnist_small.npz"
SEED = 20170825  # Fashion-MNIST's release date
TRAIN_PER_CLASS = 250
TEST_PER_CLASS = 100
ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def draw(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """``per_class`` indices of each class (classes in order), sorted."""
    chosen = [
        rng.choice(np.flatnonzero(labels == k), size=per_class, replace=False)
        for k in range(int(labels.max()) + 1)
    ]
    return np.sort(np.concatenate(chosen))


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """An NPZ (readable by ``np.load``) whose bytes depend only on ``arrays``."""
    from ganaug.fileio import atomic_path

    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w") as zf:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(array), allow_pickle=False)
            zf.writestr(info, buf.getvalue(), compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)


def build(
    source: Path, out: Path, train_per_class: int = TRAIN_PER_CLASS, test_per_class: int = TEST_PER_CLASS
) -> dict[str, int]:
    """Write the subset of the IDX files in ``source`` to ``out``; return the counts."""
    from ganaug.data.sources import FASHION_MNIST_CLASSES, read_idx

    x_train, y_train, _ = read_idx(source / "train-images-idx3-ubyte.gz", None)
    x_test, y_test, _ = read_idx(source / "t10k-images-idx3-ubyte.gz", None)
    rng = np.random.default_rng(SEED)
    tr = draw(y_train, train_per_class, rng)
    te = draw(y_test, test_per_class, rng)
    classes = np.array([name.replace("/", "-") for name in FASHION_MNIST_CLASSES])
    write_npz(
        out,
        {
            "train_images": x_train[tr],
            "train_labels": y_train[tr].astype(np.uint8),
            "test_images": x_test[te],
            "test_labels": y_test[te].astype(np.uint8),
            "classes": classes,
        },
    )
    return {"train": len(tr), "test": len(te), "bytes": out.stat().st_size}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="Fashion-MNIST IDX folder")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="NPZ file to write")
    parser.add_argument("--train-per-class", type=int, default=TRAIN_PER_CLASS)
    parser.add_argument("--test-per-class", type=int, default=TEST_PER_CLASS)
    args = parser.parse_args(argv)
    if not (args.source / "train-images-idx3-ubyte.gz").is_file():
        print(f"error: Fashion-MNIST IDX files not found in {args.source}", file=sys.stderr)
        return 1
    info = build(args.source, args.out, args.train_per_class, args.test_per_class)
    print(f"wrote {args.out}: {info['train']} train + {info['test']} test images, {info['bytes']:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
