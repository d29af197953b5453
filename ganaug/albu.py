"""An albumentations transform that swaps an image for a GAN sample of the same class.

The label travels as a target next to the image::

    import albumentations as A
    import ganaug.albu  # also needed before A.load() of a pipeline that contains GanReplace

    pipeline = A.Compose([
        ganaug.albu.GanReplace("generator.onnx", p=0.3),   # or a run dir / weights file
        A.HorizontalFlip(p=0.5),
    ], seed=0)
    out = pipeline(image=image_uint8_hwc, label=3)         # label: class index or class name
    image = out["image"]

``GanReplace`` declares ``label`` in ``targets_as_params``, so ``Compose`` accepts the key (also
with ``strict=True``) and the transform raises if it is missing; a non-default key can be chosen
with ``label_key``. Labels are indices into the generator's classes or class names; pass
``classes=[...]`` when your label indices follow another class order (they are then mapped by
name). Randomness comes only from the transform's ``py_random`` (seeded by ``Compose(seed=...)``
or ``set_random_seed``): whether to replace, and the seed of the latent vector. The replacement is
resized (area / linear) and converted (gray <-> RGB) to the incoming image's shape. Meant for
classification: masks, boxes and keypoints are not touched (use it image + label only).

The generator is opened lazily in each process (and dropped when the transform is pickled for a
DataLoader worker), so ``A.save``/``A.load`` and ``num_workers > 0`` work.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import albumentations as A
import numpy as np
from albumentations.core.transforms_interface import BaseTransformInitSchema
from pydantic import Field

from ganaug.errors import UsageError


class GanReplace(A.ImageOnlyTransform):
    """With probability ``p``, replace the image by a GAN sample of its label's class.

    ``generator_path``: a ``generator.onnx`` from ``ganaug export``, a run directory or a weights
    file (anything :func:`ganaug.sampling.open_sampler` accepts). ``truncation``: redraw latent
    coordinates with ``|z| > truncation`` (more typical samples). ``classes``: the class names of
    your label indices when they differ from the generator's order. ``label_key``: the name of the
    label target (default ``"label"``). ``device``: torch device for non-ONNX generators.
    """

    class InitSchema(BaseTransformInitSchema):
        generator_path: str
        truncation: float | None = Field(default=None, gt=0)
        classes: list[str] | None = None
        label_key: str = "label"
        device: str = "cpu"

    def __init__(
        self,
        generator_path: str,
        truncation: float | None = None,
        classes: Sequence[str] | None = None,
        label_key: str = "label",
        device: str = "cpu",
        p: float = 0.5,
    ) -> None:
        super().__init__(p=p)
        self.generator_path = str(generator_path)
        self.truncation = truncation
        self.classes = list(classes) if classes is not None else None
        self.label_key = label_key
        self.device = device
        self._sampler: Any = None

    # -- albumentations protocol ---------------------------------------------------------------------
    @property
    def targets_as_params(self) -> list[str]:
        return [self.label_key]

    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        return {
            "gan_label": self._generator_label(data[self.label_key]),
            "gan_seed": self.py_random.randrange(2**31),
        }

    def apply(self, img: np.ndarray, gan_label: int = 0, gan_seed: int = 0, **params: Any) -> np.ndarray:
        sample = self.sampler.generate([gan_label], seed=gan_seed, truncation=self.truncation)[0]
        return match_shape(sample, img.shape)

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("generator_path", "truncation", "classes", "label_key", "device")

    # -- helpers -------------------------------------------------------------------------------------
    @property
    def sampler(self) -> Any:
        """The opened generator (opened on first use in this process)."""
        if self._sampler is None:
            from ganaug.sampling import open_sampler

            self._sampler = open_sampler(self.generator_path, device=self.device)
        return self._sampler

    def _generator_label(self, label: Any) -> int:
        names = list(self.sampler.classes)
        if isinstance(label, np.ndarray) and label.size == 1:
            label = label.reshape(()).item()
        if hasattr(label, "item") and not isinstance(label, (str, bytes)):  # torch / numpy scalars
            label = label.item()
        if isinstance(label, bytes):
            label = label.decode("utf-8")
        if isinstance(label, (int, np.integer)) and not isinstance(label, bool):
            index = int(label)
            if self.classes is None:
                if not 0 <= index < len(names):
                    raise UsageError(
                        f"GanReplace: label {index} out of range for {len(names)} generator classes"
                    )
                return index
            if not 0 <= index < len(self.classes):
                raise UsageError(f"GanReplace: label {index} out of range for classes={self.classes}")
            label = self.classes[index]
        if isinstance(label, str):
            if label not in names:
                raise UsageError(
                    f"GanReplace: the generator has no class {label!r} (it has {', '.join(names)})"
                )
            return names.index(label)
        raise UsageError(f"GanReplace: label must be a class index or name, got {label!r}")

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_sampler"] = None  # onnxruntime sessions do not pickle; reopened in the worker
        return state


def match_shape(image: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Resize (area down, linear up) and convert channels of uint8 HWC ``image`` to ``shape``."""
    import cv2

    h, w = int(shape[0]), int(shape[1])
    channels = int(shape[2]) if len(shape) == 3 else None
    out = image
    if out.shape[:2] != (h, w):
        shrink = h * w < out.shape[0] * out.shape[1]
        out = cv2.resize(out, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        if out.ndim == 2:
            out = out[:, :, None]
    if channels is None:  # a 2-D input image
        return np.ascontiguousarray(out[:, :, 0] if out.shape[2] == 1 else out.mean(2).astype(np.uint8))
    if out.shape[2] != channels:
        if channels == 3:
            out = np.repeat(out, 3, axis=2)
        else:
            gray = out.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
            out = np.clip(np.round(gray), 0, 255).astype(np.uint8)[:, :, None]
    return np.ascontiguousarray(out)


__all__ = ["GanReplace", "match_shape"]
