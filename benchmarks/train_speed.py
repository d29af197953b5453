"""Training speed: ganaug's real ``Trainer.train_step`` vs a plain implementation of the same model.

Both sides train the same architecture (``build_generator``/``build_discriminator``), the same hinge
loss, the same DiffAugment policy and an EMA of G, on the same small random in-memory dataset, in one
process. "Plain" is the obvious PyTorch code: fp32, NCHW, D's parameters keep ``requires_grad`` during
the G step, ``torch.optim.Adam`` without ``foreach``, a float dataset on the host normalised and copied
per batch, the fake batch built with autograd on and then detached, ``.item()`` on the losses every
step. "Ours" is ``ganaug.training.loop.Trainer`` built from a ``TrainConfig`` exactly as ``ganaug
train`` builds it (precision, ``channels_last`` and ``compile`` as given on the command line).

After a warm-up the two alternate for ``--repeats`` rounds (each round runs ``--steps`` steps and ends
with a device sync); the table gives the median images/s, where one step consumes
``2 * batch_size`` images (one D and one G batch, as ``results.csv`` counts them). FLOPs per step
are counted once with ``torch.utils.flop_counter.FlopCounterMode`` on our step (matmuls and
convolutions, forward and backward); achieved GFLOP/s = FLOPs per step / median step time, shown next
to this machine's matmul (fp32, bf16) and convolution ceilings measured in the same run.

With ``--lean`` the second baseline runs instead: our step with ``ganaug train``'s default recipe
(DiffAugment "auto", EMA, mode seeking, spectral norm) against :class:`Lean`, a lean hand-written step
of the same G and D at the same precision and memory format, alternating A B A B; the ratio of step
times is given as measured and per FLOP (both sides' FLOPs counted). On the CPU these step times are
process CPU seconds (``time.process_time``), so that other jobs on shared cores do not count.

    python benchmarks/train_speed.py --threads 1 --json benchmarks/train_speed_cpu.json
    python benchmarks/train_speed.py --threads 1 --lean --archs dcgan --sizes 32 --batch-sizes 64 \
        --channels 1 --repeats 8 --steps 3
    python benchmarks/train_speed.py --quick                       # smoke run, one minute
    python benchmarks/train_speed.py --scaling --archs resnet      # 32/64/128 px x batch 32/128/512
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from ganaug import __version__
from ganaug.data import ImageDataset
from ganaug.diffaugment import DiffAugment
from ganaug.models import build_discriminator, build_generator
from ganaug.training.config import TrainConfig
from ganaug.training.device import resolve_device
from ganaug.training.loop import Trainer

NUM_CLASSES = 10
DATASET_SIZE = 512
POLICY = "color,translation,cutout"


# ----------------------------------------------------------------------------- helpers
def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def random_dataset(size: int, channels: int, n: int = DATASET_SIZE, seed: int = 0) -> ImageDataset:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, size, size, channels), dtype=np.uint8)
    labels = rng.integers(0, NUM_CLASSES, size=n, dtype=np.int64)
    return ImageDataset(images, labels, [f"c{k}" for k in range(NUM_CLASSES)], source="random")


def make_config(args: argparse.Namespace, arch: str, batch: int) -> TrainConfig:
    return TrainConfig(
        arch=arch,
        batch_size=batch,
        z_dim=args.z_dim,
        g_width=args.width or None,
        d_width=args.width or None,
        diffaugment=POLICY,
        device=args.device,
        precision=args.precision,
        channels_last=not args.no_channels_last,
        compile=args.compile,
        seed=0,
    )


class Ours:
    """ganaug's real training step (``Trainer.train_step``), metrics left on the device."""

    def __init__(self, cfg: TrainConfig, ds: ImageDataset, run_dir: Path) -> None:
        self.trainer = Trainer(cfg, ds, run_dir, "bench", quiet=True, progress=False)
        self.trainer.G.train()
        self.trainer.D.train()
        self.device = self.trainer.device
        self.step_no = 0
        self.last: torch.Tensor | None = None

    def step(self) -> None:
        self.step_no += 1
        self.last = self.trainer.train_step(self.step_no)

    def finish(self) -> None:  # one sync per timed round, as the loop does per log interval
        if self.last is not None:
            self.last.tolist()
        sync(self.device)


