"""How good was ``eval uplift --tune``'s choice? Compare its validation scores with test results.

``ganaug eval uplift --tune`` without ``--test`` chooses a mixing policy on validation splits of the
real subsets only. This script puts that choice next to the *test* accuracy of the same arms, taken
from uplift runs that used the same seeds and classifier settings (``report.json`` of
``ganaug eval uplift`` or the JSON of ``benchmarks/uplift.py``), and reports:

- per seed: the arm validation ranks first and the arm test ranks first (among the arms both have);
- the overall choice (best mean validation score), its test mean and its paired difference to the
  best no-GAN arm on test (95% interval over seeds): the ``--tune`` acceptance question "is the
  recommendation worse on test than the best no-GAN baseline by more than the seeds' noise?".

    python benchmarks/tune_check.py --tune runs/tune100/report.json \\
        --test benchmarks/results/uplift_100_mixing.json benchmarks/results/uplift_100_temperature08.json \\
        --out benchmarks/results/tune_check_100

No-GAN arms: ``real``, every ``*-control`` arm, and the names given with ``--no-gan``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--tune",
        type=Path,
        nargs="+",
        required=True,
        help="report.json of eval uplift --tune (no test), or the seed_N/tune.json files of one or more "
        "such runs (then --config: the runs' config.yaml, for the policies).",
    )
    p.add_argument(
        "--config", type=Path, default=None, help="config.yaml of the tune run(s), with --tune *.json."
    )
    p.add_argument("--test", type=Path, nargs="+", required=True, help="Uplift JSON files with test results.")
    p.add_argument(
        "--no-gan", default="oversample,balanced-softmax", help="More no-GAN arm names (comma list)."
    )
    p.add_argument(
        "--seed-interval-only",
        action="store_true",
        help="The earlier rule: ignore stored validation predictions (the interval over seeds only).",
    )
    p.add_argument("--out", type=Path, required=True, help="Output stem: STEM.md and STEM.json.")
    return p.parse_args(argv)


def test_values(paths: list[Path], metric: str) -> dict[str, list[float]]:
    """Arm -> per-seed test values (%) from uplift reports, in seed order. ``ganaug eval uplift``
    reports are combined by seed (one run per seed, e.g. ``--seed N --seeds 1``, adds up); for an
    arm and seed the first file that has it wins."""
    by_seed: dict[str, dict[int, float]] = {}
    for path in paths:
        data = json.loads(path.read_text(encoding="utf-8"))
        if "rows" in data:  # benchmarks/uplift.py: seeds 0..n-1
            arms = {r["arm"]: r[metric]["values"] for r in data["rows"]}
            seeds = None
        else:  # ganaug eval uplift report.json
            arms = {name: v[metric]["values"] for name, v in data["summary"].items()}
            seeds = [int(s) for s in data["settings"]["seeds"]]
        for name, values in arms.items():
            keys = seeds if seeds is not None else list(range(len(values)))
            have = by_seed.setdefault(name, {})
            for seed, value in zip(keys, values, strict=True):
                have.setdefault(seed, float(value))
    return {name: [have[s] for s in sorted(have)] for name, have in by_seed.items()}


def paired_ci(a: list[float], b: list[float]) -> tuple[float, float, float]:
    """Mean of ``a - b`` over seeds and its 95% t interval."""
    from ganaug.metrics import paired_difference

    res = paired_difference(a, b)
    return res["mean"], res["ci95"][0], res["ci95"][1]


def check(tune: dict[str, Any], test: dict[str, list[float]], no_gan_names: set[str]) -> dict[str, Any]:
    validation: dict[str, list[float]] = tune["validation"]
    common = [a for a in validation if a in test]
    if not common:
        raise SystemExit("no arm is in both the tune report and the test results")
    n_seeds = min(len(validation[a]) for a in common)

    def no_gan(name: str) -> bool:
        return name == "real" or name.endswith("-control") or name in no_gan_names

    seeds = []
    for s in range(n_seeds):
        val_best = max(common, key=lambda a: validation[a][s])
        test_best = max(common, key=lambda a: test[a][s])
        seeds.append(
            {
                "seed": s,
                "validation_best": val_best,
                "test_best": test_best,
                "match": val_best == test_best,
                "chosen_test": test[val_best][s],
                "test_best_value": test[test_best][s],
            }
        )
    means = {a: float(np.mean(validation[a][:n_seeds])) for a in common}
    choice = tune["choice"] if tune["choice"] in common else max(common, key=means.get)
    test_means = {a: float(np.mean(test[a][:n_seeds])) for a in common}
    best_no_gan = max((a for a in common if no_gan(a)), key=test_means.get)
    best_test = max(common, key=test_means.get)
    diff = paired_ci(test[choice][:n_seeds], test[best_no_gan][:n_seeds])
    return {
        "metric": tune["metric"],
        "arms": common,
        "validation_mean": means,
        "test_mean": test_means,
        "no_gan": [a for a in common if no_gan(a)],
        "choice": choice,
        "recommendation": tune.get("recommendation"),
        "best_test_arm": best_test,
        "best_no_gan_test_arm": best_no_gan,
        "choice_minus_best_no_gan": {"mean": diff[0], "ci95": [diff[1], diff[2]]},
        "seeds": seeds,
        "matches": sum(s["match"] for s in seeds),
    }


def markdown(res: dict[str, Any], command: str) -> str:
    what = res["metric"].replace("_", " ")
    lines = [
        "# Was the `--tune` choice right on test?",
        "",
        f"`{command}`",
        "",
        f"Validation: {what} on each seed's validation split of the real subset (test never seen). "
        f"Test: the same arms' {what} on the test split, from uplift runs with the same seeds and "
        "classifier settings (their generators were trained on the whole subset; the tuning "
        "generator is the tune report's).",
        "",
        "| arm | validation % (mean) | test % (mean) | no GAN |",
        "|---|---:|---:|:---:|",
    ]
    for a in sorted(res["arms"], key=lambda n: -res["validation_mean"][n]):
        mark = " (chosen)" if a == res["choice"] else ""
        lines.append(
            f"| {a}{mark} | {res['validation_mean'][a]:.2f} | {res['test_mean'][a]:.2f} "
            f"| {'yes' if a in res['no_gan'] else ''} |"
        )
    lines += ["", "| seed | best on validation | best on test | same |", "|---:|---|---|:---:|"]
    for s in res["seeds"]:
        lines.append(
            f"| {s['seed']} | {s['validation_best']} | {s['test_best']} | {'yes' if s['match'] else 'no'} |"
        )
    d = res["choice_minus_best_no_gan"]
    lines += [
        "",
        f"Choice (ganaug's rule on validation): `{res['choice']}`; "
        f"best arm on test: `{res['best_test_arm']}`; "
        f"best no-GAN arm on test: `{res['best_no_gan_test_arm']}`. Per seed, the validation winner was "
        f"the test winner in {res['matches']} of {len(res['seeds'])} seeds. The choice minus the best "
        f"no-GAN arm on test: {d['mean']:+.2f} points (95% CI {d['ci95'][0]:+.2f} to {d['ci95'][1]:+.2f}).",
        "",
        f"Recommendation of the tune run: {res['recommendation']}",
        "",
    ]
    return "\n".join(lines)


def tune_from_seeds(paths: list[Path], config: Path | None, images: bool = True) -> dict[str, Any]:
    """The ``tune`` summary of seeds tuned in separate runs (their ``seed_N/tune.json``), chosen by
    ganaug's own rule (:func:`ganaug.eval.tune.choose_policy`) over all of them."""
    import yaml

    from ganaug.eval.policy import MixPolicy
    from ganaug.eval.tune import choose_policy, default_grid, tune_summary
    from ganaug.eval.validation import validation_interval

    if config is None:
        raise SystemExit("--config is needed with per-seed tune.json files")
    cfg = yaml.safe_load(config.read_text(encoding="utf-8"))
    imbalanced = bool(cfg.get("imbalance"))
    # the candidates as eval uplift --tune had them: tune_grid (else the default grid) plus policies
    grid = [MixPolicy(**d) for d in cfg.get("tune_grid") or []] or default_grid(imbalanced)
    policies = {p.name: p for p in grid}
    for d in cfg.get("policies") or []:
        policies.setdefault(d["name"], MixPolicy(**d))
    metric = "balanced_accuracy" if imbalanced else "accuracy"
    scores: dict[str, list[float]] = {}
    per_seed = []
    for path in sorted(paths, key=lambda p: json.loads(p.read_text(encoding="utf-8"))["seed"]):
        seed_scores = json.loads(path.read_text(encoding="utf-8"))
        per_seed.append(seed_scores)
        for name, res in seed_scores["arms"].items():
            scores.setdefault(name, []).append(100.0 * res[metric])
        policies.update({ctl: policies[arm].control() for arm, ctl in seed_scores["controls"].items()})
    # None for runs that kept no predictions
    image_ci = validation_interval(per_seed, None, metric) if images else None
    return tune_summary(choose_policy(scores, policies, metric, image_ci), scores)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    first = json.loads(args.tune[0].read_text(encoding="utf-8"))
    if "tune" in first:
        tune = first["tune"]
    else:
        tune = tune_from_seeds(args.tune, args.config, images=not args.seed_interval_only)
    test = test_values(args.test, tune["metric"])
    res = check(tune, test, {n.strip() for n in args.no_gan.split(",") if n.strip()})
    command = "python benchmarks/tune_check.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps({"command": command, **res}, indent=1))
    text = markdown(res, command)
    args.out.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
