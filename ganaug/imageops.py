"""Low-level image conversions shared by training, export and sampling (no ganaug imports).

:func:`quantize_torch` is the one float -> uint8 formula of ganaug: the exported uint8 ONNX graph
contains exactly these ops, the torch sampler and the training sample grids use it, and
:func:`ganaug.runtime.to_uint8_nhwc` is its NumPy twin. torch is imported on first call, so this
module stays importable without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def quantize_torch(x: torch.Tensor) -> torch.Tensor:
    """Float NCHW in [-1, 1] -> uint8 NHWC: ``((x + 1) * 127.5).round().clamp(0, 255)``.

    The exported uint8 graph contains exactly these ops; :func:`ganaug.runtime.to_uint8_nhwc` is
    the NumPy twin (both round half to even).
    """
    import torch

    return ((x + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)


__all__ = ["quantize_torch"]
