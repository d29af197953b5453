"""``ganaug export``: a run's EMA generator to a checked, self-describing ONNX file.

"Load spec, call library, print": the options come from :class:`ganaug.export_spec.ExportSpec`.
"""

from __future__ import annotations

from typing import Any

import click

from ganaug.cli.common import echo, quiet_option
from ganaug.export_spec import ExportSpec
from ganaug.specs import click_options, spec_from_params


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


@click.command()
@click_options(ExportSpec)
@click.option("--overwrite", is_flag=True, help="Replace an existing --out that ganaug exported before.")
@quiet_option
def export(overwrite: bool, quiet: bool, **params: Any) -> None:
    """Export the EMA generator of RUN (run directory or .safetensors file) to ONNX.

    Spectral norm is baked in; inputs z float32 [batch, z_dim] and label int64 [batch]; metadata
    ganaug.* (classes, z_dim, image_size, channels, layout, weights_sha256, run_id, temperature). The
    file is written only if onnx.checker passes and onnxruntime matches torch within 1e-4 at batch 1
    and 64.
    An existing --out is replaced only with --overwrite, and only if it is an ONNX file ganaug exported.

    \b
    Example:
      ganaug export runs/exp --out generator.onnx
      ganaug export runs/exp/weights/ema.safetensors --out g_float.onnx --layout float-nchw
      ganaug export runs/exp --checkpoint best --temperature 1.2 --out g_t12.onnx
    """
    from ganaug.cli.preflight import require_run
    from ganaug.output_safety import check_export_out

    spec = spec_from_params(ExportSpec, params)
    require_run(spec.run)  # before torch is imported
    check_export_out(spec.run, spec.out, overwrite=overwrite)  # before torch: refusals are instant
    from ganaug.export import export_generator
    from ganaug.snapshots import select_weights

    run = str(select_weights(spec.run, spec.checkpoint))  # a snapshot lies inside the run dir checked above
    echo(f"exporting {run} ({spec.layout}, opset {spec.opset}) ...", quiet)
    report = export_generator(run, spec.out, spec, overwrite=overwrite)
    echo(
        f"  {len(report.classes)} classes, z_dim {report.z_dim}, "
        f"image {report.image_size}x{report.image_size}x{report.channels}",
        quiet,
    )
    click.echo(
        f"wrote {report.path} ({_size(report.size_bytes)}, opset {report.opset}, {report.layout}); "
        f"parity max |torch - onnxruntime| = {report.max_abs_error:.2e} at batch "
        f"{', '.join(map(str, report.parity_batches))} (max pixel diff {report.max_pixel_diff})"
    )
