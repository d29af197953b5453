"""One rule for every command that writes: outputs never replace, enter or swallow an input.

Every writing command (``train``, ``sample``, ``augment``, ``augment --merge``, ``export``, ``demo``)
calls :func:`check_output` before it writes anything:

* OUT may not be, contain, or lie inside any input: a data folder; for a CSV/JSONL manifest the
  manifest, its folder and every folder its image paths point into; a run directory; a generator
  file (``.onnx`` / ``.safetensors``) and the run directory it belongs to. Paths are compared after
  resolving symlinks (a symlink loop is a one-line error, never a traceback).
* An existing OUT is replaced only with ``--overwrite`` and only when ganaug wrote it: a folder
  holds the marker file :data:`MARKER` (``{"written_by": "ganaug", "kind": ..., "version": ...}``)
  of the same kind (``dataset``, ``run``, ``demo``); a single file (an exported ``.onnx``) carries
  ``ganaug.*`` metadata. Run directories of ganaug 0.1.0, which predate the marker, are recognised
  by their ``config.yaml`` + ``run.json``; other outputs without the marker are refused, with an
  error that says to delete them by hand or choose another ``--out``.

The marker holds no time stamp on purpose: the same command and seed still give byte-identical
output folders. :func:`apply_umask` gives files and folders made by ``mkstemp``/``mkdtemp`` (0600 /
0700) the permissions ``open()`` / ``mkdir()`` would have given them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from ganaug.errors import UsageError
from ganaug.fileio import apply_umask, current_umask  # re-exported: their old home

MARKER = ".ganaug-output.json"
KINDS = ("dataset", "run", "demo")
_MANIFEST_KINDS = ("csv", "jsonl")
_OLD = "outputs of ganaug 0.1.0 have none either"

#: A protected input: (path, how to name it in an error).
Input = tuple[Path, str]


# -- paths -----------------------------------------------------------------------------------------
def resolve(path: str | os.PathLike[str], what: str = "path") -> Path:
    """``Path(path).resolve()``, with a symlink loop or unreadable link as a one-line UsageError."""
    try:
        return Path(path).resolve()
    except (RuntimeError, OSError) as exc:  # 3.11: RuntimeError("Symlink loop from ...")
        reason = "symlink loop" if "loop" in str(exc).lower() else exc.__class__.__name__
        raise UsageError(f"{what} {path}: cannot resolve the path ({reason})") from None


def data_inputs(
    data: str | os.PathLike[str] | None, labels: str | os.PathLike[str] | None = None
) -> list[Input]:
    """The paths a data source reads: the folder or file itself; for a CSV/JSONL manifest also its
    folder and every folder its image paths point into; an explicit IDX ``labels`` file."""
    if data is None:
        return []
    path = Path(data)
    found: list[Input] = [(path, "the input")]
    if labels is not None:
        found.append((Path(labels), "the labels file"))
    if path.is_file():
        from ganaug.data.sources import detect_kind

        kind = detect_kind(path)
        if kind in _MANIFEST_KINDS:
            found.append((path.parent, f"the folder of the manifest {path}"))
            found.extend((d, f"a folder the manifest {path} points into") for d in _manifest_dirs(path, kind))
    return found


def _manifest_dirs(manifest: Path, kind: str) -> list[Path]:
    """Resolved folders that hold the manifest's images (a symlinked image counts where it points)."""
    from ganaug.data.sources import list_manifest

    folders: set[Path] = set()
    parents: set[str] = set()
    for file in list_manifest(manifest, kind).paths:
        parents.add(os.path.dirname(file) or ".")
        if os.path.islink(file):
            folders.add(resolve(file, f"{manifest}: image").parent)
    folders.update(resolve(p, f"{manifest}: image folder") for p in parents)
    return sorted(folders)


def run_dir_of(path: str | os.PathLike[str]) -> Path | None:
    """The run directory a weights file belongs to (``RUN/weights/*.safetensors``, or an EMA snapshot
    ``RUN/weights/snapshots/*.safetensors``), else None."""
    p = Path(path)
    if p.parent.name == "snapshots" and p.parent.parent.name == "weights":
        p = p.parent
    if p.parent.name != "weights":
        return None
    run = p.parent.parent
    return run if is_ganaug_output(run, "run") or legacy_run_dir(run) else None


