"""BasicVSR, SpyNet and flow_warp: sizes, BasicSR's names, and the fast forward against a
straightforward per-frame forward written the way BasicSR writes it (the oracle).

The oracle functions (``reference_*``, ``basicvsr_reference_forward``) live in
``bench/reference_models.py`` (the references' equations, written independently of mgvsr), where
``bench/bench_basicvsr_step.py`` and ``bench/bench_reference.py`` time them against the fast
implementation.
"""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from mgvsr.models import basicvsr as basicvsr_module
from mgvsr.models import build_model
from mgvsr.models.basicvsr import BasicVSR, ConvResidualBlocks
from mgvsr.models.ops import flow_warp
from mgvsr.models.spynet import SpyNet, zero_init_flow_heads
from mgvsr.paths import shared_data_dir

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from reference_models import (  # noqa: E402
    basicvsr_reference_forward,
    mgvsr_spynet,
    reference_flow_warp,
    reference_spynet,
)


# ---------------------------------------------------------------------------------------
# Sizes and names

def num_params(module):
    return sum(p.numel() for p in module.parameters())


def test_parameter_counts_match_basicsr():
    full = build_model("basicvsr")
    assert num_params(full) == 6_291_311
    assert num_params(full.spynet) == 1_440_300
    assert num_params(full.backward_trunk) == 2_254_336
    assert num_params(ConvResidualBlocks(64 + 3, 64, 30)) == 2_254_336
    assert num_params(build_model("basicvsr_m")) == 4_075_631


def expected_basicsr_keys(num_feat, num_block):
    """BasicSR BasicVSR's state-dict names and shapes, as docs/paper-reading.md lists them."""
    keys = {"spynet.mean": (1, 3, 1, 1), "spynet.std": (1, 3, 1, 1)}
    channels = [8, 32, 64, 32, 16, 2]
    for level in range(6):
        for j in range(5):
            name = f"spynet.basic_module.{level}.basic_module.{2 * j}"
            keys[f"{name}.weight"] = (channels[j + 1], channels[j], 7, 7)
            keys[f"{name}.bias"] = (channels[j + 1],)
    for branch in ("backward", "forward"):
        keys[f"{branch}_trunk.main.0.weight"] = (num_feat, num_feat + 3, 3, 3)
        keys[f"{branch}_trunk.main.0.bias"] = (num_feat,)
        for i in range(num_block):
            for conv in ("conv1", "conv2"):
                keys[f"{branch}_trunk.main.2.{i}.{conv}.weight"] = (num_feat, num_feat, 3, 3)
                keys[f"{branch}_trunk.main.2.{i}.{conv}.bias"] = (num_feat,)
    for name, shape in [("fusion", (num_feat, 2 * num_feat, 1, 1)), ("upconv1", (4 * num_feat, num_feat, 3, 3)),
                        ("upconv2", (256, num_feat, 3, 3)), ("conv_hr", (64, 64, 3, 3)), ("conv_last", (3, 64, 3, 3))]:
        keys[f"{name}.weight"] = shape
        keys[f"{name}.bias"] = (shape[0],)
    return keys


def shapes_of(model):
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


@pytest.mark.parametrize("num_feat,num_block", [(64, 30), (16, 2)])
def test_state_dict_names_and_shapes(num_feat, num_block):
    model = BasicVSR(num_feat=num_feat, num_block=num_block)
    assert shapes_of(model) == expected_basicsr_keys(num_feat, num_block)


def test_state_dict_matches_basicsr_reference_file():
    shared = shared_data_dir()
    path = shared.parent / "reference" / "keys" / "basicvsr_64_30.txt" if shared else None
    if path is None or not path.is_file():
        pytest.skip("BasicSR key listing (shared/reference/keys/basicvsr_64_30.txt) not found")
    reference = {}
    for line in path.read_text().splitlines():
        m = re.fullmatch(r"(\S+) \(([\d, ]*)\)", line.strip())
        assert m, f"unexpected line in {path}: {line!r}"
        reference[m[1]] = tuple(int(v) for v in m[2].split(",") if v.strip())
    assert shapes_of(build_model("basicvsr")) == reference


