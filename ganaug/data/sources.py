"""Where the images are: list ImageFolder trees and CSV/JSONL manifests, read IDX and NPZ files.

File-based sources (folder, manifest) produce ``(path, class_name)`` entries that are decoded
later; array sources (IDX, NPZ) produce arrays directly. Every problem message names the path.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ganaug.errors import DataError

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}
IDX_IMAGES_MAGIC = 2051
IDX_LABELS_MAGIC = 2049
FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip


@dataclass
class FileEntries:
    """Files to decode with their class names, plus problems found while listing."""

    paths: list[str]
    labels: list[str]
    problems: list[str] = field(default_factory=list)


def detect_kind(path: Path) -> str:
    """``imagefolder``, ``csv``, ``jsonl``, ``idx`` or ``npz``, from the path alone."""
    if path.is_dir():
        return "imagefolder"
    name = path.name.lower()
    suffixes = [s.lower() for s in path.suffixes]
    if name.endswith(".csv"):
        return "csv"
    if name.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if name.endswith(".npz"):
        return "npz"
    if re.search(r"idx\d", name) or name.endswith(("-ubyte", "-ubyte.gz", ".idx", ".idx.gz")):
        return "idx"
    raise DataError(
        f"{path}: cannot tell the data format from the name (suffixes {''.join(suffixes) or 'none'}); "
        "expected a class-folder directory, .csv, .jsonl, .npz or an IDX file"
    )


def check_label_name(label: str, where: str) -> str:
    """A class name must be usable as a folder name: no separators, no '..', not empty."""
    label = label.strip()
    if not label or label in {".", ".."} or "/" in label or "\\" in label or "\x00" in label:
        raise DataError(f"{where}: label {label!r} is not a valid class name (looks like a path or is empty)")
    return label


def _inside(root: Path, path: Path) -> bool:
    try:
        path.resolve().relative_to(root)
    except ValueError:
        return False
    return True


def list_imagefolder(root: Path) -> FileEntries:
    """``root/<class>/**/*.<image ext>``; class names are the sorted folder names."""
    root_resolved = root.resolve()
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise DataError(f"{root}: no class folders found (expected {root}/<class>/<image files>)")
    entries = FileEntries([], [])
    escaped: list[str] = []
    empty: list[str] = []
    for class_dir in class_dirs:
        if not _inside(root_resolved, class_dir):
            escaped.append(str(class_dir))
            continue
        found = 0
        for dirpath, dirnames, filenames in os.walk(class_dir, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for fname in sorted(filenames):
                file = Path(dirpath) / fname
                if Path(fname).suffix.lower() not in IMAGE_EXTENSIONS or fname.startswith("."):
                    continue
                if file.is_symlink() and not _inside(root_resolved, file):
                    escaped.append(str(file))
                    continue
                entries.paths.append(str(file))
                entries.labels.append(class_dir.name)
                found += 1
        if not found:
            empty.append(class_dir.name)
    if empty:
        raise DataError(f"{root}: class folder(s) with no images: {', '.join(empty[:5])}")
    if escaped:
        entries.problems.append(
            f"{len(escaped)} symlink(s) leaving {root} not followed, e.g. {', '.join(escaped[:3])}"
        )
    return entries


def _manifest_rows_csv(path: Path) -> list[tuple[int, str, str]]:
    text = _read_text(path)
    reader = csv.reader(text.splitlines())
    rows = [r for r in reader]
    if not rows:
        raise DataError(f"{path}: manifest is empty")
    header = [h.strip().lower() for h in rows[0]]
    if "path" in header and "label" in header:
        ip, il = header.index("path"), header.index("label")
        body = list(enumerate(rows[1:], start=2))
    else:
        ip, il = 0, 1
        body = list(enumerate(rows, start=1))
    out = []
    for lineno, row in body:
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) <= max(ip, il):
            raise DataError(f"{path}:{lineno}: expected columns path,label, got {len(row)} column(s)")
        out.append((lineno, row[ip].strip(), row[il]))
    return out


def _manifest_rows_jsonl(path: Path) -> list[tuple[int, str, str]]:
    out = []
    for lineno, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            raise DataError(f"{path}:{lineno}: not valid JSON") from None
        if not isinstance(obj, dict) or "path" not in obj or "label" not in obj:
            raise DataError(f"{path}:{lineno}: expected an object with 'path' and 'label'")
        out.append((lineno, str(obj["path"]), str(obj["label"])))
    return out


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(f"{path}: manifest is not UTF-8 text") from None


def list_manifest(path: Path, kind: str) -> FileEntries:
    """Entries of a CSV (``path,label``) or JSONL manifest; paths are relative to the manifest."""
    rows = _manifest_rows_csv(path) if kind == "csv" else _manifest_rows_jsonl(path)
    base = path.parent
    entries = FileEntries([], [])
    seen: set[str] = set()
    duplicates = 0
    missing: list[str] = []
    for lineno, rel, label in rows:
        label = check_label_name(label, f"{path}:{lineno}")
        file = Path(rel) if os.path.isabs(rel) else base / rel
        key = os.path.normpath(str(file))
        if key in seen:
            duplicates += 1
            continue
        seen.add(key)
        if not file.is_file():
            missing.append(f"{rel} (line {lineno})")
            continue
        entries.paths.append(str(file))
        entries.labels.append(label)
    if missing:
        raise DataError(f"{path}: {len(missing)} listed file(s) not found, first: {missing[0]}")
    if duplicates:
        entries.problems.append(f"{duplicates} duplicate path(s) in {path} ignored")
    if not entries.paths:
        raise DataError(f"{path}: manifest lists no images")
    return entries


def _open_maybe_gz(path: Path) -> bytes:
    with open(path, "rb") as fh:
        head = fh.read(2)
    try:
        if head == b"\x1f\x8b":
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot decompress ({exc})") from None


def _parse_idx(path: Path, expect_magic: int, what: str) -> np.ndarray:
    data = _open_maybe_gz(path)
    if len(data) < 8:
        raise DataError(f"{path}: too short to be an IDX {what} file")
    magic = int.from_bytes(data[:4], "big")
    if magic != expect_magic:
        raise DataError(f"{path}: IDX magic {magic}, expected {expect_magic} for {what}")
    ndim = expect_magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated IDX header")
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    expected = int(np.prod(dims, dtype=np.int64))
    if len(data) - header != expected:
        raise DataError(f"{path}: IDX body has {len(data) - header} bytes, header says {expected} ({dims})")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def default_idx_labels(images: Path) -> Path:
    """``train-images-idx3-ubyte.gz`` -> ``train-labels-idx1-ubyte.gz`` (same folder)."""
    name = images.name.replace("images-idx3", "labels-idx1").replace("images.idx3", "labels.idx1")
    if name == images.name:
        raise DataError(f"{images}: cannot derive the labels file name; pass --labels PATH")
    candidate = images.with_name(name)
    if not candidate.exists():
        alt = candidate.with_name(name[:-3]) if name.endswith(".gz") else candidate.with_name(name + ".gz")
        if alt.exists():
            return alt
        raise DataError(f"{images}: labels file {candidate} not found; pass --labels PATH")
    return candidate


def idx_class_names(images: Path, num_classes: int) -> list[str]:
    """Class names for IDX data: ``classes.txt`` beside the file, Fashion-MNIST's names when the
    folder is a Fashion-MNIST one, else the label numbers."""
    txt = images.with_name("classes.txt")
    if txt.is_file():
        names = [line.strip() for line in _read_text(txt).splitlines() if line.strip()]
        if len(names) < num_classes:
            raise DataError(f"{txt}: {len(names)} class names for {num_classes} label values")
        return [check_label_name(n.replace("/", "-"), str(txt)) for n in names]
    if "fashion" in images.resolve().parent.name.lower() and num_classes <= 10:
        return [n.replace("/", "-") for n in FASHION_MNIST_CLASSES]
    return [str(i) for i in range(num_classes)]


def read_idx(images: Path, labels: Path | None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Images (uint8 NHWC) and labels of an IDX pair."""
    labels = labels or default_idx_labels(images)
    arr = _parse_idx(images, IDX_IMAGES_MAGIC, "images")
    lab = _parse_idx(labels, IDX_LABELS_MAGIC, "labels").astype(np.int64)
    if len(arr) != len(lab):
        raise DataError(f"{images}: {len(arr)} images but {labels} has {len(lab)} labels")
    num_classes = int(lab.max()) + 1 if len(lab) else 0
    return arr[..., None], lab, idx_class_names(images, num_classes)


