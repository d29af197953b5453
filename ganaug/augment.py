"""The augmentation pipeline behind ``ganaug augment``: real data + GAN samples -> a new dataset.

>>> summary = augment_dataset("images/", "generator.onnx", "augmented/",
...                           strategy="not majority", filters=["confidence"])   # doctest: +SKIP
>>> summary["counts"]["after"]                                                     # doctest: +SKIP
{'crack': 300, 'dent': 300, 'ok': 300}

What happens, in order (every step but the bookkeeping is a plugin hook, see :mod:`ganaug.hookspecs`):

1. The generator is opened and the input read at the generator's image size and channels.
2. ``ganaug_configure``: plugins load pipelines / classifiers and claim ``--filter`` names.
3. ``ganaug_plan`` turns ``--strategy`` into synthetic counts per class; ``--max-synthetic-ratio``
   caps each class at that many synthetic per real image.
4. ``ganaug_open_writer`` gives the output writer for ``--format``; it writes into a hidden temporary
   folder that replaces ``out`` only at the end, so a crash never leaves an ``out`` that looks complete.
5. Real images: copied or hard-linked byte for byte when no ``ganaug_transform`` changed them, else
   written from the (transformed) array.
6. Synthetic images, in units of at most :data:`SYNTHETIC_UNIT` images of one class (class by
   class). Unit ``u`` with target ``t`` owns ``ceil(max_attempts * t)`` consecutive rows of ONE noise
   stream for ``seed``; its ``k``-th candidate uses the next row (its ``z_index`` in the manifest), so
   ``sample_noise(seed, 1, z_dim, start=k)`` and the label reproduce it exactly. Candidates are voted
   on by ``ganaug_accept`` in batches; rejected ones are replaced until the unit has its count or its
   rows run out (then a warning says how many are missing, and ``summary.json`` lists the shortfall).
   Units do not depend on each other, which is what lets ``--shard K/N`` split a job.
7. ``ganaug_finish``, then ``summary.json`` and ``manifest.jsonl`` are written and ``out`` published.

With ``shard`` (``--shard K/N``) only the K-th contiguous slice of the real images and of the
synthetic units is written; :func:`ganaug.shard.merge_parts` joins the N parts into what one
unsharded run writes. The input is only read, never written.
"""

from __future__ import annotations

import bisect
import math
import os
import platform
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ganaug.errors import DataError, PluginError, UsageError
from ganaug.hookspecs import AugmentContext
from ganaug.noise import NoiseStream
from ganaug.progress import Progress

if TYPE_CHECKING:
    from ganaug.shard import Shard

REAL_MODES = ("copy", "link", "none")
#: Synthetic images per work unit: the pieces ``--shard`` hands out (never change it lightly: it
#: decides which noise rows a synthetic image uses).
SYNTHETIC_UNIT = 512
#: Options ganaug itself sets; ``-o`` plugin options may not reuse these names.
CORE_OPTIONS = (
    "strategy",
    "max_synthetic_ratio",
    "transforms",
    "synthetic_transforms",
    "filters",
    "min_confidence",
    "filter_classifier",
    "near_duplicate_threshold",
    "max_attempts",
    "format",
    "real",
    "seed",
    "truncation",
    "soft_labels",
    "teacher",
    "fill",
)
#: ``fill``: what to do when the filters leave a class short (see :func:`augment_dataset`).
FILL_MODES = ("none", "best")
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
    files: Sequence[str | os.PathLike[str] | None] = (),
) -> None:
    """Refuse an ``out`` that is, contains or lies inside an input (the data, every folder a manifest
    points into, the generator, the option ``files``), or that ``--overwrite`` may not replace
    (see :mod:`ganaug.output_safety`)."""
    from ganaug.output_safety import check_output, data_inputs, generator_inputs

    inputs = [*data_inputs(data), *generator_inputs(generator)]
    inputs += [(Path(f), "the input file") for f in files if f]
    check_output(out, inputs, overwrite=overwrite, kind="dataset")


def _jsonable_strategy(strategy: Any) -> Any:
    if isinstance(strategy, Mapping):
        return {str(k): v for k, v in strategy.items()}
    if isinstance(strategy, (int, float, str)) or strategy is None:
        return strategy
    return str(strategy)


