"""Hostile data: property-based tests that feed the readers whatever a disk may hold.

Every load must end in one of two ways: a dataset (bad files skipped with a :class:`DataWarning`
that names them) or a :class:`GanaugError` -- never another exception type from deep inside a
library -- and nothing may be written outside the cache folder. Examples stay tiny and few
(``max_examples`` 25-40) so the file runs in seconds.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import tempfile
import time
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import pattern_images, write_imagefolder
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from PIL import Image

from ganaug.data import DataWarning, ImageDataset, load_dataset
from ganaug.errors import GanaugError

FAST = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture], database=None
)
MAGICS = {
    ".png": b"\x89PNG\r\n\x1a\n",
    ".jpg": b"\xff\xd8\xff\xe0",
    ".bmp": b"BM",
    ".tif": b"II*\x00",
    ".tiff": b"MM\x00*",
    ".webp": b"RIFF\x00\x00\x00\x00WEBPVP8 ",
    ".jpeg": b"",
}


@contextlib.contextmanager
def sandbox(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A fresh (data folder, cache folder) pair per hypothesis example."""
    with tempfile.TemporaryDirectory(dir=tmp_path) as root:
        data, cache = Path(root) / "data", Path(root) / "cache"
        data.mkdir()
        old = os.environ.get("GANAUG_CACHE_DIR")
        os.environ["GANAUG_CACHE_DIR"] = str(cache)
        try:
            yield data, cache
        finally:
            if old is None:
                os.environ.pop("GANAUG_CACHE_DIR", None)
            else:
                os.environ["GANAUG_CACHE_DIR"] = old


def _snapshot(root: Path, cache: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for p in root.rglob("*"):
        if cache in p.parents or p == cache:
            continue
        st_ = p.lstat()
        out[str(p)] = (st_.st_size, st_.st_mtime_ns)
    return out


def load_outcome(path: Path, cache: Path, **kwargs) -> tuple[ImageDataset | GanaugError, list[str]]:
    """Load ``path``; return the dataset or the GanaugError, and the DataWarning messages.

    Any other exception fails the test (it propagates); so does any warning that is not a
    DataWarning, and any file created or changed outside ``cache`` (the sandbox root holds the data).
    """
    root = cache.parent
    before = _snapshot(root, cache)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result: ImageDataset | GanaugError = load_dataset(path, **kwargs)
        except GanaugError as exc:
            result = exc
    assert _snapshot(root, cache) == before, "the loader wrote outside the cache folder"
    others = [
        f"{w.category.__name__}: {w.message}" for w in caught if not issubclass(w.category, DataWarning)
    ]
    assert not others, others
    if isinstance(result, GanaugError):
        message = str(result)
        assert message and "\n" not in message, f"error message must be one line: {message!r}"
    else:
        assert result.images.dtype == np.uint8 and result.images.ndim == 4
        assert len(result.labels) == len(result.images)
        for name in result.classes:
            assert name.strip() and "/" not in name and "\\" not in name and name not in (".", "..")
    return result, [str(w.message) for w in caught if issubclass(w.category, DataWarning)]


def _encode(img: np.ndarray, fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format=fmt)
    return buf.getvalue()


# ---------------------------------------------------------------------------- image files
@FAST
@given(
    ext=st.sampled_from(sorted(MAGICS)),
    body=st.binary(max_size=300),
    with_magic=st.booleans(),
)
def test_random_bytes_under_image_extensions_are_skipped(tmp_path, ext, body, with_magic):
    with sandbox(tmp_path) as (data, cache):
        write_imagefolder(data, [2, 2], size=8)
        bad = data / "class_0" / f"hostile{ext}"
        bad.write_bytes((MAGICS[ext] if with_magic else b"") + body)
        result, warned = load_outcome(data, cache, image_size=8)
        assert isinstance(result, ImageDataset), result
        if len(result) == 4:
            assert any("hostile" in w and "skipped 1 unreadable" in w for w in warned), warned
        else:  # the bytes happened to be a valid image
            assert len(result) == 5


@FAST
@given(
    fmt=st.sampled_from(["PNG", "JPEG", "BMP", "TIFF", "WEBP"]),
    side=st.integers(1, 24),
    rgb=st.booleans(),
    cut=st.floats(0.0, 1.0),
    flips=st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(0, 255)), max_size=6),
    seed=st.integers(0, 2**16),
)
def test_truncated_and_corrupted_images_are_skipped(tmp_path, fmt, side, rgb, cut, flips, seed):
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, size=(side, side, 3) if rgb else (side, side), dtype=np.uint8)
    raw = bytearray(_encode(img, fmt))
    for where, value in flips:
        raw[min(int(where * len(raw)), len(raw) - 1)] = value
    raw = raw[: max(1, int(cut * len(raw)))]
    with sandbox(tmp_path) as (data, cache):
        write_imagefolder(data, [2, 2], size=8)
        (data / "class_1" / f"damaged.{fmt.lower()}").write_bytes(bytes(raw))
        result, warned = load_outcome(data, cache, image_size=8)
        assert isinstance(result, ImageDataset), result
        assert len(result) in (4, 5)
        if len(result) == 4:
            assert any("damaged" in w for w in warned), warned


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return len(payload).to_bytes(4, "big") + kind + payload + zlib.crc32(kind + payload).to_bytes(4, "big")


