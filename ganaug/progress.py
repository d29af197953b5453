"""Progress for long loops: a tqdm bar on a terminal, a few plain lines anywhere else.

Under ``nohup``, SLURM, CI or ``> log.txt`` a progress bar's carriage-return frames make a log
unreadable. :class:`Progress` draws a bar only when the stream is a terminal; otherwise it prints one
plain line each time another tenth of the work is done (and at most every ``min_interval`` seconds in
between), like Lightning and Ultralytics do in non-interactive runs::

    sampling: 2048/5120 img (40%), 12 s, 170 img/s
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any

__all__ = ["Progress", "is_terminal", "plain_line"]


def is_terminal(stream: IO[str] | None = None) -> bool:
    """Whether ``stream`` (default: stderr) is an interactive terminal."""
    stream = stream or sys.stderr
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def plain_line(desc: str, done: int, total: int, unit: str, seconds: float) -> str:
    """``desc: done/total unit (pct%), N s, rate unit/s``."""
    pct = f" ({100 * done / total:.0f}%)" if total else ""
    rate = f", {done / seconds:.0f} {unit}/s" if seconds > 0 and done else ""
    return f"{desc}: {done}/{total} {unit}{pct}, {seconds:.0f} s{rate}"


class Progress:
    """``update(n)`` / ``close()``; silent unless ``enabled``; a bar only on a terminal."""

    def __init__(
        self,
        total: int,
        desc: str,
        unit: str = "it",
        enabled: bool = True,
        *,
        stream: IO[str] | None = None,
        min_interval: float = 60.0,
        leave: bool = False,
    ) -> None:
        self.total, self.desc, self.unit = int(total), desc, unit
        self.stream = stream or sys.stderr
        self.enabled = bool(enabled) and self.total > 0
        self.min_interval = min_interval
        self.done = 0
        self.postfix = ""
        self.bar: Any = None
        self.t0 = self.last_print = time.perf_counter()
        self.next_tenth = 1
        if self.enabled and is_terminal(self.stream):
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, desc=desc, unit=unit, leave=leave, file=self.stream)

    def set_postfix(self, refresh: bool = True, **values: object) -> None:
        """Values shown after the count (tqdm's ``set_postfix``), on the bar or in the next line."""
        self.postfix = ", ".join(f"{k}={v}" for k, v in values.items())
        if self.bar is not None:
            self.bar.set_postfix(refresh=refresh, **values)

    def update(self, n: int) -> None:
        """Count ``n`` more units done."""
        if not self.enabled or not n:
            return
        self.done += int(n)
        if self.bar is not None:
            self.bar.update(n)
            return
        now = time.perf_counter()
        tenth = self.done * 10 // self.total
        if tenth >= self.next_tenth or now - self.last_print >= self.min_interval:
            self.next_tenth = tenth + 1
            self._print(now)

    def _print(self, now: float) -> None:
        self.last_print = now
        line = plain_line(self.desc, self.done, self.total, self.unit, now - self.t0)
        if self.postfix:
            line += f", {self.postfix}"
        print(line, file=self.stream, flush=True)

    def close(self) -> None:
        """Close the bar (a terminal) or print the last line if it was not printed yet."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        elif self.enabled and self.next_tenth <= 10 and self.done:
            self.next_tenth = 11
            self._print(time.perf_counter())

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
