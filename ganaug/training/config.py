"""Training options: one dataclass, its documented defaults, presets and validation.

:class:`TrainConfig` is ``ganaug train``'s spec (:mod:`ganaug.specs`): each field carries its CLI
details (help, bounds, choices), and the command's options are generated from it. The field names
are the CLI's long options (``batch_size`` <-> ``--batch-size``); the run directory's
``config.yaml`` holds exactly these keys, so ``ganaug train --config runs/exp/config.yaml``
repeats a run.

This module is torch-free (the registries behind ``--arch``/``--loss`` are imported when asked).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ganaug import specs
from ganaug.errors import UsageError
from ganaug.limits import BIG, TRAIN_LIMITS, check_betas, positive
from ganaug.specs import option

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
PRESETS = ("seed",)
G_CONDS = ("concat", "cbn", "both")
LIM = TRAIN_LIMITS


def architectures() -> Sequence[str]:
    """The model registry's architecture names (imports the models)."""
    from ganaug.models import available_architectures

    return available_architectures()


def losses() -> Sequence[str]:
    """The loss registry's names (imports the losses)."""
    from ganaug.losses import LOSSES

    return LOSSES


def _channels(value: Any) -> int:
    """``--channels``: 1 (grayscale) or 3 (RGB), from the command line or a config file (click
    prefixes the option's name to the message)."""
    if isinstance(value, bool) or str(value).strip() not in ("1", "3"):
        raise UsageError(f"must be 1 or 3, got {value!r}")
    return int(str(value).strip())


#: ``steps`` of a run that ``--time-budget`` alone ends (budget given, ``--steps`` not).
NO_STEP_LIMIT = BIG

#: ``--temperatures`` default: sampling temperatures each EMA snapshot is scored at (val FID).
DEFAULT_TEMPERATURES = (0.6, 0.8, 1.0, 1.2)


def check_temperatures(value: Any) -> tuple[float, ...]:
    """``--temperatures``: ``0.6,0.8,1.0`` on the command line, a list in a config file; 1 to 8
    values in (0, 4], returned sorted without repeats (UsageError otherwise)."""
    from ganaug.noise import check_temperature

    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not 1 <= len(items) <= 8:
        raise UsageError(f"--temperatures must be 1 to 8 numbers like 0.8,1.0, got {value!r}")
    try:
        numbers = {check_temperature(float(v) if isinstance(v, str) else v) for v in items}
    except TypeError:
        raise UsageError(f"--temperatures must be numbers like 0.8,1.0, got {value!r}") from None
    except ValueError as exc:
        text = (
            str(exc) if "temperature must be" in str(exc) else f"must be numbers like 0.8,1.0, got {value!r}"
        )
        raise UsageError(f"--temperatures {text.removeprefix('temperature ')}") from None
    return tuple(sorted(float(t) for t in numbers if t is not None))


def _temperatures(value: Any) -> tuple[float, ...]:
    try:
        return check_temperatures(value)
    except UsageError as exc:
        raise UsageError(str(exc).removeprefix("--temperatures").lstrip(": ")) from None


def _betas(value: Any) -> tuple[float, float]:
    """``--betas``: ``0.5,0.999`` on the command line, ``[0.5, 0.999]`` in a config file."""
    try:
        return check_betas(value)
    except UsageError as exc:
        raise UsageError(str(exc).removeprefix("--betas ")) from None


