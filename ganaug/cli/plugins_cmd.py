"""``ganaug plugins``: what plugins are active, and which ones are broken."""

from __future__ import annotations

import json

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
    help="Print a JSON list of {name, version, origin, hooks} (broken plugins also have 'error').",
)
def list_plugins(extra: tuple[str, ...], as_json: bool) -> None:
    """Show every plugin: name, version, where it came from, and the hooks it implements.

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
    if as_json:
        click.echo(json.dumps(infos, indent=2))
    else:
        _print_table(infos)
    for info in infos:
        if "error" in info:
            click.echo(f"error: {info['error']}; {_escape_hatch(info['name'], info['origin'])}", err=True)
    if pm.broken:
        raise SystemExit(1)


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
