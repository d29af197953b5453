"""Training the fixed small CNN: classical augmentation, weighted/soft/distilled losses, fresh pools."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ganaug.errors import DataError, UsageError
from ganaug.eval.classifier_model import (
    Classifier,
    ClassifierMeta,
    SmallCNN,
    autocast_bf16,
    check_images,
    check_labels,
    to_model_input,
)


@dataclass
class TrainSettings:
    """Everything that determines a classifier's training (stored in its metadata)."""

    steps: int = 2000
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 5e-4
    seed: int = 0
    augment: bool = True
    hflip: bool = False
    shift: int | None = None
    label_smoothing: float = 0.0
    width: int = 32
    feature_dim: int = 128
    amp: bool = False


def augment_batch(x: torch.Tensor, generator: torch.Generator, *, shift: int, hflip: bool) -> torch.Tensor:
    """Classical augmentation on a float NCHW batch, vectorised: random shifts of up to ``shift``
    pixels (replicate-pad then crop back) and, when ``hflip``, random horizontal flips."""
    b, c, h, w = x.shape
    dev = x.device
    if hflip:
        flip = torch.rand(b, generator=generator, device=dev) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
    if shift > 0:
        xp = F.pad(x, (shift, shift, shift, shift), mode="replicate")
        oy = torch.randint(0, 2 * shift + 1, (b, 1), generator=generator, device=dev)
        ox = torch.randint(0, 2 * shift + 1, (b, 1), generator=generator, device=dev)
        rows = oy + torch.arange(h, device=dev)  # [b, h]
        cols = ox + torch.arange(w, device=dev)  # [b, w]
        bi = torch.arange(b, device=dev)[:, None, None, None]
        ci = torch.arange(c, device=dev)[None, :, None, None]
        x = xp[bi, ci, rows[:, None, :, None], cols[:, None, None, :]]
    return x.contiguous(memory_format=torch.channels_last)


def _cosine_lambda(total: int, warmup: int):
    def fn(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        t = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))

    return fn


def default_shift(image_size: int) -> int:
    """Default maximum shift: 1/8 of the image side (3 px at 28 px), at least 1."""
    return max(1, round(image_size / 8))


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-sample ``-sum_c target_c * log_softmax(logits)_c`` (``[B]``); equals the KL divergence
    from ``target`` to the prediction plus ``target``'s entropy, so it has the same gradients."""
    return -(target * F.log_softmax(logits, dim=1)).sum(1)


def balanced_softmax_adjustment(class_prior: np.ndarray) -> np.ndarray:
    """Logit offsets ``log(prior_c)`` for the balanced-softmax / logit-adjusted loss.

    Balanced Softmax (Ren et al., "Balanced Meta-Softmax for Long-Tailed Visual Recognition",
    NeurIPS 2020) trains on ``softmax(z + log prior)``: the logit-adjusted loss of Menon et al.
    ("Long-tail learning via logit adjustment", ICLR 2021) with tau = 1. The prior is the class
    distribution of the training batches; at test time the plain logits ``z`` are used, which
    estimates the balanced (class-uniform) posterior. Empty classes get offset ``log(1e-12)``.
    """
    prior = np.asarray(class_prior, dtype=np.float64)
    prior = prior / prior.sum()
    return np.log(np.maximum(prior, 1e-12)).astype(np.float32)


