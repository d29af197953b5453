"""``benchmarks/tune_check.py``: ``--tune`` runs made one seed at a time (default grid, every
candidate tested) combine into one check, seed by seed, with ganaug's own choice rule."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "tune_check.py"


def _seed_run(root: Path, seed: int, validation: dict[str, float], test: dict[str, float]) -> Path:
    """What ``eval uplift --tune --tune-test-all --seed N --seeds 1`` leaves: seed_N/tune.json and a
    report.json whose test summary has one value per arm."""
    run = root / f"s{seed}"
    (run / f"seed_{seed}").mkdir(parents=True)
    tune = {
        "seed": seed,
        "arms": {name: {"accuracy": v / 100.0} for name, v in validation.items()},
        "controls": {"gan-soft": "gan-soft-control"},
    }
    (run / f"seed_{seed}" / "tune.json").write_text(json.dumps(tune))
    report = {
        "settings": {"seeds": [seed]},
        "summary": {name: {"accuracy": {"values": [v]}} for name, v in test.items()},
    }
    (run / "report.json").write_text(json.dumps(report))
    return run


def test_per_seed_runs_combine_by_seed_with_the_default_grid(tmp_path):
    # the GAN arm wins validation on every seed but by a margin inside the seeds' noise
    val = [
        {"real": 80.0, "gan-soft": 84.0, "gan-soft-control": 81.0, "gan": 79.0},
        {"real": 82.0, "gan-soft": 82.5, "gan-soft-control": 82.0, "gan": 80.0},
        {"real": 81.0, "gan-soft": 81.5, "gan-soft-control": 81.2, "gan": 78.0},
    ]
    test = [
        {"real": 83.0, "gan-soft": 82.0, "gan-soft-control": 83.5, "gan": 81.0, "tuned": 0.0},
        {"real": 84.0, "gan-soft": 83.0, "gan-soft-control": 84.5, "gan": 82.0, "tuned": 0.0},
        {"real": 85.0, "gan-soft": 84.0, "gan-soft-control": 84.0, "gan": 83.0, "tuned": 0.0},
    ]
    runs = [_seed_run(tmp_path, s, val[s], test[s]) for s in (2, 0, 1)]  # any order
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"per_class_n": 100, "tune": True, "policies": []}))
    out = tmp_path / "check"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--config", str(config), "--out", str(out),
         "--tune", *[str(r / f"seed_{r.name[1:]}" / "tune.json") for r in runs],
         "--test", *[str(r / "report.json") for r in runs]],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    res = json.loads(out.with_suffix(".json").read_text())
    # validation winner gan-soft is not beyond noise -> the best no-GAN arm on validation is chosen
    assert res["choice"] == "gan-soft-control"
    assert "without GAN samples" in res["recommendation"]
    # test values were lined up by seed: seed 0's best on test is the control, seed 2's is real
    assert [s["test_best"] for s in res["seeds"]] == ["gan-soft-control", "gan-soft-control", "real"]
    assert res["test_mean"]["gan-soft"] == 83.0 and "tuned" not in res["arms"]
    assert res["matches"] == 0


def test_stored_validation_predictions_add_the_image_interval(tmp_path):
    """Runs that kept their validation predictions: a GAN arm clear over seeds (+2 every seed) but
    only one image of 50 ahead on each is not chosen; --seed-interval-only gives the earlier rule."""
    val = {"real": 80.0, "gan-soft-control": 80.0, "gan": 82.0, "gan-soft": 78.0}
    test = {"real": 83.0, "gan-soft-control": 83.0, "gan": 82.0, "gan-soft": 82.0}
    runs = [_seed_run(tmp_path, s, val, test) for s in (0, 1, 2)]
    labels = [i % 5 for i in range(50)]
    for r in runs:
        path = r / f"seed_{r.name[1:]}" / "tune.json"
        body = json.loads(path.read_text())
        right = [labels[:40] + [(y + 1) % 5 for y in labels[40:]]]  # 40 of 50 right = 80%
        gan = [labels[:41] + [(y + 1) % 5 for y in labels[41:]]]  # one more image right = 82%
        for arm, preds in {"real": right, "gan-soft-control": right, "gan": gan, "gan-soft": right}.items():
            body["arms"][arm]["predictions"] = preds[0]
        body["validation_labels"] = labels
        path.write_text(json.dumps(body))
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"per_class_n": 100, "tune": True, "policies": []}))
    common = ["--config", str(config), "--tune", *[str(r / f"seed_{r.name[1:]}" / "tune.json") for r in runs],
              "--test", *[str(r / "report.json") for r in runs]]  # fmt: skip
    for extra, chosen in (([], "real"), (["--seed-interval-only"], "gan")):
        out = tmp_path / f"check{len(extra)}"
        proc = subprocess.run([sys.executable, str(SCRIPT), *common, *extra, "--out", str(out)],
                              capture_output=True, text=True, check=False)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        res = json.loads(out.with_suffix(".json").read_text())
        assert res["choice"] == chosen
    said = json.loads((tmp_path / "check0.json").read_text())["recommendation"]
    assert "within the noise of the validation images" in said
