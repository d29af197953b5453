"""``ganaug demo`` and its embedded dataset: the README's demo line, run for real in a clean folder."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ganaug.demo import (
    DEMO_COUNTS,
    diversity_ratio,
    embedded_dataset,
    imbalanced_copy,
    next_free_dir,
)
from ganaug.errors import UsageError
from ganaug.report import render_html, render_markdown

REPO = Path(__file__).resolve().parents[1]
ASSET = REPO / "ganaug" / "assets" / "fashion_mnist_small.npz"
FASHION_CLASSES = [
    "T-shirt-top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip
# On a shared 2-core machine several torch threads per process oversubscribe the cores and make
# these tiny models many times slower; one thread keeps the run near its uncontended time.
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def test_embedded_dataset_shapes_and_classes() -> None:
    train, test = embedded_dataset("train"), embedded_dataset("test")
    assert train.images.shape == (2500, 28, 28, 1) and train.images.dtype == np.uint8
    assert test.images.shape == (1000, 28, 28, 1)
    assert train.classes == FASHION_CLASSES == test.classes
    assert set(train.class_counts().values()) == {250}
    assert set(test.class_counts().values()) == {100}
    assert train.labels.dtype == np.int64
    assert 60 < train.images.mean() < 90  # real clothing images, not zeros or noise
    # no test image is also a training image
    train_keys = {img.tobytes() for img in train.images}
    assert not any(img.tobytes() in train_keys for img in test.images)
    with pytest.raises(UsageError, match="split"):
        embedded_dataset("validation")


def test_embedded_files_ship_with_the_license() -> None:
    assert ASSET.stat().st_size < 1.6e6
    notice = (ASSET.parent / "FASHION_MNIST_LICENSE").read_text(encoding="utf-8")
    assert "Zalando SE" in notice and "MIT" in notice and "2017" in notice


def test_script_reproduces_the_asset_byte_for_byte(fashion_mnist_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "again.npz"
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "make_embedded_dataset.py"),
            "--source",
            str(fashion_mnist_dir),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    with np.load(out) as a, np.load(ASSET) as b:
        assert sorted(a.files) == sorted(b.files)
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert out.read_bytes() == ASSET.read_bytes()


def test_imbalanced_copy_has_the_demo_counts() -> None:
    sub = imbalanced_copy(embedded_dataset("train"), DEMO_COUNTS, seed=3)
    assert list(sub.class_counts().values()) == list(DEMO_COUNTS)
    again = imbalanced_copy(embedded_dataset("train"), DEMO_COUNTS, seed=3)
    np.testing.assert_array_equal(sub.images, again.images)


def test_diversity_ratio_flags_collapse() -> None:
    real = embedded_dataset("train")
    test = embedded_dataset("test")
    honest = diversity_ratio(test.images, test.labels, real)
    assert set(honest) == set(real.classes)
    assert all(0.7 < v < 1.4 for v in honest.values()), honest  # real images vary like real images
    collapsed = np.repeat(test.images[test.labels == 3][:1], 32, axis=0)  # one Dress, 32 times
    ratio = diversity_ratio(collapsed, np.full(32, 3), real)
    assert ratio == {"Dress": pytest.approx(0.0, abs=1e-6)}


def test_next_free_dir(tmp_path: Path) -> None:
    base = tmp_path / "demo"
    assert next_free_dir(base) == base
    base.mkdir()
    assert next_free_dir(base) == base  # empty: reused
    (base / "x").write_text("x")
    assert next_free_dir(base) == tmp_path / "demo2"
    (tmp_path / "demo2").mkdir()
    (tmp_path / "demo2" / "y").write_text("y")
    assert next_free_dir(base) == tmp_path / "demo3"


def test_report_renderers_escape_and_keep_tables() -> None:
    doc = [
        ("h1", "Title <x>"),
        ("p", "see [`a&b.md`](a&b.md) and `code`"),
        ("table", ["arm", "acc"], [["real", "70.1"], ["real + GAN", "71.0"]]),
        ("img", "samples.png", "grid"),
    ]
    md = render_markdown(doc)
    assert "| arm | acc |" in md and "| real + GAN | 71.0 |" in md and "![grid](samples.png)" in md
    page = render_html(doc, title="t")
    assert "Title &lt;x&gt;" in page and "<td>real + GAN</td>" in page
    assert '<a href="a&amp;b.md"><code>a&amp;b.md</code></a>' in page


def test_demo_refuses_a_non_empty_out(tmp_path: Path) -> None:
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    proc = subprocess.run(
        [sys.executable, "-m", "ganaug", "demo", "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "not empty" in proc.stderr and proc.stderr.count("\n") == 1
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def _links(markdown: str) -> list[str]:
    return re.findall(r"\]\(([^)\s]+)\)", markdown)


def test_readme_demo_line_quick(tmp_path: Path) -> None:
    """`ganaug demo --quick` in a clean folder: every stage's output exists and the report holds them."""
    work = tmp_path / "fresh"
    work.mkdir()
    env = {**os.environ, **ONE_THREAD}
    proc = subprocess.run(
        [sys.executable, "-m", "ganaug", "demo", "--quick", "--out", "demo"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = work / "demo"
    assert f"report: {Path('demo') / 'report.md'}" in proc.stdout
    report = (out / "report.md").read_text(encoding="utf-8")
    # the result table, with both arms and numbers in it
    assert "| arm | training images | balanced accuracy % | Δ vs real only (points) |" in report
    row = next(line for line in report.splitlines() if line.startswith("| real + GAN"))
    assert re.search(r"\| [+-]\d+\.\d \|$", row), row
    assert "smoke test" in report  # quick mode says its numbers are not evidence
    # every file the report points to exists (sample grid, loss curves, generator, folders)
    links = _links(report)
    for target in ("samples.png", "gan/results.png", "generator.onnx", "augmented", "eval/report.md"):
        assert target in links, target
    for link in links:
        assert (out / link).exists(), link
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.count("<table>") == report.count("\n|---") and '<img src="samples.png"' in page

    # the stages' own outputs are real and consistent with the report
    from ganaug.runtime import OnnxGenerator

    generator = OnnxGenerator(out / "generator.onnx", providers=["CPUExecutionProvider"])
    assert generator.classes == FASHION_CLASSES and generator.image_shape == (28, 28, 1)
    summary = json.loads((out / "augmented" / "summary.json").read_text(encoding="utf-8"))
    assert list(summary["counts"]["before"].values()) == list(DEMO_COUNTS)
    assert summary["strategy"] == "not majority"
    assert set(summary["filters"]) == {"confidence", "near-duplicate"}
    records = [json.loads(x) for x in (out / "augmented" / "manifest.jsonl").read_text().splitlines()]
    synthetic = [r for r in records if r["source"] == "synthetic"]
    assert len(records) - len(synthetic) == sum(DEMO_COUNTS)
    assert 0 < len(synthetic) == sum(summary["counts"]["synthetic"].values())
    assert all(r["generator_file_sha256"] == generator.generator_sha256 for r in synthetic)  # the .onnx
    assert all(r["generator_sha256"] == generator.metadata["weights_sha256"] for r in synthetic)
    demo = json.loads((out / "demo.json").read_text(encoding="utf-8"))
    assert demo["mode"] == "quick" and set(demo["seconds"]) >= {"gan", "export", "uplift", "augment"}
    eval_report = json.loads((out / "eval" / "report.json").read_text(encoding="utf-8"))
    assert demo["headline"]["balanced_accuracy_real"] == pytest.approx(
        eval_report["summary"]["real"]["balanced_accuracy"]["mean"]
    )
    assert (out / "data" / "train_imbalanced.npz").is_file()
    assert 0 < demo["headline"]["diversity_median"] < 2 and "Within-class diversity" in report
