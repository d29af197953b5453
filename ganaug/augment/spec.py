"""``ganaug augment`` declared once (:mod:`ganaug.specs`): :class:`AugmentSpec` gives the CLI options,
``--config`` and the ``config.yaml`` a run saves in its output, so ``ganaug augment --config
OUT/config.yaml --out OTHER`` repeats the run.

The options of plugins are not here: each plugin declares its own (``ganaug_add_options``, see
:mod:`ganaug.augment.options`), and :func:`spec_type` adds them to a subclass of :class:`AugmentSpec`.
This module is torch-free.
"""

# ruff: noqa: RUF009 -- ganaug.specs.option() is a field specifier (it returns dataclasses.field)
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ganaug import specs
from ganaug.errors import UsageError
from ganaug.limits import BATCH, Limit
from ganaug.specs import option

REAL_MODES = ("copy", "link", "none")
#: ``fill``: what to do when the filters leave a class short (see :mod:`ganaug.augment`).
FILL_MODES = ("none", "best")
#: The file the spec is saved to, inside the output dataset.
CONFIG_FILE = "config.yaml"


def _strategy(value: Any) -> Any:
    """A ``--strategy`` value: a mapping (from a config file) stays one, anything else is text."""
    if isinstance(value, Mapping):
        return {str(k): v for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        raise UsageError(f"--strategy takes a single value, got {value!r}")
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def _filters(value: Any) -> list[str]:
    """``"confidence,near-duplicate"`` (or a list) -> the filter names."""
    items = value if isinstance(value, (list, tuple)) else [value]
    return [f.strip() for v in items for f in str(v).split(",") if f.strip()]


def _flatten(values: tuple[list[str], ...]) -> list[str]:
    return [name for names in values for name in names]


def _pair(value: Any) -> dict[str, Any]:
    """``-O KEY=VALUE`` -> ``{KEY: "VALUE"}`` (the value stays text until its declared type is known:
    see :func:`ganaug.augment.options.resolve_options`); a mapping (config file) is taken as it is."""
    if isinstance(value, Mapping):
        return {str(k).strip(): v for k, v in value.items()}
    key, sep, raw = str(value).partition("=")
    if not sep or not key.strip():
        raise UsageError(f"plugin option {value!r} is not KEY=VALUE")
    return {key.strip(): raw}


def _merge(values: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    return {k: v for d in values for k, v in d.items()}


@dataclass
class AugmentSpec:
    """``ganaug augment``: the real images of ``data`` plus synthetic ones from ``generator`` in ``out``.

    One field per core option. ``plugin_options`` holds ``-O KEY=VALUE`` pairs; options that plugins
    declare are fields of :func:`spec_type`'s subclass (or may be given in ``plugin_options``).
    """

    data: list[str] = option(default_factory=list, argument=True, multiple=True, path=True)
    generator: str | None = specs.generator(
        required=False,
        help="Generator: a generator.onnx, a run directory or a weights .safetensors file (required).",
    )
    out: str | None = specs.out_dir(required=True)
    strategy: Any = option(
        "not majority",
        convert=_strategy,
        metavar="TEXT",
        help="Synthetic images per class: a ratio of synthetic to real (0.5), 'not majority', 'minority', "
        "'not minority', 'all', or a class -> target-count mapping (inline JSON/YAML or a file).",
    )
    max_synthetic_ratio: float | None = option(
        None,
        limit=Limit(float, 0, 1e6),
        help="Cap: at most this many synthetic images per real image of a class.",
    )
    filters: list[str] = option(
        default_factory=list,
        flags=("--filter",),
        convert=_filters,
        multiple=True,
        collect=_flatten,
        metavar="NAMES",
        aliases=("filter",),
        help="Reject synthetic images with these filters, e.g. confidence,near-duplicate "
        "(comma-separated or repeated; see 'ganaug plugins list').",
    )
    max_attempts: float = option(
        10.0,
        limit=Limit(float, 1, 1e6),
        help="With filters, draw at most this many candidates per requested synthetic image.",
    )
    fill: str = option(
        "none",
        choices=FILL_MODES,
        help="When the filters leave a class short after --max-attempts: none (write fewer, warn) or best "
        "(add that class's best-scored rejected candidates; never near-duplicates; marked 'fallback' "
        "in the manifest, counted under 'filled' in summary.json).",
    )
    truncation: float | None = specs.truncation()
    temperature: float | None = specs.temperature()
    soft_labels: bool = option(
        False,
        show_default=False,
        help="Record a teacher's class probabilities of each synthetic image (manifest 'soft_label'; NPZ "
        "'soft_labels'): the teacher a plugin provides (built-in: --teacher, else the confidence "
        "filter's classifier, else one trained on DATA).",
    )
    policy_file: str | None = option(
        None,
        path=True,
        help="Apply a mixing policy file (tuned_policy.json from 'ganaug eval uplift --tune'): its "
        "strategy, ratio cap, filters, truncation and soft labels; options given explicitly win.",
    )
    format: str = specs.dataset_format(
        choices=None, help="Output format: imagefolder or npz (plugins may add more)."
    )
    real: str = option(
        "copy",
        choices=REAL_MODES,
        help="The real images: copy them into OUT, hard-link them, or leave them out "
        "(old flags: --copy-real, --link-real, --no-real).",
    )
    plugins: list[str] = option(
        default_factory=list,
        flags=("--plugin", "-p"),
        multiple=True,
        aliases=("plugin",),
        help="Load a plugin module (repeatable).",
    )
    plugin_options: dict[str, Any] = option(
        default_factory=dict,
        flags=("--plugin-option", "-O"),
        convert=_pair,
        multiple=True,
        collect=_merge,
        metavar="KEY=VALUE",
        aliases=("plugin_option",),
        help="An option for a plugin, e.g. -O confidence_steps=200 (repeatable); a declared option gets "
        "its declared type, any other is read as YAML.",
    )
    batch_size: int = option(256, limit=BATCH, help="Generator batch size.")
    device: str = specs.device()
    shard: str | None = option(
        None,
        metavar="K/N",
        help="Write only part K (0-based) of N of this job, e.g. $SLURM_ARRAY_TASK_ID/"
        "$SLURM_ARRAY_TASK_COUNT; join the parts with --merge.",
    )
    seed: int = specs.seed()
    checkpoint: str | None = option(
        None, help="With a run directory: best (lowest validation FID of its EMA snapshots), last, or a step."
    )


#: The fields ganaug itself sets; a plugin option may not reuse these names.
CORE_OPTIONS = (*(f.name for f in specs.cli_fields(AugmentSpec)), "fmt")

__all__ = ["CONFIG_FILE", "CORE_OPTIONS", "FILL_MODES", "REAL_MODES", "AugmentSpec"]
