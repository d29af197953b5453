"""Training options: one dataclass, its documented defaults, presets and validation.

The field names are the CLI's long options (``batch_size`` <-> ``--batch-size``); the run
directory's ``config.yaml`` holds exactly these keys, so ``ganaug train --config
runs/exp/config.yaml`` repeats a run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ganaug.errors import UsageError
from ganaug.limits import TRAIN_LIMITS, check_betas

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
PRESETS = ("seed",)


@dataclass
class TrainConfig:
    """Every option of ``ganaug train`` (see ``ganaug train --help`` for each one's meaning)."""

    data: str | None = None
    out: str = "runs/train"
    labels: str | None = None
    arch: str = "dcgan"
    loss: str = "hinge"
    image_size: int | None = None
    channels: int | None = None
    z_dim: int = 128
    g_width: int | None = None
    d_width: int | None = None
    batch_size: int = 64
    steps: int = 3000
    d_steps: int = 1
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    diffaugment: str = "auto"
    r1: float = 0.0
    r1_every: int = 4
    gp_weight: float = 10.0
    ema_decay: float = 0.999
    preset: str | None = None
    device: str = "auto"
    precision: str = "auto"
    channels_last: bool = True
    compile: bool = False
    sync_bn: bool = False
    seed: int = 0
    log_every: int = 50
    sample_every: int = 500
    checkpoint_every: int = 1000
    grid_columns: int = 8
    divergence_patience: int = 20
    # recipe levers (issue 14; measured with benchmarks/quality_budget.py)
    g_cond: str | None = None  # dcgan G: concat | cbn | both (None: the model's default)
    minibatch_std: bool | None = None  # dcgan D: minibatch-stddev layer (None: the model's default)
    mode_seeking: float = 1.0  # weight of the mode-seeking regulariser (Mao et al. 2019; 0: off)
    lecam: float = 0.0  # weight of LeCam regularisation on D (Tseng et al. 2021)
    time_budget: float | None = None  # stop after this many minutes of process CPU time
    checkpoint_minutes: float | None = None  # also checkpoint every this many CPU minutes
    snapshots: int = 4  # EMA snapshots kept in weights/snapshots/ (0: none)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (YAML-ready: tuples become lists)."""
        out = dataclasses.asdict(self)
        out["betas"] = list(self.betas)
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
_FLAGS = ("channels_last", "compile", "sync_bn")


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
    if cfg.g_cond not in (None, "concat", "cbn", "both"):
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
