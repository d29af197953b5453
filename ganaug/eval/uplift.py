"""The paired uplift experiment behind ``ganaug eval uplift``."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ganaug.errors import UsageError
from ganaug.eval.arms import (
    SeedContext,
    generator_temperature,
    policy_arms,
    real_classifier,
    seed_balanced_filter,
    seed_generator,
    seed_teacher,
    thread_count_text,
)
from ganaug.eval.common import (
    align_test,
    as_dataset,
    check_one_count_source,
    check_out,
    draw_subset,
    per_class_counts,
)
from ganaug.eval.quality import quality_report
from ganaug.eval.spec import BALANCED_TEACHER, UpliftConfig, UpliftSpec
from ganaug.eval.validation import policies_to_test, tune_policies
from ganaug.fileio import atomic_path, atomic_write_json, atomic_write_text
from ganaug.metrics import (
    classification_scores,
    mean_std,
    nearest_neighbour_distances,
    paired_difference,
)
from ganaug.specs import resolve_device


def _arm_result(
    clf: Any, test: Any, seconds: float, n_train: int, extra: dict | None = None
) -> dict[str, Any]:
    scores = classification_scores(test.labels, clf.predict(test.images), len(test.classes))
    return {**scores, "n_train": n_train, "train_seconds": round(seconds, 2), **(extra or {})}


def summarise_seeds(seeds: list[dict[str, Any]], arms: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Per arm over the seeds' results: accuracy and balanced accuracy (mean, std, values) and
    per-class accuracy; and each arm's paired difference against ``real``."""
    summary: dict[str, Any] = {}
    for arm in arms:
        rows = [s["arms"][arm] for s in seeds]
        entry: dict[str, Any] = {}
        for metric in ("accuracy", "balanced_accuracy"):
            vals = [100.0 * r[metric] for r in rows]
            mean, std = mean_std(vals)
            entry[metric] = {"mean": mean, "std": std, "values": vals}
        pcs = np.array([[np.nan if v is None else 100.0 * v for v in r["per_class_accuracy"]] for r in rows])
        entry["per_class_accuracy"] = (
            [None if np.isnan(v) else float(v) for v in np.nanmean(pcs, 0)] if len(pcs) else []
        )
        summary[arm] = entry
    paired: dict[str, Any] = {}
    for arm in arms[1:]:
        paired[arm] = paired_arms(summary, arm, "real")
    return summary, paired


def paired_arms(summary: dict[str, Any], arm: str, base: str) -> dict[str, Any]:
    """``arm`` minus ``base`` paired over seeds, for accuracy and balanced accuracy."""
    return {
        metric: paired_difference(summary[arm][metric]["values"], summary[base][metric]["values"])
        for metric in ("accuracy", "balanced_accuracy")
    }


def comparisons(report: dict[str, Any]) -> dict[str, Any]:
    """The paired comparisons beyond ``real`` of a report with ``arms``, ``summary``, ``settings``
    (and ``controls``): each soft-label arm against its distillation control (``paired_control``),
    and every GAN arm against the strongest no-GAN arm -- the highest mean accuracy among ``real``,
    the ``strategy=0`` policies and the controls (``best_baseline``: ``arm`` and ``paired``; arms
    that are not a policy of the run, such as ``--tune``'s ``tuned``, are in neither group).

    The strongest baseline is picked on the test results it is then compared on, which favours the
    baseline: the GAN arms have to beat the best of several no-GAN arms, not a chosen one."""
    from ganaug.eval.policy import MixPolicy

    summary, arms = report["summary"], report["arms"]
    controls = report.get("controls") or {}
    out: dict[str, Any] = {}
    if controls:
        out["paired_control"] = {arm: paired_arms(summary, arm, ctl) for arm, ctl in controls.items()}
    uses_gan = {
        p["name"]: MixPolicy(name=p["name"], strategy=p["strategy"]).uses_gan()
        for p in report["settings"].get("policies", [])
    }
    no_gan = [a for a in arms if a == "real" or a in controls.values() or uses_gan.get(a) is False]
    gan = [a for a in arms if uses_gan.get(a) and a not in controls.values()]
    if gan:
        best = max(no_gan, key=lambda a: summary[a]["accuracy"]["mean"])
        out["best_baseline"] = {"arm": best, "paired": {a: paired_arms(summary, a, best) for a in gan}}
    return out