class Plain:
    """The obvious implementation of the same model and algorithm (see the module docstring)."""

    def __init__(self, cfg: TrainConfig, ds: ImageDataset, device: torch.device) -> None:
        torch.manual_seed(cfg.seed)
        common = {"num_classes": ds.num_classes, "image_size": ds.image_size, "channels": ds.channels}
        g_kw = {"width": cfg.g_width} if cfg.g_width else {}
        d_kw = {"width": cfg.d_width} if cfg.d_width else {}
        self.device = device
        self.G = build_generator(cfg.arch, z_dim=cfg.z_dim, **common, **g_kw).to(device).train()
        self.D = build_discriminator(cfg.arch, **common, **d_kw).to(device).train()
        self.G_ema = copy.deepcopy(self.G).eval()
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=cfg.lr_g, betas=cfg.betas, foreach=False)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=cfg.lr_d, betas=cfg.betas, foreach=False)
        self.augment = DiffAugment(POLICY)
        self.images = ds.images.astype(np.float32)  # NHWC float on the host
        self.labels = ds.labels
        self.batch, self.z_dim, self.ema_decay = cfg.batch_size, cfg.z_dim, cfg.ema_decay
        self.rng = np.random.default_rng(0)
        self.history: list[tuple[float, float]] = []

    def step(self) -> None:
        idx = self.rng.integers(0, len(self.images), self.batch)
        x = torch.from_numpy(self.images[idx]).permute(0, 3, 1, 2) / 127.5 - 1.0
        x, y = x.to(self.device), torch.from_numpy(self.labels[idx]).to(self.device)
        fake = self.G(torch.randn(self.batch, self.z_dim, device=self.device), y)
        loss_d = (
            torch.relu(1.0 - self.D(self.augment(x), y)).mean()
            + torch.relu(1.0 + self.D(self.augment(fake.detach()), y)).mean()
        )
        self.opt_d.zero_grad()
        loss_d.backward()
        self.opt_d.step()
        fake = self.G(torch.randn(self.batch, self.z_dim, device=self.device), y)
        loss_g = -self.D(self.augment(fake), y).mean()
        self.opt_g.zero_grad()
        loss_g.backward()
        self.opt_g.step()
        with torch.no_grad():
            for pe, p in zip(self.G_ema.parameters(), self.G.parameters(), strict=True):
                pe.mul_(self.ema_decay).add_(p, alpha=1.0 - self.ema_decay)
            for be, b in zip(self.G_ema.buffers(), self.G.buffers(), strict=True):
                be.copy_(b)
        self.history.append((loss_d.item(), loss_g.item()))

    def finish(self) -> None:
        sync(self.device)


class Lean:
    """A lean conditional GAN step: the second baseline, at our step's architecture and precision.

    What a careful hand-written loop does and nothing more: the same G and D as ours (rebuilt from
    their ``config``; D without spectral norm, which is a training regulariser, not architecture), the
    same precision (autocast) and memory format as ours, the data already a normalised float tensor on
    the device, plain hinge loss, two D passes (real, then fake made under ``no_grad``), no D weight
    gradients in the G step, textbook ``torch.optim.Adam`` (torch's default implementation choice), no
    DiffAugment, no EMA, no mode seeking, no metrics. Both sides' FLOPs per step are counted
    (``FlopCounterMode``) and the ratio is also given per FLOP.
    """

    def __init__(self, ours: Ours, ds: ImageDataset) -> None:
        trainer = ours.trainer
        cfg = trainer.cfg
        torch.manual_seed(cfg.seed)
        self.device, self.amp_dtype, fmt = trainer.device, trainer.amp_dtype, trainer.memory_format
        self.G = build_generator(**trainer.G.config).to(self.device, memory_format=fmt).train()
        d_config = {**trainer.D.config, "spectral_norm": False}
        self.D = build_discriminator(**d_config).to(self.device, memory_format=fmt).train()
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=cfg.lr_g, betas=tuple(cfg.betas))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=cfg.lr_d, betas=tuple(cfg.betas))
        images = torch.tensor(ds.images, device=self.device).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        self.images = images.contiguous(memory_format=fmt)
        self.labels = torch.tensor(ds.labels, device=self.device)
        self.batch, self.z_dim = trainer.batch_size, cfg.z_dim

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def step(self) -> None:
        idx = torch.randint(0, self.images.shape[0], (self.batch,), device=self.device)
        x, y = self.images[idx], self.labels[idx]
        with self._autocast():
            with torch.no_grad():
                fake = self.G(torch.randn(self.batch, self.z_dim, device=self.device), y)
            loss_d = torch.relu(1.0 - self.D(x, y)).mean() + torch.relu(1.0 + self.D(fake, y)).mean()
        self.opt_d.zero_grad()
        loss_d.backward()
        self.opt_d.step()
        self.D.requires_grad_(False)  # no D weight gradients in the G step, as in ours
        with self._autocast():
            fake = self.G(torch.randn(self.batch, self.z_dim, device=self.device), y)
            loss_g = -self.D(fake, y).mean()
        self.opt_g.zero_grad()
        loss_g.backward()
        self.opt_g.step()
        self.D.requires_grad_(True)

    def finish(self) -> None:
        sync(self.device)


