"""Every ``bash`` example in README.md runs, top to bottom, in a fresh folder: the README cannot
drift from the CLI.

How the examples are run:

- Each fenced ```` ```bash ```` block is one bash script (``set -euo pipefail``), run in the order of
  the README in one temporary folder shared by all blocks (later examples use what earlier ones made,
  as a reader following the README would), with ganaug's environment on ``PATH``.
- Not run: a block right after ``<!-- readme-test: skip (reason) -->``; and lines that install or
  benchmark rather than use ganaug (:data:`NOT_RUN`: ``pip``, ``python3 -m venv``, ``python -m
  pytest``, ``torchrun``, ``python benchmarks/...`` -- those take minutes to hours and are measured
  elsewhere). ``console``/``text`` blocks show output and are never run.
- Made tiny (:func:`shrink`): every ``--...steps N`` becomes ``max(4, N // 150)`` (so a resumed run's
  larger target stays larger), per-class sizes become a few images, ``--seeds N`` becomes 1, and the
  commands in :data:`SMALL_EXTRAS` get small values for the step options they leave at their
  defaults. Nothing else in a command changes.
- ``../shared/...`` (the full Fashion-MNIST beside the clone) is the repository's sibling folder; a
  block that needs it is skipped when it is absent.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import REPO

README = REPO / "README.md"
SHARED = REPO.parent / "shared"
SKIP_MARK = re.compile(r"<!--\s*readme-test:\s*skip\b\s*(.*?)\s*-->")
RUN_MARK = re.compile(r"<!--\s*readme-test:\s*run\s*-->")
#: First words of command lines that are shown but not run (installing, testing, benchmarking).
NOT_RUN = (
    ("pip",),
    ("python3", "-m", "venv"),
    ("python", "-m", "pytest"),
    ("torchrun",),
    ("python", "benchmarks/"),
)
#: ``(pattern, option, value)``: appended to commands matching the pattern that do not set the option
#: (its name before ``=`` for ``-O``), to keep them fast.
SMALL_EXTRAS: list[tuple[str, str, str]] = [
    (r"ganaug train\b(?!.*--resume)", "--snapshots", "0"),  # no per-checkpoint scoring
    (r"ganaug eval (uplift|quality)\b", "--feature-steps", "20"),
    (r"ganaug eval uplift\b", "--quality-per-class", "8"),
    (r"ganaug eval (quality|cas)\b", "--n-per-class", "8"),
    (r"ganaug eval cas\b", "--classifier-steps", "20"),
    (r"ganaug augment\b.*--filter\S* \S*confidence", "-O", "confidence_steps=20"),
]
_STEPS = re.compile(r"(--[a-z-]*steps)([ =])(\d+)")
_PER_CLASS = re.compile(r"(--n-per-class|--per-class|--quality-per-class|-n)([ =])(\d+)")
_SEEDS = re.compile(r"(--seeds)([ =])(\d+)")


@dataclass
class Block:
    line: int  # 1-based line of the opening fence
    script: str
    skip: str | None
    lang: str = "bash"


def readme_blocks(text: str) -> list[Block]:
    """The ``bash`` blocks of the README with their line and skip reason, and the ``python`` blocks
    marked ``<!-- readme-test: run -->`` (the others need the reader's own data or variables)."""
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        lang = lines[i].strip().removeprefix("```")
        if lines[i].strip().startswith("```") and lang in ("bash", "python"):
            start = i
            body = []
            i += 1
            while i < len(lines) and lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            prev = next((ln for ln in reversed(lines[:start]) if ln.strip()), "")
            mark = SKIP_MARK.search(prev)
            skip = (mark.group(1).strip("() ") or "marked skip") if mark else None
            if lang == "python" and not RUN_MARK.search(prev):
                i += 1
                continue
            blocks.append(Block(start + 1, "\n".join(body), skip, lang))
        i += 1
    return blocks


def _commands(script: str) -> list[str]:
    """Logical command lines (backslash continuations joined)."""
    return script.replace("\\\n", " ").splitlines()


def _not_run(command: str) -> bool:
    words = shlex.split(command, comments=True) if command.strip() else []
    while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=\S*", words[0]):
        words = words[1:]  # VAR=value prefixes
    for prefix in NOT_RUN:
        if len(words) >= len(prefix) and all(
            w == p or (p.endswith("/") and w.startswith(p)) for w, p in zip(words, prefix, strict=False)
        ):
            return True
    return False


def shrink(command: str) -> str:
    """The command with tiny step counts and sizes (see the module docstring)."""
    command = _STEPS.sub(lambda m: f"{m[1]}{m[2]}{max(4, int(m[3]) // 150)}", command)
    command = _PER_CLASS.sub(lambda m: f"{m[1]}{m[2]}{min(int(m[3]), 8)}", command)
    command = _SEEDS.sub(lambda m: f"{m[1]}{m[2]}1", command)
    if "../shared/" in command:
        command = command.replace("../shared/", f"{SHARED}/")
    for pattern, option, value in SMALL_EXTRAS:
        name = value.split("=")[0] if option == "-O" else option
        if re.search(pattern, command) and not re.search(rf"(^|\s){re.escape(name)}\b", command):
            command = _insert(command, f"{option} {shlex.quote(value)}")
    return command


def _insert(command: str, extra: str) -> str:
    """``extra`` before a trailing comment or the end of a ``for ...; do ... & done`` loop."""
    match = re.search(r"\s+#\s.*$|\s*&\s*done\b.*$", command)
    cut = match.start() if match else len(command)
    return f"{command[:cut]} {extra}{command[cut:]}"


def runnable(block: Block) -> str:
    """The script to run: lines not run dropped, the rest shrunk."""
    return "\n".join(shrink(c) for c in _commands(block.script) if not _not_run(c))


BLOCKS = readme_blocks(README.read_text(encoding="utf-8"))


def test_readme_has_runnable_examples() -> None:
    runnable_blocks = [b for b in BLOCKS if not b.skip and b.lang == "bash" and runnable(b).strip()]
    assert any(b.lang == "python" and "OnnxGenerator" in b.script for b in BLOCKS)  # marked run
    assert len(runnable_blocks) >= 8
    assert "ganaug data example" in runnable(runnable_blocks[0])  # the examples need no download
    assert (
        shrink("ganaug train d --steps 3000 --out r  # x")
        == "ganaug train d --steps 20 --out r --snapshots 0  # x"
    )
    assert shrink("ganaug train --out r --resume --steps 6000") == "ganaug train --out r --resume --steps 40"
    assert _not_run("OMP_NUM_THREADS=1 python benchmarks/uplift.py --seeds 3") and not _not_run(
        "ganaug version"
    )


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("readme")


@pytest.mark.parametrize("block", BLOCKS, ids=[f"README.md:{b.line}" for b in BLOCKS])
def test_readme_example_runs(block: Block, workspace: Path) -> None:
    if block.skip:
        pytest.skip(block.skip)
    script = runnable(block) if block.lang == "bash" else block.script
    if not script.strip():
        pytest.skip("installs, tests or benchmarks only")
    if str(SHARED) in script and not (SHARED / "data" / "fashion-mnist").is_dir():
        pytest.skip(f"needs the full Fashion-MNIST at {SHARED}/data/fashion-mnist")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "OMP_NUM_THREADS": "1",
    }
    command = (
        ["bash", "-euo", "pipefail", "-c", script] if block.lang == "bash" else [sys.executable, "-c", script]
    )
    proc = subprocess.run(
        command,
        cwd=workspace,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, (
        f"README.md:{block.line} failed ({proc.returncode}):\n{script}\n--- stdout\n{proc.stdout[-3000:]}"
        f"\n--- stderr\n{proc.stderr[-3000:]}"
    )