def test_spynet_buffers_are_persistent_imagenet_stats():
    spynet = SpyNet()
    assert torch.allclose(spynet.mean.flatten(), torch.tensor([0.485, 0.456, 0.406]))
    assert torch.allclose(spynet.std.flatten(), torch.tensor([0.229, 0.224, 0.225]))
    assert {"mean", "std"} <= set(spynet.state_dict())


def test_residual_blocks_have_scaled_kaiming_init():
    torch.manual_seed(0)
    trunk = ConvResidualBlocks(67, 64, 4)
    weights = torch.cat([b.conv1.weight.flatten() for b in trunk.main[2]])
    # kaiming normal (fan_in 576, gain sqrt 2) x 0.1: std 0.1 * sqrt(2 / 576) = 0.00589
    assert weights.std().item() == pytest.approx(0.1 * math.sqrt(2 / 576), rel=0.05)
    assert all(b.conv2.bias.abs().max() == 0 for b in trunk.main[2])


def test_cpu_preset_is_registered():
    model = build_model("basicvsr_cpu")
    assert isinstance(model, BasicVSR)
    assert model.num_feat == 16 and len(model.forward_trunk.main[2]) == 2


# ---------------------------------------------------------------------------------------
# flow_warp

def test_flow_warp_zero_flow_is_identity():
    x = torch.rand(2, 5, 7, 9, dtype=torch.float64)
    zero = torch.zeros(2, 7, 9, 2, dtype=torch.float64)
    assert torch.allclose(flow_warp(x, zero), x, atol=1e-12)
    assert torch.allclose(flow_warp(x, zero, padding_mode="border"), x, atol=1e-12)


def test_flow_warp_one_pixel_shift():
    x = torch.arange(6 * 8, dtype=torch.float64).view(1, 1, 6, 8)
    flow_x = torch.zeros(1, 6, 8, 2, dtype=torch.float64)
    flow_x[..., 0] = 1.0  # channel 0 = x: sample the right-hand neighbour
    out = flow_warp(x, flow_x)
    assert torch.allclose(out[..., :, :-1], x[..., :, 1:], atol=1e-9)
    assert torch.all(out[..., :, -1] == 0)  # outside the image: zero padding for features
    border = flow_warp(x, flow_x, padding_mode="border")
    assert torch.allclose(border[..., :, -1], x[..., :, -1], atol=1e-9)

    flow_y = torch.zeros(1, 6, 8, 2, dtype=torch.float64)
    flow_y[..., 1] = 1.0  # channel 1 = y: sample the pixel below
    assert torch.allclose(flow_warp(x, flow_y)[..., :-1, :], x[..., 1:, :], atol=1e-9)


def test_flow_warp_matches_basicsr_formula():
    torch.manual_seed(0)
    x = torch.rand(3, 4, 10, 13)
    flow = torch.randn(3, 10, 13, 2) * 3
    assert torch.equal(flow_warp(x, flow), reference_flow_warp(x, flow))


def test_flow_warp_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="flow"):
        flow_warp(torch.rand(1, 3, 8, 8), torch.zeros(1, 8, 9, 2))


# ---------------------------------------------------------------------------------------
# SpyNet

@pytest.mark.parametrize("size", [(64, 64), (40, 72), (33, 47)])
def test_spynet_equals_basicsr_where_basicsr_works(size):
    torch.manual_seed(0)
    spynet = SpyNet().double()
    ref, supp = torch.rand(2, 2, 3, *size, dtype=torch.float64)
    with torch.no_grad():
        expected = reference_spynet(spynet, ref, supp)
        assert torch.allclose(spynet(ref, supp), expected, atol=1e-12, rtol=0)


@pytest.mark.parametrize("size", [(32, 32), (16, 16), (20, 40)])
def test_spynet_small_inputs(size):
    torch.manual_seed(0)
    spynet = SpyNet()
    ref, supp = torch.rand(2, 3, 3, *size)
    with torch.no_grad():
        flow = spynet(ref, supp)
    assert flow.shape == (3, 2, *size)
    assert torch.isfinite(flow).all() and flow.abs().max() > 0  # random init: non-zero flow
    if size == (32, 32):
        with pytest.raises(RuntimeError):  # BasicSR's version: its coarsest flow is 0x0
            reference_spynet(spynet, ref, supp)


