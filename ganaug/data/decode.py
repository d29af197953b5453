"""Safe image decoding with Pillow, and conversion to uint8 HWC arrays of one size/channel count.

Pillow's decompression-bomb limit stays on: an image over ``Image.MAX_IMAGE_PIXELS`` is refused,
never decoded. Truncated files are not silently padded (``LOAD_TRUNCATED_IMAGES`` stays off).
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from ganaug.errors import first_line

ImageFile.LOAD_TRUNCATED_IMAGES = False

GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}


@dataclass
class Decoded:
    """One decoded image (native size, RGB or L), or why it could not be decoded."""

    array: np.ndarray | None
    size: tuple[int, int] | None = None
    channels: int | None = None
    error: str | None = None


def _to_array(img: Image.Image) -> tuple[np.ndarray, int]:
    if img.mode in GRAY_MODES:
        if img.mode != "L":
            img = img.convert("L") if img.mode in {"1", "LA"} else _scale_to_l(img)
        return np.asarray(img, dtype=np.uint8)[..., None], 1
    if img.mode != "RGB":
        img = img.convert("RGBA").convert("RGB") if "A" in img.mode or img.mode == "P" else img.convert("RGB")
    return np.asarray(img, dtype=np.uint8), 3


def _scale_to_l(img: Image.Image) -> Image.Image:
    arr = np.asarray(img, dtype=np.float64)
    hi = 65535.0 if img.mode.startswith("I;16") else max(float(arr.max()), 1.0)
    return Image.fromarray(np.clip(arr / hi * 255.0 + 0.5, 0, 255).astype(np.uint8), mode="L")


@contextlib.contextmanager
def _decoding_warnings() -> Iterator[None]:
    """Bomb warnings become errors; Pillow's own chatter about the bad files we skip is muted.

    Entered once per call from the calling thread: ``warnings.catch_warnings`` swaps global
    state, so entering it inside worker threads would race.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
        yield


def _decode(path: str) -> Decoded:
    try:
        if os.path.getsize(path) == 0:
            return Decoded(None, error="empty file")
        with Image.open(path) as img:
            img.load()
            arr, channels = _to_array(img)
        if arr.size == 0:
            return Decoded(None, error=f"0-pixel image ({arr.shape[1]}x{arr.shape[0]})")
        return Decoded(arr, size=(arr.shape[1], arr.shape[0]), channels=channels)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        return Decoded(None, error=f"refused: decompression bomb ({exc.__class__.__name__})")
    except UnidentifiedImageError:
        return Decoded(None, error="not an image")
    except MemoryError:
        return Decoded(None, error="unreadable (too large to decode)")
    except Exception as exc:  # any decoder failure on a hostile file is a skip
        return Decoded(None, error=f"unreadable ({first_line(exc, None)})")


def decode_files(paths: list[str], workers: int | None = None) -> list[Decoded]:
    """Decode many files in a thread pool (Pillow releases the GIL while decoding)."""
    workers = workers or min(8, os.cpu_count() or 1)
    with _decoding_warnings():
        if len(paths) < 64 or workers == 1:
            return [_decode(p) for p in paths]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(_decode, paths, chunksize=64))


def convert_channels(array: np.ndarray, channels: int) -> np.ndarray:
    """Convert a uint8 HWC (or NHWC) array to 1 (luma) or 3 channels."""
    have = array.shape[-1]
    if have == channels:
        return array
    if channels == 3:
        return np.repeat(array, 3, axis=-1)
    luma = array[..., 0] * 0.299 + array[..., 1] * 0.587 + array[..., 2] * 0.114
    return np.clip(luma + 0.5, 0, 255).astype(np.uint8)[..., None]


def resize_square(array: np.ndarray, size: int) -> np.ndarray:
    """Resize a uint8 HWC image to ``size`` x ``size``.

    Non-square images are centre-cropped to a square first, so nothing is distorted. Downscaling
    uses a box-aware filter (Lanczos), upscaling bicubic.
    """
    h, w, c = array.shape
    if h != w:
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        array = array[top : top + side, left : left + side]
        h = w = side
    if h == size:
        return np.ascontiguousarray(array)
    img = Image.fromarray(array[..., 0] if c == 1 else array, mode="L" if c == 1 else "RGB")
    method = Image.Resampling.LANCZOS if size < h else Image.Resampling.BICUBIC
    out = np.asarray(img.resize((size, size), method), dtype=np.uint8)
    return out[..., None] if c == 1 else out


def majority_channels(channel_counts: dict[int, int]) -> int:
    """The channel count most images have (3 wins a tie)."""
    if not channel_counts:
        return 1
    return max(channel_counts.items(), key=lambda kv: (kv[1], kv[0]))[0]


def stack_images(arrays: list[np.ndarray], image_size: int | None, channels: int, where: str) -> np.ndarray:
    """Make all images ``channels`` deep and ``image_size`` square, and stack them to NHWC.

    Without ``image_size`` every image must already have the same square size.
    """
    from ganaug.errors import DataError

    if image_size is None:
        shapes = {a.shape[:2] for a in arrays}
        if len(shapes) > 1:
            listed = ", ".join(f"{w}x{h}" for h, w in sorted(shapes)[:4])
            raise DataError(f"{where}: images have different sizes ({listed}); pass --image-size N")
        (h, w) = next(iter(shapes)) if shapes else (0, 0)
        if h != w:
            raise DataError(f"{where}: images are {w}x{h}, not square; pass --image-size N")
    out = [convert_channels(a, channels) for a in arrays]
    if image_size is not None:
        out = [resize_square(a, image_size) for a in out]
    if not out:
        return np.zeros((0, image_size or 0, image_size or 0, channels), dtype=np.uint8)
    return np.stack(out)
