"""Run an exported ganaug generator with onnxruntime and NumPy only -- no torch.

This module (plus the torch-free :mod:`ganaug.noise` and :mod:`ganaug.errors`) is all another
application needs to sample from a ``generator.onnx`` written by ``ganaug export``::

    from ganaug.runtime import OnnxGenerator

    g = OnnxGenerator("generator.onnx")
    images = g.generate(["Sneaker", "Bag", 3], seed=0)  # uint8 [3, H, W, C]

Latent noise comes from :class:`ganaug.noise.NoiseStream`, consumed in label order, so a seed gives
the same images whatever the batch size -- and the same images as the torch generator it came from.
``temperature`` (latent standard deviation) defaults to the file's ``ganaug.temperature`` (written by
``ganaug export --temperature``; 1.0 when absent). onnxruntime is imported on first use, so the
label helpers here also work without it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ganaug.errors import CheckpointError, GeneratorNotFoundError, UsageError, first_line
from ganaug.noise import MAX_TEMPERATURE, NoiseStream, check_temperature

LAYOUTS = ("uint8-nhwc", "float-nchw")
META_PREFIX = "ganaug."
REQUIRED_META = ("version", "classes", "z_dim", "image_size", "channels", "layout")
# Bounds on untrusted metadata: generous for any real generator, finite for a hostile file.
MAX_META_CHARS = 16 << 20  # one ganaug.* value, as JSON text
MAX_META_DEPTH = 16  # nesting of lists/objects in one value
MAX_CLASSES = 100_000
MAX_CLASS_NAME = 1024
META_INT_BOUNDS = {"z_dim": 4096, "image_size": 1024}
PROBE_BATCH = 64  # load-time probe: every label at least once, in batches of up to this size
_PREFERRED_PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")


def import_onnxruntime() -> Any:
    """The ``onnxruntime`` module, imported on first use (CheckpointError when it is missing)."""
    try:
        import onnxruntime
    except ImportError:
        raise CheckpointError(
            "onnxruntime is not installed; run 'pip install onnxruntime' (or onnxruntime-gpu)"
        ) from None
    return onnxruntime


def default_providers() -> list[str]:
    """CUDA first when this onnxruntime build has it, then CPU."""
    available = import_onnxruntime().get_available_providers()
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


def generator_indices(
    classes: Sequence[str], generator_classes: Sequence[str], strict: bool = False
) -> np.ndarray:
    """Dataset class index -> generator class index, matched by name (int64; ``-1`` where the
    generator lacks the class). ``strict``: a lacking class is a UsageError naming it."""
    index = {name: i for i, name in enumerate(generator_classes)}
    out = np.array([index.get(name, -1) for name in classes], dtype=np.int64)
    if strict and (out < 0).any():
        missing = [c for c, g in zip(classes, out.tolist(), strict=True) if g < 0]
        raise UsageError(f"the generator has no class {', '.join(map(repr, missing[:5]))}")
    return out


def _check_batch_size(batch_size: int) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise UsageError(f"batch_size must be a positive integer, got {batch_size!r}")
    return int(batch_size)


def check_temperature_option(temperature: Any) -> float | None:
    """``None`` or a sampling temperature in ``(0, 4]`` as a float; UsageError otherwise."""
    try:
        return check_temperature(temperature)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def resolve_temperature(generator: Any, temperature: float | None) -> float:
    """The temperature to sample ``generator`` at: ``temperature`` when given (validated), else the
    generator's ``default_temperature`` (an ONNX file's ``ganaug.temperature``), else 1.0."""
    chosen = check_temperature_option(temperature)
    if chosen is None:
        chosen = float(getattr(generator, "default_temperature", 1.0))
    return chosen


def make_noise(
    seed: int | None, z_dim: int, truncation: float | None, start: int = 0, temperature: float | None = None
) -> NoiseStream:
    """The ganaug latent stream from row ``start`` (scaled by ``temperature``), with option errors
    reported as UsageError."""
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise UsageError(f"seed must be an integer or None, got {seed!r}")
    if truncation is not None and not (
        isinstance(truncation, (int, float, np.number)) and np.isfinite(truncation) and truncation > 0
    ):
        raise UsageError(f"truncation must be a finite number > 0 or None, got {truncation!r}")
    temperature = check_temperature_option(temperature)
    try:
        return NoiseStream(
            None if seed is None else int(seed), z_dim, truncation, start=start, temperature=temperature
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _depth(value: Any) -> int:
    """Nesting depth of a parsed JSON value (iterative: no recursion on hostile input)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (list, dict)):
            deepest = max(deepest, level)
            if level > MAX_META_DEPTH:
                break
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
    return deepest