def generator_inputs(source: str | os.PathLike[str]) -> list[Input]:
    """The paths a generator source reads: the ``.onnx`` / weights file or run directory, and the
    run directory a weights file lies in."""
    found: list[Input] = [(Path(source), "the generator")]
    run = run_dir_of(source) if Path(source).is_file() else None
    if run is not None:
        found.append((run, "the generator's run directory"))
    return found


def legacy_run_dir(folder: Path) -> bool:
    """A run directory of ganaug 0.1.0 (before the marker): ``config.yaml`` and ``run.json``."""
    return (folder / "config.yaml").is_file() and (folder / "run.json").is_file()


# -- markers ---------------------------------------------------------------------------------------
def marker_content(kind: str) -> str:
    """The text of :data:`MARKER` for an output of ``kind``."""
    from ganaug import __version__

    if kind not in KINDS:
        raise ValueError(f"unknown output kind {kind!r}")
    return json.dumps({"written_by": "ganaug", "kind": kind, "version": __version__}, indent=2) + "\n"


def write_marker(folder: str | os.PathLike[str], kind: str) -> Path:
    """Write :data:`MARKER` into ``folder`` (which must exist); returns its path."""
    from ganaug.fileio import atomic_write_text

    path = Path(folder) / MARKER
    atomic_write_text(path, marker_content(kind))
    return path


