"""Output safety (issue #16): no command writes into, over or around its inputs, and --overwrite
replaces only what ganaug wrote. Every data-loss case goes through the real CLI in a subprocess and
checks that the input tree is byte-identical afterwards."""

from __future__ import annotations

import csv
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import export_random_generator, pattern_images, run_cli, tree_digest, write_imagefolder
from PIL import Image

from ganaug.dataset_writer import DatasetWriter
from ganaug.errors import UsageError
from ganaug.export import export_generator
from ganaug.fileio import atomic_write_text
from ganaug.output_safety import MARKER, check_output, is_ganaug_onnx, marker_kind
from ganaug.sampling import sample_to_dataset
from ganaug.training import train

SIZE = 16
TINY = [
    "--arch", "mlp", "--batch-size", "4", "--z-dim", "8", "--g-width", "8", "--d-width", "8",
    "--precision", "fp32", "--sample-every", "100000", "--log-every", "5",
]  # fmt: skip
TINY_API = {"arch": "mlp", "batch_size": 4, "z_dim": 8, "g_width": 8, "d_width": 8, "precision": "fp32"}
ENV = {"GANAUG_DISABLE_PLUGIN_AUTOLOAD": "1", "OMP_NUM_THREADS": "1"}


def snapshot(root: Path) -> tuple[dict[str, bytes], list[str]]:
    """Every file's bytes and every folder's name under ``root``."""
    folders = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_dir())
    return tree_digest(root), folders


def ganaug(*args: str) -> subprocess.CompletedProcess:
    return run_cli(*args, env=ENV)


def assert_refused(proc, *needles: str) -> None:
    """Non-zero exit with exactly one line on stderr, an ``error:`` line naming ``needles``."""
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode != 0, (proc.stdout, proc.stderr)
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def write_classes(root: Path, names: list[str], per_class: int = 3) -> Path:
    images, labels = pattern_images([per_class] * len(names), size=SIZE)
    for i, (img, lab) in enumerate(zip(images, labels, strict=True)):
        (root / names[lab]).mkdir(parents=True, exist_ok=True)
        Image.fromarray(img[..., 0]).save(root / names[lab] / f"{i:03d}.png")
    return root


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """DATA with classes cat/samples, a tiny 3-step RUN trained on it, and gen/g.onnx (+ .safetensors)."""
    root = tmp_path_factory.mktemp("world")
    data = write_classes(root / "DATA", ["cat", "samples"])  # DATA/cat/000.png, DATA/samples/003.png...
    run_cli("train", str(data), "--out", str(root / "RUN"), "--steps", "3", *TINY, "-q", check=True, env=ENV)
    (root / "gen").mkdir()
    export_random_generator(root / "gen", ["cat", "samples"], SIZE, 0, "test-output-safety")
    return {"root": root, "data": data, "run": root / "RUN", "gen": root / "gen"}


# -- the four data-loss cases of issue #16, through the CLI ----------------------------------------
@pytest.mark.parametrize("kind", ["jsonl", "csv"])
def test_augment_never_replaces_the_folders_a_manifest_points_into(world, tmp_path, kind) -> None:
    imgs = write_classes(tmp_path / "imgs", ["cat", "samples"])
    (imgs / "notes.txt").write_text("unlisted, must survive")
    (imgs / "extra").mkdir()
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    rows = [(f"../imgs/{p.parent.name}/{p.name}", p.parent.name) for p in sorted(imgs.rglob("*.png"))]
    manifest = manifests / f"list.{kind}"
    if kind == "jsonl":
        manifest.write_text("".join(json.dumps({"path": p, "label": lab}) + "\n" for p, lab in rows))
    else:
        with open(manifest, "w", newline="") as fh:
            csv.writer(fh).writerows([("path", "label"), *rows])
    before = snapshot(tmp_path)
    g = str(world["gen"] / "g.onnx")
    assert_refused(ganaug("augment", str(manifest), "-g", g, "--out", str(imgs), "--overwrite", "-q"), "imgs")
    assert_refused(ganaug("augment", str(manifest), "-g", g, "--out", str(imgs / "cat"), "--overwrite", "-q"))
    assert_refused(ganaug("augment", str(manifest), "-g", g, "--out", str(tmp_path), "--overwrite", "-q"))
    assert snapshot(tmp_path) == before


