"""Does augmentation help? Sample quality, CAS and the paired uplift experiment behind ``ganaug eval``.

- :func:`quality_report` -- FID, KID, precision/recall (overall and per class) and memorisation
  statistics of synthetic images against real held-out images, in the feature space of the domain
  feature extractor (:func:`ganaug.classifier.get_feature_extractor`).
- :func:`cas` -- classification accuracy score: the fixed classifier trained on synthetic images only,
  tested on real test images, beside the same classifier trained on as many real images per class.
- :func:`uplift` -- per seed: draw N real images per class (or imbalanced counts) from the training
  split, train a GAN on exactly those (or reuse ``generator``), then train the fixed classifier
  (a) on the real subset and (b) on the real subset plus GAN samples made by the augment pipeline
  (:func:`ganaug.augment.augment_dataset`) under one or more :class:`MixPolicy`, with the same
  classical augmentation and the same number of optimisation steps; test every arm on the real test
  split and report accuracy, balanced accuracy, per-class accuracy and the paired difference
  (mean, std and 95% t-interval over seeds).
"""

from __future__ import annotations

import dataclasses
import math
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ganaug.errors import DataError, UsageError
from ganaug.fileio import atomic_path, atomic_write_json, atomic_write_text
from ganaug.metrics import (
    classification_scores,
    fid,
    kid,
    mean_std,
    nearest_neighbour_distances,
    paired_difference,
    per_class,
    precision_recall,
)

CURRICULA = ("none", "pretrain")
LOSSES = ("ce", "balanced_softmax")


# -- data helpers ----------------------------------------------------------------------------------
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


def _align_test(test: Any, classes: list[str], image_shape: tuple[int, ...]) -> Any:
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


def _per_class_counts(
    per_class_n: int | Sequence[int] | None, imbalance: Sequence[int] | None, k: int
) -> list[int]:
    if imbalance is not None:
        counts = [int(c) for c in imbalance]
        if len(counts) != k:
            raise UsageError(f"--imbalance needs {k} counts (one per class), got {len(counts)}")
    elif per_class_n is None:
        raise UsageError("give --per-class N or --imbalance COUNTS")
    elif isinstance(per_class_n, (int, np.integer)):
        counts = [int(per_class_n)] * k
    else:
        counts = [int(c) for c in per_class_n]
    if any(c < 1 for c in counts) or len(counts) != k:
        raise UsageError(f"per-class counts must be {k} integers >= 1, got {counts}")
    return counts


def _draw(ds: Any, counts: list[int], seed: int) -> Any:
    try:
        return ds.sample_per_class(counts, seed=seed)
    except ValueError as exc:
        raise DataError(f"cannot draw the training subset: {exc}") from None


def yaml_value(raw: str) -> Any:
    """A YAML scalar, with ``4e-4`` read as a number (PyYAML wants ``4.0e-4``)."""
    import yaml

    value = yaml.safe_load(raw)
    if isinstance(value, str) and _is_number(value):
        return float(value)
    return value


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# -- quality ---------------------------------------------------------------------------------------
def memorisation_stats(
    synthetic_feats: np.ndarray, train_feats: np.ndarray, holdout_feats: np.ndarray | None = None
) -> dict[str, Any]:
    """Distances of synthetic samples to their nearest training sample.

    With ``holdout_feats`` (real images the generator never saw) the distances are put in scale:
    ``median_ratio`` = median synthetic NN distance / median holdout NN distance (well below 1 suggests
    copying), and ``near_copy_rate`` = share of synthetic samples closer to the training set than
    the 1st percentile of holdout distances (≈ 0.01 for a generator that does not copy).
    """
    d_syn, _ = nearest_neighbour_distances(synthetic_feats, train_feats)
    out: dict[str, Any] = {
        "synthetic_nn_median": float(np.median(d_syn)),
        "synthetic_nn_min": float(d_syn.min()),
    }
    if holdout_feats is not None and len(holdout_feats):
        d_real, _ = nearest_neighbour_distances(holdout_feats, train_feats)
        ref_med = float(np.median(d_real))
        out["holdout_nn_median"] = ref_med
        out["median_ratio"] = float(np.median(d_syn) / ref_med) if ref_med > 0 else None
        out["near_copy_rate"] = float((d_syn < np.percentile(d_real, 1)).mean())
    return out


