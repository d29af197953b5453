"""Resumable training state, without pickle.

``weights/last.safetensors`` is the single source of truth for resuming: it holds the generator
(``G.``), discriminator (``D.``), EMA generator (``E.``), both optimizers' tensors
(``OG.<param index>.<name>`` / ``OD.``), the RNG states (``rng.*``) and any extra loop state (e.g.
``lecam``: LeCam's moving averages) of one step, written
atomically, so a crash can never pair weights of one step with optimizer state of another.
Its metadata carries the step, both model configs and the optimizers' param groups as JSON.
``weights/state.json`` is the human-readable summary that points into it; ``weights/ema.safetensors``
is the standalone generator used for sampling and export.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from ganaug import __version__
from ganaug.checkpoint import (
    TRAINING_FORMAT,
    base_metadata,
    load_module_state,
    read_metadata,
    save_generator,
    save_tensors,
    state_tensors,
)
from ganaug.errors import CheckpointError, first_line
from ganaug.fileio import atomic_write_json


@dataclass
class TrainingState:
    """What :func:`load_training_state` returns (tensors still to be loaded into modules)."""

    step: int
    ema_step: int
    tensors: dict[str, torch.Tensor]
    meta: dict[str, str]


def _optimizer_tensors(opt: torch.optim.Optimizer, prefix: str) -> tuple[dict[str, torch.Tensor], dict]:
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, pstate in sd["state"].items():
        for name, value in pstate.items():
            if torch.is_tensor(value):
                tensors[f"{prefix}.{idx}.{name}"] = value.detach().to("cpu").contiguous().clone()
            else:
                scalars.setdefault(str(idx), {})[name] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _optimizer_state(tensors: dict[str, torch.Tensor], prefix: str, info: dict) -> dict:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith(prefix + "."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = value
    for idx, values in info.get("scalars", {}).items():
        state.setdefault(int(idx), {}).update(values)
    return {"state": state, "param_groups": info["param_groups"]}


def rng_tensors() -> dict[str, torch.Tensor]:
    """Current torch RNG states (CPU and every CUDA device) as uint8 tensors."""
    out = {"rng.cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            out[f"rng.cuda{i}"] = state
    return out


def restore_rng(tensors: dict[str, torch.Tensor]) -> None:
    """Set the torch RNG states saved by :func:`rng_tensors`."""
    if "rng.cpu" in tensors:
        torch.set_rng_state(tensors["rng.cpu"].to(torch.uint8))
    cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("rng.cuda"))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([t.to(torch.uint8) for t in cuda][: torch.cuda.device_count()])


@dataclass
class TrainingModules:
    """The live objects a training checkpoint holds: both models, the EMA copy, both optimizers."""

    generator: torch.nn.Module
    discriminator: torch.nn.Module
    ema: torch.nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer


def save_checkpoint(
    run_dir: Path,
    modules: TrainingModules,
    *,
    ema_step: int,
    step: int,
    classes: list[str],
    run_id: str,
    extra: dict[str, Any] | None = None,
    extra_tensors: dict[str, torch.Tensor] | None = None,
    cpu_s: float | None = None,
    ema_temperature: float | None = None,
) -> None:
    """Write ``last.safetensors`` (everything to resume), then ``ema.safetensors`` (with
    ``ema_temperature`` as its default sampling temperature) and ``state.json``.

    ``extra_tensors`` (names without a ``G.``/``D.``/``E.``/``OG.``/``OD.``/``rng.`` prefix) are stored
    as they are; ``cpu_s`` (training CPU seconds so far) goes into the metadata as ``ganaug.cpu_s``.
    """
    weights = run_dir / "weights"
    generator, discriminator, ema = modules.generator, modules.discriminator, modules.ema
    og, og_info = _optimizer_tensors(modules.opt_g, "OG")
    od, od_info = _optimizer_tensors(modules.opt_d, "OD")
    tensors = (
        state_tensors(generator, "G.")
        | state_tensors(discriminator, "D.")
        | state_tensors(ema, "E.")
        | og
        | od
        | rng_tensors()
        | {k: v.detach().to("cpu").contiguous().clone() for k, v in (extra_tensors or {}).items()}
    )
    meta = base_metadata(TRAINING_FORMAT, classes, run_id, step) | {
        "ganaug.model": json.dumps(generator.config),
        "ganaug.discriminator": json.dumps(discriminator.config),
        "ganaug.ema_step": str(ema_step),
        "ganaug.optim_g": json.dumps(og_info),
        "ganaug.optim_d": json.dumps(od_info),
    }
    if cpu_s is not None:
        meta["ganaug.cpu_s"] = repr(float(cpu_s))
    save_tensors(weights / "last.safetensors", tensors, meta)
    save_generator(
        weights / "ema.safetensors",
        ema,
        classes=classes,
        run_id=run_id,
        step=step,
        temperature=ema_temperature,
    )
    atomic_write_json(
        weights / "state.json",
        {
            "step": step,
            "run_id": run_id,
            "ganaug_version": __version__,
            "resume_from": "last.safetensors",
            "generator": "last.safetensors:G.*",
            "discriminator": "last.safetensors:D.*",
            "ema_generator": "ema.safetensors (also last.safetensors:E.*)",
            "optimizer_g": "last.safetensors:OG.* + metadata ganaug.optim_g",
            "optimizer_d": "last.safetensors:OD.* + metadata ganaug.optim_d",
            "rng": "last.safetensors:rng.*",
            **({"cpu_s": round(float(cpu_s), 3)} if cpu_s is not None else {}),
            **(extra or {}),
        },
    )


def load_training_state(run_dir: Path) -> TrainingState:
    """Read ``weights/last.safetensors`` of a run (validated; never unpickles anything)."""
    path = run_dir / "weights" / "last.safetensors"
    if not path.is_file():
        raise CheckpointError(f"{run_dir}: no checkpoint to resume from (weights/last.safetensors missing)")
    meta = read_metadata(path)
    if meta.get("ganaug.format") != TRAINING_FORMAT:
        raise CheckpointError(f"{path}: not a training checkpoint")
    tensors: dict[str, torch.Tensor] = {}
    with safe_open(str(path), framework="pt") as fh:
        for key in fh.keys():  # noqa: SIM118 - safe_open is not a mapping
            tensors[key] = fh.get_tensor(key)
    return TrainingState(
        step=_step_field(meta, "ganaug.step", path),
        ema_step=_step_field(meta, "ganaug.ema_step", path, default_key="ganaug.step"),
        tensors=tensors,
        meta=meta,
    )


def _step_field(meta: dict[str, str], key: str, path: Path, default_key: str | None = None) -> int:
    """A non-negative integer step from checkpoint metadata, or a one-line CheckpointError."""
    raw = meta.get(key, meta.get(default_key) if default_key else None)
    try:
        value = int(str(raw).strip())
    except (TypeError, ValueError):
        value = -1
    if value < 0 or value > 2**62:
        shown = str(raw)[:40]
        raise CheckpointError(f"{path}: metadata {key!r} must be a non-negative integer, got {shown!r}")
    return value


def _match_param_layout(opt: torch.optim.Optimizer) -> None:
    """Give every per-parameter state tensor its parameter's strides (channels_last weights).

    Checkpoints store contiguous tensors; torch's fused and foreach Adam kernels assume that a
    parameter, its gradient and its moments share one memory layout, and silently compute a different
    update when they do not (torch 2.13, CPU), which would make a resumed run drift from the
    uninterrupted one.
    """
    for group in opt.param_groups:
        for param in group["params"]:
            pstate = opt.state.get(param, {})
            for name, value in pstate.items():
                if torch.is_tensor(value) and value.shape == param.shape and value.stride() != param.stride():
                    pstate[name] = torch.empty_like(param, dtype=value.dtype).copy_(value)


def restore_modules(state: TrainingState, path: Path, modules: TrainingModules) -> None:
    """Load models, optimizers and RNG from a :class:`TrainingState`."""

    def part(prefix: str) -> dict[str, torch.Tensor]:
        return {k[len(prefix) :]: v for k, v in state.tensors.items() if k.startswith(prefix)}

    load_module_state(modules.generator, part("G."), path)
    load_module_state(modules.discriminator, part("D."), path)
    load_module_state(modules.ema, part("E."), path)
    try:
        for opt, prefix, key in (
            (modules.opt_g, "OG", "ganaug.optim_g"),
            (modules.opt_d, "OD", "ganaug.optim_d"),
        ):
            opt.load_state_dict(_optimizer_state(state.tensors, prefix, json.loads(state.meta[key])))
            _match_param_layout(opt)
        restore_rng(state.tensors)
    except (KeyError, ValueError, TypeError, IndexError, RuntimeError, RecursionError) as exc:
        first = first_line(exc)
        raise CheckpointError(f"{path}: damaged training state ({type(exc).__name__}: {first})") from None
