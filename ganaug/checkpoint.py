"""Weights on disk: safetensors files with ganaug metadata, never pickle.

Two kinds of weights files exist:

* a **generator file** (``weights/ema.safetensors`` in a run directory, or any file written by
  :func:`save_generator`): the generator's tensors, plus metadata ``ganaug.format =
  "generator-v1"``, ``ganaug.model`` (JSON model config), ``ganaug.classes`` (JSON list),
  ``ganaug.run_id``, ``ganaug.step`` and ``ganaug.version``;
* a **training file** (``weights/last.safetensors``): generator and discriminator tensors under
  the prefixes ``G.`` and ``D.`` with both configs, ``ganaug.format = "training-v1"``.

Every file is written atomically. Anything that is not a safetensors file with this metadata --
a pickled ``.pt`` checkpoint above all -- is refused with a :class:`CheckpointError` before a
single byte of it is interpreted as code.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from ganaug import __version__
from ganaug.errors import CheckpointError, GanaugError, GeneratorNotFoundError, first_line
from ganaug.fileio import atomic_path, sha256_file
from ganaug.noise import check_temperature
from ganaug.runtime import MAX_CLASSES, check_class_names

GENERATOR_FORMAT = "generator-v1"
TRAINING_FORMAT = "training-v1"
_PICKLE_SUFFIXES = {".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin"}
# Bounds on untrusted model metadata, checked before any model is built: generous for real
# generators, finite for hostile files (a width of 1e6 would otherwise ask torch for ~40 GB).
MAX_PARAMETERS = 1 << 29  # 512 M parameters (2 GiB in fp32)
MAX_META_CHARS = 16 << 20
MODEL_INT_BOUNDS = {
    "num_classes": (1, MAX_CLASSES),
    "z_dim": (1, 4096),
    "image_size": (1, 1024),
    "channels": (1, 3),
    "width": (1, 4096),
    "embed_dim": (1, 4096),
}
OTHER_INT_BOUND = 1 << 20  # any other integer option of a model family


@dataclass(frozen=True)
class GeneratorInfo:
    """What a weights file says about the generator inside it."""

    classes: list[str]
    config: dict[str, Any]
    run_id: str
    weights_path: Path
    weights_sha256: str
    step: int
    prefix: str = ""
    #: the default sampling temperature chosen at training time (``ganaug.temperature``), if any
    temperature: float | None = None


def state_tensors(module: torch.nn.Module, prefix: str = "") -> dict[str, torch.Tensor]:
    """The module's state dict as contiguous CPU tensors, ready for safetensors."""
    return {prefix + k: v.detach().to("cpu").contiguous().clone() for k, v in module.state_dict().items()}


