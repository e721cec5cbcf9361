"""BasicVSR++ (Chan, Zhou, Xu, Loy, CVPR 2022), x4, with BasicSR's parameter names and math.

The network, for a clip ``x`` of ``t`` frames ``(b, t, 3, h, w)`` RGB in [0, 1]:

1. **Flow.** SpyNet flows between neighbouring frames, both ways (:func:`~mgvsr.models.basicvsr.neighbour_flows`).
   A mirror-extended clip (frame ``i`` equal to frame ``t-1-i``, as the flip test of Vimeo-90K
   builds) reuses its backward flows, reversed in time, as its forward flows: half the SpyNet work,
   the same flows.
2. **Spatial features.** ``feat_extract`` (a conv and 5 residual blocks) on every frame.
3. **Second-order grid propagation**: four recurrent branches in the order ``backward_1``,
   ``forward_1``, ``backward_2``, ``forward_2``.  At each step a branch carries its feature of the
   previous frame ``n-1`` and of the frame before ``n-2``; both are aligned to the current frame by
   :class:`SecondOrderDeformableAlignment`: the feature of ``n-1`` warped by the flow ``f1`` and the
   feature of ``n-2`` warped by the composed flow ``f2 = f1 + warp(f_{n-1 -> n-2}, f1)`` give, with
   the current spatial feature, the offsets (``10 tanh(.)`` residues around the flows) and the masks
   of a modulated deformable convolution over ``[feature n-1, feature n-2]``.  The branch's
   ``backbone`` (a conv and ``num_blocks`` residual blocks) reads the spatial feature, the earlier
   branches' features of that frame and the aligned feature, and its output is added to the
   aligned feature: the branch's feature of the frame.
4. **Reconstruction**, per frame: ``reconstruction`` (a conv and 5 residual blocks) on the spatial
   feature and the four branches' features (``5 mid_channels``), two conv + pixel-shuffle x2
   upsamplers (``upconv1``, ``upconv2``), ``conv_hr``, ``conv_last``, plus the frame upsampled x4
   bilinearly.  Output ``(b, t, 3, 4h, 4w)``.

``BasicVSRPlusPlus(mid_channels=64, num_blocks=7)`` is BasicSR's: 7,322,927 parameters, 5,882,627
without SpyNet, BasicSR's state-dict names and shapes.  ``tests/test_basicvsrpp.py`` holds a
per-frame forward written from the references' equations (BasicSR's loops) and checks that this
one agrees, outputs and gradients.

**Where the references differ from this implementation** (BasicSR ``basicsr/archs/basicvsrpp_arch.py``,
MMagic ``mmagic/models/editors/basicvsr_plusplus_net/basicvsr_plusplus_net.py``):

- *Small inputs.* Both assert LR inputs of at least 64 x 64 (their SpyNet).  Here SpyNet resizes
  to a multiple of 32 as MMagic's does and shortens its pyramid below 32 px
  (:func:`mgvsr.models.spynet.pyramid_levels`), so 32 x 32 and 16 x 16 clips run: the multigrid's
  small stages.  At 64 px and above the flows are the references'.
- *Alignment on a CPU.* BasicSR builds the deformable alignment only when ``torch.cuda.is_available()``;
  on a machine without CUDA it warns and builds a model without it (no ``deform_align`` weights, the
  propagated features unaligned).  Here the alignment is always there, on torchvision's
  ``deform_conv2d`` where torchvision imports and on the pure-PyTorch one of :mod:`mgvsr.models.dcn`
  elsewhere.
- *Mirror-extended clips.* MMagic checks every input; BasicSR sets its ``is_mirror_extended`` flag on
  the first mirror-extended input and never clears it, so later ordinary clips get wrong forward flows.
  Here every call checks its own input (MMagic's behaviour).
- *Batching.* SpyNet runs once on all pairs (the references: once per direction) and the
  reconstruction on chunks of frames (the references: frame by frame); the numbers are the same.
- *Mixed precision.* Under autocast the offsets, the masks and the deformable convolution run in
  float32 (autocast off, inputs in float32, the result cast back to the input's dtype), the flows stay
  float32 (SpyNet adds its convolutions' half-precision corrections to a float32 flow), every other
  convolution runs in autocast's dtype.  The references' code leaves the precision to autocast.

**Long clips** (``cpu_cache_length``, the references' rule): a clip of more than ``cpu_cache_length``
frames (100) on an accelerator keeps its features and flows on the CPU and moves each to the device
only for the step that reads it: spatial features are extracted frame by frame, each branch's new
feature goes to the CPU after its step, and the output frames are reconstructed in chunks and
returned on the CPU.  ``forward(x, cpu_cache=True | False)`` forces or forbids it.  The references
also call ``torch.cuda.empty_cache()`` after every step; here it is not called: it does not lower the
peak memory of this process (it hands the allocator's unused blocks back to the driver), and freeing
them synchronises the device every time.

**Weights**: BasicSR's checkpoints load as they are; MMagic's (``{'state_dict': {'generator.*'}}``,
``upsample1/upsample2.upsample_conv``, SpyNet's ``ConvModule`` names) through the name rules of
:mod:`mgvsr.models.checkpoints`; :func:`config_from_weights` reads the constructor arguments back.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

from mgvsr.models.basicvsr import RECON_CHUNK_ELEMENTS, ConvResidualBlocks, SpyNetVSR, neighbour_flows
from mgvsr.models.blocks import fast_start_init
from mgvsr.models.dcn import deform_conv2d, in_fp32
from mgvsr.models.ops import flow_warp
from mgvsr.models.spynet import SpyNet, zero_init_flow_heads

BRANCHES = ("backward_1", "forward_1", "backward_2", "forward_2")
NUM_EXTRACT_BLOCKS = 5  # feat_extract's residual blocks (BasicSR's, fixed)
NUM_RECONSTRUCT_BLOCKS = 5  # reconstruction's residual blocks (BasicSR's, fixed)


class SecondOrderDeformableAlignment(nn.Module):
    """Flow-guided second-order deformable alignment (BasicSR's and MMagic's, same names).

    ``forward(x, extra_feat, flow_1, flow_2) -> (b, out_channels, h, w)``:

    - ``x`` ``(b, in_channels, h, w)``: the features to align, ``[feature n-1, feature n-2]`` (each
      ``in_channels / 2``);
    - ``extra_feat`` ``(b, 3 out_channels, h, w)``: ``[feature n-1 warped by flow_1, the current
      spatial feature, feature n-2 warped by flow_2]``;
    - ``flow_1``, ``flow_2`` ``(b, 2, h, w)`` (channel 0 = x): the flows of frames ``n-1`` and ``n-2``
      to the current frame (zero for a missing frame).

    ``conv_offset`` (4 convs on ``[extra_feat, flow_1, flow_2]``, LeakyReLU 0.1 between them) gives
    ``3 * 9 * deformable_groups`` channels: ``o1, o2, mask = chunk(3)``;  offsets ``=
    max_residue_magnitude * tanh(cat(o1, o2))`` plus the flows, flipped to ``(dy, dx)`` and repeated
    for every group and tap (the first half of the groups, which read feature ``n-1``, around
    ``flow_1``; the second half around ``flow_2``); ``mask = sigmoid(mask)``.  The modulated
    deformable 3x3 convolution (:func:`mgvsr.models.dcn.deform_conv2d`) of ``x`` with ``weight`` and
    ``bias`` is the output.  The last offset conv starts at zero: the alignment starts as a
    flow warp with masks of 0.5.  The offsets, the masks and the convolution are computed in float32
    under autocast (see the module docstring).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, padding: int = 1,
                 deformable_groups: int = 16, max_residue_magnitude: float = 10.0) -> None:
        super().__init__()
        if deformable_groups < 2 or deformable_groups % 2 or in_channels % deformable_groups:
            raise ValueError(f"deformable_groups must be even and divide in_channels ({in_channels}): half "
                             f"the groups align feature n-1, half feature n-2; got {deformable_groups}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.padding = kernel_size, padding
        self.deformable_groups = deformable_groups
        self.max_residue_magnitude = max_residue_magnitude
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels))
        taps = kernel_size * kernel_size
        self.conv_offset = nn.Sequential(
            nn.Conv2d(3 * out_channels + 4, out_channels, 3, 1, 1),
            nn.LeakyReLU(negative_slope=0.1, inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, 1, 1),
            nn.LeakyReLU(negative_slope=0.1, inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, 1, 1),
            nn.LeakyReLU(negative_slope=0.1, inplace=True),
            nn.Conv2d(out_channels, 3 * taps * deformable_groups, 3, 1, 1),
        )
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """The references' init: ``weight`` uniform(+-1/sqrt(fan_in)), ``bias`` 0, the last offset conv 0
        (the other offset convs keep PyTorch's default)."""
        bound = 1.0 / math.sqrt(self.in_channels * self.kernel_size * self.kernel_size)
        self.weight.uniform_(-bound, bound)
        self.bias.zero_()
        self.conv_offset[-1].weight.zero_()
        self.conv_offset[-1].bias.zero_()

    def offset_and_mask(self, extra_feat: torch.Tensor, flow_1: torch.Tensor, flow_2: torch.Tensor
                        ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(offset (b, 2 * 9 g, h, w), mask (b, 9 g, h, w))``, ``g`` deformable groups, in
        torchvision's layout (per group and tap: dy then dx), float32 (or float64) whatever autocast does."""
        out = self.conv_offset(torch.cat([extra_feat, flow_1, flow_2], dim=1))
        return in_fp32(self._offsets_around_flows, out, flow_1, flow_2)

    def _offsets_around_flows(self, out: torch.Tensor, flow_1: torch.Tensor, flow_2: torch.Tensor
                              ) -> tuple[torch.Tensor, torch.Tensor]:
        o1, o2, mask = torch.chunk(out, 3, dim=1)
        offset = self.max_residue_magnitude * torch.tanh(torch.cat((o1, o2), dim=1))
        offset_1, offset_2 = torch.chunk(offset, 2, dim=1)
        repeats = offset_1.shape[1] // 2  # (dy, dx) pairs: one per tap of each group of the half
        offset_1 = offset_1 + flow_1.flip(1).repeat(1, repeats, 1, 1)
        offset_2 = offset_2 + flow_2.flip(1).repeat(1, repeats, 1, 1)
        return torch.cat([offset_1, offset_2], dim=1), torch.sigmoid(mask)

    def forward(self, x: torch.Tensor, extra_feat: torch.Tensor, flow_1: torch.Tensor,
                flow_2: torch.Tensor) -> torch.Tensor:
        offset, mask = self.offset_and_mask(extra_feat, flow_1, flow_2)
        out = in_fp32(lambda x, weight, bias: deform_conv2d(x, offset, weight, bias, padding=self.padding, mask=mask),
                      x, self.weight, self.bias)
        return out.to(x.dtype)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, padding={self.padding}, "
                f"deformable_groups={self.deformable_groups}, max_residue_magnitude={self.max_residue_magnitude}")


