"""``ganaug augment``: mix GAN samples into a dataset, through plugins."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import click

from ganaug.cli.common import classes_written, echo, fail_usage, progress_to_stderr, quiet_option, warn
from ganaug.errors import GanaugError, UsageError
from ganaug.specs import click_options, spec_from_params


def _declared() -> tuple:
    """The options the plugins found now (built-ins, entry points, ``GANAUG_PLUGINS``) declare; a
    broken plugin costs only its flags here (the run itself reports it)."""
    from ganaug.augment.options import declared_options
    from ganaug.plugins import get_plugin_manager

    try:
        return declared_options(get_plugin_manager(strict=False))
    except GanaugError as exc:
        warn(f"plugin options left out of 'ganaug augment': {exc}")
        return ()


def _apply_policy(spec: Any, ctx: click.Context, quiet: bool) -> tuple[Any, Any, str | None]:
    """``--policy-file``: the spec with the policy's augment options, except those given explicitly
    (flags or ``--config``), the policy, and where its strategy came from (``None``: the flag)."""
    from ganaug.tune import apply_policy_file

    default = click.core.ParameterSource.DEFAULT
    names = {f.name for f in dataclasses.fields(spec)}
    explicit = {k for k in names if ctx.get_parameter_source(k) not in (default, None)}
    given = {k: getattr(spec, k) for k in names}
    applied = apply_policy_file(spec.policy_file, given, explicit)
    policy = applied.pop("_policy")
    changes = {k: (list(v) if k == "filters" else v) for k, v in applied.items() if k in names}
    spec = dataclasses.replace(spec, **changes)
    echo(f"policy {policy.name!r} from {spec.policy_file}{_training_note(policy)}", quiet)
    if not policy.uses_gan():
        from ganaug.tune import describe_baseline

        how = describe_baseline(policy)
        if "strategy" in explicit:
            warn(
                f"{spec.policy_file}: policy {policy.name!r} uses no GAN samples ({how}); "
                f"--strategy {spec.strategy} adds them anyway"
            )
        else:
            warn(
                f"{spec.policy_file}: policy {policy.name!r} uses no GAN samples: {how}, applied when "
                "training (e.g. ganaug.torch_dataset.policy_sampler); OUT gets the data unchanged"
            )
    origin = None if "strategy" in explicit else f"{spec.policy_file}: policy {policy.name!r}: strategy"
    return spec, policy, origin


def _training_note(policy: Any) -> str:
    """What a GAN policy sets for training on OUT (``synthetic_share=0.25``, ...), for the line that
    names the policy: augment writes the images, the training loop applies the rest."""
    from ganaug.eval.policy import MixPolicy
    from ganaug.eval.tune import training_options

    default = training_options(MixPolicy())
    changed = [f"{k}={v}" for k, v in training_options(policy).items() if v != default[k]]
    if not policy.uses_gan() or not changed:
        return ""
    return f"; when training on OUT also {', '.join(changed)} (its 'training' options, see policy_sampler)"


def _blame_strategy_source(exc: UsageError, origin: str | None) -> UsageError:
    """An error about ``--strategy`` whose value came from a policy file names the file instead.
    Done here, where the value's origin is known: the messages come from ganaug's planner and from
    the strategy plugins (third-party ones included), which only see the value."""
    text = str(exc)
    if origin is None or not text.startswith("--strategy"):
        return exc
    return UsageError(origin + text.removeprefix("--strategy"))


def _merge(
    data: list[str], out: str, generator: Any, shard: Any, overwrite: bool, as_json: bool, quiet: bool
) -> None:
    """``--merge``: join the part folders DATA into OUT."""
    from ganaug.shard import merge_parts

    if generator or shard:
        fail_usage("--merge joins finished parts; it takes no --generator or --shard")
    if not data:
        fail_usage("--merge needs the part folders, e.g. ganaug augment --merge p0 p1 --out OUT")
    with progress_to_stderr(as_json):
        summary = merge_parts(data, out, overwrite=overwrite, echo=lambda m: echo(m, quiet))
    _report(summary, out, as_json, quiet)


def _augment(
    real_flag: str | None, overwrite: bool, as_json: bool, merge: bool, quiet: bool, **params: Any
) -> None:
    """Write OUT: the images of DATA plus synthetic images from a generator.

    OUT gets the real images (copied, linked, or left out), the synthetic ones, manifest.jsonl
    (path, label, source, generator_sha256, seed, z_index, transforms, plugins per image),
    summary.json (counts per class before/after, strategy, plugins, versions) and config.yaml (these
    options: --config OUT/config.yaml --out OTHER repeats the run). DATA is only read. OUT is written
    to a temporary folder and appears only when complete. Plugins declare their own options (below,
    marked with the plugin's name; those of --plugin modules as -O KEY=VALUE).

    \b
    Examples:
      ganaug augment images/ -g generator.onnx --out augmented/
      ganaug augment images/ -g runs/exp --out aug/ --strategy 0.5 \\
          --filter confidence,near-duplicate --min-confidence 0.8 \\
          --transforms real.yaml --synthetic-transforms synth.yaml --seed 1
      ganaug augment data.npz -g g.onnx --out aug/ --strategy '{"Bag": 500}' --format npz
      ganaug augment --config aug/config.yaml --out aug2/

    \b
    A large job in N independent parts (each its own process or machine), then joined:
      ganaug augment images/ -g g.onnx --out parts/p0 --shard 0/2
      ganaug augment images/ -g g.onnx --out parts/p1 --shard 1/2
      ganaug augment --merge parts/p0 parts/p1 --out augmented/
    """
    import warnings

    from ganaug.augment import run_augment

    ctx = click.get_current_context()
    if merge:
        _merge(params["data"], params["out"], params["generator"], params["shard"], overwrite, as_json, quiet)
        return
    spec = spec_from_params(_SPEC, params)
    if real_flag is not None:
        spec.real = real_flag
    if len(spec.data) != 1:
        fail_usage(f"augment takes one DATA path, got {len(spec.data)} (several only with --merge)")
    if not spec.generator:
        fail_usage("missing option --generator/-g (a generator.onnx, run directory or .safetensors)")
    policy, strategy_origin = None, None
    if spec.policy_file:
        spec, policy, strategy_origin = _apply_policy(spec, ctx, quiet)
    with warnings.catch_warnings(record=True) as caught, progress_to_stderr(as_json):
        warnings.simplefilter("always")
        try:
            summary = run_augment(
                spec, overwrite=overwrite, progress=not quiet, echo=lambda m: echo(m, quiet), warn=warn,
                save_config=True,
            )  # fmt: skip
        except UsageError as exc:
            raise _blame_strategy_source(exc, strategy_origin) from None
    for w in caught:
        if not issubclass(w.category, DeprecationWarning):
            warn(str(w.message).splitlines()[0])
    # a no-GAN policy was warned about above: no hint to pass a ratio
    _report(summary, spec.out, as_json, quiet, hint=policy is None or policy.uses_gan())


def build_command(declared: tuple = ()) -> click.Command:
    """The ``augment`` command: :class:`~ganaug.augment.AugmentSpec`'s options, the options the
    plugins in ``declared`` declare, and the command's own (--merge, --overwrite, --json, -q)."""
    global _SPEC
    from ganaug.augment.options import spec_type

    _SPEC = spec_type(tuple(declared))
    func: Any = _augment
    for flag, mode, text in reversed(_REAL_FLAGS):
        func = click.option(flag, "real_flag", flag_value=mode, default=None, help=text)(func)
    func = click.option("--overwrite", is_flag=True, help="Replace an OUT dataset that ganaug wrote.")(func)
    func = click.option("--json", "as_json", is_flag=True, help="Print summary.json to stdout at the end.")(
        func
    )
    func = click.option(
        "--merge",
        is_flag=True,
        help="Join the part folders given as DATA (from --shard K/N runs) into OUT: one dataset, one "
        "manifest, equal to an unsharded run. PNGs are hard-linked from the parts where possible.",
    )(func)
    func = quiet_option(func)
    return click.command("augment")(click_options(_SPEC)(func))


_REAL_FLAGS = (
    ("--copy-real", "copy", "Old spelling of --real copy."),
    ("--link-real", "link", "Old spelling of --real link."),
    ("--no-real", "none", "Old spelling of --real none."),
)
_SPEC: Any = None
augment = build_command(_declared())


def _report(summary: dict, out: str, as_json: bool, quiet: bool, hint: bool = True) -> None:
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    counts = summary["counts"]
    if "before" not in counts:  # merged parts of ganaug sample
        click.echo(f"wrote {sum(counts.values())} images ({classes_written(counts)}) to {out}")
        return
    width = max([len(c) for c in counts["before"]] + [5])
    filled = summary.get("filled") or {}
    extra = f" {'(--fill best)':>14s}" if filled else ""
    echo(f"{'class':{width}s} {'before':>8s} {'synthetic':>10s} {'after':>8s}{extra}", quiet)
    for name in counts["before"]:
        extra = f" {filled.get(name, 0):14d}" if filled else ""
        echo(
            f"{name:{width}s} {counts['before'][name]:8d} {counts['synthetic'][name]:10d} "
            f"{counts['after'][name]:8d}{extra}",
            quiet,
        )
    total = sum(counts["after"].values())
    click.echo(f"wrote {total} images ({sum(counts['synthetic'].values())} synthetic) to {out}")
    if hint and not quiet and not sum(counts.get("planned", {}).values()):
        click.echo(no_synthetic_hint(summary), err=True)


def no_synthetic_hint(summary: dict) -> str:
    """Why a run wrote no synthetic images, and the option that adds some."""
    withheld = {c: w for c, w in (summary.get("withheld") or {}).items() if w.get("planned")}
    if withheld:  # the strategy asked for images; a class gate took them all (warned per class above)
        return (
            f"note: no synthetic images: every class the strategy asked for ({', '.join(withheld)}) was "
            "withheld (reasons above). Lower --min-class-fidelity, or train the generator longer."
        )
    before = summary["counts"]["before"]
    strategy = summary.get("strategy")
    sizes = set(before.values())
    why = f": every class already has {sizes.pop()} images" if len(sizes) == 1 else " for these class counts"
    return (
        f"note: strategy {strategy!r} asks for no synthetic images{why}. "
        "Pass a ratio such as --strategy 0.5 (half a synthetic image per real one) to add synthetic images."
    )
