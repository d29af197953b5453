"""``ganaug data``: look at a dataset the way ganaug sees it."""

from __future__ import annotations

import json
import warnings

import click

from ganaug.cli.common import warn


@click.group()
def data() -> None:
    """Inspect datasets, or write the built-in example data.

    \b
    Example:
      ganaug data example fm-train
      ganaug data inspect fm-train --json
    """


@data.command()
@click.argument("out", type=click.Path(file_okay=False, path_type=str))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["folder", "idx", "npz"]),
    default="folder",
    show_default=True,
    help="folder: OUT/<class>/*.png (+ classes.json); idx: Fashion-MNIST's gz files; npz: OUT/<split>.npz.",
)
@click.option(
    "--split",
    type=click.Choice(["train", "test"]),
    default="train",
    show_default=True,
    help="train: 250 images per class; test: 100 per class.",
)
@click.option(
    "--imbalanced",
    is_flag=True,
    help="The demo's imbalanced draw of the training images: 250/25/40/55/70/85/100/115/130/145 per class.",
)
def example(out: str, fmt: str, split: str, imbalanced: bool) -> None:
    """Write the Fashion-MNIST subset that ships with ganaug to the new folder OUT.

    10 classes of 28x28 grayscale images (MIT, Copyright 2017 Zalando SE; the notice is written
    beside the data). Enough to try every command; the published numbers use the full dataset.
    Prints the path to give other commands.

    \b
    Examples:
      ganaug data example fm-train
      ganaug data example fm-test --split test
      ganaug data example fm-imbalanced --imbalanced
      ganaug data example fm-idx --format idx     # prints fm-idx/train-images-idx3-ubyte.gz
    """
    from ganaug.data.example import write_example

    click.echo(str(write_example(out, fmt=fmt, split=split, imbalanced=imbalanced)))


@data.command()
@click.argument("path", type=click.Path(path_type=str))
@click.option(
    "--labels", type=click.Path(dir_okay=False), help="IDX labels file, when not beside the images."
)
@click.option("--strict", is_flag=True, help="Fail on unreadable files instead of skipping them.")
@click.option("--no-cache", is_flag=True, help="Decode everything again; do not read or write the cache.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def inspect(path: str, labels: str | None, strict: bool, no_cache: bool, as_json: bool) -> None:
    """Show classes, counts per class, image sizes, channels, imbalance and problems of PATH.

    PATH is a folder of class folders, a CSV/JSONL manifest (path,label), an IDX images file
    (gz or raw; labels found beside it) or an NPZ file (images, labels[, classes]).

    \b
    Example:
      ganaug data inspect fm-train --json
      ganaug data inspect fm-idx/train-images-idx3-ubyte.gz
    """
    from ganaug.data import inspect_dataset

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = inspect_dataset(path, labels=labels, strict=strict, cache=not no_cache)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(f"source      {report['source']}")
    click.echo(f"images      {report['num_images']}")
    click.echo(f"classes     {report['num_classes']}")
    width = max(len(name) for name in report["class_counts"])
    for name, count in report["class_counts"].items():
        click.echo(f"  {name:{width}s} {count:8d}")
    click.echo("sizes       " + ", ".join(f"{k} ({v})" for k, v in report["image_sizes"].items()))
    click.echo("channels    " + ", ".join(f"{k} ({v})" for k, v in report["channels"].items()))
    ratio = report["imbalance_ratio"]
    click.echo(f"imbalance   {ratio:.2f} (largest / smallest class)" if ratio else "imbalance   n/a")
    for problem in report["problems"]:
        warn(problem)
