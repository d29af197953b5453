"""``eval uplift --tune``: score candidate policies on each seed's validation split and choose one."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ganaug.eval.arms import (
    SeedContext,
    policy_arms,
    real_classifier,
    seed_balanced_filter,
    seed_generator,
    seed_teacher,
)
from ganaug.eval.common import draw_subset
from ganaug.eval.policy import MixPolicy
from ganaug.eval.spec import UpliftConfig
from ganaug.fileio import atomic_write_json
from ganaug.metrics import (
    classification_scores,
)


def tune_candidates(cfg: UpliftConfig) -> tuple[list[MixPolicy], str]:
    """The candidates of ``--tune`` -- ``tune_grid`` (from the CLI: the ``--policy`` arms), else the
    default grid, plus any other ``policies`` -- and the progress line that names them and their
    source (a ``--policy`` arm replaces the whole default grid, easy to do by accident)."""
    from ganaug.eval.tune import default_grid

    if cfg.tune_grid:
        grid, source = list(cfg.tune_grid), "as given (without --policy arms: the default grid)"
    else:
        grid = default_grid(len(set(cfg.counts)) > 1)
        source = "from the default grid (--policy arms replace it)"
    names = {p.name for p in grid}
    candidates = grid + [p for p in cfg.policies if p.name not in names]
    return candidates, f"tune: {len(candidates)} candidates {source}: {', '.join(p.name for p in candidates)}"


def tune_policies(
    train_ds: Any,
    cfg: UpliftConfig,
    out: Path,
    progress: bool,
    say: Callable[[str], None],
    complain: Callable[[str], None],
) -> dict[str, Any]:
    """Score every candidate on each seed's validation split; choose; write ``tuned_policy.json``.
    Takes no test split: nothing here can look at it."""
    from ganaug.eval.tune import choose_policy, reused_arms, tune_summary, write_policy_file

    candidates, named = tune_candidates(cfg)
    say(named)
    metric = "balanced_accuracy" if len(set(cfg.counts)) > 1 else "accuracy"
    scores: dict[str, list[float]] = {}
    by_name = {p.name: p for p in candidates}
    per_seed: list[dict[str, Any]] = []
    for seed in cfg.seeds:
        seed_dir = out / f"seed_{seed}"
        seed_dir.mkdir(parents=True, exist_ok=True)
        subset = draw_subset(train_ds, cfg.counts, seed)
        val_scores = tune_seed(seed, subset, candidates, cfg, seed_dir / "tune", progress, say, complain)
        atomic_write_json(seed_dir / "tune.json", val_scores)
        per_seed.append(val_scores)
        for name, res in val_scores["arms"].items():
            scores.setdefault(name, []).append(100.0 * res[metric])
        by_name.update({ctl: by_name[arm].control() for arm, ctl in val_scores["controls"].items()})
    image_ci = validation_interval(per_seed, len(train_ds.classes), metric)
    drew_none = {  # GAN policies that drew no GAN image on any seed (a gate withheld every class)
        name
        for name in scores
        if name in by_name
        and by_name[name].uses_gan()
        and all(t["arms"][name].get("synthetic", {}).get("n_synthetic", 1) == 0 for t in per_seed)
    }
    choice = choose_policy(scores, by_name, metric, image_ci, drew_none)
    chosen = by_name.get(choice["choice"]) or MixPolicy(name="tuned", strategy=0)
    tuned = dataclasses.replace(chosen, name="tuned")
    write_policy_file(
        out / "tuned_policy.json",
        tuned,
        teacher=cfg.teacher,
        chosen_arm=choice["choice"],
        metric=metric,
        validation=choice["means"],
        recommendation=choice["recommendation"],
    )
    summary = tune_summary(choice, scores, reused_arms(per_seed))
    summary["described"] = {name: _describe(name, by_name.get(name)) for name in scores}
    return {"policy": tuned, "summary": summary, "candidates": candidates}


def _describe(name: str, policy: MixPolicy | None) -> str:
    """What a candidate trains on, in words (for the validation table)."""
    from ganaug.report import describe_policy_fields

    if policy is None:
        return "real images, classical augmentation"
    what = describe_policy_fields(dataclasses.asdict(policy))
    return f"real images only — {what}" if not policy.uses_gan() else f"+ GAN samples — {what}"


def validation_interval(
    per_seed: Sequence[dict[str, Any]], k: int | None, metric: str
) -> Callable[[str, str], list[float]] | None:
    """``(arm_b, arm_a) -> 95% interval of b - a`` (points) over the validation images of every
    seed (``tune.json`` bodies), each image judged by its own seed's two classifiers; ``None`` when
    a seed has no stored predictions (runs before they were kept)."""
    from ganaug.metrics import paired_image_interval

    if not per_seed or any("validation_labels" not in t for t in per_seed):
        return None
    labels = np.concatenate([np.asarray(t["validation_labels"], np.int64) for t in per_seed])
    k = int(labels.max()) + 1 if k is None else k  # classes (None: as many as the labels show)

    def interval(b: str, a: str) -> list[float]:
        pb, pa = ([t["arms"][arm]["predictions"] for t in per_seed] for arm in (b, a))
        return paired_image_interval(
            labels, np.concatenate(pb), np.concatenate(pa), k, balanced=metric == "balanced_accuracy"
        )

    return interval


def tune_seed(
    seed: int,
    subset: Any,
    candidates: Sequence[MixPolicy],
    cfg: UpliftConfig,
    work: Path,
    progress: bool = False,
    say: Callable[[str], None] = lambda _m: None,
    complain: Callable[[str], None] = lambda _m: None,
) -> dict[str, Any]:
    """Validation scores of the real-only arm and every candidate for one seed: the subset is split
    (:func:`ganaug.eval.tune.stratified_split`); the generator (``cfg.tune_generator``, else one
    trained here on the train part into ``work/gan``) and every classifier -- filter and teacher
    included -- see the train part only, and are scored on the validation part. A generator that
    saw the validation images would make GAN samples look better there than they are."""
    from ganaug.eval.tune import stratified_split

    classes = list(subset.classes)
    tr_idx, val_idx = stratified_split(subset.labels, cfg.tune_fraction, seed)
    tr, val = subset.subset(tr_idx), subset.subset(val_idx)
    work.mkdir(parents=True, exist_ok=True)
    say(
        f"seed {seed}: tuning on {len(tr)} train / {len(val)} validation images, {len(candidates)} candidates"
    )
    gen_path, gan_info = seed_generator(
        seed, tr, cfg, work, progress, say, given=cfg.tune_generator, what="the tuning GAN (train part only)"
    )
    real_clf = real_classifier(seed, tr, classes, cfg, progress, "tune: real only")
    filter_path = real_clf.save(work / "real_classifier.safetensors")
    teacher, teacher_path = seed_teacher(cfg, seed, real_clf, filter_path, tr, work, progress, candidates)
    ctx = SeedContext(
        seed, tr, len(classes), gen_path, work, filter_path, teacher, teacher_path, progress, say, complain
    )
    ctx.balanced_filter_path = seed_balanced_filter(cfg, seed, tr, work, progress, candidates, teacher_path)

    def score(clf: Any) -> dict[str, Any]:
        predictions = clf.predict(val.images)
        scores = classification_scores(val.labels, predictions, len(classes))
        return {**scores, "predictions": np.asarray(predictions).tolist()}

    arms, controls = policy_arms(ctx, candidates, cfg, score)
    return {
        "seed": seed,
        "n_train": len(tr),
        "n_validation": len(val),
        "validation_labels": np.asarray(val.labels).tolist(),
        "gan": gan_info,
        "arms": {"real": score(real_clf), **arms},
        "controls": controls,
    }


def policies_to_test(cfg: UpliftConfig, tuned: dict[str, Any]) -> list[MixPolicy]:
    """The arms tested after tuning: the user's policies (or every candidate with
    ``tune_test_all``), the grid's no-GAN baselines, and the choice as ``tuned``."""
    candidates = tuned["candidates"]
    keep = list(candidates) if cfg.tune_test_all else list(cfg.policies)
    names = {p.name for p in keep}
    keep += [p for p in candidates if not p.uses_gan() and p.name not in names]
    return [*keep, tuned["policy"]]


__all__ = [
    "policies_to_test",
    "tune_candidates",
    "tune_policies",
    "tune_seed",
    "validation_interval",
]
