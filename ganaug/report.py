"""Reports of ``ganaug eval``: ``report.json``, ``report.md`` tables and PNG plots (matplotlib, Agg).

Plots are drawn on :class:`matplotlib.figure.Figure` objects directly (no pyplot, no global backend
state) and written atomically like every other file.
"""

from __future__ import annotations

import html
import io
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ganaug.fileio import atomic_write_bytes, atomic_write_json, atomic_write_text

PLOT_PER_CLASS = "per_class_accuracy.png"
PLOT_FID = "fid_per_class.png"
PLOT_GRID = "samples_nearest_real.png"


# -- formatting (the demo's report uses these too) -----------------------------------------------
def fmt_pm(entry: dict[str, Any], digits: int = 2, omit_zero_std: bool = False) -> str:
    """``mean ± std`` of a summary entry; ``omit_zero_std``: just the mean when the std is 0 or absent."""
    if omit_zero_std and not entry.get("std"):
        return f"{entry['mean']:.{digits}f}"
    return f"{entry['mean']:.{digits}f} ± {entry['std']:.{digits}f}"


def fmt_ci(diff: dict[str, Any], digits: int = 2, missing: str = "n/a (1 seed)") -> str:
    """``[lo, hi]`` of a paired difference's 95% CI (signed), ``missing`` without one."""
    if diff.get("ci95") is None:
        return missing
    lo, hi = diff["ci95"]
    return f"[{lo:+.{digits}f}, {hi:+.{digits}f}]"


def fmt_delta(diff: dict[str, Any], digits: int = 2, missing: str = "n/a (1 seed)") -> str:
    """A paired difference: signed mean, then its CI (``missing`` without one; nothing if empty)."""
    ci = fmt_ci(diff, digits, missing)
    return f"{diff['mean']:+.{digits}f}" + (f" {ci}" if ci else "")