def timed_round(
    impl: Ours | Plain | Lean, steps: int, clock: Callable[[], float] = time.perf_counter
) -> float:
    """Seconds per step over ``steps`` steps (synchronised at the end), by ``clock``.

    ``time.process_time`` counts only the CPU time of this process: on cores shared with other jobs it
    leaves out the time the scheduler gave to them (with one torch thread and a CPU device).
    """
    impl.finish()
    start = clock()
    for _ in range(steps):
        impl.step()
    impl.finish()
    return (clock() - start) / steps


def count_flops(impl: Ours | Lean) -> int:
    with FlopCounterMode(display=False) as counter:
        impl.step()
    impl.finish()
    return int(counter.get_total_flops())


# ----------------------------------------------------------------------------- ceilings
def _best_rate(fn: Callable[[], object], flops: float, device: torch.device, min_time: float) -> float:
    """Best GFLOP/s of ``fn`` over several short rounds (the ceiling, so the best round counts)."""
    fn()
    sync(device)
    best = 0.0
    deadline = time.perf_counter() + min_time
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        fn()
        sync(device)
        best = max(best, flops / (time.perf_counter() - start) / 1e9)
    return best


def measure_ceilings(device: torch.device, min_time: float) -> dict[str, float]:
    """Matmul (fp32, bf16) and conv (fp32 and bf16, channels_last) GFLOP/s on ``device``."""
    n = 8192 if device.type == "cuda" else 1024
    out: dict[str, float] = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        out[f"matmul_{name}_gflops"] = round(
            _best_rate(lambda a=a, b=b: a @ b, 2 * n**3, device, min_time), 1
        )
    batch = 256 if device.type == "cuda" else 32
    cin = cout = 256 if device.type == "cuda" else 128
    hw = 16
    conv_flops = 2 * batch * cout * hw * hw * cin * 9
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        x = torch.randn(batch, cin, hw, hw, device=device, dtype=dtype).to(memory_format=torch.channels_last)
        w = torch.randn(cout, cin, 3, 3, device=device, dtype=dtype).to(memory_format=torch.channels_last)
        rate = _best_rate(
            lambda x=x, w=w: torch.nn.functional.conv2d(x, w, padding=1), conv_flops, device, min_time
        )
        out[f"conv_{name}_gflops"] = round(rate, 1)
    return out


