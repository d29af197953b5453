"""Sample quality: FID, KID, precision/recall (overall and per class) and memorisation statistics."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from ganaug.errors import DataError
from ganaug.eval.common import as_dataset, check_out, sample_per_class
from ganaug.eval.spec import QualitySpec
from ganaug.metrics import (
    fid,
    kid,
    nearest_neighbour_distances,
    per_class,
    precision_recall,
)
from ganaug.specs import resolve_device


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


def run_quality(spec: QualitySpec, *, progress: bool = False, echo: Any = None) -> dict[str, Any]:
    """``ganaug eval quality``: sample ``spec.n_per_class`` images per class from the generator and
    score them against ``spec.data`` (features from the extractor trained on ``spec.train`` or
    ``spec.data``); writes quality.json, quality.md and fid_per_class.png to ``spec.out`` if set."""
    from ganaug.data import load_dataset
    from ganaug.eval.features import get_feature_extractor
    from ganaug.fileio import atomic_write_json, atomic_write_text
    from ganaug.report import plot_fid_per_class, quality_markdown
    from ganaug.sampling import open_sampler

    say = echo or (lambda _m: None)
    check_out(spec.out, [spec.data, spec.train])
    spec = dataclasses.replace(spec, device=resolve_device(spec.device))
    sampler = open_sampler(spec.generator, device=spec.device)
    h, _w, c = sampler.image_shape
    real = load_dataset(spec.data, image_size=h, channels=c)
    train_ds = load_dataset(spec.train, image_size=h, channels=c) if spec.train else None
    say("domain feature extractor (cached per dataset)")
    extractor = get_feature_extractor(
        train_ds or real, steps=spec.feature_steps, device=spec.device, progress=progress
    )
    images, labels = sample_per_class(sampler, list(real.classes), spec.n_per_class, spec.seed)
    report = quality_report(real, (images, labels), extractor, train=train_ds, seed=spec.seed)
    report["generator"] = str(spec.generator)
    report["classes"] = list(real.classes)
    if spec.out:
        out = Path(spec.out)
        atomic_write_json(out / "quality.json", report)
        atomic_write_text(out / "quality.md", quality_markdown(report, real.classes))
        fids = {k: v["fid"] for k, v in report["per_class"].items()}
        plot_fid_per_class(fids, real.classes, out / "fid_per_class.png")
    return report


__all__ = [
    "memorisation_stats",
    "quality_report",
    "real_vs_real",
    "run_quality",
]
