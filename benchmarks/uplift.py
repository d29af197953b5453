"""Does GAN augmentation help on Fashion-MNIST? The uplift table of the README.

Settings (each a paired experiment over seeds, via :func:`ganaug.evaluate.uplift`):

- ``100``: 100 real training images per class;
- ``20``: 20 real training images per class;
- ``imbalanced``: the BAGAN-GP protocol, train counts 4166/73/139/210/287/370/422/387/545/651.

Per seed a GAN is trained on exactly the drawn real images; arms: ``real`` (classical augmentation
only), ``gan`` (+ GAN samples) and ``gan+filter`` (+ GAN samples that the real-only classifier
assigns to their intended class with probability >= ``--min-confidence``); in the imbalanced setting
also the two no-GAN rebalancing baselines ``oversample`` (the real images in class-balanced batches)
and ``balanced-softmax`` (the real images with the balanced-softmax / logit-adjusted loss, Ren et
al. 2020, Menon et al. 2021); every arm trains the
same classifier for the same number of steps and is tested on the full 10k test split. Extra arms
via ``--policy`` (``ganaug eval uplift --policy`` syntax).

    python benchmarks/uplift.py                         # the full table (hours on 2 CPU cores)
    python benchmarks/uplift.py --settings 100 --seeds 3 --gan-steps 8000
    python benchmarks/uplift.py --quick                 # smoke run, ~10 CPU minutes

Writes ``OUT/uplift.json`` and ``OUT/uplift.md`` (table, command, wall time) and each setting's
full report under ``WORK/<setting>/`` (report.md, plots, GAN runs).
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
FASHION_MNIST = REPO.parent / "shared" / "data" / "fashion-mnist"
BAGAN_COUNTS = [4166, 73, 139, 210, 287, 370, 422, 387, 545, 651]
SETTINGS = ("100", "20", "imbalanced")


def as_given(path: Path) -> Path:
    """A default path relative to the working directory, as a user would type it: the results and
    reports record paths as given, never this machine's absolute ones."""
    try:
        return Path(os.path.relpath(path))
    except ValueError:  # another drive (Windows)
        return path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", type=Path, default=as_given(FASHION_MNIST), help="Fashion-MNIST IDX folder.")
    p.add_argument(
        "--settings",
        default=",".join(SETTINGS),
        help="Comma list of: 100, 20, imbalanced, or any integer N (N per class).",
    )
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--gan-steps", type=int, default=3000)
    p.add_argument("--arch", default="dcgan")
    p.add_argument("--gan-batch-size", type=int, default=64)
    p.add_argument(
        "--gan-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Any other ganaug train option (repeatable).",
    )
    p.add_argument(
        "--generator",
        default=None,
        help="Reuse a generator (no GAN training); '{seed}' in the path picks one per seed, "
        "e.g. runs/bench_uplift/100/seed_{seed}/gan from an earlier run.",
    )
    p.add_argument("--classifier-steps", type=int, default=3000)
    p.add_argument("--classifier-batch-size", type=int, default=128)
    p.add_argument("--strategy", default="1.0", help="Synthetic per real for the balanced settings.")
    p.add_argument(
        "--imbalanced-strategy",
        default="not majority",
        help="Strategy for the imbalanced setting (default: every class up to the largest).",
    )
    p.add_argument("--min-confidence", type=float, default=0.9)
    p.add_argument(
        "--policy",
        action="append",
        default=[],
        metavar="SPEC",
        help="Extra arm, e.g. 'name=w03,strategy=1,synthetic_weight=0.3' (repeatable).",
    )
    p.add_argument("--no-filter-arm", action="store_true", help="Skip the confidence-filter arm.")
    p.add_argument(
        "--no-oversample-arm",
        action="store_true",
        help="Skip the imbalanced setting's oversampling baseline (real images, class-balanced batches).",
    )
    p.add_argument(
        "--no-rebalance-loss-arm",
        action="store_true",
        help="Skip the imbalanced setting's balanced-softmax baseline (real images, rebalancing loss).",
    )
    p.add_argument(
        "--tune",
        action="store_true",
        help="Also choose a policy on a validation split (eval uplift --tune; default grid plus --policy "
        "arms) and test it as arm 'tuned'.",
    )
    p.add_argument(
        "--no-hflip", action="store_true", help="No horizontal flips in the classical augmentation."
    )
    p.add_argument("--amp", action="store_true", help="bf16 autocast for the classifiers.")
    p.add_argument("--quality", action="store_true", help="Also FID/KID/PR per seed (feature extractor).")
    p.add_argument("--test-limit", type=int, default=None, help="Use only the first N test images.")
    p.add_argument(
        "--threads", type=int, default=None, help="torch intra-op threads (default: half the cores, 1..8)."
    )
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="Where uplift.json/uplift.md go "
        "(default benchmarks/results, or runs/bench_uplift_quick with --quick).",
    )
    p.add_argument(
        "--work",
        type=Path,
        default=None,
        help="Per-setting reports and GAN runs (default runs/bench_uplift[_quick]).",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="Smoke run: settings 20 and imbalanced/20, 2 seeds, 60 GAN steps, 200 classifier "
        "steps, 2000 test images.",
    )
    args = p.parse_args(argv)
    if args.quick:
        args.settings = "20,imbalanced"
        args.seeds = min(args.seeds, 2)
        args.gan_steps = min(args.gan_steps, 60)
        args.classifier_steps = min(args.classifier_steps, 200)
        args.test_limit = args.test_limit or 2000
    suffix = "_quick" if args.quick else ""
    default_out = "runs/bench_uplift_quick" if args.quick else "benchmarks/results"
    args.out = args.out or as_given(REPO / default_out)
    args.work = args.work or as_given(REPO / f"runs/bench_uplift{suffix}")
    return args