@FAST
@given(
    width=st.integers(1, 2**31 - 1),
    height=st.integers(10_000, 2**31 - 1),
    kind=st.sampled_from(["png", "bmp"]),
)
def test_oversized_headers_are_refused_without_allocating(tmp_path, width, height, kind):
    """Headers that promise more pixels than Pillow's bomb limit are refused before decoding."""
    assume(width * height > Image.MAX_IMAGE_PIXELS)
    if kind == "png":
        ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
        idat = _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        blob = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + idat + _png_chunk(b"IEND", b"")
    else:  # BITMAPINFOHEADER with a huge size and almost no pixel data
        w, h = min(width, 2**31 - 1), min(height, 2**31 - 1)
        info = (40).to_bytes(4, "little") + w.to_bytes(4, "little", signed=True)
        info += h.to_bytes(4, "little", signed=True) + (1).to_bytes(2, "little") + (24).to_bytes(2, "little")
        info += bytes(24)
        blob = (
            b"BM" + (54 + 16).to_bytes(4, "little") + bytes(4) + (54).to_bytes(4, "little") + info + bytes(16)
        )
    with sandbox(tmp_path) as (data, cache):
        write_imagefolder(data, [2, 2], size=8)
        (data / "class_0" / f"huge.{kind}").write_bytes(blob)
        start = time.perf_counter()
        result, warned = load_outcome(data, cache, image_size=8)
        assert time.perf_counter() - start < 10
        assert isinstance(result, ImageDataset) and len(result) == 4
        assert any("huge" in w for w in warned), warned


# ---------------------------------------------------------------------------- IDX
def _idx(magic: int, dims: list[int], body: bytes) -> bytes:
    return magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims) + body