def _versions() -> dict[str, str | None]:
    from ganaug import __version__

    out: dict[str, str | None] = {"ganaug": __version__, "python": platform.python_version()}
    for name in _VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _class_mapping(classes: Sequence[str], generator_classes: Sequence[str]) -> np.ndarray:
    """Dataset label index -> generator label index (-1 where the generator lacks the class)."""
    index = {name: i for i, name in enumerate(generator_classes)}
    return np.array([index.get(name, -1) for name in classes], dtype=np.int64)


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


def _resolve_plan(
    plan: Mapping[str, int] | None,
    class_counts: dict[str, int],
    strategy: Any,
    max_ratio: float | None,
) -> tuple[dict[str, int], dict[str, int]]:
    if plan is None:
        raise UsageError(
            f"--strategy {strategy!r} is not understood by any plugin; use a ratio such as 0.5, "
            "'not majority', 'minority', 'not minority', 'all', or a class -> count mapping (JSON/YAML)"
        )
    resolved = {c: 0 for c in class_counts}
    for name, n in plan.items():
        if name not in class_counts:
            raise PluginError(f"the plan names unknown class {name!r}; classes: {', '.join(class_counts)}")
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise PluginError(f"the plan gives class {name!r} the count {n!r}; expected an integer >= 0")
        resolved[name] = int(n)
    capped: dict[str, int] = {}
    if max_ratio is not None:
        if not math.isfinite(max_ratio) or max_ratio < 0:
            raise UsageError(f"--max-synthetic-ratio must be a number >= 0, got {max_ratio}")
        for name, n in resolved.items():
            cap = math.floor(max_ratio * class_counts[name] + 1e-9)
            if n > cap:
                capped[name] = n - cap
                resolved[name] = cap
    return resolved, capped


def _shard_entry(shard: Shard, summary: dict[str, Any], ds: Any, batch_size: int) -> dict[str, Any]:
    from ganaug.shard import dataset_fingerprint, job_key, shard_entry

    # Paths may be spelt differently per part: the input and generator count by content.
    per_part = ("input", "output", "counts", "candidates", "rejected", "shortfall", "filled")
    settings = {k: v for k, v in summary.items() if k not in per_part}
    settings["generator"] = {k: v for k, v in summary["generator"].items() if k != "source"}
    settings["plan"] = summary["counts"]["planned"]
    settings["input_sha256"] = dataset_fingerprint(ds.images, ds.labels)
    settings["batch_size"] = int(batch_size)
    additive = [
        "counts.real", "counts.synthetic", "counts.after", "candidates", "rejected", "shortfall", "filled"
    ]  # fmt: skip
    return shard_entry(
        shard, job=job_key(settings), classes=list(ds.classes), fmt=summary["format"], additive=additive
    )