def _counts(setting: str, quick: bool) -> tuple[str, list[int] | int]:
    if setting == "imbalanced":
        return "imbalanced", [max(2, c // 20) for c in BAGAN_COUNTS] if quick else BAGAN_COUNTS
    try:
        return f"{int(setting)}/class", int(setting)
    except ValueError:
        raise SystemExit(f"unknown setting {setting!r}; use 100, 20, imbalanced or an integer") from None


def run(args: argparse.Namespace) -> dict:
    import torch

    from ganaug.data import load_dataset
    from ganaug.eval.policy import MixPolicy
    from ganaug.eval.spec import parse_pairs, parse_strategy
    from ganaug.eval.uplift import auto_threads, uplift

    torch.set_num_threads(args.threads or auto_threads())
    images = args.data_dir / "train-images-idx3-ubyte.gz"
    if not images.is_file():
        raise SystemExit(f"Fashion-MNIST not found in {args.data_dir}")
    train = load_dataset(images)
    test = load_dataset(args.data_dir / "t10k-images-idx3-ubyte.gz")
    if args.test_limit:
        test = test.subset(np.arange(min(args.test_limit, len(test))))
    gan_options = {
        "steps": args.gan_steps,
        "arch": args.arch,
        "batch_size": args.gan_batch_size,
        **parse_pairs(tuple(args.gan_option), "--gan-option"),
    }
    extra = [MixPolicy.parse(spec) for spec in args.policy]
    rows, reports = [], {}
    t_all = time.perf_counter()
    for setting in [s.strip() for s in args.settings.split(",") if s.strip()]:
        label, counts = _counts(setting, args.quick)
        strategy = parse_strategy(args.imbalanced_strategy if setting == "imbalanced" else args.strategy)
        policies = [MixPolicy(name="gan", strategy=strategy)]
        if not args.no_filter_arm:
            policies.append(
                MixPolicy(
                    name="gan+filter", strategy=strategy, filter=True, min_confidence=args.min_confidence
                )
            )
        if setting == "imbalanced" and not args.no_oversample_arm:
            policies.append(MixPolicy(name="oversample", strategy=0, balance=True))
        if setting == "imbalanced" and not args.no_rebalance_loss_arm:
            policies.append(MixPolicy(name="balanced-softmax", strategy=0, loss="balanced_softmax"))
        policies += extra
        print(f"== {label}: {args.seeds} seeds, arms real, {', '.join(p.name for p in policies)}", flush=True)
        t0 = time.perf_counter()
        report = uplift(
            train,
            test,
            per_class_n=counts if isinstance(counts, int) else None,
            imbalance=counts if isinstance(counts, list) else None,
            seeds=args.seeds,
            out_dir=args.work / setting.replace("/", "_"),
            generator=args.generator,
            gan_options=gan_options,
            policies=policies,
            classifier_steps=args.classifier_steps,
            classifier_batch_size=args.classifier_batch_size,
            hflip=not args.no_hflip,
            amp=args.amp,
            quality=args.quality,
            device=args.device,
            progress=sys.stderr.isatty(),
            echo=lambda m: print("  " + m, flush=True),
            warn=lambda m: print("  warning: " + m, flush=True),
            tune=args.tune,
            tune_grid=extra if args.tune and extra else None,
            threads=torch.get_num_threads(),
        )
        if report.get("recommendation"):
            print(f"  recommendation: {report['recommendation']}", flush=True)
        reports[label] = {
            "report": str(args.work / setting / "report.json"),
            "wall_seconds": round(time.perf_counter() - t0, 1),
        }
        for arm in report["arms"]:
            s = report["summary"][arm]
            row = {
                "setting": label,
                "arm": arm,
                "accuracy": s["accuracy"],
                "balanced_accuracy": s["balanced_accuracy"],
            }
            if arm != "real":
                row["paired_accuracy"] = report["paired"][arm]["accuracy"]
                row["paired_balanced_accuracy"] = report["paired"][arm]["balanced_accuracy"]
                kept = [r["arms"][arm]["synthetic"].get("acceptance_rate") for r in report["seeds"]]
                row["synthetic_per_seed"] = [
                    r["arms"][arm]["synthetic"]["n_synthetic"] for r in report["seeds"]
                ]
                row["acceptance_rate"] = [k for k in kept if k is not None]
            rows.append(row)
        print(table(rows), flush=True)
    result = {
        "command": "python benchmarks/uplift.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "wall_seconds": round(time.perf_counter() - t_all, 1),
        "settings": {k: v for k, v in vars(args).items() if k not in ("out", "work", "data_dir")},
        "rows": rows,
        "reports": reports,
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        },
        "date": time.strftime("%Y-%m-%d"),
    }
    return result


def _fmt(entry: dict) -> str:
    return f"{entry['mean']:.2f} ± {entry['std']:.2f}"


def _diff(entry: dict | None) -> str:
    if not entry:
        return "–"
    ci = entry.get("ci95")
    return f"{entry['mean']:+.2f}" + ("" if ci is None else f" [{ci[0]:+.2f}, {ci[1]:+.2f}]")


def table(rows: list[dict]) -> str:
    """Markdown table of all rows."""
    lines = [
        "| setting | arm | accuracy % | balanced acc. % | Δ acc. (95% CI) | Δ balanced (95% CI) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['setting']} | {r['arm']} | {_fmt(r['accuracy'])} | {_fmt(r['balanced_accuracy'])} | "
            f"{_diff(r.get('paired_accuracy'))} | {_diff(r.get('paired_balanced_accuracy'))} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    from ganaug.fileio import atomic_write_json, atomic_write_text

    args = parse_args(argv)
    result = run(args)
    machine = result["machine"]
    md = "\n".join(
        [
            "# Fashion-MNIST uplift benchmark",
            "",
            f"Command: `{result['command']}`  ",
            f"Wall time: {result['wall_seconds'] / 60:.1f} min ({machine['threads']} torch threads, "
            f"{machine['platform']}, torch {machine['torch']}), {result['date']}.",
            "",
            table(result["rows"]),
            "",
            "Δ: paired difference against `real` over seeds, mean and 95% t-interval (percentage points).",
            "Per-setting reports: " + ", ".join(f"`{v['report']}`" for v in result["reports"].values()) + ".",
            "",
        ]
    )
    atomic_write_json(args.out / "uplift.json", result)
    atomic_write_text(args.out / "uplift.md", md)
    print(f"\nwall time {result['wall_seconds']:.0f} s; wrote {args.out}/uplift.json and uplift.md")


if __name__ == "__main__":
    main()