def fmt_num(v: Any, digits: int = 3) -> str:
    """A float to ``digits`` decimals, ``–`` for None or NaN, anything else as ``str``."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


# -- documents as blocks (the demo's report.md and report.html) -----------------------------------
#: One block of a document: ``("h1"|"h2"|"p"|"note", text)``, ``("img", path, alt)``,
#: ``("pre", shell text)`` or ``("table", header, rows)``; text may hold `code` and [links](href).
Block = tuple[Any, ...]

_INLINE = re.compile(r"`([^`]+)`|\[([^\]]+)\]\(([^)]+)\)")


def _inline_html(text: str) -> str:
    parts, pos = [], 0
    for match in _INLINE.finditer(text):
        parts.append(html.escape(text[pos : match.start()]))
        code, label, href = match.groups()
        if code is not None:
            parts.append(f"<code>{html.escape(code)}</code>")
        else:
            parts.append(f'<a href="{html.escape(href, quote=True)}">{_inline_html(label)}</a>')
        pos = match.end()
    parts.append(html.escape(text[pos:]))
    return "".join(parts)


def render_markdown(doc: Sequence[Block]) -> str:
    """The report blocks as GitHub-flavoured Markdown."""
    lines: list[str] = []
    for kind, *args in doc:
        if kind == "h1":
            lines += [f"# {args[0]}", ""]
        elif kind == "h2":
            lines += [f"## {args[0]}", ""]
        elif kind == "p":
            lines += [args[0], ""]
        elif kind == "note":
            lines += [f"> **Note.** {args[0]}", ""]
        elif kind == "img":
            lines += [f"![{args[1]}]({args[0]})", ""]
        elif kind == "pre":
            lines += ["```bash", args[0], "```", ""]
        elif kind == "table":
            lines += [markdown_table(*args), ""]
    return "\n".join(lines)


_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.45}"
    "table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.25rem .6rem}"
    "th{background:#f3f3f3}td:not(:first-child){text-align:right}img{max-width:100%}"
    ".note{background:#fff6d5;border-left:4px solid #e0b000;padding:.5rem 1rem}"
    "pre{background:#f6f8fa;padding:.8rem;overflow-x:auto}"
)


def render_html(doc: Sequence[Block], title: str) -> str:
    """The report blocks as one self-contained HTML page (images linked, not embedded)."""
    body: list[str] = []
    for kind, *args in doc:
        if kind in ("h1", "h2"):
            body.append(f"<{kind}>{html.escape(args[0])}</{kind}>")
        elif kind == "p":
            body.append(f"<p>{_inline_html(args[0])}</p>")
        elif kind == "note":
            body.append(f'<p class="note"><strong>Note.</strong> {_inline_html(args[0])}</p>')
        elif kind == "img":
            body.append(f'<p><img src="{html.escape(args[0], quote=True)}" alt="{html.escape(args[1])}"></p>')
        elif kind == "pre":
            body.append(f"<pre>{html.escape(args[0])}</pre>")
        elif kind == "table":
            header, rows = args
            head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
            cells = "".join(
                "<tr>" + "".join(f"<td>{_inline_html(str(c))}</td>" for c in row) + "</tr>" for row in rows
            )
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{cells}</tbody></table>")
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_CSS}</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


_REF_NOTE = [
    "In brackets: the same metric between two random halves of the real images on the same "
    "features (real–real), the scale to read it by: a generator near it is as close to the data as "
    "the data is to itself."
]


def _with_ref(q: dict[str, Any], key: str, digits: int) -> str:
    """``FID 12.34 (real–real 1.20)``-style cell: the value and its real-vs-real reference."""
    ref = (q.get("real_vs_real") or {}).get(key)
    return fmt_num(q[key], digits) + ("" if ref is None else f" (real–real {ref:.{digits}f})")


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def describe_policy_fields(p: dict[str, Any]) -> str:
    """A policy's fields (``dataclasses.asdict`` of a MixPolicy) in words."""
    parts = [f"strategy {p['strategy']!r}"]
    if p.get("max_synthetic_ratio") is not None:
        parts.append(f"max ratio {p['max_synthetic_ratio']}")
    if p.get("synthetic_weight", 1.0) != 1.0:
        parts.append(f"loss weight {p['synthetic_weight']}")
    if p.get("synthetic_share") is not None:
        parts.append(f"batch share {p['synthetic_share']}")
    if p.get("balance"):
        parts.append("class-balanced batches")
    if p.get("filter"):
        parts.append(f"confidence filter ≥ {p['min_confidence']}")
    if p.get("min_class_fidelity") is not None:
        parts.append(f"classes with fidelity < {p['min_class_fidelity']} withheld")
    if p.get("balanced_filter"):
        parts.append("filtered by a class-balanced classifier")
    if p.get("near_duplicate"):
        parts.append("near-duplicate filter")
    if p.get("curriculum", "none") != "none":
        parts.append(f"pre-train on synthetic {p['pretrain_fraction']:.0%} of steps, then real")
    if not p.get("use_real", True):
        parts.append("synthetic only")
    if p.get("truncation") is not None:
        parts.append(f"truncation {p['truncation']}")
    if p.get("temperature") is not None:
        parts.append(f"temperature {p['temperature']}")
    if p.get("checkpoint") not in (None, "last"):
        parts.append(f"snapshot {p['checkpoint']}")
    if p.get("loss", "ce") != "ce":
        parts.append(f"{p['loss'].replace('_', ' ')} loss")
    if p.get("soft_labels"):
        weight = p.get("soft_weight", 1.0)
        if weight == 1:
            parts.append("teacher's soft labels for synthetic images")
        else:
            parts.append(f"synthetic targets {weight:g} teacher + {1 - weight:g} intended class")
    if p.get("distill_real"):
        parts.append(f"real images distilled from the teacher (weight {p.get('distill_weight', 0.5)})")
    if p.get("fresh"):
        parts.append("fresh synthetic pool every epoch")
    return ", ".join(parts)


