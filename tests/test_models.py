"""Model zoo: shapes, ranges, config round trip, bf16/channels_last, conditioning, errors."""

from __future__ import annotations

import json

import pytest
import torch

from ganaug.errors import UsageError
from ganaug.models import (
    available_architectures,
    build_discriminator,
    build_generator,
    supported_image_sizes,
)

ARCHS = ("mlp", "dcgan", "resnet")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # tiny models: one intra-op thread avoids OpenMP spin-wait contention on the shared 2-core box
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


B, Z, K = 4, 16, 5


def _kw(arch: str) -> dict:
    return {"width": 32 if arch == "mlp" else 8}


def _pair(arch: str, size: int, channels: int):
    torch.manual_seed(0)
    g = build_generator(arch, num_classes=K, z_dim=Z, image_size=size, channels=channels, **_kw(arch))
    d = build_discriminator(arch, num_classes=K, image_size=size, channels=channels, **_kw(arch))
    return g, d


def _inputs(seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(B, Z, generator=gen), torch.tensor([0, 1, 2, 4])


def test_registry_lists_all_families():
    assert set(ARCHS) <= set(available_architectures())
    assert supported_image_sizes("mlp") is None
    assert supported_image_sizes("dcgan") == (28, 32, 40, 48, 56, 64)
    assert {28, 32, 64, 128} <= set(supported_image_sizes("resnet"))


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [28, 32])
def test_shapes_and_range(arch, channels, size):
    g, d = _pair(arch, size, channels)
    z, y = _inputs()
    for mode in ("train", "eval"):
        g.train(mode == "train")
        x = g(z, y)
        assert x.shape == (B, channels, size, size)
        assert x.dtype == torch.float32
        assert x.min() >= -1.0 and x.max() <= 1.0
        logits = d(x, y)
        assert logits.shape == (B,)
        assert logits.dtype == torch.float32
        assert torch.isfinite(logits).all()


@pytest.mark.parametrize("arch,size", [("dcgan", 64), ("resnet", 64), ("mlp", 20)])
def test_other_sizes(arch, size):
    g, d = _pair(arch, size, 3)
    z, y = _inputs()
    x = g(z, y)
    assert x.shape == (B, 3, size, size)
    assert d(x, y).shape == (B,)


@pytest.mark.parametrize("arch", ARCHS)
def test_config_round_trip(arch):
    g, d = _pair(arch, 32, 3)
    g_cfg = json.loads(json.dumps(g.config))
    d_cfg = json.loads(json.dumps(d.config))
    assert g_cfg["arch"] == arch and g_cfg["z_dim"] == Z and g_cfg["num_classes"] == K
    assert "width" in g_cfg and "width" in d_cfg
    g2, d2 = build_generator(**g_cfg), build_discriminator(**d_cfg)
    g2.load_state_dict(g.state_dict(), strict=True)
    d2.load_state_dict(d.state_dict(), strict=True)
    g.eval(), g2.eval(), d.eval(), d2.eval()
    z, y = _inputs()
    torch.testing.assert_close(g2(z, y), g(z, y))
    x = g(z, y)
    torch.testing.assert_close(d2(x, y), d(x, y))


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("channels", [1, 3])
def test_bf16_autocast_channels_last(arch, channels):
    g, d = _pair(arch, 32, channels)
    g, d = g.to(memory_format=torch.channels_last), d.to(memory_format=torch.channels_last)
    z, y = _inputs()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        x = g(z, y)
        logits = d(x.contiguous(memory_format=torch.channels_last), y)
    assert x.shape == (B, channels, 32, 32)
    assert torch.isfinite(x).all() and x.abs().max() <= 1.0
    assert logits.shape == (B,) and logits.dtype == torch.float32
    assert torch.isfinite(logits).all()
    logits.mean().backward()  # SN power iteration + backward under autocast
    grads = [p.grad for p in g.parameters()]
    assert all(gr is not None and torch.isfinite(gr).all() for gr in grads)


@pytest.mark.parametrize("arch", ARCHS)
def test_label_conditions_generator(arch):
    g, _ = _pair(arch, 32, 1)
    # class-conditional BN starts as gain 1 / bias 0 for every class; perturb the class embeddings as a
    # few training steps would, so the test sees whether the label reaches the output at all
    with torch.no_grad():
        for module in g.modules():
            if isinstance(module, torch.nn.Embedding):
                module.weight.add_(0.2 * torch.randn_like(module.weight))
    g.eval()
    z, _ = _inputs()
    a = g(z, torch.zeros(B, dtype=torch.long))
    b = g(z, torch.full((B,), 3, dtype=torch.long))
    # relative: a freshly initialised DCGAN in eval mode has tiny outputs (N(0, 0.02) weights)
    assert (a - b).abs().mean() > 0.05 * a.abs().mean()
    assert not torch.allclose(a[0], a[1])  # and z still matters within one class


@pytest.mark.parametrize("arch", ARCHS)
def test_label_conditions_discriminator(arch):
    _, d = _pair(arch, 32, 1)
    x = torch.rand(B, 1, 32, 32) * 2 - 1
    assert not torch.allclose(d(x, torch.zeros(B, dtype=torch.long)), d(x, torch.full((B,), 3)))


def test_dcgan_spectral_norm_option_and_size():
    d_sn = build_discriminator("dcgan", num_classes=K, image_size=32, channels=1, width=8)
    d_plain = build_discriminator(
        "dcgan", num_classes=K, image_size=32, channels=1, width=8, spectral_norm=False
    )
    assert any("parametrizations" in n for n, _ in d_sn.named_parameters())
    assert not any("parametrizations" in n for n, _ in d_plain.named_parameters())
    g = build_generator("dcgan", num_classes=10, image_size=32, channels=1)
    mb = sum(p.numel() for p in g.parameters()) * 4 / 2**20
    assert mb < 5.0


def test_unknown_arch_raises_usage_error():
    with pytest.raises(UsageError, match="available: .*dcgan"):
        build_generator("stylegan9", num_classes=2)
    with pytest.raises(UsageError, match="unknown discriminator"):
        build_discriminator("nope", num_classes=2, image_size=32, channels=1)


@pytest.mark.parametrize("arch,size", [("dcgan", 30), ("dcgan", 128), ("resnet", 36), ("resnet", 16)])
def test_bad_size_raises_usage_error(arch, size):
    with pytest.raises(UsageError, match=f"image size {size}; supported: .*32") as info:
        build_generator(arch, num_classes=2, image_size=size)
    assert "\n" not in str(info.value)
    with pytest.raises(UsageError):
        build_discriminator(arch, num_classes=2, image_size=size, channels=1)


def test_bad_options_raise_usage_error():
    with pytest.raises(UsageError, match="channels must be 1 or 3"):
        build_generator("dcgan", num_classes=2, channels=2)
    with pytest.raises(UsageError, match="unknown option.*depth.*accepted: .*width"):
        build_generator("dcgan", num_classes=2, depth=3)
    with pytest.raises(UsageError, match="num_classes"):
        build_discriminator("mlp", num_classes=0, image_size=28, channels=1)
