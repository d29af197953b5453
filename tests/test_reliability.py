"""Crash safety and resource limits: SIGKILL at random moments, disk full, plugins without a timeout.

The SIGKILL tests run the real CLI in subprocesses (``python -m ganaug ...``) and kill them with
SIGKILL -- no handler runs, exactly like an OOM kill or a power cut of the process -- at seeded
random moments and at moments picked to land inside a write (a checkpoint, the OUT folder, the
.onnx file). After every kill the visible state must be complete: a loadable checkpoint that
``--resume`` finishes, OUT absent or the previous complete dataset, no partial .onnx.
"""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli, tree_digest, write_imagefolder
from PIL import Image

from ganaug.checkpoint import load_generator, save_generator
from ganaug.dataset_writer import DatasetWriter
from ganaug.fileio import atomic_write_json
from ganaug.runtime import OnnxGenerator
from ganaug.training.state import load_training_state

TINY = [
    "--arch", "mlp", "--batch-size", "4", "--z-dim", "8", "--g-width", "8", "--d-width", "8",
    "--precision", "fp32", "--sample-every", "100000", "--log-every", "5",
]  # fmt: skip
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "GANAUG_DISABLE_PLUGIN_AUTOLOAD": "1"}


def _spawn(*args: str, launcher: tuple[str, ...] = ("-m", "ganaug")) -> subprocess.Popen:
    """``python -m ganaug ARGS`` (or ``python LAUNCHER ARGS``) without output, one thread."""
    return subprocess.Popen(
        [sys.executable, *launcher, *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**ENV, "GANAUG_CACHE_DIR": os.environ["GANAUG_CACHE_DIR"]},
    )


def _wait_for(proc: subprocess.Popen, ready: Callable[[], bool], timeout: float = 120) -> bool:
    """Poll (about every millisecond) until ``ready()``; False if the process ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return True
        if proc.poll() is not None:
            return ready()
        time.sleep(0.001)
    proc.kill()
    raise AssertionError("timed out waiting for the subprocess")


def _kill(proc: subprocess.Popen) -> bool:
    """SIGKILL ``proc``; True if it was still running (the kill really interrupted it)."""
    running = proc.poll() is None
    if running:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    return running and proc.returncode == -signal.SIGKILL


def _writing(folder: Path, *prefixes: str) -> Callable[[], bool]:
    """True once a new entry starting with one of ``prefixes`` exists in ``folder`` (a write in
    flight); what was there when this was called (leftovers of earlier kills) does not count."""
    old = set(os.listdir(folder)) if folder.is_dir() else set()

    def check() -> bool:
        try:
            return any(e.startswith(prefixes) and e not in old for e in os.listdir(folder))
        except FileNotFoundError:
            return False

    return check


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3-step run of a tiny MLP GAN on 16x16 grayscale images (two classes)."""
    root = tmp_path_factory.mktemp("tiny_run")
    data = write_imagefolder(root / "data", [6, 6], size=16)
    run_cli("train", str(data), "--out", str(root / "run"), "--steps", "3", *TINY, "-q", check=True,
            env={"OMP_NUM_THREADS": "1", "GANAUG_CACHE_DIR": str(root / "cache")})  # fmt: skip
    return root / "run"


