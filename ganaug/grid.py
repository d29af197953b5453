"""Labelled image grids (one row per class) as PNGs, with Pillow only (no torch)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ganaug.fileio import atomic_path


def make_grid(
    images: np.ndarray,
    row_labels: list[str],
    columns: int,
    *,
    min_cell: int = 48,
    pad: int = 2,
) -> Image.Image:
    """Arrange uint8 NHWC ``images`` (``len(row_labels) * columns`` of them, row-major) into a grid.

    Small images are scaled up by an integer factor (nearest neighbour) to at least ``min_cell``
    pixels so that 28-px samples stay readable; each row is labelled on the left.
    """
    n, h, w, c = images.shape
    rows = len(row_labels)
    if n != rows * columns:
        raise ValueError(f"grid needs {rows * columns} images, got {n}")
    scale = max(1, -(-min_cell // max(h, w)))
    font = ImageFont.load_default()
    label_w = max((int(font.getlength(lbl)) for lbl in row_labels), default=0) + 8
    cell_h, cell_w = h * scale, w * scale
    canvas = Image.new(
        "RGB", (label_w + columns * (cell_w + pad) + pad, rows * (cell_h + pad) + pad), "white"
    )
    draw = ImageDraw.Draw(canvas)
    rgb = np.repeat(images, 3, axis=-1) if c == 1 else images
    for r, label in enumerate(row_labels):
        y = pad + r * (cell_h + pad)
        draw.text((4, y + cell_h // 2 - 5), label, fill="black", font=font)
        for col in range(columns):
            tile = Image.fromarray(rgb[r * columns + col]).resize((cell_w, cell_h), Image.Resampling.NEAREST)
            canvas.paste(tile, (label_w + pad + col * (cell_w + pad), y))
    return canvas


def save_grid(path: str | Path, images: np.ndarray, row_labels: list[str], columns: int) -> Path:
    """Write a labelled grid PNG atomically and return its path."""
    path = Path(path)
    with atomic_path(path) as tmp:
        make_grid(images, row_labels, columns).save(tmp, format="PNG")
    return path
