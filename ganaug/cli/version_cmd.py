"""``ganaug version``: versions of ganaug and the libraries it runs on."""

from __future__ import annotations

import json

import click

from ganaug.cli.common import warn
from ganaug.versions import dist_version, library_versions


def onnxruntime_flavours() -> list[str]:
    """Installed onnxruntime distributions (more than one breaks the CUDA provider)."""
    names = ["onnxruntime", "onnxruntime-gpu", "onnxruntime-directml", "onnxruntime-openvino"]
    return [n for n in names if dist_version(n)]


def collect_versions() -> dict:
    """Versions and onnxruntime providers, as a dict."""
    info: dict = library_versions(("torch", "albumentations", "onnx", "onnxscript", "numpy", "pluggy"), False)
    flavours = onnxruntime_flavours()
    info["onnxruntime"] = {n: dist_version(n) for n in flavours} or None
    try:
        import onnxruntime

        info["onnxruntime_providers"] = onnxruntime.get_available_providers()
    except ImportError:
        info["onnxruntime_providers"] = []
    try:
        import torch

        info["torch_cuda"] = torch.cuda.is_available()
    except ImportError:
        info["torch_cuda"] = None
    return info


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def version(as_json: bool) -> None:
    """Show versions of ganaug, torch, onnxruntime (flavour and providers) and albumentations.

    \b
    Example:
      ganaug version --json
    """
    info = collect_versions()
    flavours = onnxruntime_flavours()
    if len(flavours) > 1:
        warn(
            f"both {' and '.join(flavours)} are installed; they share the 'onnxruntime' module and the "
            "CUDA provider breaks. Keep one: pip uninstall " + " ".join(flavours) + ", then install one."
        )
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    for key, value in info.items():
        if isinstance(value, dict):  # installed distributions of one module, e.g. onnxruntime(-gpu)
            same = list(value) == [key]
            value = ", ".join(str(v) if same else f"{k} {v}" for k, v in value.items())
        elif isinstance(value, list):
            value = ", ".join(value) or "none"
        click.echo(f"{key:24s} {value if value is not None else 'not installed'}")
