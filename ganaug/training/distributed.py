"""Multi-process training under ``torchrun`` (DistributedDataParallel): who we are, and the few collectives.

``torchrun --nproc_per_node=N -m ganaug train ...`` sets ``WORLD_SIZE``/``RANK``/``LOCAL_RANK``;
:func:`detect` reads them. Every rank holds the full models (wrapped in DDP for their own update
steps) and its own shard ``rank::world`` of the dataset; ``--batch-size`` stays the *global* batch
(``batch_size // world`` per rank). Only rank 0 writes files. Collectives outside DDP's own gradient
all-reduce happen at log time only (:func:`reduce_log`: metrics and the stop flag in one call) and
around setup/checkpoints (:func:`rank0_first`, :func:`barrier`).
"""

from __future__ import annotations

import contextlib
import datetime
import gc
import inspect
import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch
import torch.distributed as dist

from ganaug.errors import GanaugError, UsageError

T = TypeVar("T")


@dataclass(frozen=True)
class DistEnv:
    """This process's place in the job (``world_size == 1``: plain single-process training)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


SINGLE = DistEnv()


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    try:
        return int(value) if value.strip() else default
    except ValueError:
        raise UsageError(f"environment variable {name}={value!r} is not an integer") from None


def detect() -> DistEnv:
    """The job as ``torchrun`` (or SLURM + torchrun) describes it in the environment."""
    world = _env_int("WORLD_SIZE", 1)
    if world <= 1:
        return SINGLE
    rank = _env_int("RANK", 0)
    local = _env_int("LOCAL_RANK", 0)
    if not 0 <= rank < world:
        raise UsageError(f"RANK={rank} is outside WORLD_SIZE={world}")
    return DistEnv(rank=rank, world_size=world, local_rank=local)


def per_rank_batch(batch_size: int, env: DistEnv) -> int:
    """``--batch-size`` is global: each rank draws ``batch_size // world`` images (must divide)."""
    if batch_size % env.world_size:
        raise UsageError(
            f"--batch-size {batch_size} is the global batch and must divide by the {env.world_size} "
            f"processes (try {max(env.world_size, batch_size // env.world_size * env.world_size)})"
        )
    if batch_size // env.world_size < 2:
        raise UsageError(
            f"--batch-size {batch_size} over {env.world_size} processes leaves < 2 images per process"
        )
    return batch_size // env.world_size


def rank_device(device: torch.device, env: DistEnv) -> torch.device:
    """CUDA ranks use ``cuda:LOCAL_RANK`` (one GPU per process); other devices are unchanged."""
    if env.enabled and device.type == "cuda":
        if env.local_rank >= torch.cuda.device_count():
            raise UsageError(
                f"LOCAL_RANK {env.local_rank} but only {torch.cuda.device_count()} CUDA device(s) here; "
                "use --nproc_per_node <= the GPU count"
            )
        torch.cuda.set_device(env.local_rank)
        return torch.device("cuda", env.local_rank)
    return device


@contextlib.contextmanager
def process_group(env: DistEnv, device: torch.device) -> Iterator[None]:
    """Init the default process group (NCCL on CUDA, gloo otherwise) and always destroy it."""
    if not env.enabled or dist.is_initialized():
        yield
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    kwargs = {"device_id": device} if backend == "nccl" else {}
    dist.init_process_group(
        backend=backend,
        rank=env.rank,
        world_size=env.world_size,
        timeout=datetime.timedelta(minutes=30),
        **kwargs,
    )
    try:
        yield
    except BaseException:
        _tear_down(wait_for_peers=False)  # a peer may never reach a barrier again
        raise
    _tear_down(wait_for_peers=True)


def _tear_down(*, wait_for_peers: bool) -> None:
    """Destroy the default process group while the interpreter is fully alive.

    Trainers hold their DDP wrappers (and so the gloo/NCCL group) in reference cycles; left to the
    interpreter's final clean-up, freeing them can abort the process ("terminate called without an
    active exception"). So: wait until every rank is done with its collectives, collect those
    cycles now, then destroy the group.
    """
    if wait_for_peers:
        with contextlib.suppress(Exception):
            dist.barrier()
    gc.collect()
    with contextlib.suppress(Exception):
        dist.destroy_process_group()


