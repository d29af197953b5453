"""``eval uplift --tune``: choose a mixing policy on a validation split, and say when not to use GAN samples.

Per seed the drawn real subset is split into train / validation (:func:`stratified_split`); every
candidate policy -- the no-GAN baselines included -- is trained on the train part and scored on the
validation part. :func:`choose_policy` picks the best mean validation score over seeds (ties go to
the no-GAN arm) and writes the one-line recommendation. The test split is never an argument of
anything here. The choice is saved as a policy file (:func:`write_policy_file`) that
``ganaug augment --policy-file`` applies (:func:`augment_options`).

The tuning generator sees the train part only: ``--tune-generator`` (one trained on exactly that
part, e.g. by an earlier ``--tune`` run: ``OUT/seed_N/tune/gan``), else one trained per seed. A
generator trained on the whole subset -- the test phase's, or ``--generator`` -- has seen the
validation images and makes GAN samples look better there than they are (measured: +1.2 points on
validation for a policy that lost 0.7 on test). The user's ``--teacher`` is taken as given.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ganaug.errors import DataError, UsageError

POLICY_KIND = "ganaug.policy"
#: Arm name of the real-only classifier (classical augmentation) in tables and validation scores.
REAL = "real"


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, validation)``: ``round(fraction * n_c)`` images of each class ``c`` go to
    validation, at least 1 where the class has 2 or more and never all of them."""
    if not 0 < fraction < 1:
        raise UsageError(f"the validation fraction must be in (0, 1), got {fraction}")
    labels = np.asarray(labels)
    rng = np.random.default_rng([int(seed), 0x7E57])
    train, val = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_val = min(max(1 if len(idx) > 1 else 0, round(fraction * len(idx))), len(idx) - 1)
        val.append(idx[:n_val])
        train.append(idx[n_val:])
    tr, va = np.sort(np.concatenate(train)), np.sort(np.concatenate(val))
    if not len(va):
        raise DataError("the validation split is empty: --tune needs at least 2 images in some class")
    return tr, va


def default_grid(imbalanced: bool) -> list[Any]:
    """The default candidates of ``--tune`` besides ``real``: no-GAN baselines and a few GAN policies
    (share, filter threshold, soft labels, strategy, rebalancing loss; the confidence filter only on
    balanced data: bringing imbalanced classes up to the largest through it draws about ten
    candidates per kept image (7-14% kept, the slowest candidate by far) and measured 5.9 points
    below real-only training; the class-fidelity gate is the filter there; on balanced data also the
    share-25 soft-label policy at temperature 0.8 (the better FID, label fidelity and CAS in
    ``benchmarks/quality_budget.py temperatures``), whose distillation control is shared with
    ``gan-soft``'s, so it costs one more synthetic set and classifier per seed, and the same policy
    through the class-fidelity gate at 0.8 (the balanced GAN arm closest to its control measured so
    far); on imbalanced data
    also GAN samples for the rare classes only, at most one per real image, on top of oversampling
    and through the class-fidelity gate: the GAN arm closest to oversampling measured there)."""
    from ganaug.eval.policy import MixPolicy

    if imbalanced:
        return [
            MixPolicy(name="oversample", strategy=0, balance=True),
            MixPolicy(name="balanced-softmax", strategy=0, loss="balanced_softmax"),
            MixPolicy(name="gan-balance", strategy="not majority"),
            MixPolicy(name="gan-bs", strategy=1.0, loss="balanced_softmax"),
            MixPolicy(name="gan-bs-soft", strategy=1.0, loss="balanced_softmax", soft_labels=True),
            MixPolicy(name="gan-over", strategy=1.0, balance=True),
            MixPolicy(
                name="gan-rare-over-cf80",
                strategy="not majority",
                max_synthetic_ratio=1.0,
                balance=True,
                min_class_fidelity=0.8,
            ),
        ]
    return [
        MixPolicy(name="gan", strategy=1.0),
        MixPolicy(name="gan-filter", strategy=1.0, filter=True, min_confidence=0.9),
        MixPolicy(name="gan-share25", strategy=4.0, synthetic_share=0.25),
        MixPolicy(name="gan-soft", strategy=4.0, synthetic_share=0.25, soft_labels=True),
        MixPolicy(name="gan-soft-t08", strategy=4.0, synthetic_share=0.25, soft_labels=True, temperature=0.8),
        MixPolicy(
            name="gan-soft-distill", strategy=4.0, synthetic_share=0.25, soft_labels=True, distill_real=True
        ),
        MixPolicy(
            name="gan-soft-cf80", strategy=4.0, synthetic_share=0.25, soft_labels=True, min_class_fidelity=0.8
        ),
    ]


