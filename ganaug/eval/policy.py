"""Mixing policies: how GAN samples join the real subset in an uplift arm, and the arm's training arrays."""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ganaug.errors import DataError, UsageError
from ganaug.eval.common import is_number, yaml_value

#: A classifier trained on the real data with class-balanced batches (``--teacher`` /
#: ``--filter-classifier`` value; :attr:`MixPolicy.balanced_filter`).
BALANCED_CLASSIFIER = "balanced"

CURRICULA = ("none", "pretrain")


LOSSES = ("ce", "balanced_softmax")


@dataclass
class MixPolicy:
    """How GAN samples join the real subset in arm (b) of :func:`uplift` (each field an option the
    user can choose; defaults = plain 1:1 augmentation).

    - ``strategy``: synthetic images per class, as for ``ganaug augment --strategy`` (a ratio of
      synthetic to real such as ``1.0`` or ``4``; ``"not majority"`` to bring only the smaller
      classes up to the largest -- balancing rare classes only).
    - ``max_synthetic_ratio``: cap of synthetic per real image in any class.
    - ``synthetic_weight``: per-sample loss weight of synthetic images (real ones weigh 1).
    - ``synthetic_share``: fraction of each training batch drawn from the synthetic images
      (``None``: proportional to their number).
    - ``balance``: draw every class equally often in each batch (class-balanced sampling, i.e.
      random oversampling of rare classes). With ``strategy=0`` this is the classical baseline a
      GAN must beat on imbalanced data.
    - ``filter``: the augment confidence filter, with the real-only arm's classifier (trained on the
      same real subset) rejecting samples whose intended class has probability < ``min_confidence``.
    - ``min_class_fidelity``: the augment class-fidelity gate: classes whose samples the real-only
      arm's classifier recognises less often than this get no synthetic images (``None``: off). A
      withheld class keeps its share of the batches: its synthetic places go to its real images.
    - ``balanced_filter``: the confidence filter and the class-fidelity gate use a classifier
      trained on the real subset with class-balanced batches (the uplift ``teacher: balanced``
      when there is one; ``augment --filter-classifier balanced``) instead of the real-only arm's.
      On imbalanced data the real-only classifier has learned the majority class's prior and
      rejects rare-class samples for it.
    - ``near_duplicate``: the augment near-duplicate filter (rejects copies of training images).
    - ``curriculum``: ``"none"`` (train on the mix) or ``"pretrain"`` (the first ``pretrain_fraction``
      of the steps on the synthetic images only, then fine-tune on the real subset).
    - ``use_real``: ``False`` trains on the synthetic images only (CAS arm).
    - ``truncation``: latent truncation for sampling.
    - ``loss``: ``"ce"`` (cross-entropy) or ``"balanced_softmax"``: the rebalancing loss of
      :func:`ganaug.classifier.balanced_softmax_adjustment` (Ren et al. 2020; logit adjustment,
      Menon et al. 2021), with the class prior of the training batches. With ``strategy=0`` the
      second no-GAN baseline on imbalanced data; with GAN samples, GAN arms on top of it.
    - ``soft_labels``: train the synthetic images on a teacher's class probabilities (soft
      cross-entropy) instead of their intended class; the teacher is the real-only arm's classifier
      (or the uplift ``teacher``). Every soft-label arm gets a control arm ``<name>-control``: the
      same training on the real images only, distilled from the same teacher (see ``distill_real``).
    - ``soft_weight``: with ``soft_labels``, the teacher's share of a synthetic image's target:
      ``(1 - soft_weight) * one-hot(intended class) + soft_weight * teacher`` (1: the teacher's
      probabilities alone). Below 1 the target keeps what the generator was asked to draw, which
      the teacher alone discards.
    - ``distill_real``: also distil the real images from the teacher, on the augmented view, with
      target ``(1 - distill_weight) * one-hot + distill_weight * teacher``.
    - ``fresh``: a fresh synthetic pool (same size and filters) every ``refresh_steps`` steps
      (default: one pass over the pool at the policy's batch share), instead of one fixed set.
    - ``temperature``: latent standard deviation for sampling, in (0, 4] (``None``: the generator's
      default -- an ONNX file's ``ganaug.temperature``, else 1.0).
    - ``checkpoint``: which EMA snapshot of the seed's run directory draws the samples: ``"best"``,
      ``"last"`` or a step (``None``: the run's last weights); see :func:`ganaug.snapshots.select_weights`.
      Other than ``None``/``"last"`` it needs a run directory, not an ``.onnx`` or weights file.
    """

    name: str = "gan"
    strategy: Any = 1.0
    max_synthetic_ratio: float | None = None
    synthetic_weight: float = 1.0
    synthetic_share: float | None = None
    balance: bool = False
    filter: bool = False
    min_confidence: float = 0.9
    min_class_fidelity: float | None = None
    balanced_filter: bool = False
    near_duplicate: bool = False
    curriculum: str = "none"
    pretrain_fraction: float = 0.5
    use_real: bool = True
    truncation: float | None = None
    loss: str = "ce"
    soft_labels: bool = False
    soft_weight: float = 1.0
    distill_real: bool = False
    distill_weight: float = 0.5
    fresh: bool = False
    refresh_steps: int | None = None
    temperature: float | None = None
    checkpoint: str | int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or self.name == "real" or "/" in self.name:
            raise UsageError(f"policy name {self.name!r} is reserved or not a plain name")
        self._check_types()
        if self.synthetic_weight < 0:
            raise UsageError(f"synthetic_weight must be >= 0, got {self.synthetic_weight}")
        if self.synthetic_share is not None and not 0 < self.synthetic_share <= 1:
            raise UsageError(f"synthetic_share must be in (0, 1], got {self.synthetic_share}")
        if self.balance and self.synthetic_share is not None:
            raise UsageError("balance and synthetic_share both set the batch mix; choose one")
        if self.curriculum not in CURRICULA:
            raise UsageError(f"curriculum must be one of {', '.join(CURRICULA)}, got {self.curriculum!r}")
        if not 0 < self.pretrain_fraction < 1:
            raise UsageError(f"pretrain_fraction must be in (0, 1), got {self.pretrain_fraction}")
        if not 0 <= self.min_confidence <= 1:
            raise UsageError(f"min_confidence must be in [0, 1], got {self.min_confidence}")
        if self.min_class_fidelity is not None and not 0 <= self.min_class_fidelity <= 1:
            raise UsageError(f"min_class_fidelity must be in [0, 1], got {self.min_class_fidelity}")
        self._check_new_fields()

    def _check_types(self) -> None:
        """Numbers where numbers belong and true/false for the switches (a policy file is YAML)."""
        required = (
            "synthetic_weight",
            "min_confidence",
            "pretrain_fraction",
            "distill_weight",
            "soft_weight",
        )
        optional = ("max_synthetic_ratio", "synthetic_share", "min_class_fidelity", "truncation")
        switches = (
            "balance",
            "filter",
            "balanced_filter",
            "near_duplicate",
            "use_real",
            "soft_labels",
            "distill_real",
            "fresh",
        )
        for key in (*required, *optional):
            value = getattr(self, key)
            if value is None and key in optional:
                continue
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
                raise UsageError(f"policy {self.name!r}: {key} must be a number, got {value!r}")
        for key in switches:
            value = getattr(self, key)
            if not isinstance(value, (bool, np.bool_)):
                raise UsageError(f"policy {self.name!r}: {key} must be true or false, got {value!r}")
        steps = self.refresh_steps
        whole = isinstance(steps, numbers.Integral) and not isinstance(steps, (bool, np.bool_))
        if steps is not None and not whole:
            raise UsageError(f"policy {self.name!r}: refresh_steps must be an integer, got {steps!r}")

    def _check_new_fields(self) -> None:
        if self.loss not in LOSSES:
            raise UsageError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        if not 0 < self.distill_weight <= 1:
            raise UsageError(f"distill_weight must be in (0, 1], got {self.distill_weight}")
        if not 0 < self.soft_weight <= 1:
            raise UsageError(f"soft_weight must be in (0, 1], got {self.soft_weight}")
        if self.soft_weight != 1 and not self.soft_labels:
            raise UsageError(f"policy {self.name!r}: soft_weight needs soft_labels=true")
        if self.balanced_filter and not (self.filter or self.min_class_fidelity is not None):
            raise UsageError(f"policy {self.name!r}: balanced_filter needs filter=true or min_class_fidelity")
        if self.refresh_steps is not None and self.refresh_steps < 1:
            raise UsageError(f"refresh_steps must be >= 1, got {self.refresh_steps}")
        special = self.soft_labels or self.distill_real or self.fresh or self.loss != "ce"
        if self.curriculum != "none" and special:
            raise UsageError(
                "curriculum=pretrain cannot be combined with loss, soft_labels, distill_real or fresh"
            )
        if (self.fresh or self.soft_labels) and not self.uses_gan():
            raise UsageError(f"policy {self.name!r}: fresh and soft_labels need GAN samples (strategy 0)")
        if self.fresh and not self.use_real:
            raise UsageError("fresh needs use_real (the pool is mixed into the real images)")
        self._check_sampling_fields()

    def _check_sampling_fields(self) -> None:
        from ganaug.runtime import check_temperature_option
        from ganaug.snapshots import parse_choice

        try:
            self.temperature = check_temperature_option(self.temperature)
            self.checkpoint = parse_choice(self.checkpoint)
        except UsageError as exc:
            raise UsageError(f"policy {self.name!r}: {str(exc).removeprefix('--')}") from None

    def uses_gan(self) -> bool:
        """False for the no-GAN baselines (``strategy`` 0: real images only)."""
        return not (is_number(str(self.strategy)) and float(self.strategy) == 0)

    def control(self) -> MixPolicy:
        """The distillation control of a soft-label arm: the same policy on the real images only,
        distilled from the same teacher; everything that is not about synthetic images is kept."""
        return dataclasses.replace(
            self,
            name=f"{self.name}-control",
            strategy=0,
            max_synthetic_ratio=None,
            synthetic_weight=1.0,
            synthetic_share=None,
            filter=False,
            min_class_fidelity=None,
            balanced_filter=False,
            near_duplicate=False,
            truncation=None,
            soft_labels=False,
            soft_weight=1.0,
            distill_real=True,
            fresh=False,
            refresh_steps=None,
            temperature=None,
            checkpoint=None,
        )

    def synthetic_key(self, default_temperature: float | None = None) -> tuple:
        """Policies with equal keys share one synthetic set per seed. ``default_temperature``: the
        temperature the seed's generator samples at when the policy names none (so a policy at
        ``temperature=0.8`` and one at the generator's own choice of 0.8 share a set)."""
        temperature = self.temperature if self.temperature is not None else default_temperature
        return (
            str(self.strategy),
            self.max_synthetic_ratio,
            self.filter,
            self.min_confidence if self.filter else None,
            self.min_class_fidelity,
            self.balanced_filter,
            self.near_duplicate,
            self.truncation,
            temperature,
            None if self.checkpoint == "last" else self.checkpoint,
        )

    def training_key(self, with_synthetic: bool = True) -> tuple:
        """The fields that decide how a classifier trains on the real images plus a given synthetic
        set (everything but the name and the fields that decide the set's contents).
        ``with_synthetic=False``: the set is empty (or the policy draws none), so only the fields
        that apply to the real images count -- such a GAN policy trains as a no-GAN one."""
        if not (with_synthetic and self.uses_gan()):
            distill = self.distill_weight if self.distill_real else None
            return ("real images only", self.balance, self.use_real, self.loss, self.distill_real, distill)
        return (
            "with synthetic images",
            self.synthetic_weight,
            self.synthetic_share,
            self.balance,
            self.curriculum,
            self.pretrain_fraction,
            self.use_real,
            self.loss,
            self.soft_labels,
            self.soft_weight,
            self.distill_real,
            self.distill_weight,
            self.fresh,
            self.refresh_steps,
        )

    def augment_filters(self) -> tuple[list[str], dict[str, Any]]:
        """The ``ganaug augment`` filters this policy asks for, and their options."""
        names = (
            (["confidence"] if self.filter else [])
            + (["class-fidelity"] if self.min_class_fidelity is not None else [])
            + (["near-duplicate"] if self.near_duplicate else [])
        )
        options: dict[str, Any] = {"min_confidence": self.min_confidence} if self.filter else {}
        if self.min_class_fidelity is not None:
            options["min_class_fidelity"] = self.min_class_fidelity
        if self.balanced_filter:
            options["filter_classifier"] = BALANCED_CLASSIFIER
        return names, options

    def picks_snapshot(self) -> bool:
        """True when ``checkpoint`` names a snapshot (``best`` or a step): it needs a run directory."""
        return self.checkpoint not in (None, "last")

    def generator_for(self, generator: str | Path) -> Path:
        """The weights this policy samples: ``generator``, or its ``checkpoint`` snapshot when that
        names one (UsageError when ``generator`` is a file, not a run directory)."""
        if not self.picks_snapshot():
            return Path(generator)
        if not Path(generator).is_dir():
            raise UsageError(
                f"policy {self.name!r}: checkpoint={self.checkpoint} needs a run directory as the "
                f"generator, got the file {generator}"
            )
        from ganaug.snapshots import select_weights

        return select_weights(generator, self.checkpoint)

    @classmethod
    def parse(cls, spec: str) -> MixPolicy:
        """``"name=filtered,strategy=1,filter=true,min_confidence=0.9"`` -> MixPolicy (YAML values)."""
        fields = {f.name for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            key, sep, raw = part.partition("=")
            key = key.strip().replace("-", "_")
            if not sep or key not in fields:
                raise UsageError(
                    f"--policy {spec!r}: expected key=value pairs with keys {', '.join(sorted(fields))}"
                )
            if key == "name" or (key == "strategy" and not is_number(raw)):
                values[key] = raw.strip()
            else:
                values[key] = yaml_value(raw)
        if "name" not in values:
            values["name"] = "gan" if not values else "-".join(f"{k}{v}" for k, v in values.items())[:60]
        return cls(**values)


@dataclass
class Synthetic:
    """One synthetic set of a seed: images, labels (data class indices), teacher probabilities
    (``[n, k]`` or None) and its bookkeeping."""

    images: np.ndarray
    labels: np.ndarray
    soft: np.ndarray | None = None
    info: dict[str, Any] = dataclasses.field(default_factory=dict)


def class_balanced_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Per-sample draw weights that give every present class the same total weight."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    return 1.0 / counts[labels]


def mix_arrays(policy: MixPolicy, real: Any, syn: Synthetic, k: int) -> dict[str, Any]:
    """The training arrays of one arm (``train_classifier`` data arguments): the real subset and/or
    the synthetic set, loss weights, batch draw weights, soft targets (NaN rows = hard label) and
    the distillation mask, as ``policy`` says."""
    n_syn = len(syn.images) if policy.uses_gan() else 0
    if n_syn == 0:
        if not policy.use_real:
            raise DataError(f"policy {policy.name!r}: no synthetic images passed the filters")
        out: dict[str, Any] = {"images": real.images, "labels": real.labels}
        if policy.balance:
            out["draw_weight"] = class_balanced_weights(real.labels, k)
        if policy.distill_real:
            out["distill_mask"] = np.ones(len(real), bool)
        return out
    if not policy.use_real:
        out = {"images": syn.images, "labels": syn.labels}
        if policy.soft_labels:
            out["soft_targets"] = synthetic_targets(policy, syn, k)
        return out
    n_real = len(real)
    out = {
        "images": np.concatenate([real.images, syn.images]),
        "labels": np.concatenate([real.labels, syn.labels]),
    }
    if policy.synthetic_weight != 1.0:
        out["sample_weight"] = np.concatenate(
            [np.ones(n_real, np.float32), np.full(n_syn, policy.synthetic_weight, np.float32)]
        )
    weights = draw_weights(policy, real.labels, syn.labels, k, withheld_counts(syn, list(real.classes), k))
    if weights is not None:
        out["draw_weight"] = weights
    if policy.soft_labels:
        real_rows = np.full((n_real, k), np.nan, np.float32)
        out["soft_targets"] = np.concatenate([real_rows, synthetic_targets(policy, syn, k)])
    if policy.distill_real:
        out["distill_mask"] = np.concatenate([np.ones(n_real, bool), np.zeros(n_syn, bool)])
    return out


def draw_weights(
    policy: MixPolicy,
    real_labels: np.ndarray,
    syn_labels: np.ndarray,
    k: int,
    withheld: np.ndarray | None = None,
) -> np.ndarray | None:
    """Relative draw weights of the real items followed by the synthetic ones, as ``policy`` mixes
    its batches (``None``: draw uniformly): ``synthetic_share`` of every batch from the synthetic
    items (the rest uniformly from the real ones), else class-balanced batches (``balance``).
    ``withheld`` (``[k]``): synthetic images per class the class-fidelity gate withheld; their
    places go to their class's real images."""
    real_labels, syn_labels = np.asarray(real_labels, np.int64), np.asarray(syn_labels, np.int64)
    n_real, n_syn = len(real_labels), len(syn_labels) if policy.uses_gan() else 0
    withheld = np.zeros(k) if withheld is None else np.asarray(withheld, np.float64)
    if n_syn == 0:
        return class_balanced_weights(real_labels, k) if policy.balance else None
    if not policy.use_real:
        return None
    planned = n_syn + int(withheld.sum())  # the synthetic set before the class-fidelity gate
    if policy.synthetic_share is not None:
        share = policy.synthetic_share
        real_w = np.full(n_real, (1 - share) / max(n_real, 1)) + _withheld_mass(real_labels, withheld) * (
            share / planned
        )
        return np.concatenate([real_w, np.full(n_syn, share / planned)])
    if policy.balance:
        return class_balanced_weights(np.concatenate([real_labels, syn_labels]), k)
    if withheld.any():
        return np.concatenate([1.0 + _withheld_mass(real_labels, withheld), np.ones(n_syn)])
    return None


def withheld_counts(syn: Synthetic, classes: list[str], k: int) -> np.ndarray:
    """Synthetic images per class (``[k]``) that the class-fidelity gate withheld from ``syn``."""
    counts = np.zeros(k, np.float64)
    for name, n in (syn.info.get("withheld") or {}).items():
        counts[classes.index(name)] = n
    return counts


def _withheld_mass(labels: np.ndarray, withheld: np.ndarray) -> np.ndarray:
    """Per real image: its class's withheld synthetic count spread over the class's real images, so a
    withheld class keeps its share of the batches (its synthetic places go to its real images)."""
    real_counts = np.bincount(labels, minlength=len(withheld)).astype(np.float64)
    return (withheld / np.maximum(real_counts, 1.0))[labels]


def synthetic_targets(policy: MixPolicy, syn: Synthetic, k: int) -> np.ndarray:
    """The soft targets (``[n, k]``) of a soft-label policy's synthetic images: the teacher's
    probabilities, mixed with the intended class's one-hot by ``soft_weight``."""
    if syn.soft is None:
        raise DataError(f"policy {policy.name!r}: the synthetic set carries no soft labels")
    return mix_soft_targets(syn.soft, syn.labels, policy.soft_weight, k)


def mix_soft_targets(teacher: np.ndarray, labels: np.ndarray, soft_weight: float, k: int) -> np.ndarray:
    """``(1 - soft_weight) * one-hot(labels) + soft_weight * teacher`` as float32 ``[n, k]``."""
    teacher = np.asarray(teacher, np.float32)
    if soft_weight == 1:
        return teacher
    onehot = np.eye(k, dtype=np.float32)[np.asarray(labels, np.int64)]
    return ((1 - soft_weight) * onehot + soft_weight * teacher).astype(np.float32)


def batch_class_prior(labels: np.ndarray, k: int, draw_weight: np.ndarray | None = None) -> np.ndarray:
    """Expected class distribution of the training batches (draw weights summed per class)."""
    w = np.ones(len(labels)) if draw_weight is None else np.asarray(draw_weight, np.float64)
    prior = np.bincount(labels, weights=w, minlength=k)
    return prior / prior.sum()


def refresh_every(policy: MixPolicy, n_real: int, n_syn: int, batch_size: int) -> int:
    """Steps between fresh pools: ``refresh_steps``, else one pass over the pool at its batch share."""
    if policy.refresh_steps is not None:
        return int(policy.refresh_steps)
    share = policy.synthetic_share if policy.synthetic_share is not None else n_syn / max(1, n_real + n_syn)
    return max(1, math.ceil(n_syn / max(1e-9, batch_size * share)))


__all__ = [
    "BALANCED_CLASSIFIER",
    "CURRICULA",
    "LOSSES",
    "MixPolicy",
    "Synthetic",
    "batch_class_prior",
    "class_balanced_weights",
    "mix_arrays",
    "mix_soft_targets",
    "refresh_every",
    "synthetic_targets",
]
