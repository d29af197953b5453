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
            clean["betas"] = tuple(float(b) for b in clean["betas"])
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
    }
    for key, value in values.items():
        if key not in explicit:
            setattr(cfg, key, value)
    return cfg


def validate(cfg: TrainConfig) -> None:
    """Raise :class:`UsageError` for inconsistent options (one line each)."""
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
