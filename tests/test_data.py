"""The data layer: every reader, the cache, and every kind of bad input."""

from __future__ import annotations

import gzip
import json
import os
import warnings

import numpy as np
import pytest
from conftest import pattern_images, run_cli, tree_digest, write_imagefolder
from PIL import Image

from ganaug.data import DataWarning, inspect_dataset, load_dataset
from ganaug.errors import DataError


def _write_idx(folder, images, labels, gz=True):
    folder.mkdir(parents=True, exist_ok=True)
    h, w = images.shape[1:3]
    img_bytes = (2051).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in (len(images), h, w))
    img_bytes += images[..., 0].tobytes()
    lab_bytes = (2049).to_bytes(4, "big") + len(labels).to_bytes(4, "big") + labels.astype(np.uint8).tobytes()
    suffix = ".gz" if gz else ""
    op = gzip.compress if gz else (lambda b: b)
    (folder / f"train-images-idx3-ubyte{suffix}").write_bytes(op(img_bytes))
    (folder / f"train-labels-idx1-ubyte{suffix}").write_bytes(op(lab_bytes))
    return folder / f"train-images-idx3-ubyte{suffix}"


def test_imagefolder_reads_classes_counts_and_paths(tmp_path):
    root = write_imagefolder(tmp_path / "data", [5, 3, 2], size=12)
    ds = load_dataset(root)
    assert ds.classes == ["class_0", "class_1", "class_2"]
    assert ds.images.shape == (10, 12, 12, 1) and ds.images.dtype == np.uint8
    assert ds.class_counts() == {"class_0": 5, "class_1": 3, "class_2": 2}
    assert ds.paths is not None and all(os.path.isfile(p) for p in ds.paths)
    expected, _ = pattern_images([5, 3, 2], size=12)
    assert np.array_equal(ds.images, expected)


def test_resize_and_channel_policy(tmp_path):
    root = write_imagefolder(tmp_path / "data", [2, 2], size=12, channels=3)
    # one odd-sized grayscale image: majority is RGB, so it is converted, and resize makes sizes equal
    Image.new("L", (20, 10), 128).save(root / "class_0" / "odd.png")
    with pytest.raises(DataError, match="different sizes.*--image-size"):
        load_dataset(root)
    ds = load_dataset(root, image_size=8)
    assert ds.images.shape == (5, 8, 8, 3)
    gray = load_dataset(root, image_size=8, channels=1)
    assert gray.images.shape == (5, 8, 8, 1)


def test_idx_gz_and_raw_and_explicit_labels(tmp_path):
    images, labels = pattern_images([4, 4, 4], size=10)
    for gz in (True, False):
        path = _write_idx(tmp_path / f"idx{gz}", images, labels, gz=gz)
        ds = load_dataset(path)
        assert np.array_equal(ds.images, images) and np.array_equal(ds.labels, labels)
        assert ds.classes == ["0", "1", "2"]
    moved = tmp_path / "elsewhere-labels"
    os.replace(tmp_path / "idxTrue" / "train-labels-idx1-ubyte.gz", moved)
    with pytest.raises(DataError, match="labels file .* not found; pass --labels"):
        load_dataset(tmp_path / "idxTrue" / "train-images-idx3-ubyte.gz")
    ds = load_dataset(tmp_path / "idxTrue" / "train-images-idx3-ubyte.gz", labels=moved)
    assert len(ds) == 12


def test_idx_bad_header(tmp_path):
    path = tmp_path / "bad-images-idx3-ubyte"
    path.write_bytes((1234).to_bytes(4, "big") + b"\0" * 20)
    (tmp_path / "bad-labels-idx1-ubyte").write_bytes((2049).to_bytes(4, "big") + b"\0" * 4)
    with pytest.raises(DataError, match="IDX magic 1234"):
        load_dataset(path)


def test_npz_with_string_labels_and_classes(tmp_path):
    images, labels = pattern_images([3, 3], size=8, channels=3)
    path = tmp_path / "d.npz"
    np.savez(path, images=images, labels=np.array(["b", "a"])[labels], classes=np.array(["b", "a"]))
    ds = load_dataset(path)
    assert ds.classes == ["b", "a"] and np.array_equal(ds.labels, labels)
    np.savez(tmp_path / "float.npz", images=images.astype(np.float32), labels=labels)
    with pytest.raises(DataError, match="must be uint8"):
        load_dataset(tmp_path / "float.npz")
    np.savez(tmp_path / "short.npz", images=images, labels=labels[:-1])
    with pytest.raises(DataError, match="1-D with 6 entries"):
        load_dataset(tmp_path / "short.npz")


