"""Classification accuracy score (CAS): the fixed classifier trained on synthetic images only."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np

from ganaug.errors import UsageError
from ganaug.eval.common import as_dataset, check_out, draw_subset, sample_per_class
from ganaug.eval.spec import CasSpec
from ganaug.specs import resolve_device


def cas(
    synthetic: Any,
    real_test: Any,
    *,
    real_train: Any | None = None,
    num_classes: int | None = None,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = False,
    **train_options: Any,
) -> dict[str, Any]:
    """Classification accuracy score: train the fixed classifier on ``synthetic`` only, test on
    ``real_test``. With ``real_train``, the same classifier is also trained on as many real images
    per class as there are synthetic ones (drawn with ``seed``) and reported beside it.
    ``train_options``: :class:`ganaug.eval.classifier_train.TrainSettings` fields for both
    classifiers (``steps`` 2000, ``batch_size`` 128 unless given; ``hflip``; ``amp``: bf16 autocast,
    CUDA or CPUs with bf16 support)."""
    from ganaug.eval.classifier_train import train_classifier

    syn, test = as_dataset(synthetic), as_dataset(real_test)
    k = num_classes or max(int(syn.labels.max()), int(test.labels.max())) + 1
    opts = {
        "steps": 2000,
        "batch_size": 128,
        **train_options,
        "seed": seed,
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
        subset = draw_subset(real, counts.tolist(), seed) if hasattr(real, "sample_per_class") else real
        t0 = time.perf_counter()
        clf_r = train_classifier(subset.images, subset.labels, k, desc="real classifier", **opts)
        out["real"] = {
            **clf_r.evaluate(test.images, test.labels),
            "n_train": len(subset),
            "train_seconds": time.perf_counter() - t0,
        }
        out["cas_gap"] = out["synthetic_only"]["accuracy"] - out["real"]["accuracy"]
    return out


def run_cas(spec: CasSpec, *, progress: bool = False) -> dict[str, Any]:
    """``ganaug eval cas``: CAS of ``spec.n_per_class`` generated images per class, tested on
    ``spec.test``, beside as many real images per class from ``spec.data``; writes cas.json to
    ``spec.out`` if set."""
    from ganaug.data import load_dataset
    from ganaug.fileio import atomic_write_json
    from ganaug.sampling import open_sampler

    check_out(spec.out, [spec.data, spec.test])
    spec = dataclasses.replace(spec, device=resolve_device(spec.device))
    sampler = open_sampler(spec.generator, device=spec.device)
    h, _w, c = sampler.image_shape
    real = load_dataset(spec.data, image_size=h, channels=c)
    test_ds = load_dataset(spec.test, image_size=h, channels=c)
    if list(test_ds.classes) != list(real.classes):
        raise UsageError("--data and --test must have the same classes")
    images, labels = sample_per_class(sampler, list(real.classes), spec.n_per_class, spec.seed)
    result = cas(
        (images, labels),
        test_ds,
        real_train=real,
        num_classes=len(real.classes),
        steps=spec.classifier_steps,
        seed=spec.seed,
        hflip=spec.hflip,
        device=spec.device,
        progress=progress,
    )
    result["generator"] = str(spec.generator)
    if spec.out:
        atomic_write_json(Path(spec.out) / "cas.json", result)
    return result


__all__ = [
    "cas",
    "run_cas",
]
