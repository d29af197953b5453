"""Sample-quality and classification metrics on numpy arrays (numpy only, no scipy, no torch).

Feature-space metrics take ``[N, D]`` float arrays, typically the penultimate features of the domain
feature extractor (:func:`ganaug.classifier.get_feature_extractor`):

- :func:`fid` -- Fréchet distance between Gaussians fitted to two feature sets; the matrix square
  root term uses ``tr sqrt(S1 S2) = sum sqrt(eig(sqrt(S1) S2 sqrt(S1)))`` (symmetric eigendecompositions).
- :func:`kid` -- kernel inception distance: unbiased MMD² with the cubic polynomial kernel, averaged
  over random subsets (Bińkowski et al. 2018).
- :func:`precision_recall` -- k-NN manifold precision and recall (Kynkäänniemi et al. 2019).
- :func:`nearest_neighbour_distances` -- distance of each sample to its nearest training sample
  (memorisation check).
- :func:`per_class` -- any of the above per class.
- :func:`classification_scores`, :func:`paired_difference` -- accuracy, balanced accuracy and a
  t-interval for paired differences across seeds.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

_CHUNK = 1024


def _as2d(x: np.ndarray, what: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{what}: expected [N, D] features, got shape {x.shape}")
    return x


def _sqrt_psd(m: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh((m + m.T) / 2)
    return (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T


def fid_from_stats(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance ``||mu1 - mu2||² + tr(S1 + S2 - 2 sqrt(S1 S2))``."""
    s1 = _sqrt_psd(sigma1)
    inner = s1 @ sigma2 @ s1
    vals = np.linalg.eigvalsh((inner + inner.T) / 2)
    tr_sqrt = float(np.sqrt(np.clip(vals, 0, None)).sum())
    diff = mu1 - mu2
    value = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_sqrt)
    return max(value, 0.0)


