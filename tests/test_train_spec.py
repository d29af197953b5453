"""``ganaug train`` from its spec (:class:`ganaug.training.TrainConfig`): every field with CLI
metadata is a flag of the command, and the ``config.yaml`` a run saves, fed back through
``--config``, gives the same spec."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import yaml
from conftest import run_cli, write_imagefolder

from ganaug.specs import cli_fields, info_of, parse_spec, spec_to_config
from ganaug.training.config import TrainConfig

#: The command's own options (not part of the spec, never saved).
OWN = {"config", "resume", "overwrite", "quiet", "help"}


def _flags(field) -> list[str]:
    info = info_of(field)
    declared = info.flags or (f"--{field.name.replace('_', '-')}",)
    return [part for flag in declared for part in flag.split("/")]


def test_every_spec_field_is_a_train_flag_in_help() -> None:
    from ganaug.cli.train_cmd import train as command

    help_text = run_cli("train", "--help", check=True).stdout
    fields = cli_fields(TrainConfig)
    assert fields == list(dataclasses.fields(TrainConfig))  # every field is saved and is an option
    shown = set(re.findall(r"(?<![\w-])--?[\w-]+", help_text))
    missing = []
    for field in fields:
        if info_of(field).argument:
            assert f"[{field.name.upper()}]" in help_text.splitlines()[0]
            continue
        missing += [flag for flag in _flags(field) if flag not in shown]
    assert not missing, f"TrainConfig fields without a flag in 'ganaug train --help': {missing}"
    # generated, not hand-written: the command holds exactly the spec's fields and its own options
    assert {p.name for p in command.params} - OWN == {f.name for f in fields}


def test_saved_config_through_config_gives_the_same_spec(tmp_path: Path) -> None:
    data = write_imagefolder(tmp_path / "data", [4, 4], size=8)
    args = [str(data), "--arch", "mlp", "--batch-size", "4", "--z-dim", "8", "--g-width", "8"]
    args += ["--d-width", "8", "--steps", "2", "--log-every", "1", "--sample-every", "1"]
    args += ["--channels", "1", "--betas", "0.4,0.99", "--seed", "3", "--lecam", "0.1"]
    args += ["--no-channels-last", "--time-budget", "5", "--device", "cpu", "--image-size", "8"]
    out = tmp_path / "run"
    proc = run_cli("train", *args, "--out", str(out), "-q")
    assert proc.returncode == 0, proc.stderr

    saved = out / "config.yaml"
    expected = parse_spec(TrainConfig, [*args, "--out", str(out)], "train")
    assert expected.channels == 1 and expected.betas == (0.4, 0.99) and expected.time_budget == 5.0
    assert expected.channels_last is False and expected.seed == 3
    assert parse_spec(TrainConfig, ["--config", str(saved)], "train") == expected
    assert yaml.safe_load(saved.read_text()) == spec_to_config(expected)
    assert TrainConfig.from_dict(yaml.safe_load(saved.read_text())) == expected


def _all_cli_flags() -> set[str]:
    """Every option flag of every ganaug command and subcommand (from the click tree, no subprocess)."""
    import click

    from ganaug.cli import cli

    flags: set[str] = set()
    stack: list[tuple[click.Command, click.Context]] = [(cli, click.Context(cli))]
    while stack:
        command, ctx = stack.pop()
        for param in command.params:
            flags.update(param.opts + param.secondary_opts)
        if isinstance(command, click.Group):
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                stack.append((sub, click.Context(sub, parent=ctx, info_name=name)))
    return flags


def test_theory_option_map_names_only_real_flags() -> None:
    theory = Path(__file__).resolve().parents[1] / "docs" / "theory.md"
    if not theory.is_file():
        pytest.skip("docs/ not present (installed package)")
    table = theory.read_text(encoding="utf-8").split("## Option map", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"(?<![\w-])--[a-z][\w-]*", table))
    assert {"--lecam", "--mode-seeking", "--balance-classes", "--no-minibatch-std"} <= named
    unknown = sorted(named - _all_cli_flags())
    assert not unknown, f"docs/theory.md's option map names flags no ganaug command has: {unknown}"