def uplift_markdown(report: dict[str, Any], plots: Sequence[str] = ()) -> str:
    """The ``report.md`` of an uplift run."""
    lines = [
        *_header_section(report),
        *_accuracy_section(report),
        *_arms_section(report),
        *_control_section(report),
        *_baseline_section(report),
        *_per_class_section(report),
        *_quality_section(report),
        *_wall_time_section(report),
    ]
    if plots:
        lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in plots]
    lines += _tune_section(report)
    return "\n".join(lines) + "\n"


def _header_section(report: dict[str, Any]) -> list[str]:
    """Title, command, data and the settings of the real subset, the classifier and the GAN."""
    s = report["settings"]
    counts = s["counts"]
    same = len(set(counts)) == 1
    return [
        "# ganaug uplift report",
        "",
        *([f"Command: `{report['command']}`", ""] if report.get("command") else []),
        *_merged_from_lines(report),
        f"Training data: `{report.get('data', '')}`; test data: `{report.get('test', '')}`.",
        f"Real images per class: {counts[0] if same else '/'.join(map(str, counts))}; "
        f"seeds: {', '.join(map(str, s['seeds']))}; classifier: {s['classifier_steps']} steps, batch "
        f"{s['classifier_batch_size']}, shifts{' + horizontal flips' if s['hflip'] else ''}.",
        "GAN: "
        + (
            f"given (`{s['generator']}`)"
            if s["generator"]
            else "trained per seed on exactly the drawn real images, options "
            f"`{s['gan_options'] or 'defaults'}`"
        )
        + _temperature_note(report)
        + ".",
        *_teacher_lines(s),
    ]


def _temperature_note(report: dict[str, Any]) -> str:
    """The temperature each seed's generator samples at when a policy names none."""
    temps = [(r["seed"], r.get("gan", {}).get("temperature")) for r in report.get("seeds", [])]
    temps = [(seed, t) for seed, t in temps if t is not None]
    if not temps:
        return ""
    values = " / ".join(f"{t:g}" for _, t in temps)
    seeds = ", ".join(str(seed) for seed, _ in temps)
    plural = "s" if len(temps) > 1 else ""
    return (
        f"; sampled at temperature {values} (seed{plural} {seeds}) unless a policy names one or a "
        "snapshot (which samples at its own)"
    )


def _teacher_lines(settings: dict[str, Any]) -> list[str]:
    """Which classifier taught the soft-label and distillation arms (only when one did)."""
    policies = settings.get("policies", [])
    if not any(p.get("soft_labels") or p.get("distill_real") for p in policies):
        return []
    from ganaug.eval.spec import BALANCED_TEACHER

    teacher = settings.get("teacher")
    if teacher is None:
        what = "the real-only arm's classifier"
    elif teacher == BALANCED_TEACHER:
        what = "a classifier trained on each seed's real images with class-balanced batches"
    else:
        what = f"`{teacher}`"
    return [f"Teacher of the soft-label and distillation arms: {what}."]


def _merged_from_lines(report: dict[str, Any]) -> list[str]:
    """For ``eval merge``: which report gave which seeds, and the command that made it."""
    parts = report.get("merged_from") or []
    if not parts:
        return []
    lines = ["Merged from:", ""]
    for part in parts:
        seeds = ", ".join(map(str, part["seeds"]))
        made = f" (`{part['command']}`)" if part.get("command") else ""
        lines.append(f"- `{part['report']}`: seed{'s' if len(part['seeds']) > 1 else ''} {seeds}{made}")
    return [*lines, ""]


def _parts_note(report: dict[str, Any]) -> str:
    parts = report.get("merged_from") or []
    return f" (the sum over the {len(parts)} merged parts, which may have run at once)" if parts else ""


