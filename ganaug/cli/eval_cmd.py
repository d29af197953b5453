"""``ganaug eval``: does augmentation help? ``uplift``, ``quality`` and ``cas``."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any

import click

from ganaug.cli.common import Number, config_option, echo, number, quiet_option, seed_option, warn
from ganaug.errors import UsageError
from ganaug.limits import BATCH, BIG, TRUNCATION, UNIT


def _parse_counts(value: str | None) -> list[int] | None:
    if value is None:
        return None
    parts = [p for p in value.replace("/", ",").replace(" ", ",").split(",") if p]
    try:
        return [int(p) for p in parts]
    except ValueError:
        raise UsageError(f"--imbalance: expected comma-separated integers, got {value!r}") from None


def parse_pairs(values: tuple[str, ...], flag: str) -> dict[str, Any]:
    """``("KEY=VALUE", ...)`` -> dict with YAML-parsed values (``lr_d=4e-4`` -> 0.0004)."""
    from ganaug.evaluate import yaml_value

    out: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{flag}: expected KEY=VALUE, got {item!r}")
        out[key.strip().replace("-", "_")] = yaml_value(raw)
    return out


def parse_strategy(value: str) -> Any:
    """A number (ratio of synthetic to real) when it parses as one, else the strategy name/mapping."""
    try:
        return float(value)
    except ValueError:
        return value


def _check_out(out: str | None, data: list[str | None]) -> None:
    """Eval adds files to --out (report.json, seed_*/...), never inside or around its data, where
    they would become images or classes (see ganaug.output_safety)."""
    from ganaug.output_safety import check_inputs, data_inputs

    if out:
        check_inputs(out, [i for d in data if d for i in data_inputs(d)])


def _load(path: str, image_size: int | None = None, channels: int | None = None) -> Any:
    from ganaug.data import load_dataset

    return load_dataset(path, image_size=image_size, channels=channels)


def _generator_labels(sampler: Any, classes: list[str]) -> Any:
    """Data class index -> generator class index (every data class must exist in the generator)."""
    import numpy as np

    index = {name: i for i, name in enumerate(sampler.classes)}
    missing = [c for c in classes if c not in index]
    if missing:
        raise UsageError(f"the generator has no class {', '.join(map(repr, missing[:5]))}")
    return np.array([index[c] for c in classes], dtype=np.int64)


def _sample(sampler: Any, classes: list[str], n_per_class: int, seed: int) -> tuple[Any, Any]:
    import numpy as np

    to_gen = _generator_labels(sampler, classes)
    labels = np.repeat(np.arange(len(classes), dtype=np.int64), n_per_class)
    return sampler.generate(to_gen[labels], seed=seed), labels


generator_option = click.option(
    "--generator",
    "-g",
    required=True,
    type=click.Path(path_type=str),
    help="Generator: run dir, .safetensors or .onnx.",
)


@click.group("eval")
def eval_group() -> None:
    """Measure whether GAN samples help: uplift, sample quality (FID/KID/PR) and CAS.

    \b
    Examples:
      ganaug eval uplift train.npz --test test.npz --per-class 100 --seeds 3 --out eval/
      ganaug eval quality --generator runs/exp --data test.npz --train train.npz
      ganaug eval cas --generator g.onnx --data train.npz --test test.npz --n-per-class 500
    """


@eval_group.command("uplift")
@click.argument("data", type=click.Path(path_type=str))
@click.option(
    "--test",
    "test",
    default=None,
    type=click.Path(path_type=str),
    help="Real test split (required unless --tune, which then only chooses a policy).",
)
@click.option(
    "--per-class", "per_class_n", type=number(int, 1, BIG), default=None, help="Real images drawn per class."
)
@click.option(
    "--imbalance", default=None, help="Real images per class instead, e.g. 4166,73,139 (one per class)."
)
@click.option(
    "--seeds",
    type=number(int, 1, 1000),
    default=3,
    show_default=True,
    help="Number of seeds (paired repeats).",
)
@click.option("--out", "-o", required=True, type=click.Path(path_type=str), help="Report folder.")
@click.option(
    "--generator",
    "-g",
    default=None,
    type=click.Path(path_type=str),
    help="Reuse this generator (run dir, .safetensors or .onnx) instead of training one per seed; "
    "{seed} in the path picks one per seed.",
)
@click.option(
    "--steps",
    type=number(int, 1, BIG),
    default=None,
    help="GAN training steps (ganaug train default if unset).",
)
@click.option("--arch", default=None, help="GAN architecture (dcgan, resnet, mlp).")
@click.option("--batch-size", type=number(int, 2, 1 << 16), default=None, help="GAN batch size.")
@click.option(
    "--gan-option",
    "gan_option",
    multiple=True,
    metavar="KEY=VALUE",
    help="Any other 'ganaug train' option, e.g. --gan-option lr_d=4e-4 (repeatable).",
)
@click.option(
    "--classifier-steps",
    type=number(int, 1, BIG),
    default=2000,
    show_default=True,
    help="Optimisation steps of every classifier arm.",
)
@click.option("--classifier-batch-size", type=Number(BATCH), default=128, show_default=True)
@click.option("--classifier-lr", type=number(float, 0, 10, low_open=True), default=2e-3, show_default=True)
@click.option(
    "--hflip/--no-hflip",
    default=False,
    show_default=True,
    help="Random horizontal flips in the classical augmentation (mirror-symmetric data only).",
)
@click.option(
    "--shift",
    type=number(int, 0, 1024),
    default=None,
    help="Maximum random shift in pixels (default: size/8).",
)
@click.option("--amp", is_flag=True, help="bf16 autocast for the classifiers (CUDA, or CPUs with bf16).")
@click.option(
    "--strategy",
    default="1.0",
    show_default=True,
    help="Synthetic images per class, as for 'ganaug augment' (ratio, 'not majority', ...).",
)
@click.option(
    "--max-synthetic-ratio", type=number(float, 0, 1e6), default=None, help="Cap synthetic per real image."
)
@click.option(
    "--synthetic-weight",
    type=number(float, 0, 1e6),
    default=1.0,
    show_default=True,
    help="Loss weight of each synthetic sample (real: 1).",
)
@click.option(
    "--synthetic-share",
    type=Number(UNIT),
    default=None,
    help="Fraction of every batch drawn from synthetic images (default: by count).",
)
@click.option(
    "--balance",
    is_flag=True,
    help="Class-balanced batches (every class drawn equally often); with --strategy 0 the classical "
    "oversampling baseline.",
)
@click.option(
    "--filter/--no-filter",
    "use_filter",
    default=False,
    show_default=True,
    help="Confidence filter: the real-only classifier must give the intended class --min-confidence.",
)
@click.option("--min-confidence", type=Number(UNIT), default=0.9, show_default=True)
@click.option(
    "--curriculum",
    type=click.Choice(["none", "pretrain"]),
    default="none",
    show_default=True,
    help="pretrain: synthetic-only pre-training, then fine-tuning on the real images.",
)
@click.option("--pretrain-fraction", type=Number(UNIT), default=0.5, show_default=True)
@click.option("--truncation", type=Number(TRUNCATION), default=None, help="Latent truncation for sampling.")
@click.option(
    "--loss",
    type=click.Choice(["ce", "balanced_softmax"]),
    default="ce",
    show_default=True,
    help="balanced_softmax: the rebalancing loss (logit adjustment by the batch class prior).",
)
@click.option(
    "--soft-labels",
    is_flag=True,
    help="Train synthetic images on the teacher's class probabilities; adds a distillation control arm.",
)
@click.option("--distill-real", is_flag=True, help="Also distil the real images from the teacher.")
@click.option("--fresh", is_flag=True, help="A fresh synthetic pool every epoch instead of one fixed set.")
@click.option(
    "--teacher",
    default=None,
    type=click.Path(path_type=str),
    help="Teacher for soft labels / distillation: ONNX or ganaug .safetensors classifier ({seed} "
    "allowed; default: the real-only arm's classifier).",
)
@click.option(
    "--tune",
    is_flag=True,
    help="Choose the policy on a validation split of each seed's real subset (the --policy arms, "
    "else a default grid, plus the no-GAN baselines); adds arm 'tuned', a recommendation and "
    "tuned_policy.json (for 'ganaug augment --policy-file').",
)
@click.option(
    "--tune-fraction",
    type=number(float, 0, 1, low_open=True),
    default=0.2,
    show_default=True,
    help="Validation share of each seed's subset with --tune.",
)
@click.option("--tune-test-all", is_flag=True, help="With --tune, also test every candidate.")
@click.option(
    "--threads",
    type=number(int, 1, 1024),
    default=None,
    help="torch threads (default: half the usable cores, 1..8; OMP_NUM_THREADS if set).",
)
@click.option(
    "--policy",
    "policies",
    multiple=True,
    metavar="SPEC",
    help="A mixing policy arm as key=value pairs (repeatable; replaces the single-policy flags), "
    "e.g. 'name=filtered,strategy=1,filter=true,min_confidence=0.9'.",
)
@click.option(
    "--quality/--no-quality",
    default=True,
    show_default=True,
    help="FID/KID/PR and memorisation of each seed's generator.",
)
@click.option("--quality-per-class", type=number(int, 1, BIG), default=500, show_default=True)
@click.option(
    "--feature-steps",
    type=number(int, 1, BIG),
    default=3000,
    show_default=True,
    help="Training steps of the (cached) domain feature extractor.",
)
@click.option(
    "--image-size", type=number(int, 1, 1024), default=None, help="Resize DATA and TEST to this size."
)
@click.option("--channels", type=click.Choice(["1", "3"]), default=None)
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
@click.option("--json", "as_json", is_flag=True, help="Print report.json to stdout at the end.")
@seed_option()
@quiet_option
@config_option
def uplift_cmd(
    data: str,
    test: str,
    per_class_n: int | None,
    imbalance: str | None,
    seeds: int,
    out: str,
    generator: str | None,
    steps: int | None,
    arch: str | None,
    batch_size: int | None,
    gan_option: tuple[str, ...],
    classifier_steps: int,
    classifier_batch_size: int,
    classifier_lr: float,
    hflip: bool,
    shift: int | None,
    amp: bool,
    strategy: str,
    max_synthetic_ratio: float | None,
    synthetic_weight: float,
    synthetic_share: float | None,
    balance: bool,
    use_filter: bool,
    min_confidence: float,
    curriculum: str,
    pretrain_fraction: float,
    truncation: float | None,
    loss: str,
    soft_labels: bool,
    distill_real: bool,
    fresh: bool,
    teacher: str | None,
    tune: bool,
    tune_fraction: float,
    tune_test_all: bool,
    threads: int | None,
    policies: tuple[str, ...],
    quality: bool,
    quality_per_class: int,
    feature_steps: int,
    image_size: int | None,
    channels: str | None,
    device: str,
    as_json: bool,
    seed: int,
    quiet: bool,
) -> None:
    """Does GAN augmentation help a classifier on DATA? A paired experiment over seeds.

    For each seed: draw --per-class N real images per class (or --imbalance counts) from DATA, train
    a GAN on exactly those (or reuse --generator), then train the fixed small CNN (a) on the real
    images with classical augmentation and (b) on the real images plus GAN samples made by the augment
    pipeline under each mixing policy, same augmentation and steps; test both on TEST. OUT gets
    report.json, report.md and plots: accuracy and balanced accuracy per arm (mean ± std), the paired
    difference with a 95% interval, per-class accuracy, sample quality and wall times.

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
    """
    from ganaug.evaluate import MixPolicy, uplift

    if (per_class_n is None) == (imbalance is None):
        raise UsageError("give exactly one of --per-class N and --imbalance COUNTS")
    if test is None and not tune:
        raise UsageError("missing option --test (only --tune may run without a test split)")
    ch = int(channels) if channels else None
    _check_out(out, [data, test])
    train_ds = _load(data, image_size, ch)
    test_ds = None if test is None else _load(test, train_ds.image_size, train_ds.channels)
    gan_options = parse_pairs(gan_option, "--gan-option")
    for key, value in (("steps", steps), ("arch", arch), ("batch_size", batch_size)):
        if value is not None:
            gan_options[key] = value
    if generator is not None and gan_options:
        warn("--generator given: the GAN training options are ignored")
    if policies:
        mix = [MixPolicy.parse(spec) for spec in policies]
    elif tune:
        mix = []  # the default grid
    else:
        mix = [
            MixPolicy(
                name="gan",
                strategy=parse_strategy(strategy),
                max_synthetic_ratio=max_synthetic_ratio,
                synthetic_weight=synthetic_weight,
                synthetic_share=synthetic_share,
                balance=balance,
                filter=use_filter,
                min_confidence=min_confidence,
                curriculum=curriculum,
                pretrain_fraction=pretrain_fraction,
                truncation=truncation,
                loss=loss,
                soft_labels=soft_labels,
                distill_real=distill_real,
                fresh=fresh,
            )
        ]
    report = uplift(
        train_ds,
        test_ds,
        per_class_n=per_class_n,
        imbalance=_parse_counts(imbalance),
        seeds=list(range(seed, seed + seeds)),
        out_dir=out,
        generator=generator,
        gan_options=gan_options,
        policies=mix,
        classifier_steps=classifier_steps,
        classifier_batch_size=classifier_batch_size,
        classifier_lr=classifier_lr,
        hflip=hflip,
        shift=shift,
        amp=amp,
        quality=quality,
        quality_per_class=quality_per_class,
        feature_steps=feature_steps,
        device=device,
        progress=not quiet,
        echo=lambda m: echo(m, quiet),
        warn=warn,
        command="ganaug " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        teacher=teacher,
        tune=tune,
        tune_fraction=tune_fraction,
        tune_grid=mix if (tune and policies) else None,
        tune_test_all=tune_test_all,
        threads=threads,
    )
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(summary_lines(report))
    echo(f"report: {Path(out) / 'report.md'}", quiet)


def summary_lines(report: dict[str, Any]) -> str:
    """The accuracy table of an uplift report as plain text (and the --tune recommendation)."""
    if report.get("arms") is None:
        return f"recommendation: {report['recommendation']}"
    rows = [f"{'arm':14s} {'accuracy %':>16s} {'balanced %':>16s} {'Δ acc (95% CI)':>26s}"]
    for arm in report["arms"]:
        acc = report["summary"][arm]["accuracy"]
        bal = report["summary"][arm]["balanced_accuracy"]
        diff = ""
        if arm != "real":
            d = report["paired"][arm]["accuracy"]
            ci = "" if d["ci95"] is None else f" [{d['ci95'][0]:+.2f}, {d['ci95'][1]:+.2f}]"
            diff = f"{d['mean']:+.2f}{ci}"
        rows.append(
            f"{arm:14s} {acc['mean']:8.2f} ± {acc['std']:5.2f} {bal['mean']:8.2f} ± {bal['std']:5.2f} "
            f"{diff:>26s}"
        )
    for arm, ctl in report.get("controls", {}).items():
        d = report["paired_control"][arm]["accuracy"]
        ci = "" if d["ci95"] is None else f" [{d['ci95'][0]:+.2f}, {d['ci95'][1]:+.2f}]"
        rows.append(f"GAN contribution: {arm} - {ctl} = {d['mean']:+.2f}{ci} accuracy points")
    if report.get("recommendation"):
        rows.append(f"recommendation: {report['recommendation']}")
    return "\n".join(rows)


@eval_group.command("quality")
@generator_option
@click.option(
    "--data",
    "data",
    required=True,
    type=click.Path(path_type=str),
    help="Real reference images (best: held out, never seen by the GAN).",
)
@click.option(
    "--train",
    "train_data",
    default=None,
    type=click.Path(path_type=str),
    help="The GAN's training images: feature extractor and memorisation check (default: --data).",
)
@click.option(
    "--n-per-class",
    type=number(int, 1, BIG),
    default=500,
    show_default=True,
    help="Synthetic images per class.",
)
@click.option(
    "--feature-steps",
    type=number(int, 1, BIG),
    default=3000,
    show_default=True,
    help="Training steps of the (cached) domain feature extractor.",
)
@click.option(
    "--out",
    "-o",
    default=None,
    type=click.Path(path_type=str),
    help="Write quality.json, quality.md and plots here.",
)
@click.option("--device", default="cpu", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@seed_option()
@quiet_option
@config_option
def quality_cmd(
    generator: str,
    data: str,
    train_data: str | None,
    n_per_class: int,
    feature_steps: int,
    out: str | None,
    device: str,
    as_json: bool,
    seed: int,
    quiet: bool,
) -> None:
    """Sample quality of a generator: FID, KID, precision/recall, memorisation.

    Features come from ganaug's small CNN trained on the real training images (cached per dataset
    hash), overall and per class.

    \b
    Example:
      ganaug eval quality -g runs/exp --data test.npz --train train.npz --n-per-class 500 --out q/
    """
    from ganaug.classifier import get_feature_extractor
    from ganaug.evaluate import quality_report
    from ganaug.fileio import atomic_write_json, atomic_write_text
    from ganaug.report import plot_fid_per_class, quality_markdown
    from ganaug.sampling import open_sampler

    _check_out(out, [data, train_data])
    sampler = open_sampler(generator, device=device)
    h, _w, c = sampler.image_shape
    real = _load(data, h, c)
    train_ds = _load(train_data, h, c) if train_data else None
    echo("domain feature extractor (cached per dataset)", quiet)
    extractor = get_feature_extractor(
        train_ds or real, steps=feature_steps, device=device, progress=not quiet
    )
    images, labels = _sample(sampler, list(real.classes), n_per_class, seed)
    report = quality_report(real, (images, labels), extractor, train=train_ds, seed=seed)
    report["generator"] = str(generator)
    report["classes"] = list(real.classes)
    if out:
        atomic_write_json(Path(out) / "quality.json", report)
        atomic_write_text(Path(out) / "quality.md", quality_markdown(report, real.classes))
        plot_fid_per_class(
            {k: v["fid"] for k, v in report["per_class"].items()},
            real.classes,
            Path(out) / "fid_per_class.png",
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
        click.echo(f"  {real.classes[int(k)]:20s} FID {fid_s}")


@eval_group.command("cas")
@generator_option
@click.option(
    "--data",
    "data",
    required=True,
    type=click.Path(path_type=str),
    help="Real training images: the baseline classifier draws as many per class from here.",
)
@click.option("--test", "test", required=True, type=click.Path(path_type=str), help="Real test split.")
@click.option(
    "--n-per-class",
    type=number(int, 1, BIG),
    default=500,
    show_default=True,
    help="Synthetic images per class.",
)
@click.option("--classifier-steps", type=number(int, 1, BIG), default=2000, show_default=True)
@click.option("--hflip/--no-hflip", default=False, show_default=True)
@click.option("--out", "-o", default=None, type=click.Path(path_type=str), help="Write cas.json here.")
@click.option("--device", default="cpu", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@seed_option()
@quiet_option
@config_option
def cas_cmd(
    generator: str,
    data: str,
    test: str,
    n_per_class: int,
    classifier_steps: int,
    hflip: bool,
    out: str | None,
    device: str,
    as_json: bool,
    seed: int,
    quiet: bool,
) -> None:
    """Classification accuracy score: train on synthetic images only, test on real ones.

    Reported beside the same classifier trained on as many real images per class from --data.

    \b
    Example:
      ganaug eval cas -g generator.onnx --data train.npz --test test.npz --n-per-class 500
    """
    from ganaug.evaluate import cas
    from ganaug.fileio import atomic_write_json
    from ganaug.sampling import open_sampler

    _check_out(out, [data, test])
    sampler = open_sampler(generator, device=device)
    h, _w, c = sampler.image_shape
    real = _load(data, h, c)
    test_ds = _load(test, h, c)
    if list(test_ds.classes) != list(real.classes):
        raise UsageError("--data and --test must have the same classes")
    images, labels = _sample(sampler, list(real.classes), n_per_class, seed)
    result = cas(
        (images, labels),
        test_ds,
        real_train=real,
        num_classes=len(real.classes),
        steps=classifier_steps,
        seed=seed,
        hflip=hflip,
        device=device,
        progress=not quiet,
    )
    result["generator"] = str(generator)
    if out:
        atomic_write_json(Path(out) / "cas.json", result)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    line = f"CAS (synthetic only): {100 * result['synthetic_only']['accuracy']:.2f}%"
    if "real" in result:
        line += f"   real ({result['real']['n_train']} images): {100 * result['real']['accuracy']:.2f}%"
    click.echo(line)


__all__ = ["eval_group"]
