"""``ganaug demo``: the whole job (train, export, augment, evaluate, report) on the embedded data."""

from __future__ import annotations

import sys
import warnings

import click

from ganaug.cli.common import config_option, echo, quiet_option, seed_option, warn

DEFAULT_OUT = "runs/demo"


@click.command()
@click.option(
    "--out",
    "-o",
    default=None,
    type=click.Path(file_okay=False, path_type=str),
    help=f"Output folder [default: {DEFAULT_OUT}, or {DEFAULT_OUT}2, ... when taken].",
)
@click.option(
    "--quick", is_flag=True, help="Smoke test in about a minute on 2 CPU cores (tiny GAN, one seed)."
)
@click.option("--overwrite", is_flag=True, help="Replace an earlier demo in --out.")
@config_option
@seed_option()
@quiet_option
def demo(out: str | None, quick: bool, overwrite: bool, seed: int, quiet: bool) -> None:
    """Run ganaug's main job end to end on the Fashion-MNIST subset that ships with it.

    Makes an imbalanced copy of the data, trains a conditional GAN on it, exports it to ONNX,
    measures whether its samples help a classifier (real vs real + GAN, same classical
    augmentation), augments the copy through the plugins (balancing, albumentations, filters)
    and writes report.md / report.html. No download, no GPU needed: a few minutes on a laptop
    CPU, about one with --quick (whose numbers are a smoke test, not evidence).

    \b
    Examples:
      ganaug demo --quick
      ganaug demo --out runs/demo --seed 1
    """
    from ganaug.demo import next_free_dir, run_demo, verdict

    target = next_free_dir(DEFAULT_OUT) if out is None else out
    progress = not quiet and sys.stderr.isatty()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = run_demo(
                target,
                quick=quick,
                seed=seed,
                overwrite=overwrite,
                progress=progress,
                echo=lambda m: echo(m, quiet),
                warn=warn,
            )
        finally:
            for w in caught:
                if not quiet and issubclass(w.category, UserWarning):
                    warn(str(w.message))
    f = result.files
    h = result.headline
    echo(f"\nganaug demo{' --quick' if quick else ''} finished in {result.wall_seconds:.0f} s", quiet)
    with_gan = h[f"balanced_accuracy_{h['arm']}"]
    echo(
        f"balanced accuracy: real only {h['balanced_accuracy_real']:.1f}%, "
        f"real + GAN {with_gan:.1f}% ({h['delta_balanced_accuracy']:+.1f} points)",
        quiet,
    )
    echo(verdict(h, quick), quiet)
    for label, key in (
        ("samples", "samples"),
        ("loss curves", "loss_curves"),
        ("generator", "generator"),
        ("augmented", "augmented"),
        ("eval", "eval_report"),
        ("run dir", "run_dir"),
    ):
        echo(f"  {label:12s} {f[key]}", quiet)
    click.echo(f"report: {f['report']} (and {f['report_html'].name})")
