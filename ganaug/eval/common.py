"""Data helpers shared by the eval room: datasets from paths/tuples, test alignment, per-class draws."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ganaug.errors import DataError, UsageError


def as_dataset(data: Any, classes: Sequence[str] | None = None) -> Any:
    """An :class:`~ganaug.data.ImageDataset` from a dataset, an ``(images, labels)`` tuple or a path."""
    from ganaug.data import ImageDataset, load_dataset

    if isinstance(data, ImageDataset):
        return data
    if isinstance(data, (str, os.PathLike)):
        return load_dataset(data)
    if isinstance(data, tuple) and len(data) == 2:
        images, labels = data
        images = np.asarray(images)
        if images.ndim == 3:
            images = images[..., None]
        labels = np.asarray(labels, dtype=np.int64)
        k = len(classes) if classes is not None else (int(labels.max()) + 1 if len(labels) else 0)
        names = list(classes) if classes is not None else [str(i) for i in range(k)]
        try:
            return ImageDataset(images, labels, names)
        except ValueError as exc:
            raise DataError(f"bad in-memory dataset: {exc}") from None
    raise UsageError(f"expected a dataset, a path or an (images, labels) tuple, got {type(data).__name__}")


def align_test(test: Any, classes: list[str], image_shape: tuple[int, ...]) -> Any:
    """Map a test set onto the training classes (by name) and check the image shape."""
    from ganaug.data import ImageDataset

    if tuple(test.images.shape[1:]) != tuple(image_shape):
        raise DataError(
            f"test images are {tuple(test.images.shape[1:])}, training images {tuple(image_shape)}"
        )
    if list(test.classes) == list(classes):
        return test
    index = {name: i for i, name in enumerate(classes)}
    unknown = sorted(set(test.classes) - set(index))
    if unknown:
        raise DataError(f"test set has classes the training data lacks: {', '.join(unknown[:5])}")
    mapping = np.array([index[name] for name in test.classes], dtype=np.int64)
    return ImageDataset(test.images, mapping[test.labels], list(classes), test.source)


def check_one_count_source(per_class_n: Any, imbalance: Any) -> None:
    """``--per-class`` and ``--imbalance`` both say how many images to draw: at most one of them."""
    if imbalance is not None and per_class_n is not None:
        raise UsageError("give --per-class N or --imbalance COUNTS, not both")


def per_class_counts(
    per_class_n: int | Sequence[int] | None,
    imbalance: Sequence[int] | None,
    k: int,
    available: dict[str, int] | None = None,
) -> list[int]:
    """Real images to draw per class: ``imbalance`` (one count per class), else ``per_class_n``,
    else -- with ``available`` (class -> images in the data) -- every image, as the data has them.
    With ``available``, a count above what a class has is a UsageError that names the class."""
    check_one_count_source(per_class_n, imbalance)
    if imbalance is not None:
        counts = [int(c) for c in imbalance]
        if len(counts) != k:
            raise UsageError(f"--imbalance needs {k} counts (one per class), got {len(counts)}")
    elif per_class_n is None:
        if available is None:
            raise UsageError("give --per-class N or --imbalance COUNTS")
        counts = list(available.values())
    elif isinstance(per_class_n, (int, np.integer)):
        counts = [int(per_class_n)] * k
    else:
        counts = [int(c) for c in per_class_n]
    if any(c < 1 for c in counts) or len(counts) != k:
        raise UsageError(f"per-class counts must be {k} integers >= 1, got {counts}")
    short = [
        f"{name} ({n} asked, {have} in the data)"
        for (name, have), n in zip((available or {}).items(), counts, strict=False)
        if n > have
    ]
    if short:
        flag = "--imbalance" if imbalance is not None else "--per-class"
        raise UsageError(f"{flag} asks for more images than the data has: {', '.join(short)}")
    return counts


def draw_subset(ds: Any, counts: list[int], seed: int) -> Any:
    try:
        return ds.sample_per_class(counts, seed=seed)
    except ValueError as exc:
        raise DataError(f"cannot draw the training subset: {exc}") from None


def yaml_value(raw: str) -> Any:
    """A YAML scalar, with ``4e-4`` read as a number (PyYAML wants ``4.0e-4``)."""
    import yaml

    value = yaml.safe_load(raw)
    if isinstance(value, str) and is_number(value):
        return float(value)
    return value


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def generator_labels(sampler: Any, classes: list[str]) -> np.ndarray:
    """Data class index -> generator class index (every data class must exist in the generator)."""
    from ganaug.runtime import generator_indices

    return generator_indices(classes, sampler.classes, strict=True)


def sample_per_class(sampler: Any, classes: list[str], n_per_class: int, seed: int) -> tuple[Any, Any]:
    """``n_per_class`` generated images of every data class: ``(images, data labels)``."""
    to_gen = generator_labels(sampler, classes)
    labels = np.repeat(np.arange(len(classes), dtype=np.int64), n_per_class)
    return sampler.generate(to_gen[labels], seed=seed), labels


def check_out(out: str | None, data: Sequence[str | None]) -> None:
    """Eval adds files to ``out`` (reports, seed_*/...), never inside or around its data, where they
    would become images or classes (see :mod:`ganaug.output_safety`)."""
    from ganaug.output_safety import check_inputs, data_inputs

    if out:
        check_inputs(out, [i for d in data if d for i in data_inputs(d)])


__all__ = [
    "align_test",
    "as_dataset",
    "check_one_count_source",
    "check_out",
    "draw_subset",
    "generator_labels",
    "is_number",
    "per_class_counts",
    "sample_per_class",
    "yaml_value",
]