# ----------------------------------------------------------------------------- the comparison
def compare(args: argparse.Namespace, arch: str, size: int, batch: int, workdir: Path) -> dict:
    ds = random_dataset(size, args.channels)
    cfg = make_config(args, arch, batch)
    t0 = time.perf_counter()
    ours = Ours(cfg, ds, workdir)
    for _ in range(args.warmup):
        ours.step()
    ours.finish()
    warmup_s = time.perf_counter() - t0  # includes torch.compile when --compile is on
    plain = Plain(cfg, ds, ours.device)
    for _ in range(args.warmup):
        plain.step()
    flops = count_flops(ours)
    ours_t, plain_t = [], []
    for _ in range(args.repeats):  # alternate so that load changes hit both sides alike
        ours_t.append(timed_round(ours, args.steps))
        plain_t.append(timed_round(plain, args.steps))
    o, p = statistics.median(ours_t), statistics.median(plain_t)
    images = 2 * batch
    return {
        "arch": arch,
        "image_size": size,
        "batch_size": batch,
        "channels": args.channels,
        "precision": str(ours.trainer.amp_dtype or "fp32").replace("torch.", ""),
        "channels_last": cfg.channels_last,
        "compile": cfg.compile,
        "ours_img_s": round(images / o, 2),
        "plain_img_s": round(images / p, 2),
        "speedup": round(p / o, 3),
        "ours_step_s": [round(t, 4) for t in ours_t],
        "plain_step_s": [round(t, 4) for t in plain_t],
        "flops_per_img": int(flops / images),
        "gflops": round(flops / o / 1e9, 2),
        "plain_gflops": round(flops / p / 1e9, 2),
        "warmup_s": round(warmup_s, 2),
    }


# ----------------------------------------------------------------------------- vs the lean loop
def lean_compare(args: argparse.Namespace, arch: str, size: int, batch: int, workdir: Path) -> dict:
    """Our step with ``ganaug train``'s default recipe vs :class:`Lean`, alternating A B A B."""
    ds = random_dataset(size, args.channels)
    cfg = make_config(args, arch, batch)
    cfg.diffaugment = args.policy or "auto"  # the training default unless --policy is given
    ours = Ours(cfg, ds, workdir)
    lean = Lean(ours, ds)
    for impl in (ours, lean):
        for _ in range(args.warmup):
            impl.step()
        impl.finish()
    flops_ours, flops_lean = count_flops(ours), count_flops(lean)
    clock = time.process_time if ours.device.type == "cpu" else time.perf_counter
    ours_t, lean_t = [], []
    for _ in range(args.repeats):
        ours_t.append(timed_round(ours, args.steps, clock))
        lean_t.append(timed_round(lean, args.steps, clock))
    o, q = statistics.median(ours_t), statistics.median(lean_t)
    return {
        "clock": clock.__name__,
        "arch": arch,
        "image_size": size,
        "batch_size": batch,
        "channels": args.channels,
        "precision": str(ours.trainer.amp_dtype or "fp32").replace("torch.", ""),
        "diffaugment": ours.trainer.diffaugment_policy,
        "mode_seeking": cfg.mode_seeking,
        "ours_step_s": [round(t, 4) for t in ours_t],
        "lean_step_s": [round(t, 4) for t in lean_t],
        "ours_gflop_per_step": round(flops_ours / 1e9, 3),
        "lean_gflop_per_step": round(flops_lean / 1e9, 3),
        "time_ratio": round(o / q, 3),  # our step time / the lean step's
        "per_flop_ratio": round((o / flops_ours) / (q / flops_lean), 3),  # the same at equal FLOPs
    }


def print_lean(rows: list[dict]) -> None:
    print(
        "| arch | size | batch | precision | DiffAugment | clock | ours s/step | lean s/step | ours/lean "
        "| ours/lean per FLOP |"
    )
    print("|---|---:|---:|---|---|---|---:|---:|---:|---:|")
    for r in rows:
        o, q = statistics.median(r["ours_step_s"]), statistics.median(r["lean_step_s"])
        print(
            f"| {r['arch']} | {r['image_size']} | {r['batch_size']} | {r['precision']} | "
            f"{r['diffaugment']} | {r['clock']} | {o:.3f} | {q:.3f} | {r['time_ratio']:.2f}x | "
            f"{r['per_flop_ratio']:.2f}x |"
        )


# ----------------------------------------------------------------------------- ablation
ABLATION = (  # (name, precision, channels_last, compile, one D pass over [real; fake])
    ("fp32 NCHW", "fp32", False, False, True),
    ("fp32 channels_last", "fp32", True, False, True),
    ("bf16 NCHW", "bf16", False, False, True),
    ("bf16 channels_last, two D passes", "bf16", True, False, False),
    ("bf16 channels_last", "bf16", True, False, True),
)


