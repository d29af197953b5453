"""``ganaug demo``: ganaug's main job, end to end, on data that ships inside the package.

>>> result = run_demo("runs/demo", quick=True)          # doctest: +SKIP
>>> result.files["report"]                              # doctest: +SKIP
PosixPath('runs/demo/report.md')

The embedded data is a fixed Fashion-MNIST subset (250 training and 100 test images per class,
MIT, Copyright 2017 Zalando SE; made by ``scripts/make_embedded_dataset.py``), read with
:func:`embedded_dataset`. The demo

1. makes an artificially imbalanced copy of the training images (:data:`DEMO_COUNTS` per class),
2. trains a small conditional GAN on exactly that copy (:func:`ganaug.training.train`),
3. exports it to ONNX (:func:`ganaug.export.export_generator`) and draws a per-class sample grid with
   onnxruntime,
4. measures the uplift with :func:`ganaug.eval.uplift.uplift`: the fixed small CNN trained on the real
   copy with classical augmentation (shifts, flips) against the same plus GAN samples that balance the
   classes, filtered by confidence and near-duplicates, same steps, tested on the real test split,
5. augments the copy through the plugin pipeline (:func:`ganaug.augment.augment_dataset`): strategy
   ``"not majority"``, an albumentations pipeline on the synthetic images, the confidence filter
   (the classifier of step 4) and the near-duplicate filter, written as class folders,
6. writes ``report.md`` and ``report.html`` (sample grid, loss curves, augmentation counts, result
   table) and ``demo.json``.

``quick=True`` shrinks every stage (an MLP GAN, one classifier seed, few steps) so it ends in
about a minute on two CPU cores: its numbers are a smoke test, not evidence.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ganaug.data import ImageDataset
from ganaug.data.example import DEMO_COUNTS, embedded_dataset, imbalanced_copy
from ganaug.errors import UsageError
from ganaug.fileio import atomic_path, atomic_write_json, atomic_write_text
from ganaug.output_safety import check_output, write_marker
from ganaug.report import Block, fmt_delta, fmt_num, fmt_pm, render_html, render_markdown

__all__ = [
    "DEFAULT",
    "DEMO_COUNTS",
    "QUICK",
    "DemoResult",
    "DemoSettings",
    "embedded_dataset",
    "imbalanced_copy",
    "next_free_dir",
    "run_demo",
    "write_pipeline",
]

GRID_COLUMNS = 8


@dataclass(frozen=True)
class DemoSettings:
    """The size of every stage of the demo."""

    name: str
    gan: dict[str, Any]
    classifier_steps: int
    seeds: int
    classifier_batch_size: int = 128
    quality: bool = False
    feature_steps: int = 1000
    min_confidence: float = 0.5
    note: str = ""


QUICK = DemoSettings(
    name="quick",
    gan={"arch": "mlp", "steps": 600, "g_width": 256, "d_width": 256, "batch_size": 64},
    classifier_steps=150,
    seeds=1,
    classifier_batch_size=64,
    note="smoke test: an MLP GAN trained for seconds, one classifier seed, 150 classifier steps",
)
DEFAULT = DemoSettings(
    name="default",
    gan={"arch": "dcgan", "steps": 1500, "g_width": 16, "d_width": 16, "batch_size": 64},
    classifier_steps=600,
    seeds=3,
    note="small demo: a small DCGAN trained for minutes, three classifier seeds on one data draw",
)


# -- data ------------------------------------------------------------------------------------------
def save_npz(path: Path, ds: ImageDataset) -> Path:
    """Write ``ds`` as an NPZ that ``ganaug`` commands read (``images``, ``labels``, ``classes``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, images=ds.images, labels=ds.labels, classes=np.array(ds.classes))
    return path


def write_pipeline(path: Path) -> Path:
    """The demo's albumentations pipeline (flip, small shift/rotation, brightness), saved with ``A.save``."""
    import albumentations as A

    pipeline = A.Compose(
        [
            A.HorizontalFlip(p=0.5),
            A.Affine(translate_percent=(-0.06, 0.06), rotate=(-8, 8), p=0.5),
            A.RandomBrightnessContrast(brightness_limit=0.1, contrast_limit=0.1, p=0.3),
        ]
    )
    with atomic_path(path) as tmp:
        A.save(pipeline, str(tmp), data_format="yaml")
    return path


