"""The training engine: every architecture and loss, run directories, resume, signals, guards."""

from __future__ import annotations

import csv
import os
import pickle
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
import yaml
from conftest import pattern_images, run_cli, write_imagefolder

from ganaug.checkpoint import load_generator, load_generator_info
from ganaug.data import ImageDataset, load_dataset
from ganaug.errors import CheckpointError, UsageError
from ganaug.training import TrainingDiverged, train

TINY = {"batch_size": 8, "g_width": 8, "d_width": 8, "z_dim": 16, "log_every": 2, "precision": "fp32"}


def tiny_dataset(size: int = 28, channels: int = 1, counts=(12, 12, 12)) -> ImageDataset:
    images, labels = pattern_images(list(counts), size=size, channels=channels)
    return ImageDataset(images, labels, [f"c{k}" for k in range(len(counts))])


def read_results(run_dir) -> list[dict[str, float]]:
    with open(run_dir / "results.csv", newline="") as fh:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]


@pytest.mark.parametrize(
    ("arch", "size", "channels"), [("mlp", 16, 1), ("dcgan", 32, 3), ("dcgan", 28, 1), ("resnet", 32, 3)]
)
def test_each_architecture_trains_and_writes_a_complete_run_dir(tmp_path, arch, size, channels):
    ds = tiny_dataset(size, channels)
    result = train(
        out=tmp_path / "run", dataset=ds, arch=arch, steps=4, sample_every=2, checkpoint_every=2, **TINY
    )
    run = result.run_dir
    for name in ("config.yaml", "classes.json", "run.json", "results.csv", "results.png"):
        assert (run / name).is_file(), name
    for name in ("last.safetensors", "ema.safetensors", "state.json"):
        assert (run / "weights" / name).is_file(), name
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step_000002.png", "step_000004.png"]
    rows = read_results(run)
    assert [r["step"] for r in rows] == [2, 4] and all(np.isfinite(r["loss_d"]) for r in rows)
    g = load_generator(run)
    out = g(torch.randn(5, 16), torch.tensor([0, 1, 2, 0, 1]))
    assert out.shape == (5, channels, size, size) and out.abs().max() <= 1.0
    assert load_generator_info(run).classes == ["c0", "c1", "c2"]
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["arch"] == arch and cfg["image_size"] == size and cfg["channels"] == channels


@pytest.mark.parametrize("loss", ["minimax", "ns", "hinge", "wgan-gp", "lsgan"])
def test_each_loss_trains(tmp_path, loss):
    result = train(
        out=tmp_path / "run", dataset=tiny_dataset(), loss=loss, steps=3, r1=1.0, r1_every=2, **TINY
    )
    assert (
        result.step == 3 and np.isfinite(result.metrics["loss_d"]) and np.isfinite(result.metrics["loss_g"])
    )


def test_seed_preset_is_the_seed_articles_gan(tmp_path):
    result = train(
        out=tmp_path / "run", dataset=tiny_dataset(), preset="seed", steps=2, batch_size=8, log_every=1
    )
    cfg = yaml.safe_load((result.run_dir / "config.yaml").read_text())
    assert (cfg["arch"], cfg["loss"], cfg["z_dim"], cfg["lr_g"], cfg["betas"]) == (
        "mlp",
        "minimax",
        100,
        2e-4,
        [0.5, 0.999],
    )
    g = load_generator(result.run_dir)
    hidden = [m for m in g.modules() if isinstance(m, torch.nn.Linear)]
    assert hidden[0].out_features == 256 and hidden[-1].out_features == 28 * 28


def test_same_seed_same_losses(tmp_path):
    a = train(out=tmp_path / "a", dataset=tiny_dataset(), steps=6, seed=3, **TINY)
    b = train(out=tmp_path / "b", dataset=tiny_dataset(), steps=6, seed=3, **TINY)
    c = train(out=tmp_path / "c", dataset=tiny_dataset(), steps=6, seed=4, **TINY)
    ra, rb, rc = read_results(a.run_dir), read_results(b.run_dir), read_results(c.run_dir)
    assert [r["loss_d"] for r in ra] == [r["loss_d"] for r in rb]
    assert [r["loss_d"] for r in ra] != [r["loss_d"] for r in rc]