def test_spynet_small_input_uses_a_shorter_pyramid():
    """Below 32 px: as many levels as leave the coarsest >= 1 px, run by the finest modules."""
    from mgvsr.models.spynet import pyramid_levels

    assert [pyramid_levels(s, s) for s in (64, 32, 31, 16, 8, 1)] == [6, 6, 5, 5, 4, 1]
    assert pyramid_levels(20, 40) == 5
    torch.manual_seed(0)
    spynet = SpyNet().double()
    ref, supp = torch.rand(2, 1, 3, 16, 16, dtype=torch.float64)
    with torch.no_grad():
        flow16 = spynet(ref, supp)
        big = [F.interpolate(v, size=(32, 32), mode="bilinear", align_corners=False) for v in (ref, supp)]
        flow32 = spynet(*big)
        spynet.basic_module[0].basic_module[0].weight.add_(1.0)  # the coarsest module
        assert torch.equal(spynet(ref, supp), flow16)  # not used at 16 px: five levels, 16 .. 1
        assert not torch.equal(spynet(*big), flow32)  # used at 32 px: six levels, 32 .. 1
        assert torch.equal(flow16, spynet.compute_flow(ref, supp, levels=5))


def test_zero_init_spynet_outputs_zero_flow_and_still_learns():
    torch.manual_seed(0)
    spynet = SpyNet()
    zero_init_flow_heads(spynet)
    ref, supp = torch.rand(2, 2, 3, 32, 48)
    flow = spynet(ref, supp)
    assert torch.equal(flow, torch.zeros_like(flow))
    (flow * torch.randn_like(flow)).sum().backward()
    heads = [m.basic_module[-1].weight.grad for m in spynet.basic_module]
    assert all(g is not None and g.abs().max() > 0 for g in heads)


def test_spynet_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="same shape"):
        SpyNet()(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 64))


# ---------------------------------------------------------------------------------------
# BasicVSR forward

@pytest.mark.parametrize("b,t,h,w", [(2, 3, 32, 32), (1, 2, 33, 47), (1, 3, 16, 16), (2, 1, 20, 24)])
def test_forward_shapes(b, t, h, w):
    torch.manual_seed(0)
    model = BasicVSR(num_feat=8, num_block=1)
    with torch.no_grad():
        out = model(torch.rand(b, t, 3, h, w))
    assert out.shape == (b, t, 3, 4 * h, 4 * w)
    assert torch.isfinite(out).all()


def test_forward_rejects_wrong_layout():
    with pytest.raises(ValueError, match=r"\(b, t, 3, h, w\)"):
        BasicVSR(num_feat=8, num_block=1)(torch.rand(2, 3, 32, 32))


def small_model_and_clip(h, w, t=3, b=2, dtype=torch.float64, seed=0, **kwargs):
    torch.manual_seed(seed)
    model = BasicVSR(num_feat=8, num_block=2, **kwargs).to(dtype)
    x = torch.rand(b, t, 3, h, w, dtype=dtype)
    return model, x


def grads_after(model, x, forward):
    model.zero_grad(set_to_none=True)
    out = forward(model, x)
    weight = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)
    (out * weight).sum().backward()
    return out.detach(), {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}


def assert_same_outputs_and_grads(fast, ref, atol, grad_rtol):
    (out_fast, grads_fast), (out_ref, grads_ref) = fast, ref
    assert torch.allclose(out_fast, out_ref, atol=atol, rtol=0), (out_fast - out_ref).abs().max()
    assert grads_fast.keys() == grads_ref.keys()
    for name, g_ref in grads_ref.items():
        error = (grads_fast[name] - g_ref).norm() / g_ref.norm().clamp_min(1e-30)
        assert error <= grad_rtol, f"{name}: relative gradient error {error:.2e}"


def test_fast_forward_equals_basicsr_per_frame_reference():
    """Against BasicSR's whole algorithm (SpyNet included), float32, sizes above 32 px."""
    model, x = small_model_and_clip(36, 44, t=3, b=1, dtype=torch.float32)
    fast = grads_after(model, x, lambda m, v: m(v))
    ref = grads_after(model, x, basicvsr_reference_forward)
    assert len(fast[1]) == len(dict(model.named_parameters()))  # SpyNet's included
    assert_same_outputs_and_grads(fast, ref, atol=1e-5, grad_rtol=1e-4)


