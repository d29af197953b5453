"""DatasetWriter: layout, manifest, atomic publish, overwrite rules, class-name safety, NPZ round trip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganaug.data import load_dataset
from ganaug.dataset_writer import DatasetWriter, safe_class_dirname
from ganaug.errors import DataError, UsageError
from ganaug.output_safety import MARKER, write_marker

CLASSES = ["cat", "dog"]


def _img(value: int, channels: int = 1, size: int = 8) -> np.ndarray:
    img = np.full((size, size, channels), value, dtype=np.uint8)
    img[0, 0] = 255 - value  # not flat, so a round trip is checked pixel by pixel
    return img


def _siblings(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p.name != path.name)


def _manifest(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


def test_imagefolder_layout_manifest_and_reload(tmp_path: Path) -> None:
    real = tmp_path / "real.png"
    Image.fromarray(_img(40)[:, :, 0]).save(real)
    out = tmp_path / "data" / "out"
    with DatasetWriter(out, classes=CLASSES) as w:
        p0 = w.add(_img(10), 0, {"source": "synthetic", "seed": 3, "z_index": 0})
        p1 = w.add(_img(20)[:, :, 0], 1, {"source": "synthetic", "seed": 3, "z_index": 1})
        p2 = w.add_file(real, 1, {"source": "real"}, mode="link")
        p3 = w.add_file(real, 0, {"source": "real"}, mode="copy")
        w.extra_files["summary.json"] = {"counts": w.counts()}
        assert not out.exists()  # nothing visible before the block ends
    assert (p0, p1, p2, p3) == (
        "cat/synthetic_000000.png",
        "dog/synthetic_000000.png",
        "dog/real_000000.png",
        "cat/real_000000.png",
    )
    assert (out / p2).stat().st_ino == real.stat().st_ino  # hard link
    assert (out / p3).stat().st_ino != real.stat().st_ino and (out / p3).read_bytes() == real.read_bytes()
    assert np.array_equal(np.asarray(Image.open(out / p0)), _img(10)[:, :, 0])
    records = _manifest(out)
    assert records[0] == {
        "path": p0,
        "label": "cat",
        "label_index": 0,
        "source": "synthetic",
        "seed": 3,
        "z_index": 0,
    }
    assert [r["label"] for r in records] == ["cat", "dog", "dog", "cat"]
    assert json.loads((out / "summary.json").read_text()) == {"counts": {"cat": 2, "dog": 2}}
    assert _siblings(out) == []  # no temp folders left beside it

    ds = load_dataset(out, cache=False)
    assert ds.classes == CLASSES and np.bincount(ds.labels).tolist() == [2, 2]


def test_npz_round_trip(tmp_path: Path) -> None:
    out = tmp_path / "npz"
    images = np.stack([_img(v, channels=3) for v in (5, 50, 100)])
    with DatasetWriter(out, classes=["a b", "c"], fmt="npz") as w:
        paths = [w.add(img, lab, {"source": "synthetic"}) for img, lab in zip(images, [1, 0, 1], strict=True)]
    assert paths == ["data.npz#0", "data.npz#1", "data.npz#2"]
    with np.load(out / "data.npz", allow_pickle=False) as data:
        assert np.array_equal(data["images"], images)
        assert data["labels"].tolist() == [1, 0, 1] and data["labels"].dtype == np.int64
        assert data["classes"].tolist() == ["a b", "c"]
    ds = load_dataset(out / "data.npz", cache=False)
    assert np.array_equal(ds.images, images) and ds.labels.tolist() == [1, 0, 1]
    assert ds.classes == ["a b", "c"]
    assert [r["label"] for r in _manifest(out)] == ["c", "a b", "c"]


def test_exception_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="boom"), DatasetWriter(out, classes=CLASSES) as w:
        w.add(_img(1), 0, {"source": "synthetic"})
        raise RuntimeError("boom")
    assert not out.exists() and _siblings(out) == []


def test_exception_keeps_previous_dataset(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("keep me")
    write_marker(out, "dataset")  # --overwrite replaces only what ganaug wrote
    with pytest.raises(KeyError), DatasetWriter(out, classes=CLASSES, overwrite=True) as w:
        w.add(_img(1), 0, {})
        raise KeyError("x")
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "old.txt"] and _siblings(out) == []


def test_overwrite_rules(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with DatasetWriter(out, classes=CLASSES) as w:  # an empty folder is fine
        w.add(_img(1), 0, {})
    with pytest.raises(UsageError, match="not empty.*--overwrite"):
        DatasetWriter(out, classes=CLASSES).open()
    with DatasetWriter(out, classes=CLASSES, overwrite=True) as w:
        w.add(_img(2), 1, {"source": "x"})
    assert sorted(p.name for p in out.rglob("*.png")) == ["x_000000.png"]
    assert _siblings(out) == []
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(UsageError, match="not a folder"):
        DatasetWriter(a_file, classes=CLASSES, overwrite=True).open()


def test_class_names_cannot_escape(tmp_path: Path) -> None:
    for bad in ["../up", "a/b", "..", "", "a\\b"]:
        for fmt in ("imagefolder", "npz"):
            with pytest.raises(DataError):
                DatasetWriter(tmp_path / "o", classes=[bad, "ok"], fmt=fmt)
    with pytest.raises(DataError, match="same folder"):
        DatasetWriter(tmp_path / "o", classes=["Cat", "cat"])
    assert safe_class_dirname("t-shirt/top"[:7]) == "t-shirt"
    assert safe_class_dirname('x:y*z?"') == "x_y_z__"
    assert not (tmp_path / "o").exists()


def test_bad_images_and_records(tmp_path: Path) -> None:
    with DatasetWriter(tmp_path / "o", classes=CLASSES, fmt="npz") as w:
        with pytest.raises(DataError, match="uint8"):
            w.add(np.zeros((4, 4, 1), dtype=np.float32), 0, {})
        with pytest.raises(DataError, match="HxWxC"):
            w.add(np.zeros((4, 4, 2), dtype=np.uint8), 0, {})
        with pytest.raises(DataError, match="out of range"):
            w.add(_img(1), 2, {})
        with pytest.raises(ValueError, match="must not set path"):
            w.add(_img(1), 0, {"path": "evil"})
        w.add(_img(1), 0, {})
        with pytest.raises(DataError, match="shape"):
            w.add(_img(1, size=4), 0, {})
    assert len(_manifest(tmp_path / "o")) == 1
    with pytest.raises(RuntimeError, match="already closed"):
        w.add(_img(1), 0, {})
    with pytest.raises(UsageError, match="format"):
        DatasetWriter(tmp_path / "p", classes=CLASSES, fmt="tiff")