def _load_json(path: Path, key: str, value: str) -> Any:
    if len(value) > MAX_META_CHARS:
        raise CheckpointError(f"{path}: metadata {key} is {len(value)} characters, over the limit")
    try:
        parsed = json.loads(value)
    except RecursionError:
        raise CheckpointError(f"{path}: metadata {key} is nested too deeply") from None
    except ValueError:
        raise CheckpointError(f"{path}: metadata {key} is not valid JSON") from None
    if _depth(parsed) > MAX_META_DEPTH:
        raise CheckpointError(f"{path}: metadata {key} is nested too deeply")
    return parsed


def check_class_names(classes: Any, where: str, error: type[Exception] = CheckpointError) -> list[str]:
    """A non-empty list of unique, non-empty class-name strings (bounded), else ``error``."""
    if not isinstance(classes, list) or not classes or len(classes) > MAX_CLASSES:
        raise error(
            f"{where} must be a non-empty list of at most {MAX_CLASSES} class names, "
            f"got {type(classes).__name__}"
            + (f" of length {len(classes)}" if isinstance(classes, list) else "")
        )
    if not all(isinstance(c, str) and 0 < len(c) <= MAX_CLASS_NAME for c in classes):
        raise error(f"{where} must hold non-empty strings of at most {MAX_CLASS_NAME} characters")
    if len(set(classes)) != len(classes):
        dupes = sorted({c for c in classes if classes.count(c) > 1}) if len(classes) < 1000 else []
        raise error(
            f"{where} contains duplicate names" + (f" ({', '.join(map(repr, dupes[:5]))})" if dupes else "")
        )
    return list(classes)


def _parse_metadata(path: Path, raw: dict[str, str]) -> dict[str, Any]:
    meta = {
        key[len(META_PREFIX) :]: _load_json(path, key, value)
        for key, value in raw.items()
        if key.startswith(META_PREFIX)
    }
    if not meta:
        raise CheckpointError(f"{path}: ONNX file without ganaug.* metadata (not a ganaug generator)")
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        raise CheckpointError(
            f"{path}: ganaug metadata is missing {', '.join(META_PREFIX + k for k in missing)}"
        )
    check_class_names(meta["classes"], f"{path}: ganaug.classes")
    for key, high in META_INT_BOUNDS.items():
        value = meta[key]
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
            raise CheckpointError(
                f"{path}: ganaug.{key} must be an integer in [1, {high}], got {_short(value)}"
            )
    if isinstance(meta["channels"], bool) or meta["channels"] not in (1, 3):
        raise CheckpointError(f"{path}: ganaug.channels must be 1 or 3, got {_short(meta['channels'])}")
    if not isinstance(meta["layout"], str) or meta["layout"] not in LAYOUTS:
        raise CheckpointError(
            f"{path}: ganaug.layout must be one of {', '.join(LAYOUTS)}, got {_short(meta['layout'])}"
        )
    if "temperature" in meta:  # optional: files exported before it existed sample at 1.0
        try:
            check_temperature(meta["temperature"])
        except ValueError:
            raise CheckpointError(
                f"{path}: ganaug.temperature must be a number in (0, {MAX_TEMPERATURE:g}], "
                f"got {_short(meta['temperature'])}"
            ) from None
    return meta


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _dims_agree(actual: Sequence[Any], expected: Sequence[int | None]) -> bool:
    """Graph dims (ints, or strings/None when dynamic) against expected dims (None = any)."""
    if len(actual) != len(expected):
        return False
    return all(not isinstance(a, int) or e is None or a == e for a, e in zip(actual, expected, strict=True))