class _SyntheticUnits(Sequence[tuple[int, int, int, int]]):
    """``(class index, target, first noise row, rows)`` per unit, class by class, computed on demand:
    a plan of 10^11 images costs no memory. ``span`` restricts it to some units (``--shard``)."""

    def __init__(self, need: Sequence[int], max_attempts: float, span: range | None = None) -> None:
        self.need = [int(n) for n in need]
        self.max_attempts = max_attempts
        self.full_rows = math.ceil(max_attempts * SYNTHETIC_UNIT)
        self.first_unit, self.first_row = [0], [0]
        for n in self.need:
            self.first_unit.append(self.first_unit[-1] + -(-n // SYNTHETIC_UNIT))
            last = n % SYNTHETIC_UNIT or SYNTHETIC_UNIT
            rows = (n // SYNTHETIC_UNIT - (n % SYNTHETIC_UNIT == 0)) * self.full_rows if n else 0
            self.first_row.append(self.first_row[-1] + (rows + math.ceil(max_attempts * last) if n else 0))
        self.span = span if span is not None else range(self.first_unit[-1])

    def __len__(self) -> int:
        return len(self.span)

    def __getitem__(self, i: int) -> tuple[int, int, int, int]:  # type: ignore[override]
        u = self.span[i]
        label = bisect.bisect_right(self.first_unit, u) - 1
        j = u - self.first_unit[label]
        target = min(SYNTHETIC_UNIT, self.need[label] - j * SYNTHETIC_UNIT)
        row = self.first_row[label] + j * self.full_rows
        return label, target, row, math.ceil(self.max_attempts * target)

    def select(self, span: range) -> _SyntheticUnits:
        """The units at positions ``span`` of this sequence."""
        return _SyntheticUnits(self.need, self.max_attempts, self.span[span.start : span.stop])


def _synthetic_units(need: Sequence[int], max_attempts: float) -> _SyntheticUnits:
    """``(class index, target, first noise row, rows)`` per unit, class by class (lazily)."""
    return _SyntheticUnits(need, max_attempts)


def _Progress(total: int, enabled: bool) -> Progress:
    """A bar on a terminal, plain lines in a log (see :mod:`ganaug.progress`)."""
    return Progress(total, "synthetic", "img", enabled)


def augment_dataset(
    data: str | os.PathLike[str] | Any,
    generator: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    strategy: Any = "not majority",
    max_synthetic_ratio: float | None = None,
    transforms: str | os.PathLike[str] | None = None,
    synthetic_transforms: str | os.PathLike[str] | None = None,
    filters: Sequence[str] = (),
    min_confidence: float = 0.5,
    filter_classifier: str | os.PathLike[str] | None = None,
    near_duplicate_threshold: float = 0.03,
    max_attempts: float = 10.0,
    fmt: str = "imagefolder",
    real: str = "copy",
    plugins: Sequence[str | object] = (),
    plugin_options: Mapping[str, Any] | None = None,
    seed: int = 0,
    truncation: float | None = None,
    overwrite: bool = False,
    batch_size: int = 256,
    device: str | None = None,
    progress: bool = False,
    echo: Callable[[str], None] | None = None,
    warn: Callable[[str], None] | None = None,
    plugin_manager: Any = None,
    shard: Shard | None = None,
    soft_labels: bool = False,
    teacher: str | os.PathLike[str] | None = None,
    fill: str = "none",
) -> dict[str, Any]:
    """Write ``out``: the real images of ``data`` plus synthetic ones from ``generator``.

    ``data``: a dataset path (anything :func:`ganaug.data.load_dataset` reads) or an
    :class:`~ganaug.data.ImageDataset`. ``generator``: a ``.onnx`` file, run dir or weights file.
    ``real``: ``"copy"``, ``"link"`` (hard links) or ``"none"`` (synthetic images only).
    ``plugins``: extra plugins (``--plugin``); ``plugin_options``: ``-o KEY=VALUE`` pairs, visible to
    plugins in ``options``. ``plugin_manager`` replaces plugin discovery (then ``plugins`` is ignored).
    ``shard`` writes only that part of the job (``--shard K/N``, see :mod:`ganaug.shard`).
    ``soft_labels`` records a teacher's class probabilities of each synthetic image (before
    transforms) as ``soft_label`` in the manifest (and ``soft_labels`` in an NPZ): the classifier
    a plugin puts in ``context.state["teacher"]`` -- the built-in filters plugin gives ``teacher``
    (ONNX or ganaug ``.safetensors``), else the confidence filter's classifier, else one trained on
    the real data.
    ``fill="best"``: when the filters leave a class short after ``max_attempts``, write the best
    rejected candidates of that class instead (those rejected only by scored votes -- the confidence
    filter's -- highest score first; never a near-duplicate); each is marked ``fallback`` in the
    manifest and counted in ``summary["filled"]``. ``"none"`` (default) writes fewer and warns.
    The other arguments are the ``ganaug augment`` options of the same names (see its ``--help``).
    Returns the summary that is also written to ``out/summary.json``.
    """
    from ganaug.data import ImageDataset, load_dataset
    from ganaug.dataset_writer import check_output_size
    from ganaug.plugins import get_plugin_manager, plugin_infos
    from ganaug.sampling import open_sampler

    say = echo or (lambda _m: None)
    complain = warn or (lambda _m: None)
    out = Path(out)
    if real not in REAL_MODES:
        raise UsageError(f"real must be one of {', '.join(REAL_MODES)}, got {real!r}")
    if fill not in FILL_MODES:
        raise UsageError(f"--fill must be one of {', '.join(FILL_MODES)}, got {fill!r}")
    if not (isinstance(max_attempts, (int, float)) and 1 <= max_attempts < math.inf):
        raise UsageError(f"--max-attempts must be a number >= 1, got {max_attempts!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise UsageError(f"--seed must be an integer >= 0, got {seed!r}")
    data_path = None if isinstance(data, ImageDataset) else data
    if data_path is not None and not Path(data_path).exists():
        raise DataError(f"input not found: {data_path}")
    check_paths(
        data_path, generator, out, overwrite=overwrite,
        files=[transforms, synthetic_transforms, filter_classifier, teacher],
    )  # fmt: skip
    extra = dict(plugin_options or {})
    clash = sorted(set(extra) & set(CORE_OPTIONS))
    if clash:
        raise UsageError(f"plugin option(s) {', '.join(clash)} clash with ganaug options; use the real flags")

    pm = plugin_manager if plugin_manager is not None else get_plugin_manager(plugins)
    sampler = open_sampler(generator, device=device)
    height, _width, channels = sampler.image_shape
    if data_path is not None:
        ds = load_dataset(data_path, image_size=height, channels=channels)
    else:
        ds = data
        if tuple(ds.images.shape[1:]) != tuple(sampler.image_shape):
            raise DataError(
                f"dataset images are {ds.images.shape[1:]}, the generator makes {tuple(sampler.image_shape)}"
            )
    classes = list(ds.classes)
    to_generator = _class_mapping(classes, sampler.classes)

    options: dict[str, Any] = {
        "strategy": strategy,
        "max_synthetic_ratio": max_synthetic_ratio,
        "transforms": str(transforms) if transforms else None,
        "synthetic_transforms": str(synthetic_transforms) if synthetic_transforms else None,
        "filters": [f for f in filters if f],
        "min_confidence": float(min_confidence),
        "filter_classifier": str(filter_classifier) if filter_classifier else None,
        "near_duplicate_threshold": float(near_duplicate_threshold),
        "max_attempts": float(max_attempts),
        "format": fmt,
        "real": real,
        "seed": int(seed),
        "truncation": truncation,
        "soft_labels": bool(soft_labels),
        "teacher": str(teacher) if teacher else None,
        "fill": fill,
        **extra,
    }
    context = AugmentContext(
        classes=classes,
        real=ds,
        generator=sampler,
        options=options,
        seed=int(seed),
        out_dir=out,
        echo=say,
        warn=complain,
    )
    pm.hook.ganaug_configure(context=context)
    if context.unclaimed_filters:
        raise UsageError(
            f"unknown --filter {', '.join(map(repr, context.unclaimed_filters))}; "
            "built-in filters: confidence, near-duplicate"
        )
    soft_teacher = context.state.get("teacher") if soft_labels else None
    if soft_labels and soft_teacher is None:
        raise UsageError("--soft-labels: no plugin provided a teacher classifier (context.state['teacher'])")

    before = ds.class_counts()
    plan_raw = pm.hook.ganaug_plan(class_counts=dict(before), options=options)
    plan, capped = _resolve_plan(plan_raw, before, strategy, max_synthetic_ratio)
    missing = [c for c, n in plan.items() if n > 0 and to_generator[classes.index(c)] < 0]
    if missing:
        raise DataError(
            f"the generator has no class {', '.join(map(repr, missing))} "
            f"(it has {', '.join(sampler.classes)})"
        )

    real_count = len(ds) if real != "none" else 0
    check_output_size(real_count + sum(plan.values()), sampler.image_shape, fmt, f"--strategy {strategy!r}")
    writer = pm.hook.ganaug_open_writer(out_dir=out, fmt=fmt, classes=classes, overwrite=overwrite)
    if writer is None:
        raise UsageError(f"unknown --format {fmt!r}; built-in formats: imagefolder, npz")
    sha = sampler.generator_sha256
    written_real: Counter[str] = Counter()
    written_syn: Counter[str] = Counter()
    rejected: Counter[str] = Counter()
    attempts: Counter[str] = Counter()
    shortfall: dict[str, int] = {}
    filled: Counter[str] = Counter()

    units = _synthetic_units([plan[c] for c in classes], max_attempts)
    real_span = range(len(ds)) if real != "none" else range(0)
    if shard is not None:
        real_span = shard.span(len(real_span))
        units = units.select(shard.span(len(units)))
        say(f"shard {shard}: {len(real_span)} real images, {len(units)} synthetic units")

    with writer:
        # -- real images ---------------------------------------------------------------------------
        if len(real_span):
            say(f"adding {len(real_span)} real images")
        for i in real_span:
            label = int(ds.labels[i])
            rng = np.random.default_rng([int(seed), 0, i])
            image, applied, acted = pm.transform(
                ds.images[i], label=label, source="real", rng=rng, context=context
            )
            record = {
                "source": "real",
                "origin": _origin(ds, i, data_path),
                "transforms": applied,
                "plugins": acted,
            }
            if not acted and ds.paths is not None and fmt in _FILE_FORMATS:
                writer.add_file(ds.paths[i], label, record, mode=real)
            else:
                writer.add(image, label, record)
            written_real[classes[label]] += 1

        # -- synthetic images ----------------------------------------------------------------------
        chunk = max(int(batch_size), 1024)
        has_filters = bool(pm.impls("ganaug_accept"))
        total = sum(u[1] for u in units)
        bar = _Progress(total, progress)
        missing_by_class: Counter[int] = Counter()
        if total:
            say(f"generating {total} synthetic images")

        last_vote: dict[str, Any] = {}  # per-candidate "hard" rejections and "score", for --fill best

        def vote(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, list[str]]:
            keep = np.ones(len(labels), dtype=bool)
            voters: list[str] = []
            context.state[SCORES_KEY] = {}
            votes: list[tuple[Any, np.ndarray]] = []
            calls = pm.call_each("ganaug_accept", images=images, labels=labels, context=context)
            for plugin_name, result in calls:
                if result is None:
                    continue
                voters.append(plugin_name)
                masks = result.items() if isinstance(result, Mapping) else [(None, result)]
                for reason, mask in masks:
                    mask = np.asarray(mask).astype(bool)
                    if mask.shape != keep.shape:
                        raise PluginError(
                            f"plugin {plugin_name!r}: ganaug_accept returned {mask.shape[0]} "
                            f"votes for {len(keep)} images"
                        )
                    key = f"{plugin_name}:{reason}" if reason else plugin_name
                    rejected[key] += int((keep & ~mask).sum())
                    keep &= mask
                    votes.append((reason, mask))
            scores = context.state.pop(SCORES_KEY, None) or {}  # published while voting (a generator)
            scored = {
                r: np.asarray(v, dtype=np.float64) for r, v in scores.items() if np.shape(v) == keep.shape
            }
            hard = np.zeros(len(labels), dtype=bool)
            for reason, mask in votes:
                if reason not in scored:
                    hard |= ~mask
            last_vote["hard"] = hard
            last_vote["score"] = np.min(list(scored.values()), axis=0) if scored else None
            return keep, voters

        def add_synthetic(
            raw: np.ndarray, label: int, k: int, plugins_: list[str], soft_row: Any, extra: dict | None = None
        ) -> None:
            rng = np.random.default_rng([int(seed), 1, k])
            image, applied, acted = pm.transform(
                raw, label=label, source="synthetic", rng=rng, context=context
            )
            record = {
                "source": "synthetic",
                "generator_sha256": sha,
                "seed": int(seed),
                "z_index": k,
                "transforms": applied,
                "plugins": plugins_ + acted,
            }
            if truncation is not None:
                record["truncation"] = truncation
            if soft_row is not None:
                record["soft_label"] = [round(float(v), 6) for v in soft_row]
            writer.add(image, label, {**record, **(extra or {})})
            written_syn[classes[label]] += 1
            bar.update(1)

        try:
            for label, target, first_row, rows in units:
                stream = NoiseStream(int(seed), sampler.z_dim, truncation, start=first_row)
                drawn = kept = 0
                pool = _FillPool(target) if fill == "best" and has_filters else None
                while kept < target and drawn < rows:
                    rate = kept / drawn if drawn else 1.0
                    want = min(math.ceil((target - kept) / max(rate, 0.1)), rows - drawn)
                    while want > 0 and kept < target:
                        n = min(chunk, want)
                        z_first = first_row + drawn
                        labels = np.full(n, label, dtype=np.int64)
                        images = sampler.generate_from_noise(
                            stream.take(n), to_generator[labels], batch_size=batch_size
                        )
                        drawn += n
                        want -= n
                        keep, voters = vote(images, labels) if has_filters else (np.ones(n, bool), [])
                        chosen = np.flatnonzero(keep)[: target - kept]
                        soft = _soft_rows(soft_teacher, images[chosen], len(classes))
                        for pos, j in enumerate(chosen):
                            add_synthetic(images[j], label, z_first + int(j), voters, _row(soft, pos))
                            kept += 1
                        if pool is not None:
                            eligible = ~keep & ~last_vote["hard"]
                            pool.offer(images, eligible, last_vote["score"], z_first, voters)
                if pool is not None and kept < target:
                    best = pool.best(target - kept)
                    raws = np.stack([c[3] for c in best]) if best else images[:0]
                    soft = _soft_rows(soft_teacher, raws, len(classes))
                    for pos, (score, k, voters_, raw) in enumerate(best):
                        fallback = {"fallback": {"fill": "best", "score": round(score, 6)}}
                        add_synthetic(raw, label, k, voters_, _row(soft, pos), fallback)
                        kept += 1
                        filled[classes[label]] += 1
                attempts[classes[label]] += drawn
                missing_by_class[label] += target - kept
        finally:
            bar.close()
        for i, name in enumerate(classes):
            if missing_by_class[i]:
                shortfall[name] = int(missing_by_class[i])
                complain(
                    f"class {name!r}: only {written_syn[name]} of {written_syn[name] + shortfall[name]} "
                    f"synthetic images passed the filters after {attempts[name]} candidates "
                    f"(--max-attempts {max_attempts:g})"
                    + ("" if fill == "best" else "; --fill best fills it with the best rejected candidates")
                )
        if sum(filled.values()):
            complain(
                f"--fill best: {sum(filled.values())} synthetic images did not pass the filters and were "
                "written as the best candidates of their class (manifest: 'fallback'): "
                + ", ".join(f"{c} {n}" for c, n in filled.items() if n)
            )

        after = {c: written_real[c] + written_syn[c] for c in classes}
        summary: dict[str, Any] = {
            "input": str(data_path) if data_path is not None else ds.source,
            "output": str(out),
            "format": fmt,
            "real": real,
            "generator": {
                "source": str(generator),
                "sha256": sha,
                "classes": list(sampler.classes),
                "image_shape": list(sampler.image_shape),
            },
            "seed": int(seed),
            "truncation": truncation,
            "strategy": _jsonable_strategy(strategy),
            "max_synthetic_ratio": max_synthetic_ratio,
            "max_attempts": float(max_attempts),
            "filters": list(options["filters"]),
            **({"soft_labels": True} if soft_labels else {}),
            "counts": {
                "before": dict(before),
                "planned": dict(plan),
                "capped_by_max_synthetic_ratio": capped,
                "real": {c: written_real[c] for c in classes},
                "synthetic": {c: written_syn[c] for c in classes},
                "after": after,
            },
            "candidates": {c: attempts[c] for c in classes},
            "rejected": dict(rejected),
            "shortfall": shortfall,
            "fill": fill,
            "filled": {c: filled[c] for c in classes if filled[c]},
            "plugins": plugin_infos(pm),
            "versions": _versions(),
        }
        pm.hook.ganaug_finish(context=context, summary=summary)
        if shard is not None:
            summary["shard"] = _shard_entry(shard, summary, ds, batch_size)
        writer.extra_files["summary.json"] = summary
    return summary


def _row(rows: np.ndarray | None, i: int) -> np.ndarray | None:
    return None if rows is None else rows[i]


class _FillPool:
    """The ``size`` best rejected candidates of one unit seen so far (for ``fill="best"``).

    Candidates are ranked by score (higher first), ties by ``z_index``; so the choice does not depend
    on the batch size and a unit's fallback images are the same in sharded and unsharded runs.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.items: list[tuple[float, int, list[str], np.ndarray]] = []

    def offer(
        self,
        images: np.ndarray,
        eligible: np.ndarray,
        score: np.ndarray | None,
        z_first: int,
        voters: list[str],
    ) -> None:
        """Consider the ``eligible`` candidates of a batch whose first noise row is ``z_first``."""
        if score is None:
            return
        for j in np.flatnonzero(eligible):
            self.items.append((float(score[j]), z_first + int(j), list(voters), images[j].copy()))
        self.items.sort(key=lambda c: (-c[0], c[1]))
        del self.items[self.size :]

    def best(self, n: int) -> list[tuple[float, int, list[str], np.ndarray]]:
        return self.items[:n]


def _soft_rows(teacher: Any, images: np.ndarray, k: int) -> np.ndarray | None:
    """The teacher's class probabilities ``[n, k]`` (rows renormalised), or None without a teacher."""
    if teacher is None or not len(images):
        return None
    probs = np.asarray(teacher.predict_proba(images), dtype=np.float64)
    if probs.shape != (len(images), k) or not np.isfinite(probs).all():
        raise PluginError(
            f"the soft-label teacher gave probabilities of shape {probs.shape}, expected {(len(images), k)}"
        )
    probs = np.clip(probs, 0.0, None)
    return probs / np.maximum(probs.sum(1, keepdims=True), 1e-12)


__all__ = ["CORE_OPTIONS", "FILL_MODES", "REAL_MODES", "SCORES_KEY", "augment_dataset", "check_paths"]
