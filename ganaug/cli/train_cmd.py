"""``ganaug train``: train a conditional GAN on a labelled image dataset."""

from __future__ import annotations

import warnings

import click

from ganaug.cli.common import config_option, echo, quiet_option, warn

ARCHS = ["mlp", "dcgan", "resnet"]
LOSSES = ["minimax", "ns", "hinge", "wgan-gp", "lsgan"]


def _betas(_ctx: click.Context, _param: click.Parameter, value: object) -> tuple[float, float] | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        parts = [float(v) for v in value]
    else:
        try:
            parts = [float(v) for v in str(value).split(",")]
        except ValueError:
            raise click.BadParameter("expected two numbers like 0.5,0.999") from None
    if len(parts) != 2:
        raise click.BadParameter("expected two numbers like 0.5,0.999")
    return parts[0], parts[1]


@click.command(context_settings={"show_default": True})
@click.argument("data", required=False, type=click.Path(path_type=str))
@click.option("--out", "-o", default="runs/train", help="Run directory to create (or to resume).")
@config_option
@click.option("--labels", type=click.Path(dir_okay=False), help="IDX labels file when not beside the images.")
@click.option("--arch", type=click.Choice(ARCHS), default="dcgan", help="Model family.")
@click.option("--loss", type=click.Choice(LOSSES), default="hinge", help="GAN loss.")
@click.option("--image-size", type=int, default=None, help="Resize images to this square size.")
@click.option("--channels", type=click.Choice(["1", "3"]), default=None, help="Force grayscale or RGB.")
@click.option("--z-dim", type=int, default=128, help="Latent size.")
@click.option("--g-width", type=int, default=None, help="Generator base width (model default if unset).")
@click.option("--d-width", type=int, default=None, help="Discriminator base width.")
@click.option("--batch-size", type=int, default=64)
@click.option("--steps", type=int, default=3000, help="Total training steps (one G update each).")
@click.option("--d-steps", type=int, default=1, help="D updates per G update.")
@click.option("--lr-g", type=float, default=2e-4, help="Generator learning rate.")
@click.option("--lr-d", type=float, default=2e-4, help="Discriminator learning rate (TTUR: make it larger).")
@click.option("--betas", callback=_betas, default="0.5,0.999", help="Adam betas.")
@click.option(
    "--diffaugment",
    default="auto",
    help="DiffAugment policy: auto (on below 20k images), none, or items of color,translation,cutout.",
)
@click.option("--r1", type=float, default=0.0, help="R1 penalty weight gamma on real images (0: off).")
@click.option("--r1-every", type=int, default=4, help="Apply R1 every N steps (lazy regularisation).")
@click.option("--gp-weight", type=float, default=10.0, help="Gradient-penalty weight for wgan-gp.")
@click.option("--ema-decay", type=float, default=0.999, help="EMA of G used for samples and export (0: off).")
@click.option("--preset", type=click.Choice(["seed"]), default=None, help="seed: the seed article's MLP GAN.")
@click.option("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps.")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), default="auto")
@click.option("--channels-last/--no-channels-last", default=True, help="channels_last memory format.")
@click.option("--compile", is_flag=True, help="torch.compile G and D.")
@click.option("--sync-bn", is_flag=True, help="torchrun on GPUs: SyncBatchNorm over the global batch.")
@click.option("--seed", type=int, default=0, help="Random seed (a CPU run is repeatable).")
@click.option("--log-every", type=int, default=50, help="Steps between log rows (and host syncs).")
@click.option("--sample-every", type=int, default=500, help="Steps between sample grids.")
@click.option("--checkpoint-every", type=int, default=1000, help="Steps between checkpoints.")
@click.option(
    "--divergence-patience", type=int, default=20, help="Log intervals of a perfect D before stopping."
)
@click.option(
    "--resume", is_flag=True, help="Continue --out from its last checkpoint (--steps may raise the target)."
)
@click.option("--overwrite", is_flag=True, help="Start again in a non-empty --out (removes its run files).")
@quiet_option
@click.pass_context
def train(
    ctx: click.Context, data: str | None, out: str, resume: bool, overwrite: bool, quiet: bool, **options
):
    """Train a conditional GAN on DATA (class folders, CSV/JSONL, IDX or NPZ) into a run directory.

    The run directory gets config.yaml, classes.json, results.csv/.png, samples/step_*.png
    (one labelled row per class) and weights/{last,ema}.safetensors + state.json.
    Ctrl-C or SIGTERM writes a checkpoint and stops; --resume continues.

    \b
    Examples:
      ganaug train images/ --out runs/exp --steps 3000
      ganaug train ../shared/data/fashion-mnist/train-images-idx3-ubyte.gz --out runs/fm --arch resnet
      ganaug train --out runs/exp --resume --steps 6000
      ganaug train images/ --out runs/seed --preset seed
      torchrun --standalone --nproc_per_node=4 -m ganaug train images/ --out runs/exp
    """
    from ganaug.training import train as run_training

    source = click.core.ParameterSource
    explicit = {
        name
        for name in options
        if ctx.get_parameter_source(name) in (source.COMMANDLINE, source.DEFAULT_MAP, source.ENVIRONMENT)
    }
    if options.get("channels") is not None:
        options["channels"] = int(options["channels"])
    if data is None and not resume:
        raise click.UsageError("DATA is required unless --resume is given")
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
        ctx.exit((130 if result.interrupted == "SIGINT" else 143) if result.interrupted else 0)
    m = result.metrics
    if result.interrupted:
        echo(f"stopped by {result.interrupted} at step {result.step}; checkpoint written.", quiet=False)
        echo(f"resume with: ganaug train --out {out} --resume", quiet=False)
        ctx.exit(130 if result.interrupted == "SIGINT" else 143)
    echo(
        f"done: {result.step} steps in {result.elapsed_s:.0f}s; "
        f"D loss {m.get('loss_d', float('nan')):.3f}, G loss {m.get('loss_g', float('nan')):.3f}, "
        f"{m.get('img_per_s', 0):.0f} img/s",
        quiet,
    )
    for name, path in result.files.items():
        echo(f"  {name:12s} {path}", quiet)
    echo(f"next: ganaug export {out} --out {out}/generator.onnx", quiet)
