"""One augment run, step by step (the order is in :mod:`ganaug.augment`'s docstring)."""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ganaug.augment.options import declared_options, input_files, resolve_options
from ganaug.augment.plan import SyntheticUnits, jsonable_strategy, resolve_plan, shard_entry
from ganaug.augment.spec import CONFIG_FILE, FILL_MODES, REAL_MODES, AugmentSpec
from ganaug.errors import DataError, DataNotFoundError, UsageError
from ganaug.hookspecs import AugmentContext
from ganaug.runtime import generator_indices
from ganaug.sampling import generator_hashes

#: ``context.state`` key under which a ``ganaug_accept`` implementation may publish, for the batch it
#: just voted on, ``{reason: float array}`` -- a score per candidate (higher is better) for its vote
#: ``reason``. ``fill="best"`` takes rejected candidates only when every rejecting vote was scored.
SCORES_KEY = "candidate_scores"
_FILE_FORMATS = ("imagefolder", "png")
_VERSIONED = ("numpy", "torch", "onnxruntime", "albumentations", "pluggy", "Pillow")


def check_paths(
    data: str | os.PathLike[str] | None,
    generator: str | os.PathLike[str],
    out: Path,
    *,
    overwrite: bool = False,
    files: Any = (),
) -> None:
    """Refuse an ``out`` that is, contains or lies inside an input (the data, every folder a manifest
    points into, the generator, the option ``files``), or that ``--overwrite`` may not replace
    (see :mod:`ganaug.output_safety`)."""
    from ganaug.output_safety import check_output, data_inputs, generator_inputs

    inputs = [*data_inputs(data), *generator_inputs(generator)]
    inputs += [(Path(f), "the input file") for f in files if f]
    check_output(out, inputs, overwrite=overwrite, kind="dataset")


def check_spec(spec: AugmentSpec) -> None:
    """What a library caller may get wrong (the CLI's types check the rest)."""
    if spec.real not in REAL_MODES:
        raise UsageError(f"real must be one of {', '.join(REAL_MODES)}, got {spec.real!r}")
    if spec.fill not in FILL_MODES:
        raise UsageError(f"--fill must be one of {', '.join(FILL_MODES)}, got {spec.fill!r}")
    attempts = spec.max_attempts
    if isinstance(attempts, bool) or not (isinstance(attempts, (int, float)) and 1 <= attempts < math.inf):
        raise UsageError(f"--max-attempts must be a number >= 1, got {attempts!r}")
    seed = spec.seed
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise UsageError(f"--seed must be an integer >= 0, got {seed!r}")


@dataclass
class Run:
    """What the steps of one run share."""

    spec: AugmentSpec
    out: Path
    pm: Any
    sampler: Any
    ds: Any
    data_path: Any
    generator: str
    options: dict[str, Any]
    context: AugmentContext
    temperature: float
    say: Callable[[str], None]
    complain: Callable[[str], None]
    to_generator: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    soft_teacher: Any = None
    counts: dict[str, Counter[str]] = field(default_factory=dict)
    rejected: Counter[str] = field(default_factory=Counter)
    shortfall: dict[str, int] = field(default_factory=dict)
    withheld: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def classes(self) -> list[str]:
        return self.context.classes


def open_run(
    spec: AugmentSpec,
    dataset: Any,
    *,
    overwrite: bool,
    plugin_manager: Any,
    echo: Callable[[str], None] | None,
    warn: Callable[[str], None] | None,
) -> Run:
    """Check the paths, load the plugins, the generator and the data; ``ganaug_configure``."""
    from ganaug.plugins import get_plugin_manager
    from ganaug.runtime import resolve_temperature
    from ganaug.sampling import open_sampler
    from ganaug.snapshots import select_weights

    check_spec(spec)
    data_path = spec.data[0] if dataset is None else None
    if data_path is not None and not Path(data_path).exists():
        raise DataNotFoundError(f"input not found: {data_path}")
    pm = plugin_manager if plugin_manager is not None else get_plugin_manager(spec.plugins)
    declared = declared_options(pm)
    options = resolve_options(spec, declared)
    out = Path(spec.out or "")
    generator = str(spec.generator)
    if spec.checkpoint is not None:
        generator = str(select_weights(generator, spec.checkpoint))
    check_paths(data_path, generator, out, overwrite=overwrite, files=input_files(options, declared))
    sampler = open_sampler(generator, device=spec.device)
    temperature = resolve_temperature(sampler, spec.temperature)
    ds = _load_data(data_path, dataset, sampler)
    core = _core_options(spec, temperature)
    context = AugmentContext(
        classes=list(ds.classes), real=ds, generator=sampler, options={**core, **options},
        seed=int(spec.seed), out_dir=out, echo=echo or (lambda _m: None), warn=warn or (lambda _m: None),
    )  # fmt: skip
    run = Run(spec, out, pm, sampler, ds, data_path, generator, context.options, context, temperature,
              context.echo, context.warn)  # fmt: skip
    _configure(run)
    return run


