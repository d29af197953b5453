"""``ganaug export``: a run's EMA generator to a checked, self-describing ONNX file."""

from __future__ import annotations

import click

from ganaug.cli.common import config_option, echo, quiet_option


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


@click.command()
@click.argument("run", type=click.Path(path_type=str))
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False, path_type=str), help="ONNX file.")
@click.option(
    "--layout",
    type=click.Choice(["uint8-nhwc", "float-nchw"]),
    default="uint8-nhwc",
    show_default=True,
    help="Output 'image': uint8 [batch,H,W,C] or float32 [batch,C,H,W] in [-1, 1].",
)
@click.option("--opset", type=click.IntRange(min=18), default=18, show_default=True, help="ONNX opset.")
@click.option("--verbose", is_flag=True, help="Show torch.onnx's own progress output.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out that ganaug exported before.")
@click.option(
    "--checkpoint",
    default=None,
    help="With a run directory: best (lowest validation FID of its EMA snapshots), last, or a step.",
)
@quiet_option
@config_option
def export(
    run: str,
    out: str,
    layout: str,
    opset: int,
    verbose: bool,
    overwrite: bool,
    checkpoint: str | None,
    quiet: bool,
) -> None:
    """Export the EMA generator of RUN (run directory or .safetensors file) to ONNX.

    Spectral norm is baked in; inputs z float32 [batch, z_dim] and label int64 [batch]; metadata
    ganaug.* (classes, z_dim, image_size, channels, layout, weights_sha256, run_id). The file is
    written only if onnx.checker passes and onnxruntime matches torch within 1e-4 at batch 1 and 64.
    An existing --out is replaced only with --overwrite, and only if it is an ONNX file ganaug exported.

    \b
    Example:
      ganaug export runs/exp --out generator.onnx
      ganaug export runs/exp/weights/ema.safetensors --out g_float.onnx --layout float-nchw
    """
    from ganaug.cli.preflight import require_run

    require_run(run)  # before torch is imported
    from ganaug.output_safety import check_export_out

    check_export_out(run, out, overwrite=overwrite)  # before torch is imported: refusals are instant
    from ganaug.export import export_generator
    from ganaug.snapshots import select_weights

    run = str(select_weights(run, checkpoint))  # a snapshot lies inside the run dir checked above

    echo(f"exporting {run} ({layout}, opset {opset}) ...", quiet)
    report = export_generator(run, out, layout=layout, opset=opset, verbose=verbose, overwrite=overwrite)
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
