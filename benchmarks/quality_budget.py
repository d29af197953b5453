"""Generator quality per CPU-minute on Fashion-MNIST: the yardstick for training-recipe changes.

``run``: train a generator through ``ganaug.training.train`` on a fixed real subset (``100`` per
class, or the BAGAN-GP ``imbalanced`` counts; drawn exactly as ``benchmarks/uplift.py`` draws seed 0)
for a budget of *process CPU time* (``--time-budget``; robust to other jobs on a shared machine), with
an EMA snapshot every ``--snapshot-minutes`` CPU minutes, then evaluate every snapshot:

- in-domain FID / KID and precision / recall (``ganaug.evaluate.quality_report``) in the feature space
  of the real-data classifier (``ganaug.classifier.get_feature_extractor`` on the full training split,
  cached), against a fixed class-stratified part of the real test split;
- within-class diversity (``ganaug.demo.diversity_ratio``, as ``benchmarks/diversity.py``: 64 samples
  per class vs 64 real test images; 1.0 = as varied as real) and its worst class;
- CAS (``ganaug.evaluate.cas``): the fixed classifier trained on synthetic images only (as many per
  class as the real subset has), tested on the full real test split; the CAS gap is the same
  classifier trained on the real subset minus that (last snapshot: ``--cas-seeds`` seeds; bf16
  autocast where the CPU has it);
- label fidelity and confusions: the real-data classifier's predictions on the samples, per class.

``temperatures``: score one snapshot of an existing run (``--checkpoint last|best|STEP``) at several
sampling temperatures (latent standard deviations, ``--temperatures 0.8,1.0,1.2``) with the same
numbers, without retraining; at temperature 1.0 it draws exactly the samples ``run`` scored.

    OMP_NUM_THREADS=1 python benchmarks/quality_budget.py run --name default --time-budget 10
    OMP_NUM_THREADS=1 python benchmarks/quality_budget.py run --name w64 --gan-option g_width=64
    python benchmarks/quality_budget.py compare benchmarks/results/quality_budget_100_*.json \\
        --out benchmarks/results/quality_budget_100
    python benchmarks/quality_budget.py run --quick          # smoke run, ~2 CPU minutes
    OMP_NUM_THREADS=1 python benchmarks/quality_budget.py temperatures --name default \
        --temperatures 0.8,1.0,1.2 --checkpoint last

Writes ``OUT/quality_budget_<setting>_<name>.json`` / ``.md`` / ``.png`` (curves) and ``_grid.png``
(the last snapshot's sample grid); the GAN run itself stays in ``--work`` (weights are not results).
``temperatures`` writes ``OUT/quality_temperature_<setting>_<name>.json`` / ``.md`` / ``.png``.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from uplift import FASHION_MNIST, _counts  # noqa: E402  (the same subsets as the uplift benchmark)

EVAL_PER_CLASS = 300  # synthetic and real test images per class for FID/KID/PR and confusions
DIVERSITY_PER_CLASS = 64
SAMPLE_SEED = 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="Train for a CPU budget, then evaluate every snapshot.")
    r.add_argument("--name", default="default", help="Recipe label (file names, tables).")
    r.add_argument("--setting", default="100", help="100 (per class), imbalanced, or an integer N.")
    r.add_argument("--time-budget", type=float, default=10.0, help="Training budget in CPU minutes.")
    r.add_argument("--snapshot-minutes", type=float, default=2.5, help="CPU minutes between snapshots.")
    r.add_argument(
        "--gan-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Any ganaug train option (repeatable), e.g. g_width=64, lecam=0.1.",
    )
    r.add_argument("--seed", type=int, default=0, help="Subset draw and GAN seed.")
    r.add_argument("--cas-steps", type=int, default=400, help="Classifier steps for CAS (batch 128).")
    r.add_argument("--cas-seeds", type=int, default=3, help="CAS seeds for the last snapshot.")
    r.add_argument("--eval-only", action="store_true", help="Re-evaluate the existing run in --work.")
    r.add_argument(
        "--truncation", type=float, default=None, help="Sample with the truncation trick (|z| <= T)."
    )
    r.add_argument("--data-dir", type=Path, default=FASHION_MNIST)
    r.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    r.add_argument("--work", type=Path, default=None, help="GAN run dir (default runs/quality_budget/...).")
    r.add_argument("--quick", action="store_true", help="Smoke run: 1 CPU minute, 20/class, short CAS.")
    t = sub.add_parser("temperatures", help="Score one snapshot of an existing run at several temperatures.")
    t.add_argument("--name", required=True, help="Recipe label of the existing run (as given to run).")
    t.add_argument("--setting", default="100", help="100 (per class), imbalanced, or an integer N.")
    t.add_argument("--seed", type=int, default=0, help="The run's subset draw seed (as given to run).")
    t.add_argument("--temperatures", type=_temperature_list, default=[0.8, 1.0, 1.2], metavar="T1,T2,...")
    t.add_argument("--checkpoint", default="last", help="Snapshot: last, best (lowest val FID) or a step.")
    t.add_argument("--cas-steps", type=int, default=400, help="Classifier steps for CAS (batch 128).")
    t.add_argument("--cas-seeds", type=int, default=3, help="CAS seeds per temperature.")
    t.add_argument("--truncation", type=float, default=None, help="Truncate |z| <= T before scaling.")
    t.add_argument("--data-dir", type=Path, default=FASHION_MNIST)
    t.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    t.add_argument("--work", type=Path, default=None, help="GAN run dir (default runs/quality_budget/...).")
    t.add_argument("--quick", action="store_true", help="Smoke run: 50/class for FID, 1 short CAS.")
    v = sub.add_parser(
        "val-temperatures",
        help="The trainer's own temperature choice (val FID on the run's training images) for existing runs.",
    )
    v.add_argument("runs", nargs="+", type=Path, help="GAN run directories.")
    v.add_argument(
        "--temperatures", type=_temperature_list, default=[0.6, 0.8, 1.0, 1.2], metavar="T1,T2,..."
    )
    v.add_argument("--checkpoint", default="last", help="Snapshot: last, best (lowest val FID) or a step.")
    v.add_argument(
        "--label", required=True, help="Output stem: OUT/quality_val_temperature_<label>.md/.json."
    )
    v.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    c = sub.add_parser("compare", help="One table and one curve plot from several run JSON files.")
    c.add_argument("files", nargs="+", type=Path)
    c.add_argument("--out", type=Path, required=True, help="Output stem (writes STEM.md and STEM.png).")
    args = p.parse_args(argv)
    if args.cmd == "run":
        if args.quick:
            args.setting, args.time_budget, args.snapshot_minutes = "20", 1.0, 0.5
            args.cas_steps, args.cas_seeds = 100, 1
            args.out = REPO / "runs" / "quality_budget_quick"
        args.work = args.work or REPO / "runs" / "quality_budget" / f"{args.setting}_{args.name}"
    if args.cmd == "temperatures":
        args.eval_per_class = EVAL_PER_CLASS
        if args.quick:
            args.eval_per_class, args.cas_steps, args.cas_seeds = 50, 100, 1
            args.out = REPO / "runs" / "quality_budget_quick"
        args.work = args.work or REPO / "runs" / "quality_budget" / f"{args.setting}_{args.name}"
    return args


def _temperature_list(text: str) -> list[float]:
    from ganaug.limits import TEMPERATURE

    try:
        return [float(TEMPERATURE.check("--temperatures", v)) for v in text.split(",") if v.strip()]
    except Exception as exc:  # UsageError: argparse shows the one line
        raise argparse.ArgumentTypeError(str(exc)) from None


# -- data ------------------------------------------------------------------------------------------
def load_data(args: argparse.Namespace) -> tuple[Any, Any, Any, list[int]]:
    """Full train split, test split, the GAN's real subset and its per-class counts."""
    from ganaug.data import load_dataset
    from ganaug.evaluate import _draw, _per_class_counts

    train = load_dataset(args.data_dir / "train-images-idx3-ubyte.gz")
    test = load_dataset(args.data_dir / "t10k-images-idx3-ubyte.gz")
    _, spec = _counts(args.setting, quick=False)
    counts = _per_class_counts(
        spec if isinstance(spec, int) else None, spec if isinstance(spec, list) else None, train.num_classes
    )
    return train, test, _draw(train, counts, args.seed), counts