def _accuracy_section(report: dict[str, Any]) -> list[str]:
    """Test accuracy of every arm and its paired difference against ``real``."""
    rows = []
    for arm in report["arms"]:
        e = report["summary"][arm]
        row = [arm, fmt_pm(e["accuracy"]), fmt_pm(e["balanced_accuracy"])]
        if arm == "real":
            row += ["–", "–"]
        else:
            d = report["paired"][arm]
            row += [
                fmt_delta(d["accuracy"]),
                fmt_delta(d["balanced_accuracy"]),
            ]
        rows.append(row)
    header = ["arm", "accuracy", "balanced accuracy", "Δ accuracy (95% CI)", "Δ balanced (95% CI)"]
    return [
        "",
        "## Accuracy on the real test split (%)",
        "",
        markdown_table(header, rows),
        "",
        "Δ: paired difference against `real` over seeds (mean, 95% t-interval).",
    ]


def _arms_section(report: dict[str, Any]) -> list[str]:
    """What each arm trained on: the real baseline, every policy and every distillation control."""
    lines = ["", "Arms:", "", "- `real`: the real subset only, classical augmentation."]
    for p in report["settings"]["policies"]:
        no_gan = str(p.get("strategy")) in ("0", "0.0")
        what = "real subset only (no GAN samples)" if no_gan else "real subset + GAN samples"
        reused = _reused_note(report, p["name"])
        drawn = _snapshot_note(report, p["name"])
        lines.append(f"- `{p['name']}`: {what} — {describe_policy_fields(p)}.{drawn}{reused}")
    controlled: dict[str, list[str]] = {}  # a control shared by several arms is listed once
    for arm, ctl in report.get("controls", {}).items():
        controlled.setdefault(ctl, []).append(f"`{arm}`")
    for ctl, arms in controlled.items():
        lines.append(
            f"- `{ctl}`: control of {' and '.join(arms)} — the same training on the real subset only, "
            "distilled from the same teacher."
        )
    return lines


def _snapshot_note(report: dict[str, Any], arm: str) -> str:
    """ " Drawn from step 3000 / 2500 at temperature 0.8 / 0.8 (seeds 1, 2)." for an arm whose policy
    names a checkpoint (its seeds record ``snapshot_step``; nothing otherwise): the step it resolved to
    per seed and the temperature its images were drawn at."""
    found = [
        (r["seed"], syn.get("snapshot_step"), syn.get("temperature"))
        for r in report.get("seeds", [])
        for syn in [r.get("arms", {}).get(arm, {}).get("synthetic") or {}]
        if syn.get("snapshot_step") is not None
    ]
    if not found:
        return ""
    steps = " / ".join(str(step) for _, step, _ in found)
    temps = " / ".join(f"{t:g}" for _, _, t in found)
    seeds = ", ".join(str(seed) for seed, _, _ in found)
    plural = "s" if len(found) > 1 else ""
    return f" Drawn from step {steps} at temperature {temps} (seed{plural} {seeds})."


def _reused_note(report: dict[str, Any], arm: str) -> str:
    """ " Trained exactly as `x` on seed(s) ..." where an arm's result was another arm's."""
    from ganaug.eval.tune import reused_arms

    return "".join(
        f" Seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}: trained exactly as "
        f"`{first}` (the same synthetic images and training fields), result reused."
        for first, seeds in reused_arms(report.get("seeds", [])).get(arm, {}).items()
    )


def _per_class_section(report: dict[str, Any]) -> list[str]:
    """Per-class test accuracy of every arm, averaged over seeds."""
    n_seeds = len(report["settings"]["seeds"])
    over = f"mean over {n_seeds} seeds" if n_seeds > 1 else "one seed"
    arms = report["arms"]
    rows = [
        [name, *(fmt_num(report["summary"][a]["per_class_accuracy"][i], 1) for a in arms)]
        for i, name in enumerate(report["classes"])
    ]
    return ["", f"## Per-class accuracy (%, {over})", "", markdown_table(["class", *arms], rows)]


