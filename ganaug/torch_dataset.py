"""A torch ``Dataset`` that mixes GAN samples into a real dataset on the fly.

>>> ds = GanAugDataset(load_dataset("images/"), "generator.onnx", ratio=0.5, seed=0)  # doctest: +SKIP
>>> loader = torch.utils.data.DataLoader(ds, batch_size=64, shuffle=True, num_workers=2)  # doctest: +SKIP

Indices ``0 .. n_real-1`` are the real items; the next ``n_synthetic`` are synthetic. Every item is
a pure function of ``(seed, epoch, index)``: synthetic item ``j`` of epoch ``e`` is the generator's
image for latent row ``j`` of the noise stream of seed ``seed`` (``e == 0``; the same row a manifest
would record as ``seed``/``z_index``) or of a seed derived from ``(seed, e)``, and albumentations
transforms get a random state derived from ``(seed, e, index)``. So the data do not depend on
``num_workers``, the batch size or the order of access, and each worker needs no seed of its own
for them. Call :meth:`GanAugDataset.set_epoch` each epoch for fresh synthetic images and fresh
transforms (with ``persistent_workers=True`` the workers keep the epoch they started with).
``worker_init_fn`` additionally seeds Python's and NumPy's global generators per worker, from the
base seed and the worker id, for other code that uses them.

The generator is opened lazily in each process, so the dataset pickles (``spawn`` workers) and
never shares an onnxruntime session between processes. Use ``device="cpu"`` with workers.
"""

from __future__ import annotations

import dataclasses
import random
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch.utils.data

from ganaug.errors import UsageError
from ganaug.eval.common import is_number
from ganaug.eval.policy import mix_soft_targets
from ganaug.hookspecs import ratio_plan
from ganaug.limits import FRACTION
from ganaug.noise import BLOCK_ROWS, noise_block
from ganaug.runtime import generator_indices, resolve_temperature

_BLOCK_CACHE = 8


def _is_albumentations(transform: Any) -> bool:
    return hasattr(transform, "set_random_state") and hasattr(transform, "available_keys")


def _derive(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, dtype=np.uint64)[0] >> 1)


@dataclasses.dataclass
class GanAugOptions:
    """The keyword options of :class:`GanAugDataset` (see its docstring), as one value."""

    synthetic_transform: Callable[..., Any] | None = None
    labels: Sequence[int] | np.ndarray | None = None
    classes: Sequence[str] | None = None
    truncation: float | None = None
    temperature: float | None = None
    device: str = "cpu"
    return_source: bool = False
    teacher: Any | None = None
    return_soft_labels: bool = False
    soft_weight: float = 1.0


