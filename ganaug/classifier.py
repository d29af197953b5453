"""The fixed small CNN classifier used everywhere in ganaug.

One architecture serves as the domain feature extractor (FID/KID/precision-recall features), the CAS and
uplift classifier, and the augment confidence filter, so numbers stay comparable across commands:
two 3x3 conv blocks (conv, batch norm, ReLU, 2x2 max-pool), adaptive average pooling to 4x4 (so any
image size works), then two fully connected layers. :meth:`Classifier.features` returns the
penultimate (``feature_dim``-wide) activations.

Training draws batches on the device from uint8 NHWC tensors (no DataLoader), applies classical
augmentation vectorised on the batch (random shifts by padding + cropping, optional horizontal flips),
supports a per-sample loss weight (to down-weight synthetic samples) and a per-sample draw weight (to
fix the share of synthetic samples in a batch), and uses a cosine learning-rate schedule. Batch
sampling and augmentation use a seeded ``torch.Generator``: the same seed gives the same weights on
the same machine (CPU). Weights are saved as safetensors with the metadata as JSON in the header.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganaug.errors import CheckpointError, DataError, UsageError
from ganaug.fileio import atomic_path

FORMAT = "ganaug.classifier"
FORMAT_VERSION = 1


class SmallCNN(nn.Module):
    """2 conv + 2 FC classifier for any image size (adaptive pooling before the FC layers)."""

    def __init__(self, channels: int, num_classes: int, width: int = 32, feature_dim: int = 128) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, 2 * width, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(2 * width)
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.fc1 = nn.Linear(2 * width * 16, feature_dim)
        self.dropout = nn.Dropout(0.3)
        self.fc2 = nn.Linear(feature_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2, ceil_mode=True)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2, ceil_mode=True)
        x = torch.flatten(self.pool(x), 1)
        return F.relu(self.fc1(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.dropout(self.features(x)))


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


@dataclass
class ClassifierMeta:
    num_classes: int
    image_shape: tuple[int, int, int]
    classes: list[str] | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    train_seconds: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _check_images(
    images: Any, image_shape: tuple[int, int, int] | None = None, what: str = "images"
) -> np.ndarray:
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8:
        raise DataError(
            f"{what}: expected a uint8 numpy array, got {type(images).__name__}"
            f"{'' if not isinstance(images, np.ndarray) else ' of ' + str(images.dtype)}"
        )
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise DataError(f"{what}: expected NHWC with 1 or 3 channels, got shape {images.shape}")
    if image_shape is not None and tuple(images.shape[1:]) != tuple(image_shape):
        raise DataError(
            f"{what}: image shape {tuple(images.shape[1:])} does not match the classifier's "
            f"{tuple(image_shape)} (H, W, C)"
        )
    return images


def _check_labels(labels: Any, n: int, num_classes: int, what: str = "labels") -> np.ndarray:
    labels = np.asarray(labels)
    if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{what}: expected {n} integer labels, got shape {labels.shape} ({labels.dtype})")
    if n and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataError(
            f"{what}: labels must lie in [0, {num_classes}), got [{labels.min()}, {labels.max()}]"
        )
    return labels.astype(np.int64)


def _to_model_input(batch_u8_nhwc: torch.Tensor) -> torch.Tensor:
    """uint8 NHWC -> float NCHW in [-1, 1] (channels_last memory)."""
    x = batch_u8_nhwc.permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)
    return x.contiguous(memory_format=torch.channels_last)


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


def _autocast(device: torch.device, enabled: bool):
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled)


class Classifier:
    """A trained :class:`SmallCNN` plus its metadata; takes uint8 NHWC numpy images."""

    def __init__(self, model: SmallCNN, meta: ClassifierMeta, device: str | torch.device = "cpu") -> None:
        self.model = model
        self.meta = meta
        self.device = torch.device(device)
        self.model.to(self.device, memory_format=torch.channels_last).eval()

    @property
    def num_classes(self) -> int:
        return self.meta.num_classes

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.meta.image_shape)  # type: ignore[return-value]

    @property
    def classes(self) -> list[str] | None:
        return self.meta.classes

    @property
    def feature_dim(self) -> int:
        return self.model.fc1.out_features

    @torch.inference_mode()
    def _run(self, images: np.ndarray, batch_size: int, features: bool) -> np.ndarray:
        images = _check_images(images, self.image_shape)
        self.model.eval()
        amp = bool(self.meta.settings.get("amp", False))
        out = []
        for i in range(0, len(images), batch_size):
            x = _to_model_input(
                torch.from_numpy(np.require(images[i : i + batch_size], requirements=["C", "W"])).to(
                    self.device
                )
            )
            with _autocast(self.device, amp):
                y = self.model.features(x) if features else self.model(x).softmax(1)
            out.append(y.float().cpu().numpy())
        width = self.feature_dim if features else self.num_classes
        return np.concatenate(out) if out else np.zeros((0, width), np.float32)

    def predict_proba(self, images: np.ndarray, batch_size: int = 512) -> np.ndarray:
        """Class probabilities, float32 ``[N, num_classes]``."""
        return self._run(images, batch_size, features=False)

    def predict(self, images: np.ndarray, batch_size: int = 512) -> np.ndarray:
        """Predicted class indices, int64 ``[N]``."""
        return self.predict_proba(images, batch_size).argmax(1).astype(np.int64)

    def features(self, images: np.ndarray, batch_size: int = 512) -> np.ndarray:
        """Penultimate-layer features, float32 ``[N, feature_dim]``."""
        return self._run(images, batch_size, features=True)

    def evaluate(self, images: np.ndarray, labels: np.ndarray, batch_size: int = 512) -> dict[str, Any]:
        """Accuracy, balanced accuracy and per-class accuracy on labelled images."""
        from ganaug.metrics import classification_scores

        labels = _check_labels(labels, len(images), self.num_classes)
        return classification_scores(labels, self.predict(images, batch_size), self.num_classes)

    # -- persistence -------------------------------------------------------------------------------
    def metadata(self) -> dict[str, Any]:
        meta = asdict(self.meta)
        meta["image_shape"] = list(self.meta.image_shape)
        return {"format": FORMAT, "format_version": FORMAT_VERSION, **meta}

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write weights + JSON metadata to one ``.safetensors`` file (atomically)."""
        from safetensors.torch import save_file

        path = Path(path)
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata={"ganaug": json.dumps(self.metadata())})
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str], device: str | torch.device = "cpu") -> Classifier:
        """Load a classifier written by :meth:`save`."""
        from safetensors import safe_open
        from safetensors.torch import load_file

        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"{path}: classifier file not found")
        try:
            with safe_open(str(path), framework="pt") as fh:
                header = fh.metadata() or {}
            meta = json.loads(header["ganaug"])
            if meta.get("format") != FORMAT:
                raise KeyError("format")
            state = load_file(str(path))
        except (KeyError, ValueError, OSError, json.JSONDecodeError) as exc:
            raise CheckpointError(
                f"{path}: not a ganaug classifier file ({exc.__class__.__name__})"
            ) from None
        if meta.get("format_version", 0) > FORMAT_VERSION:
            raise CheckpointError(
                f"{path}: classifier format {meta['format_version']} is newer than this ganaug"
            )
        settings = meta.get("settings", {})
        shape = tuple(meta["image_shape"])
        model = SmallCNN(
            shape[2], meta["num_classes"], settings.get("width", 32), settings.get("feature_dim", 128)
        )
        try:
            model.load_state_dict(state)
        except RuntimeError:
            raise CheckpointError(f"{path}: weights do not match the classifier architecture") from None
        info = ClassifierMeta(
            num_classes=meta["num_classes"],
            image_shape=shape,  # type: ignore[arg-type]
            classes=meta.get("classes"),
            settings=settings,
            train_seconds=meta.get("train_seconds"),
            extra=meta.get("extra", {}),
        )
        return cls(model, info, device)

    def export_onnx(self, path: str | os.PathLike[str]) -> Path:
        """Export as ONNX: input ``image`` uint8 NHWC ``[batch, H, W, C]``, output ``probs`` float32
        ``[batch, num_classes]``; metadata ``ganaug.classifier`` holds the JSON metadata."""
        import onnx

        path = Path(path)
        wrapper = _ProbsWrapper(self.model).cpu().eval()
        example = torch.zeros((2, *self.image_shape), dtype=torch.uint8)
        batch = torch.export.Dim("batch", min=1)
        with atomic_path(path) as tmp:
            torch.onnx.export(
                wrapper,
                (example,),
                str(tmp),
                input_names=["image"],
                output_names=["probs"],
                dynamic_shapes={"x": {0: batch}},
                opset_version=18,
                dynamo=True,
                verbose=False,
                external_data=False,
            )
            proto = onnx.load(str(tmp))
            entry = proto.metadata_props.add()
            entry.key, entry.value = "ganaug.classifier", json.dumps(self.metadata())
            onnx.save(proto, str(tmp))
        self.model.to(self.device)
        return path


