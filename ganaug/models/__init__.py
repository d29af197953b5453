"""Conditional GAN model zoo with a timm-like registry.

Each family module (``mlp``, ``dcgan``, ``resnet``) registers a generator and a discriminator class::

    g = build_generator("dcgan", num_classes=10, z_dim=128, image_size=32, channels=1)
    d = build_discriminator("dcgan", num_classes=10, image_size=32, channels=1)
    image = g(z, label)          # float NCHW in [-1, 1]
    logits = d(image, label)     # float32 [B]
    same = build_generator(**g.config)   # config is JSON-serialisable and rebuilds the architecture

A model class receives ``num_classes, image_size, channels`` (generators also ``z_dim``) plus its own
keyword options; its class attribute ``image_sizes`` lists the sizes it supports (``None``: any).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

from ganaug.errors import UsageError

__all__ = [
    "available_architectures",
    "build_discriminator",
    "build_generator",
    "register_discriminator",
    "register_generator",
    "supported_image_sizes",
]

_GENERATORS: dict[str, type[nn.Module]] = {}
_DISCRIMINATORS: dict[str, type[nn.Module]] = {}
_T = TypeVar("_T", bound=type)
_CHANNELS = (1, 3)


def register_generator(name: str) -> Callable[[_T], _T]:
    """Class decorator: register a generator family under ``name``."""

    def deco(cls: _T) -> _T:
        _GENERATORS[name] = cls
        return cls

    return deco


def register_discriminator(name: str) -> Callable[[_T], _T]:
    """Class decorator: register a discriminator family under ``name``."""

    def deco(cls: _T) -> _T:
        _DISCRIMINATORS[name] = cls
        return cls

    return deco


def available_architectures() -> list[str]:
    """Names that have both a generator and a discriminator, sorted."""
    return sorted(set(_GENERATORS) & set(_DISCRIMINATORS))


def supported_image_sizes(arch: str) -> tuple[int, ...] | None:
    """Image sizes ``arch`` supports, or ``None`` when any size works."""
    return _lookup(_GENERATORS, arch, "generator").image_sizes


def _lookup(registry: dict[str, type[nn.Module]], arch: str, kind: str) -> type[nn.Module]:
    if arch not in registry:
        raise UsageError(f"unknown {kind} architecture {arch!r}; available: {', '.join(sorted(registry))}")
    return registry[arch]


def _build(kind: str, registry: dict[str, type[nn.Module]], arch: str, **args: Any) -> nn.Module:
    cls = _lookup(registry, arch, kind)
    sizes = cls.image_sizes
    size = args["image_size"]
    if sizes is not None and size not in sizes:
        raise UsageError(
            f"{kind} {arch!r} does not support image size {size}; supported: {', '.join(map(str, sizes))}"
        )
    if args["channels"] not in _CHANNELS:
        raise UsageError(f"channels must be 1 or 3, got {args['channels']}")
    if args["num_classes"] < 1:
        raise UsageError(f"num_classes must be >= 1, got {args['num_classes']}")
    sig = inspect.signature(cls)
    try:
        bound = sig.bind(**args)
    except TypeError:
        known = sorted(set(sig.parameters) - {"num_classes", "image_size", "channels", "z_dim"})
        unknown = sorted(set(args) - set(sig.parameters))
        raise UsageError(
            f"unknown option(s) {', '.join(unknown)} for {kind} {arch!r}; accepted: {', '.join(known)}"
        ) from None
    bound.apply_defaults()
    model = cls(*bound.args, **bound.kwargs)
    model.config = {"arch": arch, **bound.arguments}
    return model


def build_generator(
    arch: str, *, num_classes: int, z_dim: int = 128, image_size: int = 32, channels: int = 1, **kw: Any
) -> nn.Module:
    """Build generator ``arch``: ``forward(z [B, z_dim], label int64 [B]) -> [B, C, S, S]`` in [-1, 1].

    ``model.config`` holds ``arch`` and every option (defaults filled in) so that
    ``build_generator(**model.config)`` rebuilds the same architecture.
    Raises UsageError for an unknown arch, unsupported size/channels or unknown option.
    """
    if z_dim < 1:
        raise UsageError(f"z_dim must be >= 1, got {z_dim}")
    return _build(
        "generator",
        _GENERATORS,
        arch,
        num_classes=num_classes,
        z_dim=z_dim,
        image_size=image_size,
        channels=channels,
        **kw,
    )


def build_discriminator(
    arch: str, *, num_classes: int, image_size: int = 32, channels: int = 1, **kw: Any
) -> nn.Module:
    """Build discriminator ``arch``: ``forward(x [B, C, S, S], label int64 [B]) -> float32 logits [B]``.

    ``model.config`` rebuilds it with ``build_discriminator(**model.config)``.
    """
    return _build(
        "discriminator",
        _DISCRIMINATORS,
        arch,
        num_classes=num_classes,
        image_size=image_size,
        channels=channels,
        **kw,
    )


# Family modules register themselves on import (they import the decorators above).
from ganaug.models import dcgan, mlp, resnet  # noqa: E402, F401
