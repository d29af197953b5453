"""A torch-free reader for ONNX image classifiers (the augment confidence filter's ``--filter-classifier``
and ``eval uplift --teacher``): numpy + onnxruntime only.

The model has one 4-D image input (uint8 NHWC, or float NCHW/NHWC in [-1, 1]) and one
``[N, classes]`` output of probabilities or logits; its class order is the dataset's unless its
``ganaug.classifier``/``ganaug.classes`` metadata names the classes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ganaug.errors import CheckpointError, UsageError, first_line


class OnnxClassifier:
    """An ONNX image classifier: ``predict_proba(uint8 NHWC) -> [N, classes]`` in the given class order."""

    def __init__(self, path: Path, classes: list[str]) -> None:
        from ganaug.runtime import default_providers

        try:
            import onnxruntime as ort
        except ImportError:
            raise UsageError("--filter-classifier with an ONNX model needs onnxruntime installed") from None
        try:
            self.session = ort.InferenceSession(str(path), providers=default_providers())
        except Exception as exc:
            raise CheckpointError(
                f"--filter-classifier: {path} is not a loadable ONNX model ({first_line(exc)})"
            ) from None
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            raise CheckpointError(f"--filter-classifier: {path} must have one 4-D image input")
        self.input = inputs[0]
        self.output = self.session.get_outputs()[0].name
        meta = dict(self.session.get_modelmeta().custom_metadata_map)
        names = None
        for key in ("ganaug.classifier", "ganaug.classes"):
            if key in meta:
                try:
                    value = json.loads(meta[key])
                except ValueError:
                    continue
                names = value.get("classes") if isinstance(value, dict) else value
                if names:
                    break
        if names:
            missing = [c for c in classes if c not in names]
            if missing:
                raise UsageError(f"--filter-classifier: {path} does not know class(es) {', '.join(missing)}")
            self.columns = np.array([names.index(c) for c in classes], dtype=np.int64)
        else:
            self.columns = np.arange(len(classes), dtype=np.int64)
        self.num_outputs = len(names) if names else None

    def _feed(self, images: np.ndarray) -> np.ndarray:
        if self.input.type == "tensor(uint8)":
            return np.ascontiguousarray(images)
        x = images.astype(np.float32) / np.float32(127.5) - np.float32(1.0)
        channels_first = isinstance(self.input.shape[1], int) and self.input.shape[1] in (1, 3)
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2) if channels_first else x)

    def predict_proba(self, images: np.ndarray, batch_size: int = 512) -> np.ndarray:
        outs = []
        for i in range(0, len(images), batch_size):
            (y,) = self.session.run([self.output], {self.input.name: self._feed(images[i : i + batch_size])})
            outs.append(np.asarray(y, dtype=np.float32).reshape(len(y), -1))
        probs = np.concatenate(outs) if outs else np.zeros((0, len(self.columns)), np.float32)
        if probs.shape[1] <= int(self.columns.max(initial=0)):
            raise UsageError(
                f"--filter-classifier: model has {probs.shape[1]} outputs, too few for the classes"
            )
        is_prob = (probs >= 0).all() and np.allclose(probs.sum(1), 1.0, atol=1e-3)
        if not is_prob:  # logits
            probs = np.exp(probs - probs.max(1, keepdims=True))
            probs /= probs.sum(1, keepdims=True)
        return probs[:, self.columns]


__all__ = ["OnnxClassifier"]
