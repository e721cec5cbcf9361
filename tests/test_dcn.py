"""Modulated deformable convolution against a loop written straight from the DCNv2 definition; its
precision under autocast (offsets, mask and convolution in fp32); the offset diagnostic's host reads."""

from __future__ import annotations

import copy
import logging
import math

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from mgvsr.models import dcn as dcn_module
from mgvsr.models.dcn import (DCNv2Pack, deform_conv2d, deform_conv2d_fp32, deform_conv2d_torch, in_fp32,
                              offset_absmeans, torchvision_available)


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
        with dcn_module.use_backend("cuda"):
            pass


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
    with dcn_module.use_backend("torch"):
        assert dcn_module.backend_in_use() == "torch"
        ours = deform_conv2d(*args)
    with dcn_module.use_backend("torchvision"):
        assert dcn_module.backend_in_use() == "torchvision"
        theirs = deform_conv2d(*args)
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-10)


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


# --- precision under autocast (issue 22): offsets, mask and the convolution in fp32 -------------

def recording_deform_conv2d(monkeypatch):
    """Replace ``mgvsr.models.dcn.deform_conv2d`` by a wrapper recording the dtypes it sees:
    a list of dicts (x, offset, mask, weight, out), one per call."""
    calls = []
    original = dcn_module.deform_conv2d

    def wrapper(x, offset, weight, bias=None, stride=1, padding=0, dilation=1, mask=None):
        out = original(x, offset, weight, bias, stride, padding, dilation, mask)
        calls.append(dict(x=x.dtype, offset=offset.dtype, mask=mask.dtype, weight=weight.dtype, out=out.dtype,
                          autocast=torch.is_autocast_enabled("cpu")))
        return out

    monkeypatch.setattr(dcn_module, "deform_conv2d", wrapper)
    return calls


def test_dcnv2pack_under_autocast_runs_offsets_mask_and_conv_in_fp32(monkeypatch):
    """bf16 inputs (as a previous conv under autocast gives them): conv_offset's output, the offset,
    the mask and the deformable convolution are fp32; the pack's output comes back in bf16."""
    torch.manual_seed(0)
    pack = DCNv2Pack(16, 8, 3, padding=1, deformable_groups=2)
    with torch.no_grad():
        pack.conv_offset.weight.normal_(0, 0.05)
    conv_offset_out = []
    pack.conv_offset.register_forward_hook(lambda m, i, o: conv_offset_out.append(o.dtype))
    calls = recording_deform_conv2d(monkeypatch)
    x, feat = torch.randn(2, 16, 10, 12).bfloat16(), torch.randn(2, 16, 10, 12).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = pack(x, feat)
        assert pack.conv_offset(feat).dtype == torch.bfloat16  # autocast is really on for a plain call
    assert conv_offset_out[0] == torch.float32
    assert calls == [dict(x=torch.float32, offset=torch.float32, mask=torch.float32, weight=torch.float32,
                          out=torch.float32, autocast=False)]
    assert out.dtype == torch.bfloat16


def test_dcnv2pack_under_autocast_equals_fp32_then_rounded():
    """Offsets of ~20 px (bf16 steps of 0.125 px there): under autocast the pack computes exactly
    the fp32 result, rounded to bf16 once at the end; with bf16 offsets it would not."""
    torch.manual_seed(1)
    pack = DCNv2Pack(8, 8, 3, padding=1, deformable_groups=2)
    with torch.no_grad():
        pack.conv_offset.weight.normal_(0, 0.02)
        pack.conv_offset.bias[:36].uniform_(20.1, 20.4)  # offsets, between two bf16 steps
    x, feat = torch.randn(1, 8, 48, 48), torch.randn(1, 8, 48, 48)
    with torch.no_grad():
        fp32 = pack(x, feat)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed = pack(x, feat)
        offset, mask = pack.offset_and_mask(feat)
        bf16_offsets = deform_conv2d(x, offset.bfloat16().float(), pack.weight, pack.bias, 1, 1, 1, mask)
    assert torch.equal(mixed, fp32.bfloat16())
    assert not torch.equal(bf16_offsets.bfloat16(), fp32.bfloat16())  # the precision this keeps


def test_without_autocast_nothing_is_cast():
    """Outside autocast every tensor keeps its dtype: fp64 stays fp64, a bf16 pack stays bf16."""
    pack = DCNv2Pack(8, 4, 3, padding=1, deformable_groups=2)
    x = torch.randn(1, 8, 6, 6)
    assert pack.double()(x.double(), x.double()).dtype == torch.float64
    assert pack.bfloat16()(x.bfloat16(), x.bfloat16()).dtype == torch.bfloat16
    with torch.autocast("cpu", dtype=torch.bfloat16):  # fp64 is left alone by autocast, and here
        assert pack.double()(x.double(), x.double()).dtype == torch.float64


def test_in_fp32_disables_autocast_and_casts_half_precision_up():
    seen = []

    def fn(a, b, c):
        seen.append((a.dtype, b.dtype, c, torch.is_autocast_enabled("cpu"), (a @ a).dtype))
        return a * 2

    a = torch.randn(3, 3).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert in_fp32(fn, a, torch.randn(2, dtype=torch.float64), None).dtype == torch.float32
    assert seen[-1] == (torch.float32, torch.float64, None, False, torch.float32)
    assert in_fp32(fn, a, torch.randn(2), None).dtype == torch.bfloat16  # no autocast: no cast
    assert seen[-1][:2] == (torch.bfloat16, torch.float32)


