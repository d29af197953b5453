"""Built-in plugin: ``--filter confidence``, ``--filter class-fidelity`` and ``--filter near-duplicate``
for synthetic images.

``confidence``: a classifier scores each synthetic candidate; it is rejected when the probability of
its intended class is below ``--min-confidence``. The classifier is ganaug's small CNN trained on the
real data at the start of the run (``--confidence-steps N`` training steps, default 500), or the
one given with ``--filter-classifier``: a ``.safetensors`` file written by
:meth:`ganaug.classifier.Classifier.save`, or an ONNX model with one image input (uint8 NHWC, or
float NCHW/NHWC in [-1, 1]) and one ``[N, classes]`` output of probabilities or logits, whose
class order is the dataset's unless its ``ganaug.classifier``/``ganaug.classes`` metadata names the
classes.

For each batch it votes on, ``confidence`` also publishes its scores (the probability of the
intended class) in ``context.state["candidate_scores"]["confidence"]``: with ``--fill best``,
``augment`` fills a class the filter starved with the highest-scoring rejected candidates (never ones
the near-duplicate filter rejected).

``class-fidelity``: a class-level gate, decided once before any image is written. The same
classifier as ``confidence`` labels ``--fidelity-probe`` samples per class (their own noise stream,
seeded by ``--fidelity-seed`` or else ``--seed``; the run's temperature and truncation); a class
whose samples it recognises as that class less often than ``--min-class-fidelity`` (default 0.8)
gets no synthetic images at all (``summary.json``:
``withheld``, and every class's fidelity under ``filter_settings``). Samples a generator cannot draw
recognisably tend to teach a classifier the wrong boundary between look-alike classes; the
per-sample ``confidence`` filter keeps the few good-looking ones, which are the least informative.

``near-duplicate``: rejects a candidate whose RMS pixel difference (intensities in [0, 1], both images
area-downscaled to at most 16x16) to its nearest real training image, of any class, is below
``--near-duplicate-threshold`` -- a generator that memorised a training image would otherwise copy it
into the new dataset. The default, 0.03, is about the 0.5th percentile of the distances between
Fashion-MNIST training images and their nearest other training image. The search is exact,
vectorised and chunked (matrix products).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ganaug.api import (
    SCORES_KEY,
    AugmentContext,
    OnnxClassifier,
    PluginOption,
    UsageError,
    hookimpl,
    make_noise,
)

STATE_KEY = "filters"
DEFAULT_CONFIDENCE_STEPS = 500
#: The confidence threshold's default; the same as ``ganaug eval uplift --min-confidence``.
DEFAULT_MIN_CONFIDENCE = 0.9
DEFAULT_NEAR_DUPLICATE = 0.03
DEFAULT_MIN_CLASS_FIDELITY = 0.8
DEFAULT_FIDELITY_PROBE = 256
#: ``--teacher`` / ``--filter-classifier`` value: a classifier trained on the real data with
#: class-balanced batches.
BALANCED_TEACHER = "balanced"
EMBED_SIZE = 16
_CLASSIFIER_FILE = "an ONNX or ganaug .safetensors classifier"
OPTIONS = (
    PluginOption(
        "min_confidence", DEFAULT_MIN_CONFIDENCE, float, low=0, high=1,
        help="--filter confidence: minimum classifier probability of the intended class.",
    ),
    PluginOption(
        "filter_classifier", None, str, path=True,
        help=f"--filter confidence / class-fidelity: {_CLASSIFIER_FILE}, or '{BALANCED_TEACHER}': one "
        "trained on DATA with class-balanced batches (for imbalanced data; default: train one on DATA).",
    ),
    PluginOption(
        "confidence_steps", DEFAULT_CONFIDENCE_STEPS, int, low=1, high=10**9,
        help="--filter confidence: training steps of the classifier trained on DATA.",
    ),
    PluginOption(
        "min_class_fidelity", DEFAULT_MIN_CLASS_FIDELITY, float, low=0, high=1,
        help="--filter class-fidelity: withhold a class whose probe samples the classifier "
        "recognises less often than this.",
    ),
    PluginOption(
        "fidelity_probe", DEFAULT_FIDELITY_PROBE, int, low=1, high=10**4,
        help="--filter class-fidelity: probe samples per class.",
    ),
    PluginOption(
        "fidelity_seed", None, int, low=0, high=2**63 - 1,
        help="--filter class-fidelity: seed of the probe samples (default: from --seed).",
    ),
    PluginOption(
        "near_duplicate_threshold", DEFAULT_NEAR_DUPLICATE, float, low=0, high=1,
        help="--filter near-duplicate: reject below this RMS pixel distance (0-1) to a training image.",
    ),
    PluginOption(
        "teacher", None, str, path=True,
        help=f"--soft-labels: {_CLASSIFIER_FILE}, or '{BALANCED_TEACHER}': one trained on DATA with "
        "class-balanced batches (for imbalanced data; default: the confidence filter's classifier).",
    ),
)  # fmt: skip


# -- classifiers -----------------------------------------------------------------------------------
# OnnxClassifier moved to the core (torch-free): ganaug.eval.onnx_classifier


class _MappedClassifier:
    """A ganaug Classifier whose columns are reordered to the dataset's classes."""

    def __init__(self, clf: Any, columns: np.ndarray) -> None:
        self.clf, self.columns = clf, columns

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        return self.clf.predict_proba(images)[:, self.columns]