def test_resume_reproduces_the_uninterrupted_run(tmp_path):
    opts = {**TINY, "log_every": 1, "checkpoint_every": 4, "seed": 7, "r1": 1.0, "r1_every": 3}
    opts |= {"lecam": 0.3, "mode_seeking": 0.5}  # their state (LeCam anchors) must resume exactly too
    full = train(out=tmp_path / "full", dataset=tiny_dataset(), steps=8, **opts)
    train(out=tmp_path / "half", dataset=tiny_dataset(), steps=4, **opts)
    resumed = train(out=tmp_path / "half", resume=True, steps=8, explicit={"steps"})
    assert resumed.step == 8
    full_rows, resumed_rows = read_results(full.run_dir), read_results(resumed.run_dir)
    assert [r["step"] for r in resumed_rows] == list(range(1, 9))
    for key in ("loss_d", "loss_g", "d_real", "d_fake"):
        assert [r[key] for r in resumed_rows] == [r[key] for r in full_rows], key
    ga, gb = load_generator(full.run_dir), load_generator(resumed.run_dir)
    for (name, pa), pb in zip(ga.state_dict().items(), gb.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), name


def test_resume_needs_a_higher_step_target_and_a_run_dir(tmp_path):
    train(out=tmp_path / "run", dataset=tiny_dataset(), steps=2, **TINY)
    with pytest.raises(UsageError, match="already reached step 2"):
        train(out=tmp_path / "run", resume=True)
    with pytest.raises(UsageError, match="not a run directory"):
        train(out=tmp_path / "nothing", resume=True)
    with pytest.raises(UsageError, match="not empty; use --resume"):
        train(out=tmp_path / "run", dataset=tiny_dataset(), steps=2, **TINY)


def test_nan_losses_stop_the_run_without_writing_bad_weights(tmp_path):
    with pytest.raises(TrainingDiverged, match=r"NaN/inf by step 1 .*No checkpoint was written"):
        train(
            out=tmp_path / "run",
            dataset=tiny_dataset(),
            steps=50,
            **{**TINY, "log_every": 1},
            lr_g=1e38,
            lr_d=1e38,
        )
    assert not (tmp_path / "run" / "weights" / "last.safetensors").exists()
    assert len(read_results(tmp_path / "run")) == 1  # the log shows the step that went wrong


