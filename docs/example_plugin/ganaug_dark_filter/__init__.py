"""ganaug-dark-filter: an example ganaug plugin.

- ``--filter dark`` rejects synthetic images whose mean intensity is below ``--min-brightness N``
  (``-O min_brightness=N`` with ``--plugin``; default 10 on a 0-255 scale): a collapsed generator
  often emits near-black images.
- ``--strategy to-median`` brings every class below the median class size up to the median.
"""

from __future__ import annotations

import numpy as np

from ganaug.api import PluginOption, hookimpl

__version__ = "0.1.0"
STATE_KEY = "dark-filter"


@hookimpl
def ganaug_add_options():
    # Declared: ganaug makes --min-brightness (and a typed -O min_brightness=N) of it.
    return [PluginOption("min_brightness", 10.0, float, "--filter dark: minimum mean brightness.", low=0)]


@hookimpl
def ganaug_configure(context):
    # Only active when the user asked for it; claiming the name tells ganaug the filter exists.
    if context.claim_filter("dark"):
        context.state[STATE_KEY] = float(context.options.get("min_brightness", 10))


@hookimpl
def ganaug_accept(images, labels, context):
    threshold = context.state.get(STATE_KEY)
    if threshold is None:
        return None  # abstain
    # One vectorised vote for the whole batch: True = keep.
    return images.reshape(len(images), -1).mean(axis=1) >= threshold


@hookimpl
def ganaug_plan(class_counts, options):
    if options.get("strategy") != "to-median":
        return None  # not ours: let the next plugin (finally the built-ins) answer
    target = int(np.median(list(class_counts.values())))
    return {name: target - n for name, n in class_counts.items() if n < target}


@hookimpl
def ganaug_finish(context, summary):
    if STATE_KEY in context.state:
        summary[STATE_KEY] = {"min_brightness": context.state[STATE_KEY]}
