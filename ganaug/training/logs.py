"""``results.csv`` (one row per log interval) and ``results.png`` (loss curves)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from ganaug.fileio import atomic_path, atomic_write_text

COLUMNS = [
    "step",
    "loss_d",
    "loss_g",
    "d_real",
    "d_fake",
    "d_accuracy",
    "lr_g",
    "lr_d",
    "img_per_s",
    "elapsed_s",
    "cpu_s",
]


class ResultsLog:
    """Rows of training metrics, rewritten atomically as ``results.csv`` after every append."""

    def __init__(self, run_dir: Path, resume: bool = False) -> None:
        self.path = run_dir / "results.csv"
        self.plot_path = run_dir / "results.png"
        self.rows: list[dict[str, float]] = []
        if resume and self.path.is_file():
            with open(self.path, newline="", encoding="utf-8") as fh:
                self.rows = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]

    def truncate(self, step: int) -> None:
        """Drop rows logged after ``step`` (they belong to work the checkpoint does not have)."""
        self.rows = [r for r in self.rows if r["step"] <= step]

    def append(self, row: dict[str, float]) -> None:
        self.rows.append(row)
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        for r in self.rows:
            writer.writerow({k: _fmt(r.get(k, float("nan"))) for k in COLUMNS})
        atomic_write_text(self.path, buf.getvalue())

    def plot(self) -> Path | None:
        """Draw loss curves, D's outputs and speed into ``results.png``."""
        if not self.rows:
            return None
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        steps = [r["step"] for r in self.rows]
        fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
        axes[0].plot(steps, [r["loss_d"] for r in self.rows], label="D loss")
        axes[0].plot(steps, [r["loss_g"] for r in self.rows], label="G loss")
        axes[0].set_title("losses")
        axes[1].plot(steps, [r["d_real"] for r in self.rows], label="D(real) logit")
        axes[1].plot(steps, [r["d_fake"] for r in self.rows], label="D(fake) logit")
        axes[1].plot(steps, [r["d_accuracy"] for r in self.rows], label="D accuracy")
        axes[1].set_title("discriminator")
        axes[2].plot(steps, [r["img_per_s"] for r in self.rows], label="images/s")
        axes[2].set_title("speed")
        for ax in axes:
            ax.set_xlabel("step")
            ax.legend(fontsize=8)
            ax.grid(alpha=0.3)
        fig.tight_layout()
        with atomic_path(self.plot_path) as tmp:
            fig.savefig(tmp, format="png", dpi=90)
        plt.close(fig)
        return self.plot_path


def plain_line(row: dict[str, float], total_steps: int | None, budget_minutes: float | None = None) -> str:
    """One log interval as a plain line, for logs that are not a terminal (no progress bar there)::

    step 150/3000  D loss 1.234  G loss 0.987  D acc 0.62  312 img/s  41 s
    step 150  D loss 1.234  G loss 0.987  D acc 0.62  312 img/s  41 s  CPU 0.6/15 min

    ``total_steps`` None: no step limit (a time budget ends the run); ``budget_minutes``: the
    ``--time-budget``, shown with the CPU minutes spent.
    """
    of = "" if total_steps is None else f"/{total_steps}"
    line = (
        f"step {int(row['step'])}{of}  D loss {row['loss_d']:.3f}  G loss {row['loss_g']:.3f}  "
        f"D acc {row['d_accuracy']:.2f}  {row['img_per_s']:.0f} img/s  {row['elapsed_s']:.0f} s"
    )
    if budget_minutes is not None:
        line += f"  CPU {row['cpu_s'] / 60.0:.1f}/{budget_minutes:g} min"
    return line


def _fmt(value: float) -> str:
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6g}"
