"""GAN losses. Logits are raw discriminator outputs ``D(x)`` (before any sigmoid), shape ``[B]``.

Each loss gives ``discriminator(real_logits, fake_logits)`` (minimised by D) and
``generator(fake_logits)`` (minimised by G), averaged over the batch and computed in float32 with
``softplus``: ``-log sigmoid(t) = softplus(-t)`` and ``-log(1 - sigmoid(t)) = softplus(t)``.

    loss = get_loss("hinge")
    d_loss = loss.discriminator(D(real, y), D(fake.detach(), y))
    g_loss = loss.generator(D(fake, y))
    if loss.uses_gradient_penalty:            # wgan-gp
        d_loss = d_loss + gradient_penalty(D, real, fake, y)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganaug.errors import UsageError

__all__ = [
    "LOSSES",
    "GanLoss",
    "get_loss",
    "gradient_penalty",
    "lecam_penalty",
    "mode_seeking_loss",
    "r1_penalty",
]


class GanLoss:
    """Base class: a pair of objectives for D and G."""

    name: str = ""
    uses_gradient_penalty: bool = False

    def discriminator(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        raise NotImplementedError

    def generator(self, fake_logits: Tensor) -> Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class MinimaxLoss(GanLoss):
    """The original (saturating) game of Goodfellow et al. 2014, as the seed article states it.

    D maximises ``log D(x) + log(1 - D(G(z)))`` with ``D = sigmoid(logit)``, i.e. minimises
    ``L_D = mean(softplus(-r)) + mean(softplus(f))``.
    G minimises ``log(1 - D(G(z)))``: ``L_G = mean(log(1 - sigmoid(f))) = -mean(softplus(f))``.
    Its gradient ``-sigmoid(f)`` vanishes when D confidently rejects fakes (f << 0): it saturates.
    """

    name = "minimax"

    def discriminator(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return F.softplus(-real_logits.float()).mean() + F.softplus(fake_logits.float()).mean()

    def generator(self, fake_logits: Tensor) -> Tensor:
        return -F.softplus(fake_logits.float()).mean()


class NonSaturatingLoss(MinimaxLoss):
    """Non-saturating GAN: D as in ``minimax``; G minimises ``-log D(G(z))``.

    ``L_D = mean(softplus(-r)) + mean(softplus(f))``, ``L_G = mean(softplus(-f))``; the G gradient
    ``-(1 - sigmoid(f))`` is close to -1 exactly when D rejects fakes, so G keeps learning.
    """

    name = "ns"

    def generator(self, fake_logits: Tensor) -> Tensor:
        return F.softplus(-fake_logits.float()).mean()


class HingeLoss(GanLoss):
    """Hinge loss (Lim & Ye 2017; Miyato et al. 2018).

    ``L_D = mean(relu(1 - r)) + mean(relu(1 + f))``, ``L_G = -mean(f)``.
    """

    name = "hinge"

    def discriminator(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return F.relu(1.0 - real_logits.float()).mean() + F.relu(1.0 + fake_logits.float()).mean()

    def generator(self, fake_logits: Tensor) -> Tensor:
        return -fake_logits.float().mean()


class WassersteinLoss(GanLoss):
    """Wasserstein GAN with gradient penalty (Gulrajani et al. 2017); D is the critic.

    ``L_D = mean(f) - mean(r)`` (add ``gradient_penalty(...)``), ``L_G = -mean(f)``.
    """

    name = "wgan-gp"
    uses_gradient_penalty = True

    def discriminator(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return fake_logits.float().mean() - real_logits.float().mean()

    def generator(self, fake_logits: Tensor) -> Tensor:
        return -fake_logits.float().mean()


class LeastSquaresLoss(GanLoss):
    """Least-squares GAN (Mao et al. 2017) with targets real = 1, fake = 0.

    ``L_D = 0.5 * mean((r - 1)^2) + 0.5 * mean(f^2)``, ``L_G = 0.5 * mean((f - 1)^2)``.
    """

    name = "lsgan"

    def discriminator(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return 0.5 * (real_logits.float() - 1.0).square().mean() + 0.5 * fake_logits.float().square().mean()

    def generator(self, fake_logits: Tensor) -> Tensor:
        return 0.5 * (fake_logits.float() - 1.0).square().mean()


_LOSSES: dict[str, type[GanLoss]] = {
    cls.name: cls for cls in (MinimaxLoss, NonSaturatingLoss, HingeLoss, WassersteinLoss, LeastSquaresLoss)
}
LOSSES: tuple[str, ...] = tuple(_LOSSES)


def get_loss(name: str) -> GanLoss:
    """The loss called ``name`` (one of ``LOSSES``; ``wgan_gp`` is accepted for ``wgan-gp``)."""
    key = str(name).strip().lower().replace("_", "-")
    if key not in _LOSSES:
        raise UsageError(f"unknown loss {name!r}; choose from: {', '.join(LOSSES)}")
    return _LOSSES[key]()


def _grad_sq_norm(outputs: Tensor, inputs: Tensor) -> Tensor:
    (grad,) = torch.autograd.grad(outputs.float().sum(), inputs, create_graph=True)
    return grad.float().square().flatten(1).sum(dim=1)


def r1_penalty(real_logits: Tensor, real_images: Tensor) -> Tensor:
    """R1 (Mescheder et al. 2018): ``mean_i ||d D(x_i) / d x_i||^2`` over real images.

    ``real_images`` must have ``requires_grad=True`` before ``D`` is applied to it. The result is
    differentiable (``create_graph=True``); the caller scales it, usually by ``gamma / 2``.
    """
    if not real_images.requires_grad:
        raise ValueError("r1_penalty needs real_images.requires_grad_(True) before the D forward pass")
    return _grad_sq_norm(real_logits, real_images).mean()


def gradient_penalty(
    D: nn.Module, real: Tensor, fake: Tensor, labels: Tensor, weight: float = 10.0
) -> Tensor:
    """WGAN-GP: ``weight * mean((||d D(x_hat, y) / d x_hat||_2 - 1)^2)``.

    ``x_hat = real + u * (fake - real)`` with ``u ~ U(0, 1)`` per sample (torch RNG, on the device).
    """
    real, fake = real.detach(), fake.detach()
    u = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
    x_hat = torch.lerp(real, fake.to(real.dtype), u).requires_grad_(True)
    norm = (_grad_sq_norm(D(x_hat, labels), x_hat) + 1e-12).sqrt()
    return weight * (norm - 1.0).square().mean()


def lecam_penalty(
    real_logits: Tensor, fake_logits: Tensor, anchor_real: Tensor, anchor_fake: Tensor
) -> Tensor:
    """LeCam regularisation (Tseng et al. 2021), as in the authors' code:
    ``mean(relu(r - anchor_fake)^2) + mean(relu(anchor_real - f)^2)``.

    The anchors are moving averages of D's mean real and fake outputs (kept by the caller); the
    penalty keeps D's outputs on real and fake images from drifting apart, which on small data
    stops D from overfitting its training images. Scale by the weight (0.01-0.3 in the paper).
    """
    real, fake = real_logits.float(), fake_logits.float()
    return F.relu(real - anchor_fake).square().mean() + F.relu(anchor_real - fake).square().mean()


def mode_seeking_loss(fake_a: Tensor, fake_b: Tensor, z_a: Tensor, z_b: Tensor, eps: float = 1e-5) -> Tensor:
    """Mode-seeking regulariser (Mao et al., CVPR 2019) for G, to be *minimised*:
    ``1 / (mean|G(z_a) - G(z_b)| / mean|z_a - z_b| + eps)``.

    ``fake_a[i]`` and ``fake_b[i]`` share a class; a generator that maps different latents of one
    class to the same image (mode collapse) makes the ratio small and the loss large.
    """
    images = (fake_a.float() - fake_b.float()).abs().mean()
    latents = (z_a.float() - z_b.float()).abs().mean()
    return 1.0 / (images / latents + eps)
