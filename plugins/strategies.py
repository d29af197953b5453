"""Built-in plugin: ``--strategy``, how many synthetic images per class (imbalanced-learn style).

Accepted values (``options["strategy"]``):

- a number ``r`` (``0.5``): add ``floor(r * n_c + 0.5)`` synthetic images to every class ``c`` with
  ``n_c`` real ones (a ratio of synthetic to real -- not imbalanced-learn's float, which is a
  minority/majority ratio after resampling);
- ``"not majority"`` (alias ``"auto"``): bring every class up to the largest class;
- ``"minority"``: bring only the smallest class(es) up to the largest;
- ``"not minority"``: every class except the smallest up to the largest;
- ``"all"``: every class up to the largest (the largest gets none, as in imbalanced-learn);
- a mapping ``{class: target}`` given as a dict, inline JSON/YAML (``'{"bag": 300}'``) or a
  ``.json``/``.yaml``/``.yml`` file: the wanted number of images of each listed class *after*
  augmentation (imbalanced-learn semantics; a target below the real count is an error). Keys may be
  class names or indices; classes not listed get nothing.

Unknown strings return ``None`` so that other plugins can define their own strategy names.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from ganaug.api import UsageError, hookimpl, ratio_plan

NAMED = ("not majority", "auto", "minority", "not minority", "all")


def _normalise(name: str) -> str:
    return " ".join(name.strip().lower().replace("_", " ").replace("-", " ").split())


def _load_mapping(value: str) -> Mapping[str, Any] | None:
    """Inline JSON/YAML (starting with ``{``) or a .json/.yaml/.yml file; ``None`` otherwise."""
    text = value.strip()
    path = Path(text)
    if text.startswith("{"):
        source = "--strategy"
    elif path.suffix.lower() in (".json", ".yaml", ".yml"):
        if not path.is_file():
            raise UsageError(f"--strategy file not found: {path}")
        text, source = path.read_text(encoding="utf-8"), str(path)
    else:
        return None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError):
        raise UsageError(f"{source}: not valid JSON or YAML") from None
    if not isinstance(data, Mapping):
        raise UsageError(f"{source}: expected a mapping of class -> number of images")
    return data


def _from_mapping(mapping: Mapping[Any, Any], class_counts: dict[str, int]) -> dict[str, int]:
    names = list(class_counts)
    plan: dict[str, int] = {}
    for key, target in mapping.items():
        if isinstance(key, int) and not isinstance(key, bool) and key not in class_counts:
            if not 0 <= key < len(names):
                raise UsageError(f"--strategy: class index {key} out of range (0..{len(names) - 1})")
            key = names[key]
        key = str(key)
        if key not in class_counts:
            raise UsageError(f"--strategy: unknown class {key!r}; classes: {', '.join(names)}")
        if isinstance(target, bool) or not isinstance(target, int):
            raise UsageError(f"--strategy: target for {key!r} must be an integer, got {target!r}")
        if target < class_counts[key]:
            raise UsageError(
                f"--strategy: target {target} for {key!r} is below its {class_counts[key]} real images"
            )
        plan[key] = target - class_counts[key]
    return plan


def plan_counts(class_counts: dict[str, int], strategy: Any) -> dict[str, int] | None:
    """Synthetic images per class for ``strategy`` (see module doc); ``None`` if not understood."""
    if isinstance(strategy, Mapping):
        return _from_mapping(strategy, class_counts)
    ratio: float | None = None
    if isinstance(strategy, (int, float)) and not isinstance(strategy, bool):
        ratio = float(strategy)
    elif isinstance(strategy, str):
        try:
            ratio = float(strategy)
        except ValueError:
            mapping = _load_mapping(strategy)
            if mapping is not None:
                return _from_mapping(mapping, class_counts)
    else:
        return None
    if ratio is not None:
        return ratio_plan(class_counts, ratio, "--strategy: a ratio", shown=strategy)
    name = _normalise(strategy)
    if name not in NAMED:
        return None
    counts = class_counts
    top = max(counts.values(), default=0)
    low = min(counts.values(), default=0)
    if name in ("not majority", "auto", "all"):
        chosen = [c for c, n in counts.items() if n < top]
    elif name == "minority":
        chosen = [c for c, n in counts.items() if n == low]
    else:  # not minority
        chosen = [c for c, n in counts.items() if n != low]
    return {c: top - counts[c] for c in chosen if counts[c] < top}


@hookimpl(trylast=True)
def ganaug_plan(class_counts: dict[str, int], options: Mapping[str, Any]) -> dict[str, int] | None:
    """Plan with the built-in strategies; ``None`` for a strategy this plugin does not know."""
    return plan_counts(class_counts, options.get("strategy", "not majority"))
