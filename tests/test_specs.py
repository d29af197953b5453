"""Specs (``ganaug.specs``): options declared once as dataclass fields; ``--config`` reads back what a
run saved (``eval uplift`` writes ``config.yaml``)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest
import yaml
from conftest import export_random_generator, pattern_images
from conftest import run_cli as _run_cli

from ganaug import specs
from ganaug.errors import UsageError
from ganaug.eval.policy import MixPolicy
from ganaug.eval.spec import CasSpec, QualitySpec, UpliftSpec
from ganaug.limits import Limit
from ganaug.specs import option, parse_spec, spec_to_config

CLASSES = ["c0", "c1", "c2"]


def _pair(value):
    if isinstance(value, dict):  # from a config file
        return value
    key, _, raw = str(value).partition("=")
    if not key:
        raise UsageError(f"--tag: expected KEY=VALUE, got {value!r}")
    return {key: raw}


@dataclass
class ToySpec:
    path: str | None = option(None, argument=True, path=True, required=True)
    steps: int = option(5, limit=Limit(int, 1, 10), help="Steps.")
    flip: bool = option(False, flags=("--flip/--no-flip",), aliases=("use_flip",))
    tags: dict = option(  # noqa: RUF009 - option() is a field specifier
        default_factory=dict,
        convert=_pair,
        multiple=True,
        flags=("--tag",),
        collect=lambda v: {k: x for d in v for k, x in d.items()},
    )
    device: str = specs.device()
    seed: int = specs.seed()
    hidden: int = option(0, cli=False)


def test_options_come_from_the_fields_and_check_bounds():
    spec = parse_spec(ToySpec, ["data", "--steps", "7", "--flip", "--tag", "a=1", "--tag", "b=2"])
    assert spec == ToySpec("data", 7, True, {"a": "1", "b": "2"}, specs.DEVICE, 0)  # one default: auto
    assert parse_spec(ToySpec, ["d"]) == ToySpec("d")
    with pytest.raises(UsageError, match="--steps"):
        parse_spec(ToySpec, ["d", "--steps", "11"])
    with pytest.raises(UsageError, match="--tag"):
        parse_spec(ToySpec, ["d", "--tag", "=x"])
    with pytest.raises(UsageError, match="hidden"):
        parse_spec(ToySpec, ["d", "--hidden", "1"])  # library-only fields have no option
    assert "hidden" not in spec_to_config(spec)


def test_saved_config_round_trips_and_aliases_are_deprecated(tmp_path, capsys):
    spec = parse_spec(ToySpec, ["data", "--steps", "3", "--no-flip", "--tag", "k=v", "--seed", "9"])
    cfg = tmp_path / "config.yaml"
    specs.save_spec(spec, cfg)
    assert parse_spec(ToySpec, ["--config", str(cfg)]) == spec
    assert parse_spec(ToySpec, ["--config", str(cfg), "--steps", "4"]).steps == 4  # flags win
    cfg.write_text("path: d\nuse_flip: true\n")
    assert parse_spec(ToySpec, ["--config", str(cfg)]).flip is True
    assert "'use_flip' is deprecated, use 'flip'" in capsys.readouterr().err
    cfg.write_text("path: d\nnope: 1\n")
    with pytest.raises(UsageError, match="unknown option 'nope'"):
        parse_spec(ToySpec, ["--config", str(cfg)])
    cfg.write_text("path: d\nsteps: [1, 2]\n")
    with pytest.raises(UsageError, match="single value"):
        parse_spec(ToySpec, ["--config", str(cfg)])


def test_shared_concepts_have_one_name_and_default():
    for name in ("device", "seed", "feature_steps", "generator", "n_per_class", "out"):
        seen = {
            (specs.info_of(f).flags, specs.info_of(f).limit, f.default)
            for cls in (UpliftSpec, QualitySpec, CasSpec)
            for f in specs.cli_fields(cls)
            if f.name == name
        }
        assert len(seen) == 1, name


def test_uplift_spec_from_flags_equals_spec_from_its_saved_config(tmp_path):
    args = ["train.npz", "--test", "t.npz", "--imbalance", "8,2,4", "--out", "o", "--gan-option", "lr_d=4e-4"]
    args += ["--policy", "name=a,strategy=not majority", "--policy", "name=b,strategy=0,balance=true"]
    args += ["--steps", "6", "--channels", "1", "--no-quality", "--filter"]
    spec = parse_spec(UpliftSpec, args)
    assert spec.imbalance == [8, 2, 4] and spec.gan_options == {"lr_d": 0.0004} and spec.channels == 1
    assert spec.policies == [MixPolicy(name="a", strategy="not majority"), MixPolicy("b", 0, balance=True)]
    assert spec.all_gan_options() == {"lr_d": 0.0004, "steps": 6}
    specs.save_spec(spec, tmp_path / "c.yaml")
    assert parse_spec(UpliftSpec, ["--config", str(tmp_path / "c.yaml")]) == spec
    (tmp_path / "old.yaml").write_text("data: d\nout: o\nuse_filter: true\ngan_option: {z_dim: 8}\n")
    old = parse_spec(UpliftSpec, ["--config", str(tmp_path / "old.yaml")])
    assert old.filter is True and old.gan_options == {"z_dim": 8}


def test_eval_uplift_saves_a_config_that_repeats_the_run(tmp_path):
    x, y = pattern_images([12, 12, 12], size=16, seed=0)
    xt, yt = pattern_images([6, 6, 6], size=16, seed=1)
    np.savez(tmp_path / "train.npz", images=x, labels=y, classes=np.array(CLASSES))
    np.savez(tmp_path / "test.npz", images=xt, labels=yt, classes=np.array(CLASSES))
    gen = export_random_generator(tmp_path / "gen", CLASSES, 16, seed=0, run_id="specs")
    args = [str(tmp_path / "train.npz"), "--test", str(tmp_path / "test.npz"), "--per-class", "5"]
    args += ["--seeds", "1", "--seed", "2", "-g", str(gen), "--no-quality", "--classifier-steps", "8"]
    args += ["--classifier-batch-size", "8", "--policy", "name=plain,strategy=1", "--threads", "1"]
    env = {"OMP_NUM_THREADS": "1"}
    first = _run_cli("eval", "uplift", *args, "--out", str(tmp_path / "o1"), "-q", env=env)
    assert first.returncode == 0, first.stderr
    saved = tmp_path / "o1" / "config.yaml"
    expected = parse_spec(UpliftSpec, [*args, "--out", str(tmp_path / "o1")])
    assert parse_spec(UpliftSpec, ["--config", str(saved)]) == expected

    again = _run_cli("eval", "uplift", "--config", str(saved), "--out", str(tmp_path / "o2"), "-q", env=env)
    assert again.returncode == 0, again.stderr
    cfg1, cfg2 = (yaml.safe_load((tmp_path / o / "config.yaml").read_text()) for o in ("o1", "o2"))
    assert cfg2.pop("out") != cfg1.pop("out") and cfg1 == cfg2
    rep1, rep2 = (json.loads((tmp_path / o / "report.json").read_text()) for o in ("o1", "o2"))
    assert rep1["arms"] == rep2["arms"] == ["real", "plain"]
    assert rep1["summary"] == rep2["summary"]  # the same experiment, the same numbers