class PerClassMixin:
    """``generate``, ``generate_from_noise`` and ``generate_per_class`` for any generator with
    ``classes``, ``z_dim``, ``image_shape``, ``default_temperature`` and ``_run(z, labels)`` (one
    generator call on a batch, uint8 NHWC): the torch and the ONNX backend share them."""

    classes: list[str]
    z_dim: int
    image_shape: tuple[int, int, int]
    default_temperature: float

    def _run(self, z: np.ndarray, labels: np.ndarray) -> np.ndarray:
        raise NotImplementedError

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
        self,
        labels: Any,
        seed: int | None = None,
        batch_size: int = 256,
        truncation: float | None = None,
        temperature: float | None = None,
    ) -> np.ndarray:
        """One image per label (class names or indices), uint8 ``[n, H, W, C]``.

        Row ``i`` of the noise stream for ``seed`` goes to ``labels[i]``; ``truncation`` T redraws
        latent coordinates with ``|z| > T``, then ``temperature`` t (in ``(0, 4]``) scales them
        (``None``: :attr:`default_temperature`). The result does not depend on ``batch_size``.
        """
        idx = resolve_labels(labels, self.classes)
        batch_size = _check_batch_size(batch_size)
        stream = make_noise(seed, self.z_dim, truncation, temperature=resolve_temperature(self, temperature))
        out = np.empty((len(idx), *self.image_shape), dtype=np.uint8)
        for start in range(0, len(idx), batch_size):
            stop = min(start + batch_size, len(idx))
            out[start:stop] = self._run(stream.take(stop - start), idx[start:stop])
        return out

    def generate_per_class(
        self,
        n_per_class: int,
        classes: Sequence[str | int] | None = None,
        seed: int | None = None,
        batch_size: int = 256,
        truncation: float | None = None,
        temperature: float | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``n_per_class`` images of each class (all by default): ``(images, int64 labels)``."""
        labels = per_class_labels(n_per_class, self.classes, classes)
        images = self.generate(
            labels, seed=seed, batch_size=batch_size, truncation=truncation, temperature=temperature
        )
        return images, labels


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
        ort = self._ort = import_onnxruntime()
        self.path = Path(path)
        self._sha256: str | None = None
        if not self.path.is_file():
            raise GeneratorNotFoundError(f"ONNX generator not found: {self.path}")
        chosen = list(providers) if providers is not None else default_providers()
        try:
            self._session = ort.InferenceSession(
                str(self.path), sess_options=session_options, providers=chosen
            )
        except Exception as exc:  # onnxruntime raises its own exception types (InvalidProtobuf, Fail, ...)
            raise CheckpointError(f"{self.path}: not a loadable ONNX model ({first_line(exc)})") from None
        self.metadata: dict[str, Any] = _parse_metadata(
            self.path, dict(self._session.get_modelmeta().custom_metadata_map)
        )
        self.classes: list[str] = list(self.metadata["classes"])
        self.z_dim: int = int(self.metadata["z_dim"])
        size, channels = int(self.metadata["image_size"]), int(self.metadata["channels"])
        self.image_shape: tuple[int, int, int] = (size, size, channels)
        self.layout: str = self.metadata["layout"]
        #: the sampling temperature ``generate`` uses when given none (``ganaug.temperature``, else 1.0)
        self.default_temperature: float = float(self.metadata.get("temperature", 1.0))
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
        self._probe()

    def _probe(self) -> None:
        """Run the documented contract once at load time, cheaply (zero latents).

        Batches of 1 and 2 images and every label at least once (in batches of up to
        :data:`PROBE_BATCH`) must give images of the promised dtype and shape, so a graph that only
        works at batch 1 or for some labels fails here rather than mid-job. On the CPU provider,
        the label one past the last class must fail: a graph that accepts it has more classes than
        its metadata names.
        """
        n = self.num_classes
        batches = [np.array([n - 1]), np.array([0, n - 1])]
        batches += [np.arange(i, min(i + PROBE_BATCH, n)) for i in range(0, n, PROBE_BATCH)]
        for labels in batches:
            try:
                self._run(np.zeros((len(labels), self.z_dim), dtype=np.float32), labels.astype(np.int64))
            except CheckpointError as exc:
                raise CheckpointError(
                    f"{exc} (load-time check: its metadata does not match the graph)"
                ) from None
        if self.providers[:1] == ["CPUExecutionProvider"]:
            try:
                quiet = self._ort.RunOptions()
                quiet.log_severity_level = 4  # the expected failure is not worth an ERROR log line
                feed = {"z": np.zeros((1, self.z_dim), np.float32), "label": np.array([n], dtype=np.int64)}
                self._session.run(["image"], feed, quiet)
            except Exception:  # the expected outcome: label n is out of the graph's range
                return
            raise CheckpointError(
                f"{self.path}: the graph accepts label index {n}, but ganaug.classes names only {n} "
                "classes (metadata names fewer classes than the model has)"
            )

    def _run(self, z: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """One graph call; any failure or a wrong output is a one-line CheckpointError naming the file."""
        try:
            (out,) = self._session.run(["image"], {"z": z, "label": labels})
        except Exception as exc:  # onnxruntime's own exception types (Fail, RuntimeException, ...)
            raise CheckpointError(
                f"{self.path}: generator failed on a batch of {len(labels)} (labels {labels.min()}.."
                f"{labels.max()}): {first_line(exc)}; the graph does not follow the ganaug contract"
            ) from None
        h, w, c = self.image_shape
        b = len(labels)
        want_dtype, want_shape = (
            (np.uint8, (b, h, w, c)) if self.layout == "uint8-nhwc" else (np.float32, (b, c, h, w))
        )
        if not isinstance(out, np.ndarray) or out.dtype != want_dtype or out.shape != want_shape:
            got = f"{out.dtype} {tuple(out.shape)}" if isinstance(out, np.ndarray) else type(out).__name__
            raise CheckpointError(
                f"{self.path}: generator returned {got} for a batch of {b}, metadata promises "
                f"{np.dtype(want_dtype)} {want_shape}"
            )
        return to_uint8_nhwc(out) if self.layout == "float-nchw" else out


__all__ = [
    "LAYOUTS",
    "OnnxGenerator",
    "PerClassMixin",
    "check_temperature_option",
    "default_providers",
    "generator_indices",
    "import_onnxruntime",
    "make_noise",
    "per_class_labels",
    "resolve_labels",
    "resolve_temperature",
    "to_uint8_nhwc",
]
