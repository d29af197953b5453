"""Specs of the eval commands, declared once (:mod:`ganaug.specs`): the CLI options, ``--config`` and
the saved ``config.yaml`` all come from these fields.

- :class:`UpliftSpec` -- ``ganaug eval uplift`` as the user asks for it (:class:`MixPolicy` is its arm
  type); :class:`UpliftConfig` is what :func:`ganaug.eval.uplift.uplift` resolves it to (the
  ``settings`` of ``report.json``).
- :class:`QualitySpec`, :class:`CasSpec` -- ``ganaug eval quality`` and ``ganaug eval cas``.
"""

# ruff: noqa: RUF009 -- ganaug.specs.option() is a field specifier (it returns dataclasses.field)
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ganaug import specs
from ganaug.errors import UsageError
from ganaug.eval.common import yaml_value
from ganaug.eval.policy import BALANCED_CLASSIFIER, CURRICULA, LOSSES, MixPolicy
from ganaug.limits import BATCH, BIG, FRACTION, TEMPERATURE, TRUNCATION, UNIT, Limit
from ganaug.specs import option


def parse_counts(value: Any) -> list[int] | None:
    """``"4166,73,139"`` (or a list) -> ``[4166, 73, 139]``."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        parts = list(value)
    else:
        parts = [p for p in str(value).replace("/", ",").replace(" ", ",").split(",") if p]
    try:
        return [int(p) for p in parts]
    except (TypeError, ValueError):
        raise UsageError(f"--imbalance: expected comma-separated integers, got {value!r}") from None


def parse_pairs(values: Any, flag: str) -> dict[str, Any]:
    """``("KEY=VALUE", ...)`` -> dict with YAML-parsed values (``lr_d=4e-4`` -> 0.0004); mappings
    (from a config file) are taken as they are."""
    out: dict[str, Any] = {}
    for item in values:
        if isinstance(item, dict):
            out.update({str(k).replace("-", "_"): v for k, v in item.items()})
            continue
        key, sep, raw = str(item).partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{flag}: expected KEY=VALUE, got {item!r}")
        out[key.strip().replace("-", "_")] = yaml_value(raw)
    return out


def parse_strategy(value: Any) -> Any:
    """A number (ratio of synthetic to real) when it parses as one, else the strategy name/mapping."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


def _pairs(value: Any) -> dict[str, Any]:
    return parse_pairs([value], "--gan-option")