def _quality_section(report: dict[str, Any]) -> list[str]:
    """FID/KID/precision/recall/memorisation per seed, then FID per class of the first seed."""
    quality = [r.get("quality") for r in report["seeds"] if r.get("quality")]
    if not quality:
        return []
    rows = []
    for r in report["seeds"]:
        q = r.get("quality")
        if not q:
            continue
        mem = q.get("memorisation", {})
        rows.append(
            [
                r["seed"],
                _with_ref(q, "fid", 2),
                _with_ref(q, "kid", 4),
                fmt_num(q["precision"]),
                fmt_num(q["recall"]),
                fmt_num(mem.get("median_ratio")),
                fmt_num(mem.get("near_copy_rate")),
            ]
        )
    classes = report["classes"]
    per_class = [
        [classes[int(c)], fmt_num(v["fid"], 2), fmt_num(v["precision"]), fmt_num(v["recall"])]
        for c, v in quality[0]["per_class"].items()
    ]
    return [
        "",
        "## Sample quality (feature space of the domain classifier)",
        "",
        markdown_table(["seed", "FID", "KID", "precision", "recall", "NN ratio", "near-copy rate"], rows),
        "",
        "NN ratio: median distance of synthetic samples to their nearest training image over "
        "that of real test images (≪ 1 would mean copying).",
        *_REF_NOTE,
        "",
        "FID per class (first seed):",
        "",
        markdown_table(["class", "FID", "precision", "recall"], per_class),
    ]


def _wall_time_section(report: dict[str, Any]) -> list[str]:
    """Training-set sizes, synthetic counts and wall times per seed and arm; total time, versions."""
    rows = []
    for r in report["seeds"]:
        gan = r.get("gan", {})
        for arm in report["arms"]:
            a = r["arms"][arm]
            syn = a.get("synthetic", {})
            rate = syn.get("acceptance_rate")
            rows.append(
                [
                    r["seed"],
                    arm,
                    a["n_train"],
                    syn.get("n_synthetic", 0),
                    "–" if rate is None else f"{rate:.0%}",
                    fmt_num(a["train_seconds"], 1),
                    fmt_num(gan.get("seconds"), 1) if arm == "real" else "",
                ]
            )
    header = ["seed", "arm", "train images", "synthetic", "kept", "classifier s", "GAN s"]
    versions = ", ".join(f"{k} {v}" for k, v in report.get("versions", {}).items())
    return [
        "",
        "## Synthetic sets and wall times",
        "",
        markdown_table(header, rows),
        "",
        f"Total wall time: {report['wall_seconds']:.0f} s{_parts_note(report)}. Versions: {versions}.",
    ]


def _control_section(report: dict[str, Any]) -> list[str]:
    """The GAN's contribution: each soft-label arm minus its distillation control, paired over seeds."""
    if not report.get("paired_control"):
        return []
    rows = []
    for arm, ctl in report["controls"].items():
        d = report["paired_control"][arm]
        rows.append(
            [
                arm,
                ctl,
                fmt_delta(d["accuracy"]),
                fmt_delta(d["balanced_accuracy"]),
            ]
        )
    return [
        "",
        "## The GAN's contribution over the distillation control",
        "",
        markdown_table(["arm", "control", "Δ accuracy (95% CI)", "Δ balanced (95% CI)"], rows),
        "",
        "Δ: the soft-label arm minus its control (the same teacher's distillation on the real images "
        "only), paired over seeds: what the GAN samples add beyond the teacher.",
    ]


def _baseline_section(report: dict[str, Any]) -> list[str]:
    """Every GAN arm against the strongest no-GAN arm, paired over seeds (the uplift that counts)."""
    best = report.get("best_baseline")
    if not best:
        return []
    paired = best["paired"].items()
    rows = [[arm, fmt_delta(d["accuracy"]), fmt_delta(d["balanced_accuracy"])] for arm, d in paired]
    return [
        "",
        f"## Against the strongest no-GAN arm (`{best['arm']}`)",
        "",
        markdown_table(["arm", "Δ accuracy (95% CI)", "Δ balanced (95% CI)"], rows),
        "",
        f"Δ: the GAN arm minus `{best['arm']}`, the no-GAN arm (real only, a strategy-0 policy or a "
        "distillation control) with the highest mean accuracy on this test split, paired over seeds. "
        "Picking that arm on the same results favours it: a GAN arm above it has beaten every no-GAN "
        "arm of the run.",
    ]


