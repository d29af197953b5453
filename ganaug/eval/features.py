"""The cached domain feature extractor (the fixed classifier trained on all real training images)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganaug.errors import CheckpointError, UsageError
from ganaug.eval.classifier_model import FORMAT_VERSION, Classifier, check_images
from ganaug.eval.classifier_train import train_classifier

FEATURE_EXTRACTOR_STEPS = 3000


def default_cache_dir() -> Path:
    """``$GANAUG_CACHE_DIR``, else ``$XDG_CACHE_HOME/ganaug``, else ``~/.cache/ganaug``."""
    if os.environ.get("GANAUG_CACHE_DIR"):
        return Path(os.environ["GANAUG_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "ganaug"


def dataset_hash(images: np.ndarray, labels: np.ndarray) -> str:
    """SHA-256 over the shapes and bytes of the images and labels."""
    digest = hashlib.sha256()
    digest.update(repr((images.shape, str(images.dtype), labels.shape)).encode())
    digest.update(np.ascontiguousarray(images).data)
    digest.update(np.ascontiguousarray(labels.astype(np.int64)).data)
    return digest.hexdigest()


def _unpack_dataset(dataset: Any) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    if isinstance(dataset, tuple) and len(dataset) == 2:
        images, labels = dataset
        return check_images(images), np.asarray(labels), None
    images, labels = getattr(dataset, "images", None), getattr(dataset, "labels", None)
    if images is None or labels is None:
        raise UsageError("expected a dataset with .images/.labels or an (images, labels) tuple")
    classes = getattr(dataset, "classes", None)
    return check_images(images), np.asarray(labels), (list(classes) if classes is not None else None)


def get_feature_extractor(
    dataset: Any,
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    num_classes: int | None = None,
    steps: int = FEATURE_EXTRACTOR_STEPS,
    seed: int = 0,
    hflip: bool = False,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> Classifier:
    """The domain feature extractor for ``dataset`` (``.images``/``.labels``[/``.classes``] or an
    ``(images, labels)`` tuple): the fixed classifier trained on all of it, cached in
    ``cache_dir/feature_extractors/<hash>.safetensors`` keyed by the data and training settings."""
    images, labels, classes = _unpack_dataset(dataset)
    k = num_classes or (len(classes) if classes else int(labels.max()) + 1)
    recipe = f"{dataset_hash(images, labels)}|k={k}|steps={steps}|seed={seed}|hflip={hflip}|v{FORMAT_VERSION}"
    key = hashlib.sha256(recipe.encode()).hexdigest()[:32]
    path = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = path / "feature_extractors" / f"{key}.safetensors"
    if path.is_file():
        try:
            return Classifier.load(path, device)
        except CheckpointError:
            pass  # a damaged cache entry: retrain and overwrite
    clf = train_classifier(
        images,
        labels,
        k,
        steps=steps,
        seed=seed,
        hflip=hflip,
        classes=classes,
        device=device,
        progress=progress,
        desc="feature extractor",
    )
    clf.meta.extra["dataset_key"] = key
    clf.save(path)
    return clf


__all__ = [
    "FEATURE_EXTRACTOR_STEPS",
    "dataset_hash",
    "default_cache_dir",
    "get_feature_extractor",
]
