"""Export a trained generator to a self-describing ONNX file, checked against torch before it is kept.

The graph (see the ONNX contract in DESIGN.md): inputs ``z`` float32 ``[batch, z_dim]`` and ``label``
int64 ``[batch]``, output ``image`` -- uint8 NHWC ``[batch, H, W, C]`` (``layout="uint8-nhwc"``,
the default) or float32 NCHW in [-1, 1] (``"float-nchw"``); dynamic ``batch``; opset >= 18; metadata
``ganaug.*`` as JSON strings. Steps:

1. take the EMA generator (:func:`ganaug.checkpoint.load_generator`), deep-copy it to CPU, eval mode,
   and bake spectral norm and every other parametrization into plain weights;
2. export with ``torch.onnx.export(dynamo=True)``. For the uint8 layout the graph temporarily has a
   second output, the float image before quantisation, so the 1e-4 parity check compares the very
   float tensor the shipped graph quantises, not a separate export;
3. ``onnx.checker.check_model(full_check=True)``, then an onnxruntime-vs-torch parity run on fresh
   random inputs at batch 1 and 64; then the parity output is dropped, metadata added, and the final
   file is loaded through :class:`ganaug.runtime.OnnxGenerator` and compared once more.

All of it happens before the temporary file beside ``out_path`` is renamed onto it: a failed check
raises :class:`~ganaug.errors.ExportError` and leaves no file at ``out_path``.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import logging
import os
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ganaug import __version__
from ganaug.errors import CheckpointError, ExportError, UsageError, first_line
from ganaug.export_spec import MIN_OPSET, ExportSpec
from ganaug.fileio import atomic_path
from ganaug.imageops import quantize_torch
from ganaug.output_safety import check_export_out
from ganaug.runtime import LAYOUTS, check_temperature_option

PARITY_OUTPUT = "ganaug_parity_float"


@dataclass
class ExportReport:
    """What ``export_generator`` wrote and how closely onnxruntime matches torch."""

    path: Path
    size_bytes: int
    opset: int
    layout: str
    max_abs_error: float  # float output, onnxruntime vs torch, over all parity batches
    max_pixel_diff: int  # final uint8 images (after rounding), onnxruntime vs torch
    parity_batches: tuple[int, ...]
    classes: list[str]
    z_dim: int
    image_size: int
    channels: int
    weights_sha256: str
    run_id: str
    seconds: float
    metadata: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["path"] = str(self.path)
        return d


class _ExportWrapper(nn.Module):
    """G with the output the ONNX contract wants (plus the float image for parity, uint8 layout)."""

    def __init__(self, generator: nn.Module, layout: str) -> None:
        super().__init__()
        self.generator = generator
        self.layout = layout

    def forward(self, z: torch.Tensor, label: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = self.generator(z, label).float()
        if self.layout == "float-nchw":
            return (x,)
        return quantize_torch(x), x


def bake_parametrizations(module: nn.Module) -> nn.Module:
    """Replace every parametrization (spectral norm, weight norm, ...) by its current value, in place.

    ``copy.deepcopy`` of a parametrized module shares the injected ``Parametrized<Cls>`` class with
    the original, and ``remove_parametrizations`` deletes the property from that class -- which
    would break the caller's module. So each parametrized submodule first gets a class of its own.
    """
    from torch.nn.utils import parametrize

    for sub in list(module.modules()):
        if parametrize.is_parametrized(sub):
            cls = type(sub)
            sub.__class__ = type(cls.__name__, cls.__bases__, dict(cls.__dict__))
            for name in list(sub.parametrizations.keys()):
                parametrize.remove_parametrizations(sub, name, leave_parametrized=True)
    return module


def _state_sha256(module: nn.Module) -> str:
    digest = hashlib.sha256()
    for key, value in sorted(module.state_dict().items()):
        digest.update(key.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


@contextlib.contextmanager
def _quiet(verbose: bool) -> Iterator[None]:
    """Silence torch.onnx's progress prints, warnings and log lines unless ``verbose``."""
    if verbose:
        yield
        return
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.redirect_stderr(io.StringIO()),
        ):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _resolve(
    source: str | os.PathLike[str] | nn.Module,
    classes: Sequence[str] | None,
    run_id: str | None,
    weights_sha256: str | None,
) -> tuple[nn.Module, list[str], str, str]:
    if isinstance(source, nn.Module):
        module = copy.deepcopy(source).to("cpu")
        info = getattr(source, "ganaug_info", None)
    else:
        from ganaug.checkpoint import load_generator

        module = load_generator(source, device="cpu")
        info = module.ganaug_info
    if classes is None:
        if info is None:
            raise UsageError("exporting a bare module needs classes=[...] (no ganaug_info on it)")
        classes = info.classes
    sha = weights_sha256 or (info.weights_sha256 if info is not None else _state_sha256(module))
    rid = run_id if run_id is not None else (info.run_id if info is not None else "")
    return module, list(classes), rid, sha