@FAST
@given(
    img_magic=st.sampled_from([2051, 2049, 2052, 0, 0x0803FFFF]),
    dims=st.lists(st.integers(0, 2**32 - 1) | st.integers(0, 6), min_size=0, max_size=3),
    body_delta=st.integers(-3, 3),
    n_labels=st.integers(0, 6),
    label_values=st.binary(max_size=6),
    gz=st.sampled_from(["none", "gzip", "truncated-gzip", "corrupt-gzip"]),
)
def test_idx_wrong_headers_and_body_lengths(
    tmp_path, img_magic, dims, body_delta, n_labels, label_values, gz
):
    small = all(d <= 6 for d in dims)
    n_body = int(np.prod(dims)) if (dims and small) else 12
    body = bytes((i * 37) % 256 for i in range(max(0, n_body + body_delta)))
    images = _idx(img_magic, dims, body)
    labels = _idx(2049, [n_labels], label_values)
    if gz != "none":
        images = gzip.compress(images, mtime=0)
        if gz == "truncated-gzip":
            images = images[: max(2, len(images) // 2)]
        elif gz == "corrupt-gzip":
            images = images[:12] + bytes(b ^ 0x5A for b in images[12:-8]) + images[-8:]
    suffix = "" if gz == "none" else ".gz"
    with sandbox(tmp_path) as (data, cache):
        (data / f"train-images-idx3-ubyte{suffix}").write_bytes(images)
        (data / f"train-labels-idx1-ubyte{suffix}").write_bytes(
            gzip.compress(labels, mtime=0) if suffix else labels
        )
        result, _ = load_outcome(data / f"train-images-idx3-ubyte{suffix}", cache)
        if isinstance(result, ImageDataset):  # only a fully consistent pair may load
            assert img_magic == 2051 and len(dims) == 3 and body_delta == 0 and gz in ("none", "gzip")
            assert len(result) == dims[0] == n_labels


def test_idx_gzip_bomb_is_refused_before_decompressing(tmp_path, monkeypatch):
    """A small .gz whose header promises far more than the memory limit never gets inflated."""
    monkeypatch.setenv("GANAUG_MAX_DATASET_BYTES", "1000000")
    header = _idx(2051, [4000, 28, 28], b"")
    blob = gzip.compress(header + bytes(4000 * 28 * 28), mtime=0)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "train-images-idx3-ubyte.gz").write_bytes(blob)
    (tmp_path / "d" / "train-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(_idx(2049, [4000], bytes(4000)))
    )
    with pytest.raises(GanaugError, match=r"3\.1 MB.*limit.*GANAUG_MAX_DATASET_BYTES"):
        load_dataset(tmp_path / "d" / "train-images-idx3-ubyte.gz")


# ---------------------------------------------------------------------------- NPZ
ARRAYS = st.one_of(
    st.builds(
        lambda shape, dtype: np.zeros(shape, dtype=dtype),
        st.lists(st.integers(0, 5), min_size=0, max_size=5).map(tuple),
        st.sampled_from([np.uint8, np.int64, np.float32, np.bool_, np.int8, np.uint16, np.complex64]),
    ),
    st.lists(st.integers(-3, 12), min_size=0, max_size=6).map(lambda v: np.array(v, dtype=np.int64)),
    st.lists(st.text(max_size=4), min_size=0, max_size=6).map(lambda v: np.array(v, dtype=str)),
    st.lists(st.integers(0, 3), min_size=1, max_size=4).map(lambda v: np.array(v, dtype=object)),
)


class _Planted:
    """Unpickling this would create a file: the test checks that it never does."""

    marker: Path

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@FAST
@given(
    images=ARRAYS,
    labels=ARRAYS,
    classes=st.none() | ARRAYS,
    extra_pickle=st.booleans(),
    compressed=st.booleans(),
)
def test_npz_wrong_shapes_dtypes_and_object_arrays(
    tmp_path, images, labels, classes, extra_pickle, compressed
):
    with sandbox(tmp_path) as (data, cache):
        marker = data.parent / "unpickled.marker"
        arrays = {"images": images, "labels": labels}
        if classes is not None:
            arrays["classes"] = classes
        if extra_pickle:
            planted = _Planted()
            planted.marker = marker
            arrays["labels"] = np.array([planted], dtype=object)
        path = data / "d.npz"
        (np.savez_compressed if compressed else np.savez)(path, **arrays)
        result, _ = load_outcome(path, cache)
        assert not marker.exists(), "a pickle inside the NPZ was executed"
        if isinstance(result, ImageDataset):
            assert images.dtype == np.uint8 and labels.dtype != object


@FAST
@given(
    head=st.sampled_from([b"", b"PK\x03\x04", b"\x93NUMPY\x01\x00", b"PK\x05\x06" + bytes(18)]),
    body=st.binary(max_size=200),
)
def test_random_bytes_as_npz(tmp_path, head, body):
    with sandbox(tmp_path) as (data, cache):
        (data / "x.npz").write_bytes(head + body)
        result, _ = load_outcome(data / "x.npz", cache)
        assert isinstance(result, GanaugError)


def test_npy_renamed_to_npz_and_zip_with_garbage_members(tmp_path):
    import zipfile

    np.save(tmp_path / "a.npy", np.zeros((2, 4, 4), np.uint8))
    (tmp_path / "a.npz").write_bytes((tmp_path / "a.npy").read_bytes())
    with zipfile.ZipFile(tmp_path / "b.npz", "w") as zf:
        zf.writestr("images.npy", b"garbage")
        zf.writestr("labels.npy", b"\x93NUMPY\x01\x00" + b"\xff" * 40)
    with zipfile.ZipFile(tmp_path / "c.npz", "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("images.npy", b"x" * 1000)
        zf.writestr("labels.npy", b"y" * 1000)
    raw = bytearray((tmp_path / "c.npz").read_bytes())
    raw[40:60] = b"\x00" * 20  # damage the deflate stream (CRC / zlib errors)
    (tmp_path / "c.npz").write_bytes(bytes(raw))
    for name in ("a.npz", "b.npz", "c.npz"):
        result, _ = load_outcome(tmp_path / name, tmp_path / "cache")
        assert isinstance(result, GanaugError), name
        assert name in str(result)


def test_npz_with_a_huge_label_value_is_refused_quickly(tmp_path):
    images, _ = pattern_images([2, 2], size=8)
    np.savez(tmp_path / "d.npz", images=images, labels=np.array([0, 1, 0, 10**12], dtype=np.int64))
    start = time.perf_counter()
    with pytest.raises(GanaugError, match=r"d\.npz: label 1000000000000"):
        load_dataset(tmp_path / "d.npz")
    assert time.perf_counter() - start < 5


# ---------------------------------------------------------------------------- manifests
ENCODINGS = ["utf-8", "utf-8-sig", "latin-1", "utf-16", "utf-16-le", "utf-32", "cp1252"]
LABELS = st.one_of(
    st.sampled_from(
        ["a", "b", "../x", "..", "a/b", "c\\d", " ", "", "é", "\x00", "ok\x00no", "~", ".hidden"]
    ),
    st.text(max_size=6),
)


@FAST
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(["img0.png", "img1.png", "./img0.png", "sub/../img1.png", "missing.png"]), LABELS
        ),
        min_size=0,
        max_size=6,
    ),
    kind=st.sampled_from(["csv", "jsonl"]),
    encoding=st.sampled_from(ENCODINGS),
    blank_lines=st.integers(0, 3),
    nul_at=st.none() | st.floats(0, 1),
    header=st.booleans(),
)
def test_manifests_with_odd_encodings_blank_lines_duplicates_and_traversal(
    tmp_path, rows, kind, encoding, blank_lines, nul_at, header
):
    with sandbox(tmp_path) as (data, cache):
        (data / "sub").mkdir()
        imgs, _ = pattern_images([1, 1], size=8)
        for i in range(2):
            Image.fromarray(imgs[i, ..., 0]).save(data / f"img{i}.png")
        if kind == "csv":
            lines = (["path,label"] if header else []) + [f"{p},{lab}" for p, lab in rows]
        else:
            lines = [json.dumps({"path": p, "label": lab}, ensure_ascii=False) for p, lab in rows]
        lines[1:1] = [""] * blank_lines
        text = "\n".join(lines) + "\n"
        if nul_at is not None:
            cut = int(nul_at * len(text))
            text = text[:cut] + "\x00" + text[cut:]
        try:
            raw = text.encode(encoding)
        except UnicodeEncodeError:
            raw = text.encode("utf-8", errors="replace")
        (data / f"m.{kind}").write_bytes(raw)
        result, _ = load_outcome(data / f"m.{kind}", cache)
        if isinstance(result, ImageDataset):
            assert len(result) <= 2  # duplicates of the same file are read once
            assert set(result.paths) <= {
                str(data / "img0.png"),
                str(data / "img1.png"),
                str(data / "./img0.png"),
                str(data / "sub/../img1.png"),
            }


