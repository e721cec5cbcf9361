"""Loading BasicSR and MMagic checkpoint files (real .pth files written with torch.save)."""

from __future__ import annotations

import re

import pytest
import torch

from mgvsr.errors import CheckpointError
from mgvsr.models.basicvsr import BasicVSR
from mgvsr.models.checkpoints import load_pretrained, mmagic_to_basicsr_key, read_state_dict
from mgvsr.models.spynet import SpyNet


def small_model(seed: int, **kwargs) -> BasicVSR:
    torch.manual_seed(seed)
    return BasicVSR(num_feat=8, num_block=2, **kwargs)


def assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_basicsr_round_trip(tmp_path):
    source, target = small_model(0), small_model(1)
    path = tmp_path / "net_g.pth"
    torch.save({"params": source.state_dict()}, path)
    result = load_pretrained(target, path)
    assert result.missing == [] and result.unexpected == []
    assert_same_weights(source, target)


def test_params_ema_rule(tmp_path):
    plain, ema, target = small_model(0), small_model(1), small_model(2)
    path = tmp_path / "net_g_ema.pth"
    torch.save({"params": plain.state_dict(), "params_ema": ema.state_dict()}, path)
    load_pretrained(target, path)  # default: 'params'
    assert_same_weights(plain, target)
    load_pretrained(target, path, key="params_ema")
    assert_same_weights(ema, target)
    load_pretrained(target, path, key="auto")  # 'params_ema' when present
    assert_same_weights(ema, target)

    only_plain = tmp_path / "plain.pth"
    torch.save({"params": plain.state_dict()}, only_plain)
    load_pretrained(target, only_plain, key="auto")  # else 'params'
    assert_same_weights(plain, target)
    with pytest.raises(CheckpointError, match="params_ema"):
        load_pretrained(target, only_plain, key="params_ema")


def test_module_prefix_is_stripped(tmp_path):
    source, target = small_model(0), small_model(1)
    path = tmp_path / "ddp.pth"
    torch.save({"params": {f"module.{k}": v for k, v in source.state_dict().items()}}, path)
    load_pretrained(target, path)
    assert_same_weights(source, target)


def basicsr_to_mmagic(name: str) -> str:
    """MMagic BasicVSRNet's name for a BasicSR BasicVSR name (the inverse mapping, written
    from MMagic's basicvsr_net.py: SPyNetBasicModule of ConvModules, ResidualBlocksWithInputConv,
    PixelShufflePack)."""
    m = re.fullmatch(r"spynet\.basic_module\.(\d)\.basic_module\.(\d)\.(weight|bias)", name)
    if m:
        return f"spynet.basic_module.{m[1]}.basic_module.{int(m[2]) // 2}.conv.{m[3]}"
    name = re.sub(r"^(backward|forward)_trunk\.", r"\1_resblocks.", name)
    return re.sub(r"^upconv([12])\.", r"upsample\1.upsample_conv.", name)


def test_mmagic_basicvsr_round_trip(tmp_path):
    source, target = small_model(0), small_model(1)
    state = {f"generator.{basicsr_to_mmagic(k)}": v for k, v in source.state_dict().items()}
    assert "generator.spynet.basic_module.0.basic_module.0.conv.weight" in state
    assert "generator.backward_resblocks.main.2.0.conv1.weight" in state
    assert "generator.upsample1.upsample_conv.weight" in state
    state["step_counter"] = torch.zeros(1)  # the training wrapper's buffer, not the network's
    path = tmp_path / "basicvsr_mmagic.pth"
    torch.save({"meta": {"epoch": 1, "mmagic_version": "1.2.0"}, "state_dict": state}, path)
    load_pretrained(target, path)
    assert_same_weights(source, target)


def test_mmagic_edvr_names():
    """MMagic EDVRNet names (ConvModule '.conv', pcd_alignment, feat_l2_conv1, PixelShufflePack)
    onto BasicSR's EDVR names."""
    pairs = {
        "conv_first.weight": "conv_first.weight",
        "feature_extraction.4.conv2.bias": "feature_extraction.4.conv2.bias",
        "feat_l2_conv1.conv.weight": "conv_l2_1.weight",
        "feat_l3_conv2.conv.bias": "conv_l3_2.bias",
        "pcd_alignment.offset_conv1.l3.conv.weight": "pcd_align.offset_conv1.l3.weight",
        "pcd_alignment.offset_conv3.l1.conv.bias": "pcd_align.offset_conv3.l1.bias",
        "pcd_alignment.dcn_pack.l2.weight": "pcd_align.dcn_pack.l2.weight",
        "pcd_alignment.dcn_pack.l2.conv_offset.weight": "pcd_align.dcn_pack.l2.conv_offset.weight",
        "pcd_alignment.feat_conv.l1.conv.weight": "pcd_align.feat_conv.l1.weight",
        "pcd_alignment.cas_offset_conv2.conv.weight": "pcd_align.cas_offset_conv2.weight",
        "pcd_alignment.cas_dcnpack.conv_offset.bias": "pcd_align.cas_dcnpack.conv_offset.bias",
        "fusion.temporal_attn1.weight": "fusion.temporal_attn1.weight",
        "fusion.feat_fusion.conv.weight": "fusion.feat_fusion.weight",
        "fusion.spatial_attn_l2.conv.bias": "fusion.spatial_attn_l2.bias",
        "fusion.spatial_attn5.weight": "fusion.spatial_attn5.weight",
        "fusion.spatial_attn_add2.bias": "fusion.spatial_attn_add2.bias",
        "fusion.weight": "fusion.weight",  # without TSA: a plain conv
        "reconstruction.9.conv1.weight": "reconstruction.9.conv1.weight",
        "upsample2.upsample_conv.weight": "upconv2.weight",
        "conv_hr.bias": "conv_hr.bias",
    }
    assert {k: mmagic_to_basicsr_key(k) for k in pairs} == pairs


