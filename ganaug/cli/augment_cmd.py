"""``ganaug augment``: mix GAN samples into a dataset, through plugins."""

from __future__ import annotations

import contextlib
import json
import sys

import click

from ganaug.cli.common import (
    Number,
    config_option,
    echo,
    fail_usage,
    number,
    quiet_option,
    seed_option,
    warn,
)
from ganaug.limits import BATCH, TRUNCATION, UNIT


def _split_filters(values: tuple[str, ...]) -> list[str]:
    return [f.strip() for v in values for f in v.split(",") if f.strip()]


@click.command()
@click.argument("data", nargs=-1, type=click.Path(path_type=str))
@click.option(
    "--generator",
    "-g",
    type=click.Path(path_type=str),
    help="Generator: a generator.onnx, a run directory or a weights .safetensors file (required).",
)
@click.option("--out", "-o", "out", required=True, type=click.Path(path_type=str), help="Output folder.")
@click.option(
    "--strategy",
    default="not majority",
    show_default=True,
    help="Synthetic images per class: a ratio of synthetic to real (0.5), 'not majority', 'minority', "
    "'not minority', 'all', or a class -> target-count mapping (inline JSON/YAML or a file).",
)
@click.option(
    "--max-synthetic-ratio",
    type=number(float, 0, 1e6),
    default=None,
    help="Cap: at most this many synthetic images per real image of a class.",
)
@click.option(
    "--transforms",
    type=click.Path(dir_okay=False, path_type=str),
    default=None,
    help="albumentations pipeline (saved with A.save, .yaml/.json) applied to real images.",
)
@click.option(
    "--synthetic-transforms",
    type=click.Path(dir_okay=False, path_type=str),
    default=None,
    help="albumentations pipeline applied to synthetic images.",
)
@click.option(
    "--filter",
    "filters",
    multiple=True,
    help="Reject synthetic images: confidence, near-duplicate (comma-separated or repeated).",
)
@click.option(
    "--min-confidence",
    type=Number(UNIT),
    default=0.5,
    show_default=True,
    help="--filter confidence: minimum classifier probability of the intended class.",
)
@click.option(
    "--filter-classifier",
    type=click.Path(dir_okay=False, path_type=str),
    default=None,
    help="--filter confidence: an ONNX or ganaug .safetensors classifier (default: train one on DATA).",
)
@click.option(
    "--near-duplicate-threshold",
    type=Number(UNIT),
    default=0.03,
    show_default=True,
    help="--filter near-duplicate: reject below this RMS pixel distance (0-1) to a training image.",
)
@click.option(
    "--max-attempts",
    type=number(float, 1, 1e6),
    default=10.0,
    show_default=True,
    help="With filters, draw at most this many candidates per requested synthetic image.",
)
@click.option(
    "--fill",
    type=click.Choice(["none", "best"]),
    default="none",
    show_default=True,
    help="When the filters leave a class short after --max-attempts: none (write fewer, warn) or best "
    "(add that class's most confident rejected candidates; never near-duplicates; marked 'fallback' "
    "in the manifest, counted under 'filled' in summary.json).",
)
@click.option(
    "--truncation", type=Number(TRUNCATION), default=None, help="Truncation trick: redraw |z| above this."
)
@click.option(
    "--soft-labels",
    is_flag=True,
    help="Record a teacher's class probabilities of each synthetic image (manifest 'soft_label'; NPZ "
    "'soft_labels'): --teacher, else the confidence filter's classifier, else one trained on DATA.",
)
@click.option(
    "--teacher",
    type=click.Path(dir_okay=False, path_type=str),
    default=None,
    help="--soft-labels: an ONNX or ganaug .safetensors classifier.",
)
@click.option(
    "--policy-file",
    type=click.Path(dir_okay=False, path_type=str),
    default=None,
    help="Apply a mixing policy file (tuned_policy.json from 'ganaug eval uplift --tune'): its "
    "strategy, ratio cap, filters, truncation and soft labels; flags given explicitly win.",
)
@click.option(
    "--format",
    "fmt",
    default="imagefolder",
    show_default=True,
    help="Output format: imagefolder or npz (plugins may add more).",
)
@click.option(
    "--copy-real", "real", flag_value="copy", default=True, help="Copy the real images into OUT (default)."
)
@click.option("--link-real", "real", flag_value="link", help="Hard-link the real images instead of copying.")
@click.option("--no-real", "real", flag_value="none", help="Write only the synthetic images.")
@click.option("--plugin", "-p", "plugins", multiple=True, help="Load a plugin module (repeatable).")
@click.option(
    "--plugin-option",
    "-O",
    "plugin_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="An option for plugins, e.g. -O confidence_steps=200 (repeatable).",
)
@click.option(
    "--batch-size", type=Number(BATCH), default=256, show_default=True, help="Generator batch size."
)
@click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:N or auto.")
@click.option("--overwrite", is_flag=True, help="Replace an OUT dataset that ganaug wrote.")
@click.option("--json", "as_json", is_flag=True, help="Print summary.json to stdout at the end.")
@click.option(
    "--shard",
    metavar="K/N",
    default=None,
    help="Write only part K (0-based) of N of this job, e.g. $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT; "
    "join the parts with --merge.",
)
@click.option(
    "--merge",
    is_flag=True,
    help="Join the part folders given as DATA (from --shard K/N runs) into OUT: one dataset, one "
    "manifest, equal to an unsharded run. PNGs are hard-linked from the parts where possible.",
)
@seed_option()
@click.option(
    "--checkpoint",
    default=None,
    help="With a run directory: best (lowest validation FID of its EMA snapshots), last, or a step.",
)
@quiet_option
@config_option
def augment(
    data: tuple[str, ...],
    generator: str | None,
    out: str,
    strategy: str,
    max_synthetic_ratio: float | None,
    transforms: str | None,
    synthetic_transforms: str | None,
    filters: tuple[str, ...],
    min_confidence: float,
    filter_classifier: str | None,
    near_duplicate_threshold: float,
    max_attempts: float,
    fill: str,
    truncation: float | None,
    soft_labels: bool,
    teacher: str | None,
    policy_file: str | None,
    fmt: str,
    real: str,
    plugins: tuple[str, ...],
    plugin_options: tuple[str, ...],
    batch_size: int,
    device: str,
    overwrite: bool,
    as_json: bool,
    shard: str | None,
    merge: bool,
    seed: int,
    checkpoint: str | None,
    quiet: bool,
) -> None:
    """Write OUT: the images of DATA plus synthetic images from a generator.

    OUT gets the real images (copied, linked, or left out), the synthetic ones, manifest.jsonl
    (path, label, source, generator_sha256, seed, z_index, transforms, plugins per image) and
    summary.json (counts per class before/after, strategy, plugins, versions). DATA is only read.
    OUT is written to a temporary folder and appears only when complete.

    \b
    Examples:
      ganaug augment images/ -g generator.onnx --out augmented/
      ganaug augment images/ -g runs/exp --out aug/ --strategy 0.5 \\
          --filter confidence,near-duplicate --min-confidence 0.8 \\
          --transforms real.yaml --synthetic-transforms synth.yaml --seed 1
      ganaug augment data.npz -g g.onnx --out aug/ --strategy '{"bag": 500}' --format npz

    \b
    A large job in N independent parts (each its own process or machine), then joined:
      ganaug augment images/ -g g.onnx --out parts/p0 --shard 0/2
      ganaug augment images/ -g g.onnx --out parts/p1 --shard 1/2
      ganaug augment --merge parts/p0 parts/p1 --out augmented/
    """
    import warnings

    from ganaug.augment import augment_dataset
    from ganaug.plugins import parse_plugin_options
    from ganaug.shard import merge_parts, parse_shard

    if merge:
        if generator or shard:
            fail_usage("--merge joins finished parts; it takes no --generator or --shard")
        if not data:
            fail_usage("--merge needs the part folders, e.g. ganaug augment --merge p0 p1 --out OUT")
        with contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext():
            summary = merge_parts(data, out, overwrite=overwrite, echo=lambda m: echo(m, quiet))
        _report(summary, out, as_json, quiet)
        return
    if len(data) != 1:
        fail_usage(f"augment takes one DATA path, got {len(data)} (several only with --merge)")
    if not generator:
        fail_usage("missing option --generator/-g (a generator.onnx, run directory or .safetensors)")
    if checkpoint is not None:
        from ganaug.snapshots import select_weights

        generator = str(select_weights(generator, checkpoint))

    if policy_file:
        from ganaug.tune import apply_policy_file

        ctx = click.get_current_context()
        keys = ("strategy", "max_synthetic_ratio", "filters", "min_confidence", "truncation", "soft_labels")
        default = click.core.ParameterSource.DEFAULT
        explicit = {k for k in keys if ctx.get_parameter_source(k) != default}
        given = {k: v for k, v in locals().items() if k in keys}
        applied = apply_policy_file(policy_file, given, explicit)
        strategy, max_synthetic_ratio, filters = (applied[k] for k in keys[:3])
        min_confidence, truncation, soft_labels = (applied[k] for k in keys[3:])
        echo(f"policy {applied['_policy'].name!r} from {policy_file}", quiet)
        if not applied["_policy"].uses_gan():
            warn(f"{policy_file}: the tuned policy adds no GAN samples (they did not help on validation)")
    # With --json, stdout carries only the JSON: progress lines (and any plugin output) go to stderr.
    to_stderr = contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext()
    with warnings.catch_warnings(record=True) as caught, to_stderr:
        warnings.simplefilter("always")
        summary = augment_dataset(
            data[0],
            generator,
            out,
            strategy=strategy,
            max_synthetic_ratio=max_synthetic_ratio,
            transforms=transforms,
            synthetic_transforms=synthetic_transforms,
            filters=_split_filters(filters),
            min_confidence=min_confidence,
            filter_classifier=filter_classifier,
            near_duplicate_threshold=near_duplicate_threshold,
            max_attempts=max_attempts,
            fill=fill,
            fmt=fmt,
            real=real,
            plugins=list(plugins),
            plugin_options=parse_plugin_options(plugin_options),
            seed=seed,
            truncation=truncation,
            overwrite=overwrite,
            batch_size=batch_size,
            device=None if device == "auto" else device,
            progress=not quiet,
            echo=lambda m: echo(m, quiet),
            warn=warn,
            shard=parse_shard(shard),
            soft_labels=soft_labels,
            teacher=teacher,
        )
    for w in caught:
        if not issubclass(w.category, DeprecationWarning):
            warn(str(w.message).splitlines()[0])
    _report(summary, out, as_json, quiet)


def _report(summary: dict, out: str, as_json: bool, quiet: bool) -> None:
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    counts = summary["counts"]
    if "before" not in counts:  # merged parts of ganaug sample
        click.echo(f"wrote {sum(counts.values())} images ({len(counts)} classes) to {out}")
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
    if not quiet and not sum(counts.get("planned", {}).values()):
        click.echo(no_synthetic_hint(summary), err=True)


def no_synthetic_hint(summary: dict) -> str:
    """Why a run wrote no synthetic images, and the option that adds some."""
    before = summary["counts"]["before"]
    strategy = summary.get("strategy")
    sizes = set(before.values())
    why = f"every class already has {sizes.pop()} images" if len(sizes) == 1 else "for these class counts"
    return (
        f"note: strategy {strategy!r} asks for no synthetic images: {why}. "
        "Pass a ratio such as --strategy 0.5 (half a synthetic image per real one) to add synthetic images."
    )