def save_tensors(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """Write ``tensors`` with string ``metadata`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def base_metadata(kind: str, classes: list[str], run_id: str, step: int) -> dict[str, str]:
    """The ``ganaug.*`` metadata every weights file carries (format, classes, run id, step, version)."""
    check_class_names(list(classes), "classes to save")
    return {
        "ganaug.format": kind,
        "ganaug.classes": json.dumps(list(classes)),
        "ganaug.run_id": run_id,
        "ganaug.step": str(int(step)),
        "ganaug.version": __version__,
    }


def save_generator(
    path: str | Path,
    module: torch.nn.Module,
    *,
    classes: list[str],
    run_id: str,
    step: int,
    temperature: float | None = None,
) -> None:
    """Save a generator (its ``config`` attribute and state dict) as a standalone weights file;
    ``temperature``, when given, is stored as its default sampling temperature."""
    config = getattr(module, "config", None)
    if not isinstance(config, dict):
        raise CheckpointError("generator has no 'config' dict; build it with ganaug.models.build_generator")
    meta = base_metadata(GENERATOR_FORMAT, classes, run_id, step)
    meta["ganaug.model"] = json.dumps(config)
    if temperature is not None:
        meta["ganaug.temperature"] = repr(float(check_temperature(temperature)))
    save_tensors(path, state_tensors(module), meta)


def _check_not_pickle(path: Path) -> None:
    with open(path, "rb") as fh:
        head = fh.read(9)
    # A safetensors file starts with its header length (u64 little-endian) and then '{'; that
    # length's low byte may be 0x80 or "PK", so those only mean pickle/zip when no header follows.
    header_len = int.from_bytes(head[:8], "little")
    safetensors = len(head) == 9 and head[8:9] == b"{" and header_len <= path.stat().st_size - 8
    pickle_like = head[:1] == b"\x80" or head[:2] == b"PK"
    if path.suffix.lower() in _PICKLE_SUFFIXES or (pickle_like and not safetensors):
        raise CheckpointError(
            f"{path}: looks like a pickled/zip PyTorch checkpoint; ganaug only loads .safetensors "
            "weights and never unpickles files (they can run code)"
        )


def read_metadata(path: str | Path) -> dict[str, str]:
    """The ganaug metadata of a safetensors weights file (validated)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file not found: {path}")
    _check_not_pickle(path)
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from None
    if meta.get("ganaug.format") not in (GENERATOR_FORMAT, TRAINING_FORMAT):
        raise CheckpointError(f"{path}: safetensors file without ganaug metadata (not a ganaug generator)")
    return meta


def resolve_weights(source: str | Path) -> Path:
    """Map a run directory or weights file to the generator weights to use (EMA first)."""
    source = Path(source)
    if source.is_dir():
        for candidate in (source / "weights" / "ema.safetensors", source / "weights" / "last.safetensors"):
            if candidate.is_file():
                return candidate
        raise CheckpointError(
            f"{source}: no weights/ema.safetensors or weights/last.safetensors in run directory"
        )
    if not source.exists():
        raise GeneratorNotFoundError(f"generator not found: {source}")
    return source


def _json_meta(path: Path, meta: dict[str, str], key: str) -> Any:
    value = meta.get(key)
    if value is None:
        raise CheckpointError(f"{path}: ganaug metadata is missing {key}")
    if len(value) > MAX_META_CHARS:
        raise CheckpointError(f"{path}: metadata {key} is {len(value)} characters, over the limit")
    try:
        return json.loads(value)
    except RecursionError:
        raise CheckpointError(f"{path}: metadata {key} is nested too deeply") from None
    except ValueError:
        raise CheckpointError(f"{path}: metadata {key} is not valid JSON") from None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_option(path: Path, key: str, value: Any) -> None:
    """One model option: a bounded int, finite float, short string, bool, None or short flat list."""
    where = f"{path}: ganaug.model {key!r}"
    if key in MODEL_INT_BOUNDS and (isinstance(value, bool) or not isinstance(value, int)):
        raise CheckpointError(f"{where} must be an integer, got {_short(value)}")
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, int):
        low, high = MODEL_INT_BOUNDS.get(key, (-OTHER_INT_BOUND, OTHER_INT_BOUND))
        if not low <= value <= high:
            raise CheckpointError(f"{where} must be an integer in [{low}, {high}], got {_short(value)}")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise CheckpointError(f"{where} must be finite, got {value!r}")
    elif isinstance(value, str):
        if len(value) > 256:
            raise CheckpointError(f"{where} is a string of {len(value)} characters (at most 256)")
    elif isinstance(value, list) and len(value) <= 64 and not any(isinstance(v, (list, dict)) for v in value):
        for item in value:
            _check_option(path, key, item)
    else:
        raise CheckpointError(f"{where} has an unusable value {_short(value)}")


def check_model_config(path: Path, config: Any, classes: list[str]) -> dict[str, Any]:
    """Validate a generator config from metadata before anything is built (CheckpointError)."""
    if not isinstance(config, dict) or not isinstance(config.get("arch"), str):
        raise CheckpointError(
            f"{path}: ganaug.model must be an object with a string 'arch', got {_short(config)}"
        )
    for key in ("num_classes", "z_dim", "image_size", "channels"):
        if key not in config:
            raise CheckpointError(f"{path}: ganaug.model has no {key!r}")
    for key, value in config.items():
        _check_option(path, key, value)
    if config["channels"] not in (1, 3):
        raise CheckpointError(f"{path}: ganaug.model 'channels' must be 1 or 3, got {config['channels']}")
    if config["num_classes"] != len(classes):
        raise CheckpointError(
            f"{path}: ganaug.classes names {len(classes)} classes but the model has {config['num_classes']}"
        )
    _check_model_size(path, config)
    return config