def next_free_dir(base: str | Path) -> Path:
    """``base`` if it is absent or empty, else ``base2``, ``base3``, ... (like Ultralytics run dirs)."""
    base = Path(base)
    candidate, n = base, 1
    while candidate.exists() and (not candidate.is_dir() or any(candidate.iterdir())):
        n += 1
        candidate = base.with_name(f"{base.name}{n}")
    return candidate


# -- the run ---------------------------------------------------------------------------------------
@dataclass
class DemoResult:
    """What :func:`run_demo` made: paths, per-stage seconds and the headline numbers."""

    out: Path
    settings: DemoSettings
    seed: int = 0
    files: dict[str, Path] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    headline: dict[str, Any] = field(default_factory=dict)
    diversity: dict[str, float] = field(default_factory=dict)
    wall_seconds: float = 0.0


class _Clock:
    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say
        self.seconds: dict[str, float] = {}
        self.index = 0

    def stage(self, key: str, message: str) -> _Stage:
        self.index += 1
        self.say(f"[{self.index}/6] {message}")
        return _Stage(self, key)


class _Stage:
    def __init__(self, clock: _Clock, key: str) -> None:
        self.clock, self.key = clock, key

    def __enter__(self) -> None:
        self.t0 = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.clock.seconds[self.key] = round(time.perf_counter() - self.t0, 1)


def run_demo(
    out: str | Path,
    *,
    quick: bool = False,
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = False,
    echo: Callable[[str], None] | None = None,
    warn: Callable[[str], None] | None = None,
) -> DemoResult:
    """Run the demo into ``out`` (see the module docstring); return where everything is.

    Refuses a non-empty ``out`` unless ``overwrite`` and ``out`` holds an earlier demo (its
    marker file, see :mod:`ganaug.output_safety`). ``progress`` shows progress bars.
    """
    say = echo or (lambda _m: None)
    complain = warn or (lambda _m: None)
    settings = QUICK if quick else DEFAULT
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise UsageError(f"--seed must be an integer >= 0, got {seed!r}")
    out = Path(out)
    check_output(out, overwrite=overwrite, kind="demo")  # --overwrite replaces only an earlier demo

    out.mkdir(parents=True, exist_ok=True)
    write_marker(out, "demo")
    t_start = time.perf_counter()
    clock = _Clock(say)
    files: dict[str, Path] = {}

    real, test = _stage_data(clock, out, seed, files, say)
    run = _stage_gan(clock, out, settings, seed, real, progress)
    files["run_dir"] = Path(run.run_dir)
    files["loss_curves"] = Path(run.run_dir) / "results.png"
    exported, diversity = _stage_export(clock, out, seed, run, real, files)
    seeds = list(range(seed, seed + settings.seeds))
    report = _stage_uplift(clock, out, settings, seeds, real, test, exported.path, progress, say, complain)
    files["eval_report"] = out / "eval" / "report.md"
    summary = _stage_augment(clock, out, settings, seeds, real, exported.path, progress, complain, files)

    with clock.stage("report", "writing the report"):
        result = DemoResult(out=out, settings=settings, seed=seed, files=files, seconds=clock.seconds)
        result.headline = _headline(report)
        result.headline["diversity_median"] = float(np.median(list(diversity.values())))
        result.diversity = diversity
        result.wall_seconds = round(time.perf_counter() - t_start, 1)
        doc = _report_blocks(result, run, exported, summary, report, real, test)
        files["report"] = out / "report.md"
        files["report_html"] = out / "report.html"
        atomic_write_text(files["report"], render_markdown(doc))
        atomic_write_text(files["report_html"], render_html(doc, title="ganaug demo report"))
        files["summary"] = out / "demo.json"
    result.seconds = dict(clock.seconds)
    result.wall_seconds = round(time.perf_counter() - t_start, 1)
    atomic_write_json(files["summary"], _summary_json(result, report, summary, exported))
    return result


