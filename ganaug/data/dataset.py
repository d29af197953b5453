"""The in-memory dataset every part of ganaug works on."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np


@dataclass
class ImageDataset:
    """Labelled images: ``images`` uint8 NHWC, ``labels`` int64 indices into ``classes``.

    ``paths`` holds the source file of each image for file-based readers (``None`` for IDX and
    NPZ); ``problems`` lists what the reader skipped or found odd; ``source`` describes where the
    data came from (``"imagefolder:/data/x"``).
    """

    images: np.ndarray
    labels: np.ndarray
    classes: list[str]
    source: str = ""
    paths: list[str] | None = None
    problems: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.images.dtype != np.uint8 or self.images.ndim != 4:
            raise ValueError(f"images must be uint8 NHWC, got {self.images.dtype} {self.images.shape}")
        if self.images.shape[-1] not in (1, 3):
            raise ValueError(f"images must have 1 or 3 channels, got {self.images.shape[-1]}")
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if self.labels.shape != (len(self.images),):
            raise ValueError(f"labels shape {self.labels.shape} does not match {len(self.images)} images")
        if len(self.labels) and (self.labels.min() < 0 or self.labels.max() >= len(self.classes)):
            raise ValueError("labels out of range of classes")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_size(self) -> int:
        """Side of the (square) images."""
        return int(self.images.shape[1])

    @property
    def channels(self) -> int:
        return int(self.images.shape[3])

    def class_counts(self) -> dict[str, int]:
        """Number of images per class name (every class listed, zeros included)."""
        counts = np.bincount(self.labels, minlength=self.num_classes)
        return {name: int(c) for name, c in zip(self.classes, counts, strict=True)}

    def subset(self, indices: np.ndarray | list[int]) -> ImageDataset:
        """A new dataset with the rows at ``indices`` (same classes)."""
        idx = np.asarray(indices, dtype=np.int64)
        return ImageDataset(
            images=self.images[idx],
            labels=self.labels[idx],
            classes=list(self.classes),
            source=self.source,
            paths=[self.paths[i] for i in idx] if self.paths is not None else None,
            problems=list(self.problems),
        )

    def sample_per_class(self, counts: int | dict[str, int] | list[int], seed: int = 0) -> ImageDataset:
        """Draw ``counts`` images per class at random (an int for every class, or per class).

        Raises ``ValueError`` when a class has fewer images than asked for.
        """
        if isinstance(counts, int):
            wanted = [counts] * self.num_classes
        elif isinstance(counts, dict):
            wanted = [int(counts.get(name, 0)) for name in self.classes]
        else:
            wanted = [int(c) for c in counts]
        if len(wanted) != self.num_classes:
            raise ValueError(f"need {self.num_classes} per-class counts, got {len(wanted)}")
        rng = np.random.default_rng(seed)
        chosen = []
        for k, n in enumerate(wanted):
            pool = np.flatnonzero(self.labels == k)
            if n > len(pool):
                raise ValueError(f"class {self.classes[k]!r} has {len(pool)} images, {n} requested")
            chosen.append(rng.choice(pool, size=n, replace=False))
        return self.subset(np.sort(np.concatenate(chosen)) if chosen else np.array([], dtype=np.int64))


def summarize(
    classes: list[str],
    labels: np.ndarray,
    sizes: Counter[tuple[int, int]],
    channels: Counter[int],
    problems: list[str],
    source: str,
) -> dict:
    """The ``data inspect`` report (JSON-ready)."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(classes))
    nonzero = counts[counts > 0]
    ratio = float(nonzero.max() / nonzero.min()) if len(nonzero) else None
    return {
        "source": source,
        "num_images": int(counts.sum()),
        "num_classes": len(classes),
        "class_counts": {name: int(c) for name, c in zip(classes, counts, strict=True)},
        "image_sizes": {f"{w}x{h}": n for (w, h), n in sorted(sizes.items(), key=lambda kv: -kv[1])},
        "channels": {str(c): n for c, n in sorted(channels.items())},
        "imbalance_ratio": ratio,
        "problems": list(problems),
    }
