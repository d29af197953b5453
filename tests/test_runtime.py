"""ganaug.runtime.OnnxGenerator: torch-free import, labels, seeding, batching, hostile files."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
from conftest import rewrite_onnx_props
from onnx import TensorProto, helper

from ganaug.checkpoint import save_generator
from ganaug.errors import CheckpointError, UsageError
from ganaug.export import export_generator
from ganaug.models import build_generator
from ganaug.runtime import OnnxGenerator, resolve_labels, to_uint8_nhwc

CLASSES = ["shirt", "bag", "shoe"]


@pytest.fixture(scope="module")
def onnx_paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One small mlp generator exported in both layouts."""
    import torch

    root = tmp_path_factory.mktemp("rt")
    torch.manual_seed(0)
    g = build_generator("mlp", num_classes=3, z_dim=8, image_size=12, channels=3, width=32).eval()
    save_generator(root / "run" / "weights" / "ema.safetensors", g, classes=CLASSES, run_id="rt", step=1)
    paths = {}
    for layout in ("uint8-nhwc", "float-nchw"):
        paths[layout] = root / f"{layout}.onnx"
        export_generator(root / "run", paths[layout], layout=layout)
    return paths


@pytest.fixture(scope="module")
def gen(onnx_paths: dict[str, Path]) -> OnnxGenerator:
    return OnnxGenerator(onnx_paths["uint8-nhwc"])