def ablation(args: argparse.Namespace, arch: str, size: int, batch: int, workdir: Path) -> list[dict]:
    """Our step with each precision/layout variant, alternating with the plain step in one run."""
    ds = random_dataset(size, args.channels)
    variants = list(ABLATION)
    if args.compile:
        variants.append(("bf16 channels_last compile", "bf16", True, True, True))
    impls: dict[str, Ours | Plain] = {}
    warmups: dict[str, float] = {}
    for name, precision, channels_last, compiled, joint_d in variants:
        args_v = argparse.Namespace(**{**vars(args), "precision": precision, "compile": compiled})
        args_v.no_channels_last = not channels_last
        start = time.perf_counter()
        impls[name] = Ours(make_config(args_v, arch, batch), ds, workdir)
        impls[name].trainer.joint_d &= joint_d
        for _ in range(args.warmup):
            impls[name].step()
        impls[name].finish()
        warmups[name] = time.perf_counter() - start
    device = next(iter(impls.values())).device
    impls["plain"] = Plain(make_config(args, arch, batch), ds, device)
    for _ in range(args.warmup):
        impls["plain"].step()
    times: dict[str, list[float]] = {name: [] for name in impls}
    for _ in range(args.repeats):
        for name, impl in impls.items():
            times[name].append(timed_round(impl, args.steps))
    plain = statistics.median(times["plain"])
    rows = []
    for name, ts in times.items():
        t = statistics.median(ts)
        rows.append(
            {
                "arch": arch,
                "image_size": size,
                "batch_size": batch,
                "variant": name,
                "img_s": round(2 * batch / t, 2),
                "vs_plain": round(plain / t, 3),
                "step_s": [round(v, 4) for v in ts],
                "warmup_s": round(warmups.get(name, 0.0), 2),
            }
        )
    return rows


def print_ablation(rows: list[dict]) -> None:
    print("| arch | size | batch | our step as | img/s | vs plain | warm-up s |")
    print("|---|---:|---:|---|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['arch']} | {r['image_size']} | {r['batch_size']} | {r['variant']} | "
            f"{r['img_s']:.1f} | {r['vs_plain']:.2f}x | {r['warmup_s']} |"
        )


# ----------------------------------------------------------------------------- scaling
def _scaling_child(args: argparse.Namespace) -> dict:
    """One scaling point, in a fresh process so that ``ru_maxrss`` is its own peak."""
    arch, size, batch = args.archs[0], args.sizes[0], args.batch_sizes[0]
    ds = random_dataset(size, args.channels)
    cfg = make_config(args, arch, batch)
    with tempfile.TemporaryDirectory() as tmp:
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        ours = Ours(cfg, ds, Path(tmp))
        if ours.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(ours.device)
        for _ in range(args.warmup):
            ours.step()
        times = [timed_round(ours, args.steps) for _ in range(args.repeats)]
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        cuda_peak = torch.cuda.max_memory_allocated(ours.device) if ours.device.type == "cuda" else None
    step = statistics.median(times)
    row = {
        "arch": arch,
        "image_size": size,
        "batch_size": batch,
        "img_s": round(2 * batch / step, 2),
        "step_s": round(step, 4),
        "peak_rss_delta_mib": round((rss_after - rss_before) / 1024, 1),  # ru_maxrss is KiB on Linux
    }
    if cuda_peak is not None:
        row["cuda_peak_mib"] = round(cuda_peak / 2**20, 1)
    return row


