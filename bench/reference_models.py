"""The references' equations written independently of mgvsr, for tests and benchmarks.

BasicSR is not a dependency, so its forwards are written here plainly, the way BasicSR writes them,
on mgvsr's modules and weights (only the layers are mgvsr's; the loops, warps and pyramids are
these functions'):

- :func:`reference_flow_warp`: BasicSR's ``flow_warp`` (the pixel grid rebuilt at every call);
- :func:`reference_spynet`: BasicSR's SpyNet forward (it fails at 32 px and below, where
  :func:`mgvsr_spynet`, mgvsr's own SpyNet, stands in);
- :func:`basicvsr_reference_forward`: BasicSR's ``BasicVSR.forward`` (two SpyNet calls, then the
  reconstruction of each frame inside the forward loop);
- :func:`edvr_reference_forward`: BasicSR's ``EDVR.forward`` (the PCD alignment frame by frame, with
  BasicSR's ``.clone()`` of every pyramid level).

They are the oracles of ``tests/test_models_basicvsr.py``, ``tests/test_edvr.py`` and
``tests/test_basicvsrpp.py`` (outputs and gradients equal to mgvsr's batched forwards) and the
reference that ``bench/bench_reference.py`` and ``bench/bench_basicvsr_step.py`` time against.
:class:`ReferenceModel` makes such a forward a model :class:`mgvsr.step.TrainStep` trains, so the
reference's steps are the same steps as ours but for the forward.

Tests import this module (``sys.path`` holding ``bench/``); benchmarks run beside it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from mgvsr.models.protocol import VSRModel, sliding_window

__all__ = ["reference_flow_warp", "reference_spynet", "mgvsr_spynet", "basicvsr_reference_forward",
           "edvr_reference_forward", "ReferenceModel", "reference_model"]


def reference_flow_warp(x: torch.Tensor, flow: torch.Tensor, padding_mode: str = "zeros") -> torch.Tensor:
    """BasicSR's ``flow_warp``: build the pixel grid, add the flow, normalise, grid_sample.
    ``x`` ``(n, c, h, w)``, ``flow`` ``(n, h, w, 2)`` in pixels."""
    _, _, h, w = x.shape
    grid_y, grid_x = torch.meshgrid(torch.arange(0, h).type_as(x), torch.arange(0, w).type_as(x), indexing="ij")
    grid = torch.stack((grid_x, grid_y), 2)
    vgrid = grid + flow
    vgrid_x = 2.0 * vgrid[:, :, :, 0] / max(w - 1, 1) - 1.0
    vgrid_y = 2.0 * vgrid[:, :, :, 1] / max(h - 1, 1) - 1.0
    return F.grid_sample(x, torch.stack((vgrid_x, vgrid_y), dim=3), mode="bilinear",
                         padding_mode=padding_mode, align_corners=True)


def reference_spynet(spynet: nn.Module, ref: torch.Tensor, supp: torch.Tensor) -> torch.Tensor:
    """BasicSR's SpyNet forward on ``spynet``'s layers: the flow ``(n, 2, h, w)`` from ``ref`` to ``supp``
    ``(n, 3, h, w)`` (its ``process`` starts from ``floor(size / 64)``, so it fails for sizes of 32 px or less)."""
    h, w = ref.shape[2:]
    h_up, w_up = math.ceil(h / 32) * 32, math.ceil(w / 32) * 32
    ref = F.interpolate(ref, size=(h_up, w_up), mode="bilinear", align_corners=False)
    supp = F.interpolate(supp, size=(h_up, w_up), mode="bilinear", align_corners=False)
    refs = [(ref - spynet.mean) / spynet.std]
    supps = [(supp - spynet.mean) / spynet.std]
    for _ in range(5):
        refs.insert(0, F.avg_pool2d(refs[0], kernel_size=2, stride=2, count_include_pad=False))
        supps.insert(0, F.avg_pool2d(supps[0], kernel_size=2, stride=2, count_include_pad=False))
    flow = refs[0].new_zeros([refs[0].size(0), 2, refs[0].size(2) // 2, refs[0].size(3) // 2])
    for level in range(len(refs)):
        up = F.interpolate(flow, scale_factor=2, mode="bilinear", align_corners=True) * 2.0
        if up.size(2) != refs[level].size(2):
            up = F.pad(up, [0, 0, 0, 1], mode="replicate")
        if up.size(3) != refs[level].size(3):
            up = F.pad(up, [0, 1, 0, 0], mode="replicate")
        warped = reference_flow_warp(supps[level], up.permute(0, 2, 3, 1), padding_mode="border")
        flow = spynet.basic_module[level](torch.cat([refs[level], warped, up], 1)) + up
    flow = F.interpolate(flow, size=(h, w), mode="bilinear", align_corners=False)
    flow[:, 0, :, :] *= float(w) / float(w_up)
    flow[:, 1, :, :] *= float(h) / float(h_up)
    return flow


def mgvsr_spynet(spynet: nn.Module, ref: torch.Tensor, supp: torch.Tensor) -> torch.Tensor:
    """mgvsr's own SpyNet, called as :func:`reference_spynet` is (where BasicSR's fails: 32 px and below)."""
    return spynet(ref, supp)


def basicvsr_reference_forward(model: nn.Module, x: torch.Tensor, spynet_fn=reference_spynet) -> torch.Tensor:
    """BasicSR's ``BasicVSR.forward`` on ``model``'s layers, ``(b, t, 3, h, w) -> (b, t, 3, 4h, 4w)``: two
    SpyNet calls (``spynet_fn``), then per-frame loops with the reconstruction of each frame inside the
    forward loop."""
    b, n, c, h, w = x.shape
    x_1 = x[:, :-1].reshape(-1, c, h, w)
    x_2 = x[:, 1:].reshape(-1, c, h, w)
    flows_backward = spynet_fn(model.spynet, x_1, x_2).view(b, n - 1, 2, h, w)
    flows_forward = spynet_fn(model.spynet, x_2, x_1).view(b, n - 1, 2, h, w)

    out_l = []
    feat_prop = x.new_zeros(b, model.num_feat, h, w)
    for i in range(n - 1, -1, -1):
        x_i = x[:, i]
        if i < n - 1:
            feat_prop = reference_flow_warp(feat_prop, flows_backward[:, i].permute(0, 2, 3, 1))
        feat_prop = model.backward_trunk(torch.cat([x_i, feat_prop], dim=1))
        out_l.insert(0, feat_prop)

    feat_prop = torch.zeros_like(feat_prop)
    for i in range(0, n):
        x_i = x[:, i]
        if i > 0:
            feat_prop = reference_flow_warp(feat_prop, flows_forward[:, i - 1].permute(0, 2, 3, 1))
        feat_prop = model.forward_trunk(torch.cat([x_i, feat_prop], dim=1))
        out = torch.cat([out_l[i], feat_prop], dim=1)
        out = model.lrelu(model.fusion(out))
        out = model.lrelu(model.pixel_shuffle(model.upconv1(out)))
        out = model.lrelu(model.pixel_shuffle(model.upconv2(out)))
        out = model.lrelu(model.conv_hr(out))
        out = model.conv_last(out)
        out += F.interpolate(x_i, scale_factor=4, mode="bilinear", align_corners=False)
        out_l[i] = out
    return torch.stack(out_l, dim=1)


def edvr_reference_forward(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """BasicSR's ``EDVR.forward`` (``hr_in=False``, no pre-deblurring) on ``model``'s layers,
    ``(b, t, 3, h, w) -> (b, 3, 4h, 4w)``: features of all frames at once, then the PCD alignment frame
    by frame in a loop (with BasicSR's ``.clone()`` of every level), stacked, fused, reconstructed."""
    b, t, c, h, w = x.size()
    x_center = x[:, model.center_frame_idx, :, :, :].contiguous()
    feat_l1 = F.leaky_relu(model.conv_first(x.view(-1, c, h, w)), 0.1)
    feat_l1 = model.feature_extraction(feat_l1)
    feat_l2 = F.leaky_relu(model.conv_l2_1(feat_l1), 0.1)
    feat_l2 = F.leaky_relu(model.conv_l2_2(feat_l2), 0.1)
    feat_l3 = F.leaky_relu(model.conv_l3_1(feat_l2), 0.1)
    feat_l3 = F.leaky_relu(model.conv_l3_2(feat_l3), 0.1)
    feat_l1 = feat_l1.view(b, t, -1, h, w)
    feat_l2 = feat_l2.view(b, t, -1, h // 2, w // 2)
    feat_l3 = feat_l3.view(b, t, -1, h // 4, w // 4)
    idx = model.center_frame_idx
    ref_feat_l = [feat_l1[:, idx].clone(), feat_l2[:, idx].clone(), feat_l3[:, idx].clone()]
    aligned_feat = []
    for i in range(t):
        nbr_feat_l = [feat_l1[:, i].clone(), feat_l2[:, i].clone(), feat_l3[:, i].clone()]
        aligned_feat.append(model.pcd_align(nbr_feat_l, ref_feat_l))
    aligned_feat = torch.stack(aligned_feat, dim=1)  # (b, t, c, h, w)
    if not model.with_tsa:
        aligned_feat = aligned_feat.view(b, -1, h, w)
    feat = model.fusion(aligned_feat)
    out = model.reconstruction(feat)
    out = F.leaky_relu(F.pixel_shuffle(model.upconv1(out), 2), 0.1)
    out = F.leaky_relu(F.pixel_shuffle(model.upconv2(out), 2), 0.1)
    out = F.leaky_relu(model.conv_hr(out), 0.1)
    out = model.conv_last(out)
    return out + F.interpolate(x_center, scale_factor=4, mode="bilinear", align_corners=False)


class ReferenceModel(VSRModel):
    """``model`` whose forward is ``forward(model, x)`` (a reference's equations on its layers): the same
    parameters, flow network, warm starts and targets, so :class:`mgvsr.step.TrainStep` trains it as it
    trains ``model``.  It declares no ``channels_last`` preference (the reference runs as written)."""

    def __init__(self, model: VSRModel, forward: Callable[[nn.Module, torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.model = model
        self.reference = forward
        self.scale, self.num_frame = model.scale, model.num_frame
        self.center_frame_idx, self.patch_multiple = model.center_frame_idx, model.patch_multiple

    def flow_parameters(self) -> list[nn.Parameter]:
        return self.model.flow_parameters()

    def warm_start_frozen(self, recipe: str) -> list[nn.Parameter]:
        return self.model.warm_start_frozen(recipe)

    def target(self, gt: torch.Tensor) -> torch.Tensor:
        return self.model.target(gt)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.reference(self.model, x)


def reference_model(model: VSRModel, patch: int) -> ReferenceModel:
    """``model`` (a BasicVSR or an EDVR of mgvsr) with its family's reference forward at LR patches of
    ``patch`` px: EDVR's, or BasicVSR's (with mgvsr's SpyNet at 32 px and below, where BasicSR's fails)."""
    if sliding_window(model) is not None:
        return ReferenceModel(model, edvr_reference_forward)
    if patch <= 32:
        return ReferenceModel(model, lambda m, x: basicvsr_reference_forward(m, x, spynet_fn=mgvsr_spynet))
    return ReferenceModel(model, basicvsr_reference_forward)
