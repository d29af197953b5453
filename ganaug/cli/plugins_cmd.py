"""``ganaug plugins``: what plugins are active, and which ones are broken."""

from __future__ import annotations

import json
from typing import Any

import click


@click.group()
def plugins() -> None:
    """List the installed plugins and check that they load.

    \b
    Example:
      ganaug plugins list
      ganaug plugins list --plugin my_package.my_plugin --json
    """


@plugins.command("list")
@click.option("--plugin", "-p", "extra", multiple=True, help="Also load this plugin module (repeatable).")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print a JSON list of {name, version, origin, hooks} (broken plugins also have 'error'; "
    "plugins that declare augment options also 'options').",
)
def list_plugins(extra: tuple[str, ...], as_json: bool) -> None:
    """Show every plugin: name, version, where it came from, the hooks it implements and the
    options it declares for 'ganaug augment' (flag, type, default).

    Plugins come from ganaug's built-ins, then entry points in group 'ganaug' (unless
    GANAUG_DISABLE_PLUGIN_AUTOLOAD=1), then GANAUG_PLUGINS (comma-separated modules), then --plugin;
    names in GANAUG_DISABLE_PLUGINS (comma-separated) are skipped. Loading also checks them: a
    plugin that cannot be imported, has a wrong hook signature or an unknown (misspelt) hook name
    is listed as BROKEN with the reason, and the exit status is then 1.

    \b
    Example:
      ganaug plugins list --json
    """
    from ganaug.plugins import _escape_hatch, get_plugin_manager, plugin_infos

    pm = get_plugin_manager(list(extra), strict=False)
    infos = plugin_infos(pm)
    _add_options(pm, infos)
    if as_json:
        click.echo(json.dumps(infos, indent=2))
    else:
        _print_table(infos)
    for info in infos:
        if "error" in info:
            click.echo(f"error: {info['error']}; {_escape_hatch(info['name'], info['origin'])}", err=True)
    if pm.broken:
        raise SystemExit(1)


def _add_options(pm: Any, infos: list[dict]) -> None:
    """``info["options"]``: the options each plugin declares (``ganaug_add_options``)."""
    from ganaug.augment.options import declared_options
    from ganaug.errors import GanaugError

    try:
        declared = declared_options(pm)
    except GanaugError as exc:
        click.echo(f"warning: {exc}", err=True)
        return
    by_name = {i["name"]: i for i in infos}
    for plugin, opt in declared:
        entry = {"name": opt.name, "flag": opt.flag_name, "type": getattr(opt.type, "__name__", "value"),
                 "default": opt.default, "help": opt.help}  # fmt: skip
        by_name[plugin].setdefault("options", []).append(entry)


def _print_table(infos: list[dict]) -> None:
    rows = [
        (
            i["name"],
            i["version"] or "-",
            i["origin"],
            f"BROKEN: {i['error']}" if "error" in i else ", ".join(i["hooks"]) or "-",
        )
        for i in infos
    ]
    header = ("NAME", "VERSION", "ORIGIN", "HOOKS")
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(3)]
    for row in [header, *rows]:
        click.echo("  ".join(f"{cell:{w}s}" for cell, w in zip(row[:3], widths, strict=True)) + "  " + row[3])
    for info in infos:
        for opt in info.get("options", []):
            click.echo(f"  {info['name']}: {opt['flag']} {opt['type'].upper()} (default {opt['default']!r})")
