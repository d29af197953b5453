"""Sampling temperature (latent standard deviation): the noise stream, ONNX metadata default, export,
sampling/augment plumbing, and the ``temperature``/``checkpoint`` fields of mixing policies."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import (
    export_random_generator,
    pattern_images,
    rewrite_onnx_props,
    run_cli,
    save_random_generator,
    uplift_report_skeleton,
)

from ganaug.augment import augment_dataset
from ganaug.data import ImageDataset
from ganaug.errors import CheckpointError, UsageError
from ganaug.eval.arms import _synthesize
from ganaug.eval.policy import MixPolicy
from ganaug.eval.tune import augment_options, load_policy_file, write_policy_file
from ganaug.noise import BLOCK_ROWS, NoiseStream, sample_noise
from ganaug.runtime import OnnxGenerator
from ganaug.sampling import TorchSampler, sample_to_dataset

CLASSES = ["c0", "c1", "c2"]
SIZE = 8

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def gens(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An ONNX export (no temperature given: 1.0), the same file with ganaug.temperature 1.5 and
    without the key (an older export), and a run directory with one EMA snapshot at step 4."""
    root = tmp_path_factory.mktemp("temperature")
    onnx_path = export_random_generator(root / "gen", CLASSES, SIZE, 0, "t")
    run = root / "run"
    save_random_generator(run / "weights" / "ema.safetensors", CLASSES, SIZE, 0, "t")
    snap = save_random_generator(
        run / "weights" / "snapshots" / "ema_step_000004.safetensors", CLASSES, SIZE, 1, "t"
    )
    index = {
        "snapshots": [{"step": 4, "file": "snapshots/ema_step_000004.safetensors", "val_fid": 1.0}],
        "best": 4,
    }
    (run / "weights" / "snapshots.json").write_text(json.dumps(index))
    return {
        "onnx": onnx_path,
        "hot": rewrite_onnx_props(onnx_path, root / "hot.onnx", temperature="1.5"),
        "old": rewrite_onnx_props(onnx_path, root / "old.onnx", temperature=None),
        "weights": root / "gen" / "g.safetensors",
        "run": run,
        "snapshot": snap,
    }


# -- the noise stream ------------------------------------------------------------------------------
def test_temperature_scales_the_latent_std() -> None:
    for t in (0.5, 1.0, 1.7):
        z = sample_noise(3, 20_000, 8, temperature=t)
        assert z.dtype == np.float32 and abs(float(z.std()) - t) < 0.02 * t
    # truncation applies to the standard normal first, then the scale
    base = sample_noise(3, 3000, 8, truncation=0.8)
    hot = sample_noise(3, 3000, 8, truncation=0.8, temperature=2.0)
    assert np.array_equal(hot, base * np.float32(2.0)) and np.abs(hot).max() <= 1.6


def test_temperature_one_is_the_old_stream_bit_for_bit() -> None:
    n = BLOCK_ROWS + 5
    old = np.concatenate(
        [np.random.default_rng([7, b]).standard_normal((BLOCK_ROWS, 8), dtype=np.float32) for b in (0, 1)]
    )[:n]
    assert np.array_equal(sample_noise(7, n, 8), old)
    assert np.array_equal(sample_noise(7, n, 8, temperature=1.0), old)
    assert np.array_equal(sample_noise(7, n, 8, temperature=1), old)


def test_same_seed_and_temperature_give_the_same_rows_in_any_chunking() -> None:
    whole = sample_noise(5, 2100, 4, temperature=1.3)
    assert np.array_equal(whole, sample_noise(5, 2100, 4, temperature=1.3))
    stream = NoiseStream(5, 4, temperature=1.3, start=1000)
    assert np.array_equal(np.concatenate([stream.take(30), stream.take(70)]), whole[1000:1100])
    assert not np.array_equal(whole, sample_noise(5, 2100, 4, temperature=1.2))


