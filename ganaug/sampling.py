"""Sample images from a generator -- torch (run dir / weights) or onnxruntime (``.onnx``) alike.

:func:`open_sampler` returns an object with ``classes``, ``z_dim``, ``image_shape``,
``generator_sha256``, ``default_temperature``, ``generate(labels, seed, batch_size, truncation,
temperature)`` and ``generate_from_noise(z, labels, batch_size)``, all returning uint8 NHWC. Both
backends take their latent rows from :class:`ganaug.noise.NoiseStream` and quantise with the same
formula, so one seed gives the same images (at most one grey level apart from float rounding) from
torch and from ONNX.
:func:`write_samples` (a :class:`~ganaug.sample_spec.SampleSpec`) and its keyword form
:func:`sample_to_dataset` write ``n_per_class`` images per class with a manifest (``ganaug sample``).
:class:`SyntheticWriter` is the one path that writes synthetic images with their :class:`Provenance`
records, for ``ganaug sample`` and ``ganaug augment`` alike.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ganaug import __version__
from ganaug.errors import GeneratorNotFoundError, UsageError
from ganaug.imageops import quantize_torch  # re-exported: its old home
from ganaug.progress import Progress
from ganaug.runtime import (
    OnnxGenerator,
    PerClassMixin,
    make_noise,
    per_class_labels,
    resolve_temperature,
)

if TYPE_CHECKING:
    from ganaug.sample_spec import SampleSpec
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
        #: the temperature ``generate`` uses when given none: the one chosen at training time on
        #: the training data (``ganaug.temperature``, see ``ganaug train --temperatures``), else 1.0
        self.default_temperature: float = info.temperature if info.temperature is not None else 1.0

    def __repr__(self) -> str:
        return f"TorchSampler({str(self.path)!r}, classes={len(self.classes)}, device={self.device})"

    def _run(self, z: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """One generator call (``generate_from_noise`` batches), uint8 NHWC."""
        import torch

        with torch.inference_mode():
            zt = torch.from_numpy(z).to(self.device)
            lt = torch.from_numpy(labels).to(self.device)
            return quantize_torch(self.module(zt, lt).float()).cpu().numpy()


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
        raise GeneratorNotFoundError(f"generator not found: {path}")
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


@dataclass(frozen=True)
class Provenance:
    """Where the synthetic images of one job come from: the fixed part of their manifest records.

    ``generator_file_sha256`` is recorded when given; ``truncation`` when set, or always (``null``
    for none) with ``null_truncation``; ``temperature`` when it is not 1.0.
    """

    generator_sha256: str
    seed: int
    truncation: float | None = None
    temperature: float = 1.0
    generator_file_sha256: str | None = None
    null_truncation: bool = False

    def record(
        self, z_index: int, transforms: Sequence[Any] = (), plugins: Sequence[str] = (), **extra: Any
    ) -> dict[str, Any]:
        """The manifest record of the image made from row ``z_index`` of the seed's noise stream;
        ``extra`` keys (``soft_label``, ``fallback``) come last."""
        record: dict[str, Any] = {"source": "synthetic", "generator_sha256": self.generator_sha256}
        if self.generator_file_sha256 is not None:
            record["generator_file_sha256"] = self.generator_file_sha256
        record.update(seed=self.seed, z_index=int(z_index))
        if self.truncation is not None or self.null_truncation:
            record["truncation"] = self.truncation
        if self.temperature != 1.0:
            record["temperature"] = self.temperature
        record.update(transforms=list(transforms), plugins=list(plugins), **extra)
        return record


class SyntheticWriter:
    """The one path that writes synthetic images (``ganaug sample`` and ``ganaug augment``): each
    image goes to a :class:`~ganaug.dataset_writer.DatasetWriter` with its :class:`Provenance` record."""

    def __init__(self, writer: Any, provenance: Provenance) -> None:
        self.writer, self.provenance = writer, provenance

    def add(
        self,
        image: np.ndarray,
        label: int,
        z_index: int,
        transforms: Sequence[Any] = (),
        plugins: Sequence[str] = (),
        **extra: Any,
    ) -> str:
        """Write one image made from noise row ``z_index``; returns its path in the dataset."""
        return self.writer.add(
            image, int(label), self.provenance.record(z_index, transforms, plugins, **extra)
        )

    def add_batch(self, images: np.ndarray, labels: Sequence[int], z_first: int) -> None:
        """Write a batch made from noise rows ``z_first, z_first + 1, ...``, untransformed."""
        for i, (image, label) in enumerate(zip(images, labels, strict=True)):
            self.add(image, label, z_first + i)


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


@dataclass
class _SampleJob:
    """A checked sampling job: the generator, the labels, and the rows of them this call writes."""

    spec: SampleSpec
    sampler: Any
    labels: _LazyLabels
    seed: int
    temperature: float
    chunk: int
    rows: range
    shard: Shard | None


def _open_job(spec: SampleSpec, providers: Sequence[str] | None, overwrite: bool) -> _SampleJob:
    """Check the output, open the generator and check the options (before anything is written)."""
    from ganaug.dataset_writer import check_output_size
    from ganaug.output_safety import check_output, generator_inputs
    from ganaug.shard import parse_shard

    shard = parse_shard(spec.shard)
    source, n_per_class, classes = spec.source, spec.n_per_class, spec.classes
    if Path(source).exists():  # a missing generator gets open_sampler's error
        check_output(spec.out, generator_inputs(source), overwrite=overwrite, kind="dataset")
    sampler = open_sampler(source, device=spec.device, providers=providers)
    if classes is not None:  # "3" means class index 3 unless a class is called "3"
        classes = [
            int(c) if isinstance(c, str) and c not in sampler.classes and c.isdigit() else c for c in classes
        ]
    labels = _LazyLabels(per_class_labels(1, sampler.classes, classes), n_per_class)
    check_output_size(
        len(labels), sampler.image_shape, spec.format, f"-n {n_per_class} for {len(labels.classes)} classes"
    )
    chunk = spec.batch_size
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise UsageError(f"batch size must be a positive integer, got {chunk!r}")
    seed = _parse_seed(spec.seed)
    temperature = resolve_temperature(sampler, spec.temperature)
    # Shards take whole generator batches, so every image comes from the same batch as unsharded.
    batches = range(-(-len(labels) // chunk))
    if shard is not None:
        batches = shard.span(len(batches))
    first, stop = (min(b * chunk, len(labels)) for b in (batches.start, batches.stop))
    return _SampleJob(spec, sampler, labels, seed, temperature, chunk, range(first, stop), shard)


def _summary(job: _SampleJob, provenance: Provenance) -> dict[str, Any]:
    """``summary.json`` of a job (``counts`` added once written), with its shard entry."""
    from ganaug.shard import job_key, shard_entry

    spec = job.spec
    summary: dict[str, Any] = {
        "command": "sample",
        "generator": str(spec.source),
        "generator_sha256": provenance.generator_sha256,
        "generator_file_sha256": provenance.generator_file_sha256,
        "seed": job.seed,
        "truncation": spec.truncation,
        "temperature": job.temperature,
        "n_per_class": int(spec.n_per_class),
        "format": spec.format,
        "versions": {"ganaug": __version__},
    }
    if job.shard is not None:
        classes = job.sampler.classes
        settings = {
            **summary,
            "labels": job.labels.classes.tolist(),
            "batch_size": job.chunk,
            "classes": classes,
        }
        settings.pop("generator")  # a path, spelt differently per part perhaps; the sha256 counts
        summary["shard"] = shard_entry(
            job.shard, job=job_key(settings), classes=classes, fmt=spec.format, additive=["counts"]
        )
    return summary


def _write_rows(job: _SampleJob, synthetic: SyntheticWriter, bar: Progress) -> None:
    """Generate and write the job's rows, one generator batch at a time."""
    sampler, labels, chunk, rows = job.sampler, job.labels, job.chunk, job.rows
    spec = job.spec
    stream = make_noise(
        job.seed, sampler.z_dim, spec.truncation, start=rows.start, temperature=job.temperature
    )
    for start in range(rows.start, rows.stop, chunk):
        stop = min(start + chunk, rows.stop)
        batch = labels[start:stop]
        synthetic.add_batch(
            sampler.generate_from_noise(stream.take(stop - start), batch, chunk), batch, start
        )
        bar.update(stop - start)