def stratified(ds: Any, per_class: int, seed: int = 0) -> Any:
    """The first ``per_class`` images of each class in a fixed shuffle."""
    return ds.sample_per_class(per_class, seed=seed)


# -- training --------------------------------------------------------------------------------------
def train_run(args: argparse.Namespace, subset: Any) -> dict[str, Any]:
    from ganaug.cli.eval_cmd import parse_pairs
    from ganaug.training import require_complete, train

    options = parse_pairs(tuple(args.gan_option), "--gan-option")
    keep = int(args.time_budget / args.snapshot_minutes) + 3
    settings = {
        "steps": 10**9,
        "time_budget": args.time_budget,
        "checkpoint_minutes": args.snapshot_minutes,
        "checkpoint_every": 10**9,
        "sample_every": 500,
        "snapshots": keep,
        "seed": args.seed,
        **options,
    }
    t0 = time.perf_counter()
    result = train(
        out=args.work, dataset=subset, overwrite=True, quiet=True, explicit=set(options), **settings
    )
    require_complete(result, f"the GAN in {args.work}")
    return {
        "options": options,
        "steps": result.step,
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "cpu_minutes": round(result.metrics.get("cpu_s", float("nan")) / 60.0, 3),
    }


# -- evaluation ------------------------------------------------------------------------------------
def _cas_real(args: argparse.Namespace, subset: Any, test: Any, seeds: list[int]) -> dict[int, float]:
    """Real-only accuracy of the CAS classifier on the subset, per seed (cached next to the runs)."""
    from ganaug.evaluate import cas

    cache = args.work.parent / f"cas_real_{args.setting}_s{args.seed}_steps{args.cas_steps}_bf16.json"
    have = json.loads(cache.read_text()) if cache.is_file() else {}
    for s in seeds:
        if str(s) not in have:
            res = cas(subset, test, steps=args.cas_steps, seed=s, num_classes=subset.num_classes, amp=True)
            have[str(s)] = res["synthetic_only"]["accuracy"]  # "synthetic" here = the real subset
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(have))
    return {s: have[str(s)] for s in seeds}


