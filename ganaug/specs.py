"""Command specs: every option is declared once, as a dataclass field, and the CLI is built from it.

A spec is a plain dataclass whose fields carry their CLI details in ``metadata`` (see :func:`option`):
help text, flag spellings, bounds (a :class:`ganaug.limits.Limit`), a converter for structured values
and old spellings kept as deprecated aliases. From that one definition:

- :func:`click_options` adds one click option (or argument) per field, plus ``--config FILE``;
- :func:`spec_from_params` turns click's parsed values into the spec;
- :func:`spec_to_config` gives the YAML mapping a run saves (``config.yaml``), whose keys are the
  fields, so ``--config`` of that file reproduces the spec (:func:`parse_spec` is the same parse
  without a command, for tests and tools).

Concepts shared by several commands (device, seed, min_confidence, ...) are field factories here, so
they have one name, one help text and one default.

Example::

    @dataclass
    class EchoSpec:
        text: str = option("hi", help="What to print.")
        times: int = option(1, limit=Limit(int, 1, 10), help="How often.")
        seed: int = seed()
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from ganaug.errors import UsageError
from ganaug.limits import BIG, SEED, TEMPERATURE, TRUNCATION, UNIT, Limit, read_yaml_mapping

META_KEY = "ganaug.option"
F = TypeVar("F", bound=Callable[..., Any])
S = TypeVar("S")


@dataclasses.dataclass(frozen=True)
class OptionInfo:
    """The CLI side of one spec field (stored in the field's metadata under :data:`META_KEY`).

    ``flags``: click declarations (default ``--field-name``; ``"--x/--no-x"`` for an on/off pair).
    ``limit``: bounds of a number. ``convert``: raw value (command-line string, or a config file's
    value) -> field value, raising :class:`UsageError`; ``multiple`` repeats the option and
    ``collect`` turns the tuple of converted values into the field value (default: a list).
    ``aliases``: old config-key spellings, accepted with a deprecation warning. ``cli=False``: a
    library-only field (no option, not saved). ``registry``: a name passed through to a registry
    (the timm ``create_model`` idea): a callable giving the registered names, called only for
    ``--help`` (the command checks the name against it, after its cheap input checks).
    """

    help: str = ""
    flags: tuple[str, ...] = ()
    limit: Limit | None = None
    choices: tuple[str, ...] | None = None
    convert: Callable[[Any], Any] | None = None
    metavar: str | None = None
    multiple: bool = False
    collect: Callable[[tuple[Any, ...]], Any] | None = None
    argument: bool = False
    path: bool = False
    required: bool = False
    show_default: bool = True
    aliases: tuple[str, ...] = ()
    cli: bool = True
    registry: Callable[[], Sequence[str]] | None = None


def option(
    default: Any = dataclasses.MISSING, *, default_factory: Any = dataclasses.MISSING, **info: Any
) -> Any:
    """A spec field: ``dataclasses.field`` with the CLI details of :class:`OptionInfo` in its metadata."""
    return dataclasses.field(
        default=default, default_factory=default_factory, metadata={META_KEY: OptionInfo(**info)}
    )


def info_of(field: dataclasses.Field) -> OptionInfo:
    """The :class:`OptionInfo` of a field (a plain field gets the defaults)."""
    return field.metadata.get(META_KEY) or OptionInfo()


def cli_fields(spec_cls: type) -> list[dataclasses.Field]:
    """The fields of ``spec_cls`` that are command-line options, in declaration order."""
    return [f for f in dataclasses.fields(spec_cls) if info_of(f).cli]


# -- shared concepts: one definition each -------------------------------------------------------
#: ``--device``'s default for every command: a GPU when there is one, else the CPU.
DEVICE = "auto"


def device(default: str = DEVICE, help: str | None = None) -> Any:
    """``--device``: where torch runs (``auto``: a GPU when there is one; see :func:`resolve_device`)."""
    return option(default, help=help or "cpu, cuda, cuda:N or auto (a GPU when there is one).")


def resolve_device(name: str | None) -> str:
    """A ``--device`` value for torch: ``auto`` (or ``None``) -> ``cuda`` when available, else ``cpu``."""
    if name not in (None, "auto"):
        return str(name)
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def seed(default: int = 0) -> Any:
    """``--seed``: the random seed (the first one of a multi-seed run)."""
    return option(default, limit=SEED, help="Random seed.")


#: ``--min-confidence``'s default for every command (``augment``'s confidence filter declares the same).
MIN_CONFIDENCE = 0.9


def min_confidence(default: float = MIN_CONFIDENCE) -> Any:
    """``--min-confidence``: the confidence filter's threshold."""
    return option(default, limit=UNIT, help="Confidence filter: minimum probability of the intended class.")


def feature_steps(default: int = 3000) -> Any:
    """``--feature-steps``: training steps of the cached domain feature extractor."""
    return option(
        default, limit=Limit(int, 1, BIG), help="Training steps of the (cached) domain feature extractor."
    )


def classifier_steps(default: int = 2000, help: str = "Optimisation steps of every classifier.") -> Any:
    """``--classifier-steps``: optimisation steps of the fixed small CNN."""
    return option(default, limit=Limit(int, 1, BIG), help=help)


def n_per_class(
    default: int | None = 500,
    *,
    required: bool = False,
    low: int = 1,
    help: str = "Synthetic images per class.",
) -> Any:
    """``--n-per-class/-n``: synthetic images per class."""
    return option(
        default, flags=("--n-per-class", "-n"), limit=Limit(int, low, BIG), required=required, help=help
    )


def truncation() -> Any:
    """``--truncation``: the truncation trick of latent sampling."""
    return option(None, limit=TRUNCATION, help="Truncation trick: redraw latent values with |z| > T.")


def temperature() -> Any:
    """``--temperature``: the latent standard deviation of sampling."""
    return option(
        None,
        limit=TEMPERATURE,
        help="Sampling temperature: latent standard deviation (default: the generator's own, else 1.0).",
    )


#: Dataset formats every ganaug writer knows; ``png`` is the old spelling of ``imagefolder``.
DATASET_FORMATS = ("imagefolder", "npz")
_FORMAT_ALIASES = {"png": "imagefolder"}


def _warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


def check_format(value: Any, choices: Sequence[str] | None = DATASET_FORMATS) -> str:
    """A ``--format`` value: ``png`` -> ``imagefolder`` (deprecated spelling, with a warning); with
    ``choices``, anything else outside them is a UsageError (``None``: plugins may add formats)."""
    text = str(value).strip()
    if text in _FORMAT_ALIASES:
        _warn(f"--format {text} is deprecated, use --format {_FORMAT_ALIASES[text]}")
        text = _FORMAT_ALIASES[text]
    if choices is not None and text not in choices:
        raise UsageError(f"--format must be one of {', '.join(choices)}, got {value!r}")
    return text


def dataset_format(
    default: str = "imagefolder",
    choices: Sequence[str] | None = DATASET_FORMATS,
    help: str = "Output format: imagefolder (a folder per class) or npz (one data.npz).",
) -> Any:
    """``--format``: the output dataset format (``imagefolder`` | ``npz``; ``png`` accepted as the
    deprecated spelling of ``imagefolder``). ``choices=None`` lets plugins add formats."""
    allowed = tuple(choices) if choices is not None else None
    return option(
        default,
        convert=lambda v: check_format(v, allowed),
        metavar="[" + "|".join(allowed) + "]" if allowed else "FORMAT",
        aliases=("fmt",),
        help=help,
    )


def hflip(default: bool = False, help: str = "Random horizontal flips (mirror-symmetric data only).") -> Any:
    """``--hflip/--no-hflip``: random horizontal flips in the classical augmentation."""
    return option(default, flags=("--hflip/--no-hflip",), help=help)


def generator(required: bool = True, help: str = "Generator: run dir, .safetensors or .onnx.") -> Any:
    """``--generator/-g``: a run dir, weights or ONNX generator."""
    return option(None, flags=("--generator", "-g"), path=True, required=required, help=help)


def out_dir(required: bool = False, help: str = "Output folder.", default: str | None = None) -> Any:
    """``--out/-o``: the folder a command writes to."""
    return option(default, flags=("--out", "-o"), path=True, required=required, help=help)


# -- config files ---------------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    """A YAML-safe copy: dataclasses as mappings, tuples as lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _plain(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if hasattr(value, "__fspath__"):
        return str(value)
    return value


def spec_to_config(spec: Any) -> dict[str, Any]:
    """The spec as the mapping ``--config`` reads back (keys: the option fields' names)."""
    return {f.name: _plain(getattr(spec, f.name)) for f in cli_fields(type(spec))}


def config_values(
    spec_cls: type, data: dict[str, Any], source: str, command: str, warn: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """A config mapping -> click ``default_map`` entries: keys checked (aliases renamed, with a
    warning), structured values only where the field takes them."""
    fields = {f.name: f for f in cli_fields(spec_cls)}
    flag_names = {flag: name for name, f in fields.items() for flag in _long_flag_names(f)}
    aliases = {a: name for name, f in fields.items() for a in info_of(f).aliases}
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = str(key).lstrip("-").replace("-", "_")
        if name not in fields and name in flag_names:  # the option's own flag: per-class, policy
            name = flag_names[name]
        if name not in fields and name in aliases:
            if warn is not None:
                warn(f"{source}: option {key!r} is deprecated, use {aliases[name]!r}")
            name = aliases[name]
        if name not in fields:
            raise UsageError(f"{source}: unknown option {key!r} for 'ganaug {command}'")
        info = info_of(fields[name])
        if info.multiple:
            value = [value] if not isinstance(value, list) else value
        elif isinstance(value, (dict, list)) and info.convert is None:
            raise UsageError(f"{source}: option {key!r} takes a single value, got {type(value).__name__}")
        out[name] = value
    return out


def _flags(field: dataclasses.Field) -> tuple[str, ...]:
    """A field's click declarations (default ``--field-name``)."""
    return info_of(field).flags or (f"--{field.name.replace('_', '-')}",)


def _long_flag_names(field: dataclasses.Field) -> list[str]:
    """A field's long flags as config keys (``--per-class`` -> ``per_class``; ``--x/--no-x`` -> ``x``)."""
    info = info_of(field)
    if info.argument:
        return []
    names = []
    for flag in _flags(field):
        first = flag.split("/")[0]
        if first.startswith("--"):
            names.append(first[2:].replace("-", "_"))
    return names


# -- click ----------------------------------------------------------------------------------------
class Number(click.ParamType):
    """A finite int/float option within a :class:`ganaug.limits.Limit` (no NaN, inf, lists, bools).

    Values from ``--config`` (click's ``default_map``) go through the same conversion.
    """

    def __init__(self, limit: Limit) -> None:
        self.limit = limit
        self.name = "integer" if limit.kind is int else "float"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value is None:
            return None
        name = f"--{param.name.replace('_', '-')}" if param is not None and param.name else "value"
        try:
            return self.limit.check(name, value)
        except UsageError as exc:
            self.fail(str(exc).removeprefix(f"{name} "), param, ctx)


def _click_type(field: dataclasses.Field, info: OptionInfo) -> Any:
    if info.convert is not None:
        return Converted(info.convert, info.metavar or "VALUE")
    if info.limit is not None:
        return Number(info.limit)
    if info.choices is not None:
        return click.Choice(list(info.choices))
    if info.path:
        return click.Path(path_type=str)
    return None


class Converted(click.ParamType):
    """Any value through a spec field's ``convert`` (the same path for flags and config files)."""

    def __init__(self, fn: Callable[[Any], Any], name: str) -> None:
        self.fn, self.name = fn, name

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return self.fn(value)
        except UsageError as exc:
            self.fail(str(exc), param, ctx)


def _default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        value = field.default_factory()
        return tuple(value) if isinstance(value, list) else (None if isinstance(value, dict) else value)
    return None


class Registered(click.Option):
    """An option whose value is a registry name; ``--help`` lists the registered names (the
    registry is imported only then)."""

    def __init__(self, *args: Any, registry: Callable[[], Sequence[str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.registry = registry
        self.base_help = self.help or ""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        self.help = f"{self.base_help} Registered: {', '.join(self.registry())}."
        return super().get_help_record(ctx)


def _param(field: dataclasses.Field) -> Callable[[F], F]:
    info = info_of(field)
    kind = _click_type(field, info)
    if info.argument:  # ``multiple``: any number of them (nargs=-1)
        nargs = -1 if info.multiple else 1
        return click.argument(field.name, type=kind, required=info.required, nargs=nargs)
    flags = _flags(field)
    kwargs: dict[str, Any] = {"help": info.help, "show_default": info.show_default, "required": info.required}
    default = _default(field)
    if field.type in ("bool", bool) and "/" not in flags[0]:
        kwargs["is_flag"] = True
    if info.multiple:
        kwargs.update(multiple=True, default=default or ())
    else:
        kwargs["default"] = default
    if kind is not None:
        kwargs["type"] = kind
    if info.metavar:
        kwargs["metavar"] = info.metavar
    if info.registry is not None:
        kwargs.update(cls=Registered, registry=info.registry, metavar=info.metavar or "NAME")
    return click.option(*flags, field.name, **kwargs)


def _subcommand_path(ctx: click.Context) -> str:
    """``eval uplift`` for ``ganaug eval uplift`` (the root's name depends on how it was started)."""
    names = []
    while ctx.parent is not None:
        names.append(ctx.info_name or "")
        ctx = ctx.parent
    return " ".join(reversed(names))


def _config_param(spec_cls: type) -> Callable[[F], F]:
    def load(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            data = read_yaml_mapping(value)
            values = config_values(
                spec_cls,
                data,
                value,
                _subcommand_path(ctx),
                warn=lambda m: click.echo(f"warning: {m}", err=True),
            )
        except UsageError as exc:
            raise click.BadParameter(str(exc)) from None
        ctx.default_map = {**(ctx.default_map or {}), **values}
        return value

    return click.option(
        "--config",
        type=click.Path(dir_okay=False),
        is_eager=True,
        expose_value=False,
        callback=load,
        help="YAML file whose keys are this command's options (e.g. a saved config.yaml); flags win.",
    )


def click_options(spec_cls: type) -> Callable[[F], F]:
    """Decorator: one click option (or argument) per option field of ``spec_cls``, in declaration
    order, plus ``--config FILE``. The command receives the values under the fields' names; pass
    them to :func:`spec_from_params`."""

    def decorate(func: F) -> F:
        for field in reversed(cli_fields(spec_cls)):
            func = _param(field)(func)
        return _config_param(spec_cls)(func)

    return decorate


def spec_from_params(spec_cls: type[S], params: dict[str, Any], **extra: Any) -> S:
    """Build the spec from click's values (``params`` loses the fields it uses; what stays are the
    command's own options, such as ``quiet``). ``extra`` sets library-only fields."""
    values: dict[str, Any] = dict(extra)
    for field in cli_fields(spec_cls):
        value = params.pop(field.name)
        info = info_of(field)
        if info.multiple:
            value = info.collect(tuple(value)) if info.collect else list(value)
        values[field.name] = value
    return spec_cls(**values)


def parse_spec(spec_cls: type[S], args: Sequence[str], command: str = "spec") -> S:
    """The spec that ``args`` (flags, ``--config FILE``) give, parsed exactly as the command does."""
    cmd = click.command(command)(click_options(spec_cls)(lambda **_kw: None))
    try:
        ctx = cmd.make_context(command, list(args))
    except click.ClickException as exc:
        raise UsageError(exc.format_message()) from None
    return spec_from_params(spec_cls, dict(ctx.params))


def save_spec(spec: Any, path: Any) -> None:
    """Write :func:`spec_to_config` as YAML (atomically)."""
    from ganaug.fileio import atomic_write_yaml

    atomic_write_yaml(path, spec_to_config(spec))


__all__ = [
    "DATASET_FORMATS",
    "Converted",
    "Number",
    "OptionInfo",
    "Registered",
    "check_format",
    "classifier_steps",
    "cli_fields",
    "click_options",
    "config_values",
    "dataset_format",
    "device",
    "feature_steps",
    "generator",
    "hflip",
    "info_of",
    "min_confidence",
    "n_per_class",
    "option",
    "out_dir",
    "parse_spec",
    "resolve_device",
    "save_spec",
    "seed",
    "spec_from_params",
    "spec_to_config",
    "temperature",
    "truncation",
]