def is_mirror_extended(x: torch.Tensor) -> bool:
    """Whether the clips ``x`` ``(b, t, c, h, w)`` are mirror-extended: ``t`` even and frame ``i`` equal
    to frame ``t-1-i`` in every clip (the references' ``check_if_mirror_extended``)."""
    t = x.shape[1]
    return t >= 2 and t % 2 == 0 and torch.equal(x[:, : t // 2], x[:, t // 2 :].flip(1))


@dataclass(frozen=True)
class BasicVSRPlusPlusConfig:
    """The constructor arguments of :class:`BasicVSRPlusPlus` (BasicSR's names where it has them; see its Args)."""

    mid_channels: int = 64
    num_blocks: int = 7
    max_residue_magnitude: float = 10.0
    spynet_path: str | Path | None = None
    cpu_cache_length: int | None = 100
    deformable_groups: int = 16
    hr_feat: int = 64
    spynet_width: float = 1.0
    spynet_zero_init: bool = False
    fast_start: bool = False


class BasicVSRPlusPlus(SpyNetVSR):
    """BasicVSR++ x4: ``forward(x (b, t, 3, h, w)) -> (b, t, 3, 4h, 4w)``, RGB in [0, 1].

    Args:
        mid_channels: channels of the features (64 in the paper).
        num_blocks: residual blocks of each propagation branch's backbone (7 in the paper).
        max_residue_magnitude: the bound of the offsets' residue around the flows (10).
        spynet_path: a pretrained SpyNet file (any layout of :func:`mgvsr.models.spynet.read_spynet_weights`).
        cpu_cache_length: clips longer than this (on an accelerator) keep their features on the CPU
            (the module docstring); None: never.
        deformable_groups: groups of the deformable alignment (16 in the paper); even, dividing
            ``2 * mid_channels``.
        hr_feat: channels of the high-resolution tail (``upconv2``'s output, ``conv_hr``); BasicSR fixes
            it at 64 whatever ``mid_channels``: keep 64 to load its weights (a CPU configuration may lower it,
            as BasicVSR's ``hr_feat``).
        spynet_width: SpyNet's hidden channels relative to the original (1); a CPU configuration trained
            from scratch may lower it (same names).
        spynet_zero_init: start an untrained SpyNet at zero flow (:func:`mgvsr.models.spynet.zero_init_flow_heads`).
        fast_start: initialise the plain convolutions for a fast start from scratch
            (:func:`mgvsr.models.blocks.fast_start_init`: He init of the first conv of ``feat_extract``,
            of each ``backbone`` and of ``reconstruction``, of the offset convs before the last, and of
            ``conv_hr``; ICNR of ``upconv1``/``upconv2``; a zero ``conv_last``) instead of PyTorch's default
            (the references').  The deformable convolutions keep the references' init: they act on the
            propagated feature at every step, where a gain above one would grow it along the clip.
    """

    scale = 4
    # channels_last: not measured for this model (the deformable convolutions' sampling and matmul want
    # contiguous tensors; EDVR measured 0.87-1.02x with them on a CPU), so the default memory format
    channels_last_on: frozenset[tuple[str, str]] = frozenset()
    fp32_in_autocast = "BasicVSR++'s deformable alignment (offsets, masks, deformable convolutions; the flows too)"

    def __init__(self, **config) -> None:
        """``config``: keyword arguments, the fields of :class:`BasicVSRPlusPlusConfig` (see Args above)."""
        super().__init__()
        cfg = BasicVSRPlusPlusConfig(**config)
        mid_channels, num_blocks, hr_feat, spynet_path = cfg.mid_channels, cfg.num_blocks, cfg.hr_feat, cfg.spynet_path
        spynet_zero_init, cpu_cache_length = cfg.spynet_zero_init, cfg.cpu_cache_length
        if spynet_path is not None and spynet_zero_init:
            raise ValueError("spynet_zero_init=True would erase the pretrained SpyNet from spynet_path; pick one")
        self.mid_channels = mid_channels
        self.hr_feat = hr_feat
        self.cpu_cache_length = cpu_cache_length
        self.spynet = SpyNet(spynet_path, width=cfg.spynet_width)
        if spynet_zero_init:
            zero_init_flow_heads(self.spynet)
        self.feat_extract = ConvResidualBlocks(3, mid_channels, NUM_EXTRACT_BLOCKS)
        self.deform_align = nn.ModuleDict()
        self.backbone = nn.ModuleDict()
        for i, name in enumerate(BRANCHES):
            self.deform_align[name] = SecondOrderDeformableAlignment(
                2 * mid_channels, mid_channels, 3, padding=1, deformable_groups=cfg.deformable_groups,
                max_residue_magnitude=cfg.max_residue_magnitude)
            self.backbone[name] = ConvResidualBlocks((2 + i) * mid_channels, mid_channels, num_blocks)
        self.reconstruction = ConvResidualBlocks(5 * mid_channels, mid_channels, NUM_RECONSTRUCT_BLOCKS)
        self.upconv1 = nn.Conv2d(mid_channels, mid_channels * 4, 3, 1, 1, bias=True)
        self.upconv2 = nn.Conv2d(mid_channels, hr_feat * 4, 3, 1, 1, bias=True)
        self.pixel_shuffle = nn.PixelShuffle(2)
        self.conv_hr = nn.Conv2d(hr_feat, hr_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(hr_feat, 3, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.1, inplace=True)
        if cfg.fast_start:
            offset_convs = [m.conv_offset[i] for m in self.deform_align.values() for i in (0, 2, 4)]
            firsts = [self.feat_extract.main[0], *(b.main[0] for b in self.backbone.values()),
                      self.reconstruction.main[0]]
            fast_start_init([*firsts, *offset_convs, self.conv_hr], shuffled=[self.upconv1, self.upconv2],
                            last=self.conv_last)

    # ---- forward ------------------------------------------------------------------------------
    def uses_cpu_cache(self, x: torch.Tensor) -> bool:
        """The references' rule: a clip longer than ``cpu_cache_length`` frames, not on the CPU."""
        return self.cpu_cache_length is not None and x.shape[1] > self.cpu_cache_length and x.device.type != "cpu"

    def forward(self, x: torch.Tensor, cpu_cache: bool | None = None) -> torch.Tensor:
        """``x`` ``(b, t, 3, h, w)`` -> ``(b, t, 3, 4h, 4w)``.  ``cpu_cache``: keep the features on the CPU
        (the module docstring); None: :meth:`uses_cpu_cache`.  With it, the output is on the CPU."""
        if x.dim() != 5 or x.shape[2] != 3:
            raise ValueError(f"BasicVSRPlusPlus expects (b, t, 3, h, w), got {tuple(x.shape)}")
        cached = self.uses_cpu_cache(x) if cpu_cache is None else bool(cpu_cache)
        store = torch.device("cpu") if cached else x.device
        flows_forward, flows_backward = self.compute_flows(x, is_mirror_extended(x))
        flows = {"backward": flows_backward.to(store), "forward": flows_forward.to(store)}
        feats = {"spatial": self.extract(x, store, cached)}
        for name in BRANCHES:
            feats[name] = self.propagate(feats, flows[name.split("_")[0]], name, x.device, x.dtype)
        return self.upsample(x, feats, store)

    def compute_flows(self, x: torch.Tensor, mirrored: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """SpyNet flows ``(forward, backward)``, each ``(b, t-1, 2, h, w)``
        (:func:`mgvsr.models.basicvsr.neighbour_flows`); ``mirrored``: reuse the backward flows."""
        return neighbour_flows(self.spynet, x, mirrored=mirrored)

    def extract(self, x: torch.Tensor, store: torch.device, per_frame: bool = False) -> list[torch.Tensor]:
        """The spatial features: a ``(b, mid_channels, h, w)`` per frame of ``x`` ``(b, t, 3, h, w)``, on
        ``store``; all frames in one call, or one frame per call (``per_frame``, the CPU cache)."""
        b, t, c, h, w = x.shape
        if per_frame:
            return [self.feat_extract(x[:, i]).to(store) for i in range(t)]
        return list(self.feat_extract(x.reshape(b * t, c, h, w)).view(b, t, -1, h, w).to(store).unbind(1))

    def propagate(self, feats: dict[str, list[torch.Tensor]], flows: torch.Tensor, name: str,
                  device: torch.device, dtype: torch.dtype) -> list[torch.Tensor]:
        """Branch ``name`` over the clip: its feature ``(b, mid_channels, h, w)`` per frame, in time order,
        on the device of ``feats``'s tensors (computed on ``device``).

        ``feats``: ``"spatial"`` and the earlier branches, each a list of ``t`` features; ``flows``
        ``(b, t-1, 2, h, w)``: for a backward branch ``flows[:, i]`` is the flow from frame ``i`` to
        ``i+1``, for a forward one from frame ``i+1`` to ``i`` (:meth:`compute_flows`).  ``dtype``: the
        propagated feature's dtype at the first frame (the input's).
        """
        spatial = feats["spatial"]
        t = len(spatial)
        store = spatial[0].device
        backward = name.startswith("backward")
        earlier = [feats[k] for k in BRANCHES[: BRANCHES.index(name)]]
        align, backbone = self.deform_align[name], self.backbone[name]
        out: list[torch.Tensor] = [None] * t  # type: ignore[list-item]
        history: list[torch.Tensor] = []  # this branch's features of the last two steps, on `device`
        for step, i in enumerate(range(t - 1, -1, -1) if backward else range(t)):
            current = spatial[i].to(device)
            if step == 0:
                b, _, h, w = current.shape
                prop = torch.zeros(b, self.mid_channels, h, w, dtype=dtype, device=device)
            else:
                j = i if backward else i - 1  # flows[:, j] warps the previous step's frame onto frame i
                flow_1 = flows[:, j].to(device)
                cond_1 = flow_warp(prop, flow_1.permute(0, 2, 3, 1))
                if step > 1:
                    feat_2 = history[-2]
                    flow_prev = flows[:, j + 1 if backward else j - 1].to(device)  # frame n-2 onto n-1
                    flow_2 = flow_1 + flow_warp(flow_prev, flow_1.permute(0, 2, 3, 1))
                    cond_2 = flow_warp(feat_2, flow_2.permute(0, 2, 3, 1))
                else:
                    feat_2, flow_2, cond_2 = torch.zeros_like(prop), torch.zeros_like(flow_1), torch.zeros_like(cond_1)
                prop = align(torch.cat([prop, feat_2], dim=1), torch.cat([cond_1, current, cond_2], dim=1),
                             flow_1, flow_2)
            prop = prop + backbone(torch.cat([current, *(f[i].to(device) for f in earlier), prop], dim=1))
            history = [*history[-1:], prop]
            out[i] = prop.to(store)
        return out

    def upsample(self, x: torch.Tensor, feats: dict[str, list[torch.Tensor]], store: torch.device) -> torch.Tensor:
        """The output ``(b, t, 3, 4h, 4w)`` on ``store``, from ``x`` ``(b, t, 3, h, w)`` and the features
        (``"spatial"`` and the four branches, a ``(b, mid_channels, h, w)`` per frame each), in chunks of
        frames whose high-resolution tensors have at most ``RECON_CHUNK_ELEMENTS`` elements."""
        b, t, _, h, w = x.shape
        chunk = max(1, RECON_CHUNK_ELEMENTS // (b * self.hr_feat * 16 * h * w))
        outs = []
        for s in range(0, t, chunk):
            e = min(s + chunk, t)
            hr = torch.cat([torch.stack(feats[k][s:e], 1).to(x.device) for k in ("spatial", *BRANCHES)], 2)
            out = self._reconstruct(hr.flatten(0, 1), x[:, s:e].flatten(0, 1))
            outs.append(out.view(b, e - s, 3, 4 * h, 4 * w).to(store))
        return torch.cat(outs, 1)

    def _reconstruct(self, feats: torch.Tensor, lr: torch.Tensor) -> torch.Tensor:
        """``feats`` ``(n, 5 mid_channels, h, w)``, ``lr`` ``(n, 3, h, w)`` -> ``(n, 3, 4h, 4w)``."""
        return self.upsample_tail(self.reconstruction(feats), lr)


def config_from_weights(state: Mapping[str, torch.Tensor]) -> dict | None:
    """The constructor arguments (``mid_channels``, ``num_blocks``, ``deformable_groups``, ``hr_feat``,
    ``spynet_width``) of the BasicVSR++ whose weights ``state`` holds (BasicSR's names), or None when
    it is not a BasicVSR++."""
    if "backbone.backward_1.main.0.weight" not in state:
        return None
    blocks = {int(k.split(".")[4]) for k in state if k.startswith("backbone.backward_1.main.2.")}
    offset = state.get("deform_align.backward_1.conv_offset.6.weight")
    return dict(mid_channels=int(state["backbone.backward_1.main.0.weight"].shape[0]),
                num_blocks=max(blocks) + 1 if blocks else 0,
                deformable_groups=int(offset.shape[0]) // 27 if offset is not None else 16,
                hr_feat=int(state["conv_hr.weight"].shape[0]) if "conv_hr.weight" in state else 64,
                spynet_width=state["spynet.basic_module.0.basic_module.0.weight"].shape[0] / 32)