def _confusions(pred: np.ndarray, labels: np.ndarray, classes: list[str]) -> dict[str, Any]:
    k = len(classes)
    matrix = np.zeros((k, k), dtype=np.int64)
    np.add.at(matrix, (labels, pred), 1)
    fidelity = {classes[i]: round(float(matrix[i, i] / max(matrix[i].sum(), 1)), 3) for i in range(k)}
    off = [(int(matrix[i, j]), classes[i], classes[j]) for i in range(k) for j in range(k) if i != j]
    top = [
        {"intended": a, "predicted": b, "share": round(n / max(int(matrix[classes.index(a)].sum()), 1), 3)}
        for n, a, b in sorted(off, reverse=True)[:5]
    ]
    return {"label_fidelity": fidelity, "top_confusions": top, "matrix": matrix.tolist()}


def evaluate_snapshot(
    path: Path, counts: list[int], ctx: dict[str, Any], cas_seeds: list[int], cas_steps: int
) -> dict[str, Any]:
    """Every number of one snapshot (see the module docstring)."""
    from ganaug.demo import diversity_ratio
    from ganaug.evaluate import cas, quality_report
    from ganaug.runtime import resolve_temperature
    from ganaug.sampling import open_sampler

    t0 = time.process_time()
    test, fe, real_eval = ctx["test"], ctx["fe"], ctx["real_eval"]
    k = test.num_classes
    sampler = open_sampler(path)
    labels = np.repeat(np.arange(k), ctx.get("eval_per_class", EVAL_PER_CLASS))
    trunc = ctx.get("truncation")
    temp = resolve_temperature(sampler, ctx.get("temperature"))  # None: the snapshot's trained default
    images = sampler.generate(labels, seed=SAMPLE_SEED, truncation=trunc, temperature=temp)
    q = quality_report(real_eval, (images, labels), fe, kid_subsets=20)
    div = diversity_ratio(images, labels, test, per_class=DIVERSITY_PER_CLASS)
    conf = _confusions(fe.predict(images), labels, list(test.classes))
    cas_labels = np.repeat(np.arange(k), counts)
    cas_images = sampler.generate(cas_labels, seed=SAMPLE_SEED + 1, truncation=trunc, temperature=temp)
    accs = []
    for s in cas_seeds:
        res = cas((cas_images, cas_labels), test, steps=cas_steps, seed=s, num_classes=k, amp=True)
        accs.append(res["synthetic_only"]["accuracy"])
    real = [ctx["cas_real"][s] for s in cas_seeds]
    return {
        "temperature": temp,
        "fid": round(q["fid"], 3),
        "kid": round(q["kid"], 5),
        "precision": round(q["precision"], 4),
        "recall": round(q["recall"], 4),
        "per_class_fid": {test.classes[c]: round(v["fid"], 2) for c, v in q["per_class"].items()},
        "diversity_mean": round(float(np.mean(list(div.values()))), 3),
        "diversity_min": round(float(min(div.values())), 3),
        "diversity": {n: round(v, 3) for n, v in div.items()},
        "label_fidelity_mean": round(float(np.mean(list(conf["label_fidelity"].values()))), 3),
        **conf,
        "cas_seeds": cas_seeds,
        "cas": [round(a, 4) for a in accs],
        "cas_mean": round(float(np.mean(accs)), 4),
        "real_acc": [round(a, 4) for a in real],
        "cas_gap": round(float(np.mean(real) - np.mean(accs)), 4),
        "eval_cpu_seconds": round(time.process_time() - t0, 1),
    }


