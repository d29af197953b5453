"""``--shard K/N`` for ``ganaug sample``/``augment`` and ``ganaug augment --merge``: the merged parts
equal one unsharded run (same files, bytes, manifest and summary)."""

from __future__ import annotations

import hashlib
import json
import types
from pathlib import Path

import numpy as np
import pytest
from conftest import export_random_generator, run_cli
from PIL import Image

import ganaug.augment as augment_module
from ganaug import hookimpl
from ganaug.augment import augment_dataset
from ganaug.errors import DataError, UsageError
from ganaug.noise import BLOCK_ROWS, sample_noise
from ganaug.sampling import sample_to_dataset
from ganaug.shard import Shard, merge_parts, parse_shard

CLASSES = ["top", "trouser", "pullover"]
SIZE = 12


def hash_tree(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name not in ("summary.json", "config.yaml")  # both name the job's paths
    }


def summary(root: Path) -> dict:
    s = json.loads((root / "summary.json").read_text())
    s.pop("merged_from", None)
    s.pop("output", None)
    return s


@pytest.fixture(scope="module")
def onnx_gen(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_random_generator(tmp_path_factory.mktemp("gen"), CLASSES, SIZE, 1, "test-shard")


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 / 7 / 3 noise images for top / trouser / pullover."""
    root = tmp_path_factory.mktemp("data") / "images"
    rng = np.random.default_rng(0)
    for name, n in {"top": 40, "trouser": 7, "pullover": 3}.items():
        (root / name).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (SIZE, SIZE), dtype=np.uint8)).save(
                root / name / f"{i:03d}.png"
            )
    return root


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import albumentations as A

    path = tmp_path_factory.mktemp("pipe") / "random.yaml"
    A.save(A.Compose([A.RandomBrightnessContrast(p=1.0), A.HorizontalFlip(p=0.5)]), path, data_format="yaml")
    return path


def picky_plugin() -> types.ModuleType:
    """A filter plugin that rejects about a third of the candidates (by their pixel sum)."""
    mod = types.ModuleType("picky_filter")

    @hookimpl
    def ganaug_accept(images, labels, context):
        return images.reshape(len(images), -1).sum(axis=1) % 3 != 0

    mod.ganaug_accept = ganaug_accept
    return mod


# -- parsing and slicing ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, expected", [("0/1", Shard(0, 1)), ("3/4", Shard(3, 4)), (" 1/2 ", Shard(1, 2))]
)
def test_parse_shard(text: str, expected: Shard) -> None:
    assert parse_shard(text) == expected
    assert parse_shard(None) is None


@pytest.mark.parametrize("text", ["4/4", "-1/4", "1", "a/b", "1/0", "1/2/3", ""])
def test_parse_shard_rejects_bad_values(text: str) -> None:
    with pytest.raises(UsageError, match="--shard must be K/N"):
        parse_shard(text)


def test_spans_tile_the_work() -> None:
    for total in (0, 1, 5, 17, 100):
        for count in (1, 2, 3, 7, 20):
            covered = [i for k in range(count) for i in Shard(k, count).span(total)]
            assert covered == list(range(total))


def test_noise_stream_random_access_matches_the_stream() -> None:
    for truncation in (None, 0.7):
        whole = sample_noise(5, BLOCK_ROWS + 40, 6, truncation)
        for start in (0, 3, BLOCK_ROWS - 1, BLOCK_ROWS, BLOCK_ROWS + 7):
            np.testing.assert_array_equal(
                sample_noise(5, 30, 6, truncation, start=start), whole[start : start + 30]
            )


# -- sample ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["imagefolder", "npz"])
def test_sample_shards_merge_to_the_single_run(onnx_gen: Path, tmp_path: Path, fmt: str) -> None:
    single = tmp_path / "single"
    sample_to_dataset(onnx_gen, single, 11, fmt=fmt, seed=3, batch_size=4)
    parts = []
    for k in (2, 0, 1):  # any order
        part = tmp_path / f"part{k}"
        result = sample_to_dataset(onnx_gen, part, 11, fmt=fmt, seed=3, batch_size=4, shard=Shard(k, 3))
        assert 0 < result.count < 33
        parts.append(part)
    merged = tmp_path / "merged"
    merge_parts(parts, merged)
    assert hash_tree(merged) == hash_tree(single)
    assert summary(merged) == summary(single)
    # The parts split the work: together they hold each image once.
    assert sum(sum(json.loads((p / "summary.json").read_text())["counts"].values()) for p in parts) == 33


# -- augment ---------------------------------------------------------------------------------------
def run_augment(data: Path, gen: Path, out: Path, pipeline: Path, shard: Shard | None = None, **kw) -> dict:
    return augment_dataset(
        data,
        gen,
        out,
        strategy=kw.pop("strategy", 2.0),
        transforms=pipeline,
        synthetic_transforms=pipeline,
        filters=kw.pop("filters", ["near-duplicate"]),
        near_duplicate_threshold=0.001,
        plugins=[picky_plugin()],
        seed=5,
        batch_size=6,
        shard=shard,
        **kw,
    )


@pytest.mark.parametrize("fmt, count", [("imagefolder", 3), ("npz", 2), ("imagefolder", 40)])
def test_augment_shards_merge_to_the_single_run(
    onnx_gen: Path,
    images: Path,
    pipeline: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fmt: str,
    count: int,
) -> None:
    monkeypatch.setattr(augment_module, "SYNTHETIC_UNIT", 9)  # several units per class in a tiny test
    input_before = hash_tree(images)
    single = run_augment(images, onnx_gen, tmp_path / "single", pipeline, fmt=fmt)
    assert single["rejected"]["picky_filter"] > 0  # the filter really replaced candidates
    assert sum(single["counts"]["synthetic"].values()) == 100
    parts = [tmp_path / f"p{k}" for k in range(count)]
    for k, part in enumerate(parts):
        run_augment(images, onnx_gen, part, pipeline, shard=Shard(k, count), fmt=fmt)
    merged = merge_parts(parts, tmp_path / "merged")
    assert merged["counts"] == single["counts"]
    assert hash_tree(tmp_path / "merged") == hash_tree(tmp_path / "single")
    assert summary(tmp_path / "merged") == summary(tmp_path / "single")
    assert hash_tree(images) == input_before  # the input is untouched


def test_augment_shortfall_adds_up_across_parts(
    onnx_gen: Path, images: Path, tmp_path: Path, pipeline: Path
) -> None:
    kw = {"max_attempts": 1.0, "strategy": "not majority"}
    single = run_augment(images, onnx_gen, tmp_path / "single", pipeline, **kw)
    assert single["shortfall"]  # a third of the candidates are rejected and none may be redrawn
    parts = [tmp_path / "a", tmp_path / "b"]
    for k, part in enumerate(parts):
        run_augment(images, onnx_gen, part, pipeline, shard=Shard(k, 2), **kw)
    assert merge_parts(parts, tmp_path / "merged")["shortfall"] == single["shortfall"]


def test_augment_class_fidelity_gate_is_the_same_in_every_part(
    onnx_gen: Path, images: Path, tmp_path: Path, pipeline: Path
) -> None:
    # every part probes the generator and decides the gate itself: the decisions must agree
    kw = {"filters": ["class-fidelity"], "min_class_fidelity": 1.0,
          "plugin_options": {"confidence_steps": 3, "fidelity_probe": 16}}  # fmt: skip
    single = run_augment(images, onnx_gen, tmp_path / "single", pipeline, **kw)
    assert single["withheld"] and any(single["counts"]["synthetic"].values())
    parts = [tmp_path / "a", tmp_path / "b"]
    for k, part in enumerate(parts):
        run_augment(images, onnx_gen, part, pipeline, shard=Shard(k, 2), **kw)
    merged = merge_parts(parts, tmp_path / "merged")
    assert merged["withheld"] == single["withheld"] and merged["counts"] == single["counts"]
    assert hash_tree(tmp_path / "merged") == hash_tree(tmp_path / "single")


# -- merge errors ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def three_parts(onnx_gen: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("parts")
    for k in range(3):
        sample_to_dataset(onnx_gen, root / f"p{k}", 5, seed=1, shard=Shard(k, 3))
    sample_to_dataset(onnx_gen, root / "other_seed", 5, seed=2, shard=Shard(2, 3))
    sample_to_dataset(onnx_gen, root / "whole", 5, seed=1)
    return [root / "p0", root / "p1", root / "p2", root / "other_seed", root / "whole"]


@pytest.mark.parametrize(
    "pick, message",
    [
        ([0, 1], r"missing part\(s\) 2/3"),
        ([0, 1, 1, 2], "shard 1/3 given twice"),
        ([0, 1, 3], "part of another job"),
        ([0, 1, 4], "not a shard part"),
    ],
)
def test_merge_refuses_incomplete_or_mixed_parts(
    three_parts: list[Path], tmp_path: Path, pick, message
) -> None:
    with pytest.raises(DataError, match=message):
        merge_parts([three_parts[i] for i in pick], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_merge_refuses_a_folder_that_is_not_a_dataset(three_parts: list[Path], tmp_path: Path) -> None:
    (tmp_path / "junk").mkdir()
    with pytest.raises(DataError, match="no summary.json"):
        merge_parts([three_parts[0], tmp_path / "junk"], tmp_path / "out")
    with pytest.raises(UsageError, match="contains the part"):
        merge_parts(three_parts[:3], three_parts[0].parent)


# -- CLI -------------------------------------------------------------------------------------------
def test_cli_shards_and_merge_equal_one_job(onnx_gen: Path, images: Path, tmp_path: Path) -> None:
    common = ["--generator", str(onnx_gen), "--strategy", "3", "--seed", "4", "-q"]
    env = {"GANAUG_DISABLE_PLUGIN_AUTOLOAD": "1"}
    run_cli("augment", str(images), "--out", str(tmp_path / "single"), *common, env=env, check=True)
    for k in range(2):
        run_cli(
            "augment",
            str(images),
            "--out",
            str(tmp_path / f"p{k}"),
            *common,
            "--shard",
            f"{k}/2",
            env=env,
            check=True,
        )
    merge = run_cli(
        "augment",
        "--merge",
        str(tmp_path / "p1"),
        str(tmp_path / "p0"),
        "--out",
        str(tmp_path / "all"),
        env=env,
    )
    assert merge.returncode == 0, merge.stderr
    assert "wrote 200 images (150 synthetic)" in merge.stdout
    assert hash_tree(tmp_path / "all") == hash_tree(tmp_path / "single")

    bad = run_cli("augment", str(images), "--out", str(tmp_path / "x"), *common, "--shard", "2/2", env=env)
    assert bad.returncode == 2 and "--shard must be K/N" in bad.stderr
    lonely = run_cli("augment", "--merge", str(tmp_path / "p0"), "--out", str(tmp_path / "y"), env=env)
    assert lonely.returncode != 0 and "missing part(s) 1/2" in lonely.stderr
    assert not (tmp_path / "y").exists()
    both = run_cli(
        "augment", "--merge", str(tmp_path / "p0"), "-g", str(onnx_gen), "--out", str(tmp_path / "z"), env=env
    )
    assert both.returncode == 2 and "takes no --generator" in both.stderr


def test_cli_sample_shards(onnx_gen: Path, tmp_path: Path) -> None:
    for k in range(2):
        run_cli(
            "sample",
            str(onnx_gen),
            "--out",
            str(tmp_path / f"s{k}"),
            "-n",
            "6",
            "--shard",
            f"{k}/2",
            "-q",
            check=True,
        )
    run_cli("sample", str(onnx_gen), "--out", str(tmp_path / "single"), "-n", "6", "-q", check=True)
    run_cli(
        "augment",
        "--merge",
        str(tmp_path / "s0"),
        str(tmp_path / "s1"),
        "--out",
        str(tmp_path / "m"),
        check=True,
    )
    assert hash_tree(tmp_path / "m") == hash_tree(tmp_path / "single")
