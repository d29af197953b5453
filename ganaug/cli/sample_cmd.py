"""``ganaug sample``: write N synthetic images per class from a run dir, weights file or ``.onnx``."""

from __future__ import annotations

import click

from ganaug.cli.common import Number, config_option, echo, fail_usage, number, quiet_option, seed_option
from ganaug.limits import BATCH, BIG, TRUNCATION


def _parse_classes(value: str | None) -> list[str] | None:
    if value is None:
        return None
    names = [part.strip() for part in value.split(",")]
    if not all(names):
        fail_usage(f"--classes has an empty entry: {value!r} (use a,b,c)")
    return names


@click.command()
@click.argument("source", type=click.Path(path_type=str))
@click.option("--out", "-o", required=True, type=click.Path(path_type=str), help="Output dataset folder.")
@click.option(
    "--n-per-class", "-n", required=True, type=number(int, 0, BIG), help="Images to generate per class."
)
@click.option("--classes", help="Comma-separated class names (or indices) to sample; default: all.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["png", "npz"]),
    default="png",
    show_default=True,
    help="png: a folder per class; npz: one data.npz (images, labels, classes).",
)
@click.option(
    "--truncation", type=Number(TRUNCATION), help="Truncation trick: redraw latent values with |z| > T."
)
@seed_option()
@click.option(
    "--batch-size", type=Number(BATCH), default=256, show_default=True, help="Images per generator call."
)
@click.option(
    "--device",
    default="auto",
    show_default=True,
    help="cpu, cuda[:N] or auto (torch device, or onnxruntime providers for .onnx).",
)
@click.option("--overwrite", is_flag=True, help="Replace an --out dataset that ganaug wrote.")
@click.option(
    "--shard",
    metavar="K/N",
    default=None,
    help="Write only part K (0-based) of N of this job; join the parts with ganaug augment --merge.",
)
@click.option(
    "--checkpoint",
    default=None,
    help="With a run directory: best (lowest validation FID of its EMA snapshots), last, or a step.",
)
@quiet_option
@config_option
def sample(
    source: str,
    out: str,
    n_per_class: int,
    classes: str | None,
    fmt: str,
    truncation: float | None,
    seed: int | None,
    batch_size: int,
    device: str,
    overwrite: bool,
    shard: str | None,
    checkpoint: str | None,
    quiet: bool,
) -> None:
    """Generate N images per class from SOURCE into --out, with manifest.jsonl and summary.json.

    SOURCE is a run directory (EMA weights), a .safetensors weights file, or an exported .onnx
    generator. The same --seed gives the same images from the torch weights and from their ONNX
    export.

    \b
    Example:
      ganaug sample runs/exp --out synth/ --n-per-class 500 --seed 1
      ganaug sample generator.onnx --out synth_npz -n 100 --classes bag,sneaker --format npz
      ganaug sample g.onnx --out part3 -n 100000 --seed 1 --shard 3/8   # then: augment --merge
    """
    from ganaug.sampling import sample_to_dataset
    from ganaug.shard import parse_shard
    from ganaug.snapshots import select_weights

    source = str(select_weights(source, checkpoint))

    if n_per_class < 0:
        fail_usage(f"--n-per-class must be >= 0, got {n_per_class}")
    if batch_size < 1:
        fail_usage(f"--batch-size must be >= 1, got {batch_size}")
    if truncation is not None and truncation <= 0:
        fail_usage(f"--truncation must be > 0, got {truncation}")
    if seed is not None and seed < 0:
        fail_usage(f"--seed must be >= 0, got {seed}")
    result = sample_to_dataset(
        source,
        out,
        n_per_class,
        classes=_parse_classes(classes),
        fmt="imagefolder" if fmt == "png" else "npz",
        truncation=truncation,
        seed=seed,
        batch_size=batch_size,
        device=device,
        overwrite=overwrite,
        progress=not quiet,
        shard=parse_shard(shard),
    )
    echo(f"generator sha256 {result.generator_sha256[:16]}…, seed {result.seed}", quiet)
    click.echo(
        f"wrote {result.count} images ({len(result.counts)} classes) to {result.out} in {result.seconds:.1f}s"
    )