@pytest.mark.parametrize("bad", [0, -1.0, 4.01, float("nan"), float("inf"), True, "1.2"])
def test_out_of_range_temperature_is_a_one_line_error(gens: dict[str, Path], bad: object) -> None:
    with pytest.raises(ValueError, match=r"temperature must be a number in \(0, 4\]"):
        NoiseStream(0, 4, temperature=bad)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match=r"temperature must be a number in \(0, 4\]") as info:
        OnnxGenerator(gens["onnx"]).generate([0], seed=0, temperature=bad)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


# -- ONNX metadata default ---------------------------------------------------------------------------
def test_onnx_metadata_default_is_honoured_and_overridable(gens: dict[str, Path]) -> None:
    plain, hot, old = (OnnxGenerator(gens[k]) for k in ("onnx", "hot", "old"))
    assert plain.metadata["temperature"] == 1.0 and plain.default_temperature == 1.0
    assert hot.default_temperature == 1.5 and "temperature" not in old.metadata
    labels = [0, 1, 2] * 20
    z15 = sample_noise(9, len(labels), hot.z_dim, temperature=1.5)
    assert np.array_equal(hot.generate(labels, seed=9), hot.generate_from_noise(z15, labels))
    assert np.array_equal(hot.generate(labels, seed=9, temperature=1.0), old.generate(labels, seed=9))
    assert np.array_equal(plain.generate(labels, seed=9), old.generate(labels, seed=9))
    assert not np.array_equal(hot.generate(labels, seed=9), old.generate(labels, seed=9))
    images, _ = hot.generate_per_class(4, seed=2, temperature=0.5)
    assert np.array_equal(images, old.generate_per_class(4, seed=2, temperature=0.5)[0])
    # torch sampling of the same weights at the same temperature: the same images (rounding aside)
    torch_images = TorchSampler(gens["weights"]).generate(labels, seed=9, temperature=1.5)
    assert np.abs(torch_images.astype(int) - hot.generate(labels, seed=9).astype(int)).max() <= 1


@pytest.mark.parametrize("raw", ["0", "9", "true", '"warm"', "[1.0]"])
def test_hostile_metadata_temperature_is_refused(gens: dict[str, Path], tmp_path: Path, raw: str) -> None:
    bad = rewrite_onnx_props(gens["onnx"], tmp_path / "bad.onnx", temperature=raw)
    with pytest.raises(CheckpointError, match=r"ganaug.temperature must be a number in \(0, 4\]"):
        OnnxGenerator(bad)