def test_import_does_not_pull_torch(onnx_paths: dict[str, Path]) -> None:
    code = textwrap.dedent(
        f"""
        import sys
        from ganaug.runtime import OnnxGenerator
        g = OnnxGenerator({str(onnx_paths["uint8-nhwc"])!r})
        images = g.generate(["shirt", 2, "bag"], seed=1)
        assert images.shape == (3, 12, 12, 3), images.shape
        heavy = sorted(m for m in ("torch", "onnx", "onnxscript") if m in sys.modules)
        print("HEAVY", heavy)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout


def test_attributes_and_providers(gen: OnnxGenerator, onnx_paths: dict[str, Path]) -> None:
    assert gen.classes == CLASSES and gen.z_dim == 8 and gen.image_shape == (12, 12, 3)
    assert gen.layout == "uint8-nhwc" and gen.metadata["run_id"] == "rt"
    assert gen.providers[-1] == "CPUExecutionProvider"
    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        assert gen.providers[0] == "CUDAExecutionProvider"
    cpu = OnnxGenerator(onnx_paths["uint8-nhwc"], providers=["CPUExecutionProvider"])
    assert cpu.providers == ["CPUExecutionProvider"]
    assert len(gen.generator_sha256) == 64


def test_generate_is_seeded_and_batch_independent(gen: OnnxGenerator) -> None:
    labels = [i % 3 for i in range(70)]
    a = gen.generate(labels, seed=5, batch_size=256)
    b = gen.generate(labels, seed=5, batch_size=3)
    c = gen.generate(labels, seed=6)
    assert a.dtype == np.uint8 and a.shape == (70, 12, 12, 3)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    # A prefix of the request gives the same first images (the noise stream is consumed in order).
    assert np.array_equal(gen.generate(labels[:10], seed=5), a[:10])
    t = gen.generate(labels, seed=5, truncation=0.5)
    assert t.shape == a.shape and not np.array_equal(t, a)
    assert gen.generate([], seed=0).shape == (0, 12, 12, 3)


def test_names_and_indices_are_the_same_labels(gen: OnnxGenerator) -> None:
    by_name = gen.generate(["shirt", "bag", "shoe", "bag"], seed=2)
    by_index = gen.generate(np.array([0, 1, 2, 1], dtype=np.int32), seed=2)
    mixed = gen.generate(["shirt", 1, np.int64(2), "bag"], seed=2)
    assert np.array_equal(by_name, by_index) and np.array_equal(by_name, mixed)
    # Different labels on the same noise give different images: the label input is used.
    assert not np.array_equal(by_name, gen.generate([1, 1, 1, 1], seed=2))


def test_generate_per_class(gen: OnnxGenerator) -> None:
    images, labels = gen.generate_per_class(4, classes=["shoe", "shirt"], seed=0, batch_size=3)
    assert images.shape == (8, 12, 12, 3)
    assert labels.tolist() == [2] * 4 + [0] * 4 and labels.dtype == np.int64
    assert np.array_equal(images, gen.generate(labels, seed=0))
    images, labels = gen.generate_per_class(0)
    assert len(images) == 0 and len(labels) == 0


def test_float_layout_matches_uint8_layout(gen: OnnxGenerator, onnx_paths: dict[str, Path]) -> None:
    flt = OnnxGenerator(onnx_paths["float-nchw"])
    assert flt.layout == "float-nchw" and flt.image_shape == gen.image_shape
    labels = [0, 1, 2] * 22
    a, b = gen.generate(labels, seed=9), flt.generate(labels, seed=9)
    assert b.dtype == np.uint8 and b.shape == a.shape
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


def test_to_uint8_rounds_like_the_graph() -> None:
    x = np.array([-1.0, -0.99, 0.0, 0.5, 1.0, 1.5, -3.0], dtype=np.float32).reshape(1, 1, 1, 7)
    out = to_uint8_nhwc(x)
    assert out.shape == (1, 1, 7, 1)
    assert out[0, 0, :, 0].tolist() == [0, 1, 128, 191, 255, 255, 0]  # 127.5 rounds half to even


@pytest.mark.parametrize(
    ("labels", "match"),
    [
        (["shirt", "dress"], "unknown class 'dress'"),
        ([0, 3], "out of range"),
        ([-1], "out of range"),
        ([0.5], "neither a class name nor an integer"),
        (np.array([0.0, 1.0]), "dtype float64"),
        (np.zeros((2, 2), dtype=np.int64), "1-D"),
        ([True], "neither"),
    ],
)
def test_bad_labels(gen: OnnxGenerator, labels: object, match: str) -> None:
    with pytest.raises(UsageError, match=match):
        gen.generate(labels, seed=0)


def test_bad_counts_and_options(gen: OnnxGenerator) -> None:
    with pytest.raises(UsageError, match="n_per_class must be >= 0"):
        gen.generate_per_class(-1)
    with pytest.raises(UsageError, match="batch_size"):
        gen.generate([0], batch_size=0)
    with pytest.raises(UsageError, match="truncation"):
        gen.generate([0], truncation=-1.0)
    with pytest.raises(UsageError, match="seed"):
        gen.generate([0], seed=-3)
    with pytest.raises(UsageError, match="more than once"):
        gen.generate_per_class(1, classes=["bag", 1])
    assert resolve_labels("bag", CLASSES).tolist() == [1]


def _rewrite(src: Path, dst: Path, **meta: object) -> Path:
    """Copy an ONNX file with some ``ganaug.*`` metadata replaced by JSON values (None: removed)."""
    raw = {key: None if value is None else json.dumps(value) for key, value in meta.items()}
    return rewrite_onnx_props(src, dst, **raw)


def test_hostile_files(tmp_path: Path, onnx_paths: dict[str, Path]) -> None:
    good = onnx_paths["uint8-nhwc"]
    with pytest.raises(CheckpointError, match="not found"):
        OnnxGenerator(tmp_path / "nope.onnx")

    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="not a loadable ONNX model"):
        OnnxGenerator(truncated)

    text = tmp_path / "text.onnx"
    text.write_text("hello, I am not a model\n")
    with pytest.raises(CheckpointError, match="not a loadable ONNX model"):
        OnnxGenerator(text)

    # A valid ONNX model that is not a ganaug generator.
    node = helper.make_node("Identity", ["x"], ["y"])
    graph = helper.make_graph(
        [node],
        "other",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    foreign = tmp_path / "foreign.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(foreign))
    with pytest.raises(CheckpointError, match=r"without ganaug\.\* metadata"):
        OnnxGenerator(foreign)
    with_meta = _rewrite(foreign, tmp_path / "foreign_meta.onnx", **json.loads(_meta_json(good)))
    with pytest.raises(CheckpointError, match="expected graph inputs 'z' and 'label'"):
        OnnxGenerator(with_meta)

    # ganaug generators whose metadata disagrees with the graph.
    cases = {
        "z_dim": ({"z_dim": 16}, "input z"),
        "size": ({"image_size": 20}, "output image"),
        "channels": ({"channels": 1}, "output image"),
        "layout": ({"layout": "float-nchw"}, "output image"),
        "classes": ({"classes": [*CLASSES, "extra1", "extra2"]}, "metadata does not match the graph"),
        "missing": ({"z_dim": None}, r"missing ganaug\.z_dim"),
        "bad_layout": ({"layout": "nchw"}, "ganaug.layout must be one of"),
        "dup_classes": ({"classes": ["a", "a", "b"]}, "duplicate"),
    }
    for name, (meta, match) in cases.items():
        bad = _rewrite(good, tmp_path / f"{name}.onnx", **meta)
        with pytest.raises(CheckpointError, match=match):
            OnnxGenerator(bad)


def _meta_json(path: Path) -> str:
    model = onnx.load(str(path))
    return json.dumps({p.key[len("ganaug.") :]: json.loads(p.value) for p in model.metadata_props})