def feature_stats(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (``N - 1`` normalised) of ``[N, D]`` features."""
    feats = _as2d(feats, "features")
    if len(feats) < 2:
        raise ValueError(f"need at least 2 samples for a covariance, got {len(feats)}")
    return feats.mean(0), np.cov(feats, rowvar=False).reshape(feats.shape[1], feats.shape[1])


def fid(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    """Fréchet distance between two feature sets (FID when the features are Inception's)."""
    mu1, s1 = feature_stats(feats_a)
    mu2, s2 = feature_stats(feats_b)
    return fid_from_stats(mu1, s1, mu2, s2)


def _poly_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD² between samples ``x`` and ``y`` with the cubic polynomial kernel."""
    m, n = len(x), len(y)
    kxx, kyy, kxy = _poly_kernel(x, x), _poly_kernel(y, y), _poly_kernel(x, y)
    sxx = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    syy = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(sxx + syy - 2.0 * kxy.mean())


def kid(
    feats_a: np.ndarray, feats_b: np.ndarray, subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """Kernel inception distance: mean and std of unbiased MMD² over ``subsets`` random subsets of
    ``min(subset_size, len(a), len(b))`` samples each (drawn without replacement)."""
    a, b = _as2d(feats_a, "feats_a"), _as2d(feats_b, "feats_b")
    size = min(subset_size, len(a), len(b))
    if size < 2:
        raise ValueError(f"KID needs at least 2 samples per set, got {len(a)} and {len(b)}")
    rng = np.random.default_rng(seed)
    vals = np.array(
        [
            mmd2_unbiased(
                a[rng.choice(len(a), size, replace=False)], b[rng.choice(len(b), size, replace=False)]
            )
            for _ in range(subsets)
        ]
    )
    return float(vals.mean()), float(vals.std())


def _sq_dists(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    d = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * (x @ y.T)
    return np.maximum(d, 0.0)


def knn_radii(feats: np.ndarray, k: int = 3) -> np.ndarray:
    """Distance of each sample to its ``k``-th nearest other sample (the k-NN ball radius)."""
    feats = _as2d(feats, "features")
    if len(feats) <= k:
        raise ValueError(f"need more than k={k} samples for k-NN radii, got {len(feats)}")
    out = np.empty(len(feats))
    for i in range(0, len(feats), _CHUNK):
        d = _sq_dists(feats[i : i + _CHUNK], feats)
        # the k+1-th smallest includes the sample itself at distance 0
        out[i : i + _CHUNK] = np.sqrt(np.partition(d, k, axis=1)[:, k])
    return out


def _coverage(queries: np.ndarray, support: np.ndarray, radii: np.ndarray) -> float:
    """Fraction of ``queries`` inside at least one ball (``support[j]``, ``radii[j]``)."""
    inside = 0
    r2 = radii**2
    for i in range(0, len(queries), _CHUNK):
        d = _sq_dists(queries[i : i + _CHUNK], support)
        inside += int((d <= r2[None, :] * (1 + 1e-9) + 1e-12).any(1).sum())
    return inside / len(queries)


def precision_recall(real_feats: np.ndarray, fake_feats: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019).

    Precision: share of fake samples inside the real k-NN manifold (union of balls around each real
    sample reaching its k-th nearest real neighbour). Recall: share of real samples inside the fake
    manifold. Distances are computed in chunks, so memory stays ``O(chunk * N)``.
    """
    real, fake = _as2d(real_feats, "real_feats"), _as2d(fake_feats, "fake_feats")
    precision = _coverage(fake, real, knn_radii(real, k))
    recall = _coverage(real, fake, knn_radii(fake, k))
    return precision, recall


def nearest_neighbour_distances(fake: np.ndarray, train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each row of ``fake`` the Euclidean distance to, and index of, its nearest row in ``train``.

    Accepts features ``[N, D]`` or images (flattened to vectors). Chunked."""
    fake = np.asarray(fake).reshape(len(fake), -1).astype(np.float64)
    train = np.asarray(train).reshape(len(train), -1).astype(np.float64)
    dist = np.empty(len(fake))
    idx = np.empty(len(fake), dtype=np.int64)
    for i in range(0, len(fake), _CHUNK):
        d = _sq_dists(fake[i : i + _CHUNK], train)
        j = d.argmin(1)
        idx[i : i + _CHUNK] = j
        dist[i : i + _CHUNK] = np.sqrt(d[np.arange(len(j)), j])
    return dist, idx


def per_class(
    metric: Callable[..., Any],
    feats_a: np.ndarray,
    labels_a: np.ndarray,
    feats_b: np.ndarray,
    labels_b: np.ndarray,
    classes: list[int] | None = None,
    min_samples: int = 2,
    **kwargs: Any,
) -> dict[int, Any]:
    """``metric(feats_a[labels_a == c], feats_b[labels_b == c], **kwargs)`` for each class ``c``;
    classes with fewer than ``min_samples`` samples in either set map to ``None``."""
    labels_a, labels_b = np.asarray(labels_a), np.asarray(labels_b)
    if classes is None:
        classes = sorted(set(labels_a.tolist()) | set(labels_b.tolist()))
    out: dict[int, Any] = {}
    for c in classes:
        a, b = feats_a[labels_a == c], feats_b[labels_b == c]
        out[int(c)] = metric(a, b, **kwargs) if min(len(a), len(b)) >= min_samples else None
    return out


# -- classification --------------------------------------------------------------------------------


def classification_scores(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> dict[str, Any]:
    """Accuracy, balanced accuracy (mean per-class recall over classes present) and per-class accuracy."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    counts = np.bincount(y_true, minlength=num_classes).astype(np.float64)
    hits = np.bincount(y_true[y_true == y_pred], minlength=num_classes).astype(np.float64)
    present = counts > 0
    per_cls = np.where(present, hits / np.maximum(counts, 1), np.nan)
    return {
        "accuracy": float((y_true == y_pred).mean()) if len(y_true) else float("nan"),
        "balanced_accuracy": float(per_cls[present].mean()) if present.any() else float("nan"),
        "per_class_accuracy": [None if math.isnan(v) else float(v) for v in per_cls],
    }


# two-sided 95% Student-t quantiles t_{0.975, df} for df = 1..30; beyond 30 an asymptotic expansion
_T975 = [
    12.706,
    4.303,
    3.182,
    2.776,
    2.571,
    2.447,
    2.365,
    2.306,
    2.262,
    2.228,
    2.201,
    2.179,
    2.160,
    2.145,
    2.131,
    2.120,
    2.110,
    2.101,
    2.093,
    2.086,
    2.080,
    2.074,
    2.069,
    2.064,
    2.060,
    2.056,
    2.052,
    2.048,
    2.045,
    2.042,
]


def t_quantile_975(df: int) -> float:
    """The 97.5% quantile of Student's t with ``df`` degrees of freedom (table, then Cornish-Fisher)."""
    if df < 1:
        raise ValueError("df must be >= 1")
    if df <= len(_T975):
        return _T975[df - 1]
    z = 1.959964
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def mean_std(values: list[float] | np.ndarray) -> tuple[float, float]:
    """Mean and sample standard deviation (``ddof=1``; 0 for one value)."""
    v = np.asarray(values, dtype=np.float64)
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def paired_difference(b: list[float] | np.ndarray, a: list[float] | np.ndarray) -> dict[str, Any]:
    """Paired difference ``b - a`` across seeds: mean, std, 95% t-interval (``None`` for one seed)."""
    d = np.asarray(b, dtype=np.float64) - np.asarray(a, dtype=np.float64)
    mean, std = mean_std(d)
    out: dict[str, Any] = {"mean": mean, "std": std, "n": len(d), "values": d.tolist(), "ci95": None}
    if len(d) > 1:
        half = t_quantile_975(len(d) - 1) * std / math.sqrt(len(d))
        out["ci95"] = [mean - half, mean + half]
    return out


def paired_image_interval(
    y_true: np.ndarray, pred_b: np.ndarray, pred_a: np.ndarray, num_classes: int, balanced: bool = False
) -> list[float]:
    """95% interval of ``score(b) - score(a)`` in points, for two classifiers' predictions on the
    *same* images: the Agresti-Min interval for matched proportions (a Wald interval after adding
    0.5 to each cell of the 2x2 right/wrong table, so a handful of differing images is not taken
    for certainty); with ``balanced`` per class, averaged over the classes present."""
    y_true, pred_b, pred_a = (np.asarray(v) for v in (y_true, pred_b, pred_a))
    right_b, right_a = pred_b == y_true, pred_a == y_true
    groups = [y_true == c for c in range(num_classes)] if balanced else [np.ones(len(y_true), bool)]
    groups = [g for g in groups if g.any()]
    if not groups:
        raise ValueError("no images to compare")
    centre = var = 0.0
    for g in groups:
        only_b = np.count_nonzero(right_b[g] & ~right_a[g]) + 0.5
        only_a = np.count_nonzero(right_a[g] & ~right_b[g]) + 0.5
        n = np.count_nonzero(g) + 2.0
        centre += (only_b - only_a) / n
        var += ((only_b + only_a) - (only_b - only_a) ** 2 / n) / n**2
    centre, half = centre / len(groups), 1.959964 * math.sqrt(var) / len(groups)
    return [float(100.0 * (centre - half)), float(100.0 * (centre + half))]


__all__ = [
    "classification_scores",
    "feature_stats",
    "fid",
    "fid_from_stats",
    "kid",
    "knn_radii",
    "mean_std",
    "mmd2_unbiased",
    "nearest_neighbour_distances",
    "paired_difference",
    "paired_image_interval",
    "per_class",
    "precision_recall",
    "t_quantile_975",
]
