"""Versions of ganaug and the libraries a result depends on, for ``ganaug version``, the augment
``summary.json`` and the eval ``report.json`` (one collector, so they agree).

Torch-free and cheap: versions come from the installed distributions' metadata.
"""

from __future__ import annotations

import platform
from collections.abc import Sequence
from importlib import metadata


def dist_version(name: str) -> str | None:
    """The installed version of distribution ``name``, ``None`` when it is not installed."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def library_versions(names: Sequence[str], python: bool = True) -> dict[str, str | None]:
    """``{"ganaug": ..., "python": ..., name: version or None, ...}`` in that order (``python=False``
    leaves the Python version out)."""
    from ganaug import __version__

    out: dict[str, str | None] = {"ganaug": __version__}
    if python:
        out["python"] = platform.python_version()
    out.update((name, dist_version(name)) for name in names)
    return out


__all__ = ["dist_version", "library_versions"]