@dataclass
class TrainConfig:
    """Every option of ``ganaug train`` (see ``ganaug train --help`` for each one's meaning)."""

    data: str | None = option(None, argument=True, path=True)
    out: str = specs.out_dir(default="runs/train", help="Run directory to create (or to resume).")
    labels: str | None = option(
        None, path=True, metavar="FILE", help="IDX labels file when not beside the images."
    )
    arch: str = option("dcgan", registry=architectures, help="Model family.")
    loss: str = option("hinge", registry=losses, help="GAN loss.")
    image_size: int | None = option(None, limit=LIM["image_size"], help="Resize images to this square size.")
    channels: int | None = option(None, convert=_channels, metavar="[1|3]", help="Force grayscale or RGB.")
    z_dim: int = option(128, limit=LIM["z_dim"], help="Latent size.")
    g_width: int | None = option(
        None,
        limit=LIM["g_width"],
        help="Generator base width (unset: 64 for dcgan, else the model default).",
    )
    d_width: int | None = option(None, limit=LIM["d_width"], help="Discriminator base width.")
    batch_size: int = option(
        64, limit=LIM["batch_size"], help="Images per training step (the global batch under torchrun)."
    )
    steps: int = option(
        3000,
        limit=LIM["steps"],
        help="Total training steps (one G update each); with --time-budget and no --steps, no step limit.",
    )
    d_steps: int = option(1, limit=LIM["d_steps"], help="D updates per G update.")
    lr_g: float = option(2e-4, limit=LIM["lr_g"], help="Generator learning rate.")
    lr_d: float = option(
        4e-4,
        limit=LIM["lr_d"],
        help="Discriminator learning rate (two time-scales: twice the default --lr-g).",
    )
    betas: tuple[float, float] = option((0.5, 0.999), convert=_betas, metavar="B1,B2", help="Adam betas.")
    diffaugment: str = option(
        "auto",
        help="DiffAugment policy: auto (translation,cutout below 20k images), none, or items of "
        "color,translation,cutout.",
    )
    r1: float = option(0.0, limit=LIM["r1"], help="R1 penalty weight gamma on real images (0: off).")
    r1_every: int = option(4, limit=LIM["r1_every"], help="Apply R1 every N steps (lazy regularisation).")
    gp_weight: float = option(10.0, limit=LIM["gp_weight"], help="Gradient-penalty weight for wgan-gp.")
    ema_decay: float = option(
        0.999, limit=LIM["ema_decay"], help="EMA of G used for samples and export (0: off)."
    )
    preset: str | None = option(None, choices=PRESETS, help="seed: the seed article's MLP GAN.")
    device: str = specs.device(help="auto, cpu, cuda, cuda:N or mps.")
    precision: str = option(
        "auto",
        choices=PRECISIONS,
        help="Autocast precision (auto: bf16 or fp16 on a GPU, bf16 on a CPU with bf16 support, else fp32).",
    )
    channels_last: bool = option(
        True, flags=("--channels-last/--no-channels-last",), help="channels_last memory format."
    )
    compile: bool = option(False, help="torch.compile G and D.")
    sync_bn: bool = option(False, help="torchrun on GPUs: SyncBatchNorm over the global batch.")
    seed: int = specs.seed()
    log_every: int = option(50, limit=LIM["log_every"], help="Steps between log rows (and host syncs).")
    sample_every: int = option(500, limit=LIM["sample_every"], help="Steps between sample grids.")
    checkpoint_every: int = option(1000, limit=LIM["checkpoint_every"], help="Steps between checkpoints.")
    grid_columns: int = option(8, limit=LIM["grid_columns"], help="Samples per class in grids.")
    divergence_patience: int = option(
        20, limit=LIM["divergence_patience"], help="Log intervals of a perfect D before stopping."
    )
    # recipe levers (issue 14; measured with benchmarks/quality_budget.py)
    g_cond: str | None = option(
        None,
        choices=G_CONDS,
        help="dcgan: how the class enters G (concat: embedding joins z; cbn: class-conditional BatchNorm).",
    )
    minibatch_std: bool | None = option(
        None, flags=("--minibatch-std/--no-minibatch-std",), help="dcgan: minibatch-stddev layer in D."
    )
    mode_seeking: float = option(1.0, help="Mode-seeking regulariser weight (Mao et al. 2019; 0: off).")
    lecam: float = option(0.0, help="LeCam regularisation weight on D (0: off).")
    balance_classes: bool = option(
        False,
        flags=("--balance-classes/--no-balance-classes",),
        help="Draw the real batches (and so the classes G is asked for) class-balanced: every class "
        "as often as the others, however few images it has (for imbalanced data).",
    )
    time_budget: float | None = option(
        None,
        limit=positive(),
        help="Stop after this many minutes of process CPU time (without --steps, the budget alone "
        "decides when to stop).",
    )
    checkpoint_minutes: float | None = option(
        None, limit=positive(), help="Also checkpoint every this many CPU minutes."
    )
    snapshots: int = option(
        4, help="EMA snapshots kept (scored on the training data) for --checkpoint best|STEP (0: none)."
    )
    temperatures: tuple[float, ...] = option(
        DEFAULT_TEMPERATURES,
        convert=_temperatures,
        metavar="T1,T2,...",
        help="Sampling temperatures each snapshot is scored at (val FID on the training data); the "
        "best becomes the generator's default temperature (1.0: no search; needs --snapshots).",
    )

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (YAML-ready: tuples become lists)."""
        out = dataclasses.asdict(self)
        out["betas"] = list(self.betas)
        out["temperatures"] = list(self.temperatures)
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Build from a dict whose keys are option names (dashes or underscores)."""
        names = {f.name for f in dataclasses.fields(cls)}
        clean: dict[str, Any] = {}
        for key, value in values.items():
            name = str(key).replace("-", "_")
            if name not in names:
                raise UsageError(f"unknown training option {key!r}")
            clean[name] = value
        if "betas" in clean and clean["betas"] is not None:
            clean["betas"] = check_betas(clean["betas"])
        if "temperatures" in clean and clean["temperatures"] is not None:
            clean["temperatures"] = check_temperatures(clean["temperatures"])
        return cls(**clean)


def apply_preset(cfg: TrainConfig, explicit: set[str]) -> TrainConfig:
    """Fill in a preset's values for every option the user did not set explicitly.

    ``seed`` is the seed article's GAN: MLP G 100-256-784 / D 784-256-1, the original minimax
    loss, Adam lr 2e-4 and beta1 0.5, no DiffAugment and no EMA.
    """
    if cfg.preset is None:
        return cfg
    if cfg.preset not in PRESETS:
        raise UsageError(f"unknown preset {cfg.preset!r}; choose from: {', '.join(PRESETS)}")
    values = {
        "arch": "mlp",
        "loss": "minimax",
        "z_dim": 100,
        "lr_g": 2e-4,
        "lr_d": 2e-4,
        "betas": (0.5, 0.999),
        "diffaugment": "none",
        "ema_decay": 0.0,
        "mode_seeking": 0.0,
    }
    for key, value in values.items():
        if key not in explicit:
            setattr(cfg, key, value)
    return cfg


