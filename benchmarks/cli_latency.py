"""Time from ``ganaug ...`` to its answer when the arguments are wrong or an input is missing.

Each case runs ``python -X importtime -m ganaug ARGS`` in a fresh process (no cache warm-up besides
the OS page cache: one untimed run first), ``--repeats`` times, and prints the median wall time, the
exit code, whether torch was imported on the way, and the message. A good citizen answers these in
well under a second, without importing torch and without creating anything::

    python benchmarks/cli_latency.py             # table
    python benchmarks/cli_latency.py --json      # machine-readable
    python benchmarks/cli_latency.py --max-seconds 1.0   # exit 1 if any case is slower (CI check)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MISSING = "no-such-path/x"
CASES: list[tuple[str, list[str]]] = [
    ("ganaug (no command)", ["no-such-command"]),
    ("train: missing DATA", ["train", MISSING, "--out", "OUT"]),
    ("train: bad option value", ["train", MISSING, "--steps", "abc"]),
    ("train: unknown option", ["train", "--bogus"]),
    ("sample: missing generator", ["sample", MISSING, "--out", "OUT", "-n", "1"]),
    ("export: missing run", ["export", MISSING, "--out", "OUT.onnx"]),
    ("augment: missing DATA", ["augment", MISSING, "-g", MISSING, "--out", "OUT"]),
    (
        "eval uplift: missing DATA",
        ["eval", "uplift", MISSING, "--test", MISSING, "--per-class", "5", "-o", "O"],
    ),
    ("eval quality: missing generator", ["eval", "quality", "-g", MISSING, "--data", MISSING]),
    ("eval cas: missing generator", ["eval", "cas", "-g", MISSING, "--data", MISSING, "--test", MISSING]),
    ("data inspect: missing PATH", ["data", "inspect", MISSING]),
    ("data example: bad format", ["data", "example", "OUT", "--format", "bogus"]),
    ("plugins list: unknown option", ["plugins", "list", "--bogus"]),
    ("demo: unknown option", ["demo", "--bogus"]),
    ("version: unknown option", ["version", "--bogus"]),
]


def run_case(args: list[str], cwd: Path) -> tuple[float, int, bool, str]:
    """(seconds, exit code, torch imported, last stderr line) of one run."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "ganaug", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    seconds = time.perf_counter() - t0
    lines = proc.stderr.splitlines()
    torch = any(line.startswith("import time:") and line.rstrip().endswith("| torch") for line in lines)
    message = next((ln for ln in reversed(lines) if not ln.startswith("import time:")), "")
    return seconds, proc.returncode, torch, message.strip()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", action="store_true")
    p.add_argument("--max-seconds", type=float, default=None, help="Fail (exit 1) above this median.")
    args = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        run_case(["--help"], Path(tmp))  # warm the page cache once
        for i, (name, case) in enumerate(CASES):
            cwd = Path(tmp) / str(i)  # an empty folder per case: whatever appears in it was created
            cwd.mkdir()
            runs = [run_case(case, cwd) for _ in range(args.repeats)]
            _, code, torch, message = runs[-1]
            created = sorted(p.name for p in cwd.iterdir())
            rows.append(
                {
                    "case": name,
                    "args": case,
                    "median_s": round(statistics.median(r[0] for r in runs), 3),
                    "exit_code": code,
                    "imports_torch": torch,
                    "created": created,
                    "message": message,
                }
            )
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(f"{'case':34s} {'median s':>8s} {'exit':>4s} {'torch':>5s}  message")
        for r in rows:
            flag = "yes" if r["imports_torch"] else "no"
            extra = f"  (created {', '.join(r['created'])})" if r["created"] else ""
            row = f"{r['case']:34s} {r['median_s']:8.3f} {r['exit_code']:4d} {flag:>5s}"
            print(f"{row}  {r['message'][:70]}{extra}")
    if args.max_seconds is not None and any(r["median_s"] > args.max_seconds for r in rows):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