def auto_threads(cores: int | None = None) -> int:
    """Default torch threads for the uplift classifiers: half the usable cores, 1 to 8.

    The small CNN's steps are too short to feed many threads, and on a machine shared with other
    processes OpenMP threads that outnumber free cores spin-wait: on 2 cores 1 thread per process
    measured several times faster than the default of 2."""
    if cores is None:
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            cores = os.cpu_count() or 1
    return max(1, min(8, int(cores) // 2))


_RENAMED = {"out_dir": "out"}  # library keyword -> UpliftSpec field


def _with_fields(spec: UpliftSpec | None, fields: dict[str, Any]) -> UpliftSpec:
    """``spec`` (default: all defaults) with keyword ``fields`` replaced (the pre-spec keywords of
    :func:`uplift`, ``out_dir`` included, keep working)."""
    names = {f.name for f in dataclasses.fields(UpliftSpec)}
    values = {_RENAMED.get(k, k): v for k, v in fields.items()}
    unknown = sorted(set(values) - names)
    if unknown:
        raise TypeError(f"uplift() got unexpected keyword argument(s) {', '.join(unknown)}")
    for key in ("out", "generator", "teacher", "tune_generator"):
        if values.get(key) is not None:
            values[key] = str(values[key])
    if values.get("policies") is None and "policies" in values:
        values["policies"] = []
    if values.get("tune_grid") is not None:
        values["tune_grid"] = list(values["tune_grid"])
    return dataclasses.replace(spec or UpliftSpec(), **values)


def _resolve(spec: UpliftSpec, train_ds: Any, test: Any) -> UpliftConfig:
    """Check ``spec`` against the data and resolve it to the experiment's settings."""
    if test is None and not spec.tune:
        raise UsageError("a test split is needed (only --tune may run without one)")
    seed_list = spec.seed_list()
    if not seed_list:
        raise UsageError("need at least one seed")
    policies = spec.arms()
    names = [p.name for p in policies]
    if len(set(names)) != len(names):
        raise UsageError(f"policy names must be unique, got {names}")
    if spec.tune_generator is not None and not spec.tune:
        raise UsageError("--tune-generator needs --tune")
    checks = (
        (spec.generator, "--generator"),
        (spec.teacher, "--teacher"),
        (spec.tune_generator, "--tune-generator"),
    )
    for path, what in checks:
        if path is not None and not (what == "--teacher" and path == BALANCED_TEACHER):
            for seed in seed_list:  # "{seed}": one file per seed (e.g. an earlier run's GANs)
                candidate = Path(str(path).replace("{seed}", str(seed)))
                if not candidate.exists():
                    raise UsageError(f"{what} not found: {candidate}")
                if what != "--teacher":  # a policy's checkpoint needs a run dir: say so before any work
                    for policy in [*policies, *(spec.tune_grid or [])]:
                        policy.generator_for(candidate)
    available = train_ds.class_counts()
    counts = per_class_counts(spec.per_class_n, spec.imbalance, len(train_ds.classes), available)
    return UpliftConfig(
        counts=counts,
        seeds=seed_list,
        classifier_steps=spec.classifier_steps,
        classifier_batch_size=spec.classifier_batch_size,
        classifier_lr=spec.classifier_lr,
        hflip=spec.hflip,
        shift=spec.shift,
        amp=spec.amp,
        gan_options=spec.all_gan_options(),
        generator=spec.generator,
        policies=policies,
        quality=spec.quality,
        quality_per_class=spec.quality_per_class,
        feature_steps=spec.feature_steps,
        device=resolve_device(spec.device),
        teacher=spec.teacher,
        tune=spec.tune,
        tune_fraction=spec.tune_fraction,
        tune_grid=list(spec.tune_grid) if spec.tune_grid is not None else [],
        tune_test_all=spec.tune_test_all,
        tune_generator=spec.tune_generator,
        threads=spec.threads,
    )


def uplift(
    data: Any,
    test: Any,
    spec: UpliftSpec | None = None,
    *,
    progress: bool = False,
    echo: Callable[[str], None] | None = None,
    warn: Callable[[str], None] | None = None,
    plots: bool = True,
    command: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """Run the paired uplift experiment and write ``report.json``, ``report.md`` and plots to
    ``spec.out``; returns the report dict.

    ``data``/``test``: training and test splits (paths, ImageDatasets or ``(images, labels)``);
    ``spec.data``/``spec.test`` are only recorded. ``fields`` replace fields of ``spec`` (the
    keywords of :class:`UpliftSpec`; ``out_dir`` is ``out``), so ``uplift(train, test,
    per_class_n=100, seeds=3, out_dir="eval/")`` still works.

    ``per_class_n`` real images per class (or ``imbalance``, one count per class) are drawn from
    ``data`` for each seed. A GAN is trained on exactly that subset with ``gan_options``
    (:func:`ganaug.training.train` options) unless ``generator`` (run dir, weights or ``.onnx``) is
    given; ``{seed}`` in its path picks one generator per seed. Arm ``real`` trains the fixed
    classifier on the subset; each :class:`MixPolicy` adds one arm on the subset plus GAN samples;
    all arms share seed, classical augmentation and ``classifier_steps``. ``command`` (the command
    line) is recorded in the report.

    ``teacher`` (ONNX or ganaug ``.safetensors``; ``{seed}`` allowed) replaces the real-only arm's
    classifier as the teacher of soft-label and distillation arms; ``"balanced"`` trains the teacher
    on the seed's real subset with class-balanced batches (for imbalanced data). ``tune`` first
    chooses a policy on a stratified validation split (``tune_fraction``) of each seed's subset
    from ``tune_grid`` (default :func:`ganaug.eval.tune.default_grid`) plus ``policies`` and the
    real-only arm, then adds the choice, retrained on the whole subset, as arm ``tuned`` (with
    ``tune_test_all`` every candidate is also tested) and ends the report with a recommendation;
    the test split is first used after the choice. ``test`` may be ``None`` with ``tune`` (choose
    only, no test arms).
    ``threads``: torch threads (default :func:`auto_threads`, or torch's own setting when
    ``OMP_NUM_THREADS`` is set).
    """
    spec = _with_fields(spec, fields)
    say = echo or (lambda _m: None)
    complain = warn or (lambda _m: None)
    t_start = time.perf_counter()
    train_ds = as_dataset(data)
    cfg = _resolve(spec, train_ds, test)
    if spec.out is None:
        raise UsageError("uplift needs an output folder (out)")
    out = Path(spec.out)
    out.mkdir(parents=True, exist_ok=True)
    with _torch_threads(spec.threads) as n_threads:
        say(f"{n_threads} torch thread{'s' if n_threads != 1 else ''} per classifier (--threads to change)")
        report = _uplift_body(train_ds, test, cfg, out, progress, say, complain, command, n_threads)
    report["wall_seconds"] = round(time.perf_counter() - t_start, 1)
    if report.get("arms") is None:  # tuning only
        from ganaug.eval.tune import tune_markdown

        atomic_write_json(out / "report.json", report)
        atomic_write_text(out / "report.md", tune_markdown(report))
        return report
    from ganaug.report import write_uplift_report

    write_uplift_report(report, out, plots=plots)
    return report


def run_uplift(
    spec: UpliftSpec,
    *,
    progress: bool = False,
    echo: Callable[[str], None] | None = None,
    warn: Callable[[str], None] | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """``ganaug eval uplift``: check ``spec`` as the command does, load ``spec.data``/``spec.test``,
    save the spec as ``config.yaml`` in ``spec.out`` (``--config`` of that file repeats the run) and
    run :func:`uplift`."""
    from ganaug.data import load_dataset
    from ganaug.specs import save_spec

    check_one_count_source(spec.per_class_n, spec.imbalance)  # before the data is loaded
    if spec.test is None and not spec.tune:
        raise UsageError("missing option --test (only --tune may run without a test split)")
    if spec.data is None or spec.out is None:
        raise UsageError("eval uplift needs DATA and --out")
    check_out(spec.out, [spec.data, spec.test])
    train_ds = load_dataset(spec.data, image_size=spec.image_size, channels=spec.channels)
    test_ds = None
    if spec.test is not None:
        test_ds = load_dataset(spec.test, image_size=train_ds.image_size, channels=train_ds.channels)
    trains_tuning_gan = spec.tune and spec.tune_generator is None
    if spec.generator is not None and spec.all_gan_options() and not trains_tuning_gan and warn is not None:
        warn("--generator given: the GAN training options are ignored")
    if spec.tune and spec.policies and spec.tune_grid is None:
        spec = dataclasses.replace(spec, tune_grid=list(spec.policies))  # the user's arms are the grid
    _resolve(spec, train_ds, test_ds)  # usage errors before anything is written
    Path(spec.out).mkdir(parents=True, exist_ok=True)
    save_spec(spec, Path(spec.out) / "config.yaml")
    return uplift(train_ds, test_ds, spec, progress=progress, echo=echo, warn=warn, command=command)


class _torch_threads:
    """Set torch's intra-op threads for a block (``None``: :func:`auto_threads`, unless the user set
    ``OMP_NUM_THREADS``) and restore them afterwards."""

    def __init__(self, threads: int | None) -> None:
        self.threads = threads

    def __enter__(self) -> int:
        import torch

        self.before = torch.get_num_threads()
        if self.threads is not None and self.threads < 1:
            raise UsageError(f"--threads must be >= 1, got {self.threads}")
        n = self.threads or (self.before if os.environ.get("OMP_NUM_THREADS") else auto_threads())
        torch.set_num_threads(n)
        return n

    def __exit__(self, *exc: object) -> None:
        import torch

        torch.set_num_threads(self.before)


def _uplift_body(
    train_ds: Any,
    test: Any,
    cfg: UpliftConfig,
    out: Path,
    progress: bool,
    say: Callable[[str], None],
    complain: Callable[[str], None],
    command: str | None,
    n_threads: int,
) -> dict[str, Any]:
    classes = list(train_ds.classes)
    generators: dict[int, tuple[Path, dict[str, Any]]] = {}
    tuned = None
    if cfg.tune:
        tuned = tune_policies(train_ds, cfg, out, progress, say, complain)
        cfg.policies = policies_to_test(cfg, tuned)
        if test is not None:  # the test phase follows: say the choice now (else it ends the run)
            say(f"tuned: {tuned['summary']['recommendation']}")
    report: dict[str, Any] = {
        "kind": "ganaug.uplift",
        "command": command,
        "data": getattr(train_ds, "source", ""),
        "classes": classes,
        "threads": n_threads,
    }
    if tuned is not None:
        report["tune"] = tuned["summary"]
        report["recommendation"] = tuned["summary"]["recommendation"]
    if test is None:  # --tune without a test split: the choice only
        report.update(settings=_settings_dict(cfg), arms=None, versions=_versions())
        return report
    test_ds = align_test(as_dataset(test, classes), classes, train_ds.images.shape[1:])
    report["test"] = getattr(test_ds, "source", "")

    extractor = None
    if cfg.quality:
        from ganaug.eval.features import get_feature_extractor

        say(
            f"domain feature extractor ({cfg.feature_steps} steps on {len(train_ds)} training images; cached)"
        )
        t0 = time.perf_counter()
        extractor = get_feature_extractor(
            train_ds, steps=cfg.feature_steps, device=cfg.device, progress=progress
        )
        report["feature_extractor"] = {
            "steps": cfg.feature_steps,
            "seconds": round(time.perf_counter() - t0, 1),
            "key": extractor.meta.extra.get("dataset_key"),
        }
    seed_results = [
        _run_seed(seed, train_ds, test_ds, cfg, out, extractor, progress, say, complain, generators)
        for seed in cfg.seeds
    ]
    arms = ["real", *[a for a in seed_results[0]["arms"] if a != "real"]]
    summary, paired = summarise_seeds(seed_results, arms)
    controls = seed_results[0].get("controls", {})
    report.update(
        settings=_settings_dict(cfg),
        arms=arms,
        summary=summary,
        paired=paired,
        seeds=seed_results,
        versions=_versions(),
    )
    if controls:
        report["controls"] = controls
    report.update(comparisons(report))
    return report


def _settings_dict(cfg: UpliftConfig) -> dict[str, Any]:
    d = dataclasses.asdict(cfg)
    d["policies"] = [dataclasses.asdict(p) for p in cfg.policies]
    d["tune_grid"] = [dataclasses.asdict(p) for p in cfg.tune_grid]
    return d


def _versions() -> dict[str, str | None]:
    from ganaug.versions import library_versions

    return library_versions(("torch", "numpy"))


def _run_seed(
    seed: int,
    train_ds: Any,
    test_ds: Any,
    cfg: UpliftConfig,
    out: Path,
    extractor: Any,
    progress: bool,
    say: Callable[[str], None],
    complain: Callable[[str], None],
    generators: dict[int, tuple[Path, dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    k = len(train_ds.classes)
    seed_dir = out / f"seed_{seed}"
    seed_dir.mkdir(parents=True, exist_ok=True)
    subset = draw_subset(train_ds, cfg.counts, seed)
    result: dict[str, Any] = {"seed": seed, "n_real": len(subset), "arms": {}}
    generators = {} if generators is None else generators
    if seed not in generators:
        generators[seed] = seed_generator(seed, subset, cfg, seed_dir, progress, say, cfg.generator)
    gen_path, result["gan"] = generators[seed]
    if "temperature" not in result["gan"]:  # what the GAN arms sample at unless a policy names one
        result["gan"]["temperature"] = generator_temperature(gen_path)

    # arm (a): the real subset with classical augmentation
    say(f"seed {seed}: classifier on the real subset ({cfg.classifier_steps} steps, {thread_count_text()})")
    t0 = time.perf_counter()
    real_clf = real_classifier(seed, subset, list(train_ds.classes), cfg, progress, "real only")
    result["arms"]["real"] = _arm_result(real_clf, test_ds, time.perf_counter() - t0, len(subset))
    filter_path = real_clf.save(seed_dir / "real_classifier.safetensors")
    teacher, teacher_path = seed_teacher(
        cfg, seed, real_clf, filter_path, subset, seed_dir, progress, cfg.policies
    )

    # arm(s) (b): real + GAN samples through the augment pipeline (and distillation controls)
    ctx = SeedContext(
        seed, subset, k, gen_path, seed_dir, filter_path, teacher, teacher_path, progress, say, complain
    )
    ctx.balanced_filter_path = seed_balanced_filter(
        cfg, seed, subset, seed_dir, progress, cfg.policies, teacher_path
    )

    def score(clf: Any) -> dict[str, Any]:
        return classification_scores(test_ds.labels, clf.predict(test_ds.images), k)

    arms, controls = policy_arms(ctx, cfg.policies, cfg, score)
    for name, res in arms.items():
        result["arms"][name] = res
    if controls:
        result["controls"] = controls

    if extractor is not None:
        result["quality"] = _seed_quality(gen_path, subset, test_ds, extractor, seed, cfg, seed_dir)
    atomic_write_json(seed_dir / "result.json", result)  # survives a crash in a later seed
    return result


def _seed_quality(
    gen_path: Path, subset: Any, test_ds: Any, extractor: Any, seed: int, cfg: UpliftConfig, seed_dir: Path
) -> dict[str, Any]:
    """Quality of an unfiltered per-class sample of the seed's generator; also keeps a few samples
    with their nearest real training images for the report's grid."""
    from ganaug.runtime import generator_indices, per_class_labels
    from ganaug.sampling import open_sampler

    sampler = open_sampler(gen_path, device=cfg.device)
    gen_ids = generator_indices(test_ds.classes, sampler.classes)
    wanted = [i for i in range(len(gen_ids)) if gen_ids[i] >= 0]
    labels = per_class_labels(cfg.quality_per_class, list(test_ds.classes), wanted)
    t0 = time.perf_counter()
    images = sampler.generate(gen_ids[labels], seed=seed + 10_000)
    q = quality_report(test_ds, (images, labels), extractor, train=subset, seed=seed)
    q["seconds"] = round(time.perf_counter() - t0, 1)
    # a small grid: up to 6 samples per class beside their nearest real training image (pixels)
    picks = np.concatenate([np.flatnonzero(labels == c)[:6] for c in wanted])
    _, nn = nearest_neighbour_distances(
        images[picks].astype(np.float32) / 255.0, subset.images.astype(np.float32) / 255.0
    )
    with atomic_path(seed_dir / "nn_grid.npz") as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, synthetic=images[picks], labels=labels[picks], nearest=subset.images[nn])
    return q


__all__ = [
    "auto_threads",
    "paired_arms",
    "run_uplift",
    "summarise_seeds",
    "uplift",
]
