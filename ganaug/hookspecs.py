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

    ganaug_configure(context)                      once, after data and generator are loaded
    ganaug_plan(class_counts, options)             once: synthetic images per class
    ganaug_open_writer(out_dir, fmt, classes, overwrite)
    for each batch of synthetic candidates:
        ganaug_accept(images, labels, context)     all filters; a candidate needs every vote
        ganaug_transform(image, label, "synthetic", rng, context)   chained, per accepted image
    for each real image:
        ganaug_transform(image, label, "real", rng, context)        chained
    ganaug_finish(context, summary)                before summary.json is written
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pluggy

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
    #: The generator: ``.classes``, ``.z_dim``, ``.image_shape`` (H, W, C), ``.sha256``.
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
    _claimed: set[str] = field(default_factory=set, repr=False)

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
        ``max_synthetic_ratio`` (float or ``None``), ``transforms``, ``synthetic_transforms``
        (paths or ``None``), ``filters`` (list of names), ``min_confidence`` (float),
        ``filter_classifier`` (path or ``None``), ``near_duplicate_threshold`` (float),
        ``max_attempts`` (float), ``format``, ``real`` (``"copy"``, ``"link"`` or ``"none"``),
        ``seed`` (int), plus every ``-o/--plugin-option KEY=VALUE`` given by the user.
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


#: Hooks that ganaug calls implementation by implementation (chained or voting); pluggy wrappers
#: cannot take part in those and are rejected when a plugin is registered.
NO_WRAPPER_HOOKS = ("ganaug_accept", "ganaug_transform")

__all__ = ["NO_WRAPPER_HOOKS", "PROJECT_NAME", "AugmentContext", "hookimpl", "hookspec"]
