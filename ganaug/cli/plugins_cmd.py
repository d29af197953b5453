"""``ganaug plugins``: what plugins are active."""

from __future__ import annotations

import json

import click


@click.group()
def plugins() -> None:
    """List and check plugins.

    \b
    Example:
      ganaug plugins list
      ganaug plugins list --plugin my_package.my_plugin --json
    """


@plugins.command("list")
@click.option("--plugin", "-p", "extra", multiple=True, help="Also load this plugin module (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of {name, version, origin, hooks}.")
def list_plugins(extra: tuple[str, ...], as_json: bool) -> None:
    """Show every registered plugin: name, version, where it came from, and the hooks it implements.

    Plugins come from ganaug's built-ins, then entry points in group 'ganaug' (unless
    GANAUG_DISABLE_PLUGIN_AUTOLOAD=1), then GANAUG_PLUGINS (comma-separated modules), then --plugin.
    Loading also checks them: an unknown (misspelt) hook name is an error.

    \b
    Example:
      ganaug plugins list --json
    """
    from ganaug.plugins import get_plugin_manager, plugin_infos

    infos = plugin_infos(get_plugin_manager(list(extra)))
    if as_json:
        click.echo(json.dumps(infos, indent=2))
        return
    name_w = max(len(i["name"]) for i in infos)
    ver_w = max(len(str(i["version"] or "-")) for i in infos)
    for info in infos:
        click.echo(
            f"{info['name']:{name_w}s}  {info['version'] or '-':{ver_w}s}  {info['origin']:10s}  "
            + ", ".join(info["hooks"])
        )
