"""Paired differences between arms of different uplift runs, matched by seed.

``report.json`` of ``ganaug eval uplift`` (or ``eval merge``) pairs arms only within one run. This
script pairs them across runs that share seeds and subsets, e.g. one arm on generators trained
longer against the same arm before, or an arm minus its control pooled over runs whose control
arms are named differently. Each term is ``REPORT.json:ARM``; the i-th ``--b`` term is paired with
the i-th ``--a`` term, seed by seed, and the differences of all pairs are pooled into one 95%
t-interval (:func:`ganaug.metrics.paired_difference`).

    python benchmarks/paired_reports.py \\
        --b benchmarks/results/uplift_imbalanced_balgan20k.json:gan-rare-over \\
        --a benchmarks/results/uplift_imbalanced_balgan10k.json:gan-rare-over --metric balanced_accuracy
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ganaug.metrics import paired_difference  # noqa: E402

METRICS = ("accuracy", "balanced_accuracy")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--b", nargs="+", required=True, help="REPORT.json:ARM terms (the minuends).")
    p.add_argument("--a", nargs="+", required=True, help="REPORT.json:ARM terms, one per --b term.")
    p.add_argument("--metric", choices=METRICS, default="accuracy")
    args = p.parse_args(argv)
    if len(args.a) != len(args.b):
        p.error(f"--a has {len(args.a)} terms, --b {len(args.b)}: give one --a term per --b term")
    return args


def arm_scores(term: str, metric: str) -> dict[int, float]:
    """Seed -> score of ``ARM`` in ``REPORT.json`` (``term`` = ``REPORT.json:ARM``)."""
    path, sep, arm = term.rpartition(":")
    if not sep or not path:
        raise SystemExit(f"{term}: expected REPORT.json:ARM")
    report = json.loads(Path(path).read_text(encoding="utf-8"))
    scores = {}
    for seed in report["seeds"]:
        if arm not in seed["arms"]:
            raise SystemExit(f"{path}: seed {seed['seed']} has no arm {arm!r}")
        scores[int(seed["seed"])] = float(seed["arms"][arm][metric])
    return scores


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    b_values, a_values = [], []
    for b_term, a_term in zip(args.b, args.a, strict=True):
        b, a = arm_scores(b_term, args.metric), arm_scores(a_term, args.metric)
        seeds = sorted(set(b) & set(a))
        if not seeds:
            raise SystemExit(f"{b_term} and {a_term} share no seed")
        for seed in seeds:
            print(f"seed {seed}: {b_term} - {a_term} = {100 * (b[seed] - a[seed]):+.2f} points")
        b_values += [b[s] for s in seeds]
        a_values += [a[s] for s in seeds]
    diff = paired_difference(b_values, a_values)
    ci = diff["ci95"]
    interval = f" [{100 * ci[0]:+.2f}, {100 * ci[1]:+.2f}]" if ci else ""
    print(f"{args.metric}, {diff['n']} seeds: {100 * diff['mean']:+.2f}{interval} points (95% t-interval)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
