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
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ganaug.errors import DataError, UsageError
from ganaug.fileio import atomic_path, atomic_write_json
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
    if train is not None:
        tr = as_dataset(train)
        report["memorisation"] = memorisation_stats(f_syn, classifier.features(tr.images), f_real)
    return report


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
) -> dict[str, Any]:
    """Classification accuracy score: train the fixed classifier on ``synthetic`` only, test on
    ``real_test``. With ``real_train``, the same classifier is also trained on as many real images
    per class as there are synthetic ones (drawn with ``seed``) and reported beside it."""
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


def _train_arm(
    policy: MixPolicy,
    real: Any,
    syn_images: np.ndarray,
    syn_labels: np.ndarray,
    k: int,
    seed: int,
    cfg: UpliftConfig,
    progress: bool,
) -> Any:
    """Train arm (b) of one policy; the same total number of steps as the real-only arm."""
    from ganaug.classifier import train_classifier

    opts = {**_classifier_opts(cfg), "seed": seed, "progress": progress, "classes": list(real.classes)}
    if len(syn_images) == 0:
        if not policy.use_real:
            raise DataError(f"policy {policy.name!r}: no synthetic images passed the filters")
        # no synthetic images (strategy 0, or nothing passed the filters): the real subset alone
        draw = class_balanced_weights(real.labels, k) if policy.balance else None
        desc = policy.name if policy.balance else f"{policy.name} (no synthetic)"
        return train_classifier(real.images, real.labels, k, draw_weight=draw, desc=desc, **opts)
    if not policy.use_real:
        return train_classifier(syn_images, syn_labels, k, desc=f"{policy.name} (synthetic only)", **opts)
    if policy.curriculum == "pretrain":
        total = opts.pop("steps")
        pre = max(1, round(total * policy.pretrain_fraction))
        first = train_classifier(
            syn_images, syn_labels, k, steps=pre, desc=f"{policy.name} pre-train", **opts
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
    images = np.concatenate([real.images, syn_images])
    labels = np.concatenate([real.labels, syn_labels])
    n_real, n_syn = len(real), len(syn_images)
    weight = None
    if policy.synthetic_weight != 1.0:
        weight = np.concatenate(
            [np.ones(n_real, np.float32), np.full(n_syn, policy.synthetic_weight, np.float32)]
        )
    draw = None
    if policy.synthetic_share is not None:
        share = policy.synthetic_share
        draw = np.concatenate([np.full(n_real, (1 - share) / n_real), np.full(n_syn, share / n_syn)])
    elif policy.balance:
        draw = class_balanced_weights(labels, k)
    return train_classifier(
        images, labels, k, sample_weight=weight, draw_weight=draw, desc=policy.name, **opts
    )


def _synthesize(
    policy: MixPolicy,
    real: Any,
    generator: Path,
    out: Path,
    seed: int,
    filter_classifier: Path,
    progress: bool,
    warn: Callable[[str], None],
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """GAN samples for ``policy`` through the augment pipeline (synthetic only, NPZ in ``out``)."""
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
    )
    with np.load(out / "data.npz", allow_pickle=False) as npz:
        images, labels = npz["images"], npz["labels"].astype(np.int64)
        names = [str(c) for c in npz["classes"]]
    if names != list(real.classes):  # map the writer's class order onto the data's
        index = {name: i for i, name in enumerate(real.classes)}
        labels = np.array([index[names[i]] for i in labels], dtype=np.int64)
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
    return images, labels, info


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
        paired[arm] = {
            metric: paired_difference(summary[arm][metric]["values"], summary["real"][metric]["values"])
            for metric in ("accuracy", "balanced_accuracy")
        }
    return summary, paired


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
    """
    say = echo or (lambda _m: None)
    complain = warn or (lambda _m: None)
    t_start = time.perf_counter()
    train_ds = as_dataset(data)
    classes = list(train_ds.classes)
    k = len(classes)
    test_ds = _align_test(as_dataset(test, classes), classes, train_ds.images.shape[1:])
    seed_list = list(range(int(seeds))) if isinstance(seeds, (int, np.integer)) else [int(s) for s in seeds]
    if not seed_list:
        raise UsageError("need at least one seed")
    policies = list(policies) if policies else [MixPolicy()]
    names = [p.name for p in policies]
    if len(set(names)) != len(names):
        raise UsageError(f"policy names must be unique, got {names}")
    if generator is not None:
        for seed in seed_list:  # "{seed}" in the path: one generator per seed (e.g. an earlier run's GANs)
            candidate = Path(str(generator).replace("{seed}", str(seed)))
            if not candidate.exists():
                raise UsageError(f"--generator not found: {candidate}")
    cfg = UpliftConfig(
        counts=_per_class_counts(per_class_n, imbalance, k),
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
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    extractor = None
    if quality:
        from ganaug.classifier import get_feature_extractor

        say(f"domain feature extractor ({feature_steps} steps on {len(train_ds)} training images; cached)")
        t0 = time.perf_counter()
        extractor = get_feature_extractor(train_ds, steps=feature_steps, device=device, progress=progress)
        fe_seconds = time.perf_counter() - t0

    seed_results: list[dict[str, Any]] = []
    for seed in seed_list:
        seed_results.append(_run_seed(seed, train_ds, test_ds, cfg, out, extractor, progress, say, complain))

    arms = ["real", *names]
    summary, paired = _summarise(seed_results, arms)
    report: dict[str, Any] = {
        "kind": "ganaug.uplift",
        "command": command,
        "data": getattr(train_ds, "source", ""),
        "test": getattr(test_ds, "source", ""),
        "classes": classes,
        "settings": _settings_dict(cfg),
        "arms": arms,
        "summary": summary,
        "paired": paired,
        "seeds": seed_results,
        "wall_seconds": round(time.perf_counter() - t_start, 1),
        "versions": _versions(),
    }
    if extractor is not None:
        report["feature_extractor"] = {
            "steps": feature_steps,
            "seconds": round(fe_seconds, 1),
            "key": extractor.meta.extra.get("dataset_key"),
        }
    from ganaug.report import write_uplift_report

    write_uplift_report(report, out, plots=plots)
    return report


def _settings_dict(cfg: UpliftConfig) -> dict[str, Any]:
    d = dataclasses.asdict(cfg)
    d["policies"] = [dataclasses.asdict(p) for p in cfg.policies]
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
) -> dict[str, Any]:
    from ganaug.classifier import train_classifier

    k = len(train_ds.classes)
    seed_dir = out / f"seed_{seed}"
    seed_dir.mkdir(parents=True, exist_ok=True)
    subset = _draw(train_ds, cfg.counts, seed)
    result: dict[str, Any] = {"seed": seed, "n_real": len(subset), "arms": {}}

    # the generator: trained on exactly this subset, or given
    t0 = time.perf_counter()
    if cfg.generator is not None:
        gen_path = Path(cfg.generator.replace("{seed}", str(seed)))
        result["gan"] = {"source": str(gen_path), "trained": False}
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
        result["gan"] = {
            "source": str(gen_path),
            "trained": True,
            "steps": run.step,
            "options": {k_: v for k_, v in opts.items()},
            "metrics": run.metrics,
        }
    result["gan"]["seconds"] = round(time.perf_counter() - t0, 1)

    # arm (a): the real subset with classical augmentation
    say(f"seed {seed}: classifier on the real subset ({cfg.classifier_steps} steps)")
    t0 = time.perf_counter()
    real_clf = train_classifier(
        subset.images,
        subset.labels,
        k,
        seed=seed,
        progress=progress,
        classes=list(train_ds.classes),
        desc="real only",
        **_classifier_opts(cfg),
    )
    result["arms"]["real"] = _arm_result(real_clf, test_ds, time.perf_counter() - t0, len(subset))
    filter_path = real_clf.save(seed_dir / "real_classifier.safetensors")

    # arm(s) (b): real + GAN samples through the augment pipeline
    synthetic_sets: dict[tuple, tuple[np.ndarray, np.ndarray, dict[str, Any], float]] = {}
    for policy in cfg.policies:
        key = policy.synthetic_key()
        if key not in synthetic_sets:
            say(
                f"seed {seed}: synthetic images for {policy.name!r} (strategy {policy.strategy!r}"
                f"{', confidence filter' if policy.filter else ''})"
            )
            t0 = time.perf_counter()
            images, labels, info = _synthesize(
                policy,
                subset,
                gen_path,
                seed_dir / f"synthetic_{policy.name}",
                seed,
                filter_path,
                progress,
                complain,
            )
            synthetic_sets[key] = (images, labels, info, time.perf_counter() - t0)
        images, labels, info, syn_seconds = synthetic_sets[key]
        say(f"seed {seed}: classifier for {policy.name!r} ({len(subset)} real + {len(images)} synthetic)")
        t0 = time.perf_counter()
        clf = _train_arm(policy, subset, images, labels, k, seed, cfg, progress)
        result["arms"][policy.name] = _arm_result(
            clf,
            test_ds,
            time.perf_counter() - t0,
            len(subset) * policy.use_real + len(images),
            {"synthetic": info, "synthesis_seconds": round(syn_seconds, 2)},
        )

    if extractor is not None:
        result["quality"] = _seed_quality(gen_path, subset, test_ds, extractor, seed, cfg, seed_dir)
    atomic_write_json(seed_dir / "result.json", result)  # survives a crash in a later seed
    return result


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
