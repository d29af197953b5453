"""Conditional GAN training: options, the loop, run directories and resumable checkpoints."""

from __future__ import annotations

from typing import Any

from ganaug.training.config import TrainConfig

# The loop imports torch: loaded on first use, so the CLI reads TrainConfig (its spec) torch-free.
_LAZY = {
    "Trainer": "ganaug.training.loop",
    "TrainingDiverged": "ganaug.training.loop",
    "TrainResult": "ganaug.training.loop",
    "train": "ganaug.training.run",
    "require_complete": "ganaug.training.run",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["TrainConfig", "TrainResult", "Trainer", "TrainingDiverged", "require_complete", "train"]
