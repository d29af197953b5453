"""The plugin manager: discovery, validation, and errors that name the culprit.

>>> pm = get_plugin_manager(["my_package.my_plugin"])       # doctest: +SKIP
>>> [p["name"] for p in plugin_infos(pm)]                   # doctest: +SKIP
['plugins.strategies', 'plugins.albumentations_transforms', ..., 'my_package.my_plugin']

Discovery order: the built-ins in ``plugins/`` (package ``ganaug_plugins``), then entry points in
group ``ganaug`` (skipped when ``GANAUG_DISABLE_PLUGIN_AUTOLOAD=1``), then modules listed in
``GANAUG_PLUGINS`` (comma-separated), then the ``plugins`` argument (``--plugin``). ``module.path``
or ``module.path:attribute`` names a plugin object. Every implementation is wrapped when it is
registered, so an exception inside a plugin (or a return value of the wrong type) surfaces as
:class:`PluginError` naming the plugin and the hook, however the hook is called. The hook
specifications are in :mod:`ganaug.hookspecs`.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import importlib
import importlib.metadata
import inspect
import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pluggy

from ganaug import hookspecs
from ganaug.errors import GanaugError, PluginError, UsageError, first_line
from ganaug.hookspecs import NO_WRAPPER_HOOKS, PROJECT_NAME, hookimpl

ENTRY_POINT_GROUP = "ganaug"
AUTOLOAD_ENV = "GANAUG_DISABLE_PLUGIN_AUTOLOAD"
PLUGINS_ENV = "GANAUG_PLUGINS"
DISABLE_ENV = "GANAUG_DISABLE_PLUGINS"
#: Built-in plugins, registered (as modules) before anything else, by these names (the names in
#: manifests, summary.json, ``ganaug plugins list`` and ``GANAUG_DISABLE_PLUGINS``).
BUILTIN_PLUGINS = (
    "plugins.writers",
    "plugins.strategies",
    "plugins.filters",
    "plugins.albumentations_transforms",
)
#: The import package of the built-ins (folder ``plugins/``): ``plugins.filters`` is the module
#: ``ganaug_plugins.filters``.
BUILTIN_PACKAGE = "ganaug_plugins"
_HOOK_PREFIX = "ganaug_"


# -- return-value checks, per hook ---------------------------------------------------------------
def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of {value.dtype} {value.shape}"
    return f"a {type(value).__name__}"


def _check_plan(result: Any, args: Mapping[str, Any]) -> str | None:
    if not isinstance(result, Mapping):
        return f"{_describe(result)}, expected a dict of class name -> count"
    known = args.get("class_counts")
    for key, value in result.items():
        if known is not None and key not in known:
            return f"unknown class {key!r} (classes: {', '.join(map(str, known))})"
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            return f"count {value!r} for class {key!r}, expected an integer >= 0"
    return None


def _check_mask(mask: Any) -> str | None:
    arr = np.asarray(mask)
    if arr.ndim != 1 or arr.dtype.kind not in "bui":
        return f"{_describe(arr)}, expected a 1-D bool array"
    return None


def _check_accept(result: Any, args: Mapping[str, Any]) -> str | None:
    masks = result.items() if isinstance(result, Mapping) else [("", result)]
    n = len(args["labels"]) if "labels" in args else None
    for reason, mask in masks:
        problem = _check_mask(mask)
        if problem is None and n is not None and len(mask) != n:
            problem = f"{len(mask)} votes for {n} images"
        if problem:
            return f"{problem}{f' for {reason!r}' if reason else ''}"
    return None


def _check_transform(result: Any, args: Mapping[str, Any]) -> str | None:
    if not (isinstance(result, tuple) and len(result) == 2):
        return f"{_describe(result)}, expected (image, applied) or None"
    image, applied = result
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3:
        return f"an image that is {_describe(image)}, expected uint8 [H, W, C]"
    if image.shape[2] not in (1, 3):
        return f"an image with {image.shape[2]} channels, expected 1 or 3"
    if image.shape[0] == 0 or image.shape[1] == 0:
        return f"an empty image of shape {image.shape}, expected at least 1x1 pixels"
    if isinstance(applied, (str, bytes)) or not isinstance(applied, Sequence):
        return f"applied transforms as {_describe(applied)}, expected a list of dicts or names"
    problem = _json_problem(list(applied))
    return f"applied transforms that are not JSON ({problem})" if problem else None


def _json_problem(value: Any) -> str | None:
    """Why ``value`` cannot go into the manifest or summary.json (None when it can)."""
    try:
        json.dumps(value)
    except (TypeError, ValueError, RecursionError) as exc:
        return _first_line(exc)
    return None


def _check_writer(result: Any, args: Mapping[str, Any]) -> str | None:
    missing = [
        a for a in ("__enter__", "__exit__", "add", "add_file", "extra_files") if not hasattr(result, a)
    ]
    if missing:
        return f"{_describe(result)} without {', '.join(missing)} (see DatasetWriter)"
    return None


def _snapshot_configure(args: Mapping[str, Any]) -> Any:
    return list(args["context"].classes) if "context" in args else None


def _after_configure(before: Any, args: Mapping[str, Any]) -> str | None:
    if before is not None and list(args["context"].classes) != before:
        return "changed context.classes (the dataset's classes are read-only)"
    return None


def _snapshot_finish(args: Mapping[str, Any]) -> Any:
    summary = args.get("summary")
    if not isinstance(summary, dict):
        return None
    return {k: json.dumps(v, sort_keys=True, default=repr) for k, v in summary.items()}


def _after_finish(before: Any, args: Mapping[str, Any]) -> str | None:
    if before is None:
        return None
    summary = args["summary"]
    if not isinstance(summary, dict):
        return f"left the summary as {_describe(summary)}"
    for key, dumped in before.items():
        if key not in summary:
            return f"removed summary[{key!r}] (add your own key; do not change ganaug's)"
        if json.dumps(summary[key], sort_keys=True, default=repr) != dumped:
            return f"changed summary[{key!r}] (add your own key; do not change ganaug's)"
    problem = _json_problem(summary)
    return f"left a summary that is not JSON ({problem})" if problem else None


#: Checks of what a hook did to its arguments: (snapshot before the call, check after it).
_ARG_CHECKS: dict[
    str, tuple[Callable[[Mapping[str, Any]], Any], Callable[[Any, Mapping[str, Any]], str | None]]
] = {
    "ganaug_configure": (_snapshot_configure, _after_configure),
    "ganaug_finish": (_snapshot_finish, _after_finish),
}


def _check_options(result: Any, args: Mapping[str, Any]) -> str | None:
    if isinstance(result, (str, bytes)) or not isinstance(result, Sequence):
        return f"{_describe(result)}, expected a list of PluginOption"
    for item in result:
        if not isinstance(item, hookspecs.PluginOption):
            return f"{_describe(item)} in its list, expected PluginOption"
        if not item.name.isidentifier():
            return f"option name {item.name!r}, expected an identifier such as my_option"
    return None


_VALIDATORS: dict[str, Callable[[Any, Mapping[str, Any]], str | None]] = {
    "ganaug_add_options": _check_options,
    "ganaug_plan": _check_plan,
    "ganaug_accept": _check_accept,
    "ganaug_transform": _check_transform,
    "ganaug_open_writer": _check_writer,
}


def _first_line(exc: BaseException) -> str:
    return first_line(exc, 300, with_type=True)


def _plugin_error(plugin_name: str, hook_name: str, exc: BaseException) -> PluginError:
    return PluginError(f"plugin {plugin_name!r} failed in {hook_name}: {_first_line(exc)}")


#: Exceptions from plugin code that are passed through unchanged (everything else, ``SystemExit``
#: included, becomes a PluginError naming the plugin and hook).
_PASS_THROUGH = (GanaugError, KeyboardInterrupt, GeneratorExit)


def _guard(impl: pluggy.HookImpl, hook_name: str) -> None:
    """Replace ``impl.function`` by a wrapper that names ``impl``'s plugin and hook in errors.

    While plugin code runs, its ``print`` output goes to stderr, so ganaug's ``--json`` output on
    stdout stays valid.
    """
    fn = impl.function
    if getattr(fn, "_ganaug_guarded", False):
        return
    plugin_name = impl.plugin_name
    validate = _VALIDATORS.get(hook_name)
    snapshot, after = _ARG_CHECKS.get(hook_name, (None, None))
    argnames = tuple(impl.argnames)

    if inspect.isgeneratorfunction(fn):  # a pluggy wrapper: guard its setup and teardown

        def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                with contextlib.redirect_stdout(sys.stderr):
                    return (yield from fn(*args, **kwargs))
            except _PASS_THROUGH:
                raise
            except BaseException as exc:
                raise _plugin_error(plugin_name, hook_name, exc) from exc

    else:

        def guarded(*args: Any, **kwargs: Any) -> Any:
            call = {**dict(zip(argnames, args, strict=False)), **kwargs}
            before = snapshot(call) if snapshot is not None else None
            try:
                with contextlib.redirect_stdout(sys.stderr):
                    result = fn(*args, **kwargs)
            except _PASS_THROUGH:
                raise
            except BaseException as exc:
                raise _plugin_error(plugin_name, hook_name, exc) from exc
            if validate is not None and result is not None:
                problem = validate(result, call)
                if problem:
                    raise PluginError(f"plugin {plugin_name!r}: {hook_name} returned {problem}")
            problem = after(before, call) if after is not None else None
            if problem:
                raise PluginError(f"plugin {plugin_name!r}: {hook_name} {problem}")
            return result

    functools.update_wrapper(guarded, fn)
    guarded._ganaug_guarded = True  # type: ignore[attr-defined]
    # HookImpl.function is declared Final for type checkers only; it is a plain slot.
    impl.function = guarded  # type: ignore[misc]


class GanaugPluginManager(pluggy.PluginManager):
    """A :class:`pluggy.PluginManager` for project ``ganaug`` that guards every implementation."""

    def __init__(self) -> None:
        super().__init__(PROJECT_NAME)
        self.add_hookspecs(hookspecs)
        #: plugin name -> where it came from: "builtin", "entrypoint", "env" or "option".
        self.origins: dict[str, str] = {}
        #: plugin name -> version string (entry points: the distribution's version).
        self.versions: dict[str, str | None] = {}
        #: plugin name -> why it was left out (only with ``get_plugin_manager(strict=False)``).
        self.broken: dict[str, str] = {}

    def parse_hookimpl_opts(self, plugin: Any, name: str) -> pluggy.HookimplOpts | None:
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is not None or not name.startswith(_HOOK_PREFIX):
            return opts
        # Accept unmarked ganaug_* functions too, so a misspelt hook name is always reported.
        try:
            member = inspect.getattr_static(plugin, name)
        except AttributeError:
            return None
        if isinstance(member, (staticmethod, classmethod)):
            member = member.__func__
        if not inspect.isfunction(member) and not inspect.ismethod(member):
            return None
        return {
            "wrapper": False,
            "hookwrapper": False,
            "optionalhook": False,
            "tryfirst": False,
            "trylast": False,
            "specname": None,
        }

    def register(self, plugin: Any, name: str | None = None) -> str | None:
        label = name or self.get_canonical_name(plugin)
        try:
            registered = super().register(plugin, name)
        except pluggy.PluginValidationError as exc:
            with contextlib.suppress(Exception):  # pluggy leaves a half-registered plugin behind
                self.unregister(plugin)
            raise PluginError(f"plugin {label!r} is invalid: {' '.join(str(exc).split())}") from None
        except ValueError as exc:  # already registered under another name / name taken
            raise PluginError(f"plugin {label!r} cannot be registered: {exc}") from None
        if registered is None:  # blocked
            return None
        for caller in self.get_hookcallers(plugin) or []:
            for impl in caller.get_hookimpls():
                if impl.plugin is plugin:
                    if caller.name in NO_WRAPPER_HOOKS and (impl.wrapper or impl.hookwrapper):
                        self.unregister(plugin)
                        raise PluginError(
                            f"plugin {registered!r}: {caller.name} cannot be a wrapper "
                            "(ganaug calls its implementations one by one)"
                        )
                    _guard(impl, caller.name)
        return registered

    def check(self) -> None:
        """Like :meth:`check_pending`, but a PluginError naming plugin, hook and the likely fix."""
        specced = [n for n, c in vars(self.hook).items() if not n.startswith("_") and c.has_spec()]
        for name, caller in list(vars(self.hook).items()):
            if name.startswith("_") or caller.has_spec():
                continue
            for impl in caller.get_hookimpls():
                if impl.optionalhook:
                    continue
                close = difflib.get_close_matches(name, specced, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise PluginError(f"plugin {impl.plugin_name!r} implements unknown hook {name!r}{hint}")
        self.check_pending()  # anything pluggy knows about that we missed

    def impls(self, hook_name: str) -> list[pluggy.HookImpl]:
        """Implementations of ``hook_name`` in call order (latest registered / tryfirst first)."""
        return list(reversed(getattr(self.hook, hook_name).get_hookimpls()))

    def call_each(self, hook_name: str, **kwargs: Any) -> Iterator[tuple[str, Any]]:
        """Call the implementations of ``hook_name`` one by one: yields ``(plugin name, result)``.

        For hooks listed in :data:`ganaug.hookspecs.NO_WRAPPER_HOOKS`. Arguments an implementation
        does not declare are not passed.
        """
        for impl in self.impls(hook_name):
            args = [kwargs[a] for a in impl.argnames]
            extra = {k: kwargs[k] for k in impl.kwargnames if k in kwargs}
            yield impl.plugin_name, impl.function(*args, **extra)

    def transform(self, image: np.ndarray, **kwargs: Any) -> tuple[np.ndarray, list[Any], list[str]]:
        """Run the ``ganaug_transform`` chain: ``(image, applied transforms, plugins that acted)``."""
        applied: list[Any] = []
        acted: list[str] = []
        for impl in self.impls("ganaug_transform"):
            call = {"image": image, **kwargs}
            args = [call[a] for a in impl.argnames]
            extra = {k: call[k] for k in impl.kwargnames if k in call}
            result = impl.function(*args, **extra)
            if result is None:
                continue
            image, done = result
            applied.extend(done)
            acted.append(impl.plugin_name)
        return image, applied, acted


def _import_object(spec: str) -> Any:
    module_name, _, attr = spec.partition(":")
    try:
        with contextlib.redirect_stdout(sys.stderr):
            obj = importlib.import_module(module_name)
    except ImportError as exc:
        hint = ""
        if isinstance(exc, ModuleNotFoundError) and exc.name == module_name.split(".")[0]:
            hint = " (a plugin file's folder must be on PYTHONPATH, e.g. PYTHONPATH=. ganaug ...)"
        raise PluginError(f"cannot import plugin {spec!r}: {_first_line(exc)}{hint}") from None
    except _PASS_THROUGH:
        raise
    except BaseException as exc:
        raise PluginError(f"plugin {spec!r} failed while being imported: {_first_line(exc)}") from exc
    for part in filter(None, attr.split(".")):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise PluginError(f"cannot import plugin {spec!r}: {module_name} has no {attr!r}") from None
    return obj


def _version_of(plugin: Any) -> str | None:
    version = getattr(plugin, "__version__", None)
    if version is None and inspect.ismodule(plugin):
        top = plugin.__name__.split(".")[0]
        dists = importlib.metadata.packages_distributions().get(top, [])
        if dists:
            from ganaug.versions import dist_version

            version = dist_version(dists[0])
    return None if version is None else str(version)


def autoload_enabled() -> bool:
    """False when ``GANAUG_DISABLE_PLUGIN_AUTOLOAD`` is set to a true value."""
    return os.environ.get(AUTOLOAD_ENV, "").strip().lower() not in ("1", "true", "yes", "on")


def disabled_plugins() -> set[str]:
    """Plugin names listed in ``GANAUG_DISABLE_PLUGINS`` (comma-separated): never imported."""
    return {n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip()}


def _escape_hatch(name: str, origin: str) -> str:
    hatch = f"run without it: {DISABLE_ENV}={name}"
    if origin == "entrypoint":
        hatch += f", or {AUTOLOAD_ENV}=1 to skip every installed plugin"
    elif origin in ("env", "option"):
        hatch += f", or remove it from {PLUGINS_ENV} / --plugin"
    return hatch


def _check_one(pm: GanaugPluginManager, plugin: Any, name: str) -> None:
    """Refuse (and unregister) a plugin that implements a hook no specification knows."""
    specced = [n for n, c in vars(pm.hook).items() if not n.startswith("_") and c.has_spec()]
    for hook_name, caller in list(vars(pm.hook).items()):
        if hook_name.startswith("_") or caller.has_spec():
            continue
        for impl in caller.get_hookimpls():
            if impl.plugin is plugin and not impl.optionalhook:
                pm.unregister(plugin)
                close = difflib.get_close_matches(hook_name, specced, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise PluginError(f"plugin {name!r} implements unknown hook {hook_name!r}{hint}")


def _add(
    pm: GanaugPluginManager, name: str, origin: str, load: Callable[[], Any], version: Any, strict: bool
) -> None:
    """Import (``load``), register and check one plugin; a broken one raises (strict) or is
    recorded in ``pm.broken`` with the reason."""
    try:
        plugin = load()
        if pm.is_registered(plugin):
            return
        registered = pm.register(plugin, name=name)
        if registered is None:  # blocked
            return
        _check_one(pm, plugin, registered)
    except PluginError as exc:
        if strict:
            raise PluginError(f"{exc}; {_escape_hatch(name, origin)}") from exc.__cause__
        pm.broken[name] = str(exc)
        pm.origins[name] = origin
        return
    pm.origins[registered] = origin
    pm.versions[registered] = version(plugin) if callable(version) else version


def _load_entry_points(pm: GanaugPluginManager, strict: bool) -> None:
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if pm.has_plugin(ep.name) or pm.is_blocked(ep.name):
            continue
        dist = getattr(ep, "dist", None)
        where = f"entry point {ep.name!r}" + (f" of {dist.metadata['Name']}" if dist is not None else "")

        def load(ep: Any = ep, where: str = where) -> Any:
            try:
                with contextlib.redirect_stdout(sys.stderr):
                    return ep.load()
            except _PASS_THROUGH:
                raise
            except BaseException as exc:
                raise PluginError(f"cannot load plugin {where} ({ep.value}): {_first_line(exc)}") from exc

        version = dist.version if dist is not None else _version_of
        _add(pm, ep.name, "entrypoint", load, version, strict)


def _register_spec(pm: GanaugPluginManager, spec: Any, origin: str, strict: bool = True) -> None:
    if isinstance(spec, str):
        spec = spec.strip()
        if not spec or pm.has_plugin(spec) or pm.is_blocked(spec):
            return
        _add(pm, spec, origin, lambda: _import_object(spec), _version_of, strict)
        return
    if pm.is_registered(spec):
        return
    registered = pm.register(spec)
    if registered is not None:
        pm.origins[registered] = origin
        pm.versions[registered] = _version_of(spec)


def get_plugin_manager(
    plugins: Sequence[str | object] = (),
    *,
    autoload: bool | None = None,
    builtins: bool = True,
    strict: bool = True,
) -> GanaugPluginManager:
    """A fresh, checked plugin manager.

    ``plugins``: extra plugins (``"module.path"``, ``"module.path:attr"`` or objects), registered
    last, after the modules named in ``GANAUG_PLUGINS``. ``autoload``: load entry points (default:
    unless ``GANAUG_DISABLE_PLUGIN_AUTOLOAD=1``, which, as in pytest, leaves ``GANAUG_PLUGINS`` on).
    ``builtins=False`` leaves out ``plugins/``. Plugins named in ``GANAUG_DISABLE_PLUGINS``
    (comma-separated) are not loaded at all.
    Raises :class:`PluginError` for a plugin that cannot be imported, does not fit its hooks or
    implements an unknown hook, naming it and how to run without it; with ``strict=False`` such a
    plugin is left out instead and listed in ``pm.broken`` (name -> reason).
    """
    from ganaug import __version__

    pm = GanaugPluginManager()
    for name in disabled_plugins():
        pm.set_blocked(name)
    if builtins:
        for module_name in BUILTIN_PLUGINS:
            if not pm.is_blocked(module_name):
                module = importlib.import_module(BUILTIN_PACKAGE + module_name.removeprefix("plugins"))
                pm.register(module, name=module_name)
                pm.origins[module_name] = "builtin"
                pm.versions[module_name] = __version__
    if autoload is None:
        autoload = autoload_enabled()
    if autoload:
        _load_entry_points(pm, strict)
    for spec in os.environ.get(PLUGINS_ENV, "").split(","):
        _register_spec(pm, spec, "env", strict)
    for spec in plugins:
        _register_spec(pm, spec, "option", strict)
    pm.check()
    return pm


def plugin_infos(pm: GanaugPluginManager) -> list[dict[str, Any]]:
    """Name, version, origin and implemented hooks of every registered plugin, in registration order,
    then the broken ones left out by ``get_plugin_manager(strict=False)`` (with ``"error"``)."""
    infos: list[dict[str, Any]] = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:
            continue
        hooks = sorted({c.name for c in pm.get_hookcallers(plugin) or []})
        infos.append(
            {
                "name": name,
                "version": pm.versions.get(name),
                "origin": pm.origins.get(name, "api"),
                "hooks": hooks,
            }
        )
    for name, reason in pm.broken.items():
        infos.append(
            {
                "name": name,
                "version": None,
                "origin": pm.origins.get(name, "api"),
                "hooks": [],
                "error": reason,
            }
        )
    return infos


def add_plugin_commands(cli: Any, pm: GanaugPluginManager | None = None) -> None:
    """Let plugins add subcommands to the click group ``cli`` (``ganaug_register_commands``).

    A broken plugin does not take the others' commands down: it is left out with a one-line
    warning on stderr, and so is a plugin whose ``ganaug_register_commands`` fails.
    """
    pm = pm if pm is not None else get_plugin_manager(strict=False)
    problems = [f"{reason}; {_escape_hatch(n, pm.origins.get(n, ''))}" for n, reason in pm.broken.items()]
    for impl in pm.impls("ganaug_register_commands"):
        try:
            impl.function(cli=cli)
        except PluginError as exc:
            problems.append(str(exc))
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)


def parse_plugin_options(pairs: Sequence[str]) -> dict[str, Any]:
    """``["key=value", ...]`` (``-O``) to a dict; values are parsed as YAML scalars (1, 0.5, true,
    ``4e-4`` as a number: :func:`ganaug.augment.options.yaml_scalar`). ``ganaug augment`` gives an
    option a plugin declared its declared type instead."""
    from ganaug.augment.options import yaml_scalar

    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"plugin option {pair!r} is not KEY=VALUE")
        out[key] = yaml_scalar(raw)
    return out


__all__ = [
    "AUTOLOAD_ENV",
    "BUILTIN_PLUGINS",
    "DISABLE_ENV",
    "ENTRY_POINT_GROUP",
    "PLUGINS_ENV",
    "GanaugPluginManager",
    "add_plugin_commands",
    "autoload_enabled",
    "disabled_plugins",
    "get_plugin_manager",
    "hookimpl",
    "parse_plugin_options",
    "plugin_infos",
]
