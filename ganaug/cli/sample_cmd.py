"""``ganaug sample``: write N synthetic images per class from a run dir, weights file or ``.onnx``.

"Load spec, call library, print": the options come from :class:`ganaug.sample_spec.SampleSpec`.
"""

from __future__ import annotations

from typing import Any

import click

from ganaug.cli.common import classes_written, echo, quiet_option
from ganaug.sample_spec import SampleSpec
from ganaug.specs import click_options, spec_from_params


@click.command()
@click_options(SampleSpec)
@click.option("--overwrite", is_flag=True, help="Replace an --out dataset that ganaug wrote.")
@quiet_option
def sample(overwrite: bool, quiet: bool, **params: Any) -> None:
    """Generate N images per class from SOURCE into --out, with manifest.jsonl and summary.json.

    SOURCE is a run directory (EMA weights), a .safetensors weights file, or an exported .onnx
    generator. The same --seed gives the same images from the torch weights and from their ONNX
    export. --out also gets config.yaml, the resolved options (--config OUT/config.yaml repeats
    the job).

    \b
    Example:
      ganaug sample runs/exp --out synth/ --n-per-class 500 --seed 1
      ganaug sample generator.onnx --out synth_npz -n 100 --classes Bag,Sneaker --format npz
      ganaug sample g.onnx --out part3 -n 100000 --seed 1 --shard 3/8   # then: augment --merge
      ganaug sample --config synth/config.yaml --out synth2
    """
    from ganaug.sample_spec import run_sample

    result = run_sample(spec_from_params(SampleSpec, params), overwrite=overwrite, progress=not quiet)
    echo(f"generator sha256 {result.generator_sha256[:16]}…, seed {result.seed}", quiet)
    click.echo(
        f"wrote {result.count} images ({classes_written(result.counts)}) to {result.out} "
        f"in {result.seconds:.1f}s"
    )
