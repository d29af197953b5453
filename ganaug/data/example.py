"""``ganaug data example``: the embedded Fashion-MNIST subset written to disk in any readable format.

The subset that ships inside ganaug (250 training and 100 test images per class, MIT, Copyright 2017
Zalando SE; see ``ganaug/assets/NOTICE``) is enough to try every command on a fresh clone. This module
writes one split of it as

- ``folder``: ``OUT/<class>/<split>_<index>.png`` plus ``OUT/classes.json`` (the class order, which
  ganaug's folder reader honours, so label indices match the embedded data's),
- ``idx``: ``OUT/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz`` plus ``OUT/classes.txt``
  (the file names of the full Fashion-MNIST release),
- ``npz``: ``OUT/<split>.npz`` with ``images``, ``labels`` and ``classes``,

always with the MIT notice (``FASHION_MNIST_LICENSE``, ``NOTICE``) beside the data. ``OUT`` appears
only when complete (written to a hidden sibling folder, then renamed).
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import numpy as np

from ganaug.data.dataset import ImageDataset
from ganaug.errors import DataError, UsageError

__all__ = [
    "DEMO_COUNTS",
    "EMBEDDED_FILE",
    "FORMATS",
    "SPLITS",
    "embedded_dataset",
    "imbalanced_copy",
    "write_example",
]

FORMATS = ("folder", "idx", "npz")
SPLITS = ("train", "test")
EMBEDDED_FILE = "fashion_mnist_small.npz"
#: Real training images per class in the demo's imbalanced copy (class order of the data:
#: T-shirt-top ... Ankle boot). One majority class as in the BAGAN-GP protocol, the others rare.
DEMO_COUNTS: tuple[int, ...] = (250, 25, 40, 55, 70, 85, 100, 115, 130, 145)
_IDX_PREFIX = {"train": "train", "test": "t10k"}
_NOTICE_FILES = ("FASHION_MNIST_LICENSE", "NOTICE")


def embedded_dataset(split: str = "train") -> ImageDataset:
    """The Fashion-MNIST subset that ships with ganaug: ``"train"`` (2,500 images) or ``"test"`` (1,000).

    Images are uint8 ``[N, 28, 28, 1]``, 10 classes (``T-shirt-top`` ... ``Ankle boot``).
    """
    if split not in SPLITS:
        raise UsageError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    ref = resources.files("ganaug") / "assets" / EMBEDDED_FILE
    try:
        with resources.as_file(ref) as path, np.load(path, allow_pickle=False) as npz:
            images = npz[f"{split}_images"]
            labels = npz[f"{split}_labels"].astype(np.int64)
            classes = [str(c) for c in npz["classes"]]
    except (OSError, KeyError, ValueError) as exc:
        raise DataError(
            f"embedded dataset ganaug/assets/{EMBEDDED_FILE} is missing or damaged "
            f"({type(exc).__name__}); reinstall ganaug"
        ) from None
    return ImageDataset(images, labels, classes, source=f"embedded:fashion-mnist-small/{split}")


def imbalanced_copy(ds: ImageDataset, counts: Sequence[int] = DEMO_COUNTS, seed: int = 0) -> ImageDataset:
    """``counts[k]`` images of class ``k`` drawn from ``ds`` (the demo's artificially imbalanced data)."""
    try:
        sub = ds.sample_per_class(list(counts), seed=seed)
    except ValueError as exc:
        raise DataError(f"cannot draw the imbalanced copy: {exc}") from None
    sub.source = f"{ds.source} imbalanced {'/'.join(map(str, counts))} (seed {seed})"
    return sub


def _write_idx(path: Path, array: np.ndarray, magic: int) -> None:
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    # mtime=0: the same subset gives the same bytes (and checksums) on every machine.
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as fh:
        fh.write(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def _write_folder(tmp: Path, images: np.ndarray, labels: np.ndarray, classes: list[str], split: str) -> None:
    from PIL import Image

    for k, name in enumerate(classes):
        (tmp / name).mkdir()
        for i in np.flatnonzero(labels == k):
            Image.fromarray(images[i, :, :, 0], mode="L").save(tmp / name / f"{split}_{int(i):05d}.png")
    (tmp / "classes.json").write_text(json.dumps(classes, indent=2) + "\n", encoding="utf-8")


def _write_arrays(
    tmp: Path, fmt: str, images: np.ndarray, labels: np.ndarray, classes: list[str], split: str
) -> list[Path]:
    if fmt == "folder":
        _write_folder(tmp, images, labels, classes, split)
        return [tmp]
    if fmt == "idx":
        prefix = _IDX_PREFIX[split]
        files = [tmp / f"{prefix}-images-idx3-ubyte.gz", tmp / f"{prefix}-labels-idx1-ubyte.gz"]
        _write_idx(files[0], images[..., 0], 2051)
        _write_idx(files[1], labels.astype(np.uint8), 2049)
        (tmp / "classes.txt").write_text("\n".join(classes) + "\n", encoding="utf-8")
        return files
    path = tmp / f"{split}.npz"
    with open(path, "wb") as fh:
        np.savez_compressed(fh, images=images, labels=labels.astype(np.int64), classes=np.array(classes))
    return [path]


def write_example(
    out: str | os.PathLike[str], fmt: str = "folder", split: str = "train", imbalanced: bool = False
) -> Path:
    """Write the embedded subset's ``split`` to the new folder ``out`` as ``fmt``; return the path to
    pass to other commands (the folder itself, the IDX images file or the NPZ file).

    ``imbalanced`` writes the demo's imbalanced draw of the training split instead
    (:data:`DEMO_COUNTS` images per class: 250 of the first class, 25-145 of the others).
    """
    if fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if split not in SPLITS:
        raise UsageError(f"--split must be one of {', '.join(SPLITS)}, got {split!r}")
    out = Path(out)
    if out.exists() and not (out.is_dir() and not any(out.iterdir())):
        raise UsageError(f"{out} already exists; give a new folder")
    if imbalanced and split != "train":
        raise UsageError("--imbalanced draws from the training split; leave out --split test")
    ds = embedded_dataset(split)
    if imbalanced:
        ds = imbalanced_copy(ds, DEMO_COUNTS, seed=0)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-{os.getpid()}-", dir=out.parent))
    try:
        written = _write_arrays(tmp, fmt, ds.images, ds.labels, list(ds.classes), split)
        assets = resources.files("ganaug") / "assets"
        for name in _NOTICE_FILES:
            with resources.as_file(assets / name) as src:
                shutil.copyfile(src, tmp / name)
        os.chmod(tmp, 0o777 & ~_umask())
        if out.is_dir():
            out.rmdir()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out if fmt == "folder" else out / written[0].name


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
