"""Feature-space metrics against analytic values, and the paired-difference statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ganaug.metrics import (
    classification_scores,
    fid,
    fid_from_stats,
    kid,
    nearest_neighbour_distances,
    paired_difference,
    per_class,
    precision_recall,
    t_quantile_975,
)


def gaussian(n: int, d: int, mean: float = 0.0, scale: float = 1.0, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(mean, scale, size=(n, d))


def test_fid_of_identical_sets_is_zero():
    x = gaussian(500, 16)
    assert fid(x, x) == pytest.approx(0.0, abs=1e-6)


def test_fid_of_shifted_gaussians_is_the_squared_mean_distance():
    # equal covariances -> FID = ||mu1 - mu2||²; exactly so when one set is a translate of the other
    x = gaussian(2000, 8)
    shift = np.arange(8) * 0.25
    assert fid(x, x + shift) == pytest.approx(float(shift @ shift), rel=1e-6)
    # two independent samples of the shifted distribution: close to the analytic value
    y = gaussian(2000, 8, seed=1) + shift
    assert fid(x, y) == pytest.approx(float(shift @ shift), rel=0.1)  # sampling noise of the means


def test_fid_from_stats_matches_the_closed_form_for_diagonal_covariances():
    s1, s2 = np.diag([1.0, 4.0, 9.0]), np.diag([4.0, 1.0, 1.0])
    mu1, mu2 = np.zeros(3), np.array([1.0, 0.0, 2.0])
    # tr(S1 + S2 - 2 sqrt(S1 S2)) = sum (sqrt(a) - sqrt(b))²
    expected = 5.0 + (1 - 2) ** 2 + (2 - 1) ** 2 + (3 - 1) ** 2
    assert fid_from_stats(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)


def test_kid_is_near_zero_for_one_distribution_and_positive_for_another():
    a, b = gaussian(600, 16, seed=0), gaussian(600, 16, seed=1)
    same, _ = kid(a, b, subsets=20, subset_size=300)
    other, _ = kid(a, gaussian(600, 16, mean=0.7, seed=2), subsets=20, subset_size=300)
    assert abs(same) < 0.01
    assert other > 10 * max(abs(same), 1e-3)


def test_precision_recall_identical_sets_and_off_manifold_fakes():
    real = gaussian(400, 8)
    assert precision_recall(real, real, k=3) == (1.0, 1.0)
    far = gaussian(400, 8, mean=6.0, seed=3)  # far off the real manifold
    p, r = precision_recall(real, far, k=3)
    assert p < 0.05 and r < 0.05
    # half on the manifold, half off: precision ~ 0.5
    mixed = np.concatenate([gaussian(200, 8, seed=4), far[:200]])
    p, _ = precision_recall(real, mixed, k=3)
    assert 0.35 < p < 0.6


def test_nearest_neighbour_distance_is_zero_for_copies_and_finds_the_index():
    train = gaussian(300, 5)
    picks = np.array([7, 0, 299, 42])
    dist, idx = nearest_neighbour_distances(train[picks], train)
    assert np.allclose(dist, 0.0, atol=1e-6)
    assert idx.tolist() == picks.tolist()
    dist2, _ = nearest_neighbour_distances(train[picks] + 10.0, train)
    assert (dist2 > 5.0).all()
    # images (NHWC) are flattened
    imgs = np.random.default_rng(0).integers(0, 255, (10, 4, 4, 1), dtype=np.uint8)
    d, i = nearest_neighbour_distances(imgs[3:5], imgs)
    assert d.tolist() == [0.0, 0.0] and i.tolist() == [3, 4]


def test_per_class_applies_the_metric_to_each_class_and_skips_tiny_ones():
    a = gaussian(300, 4)
    la = np.repeat([0, 1, 2], 100)
    lb = la.copy()
    lb[:99] = 1  # class 0 keeps a single sample in b
    out = per_class(fid, a, la, a, lb)
    assert out[0] is None
    assert out[2] == pytest.approx(0.0, abs=1e-6)
    assert out[1] > 0.0


def test_classification_scores_balanced_accuracy():
    y = np.array([0, 0, 0, 0, 1, 1, 2])
    p = np.array([0, 0, 0, 0, 0, 1, 0])
    s = classification_scores(y, p, 4)
    assert s["accuracy"] == pytest.approx(5 / 7)
    assert s["balanced_accuracy"] == pytest.approx((1.0 + 0.5 + 0.0) / 3)
    assert s["per_class_accuracy"] == [1.0, 0.5, 0.0, None]


def test_paired_difference_interval_uses_the_t_distribution():
    a, b = [80.0, 81.0, 82.0], [81.0, 83.0, 82.5]
    d = paired_difference(b, a)
    diffs = np.array([1.0, 2.0, 0.5])
    assert d["mean"] == pytest.approx(diffs.mean())
    assert d["std"] == pytest.approx(diffs.std(ddof=1))
    half = 4.303 * diffs.std(ddof=1) / math.sqrt(3)
    assert d["ci95"] == pytest.approx([diffs.mean() - half, diffs.mean() + half])
    assert paired_difference([1.0], [0.0])["ci95"] is None
    assert t_quantile_975(1) == 12.706 and t_quantile_975(30) == 2.042
    assert 1.96 < t_quantile_975(200) < t_quantile_975(40) < 2.03
