"""Built-in plugin: the ``imagefolder`` (alias ``png``) and ``npz`` output formats of ``ganaug augment``.

Both are :class:`ganaug.dataset_writer.DatasetWriter`; another plugin can add a format by
answering ``ganaug_open_writer`` for its own ``fmt`` name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ganaug.api import hookimpl

FORMATS = ("imagefolder", "png", "npz")


@hookimpl(trylast=True)
def ganaug_open_writer(out_dir: Path, fmt: str, classes: list[str], overwrite: bool) -> Any | None:
    """A DatasetWriter for the built-in formats, ``None`` for any other name."""
    if fmt not in FORMATS:
        return None
    from ganaug.api import DatasetWriter

    return DatasetWriter(out_dir, classes=classes, fmt=fmt, overwrite=overwrite)
