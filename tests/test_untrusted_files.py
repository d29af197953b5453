"""Untrusted files and options (issue #16): hostile weights metadata, hostile ONNX generators,
damaged run configs and out-of-range options all end in one-line errors, never tracebacks or huge
allocations; and a run's saved ``config.yaml`` is accepted by ``--config`` (issue #17)."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
import yaml
from conftest import export_random_generator, rewrite_onnx_props, run_cli, write_imagefolder
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper
from safetensors import safe_open
from safetensors.torch import save_file

from ganaug.checkpoint import MAX_PARAMETERS, load_generator, load_generator_info, save_generator
from ganaug.errors import CheckpointError, DataError, GanaugError, UsageError
from ganaug.models import build_generator
from ganaug.runtime import OnnxGenerator
from ganaug.training.config import TrainConfig, validate

CLASSES = ["cat", "dog", "owl"]
TINY = ["--arch", "mlp", "--batch-size", "4", "--z-dim", "8", "--g-width", "8", "--d-width", "8"]
TINY += ["--steps", "2", "--log-every", "1", "--sample-every", "1", "--checkpoint-every", "1", "-q"]


def _one_line_error(proc, code: int) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.lower().startswith("error")]
    assert len(errors) == 1, proc.stderr


# --- safetensors metadata -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a real (tiny) generator weights file."""
    folder = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    module = build_generator("mlp", num_classes=3, z_dim=8, image_size=8, channels=1, width=16)
    save_generator(folder / "g.safetensors", module, classes=CLASSES, run_id="r", step=3)
    with safe_open(str(folder / "g.safetensors"), framework="pt") as fh:
        return {k: fh.get_tensor(k) for k in fh.keys()}, dict(fh.metadata())  # noqa: SIM118


def _hostile_weights(path: Path, weights, **meta: str) -> Path:
    tensors, base = weights
    save_file(tensors, str(path), metadata={**base, **{f"ganaug.{k}": v for k, v in meta.items()}})
    return path


def _model(weights, **changes: object) -> str:
    return json.dumps({**json.loads(weights[1]["ganaug.model"]), **changes})


def test_real_weights_still_load(tmp_path: Path, weights) -> None:
    g = load_generator(_hostile_weights(tmp_path / "ok.safetensors", weights))
    assert g.ganaug_info.classes == CLASSES and g.ganaug_info.step == 3


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        ({"classes": '"cat"'}, r"ganaug\.classes must be a non-empty list .* got str"),
        ({"classes": '["cat", "dog"]'}, "names 2 classes but the model has 3"),
        ({"classes": '["cat", "dog", "owl", "eel"]'}, "names 4 classes but the model has 3"),
        ({"classes": '["cat", "cat", "owl"]'}, "duplicate names"),
        ({"classes": '["cat", 3, "owl"]'}, "non-empty strings"),
        ({"classes": "[" * 50_000 + "]" * 50_000}, "nested too deeply"),
        ({"model": '{"arch": ' * 50_000}, r"ganaug\.model is (nested too deeply|not valid JSON)"),
        ({"model": "not json"}, r"ganaug\.model is not valid JSON"),
        ({"model": "[1, 2]"}, "must be an object with a string 'arch'"),
        ({"model": '{"arch": "mlp"}'}, "has no 'num_classes'"),
        ({"step": "-1"}, r"ganaug\.step must be a non-negative integer"),
        ({"step": "1e999"}, r"ganaug\.step must be a non-negative integer"),
    ],
)
def test_hostile_weights_metadata(tmp_path: Path, weights, meta: dict, message: str) -> None:
    path = _hostile_weights(tmp_path / "h.safetensors", weights, **meta)
    with pytest.raises(CheckpointError, match=message) as err:
        load_generator(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"width": 1_000_000}, r"'width' must be an integer in \[1, 4096\], got 1000000"),
        ({"width": 1e6}, r"'width' must be an integer, got 1000000\.0"),
        ({"z_dim": "8"}, "'z_dim' must be an integer, got '8'"),
        ({"num_classes": True}, "'num_classes' must be an integer, got True"),
        ({"image_size": 10**30}, r"'image_size' must be an integer in \[1, 1024\]"),
        ({"channels": 2}, r"'channels' must be 1 or 3"),
        ({"embed_dim": [1, [2]]}, "'embed_dim' must be an integer"),
        ({"arch": 5}, "must be an object with a string 'arch'"),
        ({"arch": "nope"}, "cannot be built .*unknown generator architecture 'nope'"),
        ({"bogus": 1}, "cannot be built .*unknown option"),
        ({"bogus": {"a": 1}}, "'bogus' has an unusable value"),
        ({"bogus": 1e308 * 10}, "'bogus' must be finite"),
    ],
)
def test_hostile_model_config_is_refused_before_building(
    tmp_path: Path, weights, changes: dict, message: str
) -> None:
    path = _hostile_weights(tmp_path / "h.safetensors", weights, model=_model(weights, **changes))
    with pytest.raises(CheckpointError, match=message):
        load_generator_info(path)  # the validation step alone: nothing is built on a real device


