"""BasicVSR++: BasicSR's sizes and names, the forward against a per-frame oracle written here from the
references' equations, mirror-extended clips, small shapes, BasicSR / MMagic checkpoints, mixed
precision, the CPU configuration and the CPU feature cache.

The oracle (``oracle_*``) is BasicSR's ``BasicVSRPlusPlus.forward`` written plainly: two SpyNet calls,
per-frame feature extraction, the four branches as dict-of-lists loops, the offsets of the
second-order alignment from their equations, a modulated deformable convolution by explicit bilinear
gathers (not ``grid_sample``), per-frame reconstruction.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from mgvsr.errors import MgvsrError
from mgvsr.models import SpynetRequiredError, build_model, flow_init, infer_config, protocol
from mgvsr.models.basicvsrpp import BRANCHES, BasicVSRPlusPlus, SecondOrderDeformableAlignment, is_mirror_extended
from mgvsr.models.checkpoints import load_pretrained, read_state_dict
from mgvsr.models.dcn import deform_conv2d
from mgvsr.paths import shared_data_dir

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from reference_models import reference_flow_warp  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


# ---------------------------------------------------------------------------------------
# The oracle

def oracle_bilinear(img, py, px):
    """``img`` ``(b, g, c, h, w)`` at real positions ``py, px`` ``(b, g, h', w')`` -> ``(b, g, c, h', w')``:
    the four neighbouring pixels weighted bilinearly, a neighbour outside the image counting as 0."""
    b, g, c, h, w = img.shape
    flat = img.reshape(b, g, c, h * w)
    y0, x0 = torch.floor(py), torch.floor(px)
    out = 0
    for yy, wy in ((y0, 1 - (py - y0)), (y0 + 1, py - y0)):
        for xx, wx in ((x0, 1 - (px - x0)), (x0 + 1, px - x0)):
            inside = (yy >= 0) & (yy <= h - 1) & (xx >= 0) & (xx <= w - 1)
            index = (yy.clamp(0, h - 1) * w + xx.clamp(0, w - 1)).long().flatten(2)  # (b, g, h' w')
            values = torch.gather(flat, 3, index.unsqueeze(2).expand(b, g, c, index.shape[-1]))
            out = out + values.view(b, g, c, *py.shape[2:]) * (wy * wx * inside).unsqueeze(2)
    return out


def oracle_deform_conv(x, offset, mask, weight, bias):
    """Modulated deformable 3x3 convolution, padding 1 (DCNv2): output pixel ``p`` sums, over input
    channels ``c`` (in deformable group ``g``) and taps ``k = (i, j)``, ``weight[o, c, i, j] * mask[g, k]
    * x_c(p + (i - 1, j - 1) + offset[g, k])``; offset channels ``2 (g 9 + k)`` = dy, ``+1`` = dx."""
    b, c, h, w = x.shape
    groups = mask.shape[1] // 9
    offset = offset.view(b, groups, 9, 2, h, w)
    mask = mask.view(b, groups, 9, h, w)
    ys = torch.arange(h, dtype=x.dtype).view(h, 1)
    xs = torch.arange(w, dtype=x.dtype).view(1, w)
    taps = []
    for k in range(9):
        i, j = divmod(k, 3)
        sampled = oracle_bilinear(x.view(b, groups, c // groups, h, w),
                                  ys + (i - 1) + offset[:, :, k, 0], xs + (j - 1) + offset[:, :, k, 1])
        taps.append(sampled * mask[:, :, k].unsqueeze(2))
    columns = torch.stack(taps, 3).reshape(b, c, 9, h, w)
    return torch.einsum("ock,bckhw->bohw", weight.reshape(weight.shape[0], c, 9), columns) + bias.view(1, -1, 1, 1)


def oracle_alignment(align, x, extra, flow_1, flow_2):
    """The second-order deformable alignment from its equations (Eq. 6 of the BasicVSR++ paper, the
    references' ``SecondOrderDeformableAlignment.forward``)."""
    o1, o2, mask = torch.chunk(align.conv_offset(torch.cat([extra, flow_1, flow_2], 1)), 3, 1)
    residue = align.max_residue_magnitude * torch.tanh(torch.cat([o1, o2], 1))
    half = residue.shape[1] // 2
    # every (dy, dx) pair of the first half of the groups moves around flow_1, the second half around flow_2
    flows = torch.cat([flow_1.flip(1).repeat(1, half // 2, 1, 1), flow_2.flip(1).repeat(1, half // 2, 1, 1)], 1)
    return oracle_deform_conv(x, residue + flows, torch.sigmoid(mask), align.weight, align.bias)


def oracle_propagate(model, feats, flows, name):
    """One branch as BasicSR's ``propagate``: ``feats[name]`` filled in processing order, reversed at the end
    of a backward branch."""
    n, steps, _, h, w = flows.shape
    frames = list(range(steps + 1))
    flow_of = list(range(-1, steps))  # forward: step i reads flows[:, i - 1]
    if name.startswith("backward"):
        frames = frames[::-1]
        flow_of = frames  # backward: step i (frame idx) reads flows[:, idx]
    prop = flows.new_zeros(n, model.mid_channels, h, w)
    for i, idx in enumerate(frames):
        current = feats["spatial"][idx]
        if i > 0:
            flow_1 = flows[:, flow_of[i]]
            cond_1 = reference_flow_warp(prop, flow_1.permute(0, 2, 3, 1))
            feat_2, flow_2, cond_2 = torch.zeros_like(prop), torch.zeros_like(flow_1), torch.zeros_like(cond_1)
            if i > 1:
                feat_2 = feats[name][-2]
                flow_2 = flow_1 + reference_flow_warp(flows[:, flow_of[i - 1]], flow_1.permute(0, 2, 3, 1))
                cond_2 = reference_flow_warp(feat_2, flow_2.permute(0, 2, 3, 1))
            prop = oracle_alignment(model.deform_align[name], torch.cat([prop, feat_2], 1),
                                    torch.cat([cond_1, current, cond_2], 1), flow_1, flow_2)
        others = [feats[k][idx] for k in feats if k not in ("spatial", name)]
        prop = prop + model.backbone[name](torch.cat([current, *others, prop], 1))
        feats[name].append(prop)
    if name.startswith("backward"):
        feats[name] = feats[name][::-1]


def oracle_forward(model, lqs):
    """BasicSR's ``BasicVSRPlusPlus.forward`` (LR input, no CPU cache, never the mirror shortcut)."""
    n, t, c, h, w = lqs.shape
    before, after = lqs[:, :-1].reshape(-1, c, h, w), lqs[:, 1:].reshape(-1, c, h, w)
    flows = {"backward": model.spynet(before, after).view(n, t - 1, 2, h, w),
             "forward": model.spynet(after, before).view(n, t - 1, 2, h, w)}
    feats = {"spatial": [model.feat_extract(lqs[:, i]) for i in range(t)]}
    for iteration in (1, 2):
        for direction in ("backward", "forward"):
            name = f"{direction}_{iteration}"
            feats[name] = []
            oracle_propagate(model, feats, flows[direction], name)
    outputs = []
    for i in range(t):
        hr = model.reconstruction(torch.cat([feats[k][i] for k in feats], 1))
        hr = F.leaky_relu(F.pixel_shuffle(model.upconv1(hr), 2), 0.1)
        hr = F.leaky_relu(F.pixel_shuffle(model.upconv2(hr), 2), 0.1)
        hr = model.conv_last(F.leaky_relu(model.conv_hr(hr), 0.1))
        outputs.append(hr + F.interpolate(lqs[:, i], scale_factor=4, mode="bilinear", align_corners=False))
    return torch.stack(outputs, 1)


# ---------------------------------------------------------------------------------------
# Helpers

def num_params(module):
    return sum(p.numel() for p in module.parameters())


def shapes_of(model):
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def small_model(seed=0, dtype=torch.float64, mid_channels=4, deformable_groups=4, num_blocks=1, **kwargs):
    """A tiny BasicVSR++ whose last offset convs are random (offsets away from the flows, masks away
    from 0.5) and whose SpyNet is PyTorch's random init with its flow heads scaled up (flows of a pixel
    or more, where the random init gives a fraction): the alignment matters."""
    torch.manual_seed(seed)
    model = BasicVSRPlusPlus(mid_channels=mid_channels, num_blocks=num_blocks, deformable_groups=deformable_groups,
                             hr_feat=8, **kwargs).to(dtype)
    with torch.no_grad():
        for level in model.spynet.basic_module:
            level.basic_module[-1].weight.mul_(10)
            level.basic_module[-1].bias.mul_(10)
        for align in model.deform_align.values():
            align.conv_offset[-1].weight.normal_(0, 0.05)
            align.conv_offset[-1].bias.normal_(0, 0.3)
    return model


def outputs_and_grads(model, x, forward):
    model.zero_grad(set_to_none=True)
    out = forward(x)
    (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)).sum().backward()
    return out.detach(), {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}


def assert_same(a, b, atol=1e-10, grad_rtol=1e-9):
    (out_a, grads_a), (out_b, grads_b) = a, b
    torch.testing.assert_close(out_a, out_b, atol=atol, rtol=0)
    assert grads_a.keys() == grads_b.keys()
    for name, g in grads_b.items():
        error = (grads_a[name] - g).norm() / g.norm().clamp_min(1e-30)
        assert error <= grad_rtol, f"{name}: relative gradient error {error:.2e}"


def read_key_listing(path):
    """``name (d0, d1, ...)`` per line -> {name: shape}, in file order."""
    keys = {}
    for line in path.read_text().splitlines():
        m = re.fullmatch(r"(\S+) \(([\d, ]*)\)", line.strip())
        assert m, f"unexpected line in {path}: {line!r}"
        keys[m[1]] = tuple(int(v) for v in m[2].split(",") if v.strip())
    return keys


# ---------------------------------------------------------------------------------------
# Sizes and names

def test_parameter_counts_match_basicsr():
    model = build_model("basicvsrpp")
    assert isinstance(model, BasicVSRPlusPlus)
    assert num_params(model) == 7_322_927
    assert num_params(model) - num_params(model.spynet) == 5_882_627
    assert len(model.state_dict()) == 274
    shapes = shapes_of(model)
    assert shapes["deform_align.forward_2.conv_offset.0.weight"] == (64, 3 * 64 + 4, 3, 3)
    assert shapes["deform_align.forward_2.conv_offset.6.weight"] == (27 * 16, 64, 3, 3)
    assert [shapes[f"backbone.{b}.main.0.weight"][1] for b in BRANCHES] == [128, 192, 256, 320]


def test_state_dict_matches_basicsr_reference_file():
    shared = shared_data_dir()
    path = shared.parent / "reference" / "keys" / "basicvsrpp_64_7.txt" if shared else None
    if path is None or not path.is_file():
        pytest.skip("BasicSR key listing (shared/reference/keys/basicvsrpp_64_7.txt) not found")
    reference = read_key_listing(path)
    mine = shapes_of(build_model("basicvsrpp"))
    assert mine == reference
    assert list(mine) == list(reference)  # the same order too, as BasicSR creates the modules


def test_weights_name_their_configuration():
    assert infer_config(build_model("basicvsrpp").state_dict()) == ("basicvsrpp", {})
    assert infer_config(build_model("basicvsrpp_cpu").state_dict()) == ("basicvsrpp_cpu", {})
    odd = BasicVSRPlusPlus(mid_channels=8, num_blocks=3, deformable_groups=8).state_dict()
    assert infer_config(odd) == ("basicvsrpp", dict(mid_channels=8, num_blocks=3, deformable_groups=8,
                                                    hr_feat=64, spynet_width=1.0))
    assert infer_config(build_model("basicvsr_m").state_dict()) == ("basicvsr_m", {})  # not taken for a BasicVSR


def test_alignment_init_is_the_references():
    torch.manual_seed(0)
    align = SecondOrderDeformableAlignment(16, 8, deformable_groups=4)
    bound = 1 / (16 * 9) ** 0.5
    assert align.weight.abs().max() <= bound and align.weight.abs().max() > 0.9 * bound
    assert not align.bias.any() and not align.conv_offset[-1].weight.any() and not align.conv_offset[-1].bias.any()
    extra, flow_1, flow_2 = torch.rand(2, 24, 5, 6), torch.randn(2, 2, 5, 6), torch.randn(2, 2, 5, 6)
    offset, mask = align.offset_and_mask(extra, flow_1, flow_2)
    # zero residue: every tap of the first two groups moves by flow_1 as (dy, dx), of the last two by flow_2
    pairs = offset.view(2, 4, 9, 2, 5, 6)
    torch.testing.assert_close(pairs[:, :2], flow_1.flip(1)[:, None, None].expand(2, 2, 9, 2, 5, 6))
    torch.testing.assert_close(pairs[:, 2:], flow_2.flip(1)[:, None, None].expand(2, 2, 9, 2, 5, 6))
    assert torch.equal(mask, torch.full((2, 36, 5, 6), 0.5))


@pytest.mark.parametrize("groups", [3, 6, 1])
def test_alignment_groups_must_split_the_two_features(groups):
    with pytest.raises(ValueError, match=f"deformable_groups must be even.*got {groups}"):
        SecondOrderDeformableAlignment(16, 8, deformable_groups=groups)


# ---------------------------------------------------------------------------------------
# The forward against the oracle

@pytest.mark.parametrize("b,t,h,w,mid,groups", [(2, 5, 12, 16, 4, 4), (1, 4, 20, 20, 8, 16)])
def test_forward_equals_oracle(b, t, h, w, mid, groups):
    """Outputs and gradients in float64; second-order steps from the third frame of each branch on."""
    model = small_model(mid_channels=mid, deformable_groups=groups)
    x = torch.rand(b, t, 3, h, w, dtype=torch.float64)
    with torch.no_grad():  # the alignment has work to do: sizeable flows, residues and masks
        flows = model.compute_flows(x)[1]
        align = model.deform_align["backward_1"]
        features = torch.cat([torch.rand(b, 3 * mid, h, w, dtype=torch.float64), flows[:, 0], flows[:, 1]], 1)
        residue = align.max_residue_magnitude * torch.tanh(align.conv_offset(features)[:, : 18 * groups])
        mask = align.offset_and_mask(features[:, : 3 * mid], flows[:, 0], flows[:, 1])[1]
    assert flows.abs().max() > 1 and residue.abs().max() > 1 and (mask - 0.5).abs().max() > 0.1
    fast = outputs_and_grads(model, x, model)
    ref = outputs_and_grads(model, x, lambda v: oracle_forward(model, v))
    # at these sizes SpyNet's pyramid is short: its coarsest modules take no part (spynet.pyramid_levels)
    used = {n for n in dict(model.named_parameters()) if not n.startswith("spynet.")}
    assert used <= set(fast[1])
    assert_same(fast, ref)


def test_every_branch_aligns_with_its_own_module():
    """Changing one branch's alignment changes the output: each of the four is used."""
    model = small_model()
    x = torch.rand(1, 3, 3, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        before = model(x)
        for name in BRANCHES:
            model.deform_align[name].weight.add_(0.1)
            after = model(x)
            assert not torch.allclose(after, before, atol=1e-6), name
            before = after


# ---------------------------------------------------------------------------------------
# Mirror-extended clips

def spynet_batches(model):
    sizes = []
    handle = model.spynet.register_forward_hook(lambda m, args, out: sizes.append(args[0].shape[0]))
    return sizes, handle


def test_mirror_extended_clip_reuses_the_backward_flows():
    model = small_model()
    half = torch.rand(2, 3, 3, 12, 12, dtype=torch.float64)
    mirrored = torch.cat([half, half.flip(1)], 1)  # 6 frames, frame i = frame 5 - i
    ordinary = torch.rand(2, 6, 3, 12, 12, dtype=torch.float64)
    assert is_mirror_extended(mirrored) and not is_mirror_extended(ordinary)
    assert not is_mirror_extended(torch.cat([half, half[:, :1]], 1))  # odd length
    nearly = mirrored.clone()
    nearly[1, 4, 0, 3, 3] += 1e-9  # one value of one clip differs
    assert not is_mirror_extended(nearly)

    with torch.no_grad():
        for a, b in zip(model.compute_flows(mirrored, mirrored=True), model.compute_flows(mirrored)):
            torch.testing.assert_close(a, b, atol=1e-12, rtol=0)
    sizes, handle = spynet_batches(model)
    try:
        mirror_run = outputs_and_grads(model, mirrored, model)
        assert sizes == [2 * 5]  # one SpyNet call on the 5 backward pairs of each clip
        ordinary_run = outputs_and_grads(model, ordinary, model)  # the check is per call, not remembered
        assert sizes == [2 * 5, 2 * 2 * 5]
    finally:
        handle.remove()
    assert_same(mirror_run, outputs_and_grads(model, mirrored, lambda v: oracle_forward(model, v)))
    assert_same(ordinary_run, outputs_and_grads(model, ordinary, lambda v: oracle_forward(model, v)))


# ---------------------------------------------------------------------------------------
# Shapes

@pytest.mark.parametrize("b,t,h,w", [(2, 3, 16, 16), (1, 3, 32, 32), (1, 2, 64, 64), (1, 3, 20, 28), (2, 1, 16, 16)])
def test_output_shapes_below_and_at_64_px(b, t, h, w):
    """The references assert LR inputs of at least 64 px; here 16 and 32 px run (SpyNet's shorter pyramid)."""
    torch.manual_seed(0)
    model = build_model("basicvsrpp_cpu")
    with torch.no_grad():
        out = model(torch.rand(b, t, 3, h, w))
    assert out.shape == (b, t, 3, 4 * h, 4 * w)
    assert torch.isfinite(out).all()


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match=r"\(b, t, 3, h, w\), got \(2, 3, 16, 16\)"):
        build_model("basicvsrpp_cpu")(torch.rand(2, 3, 16, 16))


# ---------------------------------------------------------------------------------------
# Checkpoints: BasicSR's and MMagic's layouts, written here from those projects' names

def mmagic_name(name):
    """MMagic ``BasicVSRPlusPlusNet``'s name of a BasicSR name: SPyNet's ConvModules (numbered 0..4,
    ``.conv``) and the PixelShufflePack upsamplers; the rest is named alike."""
    m = re.fullmatch(r"spynet\.basic_module\.(\d)\.basic_module\.(\d)\.(weight|bias)", name)
    if m:
        return f"spynet.basic_module.{m[1]}.basic_module.{int(m[2]) // 2}.conv.{m[3]}"
    return re.sub(r"^upconv([12])\.", r"upsample\1.upsample_conv.", name)


def test_basicsr_and_mmagic_checkpoints_load(tmp_path):
    source = small_model(seed=0, dtype=torch.float32)
    state = source.state_dict()
    files = {
        "basicsr_ddp.pth": {"params": {f"module.{k}": v for k, v in state.items()}},
        "basicsr_ema.pth": {"params_ema": state},
        "mmagic.pth": {"meta": {"mmagic_version": "1.2.0"},
                       "state_dict": {**{f"generator.{mmagic_name(k)}": v for k, v in state.items()},
                                      "step_counter": torch.zeros(1)}},
    }
    mm = files["mmagic.pth"]["state_dict"]
    assert "generator.upsample1.upsample_conv.weight" in mm and "generator.upconv1.weight" not in mm
    assert "generator.spynet.basic_module.5.basic_module.4.conv.bias" in mm
    x = torch.rand(1, 3, 3, 12, 16)
    with torch.no_grad():
        expected = source(x)
    for name, content in files.items():
        torch.save(content, tmp_path / name)
        target = small_model(seed=1, dtype=torch.float32)
        result = load_pretrained(target, tmp_path / name, key="auto")
        assert result.missing == [] and result.unexpected == []
        with torch.no_grad():
            assert torch.equal(target(x), expected), name


def test_full_size_mmagic_checkpoint_names_its_configuration(tmp_path):
    torch.manual_seed(0)
    source = build_model("basicvsrpp")
    path = tmp_path / "basicvsr_plusplus_c64n7_8x1_600k_reds4.pth"
    torch.save({"meta": {}, "state_dict": {f"generator.{mmagic_name(k)}": v for k, v in source.state_dict().items()}},
               path)
    state = read_state_dict(path)
    assert infer_config(state) == ("basicvsrpp", {})
    torch.manual_seed(1)
    target = build_model("basicvsrpp")
    load_pretrained(target, path)
    assert all(torch.equal(v, target.state_dict()[k]) for k, v in source.state_dict().items())


def test_spynet_file_and_flow_recipe(tmp_path):
    torch.manual_seed(0)
    donor = build_model("basicvsr", num_feat=4, num_block=1)
    path = tmp_path / "spynet_sintel_final-3d2a1287.pth"
    torch.save({"params": {k: v for k, v in donor.spynet.state_dict().items() if k.startswith("basic_module.")}}, path)
    model = BasicVSRPlusPlus(mid_channels=4, num_blocks=1, deformable_groups=4, spynet_path=path)
    assert all(torch.equal(v, model.spynet.state_dict()[k]) for k, v in donor.spynet.state_dict().items())
    full = tmp_path / "basicvsrpp_mmagic.pth"  # the fine-tuned SpyNet of a full BasicVSR++ checkpoint
    torch.save({"state_dict": {f"generator.{mmagic_name(k)}": v for k, v in model.state_dict().items()}}, full)
    torch.manual_seed(1)
    again = BasicVSRPlusPlus(mid_channels=4, num_blocks=1, deformable_groups=4, spynet_path=full)
    assert all(torch.equal(v, again.spynet.state_dict()[k]) for k, v in donor.spynet.state_dict().items())
    with pytest.raises(SpynetRequiredError, match="--spynet"):
        flow_init("basicvsrpp", None)
    assert flow_init("basicvsrpp", path).overrides == {"spynet_path": path.resolve()}
    assert flow_init("basicvsrpp_cpu", None).file is None
    with pytest.raises(MgvsrError, match="learns its own SpyNet"):
        flow_init("basicvsrpp_cpu", path)


# ---------------------------------------------------------------------------------------
# The protocol

def test_protocol():
    model = small_model(dtype=torch.float32)
    spynet = set(map(id, model.spynet.parameters()))
    assert set(map(id, protocol.flow_parameters(model))) == spynet
    assert set(map(id, protocol.warm_start_frozen(model, "flow"))) == spynet
    with pytest.raises(MgvsrError, match="no 'fusion-only' warm start"):
        protocol.warm_start_frozen(model, "fusion-only")
    assert protocol.sliding_window(model) is None and protocol.patch_multiple(model) == 1
    assert not protocol.prefers_channels_last(model, "cpu", "bf16")


def test_frozen_spynet_builds_no_graph():
    model = small_model(dtype=torch.float32)
    model.spynet.requires_grad_(False)
    model(torch.rand(1, 3, 3, 12, 12)).sum().backward()
    assert all(p.grad is None for p in model.spynet.parameters())
    assert all(p.grad is not None for n, p in model.named_parameters() if not n.startswith("spynet."))


# ---------------------------------------------------------------------------------------
# Mixed precision

def test_bf16_autocast_keeps_alignment_and_flows_in_fp32():
    model = small_model(dtype=torch.float32, mid_channels=8)
    x = torch.rand(1, 4, 3, 12, 12)
    seen = {}

    def record(name):
        def hook(module, args, out):
            seen.setdefault(name, []).append((args, out))
        return hook

    handles = [model.spynet.register_forward_hook(record("spynet")),
               model.feat_extract.register_forward_hook(record("feat_extract")),
               model.deform_align["forward_2"].conv_offset.register_forward_hook(record("conv_offset")),
               model.deform_align["forward_2"].register_forward_hook(record("align"))]
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(x)
    finally:
        for h in handles:
            h.remove()
    assert seen["feat_extract"][0][1].dtype == torch.bfloat16  # the convolutions: autocast's dtype
    assert seen["conv_offset"][0][1].dtype == torch.bfloat16
    assert seen["spynet"][0][1].dtype == torch.float32  # the flows
    assert out.dtype == torch.float32

    align = model.deform_align["forward_2"]
    args, aligned = seen["align"][-1]  # the last step: second-order, both flows non-zero
    feat, extra, flow_1, flow_2 = args
    assert flow_1.dtype == flow_2.dtype == torch.float32 and flow_2.abs().max() > 0
    with torch.autocast("cpu", dtype=torch.bfloat16):
        offset, mask = align.offset_and_mask(extra, flow_1, flow_2)
        unguarded = deform_conv2d(feat, offset, align.weight, align.bias, padding=1, mask=mask)
    assert offset.dtype == mask.dtype == torch.float32
    assert aligned.dtype == feat.dtype
    fp32 = deform_conv2d(feat.float(), offset, align.weight, align.bias, padding=1, mask=mask)
    error = ((aligned.float() - fp32).norm() / fp32.norm()).item()
    error_bf16 = ((unguarded.float() - fp32).norm() / fp32.norm()).item()
    assert error < 1e-6 < 1e-4 < error_bf16  # the deformable convolution ran in fp32, not in bf16


# ---------------------------------------------------------------------------------------
# The CPU configuration

def test_cpu_configuration_trains_at_16_px_and_4_frames():
    torch.manual_seed(0)
    model = build_model("basicvsrpp_cpu")
    assert num_params(model) == 384_919
    assert (model.mid_channels, model.hr_feat, model.spynet.basic_module[0].basic_module[0].out_channels) == (16, 16, 8)
    assert model.spynet.outputs_zero_flow()
    assert all(a.deformable_groups == 4 and len(b.main[2]) == 2
               for a, b in zip(model.deform_align.values(), model.backbone.values()))
    x = torch.rand(2, 4, 3, 16, 16)
    out = model(x)
    # fast_start: the zero conv_last makes the output the bilinear skip at first
    skip = F.interpolate(x.flatten(0, 1), scale_factor=4, mode="bilinear", align_corners=False)
    torch.testing.assert_close(out, skip.view(2, 4, 3, 64, 64))
    (out - torch.rand_like(out)).square().mean().backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert grads["conv_last.weight"].abs().max() > 0
    assert all(grads[f"backbone.{b}.main.0.weight"] is not None for b in BRANCHES)
    # one more step reaches the alignment: its offsets start learning
    with torch.no_grad():
        for p in model.parameters():
            if p.grad is not None:
                p.sub_(1e-2 * p.grad.sign())
    model.zero_grad()
    model(x).square().mean().backward()
    assert all(model.deform_align[b].conv_offset[-1].weight.grad.abs().max() > 0 for b in BRANCHES)


# ---------------------------------------------------------------------------------------
# The CPU feature cache

def test_cpu_cache_gives_the_same_output():
    """The cached path (features extracted per frame, kept on the CPU between steps, reconstruction output
    on the CPU) gives the same outputs and gradients.  On a CPU the moves cost nothing: forced here."""
    model = small_model(cpu_cache_length=2)
    x = torch.rand(1, 4, 3, 12, 12, dtype=torch.float64)
    assert not model.uses_cpu_cache(x)  # the references' rule: only for an input on an accelerator
    assert not small_model(cpu_cache_length=None).uses_cpu_cache(x)
    assert_same(outputs_and_grads(model, x, lambda v: model(v, cpu_cache=True)),
                outputs_and_grads(model, x, lambda v: model(v, cpu_cache=False)))


def test_the_trainer_trains_the_cpu_configuration(tmp_path):
    """The real trainer on the sample clips at 16x16 LR patches and 4 frames: SpyNet frozen for the first
    step, then trained at its multiplier; the final weights name their configuration and load."""
    from mgvsr.data.sample import sample_source
    from mgvsr.models import load_model
    from mgvsr.runs import read_log
    from mgvsr.schedule import Plan, Stage
    from mgvsr.options import TrainConfig
    from mgvsr.train import Trainer

    torch.manual_seed(0)
    model = build_model("basicvsrpp_cpu")
    frozen = []
    model.register_forward_pre_hook(lambda m, args: frozen.append(not any(p.requires_grad for p in m.spynet.parameters())))
    cfg = TrainConfig(progress=False, frozen_iters=1, flow_lr_mult=0.25, device="cpu")
    trainer = Trainer(model, Plan((Stage(3, 16, 4, 2, 1e-3),)), sample_source("train"), tmp_path, cfg)
    summary = trainer.run()
    assert summary["it"] == 3 and frozen == [True, False, False]
    steps = [r for r in read_log(tmp_path / "log.jsonl") if r["event"] == "step"]
    assert len(steps) == 3 and all(0 < r["loss"] < 1 for r in steps)
    groups = {g["name"]: g for g in trainer.optimizer.param_groups}
    assert groups["flow"]["lr"] == pytest.approx(0.25 * groups["main"]["lr"])
    state = read_state_dict(tmp_path / "final.pth")
    assert infer_config(state) == ("basicvsrpp_cpu", {})
    loaded = load_model("basicvsrpp_cpu", tmp_path / "final.pth")
    assert all(torch.equal(v, state[k]) for k, v in loaded.state_dict().items())


@pytest.mark.parametrize("forced, inside", [("1", True), ("0", False)])
def test_an_amp_run_says_the_alignment_runs_in_fp32_inside_autocast(tmp_path, monkeypatch, forced, inside):
    """``--amp``: the run log's precision note says that the deformable alignment runs in fp32 inside the
    autocast region (where autocast is on: bf16 forced with MGVSR_BF16=1; off with 0)."""
    from mgvsr.data.sample import sample_source
    from mgvsr.device import BF16_ENV
    from mgvsr.options import TrainConfig
    from mgvsr.runs import read_log
    from mgvsr.schedule import Plan, Stage
    from mgvsr.train import Trainer

    monkeypatch.setenv(BF16_ENV, forced)
    torch.manual_seed(0)
    model = BasicVSRPlusPlus(mid_channels=4, num_blocks=1, deformable_groups=2, hr_feat=4, spynet_width=0.25)
    Trainer(model, Plan((Stage(1, 16, 3, 1, 1e-3),)), sample_source("train"), tmp_path,
            TrainConfig(progress=False, amp=True, device="cpu")).run()
    start = read_log(tmp_path / "log.jsonl")[0]
    assert start["precision"] == ("bf16" if inside else "fp32")
    said = "BasicVSR++'s deformable alignment (offsets, masks, deformable convolutions; the flows too) in fp32 " \
           "inside the autocast region"
    assert (said in start["precision_note"]) == inside
    assert protocol.fp32_in_autocast(build_model("edvr_cpu")).startswith("EDVR's deformable convolutions")
    assert protocol.fp32_in_autocast(build_model("basicvsr_cpu")) == ""
