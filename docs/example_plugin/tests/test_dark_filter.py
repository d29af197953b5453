"""Tests for the example plugin: through ganaug's plugin manager, exactly as ganaug calls it."""

import numpy as np

from ganaug.hookspecs import AugmentContext
from ganaug.plugins import get_plugin_manager


def make_context(filters, **options):
    return AugmentContext(
        classes=["a", "b"], real=None, generator=None, options={"filters": filters, **options}
    )


def test_registers_without_unknown_hooks():
    pm = get_plugin_manager(["ganaug_dark_filter"], autoload=False)  # raises on a misspelt hook
    assert pm.has_plugin("ganaug_dark_filter")


def test_dark_filter_votes_per_image():
    pm = get_plugin_manager(["ganaug_dark_filter"], autoload=False)
    context = make_context(["dark"], min_brightness=50)
    pm.hook.ganaug_configure(context=context)
    assert context.unclaimed_filters == []
    images = np.stack([np.full((4, 4, 1), v, np.uint8) for v in (0, 49, 50, 200)])
    votes = dict(pm.call_each("ganaug_accept", images=images, labels=np.zeros(4, np.int64), context=context))
    assert votes["ganaug_dark_filter"].tolist() == [False, False, True, True]


def test_to_median_strategy():
    pm = get_plugin_manager(["ganaug_dark_filter"], autoload=False)
    plan = pm.hook.ganaug_plan(class_counts={"a": 10, "b": 2, "c": 4}, options={"strategy": "to-median"})
    assert plan == {"b": 2}
