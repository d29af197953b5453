"""``ganaug export`` declared once (:mod:`ganaug.specs`): :class:`ExportSpec` gives the CLI options,
``--config``, and the options of :func:`ganaug.export.export_generator` (its library-only fields).

Torch-free, so the command can check its arguments before torch is imported.
"""

# ruff: noqa: RUF009 -- ganaug.specs.option() is a field specifier (it returns dataclasses.field)
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ganaug.limits import TEMPERATURE, Limit
from ganaug.runtime import LAYOUTS
from ganaug.specs import option

#: The lowest ONNX opset ganaug exports (the ONNX contract: opset >= 18).
MIN_OPSET = 18


@dataclass
class ExportSpec:
    """``ganaug export``: RUN's EMA generator to the ONNX file ``out``.

    ``run``, ``out`` and ``checkpoint`` are the command's; :func:`ganaug.export.export_generator`
    takes its source and output path as arguments and uses the other fields. The fields after
    ``temperature`` are for library callers only (no options).
    """

    run: str | None = option(None, argument=True, path=True, required=True)
    out: str | None = option(None, flags=("--out", "-o"), path=True, required=True, help="ONNX file.")
    layout: str = option(
        "uint8-nhwc",
        choices=LAYOUTS,
        help="Output 'image': uint8 [batch,H,W,C] or float32 [batch,C,H,W] in [-1, 1].",
    )
    opset: int = option(MIN_OPSET, limit=Limit(int, MIN_OPSET, 10_000), help="ONNX opset.")
    verbose: bool = option(False, show_default=False, help="Show torch.onnx's own progress output.")
    checkpoint: str | None = option(
        None, help="With a run directory: best (lowest validation FID of its EMA snapshots), last, or a step."
    )
    temperature: float | None = option(
        None,
        limit=TEMPERATURE,
        help="Default sampling temperature (latent std, in (0, 4]) stored as ganaug.temperature "
        "(default: the one chosen at training time, else 1.0).",
    )
    #: class names of a bare module (default: the ones saved with the weights)
    classes: list[str] | None = option(None, cli=False)
    run_id: str | None = option(None, cli=False)
    weights_sha256: str | None = option(None, cli=False)
    #: batch sizes of the onnxruntime-vs-torch parity check, and its tolerance (float output)
    parity_batches: tuple[int, ...] = option((1, 64), cli=False)
    atol: float = option(1e-4, cli=False)
    #: seed of the parity check's random inputs (None: fresh ones)
    seed: int | None = option(None, cli=False)

    def with_options(self, **options: Any) -> ExportSpec:
        """A copy with ``options`` (field names) set; TypeError for an unknown one."""
        from dataclasses import fields, replace

        unknown = sorted(set(options) - {f.name for f in fields(self)})
        if unknown:
            raise TypeError(f"export_generator() got unexpected keyword argument(s) {', '.join(unknown)}")
        return replace(self, **options)


__all__ = ["MIN_OPSET", "ExportSpec"]
