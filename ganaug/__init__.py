"""ganaug: conditional GANs for data augmentation, exported to ONNX, mixed in by plugins.

Importing ``ganaug`` is cheap and torch-free; the heavy parts load on first use::

    from ganaug import train               # ganaug.training.train
    from ganaug import GanAugDataset       # torch Dataset mixing GAN samples in
    from ganaug.runtime import OnnxGenerator  # numpy + onnxruntime only
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "train": ("ganaug.training", "train"),
    "GanAugDataset": ("ganaug.torch_dataset", "GanAugDataset"),
    "hookimpl": ("ganaug.hookspecs", "hookimpl"),
    "load_dataset": ("ganaug.data", "load_dataset"),
    "load_generator": ("ganaug.checkpoint", "load_generator"),
    "augment_dataset": ("ganaug.augment", "augment_dataset"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'ganaug' has no attribute {name!r}")