def _eval_context(
    args: argparse.Namespace, train_full: Any, test: Any, subset: Any, cas_seeds: list[int]
) -> dict[str, Any]:
    """What every snapshot evaluation shares: test split, feature extractor, real reference, CAS real."""
    from ganaug.classifier import get_feature_extractor

    per_class = getattr(args, "eval_per_class", EVAL_PER_CLASS)
    return {
        "test": test,
        "fe": get_feature_extractor(train_full),
        "real_eval": stratified(test, per_class),
        "eval_per_class": per_class,
        "cas_real": _cas_real(args, subset, test, cas_seeds),
        "truncation": args.truncation,
    }


def _machine() -> dict[str, Any]:
    import torch

    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }


def _pick_snapshot(work: Path, choice: str) -> tuple[Path, dict[str, Any]]:
    """The snapshot file and index entry for ``--checkpoint`` (``last``: the run's last snapshot)."""
    from ganaug.snapshots import read_index, select_weights

    index = read_index(work)
    entries = [e for e in (index or {}).get("snapshots", []) if (work / "weights" / e["file"]).is_file()]
    if not entries:
        raise SystemExit(f"{work}: no snapshots to evaluate")
    path = work / "weights" / entries[-1]["file"] if choice == "last" else select_weights(work, choice)
    entry = next(e for e in entries if work / "weights" / e["file"] == path)
    return path, entry


def temperatures(args: argparse.Namespace) -> dict[str, Any]:
    """Every number of one snapshot at each of ``args.temperatures`` (eval only, no training)."""
    import torch

    torch.set_num_threads(1)
    t_all = time.perf_counter()
    path, entry = _pick_snapshot(args.work, args.checkpoint)
    train_full, test, subset, counts = load_data(args)
    cas_seeds = list(range(args.cas_seeds))
    ctx = _eval_context(args, train_full, test, subset, cas_seeds)
    rows = []
    for temp in args.temperatures:
        metrics = evaluate_snapshot(path, counts, {**ctx, "temperature": temp}, cas_seeds, args.cas_steps)
        rows.append({"temperature": temp, **metrics})
        print(f"  temperature {temp:g}: {metrics_text(metrics)}", flush=True)
    return result_record(
        args,
        counts,
        t_all,
        checkpoint=args.checkpoint,
        snapshot=entry,
        eval_per_class=ctx["eval_per_class"],
        temperatures=rows,
    )


