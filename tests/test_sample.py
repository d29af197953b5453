"""Sampling: torch and ONNX give the same images for one seed; ``sample_to_dataset``; ``ganaug sample``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import pattern_images, run_cli
from PIL import Image

from ganaug.augment import augment_dataset
from ganaug.checkpoint import load_generator_info, save_generator
from ganaug.data import ImageDataset, load_dataset
from ganaug.errors import CheckpointError, UsageError
from ganaug.export import export_generator
from ganaug.fileio import sha256_file
from ganaug.models import build_generator
from ganaug.runtime import OnnxGenerator
from ganaug.sample_spec import SampleSpec
from ganaug.sampling import TorchSampler, open_sampler, sample_to_dataset, write_samples

CLASSES = ["shirt", "bag", "shoe"]


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A dcgan run (weights spread so images are not flat grey) and its ONNX export."""
    root = tmp_path_factory.mktemp("sample")
    torch.manual_seed(0)
    g = build_generator("dcgan", num_classes=3, z_dim=16, image_size=28, channels=1, width=8)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in g.named_parameters():
            p.copy_(
                torch.randn(p.shape, generator=gen) * 0.2
                + (1.0 if name.endswith("weight") and p.dim() == 1 else 0)
            )
    run = root / "run"
    save_generator(run / "weights" / "ema.safetensors", g.eval(), classes=CLASSES, run_id="s", step=3)
    onnx_path = root / "g.onnx"
    export_generator(run, onnx_path)
    return {"run": run, "onnx": onnx_path, "weights": run / "weights" / "ema.safetensors"}


@pytest.mark.parametrize("truncation", [None, 0.7])
def test_torch_and_onnx_give_the_same_images(sources: dict[str, Path], truncation: float | None) -> None:
    ts, og = open_sampler(sources["run"], device="cpu"), open_sampler(sources["onnx"], device="cpu")
    assert isinstance(ts, TorchSampler) and isinstance(og, OnnxGenerator)
    assert ts.classes == og.classes == CLASSES and ts.z_dim == og.z_dim == 16
    assert ts.image_shape == og.image_shape == (28, 28, 1)
    labels = ["bag", 0, 2] * 30
    a = ts.generate(labels, seed=11, batch_size=64, truncation=truncation)
    b = og.generate(labels, seed=11, batch_size=7, truncation=truncation)
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16))
    assert diff.max() <= 1 and (diff == 0).mean() > 0.99
    assert a.std() > 10  # real images, not flat grey
    assert not np.array_equal(a, ts.generate(labels, seed=12, truncation=truncation))
    # Same noise rows whatever the batch size; torch kernels may round the last bit differently.
    small = ts.generate(labels, seed=11, batch_size=5, truncation=truncation)
    assert np.abs(a.astype(np.int16) - small.astype(np.int16)).max() <= 1


def test_torch_sampler_from_weights_file(sources: dict[str, Path]) -> None:
    ts = open_sampler(sources["weights"], device="cpu")
    assert ts.generator_sha256 == load_generator_info(sources["run"]).weights_sha256
    images, labels = ts.generate_per_class(2, classes=["shoe"], seed=0)
    assert images.shape == (2, 28, 28, 1) and labels.tolist() == [2, 2]
    with pytest.raises(UsageError, match="unknown class"):
        ts.generate(["dress"])
    with pytest.raises(UsageError, match="out of range"):
        ts.generate([3])


def _read(out: Path, rec: dict) -> np.ndarray:
    return np.asarray(Image.open(out / rec["path"]))[:, :, None]


def test_sample_to_imagefolder(tmp_path: Path, sources: dict[str, Path]) -> None:
    out = tmp_path / "synth"
    result = sample_to_dataset(
        sources["onnx"], out, 4, classes=["shoe", "shirt"], seed=7, batch_size=3, truncation=0.9
    )
    assert result.count == 8 and result.counts == {"shirt": 4, "bag": 0, "shoe": 4}
    # provenance: the weights' hash (the same as `sample RUN` records), the .onnx file's beside it
    sha = load_generator_info(sources["run"]).weights_sha256
    file_sha = sha256_file(sources["onnx"])
    assert result.generator_sha256 == sha != file_sha
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert [r["z_index"] for r in records] == list(range(8))
    assert [r["label"] for r in records] == ["shoe"] * 4 + ["shirt"] * 4
    for r in records:
        assert r["source"] == "synthetic" and r["generator_sha256"] == sha and r["seed"] == 7
        assert r["generator_file_sha256"] == file_sha
        assert r["transforms"] == [] and r["plugins"] == [] and r["truncation"] == 0.9
        assert (out / r["path"]).is_file()
    # Row z_index of the seed's stream made each file: regenerate and compare pixel for pixel.
    again = OnnxGenerator(sources["onnx"]).generate([r["label"] for r in records], seed=7, truncation=0.9)
    assert all(np.array_equal(_read(out, r), again[r["z_index"]]) for r in records)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["seed"] == 7 and summary["counts"]["shoe"] == 4
    ds = load_dataset(out, cache=False)
    assert ds.classes == ["shirt", "shoe"]  # no empty folder for the class not asked for
    assert len(ds.labels) == 8


