"""GanReplace: an albumentations 2.0.8 transform, label as a target, A.save/A.load round trips."""

from __future__ import annotations

import pickle
from pathlib import Path

import albumentations as A
import numpy as np
import pytest

from ganaug.albu import GanReplace, match_shape
from ganaug.errors import UsageError
from ganaug.sampling import open_sampler

CLASSES = ["a", "b", "c"]


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from ganaug.checkpoint import save_generator
    from ganaug.models import build_generator

    torch.manual_seed(0)
    module = build_generator("mlp", num_classes=3, z_dim=8, image_size=8, channels=1, width=16)
    path = tmp_path_factory.mktemp("gen") / "g.safetensors"
    save_generator(path, module, classes=CLASSES, run_id="test-albu", step=0)
    return path


BLANK = np.zeros((8, 8, 1), np.uint8)


def test_replaces_with_a_sample_of_the_label(weights: Path) -> None:
    t = A.Compose([GanReplace(str(weights), p=1.0)], seed=3)
    out = t(image=BLANK, label=2)
    seed = t.transforms[0].params["gan_seed"]
    expected = open_sampler(weights, device="cpu").generate([2], seed=seed)[0]
    np.testing.assert_array_equal(out["image"], expected)
    assert out["label"] == 2
    # A class name works the same way, and p=0 never replaces.
    t.set_random_seed(3)
    np.testing.assert_array_equal(t(image=BLANK, label="c")["image"], expected)
    keep = A.Compose([GanReplace(str(weights), p=0.0)], seed=3)
    np.testing.assert_array_equal(keep(image=BLANK, label=2)["image"], BLANK)


def test_probability_is_respected_and_seeded(weights: Path) -> None:
    t = A.Compose([GanReplace(str(weights), p=0.5)], seed=0)
    replaced = [not np.array_equal(t(image=BLANK, label=i % 3)["image"], BLANK) for i in range(40)]
    assert 8 <= sum(replaced) <= 32
    t.set_random_seed(0)
    again = [not np.array_equal(t(image=BLANK, label=i % 3)["image"], BLANK) for i in range(40)]
    assert again == replaced


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_save_load_round_trip(weights: Path, tmp_path: Path, fmt: str) -> None:
    pipeline = A.Compose(
        [GanReplace(str(weights), p=0.7, truncation=2.0, classes=["c", "b", "a"]), A.HorizontalFlip(p=0.5)],
        seed=1,
    )
    path = tmp_path / f"pipeline.{fmt}"
    A.save(pipeline, str(path), data_format=fmt)
    assert "ganaug.albu.GanReplace" in path.read_text()
    loaded = A.load(str(path), data_format=fmt)
    replace = loaded.transforms[0]
    assert isinstance(replace, GanReplace)
    assert (replace.generator_path, replace.p, replace.truncation, replace.classes) == (
        str(weights),
        0.7,
        2.0,
        ["c", "b", "a"],
    )
    pipeline.set_random_seed(5)
    loaded.set_random_seed(5)
    for i in range(6):
        a = pipeline(image=BLANK, label=i % 3)["image"]
        b = loaded(image=BLANK, label=i % 3)["image"]
        np.testing.assert_array_equal(a, b)


def test_classes_remap_labels_by_name(weights: Path) -> None:
    mine = A.Compose([GanReplace(str(weights), p=1.0, classes=["c", "b", "a"])], seed=2)
    theirs = A.Compose([GanReplace(str(weights), p=1.0)], seed=2)
    np.testing.assert_array_equal(mine(image=BLANK, label=0)["image"], theirs(image=BLANK, label=2)["image"])


def test_label_target_is_required_and_strict_mode_accepts_it(weights: Path) -> None:
    strict = A.Compose([GanReplace(str(weights), p=1.0)], strict=True)
    assert strict(image=BLANK, label=1)["image"].shape == (8, 8, 1)
    with pytest.raises(ValueError, match="missing keys: {'label'}"):
        strict(image=BLANK)
    with pytest.raises(UsageError, match="no class 'zebra'"):
        strict(image=BLANK, label="zebra")
    with pytest.raises(UsageError, match="out of range"):
        strict(image=BLANK, label=7)
    custom = A.Compose([GanReplace(str(weights), p=1.0, label_key="y")], strict=True)
    assert custom(image=BLANK, y=0)["image"].shape == (8, 8, 1)


def test_invalid_arguments_are_rejected_by_the_schema(weights: Path) -> None:
    with pytest.raises(ValueError, match="truncation"):
        GanReplace(str(weights), truncation=-1.0)
    with pytest.raises(ValueError, match="p"):
        GanReplace(str(weights), p=1.5)


def test_output_matches_the_input_shape_and_pickles(weights: Path) -> None:
    rgb = np.zeros((16, 12, 3), np.uint8)
    t = A.Compose([GanReplace(str(weights), p=1.0)], seed=0)
    out = t(image=rgb, label=0)["image"]
    assert out.shape == (16, 12, 3) and out.dtype == np.uint8
    assert np.array_equal(out[:, :, 0], out[:, :, 2])  # gray sample repeated into RGB
    clone = pickle.loads(pickle.dumps(t))
    assert clone.transforms[0]._sampler is None  # the generator is reopened in the new process
    clone.set_random_seed(0)
    t.set_random_seed(0)
    np.testing.assert_array_equal(clone(image=rgb, label=0)["image"], t(image=rgb, label=0)["image"])


def test_match_shape() -> None:
    img = np.arange(64, dtype=np.uint8).reshape(8, 8, 1)
    assert match_shape(img, (4, 4, 1)).shape == (4, 4, 1)
    assert match_shape(img, (8, 8)).shape == (8, 8)
    rgb = np.dstack([img, img, img])
    np.testing.assert_array_equal(match_shape(rgb, (8, 8, 1)), img)