def _tune_section(report: dict[str, Any]) -> list[str]:
    """``--tune``: validation scores of every candidate; the report ends with the recommendation."""
    if not report.get("tune"):
        return []
    from ganaug.eval.tune import tune_table

    return [
        "",
        "## Policy choice on validation (--tune)",
        "",
        tune_table(report["tune"]),
        "",
        "Each seed's real subset was split into train / validation (stratified); every candidate "
        "trained on the train part and was scored on the validation part; the test split was not "
        "used. The choice, retrained on the whole subset, is the `tuned` arm above "
        "(`tuned_policy.json`, for `ganaug augment --policy-file`). " + _tuning_generator_words(report),
        "",
        f"**Recommendation:** {report['recommendation']}",
    ]


def _tuning_generator_words(report: dict[str, Any]) -> str:
    """Which generator drew the GAN candidates' samples on validation, and what it saw."""
    given = report.get("settings", {}).get("tune_generator")
    if given:
        return (
            f"The GAN candidates sampled the generator given as `--tune-generator` (`{given}`): "
            "it must have been trained on the train part only (as `OUT/seed_N/tune/gan` is); one "
            "that saw the validation images favours the GAN policies there."
        )
    return (
        "The GAN candidates sampled a generator trained per seed on the train part only "
        "(`seed_N/tune/gan`), so the validation images were new to it."
    )


# -- plots -----------------------------------------------------------------------------------------
def _save(fig: Any, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())


def plot_per_class_accuracy(report: dict[str, Any], path: Path) -> Path:
    """Grouped bars: per-class test accuracy of each arm (mean over the seeds, when several)."""
    from matplotlib.figure import Figure

    classes, arms = report["classes"], report["arms"]
    fig = Figure(figsize=(max(6, 0.9 * len(classes) + 2), 3.8))
    ax = fig.subplots()
    width = 0.8 / len(arms)
    x = np.arange(len(classes))
    for i, arm in enumerate(arms):
        vals = [np.nan if v is None else v for v in report["summary"][arm]["per_class_accuracy"]]
        ax.bar(x + (i - (len(arms) - 1) / 2) * width, vals, width, label=arm)
    ax.set_xticks(x, classes, rotation=30, ha="right")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    seeds = len(report.get("seeds", [])) or len(report.get("settings", {}).get("seeds", []))
    ax.set_title("Per-class accuracy" + (f" (mean over {seeds} seeds)" if seeds > 1 else " (one seed)"))
    _save(fig, path)
    return path


