"""``ganaug train --arch/--loss`` pass the name through to the model and loss registries, which
validate it (the timm ``create_model`` idea) and list what they hold."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_cli, write_imagefolder

from ganaug.losses import LOSSES
from ganaug.models import available_architectures


@pytest.mark.parametrize(
    ("flag", "value", "registered"),
    [("--arch", "nope", available_architectures), ("--loss", "wgan", lambda: LOSSES)],
)
def test_unknown_names_get_one_line_listing_the_registry(tmp_path: Path, flag, value, registered) -> None:
    data = write_imagefolder(tmp_path / "data", [2, 2], size=8)
    proc = run_cli("train", str(data), "--out", str(tmp_path / "run"), flag, value)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == f"error: unknown {flag} {value!r}; registered: {', '.join(registered())}"
    assert not (tmp_path / "run").exists()


def test_help_lists_the_registered_names() -> None:
    out = " ".join(run_cli("train", "--help", check=True).stdout.split())
    assert f"Registered: {', '.join(available_architectures())}." in out
    assert f"Registered: {', '.join(LOSSES)}." in out


def test_library_loss_spelling_is_normalised_so_the_gradient_penalty_runs() -> None:
    from ganaug.training.config import TrainConfig, validate

    cfg = TrainConfig(loss="WGAN_GP")
    validate(cfg)
    assert cfg.loss == "wgan-gp"  # the loop switches the gradient penalty on by this spelling
