"""The training loop: alternating D/G steps on a dataset that lives on the device.

Hot-path rules (CUDA first, correct on CPU): the uint8 dataset is copied to the device once and
normalised there per batch; models run channels_last under bf16 autocast where the hardware has
it (CUDA, and CPUs with AVX512-BF16/AMX: see ``device.resolve_precision``); the D step runs D once
over ``[real; fake]`` (unless D has BatchNorm); D's parameters stop requiring grad during the G step;
Adam is fused (CUDA, CPU; foreach elsewhere); metrics accumulate in device tensors and reach the
host only every ``log_every`` steps. ``benchmarks/train_speed.py`` measures all of this against a
plain loop and against a lean one.
Under ``torchrun`` the same loop runs in every process with DDP (``ganaug.training.distributed``).
"""

from __future__ import annotations

import math
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.modules.batchnorm import _BatchNorm

from ganaug.data import ImageDataset
from ganaug.diffaugment import DiffAugment
from ganaug.ema import EMA
from ganaug.errors import GanaugError
from ganaug.grid import save_grid
from ganaug.imageops import quantize_torch
from ganaug.losses import get_loss, gradient_penalty, lecam_penalty, mode_seeking_loss, r1_penalty
from ganaug.models import build_discriminator, build_generator
from ganaug.noise import NoiseStream
from ganaug.training import distributed as dist_util
from ganaug.training.config import NO_STEP_LIMIT, TrainConfig
from ganaug.training.device import autocast, resolve_device, resolve_precision
from ganaug.training.logs import ResultsLog, plain_line
from ganaug.training.snapshots import TrainScorer, latest_temperature, record_snapshot
from ganaug.training.state import (
    TrainingModules,
    load_training_state,
    restore_modules,
    save_checkpoint,
)

GRID_SEED = 20170610  # fixed noise for sample grids, so grids of one run are comparable
MAX_GRID_ROWS = 20
DIFFAUGMENT_AUTO_LIMIT = 20_000  # "auto" turns DiffAugment on below this many training images
# "auto" policy: no "color" -- with it D cannot see brightness/contrast, and G's latent varied mostly
# those (benchmarks/quality_budget.py: recall 0.34 -> 0.45, FID 41 -> 39 at 10 CPU-minutes)
DIFFAUGMENT_AUTO_POLICY = "translation,cutout"
DCGAN_G_WIDTH = 64  # dcgan generator width when --g-width is unset (measured default, issue 14)
LECAM_DECAY = 0.99  # moving average of D's outputs that LeCam anchors to (Tseng et al. 2021)


class TrainingDiverged(GanaugError):
    """Losses became NaN/inf, or D won so completely that G gets no useful gradient."""


@dataclass
class TrainResult:
    """What a finished (or interrupted) run returns."""

    run_dir: Path
    step: int
    metrics: dict[str, float] = field(default_factory=dict)
    interrupted: str | None = None
    elapsed_s: float = 0.0
    files: dict[str, str] = field(default_factory=dict)
    rank: int = 0  # under torchrun: this process's rank (only rank 0 wrote files or should print)


@dataclass
class _Window:
    """``Trainer.run``'s clocks and the current log interval's device-side metric sums."""

    acc: torch.Tensor
    start: float
    run_start: float
    elapsed_before: float
    every_s: float  # --checkpoint-minutes in CPU seconds (inf: off)
    next_cpu_ckpt: float
    plain: bool  # one plain line per log interval (stderr is a log file, not a terminal)
    count: int = 0
    last: dict[str, float] = field(default_factory=dict)
    perfect_windows: int = 0


