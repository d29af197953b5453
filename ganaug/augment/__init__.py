"""The augmentation pipeline behind ``ganaug augment``: real data + GAN samples -> a new dataset.

>>> summary = augment_dataset("images/", "generator.onnx", "augmented/",
...                           strategy="not majority", filters=["confidence"])   # doctest: +SKIP
>>> summary["counts"]["after"]                                                     # doctest: +SKIP
{'crack': 300, 'dent': 300, 'ok': 300}

The rooms of this package follow the flow: :mod:`~ganaug.augment.spec` (what the user asks for,
:class:`AugmentSpec`), :mod:`~ganaug.augment.options` (the options plugins declare),
:mod:`~ganaug.augment.plan` (counts and noise rows), :mod:`~ganaug.augment.pipeline` (open, configure,
plan, write the real images, summarise) and :mod:`~ganaug.augment.synthetic` (the synthetic images).

What happens, in order (every step but the bookkeeping is a plugin hook, see :mod:`ganaug.hookspecs`):

1. ``ganaug_add_options``: the options plugins declare get their values (typed) or defaults.
2. The generator is opened and the input read at the generator's image size and channels.
3. ``ganaug_configure``: plugins load pipelines / classifiers and claim ``--filter`` names.
4. ``ganaug_plan`` turns ``--strategy`` into synthetic counts per class; ``--max-synthetic-ratio``
   caps each class at that many synthetic per real image.
5. ``ganaug_open_writer`` gives the output writer for ``--format``; it writes into a hidden temporary
   folder that replaces ``out`` only at the end, so a crash never leaves an ``out`` that looks complete.
6. Real images: copied or hard-linked byte for byte when no ``ganaug_transform`` changed them, else
   written from the (transformed) array.
7. Synthetic images, in units of at most :data:`SYNTHETIC_UNIT` images of one class (class by
   class). Unit ``u`` with target ``t`` owns ``ceil(max_attempts * t)`` consecutive rows of ONE noise
   stream for ``seed``; its ``k``-th candidate uses the next row (its ``z_index`` in the manifest), so
   ``sample_noise(seed, 1, z_dim, start=k)`` and the label reproduce it exactly. Candidates are voted
   on by ``ganaug_accept`` in batches; rejected ones are replaced until the unit has its count or its
   rows run out (then a warning says how many are missing, and ``summary.json`` lists the shortfall).
   Units do not depend on each other, which is what lets ``--shard K/N`` split a job.
8. ``ganaug_finish``, then ``summary.json`` (and, from :func:`run_augment` with ``save_config``, the
   spec as ``config.yaml``) and ``manifest.jsonl`` are written and ``out`` published.

With ``shard`` (``--shard K/N``) only the K-th contiguous slice of the real images and of the
synthetic units is written; :func:`ganaug.shard.merge_parts` joins the N parts into what one
unsharded run writes. The input is only read, never written.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ganaug.augment.pipeline import SCORES_KEY, check_paths
from ganaug.augment.plan import SyntheticUnits
from ganaug.augment.spec import CONFIG_FILE, CORE_OPTIONS, FILL_MODES, REAL_MODES, AugmentSpec
from ganaug.progress import Progress

if TYPE_CHECKING:
    from ganaug.shard import Shard

#: Synthetic images per work unit: the pieces ``--shard`` hands out (never change it lightly: it
#: decides which noise rows a synthetic image uses).
SYNTHETIC_UNIT = 512


def _synthetic_units(need: Sequence[int], max_attempts: float) -> SyntheticUnits:
    """``(class index, target, first noise row, rows)`` per unit, class by class (lazily)."""
    return SyntheticUnits(need, max_attempts, SYNTHETIC_UNIT)


def config_text(spec: AugmentSpec) -> str:
    """The spec as the YAML ``config.yaml`` holds (:func:`ganaug.specs.spec_to_config`)."""
    import yaml

    from ganaug.specs import spec_to_config

    return yaml.safe_dump(spec_to_config(spec), sort_keys=False)


def run_augment(
    spec: AugmentSpec,
    *,
    dataset: Any = None,
    overwrite: bool = False,
    progress: bool = False,
    echo: Callable[[str], None] | None = None,
    warn: Callable[[str], None] | None = None,
    plugin_manager: Any = None,
    save_config: bool = False,
) -> dict[str, Any]:
    """Write ``spec.out``: the real images of ``spec.data[0]`` (or of ``dataset``, an
    :class:`~ganaug.data.ImageDataset`) plus synthetic ones; returns the summary also written to
    ``out/summary.json``. ``save_config`` also writes the spec (:func:`config_text`) as
    ``out/config.yaml``, so ``ganaug augment --config out/config.yaml --out OTHER`` repeats the run.
    ``plugin_manager`` replaces plugin discovery (then ``spec.plugins`` is ignored)."""
    from ganaug.augment import pipeline
    from ganaug.augment.synthetic import SyntheticPass
    from ganaug.shard import parse_shard

    shard = parse_shard(spec.shard)
    run = pipeline.open_run(
        spec, dataset, overwrite=overwrite, plugin_manager=plugin_manager, echo=echo, warn=warn
    )
    plan, capped = pipeline.make_plan(run)
    writer = pipeline.open_writer(run, plan, overwrite)
    units = SyntheticUnits([plan[c] for c in run.classes], spec.max_attempts, SYNTHETIC_UNIT)
    real_span = range(len(run.ds)) if spec.real != "none" else range(0)
    if shard is not None:
        real_span = shard.span(len(real_span))
        units = units.select(shard.span(len(units)))
        run.say(f"shard {shard}: {len(real_span)} real images, {len(units)} synthetic units")
    with writer:
        real = pipeline.write_real(run, writer, real_span)
        total = sum(u[1] for u in units)
        bar = Progress(total, "synthetic", "img", progress)
        synthetic = SyntheticPass(run, writer, bar)
        if total:
            run.say(f"generating {total} synthetic images")
        try:
            for unit in units:
                synthetic.unit(*unit)
        finally:
            bar.close()
        synthetic.report()
        written = {"real": real, "synthetic": synthetic.written, "candidates": synthetic.attempts,
                   "filled": synthetic.filled}  # fmt: skip
        summary = pipeline.summary_of(run, plan, capped, written)
        pipeline.finish(run, writer, summary, shard, config_text(spec) if save_config else None)
    return summary


def augment_dataset(
    data: str | os.PathLike[str] | Any,
    generator: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    progress: bool = False,
    echo: Callable[[str], None] | None = None,
    warn: Callable[[str], None] | None = None,
    plugin_manager: Any = None,
    **options: Any,
) -> dict[str, Any]:
    """Keyword form of :func:`run_augment`: write ``out``, the real images of ``data`` plus synthetic
    ones from ``generator``; returns the summary (also ``out/summary.json``).

    ``data``: a dataset path (anything :func:`ganaug.data.load_dataset` reads) or an
    :class:`~ganaug.data.ImageDataset`. ``generator``: a ``.onnx`` file, run dir or weights file.
    ``options``: ``fmt`` (``imagefolder``/``npz``), ``device``, ``plugin_options``, ``plugins``,
    ``shard``, the fields of :class:`AugmentSpec` (``strategy``, ``filters``, ``real``, ``seed``,
    ``truncation``, ``temperature``, ``soft_labels``, ``fill``, ``max_attempts``, ``batch_size`` ...)
    and the options plugins declare (``ganaug plugins list`` shows them; converted to their declared
    types); ``plugin_options``: ``-O KEY=VALUE`` pairs. ``plugins``: extra plugins
    (``--plugin``, module names or objects); ``plugin_manager`` replaces plugin discovery.
    ``shard`` writes only that part of the job (``--shard K/N``, see :mod:`ganaug.shard`).
    """
    from ganaug.data import ImageDataset

    fmt: str = options.pop("fmt", "imagefolder")
    plugin_options: Mapping[str, Any] | None = options.pop("plugin_options", None)
    plugins: Sequence[str | object] = options.pop("plugins", ())
    device: str | None = options.pop("device", None)
    shard: Shard | None = options.pop("shard", None)
    fields = {f.name for f in dataclasses.fields(AugmentSpec)}
    core = {k: v for k, v in options.items() if k in fields}
    extra = {k: v for k, v in options.items() if k not in fields and v is not None}
    is_dataset = isinstance(data, ImageDataset)
    names = [p for p in plugins if isinstance(p, str)]
    objects = [p for p in plugins if not isinstance(p, str)]
    if objects and plugin_manager is None:
        from ganaug.plugins import get_plugin_manager

        plugin_manager = get_plugin_manager(list(plugins))
    spec = AugmentSpec(
        data=[] if is_dataset else [str(data)], generator=str(generator), out=str(out), format=fmt,
        plugins=names, plugin_options={**extra, **dict(plugin_options or {})},
        device=device or "auto", shard=None if shard is None else str(shard), **core,
    )  # fmt: skip
    if "filters" in core:
        spec.filters = [f for f in core["filters"] if f]
    return run_augment(
        spec, dataset=data if is_dataset else None, overwrite=overwrite, progress=progress, echo=echo,
        warn=warn, plugin_manager=plugin_manager,
    )  # fmt: skip


__all__ = [
    "CONFIG_FILE",
    "CORE_OPTIONS",
    "FILL_MODES",
    "REAL_MODES",
    "SCORES_KEY",
    "SYNTHETIC_UNIT",
    "AugmentSpec",
    "augment_dataset",
    "check_paths",
    "config_text",
    "run_augment",
]