# ---------------------------------------------------------------------------- SIGKILL: train
def test_sigkill_during_training_always_leaves_a_resumable_checkpoint(tmp_path):
    rng = random.Random(9)
    data = write_imagefolder(tmp_path / "data", [6, 6], size=16)
    run, last = tmp_path / "run", tmp_path / "run" / "weights" / "last.safetensors"
    first = ["train", str(data), "--out", str(run), "--steps", "100000", "--checkpoint-every", "1", *TINY]
    again = ["train", "--out", str(run), "--resume", "--steps", "100000", "-q"]
    steps, in_write = [], 0
    # kill 0 and 2 the moment a checkpoint file is being written, 1 and 3 at a random moment
    for attempt in range(4):
        seen = last.stat().st_mtime_ns if last.exists() else 0
        proc = _spawn(*(first if attempt == 0 else again))
        assert _wait_for(proc, lambda s=seen: last.exists() and last.stat().st_mtime_ns != s), "no checkpoint"
        if attempt % 2 == 0:
            in_write += _wait_for(proc, _writing(last.parent, ".last.safetensors.", ".ema.safetensors."))
        else:
            time.sleep(rng.uniform(0.0, 1.5))
        assert _kill(proc), "training ended before it was killed"
        generator = load_generator(run)  # ema.safetensors: complete, may be one checkpoint older
        state = load_training_state(run)  # last.safetensors: complete, everything for --resume
        assert generator.ganaug_info.step <= state.step
        steps.append(state.step)
    assert steps == sorted(steps) and steps[-1] > steps[0], steps
    assert in_write == 2, "the kills meant for checkpoint writes did not find one"
    done = run_cli("train", "--out", str(run), "--resume", "--steps", str(steps[-1] + 2), "-q")
    assert done.returncode == 0, done.stderr
    assert load_training_state(run).step == steps[-1] + 2
    assert load_generator(run).ganaug_info.step == steps[-1] + 2


# ---------------------------------------------------------------------------- SIGKILL: augment
def _complete(out: Path) -> bool:
    """OUT is a complete dataset: manifest and summary present, one manifest row per image file."""
    manifest = out / "manifest.jsonl"
    if not (manifest.is_file() and (out / "summary.json").is_file()):
        return False
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    files = {str(p.relative_to(out)) for p in out.rglob("*.png")}
    return {r["path"] for r in rows} == files


def test_sigkill_during_augment_never_leaves_a_half_written_out(tmp_path, tiny_run):
    rng = random.Random(3)
    data = write_imagefolder(tmp_path / "data", [6, 6], size=16)
    out = tmp_path / "sets" / "aug"
    base = ["augment", str(data), "-g", str(tiny_run), "--out", str(out), "--device", "cpu", "-q",
            "--strategy", '{"class_0": 800, "class_1": 800}', "--overwrite"]  # fmt: skip
    run_cli(*base, "--seed", "0", check=True, env={"OMP_NUM_THREADS": "1"})
    assert _complete(out)
    previous = tree_digest(out)
    interrupted = 0
    for attempt in range(3):
        started = _writing(out.parent, ".aug.tmp-")
        proc = _spawn(*base, "--seed", str(attempt + 1))
        assert _wait_for(proc, started), "augment never started writing"
        time.sleep(rng.uniform(0.0, 0.6))
        interrupted += _kill(proc)
        if out.exists() and tree_digest(out) != previous:
            # the new dataset was renamed into place before the kill (or the run finished first):
            # then it must be complete -- never a mix or a half-written folder
            assert _complete(out)
            previous = tree_digest(out)
        else:
            assert not out.exists() or tree_digest(out) == previous
        for entry in out.parent.iterdir():  # leftovers are hidden: never taken for a dataset
            assert entry == out or entry.name.startswith(".aug."), entry
    assert interrupted >= 2
    run_cli(*base, "--seed", "9", check=True, env={"OMP_NUM_THREADS": "1"})
    assert _complete(out)
    assert sorted(p.name for p in out.parent.iterdir()) == ["aug"]  # stale temp folders cleaned up