def validate(cfg: TrainConfig) -> None:
    """Raise :class:`UsageError` for inconsistent options (one line each)."""
    check_types(cfg)
    positive = ("z_dim", "batch_size", "steps", "d_steps", "log_every", "sample_every", "checkpoint_every")
    for name in positive:
        if int(getattr(cfg, name)) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(cfg, name)}")
    if cfg.lr_g <= 0 or cfg.lr_d <= 0:
        raise UsageError("learning rates must be > 0")
    if len(cfg.betas) != 2 or not all(0.0 <= b < 1.0 for b in cfg.betas):
        raise UsageError(f"--betas must be two numbers in [0, 1), got {cfg.betas}")
    if not 0.0 <= cfg.ema_decay < 1.0:
        raise UsageError(f"--ema-decay must be in [0, 1), got {cfg.ema_decay}")
    if cfg.precision not in PRECISIONS:
        raise UsageError(f"--precision must be one of {', '.join(PRECISIONS)}, got {cfg.precision!r}")
    if cfg.channels not in (None, 1, 3):
        raise UsageError(f"--channels must be 1 or 3, got {cfg.channels}")
    if cfg.r1 < 0 or cfg.gp_weight < 0:
        raise UsageError("--r1 and --gp-weight must be >= 0")
    if cfg.batch_size < 2:
        raise UsageError("--batch-size must be >= 2")
    from ganaug.losses import get_loss

    cfg.loss = get_loss(cfg.loss).name  # one spelling ("wgan_gp" -> "wgan-gp") for the loop and config
    check_recipe(cfg)


# --- types and finite bounds (ganaug.limits), checked before anything is built ------------------

_CHOICES = {"precision": PRECISIONS, "preset": (None, *PRESETS), "channels": (None, 1, 3)}
_STRINGS = ("arch", "loss", "diffaugment", "device", "out")
_OPTIONAL_STRINGS = ("data", "labels")
_FLAGS = ("channels_last", "compile", "sync_bn", "balance_classes")


def check_types(cfg: TrainConfig) -> None:
    """Every numeric field finite, of its type and within :data:`ganaug.limits.TRAIN_LIMITS`;
    strings, flags and betas of the right type (normalises ``cfg`` in place; UsageError otherwise)."""
    for name, limit in TRAIN_LIMITS.items():
        value = getattr(cfg, name, None)
        if value is None and name in ("image_size", "g_width", "d_width"):
            continue
        setattr(cfg, name, limit.check(f"--{name.replace('_', '-')}", value))
    cfg.betas = check_betas(cfg.betas)
    for name in _STRINGS:
        if not isinstance(getattr(cfg, name), str):
            raise UsageError(f"--{name.replace('_', '-')} must be a string, got {getattr(cfg, name)!r}")
    for name in _OPTIONAL_STRINGS:
        if getattr(cfg, name) is not None and not isinstance(getattr(cfg, name), str):
            raise UsageError(f"--{name} must be a path, got {getattr(cfg, name)!r}")
    for name in _FLAGS:
        if not isinstance(getattr(cfg, name), bool):
            raise UsageError(f"--{name.replace('_', '-')} must be true or false, got {getattr(cfg, name)!r}")
    for name, allowed in _CHOICES.items():
        value = getattr(cfg, name)
        if isinstance(value, bool) or value not in allowed:
            raise UsageError(f"--{name} must be one of {', '.join(map(str, allowed))}, got {value!r}")


def check_recipe(cfg: TrainConfig) -> None:
    """The recipe options of issue 14 (conditioning, regularisers, CPU budget, snapshots)."""
    if cfg.g_cond not in (None, *G_CONDS):
        raise UsageError(f"--g-cond must be concat, cbn or both, got {cfg.g_cond!r}")
    if cfg.minibatch_std not in (None, True, False):
        raise UsageError(f"--minibatch-std must be true or false, got {cfg.minibatch_std!r}")
    for name in ("mode_seeking", "lecam"):
        value = getattr(cfg, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1e6:
            raise UsageError(f"--{name.replace('_', '-')} must be a number >= 0, got {value!r}")
    for name in ("time_budget", "checkpoint_minutes"):
        value = getattr(cfg, name)
        bad = isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0
        if value is not None and bad:
            raise UsageError(f"--{name.replace('_', '-')} must be > 0 (CPU minutes), got {value!r}")
    snaps = cfg.snapshots
    if isinstance(snaps, bool) or not isinstance(snaps, int) or not 0 <= snaps <= 1000:
        raise UsageError(f"--snapshots must be an integer in [0, 1000], got {cfg.snapshots!r}")
    cfg.temperatures = check_temperatures(cfg.temperatures)
