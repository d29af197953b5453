"""Write a labelled image dataset (ImageFolder PNGs or one NPZ) plus ``manifest.jsonl``, atomically.

Used by ``ganaug sample`` and ``ganaug augment``::

    with DatasetWriter("out/", classes=["cat", "dog"]) as w:
        w.add(image_uint8_hwc, 1, {"source": "synthetic", "seed": 0, "z_index": 0})
        w.add_file("real/cat/001.png", 0, {"source": "real"}, mode="link")
        w.extra_files["summary.json"] = {"counts": {...}}

Everything is written into a hidden sibling folder (``.out.tmp-<pid>-XXXX``) that is renamed onto
``out_dir`` only when the ``with`` block ends cleanly, so a crash or an exception never leaves a
half-written dataset that looks complete: ``out_dir`` is either untouched or complete. Files inside
the temporary folder need no atomic writes of their own for that reason. What a killed writer left
behind (hidden folders of a process that no longer runs) is removed by the next writer of the same
``out_dir``, with one line on stderr per folder. Every dataset gets the marker file
``.ganaug-output.json``; ``overwrite`` replaces only a non-empty ``out_dir`` that holds it (see
:mod:`ganaug.output_safety`). The temporary folder, which becomes ``out_dir``, gets the mode the
umask gives a new folder (not ``mkdtemp``'s 0700).

Layout (``fmt="imagefolder"``): ``<class>/<source>_<index:06d>.png`` with a running index per class
and source. Layout (``fmt="npz"``): ``data.npz`` with ``images`` (uint8 NHWC), ``labels`` (int64)
and ``classes`` (str); the manifest path of row ``i`` is ``data.npz#i``. Both get ``classes.json``
(the class order as a JSON list of folder names; ganaug's folder reader honours it, so label indices
survive a round trip) and ``manifest.jsonl``
with one JSON object per image: ``path``, ``label`` (class name), ``label_index`` and the caller's
record (``source``, ``seed``, ``z_index``, ``transforms``, ``plugins``, ...). When records carry
``soft_label`` (``augment --soft-labels``), the NPZ also holds ``soft_labels`` (float32 ``[N, classes]``,
one-hot rows for images without one).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sys
import tempfile
import zipfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from ganaug.data.sources import MAX_BYTES_ENV, _human, max_dataset_bytes
from ganaug.errors import DataError, UsageError
from ganaug.limits import env_positive_int
from ganaug.output_safety import MARKER, apply_umask, check_replaceable_dir, marker_content, resolve

FORMATS = {"imagefolder": "imagefolder", "png": "imagefolder", "npz": "npz"}
MANIFEST = "manifest.jsonl"
NPZ_NAME = "data.npz"
CLASSES_FILE = "classes.json"
_RESERVED_KEYS = ("path", "label", "label_index")
_UNSAFE_CHARS = re.compile(r'[\x00-\x1f<>:"|?*]')
_SOURCE_OK = re.compile(r"[^A-Za-z0-9_.-]+")


MAX_IMAGES_ENV = "GANAUG_MAX_OUTPUT_IMAGES"
#: Images one ``augment`` / ``sample`` job may write: the manifest records (about 0.5 kB each) stay
#: in memory until the dataset is complete.
DEFAULT_MAX_IMAGES = 10_000_000


def max_output_images() -> int:
    """``$GANAUG_MAX_OUTPUT_IMAGES`` when set, else :data:`DEFAULT_MAX_IMAGES`."""
    value = env_positive_int(MAX_IMAGES_ENV, "images")
    return DEFAULT_MAX_IMAGES if value is None else value


def npz_size_problem(count: int, image_shape: Sequence[int]) -> str | None:
    """Why ``count`` images of ``image_shape`` cannot go into one NPZ (None when they can): NPZ
    output holds every image in memory until the end, within ``GANAUG_MAX_DATASET_BYTES``."""
    need = int(count) * int(np.prod(image_shape))
    limit = max_dataset_bytes()
    if need <= limit:
        return None
    return (
        f"--format npz holds every image in memory: {count} images of {'x'.join(map(str, image_shape))} "
        f"need {_human(need)}, over the {_human(limit)} limit; use --format imagefolder, "
        f"or raise {MAX_BYTES_ENV} (bytes)"
    )


def check_output_size(count: int, image_shape: Sequence[int], fmt: str, what: str) -> None:
    """Refuse, before anything is generated, a job writing more than :func:`max_output_images`
    images, or an NPZ bigger than the dataset memory limit. ``what`` names the request."""
    limit = max_output_images()
    if count > limit:
        raise UsageError(
            f"{what} asks for {count} images, over the limit of {limit} per dataset; ask for fewer, "
            f"split the job with --shard, or raise {MAX_IMAGES_ENV}"
        )
    problem = npz_size_problem(count, image_shape) if FORMATS.get(fmt) == "npz" else None
    if problem:
        raise UsageError(f"{what}: {problem}")


def safe_class_dirname(name: str) -> str:
    """A class name as a single, safe folder name (DataError if it could leave the dataset folder)."""
    if not isinstance(name, str) or not name.strip():
        raise DataError(f"class name {name!r} cannot be used as a folder name")
    if "/" in name or "\\" in name or name in (".", "..") or name.startswith("~") or "\x00" in name:
        raise DataError(f"class name {name!r} would leave the output folder; rename the class")
    safe = _UNSAFE_CHARS.sub("_", name).strip().rstrip(".")
    if not safe or safe in (".", ".."):
        raise DataError(f"class name {name!r} cannot be used as a folder name")
    return safe


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def _clean_stale(out: Path) -> None:
    """Remove the hidden temporary folders a killed writer of ``out`` left beside it.

    Their names carry the writer's process id (``.out.tmp-<pid>-*``, ``.out.old-<pid>-*``); only
    those of processes that no longer run are touched. A previous ``out`` that a writer had moved
    aside (``.out.old-<pid>-*/d``) when it was killed is put back if ``out`` is missing.
    """
    try:
        siblings = list(out.parent.iterdir())
    except OSError:
        return
    for path in siblings:
        for kind in ("tmp", "old"):
            prefix = f".{out.name}.{kind}-"
            pid = path.name[len(prefix) :].split("-", 1)[0]
            if not path.name.startswith(prefix) or not pid.isdigit() or _pid_alive(int(pid)):
                continue
            if path.is_symlink() or not path.is_dir():
                continue
            print(f"ganaug: removing {path}, left by a killed writer (pid {pid})", file=sys.stderr)
            if kind == "old" and (path / "d").is_dir() and not (out.exists() or out.is_symlink()):
                with contextlib.suppress(OSError):
                    os.replace(path / "d", out)
            shutil.rmtree(path, ignore_errors=True)


def _as_hwc_uint8(image: Any, where: str) -> np.ndarray:
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise DataError(f"{where}: images must be uint8, got {arr.dtype}")
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3):
        raise DataError(f"{where}: images must be HxWxC with C in (1, 3), got shape {arr.shape}")
    return arr


class DatasetWriter:
    """Atomic writer of an ImageFolder or NPZ dataset with a ``manifest.jsonl`` (see module doc).

    ``image_shape`` (H, W, C), when given, is enforced for NPZ output and gives an empty NPZ its
    shape. ``extra_files`` maps a file name to ``str``/``bytes`` (written as is) or a JSON-serialisable
    object (written as indented JSON); they are written on close, beside the manifest.
    """

    def __init__(
        self,
        out_dir: str | os.PathLike[str],
        *,
        classes: Sequence[str],
        fmt: str = "imagefolder",
        overwrite: bool = False,
        extra_files: dict[str, Any] | None = None,
        image_shape: tuple[int, int, int] | None = None,
    ) -> None:
        if fmt not in FORMATS:
            raise UsageError(f"unknown dataset format {fmt!r}; use one of imagefolder, png, npz")
        self.out_dir = Path(out_dir)
        self.classes = list(classes)
        if not self.classes:
            raise DataError("a dataset needs at least one class")
        if len(set(self.classes)) != len(self.classes):
            raise DataError("class names must be unique")
        self.fmt = FORMATS[fmt]
        self.overwrite = overwrite
        self.extra_files: dict[str, Any] = dict(extra_files or {})
        self.image_shape = tuple(image_shape) if image_shape is not None else None
        self.records: list[dict[str, Any]] = []
        # Checked for NPZ too: ganaug.data refuses path-like class names in every format.
        self._dirnames = [safe_class_dirname(c) for c in self.classes]
        folded = [d.casefold() for d in self._dirnames]
        if len(set(folded)) != len(folded):
            dup = next(d for d in self._dirnames if folded.count(d.casefold()) > 1)
            raise DataError(f"two class names map to the same folder name {dup!r}")
        self._counters: Counter[tuple[int, str]] = Counter()
        self._images: list[np.ndarray] = []
        self._npz_limit = max_dataset_bytes() if self.fmt == "npz" else 0
        self._labels: list[int] = []
        self._tmp: Path | None = None
        self._done = False

    # -- lifecycle -------------------------------------------------------------------------------
    def open(self) -> DatasetWriter:
        """Check ``out_dir`` and create the temporary folder (called by ``with``)."""
        out = self.out_dir
        if out.parent.is_dir():
            _clean_stale(out)
        if out.exists() or out.is_symlink():
            if not out.is_dir() or out.is_symlink():
                raise UsageError(f"output path exists and is not a folder: {out}")
            # --overwrite replaces only a dataset ganaug wrote (its marker file), see output_safety
            check_replaceable_dir(out, overwrite=self.overwrite, kind="dataset")
            if Path.cwd().resolve().is_relative_to(resolve(out)):
                raise UsageError(f"refusing to replace {out}: it contains the current directory")
        out.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-{os.getpid()}-", dir=out.parent))
        apply_umask(self._tmp, directory=True)  # mkdtemp makes 0700; it becomes out_dir
        return self

    def __enter__(self) -> DatasetWriter:
        return self.open()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def abort(self) -> None:
        """Remove the temporary folder; ``out_dir`` stays as it was."""
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def close(self) -> Path:
        """Write manifest, NPZ and extra files, then move the dataset onto ``out_dir``."""
        tmp = self._require_open()
        try:
            if self.fmt == "npz":
                self._write_npz(tmp / NPZ_NAME)
            with open(tmp / MANIFEST, "w", encoding="utf-8") as fh:
                for rec in self.records:
                    fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
            for name, content in self.extra_files.items():
                self._write_extra(tmp, name, content)
            if CLASSES_FILE not in self.extra_files:  # the class order, honoured by ganaug's folder reader
                names = self._dirnames if self.fmt == "imagefolder" else self.classes
                self._write_extra(tmp, CLASSES_FILE, names)
            (tmp / MARKER).write_text(marker_content("dataset"), encoding="utf-8")
            self._publish(tmp)
        except BaseException:
            self.abort()
            raise
        self._tmp = None
        self._done = True
        return self.out_dir

    def _publish(self, tmp: Path) -> None:
        out = self.out_dir
        if out.is_dir():
            # Move the old folder aside, swap the new one in, then delete the old one.
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-{os.getpid()}-", dir=out.parent))
            try:
                os.replace(out, old / "d")
                try:
                    os.replace(tmp, out)
                except BaseException:
                    os.replace(old / "d", out)
                    raise
            finally:
                shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
        with contextlib.suppress(OSError):
            fd = os.open(out.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def _write_npz(self, path: Path) -> None:
        """Like ``np.savez_compressed``, but ``images`` is streamed image by image into its member
        (no stacked copy: the images are held in memory once, not twice)."""
        first = self._images[0].shape if self._images else self.image_shape or (0, 0, 0)
        shape = (len(self._images), *first)
        others = {
            "labels": np.asarray(self._labels, dtype=np.int64),
            "classes": np.asarray(self.classes, dtype=str),
            **self._soft_label_array(),
        }
        descr = np.lib.format.dtype_to_descr(np.dtype(np.uint8))
        header = {"descr": descr, "fortran_order": False, "shape": shape}
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
            with zf.open("images.npy", "w", force_zip64=True) as fh:
                np.lib.format.write_array_header_2_0(fh, header)
                for image in self._images:
                    fh.write(image.tobytes())
            for name, array in others.items():
                with zf.open(f"{name}.npy", "w", force_zip64=True) as fh:
                    np.lib.format.write_array(fh, array, allow_pickle=False)

    def _soft_label_array(self) -> dict[str, np.ndarray]:
        """``soft_labels`` float32 ``[N, classes]`` when a record carries ``soft_label`` (a teacher's
        probabilities); rows of records without one are the one-hot hard label."""
        if not any("soft_label" in r for r in self.records):
            return {}
        soft = np.zeros((len(self.records), len(self.classes)), dtype=np.float32)
        for i, rec in enumerate(self.records):
            row = rec.get("soft_label")
            if row is None:
                soft[i, rec["label_index"]] = 1.0
            else:
                soft[i] = np.asarray(row, dtype=np.float32)
        return {"soft_labels": soft}

    @staticmethod
    def _write_extra(tmp: Path, name: str, content: Any) -> None:
        if Path(name).name != name or name in (".", "..", MANIFEST, NPZ_NAME, MARKER):
            raise UsageError(
                f"extra file name {name!r} must be a plain file name, not {MANIFEST}, {NPZ_NAME} or {MARKER}"
            )
        if isinstance(content, bytes):
            (tmp / name).write_bytes(content)
        elif isinstance(content, str):
            (tmp / name).write_text(content, encoding="utf-8")
        else:
            (tmp / name).write_text(
                json.dumps(content, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
            )

    def _require_open(self) -> Path:
        if self._tmp is None:
            state = "already closed" if self._done else "not opened (use it in a 'with' block)"
            raise RuntimeError(f"DatasetWriter for {self.out_dir} is {state}")
        return self._tmp

    # -- adding images ---------------------------------------------------------------------------
    def _check_label(self, label_index: int) -> int:
        if isinstance(label_index, bool) or not isinstance(label_index, (int, np.integer)):
            raise DataError(f"label_index must be an integer, got {label_index!r}")
        if not 0 <= int(label_index) < len(self.classes):
            raise DataError(f"label_index {label_index} out of range for {len(self.classes)} classes")
        return int(label_index)

    def _next_name(self, label: int, record: dict[str, Any], suffix: str) -> str:
        source = _SOURCE_OK.sub("_", str(record.get("source", "img"))) or "img"
        n = self._counters[(label, source)]
        self._counters[(label, source)] += 1
        if n == 0:  # class folders appear with their first image (no empty class folders)
            (self._require_open() / self._dirnames[label]).mkdir(exist_ok=True)
        return f"{self._dirnames[label]}/{source}_{n:06d}{suffix}"

    def _append(self, rel: str, label: int, record: dict[str, Any]) -> str:
        clash = [k for k in _RESERVED_KEYS if k in record]
        if clash:
            raise ValueError(f"record must not set {', '.join(clash)}; the writer fills them in")
        self.records.append({"path": rel, "label": self.classes[label], "label_index": label, **record})
        return rel

    def add(self, image: Any, label_index: int, record: dict[str, Any] | None = None) -> str:
        """Add one uint8 HWC image; returns its path relative to the dataset root."""
        tmp = self._require_open()
        label = self._check_label(label_index)
        record = dict(record or {})
        arr = _as_hwc_uint8(image, f"image {len(self.records)}")
        if self.fmt == "npz":
            expected = self._images[0].shape if self._images else self.image_shape
            if expected is not None and arr.shape != expected:
                raise DataError(
                    f"image {len(self.records)} has shape {arr.shape}, but this NPZ holds {expected}"
                )
            if (len(self._images) + 1) * arr.nbytes > self._npz_limit:
                raise DataError(f"{self.out_dir}: {npz_size_problem(len(self._images) + 1, arr.shape)}")
            rel = f"{NPZ_NAME}#{len(self._images)}"
            self._images.append(np.ascontiguousarray(arr))
            self._labels.append(label)
            return self._append(rel, label, record)
        from PIL import Image

        rel = self._next_name(label, record, ".png")
        pil = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)
        pil.save(tmp / rel, format="PNG")
        return self._append(rel, label, record)

    def add_many(
        self, images: np.ndarray, label_indices: Sequence[int], records: Sequence[dict[str, Any]]
    ) -> list[str]:
        """``add`` for a batch (uint8 NHWC) with one record per image."""
        if not (len(images) == len(label_indices) == len(records)):
            raise ValueError("images, label_indices and records must have the same length")
        return [self.add(img, lab, rec) for img, lab, rec in zip(images, label_indices, records, strict=True)]

    def add_file(
        self,
        src_path: str | os.PathLike[str],
        label_index: int,
        record: dict[str, Any] | None = None,
        mode: str = "copy",
    ) -> str:
        """Add an existing image file: copied (``mode="copy"``) or hard-linked (``"link"``, falling
        back to a copy across file systems). For NPZ output the file is decoded instead."""
        tmp = self._require_open()
        label = self._check_label(label_index)
        if mode not in ("copy", "link"):
            raise UsageError(f"mode must be 'copy' or 'link', got {mode!r}")
        src = Path(src_path)
        if not src.is_file():
            raise DataError(f"image file not found: {src}")
        record = dict(record or {})
        if self.fmt == "npz":
            from PIL import Image, UnidentifiedImageError

            try:
                with Image.open(src) as im:
                    im = im.convert("L" if im.mode in ("1", "L", "I;16", "I", "F") else "RGB")
                    arr = np.asarray(im)
            except (UnidentifiedImageError, OSError) as exc:
                raise DataError(f"{src}: cannot read image ({exc.__class__.__name__})") from None
            return self.add(arr, label, record)
        rel = self._next_name(label, record, src.suffix.lower() or ".png")
        dst = tmp / rel
        if mode == "link":
            try:
                os.link(src, dst)
            except OSError:
                shutil.copyfile(src, dst)
        else:
            shutil.copyfile(src, dst)
        return self._append(rel, label, record)

    def __len__(self) -> int:
        return len(self.records)

    def counts(self) -> dict[str, int]:
        """Images written so far per class name."""
        c = Counter(r["label_index"] for r in self.records)
        return {name: c.get(i, 0) for i, name in enumerate(self.classes)}


__all__ = ["FORMATS", "MANIFEST", "NPZ_NAME", "DatasetWriter", "safe_class_dirname"]
