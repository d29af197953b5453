"""The fixed small CNN classifier: model, metadata, inference and persistence (safetensors, ONNX)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganaug.errors import CheckpointError, DataError
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
class ClassifierMeta:
    num_classes: int
    image_shape: tuple[int, int, int]
    classes: list[str] | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    train_seconds: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def check_images(
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


def check_labels(labels: Any, n: int, num_classes: int, what: str = "labels") -> np.ndarray:
    labels = np.asarray(labels)
    if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{what}: expected {n} integer labels, got shape {labels.shape} ({labels.dtype})")
    if n and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataError(
            f"{what}: labels must lie in [0, {num_classes}), got [{labels.min()}, {labels.max()}]"
        )
    return labels.astype(np.int64)


def to_model_input(batch_u8_nhwc: torch.Tensor) -> torch.Tensor:
    """uint8 NHWC -> float NCHW in [-1, 1] (channels_last memory)."""
    x = batch_u8_nhwc.permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)
    return x.contiguous(memory_format=torch.channels_last)


def autocast_bf16(device: torch.device, enabled: bool):
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
        images = check_images(images, self.image_shape)
        self.model.eval()
        amp = bool(self.meta.settings.get("amp", False))
        out = []
        for i in range(0, len(images), batch_size):
            x = to_model_input(
                torch.from_numpy(np.require(images[i : i + batch_size], requirements=["C", "W"])).to(
                    self.device
                )
            )
            with autocast_bf16(self.device, amp):
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

        labels = check_labels(labels, len(images), self.num_classes)
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


__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "Classifier",
    "ClassifierMeta",
    "SmallCNN",
    "autocast_bf16",
    "check_images",
    "check_labels",
    "to_model_input",
]
