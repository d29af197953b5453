"""Choosing the device and the numeric precision of a training run."""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path

import torch

from ganaug.errors import UsageError


@functools.cache
def cpu_supports_bf16() -> bool:
    """True when the CPU has native bf16 dot products (AVX512-BF16 or AMX), where autocast pays off."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="ignore")
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA, then MPS, then CPU; explicit names are checked for availability."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"--device {name}: CUDA is not available on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UsageError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s)")
    if device.type == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise UsageError(f"--device {name}: MPS is not available on this machine")
    return device


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device`` (``None`` = plain fp32)."""
    if precision == "fp32":
        return None
    if precision == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        if device.type == "cpu" and cpu_supports_bf16() and torch.backends.mkldnn.is_available():
            # Measured with benchmarks/train_speed.py --ablation (2026-11-29, AVX512-BF16 CPU, one
            # thread, same process, 32 px, batch 128): bf16 autocast + channels_last ran the dcgan
            # step 1.8x and the resnet step 2.0x faster than fp32 + channels_last. An earlier
            # "bf16 is slower" reading came from two OpenMP threads on oversubscribed cores, where
            # every op stalls on a descheduled thread and timings say nothing about the arithmetic.
            # Without oneDNN (mkldnn), bf16 convolutions fall back to slow reference kernels.
            return torch.bfloat16
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        if device.type == "cpu":
            raise UsageError("--precision fp16 needs a GPU; use bf16 or fp32 on the CPU")
        return torch.float16
    raise UsageError(f"unknown precision {precision!r}")


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """Autocast context for ``dtype`` on ``device`` (a no-op for fp32)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
