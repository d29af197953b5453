"""Options that plugins declare (``ganaug_add_options``), turned into spec fields and typed values.

One typed path: a declared option's value goes through :meth:`PluginOption.convert
<ganaug.hookspecs.PluginOption.convert>` whether it came as a generated flag (``--min-confidence
0.8``), a ``--config`` key or ``-O min_confidence=0.8``. ganaug's core names no plugin's option.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Mapping
from typing import Any

from ganaug.augment.spec import CORE_OPTIONS, AugmentSpec
from ganaug.errors import PluginError, UsageError
from ganaug.hookspecs import PluginOption
from ganaug.specs import option


def declared_options(pm: Any) -> tuple[tuple[str, PluginOption], ...]:
    """``(plugin name, option)`` of every option the plugins of ``pm`` declare, in call order of the
    plugins reversed (built-ins first). A name declared twice, or one of ganaug's own, is a PluginError."""
    found: list[tuple[str, PluginOption]] = []
    seen: dict[str, str] = {}
    for plugin, result in reversed(list(pm.call_each("ganaug_add_options"))):
        for opt in result or ():
            if opt.name in CORE_OPTIONS:
                raise PluginError(f"plugin {plugin!r} declares option {opt.name!r}, one of ganaug's own")
            if opt.name in seen:
                raise PluginError(
                    f"plugin {plugin!r} declares option {opt.name!r}, already declared by {seen[opt.name]!r}"
                )
            seen[opt.name] = plugin
            found.append((plugin, opt))
    return tuple(found)


def _flag_converter(opt: PluginOption) -> Any:
    """``opt.convert`` for its flag: click names the option already, so the message does not."""

    def convert(value: Any) -> Any:
        try:
            return opt.convert(value)
        except UsageError as exc:
            raise UsageError(str(exc).removeprefix(opt.flag_name + " ")) from None

    return convert


def _field(plugin: str, opt: PluginOption) -> Any:
    """The spec field of a declared option (its flag converts through ``opt.convert``)."""
    info: dict[str, Any] = {"help": f"{opt.help} [plugin {plugin}]".strip(), "cli": True}
    if opt.type is bool:
        info["flags"] = (f"{opt.flag_name}/--no-{opt.flag_name[2:]}",)
    else:
        info["convert"] = _flag_converter(opt)
        info["metavar"] = "[" + "|".join(opt.choices) + "]" if opt.choices else opt.type.__name__.upper()
        if opt.type not in (str, int, float):
            info["metavar"] = "VALUE"
    return option(opt.default, **info)


def spec_type(declared: tuple[tuple[str, PluginOption], ...]) -> type[AugmentSpec]:
    """:class:`AugmentSpec` plus one field per declared plugin option (cached: the same declarations
    give the same class, so specs compare equal)."""
    try:
        return _spec_type(declared)
    except TypeError:  # an unhashable default: build it uncached
        return _spec_type.__wrapped__(declared)


@functools.lru_cache(maxsize=64)
def _spec_type(declared: tuple[tuple[str, PluginOption], ...]) -> type[AugmentSpec]:
    if not declared:
        return AugmentSpec
    fields = [(opt.name, Any, _field(plugin, opt)) for plugin, opt in declared]
    try:
        return dataclasses.make_dataclass("AugmentSpec", fields, bases=(AugmentSpec,))
    except ValueError as exc:  # e.g. a mutable default
        raise PluginError(f"plugin options cannot become fields: {exc}") from None


def resolve_options(spec: AugmentSpec, declared: tuple[tuple[str, PluginOption], ...]) -> dict[str, Any]:
    """The plugin options of a run, typed: each declared option from its field, or ``-O`` (converted
    by the declaration; giving both with different values is a UsageError), or its default; then
    every other ``-O`` pair, read as YAML. A pair reusing a core option's name is a UsageError."""
    extra = dict(spec.plugin_options or {})
    clash = sorted(set(extra) & set(CORE_OPTIONS))
    if clash:
        raise UsageError(f"plugin option(s) {', '.join(clash)} clash with ganaug options; use the real flags")
    out: dict[str, Any] = {}
    for _plugin, opt in declared:
        value = opt.convert(getattr(spec, opt.name, opt.default))
        if opt.name in extra:
            given = opt.convert(extra.pop(opt.name))
            if value != opt.convert(opt.default) and given != value:
                raise UsageError(f"{opt.flag_name} {value!r} and -O {opt.name}={given!r} disagree")
            value = given
        out[opt.name] = value
    for key, raw in extra.items():
        out[key] = yaml_scalar(raw) if isinstance(raw, str) else raw
    return out


_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def yaml_scalar(raw: str) -> Any:
    """An undeclared ``-O`` value: a YAML scalar (``1``, ``0.5``, ``true``), ``4e-4`` read as a number
    (PyYAML wants ``4.0e-4``), text where YAML fails; ``""`` stays ``""``."""
    import yaml

    if not raw.strip():
        return ""
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw
    return float(value) if isinstance(value, str) and _NUMBER.fullmatch(value.strip()) else value


def input_files(options: Mapping[str, Any], declared: tuple[tuple[str, PluginOption], ...]) -> list[Any]:
    """The files declared options name (``path=True``): inputs ganaug never writes over."""
    return [options.get(opt.name) for _plugin, opt in declared if opt.path and options.get(opt.name)]


__all__ = ["declared_options", "input_files", "resolve_options", "spec_type", "yaml_scalar"]
