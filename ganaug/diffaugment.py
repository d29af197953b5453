"""Differentiable augmentation (DiffAugment, Zhao et al. 2020) for data-efficient GAN training.

The same policy is applied to real and fake batches, in both the D and the G step, so D never sees
un-augmented images and gradients flow through the augmentation to G. Every sample gets its own random
parameters; everything is batched tensor arithmetic on the input's device (no per-sample loops, no host
syncs) and keeps the input's dtype, shape and memory format.

Policy items:
- ``color``: brightness ``+U(-0.5, 0.5)``; saturation ``x U(0, 2)`` around the per-pixel channel mean
  (RGB only); contrast ``x U(0.5, 1.5)`` around the per-image mean.
- ``translation``: shift by up to 1/8 of the size in each direction, zero fill.
- ``cutout``: zero a square of half the size at a random centre (clipped at the border).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ganaug.errors import UsageError

__all__ = ["POLICY_ITEMS", "DiffAugment", "parse_policy"]

POLICY_ITEMS: tuple[str, ...] = ("color", "translation", "cutout")


def parse_policy(policy: str | None) -> tuple[str, ...]:
    """``"auto"`` -> all items, ``"none"``/``""``/None -> (), else comma-separated items (validated)."""
    text = (policy or "").strip().lower()
    if text in ("", "none", "off", "false"):
        return ()
    if text in ("auto", "all", "default"):
        return POLICY_ITEMS
    items: list[str] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        if item not in POLICY_ITEMS:
            choices = ", ".join(POLICY_ITEMS)
            raise UsageError(
                f"unknown DiffAugment item {item!r} in {policy!r}; use {choices}, 'auto' or 'none'"
            )
        if item not in items:
            items.append(item)
    return tuple(items)


def _rand(x: Tensor) -> Tensor:
    return torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype)


def color(x: Tensor) -> Tensor:
    x = x + (_rand(x) - 0.5)
    if x.shape[1] == 3:
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * (_rand(x) * 2.0) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_rand(x) + 0.5) + mean


def translation(x: Tensor, ratio: float = 0.125) -> Tensor:
    """Shift every image by its own integer offset in ``[-ratio*size, ratio*size]``, zero fill."""
    b, c, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    if sh == 0 and sw == 0:
        return x
    dy = torch.randint(-sh, sh + 1, (b, 1), device=x.device)
    dx = torch.randint(-sw, sw + 1, (b, 1), device=x.device)
    rows = torch.arange(h, device=x.device) - dy  # [B, H] source row of each output row
    cols = torch.arange(w, device=x.device) - dx  # [B, W]
    valid = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]
    index = rows.clamp(0, h - 1)[:, :, None] * w + cols.clamp(0, w - 1)[:, None, :]  # [B, H, W]
    flat = x.reshape(b, c, h * w)
    out = flat.gather(2, index.reshape(b, 1, h * w).expand(b, c, h * w)).view(b, c, h, w)
    return out * valid[:, None].to(x.dtype)


def cutout(x: Tensor, ratio: float = 0.5) -> Tensor:
    """Zero one ``ratio*size`` square per image, centred uniformly at random (clipped at the border)."""
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (b, 1), device=x.device)
    cx = torch.randint(0, w + (1 - cw % 2), (b, 1), device=x.device)
    ys = torch.arange(h, device=x.device) - (cy - ch // 2)  # offset of each row from the square's top
    xs = torch.arange(w, device=x.device) - (cx - cw // 2)
    inside = ((ys >= 0) & (ys < ch))[:, :, None] & ((xs >= 0) & (xs < cw))[:, None, :]
    return x * (~inside)[:, None].to(x.dtype)


class DiffAugment(nn.Module):
    """``DiffAugment("color,translation,cutout")(x)`` for float NCHW batches (policy: see parse_policy)."""

    def __init__(
        self,
        policy: str = "color,translation,cutout",
        translation_ratio: float = 0.125,
        cutout_ratio: float = 0.5,
    ):
        super().__init__()
        self.policy = parse_policy(policy)
        self.translation_ratio = translation_ratio
        self.cutout_ratio = cutout_ratio

    def forward(self, x: Tensor) -> Tensor:
        if not self.policy:
            return x
        channels_last = x.dim() == 4 and x.shape[1] > 1 and x.is_contiguous(memory_format=torch.channels_last)
        for item in self.policy:
            if item == "color":
                x = color(x)
            elif item == "translation":
                x = translation(x, self.translation_ratio)
            else:
                x = cutout(x, self.cutout_ratio)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def extra_repr(self) -> str:
        return f"policy={','.join(self.policy) or 'none'!r}"