class _ProbsWrapper(nn.Module):
    def __init__(self, model: SmallCNN) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 3, 1, 2).float() / 127.5 - 1.0
        return self.model(x).softmax(1)


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
    images = _check_images(images)
    n = len(images)
    if n == 0:
        raise DataError("cannot train a classifier on zero images")
    labels = _check_labels(labels, n, num_classes)
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


def train_classifier(
    images: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    *,
    steps: int = 2000,
    batch_size: int = 128,
    lr: float = 2e-3,
    weight_decay: float = 5e-4,
    seed: int = 0,
    augment: bool = True,
    hflip: bool = False,
    shift: int | None = None,
    label_smoothing: float = 0.0,
    sample_weight: np.ndarray | None = None,
    draw_weight: np.ndarray | None = None,
    soft_targets: np.ndarray | None = None,
    teacher: Any | None = None,
    distill_weight: float = 0.0,
    distill_mask: np.ndarray | None = None,
    logit_adjustment: np.ndarray | None = None,
    refresh: Callable[[int], dict[str, Any]] | None = None,
    refresh_every: int = 0,
    init: Classifier | None = None,
    classes: list[str] | None = None,
    width: int = 32,
    feature_dim: int = 128,
    amp: bool = False,
    device: str | torch.device = "cpu",
    progress: bool = False,
    desc: str = "classifier",
) -> Classifier:
    """Train the fixed small CNN on uint8 NHWC ``images`` with int ``labels``.

    ``augment`` turns classical augmentation on: random shifts of up to ``shift`` pixels (default
    :func:`default_shift`) and, if ``hflip``, horizontal flips (only sensible for mirror-symmetric
    domains). ``sample_weight`` (``[N]``, >= 0) multiplies each sample's loss: the batch loss is
    ``sum(w * ce) / batch_size``, so weight 0.3 makes a sample count 0.3 of a real one.
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
    this function's data arguments (``images``, ``labels`` and optionally ``sample_weight``,
    ``draw_weight``, ``soft_targets``, ``distill_mask``): fresh synthetic samples every epoch,
    with the optimiser and schedule kept.
    """
    images = _check_images(images)
    n = len(images)
    if n == 0:
        raise DataError("cannot train a classifier on zero images")
    labels = _check_labels(labels, n, num_classes)
    if steps < 0 or batch_size < 1:
        raise UsageError(
            f"steps must be >= 0 and batch_size >= 1, got steps={steps}, batch_size={batch_size}"
        )
    dev = torch.device(device)
    h, w, c = images.shape[1:]
    shift = default_shift(min(h, w)) if shift is None else int(shift)
    settings = TrainSettings(
        steps,
        batch_size,
        lr,
        weight_decay,
        seed,
        augment,
        hflip,
        shift,
        label_smoothing,
        width,
        feature_dim,
        amp,
    )
    # Dropout and initialisation use torch's global RNG: seed it, and restore it afterwards.
    cuda_devices = [dev.index or 0] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda_devices):
        torch.manual_seed(seed)
        if init is not None:
            if tuple(init.image_shape) != (h, w, c) or init.num_classes != num_classes:
                raise UsageError("init classifier has a different image shape or number of classes")
            width, feature_dim = init.model.conv1.out_channels, init.feature_dim
            settings.width, settings.feature_dim = width, feature_dim
        model = SmallCNN(c, num_classes, width, feature_dim)
        if init is not None:
            model.load_state_dict(init.model.state_dict())
        model.to(dev, memory_format=torch.channels_last).train()

        gen = torch.Generator(device=dev)
        gen.manual_seed(seed)
        data = _make_trainset(
            images, labels, num_classes, dev, sample_weight, draw_weight, soft_targets, distill_mask
        )
        adjust = None
        if logit_adjustment is not None:
            adj = np.asarray(logit_adjustment, dtype=np.float32)
            if adj.shape != (num_classes,) or not np.isfinite(adj).all():
                raise UsageError(f"logit_adjustment must be {num_classes} finite numbers")
            adjust = torch.from_numpy(adj).to(dev)
        if refresh is not None and refresh_every < 1:
            raise UsageError("refresh needs refresh_every >= 1 steps")
        distill = teacher if (teacher is not None and distill_weight > 0) else None

        opt = torch.optim.AdamW(
            model.parameters(),
            lr=lr,
            weight_decay=weight_decay,
            foreach=dev.type != "cuda",
            fused=dev.type == "cuda",
        )
        sched = torch.optim.lr_scheduler.LambdaLR(opt, _cosine_lambda(steps, max(1, steps // 20)))
        bar = None
        if progress:
            from ganaug.progress import Progress  # a bar on a terminal, plain lines in a log

            bar = Progress(steps, desc, "step")
        t0 = time.perf_counter()
        loss_acc = torch.zeros((), device=dev)
        for step in range(steps):
            if refresh is not None and step and step % refresh_every == 0:
                fresh = refresh(step // refresh_every)
                data = _make_trainset(
                    fresh["images"],
                    fresh["labels"],
                    num_classes,
                    dev,
                    fresh.get("sample_weight"),
                    fresh.get("draw_weight"),
                    fresh.get("soft_targets"),
                    fresh.get("distill_mask"),
                )
            if data.p is None:
                idx = torch.randint(0, data.n, (batch_size,), generator=gen, device=dev)
            else:
                idx = torch.multinomial(data.p, batch_size, replacement=True, generator=gen)
            x = _to_model_input(data.x[idx])
            if augment:
                x = augment_batch(x, gen, shift=shift, hflip=hflip)
            with _autocast(dev, amp):
                logits = model(x)
            logits = logits.float() if adjust is None else logits.float() + adjust
            if data.soft is None and distill is None:
                ce = F.cross_entropy(logits, data.y[idx], reduction="none", label_smoothing=label_smoothing)
            else:
                target = _batch_targets(data, idx, num_classes, label_smoothing)
                if distill is not None:
                    mix = distill_weight * data.distill[idx].float()[:, None]
                    target = (1 - mix) * target + mix * teacher_probs(distill, x)
                ce = soft_cross_entropy(logits, target)
            loss = (ce * data.w[idx]).sum() / batch_size if data.w is not None else ce.mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if bar is not None:
                loss_acc += loss.detach()
                if (step + 1) % 100 == 0 or step + 1 == steps:
                    k = (step % 100) + 1
                    bar.set_postfix(loss=f"{loss_acc.item() / k:.3f}", refresh=False)  # one sync / 100 steps
                    bar.update(k)
                    loss_acc.zero_()
        if bar is not None:
            bar.close()
        seconds = time.perf_counter() - t0
    model.eval()
    meta = ClassifierMeta(num_classes, (h, w, c), classes, asdict(settings), round(seconds, 3))
    return Classifier(model, meta, dev)


# -- cached domain feature extractor ---------------------------------------------------------------

FEATURE_EXTRACTOR_STEPS = 3000


def default_cache_dir() -> Path:
    """``$GANAUG_CACHE_DIR``, else ``$XDG_CACHE_HOME/ganaug``, else ``~/.cache/ganaug``."""
    if os.environ.get("GANAUG_CACHE_DIR"):
        return Path(os.environ["GANAUG_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "ganaug"


def dataset_hash(images: np.ndarray, labels: np.ndarray) -> str:
    """SHA-256 over the shapes and bytes of the images and labels."""
    digest = hashlib.sha256()
    digest.update(repr((images.shape, str(images.dtype), labels.shape)).encode())
    digest.update(np.ascontiguousarray(images).data)
    digest.update(np.ascontiguousarray(labels.astype(np.int64)).data)
    return digest.hexdigest()


def _unpack_dataset(dataset: Any) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    if isinstance(dataset, tuple) and len(dataset) == 2:
        images, labels = dataset
        return _check_images(images), np.asarray(labels), None
    images, labels = getattr(dataset, "images", None), getattr(dataset, "labels", None)
    if images is None or labels is None:
        raise UsageError("expected a dataset with .images/.labels or an (images, labels) tuple")
    classes = getattr(dataset, "classes", None)
    return _check_images(images), np.asarray(labels), (list(classes) if classes is not None else None)


def get_feature_extractor(
    dataset: Any,
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    num_classes: int | None = None,
    steps: int = FEATURE_EXTRACTOR_STEPS,
    seed: int = 0,
    hflip: bool = False,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> Classifier:
    """The domain feature extractor for ``dataset`` (``.images``/``.labels``[/``.classes``] or an
    ``(images, labels)`` tuple): the fixed classifier trained on all of it, cached in
    ``cache_dir/feature_extractors/<hash>.safetensors`` keyed by the data and training settings."""
    images, labels, classes = _unpack_dataset(dataset)
    k = num_classes or (len(classes) if classes else int(labels.max()) + 1)
    recipe = f"{dataset_hash(images, labels)}|k={k}|steps={steps}|seed={seed}|hflip={hflip}|v{FORMAT_VERSION}"
    key = hashlib.sha256(recipe.encode()).hexdigest()[:32]
    path = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = path / "feature_extractors" / f"{key}.safetensors"
    if path.is_file():
        try:
            return Classifier.load(path, device)
        except CheckpointError:
            pass  # a damaged cache entry: retrain and overwrite
    clf = train_classifier(
        images,
        labels,
        k,
        steps=steps,
        seed=seed,
        hflip=hflip,
        classes=classes,
        device=device,
        progress=progress,
        desc="feature extractor",
    )
    clf.meta.extra["dataset_key"] = key
    clf.save(path)
    return clf


__all__ = [
    "Classifier",
    "SmallCNN",
    "augment_batch",
    "balanced_softmax_adjustment",
    "dataset_hash",
    "default_cache_dir",
    "get_feature_extractor",
    "soft_cross_entropy",
    "teacher_probs",
    "train_classifier",
]