def scaling(args: argparse.Namespace) -> list[dict]:
    rows = []
    for arch in args.archs:
        for size in args.sizes:
            for batch in args.batch_sizes:
                cmd = [
                    sys.executable, __file__, "--_scaling-child",
                    "--archs", arch, "--sizes", str(size), "--batch-sizes", str(batch),
                    "--repeats", str(args.repeats), "--steps", str(args.steps), "--warmup", str(args.warmup),
                    "--precision", args.precision, "--device", args.device, "--channels", str(args.channels),
                    "--z-dim", str(args.z_dim), "--width", str(args.width),
                ]  # fmt: skip
                if args.threads:
                    cmd += ["--threads", str(args.threads)]
                if args.compile:
                    cmd.append("--compile")
                if args.no_channels_last:
                    cmd.append("--no-channels-last")
                done = subprocess.run(cmd, capture_output=True, text=True, check=False)
                if done.returncode != 0:
                    print(done.stderr[-2000:], file=sys.stderr)
                    raise SystemExit(f"scaling point {arch} {size}px batch {batch} failed")
                row = json.loads(done.stdout.strip().splitlines()[-1])
                rows.append(row)
                print(
                    f"  {arch} {size:4d}px batch {batch:4d}: {row['img_s']:9.1f} img/s  "
                    f"{row['step_s']:8.3f} s/step  peak +{row['peak_rss_delta_mib']} MiB",
                    file=sys.stderr,
                    flush=True,
                )
    return rows