def test_model_too_large_is_refused_by_its_parameter_count(tmp_path: Path, weights) -> None:
    # Every field within its own bounds, but 4096 wide at 1024 px is billions of parameters:
    # the count is taken on torch's meta device (no memory) and refused before allocation.
    meta = _model(weights, width=4096, image_size=1024, channels=3)
    path = _hostile_weights(tmp_path / "big.safetensors", weights, model=meta)
    with pytest.raises(CheckpointError, match=f"over the limit of {MAX_PARAMETERS:,}"):
        load_generator(path)


def test_cli_sample_with_hostile_weights_is_one_line(tmp_path: Path, weights) -> None:
    path = _hostile_weights(tmp_path / "h.safetensors", weights, model=_model(weights, width=10**6))
    proc = run_cli("sample", str(path), "--out", str(tmp_path / "out"), "-n", "1", "--device", "cpu")
    _one_line_error(proc, 1)
    assert "'width' must be an integer in [1, 4096]" in proc.stderr
    assert not (tmp_path / "out").exists()


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8)
)
json_values = st.recursive(
    json_scalars,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=6), kids, max_size=4),
    max_leaves=12,
)
hostile_numbers = st.sampled_from([0, -1, 10**6, 10**9, 2**63, 1e6, 1e300, True, "64", None, [64]])


def _text_for(value: object, raw: str | None, depth: int) -> str:
    if raw is not None:
        return raw
    if depth:
        return "[" * depth + "]" * depth
    return json.dumps(value, allow_nan=True)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    key=st.sampled_from(["classes", "model", "step", "model-field"]),
    field=st.sampled_from(["num_classes", "z_dim", "image_size", "channels", "width", "embed_dim", "arch"]),
    value=json_values | hostile_numbers,
    raw=st.none() | st.text(max_size=20),
    depth=st.sampled_from([0, 0, 0, 2000, 200_000]),
)
def test_fuzz_safetensors_metadata(weights, key, field, value, raw, depth) -> None:
    """Random and hostile metadata: the load succeeds or raises a GanaugError, nothing else, and a
    generator that loads is within the parameter bound."""
    if key == "model-field":
        meta = {"model": _model(weights, **{field: value})}
    else:
        meta = {key: _text_for(value, raw, depth)}
    with tempfile.TemporaryDirectory() as tmp:
        path = _hostile_weights(Path(tmp) / "f.safetensors", weights, **meta)
        try:
            module = load_generator(path)
        except GanaugError as exc:
            assert "\n" not in str(exc)
            return
        assert sum(p.numel() for p in module.parameters()) <= MAX_PARAMETERS


