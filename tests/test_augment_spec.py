"""``ganaug augment`` from one spec: the saved config.yaml repeats the run, plugins declare their
options (``ganaug_add_options``) and every way of giving one goes through its declared type."""

from __future__ import annotations

import dataclasses
import json
import re
import textwrap
from pathlib import Path

import pytest
from conftest import export_random_generator, run_cli, write_imagefolder

from ganaug.augment import CONFIG_FILE, AugmentSpec, augment_dataset
from ganaug.augment.options import declared_options, resolve_options, spec_type
from ganaug.errors import PluginError, UsageError
from ganaug.hookspecs import PluginOption, hookimpl
from ganaug.plugins import get_plugin_manager
from ganaug.specs import parse_spec

SIZE = 8
CLASSES = ["class_0", "class_1"]
ENV = {"GANAUG_DISABLE_PLUGIN_AUTOLOAD": "1", "OMP_NUM_THREADS": "1"}
PLUGIN = """
from ganaug.api import PluginOption, hookimpl

@hookimpl
def ganaug_add_options():
    return [
        PluginOption("boost", 1.5, float, "How much to boost.", low=0, high=10),
        PluginOption("tag", "x", str, "A tag.", choices=("x", "y")),
        PluginOption("loud", False, bool, "Be loud."),
    ]

@hookimpl
def ganaug_finish(context, summary):
    summary["optplug"] = {k: [context.options[k], type(context.options[k]).__name__]
                          for k in ("boost", "tag", "loud")}
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("spec")
    plugin_dir = root / "plugins"
    plugin_dir.mkdir()
    (plugin_dir / "optplug.py").write_text(textwrap.dedent(PLUGIN))
    return {
        "data": write_imagefolder(root / "data", [6, 3], size=SIZE),
        "gen": export_random_generator(root / "gen", CLASSES, SIZE, 0, "test-augment-spec"),
        "plugin_dir": plugin_dir,
        "root": root,
    }


def files(out: Path) -> dict[str, bytes]:
    """Every file of a dataset but summary.json (it names its own output folder)."""
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()
            and p.name != "summary.json"}  # fmt: skip


def test_saved_config_repeats_the_run(setup: dict[str, Path], tmp_path: Path) -> None:
    args = [str(setup["data"]), "-g", str(setup["gen"]), "--strategy", "1.5", "--filter", "near-duplicate",
            "--near-duplicate-threshold", "0.001", "-O", "confidence_steps=7", "-O", "lr=4e-4",
            "--seed", "3", "--batch-size", "5", "--max-attempts", "2"]  # fmt: skip
    first, again = tmp_path / "first", tmp_path / "again"
    res = run_cli("augment", *args, "--out", str(first), "-q", env=ENV)
    assert res.returncode == 0, res.stderr
    config = first / CONFIG_FILE
    assert config.is_file() and f"out: {first}" in config.read_text()

    spec_cls = spec_type(declared_options(get_plugin_manager(autoload=False)))
    asked = parse_spec(spec_cls, [*args, "--out", str(again)], "augment")
    saved = parse_spec(spec_cls, ["--config", str(config), "--out", str(again)], "augment")
    assert saved == asked  # the spec, exactly
    assert saved.plugin_options == {"confidence_steps": "7", "lr": "4e-4"}
    assert resolve_options(saved, declared_options(get_plugin_manager(autoload=False)))["lr"] == 4e-4

    res = run_cli("augment", "--config", str(config), "--out", str(again), "-q", env=ENV)
    assert res.returncode == 0, res.stderr
    one_files, two_files = files(first), files(again)
    expected = config.read_text().replace(f"out: {first}", f"out: {again}")
    assert two_files.pop(CONFIG_FILE).decode() == expected  # the same spec, with the new --out
    one_files.pop(CONFIG_FILE)
    assert two_files == one_files  # images and manifest, byte for byte
    one, two = (json.loads((d / "summary.json").read_text()) for d in (first, again))
    assert {k: v for k, v in one.items() if k != "output"} == {k: v for k, v in two.items() if k != "output"}
    assert sum(one["counts"]["synthetic"].values()) == 14  # 9 + 5 asked for: the run did real work


def test_plugin_options_become_flags_config_keys_and_typed_o(setup: dict[str, Path], tmp_path: Path) -> None:
    env = {**ENV, "PYTHONPATH": str(setup["plugin_dir"]), "GANAUG_PLUGINS": "optplug"}
    help_text = run_cli("augment", "--help", env=env)
    assert help_text.returncode == 0, help_text.stderr
    assert "--boost FLOAT" in help_text.stdout and "[plugin optplug]" in help_text.stdout
    assert "--loud / --no-loud" in help_text.stdout

    base = [str(setup["data"]), "-g", str(setup["gen"]), "--strategy", "0", "-q", "--json"]
    res = run_cli(
        "augment", *base, "--out", str(tmp_path / "a"), "--boost", "2.5", "--tag", "y", "--loud", env=env
    )
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["optplug"] == {
        "boost": [2.5, "float"],
        "tag": ["y", "str"],
        "loud": [True, "bool"],
    }
    config = (tmp_path / "a" / CONFIG_FILE).read_text()
    assert "boost: 2.5" in config and "tag: y" in config

    # --plugin: no flags (it loads after the command is built), but -O is typed by the declaration.
    env_opt = {**ENV, "PYTHONPATH": str(setup["plugin_dir"])}
    res = run_cli("augment", *base, "--out", str(tmp_path / "b"), "--plugin", "optplug",
                  "-O", "boost=4e-4", "-O", "loud=yes", env=env_opt)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["optplug"] == {
        "boost": [4e-4, "float"],
        "tag": ["x", "str"],
        "loud": [True, "bool"],
    }

    bad = run_cli("augment", *base, "--out", str(tmp_path / "c"), "-O", "boost=11", env=env)
    assert bad.returncode == 2 and "--boost must be" in bad.stderr
    assert not (tmp_path / "c").exists()

    listed = run_cli("plugins", "list", "--json", env=env)
    infos = {i["name"]: i for i in json.loads(listed.stdout)}
    assert [o["flag"] for o in infos["optplug"]["options"]] == ["--boost", "--tag", "--loud"]


def test_help_shares_concept_defaults() -> None:
    augment = run_cli("augment", "--help", env=ENV).stdout
    uplift = run_cli("eval", "uplift", "--help", env=ENV).stdout
    for text in (augment, uplift):
        flat = " ".join(text.split())
        for option, default in (("--min-confidence FLOAT", "0.9"), ("--device TEXT", "auto")):
            found = re.search(re.escape(option) + r"(.{0,300}?)\[default: ([^\]]+)\]", flat)
            assert found and found.group(2) == default, option


class _Twice:
    @hookimpl
    def ganaug_add_options(self):
        return [PluginOption("min_confidence", 0.5, float)]


class _Core:
    @hookimpl
    def ganaug_add_options(self):
        return [PluginOption("seed", 1, int)]


class _Typed:
    @hookimpl
    def ganaug_add_options(self):
        return [PluginOption("steps", 3, int, low=1, high=100), PluginOption("note", None, str)]

    @hookimpl
    def ganaug_finish(self, context, summary):
        summary["typed"] = {"steps": context.options["steps"], "note": context.options["note"]}


def test_declarations_are_checked_and_one_typed_path() -> None:
    with pytest.raises(PluginError, match="already declared by 'plugins.filters'"):
        declared_options(get_plugin_manager([_Twice()], autoload=False))
    with pytest.raises(PluginError, match="one of ganaug's own"):
        declared_options(get_plugin_manager([_Core()], autoload=False))

    declared = declared_options(get_plugin_manager([_Typed()], autoload=False))
    spec_cls = spec_type(declared)
    assert spec_type(declared) is spec_cls and issubclass(spec_cls, AugmentSpec)
    flag = parse_spec(spec_cls, ["--steps", "7"])
    pair = parse_spec(spec_cls, ["-O", "steps=7"])
    assert resolve_options(flag, declared)["steps"] == resolve_options(pair, declared)["steps"] == 7
    assert resolve_options(pair, declared)["min_confidence"] == 0.9  # built-in default, typed
    with pytest.raises(UsageError, match="--steps must be"):
        resolve_options(parse_spec(spec_cls, ["-O", "steps=0.5"]), declared)
    with pytest.raises(UsageError, match="disagree"):
        resolve_options(parse_spec(spec_cls, ["--steps", "8", "-O", "steps=9"]), declared)
    with pytest.raises(UsageError, match="clash with ganaug options"):
        resolve_options(dataclasses.replace(pair, plugin_options={"strategy": "1"}), declared)


def test_library_keywords_reach_declared_options(setup: dict[str, Path], tmp_path: Path) -> None:
    summary = augment_dataset(setup["data"], setup["gen"], tmp_path / "o", strategy=0, steps=5,
                              plugins=[_Typed()], plugin_options={"note": 12})  # fmt: skip
    assert summary["typed"] == {"steps": 5, "note": "12"}
    assert not (tmp_path / "o" / CONFIG_FILE).exists()  # the keyword API writes what it always wrote
