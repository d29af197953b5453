"""The plugins' public API (``ganaug.api``) and the built-ins' install name (``ganaug_plugins``)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, run_cli

import ganaug.api

PLUGIN_FILES = sorted((REPO / "plugins").glob("*.py"))


def _ganaug_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import of a ganaug module in ``path``, at any depth."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return [(line, mod) for line, mod in found if mod == "ganaug" or mod.startswith("ganaug.")]


def test_builtin_plugins_import_only_the_public_api() -> None:
    assert len(PLUGIN_FILES) >= 5
    offending = [
        f"plugins/{p.name}:{line} imports {mod}"
        for p in PLUGIN_FILES
        for line, mod in _ganaug_imports(p)
        if mod != "ganaug.api"
    ]
    assert not offending, "built-in plugins may import only ganaug.api (add the name there):\n" + "\n".join(
        offending
    )
    # and every name they take from it is declared public
    used = {
        alias.name
        for p in PLUGIN_FILES
        for node in ast.walk(ast.parse(p.read_text()))
        if isinstance(node, ast.ImportFrom) and node.module == "ganaug.api"
        for alias in node.names
    }
    assert used and used <= set(ganaug.api.__all__)


def test_every_public_name_resolves_and_import_is_torch_free() -> None:
    for name in ganaug.api.__all__:
        assert getattr(ganaug.api, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = ganaug.api.nope
    code = "import sys, ganaug.api; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_package_list_names_every_subpackage_and_maps_the_plugins() -> None:
    tomllib = pytest.importorskip("tomllib")
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    on_disk = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "ganaug").rglob("__init__.py")}
    packages = set(setuptools["packages"])
    missing = on_disk - packages
    assert not missing, f"add {sorted(missing)} to pyproject [tool.setuptools] packages"
    gone = [p for p in packages - {"ganaug_plugins"} if not (REPO / p.replace(".", "/")).is_dir()]
    assert not gone, f"pyproject [tool.setuptools] packages names missing folders {gone}"
    assert "ganaug_plugins" in packages and "plugins" not in packages
    assert setuptools["package-dir"] == {"ganaug_plugins": "plugins"}


def test_installed_name_is_ganaug_plugins_outside_the_repo(tmp_path: Path) -> None:
    """Away from the repo root only ``ganaug_plugins`` is ours; the built-ins register from it."""
    code = (
        "import importlib.util, ganaug_plugins.filters\n"
        "from ganaug.plugins import get_plugin_manager\n"
        "spec = importlib.util.find_spec('plugins')\n"
        "print(spec.origin if spec else None)\n"
        "pm = get_plugin_manager(autoload=False)\n"
        "print(pm.get_plugin('plugins.filters').__name__)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
    )
    origin, module = proc.stdout.split()
    assert origin == "None" or not Path(origin).resolve().is_relative_to(REPO)
    assert module == "ganaug_plugins.filters"
    listed = run_cli("plugins", "list", cwd=tmp_path, check=True)
    assert "plugins.filters" in listed.stdout