def test_csv_and_jsonl_manifests_relative_paths(tmp_path):
    root = write_imagefolder(tmp_path / "imgs", [3, 2], size=8)
    files = sorted(root.rglob("*.png"))
    csv_lines = ["path,label"] + [f"imgs/{p.parent.name}/{p.name},{p.parent.name}" for p in files]
    (tmp_path / "m.csv").write_text("\n".join(csv_lines) + "\n\n")
    jsonl = [json.dumps({"path": f"imgs/{p.parent.name}/{p.name}", "label": p.parent.name}) for p in files]
    (tmp_path / "m.jsonl").write_text("\n".join(jsonl))
    a, b = load_dataset(tmp_path / "m.csv"), load_dataset(tmp_path / "m.jsonl")
    assert a.class_counts() == b.class_counts() == {"class_0": 3, "class_1": 2}
    assert np.array_equal(a.images, b.images)


@pytest.mark.parametrize("label", ["../x", "a/b", "..", "  "])
def test_manifest_path_like_labels_refused(tmp_path, label):
    write_imagefolder(tmp_path / "imgs", [1, 1], size=8)
    (tmp_path / "m.csv").write_text(
        f"path,label\nimgs/class_0/img_0000.png,{label}\nimgs/class_1/img_0001.png,ok\n"
    )
    with pytest.raises(DataError, match=r"m\.csv:2: label .* not a valid class name"):
        load_dataset(tmp_path / "m.csv")


def test_manifest_missing_file_names_it(tmp_path):
    (tmp_path / "m.csv").write_text("path,label\nnope.png,a\n")
    with pytest.raises(DataError, match=r"nope\.png \(line 2\)"):
        load_dataset(tmp_path / "m.csv")