def write_samples(
    spec: SampleSpec,
    *,
    providers: Sequence[str] | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> SampleResult:
    """Write the synthetic images ``spec`` asks for (``spec.format`` as given, ``png`` included); see
    :func:`sample_to_dataset` for what the dataset holds. ``providers`` overrides onnxruntime's."""
    from ganaug.dataset_writer import DatasetWriter

    t0 = time.perf_counter()
    if spec.checkpoint is not None:
        from ganaug.snapshots import select_weights

        spec = replace(spec, source=str(select_weights(spec.source, spec.checkpoint)), checkpoint=None)
    job = _open_job(spec, providers, overwrite)
    sampler = job.sampler
    sha, file_sha = generator_hashes(sampler)
    provenance = Provenance(sha, job.seed, spec.truncation, job.temperature, file_sha, null_truncation=True)
    summary = _summary(job, provenance)
    writer = DatasetWriter(
        spec.out,
        classes=sampler.classes,
        fmt=spec.format,
        overwrite=overwrite,
        image_shape=sampler.image_shape,
    )
    bar = None
    try:
        with writer:
            bar = Progress(len(job.rows), "sampling", "img", progress, leave=True)
            _write_rows(job, SyntheticWriter(writer, provenance), bar)
            summary["counts"] = writer.counts()
            writer.extra_files["summary.json"] = summary
    finally:
        if bar is not None:
            bar.close()
    return SampleResult(
        out=Path(spec.out),
        count=len(job.rows),
        counts=summary["counts"],
        seed=job.seed,
        generator_sha256=sha,
        seconds=time.perf_counter() - t0,
    )


def sample_to_dataset(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    n_per_class: int,
    *,
    fmt: str = "imagefolder",
    shard: Shard | None = None,
    providers: Sequence[str] | None = None,
    overwrite: bool = False,
    progress: bool = False,
    **keywords: Any,
) -> SampleResult:
    """Write ``n_per_class`` synthetic images of each class (all by default) to ``out``.

    ``keywords``: the other fields of :class:`~ganaug.sample_spec.SampleSpec` -- ``classes`` (names or
    indices; a digit string that is not a class name is an index), ``truncation``, ``temperature``,
    ``seed`` (``None``: a random one), ``batch_size``, ``device``, ``checkpoint``. ``fmt`` is
    ``imagefolder``/``png`` or ``npz``. Each manifest record carries ``source: "synthetic"``,
    ``generator_sha256`` (of the weights, the same for a run and its ONNX export, see
    :func:`generator_hashes`) and ``generator_file_sha256`` (of the file sampled), ``seed``, ``z_index``
    (row in the seed's noise stream), ``truncation``, ``transforms: []`` and ``plugins: []``, plus
    ``temperature`` when it is not 1.0 (``None``: the generator's default, see
    :func:`ganaug.runtime.resolve_temperature`; ``summary.json`` records the value used). The folder
    appears only when complete (see :class:`~ganaug.dataset_writer.DatasetWriter`). ``shard`` writes only
    that part of the job, in whole generator batches (see :mod:`ganaug.shard`).
    """
    from ganaug.sample_spec import SampleSpec

    spec = SampleSpec(
        source=str(source), out=str(out), n_per_class=n_per_class, format=fmt,
        shard=None if shard is None else str(shard), **keywords,
    )  # fmt: skip
    return write_samples(spec, providers=providers, overwrite=overwrite, progress=progress)


__all__ = [
    "Provenance",
    "SampleResult",
    "SyntheticWriter",
    "TorchSampler",
    "generator_hashes",
    "open_sampler",
    "quantize_torch",
    "sample_to_dataset",
    "write_samples",
]
