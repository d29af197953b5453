"""The public API for plugins: everything a plugin may import from ganaug, in one place.

ganaug's built-in plugins (the ``ganaug_plugins`` package, folder ``plugins/``) import from this
module only, exactly as a third-party plugin should; ``tests/test_api.py`` checks that. A name listed
here keeps its meaning across minor releases (or gets a deprecation path); anything else in ganaug is
internal and may move. Importing this module is cheap: the heavy names (torch, onnxruntime,
albumentations) load on first use::

    from ganaug.api import AugmentContext, UsageError, hookimpl

    @hookimpl
    def ganaug_accept(images, labels, context: AugmentContext): ...
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ganaug.errors import CheckpointError, DataError, GanaugError, PluginError, UsageError, first_line
from ganaug.hookspecs import AugmentContext, hookimpl, ratio_plan

if TYPE_CHECKING:
    from ganaug.albu import GanReplace
    from ganaug.augment import SCORES_KEY
    from ganaug.dataset_writer import DatasetWriter
    from ganaug.eval.classifier_model import Classifier
    from ganaug.eval.classifier_train import train_classifier
    from ganaug.eval.onnx_classifier import OnnxClassifier
    from ganaug.eval.policy import class_balanced_weights
    from ganaug.hookspecs import PluginOption
    from ganaug.runtime import OnnxGenerator, make_noise

#: Names loaded on first use: name -> module that defines it.
_LAZY = {
    "PluginOption": "ganaug.hookspecs",
    "SCORES_KEY": "ganaug.augment",
    "DatasetWriter": "ganaug.dataset_writer",
    "OnnxGenerator": "ganaug.runtime",
    "make_noise": "ganaug.runtime",
    "OnnxClassifier": "ganaug.eval.onnx_classifier",
    "Classifier": "ganaug.eval.classifier_model",
    "train_classifier": "ganaug.eval.classifier_train",
    "class_balanced_weights": "ganaug.eval.policy",
    "GanReplace": "ganaug.albu",
}

__all__ = [
    "SCORES_KEY",
    "AugmentContext",
    "CheckpointError",
    "Classifier",
    "DataError",
    "DatasetWriter",
    "GanReplace",
    "GanaugError",
    "OnnxClassifier",
    "OnnxGenerator",
    "PluginError",
    "PluginOption",
    "UsageError",
    "class_balanced_weights",
    "first_line",
    "hookimpl",
    "make_noise",
    "ratio_plan",
    "train_classifier",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ganaug.api' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
