"""The CLI surface: every command exists with an example in --help, exit codes, version checks."""

from __future__ import annotations

import json

import pytest
from conftest import run_cli

COMMANDS = ["train", "sample", "export", "augment", "eval", "data", "plugins", "demo", "version"]


def test_every_command_is_listed_and_has_an_example():
    top = run_cli("--help", check=True).stdout
    for name in COMMANDS:
        assert f"  {name} " in top, name
    for name in ["train", "sample", "export", "augment", "demo", "version", "data inspect", "plugins list"]:
        out = run_cli(*name.split(), "--help", check=True).stdout
        assert "Example" in out and "ganaug" in out, name


def test_python_m_and_version_flag_agree():
    from ganaug import __version__

    assert run_cli("--version", check=True).stdout.strip().endswith(__version__)
    info = json.loads(run_cli("version", "--json", check=True).stdout)
    assert info["ganaug"] == __version__ and info["torch"] and info["albumentations"].startswith("2.0")
    assert "CPUExecutionProvider" in info["onnxruntime_providers"]


def test_version_warns_when_both_onnxruntime_distributions_are_installed(tmp_path):
    dist = tmp_path / "onnxruntime_gpu-1.20.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: onnxruntime-gpu\nVersion: 1.20.0\n")
    proc = run_cli("version", env={"PYTHONPATH": str(tmp_path)})
    assert proc.returncode == 0
    assert "both onnxruntime and onnxruntime-gpu are installed" in proc.stderr


@pytest.mark.parametrize(
    ("args", "code"),
    [(["no-such-command"], 2), (["train", "--steps", "abc"], 2), (["data", "inspect", "/nonexistent/x"], 2)],
)
def test_exit_codes(args, code):
    proc = run_cli(*args)
    assert proc.returncode == code, proc.stderr
    assert proc.stderr.strip() and "Traceback" not in proc.stderr
