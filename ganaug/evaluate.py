"""Old import path of the eval room, kept for one release: the code lives in :mod:`ganaug.eval`.

- :func:`quality_report`, :func:`memorisation_stats` -- :mod:`ganaug.eval.quality`
- :func:`cas` -- :mod:`ganaug.eval.cas`
- :class:`MixPolicy` and the arm arrays -- :mod:`ganaug.eval.policy`
- :func:`uplift`, :class:`UpliftSpec` -- :mod:`ganaug.eval.uplift`, :mod:`ganaug.eval.spec`
"""

from __future__ import annotations

from ganaug.eval.cas import cas
from ganaug.eval.common import as_dataset, draw_subset, is_number, per_class_counts, yaml_value
from ganaug.eval.policy import (
    CURRICULA,
    LOSSES,
    MixPolicy,
    Synthetic,
    batch_class_prior,
    class_balanced_weights,
    mix_arrays,
    refresh_every,
)
from ganaug.eval.quality import memorisation_stats, quality_report, real_vs_real
from ganaug.eval.spec import UpliftConfig, UpliftSpec
from ganaug.eval.uplift import auto_threads, run_uplift, uplift
from ganaug.eval.validation import tune_seed

# private names that scripts imported before the split (benchmarks/quality_budget.py)
_draw, _per_class_counts, _is_number = draw_subset, per_class_counts, is_number

__all__ = [
    "CURRICULA",
    "LOSSES",
    "MixPolicy",
    "Synthetic",
    "UpliftConfig",
    "UpliftSpec",
    "_draw",
    "_is_number",
    "_per_class_counts",
    "as_dataset",
    "auto_threads",
    "batch_class_prior",
    "cas",
    "class_balanced_weights",
    "memorisation_stats",
    "mix_arrays",
    "quality_report",
    "real_vs_real",
    "refresh_every",
    "run_uplift",
    "tune_seed",
    "uplift",
    "yaml_value",
]
