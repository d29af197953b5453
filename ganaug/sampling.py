"""Sample images from a generator -- torch (run dir / weights) or onnxruntime (``.onnx``) alike.

:func:`open_sampler` returns an object with ``classes``, ``z_dim``, ``image_shape``,
``generator_sha256``, ``default_temperature``, ``generate(labels, seed, batch_size, truncation,
temperature)`` and ``generate_from_noise(z, labels, batch_size)``, all returning uint8 NHWC. Both
backends take their latent rows from :class:`ganaug.noise.NoiseStream` and quantise with the same
formula, so one seed gives the same images (at most one grey level apart from float rounding) from
torch and from ONNX.
:func:`sample_to_dataset` writes ``n_per_class`` images per class with a manifest
(``ganaug sample``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ganaug import __version__
from ganaug.errors import CheckpointError, UsageError
from ganaug.imageops import quantize_torch  # re-exported: its old home
from ganaug.progress import Progress
from ganaug.runtime import (
    OnnxGenerator,
    PerClassMixin,
    make_noise,
    per_class_labels,
    resolve_labels,
    resolve_temperature,
)

if TYPE_CHECKING:
    from ganaug.shard import Shard


class TorchSampler(PerClassMixin):
    """A generator from a run directory or ``.safetensors`` file, sampled with torch (EMA weights)."""

    def __init__(self, source: str | os.PathLike[str], device: str = "cpu") -> None:
        import torch

        from ganaug.checkpoint import load_generator

        self.device = torch.device(device)
        self.module = load_generator(source, device=self.device)
        info = self.module.ganaug_info
        self.classes: list[str] = list(info.classes)
        config = info.config
        self.z_dim: int = int(config["z_dim"])
        self.image_shape: tuple[int, int, int] = (
            int(config["image_size"]),
            int(config["image_size"]),
            int(config["channels"]),
        )
        self.generator_sha256: str = info.weights_sha256
        self.path = Path(info.weights_path)
        #: the temperature ``generate`` uses when given none (a run or weights file has no other)
        self.default_temperature: float = 1.0

    def __repr__(self) -> str:
        return f"TorchSampler({str(self.path)!r}, classes={len(self.classes)}, device={self.device})"

    def generate_from_noise(self, z: np.ndarray, labels: Any, batch_size: int = 256) -> np.ndarray:
        """Images for latent rows ``z`` (float32 ``[n, z_dim]``) and labels, uint8 NHWC."""
        import torch

        idx = resolve_labels(labels, self.classes)
        z = np.asarray(z, dtype=np.float32)
        if z.shape != (len(idx), self.z_dim):
            raise UsageError(f"z must have shape ({len(idx)}, {self.z_dim}), got {tuple(z.shape)}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise UsageError(f"batch_size must be a positive integer, got {batch_size!r}")
        out = np.empty((len(idx), *self.image_shape), dtype=np.uint8)
        with torch.inference_mode():
            for start in range(0, len(idx), int(batch_size)):
                stop = min(start + int(batch_size), len(idx))
                zt = torch.from_numpy(np.ascontiguousarray(z[start:stop])).to(self.device)
                lt = torch.from_numpy(idx[start:stop]).to(self.device)
                out[start:stop] = quantize_torch(self.module(zt, lt).float()).cpu().numpy()
        return out

    def generate(
        self,
        labels: Any,
        seed: int | None = None,
        batch_size: int = 256,
        truncation: float | None = None,
        temperature: float | None = None,
    ) -> np.ndarray:
        """One image per label (names or indices), uint8 ``[n, H, W, C]``; row ``i`` of the seed's
        noise stream (truncated, then times ``temperature``) goes to ``labels[i]``, whatever
        ``batch_size``."""
        idx = resolve_labels(labels, self.classes)
        temperature = resolve_temperature(self, temperature)
        z = make_noise(seed, self.z_dim, truncation, temperature=temperature).take(len(idx))
        return self.generate_from_noise(z, idx, batch_size)


def _onnx_providers(device: str | None) -> list[str] | None:
    if device in (None, "auto"):
        return None
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if str(device).startswith("cuda"):
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    raise UsageError(f"device {device!r} is not supported for ONNX generators; use cpu, cuda or auto")


def open_sampler(
    source: str | os.PathLike[str],
    device: str | None = None,
    providers: Sequence[str] | None = None,
) -> TorchSampler | OnnxGenerator:
    """Open a generator for sampling: ``.onnx`` -> onnxruntime, run dir / weights file -> torch.

    ``device`` (``cpu``, ``cuda``, ``cuda:1``, ``auto``/None) picks the torch device or the
    onnxruntime providers; ``providers`` overrides the latter explicitly.
    """
    path = Path(source)
    if not path.exists():
        raise CheckpointError(f"generator not found: {path}")
    if path.is_file() and path.suffix.lower() == ".onnx":
        return OnnxGenerator(path, providers=providers if providers is not None else _onnx_providers(device))
    if device in (None, "auto"):
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    return TorchSampler(path, device=device)


def generator_hashes(sampler: Any) -> tuple[str, str]:
    """``(weights sha256, file sha256)`` of a generator opened with :func:`open_sampler`.

    The weights hash identifies the generator wherever it goes: for a run directory or weights file
    it is the hash of the ``.safetensors`` file, for an ONNX export the ``ganaug.weights_sha256``
    that ``ganaug export`` recorded from those weights (the file's own hash when it is absent). The
    file hash is that of the file actually sampled (the ``.onnx`` file, or the weights file again).
    """
    file_sha = str(sampler.generator_sha256)
    weights = getattr(sampler, "metadata", {}).get("weights_sha256")
    return (weights if isinstance(weights, str) and weights else file_sha), file_sha


@dataclass
class SampleResult:
    """What :func:`sample_to_dataset` wrote."""

    out: Path
    count: int
    counts: dict[str, int]
    seed: int
    generator_sha256: str
    seconds: float


class _LazyLabels:
    """``n`` labels of each class in ``classes``, class by class, made per slice (``sample -n 1e8``
    allocates nothing up front)."""

    def __init__(self, classes: np.ndarray, n: int) -> None:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
            raise UsageError(f"n_per_class must be an integer, got {n!r}")
        if n < 0:
            raise UsageError(f"n_per_class must be >= 0, got {n}")
        self.classes, self.n = classes, int(n)

    def __len__(self) -> int:
        return len(self.classes) * self.n

    def __getitem__(self, rows: slice) -> np.ndarray:
        start, stop, _ = rows.indices(len(self))
        return self.classes[np.arange(start, stop, dtype=np.int64) // max(self.n, 1)]


def _parse_seed(seed: int | None) -> int:
    return make_noise(seed, 1, None).seed


def sample_to_dataset(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    n_per_class: int,
    *,
    classes: Sequence[str | int] | None = None,
    fmt: str = "imagefolder",
    truncation: float | None = None,
    seed: int | None = 0,
    batch_size: int = 256,
    device: str | None = None,
    providers: Sequence[str] | None = None,
    overwrite: bool = False,
    progress: bool = False,
    shard: Shard | None = None,
    temperature: float | None = None,
) -> SampleResult:
    """Write ``n_per_class`` synthetic images of each class (all by default) to ``out``.

    ``classes`` holds names or indices (a digit string that is not a class name is an index).
    ``fmt`` is ``imagefolder``/``png`` or ``npz``. Each manifest record carries ``source:
    "synthetic"``, ``generator_sha256`` (of the weights, the same for a run and its ONNX export, see
    :func:`generator_hashes`) and ``generator_file_sha256`` (of the file sampled), ``seed``, ``z_index``
    (row in the seed's noise stream), ``truncation``, ``transforms: []`` and ``plugins: []``, plus
    ``temperature`` when it is not 1.0 (``None``: the generator's default, see
    :func:`ganaug.runtime.resolve_temperature`; ``summary.json`` records the value used). The
    folder appears only when complete (see :class:`~ganaug.dataset_writer.DatasetWriter`).
    ``shard`` writes only that part of the job, in whole generator batches (see :mod:`ganaug.shard`).
    """
    from ganaug.dataset_writer import DatasetWriter, check_output_size
    from ganaug.output_safety import check_output, generator_inputs
    from ganaug.shard import job_key, shard_entry

    t0 = time.perf_counter()
    if Path(source).exists():  # a missing generator gets open_sampler's error
        check_output(out, generator_inputs(source), overwrite=overwrite, kind="dataset")
    sampler = open_sampler(source, device=device, providers=providers)
    if classes is not None:  # "3" means class index 3 unless a class is called "3"
        classes = [
            int(c) if isinstance(c, str) and c not in sampler.classes and c.isdigit() else c for c in classes
        ]
    labels = _LazyLabels(per_class_labels(1, sampler.classes, classes), n_per_class)
    check_output_size(
        len(labels), sampler.image_shape, fmt, f"-n {n_per_class} for {len(labels.classes)} classes"
    )
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise UsageError(f"batch size must be a positive integer, got {batch_size!r}")
    seed = _parse_seed(seed)
    temperature = resolve_temperature(sampler, temperature)
    chunk = int(batch_size)
    # Shards take whole generator batches, so every image comes from the same batch as unsharded.
    batches = range(-(-len(labels) // chunk))
    if shard is not None:
        batches = shard.span(len(batches))
    first, stop_row = (min(b * chunk, len(labels)) for b in (batches.start, batches.stop))
    stream = make_noise(seed, sampler.z_dim, truncation, start=first, temperature=temperature)
    sha, file_sha = generator_hashes(sampler)
    summary: dict[str, Any] = {
        "command": "sample",
        "generator": str(source),
        "generator_sha256": sha,
        "generator_file_sha256": file_sha,
        "seed": seed,
        "truncation": truncation,
        "temperature": temperature,
        "n_per_class": int(n_per_class),
        "format": fmt,
        "versions": {"ganaug": __version__},
    }
    if shard is not None:
        settings = {
            **summary,
            "labels": labels.classes.tolist(),
            "batch_size": chunk,
            "classes": sampler.classes,
        }
        settings.pop("generator")  # a path, spelt differently per part perhaps; the sha256 counts
        summary["shard"] = shard_entry(
            shard, job=job_key(settings), classes=sampler.classes, fmt=fmt, additive=["counts"]
        )
    writer = DatasetWriter(
        out, classes=sampler.classes, fmt=fmt, overwrite=overwrite, image_shape=sampler.image_shape
    )
    bar = None
    try:
        with writer:
            bar = Progress(stop_row - first, "sampling", "img", progress, leave=True)
            for start in range(first, stop_row, chunk):
                stop = min(start + chunk, stop_row)
                images = sampler.generate_from_noise(stream.take(stop - start), labels[start:stop], chunk)
                for i, (img, lab) in enumerate(zip(images, labels[start:stop], strict=True)):
                    writer.add(
                        img,
                        int(lab),
                        {
                            "source": "synthetic",
                            "generator_sha256": sha,
                            "generator_file_sha256": file_sha,
                            "seed": seed,
                            "z_index": start + i,
                            "truncation": truncation,
                            **({"temperature": temperature} if temperature != 1.0 else {}),
                            "transforms": [],
                            "plugins": [],
                        },
                    )
                if bar is not None:
                    bar.update(stop - start)
            summary["counts"] = writer.counts()
            writer.extra_files["summary.json"] = summary
    finally:
        if bar is not None:
            bar.close()
    return SampleResult(
        out=Path(out),
        count=stop_row - first,
        counts=summary["counts"],
        seed=seed,
        generator_sha256=sha,
        seconds=time.perf_counter() - t0,
    )


__all__ = [
    "SampleResult",
    "TorchSampler",
    "generator_hashes",
    "open_sampler",
    "quantize_torch",
    "sample_to_dataset",
]