def quality_report(
    real_holdout: Any,
    synthetic: Any,
    classifier: Any,
    *,
    train: Any | None = None,
    k: int = 3,
    kid_subsets: int = 50,
    kid_subset_size: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """FID, KID and precision/recall of ``synthetic`` against ``real_holdout``, overall and per class,
    in ``classifier``'s feature space; with ``train`` (the generator's training images) also
    :func:`memorisation_stats`. Datasets: ImageDataset or ``(images, labels)``; labels index the same
    classes."""
    real, syn = as_dataset(real_holdout), as_dataset(synthetic)
    f_real, f_syn = classifier.features(real.images), classifier.features(syn.images)
    k_eff = min(k, len(f_real) - 1, len(f_syn) - 1)
    if k_eff < 1:
        raise DataError("quality metrics need at least 2 real and 2 synthetic images")
    kid_mean, kid_std = kid(f_real, f_syn, subsets=kid_subsets, subset_size=kid_subset_size, seed=seed)
    precision, recall = precision_recall(f_real, f_syn, k=k_eff)
    classes = sorted(set(real.labels.tolist()) | set(syn.labels.tolist()))

    def _pr(a: np.ndarray, b: np.ndarray) -> list[float]:
        return list(precision_recall(a, b, k=min(k, len(a) - 1, len(b) - 1)))

    def _kid(a: np.ndarray, b: np.ndarray) -> float:
        return kid(a, b, subsets=max(1, kid_subsets // 5), subset_size=kid_subset_size, seed=seed)[0]

    pc_fid = per_class(fid, f_real, real.labels, f_syn, syn.labels, classes)
    pc_kid = per_class(_kid, f_real, real.labels, f_syn, syn.labels, classes)
    pc_pr = per_class(_pr, f_real, real.labels, f_syn, syn.labels, classes, min_samples=2)
    report: dict[str, Any] = {
        "n_real": len(real),
        "n_synthetic": len(syn),
        "feature_dim": int(f_real.shape[1]),
        "fid": fid(f_real, f_syn),
        "kid": kid_mean,
        "kid_std": kid_std,
        "precision": precision,
        "recall": recall,
        "per_class": {
            int(c): {
                "fid": pc_fid[c],
                "kid": pc_kid[c],
                "precision": None if pc_pr[c] is None else pc_pr[c][0],
                "recall": None if pc_pr[c] is None else pc_pr[c][1],
            }
            for c in classes
        },
    }
    reference = real_vs_real(f_real, seed=seed, kid_subsets=kid_subsets, kid_subset_size=kid_subset_size)
    if reference is not None:
        report["real_vs_real"] = reference
    if train is not None:
        tr = as_dataset(train)
        report["memorisation"] = memorisation_stats(f_syn, classifier.features(tr.images), f_real)
    return report


def real_vs_real(
    f_real: np.ndarray, *, seed: int = 0, kid_subsets: int = 50, kid_subset_size: int = 1000
) -> dict[str, Any] | None:
    """FID and KID between two random halves of the real features: the scale to read FID/KID by
    (what real images score against real images of the same kind, at half the sample size; a
    generator near it is as close to the data as the data is to itself). None under 4 images."""
    half = len(f_real) // 2
    if half < 2:
        return None
    perm = np.random.default_rng([int(seed), 0x2EA1]).permutation(len(f_real))
    a, b = f_real[perm[:half]], f_real[perm[half : 2 * half]]
    kid_mean, _ = kid(a, b, subsets=kid_subsets, subset_size=kid_subset_size, seed=seed)
    return {"fid": fid(a, b), "kid": kid_mean, "n_per_half": int(half)}


# -- CAS -------------------------------------------------------------------------------------------
def cas(
    synthetic: Any,
    real_test: Any,
    *,
    real_train: Any | None = None,
    num_classes: int | None = None,
    steps: int = 2000,
    batch_size: int = 128,
    seed: int = 0,
    hflip: bool = False,
    device: str = "cpu",
    progress: bool = False,
    amp: bool = False,
) -> dict[str, Any]:
    """Classification accuracy score: train the fixed classifier on ``synthetic`` only, test on
    ``real_test``. With ``real_train``, the same classifier is also trained on as many real images
    per class as there are synthetic ones (drawn with ``seed``) and reported beside it.
    ``amp``: bf16 autocast for the classifiers (CUDA, or CPUs with bf16 support)."""
    from ganaug.classifier import train_classifier

    syn, test = as_dataset(synthetic), as_dataset(real_test)
    k = num_classes or max(int(syn.labels.max()), int(test.labels.max())) + 1
    opts = {
        "steps": steps,
        "batch_size": batch_size,
        "seed": seed,
        "hflip": hflip,
        "device": device,
        "progress": progress,
        "amp": amp,
    }
    t0 = time.perf_counter()
    clf = train_classifier(syn.images, syn.labels, k, desc="CAS classifier", **opts)
    out: dict[str, Any] = {
        "n_synthetic": len(syn),
        "synthetic_only": {
            **clf.evaluate(test.images, test.labels),
            "train_seconds": time.perf_counter() - t0,
        },
    }
    if real_train is not None:
        real = as_dataset(real_train)
        counts = np.bincount(syn.labels, minlength=k)
        have = np.bincount(real.labels, minlength=k)
        counts = np.minimum(counts, have)
        subset = _draw(real, counts.tolist(), seed) if hasattr(real, "sample_per_class") else real
        t0 = time.perf_counter()
        clf_r = train_classifier(subset.images, subset.labels, k, desc="real classifier", **opts)
        out["real"] = {
            **clf_r.evaluate(test.images, test.labels),
            "n_train": len(subset),
            "train_seconds": time.perf_counter() - t0,
        }
        out["cas_gap"] = out["synthetic_only"]["accuracy"] - out["real"]["accuracy"]
    return out


# -- uplift ----------------------------------------------------------------------------------------
@dataclass
class MixPolicy:
    """How GAN samples join the real subset in arm (b) of :func:`uplift` (each field an option the
    user can choose; defaults = plain 1:1 augmentation).

    - ``strategy``: synthetic images per class, as for ``ganaug augment --strategy`` (a ratio of
      synthetic to real such as ``1.0`` or ``4``; ``"not majority"`` to bring only the smaller
      classes up to the largest -- balancing rare classes only).
    - ``max_synthetic_ratio``: cap of synthetic per real image in any class.
    - ``synthetic_weight``: per-sample loss weight of synthetic images (real ones weigh 1).
    - ``synthetic_share``: fraction of each training batch drawn from the synthetic images
      (``None``: proportional to their number).
    - ``balance``: draw every class equally often in each batch (class-balanced sampling, i.e.
      random oversampling of rare classes). With ``strategy=0`` this is the classical baseline a
      GAN must beat on imbalanced data.
    - ``filter``: the augment confidence filter, with the real-only arm's classifier (trained on the
      same real subset) rejecting samples whose intended class has probability < ``min_confidence``.
    - ``near_duplicate``: the augment near-duplicate filter (rejects copies of training images).
    - ``curriculum``: ``"none"`` (train on the mix) or ``"pretrain"`` (the first ``pretrain_fraction``
      of the steps on the synthetic images only, then fine-tune on the real subset).
    - ``use_real``: ``False`` trains on the synthetic images only (CAS arm).
    - ``truncation``: latent truncation for sampling.
    - ``loss``: ``"ce"`` (cross-entropy) or ``"balanced_softmax"``: the rebalancing loss of
      :func:`ganaug.classifier.balanced_softmax_adjustment` (Ren et al. 2020; logit adjustment,
      Menon et al. 2021), with the class prior of the training batches. With ``strategy=0`` the
      second no-GAN baseline on imbalanced data; with GAN samples, GAN arms on top of it.
    - ``soft_labels``: train the synthetic images on a teacher's class probabilities (soft
      cross-entropy) instead of their intended class; the teacher is the real-only arm's classifier
      (or the uplift ``teacher``). Every soft-label arm gets a control arm ``<name>-control``: the
      same training on the real images only, distilled from the same teacher (see ``distill_real``).
    - ``distill_real``: also distil the real images from the teacher, on the augmented view, with
      target ``(1 - distill_weight) * one-hot + distill_weight * teacher``.
    - ``fresh``: a fresh synthetic pool (same size and filters) every ``refresh_steps`` steps
      (default: one pass over the pool at the policy's batch share), instead of one fixed set.
    """

    name: str = "gan"
    strategy: Any = 1.0
    max_synthetic_ratio: float | None = None
    synthetic_weight: float = 1.0
    synthetic_share: float | None = None
    balance: bool = False
    filter: bool = False
    min_confidence: float = 0.9
    near_duplicate: bool = False
    curriculum: str = "none"
    pretrain_fraction: float = 0.5
    use_real: bool = True
    truncation: float | None = None
    loss: str = "ce"
    soft_labels: bool = False
    distill_real: bool = False
    distill_weight: float = 0.5
    fresh: bool = False
    refresh_steps: int | None = None

    def __post_init__(self) -> None:
        if not self.name or self.name == "real" or "/" in self.name:
            raise UsageError(f"policy name {self.name!r} is reserved or not a plain name")
        if self.synthetic_weight < 0:
            raise UsageError(f"synthetic_weight must be >= 0, got {self.synthetic_weight}")
        if self.synthetic_share is not None and not 0 < self.synthetic_share <= 1:
            raise UsageError(f"synthetic_share must be in (0, 1], got {self.synthetic_share}")
        if self.balance and self.synthetic_share is not None:
            raise UsageError("balance and synthetic_share both set the batch mix; choose one")
        if self.curriculum not in CURRICULA:
            raise UsageError(f"curriculum must be one of {', '.join(CURRICULA)}, got {self.curriculum!r}")
        if not 0 < self.pretrain_fraction < 1:
            raise UsageError(f"pretrain_fraction must be in (0, 1), got {self.pretrain_fraction}")
        if not 0 <= self.min_confidence <= 1:
            raise UsageError(f"min_confidence must be in [0, 1], got {self.min_confidence}")
        self._check_new_fields()

    def _check_new_fields(self) -> None:
        if self.loss not in LOSSES:
            raise UsageError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        if not 0 < self.distill_weight <= 1:
            raise UsageError(f"distill_weight must be in (0, 1], got {self.distill_weight}")
        if self.refresh_steps is not None and self.refresh_steps < 1:
            raise UsageError(f"refresh_steps must be >= 1, got {self.refresh_steps}")
        special = self.soft_labels or self.distill_real or self.fresh or self.loss != "ce"
        if self.curriculum != "none" and special:
            raise UsageError(
                "curriculum=pretrain cannot be combined with loss, soft_labels, distill_real or fresh"
            )
        if (self.fresh or self.soft_labels) and not self.uses_gan():
            raise UsageError(f"policy {self.name!r}: fresh and soft_labels need GAN samples (strategy 0)")
        if self.fresh and not self.use_real:
            raise UsageError("fresh needs use_real (the pool is mixed into the real images)")

    def uses_gan(self) -> bool:
        """False for the no-GAN baselines (``strategy`` 0: real images only)."""
        return not (_is_number(str(self.strategy)) and float(self.strategy) == 0)

    def control(self) -> MixPolicy:
        """The distillation control of a soft-label arm: the same policy on the real images only,
        distilled from the same teacher; everything that is not about synthetic images is kept."""
        return dataclasses.replace(
            self,
            name=f"{self.name}-control",
            strategy=0,
            max_synthetic_ratio=None,
            synthetic_weight=1.0,
            synthetic_share=None,
            filter=False,
            near_duplicate=False,
            truncation=None,
            soft_labels=False,
            distill_real=True,
            fresh=False,
            refresh_steps=None,
        )

    def synthetic_key(self) -> tuple:
        """Policies with equal keys share one synthetic set per seed."""
        return (
            str(self.strategy),
            self.max_synthetic_ratio,
            self.filter,
            self.min_confidence if self.filter else None,
            self.near_duplicate,
            self.truncation,
        )

    @classmethod
    def parse(cls, spec: str) -> MixPolicy:
        """``"name=filtered,strategy=1,filter=true,min_confidence=0.9"`` -> MixPolicy (YAML values)."""
        fields = {f.name for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            key, sep, raw = part.partition("=")
            key = key.strip().replace("-", "_")
            if not sep or key not in fields:
                raise UsageError(
                    f"--policy {spec!r}: expected key=value pairs with keys {', '.join(sorted(fields))}"
                )
            if key == "name" or (key == "strategy" and not _is_number(raw)):
                values[key] = raw.strip()
            else:
                values[key] = yaml_value(raw)
        if "name" not in values:
            values["name"] = "gan" if not values else "-".join(f"{k}{v}" for k, v in values.items())[:60]
        return cls(**values)


@dataclass
class UpliftConfig:
    """Settings of an uplift experiment (saved in ``report.json``)."""

    counts: list[int]
    seeds: list[int]
    classifier_steps: int = 2000
    classifier_batch_size: int = 128
    classifier_lr: float = 2e-3
    hflip: bool = False
    shift: int | None = None
    amp: bool = False
    gan_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    generator: str | None = None
    policies: list[MixPolicy] = dataclasses.field(default_factory=lambda: [MixPolicy()])
    quality: bool = True
    quality_per_class: int = 500
    feature_steps: int = 3000
    device: str = "cpu"
    teacher: str | None = None
    tune: bool = False
    tune_fraction: float = 0.2
    tune_grid: list[MixPolicy] = dataclasses.field(default_factory=list)
    tune_test_all: bool = False
    threads: int | None = None


def _classifier_opts(cfg: UpliftConfig) -> dict[str, Any]:
    return {
        "steps": cfg.classifier_steps,
        "batch_size": cfg.classifier_batch_size,
        "lr": cfg.classifier_lr,
        "hflip": cfg.hflip,
        "shift": cfg.shift,
        "amp": cfg.amp,
        "device": cfg.device,
    }


def class_balanced_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Per-sample draw weights that give every present class the same total weight."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    return 1.0 / counts[labels]


@dataclass
class Synthetic:
    """One synthetic set of a seed: images, labels (data class indices), teacher probabilities
    (``[n, k]`` or None) and its bookkeeping."""

    images: np.ndarray
    labels: np.ndarray
    soft: np.ndarray | None = None
    info: dict[str, Any] = dataclasses.field(default_factory=dict)


def mix_arrays(policy: MixPolicy, real: Any, syn: Synthetic, k: int) -> dict[str, Any]:
    """The training arrays of one arm (``train_classifier`` data arguments): the real subset and/or
    the synthetic set, loss weights, batch draw weights, soft targets (NaN rows = hard label) and
    the distillation mask, as ``policy`` says."""
    n_syn = len(syn.images) if policy.uses_gan() else 0
    if n_syn == 0:
        if not policy.use_real:
            raise DataError(f"policy {policy.name!r}: no synthetic images passed the filters")
        out: dict[str, Any] = {"images": real.images, "labels": real.labels}
        if policy.balance:
            out["draw_weight"] = class_balanced_weights(real.labels, k)
        if policy.distill_real:
            out["distill_mask"] = np.ones(len(real), bool)
        return out
    if not policy.use_real:
        out = {"images": syn.images, "labels": syn.labels}
        if policy.soft_labels:
            out["soft_targets"] = _require_soft(policy, syn)
        return out
    n_real = len(real)
    out = {
        "images": np.concatenate([real.images, syn.images]),
        "labels": np.concatenate([real.labels, syn.labels]),
    }
    if policy.synthetic_weight != 1.0:
        out["sample_weight"] = np.concatenate(
            [np.ones(n_real, np.float32), np.full(n_syn, policy.synthetic_weight, np.float32)]
        )
    if policy.synthetic_share is not None:
        share = policy.synthetic_share
        out["draw_weight"] = np.concatenate(
            [np.full(n_real, (1 - share) / n_real), np.full(n_syn, share / n_syn)]
        )
    elif policy.balance:
        out["draw_weight"] = class_balanced_weights(out["labels"], k)
    if policy.soft_labels:
        real_rows = np.full((n_real, k), np.nan, np.float32)
        out["soft_targets"] = np.concatenate([real_rows, _require_soft(policy, syn)])
    if policy.distill_real:
        out["distill_mask"] = np.concatenate([np.ones(n_real, bool), np.zeros(n_syn, bool)])
    return out


def _require_soft(policy: MixPolicy, syn: Synthetic) -> np.ndarray:
    if syn.soft is None:
        raise DataError(f"policy {policy.name!r}: the synthetic set carries no soft labels")
    return syn.soft.astype(np.float32)


def batch_class_prior(labels: np.ndarray, k: int, draw_weight: np.ndarray | None = None) -> np.ndarray:
    """Expected class distribution of the training batches (draw weights summed per class)."""
    w = np.ones(len(labels)) if draw_weight is None else np.asarray(draw_weight, np.float64)
    prior = np.bincount(labels, weights=w, minlength=k)
    return prior / prior.sum()


def _loss_options(policy: MixPolicy, arrays: dict[str, Any], k: int, teacher: Any) -> dict[str, Any]:
    from ganaug.classifier import balanced_softmax_adjustment

    opts: dict[str, Any] = {}
    if policy.loss == "balanced_softmax":
        prior = batch_class_prior(arrays["labels"], k, arrays.get("draw_weight"))
        opts["logit_adjustment"] = balanced_softmax_adjustment(prior)
    if policy.distill_real:
        if teacher is None:
            raise UsageError(f"policy {policy.name!r}: distill_real needs a teacher")
        opts.update(teacher=teacher, distill_weight=policy.distill_weight)
    return opts


def refresh_every(policy: MixPolicy, n_real: int, n_syn: int, batch_size: int) -> int:
    """Steps between fresh pools: ``refresh_steps``, else one pass over the pool at its batch share."""
    if policy.refresh_steps is not None:
        return int(policy.refresh_steps)
    share = policy.synthetic_share if policy.synthetic_share is not None else n_syn / max(1, n_real + n_syn)
    return max(1, math.ceil(n_syn / max(1e-9, batch_size * share)))


def _train_arm(
    policy: MixPolicy,
    real: Any,
    syn: Synthetic,
    k: int,
    seed: int,
    cfg: UpliftConfig,
    progress: bool,
    teacher: Any = None,
    fresh: Callable[[int], Synthetic] | None = None,
) -> Any:
    """Train one policy's arm; the same total number of steps as the real-only arm. ``fresh(r)``
    gives the ``r``-th fresh synthetic pool (``fresh`` policies)."""
    from ganaug.classifier import train_classifier

    opts = {**_classifier_opts(cfg), "seed": seed, "progress": progress, "classes": list(real.classes)}
    if policy.curriculum == "pretrain" and policy.uses_gan() and len(syn.images) and policy.use_real:
        total = opts.pop("steps")
        pre = max(1, round(total * policy.pretrain_fraction))
        first = train_classifier(
            syn.images, syn.labels, k, steps=pre, desc=f"{policy.name} pre-train", **opts
        )
        return train_classifier(
            real.images,
            real.labels,
            k,
            steps=total - pre,
            init=first,
            desc=f"{policy.name} fine-tune",
            **opts,
        )
    arrays = mix_arrays(policy, real, syn, k)
    extra = _loss_options(policy, arrays, k, teacher)
    n_syn = len(arrays["images"]) - len(real) if policy.use_real else len(arrays["images"])
    if policy.fresh and n_syn > 0 and fresh is not None:
        every = refresh_every(policy, len(real), n_syn, cfg.classifier_batch_size)
        extra.update(refresh=lambda r: mix_arrays(policy, real, fresh(r), k), refresh_every=every)
    if n_syn == 0:
        desc = policy.name if (policy.balance or not policy.uses_gan()) else f"{policy.name} (no synthetic)"
    else:
        desc = policy.name if policy.use_real else f"{policy.name} (synthetic only)"
    return train_classifier(**arrays, num_classes=k, desc=desc, **opts, **extra)


def _synthesize(
    policy: MixPolicy,
    real: Any,
    generator: Path,
    out: Path,
    seed: int,
    filter_classifier: Path,
    progress: bool,
    warn: Callable[[str], None],
    soft_labels: bool = False,
    teacher: Path | None = None,
) -> Synthetic:
    """GAN samples for ``policy`` through the augment pipeline (synthetic only, NPZ in ``out``);
    with ``soft_labels`` also the teacher's probabilities (``teacher``, else the filter classifier)."""
    from ganaug.augment import augment_dataset

    filters = (["confidence"] if policy.filter else []) + (
        ["near-duplicate"] if policy.near_duplicate else []
    )
    summary = augment_dataset(
        real,
        generator,
        out,
        strategy=policy.strategy,
        max_synthetic_ratio=policy.max_synthetic_ratio,
        filters=filters,
        min_confidence=policy.min_confidence,
        filter_classifier=filter_classifier,
        fmt="npz",
        real="none",
        seed=seed,
        truncation=policy.truncation,
        overwrite=True,
        progress=progress,
        warn=lambda _m: None,  # per-class shortfalls: summarised below in one line
        soft_labels=soft_labels,
        teacher=(teacher or filter_classifier) if soft_labels else None,
    )
    with np.load(out / "data.npz", allow_pickle=False) as npz:
        images, labels = npz["images"], npz["labels"].astype(np.int64)
        names = [str(c) for c in npz["classes"]]
        soft = npz["soft_labels"] if "soft_labels" in npz.files else None
    if soft_labels and soft is None:
        soft = np.zeros((0, len(real.classes)), np.float32)
    if names != list(real.classes):  # map the writer's class order onto the data's
        index = {name: i for i, name in enumerate(real.classes)}
        labels = np.array([index[names[i]] for i in labels], dtype=np.int64)
        if soft is not None:
            soft = soft[:, [names.index(c) for c in real.classes]]
    info = {
        "n_synthetic": len(images),
        "counts": summary["counts"]["synthetic"],
        "candidates": summary.get("candidates", {}),
        "rejected": summary.get("rejected", {}),
        "shortfall": summary.get("shortfall", {}),
    }
    drawn = sum(info["candidates"].values())
    info["acceptance_rate"] = (len(images) / drawn) if drawn else None
    if info["shortfall"]:
        planned = len(images) + sum(info["shortfall"].values())
        warn(
            f"policy {policy.name!r}: only {len(images)} of {planned} synthetic images passed the filters "
            f"({len(info['shortfall'])} classes short, {info['acceptance_rate']:.0%} of candidates kept)"
        )
    return Synthetic(images, labels, soft, info)


def _arm_result(
    clf: Any, test: Any, seconds: float, n_train: int, extra: dict | None = None
) -> dict[str, Any]:
    scores = classification_scores(test.labels, clf.predict(test.images), len(test.classes))
    return {**scores, "n_train": n_train, "train_seconds": round(seconds, 2), **(extra or {})}


def _summarise(seeds: list[dict[str, Any]], arms: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    summary: dict[str, Any] = {}
    for arm in arms:
        rows = [s["arms"][arm] for s in seeds]
        entry: dict[str, Any] = {}
        for metric in ("accuracy", "balanced_accuracy"):
            vals = [100.0 * r[metric] for r in rows]
            mean, std = mean_std(vals)
            entry[metric] = {"mean": mean, "std": std, "values": vals}
        pcs = np.array([[np.nan if v is None else 100.0 * v for v in r["per_class_accuracy"]] for r in rows])
        entry["per_class_accuracy"] = (
            [None if np.isnan(v) else float(v) for v in np.nanmean(pcs, 0)] if len(pcs) else []
        )
        summary[arm] = entry
    paired: dict[str, Any] = {}
    for arm in arms[1:]:
        paired[arm] = _paired(summary, arm, "real")
    return summary, paired


def _paired(summary: dict[str, Any], arm: str, base: str) -> dict[str, Any]:
    return {
        metric: paired_difference(summary[arm][metric]["values"], summary[base][metric]["values"])
        for metric in ("accuracy", "balanced_accuracy")
    }


def auto_threads(cores: int | None = None) -> int:
    """Default torch threads for the uplift classifiers: half the usable cores, 1 to 8.

    The small CNN's steps are too short to feed many threads, and on a machine shared with other
    processes OpenMP threads that outnumber free cores spin-wait: on 2 cores 1 thread per process
    measured several times faster than the default of 2."""
    if cores is None:
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            cores = os.cpu_count() or 1
    return max(1, min(8, int(cores) // 2))


def uplift(
    data: Any,
    test: Any,
    *,
    per_class_n: int | Sequence[int] | None = None,
    imbalance: Sequence[int] | None = None,
    seeds: int | Sequence[int] = 3,
    out_dir: str | os.PathLike[str],
    generator: str | os.PathLike[str] | None = None,
    gan_options: dict[str, Any] | None = None,
    policies: Sequence[MixPolicy] | None = None,
    classifier_steps: int = 2000,
    classifier_batch_size: int = 128,
    classifier_lr: float = 2e-3,
    hflip: bool = False,
    shift: int | None = None,
    amp: bool = False,
    quality: bool = True,
    quality_per_class: int = 500,
    feature_steps: int = 3000,
    device: str = "cpu",
    progress: bool = False,
    echo: Callable[[str], None] | None = None,
    warn: Callable[[str], None] | None = None,
    plots: bool = True,
    command: str | None = None,
    teacher: str | os.PathLike[str] | None = None,
    tune: bool = False,
    tune_fraction: float = 0.2,
    tune_grid: Sequence[MixPolicy] | None = None,
    tune_test_all: bool = False,
    threads: int | None = None,
) -> dict[str, Any]:
    """Run the paired uplift experiment and write ``report.json``, ``report.md`` and plots to ``out_dir``.

    ``data``/``test``: training and test splits (paths, ImageDatasets or ``(images, labels)``).
    ``per_class_n`` real images per class (or ``imbalance``, one count per class) are drawn from
    ``data`` for each seed in ``seeds`` (an int K means seeds 0..K-1). A GAN is trained on exactly that
    subset with ``gan_options`` (:func:`ganaug.training.train` options) unless ``generator`` (run dir,
    weights or ``.onnx``) is given; ``{seed}`` in its path picks one generator per seed, e.g. the
    per-seed GANs of an earlier run, each trained on that seed's subset. Arm ``real`` trains the
    fixed classifier on the subset; each
    :class:`MixPolicy` adds one arm on the subset plus GAN samples; all arms share seed, classical
    augmentation and ``classifier_steps``. ``command`` (the command line) is recorded in the
    report. Returns the report dict.

    ``teacher`` (ONNX or ganaug ``.safetensors``; ``{seed}`` allowed) replaces the real-only arm's
    classifier as the teacher of soft-label and distillation arms. ``tune`` first chooses a policy
    on a stratified validation split (``tune_fraction``) of each seed's subset from ``tune_grid``
    (default :func:`ganaug.tune.default_grid`) plus ``policies`` and the real-only arm, then adds
    the choice, retrained on the whole subset, as arm ``tuned`` (with ``tune_test_all`` every
    candidate is also tested) and ends the report with a recommendation; the test split is first
    used after the choice. ``test`` may be ``None`` with ``tune`` (choose only, no test arms).
    ``threads``: torch threads (default :func:`auto_threads`, or torch's own setting when
    ``OMP_NUM_THREADS`` is set).
    """
    say = echo or (lambda _m: None)
    complain = warn or (lambda _m: None)
    t_start = time.perf_counter()
    train_ds = as_dataset(data)
    classes = list(train_ds.classes)
    k = len(classes)
    if test is None and not tune:
        raise UsageError("a test split is needed (only --tune may run without one)")
    seed_list = list(range(int(seeds))) if isinstance(seeds, (int, np.integer)) else [int(s) for s in seeds]
    if not seed_list:
        raise UsageError("need at least one seed")
    policies = list(policies) if policies else ([] if tune else [MixPolicy()])
    names = [p.name for p in policies]
    if len(set(names)) != len(names):
        raise UsageError(f"policy names must be unique, got {names}")
    for path, what in ((generator, "--generator"), (teacher, "--teacher")):
        if path is not None:
            for seed in seed_list:  # "{seed}": one file per seed (e.g. an earlier run's GANs)
                candidate = Path(str(path).replace("{seed}", str(seed)))
                if not candidate.exists():
                    raise UsageError(f"{what} not found: {candidate}")
    counts = _per_class_counts(per_class_n, imbalance, k)
    cfg = UpliftConfig(
        counts=counts,
        seeds=seed_list,
        classifier_steps=classifier_steps,
        classifier_batch_size=classifier_batch_size,
        classifier_lr=classifier_lr,
        hflip=hflip,
        shift=shift,
        amp=amp,
        gan_options=dict(gan_options or {}),
        generator=str(generator) if generator else None,
        policies=policies,
        quality=quality,
        quality_per_class=quality_per_class,
        feature_steps=feature_steps,
        device=device,
        teacher=str(teacher) if teacher else None,
        tune=tune,
        tune_fraction=tune_fraction,
        tune_grid=list(tune_grid) if tune_grid is not None else [],
        tune_test_all=tune_test_all,
        threads=threads,
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with _torch_threads(threads) as n_threads:
        say(f"{n_threads} torch thread{'s' if n_threads != 1 else ''} per classifier (--threads to change)")
        report = _uplift_body(train_ds, test, cfg, out, progress, say, complain, command, n_threads)
    report["wall_seconds"] = round(time.perf_counter() - t_start, 1)
    if report.get("arms") is None:  # tuning only
        from ganaug.tune import tune_markdown

        atomic_write_json(out / "report.json", report)
        atomic_write_text(out / "report.md", tune_markdown(report))
        return report
    from ganaug.report import write_uplift_report

    write_uplift_report(report, out, plots=plots)
    return report


class _torch_threads:
    """Set torch's intra-op threads for a block (``None``: :func:`auto_threads`, unless the user set
    ``OMP_NUM_THREADS``) and restore them afterwards."""

    def __init__(self, threads: int | None) -> None:
        self.threads = threads

    def __enter__(self) -> int:
        import torch

        self.before = torch.get_num_threads()
        if self.threads is not None and self.threads < 1:
            raise UsageError(f"--threads must be >= 1, got {self.threads}")
        n = self.threads or (self.before if os.environ.get("OMP_NUM_THREADS") else auto_threads())
        torch.set_num_threads(n)
        return n

    def __exit__(self, *exc: object) -> None:
        import torch

        torch.set_num_threads(self.before)


def _uplift_body(
    train_ds: Any,
    test: Any,
    cfg: UpliftConfig,
    out: Path,
    progress: bool,
    say: Callable[[str], None],
    complain: Callable[[str], None],
    command: str | None,
    n_threads: int,
) -> dict[str, Any]:
    classes = list(train_ds.classes)
    generators: dict[int, tuple[Path, dict[str, Any]]] = {}
    tuned = None
    if cfg.tune:
        tuned = _tune(train_ds, cfg, out, generators, progress, say, complain)
        cfg.policies = _test_policies(cfg, tuned)
    report: dict[str, Any] = {
        "kind": "ganaug.uplift",
        "command": command,
        "data": getattr(train_ds, "source", ""),
        "classes": classes,
        "threads": n_threads,
    }
    if tuned is not None:
        report["tune"] = tuned["summary"]
        report["recommendation"] = tuned["summary"]["recommendation"]
    if test is None:  # --tune without a test split: the choice only
        report.update(settings=_settings_dict(cfg), arms=None, versions=_versions())
        return report
    test_ds = _align_test(as_dataset(test, classes), classes, train_ds.images.shape[1:])
    report["test"] = getattr(test_ds, "source", "")

    extractor = None
    if cfg.quality:
        from ganaug.classifier import get_feature_extractor

        say(
            f"domain feature extractor ({cfg.feature_steps} steps on {len(train_ds)} training images; cached)"
        )
        t0 = time.perf_counter()
        extractor = get_feature_extractor(
            train_ds, steps=cfg.feature_steps, device=cfg.device, progress=progress
        )
        report["feature_extractor"] = {
            "steps": cfg.feature_steps,
            "seconds": round(time.perf_counter() - t0, 1),
            "key": extractor.meta.extra.get("dataset_key"),
        }
    seed_results = [
        _run_seed(seed, train_ds, test_ds, cfg, out, extractor, progress, say, complain, generators)
        for seed in cfg.seeds
    ]
    arms = ["real", *[a for a in seed_results[0]["arms"] if a != "real"]]
    summary, paired = _summarise(seed_results, arms)
    controls = seed_results[0].get("controls", {})
    report.update(
        settings=_settings_dict(cfg),
        arms=arms,
        summary=summary,
        paired=paired,
        seeds=seed_results,
        versions=_versions(),
    )
    if controls:
        report["controls"] = controls
        report["paired_control"] = {arm: _paired(summary, arm, ctl) for arm, ctl in controls.items()}
    return report


def _settings_dict(cfg: UpliftConfig) -> dict[str, Any]:
    d = dataclasses.asdict(cfg)
    d["policies"] = [dataclasses.asdict(p) for p in cfg.policies]
    d["tune_grid"] = [dataclasses.asdict(p) for p in cfg.tune_grid]
    return d


def _versions() -> dict[str, str]:
    import torch

    from ganaug import __version__

    return {
        "ganaug": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def _seed_generator(
    seed: int,
    subset: Any,
    cfg: UpliftConfig,
    seed_dir: Path,
    progress: bool,
    say: Callable[[str], None],
) -> tuple[Path, dict[str, Any]]:
    """The seed's generator: trained on exactly ``subset``, or the given one."""
    t0 = time.perf_counter()
    if cfg.generator is not None:
        gen_path = Path(cfg.generator.replace("{seed}", str(seed)))
        info: dict[str, Any] = {"source": str(gen_path), "trained": False}
    else:
        from ganaug.training import train

        say(f"seed {seed}: training the GAN on {len(subset)} real images")
        opts = {"seed": seed, **cfg.gan_options}
        run = train(
            None,
            seed_dir / "gan",
            dataset=subset,
            overwrite=True,
            quiet=not progress,
            progress=progress,
            **opts,
        )
        gen_path = Path(run.run_dir)
        info = {
            "source": str(gen_path),
            "trained": True,
            "steps": run.step,
            "options": dict(opts),
            "metrics": run.metrics,
        }
    info["seconds"] = round(time.perf_counter() - t0, 1)
    return gen_path, info


def _teacher(cfg: UpliftConfig, seed: int, real_clf: Any, real_clf_path: Path) -> tuple[Any, Path]:
    """The teacher of soft-label and distillation arms: ``cfg.teacher`` or the real-only classifier."""
    if cfg.teacher is None:
        return real_clf, real_clf_path
    path = Path(cfg.teacher.replace("{seed}", str(seed)))
    if path.suffix.lower() == ".onnx":
        from plugins.filters import OnnxClassifier  # the built-in plugin's ONNX classifier reader

        return OnnxClassifier(path, list(real_clf.classes or [])), path
    from ganaug.classifier import Classifier

    return Classifier.load(path, cfg.device), path


@dataclass
class _SeedContext:
    """What every arm of one seed (or of one seed's tuning split) shares."""

    seed: int
    real: Any
    k: int
    gen_path: Path
    work: Path
    filter_path: Path
    teacher: Any
    teacher_path: Path
    progress: bool
    say: Callable[[str], None]
    complain: Callable[[str], None]


def _policy_arms(
    ctx: _SeedContext,
    policies: Sequence[MixPolicy],
    cfg: UpliftConfig,
    score: Callable[[Any], dict[str, Any]],
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Train every policy's arm (and the distillation control of each soft-label arm) on ``ctx.real``
    plus GAN samples; ``score(clf)`` evaluates a classifier. Returns ``(results, controls)`` with
    ``controls`` mapping each soft-label arm to its control arm."""
    results: dict[str, dict[str, Any]] = {}
    sets: dict[tuple, tuple[Synthetic, float]] = {}
    need_soft = {p.synthetic_key() for p in policies if p.soft_labels}
    controls: dict[str, str] = {}
    control_policies = []
    for policy in policies:
        if policy.soft_labels:
            ctl = policy.control()
            if ctl.name in {p.name for p in policies}:
                raise UsageError(f"policy name {ctl.name!r} is taken by the control arm of {policy.name!r}")
            controls[policy.name] = ctl.name
            control_policies.append(ctl)
    for policy in [*policies, *control_policies]:
        key = policy.synthetic_key()
        if policy.uses_gan() and key not in sets:
            notes = (", confidence filter" if policy.filter else "") + (
                ", soft labels" if key in need_soft else ""
            )
            ctx.say(
                f"seed {ctx.seed}: synthetic images for {policy.name!r} (strategy {policy.strategy!r}{notes})"
            )
            t0 = time.perf_counter()
            syn = _synth(ctx, policy, ctx.work / f"synthetic_{policy.name}", ctx.seed, key in need_soft)
            sets[key] = (syn, time.perf_counter() - t0)
        if policy.uses_gan():
            syn, syn_seconds = sets[key]
        else:  # a no-GAN baseline: no synthetic set at all
            syn, syn_seconds = Synthetic(ctx.real.images[:0], ctx.real.labels[:0]), 0.0
        fresh_rounds: list[int] = []

        def fresh(r: int, policy: MixPolicy = policy, log: list[int] = fresh_rounds) -> Synthetic:
            log.append(r)
            round_seed = _derive_seed(ctx.seed, r)
            return _synth(ctx, policy, ctx.work / f"fresh_{policy.name}", round_seed, policy.soft_labels)

        ctx.say(
            f"seed {ctx.seed}: classifier for {policy.name!r} ({len(ctx.real)} real + {len(syn.images)} "
            f"synthetic{', fresh every epoch' if policy.fresh else ''}; {_n_threads()})"
        )
        t0 = time.perf_counter()
        clf = _train_arm(policy, ctx.real, syn, ctx.k, ctx.seed, cfg, ctx.progress, ctx.teacher, fresh)
        info = {**syn.info, "n_synthetic": len(syn.images)}
        if policy.fresh:
            info["fresh_pools"] = 1 + len(fresh_rounds)
        results[policy.name] = {
            **score(clf),
            "train_seconds": round(time.perf_counter() - t0, 2),
            "n_train": len(ctx.real) * policy.use_real + len(syn.images),
            "synthetic": info,
            "synthesis_seconds": round(syn_seconds, 2),
        }
    return results, controls


def _synth(ctx: _SeedContext, policy: MixPolicy, out: Path, seed: int, soft: bool) -> Synthetic:
    return _synthesize(
        policy,
        ctx.real,
        ctx.gen_path,
        out,
        seed,
        ctx.filter_path,
        ctx.progress,
        ctx.complain,
        soft_labels=soft,
        teacher=ctx.teacher_path,
    )


def _derive_seed(seed: int, r: int) -> int:
    """The noise seed of fresh pool ``r`` (> 0) of a seed's arm (pool 0 uses the seed itself)."""
    return int(np.random.SeedSequence([int(seed), int(r), 0xF2E5]).generate_state(1)[0] >> 1)


def _n_threads() -> str:
    """``"1 thread"`` / ``"N threads"``: torch's intra-op threads, for the progress lines."""
    import torch

    n = torch.get_num_threads()
    return f"{n} thread{'s' if n != 1 else ''}"


def _real_classifier(
    ctx_seed: int, real: Any, classes: list[str], cfg: UpliftConfig, progress: bool, desc: str
) -> Any:
    from ganaug.classifier import train_classifier

    return train_classifier(
        real.images,
        real.labels,
        len(classes),
        seed=ctx_seed,
        progress=progress,
        classes=classes,
        desc=desc,
        **_classifier_opts(cfg),
    )


def _run_seed(
    seed: int,
    train_ds: Any,
    test_ds: Any,
    cfg: UpliftConfig,
    out: Path,
    extractor: Any,
    progress: bool,
    say: Callable[[str], None],
    complain: Callable[[str], None],
    generators: dict[int, tuple[Path, dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    k = len(train_ds.classes)
    seed_dir = out / f"seed_{seed}"
    seed_dir.mkdir(parents=True, exist_ok=True)
    subset = _draw(train_ds, cfg.counts, seed)
    result: dict[str, Any] = {"seed": seed, "n_real": len(subset), "arms": {}}
    generators = {} if generators is None else generators
    if seed not in generators:
        generators[seed] = _seed_generator(seed, subset, cfg, seed_dir, progress, say)
    gen_path, result["gan"] = generators[seed]

    # arm (a): the real subset with classical augmentation
    say(f"seed {seed}: classifier on the real subset ({cfg.classifier_steps} steps, {_n_threads()})")
    t0 = time.perf_counter()
    real_clf = _real_classifier(seed, subset, list(train_ds.classes), cfg, progress, "real only")
    result["arms"]["real"] = _arm_result(real_clf, test_ds, time.perf_counter() - t0, len(subset))
    filter_path = real_clf.save(seed_dir / "real_classifier.safetensors")
    teacher, teacher_path = _teacher(cfg, seed, real_clf, filter_path)

    # arm(s) (b): real + GAN samples through the augment pipeline (and distillation controls)
    ctx = _SeedContext(
        seed, subset, k, gen_path, seed_dir, filter_path, teacher, teacher_path, progress, say, complain
    )

    def score(clf: Any) -> dict[str, Any]:
        return classification_scores(test_ds.labels, clf.predict(test_ds.images), k)

    arms, controls = _policy_arms(ctx, cfg.policies, cfg, score)
    for name, res in arms.items():
        result["arms"][name] = res
    if controls:
        result["controls"] = controls

    if extractor is not None:
        result["quality"] = _seed_quality(gen_path, subset, test_ds, extractor, seed, cfg, seed_dir)
    atomic_write_json(seed_dir / "result.json", result)  # survives a crash in a later seed
    return result


# -- tuning ----------------------------------------------------------------------------------------
def _tune_candidates(cfg: UpliftConfig) -> list[MixPolicy]:
    from ganaug.tune import default_grid

    grid = list(cfg.tune_grid) or default_grid(len(set(cfg.counts)) > 1)
    names = {p.name for p in grid}
    return grid + [p for p in cfg.policies if p.name not in names]


def _tune(
    train_ds: Any,
    cfg: UpliftConfig,
    out: Path,
    generators: dict[int, tuple[Path, dict[str, Any]]],
    progress: bool,
    say: Callable[[str], None],
    complain: Callable[[str], None],
) -> dict[str, Any]:
    """Score every candidate on each seed's validation split; choose; write ``tuned_policy.json``.
    Takes no test split: nothing here can look at it."""
    from ganaug.tune import choose_policy, tune_summary, write_policy_file

    candidates = _tune_candidates(cfg)
    metric = "balanced_accuracy" if len(set(cfg.counts)) > 1 else "accuracy"
    scores: dict[str, list[float]] = {}
    by_name = {p.name: p for p in candidates}
    for seed in cfg.seeds:
        seed_dir = out / f"seed_{seed}"
        seed_dir.mkdir(parents=True, exist_ok=True)
        subset = _draw(train_ds, cfg.counts, seed)
        if seed not in generators:
            generators[seed] = _seed_generator(seed, subset, cfg, seed_dir, progress, say)
        val_scores = tune_seed(
            seed, subset, candidates, cfg, generators[seed][0], seed_dir / "tune", progress, say, complain
        )
        atomic_write_json(seed_dir / "tune.json", val_scores)
        for name, res in val_scores["arms"].items():
            scores.setdefault(name, []).append(100.0 * res[metric])
        by_name.update({ctl: by_name[arm].control() for arm, ctl in val_scores["controls"].items()})
    choice = choose_policy(scores, by_name, metric)
    chosen = by_name.get(choice["choice"]) or MixPolicy(name="tuned", strategy=0)
    tuned = dataclasses.replace(chosen, name="tuned")
    say(f"tuned: {choice['recommendation']}")
    write_policy_file(
        out / "tuned_policy.json",
        tuned,
        chosen_arm=choice["choice"],
        metric=metric,
        validation=choice["means"],
        recommendation=choice["recommendation"],
    )
    return {"policy": tuned, "summary": tune_summary(choice, scores), "candidates": candidates}


def tune_seed(
    seed: int,
    subset: Any,
    candidates: Sequence[MixPolicy],
    cfg: UpliftConfig,
    gen_path: Path,
    work: Path,
    progress: bool = False,
    say: Callable[[str], None] = lambda _m: None,
    complain: Callable[[str], None] = lambda _m: None,
) -> dict[str, Any]:
    """Validation scores of the real-only arm and every candidate for one seed: the subset is split
    (:func:`ganaug.tune.stratified_split`), every classifier -- filter and teacher included --
    trains on the train part and is scored on the validation part."""
    from ganaug.tune import stratified_split

    classes = list(subset.classes)
    tr_idx, val_idx = stratified_split(subset.labels, cfg.tune_fraction, seed)
    tr, val = subset.subset(tr_idx), subset.subset(val_idx)
    work.mkdir(parents=True, exist_ok=True)
    say(
        f"seed {seed}: tuning on {len(tr)} train / {len(val)} validation images, {len(candidates)} candidates"
    )
    real_clf = _real_classifier(seed, tr, classes, cfg, progress, "tune: real only")
    filter_path = real_clf.save(work / "real_classifier.safetensors")
    teacher, teacher_path = _teacher(cfg, seed, real_clf, filter_path)
    ctx = _SeedContext(
        seed, tr, len(classes), gen_path, work, filter_path, teacher, teacher_path, progress, say, complain
    )

    def score(clf: Any) -> dict[str, Any]:
        return classification_scores(val.labels, clf.predict(val.images), len(classes))

    arms, controls = _policy_arms(ctx, candidates, cfg, score)
    return {
        "seed": seed,
        "n_train": len(tr),
        "n_validation": len(val),
        "arms": {"real": score(real_clf), **arms},
        "controls": controls,
    }


def _test_policies(cfg: UpliftConfig, tuned: dict[str, Any]) -> list[MixPolicy]:
    """The arms tested after tuning: the user's policies (or every candidate with
    ``tune_test_all``), the grid's no-GAN baselines, and the choice as ``tuned``."""
    candidates = tuned["candidates"]
    keep = list(candidates) if cfg.tune_test_all else list(cfg.policies)
    names = {p.name for p in keep}
    keep += [p for p in candidates if not p.uses_gan() and p.name not in names]
    return [*keep, tuned["policy"]]


def _seed_quality(
    gen_path: Path, subset: Any, test_ds: Any, extractor: Any, seed: int, cfg: UpliftConfig, seed_dir: Path
) -> dict[str, Any]:
    """Quality of an unfiltered per-class sample of the seed's generator; also keeps a few samples
    with their nearest real training images for the report's grid."""
    from ganaug.runtime import per_class_labels
    from ganaug.sampling import open_sampler

    sampler = open_sampler(gen_path, device=cfg.device)
    index = {name: i for i, name in enumerate(sampler.classes)}
    gen_ids = np.array([index.get(name, -1) for name in test_ds.classes])
    wanted = [i for i in range(len(gen_ids)) if gen_ids[i] >= 0]
    labels = per_class_labels(cfg.quality_per_class, list(test_ds.classes), wanted)
    t0 = time.perf_counter()
    images = sampler.generate(gen_ids[labels], seed=seed + 10_000)
    q = quality_report(test_ds, (images, labels), extractor, train=subset, seed=seed)
    q["seconds"] = round(time.perf_counter() - t0, 1)
    # a small grid: up to 6 samples per class beside their nearest real training image (pixels)
    picks = np.concatenate([np.flatnonzero(labels == c)[:6] for c in wanted])
    _, nn = nearest_neighbour_distances(
        images[picks].astype(np.float32) / 255.0, subset.images.astype(np.float32) / 255.0
    )
    with atomic_path(seed_dir / "nn_grid.npz") as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, synthetic=images[picks], labels=labels[picks], nearest=subset.images[nn])
    return q


__all__ = [
    "MixPolicy",
    "UpliftConfig",
    "as_dataset",
    "cas",
    "class_balanced_weights",
    "memorisation_stats",
    "quality_report",
    "uplift",
]