def _load_data(data_path: Any, dataset: Any, sampler: Any) -> Any:
    from ganaug.data import load_dataset

    height, _width, channels = sampler.image_shape
    if data_path is not None:
        return load_dataset(data_path, image_size=height, channels=channels)
    if tuple(dataset.images.shape[1:]) != tuple(sampler.image_shape):
        raise DataError(
            f"dataset images are {dataset.images.shape[1:]}, the generator makes {tuple(sampler.image_shape)}"
        )
    return dataset


def _core_options(spec: AugmentSpec, temperature: float) -> dict[str, Any]:
    """The options ganaug itself sets for plugins (see ``ganaug_plan``)."""
    return {
        "strategy": spec.strategy,
        "max_synthetic_ratio": spec.max_synthetic_ratio,
        "filters": [f for f in spec.filters if f],
        "max_attempts": float(spec.max_attempts),
        "format": spec.format,
        "real": spec.real,
        "seed": int(spec.seed),
        "truncation": spec.truncation,
        "soft_labels": bool(spec.soft_labels),
        "fill": spec.fill,
        "temperature": temperature,
    }


def _configure(run: Run) -> None:
    run.pm.hook.ganaug_configure(context=run.context)
    if run.context.unclaimed_filters:
        raise UsageError(
            f"unknown --filter {', '.join(map(repr, run.context.unclaimed_filters))}; "
            "no plugin provides it (see 'ganaug plugins list')"
        )
    if run.spec.soft_labels:
        run.soft_teacher = run.context.state.get("teacher")
        if run.soft_teacher is None:
            raise UsageError(
                "--soft-labels: no plugin provided a teacher classifier (context.state['teacher'])"
            )
    run.to_generator = generator_indices(run.classes, run.sampler.classes)


def make_plan(run: Run) -> tuple[dict[str, int], dict[str, int]]:
    """``ganaug_plan``, capped, less the classes plugins withheld; the generator must know every
    class that gets images."""
    before = run.ds.class_counts()
    raw = run.pm.hook.ganaug_plan(class_counts=dict(before), options=run.options)
    plan, capped = resolve_plan(raw, before, run.spec.strategy, run.spec.max_synthetic_ratio)
    for name, reason in run.context.withheld.items():
        run.withheld[name] = {"planned": plan[name], "reason": reason}
        if plan[name]:
            run.complain(f"class {name!r}: no synthetic images ({plan[name]} planned): {reason}")
            plan[name] = 0
    missing = [c for c, n in plan.items() if n > 0 and run.to_generator[run.classes.index(c)] < 0]
    if missing:
        raise DataError(
            f"the generator has no class {', '.join(map(repr, missing))} "
            f"(it has {', '.join(run.sampler.classes)})"
        )
    return plan, capped


def open_writer(run: Run, plan: Mapping[str, int], overwrite: bool) -> Any:
    """``ganaug_open_writer`` for ``--format``, after checking the output's size."""
    from ganaug.dataset_writer import check_output_size

    real_count = len(run.ds) if run.spec.real != "none" else 0
    where = f"--strategy {run.spec.strategy!r}"
    check_output_size(real_count + sum(plan.values()), run.sampler.image_shape, run.spec.format, where)
    writer = run.pm.hook.ganaug_open_writer(
        out_dir=run.out, fmt=run.spec.format, classes=run.classes, overwrite=overwrite
    )
    if writer is None:
        raise UsageError(f"unknown --format {run.spec.format!r}; built-in formats: imagefolder, npz")
    return writer


