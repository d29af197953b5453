"""``ganaug augment`` / ``augment_dataset``: counts, manifest contract, input safety, filters, transforms."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import export_random_generator
from PIL import Image

from ganaug.augment import augment_dataset
from ganaug.fileio import sha256_file
from ganaug.noise import sample_noise
from ganaug.runtime import OnnxGenerator

GEN_CLASSES = ["top", "trouser", "pullover"]  # generator order; folder classes come out sorted
SIZE = 28
SEED = 7
FMNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "fashion-mnist"


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ganaug", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "GANAUG_DISABLE_PLUGIN_AUTOLOAD": "1", **(env or {})},
        timeout=180,
    )


def hash_tree(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def read_manifest(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


def write_folder(root: Path, images_by_class: dict[str, np.ndarray]) -> Path:
    for name, images in images_by_class.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i, img in enumerate(images):
            Image.fromarray(img[:, :, 0]).save(root / name / f"{i:03d}.png")
    return root


def noise_images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, SIZE, SIZE, 1), dtype=np.uint8)


@pytest.fixture(scope="module")
def onnx_gen(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weights conditional generator (3 classes, 28x28 gray) exported to ONNX."""
    return export_random_generator(tmp_path_factory.mktemp("gen"), GEN_CLASSES, SIZE, 0, "test-augment")