def load_filter_classifier(path: str | Path, classes: list[str], what: str = "--filter-classifier") -> Any:
    """``--filter-classifier`` (or ``what``, e.g. ``--teacher``): an ONNX model or a ganaug classifier
    ``.safetensors`` file."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{what}: file not found: {path}")
    if path.suffix.lower() == ".onnx":
        return OnnxClassifier(path, classes)
    from ganaug.api import Classifier

    clf = Classifier.load(path)
    names = clf.classes or []
    if names:
        missing = [c for c in classes if c not in names]
        if missing:
            raise UsageError(f"{what}: {path} does not know class(es) {', '.join(missing)}")
        return _MappedClassifier(clf, np.array([names.index(c) for c in classes]))
    if clf.num_classes != len(classes):
        raise UsageError(f"{what}: {path} has {clf.num_classes} classes, the data {len(classes)}")
    return clf


def _setup_confidence(context: AugmentContext) -> dict[str, Any]:
    opts = context.options
    threshold = float(opts.get("min_confidence", DEFAULT_MIN_CONFIDENCE))
    if not 0.0 <= threshold <= 1.0:
        raise UsageError(f"--min-confidence must be between 0 and 1, got {threshold}")
    balanced = opts.get("filter_classifier") == BALANCED_TEACHER
    if opts.get("filter_classifier") and not balanced:
        clf = load_filter_classifier(opts["filter_classifier"], context.classes)
        source = str(opts["filter_classifier"])
    else:
        trained = _train_on_real(context, balanced, "the confidence filter's classifier")
        clf, source = trained["classifier"], trained["source"]
    return {"classifier": clf, "threshold": threshold, "source": source, "balanced": balanced}


def _train_on_real(
    context: AugmentContext, balanced: bool = False, role: str | None = None
) -> dict[str, Any]:
    """ganaug's small CNN trained on the real data (``--confidence-steps``); ``balanced``: with
    class-balanced batches, so it does not learn an imbalanced dataset's class prior. ``role``:
    what it is for, in the progress line."""
    from ganaug.api import train_classifier

    real = context.real
    steps = int(context.options.get("confidence_steps", DEFAULT_CONFIDENCE_STEPS))
    what = role or ("the soft-label teacher" if balanced else "the confidence filter's classifier")
    if balanced:
        what += " (class-balanced batches)"
    if len(np.unique(real.labels)) < 2:
        raise UsageError(f"{what} needs real images of at least two classes to train on")
    extra: dict[str, Any] = {}
    if balanced:
        from ganaug.api import class_balanced_weights

        extra["draw_weight"] = class_balanced_weights(real.labels, len(context.classes))
    context.echo(f"training {what} ({steps} steps)")
    clf = train_classifier(
        real.images,
        real.labels,
        len(context.classes),
        steps=steps,
        seed=context.seed,
        classes=list(context.classes),
        **extra,
    )
    how = " with class-balanced batches" if balanced else ""
    return {"classifier": clf, "source": f"trained on the real data{how} ({steps} steps)"}


def _setup_teacher(context: AugmentContext, state: dict[str, Any]) -> dict[str, Any]:
    """``--soft-labels``' teacher: ``--teacher FILE``; else the filters' classifier (for ``--teacher
    balanced`` only a class-balanced one), else one set up exactly as the confidence filter's would
    be (``--filter-classifier`` or trained; for ``--teacher balanced`` trained class-balanced)."""
    path = context.options.get("teacher")
    if path and path != BALANCED_TEACHER:
        return {"classifier": load_filter_classifier(path, context.classes, "--teacher"), "source": str(path)}
    filters = state.get("confidence") or state.get("class-fidelity")  # both hold the one classifier
    if path == BALANCED_TEACHER and not (filters and filters["balanced"]):
        return _train_on_real(context, balanced=True)
    filters = filters or _setup_confidence(context)
    return {"classifier": filters["classifier"], "source": filters["source"]}


# -- class fidelity -------------------------------------------------------------------------------
def class_fidelity(context: AugmentContext, classifier: Any, per_class: int) -> dict[str, float]:
    """The fraction of ``per_class`` samples of each class the generator has that ``classifier``
    labels as that class (top-1), drawn from a noise stream of their own (from ``--fidelity-seed``,
    else the run's seed; the run's temperature and truncation), so the probe does not change which
    images the run writes, and runs that share a probe seed take the same decision."""
    opts, gen = context.options, context.generator
    base = opts.get("fidelity_seed")
    base = int(context.seed) if base is None else int(base)
    seed = int(np.random.SeedSequence([base, 0xF1DE]).generate_state(1)[0] >> 1)
    out: dict[str, float] = {}
    for i, name in enumerate(c for c in context.classes if c in gen.classes):
        # class i takes rows i*per_class... of one stream; one class at a time bounds the memory
        stream = make_noise(seed, gen.z_dim, opts.get("truncation"), i * per_class, opts.get("temperature"))
        images = gen.generate_from_noise(stream.take(per_class), [name] * per_class)
        predicted = np.asarray(classifier.predict_proba(images)).argmax(1)
        out[name] = float((predicted == context.classes.index(name)).mean())
    return out


def _setup_class_fidelity(context: AugmentContext, state: dict[str, Any]) -> dict[str, Any]:
    opts = context.options
    threshold = float(opts.get("min_class_fidelity", DEFAULT_MIN_CLASS_FIDELITY))
    probe = int(opts.get("fidelity_probe", DEFAULT_FIDELITY_PROBE))
    conf = state.get("confidence") or _setup_confidence(context)
    fidelity = class_fidelity(context, conf["classifier"], probe)
    for name, value in fidelity.items():
        if value < threshold:
            context.withhold(
                name,
                f"--filter class-fidelity: the classifier recognises {value:.1%} of {probe} probe samples "
                f"as {name!r}, below --min-class-fidelity {threshold:g}",
            )
    context.echo("class fidelity of the generator: " + ", ".join(f"{c} {v:.3f}" for c, v in fidelity.items()))
    return {**conf, "threshold": threshold, "probe": probe, "fidelity": fidelity}


# -- near duplicates -------------------------------------------------------------------------------
def embed_pixels(images: np.ndarray, size: int = EMBED_SIZE) -> np.ndarray:
    """uint8 NHWC -> float32 ``[N, d]``: intensities in [0, 1], area-downscaled to at most ``size``."""
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.asarray(images, dtype=np.float32) / np.float32(255.0)).permute(0, 3, 1, 2)
    h, w = x.shape[2], x.shape[3]
    if h > size or w > size:
        x = F.adaptive_avg_pool2d(x, (min(h, size), min(w, size)))
    return x.reshape(len(x), -1).numpy()


def nearest_rms(queries: np.ndarray, reference: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """For each query row, the RMS difference to its nearest reference row (exact, chunked)."""
    d = queries.shape[1]
    best = np.full(len(queries), np.inf, dtype=np.float32)
    q2 = (queries.astype(np.float32) ** 2).sum(1)
    for start in range(0, len(reference), chunk):
        ref = reference[start : start + chunk]
        r2 = (ref**2).sum(1)
        for qs in range(0, len(queries), 1024):
            block = q2[qs : qs + 1024, None] + r2[None, :] - 2.0 * (queries[qs : qs + 1024] @ ref.T)
            best[qs : qs + 1024] = np.minimum(best[qs : qs + 1024], block.min(1))
    return np.sqrt(np.maximum(best, 0.0) / d)


def _setup_near_duplicate(context: AugmentContext) -> dict[str, Any]:
    threshold = float(context.options.get("near_duplicate_threshold", DEFAULT_NEAR_DUPLICATE))
    if threshold < 0:
        raise UsageError(f"--near-duplicate-threshold must be >= 0, got {threshold}")
    return {"reference": embed_pixels(context.real.images), "threshold": threshold}


# -- hooks -----------------------------------------------------------------------------------------
@hookimpl
def ganaug_add_options() -> tuple[PluginOption, ...]:
    """The options of the filters (and of the soft-label teacher they provide)."""
    return OPTIONS


@hookimpl
def ganaug_configure(context: AugmentContext) -> None:
    state: dict[str, Any] = {}
    if context.claim_filter("confidence"):
        state["confidence"] = _setup_confidence(context)
    if context.claim_filter("class-fidelity"):
        state["class-fidelity"] = _setup_class_fidelity(context, state)
    if context.claim_filter("near-duplicate"):
        state["near-duplicate"] = _setup_near_duplicate(context)
    if context.options.get("soft_labels") and "teacher" not in context.state:  # another plugin's wins
        state["teacher"] = _setup_teacher(context, state)
        context.state["teacher"] = state["teacher"]["classifier"]  # read by augment --soft-labels
    context.state[STATE_KEY] = state


@hookimpl
def ganaug_accept(
    images: np.ndarray, labels: np.ndarray, context: AugmentContext
) -> dict[str, np.ndarray] | None:
    state = context.state.get(STATE_KEY) or {}
    if "confidence" not in state and "near-duplicate" not in state:  # e.g. only a soft-label teacher
        return None
    votes: dict[str, np.ndarray] = {}
    if "confidence" in state:
        conf = state["confidence"]
        probs = conf["classifier"].predict_proba(images)
        p = probs[np.arange(len(labels)), labels]
        votes["confidence"] = p >= conf["threshold"]
        # the score behind the vote: lets ``augment --fill best`` rank the rejected candidates
        context.state.setdefault(SCORES_KEY, {})["confidence"] = p
    if "near-duplicate" in state:
        near = state["near-duplicate"]
        dist = nearest_rms(embed_pixels(images), near["reference"])
        votes["near-duplicate"] = dist >= near["threshold"]
    return votes


@hookimpl
def ganaug_finish(context: AugmentContext, summary: dict[str, Any]) -> None:
    state = context.state.get(STATE_KEY) or {}
    report = {}
    if "confidence" in state:
        report["confidence"] = {
            "min_confidence": state["confidence"]["threshold"],
            "classifier": state["confidence"]["source"],
        }
    if "class-fidelity" in state:
        gate = state["class-fidelity"]
        report["class-fidelity"] = {
            "min_class_fidelity": gate["threshold"],
            "probe_per_class": gate["probe"],
            "classifier": gate["source"],
            "fidelity": {c: round(v, 4) for c, v in gate["fidelity"].items()},
        }
    if "near-duplicate" in state:
        report["near-duplicate"] = {
            "threshold": state["near-duplicate"]["threshold"],
            "metric": f"RMS pixel difference at <= {EMBED_SIZE}x{EMBED_SIZE}",
        }
    if "teacher" in state:
        summary["teacher"] = {"classifier": state["teacher"]["source"]}
    if report:
        summary.setdefault("filter_settings", {}).update(report)