def test_sample_never_replaces_its_generator_or_run(world) -> None:
    run, gen = world["run"], world["gen"]
    before = snapshot(world["root"])
    assert_refused(ganaug("sample", str(run), "--out", str(run), "-n", "2", "--overwrite", "-q"), "generator")
    ema = run / "weights" / "ema.safetensors"
    assert_refused(ganaug("sample", str(ema), "--out", str(run), "-n", "2", "--overwrite", "-q"))
    assert_refused(ganaug("sample", str(ema), "--out", str(run / "synth"), "-n", "2", "-q"))
    onnx = gen / "g.onnx"
    assert_refused(ganaug("sample", str(onnx), "--out", str(gen), "-n", "2", "--overwrite", "-q"), "g.onnx")
    assert snapshot(world["root"]) == before


def test_train_never_writes_into_or_deletes_from_its_data(world) -> None:
    data = world["data"]  # has a class folder named "samples", like a run's sample grids
    before = snapshot(data)
    opts = ["--steps", "2", *TINY, "-q", "--overwrite"]
    assert_refused(ganaug("train", str(data), "--out", str(data), *opts), "input")
    assert_refused(ganaug("train", str(data), "--out", str(data / "cat"), *opts), "inside the input")
    for data_arg, out, needle in [(data, data / "samples", "inside"), (data / "cat", data, "contains")]:
        with pytest.raises(UsageError, match=needle):
            train(data_arg, out, overwrite=True, steps=1, **TINY_API)
    assert snapshot(data) == before


def test_export_never_overwrites_weights_or_foreign_files(world) -> None:
    run, data = world["run"], world["data"]
    before = snapshot(world["root"])
    for flags in ([], ["--overwrite"]):
        for out in (
            run / "weights" / "ema.safetensors",
            run / "weights" / "g.onnx",
            data / "cat" / "000.png",
        ):
            assert_refused(ganaug("export", str(run), "--out", str(out), "-q", *flags))
        ema = run / "weights" / "ema.safetensors"
        assert_refused(ganaug("export", str(ema), "--out", str(ema), "-q", *flags), "weights")
        assert_refused(ganaug("export", str(run), "--out", str(run / "config.yaml"), "-q", *flags))
    assert snapshot(world["root"]) == before


def test_eval_never_writes_into_its_data(world) -> None:
    data = world["data"]
    before = snapshot(data)
    uplift = ["eval", "uplift", str(data), "--test", str(data), "--per-class", "2", "-q"]
    assert_refused(ganaug(*uplift, "--out", str(data / "eval")), "inside the input")
    g = str(world["gen"] / "g.onnx")
    cas = ["eval", "cas", "-g", g, "--data", str(data), "--test", str(data), "-q"]
    assert_refused(ganaug(*cas, "--out", str(data / "cat")), "inside the input")
    assert snapshot(data) == before


# -- what --overwrite may replace ------------------------------------------------------------------
def test_overwrite_replaces_a_previous_ganaug_dataset(world, tmp_path) -> None:
    g, out = str(world["gen"] / "g.onnx"), tmp_path / "synth"
    ganaug("sample", g, "--out", str(out), "-n", "1", "-q")
    assert marker_kind(out) == "dataset"
    assert_refused(ganaug("sample", g, "--out", str(out), "-n", "2", "-q"), "not empty", "--overwrite")
    again = ganaug("sample", g, "--out", str(out), "-n", "2", "-q", "--overwrite")
    assert again.returncode == 0, again.stderr
    assert len((out / "manifest.jsonl").read_text().splitlines()) == 4 and marker_kind(out) == "dataset"