def test_a_dataset_moved_aside_by_a_killed_writer_is_put_back(tmp_path):
    out = tmp_path / "aug"
    with DatasetWriter(out, classes=["a", "b"]) as w:
        w.add(np.zeros((4, 4, 1), np.uint8), 0, {"source": "real"})
    before = tree_digest(out)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    pid = int(dead.stdout)  # a process that has ended: its leftovers are stale
    aside = tmp_path / f".aug.old-{pid}-x1"
    aside.mkdir()
    os.replace(out, aside / "d")  # the state SIGKILL leaves between the two renames of a swap
    (tmp_path / f".aug.tmp-{pid}-x2").mkdir()
    (tmp_path / f".aug.tmp-{pid}-x2" / "manifest.jsonl").write_text("{}\n")
    live = tmp_path / f".aug.tmp-{os.getpid()}-x3"  # a writer that still runs is left alone
    live.mkdir()
    with pytest.raises(Exception, match="not empty"):  # without --overwrite the restored set is kept
        DatasetWriter(out, classes=["a", "b"]).open()
    assert tree_digest(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["aug", live.name])


# ---------------------------------------------------------------------------- SIGKILL: export
PAUSE_BEFORE_RENAME = """
import os, runpy, sys, time
from pathlib import Path
target, flag = sys.argv[1], sys.argv[2]
rename = os.replace
def paused(src, dst, *args, **kwargs):
    if os.fspath(dst) == target:  # the checked file is complete; hold the process just before the rename
        Path(flag).touch()
        time.sleep(600)
    return rename(src, dst, *args, **kwargs)
os.replace = paused
sys.argv = ["ganaug", *sys.argv[3:]]
runpy.run_module("ganaug", run_name="__main__")
"""


def test_sigkill_during_export_leaves_no_partial_onnx(tmp_path, tiny_run):
    rng = random.Random(5)
    target = tmp_path / "g.onnx"
    export = ["export", str(tiny_run), "--out", str(target), "-q"]
    # 1) killed inside the write: the .onnx is written and checked, the rename onto OUT not yet done
    #    (the process is held there, so the kill cannot miss that moment however loaded the machine)
    flag = tmp_path.parent / f"{tmp_path.name}-paused"
    proc = _spawn(str(target), str(flag), *export, launcher=("-c", PAUSE_BEFORE_RENAME))
    assert _wait_for(proc, flag.exists), "export never reached the rename"
    assert _kill(proc)
    assert not target.exists()
    leftovers = list(tmp_path.iterdir())
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".g.onnx."), leftovers
    assert OnnxGenerator(leftovers[0]).classes == ["class_0", "class_1"]  # complete, just not renamed
    # 2) killed at a seeded random moment
    proc = _spawn(*export)
    time.sleep(rng.uniform(1.0, 6.0))
    _kill(proc)
    if target.exists():  # only ever the complete, checked file (the kill came after the rename)
        assert OnnxGenerator(target).classes == ["class_0", "class_1"]
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "g.onnx"]
    assert all(n.startswith(".g.onnx.") and n.endswith(".tmp") for n in leftovers), leftovers


# ---------------------------------------------------------------------------- SIGTERM: a command's GAN step
def test_sigterm_while_eval_uplift_trains_its_gan_stops_the_command(tmp_path):
    """``train`` stops cleanly on SIGTERM and returns; a command that trains a GAN as one of its
    steps must stop too (exit 143), not go on to report on a half-trained generator."""
    data = write_imagefolder(tmp_path / "data", [6, 6], size=16)
    out = tmp_path / "uplift"
    proc = _spawn(
        "eval", "uplift", str(data), "--test", str(data), "--per-class", "4", "--no-quality",
        "--arch", "mlp", "--steps", "100000", "--batch-size", "4", "--classifier-steps", "5",
        "--gan-option", "g_width=8", "--gan-option", "d_width=8", "--gan-option", "z_dim=8",
        "--gan-option", "log_every=1", "--gan-option", "precision=fp32", "--out", str(out), "-q",
    )  # fmt: skip
    results = out / "seed_0" / "gan" / "results.csv"  # written inside the loop: its handlers are set
    assert _wait_for(proc, results.is_file), "the GAN never started training"
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=120)
    except subprocess.TimeoutExpired:  # went on (e.g. to the next seed's GAN) instead of stopping
        proc.kill()
        code = proc.wait()
    assert code == 143
    assert not (out / "report.json").exists() and not (out / "report.md").exists()
    assert (out / "seed_0" / "gan" / "weights" / "last.safetensors").is_file()  # the GAN's checkpoint


