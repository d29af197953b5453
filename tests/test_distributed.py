"""Multi-process training (torchrun + DDP, gloo on CPU, 2 processes).

Real ``torchrun`` (``python -m torch.distributed.run``) launches: the CLI end to end, and this file
run as a script (``__main__`` below) for the gradient and weight checks, compared with a
single-process :class:`Trainer` in the test process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, str(Path(__file__).parent))  # conftest helpers when run as a torchrun script
from conftest import pattern_images

from ganaug.data import ImageDataset
from ganaug.errors import UsageError
from ganaug.training import distributed as dist_util
from ganaug.training.config import TrainConfig
from ganaug.training.loop import Trainer

TINY = {
    "arch": "mlp",
    "batch_size": 8,
    "g_width": 8,
    "d_width": 8,
    "z_dim": 16,
    "seed": 3,
    "precision": "fp32",
    "diffaugment": "none",
    "device": "cpu",
    "channels_last": False,
    "lr_g": 1e-3,
    "lr_d": 1e-3,
    # mode seeking pairs the two halves of each rank's batch, so 2 ranks x 4 images pair differently
    # from 1 process x 8 images; the equality below holds for the per-sample losses
    "mode_seeking": 0.0,
}
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "GANAUG_DISABLE_PLUGIN_AUTOLOAD": "1"}


def tiny_dataset() -> ImageDataset:
    images, labels = pattern_images([10, 10, 10], size=28, channels=1)
    return ImageDataset(images, labels, ["a", "b", "c"])


def fixed_batch(cfg: TrainConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The global batch of the gradient check: images, labels, noise (same in every process)."""
    rng = np.random.default_rng(7)
    n = cfg.batch_size
    x = torch.from_numpy(rng.uniform(-1, 1, size=(n, 1, 28, 28)).astype(np.float32))
    y = torch.from_numpy(rng.integers(0, 3, size=n).astype(np.int64))
    z = torch.from_numpy(rng.standard_normal((n, cfg.z_dim)).astype(np.float32))
    return x, y, z


def grad_step(trainer: Trainer, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor) -> dict[str, torch.Tensor]:
    """One D step and one G step on a given batch and noise; returns both models' gradients."""
    trainer._noise = lambda n: z  # the step's latent noise, fixed so both sides see the same batch
    trainer._d_step(x, y, 1)
    out = {f"D.{k}": p.grad.clone() for k, p in trainer.D.named_parameters()}
    trainer._g_step(y)
    out |= {f"G.{k}": p.grad.clone() for k, p in trainer.G.named_parameters()}
    del trainer._noise
    return out


def _worker(out: Path) -> None:
    """Runs in each torchrun process: gradients of a fixed split batch, then one ordinary step."""
    env = dist_util.detect()
    assert env.world_size == 2
    with dist_util.process_group(env, torch.device("cpu")):
        cfg = TrainConfig(**TINY)
        trainer = Trainer(cfg, tiny_dataset(), out / "unused", "t", quiet=True, progress=False, dist=env)
        trainer.G.train()
        trainer.D.train()
        x, y, z = fixed_batch(cfg)
        part = slice(env.rank * trainer.batch_size, (env.rank + 1) * trainer.batch_size)
        grads = grad_step(trainer, x[part], y[part], z[part])
        metrics = trainer.train_step(2)  # this rank's own random batch from its shard
        weights = {f"G.{k}": v for k, v in trainer.G.state_dict().items()}
        weights |= {f"D.{k}": v for k, v in trainer.D.state_dict().items()}
        tensors = {f"grad.{k}": v for k, v in grads.items()} | {f"w.{k}": v for k, v in weights.items()}
        tensors["metrics"] = metrics
        tensors["shard_size"] = torch.tensor([trainer.images.shape[0]])
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(out / f"rank{env.rank}.safetensors"))
        del trainer  # its DDP wrappers hold the process group: freed before the group is destroyed


