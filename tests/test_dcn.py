"""Modulated deformable convolution against a loop written straight from the DCNv2 definition."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from mgvsr.models.dcn import DCNv2Pack, deform_conv2d, deform_conv2d_torch, torchvision_available


def bilinear_zero_outside(img: torch.Tensor, y: float, x: float) -> torch.Tensor:
    """img (c, h, w) at real position (y, x); corner pixels outside the image count as 0."""
    _, h, w = img.shape
    if y <= -1 or y >= h or x <= -1 or x >= w:
        return img.new_zeros(img.shape[0])
    y0, x0 = math.floor(y), math.floor(x)
    ly, lx = y - y0, x - x0
    value = img.new_zeros(img.shape[0])
    for yy, xx, wt in ((y0, x0, (1 - ly) * (1 - lx)), (y0, x0 + 1, (1 - ly) * lx),
                       (y0 + 1, x0, ly * (1 - lx)), (y0 + 1, x0 + 1, ly * lx)):
        if 0 <= yy < h and 0 <= xx < w:
            value = value + wt * img[:, yy, xx]
    return value


def reference_deform_conv2d(x, offset, weight, bias, stride, padding, dilation, mask):
    """out[b, o, y, x] = bias[o] + sum_{c, i, j} weight[o, c, i, j] * m * x_c(p + dp), in loops.

    Offset channels: group g, tap k = i * kw + j -> (dy, dx) at 2 * (g * kh * kw + k) + (0, 1);
    mask channel g * kh * kw + k. Weight groups: output o reads the input channels of its group.
    """
    b, c_in, h, w = x.shape
    c_out, c_per_wg, kh, kw = weight.shape
    wgroups = c_in // c_per_wg
    h_out = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    w_out = (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    ogroups = offset.shape[1] // (2 * kh * kw)
    c_per_og = c_in // ogroups
    out = torch.zeros(b, c_out, h_out, w_out, dtype=torch.float64)
    for n in range(b):
        for oy in range(h_out):
            for ox in range(w_out):
                acc = torch.zeros(c_out, dtype=torch.float64) if bias is None else bias.clone()
                for c in range(c_in):
                    g = c // c_per_og
                    wg = c // c_per_wg
                    outs = slice(wg * (c_out // wgroups), (wg + 1) * (c_out // wgroups))
                    for i in range(kh):
                        for j in range(kw):
                            k = g * kh * kw + i * kw + j
                            dy, dx = offset[n, 2 * k, oy, ox].item(), offset[n, 2 * k + 1, oy, ox].item()
                            m = 1.0 if mask is None else mask[n, k, oy, ox].item()
                            py = oy * stride[0] - padding[0] + i * dilation[0] + dy
                            px = ox * stride[1] - padding[1] + j * dilation[1] + dx
                            v = bilinear_zero_outside(x[n, c:c + 1], py, px)[0]
                            acc[outs] += weight[outs, c - wg * c_per_wg, i, j] * (m * v)
                out[n, :, oy, ox] = acc
    return out


def random_case(seed, b=2, c_in=4, c_out=3, h=5, w=6, k=(3, 3), ogroups=2, wgroups=1,
                stride=(1, 1), padding=(1, 1), dilation=(1, 1), offset_scale=2.5, with_mask=True):
    gen = torch.Generator().manual_seed(seed)
    h_out = (h + 2 * padding[0] - dilation[0] * (k[0] - 1) - 1) // stride[0] + 1
    w_out = (w + 2 * padding[1] - dilation[1] * (k[1] - 1) - 1) // stride[1] + 1
    taps = k[0] * k[1]
    x = torch.randn(b, c_in, h, w, generator=gen, dtype=torch.float64)
    # offsets up to a few pixels: plenty of taps sample partly or wholly outside the image
    offset = offset_scale * torch.randn(b, 2 * ogroups * taps, h_out, w_out, generator=gen, dtype=torch.float64)
    mask = torch.rand(b, ogroups * taps, h_out, w_out, generator=gen, dtype=torch.float64) if with_mask else None
    weight = torch.randn(c_out, c_in // wgroups, *k, generator=gen, dtype=torch.float64)
    bias = torch.randn(c_out, generator=gen, dtype=torch.float64)
    return x, offset, weight, bias, mask, dict(stride=stride, padding=padding, dilation=dilation)


CASES = {
    "edvr (stride 1, pad 1, dil 1)": dict(),
    "no mask": dict(with_mask=False),
    "pad 2, dil 2": dict(padding=(2, 2), dilation=(2, 2), h=6, w=5),
    "stride 2, pad 0, 2x3 kernel": dict(stride=(2, 2), padding=(0, 1), k=(2, 3), h=7, w=6),
    "weight groups 2, 4 offset groups": dict(c_in=4, c_out=4, wgroups=2, ogroups=4),
    "large offsets (mostly outside)": dict(offset_scale=6.0),
    "1x2 image (EDVR's L3 at LR 4x8)": dict(h=1, w=2, offset_scale=0.8),
}


@pytest.mark.parametrize("name", list(CASES))
def test_matches_loop_reference_float64(name):
    x, offset, weight, bias, mask, geom = random_case(0, **CASES[name])
    expected = reference_deform_conv2d(x, offset, weight, bias, mask=mask, **geom)
    got = deform_conv2d_torch(x, offset, weight, bias, mask=mask, **geom)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)


def test_offsets_really_sample_outside_the_image():
    """The random cases above exercise the border: many sample positions lie outside."""
    x, offset, *_ = random_case(0)
    dy = offset.view(2, 2, 9, 2, 5, 6)[:, :, :, 0]
    rows = torch.arange(5).view(1, 5, 1) - 1 + torch.arange(3).repeat_interleave(3).view(9, 1, 1)
    y = dy + rows.double()
    assert ((y < 0) | (y > 4)).double().mean() > 0.2
    assert ((y <= -1) | (y >= 5)).any()  # wholly outside: the sample is exactly zero


def test_border_samples_at_the_image_edge():
    """Points in (-1, 0) and (h-1, h) blend the edge pixel with zeros, as torchvision does."""
    x = torch.arange(1.0, 5.0, dtype=torch.float64).view(1, 1, 1, 4)  # one row: 1 2 3 4
    weight = torch.ones(1, 1, 1, 1, dtype=torch.float64)
    for dx, expected in [(-0.25, 0.75 * 1), (-1.0, 0.0), (0.5, 0.5 * 4)]:
        # tap at column 0 (dx < 0) or column 3 (dx > 0); output is 1x4, offsets per output pixel
        offset = torch.zeros(1, 2, 1, 4, dtype=torch.float64)
        col = 0 if dx < 0 else 3
        offset[0, 1, 0, col] = dx
        got = deform_conv2d_torch(x, offset, weight)
        assert got[0, 0, 0, col].item() == pytest.approx(expected, abs=1e-12)


def test_zero_offsets_and_unit_mask_equal_conv2d():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 16, 12, 10, generator=gen)
    weight = torch.randn(8, 16, 3, 3, generator=gen)
    bias = torch.randn(8, generator=gen)
    offset = torch.zeros(2, 2 * 4 * 9, 12, 10)
    mask = torch.ones(2, 4 * 9, 12, 10)
    got = deform_conv2d_torch(x, offset, weight, bias, padding=1, mask=mask)
    torch.testing.assert_close(got, F.conv2d(x, weight, bias, padding=1), rtol=1e-4, atol=1e-4)
    got = deform_conv2d_torch(x, offset[:, :, ::2, ::2], weight, bias, stride=2, padding=2, dilation=2,
                              mask=mask[:, :, ::2, ::2])
    torch.testing.assert_close(got, F.conv2d(x, weight, bias, stride=2, padding=2, dilation=2),
                               rtol=1e-4, atol=1e-4)


def test_integer_offsets_shift_the_input():
    """An offset of (+1, -2) everywhere equals a conv of the input shifted by one row and two columns."""
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(1, 8, 9, 11, generator=gen, dtype=torch.float64)
    weight = torch.randn(4, 8, 3, 3, generator=gen, dtype=torch.float64)
    offset = torch.zeros(1, 2 * 2 * 9, 9, 11, dtype=torch.float64)
    offset[:, 0::2], offset[:, 1::2] = 1.0, -2.0
    # tap (i, j) at (y, x) reads x[y + i - 1 + 1, x + j - 1 - 2]: a valid conv of x padded by
    # 3 columns on the left and 2 rows at the bottom (zeros outside, as the deformable conv)
    expected = F.conv2d(F.pad(x, (3, 0, 0, 2)), weight)[..., :11]
    torch.testing.assert_close(deform_conv2d_torch(x, offset, weight, padding=1), expected)


def test_gradcheck_all_inputs():
    x, offset, weight, bias, mask, geom = random_case(3, b=1, c_in=2, c_out=2, h=4, w=4, ogroups=2,
                                                      offset_scale=1.5)
    inputs = tuple(t.requires_grad_() for t in (x, offset, weight, bias, mask))

    def fn(x, offset, weight, bias, mask):
        return deform_conv2d_torch(x, offset, weight, bias, mask=mask, **geom)

    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-6)


def test_bad_shapes_are_named():
    x = torch.randn(1, 8, 6, 6)
    weight = torch.randn(4, 8, 3, 3)
    with pytest.raises(ValueError, match="offset must be"):
        deform_conv2d_torch(x, torch.zeros(1, 17, 6, 6), weight, padding=1)
    with pytest.raises(ValueError, match="mask must be"):
        deform_conv2d_torch(x, torch.zeros(1, 18, 6, 6), weight, padding=1, mask=torch.ones(1, 18, 6, 6))
    with pytest.raises(ValueError, match="backend"):
        deform_conv2d(x, torch.zeros(1, 18, 6, 6), weight, padding=1, backend="cuda")


def test_dcnv2pack_layout_and_init():
    pack = DCNv2Pack(64, 64, 3, padding=1, deformable_groups=8)
    shapes = {k: tuple(v.shape) for k, v in pack.state_dict().items()}
    assert shapes == {"weight": (64, 64, 3, 3), "bias": (64,),
                      "conv_offset.weight": (216, 64, 3, 3), "conv_offset.bias": (216,)}
    assert pack.conv_offset.weight.abs().sum() == 0 and pack.bias.abs().sum() == 0
    assert pack.weight.abs().max() <= 1 / math.sqrt(64 * 9)
    # zero-initialised conv_offset: offsets 0, mask sigmoid(0) = 0.5 -> half a plain convolution
    x, feat = torch.randn(2, 64, 8, 8), torch.randn(2, 64, 8, 8)
    with torch.no_grad():
        pack.bias.normal_()  # the bias is added after the mask, not scaled by it
    expected = 0.5 * F.conv2d(x, pack.weight, padding=1) + pack.bias.view(1, -1, 1, 1)
    torch.testing.assert_close(pack(x, feat), expected,
                               rtol=1e-4, atol=1e-4)


def test_dcnv2pack_chunk_order():
    """conv_offset's output is [o1, o2, mask] thirds; offset = cat(o1, o2), mask = sigmoid(third)."""
    pack = DCNv2Pack(8, 4, 3, padding=1, deformable_groups=2)
    with torch.no_grad():
        pack.conv_offset.bias.copy_(torch.arange(54.0))
    offset, mask = pack.offset_and_mask(torch.zeros(1, 8, 5, 5))
    assert offset.shape == (1, 36, 5, 5) and mask.shape == (1, 18, 5, 5)
    assert torch.equal(offset[0, :, 0, 0], torch.arange(36.0))
    assert torch.allclose(mask[0, :, 0, 0], torch.sigmoid(torch.arange(36.0, 54.0)))