def _config_of(module: nn.Module, n_classes: int) -> tuple[int, int, int]:
    config = getattr(module, "config", None)
    if not isinstance(config, dict) or not {"z_dim", "image_size", "channels"} <= set(config):
        raise ExportError(
            "generator has no config with z_dim/image_size/channels; build it with build_generator"
        )
    if int(config.get("num_classes", n_classes)) != n_classes:
        raise ExportError(
            f"{n_classes} class names given, but the generator has {config['num_classes']} classes"
        )
    return int(config["z_dim"]), int(config["image_size"]), int(config["channels"])


def _torch_export(wrapper: nn.Module, z_dim: int, opset: int, verbose: bool) -> Any:
    """``torch.onnx.export`` with the dynamo exporter and a dynamic batch dimension."""
    batch = torch.export.Dim("batch", min=1, max=1 << 20)
    example = (torch.randn(2, z_dim), torch.zeros(2, dtype=torch.int64))
    outputs = ["image"] if wrapper.layout == "float-nchw" else ["image", PARITY_OUTPUT]
    with _quiet(verbose):
        program = torch.onnx.export(
            wrapper,
            example,
            dynamo=True,
            input_names=["z", "label"],
            output_names=outputs,
            dynamic_shapes={"z": {0: batch}, "label": {0: batch}},
            opset_version=opset,
            optimize=True,
            verbose=verbose,
        )
    return program.model_proto


@dataclass
class _Prepared:
    """The generator ready for export, with what the metadata says about it."""

    wrapper: _ExportWrapper
    config: dict[str, Any]
    classes: list[str]
    run_id: str
    sha: str
    z_dim: int
    image_size: int
    channels: int
    arch: str
    #: the temperature chosen at training time (``ganaug.temperature`` of the weights), if any
    temperature: float | None = None


def _check_spec(spec: ExportSpec) -> None:
    if spec.layout not in LAYOUTS:
        raise UsageError(f"unknown layout {spec.layout!r}; use one of {', '.join(LAYOUTS)}")
    spec.temperature = check_temperature_option(spec.temperature)
    if int(spec.opset) < MIN_OPSET:
        raise UsageError(f"opset must be >= {MIN_OPSET}, got {spec.opset}")
    if not spec.parity_batches or any(int(b) < 1 for b in spec.parity_batches):
        raise UsageError(f"parity_batches must be positive batch sizes, got {list(spec.parity_batches)}")


def _prepare(source: str | os.PathLike[str] | nn.Module, spec: ExportSpec) -> _Prepared:
    """Load (or copy) the generator, bake its parametrizations, wrap it for the ONNX contract."""
    module, class_names, rid, sha = _resolve(source, spec.classes, spec.run_id, spec.weights_sha256)
    z_dim, image_size, channels = _config_of(module, len(class_names))
    module.eval()
    bake_parametrizations(module)
    for p in module.parameters():
        p.requires_grad_(False)
    wrapper = _ExportWrapper(module, spec.layout).eval()
    arch = module.config.get("arch", type(module).__name__)
    trained_t = getattr(getattr(module, "ganaug_info", None), "temperature", None)
    return _Prepared(
        wrapper, module.config, class_names, rid, sha, z_dim, image_size, channels, arch, trained_t
    )


def _export_checked(prep: _Prepared, spec: ExportSpec) -> Any:
    """The ONNX proto from torch.onnx, passed through onnx.checker (ExportError otherwise)."""
    import onnx

    try:
        proto = _torch_export(prep.wrapper, prep.z_dim, int(spec.opset), spec.verbose)
    except Exception as exc:
        raise ExportError(
            f"torch.onnx.export failed for generator {prep.arch!r}: {first_line(exc, 300)}"
        ) from None
    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as exc:
        raise ExportError(f"exported graph failed onnx.checker: {first_line(exc, 300)}") from None
    return proto