# --- ONNX metadata and graphs ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_random_generator(tmp_path_factory.mktemp("onnx"), CLASSES, 8, seed=0, run_id="r")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"classes": "[" * 100_000 + "]" * 100_000}, "nested too deeply"),
        ({"run_id": "[" * 100_000 + "]" * 100_000}, r"ganaug\.run_id is nested too deeply"),
        ({"classes": "[" * 20 + "1" + "]" * 20}, "nested too deeply"),
        ({"classes": '["cat", "dog"]'}, "accepts label index 2, but ganaug.classes names only 2"),
        ({"classes": '["cat", "cat", "owl"]'}, "duplicate names"),
        ({"classes": '"catdogowl"'}, "must be a non-empty list"),
        ({"z_dim": "1e9"}, r"ganaug\.z_dim must be an integer in \[1, 4096\]"),
        ({"image_size": "100000"}, r"ganaug\.image_size must be an integer in \[1, 1024\]"),
        ({"channels": "true"}, r"ganaug\.channels must be 1 or 3"),
        ({"layout": "[1]"}, r"ganaug\.layout must be one of"),
    ],
)
def test_hostile_onnx_metadata(tmp_path: Path, real_onnx: Path, raw: dict, message: str) -> None:
    path = rewrite_onnx_props(real_onnx, tmp_path / "h.onnx", **raw)
    with pytest.raises(CheckpointError, match=message) as err:
        OnnxGenerator(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def _contract_graph(
    path: Path,
    n_classes: int,
    *,
    max_batch: int | None = None,
    label_table: int | None = None,
    width: int = 4,
) -> Path:
    """A hand-made graph with the generator's inputs/outputs and ganaug metadata that breaks the
    contract on purpose: it fails for batches of ``max_batch`` or more, for labels at or above
    ``label_table``, or returns ``width`` columns where the metadata promises 4."""
    size, z_dim = 4, 2
    table = label_table if label_table is not None else n_classes
    init = [
        helper.make_tensor("vals", TensorProto.UINT8, [table], list(range(table))),
        helper.make_tensor("axes", TensorProto.INT64, [3], [1, 2, 3]),
        helper.make_tensor("zero", TensorProto.INT64, [], [0]),
        helper.make_tensor("hwc", TensorProto.INT64, [3], [size, width, 1]),
        helper.make_tensor("one", TensorProto.INT64, [1], [1]),
        helper.make_tensor("limit", TensorProto.INT64, [max_batch or 4096], [0] * (max_batch or 4096)),
    ]
    nodes = [
        helper.make_node("Gather", ["vals", "label"], ["per_label"]),
        helper.make_node("Unsqueeze", ["per_label", "axes"], ["per_label4"]),
        helper.make_node("Shape", ["z"], ["zshape"]),
        helper.make_node("Gather", ["zshape", "zero"], ["batch"]),
        helper.make_node("Gather", ["limit", "batch"], ["check"]),  # out of range when batch >= limit
        helper.make_node("Add", ["batch", "check"], ["batch2"]),
        helper.make_node("Unsqueeze", ["batch2", "zero"], ["batch1d"]),
        helper.make_node("Concat", ["batch1d", "hwc"], ["shape"], axis=0),
        helper.make_node("Expand", ["per_label4", "shape"], ["image"]),
    ]
    graph = helper.make_graph(
        nodes,
        "contract",
        [
            helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", z_dim]),
            helper.make_tensor_value_info("label", TensorProto.INT64, ["batch"]),
        ],
        [helper.make_tensor_value_info("image", TensorProto.UINT8, ["batch", None, None, None])],
        init,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    meta = {"version": "0.1.0", "classes": [f"c{i}" for i in range(n_classes)], "z_dim": z_dim}
    meta |= {"image_size": size, "channels": 1, "layout": "uint8-nhwc"}
    helper.set_model_props(model, {f"ganaug.{k}": json.dumps(v) for k, v in meta.items()})
    onnx.save(model, str(path))
    return path


def test_contract_graph_helper_makes_a_valid_generator(tmp_path: Path) -> None:
    g = OnnxGenerator(_contract_graph(tmp_path / "ok.onnx", 3))
    images = g.generate([0, 1, 2, 2] * 40, batch_size=100)
    assert images.shape == (160, 4, 4, 1) and images[:4, 0, 0, 0].tolist() == [0, 1, 2, 2]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_batch": 2}, "failed on a batch of 2"),  # passes the old batch-1 probe
        ({"label_table": 2}, r"failed on a batch of 1 \(labels 2\.\.2\)"),  # fails for one label
        (
            {"width": 5},
            r"returned uint8 \(1, 4, 5, 1\) for a batch of 1, metadata promises uint8 \(1, 4, 4, 1\)",
        ),
    ],
)
def test_graph_breaking_the_contract_is_refused_at_load(tmp_path: Path, kwargs: dict, message: str) -> None:
    path = _contract_graph(tmp_path / "bad.onnx", 3, **kwargs)
    with pytest.raises(CheckpointError, match=message) as err:
        OnnxGenerator(path)
    assert str(path) in str(err.value) and "does not match the graph" in str(err.value)