def plot_fid_per_class(per_class_fid: dict[Any, Any], classes: Sequence[str], path: Path) -> Path:
    """Bars of FID per class."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(6, 0.7 * len(classes) + 2), 3.5))
    ax = fig.subplots()
    keys = sorted(int(c) for c in per_class_fid)
    vals = [np.nan if per_class_fid[c] is None else per_class_fid[c] for c in keys]
    ax.bar(np.arange(len(keys)), vals, color="tab:purple")
    ax.set_xticks(np.arange(len(keys)), [classes[c] for c in keys], rotation=30, ha="right")
    ax.set_ylabel("FID (classifier features)")
    ax.set_title("FID per class (lower is better)")
    _save(fig, path)
    return path


def plot_nearest_grid(
    synthetic: np.ndarray, nearest: np.ndarray, labels: np.ndarray, classes: Sequence[str], path: Path
) -> Path:
    """One row per class: synthetic samples, each followed by its nearest real training image."""
    from matplotlib.figure import Figure

    rows = sorted(set(labels.tolist()))
    per_row = max(int((labels == c).sum()) for c in rows)
    fig = Figure(figsize=(0.6 * 2 * per_row + 1.2, 0.65 * len(rows) + 0.4))
    axes = np.atleast_2d(fig.subplots(len(rows), 2 * per_row, squeeze=False))
    cmap = "gray" if synthetic.shape[-1] == 1 else None
    for r, c in enumerate(rows):
        idx = np.flatnonzero(labels == c)
        for j in range(per_row):
            for m, src in enumerate((synthetic, nearest)):
                ax = axes[r, 2 * j + m]
                ax.set_xticks([])
                ax.set_yticks([])
                if j < len(idx):
                    img = src[idx[j]]
                    ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap=cmap, vmin=0, vmax=255)
                    for side in ax.spines.values():
                        side.set_color("tab:orange" if m == 0 else "tab:blue")
                else:
                    ax.axis("off")
        axes[r, 0].set_ylabel(classes[c], rotation=0, ha="right", va="center", fontsize=7)
    fig.suptitle("synthetic (orange) beside its nearest real training image (blue)", fontsize=8)
    _save(fig, path)
    return path


def write_uplift_report(report: dict[str, Any], out: Path, plots: bool = True) -> list[Path]:
    """Write ``report.json``, plots and ``report.md`` into ``out``; return the paths written."""
    out = Path(out)
    written: list[Path] = []
    names: list[str] = []
    if plots:
        written.append(plot_per_class_accuracy(report, out / PLOT_PER_CLASS))
        names.append(PLOT_PER_CLASS)
        first = next((r for r in report["seeds"] if r.get("quality")), None)
        if first is not None:
            pc = {c: v["fid"] for c, v in first["quality"]["per_class"].items()}
            written.append(plot_fid_per_class(pc, report["classes"], out / PLOT_FID))
            names.append(PLOT_FID)
            grid = out / f"seed_{first['seed']}" / "nn_grid.npz"
            if grid.is_file():
                with np.load(grid, allow_pickle=False) as g:
                    written.append(
                        plot_nearest_grid(
                            g["synthetic"], g["nearest"], g["labels"], report["classes"], out / PLOT_GRID
                        )
                    )
                names.append(PLOT_GRID)
    report["plots"] = names
    atomic_write_json(out / "report.json", report)
    atomic_write_text(out / "report.md", uplift_markdown(report, names))
    return [out / "report.json", out / "report.md", *written]


# -- quality / CAS ---------------------------------------------------------------------------------
def quality_markdown(q: dict[str, Any], classes: Sequence[str], title: str = "Sample quality") -> str:
    lines = [
        f"# {title}",
        "",
        f"{q['n_synthetic']} synthetic vs {q['n_real']} real images, features of the domain classifier "
        f"({q['feature_dim']}-d).",
        "",
        markdown_table(
            ["FID", "KID", "precision", "recall"],
            [
                [
                    _with_ref(q, "fid", 2),
                    f"{q['kid']:.4f} ± {q['kid_std']:.4f}"
                    + (f" (real–real {q['real_vs_real']['kid']:.4f})" if q.get("real_vs_real") else ""),
                    fmt_num(q["precision"]),
                    fmt_num(q["recall"]),
                ]
            ],
        ),
        "",
        markdown_table(
            ["class", "FID", "KID", "precision", "recall"],
            [
                [
                    classes[int(c)],
                    fmt_num(v["fid"], 2),
                    fmt_num(v["kid"], 4),
                    fmt_num(v["precision"]),
                    fmt_num(v["recall"]),
                ]
                for c, v in q["per_class"].items()
            ],
        ),
    ]
    if q.get("real_vs_real"):
        lines += ["", *_REF_NOTE]
    mem = q.get("memorisation")
    if mem:
        lines += ["", "Memorisation: " + ", ".join(f"{k} {fmt_num(v)}" for k, v in mem.items()) + "."]
    return "\n".join(lines) + "\n"


__all__ = [
    "plot_fid_per_class",
    "plot_nearest_grid",
    "plot_per_class_accuracy",
    "quality_markdown",
    "uplift_markdown",
    "write_uplift_report",
]