@pytest.fixture(scope="module")
def two_rank_dump(tmp_path_factory) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    out = tmp_path_factory.mktemp("ddp")
    proc = subprocess.run(
        [*TORCHRUN, __file__, str(out)], env=ENV, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return load_file(str(out / "rank0.safetensors")), load_file(str(out / "rank1.safetensors"))


def test_two_process_gradient_equals_one_process_on_the_concatenated_batch(tmp_path, two_rank_dump):
    rank0, rank1 = two_rank_dump
    cfg = TrainConfig(**TINY)
    single = Trainer(cfg, tiny_dataset(), tmp_path / "single", "s", quiet=True, progress=False)
    single.G.train()
    single.D.train()
    assert single.batch_size == 8
    x, y, z = fixed_batch(cfg)
    reference = grad_step(single, x, y, z)
    assert {k[5:] for k in rank0 if k.startswith("grad.")} == set(reference)
    for model in ("D.", "G."):  # real gradients, not a vacuous match
        assert sum(g.abs().sum() for k, g in reference.items() if k.startswith(model)) > 0
    for name, grad in reference.items():
        torch.testing.assert_close(rank0[f"grad.{name}"], grad, rtol=1e-4, atol=1e-6, msg=name)
        torch.testing.assert_close(rank1[f"grad.{name}"], grad, rtol=1e-4, atol=1e-6, msg=name)


def test_after_a_step_on_different_batches_both_ranks_hold_identical_weights(two_rank_dump):
    rank0, rank1 = two_rank_dump
    assert int(rank0["shard_size"]) == int(rank1["shard_size"]) == 15  # 30 images, 2 shards
    assert not torch.equal(rank0["metrics"], rank1["metrics"])  # each rank saw its own batch
    weights = [k for k in rank0 if k.startswith("w.")]
    assert any(k.startswith("w.G.") for k in weights) and any(k.startswith("w.D.") for k in weights)
    for key in weights:
        assert torch.equal(rank0[key], rank1[key]), key


def test_global_batch_must_divide_by_the_world_size():
    env = dist_util.DistEnv(rank=1, world_size=4, local_rank=1)
    assert dist_util.per_rank_batch(64, env) == 16
    with pytest.raises(UsageError, match="must divide by the 4 processes"):
        dist_util.per_rank_batch(30, env)
    assert dist_util.per_rank_batch(7, dist_util.SINGLE) == 7
    assert dist_util.shard(10, env).tolist() == [1, 5, 9]
    seeds = {dist_util.rank_seed(0, r, s) for r in range(4) for s in (0, 100)}
    assert len(seeds) == 8


def test_sync_bn_converts_conditional_batchnorm_and_keeps_checkpoint_keys():
    from ganaug.models import build_generator

    g = build_generator("dcgan", z_dim=16, num_classes=3, image_size=28, channels=1, width=8)
    plain_keys = set(g.state_dict())
    with pytest.raises(UsageError, match="--sync-bn needs CUDA"):
        dist_util.convert_sync_bn(g, torch.device("cpu"))
    synced = dist_util.convert_sync_bn(g, torch.device("cuda"))  # conversion itself needs no GPU
    assert any(isinstance(m, torch.nn.SyncBatchNorm) for m in synced.modules())
    assert not any(type(m) is torch.nn.BatchNorm2d for m in synced.modules())
    assert set(synced.state_dict()) == plain_keys  # checkpoints stay loadable without --sync-bn
    fresh = build_generator("dcgan", z_dim=16, num_classes=3, image_size=28, channels=1, width=8)
    fresh.load_state_dict(synced.state_dict(), strict=True)


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_torchrun_cli_run_writes_the_run_dir_once_and_resumes_with_one_process(tmp_path):
    images, labels = pattern_images([10, 10, 10], size=28, channels=1)
    data = tmp_path / "data.npz"
    np.savez(data, images=images, labels=labels)
    run = tmp_path / "run"
    opts = ["--arch", "mlp", "--g-width", "8", "--d-width", "8", "--z-dim", "16", "--batch-size", "8"]
    opts += ["--device", "cpu", "--precision", "fp32", "--log-every", "2", "--checkpoint-every", "4"]
    opts += ["--sample-every", "4", "--seed", "1", "--quiet"]
    cmd = [*TORCHRUN, "-m", "ganaug", "train", str(data), "--out", str(run), "--steps", "4", *opts]
    proc = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _files(run) == {
        ".ganaug-output.json",  # the run's output marker (ganaug.output_safety)
        "config.yaml",
        "classes.json",
        "run.json",
        "results.csv",
        "results.png",
        "samples/step_000004.png",
        "weights/last.safetensors",
        "weights/ema.safetensors",
        "weights/state.json",
        "weights/snapshots.json",  # EMA snapshots for --checkpoint (one per checkpoint, bounded count)
        "weights/snapshots/ema_step_000004.safetensors",
    }
    rows = (run / "results.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["2", "4"]  # one row per interval, not one per rank
    assert '"world_size": 2' in (run / "run.json").read_text()

    # resume the 2-process run with a single process
    resume = [sys.executable, "-m", "ganaug", "train", "--out", str(run), "--resume", "--steps", "6"]
    proc = subprocess.run([*resume, "--quiet"], env=ENV, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = (run / "results.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["2", "4", "6"]
    assert '"step": 6' in (run / "weights" / "state.json").read_text()


def _worker_pid(parent: int, rank: int) -> int | None:
    """The pid of torchrun's worker with ``RANK=rank`` (Linux /proc)."""
    children = Path(f"/proc/{parent}/task/{parent}/children")
    for pid in children.read_text().split() if children.exists() else []:
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"RANK={rank}".encode() in environ:
            return int(pid)
    return None


def test_sigterm_to_one_rank_stops_all_ranks_together_with_one_checkpoint(tmp_path):
    images, labels = pattern_images([10, 10, 10], size=28, channels=1)
    data = tmp_path / "data.npz"
    np.savez(data, images=images, labels=labels)
    run = tmp_path / "run"
    opts = ["--arch", "mlp", "--g-width", "8", "--d-width", "8", "--z-dim", "16", "--batch-size", "8"]
    opts += ["--device", "cpu", "--precision", "fp32", "--log-every", "5", "--steps", "1000000"]
    opts += ["--checkpoint-every", "1000000", "--sample-every", "1000000", "--quiet"]
    cmd = [*TORCHRUN, "-m", "ganaug", "train", str(data), "--out", str(run), *opts]
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (run / "results.csv").exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        pid = _worker_pid(proc.pid, 1)
        assert pid is not None and (run / "results.csv").exists()
        os.kill(pid, signal.SIGTERM)  # only rank 1 is told to stop
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    # rank 0 was never signalled, yet it reports the stop: the ranks stopped together (only rank 0 prints)
    assert out.count("stopped by SIGTERM") == 1, out + err[-2000:]
    assert proc.returncode is not None
    rows = (run / "results.csv").read_text().splitlines()[1:]
    last = int(rows[-1].split(",")[0])
    assert last % 5 == 0 and last < 1000000
    assert f'"step": {last}' in (run / "weights" / "state.json").read_text()  # rank 0's checkpoint
    assert _files(run) >= {"weights/last.safetensors", f"samples/step_{last:06d}.png"}

    # and the 2-process run resumes with 2 processes
    resume = [*TORCHRUN, "-m", "ganaug", "train", "--out", str(run), "--resume", "--steps", str(last + 5)]
    done = subprocess.run([*resume, "--quiet"], env=ENV, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = (run / "results.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows][-2:] == [last, last + 5]
    assert f'"step": {last + 5}' in (run / "weights" / "state.json").read_text()


if __name__ == "__main__":
    _worker(Path(sys.argv[1]))