def test_overwrite_refuses_a_folder_ganaug_did_not_write(world, tmp_path) -> None:
    g, out = str(world["gen"] / "g.onnx"), tmp_path / "mine"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    before = snapshot(out)
    assert_refused(ganaug("sample", g, "--out", str(out), "-n", "1", "--overwrite", "-q"), MARKER)
    assert_refused(ganaug("train", str(world["data"]), "--out", str(out), "--overwrite", *TINY), MARKER)
    (out / MARKER).write_text(json.dumps({"written_by": "ganaug", "kind": "run", "version": "x"}))
    assert_refused(ganaug("sample", g, "--out", str(out), "-n", "1", "--overwrite", "-q"), "ganaug run")
    (out / MARKER).unlink()
    assert snapshot(out) == before
    with pytest.raises(UsageError, match="marker"), DatasetWriter(out, classes=["a"], overwrite=True):
        pass
    assert snapshot(out) == before


def test_overwrite_replaces_a_previous_export_only(world, tmp_path) -> None:
    src, out = world["gen"] / "g.safetensors", tmp_path / "g.onnx"
    export_generator(src, out)
    assert is_ganaug_onnx(out)
    with pytest.raises(UsageError, match="exists.*--overwrite"):
        export_generator(src, out)
    first = out.read_bytes()
    export_generator(src, out, overwrite=True, layout="float-nchw")
    assert out.read_bytes() != first and is_ganaug_onnx(out)


def test_train_overwrite_replaces_a_run_including_one_without_marker(tmp_path) -> None:
    data = write_imagefolder(tmp_path / "data", [3, 3], size=SIZE)
    run = tmp_path / "run"
    train(data, run, steps=1, **TINY_API, quiet=True)
    assert marker_kind(run) == "run"
    (run / MARKER).unlink()  # a run of ganaug 0.1.0: recognised by config.yaml + run.json
    (run / "notes.txt").write_text("the user's")
    train(data, run, steps=2, **TINY_API, quiet=True, overwrite=True)
    assert marker_kind(run) == "run" and (run / "notes.txt").read_text() == "the user's"


def test_failed_train_leaves_no_folder(tmp_path) -> None:
    (tmp_path / "empty").mkdir()
    run = tmp_path / "runs" / "new"
    proc = ganaug("train", str(tmp_path / "empty"), "--out", str(run), *TINY, "--steps", "1", "-q")
    assert_refused(proc, str(tmp_path / "empty"))  # a DataError naming the data
    assert not run.exists()


def test_removing_a_killed_writers_leftovers_says_so(world, tmp_path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    stale = tmp_path / f".synth.tmp-{int(dead.stdout)}-abc"  # what a SIGKILLed `sample` leaves
    (stale / "cat").mkdir(parents=True)
    proc = ganaug("sample", str(world["gen"] / "g.onnx"), "--out", str(tmp_path / "synth"), "-n", "1", "-q")
    assert proc.returncode == 0, proc.stderr
    assert f"removing {stale}" in proc.stderr and not stale.exists()


def test_symlink_loop_is_a_one_line_error(world, tmp_path) -> None:
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    proc = ganaug("sample", str(world["gen"] / "g.onnx"), "--out", str(tmp_path / "loop" / "x"), "-n", "1")
    assert_refused(proc, "symlink loop")
    with pytest.raises(UsageError, match="symlink loop"):
        check_output(tmp_path / "out", [(tmp_path / "loop", "the input")], overwrite=False, kind="dataset")


# -- permissions follow the umask ------------------------------------------------------------------
@pytest.mark.parametrize(("umask", "file_mode", "dir_mode"), [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700)])
def test_outputs_honour_the_umask(world, tmp_path, umask, file_mode, dir_mode) -> None:
    old = os.umask(umask)
    try:
        out = tmp_path / "synth"
        sample_to_dataset(world["gen"] / "g.onnx", out, 1)
        atomic_write_text(tmp_path / "note.txt", "x")
        export_generator(world["gen"] / "g.safetensors", tmp_path / "g.onnx")
    finally:
        os.umask(old)
    files = [p for p in out.rglob("*") if p.is_file()] + [tmp_path / "note.txt", tmp_path / "g.onnx"]
    folders = [out, *(p for p in out.rglob("*") if p.is_dir())]
    assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in files} == {oct(file_mode)}
    assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in folders} == {oct(dir_mode)}