class GanAugDataset(torch.utils.data.Dataset):
    """Real items followed by synthetic ones drawn from ``generator`` (see module doc).

    ``real_dataset``: a :class:`ganaug.data.ImageDataset` or any map-style dataset whose items are
    ``(image, label)``. ``generator``: a ``.onnx`` file, run dir or weights file, or an object from
    :func:`ganaug.sampling.open_sampler`. ``ratio``: synthetic images per real image of each class
    (a float), or anything ``--strategy`` accepts (``"not majority"``, a ``{class: target}``
    mapping, ...). ``transform``: applied to every image (real and synthetic); an albumentations
    transform is called as ``transform(image=img, label=label)["image"]`` with a per-item random
    state, any other callable as ``transform(img)``. ``synthetic_transform``: applied to synthetic
    images first. ``labels``: the real labels when the dataset has no ``labels``/``targets``
    attribute (otherwise every item is read once to count them). ``classes``: the real class names
    (default: ``real_dataset.classes``, else the generator's); labels are mapped to the generator by
    class name. ``truncation``/``temperature``: as for ``ganaug sample`` (``temperature`` None: the
    generator's default, e.g. an ONNX file's ``ganaug.temperature``, else 1.0).
    ``return_source=True`` makes items ``(image, label, is_synthetic)``.
    ``return_soft_labels=True`` appends a float32 ``[len(classes)]`` target to every item: the
    ``teacher``'s class probabilities of a synthetic image (before any transform), the one-hot
    label of a real one -- for soft cross-entropy on synthetic and hard labels on real images.
    ``soft_weight`` below 1 mixes the intended class into a synthetic image's target:
    ``(1 - soft_weight) * one-hot + soft_weight * teacher`` (a policy's ``soft_weight``).
    ``teacher``: an object with ``predict_proba(uint8 NHWC) -> [N, len(classes)]`` or a ganaug
    classifier ``.safetensors`` path (columns mapped to ``classes`` by name; loaded lazily per process).
    """

    def __init__(
        self,
        real_dataset: Any,
        generator: str | Path | Any,
        ratio: float | str | Mapping[str, int] = 0.5,
        transform: Callable[..., Any] | None = None,
        seed: int = 0,
        *,
        options: GanAugOptions | None = None,
        **kwargs: Any,
    ) -> None:
        """``kwargs`` are the fields of :class:`GanAugOptions` (``truncation=0.7, device="cpu"``),
        set over ``options``; an unknown keyword is a TypeError."""
        opts = dataclasses.replace(options or GanAugOptions(), **kwargs)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise UsageError(f"seed must be an integer >= 0, got {seed!r}")
        if opts.return_soft_labels and opts.teacher is None:
            raise UsageError("return_soft_labels needs a teacher (a classifier with predict_proba)")
        soft_weight = FRACTION.check("soft_weight", opts.soft_weight)
        self.real = real_dataset
        self.transform = transform
        self.synthetic_transform = opts.synthetic_transform
        self.seed = int(seed)
        self.truncation = opts.truncation
        self.device = opts.device
        self.return_source = opts.return_source
        self.return_soft_labels = bool(opts.return_soft_labels)
        self.soft_weight = soft_weight
        self._teacher_source = str(opts.teacher) if isinstance(opts.teacher, (str, Path)) else None
        self._teacher = None if self._teacher_source else opts.teacher
        self.epoch = 0
        if isinstance(generator, (str, Path)):
            self.generator_source, self._sampler = str(generator), None
        else:
            self.generator_source, self._sampler = str(getattr(generator, "path", "")), generator
        self._blocks: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()
        # A ganaug ImageDataset has arrays but no __getitem__; other datasets yield (image, label).
        self._real_arrays = hasattr(real_dataset, "images") and not hasattr(type(real_dataset), "__getitem__")
        self._set_plan(self._real_labels(opts.labels), opts.classes, ratio)
        self.temperature = resolve_temperature(self.sampler, opts.temperature)  # an ONNX file's default too

    def _set_plan(self, real_labels: np.ndarray, classes: Sequence[str] | None, ratio: Any) -> None:
        """Classes, their mapping to the generator's, and the labels of the synthetic items."""
        sampler = self.sampler
        self.classes = list(classes or getattr(self.real, "classes", None) or sampler.classes)
        self._to_generator = generator_indices(self.classes, sampler.classes)
        counts = np.bincount(real_labels, minlength=len(self.classes))
        if len(counts) > len(self.classes):
            raise UsageError(
                f"real labels go up to {len(counts) - 1}, but there are {len(self.classes)} classes"
            )
        plan = self._plan({c: int(n) for c, n in zip(self.classes, counts, strict=True)}, ratio)
        per_class = np.array([plan.get(c, 0) for c in self.classes], dtype=np.int64)
        lacking = [
            c for c, n, g in zip(self.classes, per_class, self._to_generator, strict=True) if n and g < 0
        ]
        if lacking:
            raise UsageError(f"the generator has no class {', '.join(map(repr, lacking))}")
        self.ratio = ratio
        self.n_real = len(real_labels)
        #: Label (index into ``classes``) of each real item.
        self.real_labels = real_labels
        #: Label (index into ``classes``) of each synthetic item.
        self.synthetic_labels = np.repeat(np.arange(len(self.classes), dtype=np.int64), per_class)
        self.n_synthetic = len(self.synthetic_labels)

    @classmethod
    def from_policy(
        cls,
        real_dataset: Any,
        generator: str | Path | Any,
        policy: Any,
        transform: Callable[..., Any] | None = None,
        seed: int = 0,
        **kwargs: Any,
    ) -> GanAugDataset:
        """The dataset a mixing policy describes (a :class:`ganaug.eval.policy.MixPolicy` or a policy
        file such as ``eval uplift --tune``'s ``tuned_policy.json``): its strategy as ``ratio``, its
        temperature and truncation, and with ``soft_labels`` the teacher's probabilities (pass
        ``teacher=``). Draw batches with :func:`policy_sampler` for its batch mix; call
        :meth:`set_epoch` every epoch for a ``fresh`` policy. A policy that filters its samples
        (confidence filter, class-fidelity gate, near-duplicates) is refused: write those with
        ``ganaug augment --policy-file`` and train on that folder. The policy's loss is the training
        loop's: soft cross-entropy on the soft targets, ``loss=balanced_softmax`` and
        ``distill_real`` with :func:`ganaug.classifier.soft_cross_entropy` and
        :func:`ganaug.classifier.balanced_softmax_adjustment`."""
        policy = _as_policy(policy)
        if policy.soft_labels and kwargs.get("teacher") is None:
            raise UsageError(
                f"policy {policy.name!r} trains synthetic images on a teacher's soft labels: pass "
                "teacher= (a ganaug classifier .safetensors such as eval uplift's "
                "seed_N/real_classifier.safetensors, or an object with predict_proba)"
            )
        filters, _ = policy.augment_filters()
        if filters:
            raise UsageError(
                f"policy {policy.name!r} filters its samples ({', '.join(filters)}), which GanAugDataset "
                "cannot do on the fly: write them with 'ganaug augment --policy-file' instead"
            )
        if policy.picks_snapshot():
            generator = policy.generator_for(generator)
        settings = {"truncation": policy.truncation, "temperature": policy.temperature}
        if policy.soft_labels:
            settings.update(return_soft_labels=True, soft_weight=policy.soft_weight)
        ratio = policy.strategy if policy.uses_gan() else 0.0
        if isinstance(ratio, str) and is_number(ratio):
            ratio = float(ratio)
        return cls(real_dataset, generator, ratio, transform, seed, **{**settings, **kwargs})

    # -- setup ---------------------------------------------------------------------------------------
    def _real_labels(self, labels: Any) -> np.ndarray:
        if labels is None:
            labels = getattr(self.real, "labels", None)
        if labels is None:
            labels = getattr(self.real, "targets", None)
        if labels is None:
            labels = [int(self.real[i][1]) for i in range(len(self.real))]  # reads every item once
        arr = np.asarray(labels, dtype=np.int64).reshape(-1)
        if len(arr) != len(self.real):
            raise UsageError(f"{len(arr)} labels for a dataset of {len(self.real)} items")
        if len(arr) and arr.min() < 0:
            raise UsageError("labels must be >= 0")
        return arr

    @staticmethod
    def _plan(class_counts: dict[str, int], ratio: Any) -> dict[str, int]:
        if isinstance(ratio, (int, float)) and not isinstance(ratio, bool):
            return ratio_plan(class_counts, ratio)
        from ganaug.plugins import get_plugin_manager

        plan = get_plugin_manager().hook.ganaug_plan(class_counts=class_counts, options={"strategy": ratio})
        if plan is None:
            raise UsageError(f"ratio {ratio!r} is neither a number nor a strategy any plugin understands")
        return dict(plan)

    @property
    def sampler(self) -> Any:
        """The generator, opened on first use in this process."""
        if self._sampler is None:
            from ganaug.sampling import open_sampler

            self._sampler = open_sampler(self.generator_source, device=self.device)
        return self._sampler

    @property
    def teacher(self) -> Any:
        """The soft-label teacher, loaded on first use in this process (columns in ``classes`` order)."""
        if self._teacher is None and self._teacher_source:
            from ganaug.classifier import Classifier

            clf = Classifier.load(self._teacher_source)
            names = clf.classes or []
            missing = [c for c in self.classes if names and c not in names]
            if missing:
                raise UsageError(
                    f"teacher {self._teacher_source} does not know class(es) {', '.join(missing)}"
                )
            self._teacher = _Columns(clf, [names.index(c) for c in self.classes] if names else None)
        return self._teacher

    def _soft(self, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """The soft targets of synthetic ``images`` drawn for ``labels``."""
        probs = np.asarray(self.teacher.predict_proba(np.ascontiguousarray(images)), dtype=np.float32)
        if probs.shape != (len(images), len(self.classes)):
            raise UsageError(
                f"the teacher gave probabilities of shape {probs.shape}, "
                f"expected {(len(images), len(self.classes))}"
            )
        return mix_soft_targets(probs, labels, self.soft_weight, len(self.classes))

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        if state.get("_teacher_source"):
            state["_teacher"] = None  # reloaded lazily in each worker process
        state["_sampler"] = None  # reopened lazily in each worker process
        state["_blocks"] = OrderedDict()
        return state

    def set_epoch(self, epoch: int) -> None:
        """Use the synthetic images and transform randomness of ``epoch`` (0 = the base seed's)."""
        self.epoch = int(epoch)

    @staticmethod
    def worker_init_fn(worker_id: int) -> None:
        """DataLoader ``worker_init_fn``: seed ``random`` and ``numpy.random`` from the dataset's base
        seed, epoch and the worker id (GanAugDataset's own samples do not need it)."""
        info = torch.utils.data.get_worker_info()
        base = getattr(info.dataset, "seed", 0) if info is not None else 0
        epoch = getattr(info.dataset, "epoch", 0) if info is not None else 0
        s = _derive(base, epoch, worker_id, 0x5EED)
        random.seed(s)
        np.random.seed(s % 2**32)

    # -- items ---------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.n_real + self.n_synthetic

    def is_synthetic(self, index: int) -> bool:
        return self._check_index(index) >= self.n_real

    def _check_index(self, index: int) -> int:
        i = int(index)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        return i

    def _stream_seed(self) -> int:
        return self.seed if self.epoch == 0 else _derive(self.seed, self.epoch)

    def noise(self, synthetic_indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Latent rows of synthetic items ``j`` (float32 ``[n, z_dim]``) for the current epoch."""
        seed, z_dim = self._stream_seed(), self.sampler.z_dim
        idx = np.asarray(synthetic_indices, dtype=np.int64)
        out = np.empty((len(idx), z_dim), dtype=np.float32)
        for b in np.unique(idx // BLOCK_ROWS):
            key = (seed, int(b))
            block = self._blocks.get(key)
            if block is None:
                block = noise_block(seed, int(b), z_dim, self.truncation, self.temperature)
                self._blocks[key] = block
                while len(self._blocks) > _BLOCK_CACHE:
                    self._blocks.popitem(last=False)
            else:
                self._blocks.move_to_end(key)
            sel = idx // BLOCK_ROWS == b
            out[sel] = block[idx[sel] % BLOCK_ROWS]
        return out

    def _apply(
        self, transform: Callable[..., Any] | None, image: Any, label: int, index: int, salt: int
    ) -> Any:
        if transform is None:
            return image
        if _is_albumentations(transform):
            s = _derive(self.seed, self.epoch, index, salt)
            transform.set_random_state(np.random.default_rng(s), random.Random(s))
            strict = getattr(transform, "strict", False)
            if not strict or "label" in transform.available_keys:
                return transform(image=image, label=label)["image"]
            return transform(image=image)["image"]
        return transform(image)

    def _finish(
        self, image: Any, label: int, index: int, synthetic: bool, soft: np.ndarray | None = None
    ) -> tuple[Any, ...]:
        image = self._apply(self.transform, image, label, index, 1)
        item = (image, label, synthetic) if self.return_source else (image, label)
        if self.return_soft_labels:
            if soft is None:
                soft = np.zeros(len(self.classes), np.float32)
                soft[label] = 1.0
            item = (*item, soft)
        return item

    def _real_item(self, i: int) -> tuple[Any, ...]:
        if self._real_arrays:
            image, label = self.real.images[i], self.real.labels[i]
        else:
            item = self.real[i]
            image, label = item[0], item[1]
        return self._finish(image, int(label), i, False)

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[Any, ...]]:
        """A batch of items; the synthetic ones are generated in one call (used by DataLoader)."""
        idx = [self._check_index(i) for i in indices]
        out: list[tuple[Any, ...] | None] = [None] * len(idx)
        syn_pos = [k for k, i in enumerate(idx) if i >= self.n_real]
        if syn_pos:
            j = np.array([idx[k] - self.n_real for k in syn_pos], dtype=np.int64)
            labels = self.synthetic_labels[j]
            images = self.sampler.generate_from_noise(self.noise(j), self._to_generator[labels])
            soft = self._soft(images, labels) if self.return_soft_labels else [None] * len(images)
            for k, image, label, row in zip(syn_pos, images, labels, soft, strict=True):
                image = self._apply(self.synthetic_transform, image, int(label), idx[k], 2)
                out[k] = self._finish(image, int(label), idx[k], True, row)
        for k, i in enumerate(idx):
            if i < self.n_real:
                out[k] = self._real_item(i)
        return out  # type: ignore[return-value]

    def __getitem__(self, index: int) -> tuple[Any, ...]:
        return self.__getitems__([index])[0]

    def __repr__(self) -> str:
        return (
            f"GanAugDataset(real={self.n_real}, synthetic={self.n_synthetic}, ratio={self.ratio!r}, "
            f"generator={self.generator_source!r}, seed={self.seed}, epoch={self.epoch})"
        )


def policy_sampler(
    dataset: Any,
    policy: Any,
    *,
    labels: Sequence[int] | np.ndarray | None = None,
    synthetic: Sequence[bool] | np.ndarray | None = None,
    num_samples: int | None = None,
    seed: int = 0,
) -> torch.utils.data.WeightedRandomSampler:
    """A DataLoader ``sampler`` that draws items the way ``policy`` mixes its batches in ``ganaug
    eval uplift``: ``synthetic_share`` of every batch from the synthetic items (the real ones
    uniformly otherwise), or class-balanced batches (``balance``: oversampling, with or without GAN
    samples), else uniformly. ``policy``: a MixPolicy or a policy file. ``dataset``: a
    :class:`GanAugDataset` (labels and real/synthetic known), or any dataset with ``labels`` (one
    class index per item) and ``synthetic`` (True for each synthetic item, e.g. from an augment
    output's ``manifest.jsonl`` ``source``). Draws ``num_samples`` (default ``len(dataset)``)
    indices with replacement per epoch (new ones each epoch; the same sequence for the same ``seed``)."""
    from ganaug.eval.policy import draw_weights

    policy = _as_policy(policy)
    if labels is None and isinstance(dataset, GanAugDataset):
        labels = np.concatenate([dataset.real_labels, dataset.synthetic_labels])
        synthetic = np.arange(len(dataset)) >= dataset.n_real
    if labels is None:
        raise UsageError("policy_sampler needs labels= and synthetic= for a dataset other than GanAugDataset")
    labels = np.asarray(labels, np.int64).reshape(-1)
    mask = np.zeros(len(labels), bool) if synthetic is None else np.asarray(synthetic, bool).reshape(-1)
    if len(mask) != len(labels) or len(labels) != len(dataset):
        raise UsageError(f"{len(labels)} labels and {len(mask)} synthetic flags for {len(dataset)} items")
    if len(labels) and labels.min() < 0:
        raise UsageError("labels must be >= 0")
    k = int(labels.max()) + 1 if len(labels) else 1
    real_idx = np.flatnonzero(~mask) if policy.use_real else np.zeros(0, np.int64)
    syn_idx = np.flatnonzero(mask) if policy.uses_gan() else np.zeros(0, np.int64)
    w = draw_weights(policy, labels[real_idx], labels[syn_idx], k)
    weights = np.zeros(len(labels))  # synthetic items of a no-GAN policy are never drawn
    weights[np.concatenate([real_idx, syn_idx])] = 1.0 if w is None else w
    if weights.sum() <= 0:
        raise UsageError(f"policy {policy.name!r} draws nothing from this dataset")
    gen = torch.Generator().manual_seed(int(seed))
    n = len(labels) if num_samples is None else int(num_samples)
    return torch.utils.data.WeightedRandomSampler(weights.tolist(), n, replacement=True, generator=gen)


def _as_policy(policy: Any) -> Any:
    """A MixPolicy from a MixPolicy or a policy file path."""
    from ganaug.eval.policy import MixPolicy

    if isinstance(policy, MixPolicy):
        return policy
    if isinstance(policy, (str, Path)):
        from ganaug.eval.tune import load_policy_file

        return load_policy_file(policy)
    raise UsageError(f"expected a MixPolicy or a policy file path, got {type(policy).__name__}")


class _Columns:
    """A classifier whose probability columns are reordered (``None``: as is)."""

    def __init__(self, clf: Any, columns: list[int] | None) -> None:
        self.clf, self.columns = clf, columns

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        probs = self.clf.predict_proba(images)
        return probs if self.columns is None else probs[:, self.columns]


__all__ = ["GanAugDataset", "GanAugOptions"]