def _flag_device() -> torch.device:
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def barrier(env: DistEnv) -> None:
    if env.enabled:
        dist.barrier()


def rank0_first(env: DistEnv, fn: Callable[[], T], *, others: bool = False) -> T | None:
    """Run ``fn`` on rank 0 (and after it, on the other ranks when ``others``); fail on every rank together.

    An error on rank 0 is re-raised there; the other ranks raise a one-line :class:`GanaugError`
    instead of waiting forever at the next collective.
    """
    if not env.enabled:
        return fn()
    result: T | None = None
    error: BaseException | None = None
    if env.is_main:
        try:
            result = fn()
        except Exception as exc:  # re-raised below, after telling the other ranks
            error = exc
    flag = torch.tensor([1.0 if error is not None else 0.0], device=_flag_device())
    dist.all_reduce(flag)
    if error is not None:
        raise error
    if flag.item() > 0:
        raise GanaugError(f"rank {env.rank}: rank 0 failed during setup (its error is in rank 0's output)")
    if others and not env.is_main:
        result = fn()
    return result


def reduce_log(values: torch.Tensor, stop: bool, env: DistEnv) -> tuple[torch.Tensor, bool]:
    """Average the metric tensor over ranks and OR the stop flags: one all-reduce per log interval."""
    if not env.enabled:
        return values, stop
    packed = torch.cat([values.float(), torch.tensor([1.0 if stop else 0.0], device=values.device)])
    dist.all_reduce(packed)
    packed /= env.world_size
    return packed[:-1], bool(packed[-1].item() > 0)


def shard(n: int, env: DistEnv) -> torch.Tensor:
    """This rank's dataset indices ``rank::world`` (like ``DistributedSampler`` without padding)."""
    if n < env.world_size:
        raise UsageError(f"{n} training images cannot be shared by {env.world_size} processes")
    return torch.arange(env.rank, n, env.world_size)


def rank_seed(seed: int, rank: int, step: int) -> int:
    """A well-mixed 63-bit seed for ``(seed, rank, step)`` (distinct streams per rank and resume point)."""
    state = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(rank), int(step)]).generate_state(2)
    return int((int(state[0]) << 32 | int(state[1])) & 0x7FFF_FFFF_FFFF_FFFF)


def wrap_ddp(module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """DDP around ``module`` (rank 0's parameters are broadcast to every rank here).

    No per-forward buffer broadcast (``forward_sync_buffers=False``; ``broadcast_buffers=False`` on
    older torch): spectral-norm vectors evolve identically on every rank (they depend
    on the weights only), and BatchNorm running statistics stay per rank (rank 0's are saved; with
    ``--sync-bn`` they agree anyway) -- saving a collective per forward.
    """
    from torch.nn.parallel import DistributedDataParallel

    # gradients of weights with a size-1 dimension (the projection head's [1, F] linear) have
    # ambiguous strides; DDP's one-time performance hint about copying them is noise here
    warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
    ids = [device.index] if device.type == "cuda" else None
    params = inspect.signature(DistributedDataParallel.__init__).parameters
    # buffers are synced from rank 0 once at construction, never per forward
    no_sync = (
        {"forward_sync_buffers": False} if "forward_sync_buffers" in params else {"broadcast_buffers": False}
    )
    return DistributedDataParallel(module, device_ids=ids, **no_sync)


def convert_sync_bn(module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """BatchNorm -> SyncBatchNorm (also inside ``ConditionalBatchNorm2d``); needs CUDA."""
    if device.type != "cuda":
        raise UsageError("--sync-bn needs CUDA (SyncBatchNorm does not run on CPU/gloo); drop --sync-bn")
    return torch.nn.SyncBatchNorm.convert_sync_batchnorm(module)
