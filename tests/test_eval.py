"""``ganaug eval``: quality report, CAS, mixing policies and the uplift experiment end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import pattern_images, train_tiny_mlp_run
from conftest import run_cli_one_thread as run_cli

from ganaug.classifier import train_classifier
from ganaug.data import ImageDataset
from ganaug.errors import UsageError
from ganaug.evaluate import MixPolicy, cas, memorisation_stats, quality_report

CLASSES = ["c0", "c1", "c2"]
TINY_GAN = ["--arch", "mlp", "--steps", "6", "--batch-size", "8"] + [
    f"--gan-option={kv}" for kv in ("g_width=8", "d_width=8", "z_dim=8", "precision=fp32")
]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def write_npz(path, images, labels):
    np.savez(path, images=images, labels=labels, classes=np.array(CLASSES))
    return path


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    x, y = pattern_images([40, 40, 40], size=16, seed=0)
    xt, yt = pattern_images([20, 20, 20], size=16, seed=1)
    return {
        "train": write_npz(root / "train.npz", x, y),
        "test": write_npz(root / "test.npz", xt, yt),
        "arrays": (x, y, xt, yt),
    }


@pytest.fixture(scope="module")
def extractor(splits):
    x, y, _, _ = splits["arrays"]
    return train_classifier(x, y, 3, steps=60, batch_size=32, seed=0)


def test_quality_report_of_copies_and_of_noise(splits, extractor):
    x, y, xt, yt = splits["arrays"]
    same = quality_report((xt, yt), (xt, yt), extractor, kid_subsets=5)
    assert same["fid"] == pytest.approx(0.0, abs=1e-3)
    assert (same["precision"], same["recall"]) == (1.0, 1.0)
    assert set(same["per_class"]) == {0, 1, 2}
    assert same["per_class"][1]["fid"] == pytest.approx(0.0, abs=1e-3)
    noise = np.random.default_rng(0).integers(0, 255, xt.shape, dtype=np.uint8)
    bad = quality_report((xt, yt), (noise, yt), extractor, kid_subsets=5, train=(x, y))
    assert bad["fid"] > 10 * max(same["fid"], 1e-2)
    assert bad["precision"] < 0.5
    # synthetic = the generator's training images: a memoriser
    copies = quality_report((xt, yt), (x, y), extractor, kid_subsets=5, train=(x, y))
    assert copies["memorisation"]["synthetic_nn_median"] == pytest.approx(0.0, abs=1e-4)
    assert copies["memorisation"]["near_copy_rate"] == 1.0
    assert bad["memorisation"]["near_copy_rate"] < 0.5


def test_memorisation_stats_scale():
    rng = np.random.default_rng(0)
    train = rng.normal(size=(200, 4))
    holdout = rng.normal(size=(200, 4))
    fresh = memorisation_stats(rng.normal(size=(200, 4)), train, holdout)
    assert 0.6 < fresh["median_ratio"] < 1.6
    assert fresh["near_copy_rate"] < 0.1


def test_cas_with_a_perfect_generator_matches_real(splits):
    x, y, xt, yt = splits["arrays"]
    fake = pattern_images([15, 15, 15], size=16, seed=7)  # "samples" from the true distribution
    train = ImageDataset(x, y, CLASSES)
    out = cas(fake, (xt, yt), real_train=train, steps=60, batch_size=32)
    assert out["synthetic_only"]["accuracy"] >= 0.95
    assert out["real"]["n_train"] == 45 and out["real"]["accuracy"] >= 0.95
    assert out["cas_gap"] == pytest.approx(out["synthetic_only"]["accuracy"] - out["real"]["accuracy"])


def test_mix_policy_parse_and_validation():
    p = MixPolicy.parse(
        "name=filtered,strategy=not majority,filter=true,min_confidence=0.8,synthetic_weight=0.3"
    )
    assert (p.name, p.strategy, p.filter, p.min_confidence, p.synthetic_weight) == (
        "filtered",
        "not majority",
        True,
        0.8,
        0.3,
    )
    assert MixPolicy.parse("strategy=4").strategy == 4
    assert MixPolicy.parse("name=7,synthetic_weight=3e-1").synthetic_weight == 0.3
    q = MixPolicy.parse("curriculum=pretrain,pretrain_fraction=0.25")
    assert q.curriculum == "pretrain" and q.synthetic_key() == MixPolicy().synthetic_key()
    assert MixPolicy(filter=True).synthetic_key() != MixPolicy().synthetic_key()
    assert MixPolicy.parse("name=over,strategy=0,balance=true").balance is True
    for bad in (
        "ratio=1",
        "name=real",
        "curriculum=later",
        "synthetic_share=0",
        "nonsense",
        "balance=true,synthetic_share=0.5",
    ):
        with pytest.raises(UsageError):
            MixPolicy.parse(bad)


def test_eval_uplift_cli_end_to_end(splits, tmp_path):
    out = tmp_path / "uplift"
    proc = run_cli(
        "eval",
        "uplift",
        str(splits["train"]),
        "--test",
        str(splits["test"]),
        "--per-class",
        "6",
        "--seeds",
        "2",
        "--seed",
        "3",
        *TINY_GAN,
        "--classifier-steps",
        "25",
        "--classifier-batch-size",
        "16",
        "--policy",
        "name=plain,strategy=1",
        "--policy",
        "name=filtered,strategy=1,filter=true,min_confidence=0.4,max_synthetic_ratio=1",
        "--policy",
        "name=curriculum,strategy=2,curriculum=pretrain,synthetic_weight=0.5",
        "--policy",
        "name=share,strategy=2,synthetic_share=0.25",
        "--quality-per-class",
        "10",
        "--feature-steps",
        "20",
        "--out",
        str(out),
        "--quiet",
    )
    assert proc.returncode == 0, proc.stderr
    assert "plain" in proc.stdout and "±" in proc.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["arms"] == ["real", "plain", "filtered", "curriculum", "share"]
    assert [s["seed"] for s in report["seeds"]] == [3, 4]
    for arm in report["arms"]:
        acc = report["summary"][arm]["accuracy"]
        assert len(acc["values"]) == 2 and 0.0 <= acc["mean"] <= 100.0
        assert len(report["summary"][arm]["per_class_accuracy"]) == 3
    for arm in report["arms"][1:]:
        diff = report["paired"][arm]["accuracy"]
        expected = np.subtract(
            report["summary"][arm]["accuracy"]["values"], report["summary"]["real"]["accuracy"]["values"]
        )
        assert diff["values"] == pytest.approx(expected.tolist())
        lo, hi = diff["ci95"]
        assert lo <= diff["mean"] <= hi
    seed0 = report["seeds"][0]
    assert seed0["n_real"] == 18 and seed0["gan"]["trained"] and seed0["gan"]["steps"] == 6
    # arm sizes: 1:1 plain; the curriculum/share arms use 2 synthetic per real
    assert seed0["arms"]["plain"]["synthetic"]["n_synthetic"] == 18
    assert seed0["arms"]["share"]["synthetic"]["n_synthetic"] == 36
    assert seed0["arms"]["filtered"]["synthetic"]["n_synthetic"] <= 18
    assert seed0["arms"]["real"]["train_seconds"] >= 0 and "quality" in seed0
    # the GAN saw exactly the drawn subset: 6 per class, all from the training split
    assert json.loads((out / "seed_4" / "result.json").read_text())["arms"] == report["seeds"][1]["arms"]
    with np.load(out / "seed_3" / "gan" / "train_data.npz") as gan_data:
        assert np.bincount(gan_data["labels"]).tolist() == [6, 6, 6]
        x, _, xt, _ = splits["arrays"]
        flat = {img.tobytes() for img in x}
        assert all(img.tobytes() in flat for img in gan_data["images"])
        assert not {img.tobytes() for img in xt} & {img.tobytes() for img in gan_data["images"]}
    md = (out / "report.md").read_text()
    assert "| filtered |" in md and "95% CI" in md
    for plot in ("per_class_accuracy.png", "fid_per_class.png", "samples_nearest_real.png"):
        assert (out / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def generator(splits, tmp_path_factory):
    from ganaug.data import load_dataset

    ds = load_dataset(splits["train"], cache=False)
    return train_tiny_mlp_run(ds, tmp_path_factory.mktemp("gan") / "run")


def test_eval_quality_and_cas_and_uplift_with_a_given_generator(splits, generator, tmp_path):
    q = run_cli(
        "eval",
        "quality",
        "-g",
        str(generator),
        "--data",
        str(splits["test"]),
        "--train",
        str(splits["train"]),
        "--n-per-class",
        "12",
        "--feature-steps",
        "20",
        "--out",
        str(tmp_path / "q"),
        "--json",  # without -q: the progress lines go to stderr, stdout is only the JSON
    )
    assert q.returncode == 0, q.stderr
    report = json.loads(q.stdout)
    assert "feature extractor" in q.stderr
    assert report["n_synthetic"] == 36 and report["fid"] >= 0 and set(report["per_class"]) == {"0", "1", "2"}
    assert 0 <= report["memorisation"]["near_copy_rate"] <= 1
    assert (tmp_path / "q" / "quality.md").is_file() and (tmp_path / "q" / "fid_per_class.png").is_file()

    c = run_cli(
        "eval",
        "cas",
        "-g",
        str(generator),
        "--data",
        str(splits["train"]),
        "--test",
        str(splits["test"]),
        "--n-per-class",
        "10",
        "--classifier-steps",
        "10",
        "--json",
        "-q",
    )
    assert c.returncode == 0, c.stderr
    res = json.loads(c.stdout)
    assert res["n_synthetic"] == 30 and res["real"]["n_train"] == 30
    assert 0 <= res["synthetic_only"]["accuracy"] <= 1

    out = tmp_path / "u"
    u = run_cli(
        "eval",
        "uplift",
        str(splits["train"]),
        "--test",
        str(splits["test"]),
        "--imbalance",
        "8,2,4",
        "--seeds",
        "1",
        "-g",
        str(generator),
        "--policy",
        "name=gan,strategy=not majority",
        "--policy",
        "name=oversample,strategy=0,balance=true",
        "--no-quality",
        "--classifier-steps",
        "10",
        "--out",
        str(out),
        "--json",
    )
    assert u.returncode == 0, u.stderr
    rep = json.loads((out / "report.json").read_text())
    assert json.loads(u.stdout)["arms"] == rep["arms"] and "seed 0: classifier" in u.stderr
    seed = rep["seeds"][0]
    assert seed["gan"]["trained"] is False and seed["n_real"] == 14
    assert seed["arms"]["gan"]["synthetic"]["counts"] == {"c0": 0, "c1": 6, "c2": 4}  # balance minority only
    over = seed["arms"]["oversample"]  # the classical baseline: real images only, balanced batches
    assert over["synthetic"]["n_synthetic"] == 0 and over["n_train"] == 14
    assert rep["arms"] == ["real", "gan", "oversample"] and "oversample" in rep["paired"]
    assert rep["paired"]["gan"]["accuracy"]["ci95"] is None  # one seed: no interval
    assert "quality" not in seed


def test_class_balanced_weights_give_each_class_equal_mass():
    from ganaug.evaluate import class_balanced_weights

    labels = np.array([0] * 90 + [1] * 9 + [2] * 1)
    w = class_balanced_weights(labels, 4)
    mass = np.bincount(labels, weights=w, minlength=4)
    assert mass[:3] == pytest.approx([1.0, 1.0, 1.0]) and mass[3] == 0


def test_eval_uplift_usage_errors(splits, tmp_path):
    base = [
        "eval",
        "uplift",
        str(splits["train"]),
        "--test",
        str(splits["test"]),
        "--out",
        str(tmp_path / "o"),
    ]
    both = run_cli(*base, "--per-class", "5", "--imbalance", "5,5,5")
    assert both.returncode == 2 and "not both" in both.stderr
    short = run_cli(*base, "--imbalance", "5,5")
    assert short.returncode == 2 and "3 counts" in short.stderr
    too_many = run_cli(*base, "--imbalance", "5,41,5", "--no-quality")
    assert too_many.returncode == 2 and not (tmp_path / "o").exists()  # nothing written
    said = "--imbalance asks for more images than the data has: c1 (41 asked, 40 in the data)"
    assert said in too_many.stderr


def test_eval_uplift_without_counts_uses_every_image_as_it_is(splits, tmp_path, generator):
    out = tmp_path / "all"
    proc = run_cli("eval", "uplift", str(splits["train"]), "--test", str(splits["test"]), "--seeds", "1",
                   "-g", str(generator), "--policy", "name=oversample,strategy=0,balance=true",
                   "--no-quality", "--classifier-steps", "4", "--out", str(out), "-q")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rep = json.loads((out / "report.json").read_text())
    assert rep["settings"]["counts"] == [40, 40, 40] and rep["seeds"][0]["n_real"] == 120


def test_config_keys_may_be_the_long_options(splits, tmp_path):
    """README: --config keys = long options. The flag spellings (per-class, policy, gan-option) are
    accepted as they are, without a deprecation warning; an unknown key names the whole command."""
    cfg = tmp_path / "flags.yaml"
    cfg.write_text(
        f"data: {splits['train']}\nper-class: 4\nseeds: 1\ngan-option: {{steps: 2}}\n"
        "policy: ['name=g,strategy=1']\n"
    )
    # no --test: stops with that usage error, after the config file was read
    proc = run_cli("eval", "uplift", "--config", str(cfg), "--out", str(tmp_path / "o"))
    assert proc.returncode == 2 and "missing option --test" in proc.stderr, proc.stderr
    assert "deprecated" not in proc.stderr and "unknown option" not in proc.stderr
    cfg.write_text("per-clas: 4\n")
    bad = run_cli("eval", "uplift", "--config", str(cfg))
    assert bad.returncode == 2 and "unknown option 'per-clas' for 'ganaug eval uplift'" in bad.stderr


def test_per_seed_generator_placeholder_names_the_missing_one(tmp_path):
    from ganaug.evaluate import uplift

    (tmp_path / "gan_0").mkdir()
    images = np.zeros((8, 8, 8, 1), np.uint8)
    labels = np.array([0, 1] * 4)
    with pytest.raises(UsageError, match=r"--generator not found: .*gan_1"):
        uplift((images, labels), (images, labels), per_class_n=2, seeds=2, out_dir=tmp_path / "o",
               generator=str(tmp_path / "gan_{seed}"))  # fmt: skip
