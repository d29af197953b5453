"""``ganaug sample`` declared once (:mod:`ganaug.specs`): :class:`SampleSpec` gives the CLI options,
``--config`` and the ``config.yaml`` that :func:`run_sample` saves in the output dataset, so
``ganaug sample --config OUT/config.yaml --out OTHER`` repeats the job.

This module is torch-free; :func:`run_sample` imports the sampling machinery when called.
"""

# ruff: noqa: RUF009 -- ganaug.specs.option() is a field specifier (it returns dataclasses.field)
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ganaug import specs
from ganaug.errors import UsageError
from ganaug.limits import BATCH
from ganaug.specs import option

if TYPE_CHECKING:
    from ganaug.sampling import SampleResult

#: The file :func:`run_sample` saves the spec to, inside the output dataset.
CONFIG_FILE = "config.yaml"


def parse_classes(value: Any) -> list[str] | None:
    """``"bag,shoe"`` (or a list, from a config file) -> ``["bag", "shoe"]``; names or indices."""
    if value is None:
        return None
    names = [str(v).strip() for v in value] if isinstance(value, (list, tuple)) else str(value).split(",")
    names = [n.strip() for n in names]
    if not names or not all(names):
        raise UsageError(f"--classes has an empty entry: {value!r} (use a,b,c)")
    return names


@dataclass
class SampleSpec:
    """``ganaug sample``: ``n_per_class`` images of each class from ``source`` into ``out``."""

    source: str | None = option(None, argument=True, path=True, required=True)
    out: str | None = specs.out_dir(required=True, help="Output dataset folder.")
    n_per_class: int | None = specs.n_per_class(
        None, required=True, low=0, help="Images to generate per class."
    )
    classes: list[str] | None = option(
        None,
        convert=parse_classes,
        metavar="NAMES",
        help="Comma-separated class names (or indices) to sample; default: all.",
    )
    format: str = specs.dataset_format(
        help="imagefolder: a folder per class; npz: one data.npz (images, labels, classes). "
        "png: old spelling of imagefolder."
    )
    truncation: float | None = specs.truncation()
    temperature: float | None = specs.temperature()
    seed: int = specs.seed()
    batch_size: int = option(256, limit=BATCH, help="Images per generator call.")
    device: str = specs.device(
        "auto", help="cpu, cuda[:N] or auto (torch device, or onnxruntime providers for .onnx)."
    )
    shard: str | None = option(
        None,
        metavar="K/N",
        help="Write only part K (0-based) of N of this job; join the parts with ganaug augment --merge.",
    )
    checkpoint: str | None = option(
        None, help="With a run directory: best (lowest validation FID of its EMA snapshots), last, or a step."
    )


def run_sample(spec: SampleSpec, *, overwrite: bool = False, progress: bool = False) -> SampleResult:
    """Sample as ``spec`` says (see :func:`ganaug.sampling.write_samples`), then save the spec as
    ``config.yaml`` in the finished dataset. ``overwrite`` replaces an output ganaug wrote."""
    from ganaug.sampling import write_samples
    from ganaug.shard import parse_shard
    from ganaug.snapshots import select_weights

    if spec.source is None or spec.out is None or spec.n_per_class is None:
        raise UsageError("sample: source, out and n_per_class are required")
    parse_shard(spec.shard)  # before any work: a bad --shard is a usage error
    job = replace(
        spec,
        source=str(select_weights(spec.source, spec.checkpoint)),
        checkpoint=None,
        classes=parse_classes(spec.classes),
        format=specs.check_format(spec.format),
    )
    result = write_samples(job, overwrite=overwrite, progress=progress)
    specs.save_spec(spec, Path(result.out) / CONFIG_FILE)
    return result


__all__ = ["CONFIG_FILE", "SampleSpec", "parse_classes", "run_sample"]