def test_fast_forward_equals_per_frame_reference_float64():
    """The loops, flow batching and batched reconstruction, tightly, at an odd small size."""
    model, x = small_model_and_clip(12, 20, t=3, b=2)
    fast = grads_after(model, x, lambda m, v: m(v))
    ref = grads_after(model, x, lambda m, v: basicvsr_reference_forward(m, v, spynet_fn=mgvsr_spynet))
    # at 12 px SpyNet's pyramid has four levels: its two coarsest modules take no part
    unused = {n for n, _ in model.named_parameters() if n.startswith(("spynet.basic_module.0.", "spynet.basic_module.1."))}
    assert set(fast[1]) == set(dict(model.named_parameters())) - unused
    assert_same_outputs_and_grads(fast, ref, atol=1e-12, grad_rtol=1e-10)


def test_chunked_reconstruction_equals_one_call(monkeypatch):
    model, x = small_model_and_clip(12, 20, t=3, b=1)
    with torch.no_grad():
        monkeypatch.setattr(basicvsr_module, "RECON_CHUNK_ELEMENTS", 10**9)
        whole = model(x)
        # one 64-channel HR frame of 48x80 has 245,760 elements: chunks of 2 frames, then 1
        monkeypatch.setattr(basicvsr_module, "RECON_CHUNK_ELEMENTS", 2 * 64 * 48 * 80)
        chunked = model(x)
        monkeypatch.setattr(basicvsr_module, "RECON_CHUNK_ELEMENTS", 1)
        per_frame = model(x)
    assert torch.allclose(whole, chunked, atol=1e-12, rtol=0)
    assert torch.allclose(whole, per_frame, atol=1e-12, rtol=0)



def test_reconstruction_chunks_on_a_cpu_and_for_inference_only():
    cpu, cuda = torch.device("cpu"), torch.device("cuda", 0)
    assert basicvsr_module.reconstructs_in_chunks(cpu, building_graph=True)
    assert basicvsr_module.reconstructs_in_chunks(cpu, building_graph=False)
    assert basicvsr_module.reconstructs_in_chunks(cuda, building_graph=False)
    assert not basicvsr_module.reconstructs_in_chunks(cuda, building_graph=True)


def count_reconstruct_calls(model, monkeypatch):
    calls = []
    inner = model._reconstruct
    monkeypatch.setattr(model, "_reconstruct", lambda f, l: calls.append(f.shape[0]) or inner(f, l))
    return calls


def test_reconstruction_chunks_by_device_and_graph(monkeypatch):
    """The default decides per call: chunks on the CPU with or without a graph; on another device
    (here "meta", shapes only, as CUDA would) all frames at once while training, chunks without a graph."""
    model, x = small_model_and_clip(8, 8, t=5, b=1, dtype=torch.float32)
    monkeypatch.setattr(basicvsr_module, "RECON_CHUNK_ELEMENTS", 2 * 64 * 16 * 8 * 8)  # 2 frames a chunk
    calls = count_reconstruct_calls(model, monkeypatch)
    model(x)
    with torch.no_grad():
        model(x)
    assert calls == [2, 2, 1, 2, 2, 1]
    model.to("meta")
    calls.clear()
    feats, lr = torch.empty(5, 16, 8, 8, device="meta"), torch.empty(5, 3, 8, 8, device="meta")
    model.reconstruct(feats, lr)
    with torch.no_grad():
        model.reconstruct(feats, lr)
    model.requires_grad_(False)
    model.reconstruct(feats, lr)  # nothing to train: no graph
    assert calls == [5, 2, 2, 1, 2, 2, 1]


