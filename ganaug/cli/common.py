"""Shared CLI machinery: lazy command loading, error handling, ``--config``, ``--seed``, ``--quiet``."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ganaug.errors import GanaugError, Interrupted, UsageError
from ganaug.limits import SEED, Limit, check_betas, read_yaml_mapping
from ganaug.specs import Number  # re-exported: the bounded number type of every command

F = TypeVar("F", bound=Callable[..., Any])


class GanaugGroup(click.Group):
    """A click group whose subcommands are imported on first use, and which turns
    :class:`GanaugError` into a one-line message and exit code 1 (2 for usage errors)."""

    def __init__(self, *args: Any, lazy_commands: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})
        self._plugins_loaded = False

    def _load_plugin_commands(self) -> None:
        """Let plugins add commands (hook ``ganaug_register_commands``), once, on first need."""
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        from ganaug.plugins import add_plugin_commands

        try:
            add_plugin_commands(self)
        except GanaugError as exc:
            click.echo(f"warning: {exc}", err=True)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load_plugin_commands()
        available = {n for n, t in self.lazy_commands.items() if importlib.util.find_spec(t.split(":")[0])}
        return sorted(set(super().list_commands(ctx)) | available)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        target = self.lazy_commands.get(cmd_name)
        if target is None:
            self._load_plugin_commands()
            return self.commands.get(cmd_name)
        module_name, attr = target.split(":")
        command = getattr(importlib.import_module(module_name), attr)
        self.add_command(command, cmd_name)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except UsageError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(2)
        except Interrupted as exc:
            click.echo(f"interrupted: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except GanaugError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(1)
        except OSError as exc:  # disk full, permissions, ...: one line, not a traceback
            where = f"{exc.filename}: " if exc.filename else ""
            click.echo(f"error: {where}{exc.strerror or exc}", err=True)
            ctx.exit(1)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)


def _load_config(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """Read a YAML/JSON config whose keys are the command's long options; flags still win."""
    if value is None:
        return None
    try:
        data = read_yaml_mapping(value)
    except UsageError as exc:
        raise click.BadParameter(str(exc)) from None
    path = Path(value)
    known = {p.name: p for p in ctx.command.params if p.name}
    defaults: dict[str, Any] = {}
    for key, val in data.items():
        name = str(key).lstrip("-").replace("-", "_")
        if name not in known:
            raise click.BadParameter(f"{path}: unknown option {key!r} for 'ganaug {ctx.info_name}'")
        param = known[name]
        loose = (Betas, click.types.StringParamType)  # types that take a list/mapping as it is
        many = param.multiple or param.nargs != 1 or isinstance(param.type, loose)
        if isinstance(val, (dict, list)) and not many:
            raise click.BadParameter(f"{path}: option {key!r} takes a single value, got {type(val).__name__}")
        defaults[name] = val
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    return value


def number(kind: type = float, low: float | None = None, high: float | None = None, **open_: bool) -> Number:
    """Shorthand: ``number(int, 1, 4096)``; ``number(float, 0, low_open=True)`` for > 0."""
    return Number(Limit(kind, low, high, **open_))


class Betas(click.ParamType):
    """Two numbers in [0, 1): ``0.5,0.999`` on the command line, ``[0.5, 0.999]`` in a config file."""

    name = "b1,b2"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value is None:
            return None
        try:
            return check_betas(value)
        except UsageError as exc:
            self.fail(str(exc).removeprefix("--betas "), param, ctx)


def config_option(func: F) -> F:
    """Add ``--config FILE``: YAML whose keys equal the long options (flags override it)."""
    return click.option(
        "--config",
        type=click.Path(dir_okay=False),
        is_eager=True,
        expose_value=False,
        callback=_load_config,
        help="YAML file whose keys are this command's long options; flags override it.",
    )(func)


def seed_option(default: int | None = 0) -> Callable[[F], F]:
    """Add ``--seed N``."""
    return click.option("--seed", type=Number(SEED), default=default, show_default=True, help="Random seed.")


def quiet_option(func: F) -> F:
    """Add ``--quiet/-q``: no progress bars or informational output."""
    return click.option("--quiet", "-q", is_flag=True, help="Print only errors and the final result.")(func)


def progress_to_stderr(as_json: bool) -> contextlib.AbstractContextManager[Any]:
    """With ``--json``, stdout carries only the JSON: progress lines (and any plugin or library
    output) printed inside this context go to stderr."""
    return contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext()


def classes_written(counts: dict[str, int]) -> str:
    """``3 classes``, or ``2 of 10 classes`` when some of the generator's classes got no image."""
    written, known = sum(1 for n in counts.values() if n), len(counts)
    noun = "class" if known == 1 else "classes"
    return f"{written} {noun}" if written == known else f"{written} of {known} {noun}"


def echo(message: str, quiet: bool = False) -> None:
    """Print an informational line unless ``quiet``."""
    if not quiet:
        click.echo(message)


def fail_usage(message: str) -> None:
    """Raise a usage error (exit code 2) with a one-line message."""
    raise UsageError(message)


def warn(message: str) -> None:
    """Print a warning line to stderr."""
    click.echo(f"warning: {message}", err=True)


__all__ = [
    "Betas",
    "GanaugGroup",
    "Number",
    "config_option",
    "echo",
    "fail_usage",
    "number",
    "quiet_option",
    "seed_option",
    "warn",
]
