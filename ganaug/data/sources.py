"""Where the images are: list ImageFolder trees and CSV/JSONL manifests, read IDX and NPZ files.

File-based sources (folder, manifest) produce ``(path, class_name)`` entries that are decoded
later; array sources (IDX, NPZ) produce arrays directly. Every problem message names the path.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import json
import math
import os
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ganaug.errors import DataError, first_line
from ganaug.limits import env_positive_int

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}
IDX_IMAGES_MAGIC = 2051
IDX_LABELS_MAGIC = 2049
FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip


MAX_BYTES_ENV = "GANAUG_MAX_DATASET_BYTES"
_FIXED_MAX_BYTES = 16 * 1024**3


def max_dataset_bytes() -> int:
    """The largest decoded dataset (bytes) ganaug builds in memory.

    ``$GANAUG_MAX_DATASET_BYTES`` when set, else half of the physical memory (16 GiB where that
    cannot be read).
    """
    value = env_positive_int(MAX_BYTES_ENV, "bytes", DataError)
    if value is not None:
        return value
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2)
    except (AttributeError, ValueError, OSError):
        return _FIXED_MAX_BYTES


def _human(n: int) -> str:
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} PB"  # pragma: no cover


def check_dataset_size(count: int, height: int, width: int, channels: int, where: str) -> None:
    """Refuse (DataError) a decoded uint8 array of this shape that exceeds :func:`max_dataset_bytes`."""
    need = int(count) * int(height) * int(width) * int(channels)
    limit = max_dataset_bytes()
    if need > limit:
        raise DataError(
            f"{where}: {count} images of {width}x{height}x{channels} need {_human(need)} in memory, over the "
            f"{_human(limit)} limit; pass a smaller --image-size, train on a subset of the data, "
            f"or raise {MAX_BYTES_ENV} (bytes)"
        )


@dataclass
class FileEntries:
    """Files to decode with their class names, plus problems found while listing."""

    paths: list[str]
    labels: list[str]
    problems: list[str] = field(default_factory=list)
    #: class order from the folder's ``classes.json`` (written by ganaug), when it lists every class
    classes: list[str] | None = None


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


def _inside(root: Path, path: Path) -> bool | None:
    """Whether ``path`` resolves to somewhere under ``root``; None for a symlink loop."""
    try:
        path.resolve().relative_to(root)
    except ValueError:
        return False
    except (RuntimeError, OSError):  # "Symlink loop" (RuntimeError before Python 3.13, then OSError)
        return None
    return True


def check_unique_classes(classes: list[str], where: str) -> None:
    """Refuse two class names that are equal, or map to the same output folder name.

    Folder names are compared as :func:`ganaug.dataset_writer.safe_class_dirname` writes them, case
    folded (``Cat`` and ``cat``, ``a:b`` and ``a_b`` collide on some file systems), so a dataset that
    reads is one ``augment``, ``sample`` and ``export`` can also write.
    """
    from ganaug.dataset_writer import safe_class_dirname

    seen: dict[str, str] = {}
    for name in classes:
        try:
            key = safe_class_dirname(name).casefold()
        except DataError:  # not writable as a folder: the writer says so if it is ever asked to
            key = name.casefold()
        if key in seen:
            first = seen[key]
            same = "twice" if first == name else f"and {name!r} (both become folder {key!r})"
            raise DataError(f"{where}: duplicate class name {first!r} {same}; rename one of them")
        seen[key] = name


def list_imagefolder(root: Path) -> FileEntries:
    """``root/<class>/**/*.<image ext>``; class names are the sorted folder names."""
    root_resolved = root.resolve()
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise DataError(f"{root}: no class folders found (expected {root}/<class>/<image files>)")
    check_unique_classes([d.name for d in class_dirs], str(root))
    entries = FileEntries([], [])
    escaped: list[str] = []
    loops: list[str] = []
    empty: list[str] = []
    for class_dir in class_dirs:
        inside = _inside(root_resolved, class_dir)
        if not inside:
            (escaped if inside is False else loops).append(str(class_dir))
            continue
        found = 0
        for dirpath, dirnames, filenames in os.walk(class_dir, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for fname in sorted(filenames):
                file = Path(dirpath) / fname
                if Path(fname).suffix.lower() not in IMAGE_EXTENSIONS or fname.startswith("."):
                    continue
                if file.is_symlink():
                    inside = _inside(root_resolved, file)
                    if not inside:
                        (escaped if inside is False else loops).append(str(file))
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
    if loops:
        entries.problems.append(f"skipped {len(loops)} symlink loop(s), e.g. {', '.join(loops[:3])}")
    entries.classes = folder_class_order(root, set(entries.labels), entries.problems)
    return entries


CLASS_ORDER_FILE = "classes.json"


def folder_class_order(root: Path, present: set[str], problems: list[str]) -> list[str] | None:
    """The class order in ``root/classes.json`` (a JSON list of names, as ``ganaug sample``/``augment``
    and ``data example`` write it), keeping only the classes that have images; ``None`` (sorted folder
    names) when the file is absent, unreadable or does not name every class folder."""
    file = root / CLASS_ORDER_FILE
    if not file.is_file():
        return None
    try:
        names = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        names = None
    ok = isinstance(names, list) and all(isinstance(n, str) for n in names) and len(set(names)) == len(names)
    if not ok or not present <= set(names):
        problems.append(f"{file}: ignored (not a list of every class folder's name); classes in sorted order")
        return None
    return [n for n in names if n in present]


def _manifest_rows_csv(path: Path) -> list[tuple[int, str, str]]:
    text = _read_text(path)
    reader = csv.reader(text.splitlines())
    try:
        rows = [r for r in reader]
    except csv.Error as exc:
        raise DataError(f"{path}:{reader.line_num}: not valid CSV ({exc})") from None
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
        except (json.JSONDecodeError, RecursionError):
            raise DataError(f"{path}:{lineno}: not valid JSON (or nested too deeply)") from None
        if not isinstance(obj, dict) or "path" not in obj or "label" not in obj:
            raise DataError(f"{path}:{lineno}: expected an object with 'path' and 'label'")
        for key, allowed in (("path", (str,)), ("label", (str, int, float))):
            value = obj[key]
            if isinstance(value, bool) or not isinstance(value, allowed):
                kind = "null" if value is None else type(value).__name__
                want = "a string" if key == "path" else "a string or a number"
                raise DataError(f"{path}:{lineno}: '{key}' is {kind}, expected {want}")
        out.append((lineno, obj["path"], str(obj["label"])))
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
    seen: dict[str, tuple[int, str]] = {}
    duplicates = 0
    missing: list[str] = []
    for lineno, rel, label in rows:
        label = check_label_name(label, f"{path}:{lineno}")
        file = Path(rel) if os.path.isabs(rel) else base / rel
        key = os.path.normpath(str(file))
        if key in seen:
            first_line, first_label = seen[key]
            if first_label != label:
                raise DataError(
                    f"{path}:{lineno}: {rel} is listed again with label {label!r}, "
                    f"but line {first_line} gives it {first_label!r}"
                )
            duplicates += 1
            continue
        seen[key] = (lineno, label)
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
    check_unique_classes(sorted(set(entries.labels)), str(path))
    return entries


#: Deflate cannot expand data by more than about 1032:1; a gzip file promising more is damaged.
_GZIP_MAX_RATIO = 1100


class _IdxFile:
    """An open IDX file (raw or gzip) whose header has been read; the body is read on demand."""

    def __init__(self, path: Path, expect_magic: int, what: str) -> None:
        self.path, self.what = path, what
        with open(path, "rb") as raw:
            self.gz = raw.read(2) == b"\x1f\x8b"
        self.fh = gzip.open(path, "rb") if self.gz else open(path, "rb")  # noqa: SIM115 (close())
        try:
            self.dims = self._header(expect_magic)
        except BaseException:
            self.fh.close()
            raise

    def _header(self, expect_magic: int) -> list[int]:
        start = self.fh.read(4)
        if len(start) < 4:
            raise DataError(f"{self.path}: too short to be an IDX {self.what} file")
        magic = int.from_bytes(start, "big")
        if magic != expect_magic:
            raise DataError(f"{self.path}: IDX magic {magic}, expected {expect_magic} for {self.what}")
        ndim = expect_magic & 0xFF
        head = self.fh.read(4 * ndim)
        if len(head) < 4 * ndim:
            raise DataError(f"{self.path}: truncated IDX header")
        dims = [int.from_bytes(head[4 * i : 4 + 4 * i], "big") for i in range(ndim)]
        if ndim == 3 and len(dims) == 3 and dims[0] and not (dims[1] and dims[2]):
            raise DataError(f"{self.path}: IDX images of {dims[2]}x{dims[1]} pixels (0-pixel images)")
        return dims

    @property
    def size(self) -> int:
        """Body bytes the header promises."""
        return math.prod(self.dims)

    def check_possible(self) -> None:
        """Refuse a header promising more bytes than the file can hold, before reading the body."""
        on_disk = self.path.stat().st_size
        header = 4 + 4 * len(self.dims)
        if not self.gz and on_disk != header + self.size:
            raise DataError(
                f"{self.path}: IDX body has {max(on_disk - header, 0)} bytes, header says {self.size} "
                f"({self.dims})"
            )
        if self.gz and self.size > _GZIP_MAX_RATIO * on_disk:
            raise DataError(
                f"{self.path}: IDX header promises {_human(self.size)} ({self.dims}), more than a "
                f"{_human(on_disk)} gzip file can hold; the file is damaged"
            )

    def read_body(self) -> np.ndarray:
        """The body as uint8 in the header's shape, read in chunks into one buffer (never more)."""
        expected = self.size
        out = np.empty(expected, dtype=np.uint8)  # pages are committed only as they are filled
        view, got = memoryview(out), 0
        try:
            while got < expected:
                n = self.fh.readinto(view[got : got + (1 << 24)])
                if not n:
                    break
                got += n
            extra = self.fh.read(1)  # at the end of a gzip stream this also checks its CRC
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"{self.path}: cannot decompress ({exc})") from None
        if got != expected or extra:
            shown = f"{got}" if got < expected else f"more than {expected}"
            raise DataError(f"{self.path}: IDX body has {shown} bytes, header says {expected} ({self.dims})")
        return out.reshape(self.dims)

    def close(self) -> None:
        self.fh.close()


