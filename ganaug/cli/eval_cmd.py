"""``ganaug eval``: does augmentation help? ``uplift`` (and ``merge`` of its per-seed parts),
``quality`` and ``cas``.

Each command is "load spec, call library, print": the options come from the specs in
:mod:`ganaug.eval.spec` (:func:`ganaug.specs.click_options`), the work from :mod:`ganaug.eval`.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any

import click

from ganaug.cli.common import echo, progress_to_stderr, quiet_option, warn
from ganaug.eval.spec import CasSpec, QualitySpec, UpliftSpec, parse_pairs, parse_strategy
from ganaug.specs import click_options, spec_from_params

json_option = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")


@click.group("eval")
def eval_group() -> None:
    """Measure whether GAN samples help: uplift, sample quality (FID/KID/PR) and CAS.

    \b
    Examples:
      ganaug eval uplift train.npz --test test.npz --per-class 100 --seeds 3 --out eval/
      ganaug eval merge eval/seed0 eval/seed1 --out eval/both   # seeds run apart, one report
      ganaug eval quality --generator runs/exp --data test.npz --train train.npz
      ganaug eval cas --generator g.onnx --data train.npz --test test.npz --n-per-class 500
    """


@eval_group.command("uplift")
@click_options(UpliftSpec)
@json_option
@quiet_option
def uplift_cmd(as_json: bool, quiet: bool, **params: Any) -> None:
    """Does GAN augmentation help a classifier on DATA? A paired experiment over seeds.

    For each seed: draw --per-class N real images per class (or --imbalance counts; neither: all of
    DATA as it is) from DATA, train
    a GAN on exactly those (or reuse --generator), then train the fixed small CNN (a) on the real
    images with classical augmentation and (b) on the real images plus GAN samples made by the augment
    pipeline under each mixing policy, same augmentation and steps; test both on TEST. OUT gets
    report.json, report.md and plots: accuracy and balanced accuracy per arm (mean ± std), the paired
    difference with a 95% interval, per-class accuracy, sample quality and wall times; and
    config.yaml, the resolved options (--config OUT/config.yaml repeats the run).

    \b
    Examples:
      ganaug eval uplift fmnist/train-images-idx3-ubyte.gz \\
          --test fmnist/t10k-images-idx3-ubyte.gz --per-class 100 --seeds 3 \\
          --steps 3000 --hflip --out eval/fmnist100
      ganaug eval uplift train/ --test test/ --per-class 20 --seeds 3 -g runs/exp \\
          --policy name=plain,strategy=1 --policy name=filtered,strategy=1,filter=true --out eval/x
      ganaug eval uplift train.npz --test test.npz --imbalance 500,20,40 \\
          --strategy 'not majority' --out eval/imb
      ganaug eval uplift train.npz --test test.npz --per-class 100 -g 'runs/gan_{seed}' \\
          --policy name=soft,strategy=4,synthetic_share=0.25,soft_labels=true,fresh=true --out eval/s
      ganaug eval uplift train.npz --test test.npz --per-class 100 -g runs/exp --tune --out eval/t
      ganaug eval uplift my-images/ --test my-test/ --tune --out eval/mine   # all images, as they are
      ganaug eval uplift --config eval/x/config.yaml --out eval/x2
    """
    from ganaug.eval.uplift import run_uplift

    spec = spec_from_params(UpliftSpec, params)
    with progress_to_stderr(as_json):
        report = run_uplift(
            spec,
            progress=not quiet,
            echo=lambda m: echo(m, quiet),
            warn=warn,
            command="ganaug " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        )
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(summary_lines(report))
    echo(f"report: {Path(spec.out or '.') / 'report.md'}", quiet)


def _ci(d: dict[str, Any]) -> str:
    return "" if d["ci95"] is None else f" [{d['ci95'][0]:+.2f}, {d['ci95'][1]:+.2f}]"


def summary_lines(report: dict[str, Any]) -> str:
    """The accuracy table of an uplift report as plain text (and the --tune recommendation)."""
    if report.get("arms") is None:
        return f"recommendation: {report['recommendation']}"
    w = max(14, *(len(a) for a in report["arms"]))  # the arm column fits the longest policy name
    rows = [f"{'arm':{w}s} {'accuracy %':>16s} {'balanced %':>16s} {'Δ acc (95% CI)':>26s}"]
    for arm in report["arms"]:
        acc = report["summary"][arm]["accuracy"]
        bal = report["summary"][arm]["balanced_accuracy"]
        diff = ""
        if arm != "real":
            d = report["paired"][arm]["accuracy"]
            diff = f"{d['mean']:+.2f}{_ci(d)}"
        rows.append(
            f"{arm:{w}s} {acc['mean']:8.2f} ± {acc['std']:5.2f} {bal['mean']:8.2f} ± {bal['std']:5.2f} "
            f"{diff:>26s}"
        )
    for arm, ctl in report.get("controls", {}).items():
        d = report["paired_control"][arm]["accuracy"]
        rows.append(f"GAN contribution: {arm} - {ctl} = {d['mean']:+.2f}{_ci(d)} accuracy points")
    best = report.get("best_baseline")
    if best:
        arm, d = max(((a, p["accuracy"]) for a, p in best["paired"].items()), key=lambda x: x[1]["mean"])
        rows.append(
            f"best GAN arm vs the strongest no-GAN arm: {arm} - {best['arm']} = {d['mean']:+.2f}{_ci(d)}"
            " accuracy points"
        )
    if report.get("recommendation"):
        rows.append(f"recommendation: {report['recommendation']}")
    return "\n".join(rows)


@eval_group.command("merge")
@click.argument("reports", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--out",
    "-o",
    required=True,
    type=click.Path(path_type=Path),
    help="Folder for the merged report.json, report.md and plot (not inside any merged report's folder).",
)
@json_option
@quiet_option
def merge_cmd(reports: tuple[Path, ...], out: Path, as_json: bool, quiet: bool) -> None:
    """Merge uplift reports of the same experiment run on different seeds into one report.

    Run the seeds of one experiment as separate processes or on separate machines, then merge: the
    summary and the paired 95% intervals are recomputed over all seeds. REPORTS are eval uplift
    --out folders (or their report.json); every setting but the seeds (and threads and device)
    must match, and no seed may appear twice.

    \b
    Example:
      ganaug eval uplift --config x.yaml --seed 0 --seeds 1 --out eval/s0   # machine 1
      ganaug eval uplift --config x.yaml --seed 1 --seeds 1 --out eval/s1   # machine 2
      ganaug eval merge eval/s0 eval/s1 --out eval/merged
    """
    from ganaug.eval.merge import run_merge

    command = "ganaug " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    with progress_to_stderr(as_json):
        report = run_merge(list(reports), out, command=command)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(summary_lines(report))
    echo(f"report: {out / 'report.md'}", quiet)


def _require_inputs(params: dict[str, Any], *data_keys: str) -> None:
    """The generator and data paths must exist: answered before torch is imported (fast)."""
    from ganaug.cli.preflight import require_data, require_generator

    require_generator(params.get("generator"))
    for key in data_keys:
        require_data(params.get(key))


@eval_group.command("quality")
@click_options(QualitySpec)
@json_option
@quiet_option
def quality_cmd(as_json: bool, quiet: bool, **params: Any) -> None:
    """Sample quality of a generator: FID, KID, precision/recall, memorisation.

    Features come from ganaug's small CNN trained on the real training images (cached per dataset
    hash), overall and per class.

    \b
    Example:
      ganaug eval quality -g runs/exp --data test.npz --train train.npz --n-per-class 500 --out q/
    """
    _require_inputs(params, "data", "train")
    from ganaug.eval.quality import run_quality

    with progress_to_stderr(as_json):
        report = run_quality(
            spec_from_params(QualitySpec, params), progress=not quiet, echo=lambda m: echo(m, quiet)
        )
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    ref = report.get("real_vs_real") or {}
    fid_ref = f" (real–real {ref['fid']:.2f})" if ref else ""
    kid_ref = f" (real–real {ref['kid']:.4f})" if ref else ""
    click.echo(
        f"FID {report['fid']:.2f}{fid_ref}  KID {report['kid']:.4f}{kid_ref}  "
        f"precision {report['precision']:.3f}  recall {report['recall']:.3f}"
    )
    if ref:
        echo("real–real: the same metric between two random halves of --data (the scale to read by)", quiet)
    for k, v in report["per_class"].items():
        fid_s = "–" if v["fid"] is None else f"{v['fid']:.2f}"
        click.echo(f"  {report['classes'][int(k)]:20s} FID {fid_s}")


@eval_group.command("cas")
@click_options(CasSpec)
@json_option
@quiet_option
def cas_cmd(as_json: bool, quiet: bool, **params: Any) -> None:
    """Classification accuracy score: train on synthetic images only, test on real ones.

    Reported beside the same classifier trained on as many real images per class from --data.

    \b
    Example:
      ganaug eval cas -g generator.onnx --data train.npz --test test.npz --n-per-class 500
    """
    _require_inputs(params, "data", "test")
    from ganaug.eval.cas import run_cas

    with progress_to_stderr(as_json):
        result = run_cas(spec_from_params(CasSpec, params), progress=not quiet)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    line = f"CAS (synthetic only): {100 * result['synthetic_only']['accuracy']:.2f}%"
    if "real" in result:
        line += f"   real ({result['real']['n_train']} images): {100 * result['real']['accuracy']:.2f}%"
    click.echo(line)


__all__ = ["eval_group", "parse_pairs", "parse_strategy", "summary_lines"]
