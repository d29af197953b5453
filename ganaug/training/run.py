"""``train()``: set up (or reopen) a run directory and drive a :class:`Trainer` through it."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ganaug import __version__
from ganaug.data import ImageDataset, load_dataset
from ganaug.errors import DataError, Interrupted, UsageError
from ganaug.fileio import atomic_path, atomic_write_json, atomic_write_yaml
from ganaug.limits import read_yaml_mapping
from ganaug.output_safety import (
    check_output,
    data_inputs,
    holds_nothing,
    legacy_run_dir,
    write_marker,
)
from ganaug.runtime import check_class_names
from ganaug.training import distributed as dist_util
from ganaug.training.config import NO_STEP_LIMIT, TrainConfig, apply_preset, validate
from ganaug.training.device import resolve_device
from ganaug.training.logs import ResultsLog
from ganaug.training.loop import Trainer, TrainResult

IN_MEMORY_DATA = "train_data.npz"
RUN_FILES = ("config.yaml", "classes.json", "run.json", "results.csv", "results.png", IN_MEMORY_DATA)
RUN_DIRS = ("weights", "samples")
# Options that may change when a run is resumed; everything else comes from its config.yaml.
RESUMABLE_OVERRIDES = {
    "steps",
    "device",
    "log_every",
    "sample_every",
    "checkpoint_every",
    "data",
    "labels",
    "time_budget",
    "checkpoint_minutes",
}


def _saved_config(path: Path) -> TrainConfig:
    """A run's ``config.yaml`` for ``--resume``: a mapping of known options, else one UsageError."""
    try:
        cfg = TrainConfig.from_dict(read_yaml_mapping(path, "run config"))
        validate(cfg)
        return cfg
    except UsageError as exc:
        raise UsageError(f"--resume: {path}: {str(exc).removeprefix(f'{path}: ')}") from None
    except (TypeError, ValueError) as exc:
        raise UsageError(f"--resume: {path}: bad option value ({exc})") from None


def _saved_run_id(path: Path) -> str:
    info = read_yaml_mapping(path, "run.json") if path.is_file() else {}
    run_id = info.get("run_id")
    if not isinstance(run_id, str) or not run_id:
        raise UsageError(f"--resume: {path} is missing or has no run_id; the run cannot be resumed")
    return run_id


def _check_fresh_dir(cfg: TrainConfig, run_dir: Path, overwrite: bool) -> None:
    """Refuse a ``--out`` that is, contains or lies inside the data, or a non-empty folder that is
    not a ganaug run (see :mod:`ganaug.output_safety`); writes nothing."""
    inputs = data_inputs(cfg.data, cfg.labels) if cfg.data not in (None, IN_MEMORY_DATA) else []
    not_empty = (
        f"run directory {run_dir} is not empty; use --resume to continue it, "
        "--overwrite to start it again, or another --out"
    )
    check_output(run_dir, inputs, overwrite=overwrite, kind="run", legacy=legacy_run_dir, not_empty=not_empty)


def _prepare_fresh_dir(run_dir: Path) -> bool:
    """Remove a previous run's files (checked by :func:`_check_fresh_dir`), create ``run_dir`` with
    its marker; True when this call created the folder."""
    created = not run_dir.exists()
    if not created:
        for name in RUN_FILES:
            (run_dir / name).unlink(missing_ok=True)
        for name in RUN_DIRS:
            shutil.rmtree(run_dir / name, ignore_errors=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_marker(run_dir, "run")
    return created


def _remove_if_unused(run_dir: Path) -> None:
    """After a failed start: remove a run folder this run created and left holding only its marker."""
    with contextlib.suppress(OSError):
        if holds_nothing(run_dir):
            shutil.rmtree(run_dir)


def _load_data(cfg: TrainConfig, run_dir: Path, dataset: ImageDataset | None, resume: bool) -> ImageDataset:
    if dataset is not None:
        return dataset
    saved = run_dir / IN_MEMORY_DATA
    if resume and cfg.data in (None, IN_MEMORY_DATA) and saved.is_file():
        return load_dataset(saved, cache=False)
    if cfg.data is None:
        raise UsageError("no training data given (DATA argument)")
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        return load_dataset(cfg.data, image_size=cfg.image_size, channels=cfg.channels, labels=cfg.labels)


def _save_in_memory(run_dir: Path, dataset: ImageDataset) -> None:
    with atomic_path(run_dir / IN_MEMORY_DATA) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, images=dataset.images, labels=dataset.labels, classes=np.array(dataset.classes))