def marker_kind(folder: str | os.PathLike[str]) -> str | None:
    """The kind recorded in ``folder``'s marker, or None when there is no valid marker."""
    path = Path(folder) / MARKER
    try:
        if path.is_symlink() or not path.is_file():
            return None
        with open(path, "rb") as fh:
            obj = json.loads(fh.read(4096).decode("utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    if isinstance(obj, dict) and obj.get("written_by") == "ganaug" and obj.get("kind") in KINDS:
        return str(obj["kind"])
    return None


def is_ganaug_output(folder: str | os.PathLike[str], kind: str | None = None) -> bool:
    """True when ``folder`` holds a ganaug marker (of ``kind``, when given)."""
    found = marker_kind(folder)
    return found is not None and (kind is None or found == kind)


def is_ganaug_onnx(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is an ONNX model whose metadata has ganaug's ``ganaug.*`` keys."""
    try:
        import onnx

        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # anything unreadable is not ours
        return False
    keys = {p.key for p in model.metadata_props}
    return {"ganaug.version", "ganaug.classes"} <= keys


# -- the rule --------------------------------------------------------------------------------------
def check_inputs(out: str | os.PathLike[str], inputs: Iterable[Input], *, what: str = "--out") -> Path:
    """Refuse (UsageError) an ``out`` that is, contains or lies inside one of ``inputs``.

    A file input protects itself (``out`` may not be it or contain it); a folder input also
    everything inside it. Returns ``out`` resolved.
    """
    out_r = resolve(out, what)
    for path, name in inputs:
        p_r = resolve(path, name)
        if out_r == p_r:
            raise UsageError(f"{what} {out} is {name} {path}; choose another {what}")
        if p_r.is_relative_to(out_r):
            raise UsageError(f"{what} {out} contains {name} {path}; it would be replaced")
        if p_r.is_dir() and out_r.is_relative_to(p_r):
            raise UsageError(f"{what} {out} is inside {name} {path}; choose a path outside it")
    return out_r


def holds_nothing(folder: str | os.PathLike[str]) -> bool:
    """True for an empty folder, or one holding only ganaug's marker (a run killed at its start)."""
    return all(p.name == MARKER for p in Path(folder).iterdir())


def check_replaceable_dir(
    out: str | os.PathLike[str],
    *,
    overwrite: bool,
    kind: str,
    what: str = "--out",
    legacy: Callable[[Path], bool] | None = None,
    not_empty: str | None = None,
) -> None:
    """Refuse an ``out`` folder ganaug may not write: a file, a non-empty folder without
    ``overwrite`` (error ``not_empty``, when given), or a non-empty folder ganaug did not write (no
    :data:`MARKER` of ``kind``, and not recognised by ``legacy``)."""
    path = Path(out)
    if not (path.exists() or path.is_symlink()):
        return
    if path.is_symlink() or not path.is_dir():
        raise UsageError(f"{what} {out} exists and is not a folder; choose another {what}")
    try:
        empty = holds_nothing(path)
    except OSError as exc:
        raise UsageError(f"{what} {out}: cannot list it ({exc.__class__.__name__})") from None
    if empty:
        return
    if not overwrite:
        raise UsageError(not_empty or f"output folder is not empty: {out} (use --overwrite to replace it)")
    found = marker_kind(path)
    if found == kind or (found is None and legacy is not None and legacy(path)):
        return
    if found is not None:
        raise UsageError(
            f"refusing to replace {out}: it holds a ganaug {found}, not a {kind}; choose another {what}"
        )
    raise UsageError(
        f"refusing to replace {out}: it has no {MARKER} marker, so ganaug did not write it ({_OLD}); "
        f"delete it yourself if you are sure, or choose another {what}"
    )


def check_output(
    out: str | os.PathLike[str],
    inputs: Iterable[Input] = (),
    *,
    overwrite: bool,
    kind: str,
    what: str = "--out",
    legacy: Callable[[Path], bool] | None = None,
    not_empty: str | None = None,
) -> Path:
    """The whole rule for a folder output (see module doc); returns ``out`` resolved."""
    out_r = check_inputs(out, inputs, what=what)
    check_replaceable_dir(out, overwrite=overwrite, kind=kind, what=what, legacy=legacy, not_empty=not_empty)
    return out_r


def check_output_file(
    out: str | os.PathLike[str],
    inputs: Iterable[Input] = (),
    *,
    overwrite: bool,
    what: str = "--out",
    recognise: Callable[[Path], bool] = is_ganaug_onnx,
    described: str = "an ONNX file written by ganaug export",
) -> Path:
    """The rule for a single-file output: not an input, not inside a protected folder, and an
    existing file is replaced only with ``overwrite`` when ``recognise`` says ganaug wrote it."""
    out_r = check_inputs(out, inputs, what=what)
    path = Path(out)
    if path.is_dir():
        raise UsageError(f"{what} must be a file path, not a folder: {out}")
    if path.exists() or path.is_symlink():
        if not overwrite:
            raise UsageError(f"{what} {out} exists (use --overwrite to replace {described})")
        if path.is_symlink() or not path.is_file() or not recognise(path):
            raise UsageError(f"refusing to replace {out}: it is not {described}; choose another {what}")
    return out_r


def check_export_out(
    source: str | os.PathLike[str] | None, out: str | os.PathLike[str], *, overwrite: bool
) -> Path:
    """The rule for ``ganaug export``: ``out`` is never the weights file ``source`` nor inside a run's
    ``weights/`` (``RUN/generator.onnx`` is fine); an existing file is replaced only with
    ``overwrite`` and only if ganaug exported it. ``source`` None: an in-memory module."""
    inputs: list[Input] = []
    if source is not None:
        src = Path(source)
        run = src if src.is_dir() else run_dir_of(src)
        if src.is_file():
            inputs.append((src, "the weights file"))
        if run is not None:
            inputs.append((run / "weights", "the run's weights folder"))
    return check_output_file(out, inputs, overwrite=overwrite)


__all__ = [
    "KINDS",
    "MARKER",
    "apply_umask",
    "check_export_out",
    "check_inputs",
    "check_output",
    "check_output_file",
    "check_replaceable_dir",
    "current_umask",
    "data_inputs",
    "generator_inputs",
    "holds_nothing",
    "is_ganaug_onnx",
    "is_ganaug_output",
    "legacy_run_dir",
    "marker_content",
    "marker_kind",
    "resolve",
    "run_dir_of",
    "write_marker",
]