def _open_idx(path: Path, expect_magic: int, what: str) -> _IdxFile:
    try:
        return _IdxFile(path, expect_magic, what)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: cannot decompress ({exc})") from None


def _read_idx_pair(images: Path, labels: Path) -> tuple[np.ndarray, np.ndarray]:
    """Both headers first (memory limit, matching counts, sizes the files can hold), then bodies."""
    img = _open_idx(images, IDX_IMAGES_MAGIC, "images")
    try:
        lab = _open_idx(labels, IDX_LABELS_MAGIC, "labels")
        try:
            n, h, w = img.dims
            check_dataset_size(n, h, w, 1, str(images))
            if lab.dims[0] != n:
                raise DataError(f"{images}: {n} images but {labels} has {lab.dims[0]} labels")
            img.check_possible()
            lab.check_possible()
            return img.read_body(), lab.read_body().astype(np.int64)
        finally:
            lab.close()
    finally:
        img.close()


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
        names = [check_label_name(n.replace("/", "-"), str(txt)) for n in names]
        check_unique_classes(names, str(txt))
        return names
    if "fashion" in images.resolve().parent.name.lower() and num_classes <= 10:
        return [n.replace("/", "-") for n in FASHION_MNIST_CLASSES]
    return [str(i) for i in range(num_classes)]


