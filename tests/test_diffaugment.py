"""DiffAugment: policy parsing, shape/dtype/format, gradients, and what each op does."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ganaug.diffaugment import POLICY_ITEMS, DiffAugment, cutout, parse_policy, translation
from ganaug.errors import UsageError


def test_parse_policy():
    assert parse_policy("auto") == POLICY_ITEMS == ("color", "translation", "cutout")
    assert parse_policy("none") == ()
    assert parse_policy("") == ()
    assert parse_policy("color,translation") == ("color", "translation")
    assert parse_policy(" Cutout , color,cutout ") == ("cutout", "color")


def test_bad_policy_is_usage_error():
    with pytest.raises(UsageError, match="unknown DiffAugment item 'flip'"):
        parse_policy("color,flip")
    with pytest.raises(UsageError):
        DiffAugment("translate")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("channels_last", [False, True])
def test_preserves_shape_dtype_format(dtype, channels, channels_last):
    torch.manual_seed(0)
    x = torch.rand(6, channels, 16, 16, dtype=dtype) * 2 - 1
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    out = DiffAugment("auto")(x)
    assert out.shape == x.shape
    assert out.dtype == dtype
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    assert out.is_contiguous(memory_format=fmt)
    assert torch.isfinite(out).all()
    assert not torch.equal(out, x)


def test_none_is_identity():
    x = torch.rand(2, 3, 8, 8)
    assert DiffAugment("none")(x) is x


@pytest.mark.parametrize("policy", ["color", "translation", "cutout", "auto"])
def test_gradients_flow_to_input(policy):
    torch.manual_seed(0)
    x = (torch.rand(4, 3, 16, 16) * 2 - 1).requires_grad_(True)
    w = torch.randn(4, 3, 16, 16)
    (DiffAugment(policy)(x) * w).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert x.grad.abs().sum() > 0


def _shift(img: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Zero-filled shift of [C, H, W] content by (dy, dx) written with padding and slicing."""
    _, h, w = img.shape
    padded = F.pad(img, (abs(dx), abs(dx), abs(dy), abs(dy)))
    top, left = abs(dy) - dy, abs(dx) - dx
    return padded[:, top : top + h, left : left + w]


def test_translation_shifts_whole_images_within_ratio():
    torch.manual_seed(1)
    base = torch.rand(3, 16, 16) + 0.1  # no zeros, so the zero fill is visible
    x = base.expand(32, -1, -1, -1).contiguous()
    out = translation(x, ratio=0.125)  # up to 2 px at 16 px
    found = []
    for img in out:
        matches = [
            (dy, dx) for dy in range(-2, 3) for dx in range(-2, 3) if torch.equal(img, _shift(base, dy, dx))
        ]
        assert len(matches) == 1, "each output must be the input shifted by one offset within 2 px"
        found.append(matches[0])
    assert len(set(found)) > 5  # offsets vary per sample
    assert any(dy != 0 or dx != 0 for dy, dx in found)


def test_cutout_zeroes_one_square_region():
    torch.manual_seed(2)
    x = torch.ones(32, 1, 16, 16)
    out = cutout(x, ratio=0.5)  # 8x8 square, clipped at the border
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    for img in out[:, 0]:
        zero = img == 0
        rows = zero.any(dim=1).nonzero().flatten()
        cols = zero.any(dim=0).nonzero().flatten()
        assert 4 <= len(rows) <= 8 and 4 <= len(cols) <= 8
        box = zero[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        assert box.all()  # a filled rectangle ...
        assert zero.sum() == box.numel()  # ... and nothing else
    assert (out == 0).flatten(1).sum(1).float().std() > 0  # clipped differently per sample


def test_color_changes_per_sample():
    torch.manual_seed(3)
    x = (torch.rand(1, 3, 8, 8) * 2 - 1).expand(8, -1, -1, -1).contiguous()
    out = DiffAugment("color")(x)
    means = out.mean(dim=(1, 2, 3))
    assert means.std() > 0.01  # brightness differs per sample
    assert not torch.allclose(out[0], x[0])


def test_same_seed_same_result():
    x = torch.rand(4, 3, 16, 16)
    torch.manual_seed(7)
    a = DiffAugment()(x)
    torch.manual_seed(7)
    b = DiffAugment()(x)
    assert torch.equal(a, b)