def _merge(values: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    return {k: v for d in values for k, v in d.items()}


def _policy(value: Any) -> MixPolicy:
    """A ``--policy`` value: ``key=value`` pairs, a mapping (config file) or a MixPolicy."""
    if isinstance(value, MixPolicy):
        return value
    if isinstance(value, dict):
        names = {f.name for f in dataclasses.fields(MixPolicy)}
        unknown = sorted(set(value) - names)
        if unknown:
            raise UsageError(f"--policy: unknown key(s) {', '.join(unknown)}")
        return MixPolicy(**value)
    return MixPolicy.parse(str(value))


def _channels(value: Any) -> int | None:
    if value is None:
        return None
    if str(value).strip() not in ("1", "3"):
        raise UsageError(f"--channels must be 1 or 3, got {value!r}")
    return int(value)


def _strategy(value: Any) -> str:
    return str(value)


COUNT = Limit(int, 1, BIG)


#: ``--teacher`` value: a teacher trained on each seed's real images with class-balanced batches.
BALANCED_TEACHER = BALANCED_CLASSIFIER


@dataclass
class UpliftSpec:
    """``ganaug eval uplift``: does GAN augmentation help a classifier on ``data``?

    One field per option (names = the options' long names with ``_``). The single-policy fields
    (``strategy`` ... ``fresh``) describe one :class:`MixPolicy` arm named ``gan``, used when
    ``policies`` is empty (and not ``tune``). Library callers may pass ``seeds`` as a list of seeds,
    ``per_class_n`` as one count per class, ``imbalance`` as a list.
    """

    data: str | None = option(None, argument=True, path=True, required=True)
    test: str | None = option(
        None, path=True, help="Real test split (required unless --tune, which then only chooses a policy)."
    )
    per_class_n: int | list[int] | None = option(
        None,
        flags=("--per-class",),
        limit=COUNT,
        help="Real images drawn per class (default: every image of DATA, as it is).",
    )
    imbalance: list[int] | None = option(
        None, convert=parse_counts, metavar="COUNTS", help="Real images per class instead, e.g. 4166,73,139."
    )
    seeds: int | list[int] = option(3, limit=Limit(int, 1, 1000), help="Number of seeds (paired repeats).")
    out: str | None = specs.out_dir(required=True, help="Report folder.")
    generator: str | None = specs.generator(
        required=False,
        help="Reuse this generator (run dir, .safetensors or .onnx) instead of training one per seed; "
        "{seed} in the path picks one per seed.",
    )
    steps: int | None = option(None, limit=COUNT, help="GAN training steps (ganaug train default if unset).")
    arch: str | None = option(None, help="GAN architecture (dcgan, resnet, mlp).")
    batch_size: int | None = option(None, limit=Limit(int, 2, 1 << 16), help="GAN batch size.")
    gan_options: dict[str, Any] = option(
        default_factory=dict,
        flags=("--gan-option",),
        convert=_pairs,
        multiple=True,
        collect=_merge,
        metavar="KEY=VALUE",
        aliases=("gan_option",),
        help="Any other 'ganaug train' option, e.g. --gan-option lr_d=4e-4 (repeatable).",
    )
    classifier_steps: int = specs.classifier_steps(help="Optimisation steps of every classifier arm.")
    classifier_batch_size: int = option(128, limit=BATCH, help="Batch size of the classifiers.")
    classifier_lr: float = option(
        2e-3, limit=Limit(float, 0, 10, low_open=True), help="Classifier learning rate."
    )
    hflip: bool = specs.hflip(
        help="Random horizontal flips in the classical augmentation (mirror-symmetric data only)."
    )
    shift: int | None = option(
        None, limit=Limit(int, 0, 1024), help="Maximum random shift in pixels (default: size/8)."
    )
    amp: bool = option(
        False, help="bf16 autocast for the classifiers (CUDA, or CPUs with bf16).", show_default=False
    )
    # the single-policy arm (MixPolicy fields; --policy replaces them)
    strategy: str = option(
        "1.0",
        convert=_strategy,
        metavar="STRATEGY",
        help="Synthetic images per class, as for 'ganaug augment' (ratio, 'not majority', ...).",
    )
    max_synthetic_ratio: float | None = option(
        None, limit=Limit(float, 0, 1e6), help="Cap synthetic per real image."
    )
    synthetic_weight: float = option(
        1.0, limit=Limit(float, 0, 1e6), help="Loss weight of each synthetic sample (real: 1)."
    )
    synthetic_share: float | None = option(
        None, limit=UNIT, help="Fraction of every batch drawn from synthetic images (default: by count)."
    )
    balance: bool = option(
        False,
        show_default=False,
        help="Class-balanced batches (every class drawn equally often); with --strategy 0 the classical "
        "oversampling baseline.",
    )
    filter: bool = option(
        False,
        flags=("--filter/--no-filter",),
        aliases=("use_filter",),
        help="Confidence filter: the real-only classifier must give the intended class --min-confidence.",
    )
    min_confidence: float = specs.min_confidence()
    curriculum: str = option(
        "none",
        choices=CURRICULA,
        help="pretrain: synthetic-only pre-training, then fine-tuning on the real images.",
    )
    pretrain_fraction: float = option(0.5, limit=UNIT, help="Share of the steps for pre-training (pretrain).")
    truncation: float | None = option(None, limit=TRUNCATION, help="Latent truncation for sampling.")
    temperature: float | None = option(
        None, limit=TEMPERATURE, help="Sampling temperature (latent std; default: the generator's own)."
    )
    checkpoint: str | None = option(
        None, help="EMA snapshot of each seed's run directory to sample: best, last or a step number."
    )
    loss: str = option(
        "ce",
        choices=LOSSES,
        help="balanced_softmax: the rebalancing loss (logit adjustment by the batch class prior).",
    )
    soft_labels: bool = option(
        False,
        show_default=False,
        help="Train synthetic images on the teacher's class probabilities; adds a distillation control arm.",
    )
    soft_weight: float = option(
        1.0,
        limit=FRACTION,
        help="With --soft-labels: the teacher's share of a synthetic target, the rest its intended class.",
    )
    distill_real: bool = option(
        False, show_default=False, help="Also distil the real images from the teacher."
    )
    fresh: bool = option(
        False, show_default=False, help="A fresh synthetic pool every epoch instead of one fixed set."
    )
    teacher: str | None = option(
        None,
        path=True,
        metavar="PATH|balanced",
        help="Teacher for soft labels / distillation: ONNX or ganaug .safetensors classifier ({seed} "
        "allowed), or 'balanced': one trained on each seed's real images with class-balanced batches "
        "(default: the real-only arm's classifier).",
    )
    tune: bool = option(
        False,
        show_default=False,
        help="Choose the policy on a validation split of each seed's real subset (the --policy arms, "
        "else a default grid, plus the no-GAN baselines); adds arm 'tuned', a recommendation and "
        "tuned_policy.json (for 'ganaug augment --policy-file').",
    )
    tune_fraction: float = option(
        0.2,
        limit=FRACTION,
        help="Validation share of each seed's subset with --tune.",
    )
    tune_test_all: bool = option(False, show_default=False, help="With --tune, also test every candidate.")
    tune_generator: str | None = option(
        None,
        path=True,
        help="With --tune: generator(s) trained on the train part of each seed's split only ({seed} as "
        "for --generator; 'ganaug eval uplift --tune' writes them to OUT/seed_N/tune/gan). Default: "
        "train one per seed; a --generator that saw the validation images is not used for tuning.",
    )
    threads: int | None = option(
        None,
        limit=Limit(int, 1, 1024),
        help="torch threads (default: half the usable cores, 1..8; OMP_NUM_THREADS if set).",
    )
    policies: list[MixPolicy] = option(
        default_factory=list,
        flags=("--policy",),
        convert=_policy,
        multiple=True,
        metavar="SPEC",
        help="A mixing policy arm as key=value pairs (repeatable; replaces the single-policy flags), "
        "e.g. 'name=filtered,strategy=1,filter=true,min_confidence=0.9'.",
    )
    quality: bool = option(
        True, flags=("--quality/--no-quality",), help="FID/KID/PR and memorisation of each seed's generator."
    )
    quality_per_class: int = option(
        500, limit=COUNT, help="Synthetic images per class for the quality metrics."
    )
    feature_steps: int = specs.feature_steps()
    image_size: int | None = option(
        None, limit=Limit(int, 1, 1024), help="Resize DATA and TEST to this size."
    )
    channels: int | None = option(None, convert=_channels, metavar="[1|3]", help="Image channels (1 or 3).")
    device: str = specs.device()
    seed: int = specs.seed()
    #: library only: the candidates of ``tune`` (``None``: the default grid plus ``policies``)
    tune_grid: list[MixPolicy] | None = option(None, cli=False)

    def seed_list(self) -> list[int]:
        """The seeds: ``seed, seed+1, ...`` (``seeds`` of them), or ``seeds`` itself when a list."""
        if isinstance(self.seeds, (list, tuple)):
            return [int(s) for s in self.seeds]
        return list(range(int(self.seed), int(self.seed) + int(self.seeds)))

    def single_policy(self) -> MixPolicy:
        """The arm the single-policy fields describe (name ``gan``)."""
        return MixPolicy(
            name="gan",
            strategy=parse_strategy(self.strategy),
            max_synthetic_ratio=self.max_synthetic_ratio,
            synthetic_weight=self.synthetic_weight,
            synthetic_share=self.synthetic_share,
            balance=self.balance,
            filter=self.filter,
            min_confidence=self.min_confidence,
            curriculum=self.curriculum,
            pretrain_fraction=self.pretrain_fraction,
            truncation=self.truncation,
            temperature=self.temperature,
            checkpoint=self.checkpoint,
            loss=self.loss,
            soft_labels=self.soft_labels,
            soft_weight=self.soft_weight,
            distill_real=self.distill_real,
            fresh=self.fresh,
        )

    def arms(self) -> list[MixPolicy]:
        """The policy arms: ``policies``; none with ``tune`` (the grid decides); else the single one."""
        if self.policies:
            return list(self.policies)
        return [] if self.tune else [self.single_policy()]

    def all_gan_options(self) -> dict[str, Any]:
        """``gan_options`` with ``steps``, ``arch`` and ``batch_size`` where set."""
        opts = dict(self.gan_options or {})
        for key in ("steps", "arch", "batch_size"):
            if getattr(self, key) is not None:
                opts[key] = getattr(self, key)
        return opts


@dataclass
class QualitySpec:
    """``ganaug eval quality``: FID, KID, precision/recall and memorisation of a generator."""

    generator: str | None = specs.generator()
    data: str | None = option(
        None, path=True, required=True, help="Real reference images (best: held out, never seen by the GAN)."
    )
    train: str | None = option(
        None,
        path=True,
        aliases=("train_data",),
        help="The GAN's training images: feature extractor and memorisation check (default: --data).",
    )
    n_per_class: int = specs.n_per_class()
    feature_steps: int = specs.feature_steps()
    out: str | None = specs.out_dir(help="Write quality.json, quality.md and plots here.")
    device: str = specs.device()
    seed: int = specs.seed()


@dataclass
class CasSpec:
    """``ganaug eval cas``: train on synthetic images only, test on real ones."""

    generator: str | None = specs.generator()
    data: str | None = option(
        None,
        path=True,
        required=True,
        help="Real training images: the baseline classifier draws as many per class from here.",
    )
    test: str | None = option(None, path=True, required=True, help="Real test split.")
    n_per_class: int = specs.n_per_class()
    classifier_steps: int = specs.classifier_steps()
    hflip: bool = specs.hflip()
    out: str | None = specs.out_dir(help="Write cas.json here.")
    device: str = specs.device()
    seed: int = specs.seed()


@dataclass
class UpliftConfig:
    """Settings of an uplift experiment (saved in ``report.json``)."""

    counts: list[int]
    seeds: list[int]
    classifier_steps: int = 2000
    classifier_batch_size: int = 128
    classifier_lr: float = 2e-3
    hflip: bool = False
    shift: int | None = None
    amp: bool = False
    gan_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    generator: str | None = None
    policies: list[MixPolicy] = dataclasses.field(default_factory=lambda: [MixPolicy()])
    quality: bool = True
    quality_per_class: int = 500
    feature_steps: int = 3000
    device: str = "cpu"
    teacher: str | None = None
    tune: bool = False
    tune_fraction: float = 0.2
    tune_grid: list[MixPolicy] = dataclasses.field(default_factory=list)
    tune_test_all: bool = False
    tune_generator: str | None = None
    threads: int | None = None


__all__ = [
    "BALANCED_TEACHER",
    "CasSpec",
    "QualitySpec",
    "UpliftConfig",
    "UpliftSpec",
    "parse_counts",
    "parse_pairs",
    "parse_strategy",
]