def test_runtime_failure_at_generate_time_is_one_line(tmp_path: Path) -> None:
    # Batches of 1 and 2 work (the load-time probe passes with 2 classes); 3 or more fail.
    path = _contract_graph(tmp_path / "b3.onnx", 2, max_batch=3)
    g = OnnxGenerator(path)
    assert g.generate([0, 1, 1, 0], batch_size=2).shape == (4, 4, 4, 1)
    with pytest.raises(CheckpointError, match=r"failed on a batch of 3 .*ganaug contract") as err:
        g.generate([0, 1, 1], batch_size=64)
    assert str(path) in str(err.value)
    proc = run_cli("sample", str(path), "--out", str(tmp_path / "out"), "-n", "3", "--batch-size", "64")
    _one_line_error(proc, 1)
    assert "failed on a batch of" in proc.stderr and str(path) in proc.stderr
    assert not (tmp_path / "out").exists()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    key=st.sampled_from(["classes", "z_dim", "image_size", "channels", "layout", "version", "run_id"]),
    value=json_values | hostile_numbers,
    raw=st.none() | st.text(max_size=20),
    depth=st.sampled_from([0, 0, 0, 3000, 200_000]),
)
def test_fuzz_onnx_metadata(real_onnx: Path, key, value, raw, depth) -> None:
    """Random and hostile ONNX metadata: a working generator or a one-line GanaugError."""
    with tempfile.TemporaryDirectory() as tmp:
        path = rewrite_onnx_props(real_onnx, Path(tmp) / "f.onnx", **{key: _text_for(value, raw, depth)})
        try:
            g = OnnxGenerator(path)
        except GanaugError as exc:
            assert "\n" not in str(exc)
            return
        assert g.generate([0, 1, 2], seed=0).shape == (3, *g.image_shape)


# --- duplicate class names -------------------------------------------------------------------------


def test_duplicate_class_names_are_refused_before_training(tmp_path: Path) -> None:
    from ganaug.data import ImageDataset
    from ganaug.training import train

    images = np.zeros((8, 8, 8, 1), np.uint8)
    ds = ImageDataset(images=images, labels=np.arange(8) % 2, classes=["cat", "cat"])
    with pytest.raises(DataError, match="duplicate names"):
        train(out=tmp_path / "run", dataset=ds, steps=1, batch_size=4, arch="mlp", z_dim=8)
    assert not (tmp_path / "run" / "weights").exists()
    module = build_generator("mlp", num_classes=2, z_dim=8, image_size=8, channels=1, width=8)
    with pytest.raises(CheckpointError, match="duplicate names"):
        save_generator(tmp_path / "g.safetensors", module, classes=["cat", "cat"], run_id="r", step=0)
    assert not (tmp_path / "g.safetensors").exists()


# --- options and config files ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("run")
    data = write_imagefolder(root / "data", [4, 4], size=8)
    run_cli("train", str(data), "--out", str(root / "run1"), *TINY, check=True)
    return root / "run1"


def test_saved_config_repeats_the_run(tiny_run: Path) -> None:
    second = tiny_run.parent / "run2"
    proc = run_cli("train", "--config", str(tiny_run / "config.yaml"), "--out", str(second), "-q")
    assert proc.returncode == 0, proc.stderr
    first_cfg = yaml.safe_load((tiny_run / "config.yaml").read_text())
    second_cfg = yaml.safe_load((second / "config.yaml").read_text())
    assert first_cfg.pop("out") == str(tiny_run) and second_cfg.pop("out") == str(second)
    assert second_cfg == first_cfg
    assert first_cfg["betas"] == [0.5, 0.999] and first_cfg["grid_columns"] == 8


