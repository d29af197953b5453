"""Resumable training state: optimizer moments come back in their parameters' memory layout."""

from __future__ import annotations

import torch
from conftest import pattern_images

from ganaug.data import ImageDataset
from ganaug.training.config import TrainConfig
from ganaug.training.loop import Trainer

CFG = {
    "batch_size": 8,
    "g_width": 8,
    "d_width": 8,
    "z_dim": 16,
    "seed": 3,
    "precision": "fp32",
    "snapshots": 0,
}


def make_trainer(run_dir, ds: ImageDataset) -> Trainer:
    trainer = Trainer(TrainConfig(**CFG), ds, run_dir, "state", quiet=True, progress=False)
    trainer.G.train()
    trainer.D.train()
    return trainer


def test_resumed_adam_keeps_channels_last_moments_and_the_next_step_is_bit_exact(tmp_path):
    ds = ImageDataset(*pattern_images([8, 8], size=32, channels=3), ["a", "b"])
    live = make_trainer(tmp_path / "run", ds)
    for step in (1, 2):
        live.train_step(step)
    live.checkpoint(2)
    resumed = make_trainer(tmp_path / "run", ds)
    resumed.resume()
    assert resumed.step == 2
    strided = [p for p in resumed.G.parameters() if p.stride() != p.contiguous().stride()]
    assert strided, "expected channels_last weights (the case the layout fix is for)"
    for opt_a, opt_b, model_a, model_b in (
        (live.opt_g, resumed.opt_g, live.G, resumed.G),
        (live.opt_d, resumed.opt_d, live.D, resumed.D),
    ):
        for pa, pb in zip(model_a.parameters(), model_b.parameters(), strict=True):
            for name in ("exp_avg", "exp_avg_sq"):
                assert opt_b.state[pb][name].stride() == pb.stride(), name
                assert torch.equal(opt_a.state[pa][name], opt_b.state[pb][name]), name
    rng = torch.get_rng_state()
    live.train_step(3)
    torch.set_rng_state(rng)
    resumed.train_step(3)
    for model_a, model_b in ((live.G, resumed.G), (live.D, resumed.D), (live.ema.module, resumed.ema.module)):
        for (name, a), b in zip(model_a.state_dict().items(), model_b.state_dict().values(), strict=True):
            assert torch.equal(a, b), name
