"""Built-in plugin: albumentations pipelines for real (``--transforms``) and synthetic
(``--synthetic-transforms``) images.

A pipeline is a file written by ``A.save(pipeline, "p.yaml", data_format="yaml")`` (or ``.json``).
Every image gets its own random state, derived from the run seed, its source and its index, so a
run is reproducible and independent of batch sizes. The names of the transforms that fired and
their small parameters (numbers, short tuples; no matrices) go into the manifest's ``transforms``.
The label is passed along as ``label=<index>``, so label-aware transforms such as
:class:`ganaug.albu.GanReplace` work in a pipeline too.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np

from ganaug.api import AugmentContext, PluginOption, UsageError, first_line, hookimpl

STATE_KEY = "albumentations"
_OPTION_FOR = {"real": "transforms", "synthetic": "synthetic_transforms"}
# Parameters albumentations records for every transform; not informative in a manifest.
_PLUMBING = {"shape", "interpolation", "fill", "fill_mask", "mask_interpolation", "output_shape"}


def load_pipeline(path: str | Path, option: str = "--transforms") -> Any:
    """An albumentations pipeline saved with ``A.save`` (JSON or YAML, by extension), as a Compose."""
    import albumentations as A

    from ganaug.api import GanReplace  # noqa: F401  (registers GanReplace for A.load)

    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{option}: file not found: {path}")
    fmt = "yaml" if path.suffix.lower() in (".yaml", ".yml") else "json"
    try:
        pipeline = A.load(str(path), data_format=fmt)
    except Exception as exc:
        raise UsageError(
            f"{option}: {path} is not an albumentations pipeline saved with A.save ({first_line(exc)})"
        ) from None
    if not isinstance(pipeline, A.BaseCompose):
        pipeline = A.Compose([pipeline])
    pipeline.save_applied_params = True
    return pipeline


def small_params(params: dict[str, Any], max_items: int = 8) -> dict[str, Any]:
    """The JSON-able, small part of a transform's parameters (floats rounded to 4 decimals)."""

    def clean(value: Any, depth: int = 0) -> Any:
        if isinstance(value, (bool, int, str)) or value is None:
            return value
        if isinstance(value, (float, np.floating)):
            return round(float(value), 4)
        if isinstance(value, np.integer):
            return int(value)
        if isinstance(value, (list, tuple)) and len(value) <= max_items and depth < 2:
            items = [clean(v, depth + 1) for v in value]
            return items if all(i is not _DROP for i in items) else _DROP
        if isinstance(value, dict) and len(value) <= max_items and depth < 2:
            items = {str(k): clean(v, depth + 1) for k, v in value.items()}
            return {k: v for k, v in items.items() if v is not _DROP}
        return _DROP

    out = {}
    for key, value in params.items():
        if key in _PLUMBING:
            continue
        cleaned = clean(value)
        if cleaned is not _DROP:
            out[key] = cleaned
    return out


_DROP = object()


@hookimpl
def ganaug_add_options() -> list[PluginOption]:
    """``--transforms`` and ``--synthetic-transforms``: the pipeline files."""
    what = {"real": "real images", "synthetic": "synthetic images"}
    text = "albumentations pipeline (saved with A.save, .yaml/.json) applied to"
    return [
        PluginOption(option, None, str, path=True, help=f"{text} {what[source]}.")
        for source, option in _OPTION_FOR.items()
    ]


@hookimpl
def ganaug_configure(context: AugmentContext) -> None:
    pipelines = {}
    for source, option in _OPTION_FOR.items():
        path = context.options.get(option)
        if path:
            pipelines[source] = load_pipeline(path, "--" + option.replace("_", "-"))
    context.state[STATE_KEY] = pipelines


@hookimpl
def ganaug_transform(
    image: np.ndarray, label: int, source: str, rng: np.random.Generator, context: AugmentContext
) -> tuple[np.ndarray, list[dict[str, Any]]] | None:
    pipeline = context.state.get(STATE_KEY, {}).get(source)
    if pipeline is None:
        return None
    # One shared random state for the whole pipeline (set_random_seed would give every child
    # transform an identically seeded generator, correlating their decisions).
    pipeline.set_random_state(
        np.random.default_rng(int(rng.integers(2**63))), random.Random(int(rng.integers(2**63)))
    )
    result = pipeline(image=image, label=int(label))
    out = np.asarray(result["image"])
    if out.ndim == 2:
        out = out[:, :, None]
    if out.dtype != np.uint8:
        raise UsageError(
            f"--{_OPTION_FOR[source].replace('_', '-')}: the pipeline returned {out.dtype} images; "
            "ganaug writes uint8 (drop Normalize/ToFloat from the pipeline)"
        )
    applied = [
        {"name": name, "params": small_params(params)}
        for name, params in result.get("applied_transforms", [])
    ]
    return np.ascontiguousarray(out), applied