def val_temperatures(args: argparse.Namespace) -> dict[str, Any]:
    """Per run: the val FID at each temperature and the choice ``ganaug train --temperatures``
    would make (the trainer's scorer on the run's own training images; no test data)."""
    import torch
    import yaml

    from ganaug.checkpoint import load_generator
    from ganaug.data import load_dataset
    from ganaug.training.snapshots import TrainScorer, score_temperatures

    torch.set_num_threads(1)
    t_all = time.perf_counter()
    rows = []
    for work in args.runs:
        path, entry = _pick_snapshot(work, args.checkpoint)
        seed = int((yaml.safe_load((work / "config.yaml").read_text()) or {}).get("seed", 0))
        scorer = TrainScorer(load_dataset(work / "train_data.npz"), torch.device("cpu"), seed=seed)
        generator = load_generator(path)
        scored = score_temperatures(scorer, generator, tuple(args.temperatures))  # as ganaug train does
        scores = scored.get("val_fid_by_temperature", {f"{scored['temperature']:g}": scored["val_fid"]})
        chosen = scored["temperature"]
        rows.append({"run": work.name, "step": entry["step"], "val_fid": scores, "chosen": chosen})
        print(f"  {work.name} step {entry['step']}: {scores} -> {chosen:g}", flush=True)
    command = "python benchmarks/quality_budget.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    return {
        "command": command,
        "checkpoint": args.checkpoint,
        "temperatures": args.temperatures,
        "runs": rows,
        "wall_seconds": round(time.perf_counter() - t_all, 1),
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }


def val_temperature_markdown(res: dict[str, Any]) -> str:
    temps = res["temperatures"]
    lines = [
        "# Sampling temperature chosen on the training data",
        "",
        f"`{res['command']}` ({res['wall_seconds']:.0f} s wall, {res['date']}). Val FID: EMA samples vs the "
        "run's own training images in the features of a small classifier trained on them (the score "
        "`ganaug train --temperatures` uses; no test data). Chosen: the lowest, 1.0 unless another is "
        "more than 5% lower.",
        "",
        "| run | step | " + " | ".join(f"T {t:g}" for t in temps) + " | chosen |",
        "|---|---:|" + "---:|" * len(temps) + "---:|",
    ]
    for r in res["runs"]:
        cells = " | ".join(f"{r['val_fid'][f'{t:g}']:.2f}" for t in temps)
        lines.append(f"| {r['run']} | {r['step']} | {cells} | {r['chosen']:g} |")
    return "\n".join([*lines, ""])


def metrics_text(m: dict[str, Any]) -> str:
    """One log line of a snapshot's scores."""
    return (
        f"FID {m['fid']:.2f} P {m['precision']:.2f} R {m['recall']:.2f} div {m['diversity_mean']:.2f} "
        f"(min {m['diversity_min']:.2f}) label fid. {m['label_fidelity_mean']:.2f} "
        f"CAS {m['cas_mean']:.3f} gap {m['cas_gap']:.3f}"
    )


