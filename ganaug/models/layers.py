"""Building blocks shared by the model families (conditional BN, spectral norm, projection head)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm
from torch.nn.utils.parametrize import is_parametrized


def halving_plan(image_size: int) -> tuple[int, int]:
    """Return ``(base, steps)``: halve ``image_size`` while it is even and the half is still >= 4.

    28 -> (7, 2), 32 -> (4, 3), 48 -> (6, 3), 64 -> (4, 4), 128 -> (4, 5).
    """
    base, steps = int(image_size), 0
    while base % 2 == 0 and base // 2 >= 4:
        base //= 2
        steps += 1
    return base, steps


def sizes_with_base(low: int, high: int, max_base: int = 7) -> tuple[int, ...]:
    """Image sizes in ``[low, high]`` that halve down to a base of 4..``max_base`` px."""
    out = []
    for size in range(low, high + 1):
        base, steps = halving_plan(size)
        if steps >= 1 and 4 <= base <= max_base:
            out.append(size)
    return tuple(out)


def weight_of(module: nn.Module) -> torch.Tensor:
    """The trainable weight of ``module``, looking through a spectral-norm parametrization."""
    if is_parametrized(module, "weight"):
        return module.parametrizations.weight.original
    return module.weight


def apply_spectral_norm(model: nn.Module) -> nn.Module:
    """Put spectral normalisation on every Conv2d, Linear and Embedding weight of ``model`` (in place).

    Call it after weight initialisation so the power iteration starts from the final weights.
    """
    targets = [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear | nn.Embedding)]
    for module in targets:
        if not is_parametrized(module, "weight"):
            _spectral_norm(module)
    return model


def init_weights(model: nn.Module, fn: Callable[[nn.Module, torch.Tensor], None]) -> None:
    """Call ``fn(module, weight)`` for every Conv2d/Linear in ``model`` and zero their biases."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                fn(module, weight_of(module))
                if module.bias is not None:
                    module.bias.zero_()


def dcgan_init(module: nn.Module, weight: torch.Tensor) -> None:
    """Radford et al. 2015: N(0, 0.02)."""
    nn.init.normal_(weight, 0.0, 0.02)


def xavier_init(module: nn.Module, weight: torch.Tensor) -> None:
    """Xavier-uniform; gain sqrt(2) for 3x3 convolutions (residual path), 1 otherwise (SNGAN)."""
    gain = math.sqrt(2.0) if isinstance(module, nn.Conv2d) and module.kernel_size == (3, 3) else 1.0
    nn.init.xavier_uniform_(weight, gain=gain)


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm whose affine gain and bias are looked up per class (gain starts at 1, bias at 0)."""

    def __init__(self, num_features: int, num_classes: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.bn = nn.BatchNorm2d(num_features, eps=eps, momentum=momentum, affine=False)
        self.gain = nn.Embedding(num_classes, num_features)
        self.bias = nn.Embedding(num_classes, num_features)
        nn.init.ones_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)

    def forward(self, x: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        h = self.bn(x)
        return h * self.gain(label)[:, :, None, None] + self.bias(label)[:, :, None, None]


class ProjectionHead(nn.Module):
    """Projection discriminator output (Miyato & Koyama 2018): ``linear(h) + <embed(y), h>``.

    ``h`` is a pooled feature vector ``[B, F]``; returns float32 logits ``[B]``. Spectral norm on both
    the linear layer and the class embedding when ``spectral_norm`` is true.
    """

    def __init__(self, features: int, num_classes: int, spectral_norm: bool = True):
        super().__init__()
        self.linear = nn.Linear(features, 1)
        self.embed = nn.Embedding(num_classes, features)
        nn.init.xavier_uniform_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)
        nn.init.xavier_uniform_(self.embed.weight)
        if spectral_norm:
            apply_spectral_norm(self)

    def forward(self, h: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        out = self.linear(h).squeeze(1) + (self.embed(label) * h).sum(dim=1)
        return out.float()


class MinibatchStdDev(nn.Module):
    """Append one feature map: the mean standard deviation of features across a group of samples.

    Karras et al. 2018 (Progressive GAN): a discriminator that sees how much a batch varies can
    tell a collapsed generator (every sample alike) from real data, which pushes G towards
    diversity. Statistics are taken over groups of ``group_size`` consecutive samples (a smaller
    group when the batch does not divide evenly), so when real and fake batches of an even size
    are joined into one D pass, no group mixes them.
    """

    def __init__(self, group_size: int = 4):
        super().__init__()
        self.group_size = group_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        g = next(size for size in (self.group_size, 4, 2, 1) if b % size == 0)
        y = x.float().reshape(b // g, g, c, h, w)  # groups of g consecutive samples
        # population variance over the group, two-pass: on the CPU 4-10x faster (forward + backward)
        # than torch.var over this short, strided dim (benchmarks/README.md, training speed)
        y = (y - y.mean(dim=1, keepdim=True)).square().mean(dim=1)
        y = (y + 1e-8).sqrt().mean(dim=(1, 2, 3))  # [b // g]
        y = y.to(x.dtype).repeat_interleave(g).reshape(b, 1, 1, 1).expand(b, 1, h, w)
        return torch.cat([x, y], dim=1)
