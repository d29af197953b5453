"""Old import path of ``eval uplift --tune``'s policy choice, kept for one release: the code lives in
:mod:`ganaug.eval.tune`."""

from __future__ import annotations

from ganaug.eval.tune import (
    POLICY_KIND,
    REAL,
    apply_policy_file,
    augment_options,
    choose_policy,
    default_grid,
    describe_baseline,
    describe_policy,
    load_policy_file,
    stratified_split,
    training_options,
    tune_markdown,
    tune_summary,
    tune_table,
    write_policy_file,
)

__all__ = [
    "POLICY_KIND",
    "REAL",
    "apply_policy_file",
    "augment_options",
    "choose_policy",
    "default_grid",
    "describe_baseline",
    "describe_policy",
    "load_policy_file",
    "stratified_split",
    "training_options",
    "tune_markdown",
    "tune_summary",
    "tune_table",
    "write_policy_file",
]
