"""BasicVSR (Chan et al., CVPR 2021), x4, with BasicSR's parameter names and math.

The network, for a clip ``x`` of ``t`` frames ``(b, t, 3, h, w)``:

1. **Flow.** SpyNet flows between neighbouring frames, both ways.
2. **Backward propagation** (frame ``t-1`` down to 0): a feature ``f`` (``num_feat``
   channels, zero at the start) is warped from frame ``i+1`` to frame ``i`` by the flow,
   concatenated with frame ``i`` and passed through ``backward_trunk`` (a conv and
   ``num_block`` residual blocks); the result is frame ``i``'s backward feature.
3. **Forward propagation** (frame 0 up to ``t-1``): the same with ``forward_trunk``.
4. **Reconstruction**, per frame: the two features are fused by a 1x1 conv, upsampled by
   two conv + pixel-shuffle x2 steps, ``conv_hr``, ``conv_last`` (3 channels), and added
   to the frame upsampled x4 bilinearly.  Output ``(b, t, 3, 4h, 4w)``.

Steps 2 and 3 are sequential in time.  Steps 1 and 4 are not: this implementation
computes all flows in one SpyNet call and the sampling grids of all of them at once,
and reconstructs after the loops, over frames taken together: in cache-sized chunks on a
CPU and for inference, all at once when training on a GPU (:func:`reconstructs_in_chunks`)
(BasicSR calls SpyNet twice, rebuilds the grid at every warp and reconstructs frame by
frame inside the forward loop).  The numbers are the same: ``tests/test_models_basicvsr.py``
holds a BasicSR-style per-frame forward and checks that both agree, outputs and
gradients.  The gain is small for BasicSR's architecture on a CPU, whose cost is
arithmetic (SpyNet's 7x7 convolutions, and ``conv_hr``: 64 channels at 4h x 4w whatever
``num_feat``), not per-call overhead: see ``bench/bench_basicvsr_step.py``.

SpyNet: ``model.spynet`` (a trainer may freeze it or give it its own learning rate).
When none of its parameters requires a gradient, flows are computed under
``torch.no_grad()`` so that no graph is built through it.

**Long clips in bounded memory** (:meth:`BasicVSR.stream`).  BasicVSR on a whole 100-frame
320x180 REDS clip keeps two features of 64 x 180 x 320 per frame (2.9 GB in float32) plus
SpyNet's activations for all 198 frame pairs at once.  ``stream(x, segment=S)`` runs the same
computation in pieces of ``S`` frames and gives the same result (to float rounding; equal on
CPU in ``tests/test_eval_protocols.py``):

1. SpyNet on a few frame pairs at a time (flows are per pair of frames);
2. the backward branch once over the clip, keeping only its feature at every segment start
   (a checkpoint: ``t / S`` features);
3. segment by segment, in time order: the backward features of the segment recomputed from
   the checkpoint after it (the same operations on the same inputs), the forward branch
   carried on from the previous segment, and the segment's frames reconstructed.

Memory is ``O(S + t / S)`` features instead of ``O(t)``, for about one more pass of the
backward trunk.  Splitting the clip into independent overlapping pieces instead would
change the result (the recurrence would not see the whole clip), and spatial tiles would
change the flows at tile borders: both are approximations, this is not.

**Weights** (:func:`config_from_weights`): the constructor arguments of a state dict in
BasicSR's names, read from its tensors' shapes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from mgvsr.models.blocks import fast_start_init, make_layer
from mgvsr.models.ops import flow_to_grid, grid_warp
from mgvsr.models.protocol import VSRModel
from mgvsr.models.spynet import NUM_LEVELS, SpyNet, pyramid_levels, zero_init_flow_heads

# The reconstruction runs in chunks of frames whose largest tensor (``hr_feat`` channels
# at 4h x 4w per frame) has at most this many elements (8 MiB of float32): on a CPU the
# high-resolution convolutions run fastest on cache-sized pieces (measured on 2 cores:
# 1-2 frames of 32x32 per call beat both BasicSR's per-frame batch and all frames in one
# call, see bench/bench_basicvsr_step.py), and whole-clip inference stays bounded in memory.
# Where the chunks pay: see :func:`reconstructs_in_chunks` (not when training on a GPU).
RECON_CHUNK_ELEMENTS = 2 * 1024 * 1024
# Frame pairs per SpyNet call in segmented inference (:meth:`BasicVSR.stream`): its 7x7
# convolutions keep 64 channels at the full (padded) LR size per image, ~16 MB per image at 320x180.
FLOW_PAIRS = 4


def reconstructs_in_chunks(device: torch.device, building_graph: bool) -> bool:
    """Whether :meth:`BasicVSR.reconstruct` splits its frames into chunks of at most
    :data:`RECON_CHUNK_ELEMENTS` per high-resolution tensor, on ``device`` when autograd records a
    graph (``building_graph``: training) or not (inference).

    Always on a CPU (cache-sized pieces run faster there, training and inference alike); on an
    accelerator (CUDA) only without a graph: inference keeps its memory bounded, while a training
    step keeps every chunk's activations for the backward pass anyway, so chunks would save no
    memory and cost ``b x t / chunk`` small kernel launches per layer instead of one.  The numbers
    are the same either way (to float rounding: ``tests/test_models_basicvsr.py``); the speed of
    both: ``python bench/bench_recon_chunk.py --device cuda``.
    """
    return device.type == "cpu" or not building_graph


class ConvResidualBlocks(nn.Module):
    """A conv (``num_in_ch -> num_out_ch``), LeakyReLU 0.1, then ``num_block`` residual blocks."""

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 64, num_block: int = 15) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(num_in_ch, num_out_ch, 3, 1, 1, bias=True),
            nn.LeakyReLU(negative_slope=0.1, inplace=True),
            make_layer(num_block, num_out_ch),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x)


class SpyNetVSR(VSRModel):
    """What BasicVSR and BasicVSR++ share beyond :class:`VSRModel`: a ``spynet`` attribute that gives the
    flows (frozen at first by the ``"flow"`` warm start, short of its coarsest levels below 32 px) and
    the x4 upsampling tail (``upconv1``, ``upconv2``, ``conv_hr``, ``conv_last``, ``pixel_shuffle``,
    ``lrelu``) over a bilinear upsampling of the LR frame."""

    # ---- the protocol (mgvsr.models.protocol) ------------------------------------------------
    def flow_parameters(self) -> list[nn.Parameter]:
        return list(self.spynet.parameters())

    def all_parameters_used(self, patch: int) -> bool:
        """Below 32 px SpyNet's pyramid is shorter (:func:`mgvsr.models.spynet.pyramid_levels`): its
        coarsest levels get no gradient."""
        return pyramid_levels(patch, patch) == NUM_LEVELS

    def warm_start_frozen(self, recipe: str) -> list[nn.Parameter]:
        """``"flow"``: SpyNet stays fixed at first (BasicSR's ``fix_flow``, MMagic's ``fix_iter``)."""
        if recipe == "flow":
            return self.flow_parameters()
        return super().warm_start_frozen(recipe)

    def upsample_tail(self, out: torch.Tensor, lr: torch.Tensor) -> torch.Tensor:
        """The fused features ``out`` ``(n, c, h, w)`` and ``lr`` ``(n, 3, h, w)`` -> ``(n, 3, 4h, 4w)``."""
        out = self.lrelu(self.pixel_shuffle(self.upconv1(out)))
        out = self.lrelu(self.pixel_shuffle(self.upconv2(out)))
        out = self.lrelu(self.conv_hr(out))
        out = self.conv_last(out)
        return out + F.interpolate(lr, scale_factor=4, mode="bilinear", align_corners=False)


class BasicVSR(SpyNetVSR):
    """BasicVSR x4: ``forward(x (b, t, 3, h, w)) -> (b, t, 3, 4h, 4w)``, RGB in [0, 1].

    Args:
        num_feat: channels of the propagated features (64 in the paper).
        num_block: residual blocks per propagation branch (30 in the paper, 15 in BasicSR's
            class default).
        spynet_path: a pretrained SpyNet file (``spynet_sintel_final-3d2a1287.pth``).
        spynet_zero_init: start an untrained SpyNet at zero flow (identity warps) instead
            of PyTorch's random init (BasicSR's behaviour, the default); see
            :func:`mgvsr.models.spynet.zero_init_flow_heads`.
        hr_feat: channels of the high-resolution tail (``upconv2``'s output, ``conv_hr``).
            BasicSR fixes it at 64 whatever ``num_feat``; keep 64 to load BasicSR weights.
            It dominates the cost of small models on a CPU (``conv_hr`` runs 64 -> 64
            channels at 4h x 4w), so a CPU preset may lower it: a deviation from BasicVSR.
        spynet_width: SpyNet's hidden channels relative to the original (1); a CPU preset
            trained from scratch may lower it (a deviation from BasicVSR; same names).
        fast_start: initialise the plain convolutions outside the residual blocks and SpyNet for
            a fast start from scratch (:func:`mgvsr.models.blocks.fast_start_init`: He init of the
            trunks' first convs, ``fusion`` and ``conv_hr``, ICNR of ``upconv1``/``upconv2``, a zero
            ``conv_last``) instead of PyTorch's default (BasicSR's).  Only the initial weights change.
    """

    # channels_last measured faster on a CPU for every configuration and shape, in fp32 (1.10-1.38x)
    # and bf16 (1.15-1.61x): `python bench/bench_channels_last.py`, torch 2.13.0, 1 thread
    channels_last_on = frozenset({("cpu", "fp32"), ("cpu", "bf16")})

    def __init__(self, num_feat: int = 64, num_block: int = 15, spynet_path: str | Path | None = None,
                 spynet_zero_init: bool = False, hr_feat: int = 64, spynet_width: float = 1.0,
                 fast_start: bool = False) -> None:
        super().__init__()
        if spynet_path is not None and spynet_zero_init:
            raise ValueError("spynet_zero_init=True would erase the pretrained SpyNet from spynet_path; pick one")
        self.num_feat = num_feat
        self.hr_feat = hr_feat
        self.spynet = SpyNet(spynet_path, width=spynet_width)
        if spynet_zero_init:
            zero_init_flow_heads(self.spynet)
        self.backward_trunk = ConvResidualBlocks(num_feat + 3, num_feat, num_block)
        self.forward_trunk = ConvResidualBlocks(num_feat + 3, num_feat, num_block)
        self.fusion = nn.Conv2d(num_feat * 2, num_feat, 1, 1, 0, bias=True)
        self.upconv1 = nn.Conv2d(num_feat, num_feat * 4, 3, 1, 1, bias=True)
        self.upconv2 = nn.Conv2d(num_feat, hr_feat * 4, 3, 1, 1, bias=True)
        self.conv_hr = nn.Conv2d(hr_feat, hr_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(hr_feat, 3, 3, 1, 1)
        self.pixel_shuffle = nn.PixelShuffle(2)
        self.lrelu = nn.LeakyReLU(negative_slope=0.1, inplace=True)
        if fast_start:
            fast_start_init([self.backward_trunk.main[0], self.forward_trunk.main[0], self.fusion, self.conv_hr],
                            shuffled=[self.upconv1, self.upconv2], last=self.conv_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5 or x.shape[2] != 3:
            raise ValueError(f"BasicVSR expects (b, t, 3, h, w), got {tuple(x.shape)}")
        b, t, _, h, w = x.shape
        frames = x.transpose(0, 1)  # (t, b, 3, h, w): frames[i] is frame i of every clip
        grids_forward, grids_backward = self.compute_grids(x)
        feats_backward = self.propagate(frames, grids_backward, self.backward_trunk, reverse=True)
        feats_forward = self.propagate(frames, grids_forward, self.forward_trunk, reverse=False)
        feats = torch.cat([torch.stack(feats_backward, 1), torch.stack(feats_forward, 1)], 2)
        out = self.reconstruct(feats.flatten(0, 1), x.flatten(0, 1))
        return out.view(b, t, 3, 4 * h, 4 * w)

    def compute_flows(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """SpyNet flows ``(forward, backward)``, each ``(b, t-1, 2, h, w)``: :func:`neighbour_flows`."""
        return neighbour_flows(self.spynet, x)

    def compute_grids(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Sampling grids of the flows, ``(t-1, b, h, w, 2)`` each (frame-major: one slice per step)."""
        b, t, _, h, w = x.shape
        if t == 1:
            empty = x.new_zeros(0, b, h, w, 2)
            return empty, empty
        flows_forward, flows_backward = self.compute_flows(x)
        flows = torch.stack([flows_forward, flows_backward])  # (2, b, t-1, 2, h, w)
        grids = flow_to_grid(flows.permute(0, 2, 1, 4, 5, 3).reshape(-1, h, w, 2))
        grids = grids.view(2, t - 1, b, h, w, 2)
        return grids[0], grids[1]

    def propagate(self, frames: torch.Tensor, grids: torch.Tensor, trunk: nn.Module,
                  reverse: bool) -> list[torch.Tensor]:
        """One recurrent branch over ``frames`` ``(t, b, 3, h, w)``; a ``(b, num_feat, h, w)`` per frame.

        ``grids[j]`` warps the feature of the previous step onto step ``j``'s frame: frame
        ``j+1`` onto ``j`` going backward, frame ``j`` onto ``j+1`` going forward.
        """
        t, b, _, h, w = frames.shape
        order = range(t - 1, -1, -1) if reverse else range(t)
        feats: list[torch.Tensor] = [None] * t  # type: ignore[list-item]
        feat = frames.new_zeros(b, self.num_feat, h, w)
        for step, i in enumerate(order):
            if step > 0:
                feat = grid_warp(feat, grids[i if reverse else i - 1])
            feat = trunk(torch.cat([frames[i], feat], 1))
            feats[i] = feat
        return feats

    def reconstruct(self, feats: torch.Tensor, lr: torch.Tensor, chunked: bool | None = None) -> torch.Tensor:
        """Per-frame upsampling: ``feats`` ``(n, 2 num_feat, h, w)``, ``lr`` ``(n, 3, h, w)`` ->
        ``(n, 3, 4h, 4w)``, ``n`` frames (any batch and time order).

        chunked: run the frames in chunks of at most ``RECON_CHUNK_ELEMENTS`` per high-resolution
        tensor (True) or all at once (False); None (the default) decides by
        :func:`reconstructs_in_chunks` (chunks on a CPU and for inference, all at once when
        training on a GPU).  The same numbers either way."""
        n, _, h, w = feats.shape
        if chunked is None:
            tail = (self.fusion, self.upconv1, self.upconv2, self.conv_hr, self.conv_last)
            building_graph = torch.is_grad_enabled() and (feats.requires_grad or lr.requires_grad or any(
                p.requires_grad for m in tail for p in m.parameters()))
            chunked = reconstructs_in_chunks(feats.device, building_graph)
        chunk = max(1, RECON_CHUNK_ELEMENTS // (self.hr_feat * 16 * h * w)) if chunked else n
        if chunk >= n:
            return self._reconstruct(feats, lr)
        return torch.cat([self._reconstruct(f, l) for f, l in zip(feats.split(chunk), lr.split(chunk))])

    def _reconstruct(self, feats: torch.Tensor, lr: torch.Tensor) -> torch.Tensor:
        return self.upsample_tail(self.lrelu(self.fusion(feats)), lr)

    # ---- long clips in segments (the module docstring) ---------------------------------------
    def _step(self, trunk: nn.Module, frame: torch.Tensor, feat: torch.Tensor | None,
              grid: torch.Tensor | None) -> torch.Tensor:
        """One step of a branch, as :meth:`propagate`: warp the carried feature, fuse the frame."""
        if feat is None:
            b, _, h, w = frame.shape
            feat = frame.new_zeros(b, self.num_feat, h, w)
        else:
            feat = grid_warp(feat, grid)
        return trunk(torch.cat([frame, feat], 1))

    def stream(self, x: torch.Tensor, segment: int | None = None) -> Iterator[tuple[int, torch.Tensor]]:
        """The output frames on ``x`` ``(1, t, 3, h, w)`` as ``(start, (n, 3, 4h, 4w))`` pieces in time
        order: in segments of ``segment`` frames (equal to ``self(x)``, see the module docstring), or
        the whole clip at once when ``segment`` is None or not shorter than the clip.  A subclass that
        changes :meth:`forward` runs whole clips (its forward may not segment this way)."""
        b, t, _, h, w = x.shape
        if segment is not None and segment < 1:
            raise ValueError(f"segment must be a positive number of frames or None, got {segment}")
        if not segment or segment >= t or type(self).forward is not BasicVSR.forward:
            yield 0, self(x)[0]
            return
        frames = x.transpose(0, 1)  # (t, b, 3, h, w)
        # 1. flows of all neighbouring pairs (small: 2 x (t-1) x h x w x 2), SpyNet on a few pairs at a time
        pairs = min(segment, FLOW_PAIRS)
        parts = [self.compute_grids(x[:, s : min(s + pairs, t - 1) + 1]) for s in range(0, t - 1, pairs)]
        grids_forward = torch.cat([p[0] for p in parts])  # (t-1, b, h, w, 2)
        grids_backward = torch.cat([p[1] for p in parts])
        # 2. the backward branch once, keeping the feature of every segment start
        checkpoints: dict[int, torch.Tensor] = {}
        feat = None
        for i in range(t - 1, 0, -1):
            feat = self._step(self.backward_trunk, frames[i], feat, grids_backward[i] if feat is not None else None)
            if i % segment == 0:
                checkpoints[i] = feat
        del feat
        # 3. segment by segment: backward features again from the checkpoint after it, forward, reconstruction
        feat_forward = None
        for s in range(0, t, segment):
            e = min(s + segment, t)
            feat = checkpoints.pop(e, None)
            backward = [None] * (e - s)
            for i in range(e - 1, s - 1, -1):
                feat = self._step(self.backward_trunk, frames[i], feat, grids_backward[i] if feat is not None else None)
                backward[i - s] = feat
            forward = []
            for i in range(s, e):
                grid = grids_forward[i - 1] if feat_forward is not None else None
                feat_forward = self._step(self.forward_trunk, frames[i], feat_forward, grid)
                forward.append(feat_forward)
            feats = torch.cat([torch.stack(backward, 1), torch.stack(forward, 1)], 2)  # (b, n, 2c, h, w)
            out = self.reconstruct(feats.flatten(0, 1), x[:, s:e].flatten(0, 1))
            yield s, out.view(b, e - s, 3, 4 * h, 4 * w)[0]


def neighbour_flows(spynet: SpyNet, x: torch.Tensor, mirrored: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """SpyNet flows between neighbouring frames of ``x`` ``(b, t, 3, h, w)``: ``(forward, backward)``,
    each ``(b, t-1, 2, h, w)``, in one SpyNet call.

    ``backward[:, i]`` is the flow from frame ``i`` to ``i+1`` (it warps frame ``i+1``'s feature
    onto frame ``i``); ``forward[:, i]`` from frame ``i+1`` to ``i``.  ``mirrored``: ``x`` is a
    mirror-extended clip (frame ``i`` equals frame ``t-1-i``), whose forward flows are its backward
    flows reversed in time: SpyNet then runs on the backward pairs only.  Without gradients when
    SpyNet is frozen (and ``x`` needs none); not computed at all when SpyNet is also
    zero-initialised (:meth:`SpyNet.outputs_zero_flow`).
    """
    b, t, c, h, w = x.shape
    needs_grad = torch.is_grad_enabled() and (
        x.requires_grad or any(p.requires_grad for p in spynet.parameters()))
    if t < 2 or (not needs_grad and spynet.outputs_zero_flow()):
        # no pairs, or a frozen, zero-initialised SpyNet: its flows are exactly zero, skip computing them
        zeros = x.new_zeros(b, max(t - 1, 0), 2, h, w)
        return zeros, zeros
    x_1 = x[:, :-1].reshape(-1, c, h, w)
    x_2 = x[:, 1:].reshape(-1, c, h, w)
    with torch.set_grad_enabled(needs_grad):
        if mirrored:
            backward = spynet(x_1, x_2).view(b, t - 1, 2, h, w)
            return backward.flip(1), backward
        flows = spynet(torch.cat([x_1, x_2]), torch.cat([x_2, x_1])).view(2, b, t - 1, 2, h, w)
    return flows[1], flows[0]


def config_from_weights(state: Mapping[str, torch.Tensor]) -> dict | None:
    """The constructor arguments (``num_feat``, ``num_block``, ``hr_feat``, ``spynet_width``) of the
    BasicVSR whose weights ``state`` holds (BasicSR's names), or None when it is not a BasicVSR."""
    if "backward_trunk.main.0.weight" not in state:
        return None
    blocks = {int(k.split(".")[3]) for k in state if k.startswith("backward_trunk.main.2.")}
    return dict(num_feat=int(state["backward_trunk.main.0.weight"].shape[0]),
                num_block=max(blocks) + 1 if blocks else 0,
                hr_feat=int(state["conv_hr.weight"].shape[0]) if "conv_hr.weight" in state else 64,
                spynet_width=state["spynet.basic_module.0.basic_module.0.weight"].shape[0] / 32)