def test_chunked_and_unchunked_reconstruction_agree_float32_with_gradients(monkeypatch):
    """Chunks or all frames at once: the same outputs and gradients, to fp32 rounding."""
    model, _ = small_model_and_clip(8, 12, dtype=torch.float32)
    monkeypatch.setattr(basicvsr_module, "RECON_CHUNK_ELEMENTS", 2 * 64 * 16 * 8 * 12)
    calls = count_reconstruct_calls(model, monkeypatch)
    gen = torch.Generator().manual_seed(3)
    feats, lr = torch.randn(7, 16, 8, 12, generator=gen), torch.rand(7, 3, 8, 12, generator=gen)
    results = []
    for chunked in (True, False):
        model.zero_grad(set_to_none=True)
        f = feats.clone().requires_grad_()
        out = model.reconstruct(f, lr, chunked=chunked)
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        results.append((out.detach(), f.grad, {k: p.grad for k, p in model.named_parameters() if p.grad is not None}))
    assert calls == [2, 2, 2, 1, 7]
    (out_c, gf_c, gp_c), (out_u, gf_u, gp_u) = results
    torch.testing.assert_close(out_c, out_u, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(gf_c, gf_u, rtol=1e-4, atol=1e-6)
    assert gp_c.keys() == gp_u.keys() and len(gp_c) == 10  # fusion, upconv1, upconv2, conv_hr, conv_last
    for name in gp_c:  # sums over all frames in another order: relative error ~5e-6 measured
        error = (gp_c[name] - gp_u[name]).norm() / gp_u[name].norm()
        assert error < 1e-4, f"{name}: relative gradient error {error:.2e}"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_training_reconstructs_all_frames_at_once_with_the_same_numbers(monkeypatch):
    model, x = small_model_and_clip(32, 32, t=4, b=2, dtype=torch.float32)
    model, x = model.cuda(), x.cuda()
    calls = count_reconstruct_calls(model, monkeypatch)
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        trained = model(x)
        with torch.no_grad():
            inferred = model(x)
    assert calls[0] == 8 and len(calls) > 2  # training: one call; inference: chunks of RECON_CHUNK_ELEMENTS
    torch.testing.assert_close(trained.detach(), inferred, rtol=1e-4, atol=1e-5)

def test_frozen_spynet_builds_no_graph():
    model, x = small_model_and_clip(32, 32, dtype=torch.float32)
    model.spynet.requires_grad_(False)
    flows_forward, flows_backward = model.compute_flows(x)
    assert flows_forward.grad_fn is None and not flows_backward.requires_grad
    model(x).sum().backward()
    assert all(p.grad is None for p in model.spynet.parameters())
    assert all(p.grad is not None for n, p in model.named_parameters() if not n.startswith("spynet."))


def test_trainable_spynet_gets_gradients():
    model, x = small_model_and_clip(32, 32, dtype=torch.float32)
    model(x).sum().backward()
    assert all(p.grad is not None and p.grad.abs().max() > 0 for p in model.spynet.parameters())


def test_spynet_zero_init_option():
    model, x = small_model_and_clip(32, 32, dtype=torch.float32, spynet_zero_init=True)
    flows_forward, flows_backward = model.compute_flows(x)
    assert flows_forward.abs().max() == 0 and flows_backward.abs().max() == 0
    assert flows_forward.requires_grad  # trainable: computed, so that SpyNet learns
    with pytest.raises(ValueError, match="spynet_zero_init"):
        BasicVSR(num_feat=8, num_block=1, spynet_path="weights.pth", spynet_zero_init=True)


def test_frozen_zero_init_spynet_is_skipped_exactly(monkeypatch):
    model, x = small_model_and_clip(20, 28, dtype=torch.float32, spynet_zero_init=True)
    computed = model(x).detach()  # SpyNet trainable: its (zero) flows are computed
    model.spynet.requires_grad_(False)
    assert model.spynet.outputs_zero_flow()
    calls = []
    monkeypatch.setattr(model.spynet, "forward", lambda *a: calls.append(a))
    skipped = model(x)
    assert calls == []  # SpyNet never ran
    assert torch.equal(skipped.detach(), computed)
    with torch.no_grad():
        model.spynet.basic_module[3].basic_module[-1].bias[0] = 1e-3
    assert not model.spynet.outputs_zero_flow()


def test_hr_feat_option():
    model = BasicVSR(num_feat=8, num_block=1, hr_feat=16)
    assert model.conv_hr.weight.shape == (16, 16, 3, 3) and model.upconv2.weight.shape == (64, 8, 3, 3)
    with torch.no_grad():
        assert model(torch.rand(1, 2, 3, 16, 20)).shape == (1, 2, 3, 64, 80)
