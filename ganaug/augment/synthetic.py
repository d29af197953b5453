"""The synthetic images of an augment run: candidates drawn unit by unit, voted on, written."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from typing import Any

import numpy as np

from ganaug.augment.pipeline import SCORES_KEY, Run
from ganaug.errors import PluginError
from ganaug.noise import NoiseStream
from ganaug.progress import Progress
from ganaug.sampling import Provenance, SyntheticWriter, generator_hashes


class FillPool:
    """The ``size`` best rejected candidates of one unit seen so far (for ``fill="best"``).

    Candidates are ranked by score (higher first), ties by ``z_index``; so the choice does not depend
    on the batch size and a unit's fallback images are the same in sharded and unsharded runs.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.items: list[tuple[float, int, list[str], np.ndarray]] = []

    def offer(
        self,
        images: np.ndarray,
        eligible: np.ndarray,
        score: np.ndarray | None,
        z_first: int,
        voters: list[str],
    ) -> None:
        """Consider the ``eligible`` candidates of a batch whose first noise row is ``z_first``."""
        if score is None:
            return
        for j in np.flatnonzero(eligible):
            self.items.append((float(score[j]), z_first + int(j), list(voters), images[j].copy()))
        self.items.sort(key=lambda c: (-c[0], c[1]))
        del self.items[self.size :]

    def best(self, n: int) -> list[tuple[float, int, list[str], np.ndarray]]:
        return self.items[:n]


def soft_rows(teacher: Any, images: np.ndarray, k: int) -> np.ndarray | None:
    """The teacher's class probabilities ``[n, k]`` (rows renormalised), or None without a teacher."""
    if teacher is None or not len(images):
        return None
    probs = np.asarray(teacher.predict_proba(images), dtype=np.float64)
    if probs.shape != (len(images), k) or not np.isfinite(probs).all():
        raise PluginError(
            f"the soft-label teacher gave probabilities of shape {probs.shape}, expected {(len(images), k)}"
        )
    probs = np.clip(probs, 0.0, None)
    return probs / np.maximum(probs.sum(1, keepdims=True), 1e-12)


def _row(rows: np.ndarray | None, i: int) -> np.ndarray | None:
    return None if rows is None else rows[i]