# -- the stages ------------------------------------------------------------------------------------
def _stage_data(
    clock: _Clock, out: Path, seed: int, files: dict[str, Path], say: Callable[[str], None]
) -> tuple[ImageDataset, ImageDataset]:
    with clock.stage("data", "data: the embedded Fashion-MNIST subset, made imbalanced"):
        train_full = embedded_dataset("train")
        test = embedded_dataset("test")
        real = imbalanced_copy(train_full, DEMO_COUNTS, seed=seed)
        files["data"] = save_npz(out / "data" / "train_imbalanced.npz", real)
        files["test_data"] = save_npz(out / "data" / "test.npz", test)
        say(f"      {len(real)} real training images: {_counts_line(real.class_counts())}")
    return real, test


def _stage_gan(
    clock: _Clock, out: Path, settings: DemoSettings, seed: int, real: ImageDataset, progress: bool
) -> Any:
    from ganaug.training import require_complete, train

    gan_opts = {
        **settings.gan,
        "seed": seed,
        "log_every": 25,
        "sample_every": max(1, settings.gan["steps"] // 4),
        "checkpoint_every": settings.gan["steps"],
    }
    with clock.stage(
        "gan",
        f"training a conditional {settings.gan['arch']} GAN for {settings.gan['steps']} steps on them",
    ):
        run = train(
            None, out / "gan", dataset=real, overwrite=True, quiet=not progress, progress=progress, **gan_opts
        )
        return require_complete(run, f"the demo's GAN ({out / 'gan'})")


def _stage_export(
    clock: _Clock, out: Path, seed: int, run: Any, real: ImageDataset, files: dict[str, Path]
) -> tuple[Any, dict[str, float]]:
    from ganaug.export import export_generator
    from ganaug.grid import save_grid
    from ganaug.runtime import OnnxGenerator

    with clock.stage("export", "exporting the EMA generator to ONNX (checked against torch)"):
        exported = export_generator(run.run_dir, out / "generator.onnx", seed=seed, overwrite=True)
        generator = OnnxGenerator(exported.path, providers=["CPUExecutionProvider"])
        grid_images, _ = generator.generate_per_class(GRID_COLUMNS, seed=seed)
        files["samples"] = save_grid(out / "samples.png", grid_images, generator.classes, GRID_COLUMNS)
        div_images, div_labels = generator.generate_per_class(32, seed=seed + 1)
        diversity = diversity_ratio(div_images, div_labels, real)
    files["generator"] = Path(exported.path)
    return exported, diversity


def _stage_uplift(
    clock: _Clock,
    out: Path,
    settings: DemoSettings,
    seeds: list[int],
    real: ImageDataset,
    test: ImageDataset,
    generator: Path,
    progress: bool,
    say: Callable[[str], None],
    complain: Callable[[str], None],
) -> dict[str, Any]:
    from ganaug.eval.policy import MixPolicy
    from ganaug.eval.uplift import uplift

    policy = MixPolicy(
        name="real+GAN",
        strategy="not majority",
        filter=True,
        min_confidence=settings.min_confidence,
        near_duplicate=True,
    )
    with clock.stage(
        "uplift",
        f"uplift: classifier on real (classical augmentation) vs real + GAN, {len(seeds)} seed(s), "
        f"{settings.classifier_steps} steps each",
    ):
        return uplift(
            real,
            test,
            imbalance=list(DEMO_COUNTS),
            seeds=seeds,
            out_dir=out / "eval",
            generator=generator,
            policies=[policy],
            classifier_steps=settings.classifier_steps,
            classifier_batch_size=settings.classifier_batch_size,
            hflip=True,
            quality=settings.quality,
            feature_steps=settings.feature_steps,
            progress=progress,
            echo=lambda m: say(f"      {m}"),
            warn=complain,
        )


def _stage_augment(
    clock: _Clock,
    out: Path,
    settings: DemoSettings,
    seeds: list[int],
    real: ImageDataset,
    generator: Path,
    progress: bool,
    complain: Callable[[str], None],
    files: dict[str, Path],
) -> dict[str, Any]:
    from ganaug.augment import augment_dataset

    with clock.stage(
        "augment",
        "augmenting the imbalanced copy: 'not majority' + albumentations + confidence/near-duplicate filters",
    ):
        pipeline = write_pipeline(out / "synthetic_transforms.yaml")
        shortfalls: list[str] = []
        summary = augment_dataset(
            real,
            generator,
            out / "augmented",
            strategy="not majority",
            synthetic_transforms=pipeline,
            filters=["confidence", "near-duplicate"],
            min_confidence=settings.min_confidence,
            filter_classifier=out / "eval" / f"seed_{seeds[0]}" / "real_classifier.safetensors",
            fill="best",  # a class the filter starves gets its most confident candidates instead
            fmt="imagefolder",
            seed=seeds[0],
            overwrite=True,
            progress=progress,
            warn=shortfalls.append,
        )
        _report_shortfalls(summary, shortfalls, complain)
    files["pipeline"] = pipeline
    files["augmented"] = out / "augmented"
    return summary


def _report_shortfalls(
    summary: dict[str, Any], shortfalls: list[str], complain: Callable[[str], None]
) -> None:
    planned = sum(summary["counts"]["planned"].values())
    filled = sum(summary.get("filled", {}).values())
    if filled or summary.get("shortfall"):
        complain(
            f"augment: the filters passed {sum(summary['counts']['synthetic'].values()) - filled} of "
            f"{planned} planned synthetic images; {filled} more are the most confident rejected "
            "candidates of their class (--fill best; see the report's per-class table). A better "
            "generator (more --steps) needs fewer of them"
        )
    for message in shortfalls:
        if "passed the filters" not in message and "--fill best" not in message:
            complain(message)


# -- numbers ---------------------------------------------------------------------------------------
def _mean_pairwise_rms(images: np.ndarray) -> float:
    x = images.reshape(len(images), -1).astype(np.float64) / 255.0
    sq = (x * x).sum(1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * x @ x.T, 0.0) / x.shape[1]
    iu = np.triu_indices(len(x), k=1)
    return float(np.sqrt(d2[iu]).mean())


def diversity_ratio(
    generated: np.ndarray, generated_labels: np.ndarray, real: ImageDataset, per_class: int = 32
) -> dict[str, float]:
    """Per class: mean pairwise RMS pixel distance among generated images over the same among real ones.

    About 1 means the samples vary as much as the real images of their class; far below 1 means the
    generator makes (nearly) the same image whatever the latent vector: mode collapse.
    """
    out: dict[str, float] = {}
    for k, name in enumerate(real.classes):
        fake = generated[generated_labels == k][:per_class]
        true = real.images[real.labels == k][:per_class]
        if len(fake) < 2 or len(true) < 2:
            continue
        out[name] = _mean_pairwise_rms(fake) / max(_mean_pairwise_rms(true), 1e-12)
    return out


def _counts_line(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {n}" for name, n in counts.items())


def _headline(report: dict[str, Any]) -> dict[str, Any]:
    arm = report["arms"][1]
    s, p = report["summary"], report["paired"][arm]
    return {
        "arm": arm,
        "seeds": len(report["seeds"]),
        **{
            f"{metric}_{which}": s[which][metric]["mean"]
            for metric in ("accuracy", "balanced_accuracy")
            for which in ("real", arm)
        },
        "delta_accuracy": p["accuracy"]["mean"],
        "delta_balanced_accuracy": p["balanced_accuracy"]["mean"],
        "ci95_balanced_accuracy": p["balanced_accuracy"]["ci95"],
    }


def verdict(headline: dict[str, Any], quick: bool) -> str:
    """One honest sentence about the balanced-accuracy difference."""
    d = headline["delta_balanced_accuracy"]
    if quick:
        return (
            f"Balanced accuracy moved by {d:+.1f} points, but this was the --quick smoke test: it shows "
            "that every stage runs, not whether GAN samples help. Run `ganaug demo` without --quick, and "
            "`ganaug eval uplift` on your own data, for numbers worth reading."
        )
    ci = headline.get("ci95_balanced_accuracy")
    if ci is None:
        return f"Balanced accuracy moved by {d:+.1f} points (one seed: no interval)."
    if ci[0] > 0:
        what = "GAN samples helped in this run"
    elif ci[1] < 0:
        what = "GAN samples hurt in this run"
    else:
        what = "no clear difference in this run"
    return (
        f"{what}: balanced accuracy {d:+.1f} points (95% interval {ci[0]:+.1f} to {ci[1]:+.1f} over "
        f"{headline['seeds']} classifier seeds). The interval covers classifier randomness only — one data "
        "draw, one GAN, 1,000 test images (about ±1.3 points of sampling error on their own) — so treat "
        "it as an illustration; ganaug's published numbers come from benchmarks/uplift.py."
    )


# -- the report ------------------------------------------------------------------------------------


def _rel(path: Path, out: Path) -> str:
    try:
        return Path(path).resolve().relative_to(out.resolve()).as_posix()
    except ValueError:
        return str(path)


def _report_blocks(
    result: DemoResult,
    run: Any,
    exported: Any,
    summary: dict[str, Any],
    report: dict[str, Any],
    real: ImageDataset,
    test: ImageDataset,
) -> list[Block]:
    """The demo report as blocks (rendered by :func:`ganaug.report.render_markdown` and ``render_html``)."""
    return [
        *_intro_blocks(result),
        *_result_blocks(result, summary, report, real, test),
        *_samples_blocks(result, exported),
        *_training_blocks(result, run),
        *_augmented_blocks(result, summary),
        *_closing_blocks(result),
    ]


def _intro_blocks(result: DemoResult) -> list[Block]:
    s = result.settings
    quick = s.name == "quick"
    doc: list[Block] = [
        ("h1", f"ganaug demo{' (--quick)' if quick else ''}"),
        (
            "p",
            f"Everything below was made by `ganaug demo{' --quick' if quick else ''} --seed {result.seed}` "
            f"in {result.wall_seconds:.0f} s on this machine, from the Fashion-MNIST subset that ships "
            "inside ganaug (MIT, Copyright 2017 Zalando SE). Settings: " + s.note + ".",
        ),
    ]
    if quick:
        doc.append(
            (
                "note",
                "Quick mode is a smoke test. The GAN trains for seconds, the classifiers for "
                f"{s.classifier_steps} steps with one seed: the table shows that every stage runs end to "
                "end, not whether GAN augmentation helps. Do not quote these numbers.",
            )
        )
    return doc


def _result_blocks(
    result: DemoResult,
    summary: dict[str, Any],
    report: dict[str, Any],
    real: ImageDataset,
    test: ImageDataset,
) -> list[Block]:
    out, s, files = result.out, result.settings, result.files
    quick = s.name == "quick"
    arm = result.headline["arm"]
    counts = summary["counts"]
    return [
        ("h2", "Result"),
        *([] if quick else [("p", verdict(result.headline, quick))]),
        (
            "table",
            ["arm", "training images", "balanced accuracy %", "Δ vs real only (points)"],
            [
                [
                    "real only, classical augmentation",
                    len(real),
                    fmt_pm(report["summary"]["real"]["balanced_accuracy"], 1, omit_zero_std=True),
                    "–",
                ],
                [
                    "real + GAN ('not majority', filtered), same augmentation",
                    f"{len(real)} + {_mean_synthetic(report, arm):.0f} synthetic",
                    fmt_pm(report["summary"][arm]["balanced_accuracy"], 1, omit_zero_std=True),
                    fmt_delta(report["paired"][arm]["balanced_accuracy"], 1, missing=""),
                ],
            ],
        ),
        (
            "p",
            f"The same small CNN, trained {s.classifier_steps} steps (random shifts and flips) on the "
            f"{len(real)} imbalanced real images, or on them plus GAN samples meant to bring every class up "
            f"to the largest, kept only when the real-only classifier gives their class p ≥ "
            f"{s.min_confidence} and they are no near-copy of a training image; tested on the {len(test)} "
            f"real test images ({len(test) // len(test.classes)} per class, so balanced accuracy equals "
            f"plain accuracy), {len(report['seeds'])} classifier seed(s). Δ: paired difference (95% "
            "t-interval over seeds when there are several). Details: "
            f"[{_rel(files['eval_report'], out)}]({_rel(files['eval_report'], out)}).",
        ),
        ("h2", "Per class"),
        (
            "table",
            ["class", "real images", "synthetic added", "accuracy real only %", "accuracy real + GAN %"],
            [
                [
                    name,
                    counts["before"][name],
                    report["seeds"][0]["arms"][arm]["synthetic"]["counts"].get(name, 0),
                    fmt_num(report["summary"]["real"]["per_class_accuracy"][i], 1),
                    fmt_num(report["summary"][arm]["per_class_accuracy"][i], 1),
                ]
                for i, name in enumerate(real.classes)
            ],
        ),
        *_per_class_plot(files["eval_report"].parent, out),
    ]


def _samples_blocks(result: DemoResult, exported: Any) -> list[Block]:
    out, files = result.out, result.files
    return [
        ("h2", "Samples from generator.onnx"),
        (
            "p",
            f"One row per class, {GRID_COLUMNS} samples each, drawn with onnxruntime from "
            f"[`{_rel(files['generator'], out)}`]({_rel(files['generator'], out)}) "
            f"({exported.size_bytes / 1e6:.1f} MB, opset {exported.opset}; largest difference from torch "
            f"{exported.max_abs_error:.1e}).",
        ),
        ("img", _rel(files["samples"], out), "GAN samples, one row per class"),
        ("p", _diversity_text(result.diversity, out)),
    ]


def _training_blocks(result: DemoResult, run: Any) -> list[Block]:
    out, files, gan, m = result.out, result.files, result.settings.gan, run.metrics
    return [
        ("h2", "Training"),
        (
            "p",
            f"Conditional `{gan['arch']}` GAN (`--g-width {gan['g_width']} --d-width {gan['d_width']}`, "
            f"hinge loss, DiffAugment, EMA), {run.step} steps of batch {gan['batch_size']} in "
            f"{run.elapsed_s:.0f} s; final D loss {m.get('loss_d', float('nan')):.3f}, G loss "
            f"{m.get('loss_g', float('nan')):.3f}, D accuracy {m.get('d_accuracy', float('nan')):.2f}. "
            f"Run directory: [`{_rel(files['run_dir'], out)}`]({_rel(files['run_dir'], out)}).",
        ),
        ("img", _rel(files["loss_curves"], out), "loss curves"),
    ]


def _augmented_blocks(result: DemoResult, summary: dict[str, Any]) -> list[Block]:
    out, files = result.out, result.files
    counts = summary["counts"]
    rejected = summary.get("rejected", {})
    drawn = sum(summary.get("candidates", {}).values())
    n_syn = sum(counts["synthetic"].values())
    filled = summary.get("filled", {})
    return [
        ("h2", "Augmented dataset"),
        (
            "p",
            f"[`{_rel(files['augmented'], out)}/`]({_rel(files['augmented'], out)}) holds the real images "
            f"and {n_syn} synthetic ones as class folders, with `manifest.jsonl` (one record per image: "
            "source, generator sha256, seed and latent index, transforms) and `summary.json`. Strategy "
            f"'not majority'; synthetic images went through the albumentations pipeline "
            f"[`{_rel(files['pipeline'], out)}`]({_rel(files['pipeline'], out)}); "
            f"{drawn} candidates were drawn, "
            + (", ".join(f"{n} rejected by {k}" for k, n in rejected.items() if n) or "none rejected")
            + (
                f"; short of the target: {_counts_line(summary['shortfall'])}"
                if summary.get("shortfall")
                else ""
            )
            + ".",
        ),
        (
            "table",
            ["class", "before", "synthetic (passed filters)", "synthetic (--fill best)", "after"],
            [
                [
                    c,
                    counts["before"][c],
                    counts["synthetic"][c] - filled.get(c, 0),
                    filled.get(c, 0),
                    counts["after"][c],
                ]
                for c in counts["before"]
            ],
        ),
        ("p", _balance_text(counts, filled, summary.get("shortfall", {}))),
    ]


def _closing_blocks(result: DemoResult) -> list[Block]:
    return [
        ("h2", "Wall time"),
        (
            "table",
            ["stage", "seconds"],
            [[k, f"{v:.1f}"] for k, v in result.seconds.items()] + [["total", f"{result.wall_seconds:.1f}"]],
        ),
        ("h2", "Do it on your data"),
        (
            "pre",
            "\n".join(
                [
                    "ganaug train images/ --out runs/exp --steps 3000",
                    "ganaug export runs/exp --out generator.onnx",
                    "ganaug augment images/ --generator generator.onnx --out augmented/ \\",
                    "    --strategy 'not majority' --filter confidence,near-duplicate",
                    "ganaug eval uplift images/ --test test/ --per-class 100 --seeds 3 --out eval/",
                ]
            ),
        ),
    ]


def _per_class_plot(eval_dir: Path, out: Path) -> list[Block]:
    """The uplift's per-class accuracy plot, when it was drawn (both report.md and report.html)."""
    from ganaug.report import PLOT_PER_CLASS

    plot = eval_dir / PLOT_PER_CLASS
    return [("img", _rel(plot, out), "per-class test accuracy of each arm")] if plot.is_file() else []


def _balance_text(counts: dict[str, Any], filled: dict[str, int], shortfall: dict[str, int]) -> str:
    """Whether the augmented dataset is balanced, and per class why not."""
    after = counts["after"]
    top = max(after.values())
    short = {c: top - n for c, n in after.items() if n < top}
    parts = []
    if filled:
        parts.append(
            f"The confidence filter rejected most candidates of {len(filled)} class(es); with `--fill best` "
            "they got their most confident rejected candidates instead (never near-duplicates of "
            "training images; marked `fallback` in the manifest), which are weaker samples than the "
            "ones that passed."
        )
    if not short:
        parts.append(f"Every class now has {top} images: the dataset is balanced.")
    else:
        why = {c: "the filters and the fill left it short" if c in shortfall else "the plan" for c in short}
        parts.append(
            "Not balanced: " + ", ".join(f"{c} is {n} short ({why[c]})" for c, n in short.items()) + "."
        )
    return " ".join(parts)


def _theory_link(out: Path) -> str:
    """``docs/theory.md`` as a link that works from the run folder, when the docs are installed
    beside the package (a source checkout or editable install); else where to find it."""
    import os

    doc = Path(__file__).resolve().parents[1] / "docs" / "theory.md"
    if doc.is_file():
        try:
            rel = Path(os.path.relpath(doc, out.resolve())).as_posix()
        except ValueError:
            rel = doc.as_uri()
        return f"[docs/theory.md]({rel}) (section 5, mode collapse)"
    return 'docs/theory.md in the ganaug source repository (section "Mode collapse")'


def _diversity_text(diversity: dict[str, float], out: Path | None = None) -> str:
    if not diversity:
        return ""
    median = float(np.median(list(diversity.values())))
    low = sorted(diversity.items(), key=lambda kv: kv[1])[:3]
    if median >= 0.8:
        what = "about as varied as the real images"
    elif median >= 0.5:
        what = "less varied than the real images"
    else:
        what = "much less varied than the real images: the generator is partly mode-collapsed"
    return (
        f"Within-class diversity of 32 samples per class relative to the real images (mean pairwise pixel "
        f"distance; 1.0 = as varied as the real ones): median {median:.2f}, lowest "
        + ", ".join(f"{name} {v:.2f}" for name, v in low)
        + f" — {what}. Samples that repeat themselves add little for a classifier; see "
        + (_theory_link(out) if out is not None else "docs/theory.md (mode collapse)")
        + " for the options that help."
    )


def _mean_synthetic(report: dict[str, Any], arm: str) -> float:
    return float(np.mean([r["arms"][arm]["synthetic"]["n_synthetic"] for r in report["seeds"]]))


def _summary_json(
    result: DemoResult, report: dict[str, Any], summary: dict[str, Any], exported: Any
) -> dict[str, Any]:
    from ganaug import __version__

    return {
        "kind": "ganaug.demo",
        "ganaug_version": __version__,
        "python": sys.version.split()[0],
        "mode": result.settings.name,
        "seed": result.seed,
        "settings": dataclasses.asdict(result.settings),
        "counts_real": list(DEMO_COUNTS),
        "headline": result.headline,
        "diversity": result.diversity,
        "seconds": result.seconds,
        "wall_seconds": result.wall_seconds,
        "files": {k: _rel(v, result.out) for k, v in result.files.items()},
        "augment_counts": summary["counts"],
        "onnx": {"size_bytes": exported.size_bytes, "max_abs_error": exported.max_abs_error},
    }
