"""Bounds of numeric options, declared once for the CLI and the library (torch-free).

A :class:`Limit` says what a number option accepts: ``int`` or ``float``, finite (never NaN or
infinity), within ``[low, high]`` (either end may be open or absent). The click parameter types in
:mod:`ganaug.cli.common` and :func:`ganaug.training.config.validate` both check values with
:meth:`Limit.check`, so ``--lr-g nan`` on the command line, ``lr_g: .nan`` in ``--config`` and
``train(lr_g=float("nan"))`` get the same one-line :class:`~ganaug.errors.UsageError`.
:func:`read_yaml_mapping` reads an options file (``--config``, a run's ``config.yaml``) the same way
for the CLI and ``train(resume=True)``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import yaml

from ganaug.errors import GanaugError, UsageError
from ganaug.noise import MAX_TEMPERATURE

BIG = 10**9  # generous finite cap for counts (steps, images per class, intervals)
MAX_SEED = 2**63 - 1


@dataclass(frozen=True)
class Limit:
    """An ``int`` or ``float`` option's finite range."""

    kind: type = float
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def describe(self) -> str:
        """The range in words, e.g. ``an integer in [1, 4096]``."""
        what = "an integer" if self.kind is int else "a finite number"
        if self.low is None and self.high is None:
            return what
        fmt = (lambda x: str(int(x))) if self.kind is int else (lambda x: f"{x:g}")
        lo = "(-inf" if self.low is None else f"{'(' if self.low_open else '['}{fmt(self.low)}"
        hi = "inf)" if self.high is None else f"{fmt(self.high)}{')' if self.high_open else ']'}"
        return f"{what} in {lo}, {hi}"

    def check(self, name: str, value: Any) -> int | float:
        """``value`` converted to the limit's kind, or :class:`UsageError` naming ``name``."""
        number = self._convert(value)
        if number is None:
            raise UsageError(f"{name} must be {self.describe()}, got {_short(value)}")
        if not math.isfinite(number) or not self._inside(number):
            raise UsageError(f"{name} must be {self.describe()}, got {_short(value)}")
        return number

    def _convert(self, value: Any) -> int | float | None:
        if isinstance(value, bool):
            return None
        if isinstance(value, str):
            try:
                value = int(value.strip()) if self.kind is int else float(value.strip())
            except ValueError:
                return None
        if self.kind is int:
            if isinstance(value, Integral):
                return int(value)
            if isinstance(value, Real) and math.isfinite(value) and float(value).is_integer():
                return int(value)
            return None
        return float(value) if isinstance(value, Real) else None

    def _inside(self, x: float) -> bool:
        if self.low is not None and (x < self.low or (self.low_open and x == self.low)):
            return False
        return not (self.high is not None and (x > self.high or (self.high_open and x == self.high)))


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def count(low: int = 1, high: int = BIG) -> Limit:
    """An integer in ``[low, high]``."""
    return Limit(int, low, high)


def positive(high: float | None = None) -> Limit:
    """A finite float > 0 (and <= ``high``)."""
    return Limit(float, 0.0, high, low_open=True)


def non_negative(high: float | None = None) -> Limit:
    """A finite float >= 0 (and <= ``high``)."""
    return Limit(float, 0.0, high)


UNIT = Limit(float, 0.0, 1.0)  # probabilities, thresholds
FRACTION = Limit(float, 0.0, 1.0, low_open=True)  # shares and mixing weights: above 0, at most 1
DECAY = Limit(float, 0.0, 1.0, high_open=True)  # EMA decay, Adam betas
SEED = count(0, MAX_SEED)
BATCH = count(1, 1 << 16)
TRUNCATION = positive(1e6)
TEMPERATURE = positive(MAX_TEMPERATURE)  # sampling temperature (latent standard deviation)

# The numeric fields of TrainConfig (``ganaug train`` options). Models have their own finer limits
# (supported image sizes, width >= 4); these only keep values finite and allocations bounded.
TRAIN_LIMITS: dict[str, Limit] = {
    "image_size": count(1, 1024),
    "z_dim": count(1, 4096),
    "g_width": count(1, 4096),
    "d_width": count(1, 4096),
    "batch_size": count(2, 1 << 16),
    "steps": count(1, BIG),
    "d_steps": count(1, 1000),
    "lr_g": positive(),
    "lr_d": positive(),
    "r1": non_negative(1e6),
    "r1_every": count(1, BIG),
    "gp_weight": non_negative(1e6),
    "ema_decay": DECAY,
    "seed": SEED,
    "log_every": count(1, BIG),
    "sample_every": count(1, BIG),
    "checkpoint_every": count(1, BIG),
    "grid_columns": count(1, 1024),
    "divergence_patience": count(0, BIG),
}


def check_betas(value: Any, name: str = "--betas") -> tuple[float, float]:
    """Two Adam betas in [0, 1) from ``"0.5,0.999"`` or a 2-sequence (UsageError otherwise)."""
    parts: Any = value.split(",") if isinstance(value, str) else value
    if not isinstance(parts, (list, tuple)) or len(parts) != 2:
        raise UsageError(f"{name} must be two numbers in [0, 1) like 0.5,0.999, got {_short(value)}")
    return DECAY.check(name, parts[0]), DECAY.check(name, parts[1])  # type: ignore[return-value]


def env_positive_int(name: str, unit: str, error: type[GanaugError] = UsageError) -> int | None:
    """Environment variable ``name`` as a positive whole number of ``unit`` (``1e9`` is accepted),
    ``None`` when it is unset or empty; raises ``error`` (one line naming the variable) otherwise."""
    env = os.environ.get(name)
    if not env:
        return None
    try:
        value = int(float(env))
    except (ValueError, OverflowError):
        raise error(f"{name}={env!r} is not a number of {unit}") from None
    if value <= 0:
        raise error(f"{name}={env!r} must be a positive number of {unit}")
    return value


def read_yaml_mapping(path: str | Path, what: str = "config file") -> dict[str, Any]:
    """A YAML file that must hold a mapping (safe loader: no Python tags); UsageError otherwise."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{what} not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        if isinstance(exc, yaml.constructor.ConstructorError):
            raise UsageError(
                f"{path}: YAML tag refused ({exc.problem or 'unsafe tag'}); plain values only"
            ) from None
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise UsageError(f"{path}: not valid YAML{where} ({exc.__class__.__name__})") from None
    except (UnicodeDecodeError, RecursionError) as exc:
        raise UsageError(f"{path}: not a readable YAML {what} ({exc.__class__.__name__})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a mapping of option names to values, got {type(data).__name__}")
    return data


__all__ = [
    "BATCH",
    "DECAY",
    "FRACTION",
    "SEED",
    "TEMPERATURE",
    "TRAIN_LIMITS",
    "TRUNCATION",
    "UNIT",
    "Limit",
    "check_betas",
    "env_positive_int",
    "read_yaml_mapping",
]