def test_every_saved_training_option_is_a_train_flag() -> None:
    import dataclasses

    from ganaug.cli.train_cmd import train as train_command

    flags = {p.name for p in train_command.params}
    missing = [f.name for f in dataclasses.fields(TrainConfig) if f.name not in flags]
    assert not missing, f"config.yaml keys that --config would refuse: {missing}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("steps: [1\n", "not valid YAML at line 2"),
        ("- steps\n- 3\n", "expected a mapping of option names to values, got list"),
        ("!!python/object/apply:os.system ['echo PWNED']\n", "YAML tag refused"),
        ("steps: [1, 2]\n", "takes a single value, got list"),
        ("lr_g: .nan\n", "must be a finite number in (0, inf), got nan"),
        ("betas: [0.5, 1.5]\n", "must be a finite number in [0, 1), got 1.5"),
    ],
)
def test_bad_config_file_is_a_usage_error(tmp_path: Path, tiny_run: Path, text: str, message: str) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text)
    proc = run_cli("train", str(tiny_run.parent / "data"), "--config", str(cfg), "--out", str(tmp_path / "r"))
    _one_line_error(proc, 2)
    assert message in proc.stderr and "PWNED" not in proc.stdout + proc.stderr
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("steps: [1\n", "not valid YAML at line 2"),
        ("- steps\n- 3\n", "expected a mapping of option names to values, got list"),
        ("!!python/object/apply:os.system ['echo PWNED']\n", "YAML tag refused"),
        ("steps: 2\nlr_g: .nan\n", "--lr-g must be a finite number"),
    ],
)
def test_bad_run_config_on_resume_is_one_line(
    tmp_path: Path, tiny_run: Path, text: str, message: str
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    for name in ("config.yaml", "run.json", "classes.json"):
        (run / name).write_bytes((tiny_run / name).read_bytes())
    (run / "config.yaml").write_text(text)
    proc = run_cli("train", "--out", str(run), "--resume", "--steps", "5")
    _one_line_error(proc, 2)
    assert f"--resume: {run / 'config.yaml'}" in proc.stderr and message in proc.stderr


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"ganaug.step": "abc"}, "'ganaug.step' must be a non-negative integer, got 'abc'"),
        ({"ganaug.step": "-3"}, "'ganaug.step' must be a non-negative integer"),
        ({"ganaug.optim_g": "{not json"}, "damaged training state (JSONDecodeError"),
        ({"ganaug.optim_d": None}, "damaged training state (KeyError"),
    ],
)
def test_damaged_training_state_on_resume_is_one_line(
    tmp_path: Path, tiny_run: Path, changes: dict, message: str
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    for name in ("config.yaml", "run.json", "classes.json", ".ganaug-output.json"):
        if (tiny_run / name).exists():
            (run / name).write_bytes((tiny_run / name).read_bytes())
    (run / "weights").mkdir()
    src = tiny_run / "weights" / "last.safetensors"
    with safe_open(str(src), framework="pt") as fh:
        meta = dict(fh.metadata())
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 - safe_open is not a mapping
    for key, value in changes.items():
        if value is None:
            meta.pop(key)
        else:
            meta[key] = value
    save_file(tensors, str(run / "weights" / "last.safetensors"), metadata=meta)
    proc = run_cli("train", "--out", str(run), "--resume", "--steps", "8")
    _one_line_error(proc, 1)
    assert message in proc.stderr, proc.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "DATA", "--lr-g", "nan"], "'--lr-g': must be a finite number in (0, inf), got 'nan'"),
        (["train", "DATA", "--z-dim", "1e9"], "'--z-dim': must be an integer in [1, 4096], got '1e9'"),
        (["train", "DATA", "--z-dim", "1000000000"], "must be an integer in [1, 4096]"),
        (["train", "DATA", "--betas", "0.5,inf"], "'--betas': must be a finite number in [0, 1)"),
        (["sample", "G", "-n", "1", "--truncation", "nan"], "'--truncation': must be a finite number"),
        (["sample", "G", "-n", "1e99"], "must be an integer in [0, 1000000000]"),
        (["augment", "DATA", "-g", "G", "--max-attempts", "inf"], "'--max-attempts': must be a finite"),
        (["augment", "DATA", "-g", "G", "--min-confidence", "nan"], "'--min-confidence': must be a finite"),
        (["eval", "uplift", "DATA", "--test", "DATA", "--seeds", "1e9"], "'--seeds': must be an integer"),
    ],
)
def test_out_of_range_options_are_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    data = tmp_path / "data"
    data.mkdir()
    args = [{"DATA": str(data), "G": str(tmp_path / "g.onnx")}.get(a, a) for a in args]
    proc = run_cli(*args, "--out", str(tmp_path / "out"))
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()


def test_library_api_checks_the_same_bounds(real_onnx: Path) -> None:
    for bad in ({"lr_g": math.nan}, {"z_dim": 10**9}, {"steps": [1, 2]}, {"betas": (0.5, math.inf)}):
        cfg = TrainConfig.from_dict({"data": "d", **bad}) if "betas" not in bad else TrainConfig(**bad)
        with pytest.raises(UsageError):
            validate(cfg)
    g = OnnxGenerator(real_onnx)
    with pytest.raises(UsageError, match="truncation must be a finite number"):
        g.generate([0], seed=0, truncation=math.nan)
    from ganaug.augment import augment_dataset

    with pytest.raises(UsageError, match="--max-attempts must be a number >= 1"):
        augment_dataset(real_onnx.parent, real_onnx, real_onnx.parent / "out", max_attempts=math.inf)