def test_planted_pickle_is_refused_and_never_executed(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    run = tmp_path / "run" / "weights"
    run.mkdir(parents=True)
    (run / "ema.safetensors").write_bytes(pickle.dumps(Payload()))
    (tmp_path / "model.pt").write_bytes(pickle.dumps(Payload()))
    for source in (tmp_path / "run", tmp_path / "model.pt"):
        with pytest.raises(CheckpointError, match="pickle"):
            load_generator(source)
    assert not marker.exists()


def test_package_never_unpickles():
    root = os.path.join(os.path.dirname(__file__), "..", "ganaug")
    offenders = []
    for dirpath, _, files in os.walk(root):
        for name in files:
            if name.endswith(".py"):
                with open(os.path.join(dirpath, name), encoding="utf-8") as fh:
                    text = fh.read()
                for needle in (
                    "torch.load(",
                    "import pickle",
                    "pickle.load",
                    "weights_only=False",
                    "allow_pickle=True",
                ):
                    if needle in text:
                        offenders.append(f"{name}: {needle}")
    assert offenders == []


def _pixel_fid(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to 7x7-pooled pixels (a cheap, honest quality proxy)."""

    def feats(x):
        x = x.astype(np.float64)[..., 0] / 255.0
        n, s = x.shape[0], x.shape[1]
        return x.reshape(n, 7, s // 7, 7, s // 7).mean(axis=(2, 4)).reshape(n, -1)

    fa, fb = feats(a), feats(b)
    mu = fa.mean(0) - fb.mean(0)
    ca, cb = np.cov(fa, rowvar=False), np.cov(fb, rowvar=False)
    vals = np.linalg.eigvals(ca @ cb)
    return float(mu @ mu + np.trace(ca) + np.trace(cb) - 2 * np.sqrt(np.clip(vals.real, 0, None)).sum())


def test_200_dcgan_steps_on_two_fashion_mnist_classes_move_samples_towards_the_data(
    tmp_path, fashion_mnist_dir
):
    full = load_dataset(fashion_mnist_dir / "t10k-images-idx3-ubyte.gz")
    keep = np.isin(full.labels, [1, 9])  # Trouser, Ankle boot
    ds = ImageDataset(
        full.images[keep][:600], np.where(full.labels[keep][:600] == 1, 0, 1), ["Trouser", "Ankle boot"]
    )
    from ganaug.sampling import open_sampler

    labels = np.repeat([0, 1], 150)
    result = train(
        out=tmp_path / "run", dataset=ds, steps=1, batch_size=32, g_width=32, d_width=32, log_every=1, seed=0
    )
    before = open_sampler(result.run_dir).generate(labels, seed=1)
    result = train(out=tmp_path / "run", resume=True, steps=200, explicit={"steps"})
    after = open_sampler(result.run_dir).generate(labels, seed=1)
    real = ds.images
    fid_before, fid_after = _pixel_fid(before, real), _pixel_fid(after, real)
    assert fid_after < 0.5 * fid_before, (fid_before, fid_after)
    # per class, the samples are closer to their own class than to the other one
    for k in (0, 1):
        own = _pixel_fid(after[labels == k], real[ds.labels == k])
        other = _pixel_fid(after[labels == k], real[ds.labels != k])
        assert own < other, (k, own, other)
    assert read_results(result.run_dir)[-1]["d_accuracy"] < 0.99


def test_cli_train_with_config_file_flags_override_and_errors(tmp_path):
    data = write_imagefolder(tmp_path / "data", [6, 6], size=28)
    (tmp_path / "cfg.yaml").write_text(
        "steps: 3\nbatch-size: 4\nz_dim: 8\ng-width: 8\nd-width: 8\nlog-every: 1\n"
    )
    proc = run_cli(
        "train",
        str(data),
        "--out",
        str(tmp_path / "run"),
        "--config",
        str(tmp_path / "cfg.yaml"),
        "--steps",
        "2",
    )
    assert proc.returncode == 0, proc.stderr
    cfg = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert cfg["steps"] == 2 and cfg["batch_size"] == 4 and cfg["z_dim"] == 8
    assert "weights/ema.safetensors" in proc.stdout
    again = run_cli("train", str(data), "--out", str(tmp_path / "run"))
    assert again.returncode == 2 and "not empty; use --resume" in again.stderr
    bad = run_cli("train", str(data), "--out", str(tmp_path / "r2"), "--arch", "nope")
    assert bad.returncode == 2 and "nope" in bad.stderr
    (tmp_path / "bad.yaml").write_text("stepz: 3\n")
    bad_cfg = run_cli("train", str(data), "--config", str(tmp_path / "bad.yaml"))
    assert bad_cfg.returncode == 2 and "unknown option 'stepz'" in bad_cfg.stderr
    missing = run_cli("train", str(tmp_path / "absent"), "--out", str(tmp_path / "r3"))
    assert missing.returncode == 2 and missing.stderr.strip().endswith(
        f"data path not found: {tmp_path / 'absent'}"
    )
    assert not (tmp_path / "r3" / "weights").exists()


def test_sigterm_writes_a_checkpoint_and_resume_finishes(tmp_path):
    data = write_imagefolder(tmp_path / "data", [6, 6], size=28)
    run = tmp_path / "run"
    tiny = ["--batch-size", "4", "--z-dim", "8", "--g-width", "8", "--d-width", "8", "--log-every", "5"]
    args = [sys.executable, "-m", "ganaug", "train", str(data), "--out", str(run), "--steps", "100000", *tiny]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (run / "results.csv").exists() and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "stopped by SIGTERM" in out and "--resume" in out
    state = yaml.safe_load((run / "weights" / "state.json").read_text())
    assert 5 <= state["step"] < 100000
    resumed = run_cli("train", "--out", str(run), "--resume", "--steps", str(state["step"] + 3), "-q")
    assert resumed.returncode == 0, resumed.stderr
    assert yaml.safe_load((run / "weights" / "state.json").read_text())["step"] == state["step"] + 3