def test_sample_npz_torch_matches_onnx(tmp_path: Path, sources: dict[str, Path]) -> None:
    a = sample_to_dataset(sources["run"], tmp_path / "t", 5, fmt="npz", seed=3, device="cpu")
    b = sample_to_dataset(sources["onnx"], tmp_path / "o", 5, fmt="npz", seed=3)
    # one generator, one identity: the weights' hash whether sampled from the run or its ONNX export
    assert a.generator_sha256 == load_generator_info(sources["run"]).weights_sha256 == b.generator_sha256
    with np.load(tmp_path / "t" / "data.npz") as ta, np.load(tmp_path / "o" / "data.npz") as oa:
        assert ta["images"].shape == (15, 28, 28, 1) and np.array_equal(ta["labels"], oa["labels"])
        assert np.abs(ta["images"].astype(int) - oa["images"].astype(int)).max() <= 1
    ds = load_dataset(tmp_path / "t" / "data.npz", cache=False)
    assert ds.classes == CLASSES and np.bincount(ds.labels).tolist() == [5, 5, 5]


def test_seed_none_is_recorded_and_reproducible(tmp_path: Path, sources: dict[str, Path]) -> None:
    r1 = sample_to_dataset(sources["onnx"], tmp_path / "a", 2, fmt="npz", seed=None)
    r2 = sample_to_dataset(sources["onnx"], tmp_path / "b", 2, fmt="npz", seed=r1.seed)
    rec = json.loads((tmp_path / "a" / "manifest.jsonl").read_text().splitlines()[0])
    assert rec["seed"] == r1.seed == r2.seed
    with np.load(tmp_path / "a" / "data.npz") as x, np.load(tmp_path / "b" / "data.npz") as y:
        assert np.array_equal(x["images"], y["images"])


def test_sample_errors_write_nothing(tmp_path: Path, sources: dict[str, Path]) -> None:
    out = tmp_path / "o"
    with pytest.raises(UsageError, match="n_per_class must be >= 0"):
        sample_to_dataset(sources["onnx"], out, -2)
    with pytest.raises(UsageError, match="unknown class 'dress'"):
        sample_to_dataset(sources["onnx"], out, 2, classes=["dress"])
    with pytest.raises(UsageError, match="out of range"):
        sample_to_dataset(sources["onnx"], out, 2, classes=["7"])
    with pytest.raises(CheckpointError, match="not found"):
        sample_to_dataset(tmp_path / "missing.onnx", out, 2)
    assert not out.exists()
    assert sample_to_dataset(sources["onnx"], out, 1, classes=["2"], fmt="npz").counts["shoe"] == 1
    sample_to_dataset(sources["onnx"], tmp_path / "empty", 0, fmt="npz")
    with np.load(tmp_path / "empty" / "data.npz") as data:
        assert data["images"].shape == (0, 28, 28, 1) and data["labels"].shape == (0,)


def test_sample_and_augment_write_synthetic_images_through_one_path(
    tmp_path: Path, sources: dict[str, Path]
) -> None:
    """``sample`` and ``augment`` records come from one Provenance: the documented key order (see
    docs/runtime.md), augment's own keys last; ``write_samples`` (a SampleSpec) is the keyword form."""
    opts = {"seed": 5, "truncation": 1.5, "temperature": 1.2}
    sample_to_dataset(sources["onnx"], tmp_path / "s", 2, fmt="npz", **opts)
    spec = SampleSpec(str(sources["onnx"]), str(tmp_path / "w"), 2, format="npz", **opts)
    write_samples(spec)
    for name in ("manifest.jsonl", "data.npz"):
        assert (tmp_path / "s" / name).read_bytes() == (tmp_path / "w" / name).read_bytes()
    x, y = pattern_images([3, 3, 3], size=28)
    augment_dataset(ImageDataset(x, y, CLASSES), sources["onnx"], tmp_path / "a", strategy=1.0, fmt="npz",
                    **opts)  # fmt: skip
    head = ["path", "label", "label_index", "source", "generator_sha256"]
    tail = ["seed", "z_index", "truncation", "temperature", "transforms", "plugins"]
    sampled = json.loads((tmp_path / "s" / "manifest.jsonl").read_text().splitlines()[0])
    assert list(sampled) == [*head, "generator_file_sha256", *tail]
    augmented = [json.loads(line) for line in (tmp_path / "a" / "manifest.jsonl").read_text().splitlines()]
    synthetic = [r for r in augmented if r["source"] == "synthetic"]
    assert len(synthetic) == 9 and all(list(r) == [*head, "generator_file_sha256", *tail] for r in synthetic)
    assert {(r["seed"], r["truncation"], r["temperature"]) for r in synthetic} == {(5, 1.5, 1.2)}


def test_cli_sample(tmp_path: Path, sources: dict[str, Path]) -> None:
    out = tmp_path / "cli"
    args = ["sample", str(sources["onnx"]), "--out", str(out), "--n-per-class", "3", "--seed", "4"]
    proc = run_cli(*args, "--classes", "bag,shoe", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "wrote 6 images (2 of 3 classes)" in proc.stdout
    assert "sampling" not in proc.stderr  # --quiet: no progress bar
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))[:2] == [
        "bag/synthetic_000000.png",
        "bag/synthetic_000001.png",
    ]
    again = run_cli(*args)
    assert again.returncode == 2 and "not empty" in again.stderr and "--overwrite" in again.stderr

    for bad_args, code, message in [
        (["--n-per-class", "-1"], 2, "'--n-per-class' / '-n': must be an integer in [0,"),
        (["--n-per-class", "1", "--classes", "dress"], 2, "unknown class 'dress'"),
        (["--n-per-class", "1", "--batch-size", "0"], 2, "--batch-size"),
    ]:
        bad = run_cli("sample", str(sources["onnx"]), "--out", str(tmp_path / "x"), *bad_args)
        assert bad.returncode == code and message in bad.stderr and "Traceback" not in bad.stderr
    missing = run_cli("sample", str(tmp_path / "nope.onnx"), "--out", str(tmp_path / "x"), "-n", "1")
    assert missing.returncode == 2 and missing.stderr.startswith("error:")
    assert not (tmp_path / "x").exists()