def print_scaling(rows: list[dict]) -> None:
    print("| arch | size | batch | img/s | s/step | peak memory (MiB) |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        mem = r.get("cuda_peak_mib", r["peak_rss_delta_mib"])
        print(
            f"| {r['arch']} | {r['image_size']} | {r['batch_size']} | {r['img_s']:.1f} | "
            f"{r['step_s']:.3f} | {mem} |"
        )


# ----------------------------------------------------------------------------- main
def environment(device: torch.device) -> dict:
    env = {
        "ganaug": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "device": str(device),
        "date": time.strftime("%Y-%m-%d"),
    }
    with contextlib.suppress(OSError):
        env["loadavg_start"] = [round(v, 2) for v in os.getloadavg()]
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    return env


def print_table(rows: list[dict], ceilings: dict[str, float]) -> None:
    print(
        "| arch | size | batch | precision | ours img/s | plain img/s | speedup | MFLOP/img | "
        "ours GFLOP/s | plain GFLOP/s | % of bf16 matmul |"
    )
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    bf16 = ceilings.get("matmul_bf16_gflops") or float("nan")
    for r in rows:
        print(
            f"| {r['arch']} | {r['image_size']} | {r['batch_size']} | {r['precision']} | "
            f"{r['ours_img_s']:.1f} | {r['plain_img_s']:.1f} | {r['speedup']:.2f}x | "
            f"{r['flops_per_img'] / 1e6:.0f} | {r['gflops']:.1f} | {r['plain_gflops']:.1f} | "
            f"{100 * r['gflops'] / bf16:.1f}% |"
        )
    print(
        "ceilings (GFLOP/s): "
        + ", ".join(f"{k.removesuffix('_gflops')} {v:.1f}" for k, v in ceilings.items())
    )


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--archs", default="dcgan,resnet", help="Comma-separated architectures (mlp, dcgan, resnet)."
    )
    p.add_argument("--sizes", default="32,64", help="Comma-separated image sizes.")
    p.add_argument("--batch-sizes", default="128", help="Comma-separated batch sizes.")
    p.add_argument("--repeats", type=int, default=5, help="Timed rounds per side (median reported).")
    p.add_argument("--steps", type=int, default=2, help="Training steps per timed round.")
    p.add_argument("--warmup", type=int, default=2, help="Untimed steps per side first.")
    p.add_argument("--precision", default="auto", help="Our precision: auto, fp32, bf16 (fp16 on CUDA).")
    p.add_argument("--no-channels-last", action="store_true", help="Our step in NCHW instead.")
    p.add_argument(
        "--compile", action="store_true", help="torch.compile our G and D (warm-up time reported)."
    )
    p.add_argument("--device", default="auto", help="auto, cpu or cuda.")
    p.add_argument("--channels", type=int, default=3, choices=(1, 3))
    p.add_argument("--z-dim", type=int, default=128)
    p.add_argument("--width", type=int, default=0, help="G and D width (0: the architecture's default).")
    p.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch threads (0: torch's default). On a shared, oversubscribed machine use 1: "
        "OpenMP threads stall on each other when the cores are busy with other processes.",
    )
    p.add_argument("--ceiling-time", type=float, default=2.0, help="Seconds per ceiling measurement.")
    p.add_argument("--quick", action="store_true", help="Smoke run: dcgan 32 px, batch 32, 2 repeats.")
    p.add_argument(
        "--scaling", action="store_true", help="img/s and memory at 32/64/128 px x batch 32/128/512."
    )
    p.add_argument(
        "--ablation",
        action="store_true",
        help="Our step as fp32/bf16 x NCHW/channels_last (+ compile with --compile) vs plain, one run.",
    )
    p.add_argument(
        "--lean",
        action="store_true",
        help="Our step with the default recipe vs the lean loop (class Lean), alternating, per FLOP.",
    )
    p.add_argument(
        "--policy", default=None, help="DiffAugment policy of our step for --lean (default: auto)."
    )
    p.add_argument("--json", type=Path, help="Write the rows (and ceilings) as JSON here.")
    p.add_argument("--_scaling-child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.archs, args.sizes, args.batch_sizes = "dcgan", "32", "32"
        args.repeats, args.steps, args.warmup, args.ceiling_time = 2, 1, 1, 0.5
    if args.scaling and not args._scaling_child:
        if "--sizes" not in (argv or sys.argv):
            args.sizes = "32,64,128"
        if "--batch-sizes" not in (argv or sys.argv):
            args.batch_sizes = "32,128,512"
        if "--archs" not in (argv or sys.argv):
            args.archs = "resnet"
        if "--repeats" not in (argv or sys.argv):
            args.repeats, args.steps, args.warmup = 1, 1, 1
    args.archs = [a.strip() for a in args.archs.split(",") if a.strip()]
    args.sizes, args.batch_sizes = _ints(args.sizes), _ints(args.batch_sizes)
    return args


def _configs(args: argparse.Namespace) -> list[tuple[str, int, int]]:
    """Every (architecture, image size, batch size) the command line asks for."""
    return [(a, s, b) for a in args.archs for s in args.sizes for b in args.batch_sizes]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args._scaling_child:
        print(json.dumps(_scaling_child(args)))
        return 0
    device = resolve_device(args.device)
    env = environment(device)
    if args.lean:
        rows = []
        with tempfile.TemporaryDirectory() as tmp:
            for arch, size, batch in _configs(args):
                rows.append(lean_compare(args, arch, size, batch, Path(tmp)))
        print_lean(rows)
        if args.json:
            args.json.write_text(json.dumps({"environment": env, "lean": rows}, indent=2) + "\n")
        return 0
    if args.ablation:
        rows = []
        with tempfile.TemporaryDirectory() as tmp:
            for arch, size, batch in _configs(args):
                rows += ablation(args, arch, size, batch, Path(tmp))
        print_ablation(rows)
        if args.json:
            args.json.write_text(json.dumps({"environment": env, "ablation": rows}, indent=2) + "\n")
        return 0
    if args.scaling:
        rows = scaling(args)
        print_scaling(rows)
        if args.json:
            args.json.write_text(json.dumps({"environment": env, "scaling": rows}, indent=2) + "\n")
        return 0
    print(f"environment: {env}", file=sys.stderr)
    ceilings = measure_ceilings(device, args.ceiling_time)
    print(f"ceilings: {ceilings}", file=sys.stderr, flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for arch in args.archs:
            for size in args.sizes:
                for batch in args.batch_sizes:
                    row = compare(args, arch, size, batch, Path(tmp))
                    rows.append(row)
                    print(
                        f"  {arch} {size}px batch {batch}: ours {row['ours_img_s']:.1f} img/s, "
                        f"plain {row['plain_img_s']:.1f} img/s, {row['speedup']:.2f}x "
                        f"(warm-up {row['warmup_s']} s)",
                        file=sys.stderr,
                        flush=True,
                    )
    ceilings_end = measure_ceilings(device, args.ceiling_time)  # ceilings bracket the run
    ceilings = {k: max(v, ceilings_end[k]) for k, v in ceilings.items()}
    for row in rows:  # model FLOP utilisation against the bf16 matmul rate of this run
        row["mfu_bf16"] = round(row["gflops"] / ceilings["matmul_bf16_gflops"], 4)
    print_table(rows, ceilings)
    if args.json:
        payload = {"environment": env, "ceilings": ceilings, "rows": rows}
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
