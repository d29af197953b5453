"""Run an exported ganaug generator with onnxruntime and NumPy only -- no torch.

This module (plus the torch-free :mod:`ganaug.noise` and :mod:`ganaug.errors`) is all another
application needs to sample from a ``generator.onnx`` written by ``ganaug export``::

    from ganaug.runtime import OnnxGenerator

    g = OnnxGenerator("generator.onnx")
    images = g.generate(["sneaker", "bag", 3], seed=0)  # uint8 [3, H, W, C]

Latent noise comes from :class:`ganaug.noise.NoiseStream`, consumed in label order, so a seed gives
the same images whatever the batch size -- and the same images as the torch generator it came from.
onnxruntime is imported on first use, so the label helpers here also work without it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ganaug.errors import CheckpointError, UsageError
from ganaug.noise import NoiseStream

LAYOUTS = ("uint8-nhwc", "float-nchw")
META_PREFIX = "ganaug."
REQUIRED_META = ("version", "classes", "z_dim", "image_size", "channels", "layout")
_PREFERRED_PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")


def _import_ort() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise CheckpointError(
            "onnxruntime is not installed; run 'pip install onnxruntime' (or onnxruntime-gpu)"
        ) from None
    return onnxruntime


def default_providers() -> list[str]:
    """CUDA first when this onnxruntime build has it, then CPU."""
    available = _import_ort().get_available_providers()
    chosen = [p for p in _PREFERRED_PROVIDERS if p in available]
    return chosen or list(available)


def to_uint8_nhwc(x: np.ndarray) -> np.ndarray:
    """Float NCHW in [-1, 1] to uint8 NHWC, rounding exactly as the uint8 ONNX graph does."""
    x = np.asarray(x, dtype=np.float32)
    img = np.clip(np.round((x + np.float32(1.0)) * np.float32(127.5)), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(img.transpose(0, 2, 3, 1))


def resolve_labels(labels: Any, classes: Sequence[str]) -> np.ndarray:
    """Class names and/or indices -> validated int64 array (UsageError on an unknown or bad label)."""
    n = len(classes)
    if isinstance(labels, (str, bytes, int, np.integer)):
        labels = [labels]
    if isinstance(labels, np.ndarray):
        if labels.ndim != 1:
            raise UsageError(f"labels must be a 1-D sequence, got shape {tuple(labels.shape)}")
        if labels.dtype.kind in "iu":
            out = labels.astype(np.int64)
        elif labels.dtype.kind in "USO" or labels.size == 0:
            out = _labels_from_items(labels.tolist(), classes)
        else:
            raise UsageError(f"labels must be class names or integer indices, got dtype {labels.dtype}")
    else:
        try:
            items = list(labels)
        except TypeError:
            raise UsageError(f"labels must be a sequence of class names or indices, got {labels!r}") from None
        out = _labels_from_items(items, classes)
    bad = (out < 0) | (out >= n)
    if bad.any():
        first = int(out[bad][0])
        raise UsageError(f"label index {first} out of range: this generator has {n} classes (0..{n - 1})")
    return out


def _labels_from_items(items: list[Any], classes: Sequence[str]) -> np.ndarray:
    index = {name: i for i, name in enumerate(classes)}
    out = np.empty(len(items), dtype=np.int64)
    for i, item in enumerate(items):
        if isinstance(item, bytes):
            item = item.decode("utf-8", "replace")
        if isinstance(item, str):
            if item not in index:
                raise UsageError(f"unknown class {item!r}; known classes: {', '.join(classes)}")
            out[i] = index[item]
        elif isinstance(item, (int, np.integer)) and not isinstance(item, (bool, np.bool_)):
            out[i] = int(item)
        else:
            raise UsageError(f"label {item!r} is neither a class name nor an integer index")
    return out


def per_class_labels(
    n_per_class: int, classes: Sequence[str], wanted: Sequence[str | int] | None
) -> np.ndarray:
    """``n_per_class`` labels for each wanted class (all classes by default), class by class."""
    if isinstance(n_per_class, bool) or not isinstance(n_per_class, (int, np.integer)):
        raise UsageError(f"n_per_class must be an integer, got {n_per_class!r}")
    if n_per_class < 0:
        raise UsageError(f"n_per_class must be >= 0, got {n_per_class}")
    idx = resolve_labels(list(range(len(classes))) if wanted is None else list(wanted), classes)
    if len(set(idx.tolist())) != len(idx):
        raise UsageError("the same class is requested more than once")
    return np.repeat(idx, int(n_per_class))


def _check_batch_size(batch_size: int) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise UsageError(f"batch_size must be a positive integer, got {batch_size!r}")
    return int(batch_size)


def make_noise(seed: int | None, z_dim: int, truncation: float | None, start: int = 0) -> NoiseStream:
    """The ganaug latent stream from row ``start``, with option errors reported as UsageError."""
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise UsageError(f"seed must be an integer or None, got {seed!r}")
    try:
        return NoiseStream(None if seed is None else int(seed), z_dim, truncation, start=start)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _parse_metadata(path: Path, raw: dict[str, str]) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    for key, value in raw.items():
        if not key.startswith(META_PREFIX):
            continue
        try:
            meta[key[len(META_PREFIX) :]] = json.loads(value)
        except ValueError:
            raise CheckpointError(f"{path}: metadata {key} is not valid JSON") from None
    if not meta:
        raise CheckpointError(f"{path}: ONNX file without ganaug.* metadata (not a ganaug generator)")
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        raise CheckpointError(
            f"{path}: ganaug metadata is missing {', '.join(META_PREFIX + k for k in missing)}"
        )
    classes = meta["classes"]
    if not (isinstance(classes, list) and classes and all(isinstance(c, str) and c for c in classes)):
        raise CheckpointError(f"{path}: ganaug.classes must be a non-empty list of class names")
    if len(set(classes)) != len(classes):
        raise CheckpointError(f"{path}: ganaug.classes contains duplicate names")
    for key in ("z_dim", "image_size"):
        if isinstance(meta[key], bool) or not isinstance(meta[key], int) or meta[key] < 1:
            raise CheckpointError(f"{path}: ganaug.{key} must be a positive integer, got {meta[key]!r}")
    if meta["channels"] not in (1, 3):
        raise CheckpointError(f"{path}: ganaug.channels must be 1 or 3, got {meta['channels']!r}")
    if meta["layout"] not in LAYOUTS:
        raise CheckpointError(
            f"{path}: ganaug.layout must be one of {', '.join(LAYOUTS)}, got {meta['layout']!r}"
        )
    return meta


def _dims_agree(actual: Sequence[Any], expected: Sequence[int | None]) -> bool:
    """Graph dims (ints, or strings/None when dynamic) against expected dims (None = any)."""
    if len(actual) != len(expected):
        return False
    return all(not isinstance(a, int) or e is None or a == e for a, e in zip(actual, expected, strict=True))


class PerClassMixin:
    """``generate_per_class`` for any generator with ``classes`` and ``generate(labels, seed, ...)``."""

    classes: list[str]

    def generate_per_class(
        self,
        n_per_class: int,
        classes: Sequence[str | int] | None = None,
        seed: int | None = None,
        batch_size: int = 256,
        truncation: float | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``n_per_class`` images of each class (all by default): ``(images, int64 labels)``."""
        labels = per_class_labels(n_per_class, self.classes, classes)
        return self.generate(labels, seed=seed, batch_size=batch_size, truncation=truncation), labels