def test_bad_files_are_skipped_with_a_counted_warning_or_refused_when_strict(tmp_path, cache_dir):
    root = write_imagefolder(tmp_path / "data", [4, 4], size=8)
    (root / "class_0" / "empty.png").write_bytes(b"")
    (root / "class_0" / "text.jpg").write_text("not an image at all")
    good = (root / "class_1" / "img_0004.png").read_bytes()
    (root / "class_1" / "truncated.png").write_bytes(good[: len(good) // 2])
    with pytest.warns(DataWarning, match=r"skipped 3 unreadable image file\(s\):.*empty\.png"):
        ds = load_dataset(root)
    assert len(ds) == 8
    before = sorted(cache_dir.rglob("*"))
    (root / "class_0" / "another-bad.png").write_bytes(b"\x89PNG")  # new file list: no cache hit
    with pytest.raises(DataError, match="strict mode"):
        load_dataset(root, strict=True)
    assert sorted(cache_dir.rglob("*")) == before  # nothing written on failure


def test_decompression_bomb_refused(tmp_path, monkeypatch):
    root = write_imagefolder(tmp_path / "data", [2, 2], size=8)
    Image.new("L", (100, 100)).save(root / "class_0" / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 100x100 > 2x the limit: Pillow refuses it
    with pytest.warns(DataWarning, match="bomb.png: refused: decompression bomb"):
        ds = load_dataset(root, cache=False)
    assert len(ds) == 4


def test_empty_class_folder_and_single_class_errors(tmp_path, cache_dir):
    root = write_imagefolder(tmp_path / "data", [2, 2], size=8)
    (root / "class_empty").mkdir()
    with pytest.raises(DataError, match="class folder.*no images: class_empty"):
        load_dataset(root)
    single = write_imagefolder(tmp_path / "single", [3], size=8)
    with pytest.raises(DataError, match="only one class.*at least 2"):
        load_dataset(single)
    assert not any(p.is_file() for p in cache_dir.rglob("*"))


def test_symlinks_leaving_the_root_are_not_followed(tmp_path):
    outside = write_imagefolder(tmp_path / "outside", [2, 2], size=8)
    root = write_imagefolder(tmp_path / "data", [2, 2], size=8)
    (root / "class_0" / "escape.png").symlink_to(outside / "class_0" / "img_0000.png")
    (root / "class_linked").symlink_to(outside / "class_1", target_is_directory=True)
    with pytest.warns(DataWarning, match=r"2 symlink\(s\) leaving"):
        ds = load_dataset(root)
    assert len(ds) == 4 and ds.classes == ["class_0", "class_1"]


def test_missing_path_and_unknown_format(tmp_path):
    with pytest.raises(DataError, match="data path not found: .*nowhere"):
        load_dataset(tmp_path / "nowhere")
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(DataError, match="cannot tell the data format"):
        load_dataset(tmp_path / "x.txt")


def test_cache_is_used_and_invalidated_by_mtime(tmp_path, cache_dir):
    root = write_imagefolder(tmp_path / "data", [3, 3], size=8)
    first = load_dataset(root)
    assert any(cache_dir.rglob("images.npy"))
    # corrupting the source after caching proves the second load came from the cache
    target = root / "class_0" / "img_0000.png"
    stat = target.stat()
    second = load_dataset(root)
    assert np.array_equal(first.images, second.images)
    Image.new("L", (8, 8), 255).save(target)
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    third = load_dataset(root)
    assert (third.images[0] == 255).all()


def test_inspect_report_fields(tmp_path):
    root = write_imagefolder(tmp_path / "data", [6, 2], size=8)
    report = inspect_dataset(root)
    assert report["num_images"] == 8 and report["num_classes"] == 2
    assert report["class_counts"] == {"class_0": 6, "class_1": 2}
    assert report["image_sizes"] == {"8x8": 8} and report["channels"] == {"1": 8}
    assert report["imbalance_ratio"] == 3.0 and report["problems"] == []


def test_cli_inspect_fashion_mnist(fashion_mnist_dir):
    path = str(fashion_mnist_dir / "train-images-idx3-ubyte.gz")
    proc = run_cli("data", "inspect", path, "--json", check=True)
    report = json.loads(proc.stdout)
    assert report["num_images"] == 60000 and report["num_classes"] == 10
    assert set(report["class_counts"].values()) == {6000}
    assert report["image_sizes"] == {"28x28": 60000} and report["channels"] == {"1": 60000}
    assert report["class_counts"]["Ankle boot"] == 6000


def test_imagefolder_and_csv_from_fashion_mnist(tmp_path, fashion_mnist_dir):
    ds = load_dataset(fashion_mnist_dir / "t10k-images-idx3-ubyte.gz").sample_per_class(5, seed=1)
    root = tmp_path / "fm"
    rows = ["path,label"]
    for i, (img, lab) in enumerate(zip(ds.images, ds.labels, strict=True)):
        name = ds.classes[lab]
        (root / name).mkdir(parents=True, exist_ok=True)
        Image.fromarray(img[..., 0]).save(root / name / f"{i}.png")
        rows.append(f"fm/{name}/{i}.png,{name}")
    (tmp_path / "fm.csv").write_text("\n".join(rows))
    for source in (root, tmp_path / "fm.csv"):
        report = json.loads(run_cli("data", "inspect", str(source), "--json", check=True).stdout)
        assert report["num_images"] == 50 and set(report["class_counts"].values()) == {5}
        assert report["image_sizes"] == {"28x28": 50}


def test_cli_errors_are_one_line_exit_1_for_bad_data_and_2_for_a_missing_input(tmp_path):
    missing = run_cli("data", "inspect", str(tmp_path / "missing"))
    assert missing.returncode == 2  # bad usage: the named input does not exist
    assert missing.stderr.strip() == f"error: data path not found: {tmp_path / 'missing'}"
    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04 not really a zip")
    broken = run_cli("data", "inspect", str(tmp_path / "broken.npz"))
    assert broken.returncode == 1 and len(broken.stderr.strip().splitlines()) == 1
    assert broken.stderr.startswith(f"error: {tmp_path / 'broken.npz'}: ")


def test_python_api_warnings_do_not_break_cli(tmp_path):
    root = write_imagefolder(tmp_path / "data", [2, 2], size=8)
    (root / "class_0" / "bad.png").write_bytes(b"xx")
    before = tree_digest(root)
    proc = run_cli("data", "inspect", str(root))
    assert proc.returncode == 0 and "skipped 1 unreadable" in proc.stderr
    assert tree_digest(root) == before
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DataError, match="strict"):
            load_dataset(root, strict=True)