def read_npz(path: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``images`` (uint8 N,H,W[,C]), ``labels`` (ints or strings), optional ``classes``."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = set(npz.files)
            if not {"images", "labels"} <= keys:
                raise DataError(f"{path}: NPZ needs arrays 'images' and 'labels', has {sorted(keys)}")
            images, labels = npz["images"], npz["labels"]
            classes = [str(c) for c in npz["classes"].tolist()] if "classes" in keys else None
    except DataError:
        raise
    except ValueError as exc:
        raise DataError(
            f"{path}: NPZ holds object arrays or is damaged ({exc}); pickled data is refused"
        ) from None
    except (OSError, EOFError, KeyError) as exc:
        raise DataError(f"{path}: not a readable NPZ file ({exc.__class__.__name__})") from None
    if images.dtype != np.uint8:
        raise DataError(f"{path}: 'images' must be uint8, got {images.dtype}")
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3, 4):
        raise DataError(f"{path}: 'images' must be N,H,W or N,H,W,C with C in 1/3/4, got {images.shape}")
    if images.shape[-1] == 4:
        images = images[..., :3]
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(f"{path}: 'labels' must be 1-D with {len(images)} entries, got {labels.shape}")
    if labels.dtype.kind in "US":
        names = sorted({check_label_name(str(v), str(path)) for v in labels.tolist()})
        if classes is None:
            classes = names
        index = {n: i for i, n in enumerate(classes)}
        unknown = [n for n in names if n not in index]
        if unknown:
            raise DataError(f"{path}: label {unknown[0]!r} is not in 'classes'")
        labels = np.array([index[str(v).strip()] for v in labels.tolist()], dtype=np.int64)
    elif labels.dtype.kind in "iu":
        labels = labels.astype(np.int64)
        if len(labels) and labels.min() < 0:
            raise DataError(f"{path}: negative label {int(labels.min())}")
        n = int(labels.max()) + 1 if len(labels) else 0
        classes = classes or [str(i) for i in range(n)]
        if n > len(classes):
            raise DataError(f"{path}: label {n - 1} but only {len(classes)} classes")
    else:
        raise DataError(f"{path}: 'labels' must be integers or strings, got {labels.dtype}")
    classes = [check_label_name(c, str(path)) for c in classes]
    return np.ascontiguousarray(images), labels, classes