# ---------------------------------------------------------------------------- disk full
def _enospc(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_disk_full_during_an_atomic_write_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "state.json"
    atomic_write_json(target, {"step": 1})
    real_write = Path.write_bytes

    def half_then_full(self: Path, data: bytes) -> int:
        real_write(self, data[: len(data) // 2])
        _enospc()

    monkeypatch.setattr(Path, "write_bytes", half_then_full)
    with pytest.raises(OSError) as info:
        atomic_write_json(target, {"step": 2, "pad": "x" * 1000})
    assert info.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert json.loads(target.read_text()) == {"step": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]  # no temp file left


def test_disk_full_while_saving_weights_keeps_the_previous_checkpoint(tmp_path, tiny_run, monkeypatch):
    import ganaug.checkpoint as ckpt

    weights = tmp_path / "ema.safetensors"
    generator = load_generator(tiny_run)
    save_generator(weights, generator, classes=["a", "b"], run_id="r", step=1)
    before = weights.read_bytes()
    real_save = ckpt.save_file

    def partial_save(tensors, filename, metadata=None):
        real_save(tensors, filename, metadata=metadata)
        with open(filename, "r+b") as fh:
            fh.truncate(100)  # what a full disk leaves: a short file ...
        _enospc()  # ... and ENOSPC

    monkeypatch.setattr(ckpt, "save_file", partial_save)
    with pytest.raises(OSError, match="No space left"):
        save_generator(weights, generator, classes=["a", "b"], run_id="r", step=2)
    monkeypatch.undo()
    assert weights.read_bytes() == before
    assert load_generator(weights).ganaug_info.step == 1
    assert [p.name for p in tmp_path.iterdir()] == ["ema.safetensors"]


def test_disk_full_while_writing_a_dataset_keeps_the_previous_one(tmp_path, monkeypatch):
    out = tmp_path / "set"
    with DatasetWriter(out, classes=["a", "b"]) as w:
        for i in range(4):
            w.add(np.full((4, 4, 1), i, np.uint8), i % 2, {"source": "real"})
    before = tree_digest(out)
    real_save = Image.Image.save
    calls = []

    def save_until_full(self, fp, *args, **kwargs):
        calls.append(fp)
        if len(calls) > 3:
            _enospc()
        return real_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", save_until_full)
    with (
        pytest.raises(OSError, match="No space left"),
        DatasetWriter(out, classes=["a", "b"], overwrite=True) as w,
    ):
        for i in range(10):
            w.add(np.full((4, 4, 1), 200, np.uint8), i % 2, {"source": "synthetic"})
    assert len(calls) == 4
    assert tree_digest(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["set"]


@pytest.mark.parametrize("first_bytes", [b"\x80", b"PK"])
def test_weights_whose_header_length_looks_like_pickle_still_load(tmp_path, tiny_run, first_bytes):
    """A safetensors file starts with its header length; 1 in 256 starts with 0x80 (pickle's magic)."""
    generator = load_generator(tiny_run)
    path = tmp_path / "g.safetensors"
    save_generator(path, generator, classes=["a", "b"], run_id="r", step=1)
    length = int.from_bytes(path.read_bytes()[:8], "little")
    want = int.from_bytes(first_bytes, "little")
    modulus = 256 ** len(first_bytes)
    pad = (want - length) % modulus
    for extra in range(pad, pad + 64):  # the header is padded to 8 bytes: try lengths near the target
        save_generator(path, generator, classes=["a", "b"], run_id="r" + "x" * extra, step=1)
        if path.read_bytes().startswith(first_bytes):
            break
    assert path.read_bytes().startswith(first_bytes)
    assert load_generator(path).ganaug_info.step == 1