def test_deeply_nested_json_and_huge_csv_fields_are_data_errors(tmp_path):
    (tmp_path / "deep.jsonl").write_text("[" * 200_000 + "]" * 200_000 + "\n")
    (tmp_path / "wide.csv").write_text("path,label\n" + "a" * 200_000 + ",b\n")
    (tmp_path / "quote.csv").write_text('path,label\n"img.png,b\n')
    for name in ("deep.jsonl", "wide.csv", "quote.csv"):
        result, _ = load_outcome(tmp_path / name, tmp_path / "cache")
        assert isinstance(result, GanaugError), name
        assert name in str(result)


# ---------------------------------------------------------------------------- memory limit
def test_dataset_over_the_memory_limit_is_refused_with_a_way_forward(tmp_path, monkeypatch, cache_dir):
    data = write_imagefolder(tmp_path / "data", [6, 6], size=16)
    monkeypatch.setenv("GANAUG_MAX_DATASET_BYTES", "3000")  # 12 x 16x16x1 = 3072 bytes
    with pytest.raises(GanaugError) as info:
        load_dataset(data)
    message = str(info.value)
    assert "3.1 kB" in message and "--image-size" in message and "subset" in message
    assert "GANAUG_MAX_DATASET_BYTES" in message and "\n" not in message
    with pytest.raises(GanaugError, match="--image-size"):  # refused before decoding anything
        load_dataset(data, image_size=64)
    assert not any(p.is_file() for p in cache_dir.rglob("*.npy"))
    assert len(load_dataset(data, image_size=8)) == 12  # 768 bytes: fits
    images, labels = pattern_images([6, 6], size=16)
    np.savez(tmp_path / "d.npz", images=images, labels=labels)
    with pytest.raises(GanaugError, match=r"d\.npz: .*over the .*limit"):
        load_dataset(tmp_path / "d.npz")
    monkeypatch.setenv("GANAUG_MAX_DATASET_BYTES", "lots")
    with pytest.raises(GanaugError, match="GANAUG_MAX_DATASET_BYTES"):
        load_dataset(data)
