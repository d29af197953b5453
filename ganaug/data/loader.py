"""``load_dataset`` and ``inspect_dataset``: any supported source to one :class:`ImageDataset`.

Decoded arrays are cached on disk (``$GANAUG_CACHE_DIR`` or ``~/.cache/ganaug``) under a key made
of the reader, the file list with sizes and modification times, and the conversion options, so
60k PNGs are decoded once. The cache holds only ``.npy`` arrays and JSON; a cache that cannot be
written is skipped, never fatal.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from ganaug.data.dataset import ImageDataset, summarize
from ganaug.data.decode import decode_files, majority_channels, stack_images
from ganaug.data.sources import (
    FileEntries,
    check_dataset_size,
    default_idx_labels,
    detect_kind,
    list_imagefolder,
    list_manifest,
    read_idx,
    read_npz,
)
from ganaug.errors import DataError, DataNotFoundError

CACHE_FORMAT = 1
_PROBLEM_EXAMPLES = 3


class DataWarning(UserWarning):
    """Files were skipped or something about the data looks wrong."""


def cache_root() -> Path:
    """Where decoded datasets are cached."""
    env = os.environ.get("GANAUG_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "ganaug"


def _stat_key(paths: list[str]) -> list[tuple[str, int, int]]:
    out = []
    for p in paths:
        st = os.stat(p)
        out.append((p, st.st_size, st.st_mtime_ns))
    return out


def _key(parts: dict[str, Any]) -> str:
    blob = json.dumps({"format": CACHE_FORMAT, **parts}, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:40]


def _cache_dir(key: str) -> Path:
    return cache_root() / "datasets" / key


def _read_cache(key: str) -> tuple[dict, np.ndarray | None, np.ndarray | None] | None:
    folder = _cache_dir(key)
    meta_file = folder / "meta.json"
    if not meta_file.is_file():
        return None
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        images = labels = None
        if (folder / "images.npy").is_file():
            images = np.load(folder / "images.npy", allow_pickle=False)
            labels = np.load(folder / "labels.npy", allow_pickle=False)
        return meta, images, labels
    except (OSError, ValueError):
        return None


def _write_cache(key: str, meta: dict, images: np.ndarray | None, labels: np.ndarray | None) -> None:
    folder = _cache_dir(key)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=folder.parent))
        try:
            if images is not None and labels is not None:
                np.save(tmp / "images.npy", images, allow_pickle=False)
                np.save(tmp / "labels.npy", labels, allow_pickle=False)
            (tmp / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
            if folder.exists():
                shutil.rmtree(folder, ignore_errors=True)
            os.replace(tmp, folder)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    except OSError:
        pass  # a read-only or full cache location only costs speed


def _source_parts(path: Path, kind: str, labels: Path | None) -> tuple[dict[str, Any], FileEntries | None]:
    """The cache key parts of a source, and the file list for file-based sources."""
    if kind == "imagefolder":
        entries = list_imagefolder(path)
    elif kind in ("csv", "jsonl"):
        entries = list_manifest(path, kind)
    else:
        files = [str(path)]
        if kind == "idx":
            files.append(str(labels or default_idx_labels(path)))
        return {"kind": kind, "path": str(path.resolve()), "files": _stat_key(files)}, None
    parts = {
        "kind": kind,
        "path": str(path.resolve()),
        "files": _stat_key(entries.paths),
        "labels": entries.labels,
        **({"classes": entries.classes} if entries.classes else {}),
    }
    return parts, entries


def _class_list(labels: list[str]) -> list[str]:
    names = sorted(set(labels))
    if all(n.lstrip("-").isdigit() for n in names):
        names.sort(key=int)
    return names


def _scan(
    path: Path, kind: str, labels: Path | None, entries: FileEntries | None
) -> tuple[list, np.ndarray, dict]:
    """Decode the source: native arrays, label indices and the scan report (sizes, problems)."""
    problems: list[str] = []
    if entries is None:
        images, label_idx, classes = read_idx(path, labels) if kind == "idx" else read_npz(path)
        h, w, c = images.shape[1:]
        meta = {
            "classes": classes,
            "paths": None,
            "sizes": [[[w, h], len(images)]],
            "channels": [[c, len(images)]],
            "problems": problems,
        }
        meta["label_counts"] = np.bincount(label_idx, minlength=len(classes)).tolist()
        return [images], label_idx, meta
    problems.extend(entries.problems)
    decoded = decode_files(entries.paths)
    bad = [(p, d.error) for p, d in zip(entries.paths, decoded, strict=True) if d.error]
    if bad:
        shown = "; ".join(f"{p}: {err}" for p, err in bad[:_PROBLEM_EXAMPLES])
        more = f" (and {len(bad) - _PROBLEM_EXAMPLES} more)" if len(bad) > _PROBLEM_EXAMPLES else ""
        problems.append(f"skipped {len(bad)} unreadable image file(s): {shown}{more}")
    good = [
        (p, lab, d) for p, lab, d in zip(entries.paths, entries.labels, decoded, strict=True) if not d.error
    ]
    classes = entries.classes or _class_list(entries.labels)  # classes.json order when present
    index = {n: i for i, n in enumerate(classes)}
    arrays = [d.array for _, _, d in good]
    label_idx = np.array([index[lab] for _, lab, _ in good], dtype=np.int64)
    sizes = Counter(d.size for _, _, d in good)
    channels = Counter(d.channels for _, _, d in good)
    meta = {
        "classes": classes,
        "paths": [p for p, _, _ in good],
        "sizes": [[list(s), n] for s, n in sizes.items()],
        "channels": [[c, n] for c, n in channels.items()],
        "problems": problems,
        "label_counts": np.bincount(label_idx, minlength=len(classes)).tolist(),
    }
    return arrays, label_idx, meta


def _check_usable(
    where: Path, classes: list[str], label_idx: np.ndarray, problems: list[str], strict: bool
) -> None:
    if strict and problems:
        raise DataError(f"{where}: {problems[0]} (strict mode)")
    counts = np.bincount(label_idx, minlength=len(classes)) if len(classes) else np.zeros(0)
    if counts.sum() == 0:
        raise DataError(f"{where}: no readable images")
    if len(classes) < 2 or (counts > 0).sum() < 2:
        only = classes[int(np.argmax(counts))]
        raise DataError(f"{where}: only one class ({only!r}); a conditional GAN needs at least 2")
    empty = [c for c, n in zip(classes, counts, strict=True) if n == 0]
    if empty:
        raise DataError(f"{where}: class(es) with no readable images: {', '.join(empty[:5])}")


def _warn_problems(problems: list[str]) -> None:
    for problem in problems:
        warnings.warn(problem, DataWarning, stacklevel=3)


def _resolve(
    path: str | os.PathLike[str], labels: str | os.PathLike[str] | None
) -> tuple[Path, str, Path | None]:
    path = Path(path)
    if not path.exists():
        raise DataNotFoundError(f"data path not found: {path}")
    labels_path = Path(labels) if labels is not None else None
    if labels_path is not None and not labels_path.is_file():
        raise DataNotFoundError(f"labels file not found: {labels_path}")
    return path, detect_kind(path), labels_path


def load_dataset(
    path: str | os.PathLike[str],
    *,
    image_size: int | None = None,
    channels: int | None = None,
    labels: str | os.PathLike[str] | None = None,
    strict: bool = False,
    cache: bool = True,
) -> ImageDataset:
    """Read a class-folder tree, CSV/JSONL manifest, IDX pair or NPZ file into an :class:`ImageDataset`.

    ``image_size`` resizes to a square (centre crop first); ``channels`` (1 or 3) converts, by
    default to what most images have. Unreadable files are skipped with a :class:`DataWarning`
    (``strict=True`` makes them an error). ``labels`` is the IDX labels file when it is not beside
    the images under the standard name.
    """
    if channels not in (None, 1, 3):
        raise DataError(f"channels must be 1 or 3, got {channels}")
    if image_size is not None and not 4 <= image_size <= 4096:
        raise DataError(f"image size must be between 4 and 4096, got {image_size}")
    path, kind, labels_path = _resolve(path, labels)
    parts, entries = _source_parts(path, kind, labels_path)
    key = _key({**parts, "image_size": image_size, "channels": channels})
    cached = _read_cache(key) if cache else None
    if cached is not None and cached[1] is not None:
        meta, images, label_idx = cached
        _check_usable(path, meta["classes"], label_idx, meta["problems"], strict)
        _warn_problems(meta["problems"])
        return ImageDataset(
            images, label_idx, meta["classes"], f"{kind}:{path}", meta["paths"], meta["problems"]
        )
    if entries is not None and image_size is not None:  # refuse before decoding anything
        check_dataset_size(len(entries.paths), image_size, image_size, channels or 1, str(path))
    arrays, label_idx, meta = _scan(path, kind, labels_path, entries)
    _check_usable(path, meta["classes"], label_idx, meta["problems"], strict)
    want_channels = channels or majority_channels({c: n for c, n in meta["channels"]})
    (w0, h0), _ = max(meta["sizes"], key=lambda sn: sn[1])
    side_h, side_w = (image_size, image_size) if image_size is not None else (h0, w0)
    check_dataset_size(len(label_idx), side_h, side_w, want_channels, str(path))
    if entries is None:
        images = arrays[0]
        if (image_size not in (None, images.shape[1])) or want_channels != images.shape[-1]:
            images = stack_images(list(images), image_size, want_channels, str(path))
    else:
        images = stack_images(arrays, image_size, want_channels, str(path))
    if cache:
        _write_cache(key, meta, images, label_idx)
        _write_cache(_key(parts), meta, None, None)
    _warn_problems(meta["problems"])
    return ImageDataset(images, label_idx, meta["classes"], f"{kind}:{path}", meta["paths"], meta["problems"])


def inspect_dataset(
    path: str | os.PathLike[str],
    *,
    labels: str | os.PathLike[str] | None = None,
    strict: bool = False,
    cache: bool = True,
) -> dict[str, Any]:
    """What ganaug sees in a dataset: classes, counts, sizes, channels, imbalance, problems.

    Returns a JSON-ready dict with ``num_images``, ``num_classes``, ``class_counts``,
    ``image_sizes``, ``channels``, ``imbalance_ratio``, ``problems`` and ``source``.
    """
    path, kind, labels_path = _resolve(path, labels)
    parts, entries = _source_parts(path, kind, labels_path)
    key = _key(parts)
    cached = _read_cache(key) if cache else None
    if cached is not None:
        meta = cached[0]
        label_counts = np.asarray(meta["label_counts"], dtype=np.int64)
        label_idx = np.repeat(np.arange(len(label_counts)), label_counts)
    else:
        _arrays, label_idx, meta = _scan(path, kind, labels_path, entries)
        if cache:
            _write_cache(key, meta, None, None)
    _check_usable(path, meta["classes"], label_idx, meta["problems"], strict)
    sizes = Counter({tuple(s): n for s, n in meta["sizes"]})
    channels = Counter({c: n for c, n in meta["channels"]})
    return summarize(meta["classes"], label_idx, sizes, channels, meta["problems"], f"{kind}:{path}")
