"""``ganaug eval merge``: one uplift report from runs of the same experiment on other seeds.

An uplift run over several seeds is a sequence of independent per-seed experiments, so its seeds
can run as separate processes or on separate machines (``eval uplift --seed N --seeds 1``). This
module checks that the reports describe the same experiment (the same settings but for the seeds,
the same arms and classes) and rebuilds the summary, paired intervals and controls over all seeds
exactly as one run over those seeds would have.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ganaug.errors import UsageError
from ganaug.eval.uplift import comparisons, summarise_seeds

#: Settings that may differ between the parts: where and how fast a part ran, not what it measured.
PER_PART_SETTINGS = ("seeds", "threads", "device")


def _report_path(path: str | Path) -> Path:
    p = Path(path)
    return p / "report.json" if p.is_dir() else p


def load_uplift_report(path: str | Path) -> dict[str, Any]:
    """Read an ``eval uplift`` report (its folder or ``report.json``); one-line UsageError otherwise."""
    import json

    file = _report_path(path)
    if not file.is_file():
        raise UsageError(f"{path}: no uplift report here (expected {file})")
    try:
        report = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{file}: not a readable JSON report ({exc.__class__.__name__})") from None
    if not isinstance(report, dict) or report.get("kind") != "ganaug.uplift":
        raise UsageError(f"{file}: not a ganaug eval uplift report")
    if report.get("arms") is None or not report.get("seeds"):
        raise UsageError(f"{file}: a --tune report without test arms has nothing to merge")
    if report.get("tune") is not None:
        raise UsageError(
            f"{file}: --tune reports cannot be merged (the choice is made over all seeds at once; "
            "run --tune over all seeds, or combine tune.json files with benchmarks/tune_check.py)"
        )
    return report


def _differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    keys = sorted((set(a) | set(b)) - set(PER_PART_SETTINGS))
    return [k for k in keys if a.get(k) != b.get(k)]


def merge_uplift_reports(paths: list[str | Path]) -> dict[str, Any]:
    """One uplift report over the seeds of all ``paths`` (report folders or ``report.json`` files).

    Refuses (UsageError) reports of different experiments (any setting but seeds, threads and
    device, or the arms, classes, controls differ) and overlapping seeds.
    """
    if len(paths) < 2:
        raise UsageError("eval merge needs at least two uplift reports")
    reports = [load_uplift_report(p) for p in paths]
    first, first_path = reports[0], paths[0]
    seen: dict[int, str | Path] = {}
    for path, rep in zip(paths, reports, strict=True):
        diff = _differences(first["settings"], rep["settings"])
        if diff:
            raise UsageError(
                f"{path}: not the same experiment as {first_path} (settings differ: {', '.join(diff)})"
            )
        for key in ("arms", "classes", "controls"):
            if rep.get(key) != first.get(key):
                raise UsageError(f"{path}: not the same experiment as {first_path} ({key} differ)")
        for seed_result in rep["seeds"]:
            seed = seed_result["seed"]
            if seed in seen:
                raise UsageError(f"seed {seed} is in both {seen[seed]} and {path}; merge each seed once")
            seen[seed] = path
    seeds = sorted((s for rep in reports for s in rep["seeds"]), key=lambda s: s["seed"])
    arms = list(first["arms"])
    summary, paired = summarise_seeds(seeds, arms)
    merged: dict[str, Any] = {
        key: first[key] for key in ("kind", "data", "classes", "test", "feature_extractor") if key in first
    }
    settings = dict(first["settings"])
    settings["seeds"] = [s["seed"] for s in seeds]
    merged.update(
        command=None,
        merged_from=[
            {
                "report": str(_report_path(p)),
                "seeds": [s["seed"] for s in r["seeds"]],
                "command": r.get("command"),
            }
            for p, r in zip(paths, reports, strict=True)
        ],
        threads=first.get("threads"),
        settings=settings,
        arms=arms,
        summary=summary,
        paired=paired,
        seeds=seeds,
        versions=first.get("versions"),
        wall_seconds=round(sum(float(r.get("wall_seconds") or 0.0) for r in reports), 1),
    )
    if first.get("controls"):
        merged["controls"] = first["controls"]
    merged.update(comparisons(merged))
    return merged


def run_merge(paths: list[str | Path], out: str | Path, command: str | None = None) -> dict[str, Any]:
    """``ganaug eval merge``: merge the reports and write ``report.json``/``report.md``/plots to
    ``out``, which may not be, contain or lie inside any of the merged reports' folders."""
    from ganaug.output_safety import check_inputs
    from ganaug.report import write_uplift_report

    merged = merge_uplift_reports(paths)
    check_inputs(out, [(_report_path(p).parent, "the report folder") for p in paths])
    merged["command"] = command
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_uplift_report(merged, out_dir)
    return merged


__all__ = ["PER_PART_SETTINGS", "load_uplift_report", "merge_uplift_reports", "run_merge"]
