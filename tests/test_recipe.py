"""Training-recipe levers (issue 14): conditioning, mode seeking, LeCam, CPU budget, snapshots.

Code paths on tiny data, not quality (that is benchmarks/quality_budget.py's job).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from conftest import run_cli
from test_train import TINY, read_results, tiny_dataset

from ganaug.checkpoint import load_generator, read_metadata
from ganaug.errors import CheckpointError, UsageError
from ganaug.losses import lecam_penalty, mode_seeking_loss
from ganaug.models import build_discriminator, build_generator
from ganaug.snapshots import select_weights
from ganaug.training import train
from ganaug.training.config import NO_STEP_LIMIT
from ganaug.training.logs import plain_line
from ganaug.training.state import load_training_state


@pytest.mark.parametrize("cond", ["concat", "cbn", "both"])
def test_each_conditioning_builds_and_makes_label_dependent_images(cond):
    torch.manual_seed(0)
    g = build_generator("dcgan", num_classes=3, z_dim=8, image_size=28, channels=1, width=8, cond=cond)
    g.eval()
    z = torch.randn(1, 8).repeat(3, 1)
    out = g(z, torch.tensor([0, 1, 2]))
    assert out.shape == (3, 1, 28, 28)
    if cond == "cbn":  # no embedding in the first layer: z alone drives it
        assert g.embed is None and g.fc.in_features == 8
        with torch.no_grad():  # class-conditional BN gains/biases are what separates the classes
            for m in g.modules():
                if hasattr(m, "gain") and isinstance(m.gain, torch.nn.Embedding):
                    m.bias.weight.normal_()
        out = g(z, torch.tensor([0, 1, 2]))
    assert not torch.allclose(out[0], out[1])
    assert build_generator(**g.config).cond == cond


def test_unknown_conditioning_and_minibatch_std_switch():
    with pytest.raises(UsageError, match="cond must be one of"):
        build_generator("dcgan", num_classes=2, image_size=28, cond="film")
    with_mb = build_discriminator("dcgan", num_classes=2, image_size=28, width=8)
    without = build_discriminator("dcgan", num_classes=2, image_size=28, width=8, minibatch_std=False)
    assert sum(p.numel() for p in with_mb.parameters()) > sum(p.numel() for p in without.parameters())


def test_lecam_penalty_pulls_real_towards_the_fake_anchor_and_fake_towards_the_real_one():
    real, fake = torch.tensor([0.5, 0.2]), torch.tensor([-0.5, -0.2])
    # zero while real logits stay below the fake anchor and fake logits above the real anchor
    assert lecam_penalty(real, fake, torch.tensor(-1.0), torch.tensor(1.0)).item() == 0.0
    assert lecam_penalty(real, fake, torch.tensor(0.0), torch.tensor(0.0)).item() == pytest.approx(
        (0.25 + 0.04) / 2 + (0.25 + 0.04) / 2
    )


def test_mode_seeking_loss_punishes_collapse():
    z_a, z_b = torch.randn(4, 8), torch.randn(4, 8)
    same = torch.zeros(4, 1, 8, 8)
    varied = torch.rand(4, 1, 8, 8)
    assert mode_seeking_loss(same, same, z_a, z_b) > 1000 * mode_seeking_loss(varied, -varied, z_a, z_b)


def test_recipe_options_train_and_are_saved(tmp_path):
    opts = {"g_cond": "cbn", "minibatch_std": False, "mode_seeking": 1.0, "lecam": 0.1}
    result = train(out=tmp_path / "run", dataset=tiny_dataset(), steps=4, checkpoint_every=2, **opts, **TINY)
    assert result.step == 4
    g = load_generator(result.run_dir)
    assert g.config["cond"] == "cbn" and g.embed is None
    state = load_training_state(result.run_dir)
    anchors = state.tensors["lecam"]
    assert anchors[2].item() == 4 and anchors[0].item() != 0.0  # one update per D step
    assert float(state.meta["ganaug.cpu_s"]) > 0
    rows = read_results(result.run_dir)
    assert all(r["cpu_s"] > 0 for r in rows)


def test_resume_is_bit_exact_with_lecam_mode_seeking_and_snapshots(tmp_path):
    opts = {**TINY, "log_every": 1, "checkpoint_every": 3, "seed": 5, "lecam": 0.3, "mode_seeking": 0.5}
    full = train(out=tmp_path / "full", dataset=tiny_dataset(), steps=6, snapshots=3, **opts)
    train(out=tmp_path / "half", dataset=tiny_dataset(), steps=3, snapshots=3, **opts)
    resumed = train(out=tmp_path / "half", resume=True, steps=6, explicit={"steps"})
    rows_a, rows_b = read_results(full.run_dir), read_results(resumed.run_dir)
    for key in ("loss_d", "loss_g", "d_real", "d_fake"):
        assert [r[key] for r in rows_a] == [r[key] for r in rows_b], key
    sa, sb = load_training_state(full.run_dir), load_training_state(resumed.run_dir)
    assert torch.equal(sa.tensors["lecam"], sb.tensors["lecam"])
    ia = json.loads((full.run_dir / "weights" / "snapshots.json").read_text())
    ib = json.loads((resumed.run_dir / "weights" / "snapshots.json").read_text())
    assert [(e["step"], e["val_fid"]) for e in ia["snapshots"]] == [
        (e["step"], e["val_fid"]) for e in ib["snapshots"]
    ]


def test_time_budget_stops_on_cpu_time_and_checkpoints(tmp_path):
    result = train(
        out=tmp_path / "run", dataset=tiny_dataset(), steps=10**6, time_budget=0.002, snapshots=0, **TINY
    )
    assert 1 <= result.step < 10**6
    assert (result.run_dir / "weights" / "last.safetensors").is_file()
    assert read_metadata(result.run_dir / "weights" / "last.safetensors")["ganaug.step"] == str(result.step)
    assert result.metrics["cpu_s"] >= 0.002 * 60
    # a resumed run may raise the budget; its CPU count continues from the checkpoint
    more = train(out=tmp_path / "run", resume=True, time_budget=0.004, explicit={"time_budget"})
    assert more.step > result.step and more.metrics["cpu_s"] >= 0.004 * 60


def test_a_time_budget_without_steps_lifts_the_step_limit(tmp_path):
    """``ganaug train DATA --time-budget 15`` trains for 15 CPU minutes, not to the default 3,000 steps."""
    run = tmp_path / "budget"
    ds = tiny_dataset()
    np.savez(tmp_path / "tiny.npz", images=ds.images, labels=ds.labels)
    proc = run_cli("train", str(tmp_path / "tiny.npz"), "--out", str(run), "--time-budget", "0.003",
                   "--arch", "mlp", "--batch-size", "4", "--z-dim", "8", "--log-every", "1",
                   "--snapshots", "0", "--sample-every", "1000", "--device", "cpu")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["steps"] == NO_STEP_LIMIT and saved["time_budget"] == 0.003
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("step ")]
    assert lines and all("/" not in ln.split()[1] and ln.endswith("/0.003 min") for ln in lines), lines
    # an explicit --steps still caps the run, and its lines still show the total
    capped = train(out=tmp_path / "capped", dataset=tiny_dataset(), steps=3, time_budget=10.0, **TINY)
    assert capped.step == 3
    assert yaml.safe_load((tmp_path / "capped" / "config.yaml").read_text())["steps"] == 3
    # a resumed run that has spent its budget says how to go on instead of training one more step
    with pytest.raises(UsageError, match="already spent its --time-budget"):
        train(out=run, resume=True)
    assert plain_line({"step": 5, "loss_d": 1, "loss_g": 2, "d_accuracy": 0.5, "img_per_s": 9,
                       "elapsed_s": 3, "cpu_s": 90}, 3000) == (
        "step 5/3000  D loss 1.000  G loss 2.000  D acc 0.50  9 img/s  3 s"
    )  # fmt: skip


def test_snapshots_are_bounded_scored_and_selectable(tmp_path):
    result = train(
        out=tmp_path / "run", dataset=tiny_dataset(), steps=8, checkpoint_every=2, snapshots=2, **TINY
    )
    run = result.run_dir
    index = json.loads((run / "weights" / "snapshots.json").read_text())
    kept = [e["step"] for e in index["snapshots"]]
    assert len(kept) == 2 and 8 in kept and index["best"] in kept
    assert sorted(p.name for p in (run / "weights" / "snapshots").iterdir()) == [
        f"ema_step_{s:06d}.safetensors" for s in kept
    ]
    assert all(e["val_fid"] >= 0 for e in index["snapshots"])
    best = select_weights(run, "best")
    assert read_metadata(best)["ganaug.step"] == str(index["best"])
    assert select_weights(run, "8").name == "ema_step_000008.safetensors"
    assert select_weights(run, "last") == run
    with pytest.raises(UsageError, match="no snapshot at step 5"):
        select_weights(run, 5)
    with pytest.raises(UsageError, match="--checkpoint must be"):
        select_weights(run, "newest")
    empty = train(out=tmp_path / "none", dataset=tiny_dataset(), steps=2, snapshots=0, **TINY)
    with pytest.raises(CheckpointError, match="no EMA snapshots"):
        select_weights(empty.run_dir, "best")


def test_bad_recipe_options_are_usage_errors(tmp_path):
    for bad in ({"lecam": -1.0}, {"g_cond": "film"}, {"time_budget": 0}, {"snapshots": -1}):
        with pytest.raises(UsageError):
            train(out=tmp_path / "run", dataset=tiny_dataset(), steps=2, **bad, **TINY)


def test_cli_trains_with_recipe_flags(tmp_path):
    from conftest import write_imagefolder

    data = write_imagefolder(tmp_path / "data", [6, 6], size=28)
    proc = run_cli(
        "train",
        str(data),
        "--out",
        str(tmp_path / "run"),
        "--steps",
        "2",
        "--batch-size",
        "4",
        "--g-width",
        "8",
        "--d-width",
        "8",
        "--z-dim",
        "8",
        "--g-cond",
        "both",
        "--no-minibatch-std",
        "--lecam",
        "0.1",
        "--mode-seeking",
        "1",
        "--snapshots",
        "1",
        "--checkpoint-every",
        "1",
        "--quiet",
    )
    assert proc.returncode == 0, proc.stderr
    index = json.loads((tmp_path / "run" / "weights" / "snapshots.json").read_text())
    assert [e["step"] for e in index["snapshots"]] in ([1], [2])
    assert load_generator(tmp_path / "run").config["cond"] == "both"


def test_sample_and_export_pick_a_snapshot_with_checkpoint(tmp_path):
    result = train(
        out=tmp_path / "run", dataset=tiny_dataset(), steps=4, checkpoint_every=2, snapshots=2, **TINY
    )
    run = result.run_dir
    proc = run_cli("sample", str(run), "--out", str(tmp_path / "s"), "-n", "2", "--checkpoint", "2", "-q")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "s" / "summary.json").read_text())
    assert "ema_step_000002" in json.dumps(summary)
    bad = run_cli("sample", str(run), "--out", str(tmp_path / "t"), "-n", "2", "--checkpoint", "3", "-q")
    assert bad.returncode == 2 and "no snapshot at step 3" in bad.stderr
    inside = run_cli("sample", str(run), "--out", str(run / "x"), "-n", "2", "--checkpoint", "best", "-q")
    assert inside.returncode != 0 and not (run / "x").exists()
    proc = run_cli("export", str(run), "--out", str(tmp_path / "g.onnx"), "--checkpoint", "best", "-q")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "g.onnx").is_file()


def test_measured_defaults_dcgan_g64_mode_seeking_ttur_and_no_color_augment(tmp_path):
    opts = {k: v for k, v in TINY.items() if k != "g_width"}
    result = train(out=tmp_path / "run", dataset=tiny_dataset(), steps=1, snapshots=0, **opts)
    cfg = yaml.safe_load((result.run_dir / "config.yaml").read_text())
    assert cfg["mode_seeking"] == 1.0 and cfg["g_width"] is None
    assert (cfg["lr_g"], cfg["lr_d"]) == (2e-4, 4e-4)  # two time-scales (TTUR)
    assert load_generator(result.run_dir).config["width"] == 64
    assert json.loads((result.run_dir / "run.json").read_text())["diffaugment"] == "translation,cutout"
    seed = train(
        out=tmp_path / "seed", dataset=tiny_dataset(), preset="seed", steps=1, batch_size=8, snapshots=0
    )
    seed_cfg = yaml.safe_load((seed.run_dir / "config.yaml").read_text())
    assert seed_cfg["mode_seeking"] == 0.0 and seed_cfg["lr_d"] == 2e-4  # the seed article's one rate


def test_balance_classes_draws_every_class_equally_often_and_resumes_exactly(tmp_path):
    """``balance_classes``: on 24/4/2 images the real batches (whose labels the fake batch takes)
    hold each class about a third of the time; without it the rare class is ~1/15 of them. The
    option is saved with the run, and a resumed run continues the same draws."""
    from conftest import pattern_images

    from ganaug.data import ImageDataset
    from ganaug.training.config import TrainConfig
    from ganaug.training.loop import Trainer

    x, y = pattern_images([24, 4, 2], size=28, seed=0)
    ds = ImageDataset(x, y, ["a", "b", "c"])
    share = {}
    for balance in (False, True):
        cfg = TrainConfig(**{**TINY, "balance_classes": balance})
        trainer = Trainer(cfg, ds, tmp_path / f"t{balance}", "t", quiet=True, progress=False)
        torch.manual_seed(0)
        labels = torch.cat([trainer._real_batch(500)[1] for _ in range(8)])
        share[balance] = torch.bincount(labels, minlength=3).float() / len(labels)
    assert share[False][2].item() == pytest.approx(2 / 30, abs=0.02)
    assert share[True].tolist() == pytest.approx([1 / 3] * 3, abs=0.03)
    opts = {**TINY, "log_every": 1, "checkpoint_every": 2, "balance_classes": True}
    full = train(out=tmp_path / "full", dataset=ds, steps=4, **opts)
    assert yaml.safe_load((full.run_dir / "config.yaml").read_text())["balance_classes"] is True
    train(out=tmp_path / "half", dataset=ds, steps=2, **opts)
    resumed = train(out=tmp_path / "half", resume=True, steps=4, explicit={"steps"})
    rows_a, rows_b = read_results(full.run_dir), read_results(resumed.run_dir)
    assert [r["loss_d"] for r in rows_a] == [r["loss_d"] for r in rows_b]