@pytest.fixture(scope="module")
def imbalanced(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 / 4 / 2 random images for top / trouser / pullover."""
    root = tmp_path_factory.mktemp("imbalanced") / "images"
    counts = {"top": 30, "trouser": 4, "pullover": 2}
    return write_folder(root, {c: noise_images(n, i) for i, (c, n) in enumerate(counts.items())})


def check_synthetic_records(records: list[dict], sha: str, seed: int) -> None:
    synthetic = [r for r in records if r["source"] == "synthetic"]
    assert all(r["generator_file_sha256"] == sha and r["seed"] == seed for r in synthetic)
    # generator_sha256 names the weights, as `sample` records it: the same for a run and its export
    weights = [r["generator_sha256"] for r in synthetic]
    assert len(set(weights)) == 1 and len(weights[0]) == 64 and weights[0] != sha
    z = [r["z_index"] for r in synthetic]
    assert len(set(z)) == len(z) and all(isinstance(k, int) and k >= 0 for k in z)


# -- the main contract -----------------------------------------------------------------------------
def test_not_majority_balances_classes_and_leaves_input_alone(
    onnx_gen: Path, imbalanced: Path, tmp_path: Path
) -> None:
    before = hash_tree(imbalanced)
    out = tmp_path / "out"
    res = run_cli("augment", str(imbalanced), "--generator", str(onnx_gen), "--out", str(out),
                  "--strategy", "not majority", "--seed", str(SEED))  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert hash_tree(imbalanced) == before  # input byte-identical, nothing added

    records = read_manifest(out)
    synthetic = [r for r in records if r["source"] == "synthetic"]
    real = [r for r in records if r["source"] == "real"]
    per_class = {c: sum(r["label"] == c for r in records) for c in GEN_CLASSES}
    assert per_class == {"top": 30, "trouser": 30, "pullover": 30}
    assert {c: sum(r["label"] == c for r in synthetic) for c in GEN_CLASSES} == {
        "top": 0,
        "trouser": 26,
        "pullover": 28,
    }
    check_synthetic_records(records, sha256_file(onnx_gen), SEED)
    assert len(real) == 36 and all("z_index" not in r and "generator_sha256" not in r for r in real)
    for r in records:
        assert (out / r["path"]).is_file()
        assert set(r) >= {"path", "label", "label_index", "source", "transforms", "plugins"}
    # Real files are copied byte for byte.
    first = real[0]
    assert (out / first["path"]).read_bytes() == (imbalanced / first["origin"]).read_bytes()

    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"]["before"] == {"pullover": 2, "top": 30, "trouser": 4}
    assert summary["counts"]["after"] == {"pullover": 30, "top": 30, "trouser": 30}
    assert summary["strategy"] == "not majority"
    assert summary["generator"]["file_sha256"] == sha256_file(onnx_gen)  # "sha256": the weights
    assert "plugins.strategies" in [p["name"] for p in summary["plugins"]]
    assert summary["versions"]["ganaug"] and summary["versions"]["numpy"]
    assert "wrote 90 images (54 synthetic)" in res.stdout


def test_synthetic_images_are_reproducible_from_their_record(
    onnx_gen: Path, imbalanced: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    augment_dataset(imbalanced, onnx_gen, out, seed=SEED, real="none")
    g = OnnxGenerator(onnx_gen)
    records = read_manifest(out)
    assert records and all(r["source"] == "synthetic" for r in records)
    for r in records[::7]:
        k = r["z_index"]
        z = sample_noise(r["seed"], k + 1, g.z_dim)[k:]
        expected = g.generate_from_noise(z, [r["label"]])[0]
        written = np.asarray(Image.open(out / r["path"]))[:, :, None]
        np.testing.assert_array_equal(written, expected)


def test_fashion_mnist_300_40_15(onnx_gen: Path, tmp_path: Path) -> None:
    images_gz = FMNIST / "train-images-idx3-ubyte.gz"
    if not images_gz.is_file():
        pytest.skip("Fashion-MNIST not found in ../shared/data/fashion-mnist")
    with gzip.open(images_gz) as fh:
        images = np.frombuffer(fh.read(), np.uint8, offset=16).reshape(-1, SIZE, SIZE, 1)
    with gzip.open(FMNIST / "train-labels-idx1-ubyte.gz") as fh:
        labels = np.frombuffer(fh.read(), np.uint8, offset=8)
    wanted = {"top": (0, 300), "trouser": (1, 40), "pullover": (2, 15)}
    root = write_folder(tmp_path / "fmnist", {c: images[labels == k][:n] for c, (k, n) in wanted.items()})
    before = hash_tree(root)
    out = tmp_path / "out"
    summary = augment_dataset(root, onnx_gen, out, strategy="not majority", seed=SEED)
    assert hash_tree(root) == before
    assert summary["counts"]["after"] == {"pullover": 300, "top": 300, "trouser": 300}
    records = read_manifest(out)
    synthetic = [r for r in records if r["source"] == "synthetic"]
    assert {c: sum(r["label"] == c for r in synthetic) for c in wanted} == {
        "top": 0,
        "trouser": 260,
        "pullover": 285,
    }
    check_synthetic_records(records, sha256_file(onnx_gen), SEED)


# -- output safety ---------------------------------------------------------------------------------
def test_refuses_unsafe_outputs(onnx_gen: Path, imbalanced: Path, tmp_path: Path) -> None:
    before = hash_tree(imbalanced)
    inside = run_cli("augment", str(imbalanced), "-g", str(onnx_gen), "--out", str(imbalanced / "aug"))
    assert inside.returncode == 2 and "inside the input" in inside.stderr
    around = run_cli("augment", str(imbalanced), "-g", str(onnx_gen), "--out", str(imbalanced.parent),
                     "--overwrite")  # fmt: skip
    assert around.returncode == 2 and "contains the input" in around.stderr
    assert hash_tree(imbalanced) == before

    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    busy = run_cli("augment", str(imbalanced), "-g", str(onnx_gen), "--out", str(out))
    assert busy.returncode == 2 and "not empty" in busy.stderr
    assert (out / "keep.txt").read_text() == "mine"
    # --overwrite replaces only what ganaug wrote (its marker file), never the user's own folder
    mine = run_cli("augment", str(imbalanced), "-g", str(onnx_gen), "--out", str(out), "--overwrite", "-q")
    assert mine.returncode == 2 and "ganaug did not write it" in mine.stderr
    assert (out / "keep.txt").read_text() == "mine"
    (out / "keep.txt").unlink()
    for flags in ([], ["--overwrite"]):  # an empty folder, then ganaug's own output
        ok = run_cli("augment", str(imbalanced), "-g", str(onnx_gen), "--out", str(out), "-q", *flags)
        assert ok.returncode == 0, ok.stderr
    assert (out / "summary.json").is_file()


def test_crash_leaves_no_output_and_names_the_plugin(
    onnx_gen: Path, imbalanced: Path, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "crashing_plugin.py").write_text(
        "def ganaug_finish(context, summary):\n    raise RuntimeError('disk on fire')\n"
    )
    out = tmp_path / "work" / "out"
    res = run_cli("augment", str(imbalanced), "-g", str(onnx_gen), "--out", str(out),
                  "--plugin", "crashing_plugin", env={"PYTHONPATH": str(site)})  # fmt: skip
    assert res.returncode == 1
    assert "error: plugin 'crashing_plugin' failed in ganaug_finish: RuntimeError: disk on fire" in res.stderr
    assert not out.exists()
    assert list(out.parent.iterdir()) == []  # no temporary folder left behind either


def test_usage_errors(onnx_gen: Path, imbalanced: Path, tmp_path: Path) -> None:
    for extra, message in [
        (["--filter", "sharpness"], "unknown --filter 'sharpness'"),
        (["--strategy", "smote"], "--strategy 'smote' is not understood"),
        (["--format", "tfrecord"], "unknown --format 'tfrecord'"),
        (["-O", "strategy=1"], "clash with ganaug options"),
    ]:
        res = run_cli("augment", str(imbalanced), "-g", str(onnx_gen), "--out", str(tmp_path / "o"), *extra)
        assert res.returncode == 2, (extra, res.stderr)
        assert message in res.stderr
        assert not (tmp_path / "o").exists()


# -- formats, caps, plugins ------------------------------------------------------------------------
def test_npz_without_real_images(onnx_gen: Path, imbalanced: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    summary = augment_dataset(imbalanced, onnx_gen, out, fmt="npz", real="none", strategy=1.0, seed=1)
    with np.load(out / "data.npz") as npz:
        images, labels = npz["images"], npz["labels"]
        classes = list(npz["classes"])
    assert images.shape == (36, SIZE, SIZE, 1) and images.dtype == np.uint8
    assert classes == ["pullover", "top", "trouser"]
    assert np.bincount(labels, minlength=3).tolist() == [2, 30, 4]
    records = read_manifest(out)
    assert [r["path"] for r in records] == [f"data.npz#{i}" for i in range(36)]
    assert summary["counts"]["after"] == {"pullover": 2, "top": 30, "trouser": 4}


def test_max_synthetic_ratio_caps_each_class(onnx_gen: Path, imbalanced: Path, tmp_path: Path) -> None:
    summary = augment_dataset(imbalanced, onnx_gen, tmp_path / "out", max_synthetic_ratio=2.0, real="link")
    assert summary["counts"]["synthetic"] == {"pullover": 4, "top": 0, "trouser": 8}
    assert summary["counts"]["capped_by_max_synthetic_ratio"] == {"pullover": 24, "trouser": 18}
    real = [r for r in read_manifest(tmp_path / "out") if r["source"] == "real"]
    assert os.stat(tmp_path / "out" / real[0]["path"]).st_nlink >= 2  # hard-linked, not copied


def test_out_of_tree_plugin_votes_and_transforms(onnx_gen: Path, imbalanced: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "halving_plugin.py").write_text(
        textwrap.dedent(
            """
            import numpy as np
            from ganaug.hookspecs import hookimpl

            @hookimpl
            def ganaug_accept(images, labels):
                return np.arange(len(labels)) % 2 == 0   # reject every second candidate

            @hookimpl
            def ganaug_transform(image, source):
                if source == "synthetic":
                    return 255 - image, [{"name": "invert"}]
                return None
            """
        )
    )
    out = tmp_path / "out"
    res = run_cli("augment", str(imbalanced), "-g", str(onnx_gen), "--out", str(out), "--no-real",
                  "--plugin", "halving_plugin", "--seed", "3", env={"PYTHONPATH": str(site)})  # fmt: skip
    assert res.returncode == 0, res.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"]["synthetic"] == {"pullover": 28, "top": 0, "trouser": 26}
    assert summary["rejected"]["halving_plugin"] > 0
    g = OnnxGenerator(onnx_gen)
    for r in read_manifest(out)[:5]:
        assert r["plugins"] == ["halving_plugin", "halving_plugin"]  # voted, then transformed
        assert r["transforms"] == [{"name": "invert"}]
        k = r["z_index"]
        raw = g.generate_from_noise(sample_noise(3, k + 1, g.z_dim)[k:], [r["label"]])[0]
        np.testing.assert_array_equal(np.asarray(Image.open(out / r["path"]))[:, :, None], 255 - raw)


# -- albumentations --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pipelines(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import albumentations as A

    folder = tmp_path_factory.mktemp("pipelines")
    paths = {"hflip": folder / "hflip.yaml", "vflip": folder / "vflip.json", "random": folder / "random.yaml"}
    A.save(A.Compose([A.HorizontalFlip(p=1.0)]), paths["hflip"], data_format="yaml")
    A.save(A.Compose([A.VerticalFlip(p=1.0)]), paths["vflip"])
    A.save(
        A.Compose([A.RandomBrightnessContrast(p=1.0), A.Affine(rotate=(-20, 20), p=0.5)]),
        paths["random"],
        data_format="yaml",
    )
    return paths


def test_real_and_synthetic_transforms(onnx_gen: Path, imbalanced: Path, tmp_path: Path, pipelines) -> None:
    out = tmp_path / "out"
    augment_dataset(imbalanced, onnx_gen, out, transforms=pipelines["hflip"],
                    synthetic_transforms=pipelines["vflip"], seed=SEED)  # fmt: skip
    records = read_manifest(out)
    g = OnnxGenerator(onnx_gen)
    for r in records[::9]:
        written = np.asarray(Image.open(out / r["path"]))
        assert r["transforms"][0]["name"] == ("HorizontalFlip" if r["source"] == "real" else "VerticalFlip")
        assert r["plugins"][-1] == "plugins.albumentations_transforms"
        if r["source"] == "real":
            original = np.asarray(Image.open(imbalanced / r["origin"]))
            np.testing.assert_array_equal(written, original[:, ::-1])
        else:
            k = r["z_index"]
            raw = g.generate_from_noise(sample_noise(SEED, k + 1, g.z_dim)[k:], [r["label"]])[0, :, :, 0]
            np.testing.assert_array_equal(written, raw[::-1, :])


def test_seeded_runs_are_identical(onnx_gen: Path, imbalanced: Path, tmp_path: Path, pipelines) -> None:
    def run(name: str, seed: int) -> dict[str, str]:
        out = tmp_path / name
        augment_dataset(imbalanced, onnx_gen, out, transforms=pipelines["random"],
                        synthetic_transforms=pipelines["random"], seed=seed, batch_size=5)  # fmt: skip
        return {k: v for k, v in hash_tree(out).items() if k != "summary.json"}

    first, again, other = run("a", 11), run("b", 11), run("c", 12)
    assert first == again
    assert first != other
    transforms = [r["transforms"] for r in read_manifest(tmp_path / "a")]
    assert any(
        t and t[0]["name"] == "RandomBrightnessContrast" and "alpha" in t[0]["params"] for t in transforms
    )


# -- filters ---------------------------------------------------------------------------------------
def test_near_duplicate_filter_rejects_copies_of_training_images(onnx_gen: Path, tmp_path: Path) -> None:
    g = OnnxGenerator(onnx_gen)
    # Folder classes sort to pullover, top, trouser; "not majority" needs 28 pullover and 26 trouser
    # images. Each class is one unit that owns max_attempts (10) latent rows per image: pullover rows
    # 0..279 (first candidates 0..27), trouser rows 280..539. Make some real images exactly those.
    pullover = g.generate_from_noise(sample_noise(SEED, 2, g.z_dim), ["pullover"] * 2)
    trouser = g.generate_from_noise(sample_noise(SEED, 4, g.z_dim, start=280), ["trouser"] * 4)
    root = write_folder(
        tmp_path / "memorised", {"top": noise_images(30, 5), "pullover": pullover, "trouser": trouser}
    )
    # Exact copies are at distance 0; this untrained generator's samples differ from each other by
    # only ~0.01, so the test uses a tight threshold.
    summary = augment_dataset(
        root,
        onnx_gen,
        tmp_path / "out",
        filters=["near-duplicate"],
        near_duplicate_threshold=0.001,
        seed=SEED,
    )
    assert summary["rejected"] == {"plugins.filters:near-duplicate": 6}
    assert summary["counts"]["after"] == {"pullover": 30, "top": 30, "trouser": 30}
    used = {r["z_index"] for r in read_manifest(tmp_path / "out") if r["source"] == "synthetic"}
    assert used.isdisjoint({0, 1, 280, 281, 282, 283})
    assert summary["filter_settings"]["near-duplicate"]["threshold"] == 0.001


def write_biased_classifier(path: Path, onnx_classes: list[str], favourite: str) -> None:
    """An ONNX classifier (uint8 NHWC in, probabilities out) that always backs ``favourite``."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    k = len(onnx_classes)
    bias = np.zeros(k, np.float32)
    bias[onnx_classes.index(favourite)] = 5.0
    nodes = [
        helper.make_node("Cast", ["image"], ["x"], to=TensorProto.FLOAT),
        helper.make_node("Flatten", ["x"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "w"], ["logits0"]),
        helper.make_node("Add", ["logits0", "b"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "biased",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, ["batch", SIZE, SIZE, 1])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", k])],
        initializer=[
            numpy_helper.from_array(np.zeros((SIZE * SIZE, k), np.float32), "w"),
            numpy_helper.from_array(bias, "b"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    entry = model.metadata_props.add()
    entry.key, entry.value = "ganaug.classes", json.dumps(onnx_classes)
    onnx.save(model, str(path))


def augment_with_pullover_fan(
    onnx_gen: Path, data: Path, tmp_path: Path, *flags: str
) -> tuple[subprocess.CompletedProcess, Path]:
    """``ganaug augment`` (CLI) with ``flags`` and an ONNX filter classifier that always says
    pullover; its columns come in another order than the data's classes (mapped by the metadata)."""
    clf = tmp_path / "clf.onnx"
    write_biased_classifier(clf, ["trouser", "top", "pullover"], favourite="pullover")
    out = tmp_path / "out"
    res = run_cli("augment", str(data), "-g", str(onnx_gen), "--out", str(out),
                  "--filter-classifier", str(clf), *flags, "-q")  # fmt: skip
    assert res.returncode == 0, res.stderr
    return res, out


def test_confidence_filter_with_onnx_classifier_and_attempt_limit(
    onnx_gen: Path, imbalanced: Path, tmp_path: Path
) -> None:
    res, out = augment_with_pullover_fan(
        onnx_gen, imbalanced, tmp_path, "--filter", "confidence", "--min-confidence", "0.9",
        "--max-attempts", "2",
    )  # fmt: skip
    assert (
        "class 'trouser': only 0 of 26 synthetic images passed the filters after 52 candidates" in res.stderr
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"]["synthetic"] == {"pullover": 28, "top": 0, "trouser": 0}
    assert summary["shortfall"] == {"trouser": 26}
    assert summary["candidates"] == {"pullover": 28, "top": 0, "trouser": 52}
    assert summary["rejected"] == {"plugins.filters:confidence": 52}


def test_confidence_filter_trains_its_own_classifier(
    onnx_gen: Path, imbalanced: Path, tmp_path: Path
) -> None:
    summary = augment_dataset(
        imbalanced,
        onnx_gen,
        tmp_path / "out",
        filters=["confidence"],
        min_confidence=0.0,
        plugin_options={"confidence_steps": 3},
        real="none",
    )
    assert summary["filter_settings"]["confidence"]["classifier"] == "trained on the real data (3 steps)"
    assert summary["counts"]["synthetic"] == {"pullover": 28, "top": 0, "trouser": 26}
    assert summary["rejected"] == {"plugins.filters:confidence": 0}


def test_class_fidelity_withholds_classes_the_classifier_does_not_recognise(
    onnx_gen: Path, imbalanced: Path, tmp_path: Path
) -> None:
    res, out = augment_with_pullover_fan(
        onnx_gen, imbalanced, tmp_path, "--filter", "class-fidelity", "--fidelity-probe", "40",
        "--seed", str(SEED),
    )  # fmt: skip
    assert (
        "class 'trouser': no synthetic images (26 planned): --filter class-fidelity: the classifier "
        "recognises 0.0% of 40 probe samples as 'trouser', below --min-class-fidelity 0.8"
    ) in res.stderr
    assert "'top'" not in res.stderr  # withheld too, but it had no images planned: no warning
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"]["synthetic"] == {"pullover": 28, "top": 0, "trouser": 0}
    assert summary["shortfall"] == {}
    assert summary["withheld"]["trouser"]["planned"] == 26
    assert summary["withheld"]["top"]["planned"] == 0
    assert "pullover" not in summary["withheld"]
    gate = summary["filter_settings"]["class-fidelity"]
    assert gate["fidelity"] == {"pullover": 1.0, "top": 0.0, "trouser": 0.0}
    assert gate["min_class_fidelity"] == 0.8 and gate["probe_per_class"] == 40
    # the probe draws its own noise: the classes that keep their images use the rows they always do
    z = sorted(r["z_index"] for r in read_manifest(out) if r["source"] == "synthetic")
    assert z == list(range(28))


def test_a_run_whose_every_planned_class_is_withheld_says_so(
    onnx_gen: Path, imbalanced: Path, tmp_path: Path
) -> None:
    clf = tmp_path / "clf.onnx"
    write_biased_classifier(clf, ["trouser", "top", "pullover"], favourite="pullover")
    res = run_cli("augment", str(imbalanced), "-g", str(onnx_gen), "--out", str(tmp_path / "out"),
                  "--filter-classifier", str(clf), "--filter", "class-fidelity", "--fidelity-probe", "8",
                  "--strategy", '{"trouser": 10}')  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "every class the strategy asked for (trouser) was withheld" in res.stderr
    assert "asks for no synthetic images" not in res.stderr  # it did ask; the gate took them


def test_class_fidelity_shares_the_classifier_it_trains_with_the_teacher(
    onnx_gen: Path, imbalanced: Path, tmp_path: Path
) -> None:
    lines: list[str] = []
    summary = augment_dataset(
        imbalanced,
        onnx_gen,
        tmp_path / "out",
        filters=["class-fidelity"],
        min_class_fidelity=0.0,
        plugin_options={"confidence_steps": 3, "fidelity_probe": 8},
        soft_labels=True,
        real="none",
        echo=lines.append,
    )
    assert "withheld" not in summary  # threshold 0: every class passes
    assert summary["counts"]["synthetic"] == {"pullover": 28, "top": 0, "trouser": 26}
    gate = summary["filter_settings"]["class-fidelity"]
    assert gate["classifier"] == summary["teacher"]["classifier"] == "trained on the real data (3 steps)"
    assert sum("training the confidence filter's classifier" in line for line in lines) == 1
    assert any(line.startswith("class fidelity of the generator: pullover") for line in lines)


class _PixelSumClassifier:
    """Predicts class ``sum of all pixel values mod k``: any change of a probe image can change it."""

    def __init__(self, k: int) -> None:
        self.k = k

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        guess = images.reshape(len(images), -1).astype(np.int64).sum(1) % self.k
        return np.eye(self.k)[guess]


def test_class_fidelity_probe_seed_decides_the_probe(onnx_gen: Path) -> None:
    from ganaug_plugins.filters import class_fidelity

    from ganaug.hookspecs import AugmentContext

    def fidelity(run_seed: int, probe_seed: int | None) -> dict[str, float]:
        context = AugmentContext(
            classes=GEN_CLASSES, real=None, generator=OnnxGenerator(onnx_gen), seed=run_seed,
            options={"fidelity_seed": probe_seed, "truncation": None, "temperature": None},
        )  # fmt: skip
        return class_fidelity(context, _PixelSumClassifier(len(GEN_CLASSES)), 64)

    # eval uplift's fresh pools: other run seeds, one probe seed -> one gate decision
    assert fidelity(1, 7) == fidelity(2, 7) == fidelity(7, None)
    assert fidelity(1, None) != fidelity(2, None)  # by default the probe follows the run's seed