def _build(path: Path, config: dict[str, Any]) -> torch.nn.Module:
    from ganaug.models import build_generator

    try:
        return build_generator(**config)
    except (GanaugError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: ganaug.model cannot be built ({first_line(exc)})") from None


def _check_model_size(path: Path, config: dict[str, Any]) -> None:
    """Build the model on the meta device (no memory) and refuse more than MAX_PARAMETERS."""
    with torch.device("meta"):
        module = _build(path, config)
    size = sum(t.numel() for t in module.parameters()) + sum(t.numel() for t in module.buffers())
    if size > MAX_PARAMETERS:
        raise CheckpointError(
            f"{path}: ganaug.model describes a generator of {size:,} parameters, "
            f"over the limit of {MAX_PARAMETERS:,}"
        )


def load_generator_info(source: str | Path) -> GeneratorInfo:
    """Describe the generator in a run directory or weights file without building it.

    Every ``ganaug.*`` field is validated (types, bounds, class names unique and as many as the
    model's classes, model size) before anything is allocated; a bad file is a CheckpointError.
    """
    path = resolve_weights(source)
    meta = read_metadata(path)
    classes = check_class_names(_json_meta(path, meta, "ganaug.classes"), f"{path}: ganaug.classes")
    config = check_model_config(path, _json_meta(path, meta, "ganaug.model"), classes)
    step_text = meta.get("ganaug.step", "0")
    if not (step_text.isascii() and step_text.isdigit() and len(step_text) <= 15):
        raise CheckpointError(f"{path}: ganaug.step must be a non-negative integer, got {_short(step_text)}")
    prefix = ""
    if meta["ganaug.format"] == TRAINING_FORMAT:
        with safe_open(str(path), framework="pt") as fh:
            prefix = "E." if any(k.startswith("E.") for k in fh.keys()) else "G."  # noqa: SIM118
    return GeneratorInfo(
        classes=classes,
        config=config,
        run_id=meta.get("ganaug.run_id", ""),
        weights_path=path,
        weights_sha256=sha256_file(path),
        step=int(step_text),
        prefix=prefix,
        temperature=_temperature_meta(path, meta.get("ganaug.temperature")),
    )


def _temperature_meta(path: Path, text: str | None) -> float | None:
    """The ``ganaug.temperature`` of a weights file (None when absent; CheckpointError when bad)."""
    if text is None:
        return None
    try:
        return check_temperature(float(text[:32]))
    except ValueError:
        raise CheckpointError(
            f"{path}: ganaug.temperature must be a number in (0, 4], got {_short(text)}"
        ) from None


def load_state(
    path: str | Path, prefix: str = "", device: str | torch.device = "cpu"
) -> dict[str, torch.Tensor]:
    """Tensors of a weights file, optionally only those under ``prefix`` (with it stripped)."""
    tensors = load_file(str(path), device=str(device))
    if not prefix:
        return tensors
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def load_module_state(module: torch.nn.Module, state: dict[str, torch.Tensor], where: Path) -> None:
    """Load ``state`` strictly into ``module``; a mismatch is a CheckpointError naming the file."""
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(
            f"{where}: weights do not match the saved model config ({first_line(exc, None)})"
        ) from None


def load_generator(source: str | Path, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Rebuild the generator of a run directory or weights file (EMA weights first), in eval mode.

    The module gets an attribute ``ganaug_info`` (:class:`GeneratorInfo`).
    """
    info = load_generator_info(source)
    module = _build(info.weights_path, info.config)
    load_module_state(module, load_state(info.weights_path, info.prefix), info.weights_path)
    module.to(device).eval()
    module.ganaug_info = info
    return module
