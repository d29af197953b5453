"""The ganaug plugin hooks (pluggy project and entry-point group ``"ganaug"``).

A plugin is any module or object with functions named after these hooks, marked with
:data:`hookimpl` (unmarked functions whose name starts with ``ganaug_`` are accepted too, so a
misspelt hook name is always reported). Implementations may accept any subset of a hook's
arguments, by name. Plugins are found in this order: ganaug's built-ins (``plugins/``), then entry
points in group ``ganaug`` (skipped when ``GANAUG_DISABLE_PLUGIN_AUTOLOAD=1``), then modules named in
``GANAUG_PLUGINS`` (comma-separated) and ``--plugin module.path``. pluggy calls the most recently
registered implementation first, so a user's plugin runs before the built-ins (``tryfirst`` /
``trylast`` adjust this).

An exception raised inside an implementation reaches the caller as
:class:`ganaug.errors.PluginError` naming the plugin and the hook (a
:class:`~ganaug.errors.GanaugError` raised on purpose, e.g. ``UsageError`` for a bad option,
passes through unchanged), and so does a return value of the wrong type.

The order of one ``ganaug augment`` run::

    ganaug_add_options()                           when the command is built and before each run:
                                                   the options each plugin declares
    ganaug_configure(context)                      once, after data and generator are loaded
    ganaug_plan(class_counts, options)             once: synthetic images per class
    ganaug_open_writer(out_dir, fmt, classes, overwrite)
    for each real image:
        ganaug_transform(image, label, "real", rng, context)        chained
    for each batch of synthetic candidates:
        ganaug_accept(images, labels, context)     all filters; a candidate needs every vote
        ganaug_transform(image, label, "synthetic", rng, context)   chained, per accepted image
    ganaug_finish(context, summary)                before summary.json is written
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pluggy

from ganaug.errors import UsageError

PROJECT_NAME = "ganaug"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
#: Mark a function as a ganaug hook implementation: ``@hookimpl`` or ``@hookimpl(tryfirst=True)``.
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@dataclass
class AugmentContext:
    """What plugins see of one augmentation run (passed to configure/accept/transform/finish).

    Label indices everywhere refer to :attr:`classes` (the input dataset's classes), not to the
    generator's own class order.
    """

    #: Class names of the input dataset; output label ``i`` is ``classes[i]``.
    classes: list[str]
    #: Real images, uint8 NHWC at the generator's size and channels, with ``.labels`` (int64),
    #: ``.classes`` and ``.paths`` (a :class:`ganaug.data.ImageDataset`).
    real: Any
    #: The generator: ``.classes``, ``.z_dim``, ``.image_shape`` (H, W, C), ``.generator_sha256``.
    generator: Any
    #: Resolved options (see :func:`ganaug_plan`); read-only by convention.
    options: Mapping[str, Any]
    #: Base seed of the run.
    seed: int = 0
    #: The output folder (``None`` when not writing, e.g. in tests).
    out_dir: Path | None = None
    #: Scratch space shared between a plugin's hooks during this run; use your plugin's name as key.
    state: dict[str, Any] = field(default_factory=dict)
    #: Print an informational line (silent under ``--quiet``).
    echo: Callable[[str], None] = field(default=lambda _msg: None, repr=False)
    #: Print a warning line to stderr.
    warn: Callable[[str], None] = field(default=lambda _msg: None, repr=False)
    #: Classes a plugin withheld in ``ganaug_configure`` (see :meth:`withhold`): name -> reason.
    withheld: dict[str, str] = field(default_factory=dict)
    _claimed: set[str] = field(default_factory=set, repr=False)

    def withhold(self, name: str, reason: str) -> None:
        """In ``ganaug_configure``: give class ``name`` no synthetic images, whatever the plan says
        (e.g. the generator cannot draw it recognisably). ganaug zeroes its count after
        ``ganaug_plan``, prints ``reason`` and records it under ``withheld`` in summary.json."""
        if name not in self.classes:
            raise UsageError(f"withhold: unknown class {name!r}; classes: {', '.join(self.classes)}")
        self.withheld.setdefault(name, reason)

    @property
    def requested_filters(self) -> list[str]:
        """Filter names the user asked for with ``--filter`` (``options["filters"]``)."""
        return list(self.options.get("filters") or [])

    def claim_filter(self, name: str) -> bool:
        """In ``ganaug_configure``: ``True`` if the user asked for filter ``name`` (which is then
        known to exist). ganaug reports every requested filter no plugin claimed as a usage error."""
        if name in self.requested_filters:
            self._claimed.add(name)
            return True
        return False

    @property
    def unclaimed_filters(self) -> list[str]:
        return [f for f in self.requested_filters if f not in self._claimed]


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


@dataclass(frozen=True)
class PluginOption:
    """One option a plugin reads from ``context.options`` (declared with :func:`ganaug_add_options`).

    ``ganaug augment`` turns it into the flag ``--<name with dashes>``, a ``--config`` key and a
    ``-O name=VALUE`` key; all three go through :meth:`convert`, so a value has its declared
    ``type`` however it was given. ``type``: ``str``, ``int``, ``float``, ``bool``
    or a function ``value -> value`` raising :class:`~ganaug.errors.UsageError`. ``low``/``high``
    bound a number (inclusive); ``choices`` limit a ``str``; ``path=True`` names a file the run
    reads (ganaug never writes over it). ``None`` is always accepted and means "not set".
    """

    name: str
    default: Any = None
    type: Any = str
    help: str = ""
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] | None = None
    path: bool = False

    @property
    def flag_name(self) -> str:
        return "--" + self.name.replace("_", "-")

    def convert(self, value: Any) -> Any:
        """``value`` (a command-line string, or a config file's value) as the declared type."""
        if value is None:
            return None
        kind, where = self.type, self.flag_name
        if kind is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in _TRUE or text in _FALSE:
                return text in _TRUE
            raise UsageError(f"{where} must be true or false, got {value!r}")
        if kind in (int, float):
            from ganaug.limits import Limit

            low = -math.inf if self.low is None else self.low
            high = math.inf if self.high is None else self.high
            return Limit(kind, low, high).check(where, value)
        if kind is str:
            if isinstance(value, (dict, list)):
                raise UsageError(f"{where} takes a single value, got {type(value).__name__}")
            text = str(value)
            if self.choices is not None and text not in self.choices:
                raise UsageError(f"{where} must be one of {', '.join(self.choices)}, got {value!r}")
            return text
        return kind(value)


@hookspec
def ganaug_add_options() -> Sequence[PluginOption] | None:
    """Declare the options your plugin reads from ``context.options`` (the ``pytest_addoption`` idea).

    :return: a list of :class:`PluginOption` (or ``None``).

    ganaug itself knows no plugin's options: ``ganaug augment`` makes a flag, a ``--config`` key and
    a typed ``-O`` key of each declared option, puts its value (or default) into ``options`` and
    ``context.options`` under ``name``, and lists it in ``ganaug plugins list``. Called when the
    ``augment`` command is built (plugins from entry points and ``GANAUG_PLUGINS`` get flags) and
    at the start of every run (``--plugin`` plugins: ``-O name=VALUE``, typed). A name may be
    declared once, and not reuse one of ganaug's own options. Not firstresult.
    """


@hookspec
def ganaug_register_commands(cli: Any) -> None:
    """Add subcommands to the ``ganaug`` command line.

    :param cli: the top-level :class:`click.Group`; call ``cli.add_command(my_command)``.
    :return: nothing.

    Called once, when the CLI first looks up or lists commands. Only plugins found through entry
    points or ``GANAUG_PLUGINS`` can add commands (``--plugin`` belongs to a single command).
    Not firstresult: every implementation is called.
    """


@hookspec
def ganaug_configure(context: AugmentContext) -> None:
    """Prepare for one augmentation run: validate your options, load models, build indexes.

    :param context: the run's :class:`AugmentContext`; keep what you build in
        ``context.state[<your plugin name>]``, not in globals, and call
        ``context.claim_filter(name)`` for each ``--filter`` name you implement.
    :return: nothing.

    Called once per run after the data and the generator are loaded, before ``ganaug_plan``.
    Raise :class:`ganaug.errors.UsageError` for a bad option. Not firstresult.
    """


@hookspec(firstresult=True)
def ganaug_plan(class_counts: dict[str, int], options: Mapping[str, Any]) -> dict[str, int] | None:
    """Decide how many synthetic images to add per class.

    :param class_counts: real images per class name (every class, zeros included).
    :param options: the run's options. Keys ganaug always sets: ``strategy`` (the ``--strategy``
        value: a float, a string such as ``"not majority"``, a mapping or a file path),
        ``max_synthetic_ratio`` (float or ``None``), ``filters`` (list of names), ``max_attempts``
        (float), ``format``, ``real`` (``"copy"``, ``"link"`` or ``"none"``), ``seed`` (int),
        ``truncation``, ``temperature``, ``soft_labels``, ``fill``; plus every option a plugin
        declared with :func:`ganaug_add_options` (its value, typed, or its default) and every
        other ``-O/--plugin-option KEY=VALUE`` given by the user (YAML-parsed).
    :return: a dict ``{class name: number of synthetic images}`` (classes left out get none), or
        ``None`` when this implementation does not understand ``options["strategy"]``.

    firstresult: the first non-``None`` answer wins; plugins registered later are asked first, so
    a plugin can add its own strategy names and return ``None`` for the rest. ganaug applies
    ``--max-synthetic-ratio`` afterwards, whoever made the plan. Called once per run.
    """


@hookspec
def ganaug_accept(
    images: np.ndarray, labels: np.ndarray, context: AugmentContext
) -> np.ndarray | Mapping[str, np.ndarray] | None:
    """Vote on a batch of synthetic candidates (filters).

    :param images: uint8 ``[N, H, W, C]`` generator output, before any transform.
    :param labels: int64 ``[N]`` intended labels (indices into ``context.classes``).
    :param context: the run's :class:`AugmentContext`.
    :return: a bool array ``[N]`` (``True`` = keep), or a mapping ``{reason: bool array [N]}``
        when one plugin applies several named filters (rejections are counted per reason in
        ``summary.json``), or ``None`` to abstain.

    Called once per batch (hundreds to thousands of candidates): work vectorised, e.g. one
    classifier forward pass for the whole batch. Not firstresult: every implementation votes and a
    candidate is kept only if no vote rejects it. Rejected candidates are replaced by new ones until
    each class has its planned count or ``--max-attempts`` x planned candidates were drawn.
    Wrappers (``wrapper=True``) are not supported on this hook.
    """


@hookspec
def ganaug_transform(
    image: np.ndarray, label: int, source: str, rng: np.random.Generator, context: AugmentContext
) -> tuple[np.ndarray, Sequence[Mapping[str, Any] | str]] | None:
    """Transform one image before it is written (classical augmentation).

    :param image: uint8 ``[H, W, C]``: the output of the previous implementation in the chain.
    :param label: label index (into ``context.classes``).
    :param source: ``"real"`` or ``"synthetic"``.
    :param rng: a NumPy generator seeded from the run seed, the source and the image's index, so
        the result does not depend on batch sizes or on which other plugins ran.
    :param context: the run's :class:`AugmentContext`.
    :return: ``(new_image, applied)`` where ``new_image`` is uint8 ``[H', W', C]`` and ``applied``
        lists what was done as small JSON-able dicts (``{"name": "HorizontalFlip", "params": {}}``)
        or names; these go to the manifest's ``transforms`` field. Return ``None`` to leave the image
        unchanged.

    Chained, not firstresult: implementations run one after the other in pluggy's call order
    (latest registered first), each receiving the previous one's image. Wrappers are not supported
    on this hook. Called once per written image and source.
    """


@hookspec(firstresult=True)
def ganaug_open_writer(out_dir: Path, fmt: str, classes: list[str], overwrite: bool) -> Any | None:
    """Provide the writer for output format ``fmt`` (``--format``).

    :param out_dir: the output folder.
    :param fmt: the requested format name (built-in: ``imagefolder``, ``npz``).
    :param classes: class names (label index order).
    :param overwrite: whether a non-empty ``out_dir`` may be replaced.
    :return: ``None`` if you do not write ``fmt``; else an object with the
        :class:`ganaug.dataset_writer.DatasetWriter` interface: a context manager (publishing the
        dataset atomically on a clean exit, discarding it on an exception) with
        ``add(image_hwc_uint8, label_index, record) -> relpath``,
        ``add_file(src_path, label_index, record, mode="copy"|"link") -> relpath`` and an
        ``extra_files`` dict (file name -> str, bytes or JSON-able object) written on close.
        Each ``record`` becomes one manifest line together with ``path``, ``label`` and
        ``label_index``.

    firstresult. Called once per run, after planning.
    """


@hookspec
def ganaug_finish(context: AugmentContext, summary: dict[str, Any]) -> None:
    """Last look at a run before ``summary.json`` is written.

    :param context: the run's :class:`AugmentContext`.
    :param summary: the dict that becomes ``summary.json``; add your own key (your plugin's name)
        if you have something to report. Do not change ganaug's keys.
    :return: nothing.

    Called once, after all images were added and before the output folder is published.
    Not firstresult.
    """


def ratio_plan(
    class_counts: Mapping[str, int], ratio: float, name: str = "ratio", shown: Any = None
) -> dict[str, int]:
    """The plan for a float ``--strategy``: ``round(ratio * n_c)`` synthetic images per class
    (halves up). A negative or non-finite ``ratio`` is a UsageError naming ``name`` and ``shown``
    (the value as the user gave it; default ``ratio``)."""
    if not math.isfinite(ratio) or ratio < 0:
        raise UsageError(f"{name} must be a finite number >= 0, got {ratio if shown is None else shown!r}")
    return {c: math.floor(float(ratio) * n + 0.5) for c, n in class_counts.items()}


#: Hooks that ganaug calls implementation by implementation (chained or voting); pluggy wrappers
#: cannot take part in those and are rejected when a plugin is registered.
NO_WRAPPER_HOOKS = ("ganaug_accept", "ganaug_transform")

__all__ = [
    "NO_WRAPPER_HOOKS",
    "PROJECT_NAME",
    "AugmentContext",
    "PluginOption",
    "hookimpl",
    "hookspec",
    "ratio_plan",
]
