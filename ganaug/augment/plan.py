"""How many synthetic images, and which noise rows make them: the plan of an augment run."""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ganaug.errors import PluginError, UsageError

if TYPE_CHECKING:
    from ganaug.shard import Shard


def jsonable_strategy(strategy: Any) -> Any:
    """``--strategy`` as summary.json records it."""
    if isinstance(strategy, Mapping):
        return {str(k): v for k, v in strategy.items()}
    if isinstance(strategy, (int, float, str)) or strategy is None:
        return strategy
    return str(strategy)


def resolve_plan(
    plan: Mapping[str, int] | None,
    class_counts: dict[str, int],
    strategy: Any,
    max_ratio: float | None,
) -> tuple[dict[str, int], dict[str, int]]:
    """The plugins' plan checked, and capped by ``--max-synthetic-ratio``: ``(plan, capped)``."""
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


def shard_entry(shard: Shard, summary: dict[str, Any], ds: Any, batch_size: int) -> dict[str, Any]:
    """The ``shard`` entry of a part's summary.json (see :mod:`ganaug.shard`)."""
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


class SyntheticUnits(Sequence[tuple[int, int, int, int]]):
    """``(class index, target, first noise row, rows)`` per unit of at most ``unit`` images, class by
    class, computed on demand: a plan of 10^11 images costs no memory. ``span`` restricts it to some
    units (``--shard``)."""

    def __init__(
        self, need: Sequence[int], max_attempts: float, unit: int, span: range | None = None
    ) -> None:
        self.need = [int(n) for n in need]
        self.max_attempts, self.unit = max_attempts, int(unit)
        self.full_rows = math.ceil(max_attempts * self.unit)
        self.first_unit, self.first_row = [0], [0]
        for n in self.need:
            self.first_unit.append(self.first_unit[-1] + -(-n // self.unit))
            last = n % self.unit or self.unit
            rows = (n // self.unit - (n % self.unit == 0)) * self.full_rows if n else 0
            self.first_row.append(self.first_row[-1] + (rows + math.ceil(max_attempts * last) if n else 0))
        self.span = span if span is not None else range(self.first_unit[-1])

    def __len__(self) -> int:
        return len(self.span)

    def __getitem__(self, i: int) -> tuple[int, int, int, int]:  # type: ignore[override]
        u = self.span[i]
        label = bisect.bisect_right(self.first_unit, u) - 1
        j = u - self.first_unit[label]
        target = min(self.unit, self.need[label] - j * self.unit)
        row = self.first_row[label] + j * self.full_rows
        return label, target, row, math.ceil(self.max_attempts * target)

    def select(self, span: range) -> SyntheticUnits:
        """The units at positions ``span`` of this sequence."""
        return SyntheticUnits(self.need, self.max_attempts, self.unit, self.span[span.start : span.stop])


__all__ = ["SyntheticUnits", "jsonable_strategy", "resolve_plan", "shard_entry"]
