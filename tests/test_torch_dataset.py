"""GanAugDataset: the requested mix, determinism across worker counts, per-index noise contract."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from ganaug.data import ImageDataset
from ganaug.noise import sample_noise
from ganaug.runtime import OnnxGenerator
from ganaug.torch_dataset import GanAugDataset

CLASSES = ["a", "b", "c"]


@pytest.fixture(scope="module")
def onnx_gen(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ganaug.checkpoint import save_generator
    from ganaug.export import export_generator
    from ganaug.models import build_generator

    torch.manual_seed(0)
    module = build_generator("mlp", num_classes=3, z_dim=8, image_size=8, channels=1, width=16)
    folder = tmp_path_factory.mktemp("gen")
    save_generator(folder / "g.safetensors", module, classes=CLASSES, run_id="test-torch-dataset", step=0)
    export_generator(folder / "g.safetensors", folder / "g.onnx")
    return folder / "g.onnx"


@pytest.fixture(scope="module")
def real() -> ImageDataset:
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], [20, 6, 4])
    return ImageDataset(rng.integers(0, 256, (30, 8, 8, 1), dtype=np.uint8), labels, list(CLASSES))


def collect(
    ds: GanAugDataset, workers: int, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    loader = torch.utils.data.DataLoader(
        ds,
        batch_size=7,
        shuffle=True,
        num_workers=workers,
        generator=torch.Generator().manual_seed(seed),
        worker_init_fn=GanAugDataset.worker_init_fn if workers else None,
    )
    images, labels, synthetic = zip(*loader, strict=True)
    return torch.cat(images), torch.cat(labels), torch.cat(synthetic)


def test_dataloader_with_two_workers_yields_the_requested_mix(onnx_gen: Path, real: ImageDataset) -> None:
    ds = GanAugDataset(real, onnx_gen, ratio=0.5, seed=4, return_source=True)
    assert (ds.n_real, ds.n_synthetic, len(ds)) == (30, 15, 45)
    images, labels, synthetic = collect(ds, workers=2)
    assert images.shape == (45, 8, 8, 1) and images.dtype == torch.uint8
    assert int(synthetic.sum()) == 15
    assert np.bincount(labels[synthetic].numpy(), minlength=3).tolist() == [10, 3, 2]
    assert np.bincount(labels[~synthetic].numpy(), minlength=3).tolist() == [20, 6, 4]


def test_deterministic_per_seed_whatever_the_worker_count(onnx_gen: Path, real: ImageDataset) -> None:
    import albumentations as A

    transform = A.Compose([A.HorizontalFlip(p=0.5), A.RandomBrightnessContrast(p=0.5)])
    ds = GanAugDataset(real, onnx_gen, ratio="not majority", transform=transform, seed=9, return_source=True)
    assert ds.n_synthetic == 14 + 16
    single = collect(ds, workers=0)
    double = collect(ds, workers=2)
    for x, y in zip(single, double, strict=True):
        assert torch.equal(x, y)
    other = GanAugDataset(
        real, onnx_gen, ratio="not majority", transform=transform, seed=10, return_source=True
    )
    assert not torch.equal(collect(other, workers=0)[0], single[0])


def test_synthetic_item_j_is_row_j_of_the_seed_stream(onnx_gen: Path, real: ImageDataset) -> None:
    ds = GanAugDataset(real, onnx_gen, ratio=1.0, seed=5)
    g = OnnxGenerator(onnx_gen)
    n = ds.n_synthetic
    expected = g.generate_from_noise(sample_noise(5, n, g.z_dim), ds.synthetic_labels)
    for j in (0, 7, n - 1):
        image, label = ds[ds.n_real + j]
        np.testing.assert_array_equal(image, expected[j])
        assert label == ds.synthetic_labels[j]
    # Single items, batches and random order agree.
    batch = ds.__getitems__([ds.n_real + n - 1, 3, ds.n_real])
    np.testing.assert_array_equal(batch[0][0], expected[n - 1])
    np.testing.assert_array_equal(batch[1][0], real.images[3])
    np.testing.assert_array_equal(batch[2][0], expected[0])


def test_noise_blocks_match_the_noise_stream(onnx_gen: Path, real: ImageDataset) -> None:
    ds = GanAugDataset(real, onnx_gen, ratio=0.0, seed=3, truncation=1.5)
    rows = np.array([0, 5, 1023, 1024, 2500])
    np.testing.assert_array_equal(ds.noise(rows), sample_noise(3, 2501, 8, truncation=1.5)[rows])


def test_set_epoch_gives_fresh_synthetic_images(onnx_gen: Path, real: ImageDataset) -> None:
    ds = GanAugDataset(real, onnx_gen, ratio=1.0, seed=1)
    first = ds[ds.n_real][0]
    ds.set_epoch(1)
    second = ds[ds.n_real][0]
    ds.set_epoch(0)
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(ds[ds.n_real][0], first)


def test_any_map_style_dataset_and_pickling(onnx_gen: Path, real: ImageDataset) -> None:
    items = [(torch.from_numpy(img), int(lab)) for img, lab in zip(real.images, real.labels, strict=True)]
    ds = GanAugDataset(items, OnnxGenerator(onnx_gen), ratio={"b": 10, "c": 10}, seed=2, return_source=True)
    assert ds.n_synthetic == 4 + 6
    assert ds.classes == CLASSES  # taken from the generator when the dataset has none
    image, label, synthetic = ds[0]
    assert torch.equal(image, items[0][0]) and label == 0 and not synthetic
    clone = pickle.loads(pickle.dumps(ds))  # onnxruntime sessions are dropped and reopened lazily
    np.testing.assert_array_equal(clone[len(ds) - 1][0], ds[len(ds) - 1][0])


def test_bad_arguments(onnx_gen: Path, real: ImageDataset) -> None:
    from ganaug.errors import UsageError

    with pytest.raises(UsageError, match="ratio must be a finite number >= 0"):
        GanAugDataset(real, onnx_gen, ratio=-1.0)
    with pytest.raises(UsageError, match="neither a number nor a strategy"):
        GanAugDataset(real, onnx_gen, ratio="smote")
    renamed = ImageDataset(real.images, real.labels, ["a", "b", "zebra"])
    with pytest.raises(UsageError, match="no class 'zebra'"):
        GanAugDataset(renamed, onnx_gen, ratio=1.0)
    with pytest.raises(IndexError):
        GanAugDataset(real, onnx_gen, ratio=1.0)[60]


# -- a tuned policy in your own training loop --------------------------------------------------------
class _UniformTeacher:
    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        return np.full((len(images), 3), 1 / 3, np.float32)


def test_policy_sampler_draws_the_policy_batch_mix(
    onnx_gen: Path, real: ImageDataset, tmp_path: Path
) -> None:
    from ganaug.eval.policy import MixPolicy
    from ganaug.eval.tune import write_policy_file
    from ganaug.torch_dataset import policy_sampler

    soft = MixPolicy(name="soft", strategy=4.0, synthetic_share=0.25, soft_labels=True)
    path = write_policy_file(tmp_path / "tuned_policy.json", soft)
    ds = GanAugDataset.from_policy(real, onnx_gen, path, teacher=_UniformTeacher(), return_source=True)
    assert (ds.n_real, ds.n_synthetic) == (30, 120) and ds.return_soft_labels
    sampler = policy_sampler(ds, path, num_samples=4000, seed=1)
    weights = torch.as_tensor(sampler.weights)
    assert weights[30:].sum() / weights.sum() == pytest.approx(0.25)  # a quarter of every batch
    assert torch.allclose(weights[:30], weights[0]) and torch.allclose(weights[30:], weights[30])
    drawn = torch.as_tensor(list(sampler))
    assert 0.22 < (drawn >= 30).float().mean() < 0.28
    again = policy_sampler(ds, path, num_samples=4000, seed=1)
    assert list(again) == drawn.tolist() and list(again) != drawn.tolist()  # same seed; next epoch new
    _image, _label, is_syn, target = ds[int(drawn[drawn >= 30][0])]
    assert is_syn and target == pytest.approx([1 / 3] * 3)  # the teacher's probabilities
    # oversampling, the usual no-GAN recommendation: class-balanced, synthetic items never drawn
    over = policy_sampler(ds, MixPolicy(name="oversample", strategy=0, balance=True))
    w = np.asarray(over.weights)
    assert not w[30:].any()
    per_class = np.bincount(real.labels, weights=w[:30])
    assert per_class == pytest.approx(np.full(3, per_class[0]))
    # any dataset: labels and synthetic flags given (e.g. an augment output and its manifest)
    flags = np.arange(len(ds)) >= 30
    labels = np.concatenate([ds.real_labels, ds.synthetic_labels])
    same = policy_sampler(ds, soft, labels=labels, synthetic=flags)
    assert np.allclose(same.weights, sampler.weights)


def test_from_policy_refuses_what_it_cannot_do_on_the_fly(onnx_gen: Path, real: ImageDataset) -> None:
    from ganaug.errors import UsageError
    from ganaug.eval.policy import MixPolicy
    from ganaug.torch_dataset import policy_sampler

    gated = MixPolicy(name="gated", strategy=1.0, min_class_fidelity=0.8)
    with pytest.raises(UsageError, match="filters its samples \\(class-fidelity\\).*augment --policy-file"):
        GanAugDataset.from_policy(real, onnx_gen, gated)
    soft = MixPolicy(name="soft", strategy=1.0, soft_labels=True)
    with pytest.raises(UsageError, match="teacher's soft labels: pass teacher="):
        GanAugDataset.from_policy(real, onnx_gen, soft)
    plain = GanAugDataset.from_policy(real, onnx_gen, MixPolicy(name="none", strategy=0, balance=True))
    assert plain.n_synthetic == 0
    with pytest.raises(UsageError, match="labels= and synthetic="):
        policy_sampler(list(range(5)), MixPolicy())
    with pytest.raises(UsageError, match="file not found: missing.json"):
        policy_sampler(plain, "missing.json")
