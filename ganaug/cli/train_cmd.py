"""``ganaug train``: train a conditional GAN on a labelled image dataset."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import click

from ganaug.cli.common import echo, quiet_option, warn
from ganaug.errors import signal_exit_code
from ganaug.specs import cli_fields, click_options, spec_from_params
from ganaug.training.config import TrainConfig, architectures, losses


def check_registered(options: dict[str, Any]) -> None:
    """Validate ``arch`` and ``loss`` against the model and loss registries (one-line UsageError
    listing the registered names); the loss becomes its registered spelling (``wgan_gp`` ->
    ``wgan-gp``)."""
    from ganaug.errors import UsageError
    from ganaug.losses import get_loss

    arch = options.get("arch")
    if arch is not None and arch not in architectures():
        raise UsageError(f"unknown --arch {arch!r}; registered: {', '.join(architectures())}")
    if options.get("loss") is not None:
        try:
            options["loss"] = get_loss(options["loss"]).name
        except UsageError:
            raise UsageError(
                f"unknown --loss {options['loss']!r}; registered: {', '.join(losses())}"
            ) from None


def explicit_options(ctx: click.Context) -> set[str]:
    """The spec fields set on the command line, by ``--config`` or the environment (a preset fills
    in only the others; ``--resume`` warns about the ones it ignores)."""
    source = click.core.ParameterSource
    given = (source.COMMANDLINE, source.DEFAULT_MAP, source.ENVIRONMENT)
    return {f.name for f in cli_fields(TrainConfig) if ctx.get_parameter_source(f.name) in given}


@click.command(context_settings={"show_default": True})
@click_options(TrainConfig)
@click.option(
    "--resume", is_flag=True, help="Continue --out from its last checkpoint (--steps may raise the target)."
)
@click.option("--overwrite", is_flag=True, help="Start a ganaug run dir --out again (removes its run files).")
@quiet_option
@click.pass_context
def train(ctx: click.Context, resume: bool, overwrite: bool, quiet: bool, **params: Any) -> None:
    """Train a conditional GAN on DATA (class folders, CSV/JSONL, IDX or NPZ) into a run directory.

    The run directory gets config.yaml, classes.json, results.csv/.png, samples/step_*.png
    (one labelled row per class) and weights/{last,ema}.safetensors + state.json.
    Ctrl-C or SIGTERM writes a checkpoint and stops; --resume continues.

    \b
    Examples:
      ganaug train images/ --out runs/exp --steps 3000
      ganaug train fm-idx/train-images-idx3-ubyte.gz --out runs/fm --arch resnet
      ganaug train --out runs/exp --resume --steps 6000
      ganaug train images/ --out runs/seed --preset seed
      torchrun --standalone --nproc_per_node=4 -m ganaug train images/ --out runs/exp
    """
    from ganaug.cli.preflight import require_data, require_out_not_file, require_resumable

    explicit = explicit_options(ctx)
    cfg = spec_from_params(TrainConfig, params)
    if cfg.data is None and not resume:
        raise click.UsageError("DATA is required unless --resume is given")
    require_data(cfg.data, cfg.labels)  # before torch is imported: fast, and nothing is created
    require_out_not_file(cfg.out)
    if resume:
        require_resumable(cfg.out)
    options = {f.name: getattr(cfg, f.name) for f in cli_fields(TrainConfig)}
    data, out = options.pop("data"), options.pop("out")
    if not resume:
        check_registered(options)
    from ganaug.training import train as run_training

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = run_training(
                data, out, resume=resume, overwrite=overwrite, quiet=quiet, explicit=explicit, **options
            )
        finally:
            for w in caught:
                warn(str(w.message))
    if result.rank:  # under torchrun only rank 0 reports
        ctx.exit(signal_exit_code(result.interrupted) if result.interrupted else 0)
    m = result.metrics
    if result.interrupted:
        echo(f"stopped by {result.interrupted} at step {result.step}; checkpoint written.", quiet=False)
        echo(f"resume with: ganaug train --out {out} --resume", quiet=False)
        ctx.exit(signal_exit_code(result.interrupted))
    echo(
        f"done: {result.step} steps in {result.elapsed_s:.0f}s; "
        f"D loss {m.get('loss_d', float('nan')):.3f}, G loss {m.get('loss_g', float('nan')):.3f}, "
        f"{m.get('img_per_s', 0):.0f} img/s",
        quiet,
    )
    for name, path in result.files.items():
        echo(f"  {name:12s} {path}", quiet)
    chosen = _chosen_temperature(Path(result.run_dir))
    if chosen:
        echo(chosen, quiet)
    echo(f"next: ganaug export {out} --out {out}/generator.onnx", quiet)


def _chosen_temperature(run_dir: Path) -> str | None:
    """A line on the sampling temperature the last snapshot chose, when several were scored."""
    from ganaug.snapshots import read_index

    entries = (read_index(run_dir) or {}).get("snapshots") or [{}]
    scores = entries[-1].get("val_fid_by_temperature")
    if not scores:
        return None
    listed = ", ".join(f"{t} {v:.1f}" for t, v in scores.items())
    return (
        f"sampling temperature {entries[-1]['temperature']:g} (the default of sample/augment/export; "
        f"val FID on the training data by temperature: {listed})"
    )