def test_cli_export_writes_temperature_and_refuses_out_of_range(
    gens: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "g.onnx"
    proc = run_cli("export", str(gens["weights"]), "--out", str(out), "--temperature", "1.25", "-q")
    assert proc.returncode == 0, proc.stderr
    assert OnnxGenerator(out).default_temperature == 1.25
    for bad in ("4.5", "nan"):
        refused = tmp_path / f"bad_{bad}.onnx"
        proc = run_cli("export", str(gens["weights"]), "--out", str(refused), "--temperature", bad)
        assert proc.returncode == 2 and not refused.exists()
        lines = [line for line in proc.stderr.splitlines() if "temperature" in line]
        assert len(lines) == 1 and "(0, 4]" in lines[0], proc.stderr


# -- sample and augment --------------------------------------------------------------------------------
def test_sample_to_dataset_records_and_applies_the_temperature(gens: dict[str, Path], tmp_path: Path) -> None:
    one = sample_to_dataset(gens["onnx"], tmp_path / "one", 3, fmt="npz", seed=4)
    hot = sample_to_dataset(gens["hot"], tmp_path / "hot", 3, fmt="npz", seed=4)
    forced = sample_to_dataset(gens["hot"], tmp_path / "forced", 3, fmt="npz", seed=4, temperature=1.0)
    manifests = {k: (tmp_path / k / "manifest.jsonl").read_text() for k in ("one", "hot", "forced")}
    assert '"temperature"' not in manifests["one"] and '"temperature": 1.5' in manifests["hot"]
    assert json.loads((tmp_path / "hot" / "summary.json").read_text())["temperature"] == 1.5
    arrays = {k: np.load(tmp_path / k / "data.npz")["images"] for k in ("one", "hot", "forced")}
    assert np.array_equal(arrays["one"], arrays["forced"]) and not np.array_equal(
        arrays["one"], arrays["hot"]
    )
    assert one.count == hot.count == forced.count == 9


def test_augment_temperature_changes_samples_and_is_recorded(gens: dict[str, Path], tmp_path: Path) -> None:
    x, y = pattern_images([4, 4, 4], size=SIZE)
    data = ImageDataset(x, y, CLASSES)
    opts = {"strategy": 1.0, "fmt": "npz", "real": "none", "seed": 1}
    base = augment_dataset(data, gens["onnx"], tmp_path / "a", **opts)
    warm = augment_dataset(data, gens["onnx"], tmp_path / "b", temperature=1.5, **opts)
    from_meta = augment_dataset(data, gens["hot"], tmp_path / "c", **opts)
    assert "temperature" not in base and warm["temperature"] == from_meta["temperature"] == 1.5
    imgs = {k: np.load(tmp_path / k / "data.npz")["images"] for k in "abc"}
    assert np.array_equal(imgs["b"], imgs["c"]) and not np.array_equal(imgs["a"], imgs["b"])


# -- mixing policies ---------------------------------------------------------------------------------
def test_policy_fields_parse_validate_and_enter_the_synthetic_key() -> None:
    p = MixPolicy.parse("name=warm,strategy=1,temperature=1.2,checkpoint=best")
    assert p.temperature == 1.2 and p.checkpoint == "best" and p.picks_snapshot()
    from ganaug.report import describe_policy_fields

    assert "temperature 1.2, snapshot best" in describe_policy_fields(dataclasses.asdict(p))
    assert MixPolicy.parse("name=s,checkpoint=3000").checkpoint == 3000
    assert MixPolicy(name="s", checkpoint="3000").checkpoint == 3000
    keys = {
        MixPolicy(name="a").synthetic_key(),
        MixPolicy(name="b", temperature=1.2).synthetic_key(),
        MixPolicy(name="c", checkpoint="best").synthetic_key(),
        MixPolicy(name="d", checkpoint=4).synthetic_key(),
    }
    assert len(keys) == 4
    assert MixPolicy(name="e", checkpoint="last").synthetic_key() == MixPolicy(name="f").synthetic_key()
    for bad, what in (("temperature=0", "temperature"), ("temperature=5", "temperature"),
                      ("checkpoint=newest", "checkpoint"), ("checkpoint=-3", "checkpoint")):  # fmt: skip
        with pytest.raises(UsageError, match=f"policy 'x': {what}") as info:
            MixPolicy.parse(f"name=x,{bad}")
        assert "\n" not in str(info.value)
    ctl = MixPolicy(name="s", soft_labels=True, temperature=1.2, checkpoint="best").control()
    assert ctl.temperature is None and ctl.checkpoint is None


def test_policy_file_carries_temperature_and_checkpoint(tmp_path: Path) -> None:
    policy = MixPolicy(name="tuned", strategy=0.5, temperature=1.3, checkpoint=4)
    path = write_policy_file(tmp_path / "tuned_policy.json", policy)
    assert load_policy_file(path) == policy
    body = json.loads(path.read_text())
    assert body["augment"] == augment_options(policy)
    assert body["augment"]["temperature"] == 1.3 and body["augment"]["checkpoint"] == 4


def test_checkpoint_field_selects_the_snapshot(gens: dict[str, Path], tmp_path: Path) -> None:
    run, snap = gens["run"], gens["snapshot"]
    assert MixPolicy(name="b", checkpoint="best").generator_for(run) == snap
    assert MixPolicy(name="s", checkpoint=4).generator_for(run) == snap
    assert MixPolicy(name="l", checkpoint="last").generator_for(gens["onnx"]) == gens["onnx"]
    with pytest.raises(UsageError, match="policy 'b': checkpoint=best needs a run directory") as info:
        MixPolicy(name="b", checkpoint="best").generator_for(gens["onnx"])
    assert "\n" not in str(info.value)
    # the uplift/tune arms draw the policy's synthetic images from that snapshot at its temperature
    x, y = pattern_images([4, 4, 4], size=SIZE)
    real = ImageDataset(x, y, CLASSES)
    policy = MixPolicy(name="p", strategy=1.0, checkpoint=4, temperature=1.3)
    syn = _synthesize(policy, real, run, tmp_path / "syn", 0, None, False, lambda _m: None)  # type: ignore[arg-type]
    opts = {"strategy": 1.0, "fmt": "npz", "real": "none", "seed": 0}
    augment_dataset(real, snap, tmp_path / "direct", temperature=1.3, **opts)
    augment_dataset(real, run, tmp_path / "last", temperature=1.3, **opts)
    assert np.array_equal(syn.images, np.load(tmp_path / "direct" / "data.npz")["images"])
    assert not np.array_equal(syn.images, np.load(tmp_path / "last" / "data.npz")["images"])
    assert syn.info["snapshot_step"] == 4 and syn.info["temperature"] == 1.3  # what the report shows
    plain = MixPolicy(name="l", strategy=1.0)  # no checkpoint: the run's last weights
    last = _synthesize(plain, real, run, tmp_path / "l", 0, None, False, lambda _m: None)  # type: ignore[arg-type]
    assert "snapshot_step" not in last.info and last.info["temperature"] == 1.0


def test_uplift_report_names_the_snapshot_each_seed_resolved_to() -> None:
    from ganaug.report import uplift_markdown

    seeds = [
        {"seed": s, "gan": {"temperature": 0.6}, "arms": {
            "real": {"n_train": 10, "train_seconds": 1.0},
            "b": {"n_train": 20, "train_seconds": 1, "synthetic": {"snapshot_step": step, "temperature": t}},
        }}
        for s, step, t in ((0, 10000, 0.6), (1, 3000, 0.8))
    ]  # fmt: skip
    md = uplift_markdown(uplift_report_skeleton(seeds, [{"name": "b", "strategy": 1, "checkpoint": "best"}]))
    assert "- `b`: real subset + GAN samples — strategy 1, snapshot best. Drawn from step 10000 / 3000 at " \
        "temperature 0.6 / 0.8 (seeds 0, 1)." in md  # fmt: skip
    assert "unless a policy names one or a snapshot (which samples at its own)" in md


def test_uplift_refuses_a_snapshot_policy_on_an_onnx_generator_before_any_work(
    gens: dict[str, Path], tmp_path: Path
) -> None:
    from ganaug.evaluate import uplift

    x, y = pattern_images([6, 6, 6], size=SIZE)
    data = ImageDataset(x, y, CLASSES)
    with pytest.raises(UsageError, match="checkpoint=best needs a run directory"):
        uplift(data, data, per_class_n=4, seeds=1, out_dir=tmp_path / "u", generator=gens["onnx"],
               policies=[MixPolicy(name="b", checkpoint="best")], quality=False)  # fmt: skip
    assert not (tmp_path / "u").exists()


def test_tune_runs_a_temperature_candidate_and_shares_identical_controls(
    gens: dict[str, Path], tmp_path: Path
) -> None:
    from ganaug.evaluate import uplift

    x, y = pattern_images([8, 8, 8], size=SIZE)
    grid = [
        MixPolicy(name="soft", strategy=1.0, soft_labels=True),
        MixPolicy(name="soft-t12", strategy=1.0, soft_labels=True, temperature=1.2),
    ]
    out = tmp_path / "tune"
    uplift(ImageDataset(x, y, CLASSES), None, per_class_n=8, seeds=1, out_dir=out, generator=gens["onnx"],
           tune_generator=gens["onnx"], tune=True, tune_grid=grid, classifier_steps=4,
           classifier_batch_size=8, quality=False)  # fmt: skip
    tuned = json.loads((out / "seed_0" / "tune.json").read_text())
    assert tuned["controls"] == {"soft": "soft-control", "soft-t12": "soft-control"}
    assert set(tuned["arms"]) == {"real", "soft", "soft-t12", "soft-control"}
    assert tuned["arms"]["soft-t12"]["synthetic"]["n_synthetic"] > 0


def test_cli_eval_uplift_single_policy_flags(gens: dict[str, Path], tmp_path: Path) -> None:
    x, y = pattern_images([6, 6, 6], size=SIZE)
    np.savez(tmp_path / "d.npz", images=x, labels=y, classes=np.array(CLASSES))
    data = str(tmp_path / "d.npz")
    common = ["eval", "uplift", data, "--test", data, "--per-class", "4", "--no-quality",
              "--out", str(tmp_path / "u"), "-g", str(gens["onnx"])]  # fmt: skip
    proc = run_cli(*common, "--checkpoint", "best")
    assert proc.returncode == 2 and "checkpoint=best needs a run directory" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    proc = run_cli(*common, "--temperature", "9")
    assert proc.returncode == 2 and "(0, 4]" in proc.stderr
    proc = run_cli(*common, "--soft-labels", "--soft-weight", "0")
    assert proc.returncode == 2 and "(0, 1]" in proc.stderr
    proc = run_cli(*common, "--soft-weight", "0.5")
    assert proc.returncode == 2 and "soft_weight needs soft_labels=true" in proc.stderr
    assert not (tmp_path / "u").exists()


def test_augment_policy_file_applies_temperature_and_checkpoint(
    gens: dict[str, Path], tmp_path: Path
) -> None:
    from ganaug.fileio import sha256_file

    x, y = pattern_images([4, 4, 4], size=SIZE)
    np.savez(tmp_path / "d.npz", images=x, labels=y, classes=np.array(CLASSES))
    policy = write_policy_file(
        tmp_path / "tuned_policy.json", MixPolicy(name="tuned", strategy=1.0, temperature=1.3, checkpoint=4)
    )
    out = tmp_path / "aug"
    proc = run_cli("augment", str(tmp_path / "d.npz"), "-g", str(gens["run"]), "--out", str(out),
                   "--policy-file", str(policy), "--format", "npz", "--no-real", "-q", "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["temperature"] == 1.3
    assert summary["generator"]["sha256"] == sha256_file(gens["snapshot"])
    # the same images as augmenting from the snapshot at that temperature directly
    direct = augment_dataset(ImageDataset(x, y, CLASSES), gens["snapshot"], tmp_path / "direct",
                             strategy=1.0, fmt="npz", real="none", seed=0, temperature=1.3)  # fmt: skip
    assert sum(direct["counts"]["synthetic"].values()) == 12
    assert np.array_equal(
        np.load(out / "data.npz")["images"], np.load(tmp_path / "direct" / "data.npz")["images"]
    )


def test_torch_dataset_honours_the_generator_default_temperature(gens: dict[str, Path]) -> None:
    from ganaug.data import ImageDataset
    from ganaug.torch_dataset import GanAugDataset

    real = ImageDataset(np.zeros((6, SIZE, SIZE, 1), np.uint8), np.array([0, 1, 2] * 2), list(CLASSES))
    hot, old = (GanAugDataset(real, gens[k], ratio=1.0, seed=3) for k in ("hot", "old"))
    assert hot.temperature == 1.5 and old.temperature == 1.0
    rows = np.arange(len(hot) - len(real))
    assert np.allclose(hot.noise(rows), 1.5 * old.noise(rows))  # same stream, scaled by the default
    cold = GanAugDataset(real, gens["hot"], ratio=1.0, seed=3, temperature=1.0)  # an explicit value wins
    assert np.array_equal(cold.noise(rows), old.noise(rows))
