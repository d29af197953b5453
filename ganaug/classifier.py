"""Old import path of the fixed small CNN classifier, kept for one release: the code lives in
:mod:`ganaug.eval.classifier_model` (model, inference, persistence, ONNX export),
:mod:`ganaug.eval.classifier_train` (training) and :mod:`ganaug.eval.features` (the cached domain
feature extractor)."""

from __future__ import annotations

from ganaug.eval.classifier_model import FORMAT, FORMAT_VERSION, Classifier, ClassifierMeta, SmallCNN
from ganaug.eval.classifier_train import (
    TrainSettings,
    augment_batch,
    balanced_softmax_adjustment,
    default_shift,
    soft_cross_entropy,
    teacher_probs,
    train_classifier,
)
from ganaug.eval.features import (
    FEATURE_EXTRACTOR_STEPS,
    dataset_hash,
    default_cache_dir,
    get_feature_extractor,
)

__all__ = [
    "FEATURE_EXTRACTOR_STEPS",
    "FORMAT",
    "FORMAT_VERSION",
    "Classifier",
    "ClassifierMeta",
    "SmallCNN",
    "TrainSettings",
    "augment_batch",
    "balanced_softmax_adjustment",
    "dataset_hash",
    "default_cache_dir",
    "default_shift",
    "get_feature_extractor",
    "soft_cross_entropy",
    "teacher_probs",
    "train_classifier",
]
