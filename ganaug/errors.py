"""User-facing errors.

Every error a user can cause (bad data, bad options, a foreign file) is raised as a
:class:`GanaugError` whose message is one line that says what is wrong and where. The CLI
prints it without a traceback and exits with status 1 (2 for :class:`UsageError`, which includes
a named input that does not exist).
"""

from __future__ import annotations


class GanaugError(Exception):
    """Base class of all errors ganaug reports to users (one-line message)."""


class DataError(GanaugError):
    """The input data cannot be read or is unusable."""


class UsageError(GanaugError):
    """Options or arguments are inconsistent (CLI exit code 2)."""


class CheckpointError(GanaugError):
    """A run directory or weights file is missing, incomplete or not ganaug's."""


class DataNotFoundError(DataError, UsageError):
    """A data path or labels file the user named does not exist: a :class:`DataError` to library
    callers, bad usage (exit code 2) to the CLI."""


class GeneratorNotFoundError(CheckpointError, UsageError):
    """A generator, run directory or weights file the user named does not exist: a
    :class:`CheckpointError` to library callers, bad usage (exit code 2) to the CLI."""


class ExportError(GanaugError):
    """ONNX export failed or did not pass its checks."""


class PluginError(GanaugError):
    """A plugin raised or returned something unusable; the message names plugin and hook."""


class Interrupted(GanaugError):
    """Ctrl-C or SIGTERM stopped a step that later steps depend on (a GAN a report would use).

    The CLI prints the message and exits 130 (SIGINT) or 143 (SIGTERM), like ``ganaug train``.
    """

    def __init__(self, message: str, signal_name: str) -> None:
        super().__init__(message)
        self.signal_name = signal_name

    @property
    def exit_code(self) -> int:
        return signal_exit_code(self.signal_name)


def signal_exit_code(signal_name: str) -> int:
    """The shell's exit status for a process stopped by ``signal_name``: 130 for SIGINT, else 143."""
    return 130 if signal_name == "SIGINT" else 143


def first_line(exc: BaseException, limit: int | None = 200, *, with_type: bool = False) -> str:
    """The first line of ``exc``'s message (its type's name when the message is empty), cut to
    ``limit`` characters (``None``: not cut); ``with_type`` prefixes ``"TypeName: "``. For one-line
    error messages that quote a library's error."""
    lines = str(exc).strip().splitlines()
    if not lines:
        return type(exc).__name__
    text = lines[0] if limit is None else lines[0][:limit]
    return f"{type(exc).__name__}: {text}" if with_type else text
