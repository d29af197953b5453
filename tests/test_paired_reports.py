"""``benchmarks/paired_reports.py``: arms of different uplift runs paired seed by seed, pooled over
pairs of runs whose arms are named differently."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "paired_reports.py"


def _report(path: Path, arms_by_seed: dict[int, dict[str, float]]) -> Path:
    seeds = [
        {"seed": s, "arms": {a: {"accuracy": v} for a, v in arms.items()}} for s, arms in arms_by_seed.items()
    ]
    path.write_text(json.dumps({"seeds": seeds}))
    return path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, check=False)


def test_pairs_by_seed_and_pools_over_runs(tmp_path: Path) -> None:
    first = _report(tmp_path / "r1.json", {0: {"gan": 0.80, "ctl": 0.79}, 1: {"gan": 0.82, "ctl": 0.80}})
    second = _report(tmp_path / "r2.json", {3: {"gan": 0.81, "gan-control": 0.82}})
    proc = _run("--b", f"{first}:gan", f"{second}:gan", "--a", f"{first}:ctl", f"{second}:gan-control")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("seed 0:") and lines[0].endswith("= +1.00 points")
    assert lines[2].startswith("seed 3:") and lines[2].endswith("= -1.00 points")
    # differences +1, +2, -1 points: mean +0.67, std 1.53, t(2) 4.303 -> half width 3.79
    assert lines[-1] == "accuracy, 3 seeds: +0.67 [-3.13, +4.46] points (95% t-interval)"


def test_says_what_is_wrong(tmp_path: Path) -> None:
    report = _report(tmp_path / "r.json", {0: {"gan": 0.8}})
    other = _report(tmp_path / "o.json", {5: {"gan": 0.7}})
    cases = {
        (f"{report}:nope", f"{report}:gan"): f"{report}: seed 0 has no arm 'nope'",
        (f"{report}:gan", f"{other}:gan"): "share no seed",
        ("gan", f"{report}:gan"): "gan: expected REPORT.json:ARM",
    }
    for (b, a), said in cases.items():
        proc = _run("--b", b, "--a", a)
        assert proc.returncode != 0 and said in proc.stderr, proc.stderr
    proc = _run("--b", f"{report}:gan", f"{report}:gan", "--a", f"{report}:gan")
    assert proc.returncode == 2 and "one --a term per --b term" in proc.stderr
