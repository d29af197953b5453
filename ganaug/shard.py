"""Split one ``ganaug sample``/``ganaug augment`` job into N independent parts, and merge the parts.

``--shard K/N`` (K = 0 .. N-1) makes a job write only part K of its output, so N jobs that share
nothing (a SLURM array, a Kubernetes indexed job) can each write one part. The work is cut into
pieces that do not depend on N -- real images by index; synthetic images in fixed chunks that own
fixed rows of the seed's noise stream -- and part K holds exactly the pieces in the K-th contiguous
slice. :func:`merge_parts` (``ganaug augment --merge``) joins the N parts, in order, into the
dataset, ``manifest.jsonl`` and ``summary.json`` that one unsharded job with the same settings
writes: the same file names and the same image bytes (tested).

Each part's ``summary.json`` carries a ``shard`` entry: ``index``, ``count``, ``job`` (a hash of
every setting that changes the output: generator, input, seed, options), ``classes``, ``format``
and ``additive`` (the summary fields that are per-part counts, summed by the merge).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ganaug.errors import DataError, UsageError

SUMMARY = "summary.json"


@dataclass(frozen=True)
class Shard:
    """Part ``index`` (0-based) of ``count`` parts."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def span(self, total: int) -> range:
        """This part's contiguous slice of ``total`` pieces (the N slices tile ``range(total)``)."""
        return range(total * self.index // self.count, total * (self.index + 1) // self.count)


def parse_shard(text: str | None) -> Shard | None:
    """``"K/N"`` -> :class:`Shard` (``None`` for ``None``); UsageError for anything else."""
    if text is None:
        return None
    parts = str(text).strip().split("/")
    try:
        index, count = (int(p) for p in parts)
    except ValueError:
        index = count = -1
    if len(parts) != 2 or count < 1 or not 0 <= index < count:
        raise UsageError(f"--shard must be K/N with 0 <= K < N (0/4 is the first of 4 parts), got {text!r}")
    return Shard(index, count)


def job_key(settings: Mapping[str, Any]) -> str:
    """A short hash of a job's output-relevant settings: parts of one job share it."""
    text = json.dumps(settings, sort_keys=True, default=str, ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def dataset_fingerprint(images: np.ndarray, labels: np.ndarray) -> str:
    """SHA-256 of the decoded images and labels (the input every part must have read alike)."""
    h = hashlib.sha256()
    h.update(repr((images.shape, str(images.dtype))).encode())
    h.update(np.ascontiguousarray(images).data)
    h.update(np.ascontiguousarray(labels, dtype=np.int64).data)
    return h.hexdigest()


def shard_entry(
    shard: Shard, *, job: str, classes: Sequence[str], fmt: str, additive: Sequence[str]
) -> dict[str, Any]:
    """The ``shard`` entry of a part's ``summary.json``."""
    return {
        "index": shard.index,
        "count": shard.count,
        "job": job,
        "classes": list(classes),
        "format": fmt,
        "additive": list(additive),
    }


# -- merging ---------------------------------------------------------------------------------------
def _read_part(path: Path) -> dict[str, Any]:
    if not path.is_dir():
        raise DataError(f"{path}: not a folder (expected a part written with --shard K/N)")
    try:
        summary = json.loads((path / SUMMARY).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: no {SUMMARY}; not the output of ganaug sample/augment --shard") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}/{SUMMARY}: unreadable ({exc.__class__.__name__})") from None
    entry = summary.get("shard") if isinstance(summary, dict) else None
    if not isinstance(entry, dict) or not {"index", "count", "job", "classes", "format"} <= set(entry):
        raise DataError(f"{path}: not a shard part (written without --shard K/N)")
    return summary


def _read_manifest(path: Path) -> list[dict[str, Any]]:
    records = []
    try:
        with open(path / "manifest.jsonl", encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        records.append(json.loads(line))
                    except json.JSONDecodeError:
                        raise DataError(f"{path}/manifest.jsonl:{n}: not valid JSON") from None
    except FileNotFoundError:
        raise DataError(f"{path}: no manifest.jsonl (an incomplete part?)") from None
    return records


def _check_parts(parts: Sequence[Path], summaries: list[dict[str, Any]]) -> list[int]:
    """Order of ``parts`` by shard index, after checking they are all N parts of one job."""
    first = summaries[0]["shard"]
    for path, summary in zip(parts, summaries, strict=True):
        entry = summary["shard"]
        if entry["job"] != first["job"] or entry["count"] != first["count"]:
            raise DataError(
                f"{path}: part of another job than {parts[0]} (generator, input, seed or options differ)"
            )
    by_index: dict[int, Path] = {}
    for path, summary in zip(parts, summaries, strict=True):
        index = summary["shard"]["index"]
        if index in by_index:
            raise DataError(f"shard {index}/{first['count']} given twice: {by_index[index]} and {path}")
        by_index[index] = path
    missing = [f"{k}/{first['count']}" for k in range(first["count"]) if k not in by_index]
    if missing:
        raise DataError(f"missing part(s) {', '.join(missing)} of this job; merge needs all {first['count']}")
    return sorted(range(len(parts)), key=lambda i: summaries[i]["shard"]["index"])


def _add_up(target: dict[str, Any], value: Any) -> None:
    for key, n in (value or {}).items():
        target[key] = target.get(key, 0) + n


def _get(d: dict[str, Any], dotted: str) -> Any:
    for key in dotted.split("."):
        d = d.get(key) if isinstance(d, dict) else None
    return d


def _set(d: dict[str, Any], dotted: str, value: Any) -> None:
    *head, last = dotted.split(".")
    for key in head:
        d = d.setdefault(key, {})
    d[last] = value


def merge_summaries(summaries: Sequence[dict[str, Any]], out: Path) -> dict[str, Any]:
    """One summary from the parts' (in shard order): per-part counts summed, the rest as in part 0."""
    merged = copy.deepcopy(summaries[0])
    entry = merged.pop("shard")
    for dotted in entry.get("additive", []):
        total: dict[str, Any] = {}
        for s in summaries:
            _add_up(total, _get(s, dotted))
        if dotted == "shortfall":
            total = {k: v for k, v in total.items() if v}
        _set(merged, dotted, total)
    if "output" in merged:
        merged["output"] = str(out)
    return merged


def merge_parts(
    parts: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    link: bool = True,
    echo: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Join the N parts of one sharded job into ``out``; returns the merged summary.

    Real images come first (in part order), then synthetic ones (in part order): the order, file
    names and contents of an unsharded run. PNG files are hard-linked from the parts (``link``,
    falling back to a copy) or copied; NPZ parts are concatenated. ``out`` appears only when
    complete; the parts are only read.
    """
    from ganaug.dataset_writer import MANIFEST, NPZ_NAME, DatasetWriter
    from ganaug.output_safety import check_output

    say = echo or (lambda _m: None)
    paths = [Path(p) for p in parts]
    if not paths:
        raise UsageError("--merge needs the part folders to join")
    out = Path(out)
    check_output(out, [(p, "the part") for p in paths], overwrite=overwrite, kind="dataset")
    summaries = [_read_part(p) for p in paths]
    order = _check_parts(paths, summaries)
    paths = [paths[i] for i in order]
    summaries = [summaries[i] for i in order]
    entry = summaries[0]["shard"]
    classes, fmt = list(entry["classes"]), entry["format"]
    if fmt not in ("imagefolder", "png", "npz"):
        raise DataError(f"cannot merge parts in format {fmt!r}; merge supports imagefolder and npz")

    queue: list[tuple[int, int, int, dict[str, Any]]] = []  # (real first, part, position, record)
    for k, path in enumerate(paths):
        for pos, rec in enumerate(_read_manifest(path)):
            queue.append((0 if rec.get("source") == "real" else 1, k, pos, rec))
    queue.sort(key=lambda item: item[:3])

    arrays: dict[int, np.ndarray] = {}
    image_shape = None
    if fmt == "npz":
        for k, path in enumerate(paths):
            try:
                with np.load(path / NPZ_NAME, allow_pickle=False) as data:
                    arrays[k] = data["images"]
            except (OSError, KeyError, ValueError) as exc:
                raise DataError(f"{path}/{NPZ_NAME}: unreadable ({exc.__class__.__name__})") from None
        image_shape = next((tuple(a.shape[1:]) for a in arrays.values() if len(a)), None)

    say(f"merging {len(paths)} parts ({len(queue)} images) into {out}")
    reserved = ("path", "label", "label_index")
    with DatasetWriter(out, classes=classes, fmt=fmt, overwrite=overwrite, image_shape=image_shape) as writer:
        for _, k, pos, rec in queue:
            where = f"{paths[k]}/{MANIFEST} record {pos + 1}"
            label = rec.get("label_index")
            if not isinstance(label, int) or not 0 <= label < len(classes):
                raise DataError(f"{where}: bad label_index {label!r}")
            record = {key: v for key, v in rec.items() if key not in reserved}
            rel = str(rec.get("path", ""))
            if fmt == "npz":
                row = rel.rpartition("#")[2]
                if not row.isdigit() or int(row) >= len(arrays[k]):
                    raise DataError(f"{where}: path {rel!r} names no row of {NPZ_NAME}")
                writer.add(arrays[k][int(row)], label, record)
            else:
                src = (paths[k] / rel).resolve()
                if not src.is_relative_to(paths[k].resolve()):
                    raise DataError(f"{where}: path {rel!r} leaves the part folder")
                writer.add_file(src, label, record, mode="link" if link else "copy")
        merged = merge_summaries(summaries, out)
        merged["merged_from"] = [str(p) for p in paths]
        writer.extra_files[SUMMARY] = merged
    return merged


__all__ = [
    "Shard",
    "dataset_fingerprint",
    "job_key",
    "merge_parts",
    "merge_summaries",
    "parse_shard",
    "shard_entry",
]