class OnnxGenerator(PerClassMixin):
    """A ganaug ONNX generator: ``generate(labels, seed)`` returns uint8 NHWC images.

    ``providers`` overrides onnxruntime's execution providers (default: CUDA then CPU, whichever
    this build has); ``session_options`` is passed to :class:`onnxruntime.InferenceSession`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        providers: Sequence[str | tuple[str, dict[str, Any]]] | None = None,
        session_options: Any = None,
    ) -> None:
        ort = _import_ort()
        self.path = Path(path)
        self._sha256: str | None = None
        if not self.path.is_file():
            raise CheckpointError(f"ONNX generator not found: {self.path}")
        chosen = list(providers) if providers is not None else default_providers()
        try:
            self._session = ort.InferenceSession(
                str(self.path), sess_options=session_options, providers=chosen
            )
        except Exception as exc:  # onnxruntime raises its own exception types (InvalidProtobuf, Fail, ...)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CheckpointError(f"{self.path}: not a loadable ONNX model ({first[:200]})") from None
        self.metadata: dict[str, Any] = _parse_metadata(
            self.path, dict(self._session.get_modelmeta().custom_metadata_map)
        )
        self.classes: list[str] = list(self.metadata["classes"])
        self.z_dim: int = int(self.metadata["z_dim"])
        size, channels = int(self.metadata["image_size"]), int(self.metadata["channels"])
        self.image_shape: tuple[int, int, int] = (size, size, channels)
        self.layout: str = self.metadata["layout"]
        self.providers: list[str] = list(self._session.get_providers())
        self._check_graph()

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def generator_sha256(self) -> str:
        """SHA-256 of the ``.onnx`` file (what manifests record as the generator's identity)."""
        if self._sha256 is None:
            digest = hashlib.sha256()
            with open(self.path, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    digest.update(chunk)
            self._sha256 = digest.hexdigest()
        return self._sha256

    def __repr__(self) -> str:
        return (
            f"OnnxGenerator({str(self.path)!r}, classes={len(self.classes)}, z_dim={self.z_dim}, "
            f"image_shape={self.image_shape}, layout={self.layout!r}, providers={self.providers})"
        )

    def _check_graph(self) -> None:
        where = self.path
        inputs = {i.name: i for i in self._session.get_inputs()}
        outputs = {o.name: o for o in self._session.get_outputs()}
        if set(inputs) != {"z", "label"}:
            raise CheckpointError(f"{where}: expected graph inputs 'z' and 'label', found {sorted(inputs)}")
        if "image" not in outputs:
            raise CheckpointError(f"{where}: expected a graph output 'image', found {sorted(outputs)}")
        z, label, image = inputs["z"], inputs["label"], outputs["image"]
        if z.type != "tensor(float)" or not _dims_agree(z.shape, [None, self.z_dim]):
            raise CheckpointError(
                f"{where}: input z is {z.type} {z.shape}, but metadata says float [batch, {self.z_dim}]"
            )
        if label.type != "tensor(int64)" or len(label.shape) != 1:
            raise CheckpointError(
                f"{where}: input label is {label.type} {label.shape}, expected int64 [batch]"
            )
        h, w, c = self.image_shape
        if self.layout == "uint8-nhwc":
            want_type, want_shape = "tensor(uint8)", [None, h, w, c]
        else:
            want_type, want_shape = "tensor(float)", [None, c, h, w]
        if image.type != want_type or not _dims_agree(image.shape, want_shape):
            raise CheckpointError(
                f"{where}: output image is {image.type} {image.shape}, but metadata says layout "
                f"{self.layout} with image_size {h} and {c} channel(s)"
            )
        # One probe sample with the highest class index: a class count larger than the graph's
        # embedding, or shapes that only show at run time, fail here rather than mid-job.
        z0 = np.zeros((1, self.z_dim), dtype=np.float32)
        try:
            out = self._run(z0, np.array([self.num_classes - 1], dtype=np.int64))
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CheckpointError(
                f"{where}: generator failed on class index {self.num_classes - 1} ({first[:200]}); "
                "its metadata does not match the graph"
            ) from None
        if out.shape != (1, h, w, c):
            raise CheckpointError(
                f"{where}: generator returned shape {out.shape}, metadata says (1, {h}, {w}, {c})"
            )

    def _run(self, z: np.ndarray, labels: np.ndarray) -> np.ndarray:
        (out,) = self._session.run(["image"], {"z": z, "label": labels})
        if self.layout == "float-nchw":
            return to_uint8_nhwc(out)
        return out

    def generate_from_noise(self, z: np.ndarray, labels: Any, batch_size: int = 256) -> np.ndarray:
        """Images for given latent rows ``z`` (float32 ``[n, z_dim]``) and labels, uint8 NHWC."""
        idx = resolve_labels(labels, self.classes)
        z = np.asarray(z, dtype=np.float32)
        if z.shape != (len(idx), self.z_dim):
            raise UsageError(f"z must have shape ({len(idx)}, {self.z_dim}), got {tuple(z.shape)}")
        batch_size = _check_batch_size(batch_size)
        out = np.empty((len(idx), *self.image_shape), dtype=np.uint8)
        for start in range(0, len(idx), batch_size):
            stop = min(start + batch_size, len(idx))
            out[start:stop] = self._run(np.ascontiguousarray(z[start:stop]), idx[start:stop])
        return out

    def generate(
        self, labels: Any, seed: int | None = None, batch_size: int = 256, truncation: float | None = None
    ) -> np.ndarray:
        """One image per label (class names or indices), uint8 ``[n, H, W, C]``.

        Row ``i`` of the noise stream for ``seed`` goes to ``labels[i]``; ``truncation`` T redraws
        latent coordinates with ``|z| > T``. The result does not depend on ``batch_size``.
        """
        idx = resolve_labels(labels, self.classes)
        batch_size = _check_batch_size(batch_size)
        stream = make_noise(seed, self.z_dim, truncation)
        out = np.empty((len(idx), *self.image_shape), dtype=np.uint8)
        for start in range(0, len(idx), batch_size):
            stop = min(start + batch_size, len(idx))
            out[start:stop] = self._run(stream.take(stop - start), idx[start:stop])
        return out


__all__ = [
    "LAYOUTS",
    "OnnxGenerator",
    "PerClassMixin",
    "default_providers",
    "make_noise",
    "per_class_labels",
    "resolve_labels",
    "to_uint8_nhwc",
]