def train(
    data: str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] = "runs/train",
    *,
    dataset: ImageDataset | None = None,
    resume: bool = False,
    overwrite: bool = False,
    quiet: bool = False,
    progress: bool | None = None,
    explicit: set[str] | None = None,
    **options: Any,
) -> TrainResult:
    """Train a conditional GAN; return the run directory and the final metrics.

    ``data`` is anything :func:`ganaug.data.load_dataset` reads; alternatively pass an in-memory
    ``dataset`` (it is saved into the run directory so the run can be resumed). ``options`` are the
    fields of :class:`TrainConfig` (``steps=3000, arch="resnet", ...``). ``resume=True`` continues
    ``out`` from its last checkpoint with its saved config; only ``steps`` (to raise the target),
    ``device`` and the logging intervals may change then.

    >>> result = train("images/", "runs/exp", steps=2000, arch="dcgan")   # doctest: +SKIP
    >>> result.run_dir / "weights" / "ema.safetensors"                     # doctest: +SKIP

    Under ``torchrun`` (``WORLD_SIZE > 1``) every process calls this; they train one model with
    DistributedDataParallel and only rank 0 writes the run directory (see ``docs/distributed.md``).
    """
    run_dir = Path(out)
    explicit = set(options) if explicit is None else set(explicit)
    if resume:
        cfg_file = run_dir / "config.yaml"
        if not cfg_file.is_file():
            raise UsageError(f"--resume: {run_dir} is not a run directory (no config.yaml)")
        cfg = _saved_config(cfg_file)
        ignored = sorted(k for k in explicit if k not in RESUMABLE_OVERRIDES and k in options)
        if ignored:
            warnings.warn(
                f"--resume keeps the run's saved options; ignoring {', '.join(ignored)}",
                UserWarning,
                stacklevel=2,
            )
        for key in explicit & RESUMABLE_OVERRIDES:
            if key in options and options[key] is not None:
                setattr(cfg, key, options[key])
        if data is not None:
            cfg.data = str(data)
        run_id = _saved_run_id(run_dir / "run.json")
    else:
        cfg = TrainConfig.from_dict(
            {**options, "data": str(data) if data is not None else None, "out": str(out)}
        )
        cfg = apply_preset(cfg, explicit)
        if cfg.time_budget is not None and "steps" not in explicit:
            cfg.steps = NO_STEP_LIMIT  # "train for 15 CPU minutes" must not end at the default 3,000 steps
        validate(cfg)
        run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
    validate(cfg)
    cfg.out = str(run_dir)
    env = dist_util.detect()
    if not env.enabled:
        return _train_in(cfg, run_dir, run_id, dataset, resume, overwrite, quiet, progress, env)
    dist_util.per_rank_batch(cfg.batch_size, env)  # refuse before any process waits on another
    device = dist_util.rank_device(resolve_device(cfg.device), env)
    with dist_util.process_group(env, device):
        return _train_in(cfg, run_dir, run_id, dataset, resume, overwrite, quiet, progress, env)


def require_complete(result: TrainResult, what: str) -> TrainResult:
    """``result`` when the run trained to its last step; :class:`Interrupted` when Ctrl-C or SIGTERM
    stopped it early (``train`` then returns normally, with a checkpoint written), so that a command
    that trains a GAN as one of its steps stops too instead of going on with a half-trained one."""
    if result.interrupted:
        raise Interrupted(
            f"{result.interrupted} stopped {what} at step {result.step}; nothing after it was run",
            result.interrupted,
        )
    return result


def _train_in(
    cfg: TrainConfig,
    run_dir: Path,
    run_id: str,
    dataset: ImageDataset | None,
    resume: bool,
    overwrite: bool,
    quiet: bool,
    progress: bool | None,
    env: dist_util.DistEnv,
) -> TrainResult:
    """Set up the run directory (rank 0 only) and train; every rank runs this.

    A fresh run folder is created only once the data is read and the model built, and removed
    again if the run fails before writing anything into it."""
    if not resume:
        dist_util.rank0_first(env, lambda: _check_fresh_dir(cfg, run_dir, overwrite))
    # rank 0 loads first (it may fill the decode cache), then the others
    ds = dist_util.rank0_first(env, lambda: _load_data(cfg, run_dir, dataset, resume), others=True)
    assert ds is not None
    check_class_names(ds.classes, f"training data {ds.source}: class names", DataError)
    if not resume:
        if dataset is not None:
            cfg.data = IN_MEMORY_DATA
        cfg.image_size = ds.image_size
        cfg.channels = ds.channels
    trainer = Trainer(cfg, ds, run_dir, run_id, quiet=quiet, progress=progress, dist=env)
    created = False
    if not resume:
        created = bool(dist_util.rank0_first(env, lambda: _prepare_fresh_dir(run_dir)))
    try:
        return _start(cfg, run_dir, run_id, ds, dataset, trainer, resume, env)
    except BaseException:
        if created and env.is_main:
            _remove_if_unused(run_dir)
        raise


def _start(
    cfg: TrainConfig,
    run_dir: Path,
    run_id: str,
    ds: ImageDataset,
    dataset: ImageDataset | None,
    trainer: Trainer,
    resume: bool,
    env: dist_util.DistEnv,
) -> TrainResult:
    """Write the run's files and train (the run folder exists)."""
    if not resume and dataset is not None and env.is_main:
        _save_in_memory(run_dir, dataset)
    if resume:
        trainer.resume()
        if trainer.step >= cfg.steps:
            raise UsageError(
                f"{run_dir} already reached step {trainer.step}; pass --steps N > {trainer.step}"
            )
        spent = trainer.cpu_s / 60.0
        if cfg.time_budget is not None and spent >= cfg.time_budget:
            raise UsageError(
                f"{run_dir} already spent its --time-budget ({spent:.2f} of {cfg.time_budget:g} CPU "
                f"minutes); pass --time-budget M > {spent:.2f}"
            )
    elif env.is_main:
        atomic_write_json(run_dir / "classes.json", ds.classes)
        atomic_write_json(
            run_dir / "run.json",
            {
                "run_id": run_id,
                "ganaug_version": __version__,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "data_source": ds.source,
                "num_images": len(ds),
                "class_counts": ds.class_counts(),
                "device": str(trainer.device),
                "precision": str(trainer.amp_dtype or "fp32"),
                "diffaugment": trainer.diffaugment_policy,
                **({"world_size": env.world_size} if env.enabled else {}),
            },
        )
    if env.is_main:
        atomic_write_yaml(run_dir / "config.yaml", cfg.to_dict())
    log = ResultsLog(run_dir, resume=resume)
    result = trainer.run(log)
    result.files = {
        "config": str(run_dir / "config.yaml"),
        "results": str(run_dir / "results.csv"),
        "plot": str(run_dir / "results.png"),
        "samples": str(run_dir / "samples"),
        "weights": str(run_dir / "weights" / "last.safetensors"),
        "ema_weights": str(run_dir / "weights" / "ema.safetensors"),
    }
    return result
