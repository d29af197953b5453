"""EMA of model weights: averaging, buffers, warm-up, state round trip."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ganaug.ema import EMA
from ganaug.models import build_generator


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # tiny models: one intra-op thread avoids OpenMP spin-wait contention on the shared 2-core box
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))


def _shift_params(model: nn.Module, delta: float) -> None:
    with torch.no_grad():
        for p in model.parameters():
            p.add_(delta)


def test_copy_is_independent_eval_and_frozen():
    model = _net()
    ema = EMA(model, decay=0.9)
    assert not ema.module.training
    assert all(not p.requires_grad for p in ema.module.parameters())
    assert all(p.requires_grad for p in model.parameters())
    _shift_params(model, 1.0)
    assert not torch.equal(ema.module[0].weight, model[0].weight)  # deep copy, not shared storage


def test_update_lands_between_old_and_new():
    model = _net()
    ema = EMA(model, decay=0.9, warmup=False)
    old = [p.detach().clone() for p in model.parameters()]
    _shift_params(model, 1.0)
    ema.update(model)
    for e, o, n in zip(ema.module.parameters(), old, model.parameters(), strict=True):
        torch.testing.assert_close(e, 0.9 * o + 0.1 * n)
        assert (e > o).all() and (e < n).all()
    assert ema.step == 1


def test_decay_zero_copies_exactly():
    model = _net()
    ema = EMA(model, decay=0.0)
    _shift_params(model, 0.5)
    ema.update(model)
    for e, n in zip(ema.module.state_dict().values(), model.state_dict().values(), strict=True):
        assert torch.equal(e, n)


def test_buffers_follow_live_model():
    model = _net()
    ema = EMA(model, decay=0.999, warmup=False)
    model.train()
    model(torch.randn(8, 1, 8, 8) * 3 + 2)  # moves BatchNorm running stats
    bn, ema_bn = model[1], ema.module[1]
    assert not torch.equal(bn.running_mean, ema_bn.running_mean)
    ema.update(model)
    assert torch.equal(bn.running_mean, ema_bn.running_mean)
    assert torch.equal(bn.running_var, ema_bn.running_var)
    assert torch.equal(bn.num_batches_tracked, ema_bn.num_batches_tracked)


def test_warmup_averages_less_early():
    ema = EMA(_net(), decay=0.999, warmup=True)
    assert ema.current_decay() == pytest.approx(0.1)
    ema.step = 10_000
    assert ema.current_decay() == pytest.approx(0.999)
    assert EMA(_net(), decay=0.999, warmup=False).current_decay() == 0.999


def test_state_dict_round_trip():
    model = _net()
    ema = EMA(model, decay=0.5)
    _shift_params(model, 2.0)
    ema.update(model)
    state = {k: v.clone() for k, v in ema.state_dict().items()}
    assert set(state) == set(model.state_dict())  # loadable straight into the live architecture
    fresh = EMA(_net(), decay=0.5)
    fresh.load_state_dict(state, step=ema.step)
    assert fresh.step == 1
    for k, v in fresh.state_dict().items():
        assert torch.equal(v, state[k])
    with pytest.raises(RuntimeError):
        fresh.load_state_dict({"nope": torch.zeros(1)})


def test_ema_of_generator_samples():
    g = build_generator("dcgan", num_classes=3, z_dim=8, image_size=28, channels=1, width=8)
    ema = EMA(g, decay=0.99)
    opt = torch.optim.SGD(g.parameters(), lr=0.1)
    z, y = torch.randn(6, 8), torch.tensor([0, 1, 2, 0, 1, 2])
    for _ in range(3):
        opt.zero_grad()
        g(z, y).square().mean().backward()
        opt.step()
        ema.update(g)
    out = ema.module(z, y)
    assert out.shape == (6, 1, 28, 28) and not out.requires_grad
    assert ema.step == 3
