"""``dcgan``: conditional DCGAN for 28-64 px with a spectrally normalised projection discriminator.

G: ``[z, embed(y)] -> Linear -> base x base map -> n x [upsample x2, conv3x3, BN, ReLU] -> conv3x3 -> tanh``
(base = image size halved while even and >= 4: 28 -> 7, 32 -> 4, 48 -> 6, 64 -> 4).
Channels fall from 4*width (or 2*width at 28 px) to width/2 at full resolution.
``cond`` says how the class enters G: ``concat`` (above: a 32-d class embedding joins z in the first
Linear, so z competes with the label there), ``cbn`` (z alone drives the Linear; every BatchNorm is a
class-conditional BatchNorm, as in SNGAN/BigGAN) or ``both`` (the embedding in the Linear *and*
conditional BatchNorm).

D: ``conv3x3 -> n x conv4x4/2 -> conv3x3`` with LeakyReLU(0.1), channels width -> 4*width, global sum
pooling and a projection output ``linear(h) + <embed(y), h>`` (Miyato & Koyama 2018); spectral norm on
every layer when ``spectral_norm`` is true. Weights start from N(0, 0.02).
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from ganaug.errors import UsageError
from ganaug.models import register_discriminator, register_generator
from ganaug.models.layers import (
    ConditionalBatchNorm2d,
    MinibatchStdDev,
    ProjectionHead,
    apply_spectral_norm,
    dcgan_init,
    halving_plan,
    init_weights,
    sizes_with_base,
)

SIZES = sizes_with_base(28, 64)
CONDITIONING = ("concat", "cbn", "both")


def _check_width(width: int) -> None:
    if width < 4:
        raise UsageError(f"width must be >= 4, got {width}")


def generator_channels(width: int, steps: int) -> list[int]:
    """Channels at each resolution, base first: ``min(width * 2**(steps - i), 8 * width) // 2``."""
    return [min(width << (steps - i), 8 * width) // 2 for i in range(steps + 1)]


def discriminator_channels(width: int, steps: int) -> list[int]:
    """Channels at each resolution, full size first: ``width``, then doubling up to ``4 * width``."""
    return [min(width << i, 4 * width) for i in range(steps + 1)]


@register_generator("dcgan")
class DCGANGenerator(nn.Module):
    image_sizes = SIZES

    def __init__(
        self,
        num_classes: int,
        z_dim: int = 128,
        image_size: int = 32,
        channels: int = 1,
        width: int = 32,
        embed_dim: int = 32,
        cond: str = "concat",
    ):
        super().__init__()
        _check_width(width)
        if cond not in CONDITIONING:
            raise UsageError(f"cond must be one of {', '.join(CONDITIONING)}, got {cond!r}")
        self.num_classes, self.z_dim, self.image_size, self.channels = (
            num_classes,
            z_dim,
            image_size,
            channels,
        )
        self.cond = cond
        base, steps = halving_plan(image_size)
        chans = generator_channels(width, steps)
        self.base_shape = (chans[0], base, base)
        self.embed = nn.Embedding(num_classes, embed_dim) if cond != "cbn" else None
        fc_in = z_dim + (embed_dim if self.embed is not None else 0)
        self.fc = nn.Linear(fc_in, chans[0] * base * base, bias=False)
        conditional = cond != "concat"

        def norm(c: int) -> nn.Module:
            return ConditionalBatchNorm2d(c, num_classes) if conditional else nn.BatchNorm2d(c)

        self.bn0 = norm(chans[0])
        blocks: list[nn.Module] = []
        for cin, cout in itertools.pairwise(chans):
            blocks += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                norm(cout),
                nn.ReLU(inplace=True),
            ]
        self.blocks = nn.Sequential(*blocks)  # iterated in forward (conditional BN needs the label)
        self.out = nn.Conv2d(chans[-1], channels, 3, padding=1)
        init_weights(self, dcgan_init)
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d) and m.affine:
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)

    def forward(self, z: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        x = z if self.embed is None else torch.cat([z, self.embed(label).to(z.dtype)], dim=1)
        h = self.fc(x).unflatten(1, self.base_shape)
        h = torch.relu(self.bn0(h, label) if self.cond != "concat" else self.bn0(h))
        for layer in self.blocks:
            h = layer(h, label) if isinstance(layer, ConditionalBatchNorm2d) else layer(h)
        return torch.tanh(self.out(h))


@register_discriminator("dcgan")
class DCGANDiscriminator(nn.Module):
    image_sizes = SIZES

    def __init__(
        self,
        num_classes: int,
        image_size: int = 32,
        channels: int = 1,
        width: int = 32,
        spectral_norm: bool = True,
        minibatch_std: bool = True,
    ):
        super().__init__()
        _check_width(width)
        self.num_classes, self.image_size, self.channels = num_classes, image_size, channels
        _, steps = halving_plan(image_size)
        chans = discriminator_channels(width, steps)
        layers: list[nn.Module] = [nn.Conv2d(channels, chans[0], 3, padding=1), nn.LeakyReLU(0.1)]
        for cin, cout in itertools.pairwise(chans):
            layers += [nn.Conv2d(cin, cout, 4, stride=2, padding=1), nn.LeakyReLU(0.1)]
        if minibatch_std:
            layers.append(MinibatchStdDev())
        extra = 1 if minibatch_std else 0
        layers += [nn.Conv2d(chans[-1] + extra, chans[-1], 3, padding=1), nn.LeakyReLU(0.1)]
        self.features = nn.Sequential(*layers)
        init_weights(self.features, dcgan_init)
        if spectral_norm:
            apply_spectral_norm(self.features)
        self.head = ProjectionHead(chans[-1], num_classes, spectral_norm=spectral_norm)

    def forward(self, x: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        h = self.features(x).sum(dim=(2, 3))
        return self.head(h, label)