def _parity(proto: Any, prep: _Prepared, spec: ExportSpec) -> tuple[float, list[tuple[Any, ...]]]:
    """onnxruntime vs torch on fresh random inputs, float output before any rounding: the largest
    difference and, per batch, ``(z, labels, torch's uint8 images)`` for the final check."""
    from ganaug.runtime import import_onnxruntime

    session = import_onnxruntime().InferenceSession(
        proto.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    rng = np.random.default_rng(spec.seed)
    cases = []
    max_err = 0.0
    for b in spec.parity_batches:
        z = rng.standard_normal((int(b), prep.z_dim), dtype=np.float32)
        lab = rng.integers(0, len(prep.classes), size=int(b), dtype=np.int64)
        with torch.inference_mode():
            ref_float = prep.wrapper(torch.from_numpy(z), torch.from_numpy(lab))[-1].numpy()
        got_float = session.run(None, {"z": z, "label": lab})[-1]
        if got_float.shape != ref_float.shape:
            raise ExportError(
                f"onnxruntime output shape {got_float.shape} != torch {ref_float.shape} at batch {b}"
            )
        err = float(np.max(np.abs(got_float.astype(np.float64) - ref_float)))
        if not np.isfinite(err) or err > spec.atol:
            raise ExportError(
                f"onnxruntime differs from torch by {err:.3g} (> {spec.atol:g}) at batch {b}; nothing written"
            )
        max_err = max(max_err, err)
        cases.append((z, lab, quantize_torch(torch.from_numpy(ref_float)).numpy()))
    return max_err, cases


def _finish_proto(proto: Any, prep: _Prepared, spec: ExportSpec) -> dict[str, str]:
    """Drop the parity output, add the ``ganaug.*`` metadata, check again; returns the metadata."""
    import onnx

    if spec.layout == "uint8-nhwc":  # drop the parity output; `image` stays, computed from the same tensor
        kept = [o for o in proto.graph.output if o.name != PARITY_OUTPUT]
        del proto.graph.output[:]
        proto.graph.output.extend(kept)
    size = prep.image_size
    meta = {
        "version": __version__,
        "classes": prep.classes,
        "z_dim": prep.z_dim,
        "image_size": size,
        "channels": prep.channels,
        "layout": spec.layout,
        "weights_sha256": prep.sha,
        "run_id": prep.run_id,
        "temperature": spec.temperature or prep.temperature or 1.0,
        "arch": prep.arch,
        "config": prep.config,
    }
    props = {f"ganaug.{k}": json.dumps(v) for k, v in meta.items()}
    onnx.helper.set_model_props(proto, props)
    proto.doc_string = (
        f"ganaug {prep.arch} conditional generator ({len(prep.classes)} classes, "
        f"{size}x{size}x{prep.channels})"
    )
    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as exc:
        raise ExportError(f"final graph failed onnx.checker: {first_line(exc, 300)}") from None
    return props


def _write_checked(proto: Any, out_path: Path, cases: list[tuple[Any, ...]]) -> tuple[int, int]:
    """Save ``proto`` atomically once the runtime loads it and its uint8 images match torch's
    within one level: ``(max pixel difference, file size)``."""
    import onnx

    from ganaug.runtime import OnnxGenerator

    max_pixel = 0
    with atomic_path(out_path) as tmp:
        onnx.save_model(proto, str(tmp))
        try:
            final = OnnxGenerator(tmp, providers=["CPUExecutionProvider"])
        except CheckpointError as exc:
            raise ExportError(f"exported file does not pass the runtime's checks: {exc}") from None
        for z, lab, ref_img in cases:
            got_img = final.generate_from_noise(z, lab, batch_size=max(1, len(lab)))
            diff = int(np.max(np.abs(got_img.astype(np.int16) - ref_img.astype(np.int16))))
            if diff > 1:
                raise ExportError(f"final uint8 images differ from torch by {diff} levels; nothing written")
            max_pixel = max(max_pixel, diff)
        size_bytes = tmp.stat().st_size
    return max_pixel, size_bytes


def export_generator(
    source: str | os.PathLike[str] | nn.Module,
    out_path: str | os.PathLike[str],
    spec: ExportSpec | None = None,
    *,
    overwrite: bool = False,
    **options: Any,
) -> ExportReport:
    """Export a generator (run dir, ``.safetensors`` file, or module) to ``out_path``; see module doc.

    ``options`` are fields of :class:`~ganaug.export_spec.ExportSpec`, set over ``spec``:
    ``layout``, ``opset``, ``temperature``, ``classes``, ``run_id``, ``weights_sha256``,
    ``parity_batches``, ``atol``, ``seed``, ``verbose`` (``export_generator(run, "g.onnx",
    layout="float-nchw")``). For a module, ``classes`` is required unless it came from
    :func:`~ganaug.checkpoint.load_generator`. Raises ExportError (and writes nothing) when a check
    fails. ``out_path`` may not be the weights file or lie in a run's ``weights/``; an existing file
    is replaced only with ``overwrite`` and only when it is an ONNX file ganaug exported (see
    :mod:`ganaug.output_safety`). ``temperature`` (in ``(0, 4]``; default: the one chosen at training
    time, stored in the weights, else 1.0) is stored as ``ganaug.temperature``: the latent standard
    deviation :meth:`ganaug.runtime.OnnxGenerator.generate` samples at by default.
    """
    t0 = time.perf_counter()
    spec = (spec or ExportSpec()).with_options(**options)
    _check_spec(spec)
    out_path = Path(out_path)
    check_export_out(None if isinstance(source, nn.Module) else source, out_path, overwrite=overwrite)
    prep = _prepare(source, spec)
    proto = _export_checked(prep, spec)
    max_err, cases = _parity(proto, prep, spec)
    props = _finish_proto(proto, prep, spec)
    opset_used = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), int(spec.opset))
    max_pixel, size_bytes = _write_checked(proto, out_path, cases)
    return ExportReport(
        path=out_path,
        size_bytes=size_bytes,
        opset=int(opset_used),
        layout=spec.layout,
        max_abs_error=max_err,
        max_pixel_diff=max_pixel,
        parity_batches=tuple(int(b) for b in spec.parity_batches),
        classes=prep.classes,
        z_dim=prep.z_dim,
        image_size=prep.image_size,
        channels=prep.channels,
        weights_sha256=prep.sha,
        run_id=prep.run_id,
        seconds=time.perf_counter() - t0,
        metadata=props,
    )


__all__ = ["MIN_OPSET", "ExportReport", "ExportSpec", "bake_parametrizations", "export_generator"]
