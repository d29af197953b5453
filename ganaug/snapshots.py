"""Pick one of a run's EMA snapshots: ``--checkpoint best|last|STEP`` of export, sample and augment.

A training run keeps a few EMA snapshots in ``weights/snapshots/`` and an index,
``weights/snapshots.json``, that records each one's step, training CPU minutes and validation score
(``val_fid``: lower is better, computed on the run's training images only; see
``ganaug.training.snapshots``). This module only reads that index (no torch).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ganaug.errors import CheckpointError, UsageError

SNAPSHOT_DIR = "snapshots"
INDEX_NAME = "snapshots.json"
CHOICES_HELP = "best (lowest validation FID on the training data), last, or a step number"


def read_index(run_dir: str | Path) -> dict[str, Any] | None:
    """``weights/snapshots.json`` of a run directory, or None when the run has none."""
    path = Path(run_dir) / "weights" / INDEX_NAME
    if not path.is_file():
        return None
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: unreadable snapshot index ({exc})") from None
    if not isinstance(index, dict) or not isinstance(index.get("snapshots"), list):
        raise CheckpointError(f"{path}: not a ganaug snapshot index")
    return index


def parse_choice(value: str | int | None) -> str | int | None:
    """``best``/``last``/None as they are, a step number as an int (UsageError otherwise)."""
    if value is None or value in ("best", "last"):
        return value
    try:
        step = int(str(value))
    except ValueError:
        raise UsageError(f"--checkpoint must be {CHOICES_HELP}, got {value!r}") from None
    if step < 0:
        raise UsageError(f"--checkpoint step must be >= 0, got {step}")
    return step


def select_weights(source: str | Path, choice: str | int | None) -> Path:
    """The weights file for ``choice`` in run directory ``source``.

    ``None`` and ``last`` give ``source`` back unchanged (the usual ``weights/ema.safetensors``);
    ``best`` the snapshot with the lowest ``val_fid``; a step number that step's snapshot.
    """
    choice = parse_choice(choice)
    if choice is None or choice == "last":
        return Path(source)
    entry = select_snapshot(source, choice)
    path = Path(source) / "weights" / str(entry["file"])
    if not path.is_file():
        raise CheckpointError(f"{path}: snapshot listed in {INDEX_NAME} is missing")
    return path


def select_snapshot(source: str | Path, choice: str | int) -> dict[str, Any]:
    """The index entry (step, file, ``val_fid``, temperature) that ``choice`` (``best`` or a step
    number) names in run directory ``source``."""
    choice = parse_choice(choice)
    run_dir = Path(source)
    if not run_dir.is_dir():
        raise UsageError(f"--checkpoint {choice} needs a run directory, got the file {source}")
    index = read_index(run_dir)
    if index is None or not index["snapshots"]:
        raise CheckpointError(f"{run_dir}: no EMA snapshots (train with --snapshots N to keep some)")
    entries = index["snapshots"]
    if choice == "best":
        scored = [e for e in entries if e.get("val_fid") is not None]
        if not scored:
            raise CheckpointError(f"{run_dir}: its snapshots have no validation score to pick the best by")
        entry = min(scored, key=lambda e: e["val_fid"])
    else:
        found = [e for e in entries if e.get("step") == choice]
        if not found:
            steps = ", ".join(str(e.get("step")) for e in entries)
            raise UsageError(f"{run_dir}: no snapshot at step {choice}; kept steps: {steps}")
        entry = found[0]
    return entry
