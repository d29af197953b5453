"""ganaug: conditional GANs for data augmentation, exported to ONNX, mixed in by plugins."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
