"""Imports follow the flow data -> training -> export/sampling -> augment -> eval (issue 17).

Every module of ``ganaug/`` belongs to one room (:data:`ROOMS`, in flow order). A module may import
its own room, any earlier room and the neutral base modules (:data:`BASE`); never a later room. No
module imports another module's private (underscore) name, nor reaches one through a module alias
(``noise._block``). The check parses the source with ``ast`` (lazy imports inside functions count
too), so it needs no imports and no torch.

:data:`KNOWN` lists the violations still open in other engineers' rooms; each one fails the test
once it is fixed, so the list only shrinks.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "ganaug"

#: Neutral base modules: anything may import them, they import only each other.
BASE = (
    "ganaug",  # the package itself: __version__ and the lazy public names
    "ganaug.errors",
    "ganaug.limits",
    "ganaug.fileio",
    "ganaug.specs",
    "ganaug.progress",
    "ganaug.noise",
    "ganaug.imageops",
    "ganaug.metrics",
    "ganaug.grid",
    "ganaug.versions",
)

#: The rooms in flow order: a module may import its own room and earlier ones (plus BASE).
ROOMS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # the torch-free ONNX contract reader (numpy + onnxruntime); every later room may read it
    ("runtime", ("ganaug.runtime",)),
    # reading and writing datasets, and the rule that outputs never touch inputs (output_safety asks
    # data where a dataset's files are, and data names class folders as dataset_writer does)
    ("data", ("ganaug.data", "ganaug.dataset_writer", "ganaug.output_safety")),
    (
        "training",
        (
            "ganaug.models",
            "ganaug.losses",
            "ganaug.diffaugment",
            "ganaug.ema",
            "ganaug.checkpoint",
            "ganaug.snapshots",
            "ganaug.training",
        ),
    ),
    (
        "export/sampling",
        ("ganaug.export", "ganaug.export_spec", "ganaug.sampling", "ganaug.sample_spec", "ganaug.shard"),
    ),
    (
        "augment",
        ("ganaug.augment", "ganaug.hookspecs", "ganaug.plugins", "ganaug.albu"),
    ),
    # consumers of synthetic data: evaluation, and the torch Dataset that mixes it into a downstream
    # classifier's training (it loads eval's classifier as a soft-label teacher)
    (
        "eval",
        (
            "ganaug.eval",
            "ganaug.evaluate",
            "ganaug.classifier",
            "ganaug.report",
            "ganaug.tune",
            "ganaug.torch_dataset",
        ),
    ),
    # orchestration over everything
    ("top", ("ganaug.cli", "ganaug.demo", "ganaug.api", "ganaug.__main__")),
)

#: Open violations in rooms owned by others (importer -> imported); remove an entry when fixed.
KNOWN: frozenset[str] = frozenset(
    {
        # training scores EMA snapshots with the small CNN of eval (a feature extractor)
        "ganaug.training.snapshots -> ganaug.classifier",
        # the plugins listing prints the manager's private escape-hatch text
        "ganaug.cli.plugins_cmd -> ganaug.plugins._escape_hatch",
        # dataset_writer formats sizes with the data room's private helper
        "ganaug.dataset_writer -> ganaug.data.sources._human",
    }
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _rank(module: str) -> int:
    """-1 for a base module, else the index of the module's room (KeyError: in no room)."""
    if module in BASE:
        return -1
    for index, (_, prefixes) in enumerate(ROOMS):
        if any(_within(module, p) for p in prefixes):
            return index
    raise KeyError(module)


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _imports(tree: ast.AST, modules: dict[str, Path]) -> tuple[list[tuple[str, str | None]], set[str]]:
    """``(module, imported name or None)`` pairs of every ganaug import, and the local names bound
    to ganaug modules (for ``alias._private`` access)."""
    found: list[tuple[str, str | None]] = []
    aliases: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if _within(a.name, "ganaug"):
                    found.append((a.name, None))
                    aliases.add(a.asname or a.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if not _within(node.module, "ganaug"):
                continue
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                if sub in modules:  # `from ganaug import specs`: the submodule itself
                    found.append((sub, None))
                    aliases.add(a.asname or a.name)
                else:
                    found.append((node.module, a.name))
    return found, aliases


def _violations() -> list[str]:
    modules = _modules()
    problems: list[str] = []
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        found, aliases = _imports(tree, modules)
        try:
            own = _rank(name)
        except KeyError:
            problems.append(f"{name}: in no room; add it to ROOMS or BASE in tests/test_import_flow.py")
            continue
        for target, attr in found:
            if _within(target, name) and attr is None:
                continue
            try:
                rank = _rank(target)
            except KeyError:
                rank = own  # an unassigned target is reported as its own module
            if rank > own:  # a later room (base modules: any room)
                problems.append(f"{name} -> {target}")
            if attr is not None and _private(attr) and target != name:
                problems.append(f"{name} -> {target}.{attr}")
            if any(_private(part) for part in target.split(".")[1:]):
                problems.append(f"{name} -> {target} (private module)")
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and _private(node.attr)
            ):
                problems.append(f"{name} -> {node.value.id}.{node.attr}")
    return sorted(set(problems))


def test_every_module_is_in_exactly_one_room() -> None:
    for name in _modules():
        rooms = [r for r, prefixes in ROOMS if any(_within(name, p) for p in prefixes)]
        assert len(rooms) + (name in BASE) == 1, f"{name}: rooms {rooms}, base {name in BASE}"


def test_imports_follow_the_flow_and_avoid_private_names() -> None:
    found = set(_violations())
    new = sorted(found - KNOWN)
    fixed = sorted(KNOWN - found)
    assert not new, "imports against the flow or of private names:\n" + "\n".join(new)
    assert not fixed, "fixed (remove from KNOWN in tests/test_import_flow.py):\n" + "\n".join(fixed)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from ganaug.eval import uplift\n", ["ganaug.data.x -> ganaug.eval.uplift"]),
        ("from ganaug.runtime import _secret\n", ["ganaug.data.x -> ganaug.runtime._secret"]),
        ("from ganaug import noise\nnoise._block(1)\n", ["ganaug.data.x -> noise._block"]),
        ("from ganaug.errors import UsageError\nfrom ganaug.data import loader\n", []),
    ],
)
def test_the_checker_catches_what_it_should(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str, expected: list[str]
) -> None:
    root = tmp_path / "ganaug"
    for rel in ("__init__.py", "errors.py", "noise.py", "runtime.py", "data/__init__.py", "data/loader.py"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("")
    (root / "eval").mkdir()
    (root / "eval" / "__init__.py").write_text("")
    (root / "eval" / "uplift.py").write_text("")
    (root / "data" / "x.py").write_text(source)
    monkeypatch.setitem(globals(), "PACKAGE", root)
    assert _violations() == expected
