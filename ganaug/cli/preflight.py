"""Checks a command runs before it imports the library (torch, onnxruntime, ...).

A mistyped path or a missing input is answered in a fraction of a second and before anything is
written, with the same one-line message the library would give after seconds of imports.
"""

from __future__ import annotations

from pathlib import Path

from ganaug.errors import DataNotFoundError, GeneratorNotFoundError, UsageError


def require_data(path: str | None, labels: str | None = None) -> None:
    """DATA (and an explicit ``--labels`` file) must exist."""
    if path is not None and not Path(path).exists():
        raise DataNotFoundError(f"data path not found: {path}")
    if labels is not None and not Path(labels).is_file():
        raise DataNotFoundError(f"labels file not found: {labels}")


def require_generator(path: str | None) -> None:
    """A generator (``.onnx``, run directory or weights file) must exist."""
    if path is not None and not Path(path).exists():
        raise GeneratorNotFoundError(f"generator not found: {path}")


def require_run(path: str) -> None:
    """A run directory or weights file must exist (the message the library gives, sooner)."""
    if not Path(path).exists():
        raise GeneratorNotFoundError(f"generator not found: {path}")


def require_resumable(out: str) -> None:
    """``--resume`` needs a run directory (the library's message, before torch is imported)."""
    if not (Path(out) / "config.yaml").is_file():
        raise UsageError(f"--resume: {out} is not a run directory (no config.yaml)")


def require_files(**files: str | None) -> None:
    """Each given option file (``--transforms`` ...) must exist: ``require_files(transforms=path)``."""
    for option, path in files.items():
        if path is not None and not Path(path).is_file():
            raise UsageError(f"--{option.replace('_', '-')}: file not found: {path}")


def require_out_not_file(out: str, option: str = "--out") -> None:
    """An output folder must not be an existing file."""
    if Path(out).is_file():
        raise UsageError(f"{option} {out} is a file, not a folder")


__all__ = [
    "require_data",
    "require_files",
    "require_generator",
    "require_out_not_file",
    "require_resumable",
    "require_run",
]