class Trainer:
    """One training run in one run directory (fresh or resumed)."""

    def __init__(
        self,
        cfg: TrainConfig,
        dataset: ImageDataset,
        run_dir: Path,
        run_id: str,
        *,
        quiet: bool = False,
        progress: bool | None = None,
        dist: dist_util.DistEnv | None = None,
    ) -> None:
        self.cfg = cfg
        self.dist = dist or dist_util.SINGLE
        self.is_main = self.dist.is_main
        self.batch_size = dist_util.per_rank_batch(cfg.batch_size, self.dist)  # per rank (global if single)
        self.dataset = dataset
        self.run_dir = run_dir
        self.run_id = run_id
        self.quiet = quiet
        self.progress = (not quiet and sys.stderr.isatty()) if progress is None else progress
        self.progress = self.progress and self.is_main
        self.device = dist_util.rank_device(resolve_device(cfg.device), self.dist)
        self.amp_dtype = resolve_precision(cfg.precision, self.device)
        self.memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
        self.loss = get_loss(cfg.loss)
        policy = cfg.diffaugment
        if policy == "auto":
            policy = DIFFAUGMENT_AUTO_POLICY if len(dataset) < DIFFAUGMENT_AUTO_LIMIT else "none"
        self.diffaugment_policy = policy
        self.augment = DiffAugment(policy)
        self.step = 0
        self.cpu_s = 0.0  # process CPU seconds spent training so far (snapshot scoring excluded)
        self._stop_signal: str | None = None
        if cfg.time_budget is not None and self.dist.enabled:
            raise GanaugError("--time-budget counts one process's CPU time; it is not for torchrun runs")
        self._build()

    # ----------------------------------------------------------------- setup
    def _build(self) -> None:
        cfg, ds = self.cfg, self.dataset
        torch.manual_seed(cfg.seed)
        common = {"num_classes": ds.num_classes, "image_size": ds.image_size, "channels": ds.channels}
        g_width = cfg.g_width or (DCGAN_G_WIDTH if cfg.arch == "dcgan" else None)
        g_kw: dict[str, Any] = {"width": g_width} if g_width else {}
        d_kw: dict[str, Any] = {"width": cfg.d_width} if cfg.d_width else {}
        if cfg.g_cond is not None:
            g_kw["cond"] = cfg.g_cond
        if cfg.minibatch_std is not None:
            d_kw["minibatch_std"] = cfg.minibatch_std
        self.G = build_generator(cfg.arch, z_dim=cfg.z_dim, **common, **g_kw).to(self.device)
        self.D = build_discriminator(cfg.arch, **common, **d_kw).to(self.device)
        self.G.to(memory_format=self.memory_format)
        self.D.to(memory_format=self.memory_format)
        self.ema = EMA(self.G, decay=cfg.ema_decay)  # plain BatchNorm copy even with --sync-bn
        # LeCam anchors: moving averages of D's mean real and fake logits, and the update count
        self.lecam_state = torch.zeros(3, device=self.device)
        self.scorer = TrainScorer(ds, self.device, seed=cfg.seed) if cfg.snapshots > 0 else None
        if self.dist.enabled and getattr(cfg, "sync_bn", False):
            self.G = dist_util.convert_sync_bn(self.G, self.device)
            self.D = dist_util.convert_sync_bn(self.D, self.device)
        # fused Adam: one kernel per step on CUDA; on the CPU 2-3.5x faster than foreach (dcgan 32 px)
        fused = self.device.type in ("cuda", "cpu")
        opt_kw: dict[str, Any] = {"fused": True} if fused else {"foreach": True}
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=cfg.lr_g, betas=tuple(cfg.betas), **opt_kw)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=cfg.lr_d, betas=tuple(cfg.betas), **opt_kw)
        use_scaler = self.amp_dtype == torch.float16
        self.scaler_g = torch.amp.GradScaler(self.device.type, enabled=use_scaler)
        self.scaler_d = torch.amp.GradScaler(self.device.type, enabled=use_scaler)
        if self.dist.enabled:  # this rank's shard rank::world; batches are drawn from it only
            keep = dist_util.shard(len(ds), self.dist).numpy()
            self.images = torch.tensor(ds.images[keep], device=self.device)
            self.labels = torch.tensor(ds.labels[keep], device=self.device)
        else:
            self.images = torch.tensor(ds.images, device=self.device)  # uint8 NHWC, normalised per batch
            self.labels = torch.tensor(ds.labels, device=self.device)
        # --balance-classes: each item drawn with probability 1 / (its class's count); fake batches
        # take the real batch's labels, so G is asked for every class equally often too
        self.draw_weights: torch.Tensor | None = None
        if cfg.balance_classes:
            counts = torch.bincount(self.labels, minlength=ds.num_classes).float()
            self.draw_weights = (1.0 / counts.clamp(min=1.0))[self.labels]
        # D sees real and fake in one batch (larger convolutions, one spectral-norm power iteration
        # per D step instead of two) unless it normalises across the batch (BatchNorm), where mixing
        # real and fake would change what it computes.
        self.joint_d = not any(isinstance(m, _BatchNorm) for m in self.D.modules())
        self.G_step, self.D_step = self.G, self.D
        if self.cfg.compile:
            self.G_step = torch.compile(self.G)
            self.D_step = torch.compile(self.D)
        # DDP wrappers, each used only for its own model's update step: D's joint forward in the D step
        # (one forward per backward), G's forward in the G step (D is called unwrapped there: its
        # parameters are frozen, so none of D's DDP hooks fire). Single process: the plain modules.
        self.G_train, self.D_train = self.G_step, self.D_step
        if self.dist.enabled:
            self.G_train = dist_util.wrap_ddp(self.G, self.device)
            self.D_train = dist_util.wrap_ddp(self.D, self.device)
            if self.cfg.compile:
                self.G_train = torch.compile(self.G_train)
                self.D_train = torch.compile(self.D_train)
            # same initial weights everywhere (seeded above, and DDP broadcast rank 0's); from here on
            # each rank draws its own batches, noise and DiffAugment parameters
            self.reseed_rank(0)
        grid_classes = min(ds.num_classes, MAX_GRID_ROWS)
        z = NoiseStream(GRID_SEED, cfg.z_dim).take(cfg.grid_columns)
        self.grid_z = torch.from_numpy(np.tile(z, (grid_classes, 1))).to(self.device)
        self.grid_temperature = 1.0  # the latest snapshot's chosen temperature, as the weights sample
        self.grid_labels = torch.arange(grid_classes, device=self.device).repeat_interleave(cfg.grid_columns)

    def resume(self) -> None:
        """Load the run's last checkpoint (models, optimizers, EMA, RNG, step)."""
        state = load_training_state(self.run_dir)
        restore_modules(state, self.run_dir / "weights" / "last.safetensors", self.modules())
        self.ema.step = state.ema_step
        self.step = state.step
        if "lecam" in state.tensors:
            self.lecam_state.copy_(state.tensors["lecam"])
        self.cpu_s = float(state.meta.get("ganaug.cpu_s", 0.0))
        self.grid_temperature = latest_temperature(self.run_dir, state.step)
        if self.dist.enabled:  # rank 0 continues the saved RNG stream; other ranks start fresh ones
            self.reseed_rank(state.step)

    def modules(self) -> TrainingModules:
        """What a checkpoint saves and restores: G, D, the EMA generator and both optimizers."""
        return TrainingModules(self.G, self.D, self.ema.module, self.opt_g, self.opt_d)

    def reseed_rank(self, step: int) -> None:
        """Ranks > 0: seed torch's RNG from ``(seed, rank, step)``; rank 0 keeps its stream."""
        if self.dist.rank > 0:
            torch.manual_seed(dist_util.rank_seed(self.cfg.seed, self.dist.rank, step))

    # ----------------------------------------------------------------- the step
    def _real_batch(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.draw_weights is None:
            idx = torch.randint(0, self.images.shape[0], (n,), device=self.device)
        else:  # on the device, no host sync
            idx = torch.multinomial(self.draw_weights, n, replacement=True)
        x = self.images[idx].permute(0, 3, 1, 2).float().mul_(1.0 / 127.5).sub_(1.0)
        return x.contiguous(memory_format=self.memory_format), self.labels[idx]

    def _noise(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.cfg.z_dim, device=self.device)

    def _d_step(self, x: torch.Tensor, y: torch.Tensor, step: int) -> tuple[torch.Tensor, ...]:
        cfg = self.cfg
        use_r1 = cfg.r1 > 0 and step % cfg.r1_every == 0
        with autocast(self.device, self.amp_dtype):
            with torch.no_grad():
                fake = self.G_step(self._noise(x.shape[0]), y)
            real_in = x.detach().requires_grad_(True) if use_r1 else x
            if self.joint_d:  # one D pass over [real; fake]: bigger convolutions, one weight fetch
                n = x.shape[0]
                both = torch.cat([real_in, fake.to(real_in.dtype)])
                logits = self.D_train(self.augment(both), torch.cat([y, y])).float()
                real_logits, fake_logits = logits[:n], logits[n:]
            else:
                real_logits = self.D_train(self.augment(real_in), y).float()  # DDP forward (hooks)
                fake_logits = self.D_step(self.augment(fake), y).float()  # grads still all-reduced
            loss = self.loss.discriminator(real_logits, fake_logits)
        if cfg.lecam > 0:
            loss = loss + cfg.lecam * self._lecam(real_logits, fake_logits)
        if cfg.loss == "wgan-gp":
            loss = loss + gradient_penalty(self.D_step, x, fake.float(), y, weight=cfg.gp_weight)
        if use_r1:
            loss = loss + r1_penalty(real_logits, real_in) * (cfg.r1 / 2.0 * cfg.r1_every)
        self.opt_d.zero_grad(set_to_none=True)
        self.scaler_d.scale(loss).backward()
        self.scaler_d.step(self.opt_d)
        self.scaler_d.update()
        return loss.detach(), real_logits.detach(), fake_logits.detach()

    @torch.no_grad()
    def _update_lecam(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> None:
        state = self.lecam_state
        means = torch.stack([real_logits.detach().float().mean(), fake_logits.detach().float().mean()])
        weight = 1.0 - LECAM_DECAY * (state[2] > 0).float()  # the first update takes the value itself
        state[:2].lerp_(means, weight)
        state[2] += 1

    def _lecam(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        """LeCam penalty against the anchors, updated with this batch first (as the authors do)."""
        self._update_lecam(real_logits, fake_logits)
        return lecam_penalty(real_logits, fake_logits, self.lecam_state[0], self.lecam_state[1])

    def _g_step(self, y: torch.Tensor) -> torch.Tensor:
        self.D.requires_grad_(False)  # no weight gradients for D while G learns
        weight = self.cfg.mode_seeking
        if weight > 0:  # pairs: the batch's second half repeats the first half's classes
            half = y.shape[0] // 2
            y = torch.cat([y[:half], y[:half]])
        with autocast(self.device, self.amp_dtype):
            z = self._noise(y.shape[0])
            fake = self.G_train(z, y)
            loss = self.loss.generator(self.D_step(self.augment(fake), y).float())
            if weight > 0:
                loss = loss + weight * mode_seeking_loss(fake[:half], fake[half:], z[:half], z[half:])
        self.opt_g.zero_grad(set_to_none=True)
        self.scaler_g.scale(loss).backward()
        self.scaler_g.step(self.opt_g)
        self.scaler_g.update()
        self.D.requires_grad_(True)
        self.ema.update(self.G)
        return loss.detach()

    def train_step(self, step: int) -> torch.Tensor:
        """One full step (``d_steps`` D updates, one G update); returns device metrics, no sync."""
        for _ in range(self.cfg.d_steps):
            x, y = self._real_batch(self.batch_size)
            loss_d, real_logits, fake_logits = self._d_step(x, y, step)
        loss_g = self._g_step(y)
        accuracy = 0.5 * ((real_logits > 0).float().mean() + (fake_logits < 0).float().mean())
        return torch.stack([loss_d, loss_g, real_logits.mean(), fake_logits.mean(), accuracy])

    # ----------------------------------------------------------------- outputs
    def write_samples(self, step: int) -> Path:
        """The fixed-noise grid of the EMA generator: one labelled row per class, drawn at the
        temperature the latest snapshot chose (what ``sample``/``augment`` will use)."""
        with torch.no_grad():
            z = self.grid_z * self.grid_temperature
            images = quantize_torch(self.ema.module(z, self.grid_labels)).cpu().numpy()
        rows = self.dataset.classes[: min(self.dataset.num_classes, MAX_GRID_ROWS)]
        return save_grid(
            self.run_dir / "samples" / f"step_{step:06d}.png", images, rows, self.cfg.grid_columns
        )

    def checkpoint(self, step: int) -> None:
        """With ``--snapshots``, a scored EMA snapshot (its best ``--temperatures`` value becomes the
        EMA generator's default temperature); then the resumable checkpoint."""
        self.cpu_s = self._cpu_now() if hasattr(self, "_cpu_mark") else self.cpu_s
        temperature = None
        if self.cfg.snapshots > 0:
            start = time.process_time()
            entry = record_snapshot(
                self.run_dir,
                self.ema.module,
                classes=self.dataset.classes,
                run_id=self.run_id,
                step=step,
                cpu_s=self.cpu_s,
                keep=self.cfg.snapshots,
                scorer=self.scorer,
                temperatures=self.cfg.temperatures,
            )
            temperature = entry.get("temperature")
            self.grid_temperature = float(temperature or 1.0)
            if hasattr(self, "_cpu_mark"):  # scoring is not training: keep it out of the budget
                mark, before = self._cpu_mark
                self._cpu_mark = (mark + time.process_time() - start, before)
        save_checkpoint(
            self.run_dir,
            self.modules(),
            ema_step=self.ema.step,
            step=step,
            classes=self.dataset.classes,
            run_id=self.run_id,
            extra={"diffaugment": self.diffaugment_policy, "precision": str(self.amp_dtype or "fp32")},
            extra_tensors={"lecam": self.lecam_state},
            cpu_s=self.cpu_s,
            ema_temperature=temperature,
        )

    # ----------------------------------------------------------------- signals
    def _on_signal(self, signum: int, _frame: Any) -> None:
        self._stop_signal = signal.Signals(signum).name

    def _install_signals(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}
        previous = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, self._on_signal)
        return previous

    # ----------------------------------------------------------------- run
    def run(self, log: ResultsLog) -> TrainResult:
        cfg = self.cfg
        log.truncate(self.step)
        previous = self._install_signals()
        bar = self._progress_bar()
        self._cpu_mark = (time.process_time(), self.cpu_s)
        win = self._first_window(log)
        budget_s = cfg.time_budget * 60.0 if cfg.time_budget is not None else math.inf
        self.G.train()
        self.D.train()
        try:
            step = self.step
            while step < cfg.steps:
                step += 1
                win.acc += self.train_step(step)
                win.count += 1
                bar.update(1)
                cpu = self._cpu_now()
                final = step == cfg.steps or cpu >= budget_s
                # one process: stop at once; several: stop together at the next log interval (below)
                stopping = self._stop_signal is not None and not self.dist.enabled
                due_ckpt = step % cfg.checkpoint_every == 0 or cpu >= win.next_cpu_ckpt
                if cpu >= win.next_cpu_ckpt:
                    win.next_cpu_ckpt = (math.floor(cpu / win.every_s) + 1) * win.every_s
                if step % cfg.log_every == 0 or due_ckpt or final or stopping:
                    stopping = self._close_window(log, win, step, bar) or stopping
                sample = step % cfg.sample_every == 0 or final or stopping
                self._write_outputs(log, step, sample=sample, checkpoint=due_ckpt or final or stopping)
                if stopping or final:
                    break
        finally:
            bar.close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return TrainResult(
            run_dir=self.run_dir,
            step=self.step,
            metrics=win.last,
            interrupted=self._stop_signal,
            elapsed_s=win.elapsed_before + time.perf_counter() - win.run_start,
            rank=self.dist.rank,
        )

    def _progress_bar(self) -> Any:
        from tqdm import tqdm

        return tqdm(
            total=self._step_limit(),
            initial=self.step,
            disable=not (self.progress and sys.stderr.isatty()),
            unit="step",
            dynamic_ncols=True,
        )

    def _first_window(self, log: ResultsLog) -> _Window:
        """The run's clocks and the first log interval's accumulators (``_cpu_mark`` is set)."""
        cfg = self.cfg
        now = time.perf_counter()
        every_s = cfg.checkpoint_minutes * 60.0 if cfg.checkpoint_minutes is not None else math.inf
        next_ckpt = (math.floor(self.cpu_s / every_s) + 1) * every_s if every_s < math.inf else math.inf
        return _Window(
            acc=torch.zeros(5, device=self.device),
            start=now,
            run_start=now,
            elapsed_before=log.rows[-1]["elapsed_s"] if log.rows else 0.0,
            every_s=every_s,
            next_cpu_ckpt=next_ckpt,
            plain=self.is_main and not sys.stderr.isatty() and (self.progress or not self.quiet),
        )

    def _close_window(self, log: ResultsLog, win: _Window, step: int, bar: Any) -> bool:
        """End a log interval: the one host sync (and collective), the log row, the divergence and
        collapse guards, progress output. True when another rank was signalled (stop together)."""
        signalled = self._stop_signal is not None
        mean, stop_any = dist_util.reduce_log(win.acc / win.count, signalled, self.dist)
        values = mean.tolist()  # the one host sync (and collective) per log interval
        stopping = False
        if stop_any and self.dist.enabled:
            stopping = True
            self._stop_signal = self._stop_signal or "SIGTERM"  # another rank was signalled
        now = time.perf_counter()
        seconds, elapsed = now - win.start, win.elapsed_before + now - win.run_start
        win.last = self._log_row(log, step, values, win.count, seconds, elapsed)
        win.acc.zero_()
        win.count, win.start = 0, now
        self._check_divergence(step, values, win.last)
        self._check_collapse(step, win)
        last = win.last
        bar.set_postfix(d=f"{last['loss_d']:.3f}", g=f"{last['loss_g']:.3f}", ips=f"{last['img_per_s']:.0f}")
        if win.plain:  # a log file, not a terminal: one line per log interval, no bar
            print(plain_line(last, self._step_limit(), self.cfg.time_budget), file=sys.stderr, flush=True)
        return stopping

    def _step_limit(self) -> int | None:
        """The run's last step, or None when only ``--time-budget`` ends it."""
        return None if self.cfg.steps >= NO_STEP_LIMIT else self.cfg.steps

    def _done_fraction(self, step: int) -> float:
        """How far the run is: the larger of its step and CPU-budget fractions."""
        budget = self.cfg.time_budget
        by_budget = self._cpu_now() / (budget * 60.0) if budget is not None else 0.0
        return max(step / self.cfg.steps, by_budget)

    def _check_collapse(self, step: int, win: _Window) -> None:
        win.perfect_windows = win.perfect_windows + 1 if win.last["d_accuracy"] >= 0.995 else 0
        if win.perfect_windows >= self.cfg.divergence_patience and self._done_fraction(step) >= 0.1:
            raise TrainingDiverged(
                f"D has separated real from fake perfectly for {win.perfect_windows} log intervals "
                f"up to step {step}: G gets no useful gradient (collapse). "
                f"{self._good_checkpoint()} "
                "Try --r1 10, a lower --lr-d, or --diffaugment translation,cutout"
            )

    def _write_outputs(self, log: ResultsLog, step: int, *, sample: bool, checkpoint: bool) -> None:
        """The checkpoint (rank 0; the others wait for it), then the sample grid (rank 0), so that a
        grid drawn at a checkpoint uses the temperature its snapshot just chose."""
        if checkpoint:
            if self.is_main:
                self.checkpoint(step)
                log.plot()
            dist_util.barrier(self.dist)  # the others wait until rank 0's checkpoint is on disk
            self.step = step
        if sample and self.is_main:
            self.write_samples(step)

    def _cpu_now(self) -> float:
        """Training CPU seconds so far: this process's CPU time since ``run`` began plus earlier runs'."""
        start, before = self._cpu_mark
        return before + time.process_time() - start

    def _log_row(
        self, log: ResultsLog, step: int, values: list[float], count: int, seconds: float, elapsed: float
    ) -> dict[str, float]:
        images = count * self.cfg.batch_size * (self.cfg.d_steps + 1)
        row = {
            "step": step,
            "loss_d": values[0],
            "loss_g": values[1],
            "d_real": values[2],
            "d_fake": values[3],
            "d_accuracy": values[4],
            "lr_g": self.opt_g.param_groups[0]["lr"],
            "lr_d": self.opt_d.param_groups[0]["lr"],
            "img_per_s": images / max(seconds, 1e-9),
            "elapsed_s": elapsed,
            "cpu_s": self._cpu_now(),
        }
        if self.is_main:
            log.append(row)
        return row

    def _good_checkpoint(self) -> str:
        if (self.run_dir / "weights" / "last.safetensors").is_file():
            return (
                f"Last good checkpoint: {self.run_dir / 'weights' / 'last.safetensors'} (step {self.step})."
            )
        return "No checkpoint was written before this happened."

    def _check_divergence(self, step: int, values: list[float], row: dict[str, float]) -> None:
        if all(math.isfinite(v) for v in values):
            return
        raise TrainingDiverged(
            f"losses became NaN/inf by step {step} (D {row['loss_d']}, G {row['loss_g']}). "
            f"{self._good_checkpoint()} Lower --lr-g/--lr-d, use --precision fp32, or --loss hinge"
        )