def _origin(ds: Any, i: int, data: Any) -> str | int:
    if ds.paths is None:
        return i
    path = Path(ds.paths[i])
    if data is not None:
        root = Path(data).resolve()
        root = root if root.is_dir() else root.parent
        try:
            return path.resolve().relative_to(root).as_posix()
        except ValueError:
            pass
    return str(path)


def write_real(run: Run, writer: Any, span: range) -> Counter[str]:
    """Copy, link or (when a transform changed them) write the real images at ``span``."""
    written: Counter[str] = Counter()
    if len(span):
        run.say(f"adding {len(span)} real images")
    ds, mode = run.ds, run.spec.real
    for i in span:
        label = int(ds.labels[i])
        rng = np.random.default_rng([int(run.spec.seed), 0, i])
        image, applied, acted = run.pm.transform(
            ds.images[i], label=label, source="real", rng=rng, context=run.context
        )
        record = {"source": "real", "origin": _origin(ds, i, run.data_path), "transforms": applied,
                  "plugins": acted}  # fmt: skip
        if not acted and ds.paths is not None and run.spec.format in _FILE_FORMATS:
            writer.add_file(ds.paths[i], label, record, mode=mode)
        else:
            writer.add(image, label, record)
        written[run.classes[label]] += 1
    return written


def units_of(run: Run, plan: Mapping[str, int], unit: int) -> SyntheticUnits:
    """The synthetic work units of the plan (``unit`` images at most each)."""
    return SyntheticUnits([plan[c] for c in run.classes], run.spec.max_attempts, unit)


def summary_of(run: Run, plan: dict[str, int], capped: dict[str, int], written: dict[str, Any]) -> dict:
    """summary.json (``written``: ``real``, ``synthetic``, ``candidates``, ``filled`` counters)."""
    from ganaug.plugins import plugin_infos
    from ganaug.versions import library_versions

    spec, classes, sampler = run.spec, run.classes, run.sampler
    real, syn, filled = written["real"], written["synthetic"], written["filled"]
    weights_sha, file_sha = generator_hashes(sampler)
    return {
        "input": str(run.data_path) if run.data_path is not None else run.ds.source,
        "output": str(run.out),
        "format": spec.format,
        "real": spec.real,
        "generator": {
            "source": run.generator,
            "sha256": weights_sha,
            "file_sha256": file_sha,
            "classes": list(sampler.classes),
            "image_shape": list(sampler.image_shape),
        },
        "seed": int(spec.seed),
        "truncation": spec.truncation,
        "strategy": jsonable_strategy(spec.strategy),
        "max_synthetic_ratio": spec.max_synthetic_ratio,
        "max_attempts": float(spec.max_attempts),
        "filters": list(run.options["filters"]),
        **({"soft_labels": True} if spec.soft_labels else {}),
        **({"temperature": run.temperature} if run.temperature != 1.0 else {}),
        "counts": {
            "before": dict(run.ds.class_counts()),
            "planned": dict(plan),
            "capped_by_max_synthetic_ratio": capped,
            "real": {c: real[c] for c in classes},
            "synthetic": {c: syn[c] for c in classes},
            "after": {c: real[c] + syn[c] for c in classes},
        },
        "candidates": {c: written["candidates"][c] for c in classes},
        "rejected": dict(run.rejected),
        "shortfall": run.shortfall,
        **({"withheld": run.withheld} if run.withheld else {}),
        "fill": spec.fill,
        "filled": {c: filled[c] for c in classes if filled[c]},
        "plugins": plugin_infos(run.pm),
        "versions": library_versions(_VERSIONED),
    }


def finish(run: Run, writer: Any, summary: dict[str, Any], shard: Any, config: str | None) -> None:
    """``ganaug_finish``, then summary.json (and the spec, ``config``) go into the output."""
    run.pm.hook.ganaug_finish(context=run.context, summary=summary)
    if shard is not None:
        summary["shard"] = shard_entry(shard, summary, run.ds, run.spec.batch_size)
    writer.extra_files["summary.json"] = summary
    if config is not None:
        writer.extra_files[CONFIG_FILE] = config


__all__ = ["SCORES_KEY", "Run", "check_paths", "check_spec", "open_run"]
