"""``resnet``: SNGAN/BigGAN-style residual conditional GAN for 28-128 px (Miyato et al. 2018).

G: ``z -> Linear -> base x base map -> n x GBlock -> BN -> ReLU -> conv3x3 -> tanh``; each GBlock is
``CBN -> ReLU -> up x2 -> conv3x3 -> CBN -> ReLU -> conv3x3`` plus an ``up -> conv1x1`` shortcut, where CBN
is class-conditional BatchNorm. Channels fall from 4*width to width at full resolution.

D: an optimized first block (conv3x3 -> ReLU -> conv3x3 -> avgpool, shortcut avgpool -> conv1x1), down
blocks (ReLU -> conv3x3 -> ReLU -> conv3x3 -> avgpool), one block at the base resolution, ReLU, global sum
pooling and a projection output; spectral norm on every layer. Xavier-uniform initialisation.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

from ganaug.errors import UsageError
from ganaug.models import register_discriminator, register_generator
from ganaug.models.layers import (
    ConditionalBatchNorm2d,
    ProjectionHead,
    apply_spectral_norm,
    halving_plan,
    init_weights,
    sizes_with_base,
    xavier_init,
)

SIZES = sizes_with_base(28, 128)


def _check_width(width: int) -> None:
    if width < 2:
        raise UsageError(f"width must be >= 2, got {width}")


def _up(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="nearest")


class GBlock(nn.Module):
    def __init__(self, cin: int, cout: int, num_classes: int):
        super().__init__()
        self.bn1 = ConditionalBatchNorm2d(cin, num_classes)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.bn2 = ConditionalBatchNorm2d(cout, num_classes)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.shortcut = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        h = self.conv1(_up(F.relu(self.bn1(x, label))))
        h = self.conv2(F.relu(self.bn2(h, label)))
        return h + self.shortcut(_up(x))


class DBlock(nn.Module):
    def __init__(self, cin: int, cout: int, down: bool, first: bool = False):
        super().__init__()
        self.down, self.first = down, first
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.shortcut = nn.Conv2d(cin, cout, 1) if (cin != cout or down) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else F.relu(x)
        h = self.conv2(F.relu(self.conv1(h)))
        if self.down:
            h = F.avg_pool2d(h, 2)
        sc = x
        if self.first:
            sc = self.shortcut(F.avg_pool2d(x, 2))
        else:
            if self.shortcut is not None:
                sc = self.shortcut(sc)
            if self.down:
                sc = F.avg_pool2d(sc, 2)
        return h + sc


@register_generator("resnet")
class ResNetGenerator(nn.Module):
    image_sizes = SIZES

    def __init__(
        self,
        num_classes: int,
        z_dim: int = 128,
        image_size: int = 32,
        channels: int = 1,
        width: int = 64,
    ):
        super().__init__()
        _check_width(width)
        self.num_classes, self.z_dim, self.image_size, self.channels = (
            num_classes,
            z_dim,
            image_size,
            channels,
        )
        base, steps = halving_plan(image_size)
        chans = [min(width << (steps - i), 4 * width) for i in range(steps + 1)]
        self.base_shape = (chans[0], base, base)
        self.fc = nn.Linear(z_dim, chans[0] * base * base)
        self.blocks = nn.ModuleList(GBlock(cin, cout, num_classes) for cin, cout in itertools.pairwise(chans))
        self.bn = nn.BatchNorm2d(chans[-1])
        self.out = nn.Conv2d(chans[-1], channels, 3, padding=1)
        init_weights(self, xavier_init)

    def forward(self, z: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        h = self.fc(z).unflatten(1, self.base_shape)
        for block in self.blocks:
            h = block(h, label)
        return torch.tanh(self.out(F.relu(self.bn(h))))


@register_discriminator("resnet")
class ResNetDiscriminator(nn.Module):
    image_sizes = SIZES

    def __init__(
        self,
        num_classes: int,
        image_size: int = 32,
        channels: int = 1,
        width: int = 64,
        spectral_norm: bool = True,
    ):
        super().__init__()
        _check_width(width)
        self.num_classes, self.image_size, self.channels = num_classes, image_size, channels
        _, steps = halving_plan(image_size)
        chans = [min(width << i, 4 * width) for i in range(steps)]
        blocks = [DBlock(channels, chans[0], down=True, first=True)]
        blocks += [DBlock(cin, cout, down=True) for cin, cout in itertools.pairwise(chans)]
        blocks.append(DBlock(chans[-1], chans[-1], down=False))
        self.blocks = nn.Sequential(*blocks)
        init_weights(self.blocks, xavier_init)
        if spectral_norm:
            apply_spectral_norm(self.blocks)
        self.head = ProjectionHead(chans[-1], num_classes, spectral_norm=spectral_norm)

    def forward(self, x: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.blocks(x)).sum(dim=(2, 3))
        return self.head(h, label)
