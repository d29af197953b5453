"""The fast training path (bf16 autocast, channels_last, one D pass over real+fake) stays correct.

No timings here: speed is measured by benchmarks/train_speed.py. These tests check that the fast
path computes the same training as plain fp32/NCHW within bf16 tolerance.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import pattern_images

from ganaug.data import ImageDataset
from ganaug.models.layers import MinibatchStdDev
from ganaug.training.config import TrainConfig
from ganaug.training.device import cpu_supports_bf16, resolve_precision
from ganaug.training.loop import Trainer

TINY = {"batch_size": 8, "g_width": 8, "d_width": 8, "z_dim": 16, "seed": 5, "lr_g": 1e-3, "lr_d": 1e-3}
STEPS = 4
BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def tiny_dataset(size: int = 28, channels: int = 3) -> ImageDataset:
    images, labels = pattern_images([10, 10, 10], size=size, channels=channels)
    return ImageDataset(images, labels, ["a", "b", "c"])


def make_trainer(tmp_path, name: str, ds: ImageDataset, **options) -> Trainer:
    cfg = TrainConfig(**{**TINY, **options})
    trainer = Trainer(cfg, ds, tmp_path / name, name, quiet=True, progress=False)
    trainer.G.train()
    trainer.D.train()
    return trainer


def run_steps(trainer: Trainer, steps: int = STEPS) -> np.ndarray:
    """Per-step metrics ``[loss_d, loss_g, d_real, d_fake, accuracy]`` as a ``[steps, 5]`` array.

    Trainers draw batches, noise and augmentations from torch's global RNG, so each run starts it
    from the same seed.
    """
    torch.manual_seed(1234)
    return np.array([trainer.train_step(step).tolist() for step in range(1, steps + 1)])


def g_params(trainer: Trainer) -> torch.Tensor:
    return torch.cat([p.detach().float().flatten() for p in trainer.G.parameters()])


@pytest.mark.parametrize("arch", ["dcgan", "resnet"])
def test_bf16_channels_last_path_tracks_the_fp32_path(tmp_path, arch):
    ds = tiny_dataset()
    slow = make_trainer(tmp_path, "fp32", ds, arch=arch, precision="fp32", channels_last=False)
    fast = make_trainer(tmp_path, "bf16", ds, arch=arch, precision="bf16", channels_last=True)
    assert fast.amp_dtype == torch.bfloat16 and slow.amp_dtype is None
    start = g_params(slow)
    assert torch.equal(start, g_params(fast))  # same seed, same initial weights
    a, b = run_steps(slow), run_steps(fast)
    assert np.isfinite(b).all()
    # losses and logits: bf16 keeps ~3 significant digits; hinge losses start near 2
    np.testing.assert_allclose(b[:, :4], a[:, :4], atol=0.08, rtol=0.05)
    # G's weights moved the same way. Measured: bf16 vs fp32 cosine 0.90 (dcgan) / 0.97 (resnet),
    # relative difference 0.44 / 0.26 (Adam turns bf16 noise in near-zero gradients into full-size
    # steps); fp32 runs with another seed: cosine ~0.1, relative difference ~1.4.
    moved_slow, moved_fast = g_params(slow) - start, g_params(fast) - start
    assert moved_slow.norm() > 0
    assert (moved_fast - moved_slow).norm() / moved_slow.norm() < 0.7
    cosine = torch.nn.functional.cosine_similarity(moved_fast, moved_slow, dim=0)
    assert cosine > 0.75, float(cosine)


def test_fast_path_really_runs_channels_last_and_bf16(tmp_path):
    fast = make_trainer(tmp_path, "fast", tiny_dataset(), arch="dcgan", precision="bf16", channels_last=True)
    x, y = fast._real_batch(4)
    assert x.dtype == torch.float32 and x.is_contiguous(memory_format=torch.channels_last)
    assert float(x.min()) >= -1.0 and float(x.max()) <= 1.0 and y.dtype == torch.int64
    convs = [m for m in fast.D.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(
        m.parametrizations.weight.original.is_contiguous(memory_format=torch.channels_last) for m in convs
    )
    seen: list[torch.dtype] = []
    hook = convs[-1].register_forward_hook(lambda _m, _i, out: seen.append(out.dtype))
    try:
        fast.train_step(1)
    finally:
        hook.remove()
    assert seen and set(seen) == {torch.bfloat16}


def test_one_d_pass_over_real_and_fake_equals_two_passes(tmp_path):
    # mlp's D has no spectral norm (whose power iteration runs once per forward) and no BatchNorm, so
    # one pass over [real; fake] must compute exactly what two passes compute.
    ds = tiny_dataset(size=12, channels=1)
    opts = {"arch": "mlp", "precision": "fp32", "diffaugment": "none", "r1": 1.0, "r1_every": 2}
    joint = make_trainer(tmp_path, "joint", ds, **opts)
    split = make_trainer(tmp_path, "split", ds, **opts)
    split.joint_d = False
    assert joint.joint_d
    a, b = run_steps(joint), run_steps(split)
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(g_params(joint), g_params(split), rtol=1e-4, atol=1e-6)


def test_joint_d_is_on_for_the_builtin_architectures(tmp_path):
    for arch in ("mlp", "dcgan", "resnet"):
        trainer = make_trainer(tmp_path, arch, tiny_dataset(), arch=arch, precision="fp32")
        assert trainer.joint_d, arch


def test_auto_precision_on_cpu_is_bf16_exactly_where_the_cpu_has_native_bf16():
    expected = torch.bfloat16 if cpu_supports_bf16() and torch.backends.mkldnn.is_available() else None
    assert resolve_precision("auto", torch.device("cpu")) == expected
    assert resolve_precision("fp32", torch.device("cpu")) is None
    assert resolve_precision("bf16", torch.device("cpu")) == torch.bfloat16


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_fast_path_tracks_fp32(tmp_path):
    ds = tiny_dataset()
    slow = make_trainer(tmp_path, "fp32", ds, arch="resnet", device="cuda", precision="fp32")
    fast = make_trainer(tmp_path, "auto", ds, arch="resnet", device="cuda", precision="auto")
    assert fast.amp_dtype in (torch.bfloat16, torch.float16)
    a, b = run_steps(slow), run_steps(fast)
    np.testing.assert_allclose(b[:, :4], a[:, :4], atol=0.08, rtol=0.05)


def test_fused_cpu_adam_computes_what_foreach_adam_computes(tmp_path):
    ds = tiny_dataset()
    fused = make_trainer(tmp_path, "fused", ds, arch="dcgan", precision="fp32")
    foreach = make_trainer(tmp_path, "foreach", ds, arch="dcgan", precision="fp32")
    assert fused.opt_g.param_groups[0]["fused"] and fused.opt_d.param_groups[0]["fused"]
    for name, model, lr in (("opt_g", foreach.G, foreach.cfg.lr_g), ("opt_d", foreach.D, foreach.cfg.lr_d)):
        setattr(foreach, name, torch.optim.Adam(model.parameters(), lr=lr, betas=(0.5, 0.999), foreach=True))
    a, b = run_steps(fused), run_steps(foreach)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(g_params(fused), g_params(foreach), rtol=1e-5, atol=1e-6)


def test_minibatch_stddev_is_the_population_std_of_each_group():
    x = torch.randn(8, 5, 3, 3, dtype=torch.float64).to(memory_format=torch.channels_last)
    out = MinibatchStdDev(group_size=4)(x)
    expected = x.reshape(2, 4, 5, 3, 3).var(dim=1, unbiased=False).add(1e-8).sqrt().mean(dim=(1, 2, 3))
    assert out.shape == (8, 6, 3, 3) and torch.equal(out[:, :5], x)
    torch.testing.assert_close(out[:, 5], expected.repeat_interleave(4)[:, None, None].expand(8, 3, 3))


def test_lean_benchmark_baseline_runs_the_same_flops_as_our_step(tmp_path):
    spec = importlib.util.spec_from_file_location("train_speed", BENCHMARKS / "train_speed.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    ds = tiny_dataset(size=32, channels=1)
    cfg = TrainConfig(**{**TINY, "precision": "fp32", "diffaugment": "auto"})
    ours = bench.Ours(cfg, ds, tmp_path / "ours")
    lean = bench.Lean(ours, ds)
    assert ours.trainer.diffaugment_policy == "translation,cutout" and ours.trainer.cfg.mode_seeking > 0
    assert bench.count_flops(ours) == bench.count_flops(lean) > 0
    before = [p.detach().clone() for p in lean.G.parameters()]
    lean.step()
    assert any(not torch.equal(a, b) for a, b in zip(before, lean.G.parameters(), strict=True))
