"""Helpers that replaced copies (issue 17 "one of each"): each is exercised through its real users."""

from __future__ import annotations

import json
import platform
from types import SimpleNamespace

import numpy as np
import pytest
from ganaug_plugins.strategies import plan_counts

from ganaug.data.sources import max_dataset_bytes
from ganaug.dataset_writer import DEFAULT_MAX_IMAGES, max_output_images
from ganaug.errors import DataError, UsageError, first_line
from ganaug.eval.common import generator_labels
from ganaug.hookspecs import ratio_plan
from ganaug.report import fmt_delta, fmt_num, fmt_pm
from ganaug.runtime import generator_indices
from ganaug.versions import library_versions


def test_first_line() -> None:
    assert first_line(ValueError("\n  bad thing\nsecond line")) == "bad thing"
    assert first_line(KeyError()) == "KeyError"
    assert first_line(OSError("x" * 500)) == "x" * 200
    assert first_line(OSError("x" * 500), None) == "x" * 500
    assert first_line(RuntimeError("boom\nmore"), 300, with_type=True) == "RuntimeError: boom"


@pytest.mark.parametrize(
    ("reader", "name", "error", "unit"),
    [
        (max_output_images, "GANAUG_MAX_OUTPUT_IMAGES", UsageError, "images"),
        (max_dataset_bytes, "GANAUG_MAX_DATASET_BYTES", DataError, "bytes"),
    ],
)
def test_env_limits_share_one_parser(reader, name, error, unit, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(name, "2e3")
    assert reader() == 2000
    for bad, why in [("lots", "is not a number"), ("inf", "is not a number"), ("0", "must be a positive")]:
        monkeypatch.setenv(name, bad)
        with pytest.raises(
            error, match=f"^{name}='{bad}' {why} number of {unit}$" if why[0] == "m" else None
        ):
            reader()
    monkeypatch.delenv(name)
    assert reader() > 0


def test_env_unset_gives_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GANAUG_MAX_OUTPUT_IMAGES", raising=False)
    assert max_output_images() == DEFAULT_MAX_IMAGES


def test_generator_indices() -> None:
    got = generator_indices(["b", "x", "a"], ["a", "b"])
    assert got.dtype == np.int64 and got.tolist() == [1, -1, 0]

    sampler = SimpleNamespace(classes=["a", "b"])
    assert generator_labels(sampler, ["b", "a"]).tolist() == [1, 0]
    with pytest.raises(UsageError, match="the generator has no class 'x'"):
        generator_labels(sampler, ["a", "x"])


def test_ratio_plan_is_what_the_strategy_plugin_answers() -> None:
    counts = {"a": 3, "b": 5, "c": 0}
    assert ratio_plan(counts, 0.5) == {"a": 2, "b": 3, "c": 0}  # halves round up
    assert plan_counts(counts, "0.5") == ratio_plan(counts, 0.5)
    with pytest.raises(UsageError, match=r"--strategy: a ratio must be a finite number >= 0, got '-1'"):
        plan_counts(counts, "-1")
    with pytest.raises(UsageError, match=r"^ratio must be a finite number >= 0, got nan$"):
        ratio_plan(counts, float("nan"))


def test_library_versions() -> None:
    from ganaug import __version__

    v = library_versions(["numpy", "surely-not-installed-dist"])
    assert list(v) == ["ganaug", "python", "numpy", "surely-not-installed-dist"]
    assert v["ganaug"] == __version__ and v["python"] == platform.python_version()
    assert v["numpy"] == np.__version__ and v["surely-not-installed-dist"] is None
    assert "python" not in library_versions([], python=False)
    json.dumps(v)


def test_report_formats() -> None:
    assert fmt_pm({"mean": 81.234, "std": 0.0}) == "81.23 ± 0.00"
    assert fmt_pm({"mean": 81.234, "std": 0.0}, 1, omit_zero_std=True) == "81.2"
    assert fmt_pm({"mean": 81.234, "std": 1.06}, 1, omit_zero_std=True) == "81.2 ± 1.1"
    assert fmt_delta({"mean": 1.234, "ci95": None}) == "+1.23 n/a (1 seed)"
    assert fmt_delta({"mean": 1.234, "ci95": None}, 1, missing="") == "+1.2"
    assert fmt_delta({"mean": -1.25, "ci95": [-2.0, 0.5]}, 1) == "-1.2 [-2.0, +0.5]"
    assert fmt_num(None) == fmt_num(float("nan")) == "–"
    assert fmt_num(0.12345) == "0.123" and fmt_num(7) == "7"
