"""Plugin manager, hook contracts, built-in strategies, and out-of-tree plugins (--plugin, entry points)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import save_random_generator, write_noise_folder

from ganaug.errors import PluginError, UsageError
from ganaug.hookspecs import AugmentContext
from ganaug.plugins import (
    BUILTIN_PLUGINS,
    get_plugin_manager,
    parse_plugin_options,
    plugin_infos,
)

CLASSES = ["top", "trouser", "pullover"]
REPO = Path(__file__).resolve().parents[1]


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "ganaug", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=120,
    )


def bare_context() -> AugmentContext:
    return AugmentContext(classes=["a", "b"], real=None, generator=None, options={})


def write_module(folder: Path, name: str, source: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder on sys.path (in-process) for throwaway plugin modules."""
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("GANAUG_DISABLE_PLUGIN_AUTOLOAD", "1")
    return folder


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weights 3-class 8x8 generator saved as a standalone weights file (torch sampler)."""
    path = tmp_path_factory.mktemp("gen") / "g.safetensors"
    return save_random_generator(path, CLASSES, 8, seed=0, run_id="test-plugins")


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    counts = dict(zip(CLASSES, (12, 4, 2), strict=True))
    return write_noise_folder(tmp_path_factory.mktemp("data") / "images", counts)


# -- discovery and listing -------------------------------------------------------------------------
def test_builtins_are_registered_with_their_hooks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GANAUG_DISABLE_PLUGIN_AUTOLOAD", "1")
    infos = {i["name"]: i for i in plugin_infos(get_plugin_manager())}
    assert set(BUILTIN_PLUGINS) <= set(infos)
    assert infos["plugins.strategies"]["hooks"] == ["ganaug_plan"]
    assert "ganaug_accept" in infos["plugins.filters"]["hooks"]
    assert "ganaug_transform" in infos["plugins.albumentations_transforms"]["hooks"]
    assert all(i["origin"] == "builtin" for i in infos.values())


def test_plugin_option_registers_out_of_tree_plugin_and_its_hooks_run(plugin_dir: Path) -> None:
    write_module(
        plugin_dir,
        "oot_plugin",
        """
        __version__ = "0.7"
        from ganaug.hookspecs import hookimpl
        CALLS = []

        @hookimpl
        def ganaug_plan(class_counts, options):
            CALLS.append("plan")
            if options["strategy"] == "three each":
                return {c: 3 for c in class_counts}
            return None

        def ganaug_configure(context):  # unmarked: accepted because of the ganaug_ prefix
            CALLS.append("configure")
        """,
    )
    pm = get_plugin_manager(["oot_plugin"])
    info = {i["name"]: i for i in plugin_infos(pm)}["oot_plugin"]
    assert info == {"name": "oot_plugin", "version": "0.7", "origin": "option",
                    "hooks": ["ganaug_configure", "ganaug_plan"]}  # fmt: skip
    counts = {"a": 5, "b": 1}
    assert pm.hook.ganaug_plan(class_counts=counts, options={"strategy": "three each"}) == {"a": 3, "b": 3}
    # Unknown to the plugin -> it returns None and the built-in strategies answer.
    assert pm.hook.ganaug_plan(class_counts=counts, options={"strategy": "not majority"}) == {"b": 4}
    pm.hook.ganaug_configure(
        context=AugmentContext(classes=["a", "b"], real=None, generator=None, options={})
    )
    import oot_plugin

    assert oot_plugin.CALLS == ["plan", "plan", "configure"]


def test_plugins_list_cli_json_and_text(plugin_dir: Path) -> None:
    write_module(plugin_dir, "listed_plugin", "def ganaug_finish(context, summary):\n    pass\n")
    env = {"PYTHONPATH": str(plugin_dir), "GANAUG_DISABLE_PLUGIN_AUTOLOAD": "1"}
    res = run_cli("plugins", "list", "--json", "--plugin", "listed_plugin", env=env)
    assert res.returncode == 0, res.stderr
    infos = {i["name"]: i for i in json.loads(res.stdout)}
    assert infos["listed_plugin"]["hooks"] == ["ganaug_finish"]
    assert infos["listed_plugin"]["origin"] == "option"
    assert set(BUILTIN_PLUGINS) <= set(infos)
    text = run_cli("plugins", "list", env={**env, "GANAUG_PLUGINS": "listed_plugin"})
    assert text.returncode == 0, text.stderr
    assert any(line.startswith("listed_plugin") and "env" in line for line in text.stdout.splitlines())


def write_entry_point_dist(site: Path) -> None:
    """A fake installed distribution 'ganaug-ep-demo' 1.2.3 with one entry point in group ganaug."""
    dist = site / "ganaug_ep_demo-1.2.3.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ganaug-ep-demo\nVersion: 1.2.3\n")
    (dist / "entry_points.txt").write_text("[ganaug]\nepdemo = ganaug_ep_demo\n")
    write_module(
        site,
        "ganaug_ep_demo",
        """
        import click
        from ganaug.hookspecs import hookimpl

        @hookimpl
        def ganaug_register_commands(cli):
            @click.command("ep-hello")
            def hello():
                click.echo("hello from an entry point")
            cli.add_command(hello)

        @hookimpl
        def ganaug_plan(class_counts, options):
            if options["strategy"] == "ep-double":
                return {c: 2 * n for c, n in class_counts.items()}
            return None

        @hookimpl
        def ganaug_finish(context, summary):
            summary["epdemo"] = {"seen_classes": list(context.classes)}
        """,
    )


def test_entry_point_plugin_is_discovered_unless_autoload_is_disabled(tmp_path: Path) -> None:
    site = tmp_path / "site"
    write_entry_point_dist(site)
    env = {"PYTHONPATH": str(site), "GANAUG_DISABLE_PLUGIN_AUTOLOAD": ""}
    res = run_cli("plugins", "list", "--json", env=env)
    assert res.returncode == 0, res.stderr
    infos = {i["name"]: i for i in json.loads(res.stdout)}
    assert infos["epdemo"]["version"] == "1.2.3"
    assert infos["epdemo"]["origin"] == "entrypoint"
    assert infos["epdemo"]["hooks"] == ["ganaug_finish", "ganaug_plan", "ganaug_register_commands"]
    off = run_cli("plugins", "list", "--json", env={**env, "GANAUG_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert off.returncode == 0, off.stderr
    assert "epdemo" not in {i["name"] for i in json.loads(off.stdout)}


def test_entry_point_plugin_hooks_run_in_augment(
    tmp_path: Path, tiny_weights: Path, tiny_folder: Path
) -> None:
    site = tmp_path / "site"
    write_entry_point_dist(site)
    out = tmp_path / "out"
    env = {"PYTHONPATH": str(site), "GANAUG_DISABLE_PLUGIN_AUTOLOAD": ""}
    res = run_cli("augment", str(tiny_folder), "-g", str(tiny_weights), "--out", str(out),
                  "--strategy", "ep-double", "-q", env=env)  # fmt: skip
    assert res.returncode == 0, res.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"]["synthetic"] == {"top": 24, "trouser": 8, "pullover": 4}
    assert summary["epdemo"] == {"seen_classes": sorted(CLASSES)}  # folder classes are sorted
    assert "epdemo" in [p["name"] for p in summary["plugins"]]


def test_register_commands_hook_adds_a_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import click
    from click.testing import CliRunner

    from ganaug.plugins import add_plugin_commands

    site = tmp_path / "site"
    write_entry_point_dist(site)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv("GANAUG_DISABLE_PLUGIN_AUTOLOAD", raising=False)

    @click.group()
    def group() -> None:
        pass

    add_plugin_commands(group)
    assert "ep-hello" in group.commands
    result = CliRunner().invoke(group, ["ep-hello"])
    assert result.exit_code == 0 and "hello from an entry point" in result.output


def test_register_commands_reach_the_ganaug_cli(tmp_path: Path) -> None:
    common = (REPO / "ganaug" / "cli" / "common.py").read_text() + (
        REPO / "ganaug" / "cli" / "__init__.py"
    ).read_text()
    if "add_plugin_commands" not in common:
        pytest.skip("ganaug.cli does not call ganaug.plugins.add_plugin_commands yet")
    site = tmp_path / "site"
    write_entry_point_dist(site)
    res = run_cli("ep-hello", env={"PYTHONPATH": str(site), "GANAUG_DISABLE_PLUGIN_AUTOLOAD": ""})
    assert res.returncode == 0, res.stderr
    assert "hello from an entry point" in res.stdout


# -- failures are loud and named -------------------------------------------------------------------
@pytest.mark.parametrize(
    "source",
    [
        "from ganaug.hookspecs import hookimpl\n@hookimpl\ndef ganaug_tranform(image):\n    return None\n",
        "def ganaug_tranform(image):\n    return None\n",  # unmarked, still caught
    ],
)
def test_misspelt_hook_fails_loudly(plugin_dir: Path, source: str) -> None:
    write_module(plugin_dir, "typo_plugin", source)
    with pytest.raises(
        PluginError, match=r"'typo_plugin'.*'ganaug_tranform'.*did you mean 'ganaug_transform'"
    ):
        get_plugin_manager(["typo_plugin"])
    res = run_cli("plugins", "list", "--plugin", "typo_plugin", env={"PYTHONPATH": str(plugin_dir)})
    assert res.returncode == 1
    assert "error: plugin 'typo_plugin' implements unknown hook 'ganaug_tranform'" in res.stderr
    assert "Traceback" not in res.stderr


def test_hookimpl_with_unknown_argument_is_rejected(plugin_dir: Path) -> None:
    write_module(plugin_dir, "badarg_plugin", "def ganaug_plan(class_counts, nonsense):\n    return None\n")
    with pytest.raises(PluginError, match=r"'badarg_plugin' is invalid.*nonsense"):
        get_plugin_manager(["badarg_plugin"])


def test_unimportable_plugin_is_named(plugin_dir: Path) -> None:
    with pytest.raises(PluginError, match="cannot import plugin 'no_such_plugin_xyz'.*on PYTHONPATH"):
        get_plugin_manager(["no_such_plugin_xyz"])
    # a plugin that is found but lacks a dependency: the missing dependency is named, no PYTHONPATH hint
    write_module(plugin_dir, "needs_a_dep", "import no_such_dependency_xyz\n")
    with pytest.raises(PluginError, match="no_such_dependency_xyz") as info:
        get_plugin_manager(["needs_a_dep"])
    assert "PYTHONPATH" not in str(info.value)
    write_module(plugin_dir, "broken_on_import", "raise RuntimeError('boom at import')\n")
    with pytest.raises(PluginError, match=r"'broken_on_import' failed while being imported.*boom at import"):
        get_plugin_manager(["broken_on_import"])


def test_exception_inside_plugin_names_plugin_and_hook(plugin_dir: Path) -> None:
    write_module(
        plugin_dir,
        "raising_plugin",
        "def ganaug_plan(class_counts, options):\n    return {'a': 1 // 0}\n",
    )
    pm = get_plugin_manager(["raising_plugin"])
    with pytest.raises(
        PluginError, match=r"plugin 'raising_plugin' failed in ganaug_plan: ZeroDivisionError"
    ) as info:
        pm.hook.ganaug_plan(class_counts={"a": 1}, options={"strategy": 1.0})
    assert isinstance(info.value.__cause__, ZeroDivisionError)  # the original is kept for debugging


def test_ganaug_errors_from_plugins_pass_through_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GANAUG_DISABLE_PLUGIN_AUTOLOAD", "1")
    pm = get_plugin_manager()
    with pytest.raises(UsageError, match="ratio must be a finite number >= 0"):
        pm.hook.ganaug_plan(class_counts={"a": 1}, options={"strategy": -1.0})


def test_wrong_return_types_are_reported_by_plugin_name(plugin_dir: Path) -> None:
    write_module(
        plugin_dir,
        "wrong_types",
        """
        import numpy as np
        def ganaug_plan(class_counts, options):
            return [1, 2]
        def ganaug_transform(image):
            return image.astype(np.float32), []
        def ganaug_accept(images, labels):
            return np.ones(len(labels) + 1, dtype=bool)
        """,
    )
    pm = get_plugin_manager(["wrong_types"])
    with pytest.raises(PluginError, match=r"'wrong_types': ganaug_plan returned a list, expected a dict"):
        pm.hook.ganaug_plan(class_counts={"a": 1}, options={"strategy": 1.0})
    img = np.zeros((4, 4, 1), np.uint8)
    with pytest.raises(
        PluginError, match=r"'wrong_types': ganaug_transform returned an image that is .*float32"
    ):
        pm.transform(img, label=0, source="real", rng=np.random.default_rng(0), context=bare_context())
    with pytest.raises(PluginError, match=r"'wrong_types': ganaug_accept returned 3 votes for 2 images"):
        list(pm.call_each("ganaug_accept", images=np.zeros((2, 4, 4, 1), np.uint8),
                          labels=np.zeros(2, np.int64), context=bare_context()))  # fmt: skip


def test_plan_naming_an_unknown_class_is_reported(plugin_dir: Path) -> None:
    write_module(plugin_dir, "unknown_class", "def ganaug_plan(class_counts):\n    return {'zebra': 3}\n")
    pm = get_plugin_manager(["unknown_class"])
    with pytest.raises(PluginError, match=r"'unknown_class': ganaug_plan returned unknown class 'zebra'"):
        pm.hook.ganaug_plan(class_counts={"a": 1}, options={})


def test_wrapper_teardown_error_is_named(plugin_dir: Path) -> None:
    write_module(
        plugin_dir,
        "wrapping_plugin",
        """
        from ganaug.hookspecs import hookimpl
        @hookimpl(wrapper=True)
        def ganaug_plan(class_counts, options):
            plan = yield
            return {c: n + int("x") for c, n in plan.items()}
        """,
    )
    pm = get_plugin_manager(["wrapping_plugin"])
    with pytest.raises(PluginError, match=r"'wrapping_plugin' failed in ganaug_plan: ValueError"):
        pm.hook.ganaug_plan(class_counts={"a": 1, "b": 3}, options={"strategy": "not majority"})


def test_wrapper_that_adjusts_a_plan_works(plugin_dir: Path) -> None:
    write_module(
        plugin_dir,
        "capping_wrapper",
        """
        from ganaug.hookspecs import hookimpl
        @hookimpl(wrapper=True)
        def ganaug_plan(class_counts, options):
            plan = yield
            return {c: min(n, 5) for c, n in plan.items()}
        """,
    )
    pm = get_plugin_manager(["capping_wrapper"])
    assert pm.hook.ganaug_plan(
        class_counts={"a": 20, "b": 3, "c": 18}, options={"strategy": "not majority"}
    ) == {
        "b": 5,
        "c": 2,
    }


def test_wrappers_are_refused_on_chained_hooks(plugin_dir: Path) -> None:
    write_module(
        plugin_dir,
        "chain_wrapper",
        "from ganaug.hookspecs import hookimpl\n@hookimpl(wrapper=True)\ndef ganaug_transform(image):\n"
        "    return (yield)\n",
    )
    with pytest.raises(PluginError, match="'chain_wrapper': ganaug_transform cannot be a wrapper"):
        get_plugin_manager(["chain_wrapper"])


def test_transform_chain_order_and_applied_names(plugin_dir: Path) -> None:
    body = """
    import numpy as np
    from ganaug.hookspecs import hookimpl
    @hookimpl{opts}
    def ganaug_transform(image, source):
        if source != "real":
            return None
        return {expr}, [{{"name": "{name}"}}]
    """
    write_module(plugin_dir, "t_add", textwrap.dedent(body).format(opts="", expr="image + 1", name="add"))
    write_module(
        plugin_dir, "t_double", textwrap.dedent(body).format(opts="", expr="image * 2", name="double")
    )
    pm = get_plugin_manager(["t_add", "t_double"])
    img = np.full((2, 2, 1), 3, np.uint8)
    out, applied, acted = pm.transform(
        img, label=0, source="real", rng=np.random.default_rng(0), context=bare_context()
    )
    # pluggy calls the latest registered first: double, then add.
    assert out[0, 0, 0] == 3 * 2 + 1
    assert applied == [{"name": "double"}, {"name": "add"}]
    assert acted == ["t_double", "t_add"]
    same, none_applied, nobody = pm.transform(
        img, label=0, source="synthetic", rng=np.random.default_rng(0), context=bare_context()
    )
    assert same is img and none_applied == [] and nobody == []


def test_parse_plugin_options() -> None:
    assert parse_plugin_options(["a=1", "b=0.5", "c=true", "d=text", "e="]) == {
        "a": 1,
        "b": 0.5,
        "c": True,
        "d": "text",
        "e": "",
    }
    with pytest.raises(UsageError, match="not KEY=VALUE"):
        parse_plugin_options(["novalue"])


def test_claim_filter() -> None:
    ctx = AugmentContext(classes=["a"], real=None, generator=None, options={"filters": ["x", "y"]})
    assert ctx.claim_filter("x") and not ctx.claim_filter("z")
    assert ctx.unclaimed_filters == ["y"]


# -- built-in strategies (through the public hook) -------------------------------------------------
COUNTS = {"a": 10, "b": 4, "c": 1, "d": 1}


@pytest.fixture(scope="module")
def plan():
    pm = get_plugin_manager(autoload=False)
    return lambda strategy, counts=COUNTS: pm.hook.ganaug_plan(
        class_counts=dict(counts), options={"strategy": strategy}
    )


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        (0.5, {"a": 5, "b": 2, "c": 1, "d": 1}),  # rounds half up
        ("2", {"a": 20, "b": 8, "c": 2, "d": 2}),
        ("not majority", {"b": 6, "c": 9, "d": 9}),
        ("auto", {"b": 6, "c": 9, "d": 9}),
        ("Not_Majority", {"b": 6, "c": 9, "d": 9}),
        ("minority", {"c": 9, "d": 9}),
        ("not minority", {"b": 6}),
        ("all", {"b": 6, "c": 9, "d": 9}),
        ({"b": 10, "c": 3}, {"b": 6, "c": 2}),
        ('{"b": 10, "d": 1}', {"b": 6, "d": 0}),
        ("{a: 12}", {"a": 2}),  # inline YAML
        ({1: 5}, {"b": 1}),  # class index keys
    ],
)
def test_strategies(plan, strategy, expected) -> None:
    assert plan(strategy) == expected


def test_strategy_files_and_errors(plan, tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text("b: 8\nc: 2\n")
    (tmp_path / "s.json").write_text('{"d": 5}')
    assert plan(str(tmp_path / "s.yaml")) == {"b": 4, "c": 1}
    assert plan(str(tmp_path / "s.json")) == {"d": 4}
    assert plan("smote-please") is None  # not ours: other plugins may know it
    with pytest.raises(UsageError, match="below its 10 real images"):
        plan({"a": 3})
    with pytest.raises(UsageError, match="unknown class 'zebra'"):
        plan({"zebra": 3})
    with pytest.raises(UsageError, match="file not found"):
        plan(str(tmp_path / "missing.yaml"))
    with pytest.raises(UsageError, match="must be an integer"):
        plan({"b": 2.5})


# -- the documented example plugin ------------------------------------------------------------------
def test_documented_example_plugin_works_end_to_end(
    tmp_path: Path, tiny_weights: Path, tiny_folder: Path
) -> None:
    example = REPO / "docs" / "example_plugin"
    out = tmp_path / "out"
    res = run_cli("augment", str(tiny_folder), "-g", str(tiny_weights), "--out", str(out),
                  "--plugin", "ganaug_dark_filter", "--strategy", "to-median", "--filter", "dark",
                  "-O", "min_brightness=0", "-q", env={"PYTHONPATH": str(example)})  # fmt: skip
    assert res.returncode == 0, res.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"]["synthetic"] == {"pullover": 2, "top": 0, "trouser": 0}
    assert summary["rejected"] == {"ganaug_dark_filter": 0}
    assert summary["dark-filter"] == {"min_brightness": 0.0}
    picky = run_cli("augment", str(tiny_folder), "-g", str(tiny_weights), "--out", str(tmp_path / "o2"),
                    "--plugin", "ganaug_dark_filter", "--strategy", "to-median", "--filter", "dark",
                    "-O", "min_brightness=256", "--max-attempts", "3", "-q",
                    env={"PYTHONPATH": str(example)})  # fmt: skip
    assert picky.returncode == 0, picky.stderr
    assert "only 0 of 2 synthetic images passed the filters after 6 candidates" in picky.stderr
