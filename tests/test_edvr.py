"""EDVR-M: BasicSR's parameter names and counts, shapes, input checks, save / load, precision under autocast."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from mgvsr.models import build_model
from mgvsr.models import dcn as dcn_module
from mgvsr.models import edvr as edvr_module
from mgvsr.models.dcn import DCNv2Pack
from mgvsr.models.edvr import EDVR
from mgvsr.paths import shared_data_dir

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from reference_models import edvr_reference_forward  # noqa: E402


def num_params(model):
    return sum(p.numel() for p in model.parameters())


def shapes_of(model):
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def small_edvr(**kw):
    """A small EDVR (16 features, 1 + 1 blocks) for fast behavioural tests."""
    return EDVR(num_feat=16, num_frame=5, deformable_groups=8, num_extract_block=1,
                num_reconstruct_block=1, **kw)


def test_parameter_counts_match_basicsr():
    assert num_params(build_model("edvr_m")) == 3_300_131
    assert num_params(build_model("edvr_m_wotsa")) == 2_996_259


def test_key_names_and_shapes_spot_checks():
    tsa, wotsa = shapes_of(build_model("edvr_m")), shapes_of(build_model("edvr_m_wotsa"))
    assert len(tsa) == 144 and len(wotsa) == 120
    for level in ("l1", "l2", "l3"):
        assert tsa[f"pcd_align.dcn_pack.{level}.weight"] == (64, 64, 3, 3)
        assert tsa[f"pcd_align.dcn_pack.{level}.conv_offset.weight"] == (3 * 8 * 9, 64, 3, 3)
    assert tsa["pcd_align.cas_dcnpack.conv_offset.bias"] == (216,)
    assert tsa["fusion.spatial_attn1.weight"] == (64, 5 * 64, 1, 1)
    assert wotsa["fusion.weight"] == (64, 5 * 64, 1, 1)
    assert "pcd_align.offset_conv3.l3.weight" not in tsa and "pcd_align.feat_conv.l3.weight" not in tsa


def read_key_listing(path):
    """``name (d0, d1, ...)`` per line -> {name: shape}, in file order."""
    keys = {}
    for line in path.read_text().splitlines():
        m = re.fullmatch(r"(\S+) \(([\d, ]*)\)", line.strip())
        assert m, f"unexpected line in {path}: {line!r}"
        keys[m[1]] = tuple(int(v) for v in m[2].split(",") if v.strip())
    return keys


@pytest.mark.parametrize("name", ["edvr_m", "edvr_m_wotsa"])
def test_state_dict_matches_basicsr_reference_file(name):
    shared = shared_data_dir()
    path = shared.parent / "reference" / "keys" / f"{name}.txt" if shared else None
    if path is None or not path.is_file():
        pytest.skip(f"BasicSR key listing (shared/reference/keys/{name}.txt) not found")
    reference = read_key_listing(path)
    mine = shapes_of(build_model(name))
    assert mine == reference
    assert list(mine) == list(reference)  # same order too, as BasicSR creates the modules


@pytest.mark.parametrize("h,w", [(32, 32), (36, 44)])
def test_output_shape_edvr_m(h, w):
    model = build_model("edvr_m").eval()
    with torch.no_grad():
        out = model(torch.rand(1, 5, 3, h, w))
    assert out.shape == (1, 3, 4 * h, 4 * w)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("with_tsa", [True, False])
def test_output_shape_small_batch2(with_tsa):
    model = small_edvr(with_tsa=with_tsa)
    assert model(torch.rand(2, 5, 3, 12, 8)).shape == (2, 3, 48, 32)
    assert model(torch.rand(2, 5, 3, 4, 8)).shape == (2, 3, 16, 32)  # 1x2 px at the pyramid's top


@pytest.mark.parametrize("shape,match", [
    ((1, 5, 3, 30, 32), "divisible by 4.*30x32"),
    ((1, 5, 3, 32, 34), "divisible by 4.*32x34"),
    ((1, 7, 3, 32, 32), "5 frames, got 7"),
    ((1, 5, 1, 32, 32), "3 channels, got 1"),
    ((5, 3, 32, 32), r"\(b, t, c, h, w\)"),
])
def test_bad_input_is_a_clear_error(shape, match):
    with pytest.raises(ValueError, match=match):
        small_edvr()(torch.rand(*shape))


def test_centre_frame_bilinear_skip_at_init():
    """With conv_last zeroed, the output is exactly the centre LR frame upsampled bilinearly x4."""
    model = small_edvr(center_frame_idx=1)
    with torch.no_grad():
        model.conv_last.weight.zero_()
        model.conv_last.bias.zero_()
    x = torch.rand(1, 5, 3, 8, 12)
    expected = F.interpolate(x[:, 1], scale_factor=4, mode="bilinear", align_corners=False)
    torch.testing.assert_close(model(x), expected)


def test_batched_alignment_equals_per_frame_loop():
    """Aligning all frames at once (mgvsr) equals BasicSR's loop over frames."""
    torch.manual_seed(0)
    model = small_edvr()
    with torch.no_grad():  # non-trivial offsets and masks
        for m in model.modules():
            if hasattr(m, "conv_offset"):
                m.conv_offset.weight.normal_(0, 0.05)
                m.conv_offset.bias.normal_(0, 0.5)
    x = torch.rand(2, 5, 3, 16, 12)
    b, t = 2, 5
    with torch.no_grad():
        pyramid = model.extract_pyramid(x.reshape(b * t, 3, 16, 12))
        batched = model.align(pyramid, b, t)
        levels = [p.view(b, t, *p.shape[1:]) for p in pyramid]
        ref = [lv[:, 2] for lv in levels]
        looped = torch.stack([model.pcd_align([lv[:, i] for lv in levels], ref) for i in range(t)], dim=1)
    torch.testing.assert_close(batched, looped, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("with_tsa", [True, False])
def test_forward_equals_basicsr_per_frame_reference(with_tsa):
    """mgvsr's forward (alignment of all frames at once) equals BasicSR's per-frame forward
    (``bench/reference_models.py``): outputs and gradients, in float64 with non-trivial offsets."""
    torch.manual_seed(0)
    model = small_edvr(with_tsa=with_tsa).double()
    with torch.no_grad():
        for m in model.modules():
            if hasattr(m, "conv_offset"):
                m.conv_offset.weight.normal_(0, 0.05)
                m.conv_offset.bias.normal_(0, 0.5)
    x = torch.rand(2, 5, 3, 8, 12, dtype=torch.float64)
    grads = []
    for forward in (model, lambda x_: edvr_reference_forward(model, x_)):
        model.zero_grad()
        out = forward(x)
        out.square().mean().backward()
        grads.append((out.detach(), [p.grad.clone() for p in model.parameters()]))
    torch.testing.assert_close(grads[0][0], grads[1][0])
    for g_fast, g_ref in zip(grads[0][1], grads[1][1]):
        torch.testing.assert_close(g_fast, g_ref)


def test_offsets_receive_gradients():
    """The zero-initialised offset convs learn: gradients reach them after one backward pass."""
    model = small_edvr()
    x = torch.rand(1, 5, 3, 16, 16)
    model(x).square().mean().backward()
    for name, p in model.named_parameters():
        if "conv_offset" in name:
            assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_state_dict_round_trip(tmp_path):
    torch.manual_seed(0)
    model = build_model("edvr_m")
    with torch.no_grad():  # make the offset branches matter
        for m in model.modules():
            if hasattr(m, "conv_offset"):
                m.conv_offset.weight.normal_(0, 0.01)
    path = tmp_path / "edvr_m.pth"
    torch.save({"params": model.state_dict()}, path)
    torch.manual_seed(1)
    fresh = build_model("edvr_m")
    fresh.load_state_dict(torch.load(path, weights_only=True)["params"], strict=True)
    x = torch.rand(1, 5, 3, 16, 20)
    with torch.no_grad():
        assert torch.equal(model.eval()(x), fresh.eval()(x))


def test_hr_feat_narrows_only_the_high_resolution_tail():
    """``hr_feat`` (default 64, BasicSR's) sets upconv2 / conv_hr / conv_last; nothing else changes."""
    default, narrow = small_edvr(), small_edvr(hr_feat=8)
    a, b = shapes_of(default), shapes_of(narrow)
    assert a["upconv2.weight"] == (4 * 64, 16, 3, 3) and a["conv_hr.weight"] == (64, 64, 3, 3)
    assert b["upconv2.weight"] == (4 * 8, 16, 3, 3) and b["conv_hr.weight"] == (8, 8, 3, 3)
    assert b["conv_last.weight"] == (3, 8, 3, 3)
    tail = ("upconv2.", "conv_hr.", "conv_last.")
    assert {k: v for k, v in a.items() if not k.startswith(tail)} == {k: v for k, v in b.items() if not k.startswith(tail)}
    assert narrow(torch.rand(1, 5, 3, 8, 8)).shape == (1, 3, 32, 32)


def test_edvr_cpu_configuration():
    model = build_model("edvr_cpu")
    assert (model.num_frame, model.center_frame_idx, model.with_tsa, model.patch_multiple) == (5, 2, True, 4)
    assert num_params(model) == 188_227
    assert model(torch.rand(2, 5, 3, 16, 16)).shape == (2, 3, 64, 64)


def test_autocast_keeps_offsets_masks_and_deformable_convs_in_fp32(monkeypatch):
    """Under bf16 autocast every pack's conv_offset, offsets, masks and deformable convolution and the
    PCD's upsampled offsets are fp32 while the other convolutions run in bf16; the output stays
    close to the fp32 model's."""
    torch.manual_seed(0)
    model = small_edvr()
    with torch.no_grad():  # non-trivial offsets (~12 px) and masks
        for m in model.modules():
            if isinstance(m, DCNv2Pack):
                m.conv_offset.weight.normal_(0, 0.05)
                m.conv_offset.bias.normal_(0, 0.5)
                m.conv_offset.bias[: 2 * 8 * 9] += 12.3
    dtypes = {"conv_offset": [], "deform": [], "upsampled offsets": [], "conv_first": []}
    for m in model.modules():
        if isinstance(m, DCNv2Pack):
            m.conv_offset.register_forward_hook(lambda mod, i, o: dtypes["conv_offset"].append(o.dtype))
    model.conv_first.register_forward_hook(lambda mod, i, o: dtypes["conv_first"].append(o.dtype))
    deform, upsample = dcn_module.deform_conv2d, edvr_module.upsample_offsets

    def recording_deform(x, offset, weight, bias, stride, padding, dilation, mask):
        out = deform(x, offset, weight, bias, stride, padding, dilation, mask)
        dtypes["deform"].append({x.dtype, offset.dtype, mask.dtype, weight.dtype, out.dtype})
        return out

    def recording_upsample(offset):
        out = upsample(offset)
        dtypes["upsampled offsets"].append(out.dtype)
        return out

    monkeypatch.setattr(dcn_module, "deform_conv2d", recording_deform)
    monkeypatch.setattr(edvr_module, "upsample_offsets", recording_upsample)
    x = torch.rand(1, 5, 3, 32, 32)
    with torch.no_grad():
        fp32 = model(x)
        for values in dtypes.values():
            values.clear()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed = model(x)
    assert dtypes["conv_first"] == [torch.bfloat16]
    assert dtypes["conv_offset"] == [torch.float32] * 4    # l3, l2, l1 and the cascade
    assert dtypes["deform"] == [{torch.float32}] * 4
    assert dtypes["upsampled offsets"] == [torch.float32] * 2  # l3 -> l2, l2 -> l1
    base = F.interpolate(x[:, 2], scale_factor=4, mode="bilinear", align_corners=False)
    residual = (fp32 - base).abs().max()
    assert residual > 1e-2
    assert (mixed.float() - fp32).abs().max() < 0.05 * residual  # bf16 elsewhere: ~0.6% measured


def test_autocast_training_step_reaches_the_offset_convs():
    """A bf16 autocast backward pass flows through the fp32 regions into fp32 gradients."""
    model = small_edvr()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(torch.rand(1, 5, 3, 16, 16))
    out.float().square().mean().backward()
    for name, p in model.named_parameters():
        if "conv_offset" in name or "dcn" in name:
            assert p.grad is not None and p.grad.dtype == torch.float32 and p.grad.abs().sum() > 0, name


def test_packs_name_themselves_in_the_offset_warning():
    names = {m.offset_check.name for m in small_edvr().modules() if isinstance(m, DCNv2Pack)}
    assert names == {f"pcd_align.dcn_pack.l{i}" for i in (1, 2, 3)} | {"pcd_align.cas_dcnpack"}