def describe_baseline(policy: Any | None) -> str:
    """Words for a no-GAN arm (``None`` = the real-only arm)."""
    if policy is None:
        return "the real images with classical augmentation only"
    parts = []
    if policy.balance:
        parts.append("oversampling (class-balanced batches)")
    if policy.loss == "balanced_softmax":
        parts.append("the balanced-softmax loss")
    if policy.distill_real:
        parts.append("distillation from the teacher")
    return " with ".join(parts) if parts else "the real images with classical augmentation only"


def choose_policy(
    scores: dict[str, list[float]],
    policies: dict[str, Any],
    metric: str = "accuracy",
    image_ci: Callable[[str, str], list[float]] | None = None,
    drew_none: set[str] | frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """Pick an arm by mean validation score (``scores``: arm -> per-seed values in %; ``policies``:
    arm -> MixPolicy, ``real`` may be absent). The best GAN arm is chosen only when it beats the best
    no-GAN arm *beyond the noise*: the paired 95% interval of its per-seed margin lies above 0, and
    so does ``image_ci(gan_arm, no_gan_arm)``, the paired interval over the validation images of
    all seeds (:func:`ganaug.metrics.paired_image_interval`). With one seed only the latter exists;
    without either a margin above 0 is enough and the text says there is no noise estimate. The
    best of several noisy validation scores is biased upwards, and a GAN grid has more candidates
    than the baselines: measured on 100 Fashion-MNIST images per class, validation put a GAN policy
    1.0 point above the distillation control (seed interval -0.2 to +2.2) that lost 0.6 points to it
    on test; on 20 per class (40 validation images per seed), a GAN policy one or two images ahead
    on every seed had a seed interval of +0.6 to +7.8 and was 0.3 points below on test.
    Returns ``choice``, ``best_gan``, ``best_no_gan``, ``margin`` (means, points), ``margin_ci95``
    (over seeds, else over images), ``margin_ci95_images``, ``means`` and the one-line
    ``recommendation``. ``drew_none``: GAN policies that drew no GAN image (their class-fidelity
    gate withheld every class): they are neither GAN nor no-GAN candidates."""
    from ganaug.metrics import paired_difference

    if not scores:
        raise UsageError("no candidate policies to choose from")
    means = {name: float(np.mean(v)) for name, v in scores.items()}

    def uses_gan(name: str) -> bool:
        return name != REAL and policies[name].uses_gan()

    gan = [n for n in means if uses_gan(n) and n not in drew_none]
    no_gan = [n for n in means if not uses_gan(n)]
    best_gan = max(gan, key=lambda n: means[n]) if gan else None
    best_no = max(no_gan, key=lambda n: means[n]) if no_gan else None
    margin = ci95 = img = None
    if best_gan is not None and best_no is not None:
        margin = means[best_gan] - means[best_no]
        n = min(len(scores[best_gan]), len(scores[best_no]))
        ci95 = paired_difference(scores[best_gan][:n], scores[best_no][:n])["ci95"]
        if image_ci is not None:
            img = image_ci(best_gan, best_no)
    seeds_clear = ci95 is None or ci95[0] > 0
    images_clear = img is None or img[0] > 0
    clear = margin is not None and margin > 0 and seeds_clear and images_clear
    choice = best_gan if best_no is None or clear else best_no
    what = metric.replace("_", " ")
    one_seed = ci95 is None and img is not None
    parts = [] if ci95 is None else [f"over seeds {ci95[0]:+.1f} to {ci95[1]:+.1f}"]
    if img is not None:
        parts.append(f"over the validation images {img[0]:+.1f} to {img[1]:+.1f}")
    interval = f", 95% interval {'; '.join(parts)}" if parts else ""
    if not seeds_clear:
        noise = "the seeds' noise"
    elif one_seed:
        noise = "the noise of one seed's validation images"
    else:
        noise = "the noise of the validation images"
    if choice == best_gan:
        versus = "" if best_no is None else f" over the best no-GAN arm `{best_no}`"
        gain = "" if margin is None else f": {margin:+.1f} points of {what} on validation{versus}{interval}"
        alone = ""
        if margin is not None and ci95 is None and img is None:
            alone = " (one seed: no noise estimate; use more seeds)"
        elif one_seed:
            alone = " (one seed: the interval covers its validation images, not the draw of the subset)"
        text = f"GAN samples with policy `{choice}` ({describe_policy(policies[choice])}){gain}{alone}."
    elif margin is not None and margin > 0:
        words = describe_baseline(policies.get(best_no))
        text = (
            f"use {words} (`{best_no}`) without GAN samples: the best GAN policy `{best_gan}` was "
            f"{margin:+.1f} points of {what} better on validation, within {noise}{interval}."
        )
    else:
        words = describe_baseline(policies.get(best_no))
        if best_gan is None:
            text = f"use {words} (`{best_no}`): no GAN policy was tried."
        else:
            verdict = "worse" if margin < 0 else "no better"
            text = (
                f"use {words} (`{best_no}`) without GAN samples: every GAN policy was {verdict} on "
                f"validation (best GAN policy `{best_gan}`: {margin:+.1f} points of {what})."
            )
    return {
        "choice": choice,
        "best_gan": best_gan,
        "best_no_gan": best_no,
        "margin": margin,
        "margin_ci95": ci95 if ci95 is not None else img,
        "margin_ci95_images": img,
        "metric": metric,
        "means": means,
        "recommendation": text,
    }


def describe_policy(policy: Any) -> str:
    """A short description of a policy's fields that differ from the defaults."""
    from ganaug.eval.policy import MixPolicy

    default = MixPolicy()
    parts = [
        f"{f.name}={getattr(policy, f.name)}"
        for f in dataclasses.fields(policy)
        if f.name != "name" and getattr(policy, f.name) != getattr(default, f.name)
    ]
    return ", ".join(parts) or "defaults"


# -- policy files ----------------------------------------------------------------------------------
def augment_options(policy: Any) -> dict[str, Any]:
    """The ``ganaug augment`` options a policy sets (the rest of it applies at training time)."""
    filters, filter_options = policy.augment_filters()
    out: dict[str, Any] = {
        "strategy": policy.strategy if policy.uses_gan() else 0.0,
        "max_synthetic_ratio": policy.max_synthetic_ratio,
        "filters": filters,
        "truncation": policy.truncation,
        "soft_labels": bool(policy.soft_labels),
        "temperature": policy.temperature,
        "checkpoint": policy.checkpoint,
    }
    return {**out, **filter_options}


def training_options(policy: Any) -> dict[str, Any]:
    """The policy fields that apply when a classifier trains on the augmented data."""
    keys = (
        "synthetic_weight",
        "synthetic_share",
        "balance",
        "loss",
        "soft_weight",
        "distill_real",
        "distill_weight",
        "fresh",
    )
    return {k: getattr(policy, k) for k in keys}


def write_policy_file(
    path: str | os.PathLike[str], policy: Any, teacher: str | None = None, **extra: Any
) -> Path:
    """Write a policy file (JSON) that ``ganaug augment --policy-file`` and :func:`load_policy_file`
    read. ``teacher`` (a classifier file or ``"balanced"``): the soft labels' teacher the policy was
    chosen with, applied by ``augment --policy-file`` too (not one with ``{seed}`` in its path,
    which names one file per seed)."""
    from ganaug.fileio import atomic_write_json

    augment = augment_options(policy)
    if teacher is not None and policy.soft_labels and "{seed}" not in teacher:
        augment["teacher"] = teacher
    body = {
        "kind": POLICY_KIND,
        "version": 1,
        "policy": dataclasses.asdict(policy),
        "augment": augment,
        "training": training_options(policy),
        **extra,
    }
    path = Path(path)
    atomic_write_json(path, body)
    return path


def load_policy_file(path: str | os.PathLike[str]) -> Any:
    """A :class:`ganaug.eval.policy.MixPolicy` from a policy file (JSON or YAML: the ``policy`` mapping,
    or a bare mapping of MixPolicy fields)."""
    return _read_policy_file(path)[0]


def _read_policy_file(path: str | os.PathLike[str]) -> tuple[Any, dict[str, Any]]:
    """The policy of a policy file and the file's whole mapping (its ``augment`` options included)."""
    import yaml

    from ganaug.eval.policy import MixPolicy

    path = Path(path)
    if path.is_dir():
        raise UsageError(f"policy file {path}: a folder, not a policy file (e.g. OUT/tuned_policy.json)")
    if not path.is_file():
        raise UsageError(f"policy file not found: {path}")
    try:
        body = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise UsageError(f"policy file {path}: not JSON/YAML ({exc.__class__.__name__})") from None
    if not isinstance(body, dict):
        raise UsageError(f"policy file {path}: expected a mapping of policy fields")
    kind = body.get("kind")
    if kind is not None and kind != POLICY_KIND:
        raise UsageError(
            f"policy file {path}: a {kind!r} file, not a policy file ({POLICY_KIND!r}, e.g. "
            "eval uplift --tune's tuned_policy.json)"
        )
    fields = body.get("policy", body)
    if not isinstance(fields, dict):
        raise UsageError(f"policy file {path}: 'policy' must be a mapping of policy fields")
    known = {f.name for f in dataclasses.fields(MixPolicy)}
    unknown = sorted(set(fields) - known)
    if unknown and "policy" not in body and len(unknown) >= len(fields) / 2:  # e.g. a summary.json
        raise UsageError(
            f"policy file {path}: not a policy file (unknown fields {', '.join(unknown[:5])}"
            f"{', ...' if len(unknown) > 5 else ''})"
        )
    if unknown:
        raise UsageError(f"policy file {path}: unknown policy field(s) {', '.join(unknown)}")
    try:
        return MixPolicy(**fields), body
    except UsageError as exc:
        raise UsageError(f"policy file {path}: {exc}") from None


def reused_arms(per_seed: Any) -> dict[str, dict[str, list[int]]]:
    """Arm -> {the arm whose result it reused (``same_as``): seeds}, from per-seed results (each
    with ``seed`` and ``arms``: a seed of ``report.json`` or a ``tune.json``)."""
    same: dict[str, dict[str, list[int]]] = {}
    for r in per_seed:
        for name, res in r.get("arms", {}).items():
            if res.get("same_as"):
                same.setdefault(name, {}).setdefault(res["same_as"], []).append(r["seed"])
    return same


def tune_summary(
    choice: dict[str, Any],
    scores: dict[str, list[float]],
    same: dict[str, dict[str, list[int]]] | None = None,
) -> dict[str, Any]:
    """The ``tune`` entry of ``report.json``; ``same``: arm -> {arm it trained exactly as: seeds}."""
    validation = {k: [round(v, 3) for v in vals] for k, vals in scores.items()}
    return {**choice, "validation": validation, "same_as": same or {}}


def tune_table(tune: dict[str, Any]) -> str:
    """Markdown: mean validation score per candidate, best first, with the chosen arm marked."""
    means = tune["means"]
    what = tune["metric"].replace("_", " ")
    described = tune.get("described", {})
    extra = (" what it trains on |", "---|") if described else ("", "")
    lines = [f"| candidate | validation {what} % (mean over seeds) |{extra[0]}", f"|---|---|{extra[1]}"]
    same = tune.get("same_as", {})
    for name in sorted(means, key=lambda n: -means[n]):
        mark = " (chosen)" if name == tune["choice"] else ""
        mark += "".join(
            f" (seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}: same training as {first})"
            for first, seeds in same.get(name, {}).items()
        )
        what_col = f" {described.get(name, '')} |" if described else ""
        lines.append(f"| {name}{mark} | {means[name]:.2f} |{what_col}")
    return "\n".join(lines)


def tune_markdown(report: dict[str, Any]) -> str:
    """``report.md`` of a ``--tune`` run without a test split: the validation table and the verdict."""
    tune = report["tune"]
    return "\n".join(
        [
            "# ganaug uplift: policy choice on validation",
            "",
            *([f"Command: `{report['command']}`", ""] if report.get("command") else []),
            "No test split was given: the choice below was made on validation only.",
            "",
            tune_table(tune),
            "",
            f"Recommendation: {tune['recommendation']}",
            "",
        ]
    )


def apply_policy_file(
    path: str | os.PathLike[str], values: dict[str, Any], explicit: set[str]
) -> dict[str, Any]:
    """``augment --policy-file``: ``values`` (augment option -> value) with the policy's augment
    options filled in, except those in ``explicit`` (given on the command line or in --config)."""
    policy, body = _read_policy_file(path)
    opts = augment_options(policy)
    written = body.get("augment")  # the teacher the policy was chosen with (write_policy_file)
    if isinstance(written, dict) and written.get("teacher") is not None and policy.soft_labels:
        opts["teacher"] = str(written["teacher"])
    out = dict(values)
    for key, value in opts.items():
        if key in explicit or key not in out:
            continue
        out[key] = tuple(value) if key == "filters" else value
    out["_policy"] = policy
    return out


__all__ = [
    "apply_policy_file",
    "augment_options",
    "choose_policy",
    "default_grid",
    "describe_baseline",
    "load_policy_file",
    "reused_arms",
    "stratified_split",
    "training_options",
    "tune_markdown",
    "tune_table",
    "write_policy_file",
]