def test_deform_conv2d_fp32_passes_several_feature_tensors_and_closures():
    """BasicVSR++-style offsets: a head on (features, flow) with a tanh-bounded residue plus the flow."""
    torch.manual_seed(2)
    head = torch.nn.Conv2d(8 + 2, 3 * 2 * 9, 3, padding=1)
    weight, bias = torch.randn(4, 8, 3, 3), torch.randn(4)

    def offset_and_mask(feat, flow):
        o1, o2, mask = torch.chunk(head(torch.cat([feat, flow], 1)), 3, dim=1)
        offset = 10 * torch.tanh(torch.cat((o1, o2), 1)) + flow.flip(1).repeat(1, 18, 1, 1)
        return offset, torch.sigmoid(mask)

    x, feat, flow = torch.randn(1, 8, 7, 9), torch.randn(1, 8, 7, 9), 3 * torch.randn(1, 2, 7, 9)
    offset, mask = offset_and_mask(feat, flow)
    expected = deform_conv2d(x, offset, weight, bias, padding=1, mask=mask)
    got = deform_conv2d_fp32(x, (feat, flow), offset_and_mask, weight, bias, padding=1)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = deform_conv2d_fp32(x.bfloat16(), (feat.bfloat16(), flow), offset_and_mask, weight, bias, padding=1)
    assert mixed.dtype == torch.bfloat16
    # fp32 arithmetic on the bf16 inputs, rounded once at the end
    fp32 = deform_conv2d_fp32(x.bfloat16().float(), (feat.bfloat16().float(), flow), offset_and_mask, weight, bias,
                              padding=1)
    assert torch.equal(mixed, fp32.bfloat16())



# --- the offset diagnostic without a host sync per call (issue 22) -----------------------------

class ScalarReads(TorchDispatchMode):
    """Counts the reads of a tensor's value to the host (``aten._local_scalar_dense``: what ``.item()``,
    ``float(t)`` and ``bool(t)`` do; on a GPU each one waits for the device)."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten._local_scalar_dense.default:
            self.count += 1
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("every,reads", [(None, 0), (1, 25), (10, 2), (100, 0)])
def test_dcnv2pack_reads_its_offsets_only_every_n_calls(every, reads):
    pack = DCNv2Pack(8, 4, 3, padding=1, deformable_groups=2, offset_check_every=every)
    x = torch.randn(1, 8, 6, 6)
    with torch.no_grad(), ScalarReads() as counter:
        for _ in range(25):
            pack(x, x)
    assert counter.count == reads
    # what is still unread is read on demand: the 5 calls after the last read (every 10), all 25 (100)
    assert pack.offset_check.calls == {None: 0, 1: 0, 10: 5, 100: 25}[every]


def test_offset_check_warns_of_large_offsets_at_its_next_read(caplog):
    """BasicSR's warning (mean |offset| above 50 px) still comes, at the read after the calls that
    saw it, with the largest value since the last read; offset_absmeans reads every pack on demand."""
    model = torch.nn.Module()
    model.pack = DCNv2Pack(8, 4, 3, padding=1, deformable_groups=2, offset_check_every=3)
    x = torch.randn(1, 8, 6, 6)
    with torch.no_grad():
        model.pack.conv_offset.bias[:36] = 60.0
        model.pack(x, x)
        model.pack.conv_offset.bias[:36] = 70.0
        with caplog.at_level(logging.WARNING, logger="mgvsr.models.dcn"):
            model.pack(x, x)
            assert not caplog.records  # not read yet
            model.pack.conv_offset.bias[:36] = 0.0
            model.pack(x, x)            # third call: read, the largest of the three was 70 px
        assert len(caplog.records) == 1 and "70.0 px" in caplog.text and "3 calls" in caplog.text
        model.pack(x, x)
        assert offset_absmeans(model) == {"pack": 0.0}
        assert offset_absmeans(model) == {"pack": None}  # nothing observed since


def test_offset_check_follows_the_module_across_devices_and_copies():
    pack = DCNv2Pack(8, 4, 3, padding=1, deformable_groups=2)
    x = torch.randn(1, 8, 6, 6)
    pack(x, x)
    clone = copy.deepcopy(pack)
    assert clone.offset_check.calls == 1 and clone.offset_check is not pack.offset_check
    assert "offset_check" not in "".join(pack.state_dict())  # not saved, not a buffer (DDP would broadcast it)
    assert not list(pack.buffers())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: the GPU sync check needs one")
def test_dcnv2pack_forward_does_not_synchronise_the_gpu():
    pack = DCNv2Pack(16, 16, 3, padding=1, deformable_groups=2).cuda()
    x = torch.randn(2, 16, 12, 12, device="cuda")
    pack(x, x)  # first call: lazy initialisations may synchronise
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(5):
            out = pack(x, x)
            out.sum().backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_the_backend_in_use_is_named_and_restored():
    expected = "torchvision" if torchvision_available() else "torch"
    assert dcn_module.backend_in_use() == expected
    with dcn_module.use_backend("torch"):
        assert dcn_module.backend_in_use() == "torch"
    assert dcn_module.backend_in_use() == expected
    if not torchvision_available():
        with pytest.raises(RuntimeError, match="torchvision does not import"):
            with dcn_module.use_backend("torchvision"):
                pass