def result_record(args: argparse.Namespace, counts: Any, t_all: float, **fields: Any) -> dict[str, Any]:
    """The JSON record of a ``run`` or ``temperatures`` command: its own ``fields`` between the
    common head (name, setting, command, counts) and tail (truncation, CAS steps, time, machine)."""
    return {
        "name": args.name,
        "setting": args.setting,
        "command": "python benchmarks/quality_budget.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "counts": counts,
        **fields,
        "truncation": args.truncation,
        "cas_steps": args.cas_steps,
        "wall_seconds": round(time.perf_counter() - t_all, 1),
        "machine": _machine(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }


def temperature_markdown(res: dict[str, Any]) -> str:
    snap = res["snapshot"]
    lines = [
        f"# Sampling temperature: {res['name']}, Fashion-MNIST {res['setting']}",
        "",
        f"`{res['command']}` ({res['wall_seconds'] / 60:.0f} min wall, {res['date']}). Snapshot "
        f"`{res['checkpoint']}`: step {snap['step']} ({snap.get('cpu_minutes', float('nan')):.1f} training "
        f"CPU minutes); latents `temperature * z`"
        + (f", z truncated at {res['truncation']:g} first" if res["truncation"] else "")
        + f"; {res['eval_per_class']} samples per class for FID/KID/P/R, CAS {res['cas_steps']} steps.",
        "",
        "| temperature | FID ↓ | KID ↓ | P | R | diversity (min) | label fid. | CAS % | CAS gap pts ↓ |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in res["temperatures"]:
        seeds = f" ({len(r['cas'])} seeds)" if len(r["cas"]) > 1 else ""
        lines.append(
            f"| {r['temperature']:g} | {r['fid']:.2f} | {r['kid']:.4f} | {r['precision']:.2f} "
            f"| {r['recall']:.2f} | {r['diversity_mean']:.2f} ({r['diversity_min']:.2f}) "
            f"| {r['label_fidelity_mean']:.2f} | {100 * r['cas_mean']:.1f}{seeds} "
            f"| {100 * r['cas_gap']:.1f} |"
        )
    best = min(res["temperatures"], key=lambda r: r["cas_gap"])
    lines += ["", f"Lowest CAS gap at temperature {best['temperature']:g}.", ""]
    return "\n".join(lines)


PANELS = [
    ("fid", "FID (lower is better)"),
    ("diversity_mean", "within-class diversity"),
    ("cas_gap", "CAS gap (pts, lower is better)"),
    ("recall", "recall"),
]


def plot_panels(curves: list[tuple[str, list[float], list[dict[str, Any]]]], xlabel: str, path: Path) -> None:
    """One PNG of four panels (:data:`PANELS`), one line per ``(label, x, rows)`` curve."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    for label, x, rows in curves:
        for ax, (key, title) in zip(axes, PANELS, strict=True):
            ax.plot(x, [100 * r[key] if key == "cas_gap" else r[key] for r in rows], marker="o", label=label)
            ax.set_title(title)
            ax.set_xlabel(xlabel)
    for ax in axes:
        ax.grid(alpha=0.3)
    if len(curves) > 1:
        axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_temperatures(res: dict[str, Any], path: Path) -> None:
    rows = res["temperatures"]
    plot_panels([(res["name"], [r["temperature"] for r in rows], rows)], "sampling temperature", path)


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from ganaug.snapshots import read_index

    torch.set_num_threads(1)
    t_all = time.perf_counter()
    train_full, test, subset, counts = load_data(args)
    training = None if args.eval_only else train_run(args, subset)
    index = read_index(args.work)
    if not index or not index["snapshots"]:
        raise SystemExit(f"{args.work}: no snapshots to evaluate")
    cas_seeds = list(range(args.cas_seeds))
    ctx = _eval_context(args, train_full, test, subset, cas_seeds)
    snapshots = []
    entries = [e for e in index["snapshots"] if (args.work / "weights" / e["file"]).is_file()]
    if len(entries) < len(index["snapshots"]):
        print(f"  warning: {len(index['snapshots']) - len(entries)} listed snapshot(s) missing", flush=True)
    for i, entry in enumerate(entries):
        last = i == len(entries) - 1
        seeds = cas_seeds if last else cas_seeds[:1]
        metrics = evaluate_snapshot(args.work / "weights" / entry["file"], counts, ctx, seeds, args.cas_steps)
        snapshots.append({**entry, **metrics})
        where = f"step {entry['step']:>6} cpu {entry['cpu_minutes']:6.2f} min"
        print(f"  {where}: {metrics_text(metrics)}", flush=True)
    return result_record(
        args,
        counts,
        t_all,
        time_budget_cpu_minutes=args.time_budget,
        training=training,
        best_by_val_fid=index.get("best"),
        snapshots=snapshots,
    )


# -- reports ---------------------------------------------------------------------------------------
def table(results: list[dict[str, Any]], all_snapshots: bool = True) -> str:
    lines = [
        "| recipe | step | CPU min | FID ↓ | KID ↓ | P | R | diversity (min) | label fid. | CAS % "
        "| CAS gap pts ↓ | val FID | T |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for res in results:
        snaps = res["snapshots"] if all_snapshots else res["snapshots"][-1:]
        for s in snaps:
            seeds = f" ({len(s['cas'])} seeds)" if len(s["cas"]) > 1 else ""
            lines.append(
                f"| {res['name']} | {s['step']} | {s['cpu_minutes']:.1f} | {s['fid']:.2f} "
                f"| {s['kid']:.4f} | {s['precision']:.2f} | {s['recall']:.2f} "
                f"| {s['diversity_mean']:.2f} ({s['diversity_min']:.2f}) | {s['label_fidelity_mean']:.2f} "
                f"| {100 * s['cas_mean']:.1f}{seeds} | {100 * s['cas_gap']:.1f} "
                f"| {s.get('val_fid', float('nan')):.1f} | {s.get('temperature', 1.0):g} |"
            )
    return "\n".join(lines)


def markdown(results: list[dict[str, Any]], title: str) -> str:
    parts = [f"# {title}", ""]
    for res in results:
        opts = (res.get("training") or {}).get("options", {})
        parts.append(
            f"- **{res['name']}** (`{res['command']}`): options {opts or 'defaults'}, "
            f"{res['wall_seconds'] / 60:.0f} min wall incl. evaluation, {res['date']}"
        )
    last = results[0]["snapshots"][-1]
    parts += [
        "",
        table(results),
        "",
        "FID/KID/precision/recall: feature space of the small classifier trained on the full Fashion-MNIST "
        f"training split, {EVAL_PER_CLASS} samples per class vs {EVAL_PER_CLASS} real test images per class. "
        "Diversity: within-class pairwise pixel distance over the real test images' (mean over classes, "
        "worst class in brackets). Label fidelity: share of samples the real-data classifier assigns to "
        f"their intended class. CAS: classifier trained on synthetic only ({results[0]['cas_steps']} steps), "
        f"tested on the 10k real test images; CAS gap = the same classifier trained on the real subset "
        f"(accuracy {100 * float(np.mean(last['real_acc'])):.1f}%) minus CAS. val FID: the run's own "
        "checkpoint-selection score (training images only).",
        "",
    ]
    for res in results:
        s = res["snapshots"][-1]
        conf = ", ".join(
            f"{c['intended']}→{c['predicted']} {c['share']:.2f}" for c in s["top_confusions"][:3]
        )
        parts.append(
            f"- {res['name']}, last snapshot: top confusions {conf}; "
            f"lowest diversity {min(s['diversity'], key=s['diversity'].get)} {s['diversity_min']:.2f}"
        )
    return "\n".join(parts) + "\n"


def plot(results: list[dict[str, Any]], path: Path) -> None:
    curves = [(r["name"], [s["cpu_minutes"] for s in r["snapshots"]], r["snapshots"]) for r in results]
    plot_panels(curves, "training CPU minutes", path)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True) if args.cmd == "compare" else args.out.mkdir(
        parents=True, exist_ok=True
    )
    if args.cmd == "compare":
        results = [json.loads(f.read_text()) for f in args.files]
        title = f"Generator quality per CPU-minute, Fashion-MNIST {results[0]['setting']}"
        args.out.with_suffix(".md").write_text(markdown(results, title))
        plot(results, args.out.with_suffix(".png"))
        print(table(results, all_snapshots=False))
        return
    if args.cmd == "val-temperatures":
        res = val_temperatures(args)
        stem = args.out / f"quality_val_temperature_{args.label}"
        stem.with_suffix(".json").write_text(json.dumps(res, indent=1))
        stem.with_suffix(".md").write_text(val_temperature_markdown(res))
        print(val_temperature_markdown(res))
        return
    if args.cmd == "temperatures":
        res = temperatures(args)
        stem = args.out / f"quality_temperature_{args.setting}_{args.name}"
        stem.with_suffix(".json").write_text(json.dumps(res, indent=1))
        stem.with_suffix(".md").write_text(temperature_markdown(res))
        plot_temperatures(res, stem.with_suffix(".png"))
        print(temperature_markdown(res))
        print(f"wrote {stem}.json/.md/.png")
        return
    result = run(args)
    stem = args.out / f"quality_budget_{args.setting}_{args.name}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1))
    stem.with_suffix(".md").write_text(markdown([result], f"Quality per CPU-minute: {args.name}"))
    plot([result], stem.with_suffix(".png"))
    grids = sorted((args.work / "samples").glob("step_*.png"))
    if grids:
        shutil.copyfile(grids[-1], f"{stem}_grid.png")
    print(table([result]))
    print(f"wrote {stem}.json/.md/.png")


if __name__ == "__main__":
    main()