class SyntheticPass:
    """Writes the synthetic images of some units; counts what it drew, kept, filled and rejected."""

    def __init__(self, run: Run, writer: Any, bar: Progress) -> None:
        self.run, self.writer, self.bar = run, writer, bar
        weights_sha, file_sha = generator_hashes(run.sampler)  # as `sample` records them
        spec = run.spec
        provenance = Provenance(weights_sha, int(spec.seed), spec.truncation, run.temperature, file_sha)
        self.synthetic = SyntheticWriter(writer, provenance)
        self.has_filters = bool(run.pm.impls("ganaug_accept"))
        self.chunk = max(int(run.spec.batch_size), 1024)
        self.written: Counter[str] = Counter()
        self.attempts: Counter[str] = Counter()
        self.filled: Counter[str] = Counter()
        self.missing: Counter[int] = Counter()
        self.last_vote: dict[str, Any] = {}  # per-candidate "hard" rejections and "score", for --fill best

    def vote(self, images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """Every ``ganaug_accept`` vote on a batch: ``(keep mask, voting plugins)``."""
        context, rejected = self.run.context, self.run.rejected
        keep = np.ones(len(labels), dtype=bool)
        voters: list[str] = []
        context.state[SCORES_KEY] = {}
        votes: list[tuple[Any, np.ndarray]] = []
        for plugin_name, result in self.run.pm.call_each(
            "ganaug_accept", images=images, labels=labels, context=context
        ):
            if result is None:
                continue
            voters.append(plugin_name)
            for reason, mask in result.items() if isinstance(result, Mapping) else [(None, result)]:
                mask = np.asarray(mask).astype(bool)
                if mask.shape != keep.shape:
                    raise PluginError(
                        f"plugin {plugin_name!r}: ganaug_accept returned {mask.shape[0]} "
                        f"votes for {len(keep)} images"
                    )
                rejected[f"{plugin_name}:{reason}" if reason else plugin_name] += int((keep & ~mask).sum())
                keep &= mask
                votes.append((reason, mask))
        scores = context.state.pop(SCORES_KEY, None) or {}  # published while voting (a generator)
        scored = {r: np.asarray(v, dtype=np.float64) for r, v in scores.items() if np.shape(v) == keep.shape}
        hard = np.zeros(len(labels), dtype=bool)
        for reason, mask in votes:
            if reason not in scored:
                hard |= ~mask
        self.last_vote = {"hard": hard, "score": np.min(list(scored.values()), axis=0) if scored else None}
        return keep, voters

    def add(
        self, raw: np.ndarray, label: int, k: int, plugins: list[str], soft: Any, extra: Any = None
    ) -> None:
        """Transform and write one synthetic image made from noise row ``k``."""
        run = self.run
        rng = np.random.default_rng([int(run.spec.seed), 1, k])
        image, applied, acted = run.pm.transform(
            raw, label=label, source="synthetic", rng=rng, context=run.context
        )
        soft_label = {} if soft is None else {"soft_label": [round(float(v), 6) for v in soft]}
        self.synthetic.add(image, label, k, applied, plugins + acted, **soft_label, **(extra or {}))
        self.written[run.classes[label]] += 1
        self.bar.update(1)

    def unit(self, label: int, target: int, first_row: int, rows: int) -> None:
        """Draw candidates from rows ``first_row...`` until ``target`` are kept or ``rows`` are used."""
        run = self.run
        stream = NoiseStream(
            int(run.spec.seed),
            run.sampler.z_dim,
            run.spec.truncation,
            start=first_row,
            temperature=run.temperature,
        )
        drawn = kept = 0
        pool = FillPool(target) if run.spec.fill == "best" and self.has_filters else None
        while kept < target and drawn < rows:
            rate = kept / drawn if drawn else 1.0
            want = min(math.ceil((target - kept) / max(rate, 0.1)), rows - drawn)
            while want > 0 and kept < target:
                n = min(self.chunk, want)
                kept += self._batch(label, target - kept, first_row + drawn, stream.take(n), pool)
                drawn += n
                want -= n
        if pool is not None and kept < target:
            kept += self._fill(label, pool.best(target - kept))
        self.attempts[run.classes[label]] += drawn
        self.missing[label] += target - kept

    def _batch(self, label: int, room: int, z_first: int, z: np.ndarray, pool: FillPool | None) -> int:
        run, n = self.run, len(z)
        labels = np.full(n, label, dtype=np.int64)
        images = run.sampler.generate_from_noise(z, run.to_generator[labels], batch_size=run.spec.batch_size)
        keep, voters = self.vote(images, labels) if self.has_filters else (np.ones(n, bool), [])
        chosen = np.flatnonzero(keep)[:room]
        soft = soft_rows(run.soft_teacher, images[chosen], len(run.classes))
        for pos, j in enumerate(chosen):
            self.add(images[j], label, z_first + int(j), voters, _row(soft, pos))
        if pool is not None:
            pool.offer(images, ~keep & ~self.last_vote["hard"], self.last_vote["score"], z_first, voters)
        return len(chosen)

    def _fill(self, label: int, best: list[tuple[float, int, list[str], np.ndarray]]) -> int:
        if not best:
            return 0
        run = self.run
        soft = soft_rows(run.soft_teacher, np.stack([c[3] for c in best]), len(run.classes))
        for pos, (score, k, voters, raw) in enumerate(best):
            fallback = {"fallback": {"fill": "best", "score": round(score, 6)}}
            self.add(raw, label, k, voters, _row(soft, pos), fallback)
            self.filled[run.classes[label]] += 1
        return len(best)

    def report(self) -> None:
        """Warn about the classes the filters left short (``run.shortfall``) and ``--fill best``."""
        run = self.run
        for i, name in enumerate(run.classes):
            if self.missing[i]:
                run.shortfall[name] = int(self.missing[i])
                wanted = self.written[name] + run.shortfall[name]
                run.complain(
                    f"class {name!r}: only {self.written[name]} of {wanted} "
                    f"synthetic images passed the filters after {self.attempts[name]} candidates "
                    f"(--max-attempts {run.spec.max_attempts:g})"
                    + (
                        ""
                        if run.spec.fill == "best"
                        else "; add --fill best to fill the gap with the best rejected candidates"
                    )
                )
        if sum(self.filled.values()):
            total = sum(self.filled.values())
            run.complain(
                f"--fill best: {total} synthetic images did not pass the filters and were "
                "written as the best candidates of their class (manifest: 'fallback'): "
                + ", ".join(f"{c} {n}" for c, n in self.filled.items() if n)
            )


__all__ = ["FillPool", "SyntheticPass", "soft_rows"]