@torch.no_grad()
def teacher_probs(teacher: Any, x: torch.Tensor) -> torch.Tensor:
    """A teacher's class probabilities for a float NCHW batch in [-1, 1] (the student's view):
    a ganaug :class:`Classifier` runs its model directly; anything else gets uint8 NHWC numpy."""
    model = getattr(teacher, "model", None)
    if isinstance(model, SmallCNN):
        model.eval()
        return model(x.to(teacher.device)).float().softmax(1).to(x.device)
    u8 = ((x.float() + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
    probs = teacher.predict_proba(np.ascontiguousarray(u8.cpu().numpy()))
    return torch.as_tensor(np.asarray(probs, dtype=np.float32), device=x.device)


@dataclass
class _TrainSet:
    x: torch.Tensor
    y: torch.Tensor
    n: int
    w: torch.Tensor | None = None
    p: torch.Tensor | None = None
    soft: torch.Tensor | None = None
    has_soft: torch.Tensor | None = None
    distill: torch.Tensor | None = None


def _make_trainset(
    images: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    dev: torch.device,
    sample_weight: np.ndarray | None = None,
    draw_weight: np.ndarray | None = None,
    soft_targets: np.ndarray | None = None,
    distill_mask: np.ndarray | None = None,
) -> _TrainSet:
    """Validate the training arrays and put them on the device."""
    images = check_images(images)
    n = len(images)
    if n == 0:
        raise DataError("cannot train a classifier on zero images")
    labels = check_labels(labels, n, num_classes)
    data = _TrainSet(
        torch.from_numpy(np.require(images, requirements=["C", "W"])).to(dev),
        torch.from_numpy(labels).to(dev),
        n,
    )
    if sample_weight is not None:
        sw = np.asarray(sample_weight, dtype=np.float32)
        if sw.shape != (n,) or (sw < 0).any():
            raise UsageError(f"sample_weight must be {n} non-negative numbers, got shape {sw.shape}")
        data.w = torch.from_numpy(sw).to(dev)
    if draw_weight is not None:
        dw = np.asarray(draw_weight, dtype=np.float64)
        if dw.shape != (n,) or (dw < 0).any() or dw.sum() <= 0:
            raise UsageError(f"draw_weight must be {n} non-negative numbers with a positive sum")
        data.p = torch.from_numpy(dw / dw.sum()).float().to(dev)
    if soft_targets is not None:
        st = np.asarray(soft_targets, dtype=np.float32)
        if st.shape != (n, num_classes):
            raise UsageError(f"soft_targets must have shape ({n}, {num_classes}), got {st.shape}")
        has = ~np.isnan(st).any(1)
        if (st[has] < -1e-6).any() or not np.allclose(st[has].sum(1), 1.0, atol=1e-3):
            raise UsageError("soft_targets rows must be probabilities (>= 0, summing to 1) or NaN")
        data.soft = torch.from_numpy(np.nan_to_num(st, nan=0.0)).to(dev)
        data.has_soft = torch.from_numpy(has).to(dev)
    mask = np.ones(n, bool) if distill_mask is None else np.asarray(distill_mask, dtype=bool)
    if mask.shape != (n,):
        raise UsageError(f"distill_mask must have {n} entries, got shape {mask.shape}")
    data.distill = torch.from_numpy(mask).to(dev)
    return data


def _batch_targets(data: _TrainSet, idx: torch.Tensor, k: int, label_smoothing: float) -> torch.Tensor:
    """Target distributions of a batch: the soft rows where given, else (smoothed) one-hot labels."""
    target = F.one_hot(data.y[idx], k).float()
    if label_smoothing:
        target = target * (1 - label_smoothing) + label_smoothing / k
    if data.soft is not None:
        target = torch.where(data.has_soft[idx][:, None], data.soft[idx], target)
    return target


@dataclass
class TrainExtras:
    """What a training run adds to :class:`TrainSettings` beyond the images and labels (not stored
    in the metadata): per-sample weights and targets, a teacher, a loss offset, fresh pools.

    See :func:`train_classifier` for each field."""

    sample_weight: np.ndarray | None = None
    draw_weight: np.ndarray | None = None
    soft_targets: np.ndarray | None = None
    distill_mask: np.ndarray | None = None
    teacher: Any | None = None
    distill_weight: float = 0.0
    logit_adjustment: np.ndarray | None = None
    refresh: Callable[[int], dict[str, Any]] | None = None
    refresh_every: int = 0


_SETTINGS = {f.name for f in fields(TrainSettings)}
_EXTRAS = {f.name for f in fields(TrainExtras)}
_DATA_ARGS = ("sample_weight", "draw_weight", "soft_targets", "distill_mask")


def _split_options(
    settings: TrainSettings | None, options: dict[str, Any]
) -> tuple[TrainSettings, TrainExtras]:
    unknown = sorted(set(options) - _SETTINGS - _EXTRAS)
    if unknown:
        raise TypeError(f"train_classifier() got unexpected keyword argument(s) {', '.join(unknown)}")
    base = settings if settings is not None else TrainSettings()
    chosen = replace(base, **{k: v for k, v in options.items() if k in _SETTINGS})
    return chosen, TrainExtras(**{k: v for k, v in options.items() if k in _EXTRAS})


def train_classifier(
    images: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    settings: TrainSettings | None = None,
    *,
    init: Classifier | None = None,
    classes: list[str] | None = None,
    device: str | torch.device = "cpu",
    progress: bool = False,
    desc: str = "classifier",
    **options: Any,
) -> Classifier:
    """Train the fixed small CNN on uint8 NHWC ``images`` with int ``labels``.

    ``settings`` (:class:`TrainSettings`, stored in the classifier's metadata) and ``options`` --
    any :class:`TrainSettings` or :class:`TrainExtras` field by keyword, e.g. ``steps=500`` -- say
    how. ``augment`` turns classical augmentation on: random shifts of up to ``shift`` pixels
    (default :func:`default_shift`) and, if ``hflip``, horizontal flips (only sensible for
    mirror-symmetric domains). ``sample_weight`` (``[N]``, >= 0) multiplies each sample's loss: the
    batch loss is ``sum(w * ce) / batch_size``, so weight 0.3 makes a sample count 0.3 of a real one.
    ``draw_weight`` (``[N]``, >= 0) makes batches draw samples with those relative probabilities
    (default: uniform), e.g. to fix the synthetic share of each batch independently of the counts.
    ``init`` starts from another classifier's weights (curriculum: pre-train, then fine-tune).
    ``amp`` runs in bf16 autocast (CUDA or CPUs with bf16 support).

    Soft targets and rebalancing (all off by default; then the loss is plain cross-entropy):
    ``soft_targets`` (``[N, num_classes]``, rows of NaN = use the hard label) trains those samples
    with soft cross-entropy ``-sum_c t_c log p_c`` (KL to ``t`` plus a constant), e.g. a teacher's
    probabilities for synthetic images. ``teacher`` (an object with ``predict_proba`` on uint8 NHWC,
    or a :class:`Classifier`) with ``distill_weight`` a > 0 distils on the fly: the samples in
    ``distill_mask`` (``[N]`` bool, default all) get target ``(1 - a) * t + a * teacher(view)`` on the
    same augmented view the student sees. ``logit_adjustment`` (``[num_classes]``) is added to the
    logits in the training loss only (see :func:`balanced_softmax_adjustment`). ``refresh(r)``, called
    every ``refresh_every`` steps with ``r = 1, 2, ...``, returns a new training set as a dict of
    the data arguments (``images``, ``labels`` and optionally ``sample_weight``, ``draw_weight``,
    ``soft_targets``, ``distill_mask``): fresh synthetic samples every epoch, with the optimiser and
    schedule kept.
    """
    cfg, extras = _split_options(settings, options)
    images = check_images(images)
    n = len(images)
    if n == 0:
        raise DataError("cannot train a classifier on zero images")
    labels = check_labels(labels, n, num_classes)
    if cfg.steps < 0 or cfg.batch_size < 1:
        raise UsageError(
            f"steps must be >= 0 and batch_size >= 1, got steps={cfg.steps}, batch_size={cfg.batch_size}"
        )
    dev = torch.device(device)
    h, w, c = images.shape[1:]
    cfg.shift = default_shift(min(h, w)) if cfg.shift is None else int(cfg.shift)
    # Dropout and initialisation use torch's global RNG: seed it, and restore it afterwards.
    cuda_devices = [dev.index or 0] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda_devices):
        torch.manual_seed(cfg.seed)
        model = _new_model(cfg, (h, w, c), num_classes, init, dev)
        gen = torch.Generator(device=dev)
        gen.manual_seed(cfg.seed)
        data = _make_trainset(images, labels, num_classes, dev, *(getattr(extras, a) for a in _DATA_ARGS))
        seconds = _fit(
            model, data, cfg, extras, num_classes, gen, dev, _progress_bar(progress, cfg.steps, desc)
        )
    model.eval()
    meta = ClassifierMeta(num_classes, (h, w, c), classes, asdict(cfg), round(seconds, 3))
    return Classifier(model, meta, dev)


def _new_model(
    cfg: TrainSettings, shape: tuple[int, int, int], k: int, init: Classifier | None, dev: torch.device
) -> SmallCNN:
    """A fresh SmallCNN (global RNG) or a copy of ``init``'s weights (its width wins)."""
    if init is not None:
        if tuple(init.image_shape) != tuple(shape) or init.num_classes != k:
            raise UsageError("init classifier has a different image shape or number of classes")
        cfg.width, cfg.feature_dim = init.model.conv1.out_channels, init.feature_dim
    model = SmallCNN(shape[2], k, cfg.width, cfg.feature_dim)
    if init is not None:
        model.load_state_dict(init.model.state_dict())
    return model.to(dev, memory_format=torch.channels_last).train()


def _progress_bar(progress: bool, steps: int, desc: str) -> Any:
    if not progress:
        return None
    from ganaug.progress import Progress  # a bar on a terminal, plain lines in a log

    return Progress(steps, desc, "step")


def _logit_offsets(extras: TrainExtras, k: int, dev: torch.device) -> torch.Tensor | None:
    if extras.logit_adjustment is None:
        return None
    adj = np.asarray(extras.logit_adjustment, dtype=np.float32)
    if adj.shape != (k,) or not np.isfinite(adj).all():
        raise UsageError(f"logit_adjustment must be {k} finite numbers")
    return torch.from_numpy(adj).to(dev)


def _fit(
    model: SmallCNN,
    data: _TrainSet,
    cfg: TrainSettings,
    extras: TrainExtras,
    k: int,
    gen: torch.Generator,
    dev: torch.device,
    bar: Any,
) -> float:
    """The optimisation loop (AdamW, cosine schedule with warm-up); returns its seconds."""
    adjust = _logit_offsets(extras, k, dev)
    if extras.refresh is not None and extras.refresh_every < 1:
        raise UsageError("refresh needs refresh_every >= 1 steps")
    distill = extras.teacher if (extras.teacher is not None and extras.distill_weight > 0) else None
    opt = torch.optim.AdamW(
        model.parameters(),
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
        foreach=dev.type != "cuda",
        fused=dev.type == "cuda",
    )
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _cosine_lambda(cfg.steps, max(1, cfg.steps // 20)))
    t0 = time.perf_counter()
    loss_acc = torch.zeros((), device=dev)
    for step in range(cfg.steps):
        if extras.refresh is not None and step and step % extras.refresh_every == 0:
            fresh = extras.refresh(step // extras.refresh_every)
            arrays = (fresh.get(a) for a in _DATA_ARGS)
            data = _make_trainset(fresh["images"], fresh["labels"], k, dev, *arrays)
        loss = _loss(model, data, cfg, k, gen, dev, adjust, distill, extras.distill_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if bar is not None:
            loss_acc += loss.detach()
            if (step + 1) % 100 == 0 or step + 1 == cfg.steps:
                n = (step % 100) + 1
                bar.set_postfix(loss=f"{loss_acc.item() / n:.3f}", refresh=False)  # one sync / 100 steps
                bar.update(n)
                loss_acc.zero_()
    if bar is not None:
        bar.close()
    return time.perf_counter() - t0


def _loss(
    model: SmallCNN,
    data: _TrainSet,
    cfg: TrainSettings,
    k: int,
    gen: torch.Generator,
    dev: torch.device,
    adjust: torch.Tensor | None,
    distill: Any,
    distill_weight: float,
) -> torch.Tensor:
    """One batch: draw, augment, forward, and the (weighted, soft, distilled) loss."""
    if data.p is None:
        idx = torch.randint(0, data.n, (cfg.batch_size,), generator=gen, device=dev)
    else:
        idx = torch.multinomial(data.p, cfg.batch_size, replacement=True, generator=gen)
    x = to_model_input(data.x[idx])
    if cfg.augment:
        x = augment_batch(x, gen, shift=cfg.shift, hflip=cfg.hflip)
    with autocast_bf16(dev, cfg.amp):
        logits = model(x)
    logits = logits.float() if adjust is None else logits.float() + adjust
    if data.soft is None and distill is None:
        ce = F.cross_entropy(logits, data.y[idx], reduction="none", label_smoothing=cfg.label_smoothing)
    else:
        target = _batch_targets(data, idx, k, cfg.label_smoothing)
        if distill is not None:
            mix = distill_weight * data.distill[idx].float()[:, None]
            target = (1 - mix) * target + mix * teacher_probs(distill, x)
        ce = soft_cross_entropy(logits, target)
    return (ce * data.w[idx]).sum() / cfg.batch_size if data.w is not None else ce.mean()


__all__ = [
    "TrainExtras",
    "TrainSettings",
    "augment_batch",
    "balanced_softmax_adjustment",
    "default_shift",
    "soft_cross_entropy",
    "teacher_probs",
    "train_classifier",
]
