"""GAN losses: hand-computed values, gradient signs, saturation, penalties."""

from __future__ import annotations

import math

import pytest
import torch

from ganaug.errors import UsageError
from ganaug.losses import LOSSES, get_loss, gradient_penalty, r1_penalty

REAL = [0.5, -1.0, 2.0]
FAKE = [-0.5, 1.0, -2.0]


def _sp(x: float) -> float:  # softplus by hand: log(1 + e^x)
    return math.log(1.0 + math.exp(x))


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


# (D loss, G loss) written from each docstring's formula with plain math
EXPECTED = {
    # D: -log sigmoid(r) - log(1 - sigmoid(f)); G: log(1 - sigmoid(f))
    "minimax": (
        _mean(-math.log(1 / (1 + math.exp(-r))) for r in REAL)
        + _mean(-math.log(1 - 1 / (1 + math.exp(-f))) for f in FAKE),
        _mean(math.log(1 - 1 / (1 + math.exp(-f))) for f in FAKE),
    ),
    # G: -log sigmoid(f)
    "ns": (
        _mean(_sp(-r) for r in REAL) + _mean(_sp(f) for f in FAKE),
        _mean(-math.log(1 / (1 + math.exp(-f))) for f in FAKE),
    ),
    # relu(1 - r) = [0.5, 2, 0], relu(1 + f) = [0.5, 2, 0]; G = -mean(f) = 0.5
    "hinge": (5.0 / 3.0, 0.5),
    # mean(f) - mean(r) = -0.5 - 0.5; G = -mean(f)
    "wgan-gp": (-1.0, 0.5),
    # 0.5 * (0.25 + 4 + 1) / 3 + 0.5 * (0.25 + 1 + 4) / 3; G = 0.5 * (2.25 + 0 + 9) / 3
    "lsgan": (1.75, 1.875),
}


def test_names():
    assert LOSSES == ("minimax", "ns", "hinge", "wgan-gp", "lsgan")
    assert get_loss("wgan_gp").name == "wgan-gp"
    assert get_loss("HINGE").name == "hinge"
    assert get_loss("wgan-gp").uses_gradient_penalty
    assert not get_loss("hinge").uses_gradient_penalty


def test_unknown_loss_is_usage_error():
    with pytest.raises(UsageError, match="unknown loss 'bce'; choose from: minimax, ns"):
        get_loss("bce")


@pytest.mark.parametrize("name", LOSSES)
def test_docstring_states_formula(name):
    doc = type(get_loss(name)).__doc__
    assert "L_D = " in doc and "L_G = " in doc


@pytest.mark.parametrize("name", LOSSES)
def test_hand_computed_values(name):
    loss = get_loss(name)
    d_expected, g_expected = EXPECTED[name]
    real, fake = torch.tensor(REAL), torch.tensor(FAKE)
    assert loss.discriminator(real, fake).item() == pytest.approx(d_expected, rel=1e-6, abs=1e-6)
    assert loss.generator(fake).item() == pytest.approx(g_expected, rel=1e-6, abs=1e-6)


@pytest.mark.parametrize("name", LOSSES)
def test_bf16_logits_give_float32_loss(name):
    loss = get_loss(name)
    real, fake = torch.tensor(REAL, dtype=torch.bfloat16), torch.tensor(FAKE, dtype=torch.bfloat16)
    assert loss.discriminator(real, fake).dtype == torch.float32
    assert loss.generator(fake).dtype == torch.float32


def _grads(name: str, real: list[float], fake: list[float]):
    loss = get_loss(name)
    r = torch.tensor(real, requires_grad=True)
    f = torch.tensor(fake, requires_grad=True)
    loss.discriminator(r, f).backward()
    f_g = torch.tensor(fake, requires_grad=True)
    loss.generator(f_g).backward()
    return r.grad, f.grad, f_g.grad


@pytest.mark.parametrize("name", LOSSES)
def test_gradient_signs_between_targets(name):
    # logits between the LSGAN targets (0 = fake, 1 = real), where every loss has a defined direction
    d_real, d_fake, g_fake = _grads(name, [0.1, 0.4, 0.9], [0.05, 0.5, 0.95])
    assert (d_real < 0).all()  # D wants real logits higher
    assert (d_fake > 0).all()  # D wants fake logits lower
    assert (g_fake < 0).all()  # G wants fake logits higher


@pytest.mark.parametrize("name", [n for n in LOSSES if n != "lsgan"])
def test_gradient_signs_everywhere(name):
    logits = [-8.0, -1.0, 0.0, 1.0, 8.0]
    d_real, d_fake, g_fake = _grads(name, logits, logits)
    assert (d_real <= 0).all()
    assert (d_fake >= 0).all()
    assert (g_fake < 0).all()


def test_minimax_saturates_ns_does_not():
    # D confidently rejects the fakes (logit -10): sigmoid(-10) ~ 4.5e-5
    _, _, g_minimax = _grads("minimax", [0.0], [-10.0])
    _, _, g_ns = _grads("ns", [0.0], [-10.0])
    assert abs(g_minimax.item()) < 1e-4
    assert g_minimax.item() == pytest.approx(-1 / (1 + math.exp(10)), rel=1e-4)
    assert abs(g_ns.item()) > 0.99


def test_losses_stable_for_extreme_logits():
    big = torch.tensor([-200.0, 200.0])
    for name in LOSSES:
        loss = get_loss(name)
        assert torch.isfinite(loss.discriminator(big, big)) and torch.isfinite(loss.generator(big))


class _Linear(torch.nn.Module):
    """D(x, y) = <w, x>: input gradient is w everywhere."""

    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.w = torch.nn.Parameter(w)

    def forward(self, x, label):
        return (x * self.w).flatten(1).sum(1)


def test_r1_penalty_hand_computed():
    w = torch.zeros(1, 1, 2, 2)
    w[0, 0, 0, 0], w[0, 0, 1, 1] = 1.0, 2.0  # ||w||^2 = 5
    d = _Linear(w)
    x = torch.randn(3, 1, 2, 2).requires_grad_(True)
    penalty = r1_penalty(d(x, None), x)
    assert penalty.item() == pytest.approx(5.0)
    penalty.backward()  # differentiable w.r.t. D's weights: d(||w||^2)/dw = 2w
    torch.testing.assert_close(d.w.grad, 2 * w)


def test_r1_penalty_needs_requires_grad():
    x = torch.randn(2, 1, 2, 2)
    with pytest.raises(ValueError, match="requires_grad"):
        r1_penalty(x.sum(dim=(1, 2, 3)), x)


def test_gradient_penalty_hand_computed():
    w = torch.full((1, 1, 2, 2), 1.5)  # ||w|| = 3 -> 10 * (3 - 1)^2 = 40
    d = _Linear(w)
    real, fake = torch.randn(4, 1, 2, 2), torch.randn(4, 1, 2, 2)
    labels = torch.zeros(4, dtype=torch.long)
    gp = gradient_penalty(d, real, fake, labels)
    assert gp.item() == pytest.approx(40.0, rel=1e-5)
    gp.backward()
    assert d.w.grad is not None and d.w.grad.abs().sum() > 0
    unit = _Linear(torch.full((1, 1, 2, 2), 0.5))  # ||w|| = 1 -> no penalty
    assert gradient_penalty(unit, real, fake, labels, weight=5.0).item() == pytest.approx(0.0, abs=1e-5)
