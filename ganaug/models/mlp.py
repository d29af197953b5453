"""``mlp``: the seed article's fully connected GAN (G z->256->S*S*C, D S*S*C->256->1), made conditional.

G concatenates ``z`` with a learned label embedding; D adds a projection term ``<embed(y), h>`` on its
256-d feature. Works for any image size.
"""

from __future__ import annotations

import torch
from torch import nn

from ganaug.models import register_discriminator, register_generator
from ganaug.models.layers import ProjectionHead, apply_spectral_norm


@register_generator("mlp")
class MLPGenerator(nn.Module):
    """``[z, embed(y)] -> Linear(width) -> LeakyReLU(0.2) -> Linear(S*S*C) -> tanh``."""

    image_sizes = None

    def __init__(
        self,
        num_classes: int,
        z_dim: int = 128,
        image_size: int = 28,
        channels: int = 1,
        width: int = 256,
        embed_dim: int = 32,
    ):
        super().__init__()
        self.num_classes, self.z_dim, self.image_size, self.channels = (
            num_classes,
            z_dim,
            image_size,
            channels,
        )
        self.embed = nn.Embedding(num_classes, embed_dim)
        self.net = nn.Sequential(
            nn.Linear(z_dim + embed_dim, width),
            nn.LeakyReLU(0.2),
            nn.Linear(width, image_size * image_size * channels),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        h = self.net(torch.cat([z, self.embed(label).to(z.dtype)], dim=1))
        return h.unflatten(1, (self.channels, self.image_size, self.image_size))


@register_discriminator("mlp")
class MLPDiscriminator(nn.Module):
    """``flatten -> Linear(width) -> LeakyReLU(0.2) -> linear(h) + <embed(y), h>``."""

    image_sizes = None

    def __init__(
        self,
        num_classes: int,
        image_size: int = 28,
        channels: int = 1,
        width: int = 256,
        spectral_norm: bool = False,
    ):
        super().__init__()
        self.num_classes, self.image_size, self.channels = num_classes, image_size, channels
        self.features = nn.Sequential(
            nn.Flatten(), nn.Linear(image_size * image_size * channels, width), nn.LeakyReLU(0.2)
        )
        self.head = ProjectionHead(width, num_classes, spectral_norm=spectral_norm)
        if spectral_norm:
            apply_spectral_norm(self.features)

    def forward(self, x: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x), label)
