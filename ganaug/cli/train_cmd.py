"""``ganaug train``: train a conditional GAN on a labelled image dataset."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import click

from ganaug.cli.common import Betas, Number, config_option, echo, quiet_option, warn
from ganaug.limits import TRAIN_LIMITS as LIM


def _architectures() -> Sequence[str]:
    from ganaug.models import available_architectures

    return available_architectures()


def _losses() -> Sequence[str]:
    from ganaug.losses import LOSSES

    return LOSSES


class Registered(click.Option):
    """An option that passes a name through to a registry (the timm ``create_model`` idea): the
    registry validates it, and ``--help`` lists what it holds (imported only for ``--help``)."""

    def __init__(self, *args: Any, registry: Callable[[], Sequence[str]], **kwargs: Any) -> None:
        super().__init__(*args, metavar="NAME", **kwargs)
        self.registry = registry
        self.base_help = self.help or ""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        self.help = f"{self.base_help} Registered: {', '.join(self.registry())}."
        return super().get_help_record(ctx)


def check_registered(options: dict[str, Any]) -> None:
    """Validate ``arch`` and ``loss`` against the model and loss registries (one-line UsageError
    listing the registered names); the loss becomes its registered spelling (``wgan_gp`` ->
    ``wgan-gp``)."""
    from ganaug.errors import UsageError
    from ganaug.losses import get_loss

    arch = options.get("arch")
    if arch is not None and arch not in _architectures():
        raise UsageError(f"unknown --arch {arch!r}; registered: {', '.join(_architectures())}")
    if options.get("loss") is not None:
        try:
            options["loss"] = get_loss(options["loss"]).name
        except UsageError:
            raise UsageError(
                f"unknown --loss {options['loss']!r}; registered: {', '.join(_losses())}"
            ) from None


@click.command(context_settings={"show_default": True})
@click.argument("data", required=False, type=click.Path(path_type=str))
@click.option("--out", "-o", default="runs/train", help="Run directory to create (or to resume).")
@config_option
@click.option("--labels", type=click.Path(dir_okay=False), help="IDX labels file when not beside the images.")
@click.option("--arch", cls=Registered, registry=_architectures, default="dcgan", help="Model family.")
@click.option("--loss", cls=Registered, registry=_losses, default="hinge", help="GAN loss.")
@click.option(
    "--image-size", type=Number(LIM["image_size"]), default=None, help="Resize images to this square size."
)
@click.option("--channels", type=click.Choice(["1", "3"]), default=None, help="Force grayscale or RGB.")
@click.option("--z-dim", type=Number(LIM["z_dim"]), default=128, help="Latent size.")
@click.option(
    "--g-width",
    type=Number(LIM["g_width"]),
    default=None,
    help="Generator base width (unset: 64 for dcgan, else the model default).",
)
@click.option("--d-width", type=Number(LIM["d_width"]), default=None, help="Discriminator base width.")
@click.option("--batch-size", type=Number(LIM["batch_size"]), default=64)
@click.option(
    "--steps", type=Number(LIM["steps"]), default=3000, help="Total training steps (one G update each)."
)
@click.option("--d-steps", type=Number(LIM["d_steps"]), default=1, help="D updates per G update.")
@click.option("--lr-g", type=Number(LIM["lr_g"]), default=2e-4, help="Generator learning rate.")
@click.option(
    "--lr-d",
    type=Number(LIM["lr_d"]),
    default=2e-4,
    help="Discriminator learning rate (TTUR: make it larger).",
)
@click.option("--betas", type=Betas(), default="0.5,0.999", help="Adam betas.")
@click.option(
    "--diffaugment",
    default="auto",
    help="DiffAugment policy: auto (translation,cutout below 20k images), none, or items of "
    "color,translation,cutout.",
)
@click.option(
    "--r1", type=Number(LIM["r1"]), default=0.0, help="R1 penalty weight gamma on real images (0: off)."
)
@click.option(
    "--r1-every",
    type=Number(LIM["r1_every"]),
    default=4,
    help="Apply R1 every N steps (lazy regularisation).",
)
@click.option(
    "--gp-weight", type=Number(LIM["gp_weight"]), default=10.0, help="Gradient-penalty weight for wgan-gp."
)
@click.option(
    "--ema-decay",
    type=Number(LIM["ema_decay"]),
    default=0.999,
    help="EMA of G used for samples and export (0: off).",
)
@click.option("--preset", type=click.Choice(["seed"]), default=None, help="seed: the seed article's MLP GAN.")
@click.option("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps.")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), default="auto")
@click.option("--channels-last/--no-channels-last", default=True, help="channels_last memory format.")
@click.option("--compile", is_flag=True, help="torch.compile G and D.")
@click.option("--sync-bn", is_flag=True, help="torchrun on GPUs: SyncBatchNorm over the global batch.")
@click.option("--seed", type=Number(LIM["seed"]), default=0, help="Random seed (a CPU run is repeatable).")
@click.option(
    "--log-every", type=Number(LIM["log_every"]), default=50, help="Steps between log rows (and host syncs)."
)
@click.option(
    "--sample-every", type=Number(LIM["sample_every"]), default=500, help="Steps between sample grids."
)
@click.option(
    "--checkpoint-every",
    type=Number(LIM["checkpoint_every"]),
    default=1000,
    help="Steps between checkpoints.",
)
@click.option(
    "--divergence-patience",
    type=Number(LIM["divergence_patience"]),
    default=20,
    help="Log intervals of a perfect D before stopping.",
)
@click.option(
    "--grid-columns", type=Number(LIM["grid_columns"]), default=8, help="Samples per class in grids."
)
@click.option(
    "--g-cond",
    type=click.Choice(["concat", "cbn", "both"]),
    default=None,
    help="dcgan: how the class enters G (concat: embedding joins z; cbn: class-conditional BatchNorm).",
)
@click.option("--minibatch-std/--no-minibatch-std", default=None, help="dcgan: minibatch-stddev layer in D.")
@click.option(
    "--mode-seeking",
    type=float,
    default=1.0,
    help="Mode-seeking regulariser weight (Mao et al. 2019; 0: off).",
)
@click.option("--lecam", type=float, default=0.0, help="LeCam regularisation weight on D (0: off).")
@click.option(
    "--time-budget", type=float, default=None, help="Stop after this many minutes of process CPU time."
)
@click.option(
    "--checkpoint-minutes", type=float, default=None, help="Also checkpoint every this many CPU minutes."
)
@click.option(
    "--snapshots",
    type=int,
    default=4,
    help="EMA snapshots kept (scored on the training data) for --checkpoint best|STEP (0: none).",
)
@click.option(
    "--resume", is_flag=True, help="Continue --out from its last checkpoint (--steps may raise the target)."
)
@click.option("--overwrite", is_flag=True, help="Start a ganaug run dir --out again (removes its run files).")
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
      ganaug train fm-idx/train-images-idx3-ubyte.gz --out runs/fm --arch resnet
      ganaug train --out runs/exp --resume --steps 6000
      ganaug train images/ --out runs/seed --preset seed
      torchrun --standalone --nproc_per_node=4 -m ganaug train images/ --out runs/exp
    """
    from ganaug.cli.preflight import require_data, require_out_not_file

    if data is None and not resume:
        raise click.UsageError("DATA is required unless --resume is given")
    require_data(data, options.get("labels"))  # before torch is imported: fast, and nothing is created
    require_out_not_file(out)
    from ganaug.training import train as run_training

    if not resume:
        check_registered(options)
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