@pytest.mark.skipif(not torchvision_available(), reason="torchvision does not import here")
def test_matches_torchvision_kernel():
    x, offset, weight, bias, mask, geom = random_case(4, c_in=8, c_out=4, h=9, w=7, ogroups=4)
    args = (x, offset, weight, bias, geom["stride"], geom["padding"], geom["dilation"], mask)
    torch.testing.assert_close(deform_conv2d(*args, backend="torch"),
                               deform_conv2d(*args, backend="torchvision"), rtol=1e-10, atol=1e-10)


def test_bfloat16_inputs_sample_in_float32():
    """Half-precision inputs: positions are computed in fp32 (in bf16, 60 + 0.3 rounds to 60.25),
    the output comes back in the input's dtype, as the fp32 result on the same (rounded) inputs."""
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(1, 8, 70, 70, generator=gen).bfloat16()
    weight = torch.randn(4, 8, 3, 3, generator=gen).bfloat16()
    offset = torch.full((1, 2 * 9, 70, 70), 0.3).bfloat16()
    ref = deform_conv2d_torch(x.float(), offset.float(), weight.float(), padding=1)
    low = deform_conv2d_torch(x, offset, weight, padding=1)
    assert low.dtype == torch.bfloat16
    assert ((low.float() - ref).abs().max() / ref.abs().max()).item() < 1e-2  # bf16 output rounding
