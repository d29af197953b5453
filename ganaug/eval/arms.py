"""One seed's arms of the uplift experiment: the seed's generator, synthetic sets, teacher and classifiers."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ganaug.errors import UsageError
from ganaug.eval.policy import (
    MixPolicy,
    Synthetic,
    batch_class_prior,
    class_balanced_weights,
    mix_arrays,
    refresh_every,
)
from ganaug.eval.spec import BALANCED_TEACHER, UpliftConfig


def _classifier_opts(cfg: UpliftConfig) -> dict[str, Any]:
    return {
        "steps": cfg.classifier_steps,
        "batch_size": cfg.classifier_batch_size,
        "lr": cfg.classifier_lr,
        "hflip": cfg.hflip,
        "shift": cfg.shift,
        "amp": cfg.amp,
        "device": cfg.device,
    }


def _loss_options(policy: MixPolicy, arrays: dict[str, Any], k: int, teacher: Any) -> dict[str, Any]:
    from ganaug.eval.classifier_train import balanced_softmax_adjustment

    opts: dict[str, Any] = {}
    if policy.loss == "balanced_softmax":
        prior = batch_class_prior(arrays["labels"], k, arrays.get("draw_weight"))
        opts["logit_adjustment"] = balanced_softmax_adjustment(prior)
    if policy.distill_real:
        if teacher is None:
            raise UsageError(f"policy {policy.name!r}: distill_real needs a teacher")
        opts.update(teacher=teacher, distill_weight=policy.distill_weight)
    return opts


def _train_arm(
    policy: MixPolicy,
    real: Any,
    syn: Synthetic,
    k: int,
    seed: int,
    cfg: UpliftConfig,
    progress: bool,
    teacher: Any = None,
    fresh: Callable[[int], Synthetic] | None = None,
) -> Any:
    """Train one policy's arm; the same total number of steps as the real-only arm. ``fresh(r)``
    gives the ``r``-th fresh synthetic pool (``fresh`` policies)."""
    from ganaug.eval.classifier_train import train_classifier

    opts = {**_classifier_opts(cfg), "seed": seed, "progress": progress, "classes": list(real.classes)}
    if policy.curriculum == "pretrain" and policy.uses_gan() and len(syn.images) and policy.use_real:
        total = opts.pop("steps")
        pre = max(1, round(total * policy.pretrain_fraction))
        first = train_classifier(
            syn.images, syn.labels, k, steps=pre, desc=f"{policy.name} pre-train", **opts
        )
        return train_classifier(
            real.images,
            real.labels,
            k,
            steps=total - pre,
            init=first,
            desc=f"{policy.name} fine-tune",
            **opts,
        )
    arrays = mix_arrays(policy, real, syn, k)
    extra = _loss_options(policy, arrays, k, teacher)
    n_syn = len(arrays["images"]) - len(real) if policy.use_real else len(arrays["images"])
    if policy.fresh and n_syn > 0 and fresh is not None:
        every = refresh_every(policy, len(real), n_syn, cfg.classifier_batch_size)
        extra.update(refresh=lambda r: mix_arrays(policy, real, fresh(r), k), refresh_every=every)
    if n_syn == 0:
        desc = policy.name if (policy.balance or not policy.uses_gan()) else f"{policy.name} (no synthetic)"
    else:
        desc = policy.name if policy.use_real else f"{policy.name} (synthetic only)"
    return train_classifier(**arrays, num_classes=k, desc=desc, **opts, **extra)


def _synthesize(
    policy: MixPolicy,
    real: Any,
    generator: Path,
    out: Path,
    seed: int,
    filter_classifier: Path,
    progress: bool,
    warn: Callable[[str], None],
    soft_labels: bool = False,
    teacher: Path | None = None,
    gate_seed: int | None = None,
    balanced_filter: Path | None = None,
) -> Synthetic:
    """GAN samples for ``policy`` through the augment pipeline (synthetic only, NPZ in ``out``);
    with ``soft_labels`` also the teacher's probabilities (``teacher``, else the filter classifier).
    ``gate_seed``: the class-fidelity probe's seed (``None``: from ``seed``). ``balanced_filter``:
    the filter classifier of a policy with ``balanced_filter`` (class-balanced batches)."""
    from ganaug.augment import augment_dataset

    filters, filter_options = policy.augment_filters()
    if filter_options.pop("filter_classifier", None) is not None:  # balanced_filter
        if balanced_filter is None:
            raise ValueError(f"policy {policy.name!r}: balanced_filter needs a class-balanced classifier")
        filter_classifier = balanced_filter
    if policy.min_class_fidelity is not None:  # one gate decision per seed, fresh pools included
        filter_options["fidelity_seed"] = gate_seed
    summary = augment_dataset(
        real,
        policy.generator_for(generator),  # the policy's checkpoint (snapshot) of a run directory
        out,
        strategy=policy.strategy,
        max_synthetic_ratio=policy.max_synthetic_ratio,
        filters=filters,
        filter_classifier=filter_classifier,
        fmt="npz",
        real="none",
        seed=seed,
        truncation=policy.truncation,
        temperature=policy.temperature,
        overwrite=True,
        progress=progress,
        warn=lambda _m: None,  # per-class shortfalls: summarised below in one line
        soft_labels=soft_labels,
        teacher=(teacher or filter_classifier) if soft_labels else None,
        **filter_options,
    )
    with np.load(out / "data.npz", allow_pickle=False) as npz:
        images, labels = npz["images"], npz["labels"].astype(np.int64)
        names = [str(c) for c in npz["classes"]]
        soft = npz["soft_labels"] if "soft_labels" in npz.files else None
    if soft_labels and soft is None:
        soft = np.zeros((0, len(real.classes)), np.float32)
    if names != list(real.classes):  # map the writer's class order onto the data's
        index = {name: i for i, name in enumerate(real.classes)}
        labels = np.array([index[names[i]] for i in labels], dtype=np.int64)
        if soft is not None:
            soft = soft[:, [names.index(c) for c in real.classes]]
    info = {
        "n_synthetic": len(images),
        "counts": summary["counts"]["synthetic"],
        "candidates": summary.get("candidates", {}),
        "rejected": summary.get("rejected", {}),
        "shortfall": summary.get("shortfall", {}),
        "withheld": {c: int(w["planned"]) for c, w in summary.get("withheld", {}).items() if w["planned"]},
        "temperature": float(summary.get("temperature", 1.0)),  # what the images were drawn at
    }
    if policy.picks_snapshot():  # which step `best` (or a step) named for this seed's run
        from ganaug.snapshots import select_snapshot

        info["snapshot_step"] = int(select_snapshot(generator, policy.checkpoint)["step"])
    drawn = sum(info["candidates"].values())
    info["acceptance_rate"] = (len(images) / drawn) if drawn else None
    if info["withheld"]:
        fidelity = summary.get("filter_settings", {}).get("class-fidelity", {}).get("fidelity", {})
        warn(
            f"policy {policy.name!r}: no synthetic images for "
            + ", ".join(f"{c} (fidelity {fidelity.get(c, float('nan')):.3f})" for c in info["withheld"])
            + f": below min_class_fidelity {policy.min_class_fidelity:g}"
        )
    if info["shortfall"]:
        planned = len(images) + sum(info["shortfall"].values())
        warn(
            f"policy {policy.name!r}: only {len(images)} of {planned} synthetic images passed the filters "
            f"({len(info['shortfall'])} classes short, {info['acceptance_rate']:.0%} of candidates kept)"
        )
    return Synthetic(images, labels, soft, info)


@dataclass
class SeedContext:
    """What every arm of one seed (or of one seed's tuning split) shares."""

    seed: int
    real: Any
    k: int
    gen_path: Path
    work: Path
    filter_path: Path
    teacher: Any
    teacher_path: Path
    progress: bool
    say: Callable[[str], None]
    complain: Callable[[str], None]
    balanced_filter_path: Path | None = None


def policy_arms(
    ctx: SeedContext,
    policies: Sequence[MixPolicy],
    cfg: UpliftConfig,
    score: Callable[[Any], dict[str, Any]],
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Train every policy's arm (and the distillation control of each soft-label arm) on ``ctx.real``
    plus GAN samples; ``score(clf)`` evaluates a classifier. Returns ``(results, controls)`` with
    ``controls`` mapping each soft-label arm to its control arm (soft-label arms whose controls are
    the same training share the first one's). An arm that would train exactly as an earlier one --
    the same synthetic images (e.g. ``temperature=0.8`` and a generator that chose 0.8 itself, or a
    class-fidelity gate that withheld nothing) and the same training fields -- is not trained
    again: its result is the earlier arm's, marked ``same_as``."""
    results: dict[str, dict[str, Any]] = {}
    sets: dict[tuple, tuple[Synthetic, float]] = {}
    temperatures: dict[Path, float] = {}

    def set_key(policy: MixPolicy) -> tuple:
        if not policy.uses_gan() or policy.temperature is not None:
            return policy.synthetic_key()
        weights = policy.generator_for(ctx.gen_path)
        if weights not in temperatures:
            temperatures[weights] = generator_temperature(weights)
        return policy.synthetic_key(temperatures[weights])

    need_soft = {set_key(p) for p in policies if p.soft_labels}
    controls: dict[str, str] = {}
    control_policies = []
    same_control: dict[str, str] = {}  # control settings (name aside) -> the control arm's name
    for policy in policies:
        if policy.soft_labels:
            ctl = policy.control()
            if ctl.name in {p.name for p in policies}:
                raise UsageError(f"policy name {ctl.name!r} is taken by the control arm of {policy.name!r}")
            settings = repr(dataclasses.replace(ctl, name="control"))
            controls[policy.name] = same_control.setdefault(settings, ctl.name)
            if controls[policy.name] == ctl.name:
                control_policies.append(ctl)
    trained: dict[tuple, str] = {}  # (synthetic set, training fields) -> the arm that trained so
    for policy in [*policies, *control_policies]:
        key = set_key(policy)
        if policy.uses_gan() and key not in sets:
            notes = (", confidence filter" if policy.filter else "") + (
                ", teacher's soft labels for the policies that use them" if key in need_soft else ""
            )
            ctx.say(
                f"seed {ctx.seed}: synthetic images for {policy.name!r} (strategy {policy.strategy!r}{notes})"
            )
            t0 = time.perf_counter()
            syn = _synth(ctx, policy, ctx.work / f"synthetic_{policy.name}", ctx.seed, key in need_soft)
            sets[key] = (syn, time.perf_counter() - t0)
        if policy.uses_gan():
            syn, syn_seconds = sets[key]
        else:  # a no-GAN baseline: no synthetic set at all
            syn, syn_seconds = Synthetic(ctx.real.images[:0], ctx.real.labels[:0]), 0.0
        with_syn = policy.uses_gan() and len(syn.images) > 0  # a gate may have withheld every class
        images = (key if policy.fresh else _fingerprint(syn)) if with_syn else "no synthetic images"
        withheld = sorted((syn.info.get("withheld") or {}).items()) if with_syn else []  # batch weights
        same = (images, tuple(withheld), policy.training_key(with_syn))
        if same in trained:
            first = trained[same]
            ctx.say(
                f"seed {ctx.seed}: {policy.name!r} trains exactly as {first!r} here (the same synthetic "
                "images and training fields): its result is reused"
            )
            results[policy.name] = {
                **results[first],
                "same_as": first,
                "train_seconds": 0.0,
                "synthetic": {**syn.info, "n_synthetic": len(syn.images)},
                "synthesis_seconds": round(syn_seconds, 2),
            }
            continue
        trained[same] = policy.name
        fresh_rounds: list[int] = []

        def fresh(r: int, policy: MixPolicy = policy, log: list[int] = fresh_rounds) -> Synthetic:
            log.append(r)
            round_seed = _derive_seed(ctx.seed, r)
            return _synth(ctx, policy, ctx.work / f"fresh_{policy.name}", round_seed, policy.soft_labels)

        ctx.say(
            f"seed {ctx.seed}: classifier for {policy.name!r} ({len(ctx.real)} real + {len(syn.images)} "
            f"synthetic{', fresh every epoch' if policy.fresh else ''}; {thread_count_text()})"
        )
        t0 = time.perf_counter()
        clf = _train_arm(policy, ctx.real, syn, ctx.k, ctx.seed, cfg, ctx.progress, ctx.teacher, fresh)
        info = {**syn.info, "n_synthetic": len(syn.images)}
        if policy.fresh:
            info["fresh_pools"] = 1 + len(fresh_rounds)
        results[policy.name] = {
            **score(clf),
            "train_seconds": round(time.perf_counter() - t0, 2),
            "n_train": len(ctx.real) * policy.use_real + len(syn.images),
            "synthetic": info,
            "synthesis_seconds": round(syn_seconds, 2),
        }
    return results, controls


def generator_temperature(weights: Path) -> float:
    """The temperature a generator samples at when a policy names none (its training-time choice)."""
    from ganaug.sampling import open_sampler

    return float(open_sampler(weights, device="cpu").default_temperature)


def _fingerprint(syn: Synthetic) -> str:
    """A digest of a synthetic set's contents (images, labels, teacher probabilities)."""
    import hashlib

    h = hashlib.sha256()
    for part in (syn.images, syn.labels, syn.soft):
        h.update(b"-" if part is None else np.ascontiguousarray(part).tobytes() + str(part.shape).encode())
    return h.hexdigest()


def _synth(ctx: SeedContext, policy: MixPolicy, out: Path, seed: int, soft: bool) -> Synthetic:
    return _synthesize(
        policy,
        ctx.real,
        ctx.gen_path,
        out,
        seed,
        ctx.filter_path,
        ctx.progress,
        ctx.complain,
        soft_labels=soft,
        teacher=ctx.teacher_path,
        gate_seed=ctx.seed,
        balanced_filter=ctx.balanced_filter_path,
    )


def _derive_seed(seed: int, r: int) -> int:
    """The noise seed of fresh pool ``r`` (> 0) of a seed's arm (pool 0 uses the seed itself)."""
    return int(np.random.SeedSequence([int(seed), int(r), 0xF2E5]).generate_state(1)[0] >> 1)


def thread_count_text() -> str:
    """``"1 thread"`` / ``"N threads"``: torch's intra-op threads, for the progress lines."""
    import torch

    n = torch.get_num_threads()
    return f"{n} thread{'s' if n != 1 else ''}"


def real_classifier(
    ctx_seed: int,
    real: Any,
    classes: list[str],
    cfg: UpliftConfig,
    progress: bool,
    desc: str,
    balance: bool = False,
) -> Any:
    """The fixed classifier on the real images only (``balance``: class-balanced batches)."""
    from ganaug.eval.classifier_train import train_classifier

    extra = {"draw_weight": class_balanced_weights(real.labels, len(classes))} if balance else {}
    return train_classifier(
        real.images,
        real.labels,
        len(classes),
        **extra,
        seed=ctx_seed,
        progress=progress,
        classes=classes,
        desc=desc,
        **_classifier_opts(cfg),
    )


def seed_teacher(
    cfg: UpliftConfig,
    seed: int,
    real_clf: Any,
    real_clf_path: Path,
    real: Any = None,
    work: Path | None = None,
    progress: bool = False,
    policies: Sequence[MixPolicy] = (),
) -> tuple[Any, Path]:
    """The teacher of soft-label and distillation arms: ``cfg.teacher`` (a classifier file, or
    :data:`BALANCED_TEACHER`: one trained here on ``real`` with class-balanced batches, saved in
    ``work``, if one of ``policies`` learns from a teacher), else the real-only classifier. On
    imbalanced data the real-only classifier has learned the majority class's prior, and its soft
    labels pass that prior on."""
    needed = _learns_from_teacher(policies)
    if cfg.teacher is None or (cfg.teacher == BALANCED_TEACHER and not needed):
        return real_clf, real_clf_path
    if cfg.teacher == BALANCED_TEACHER:
        if real is None or work is None:
            raise ValueError("a balanced teacher needs the real subset and a work directory")
        clf = real_classifier(
            seed, real, list(real.classes), cfg, progress, "teacher (class-balanced)", balance=True
        )
        return clf, clf.save(work / "teacher_classifier.safetensors")
    path = Path(cfg.teacher.replace("{seed}", str(seed)))
    if path.suffix.lower() == ".onnx":
        from ganaug.eval.onnx_classifier import OnnxClassifier

        return OnnxClassifier(path, list(real_clf.classes or [])), path
    from ganaug.eval.classifier_model import Classifier

    return Classifier.load(path, cfg.device), path


def _learns_from_teacher(policies: Sequence[MixPolicy]) -> bool:
    return any(p.soft_labels or p.distill_real for p in policies)


def seed_balanced_filter(
    cfg: UpliftConfig,
    seed: int,
    real: Any,
    work: Path,
    progress: bool,
    policies: Sequence[MixPolicy],
    teacher_path: Path,
) -> Path | None:
    """The filter classifier of the policies with ``balanced_filter`` (``None`` when none has it):
    the run's balanced teacher when it has one (``teacher_path``), else one trained here on ``real``
    with class-balanced batches, saved in ``work``."""
    if not any(p.balanced_filter for p in policies):
        return None
    if cfg.teacher == BALANCED_TEACHER and _learns_from_teacher(policies):
        return teacher_path  # seed_teacher trained exactly this classifier
    classes = list(real.classes)
    clf = real_classifier(seed, real, classes, cfg, progress, "filter (class-balanced)", balance=True)
    return clf.save(work / "balanced_filter_classifier.safetensors")


def seed_generator(
    seed: int,
    subset: Any,
    cfg: UpliftConfig,
    seed_dir: Path,
    progress: bool,
    say: Callable[[str], None],
    given: str | None,
    what: str = "the GAN",
) -> tuple[Path, dict[str, Any]]:
    """The seed's generator: ``given`` (a path, ``{seed}`` filled in), else one trained on exactly
    ``subset`` into ``seed_dir/gan``."""
    t0 = time.perf_counter()
    if given is not None:
        gen_path = Path(given.replace("{seed}", str(seed)))
        info: dict[str, Any] = {"source": str(gen_path), "trained": False}
    else:
        from ganaug.training import require_complete, train

        say(f"seed {seed}: training {what} on {len(subset)} real images")
        opts = {"seed": seed, **cfg.gan_options}
        run = train(
            None,
            seed_dir / "gan",
            dataset=subset,
            overwrite=True,
            quiet=not progress,
            progress=progress,
            **opts,
        )
        require_complete(run, f"seed {seed}'s GAN ({seed_dir / 'gan'})")
        gen_path = Path(run.run_dir)
        info = {
            "source": str(gen_path),
            "trained": True,
            "steps": run.step,
            "options": dict(opts),
            "metrics": run.metrics,
        }
    info["seconds"] = round(time.perf_counter() - t0, 1)
    return gen_path, info


__all__ = [
    "SeedContext",
    "generator_temperature",
    "policy_arms",
    "real_classifier",
    "seed_balanced_filter",
    "seed_generator",
    "seed_teacher",
    "thread_count_text",
]
