"""ONNX export: graph contract, metadata, parity with torch, atomic failure, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from conftest import run_cli
from torch import nn

from ganaug.checkpoint import load_generator, save_generator
from ganaug.errors import CheckpointError, ExportError, UsageError
from ganaug.export import export_generator
from ganaug.models import build_generator
from ganaug.noise import sample_noise
from ganaug.runtime import OnnxGenerator
from ganaug.sampling import quantize_torch

CLASSES = ["shirt", "bag", "shoe"]
# Small, fast settings per architecture (dcgan/resnet need >= 28 px).
ARCH_KW = {
    "mlp": {"width": 32, "image_size": 16},
    "dcgan": {"width": 8, "image_size": 28},
    "resnet": {"width": 8, "image_size": 28},
}


def make_generator(arch: str, channels: int, z_dim: int = 8, seed: int = 0) -> nn.Module:
    """A built generator with weights spread enough that its images are not flat grey."""
    torch.manual_seed(seed)
    g = build_generator(arch, num_classes=len(CLASSES), z_dim=z_dim, channels=channels, **ARCH_KW[arch])
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in g.named_parameters():
            base = 1.0 if name.endswith("weight") and p.dim() == 1 else 0.0  # norm scales around 1
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2 + base)
    return g.eval()


def make_run(root: Path, arch: str, channels: int) -> Path:
    run = root / f"run_{arch}_{channels}"
    g = make_generator(arch, channels)
    save_generator(run / "weights" / "ema.safetensors", g, classes=CLASSES, run_id=f"test-{arch}", step=7)
    return run


# Every architecture with grayscale and RGB and both layouts (crossed, to keep the file fast).
GRID = [
    ("mlp", 1, "uint8-nhwc"),
    ("mlp", 3, "float-nchw"),
    ("dcgan", 1, "uint8-nhwc"),
    ("dcgan", 3, "float-nchw"),
    ("resnet", 3, "uint8-nhwc"),
    ("resnet", 1, "float-nchw"),
]


@pytest.mark.parametrize(("arch", "channels", "layout"), GRID, ids=["-".join(map(str, c)) for c in GRID])
def test_export_round_trip(tmp_path: Path, arch: str, channels: int, layout: str) -> None:
    run = make_run(tmp_path, arch, channels)
    out = tmp_path / "g.onnx"
    report = export_generator(run, out, layout=layout)
    size = ARCH_KW[arch]["image_size"]

    assert out.is_file() and report.size_bytes == out.stat().st_size
    assert report.opset >= 18 and report.layout == layout
    assert report.max_abs_error <= 1e-4 and report.max_pixel_diff <= 1
    assert report.parity_batches == (1, 64)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp leftovers

    model = onnx.load(str(out))
    meta = {p.key: json.loads(p.value) for p in model.metadata_props}
    info = load_generator(run).ganaug_info
    assert meta["ganaug.classes"] == CLASSES
    assert meta["ganaug.z_dim"] == 8 and meta["ganaug.image_size"] == size
    assert meta["ganaug.channels"] == channels and meta["ganaug.layout"] == layout
    assert meta["ganaug.weights_sha256"] == info.weights_sha256
    assert meta["ganaug.run_id"] == f"test-{arch}" and meta["ganaug.version"]
    assert [i.name for i in model.graph.input] == ["z", "label"]
    assert [o.name for o in model.graph.output] == ["image"]
    z_t, label_t = (i.type.tensor_type for i in model.graph.input)
    assert z_t.elem_type == onnx.TensorProto.FLOAT and label_t.elem_type == onnx.TensorProto.INT64
    out_t = model.graph.output[0].type.tensor_type
    want = onnx.TensorProto.UINT8 if layout == "uint8-nhwc" else onnx.TensorProto.FLOAT
    assert out_t.elem_type == want
    assert out_t.shape.dim[0].dim_param  # dynamic batch
    dims = [d.dim_value for d in out_t.shape.dim[1:]]
    assert dims == ([size, size, channels] if layout == "uint8-nhwc" else [channels, size, size])
    assert not any("parametrizations" in init.name for init in model.graph.initializer)

    # Runtime vs torch on the same noise, at batch 1 and 64.
    gen = OnnxGenerator(out, providers=["CPUExecutionProvider"])
    assert gen.image_shape == (size, size, channels) and gen.layout == layout
    torch_g = load_generator(run)
    for n in (1, 64):
        labels = np.arange(n, dtype=np.int64) % len(CLASSES)
        got = gen.generate(labels, seed=n, batch_size=n)
        with torch.inference_mode():
            z = torch.from_numpy(sample_noise(n, n, 8))
            ref = quantize_torch(torch_g(z, torch.from_numpy(labels))).numpy()
        assert got.shape == (n, size, size, channels) and got.dtype == np.uint8
        diff = np.abs(got.astype(np.int16) - ref.astype(np.int16))
        assert diff.max() <= 1 and (diff == 0).mean() > 0.99
    assert got.std() > 5  # images are not flat, so the comparison above means something


def test_spectral_norm_is_baked_in_and_module_untouched(tmp_path: Path) -> None:
    g = make_generator("mlp", 1)
    first = next(m for m in g.modules() if isinstance(m, nn.Linear))
    nn.utils.parametrizations.spectral_norm(first)
    g.eval()
    report = export_generator(g, tmp_path / "sn.onnx", classes=CLASSES, layout="float-nchw")
    assert report.max_abs_error <= 1e-4
    assert torch.nn.utils.parametrize.is_parametrized(first)  # the caller's module is not modified
    model = onnx.load(str(tmp_path / "sn.onnx"))
    assert not any("parametrizations" in init.name for init in model.graph.initializer)
    meta = {p.key: json.loads(p.value) for p in model.metadata_props}
    assert len(meta["ganaug.weights_sha256"]) == 64 and meta["ganaug.run_id"] == ""
    gen = OnnxGenerator(tmp_path / "sn.onnx")
    labels = np.array([0, 1, 2, 1])
    with torch.inference_mode():
        ref = quantize_torch(g(torch.from_numpy(sample_noise(3, 4, 8)), torch.from_numpy(labels))).numpy()
    assert np.abs(gen.generate(labels, seed=3).astype(int) - ref).max() <= 1


class _NoisyGenerator(nn.Module):
    """A user model whose output is random at run time, so onnxruntime cannot match torch."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = make_generator("mlp", 1)
        self.config = self.inner.config

    def forward(self, z: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        x = self.inner(z, label)
        return (x + 0.1 * torch.randn_like(x)).clamp(-1, 1)


def test_failed_parity_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "g.onnx"
    export_generator(make_generator("mlp", 1), out, classes=CLASSES)  # --overwrite needs ganaug's ONNX
    previous = out.read_bytes()
    with pytest.raises(ExportError, match="differs from torch"):
        export_generator(_NoisyGenerator().eval(), out, classes=CLASSES, overwrite=True)
    assert out.read_bytes() == previous
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.onnx"]


def test_bad_options(tmp_path: Path) -> None:
    run = make_run(tmp_path, "mlp", 1)
    with pytest.raises(UsageError, match="opset"):
        export_generator(run, tmp_path / "a.onnx", opset=17)
    with pytest.raises(UsageError, match="layout"):
        export_generator(run, tmp_path / "a.onnx", layout="nhwc")
    with pytest.raises(UsageError, match="classes"):
        export_generator(build_generator("mlp", num_classes=3, z_dim=8, image_size=16), tmp_path / "a.onnx")
    with pytest.raises(ExportError, match="class names"):
        export_generator(make_generator("mlp", 1), tmp_path / "a.onnx", classes=["a", "b"])
    assert not (tmp_path / "a.onnx").exists()


def test_higher_opset(tmp_path: Path) -> None:
    report = export_generator(make_generator("mlp", 1), tmp_path / "g20.onnx", classes=CLASSES, opset=20)
    assert report.opset == 20
    assert OnnxGenerator(tmp_path / "g20.onnx").generate([0, 1], seed=0).shape == (2, 16, 16, 1)


def test_cli_export(tmp_path: Path) -> None:
    run = make_run(tmp_path, "mlp", 3)
    out = tmp_path / "cli.onnx"
    proc = run_cli("export", str(run), "--out", str(out), "--layout", "float-nchw")
    assert proc.returncode == 0, proc.stderr
    assert "opset 18" in proc.stdout and "parity max" in proc.stdout and "KB" in proc.stdout
    assert "torch.onnx" not in proc.stdout + proc.stderr  # exporter chatter is silenced
    assert OnnxGenerator(out).layout == "float-nchw"

    usage = run_cli("export", str(run), "--out", str(tmp_path / "y.onnx"), "--opset", "12")
    assert usage.returncode == 2 and "opset" in usage.stderr
    assert not (tmp_path / "y.onnx").exists()


def test_missing_run_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        export_generator(tmp_path / "missing", tmp_path / "x.onnx")
    (tmp_path / "empty_run").mkdir()
    with pytest.raises(CheckpointError, match="no weights"):
        export_generator(tmp_path / "empty_run", tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()
