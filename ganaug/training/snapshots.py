"""EMA snapshots of a run, scored on the real training data, for ``--checkpoint best|last|STEP``.

At every checkpoint the trainer writes ``weights/snapshots/ema_step_NNNNNN.safetensors`` (a generator
file, like ``weights/ema.safetensors``) and records it in ``weights/snapshots.json``::

    {"metric": "val_fid", "best": 3000, "snapshots": [{"step": 1000, "cpu_minutes": 2.5,
     "file": "snapshots/ema_step_001000.safetensors", "val_fid": 12.3, "temperature": 0.8,
     "val_fid_by_temperature": {"0.6": 14.0, "0.8": 12.3, "1.0": 19.1, "1.2": 33.0}}, ...]}

``val_fid`` is the Fréchet distance, in the feature space of a small classifier trained on the run's
own training images, between EMA samples (the training labels, fixed noise) and those same training
images -- computed from the training data only, never from a test split. Each snapshot is scored at
every sampling temperature of ``--temperatures`` (latents ``t * z``); the best one becomes the
snapshot's ``temperature`` (stored in its weights file as ``ganaug.temperature``, the default of
``sample``/``augment``/``export``) and its score the snapshot's ``val_fid``. At most ``keep``
snapshots stay on disk: the best one and the newest others. :func:`ganaug.snapshots.select_weights`
picks one.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganaug.checkpoint import save_generator
from ganaug.fileio import atomic_write_json
from ganaug.imageops import quantize_torch
from ganaug.metrics import fid
from ganaug.noise import NoiseStream
from ganaug.snapshots import INDEX_NAME, SNAPSHOT_DIR, read_index

VAL_SEED = 4242  # noise for the validation samples: the same for every snapshot of a run
VAL_MAX_IMAGES = 1000


class TrainScorer:
    """``val_fid`` of a generator against the run's training images (classifier trained lazily)."""

    def __init__(self, dataset: Any, device: torch.device, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        n = len(dataset)
        keep = np.sort(rng.permutation(n)[: min(n, VAL_MAX_IMAGES)])
        self.dataset = dataset
        self.images = dataset.images[keep]
        self.labels = dataset.labels[keep]
        self.device = device
        self.seed = seed
        self._classifier: Any = None
        self._real_feats: np.ndarray | None = None

    def classifier_steps(self) -> int:
        """About ten epochs of the training data at batch 128, between 20 and 500 steps."""
        return int(min(500, max(20, math.ceil(10 * len(self.dataset) / 128))))

    def _features(self) -> tuple[Any, np.ndarray]:
        if self._classifier is None:
            from ganaug.classifier import train_classifier

            ds = self.dataset
            self._classifier = train_classifier(
                ds.images,
                ds.labels,
                ds.num_classes,
                steps=self.classifier_steps(),
                batch_size=min(128, len(ds)),
                seed=self.seed,
                device="cpu",
                desc="validation features",
            )
            self._real_feats = self._classifier.features(self.images)
        assert self._real_feats is not None
        return self._classifier, self._real_feats

    def __call__(self, generator: torch.nn.Module, temperature: float = 1.0) -> float:
        """FID (classifier features) of ``generator``'s samples at ``temperature`` against the
        training images."""
        classifier, real = self._features()
        z = NoiseStream(VAL_SEED, generator.z_dim, temperature=temperature).take(len(self.labels))
        was_training = generator.training
        generator.eval()
        images = []
        with torch.no_grad():
            for start in range(0, len(z), 256):
                zb = torch.from_numpy(z[start : start + 256]).to(self.device)
                yb = torch.from_numpy(self.labels[start : start + 256]).to(self.device)
                images.append(quantize_torch(generator(zb, yb).float()).cpu().numpy())
        generator.train(was_training)
        return float(fid(real, classifier.features(np.concatenate(images))))


def _prune(entries: list[dict[str, Any]], keep: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Keep the best-scored entry and the newest others, ``keep`` in all; return (kept, dropped)."""
    if len(entries) <= keep:
        return entries, []
    scored = [e for e in entries if e.get("val_fid") is not None]
    best = min(scored, key=lambda e: e["val_fid"]) if scored else None
    newest = sorted(entries, key=lambda e: e["step"], reverse=True)
    kept = [best] if best is not None else []
    for e in newest:
        if len(kept) >= keep:
            break
        if e is not best:
            kept.append(e)
    kept.sort(key=lambda e: e["step"])
    return kept, [e for e in entries if all(e is not k for k in kept)]


#: another temperature replaces 1.0 only when it lowers val FID by more than this fraction
TEMPERATURE_MARGIN = 0.05


def choose_temperature(scores: dict[float, float]) -> float:
    """The temperature with the lowest val FID (``scores``: temperature -> val FID); 1.0, when
    scored, unless another is more than :data:`TEMPERATURE_MARGIN` better."""
    best = min(scores, key=lambda t: (scores[t], abs(t - 1.0)))
    if 1.0 in scores and scores[best] > (1.0 - TEMPERATURE_MARGIN) * scores[1.0]:
        return 1.0
    return best


def score_temperatures(
    scorer: TrainScorer, generator: torch.nn.Module, temperatures: tuple[float, ...]
) -> dict[str, Any]:
    """``val_fid`` of ``generator`` at each temperature: ``{"temperature": best, "val_fid": its
    score, "val_fid_by_temperature": {"0.8": ..., ...}}`` (see :func:`choose_temperature`)."""
    scores = {float(t): round(scorer(generator, float(t)), 4) for t in temperatures}
    best = choose_temperature(scores)
    entry: dict[str, Any] = {"val_fid": scores[best], "temperature": best}
    if len(scores) > 1:
        entry["val_fid_by_temperature"] = {f"{t:g}": v for t, v in scores.items()}
    return entry


def latest_temperature(run_dir: Path, step: int) -> float:
    """The temperature chosen by the newest snapshot at or before ``step`` (1.0 without one)."""
    index = read_index(run_dir) or {"snapshots": []}
    entries = [e for e in index["snapshots"] if int(e.get("step", 0)) <= step]
    if not entries:
        return 1.0
    return float(max(entries, key=lambda e: int(e["step"])).get("temperature") or 1.0)


def record_snapshot(
    run_dir: Path,
    ema: torch.nn.Module,
    *,
    classes: list[str],
    run_id: str,
    step: int,
    cpu_s: float,
    keep: int,
    scorer: TrainScorer | None,
    temperatures: tuple[float, ...] = (1.0,),
) -> dict[str, Any]:
    """Score the EMA generator of ``step`` at ``temperatures``, write it as a snapshot with the best
    temperature as its default, update ``snapshots.json`` and prune old files."""
    weights = Path(run_dir) / "weights"
    rel = f"{SNAPSHOT_DIR}/ema_step_{step:06d}.safetensors"
    entry: dict[str, Any] = {
        "step": int(step),
        "cpu_minutes": round(cpu_s / 60.0, 3),
        "file": rel,
        "run_id": run_id,
    }
    if scorer is not None:
        entry |= score_temperatures(scorer, ema, temperatures)
    save_generator(
        weights / rel, ema, classes=classes, run_id=run_id, step=step, temperature=entry.get("temperature")
    )
    index = read_index(run_dir) or {}
    # earlier snapshots of this run only (a resumed run rewinds to its checkpoint's step)
    earlier = [e for e in index.get("snapshots", []) if e["step"] < step and e.get("run_id") == run_id]
    entries = [*earlier, entry]
    entries, dropped = _prune(entries, keep)
    for e in dropped:
        (weights / e["file"]).unlink(missing_ok=True)
    scored = [e for e in entries if e.get("val_fid") is not None]
    best = min(scored, key=lambda e: e["val_fid"])["step"] if scored else None
    index = {
        "metric": "val_fid",
        "metric_doc": "FID of EMA samples vs the training images, features of a classifier trained on them",
        "best": best,
        "snapshots": entries,
    }
    atomic_write_json(weights / INDEX_NAME, index)
    return entry
