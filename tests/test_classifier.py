"""The fixed small CNN classifier: learning, determinism, weights, persistence, feature extractor cache."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import pattern_images
from safetensors.torch import save_file

from ganaug.classifier import (
    Classifier,
    augment_batch,
    dataset_hash,
    get_feature_extractor,
    train_classifier,
)
from ganaug.errors import CheckpointError, DataError, UsageError

FAST = {"steps": 120, "batch_size": 32}


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny convolutions gain nothing from threads, and on a shared 2-core machine OpenMP spin-waits
    make them several times slower; subprocesses get OMP_NUM_THREADS=1 for the same reason."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def patterns():
    """3 classes of 16 px bar patterns: train and held-out test."""
    x, y = pattern_images([30, 30, 30], size=16, seed=0)
    xt, yt = pattern_images([20, 20, 20], size=16, seed=1)
    return x, y, xt, yt


@pytest.fixture(scope="module")
def trained(patterns):
    x, y, _, _ = patterns
    return train_classifier(x, y, 3, seed=0, classes=["a", "b", "c"], **FAST)


def test_learns_tiny_patterns_and_reports_scores(trained, patterns):
    _, _, xt, yt = patterns
    scores = trained.evaluate(xt, yt)
    assert scores["accuracy"] >= 0.95
    assert len(scores["per_class_accuracy"]) == 3
    proba = trained.predict_proba(xt)
    assert proba.shape == (60, 3) and proba.dtype == np.float32
    assert np.allclose(proba.sum(1), 1.0, atol=1e-5)
    assert (trained.predict(xt) == proba.argmax(1)).all()
    feats = trained.features(xt, batch_size=7)
    assert feats.shape == (60, trained.feature_dim) and np.isfinite(feats).all()


def test_same_seed_same_weights_other_seed_other_weights(patterns):
    x, y, _, _ = patterns
    opts = {"steps": 15, "batch_size": 16}
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a = train_classifier(x, y, 3, seed=5, hflip=True, **opts)
    assert torch.equal(torch.rand(3), expected)  # the global RNG is left alone
    b = train_classifier(x, y, 3, seed=5, hflip=True, **opts)
    c = train_classifier(x, y, 3, seed=6, hflip=True, **opts)
    sa, sb, sc = (m.model.state_dict() for m in (a, b, c))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_any_size_and_rgb_and_shape_checks():
    x, y = pattern_images([10, 10], size=20, channels=3, seed=2)
    clf = train_classifier(x, y, 2, steps=3, batch_size=8)
    assert clf.image_shape == (20, 20, 3)
    assert clf.predict_proba(x).shape == (20, 2)
    with pytest.raises(DataError, match="does not match"):
        clf.predict(x[:, :16, :16])
    with pytest.raises(DataError, match="uint8"):
        clf.predict(x.astype(np.float32))
    with pytest.raises(DataError, match="labels"):
        train_classifier(x, y + 5, 2, steps=1)


def test_sample_weight_zero_ignores_mislabelled_samples(patterns):
    x, y, xt, yt = patterns
    noisy = np.concatenate([y, (y + 1) % 3])  # every image again with a wrong label...
    weight = np.concatenate([np.ones(len(y)), np.zeros(len(y))])  # ...that weighs nothing
    images = np.concatenate([x, x])
    clean = train_classifier(images, noisy, 3, sample_weight=weight, seed=0, steps=80, batch_size=32)
    assert clean.evaluate(xt, yt)["accuracy"] >= 0.95
    with pytest.raises(UsageError, match="sample_weight"):
        train_classifier(x, y, 3, steps=1, sample_weight=-np.ones(len(y)))


def test_draw_weight_decides_what_batches_contain(patterns):
    x, y, xt, _ = patterns
    # draw class 0 and 1 only: the classifier then never predicts class 2
    clf = train_classifier(x, y, 3, draw_weight=(y != 2).astype(float), seed=0, steps=30, batch_size=16)
    assert 2 not in set(clf.predict(xt).tolist())


def test_init_continues_from_another_classifier(trained, patterns):
    x, y, xt, _ = patterns
    cont = train_classifier(x, y, 3, init=trained, steps=0, seed=0)
    assert np.allclose(cont.predict_proba(xt), trained.predict_proba(xt), atol=1e-6)


def test_augment_batch_shifts_and_flips_vectorised():
    gen = torch.Generator().manual_seed(0)
    x = torch.arange(2 * 1 * 6 * 6, dtype=torch.float32).reshape(2, 1, 6, 6)
    assert torch.equal(augment_batch(x, gen, shift=0, hflip=False), x)
    flipped = augment_batch(x.repeat(32, 1, 1, 1), gen, shift=0, hflip=True)
    src = x.repeat(32, 1, 1, 1)
    is_flip = [(torch.equal(f, s.flip(2)), torch.equal(f, s)) for f, s in zip(flipped, src, strict=True)]
    assert all(a or b for a, b in is_flip) and any(a for a, _ in is_flip) and any(b for _, b in is_flip)
    shifted = augment_batch(x.repeat(32, 1, 1, 1), gen, shift=2, hflip=False)
    assert shifted.shape == (64, 1, 6, 6)
    # each shifted image is the original translated by (dy, dx) in [-2, 2]: its interior matches
    for img, orig in zip(shifted, src, strict=True):
        ok = False
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                a = img[0, 2:4, 2:4]
                b = orig[0, 2 + dy : 4 + dy, 2 + dx : 4 + dx]
                ok |= torch.equal(a, b)
        assert ok


def test_save_load_roundtrip_and_refuses_foreign_files(trained, patterns, tmp_path):
    _, _, xt, _ = patterns
    path = trained.save(tmp_path / "clf.safetensors")
    loaded = Classifier.load(path)
    assert loaded.classes == ["a", "b", "c"] and loaded.image_shape == (16, 16, 1)
    assert loaded.meta.settings["steps"] == FAST["steps"]
    assert np.array_equal(loaded.predict_proba(xt), trained.predict_proba(xt))
    assert b"pickle" not in path.read_bytes()[:200]
    save_file({"w": torch.zeros(2)}, str(tmp_path / "other.safetensors"), metadata={"x": json.dumps({})})
    with pytest.raises(CheckpointError, match="not a ganaug classifier"):
        Classifier.load(tmp_path / "other.safetensors")
    with pytest.raises(CheckpointError, match="not found"):
        Classifier.load(tmp_path / "missing.safetensors")


def test_feature_extractor_is_cached_by_dataset_hash(patterns, tmp_path):
    x, y, xt, _ = patterns
    a = get_feature_extractor((x, y), tmp_path, steps=10)
    files = list((tmp_path / "feature_extractors").glob("*.safetensors"))
    assert len(files) == 1
    mtime = files[0].stat().st_mtime_ns
    b = get_feature_extractor((x, y), tmp_path, steps=10)
    assert files[0].stat().st_mtime_ns == mtime  # loaded, not retrained
    assert np.array_equal(a.features(xt), b.features(xt))
    x2 = x.copy()
    x2[0, 0, 0, 0] ^= 1
    assert dataset_hash(x2, y) != dataset_hash(x, y)
    get_feature_extractor((x2, y), tmp_path, steps=10)
    assert len(list((tmp_path / "feature_extractors").glob("*.safetensors"))) == 2


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_onnx_export_matches_torch(trained, patterns, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    _, _, xt, _ = patterns
    path = trained.export_onnx(tmp_path / "clf.onnx")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (probs,) = sess.run(None, {sess.get_inputs()[0].name: xt[:9]})
    assert np.allclose(probs, trained.predict_proba(xt[:9]), atol=1e-4)
    meta = json.loads(sess.get_modelmeta().custom_metadata_map["ganaug.classifier"])
    assert meta["classes"] == ["a", "b", "c"]
