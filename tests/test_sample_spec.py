"""``ganaug sample`` from its spec (:class:`ganaug.sample_spec.SampleSpec`): the ``config.yaml`` it
saves in the output reproduces the spec exactly, and ``--config`` of it repeats the job."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import export_random_generator, run_cli

from ganaug.data import load_dataset
from ganaug.sample_spec import SampleSpec
from ganaug.specs import parse_spec, spec_to_config

CLASSES = ["c0", "c1", "c2"]


@pytest.fixture(scope="module")
def onnx_gen(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_random_generator(tmp_path_factory.mktemp("gen"), CLASSES, 8, 3, "sample-spec")


def test_sample_saves_a_config_that_repeats_the_job(tmp_path: Path, onnx_gen: Path) -> None:
    args = [str(onnx_gen), "-n", "3", "--classes", "c0,c2", "--seed", "5", "--truncation", "1.5"]
    args += ["--temperature", "0.8", "--batch-size", "2", "--format", "npz", "--device", "cpu"]
    first = run_cli("sample", *args, "--out", str(tmp_path / "o1"), "-q")
    assert first.returncode == 0, first.stderr
    saved = tmp_path / "o1" / "config.yaml"
    expected = parse_spec(SampleSpec, [*args, "--out", str(tmp_path / "o1")], "sample")
    assert expected.classes == ["c0", "c2"] and expected.temperature == 0.8 and expected.format == "npz"
    assert parse_spec(SampleSpec, ["--config", str(saved)], "sample") == expected
    assert yaml.safe_load(saved.read_text()) == spec_to_config(expected)
    summary = json.loads((tmp_path / "o1" / "summary.json").read_text())
    assert summary["temperature"] == 0.8 and summary["truncation"] == 1.5  # passed down to the library

    again = run_cli("sample", "--config", str(saved), "--out", str(tmp_path / "o2"), "-q")
    assert again.returncode == 0, again.stderr
    cfg1, cfg2 = (yaml.safe_load((tmp_path / o / "config.yaml").read_text()) for o in ("o1", "o2"))
    assert cfg1.pop("out") != cfg2.pop("out") and cfg1 == cfg2
    with np.load(tmp_path / "o1" / "data.npz") as a, np.load(tmp_path / "o2" / "data.npz") as b:
        assert a["images"].shape == (6, 8, 8, 1)
        assert np.array_equal(a["images"], b["images"]) and np.array_equal(a["labels"], b["labels"])


def test_old_spellings_still_work(tmp_path: Path, onnx_gen: Path) -> None:
    spec = parse_spec(SampleSpec, [str(onnx_gen), "-o", "x", "-n", "1", "--format", "png"], "sample")
    assert spec.format == "imagefolder"
    (tmp_path / "old.yaml").write_text(f"source: {onnx_gen}\nout: x\nn_per_class: 2\nfmt: npz\n")
    assert parse_spec(SampleSpec, ["--config", str(tmp_path / "old.yaml")], "sample").format == "npz"

    proc = run_cli(
        "sample", str(onnx_gen), "--out", str(tmp_path / "png"), "-n", "2", "--format", "png", "-q"
    )
    assert proc.returncode == 0, proc.stderr
    assert "--format png is deprecated, use --format imagefolder" in proc.stderr
    assert yaml.safe_load((tmp_path / "png" / "config.yaml").read_text())["format"] == "imagefolder"
    ds = load_dataset(tmp_path / "png", cache=False)  # config.yaml beside the class folders is harmless
    assert ds.classes == CLASSES and list(ds.class_counts().values()) == [2, 2, 2]


def test_bad_values_are_usage_errors(tmp_path: Path, onnx_gen: Path) -> None:
    for bad, message in [
        (["--format", "tiff"], "--format must be one of imagefolder, npz"),
        (["--temperature", "0"], "--temperature"),
        (["--classes", "c0,,c1"], "--classes has an empty entry"),
        (["--shard", "3/2"], "--shard must be K/N"),
    ]:
        proc = run_cli("sample", str(onnx_gen), "--out", str(tmp_path / "x"), "-n", "1", *bad)
        assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    (tmp_path / "c.yaml").write_text("source: g.onnx\nn_per_class: 1\nout: o\nquality: true\n")
    proc = run_cli("sample", "--config", str(tmp_path / "c.yaml"))
    assert proc.returncode == 2 and "unknown option 'quality' for 'ganaug sample'" in proc.stderr
    assert not (tmp_path / "x").exists()


def test_export_spec_round_trips_through_its_config(tmp_path: Path) -> None:
    from ganaug.export_spec import ExportSpec
    from ganaug.specs import save_spec

    args = ["runs/exp", "-o", "g.onnx", "--layout", "float-nchw", "--opset", "20", "--temperature", "1.2"]
    spec = parse_spec(ExportSpec, [*args, "--checkpoint", "best", "--verbose"], "export")
    assert (spec.layout, spec.opset, spec.temperature, spec.verbose) == ("float-nchw", 20, 1.2, True)
    save_spec(spec, tmp_path / "c.yaml")
    assert "parity_batches" not in yaml.safe_load((tmp_path / "c.yaml").read_text())  # library-only
    assert parse_spec(ExportSpec, ["--config", str(tmp_path / "c.yaml")], "export") == spec