def test_mismatched_architecture_lists_names(tmp_path):
    path = tmp_path / "deeper.pth"
    torch.save({"params": BasicVSR(num_feat=8, num_block=3).state_dict()}, path)
    with pytest.raises(CheckpointError) as err:
        load_pretrained(small_model(0), path)
    message = str(err.value)
    assert str(path) in message and "unexpected" in message
    assert "backward_trunk.main.2.2.conv1.weight" in message
    result = load_pretrained(small_model(0), path, strict=False)
    assert "forward_trunk.main.2.2.conv2.bias" in result.unexpected and result.missing == []

    wider = tmp_path / "wider.pth"
    torch.save({"params": BasicVSR(num_feat=16, num_block=2).state_dict()}, wider)
    with pytest.raises(CheckpointError, match=r"(?s)shape mismatches \(25\):\n.*backward_trunk\.main\.0\.weight: file \(16, 19, 3, 3\) vs model \(8, 11, 3, 3\)"):
        load_pretrained(small_model(0), wider, strict=False)

    partial = tmp_path / "no_spynet.pth"
    torch.save({"params": {k: v for k, v in small_model(0).state_dict().items() if not k.startswith("spynet.")}},
               partial)
    with pytest.raises(CheckpointError, match=r"missing \(in the model, not in the file\) \(62\):\n    spynet\.basic_module\.0\.basic_module\.0\.bias"):
        load_pretrained(small_model(1), partial)


def test_unreadable_or_foreign_files(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        read_state_dict(tmp_path / "absent.pth")
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read"):
        read_state_dict(garbage)
    foreign = tmp_path / "foreign.pth"
    torch.save({"model": {"w": torch.zeros(1)}, "epoch": 3}, foreign)
    with pytest.raises(CheckpointError, match="not a BasicSR"):
        read_state_dict(foreign)


def test_spynet_loads_basicsr_spynet_file_without_buffers(tmp_path):
    """BasicSR's spynet_sintel_final file holds only 'basic_module.*' under 'params'."""
    torch.manual_seed(0)
    source = SpyNet()
    path = tmp_path / "spynet_sintel_final.pth"
    torch.save({"params": {k: v for k, v in source.state_dict().items() if k.startswith("basic_module.")}}, path)
    torch.manual_seed(1)
    loaded = SpyNet(load_path=path)
    assert_same_weights(source, loaded)
    model = BasicVSR(num_feat=8, num_block=1, spynet_path=path)
    assert_same_weights(source, model.spynet)


def test_spynet_loads_mmagic_spynet_file(tmp_path):
    """MMagic's SPyNet weights: a bare network under 'state_dict' with ConvModule names."""
    torch.manual_seed(0)
    source = SpyNet()
    state = {}
    for k, v in source.state_dict().items():
        m = re.fullmatch(r"basic_module\.(\d)\.basic_module\.(\d)\.(weight|bias)", k)
        state[f"basic_module.{m[1]}.basic_module.{int(m[2]) // 2}.conv.{m[3]}" if m else k] = v
    path = tmp_path / "spynet_mmagic.pth"
    torch.save({"meta": {}, "state_dict": state}, path)
    assert_same_weights(source, SpyNet(load_path=path))


def basicsr_edvr_to_mmagic(name: str) -> str:
    """MMagic EDVRNet's name for a BasicSR EDVR name (written from MMagic's edvr_net.py:
    ConvModules wrap '.conv', PCDAlignment is 'pcd_alignment', PixelShufflePack)."""
    name = re.sub(r"^conv_l([23])_([12])\.", r"feat_l\1_conv\2.conv.", name)
    name = re.sub(r"^upconv([12])\.", r"upsample\1.upsample_conv.", name)
    conv_modules = (r"^pcd_align\.(offset_conv[123]\.l\d|feat_conv\.l\d|cas_offset_conv[12])\."
                    r"|^fusion\.(feat_fusion|spatial_attn[1-4]|spatial_attn_l[1-3]|spatial_attn_add1)\.")
    m = re.match(conv_modules, name)
    if m:
        name = f"{m[0]}conv.{name[m.end():]}"
    return re.sub(r"^pcd_align\.", "pcd_alignment.", name)


def test_mmagic_edvr_file_loads_into_edvr_m(tmp_path):
    from mgvsr.models import build_model

    torch.manual_seed(0)
    source = build_model("edvr_m")
    state = {f"generator.{basicsr_edvr_to_mmagic(k)}": v for k, v in source.state_dict().items()}
    assert "generator.pcd_alignment.offset_conv1.l3.conv.weight" in state
    assert "generator.fusion.spatial_attn_add2.weight" in state
    path = tmp_path / "edvrm_mmagic.pth"
    torch.save({"meta": {}, "state_dict": state}, path)
    torch.manual_seed(1)
    target = build_model("edvr_m")
    load_pretrained(target, path)
    assert_same_weights(source, target)