def read_idx(images: Path, labels: Path | None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Images (uint8 NHWC) and labels of an IDX pair."""
    labels = labels or default_idx_labels(images)
    arr, lab = _read_idx_pair(images, labels)
    num_classes = int(lab.max()) + 1 if len(lab) else 0
    return arr[..., None], lab, idx_class_names(images, num_classes)


def _check_npz_images_size(npz: np.lib.npyio.NpzFile, path: Path) -> None:
    """Apply the memory limit to 'images' from its .npy header, before inflating it."""
    try:
        with npz.zip.open("images.npy") as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
            else:
                return  # other header versions: np.load checks them itself
    except (ValueError, OSError, KeyError, zipfile.BadZipFile, zlib.error):
        return  # a damaged member is reported when it is loaded
    if dtype == np.uint8 and len(shape) in (3, 4):
        check_dataset_size(shape[0], shape[1], shape[2], shape[3] if len(shape) == 4 else 1, str(path))


def read_npz(path: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``images`` (uint8 N,H,W[,C]), ``labels`` (ints or strings), optional ``classes``."""
    try:
        with open(path, "rb") as fh, contextlib.ExitStack() as stack:  # our handle: closed on every error
            npz = np.load(fh, allow_pickle=False)
            if not isinstance(npz, np.lib.npyio.NpzFile):
                raise DataError(f"{path}: a single .npy array, not an NPZ archive with 'images' and 'labels'")
            stack.enter_context(npz)
            keys = set(npz.files)
            if not {"images", "labels"} <= keys:
                raise DataError(f"{path}: NPZ needs arrays 'images' and 'labels', has {sorted(keys)}")
            _check_npz_images_size(npz, path)
            images, labels = npz["images"], npz["labels"]
            classes = None
            if "classes" in keys:
                raw_classes = npz["classes"]
                if raw_classes.ndim != 1:
                    raise DataError(
                        f"{path}: 'classes' must be a 1-D array of names, got {raw_classes.shape}"
                    )
                classes = [str(c) for c in raw_classes.tolist()]
    except DataError:
        raise
    except ValueError as exc:
        raise DataError(
            f"{path}: NPZ holds object arrays or is damaged ({first_line(exc, None)}); "
            "pickled data is refused"
        ) from None
    except (OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error, NotImplementedError) as exc:
        raise DataError(f"{path}: not a readable NPZ file ({exc.__class__.__name__})") from None
    if images.dtype != np.uint8:
        raise DataError(f"{path}: 'images' must be uint8, got {images.dtype}")
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3, 4):
        raise DataError(f"{path}: 'images' must be N,H,W or N,H,W,C with C in 1/3/4, got {images.shape}")
    if len(images) and not (images.shape[1] and images.shape[2]):
        raise DataError(f"{path}: 'images' are {images.shape[2]}x{images.shape[1]} pixels (0-pixel images)")
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
        if classes is None and n > len(labels):
            raise DataError(
                f"{path}: label {n - 1} with only {len(labels)} images (labels must be 0..K-1, "
                "or store the names in 'classes')"
            )
        classes = classes or [str(i) for i in range(n)]
        if n > len(classes):
            raise DataError(f"{path}: label {n - 1} but only {len(classes)} classes")
    else:
        raise DataError(f"{path}: 'labels' must be integers or strings, got {labels.dtype}")
    classes = [check_label_name(c, str(path)) for c in classes]
    check_unique_classes(classes, str(path))
    return np.ascontiguousarray(images), labels, classes
