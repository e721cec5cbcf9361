"""EDVR (Wang et al., CVPRW 2019) as in BasicSR, so that BasicSR's EDVR checkpoints load.

A sliding-window model: 5 LR frames in, the centre frame out at x4.

    frames (b, t, 3, h, w)
      -> conv_first + residual blocks (per frame)     feature pyramid L1 (h), L2 (h/2), L3 (h/4)
      -> PCD alignment of every frame to the centre   pyramid of DCNv2 + a cascading DCNv2
      -> TSA fusion (or a 1x1 conv without TSA)       (b, c, h, w)
      -> residual blocks, two pixel-shuffle x2, conv_hr, conv_last
      + bilinear x4 of the centre LR frame            (b, 3, 4h, 4w)

``EDVR(num_feat=64, num_frame=5, deformable_groups=8, num_extract_block=5,
num_reconstruct_block=10)`` is BasicSR's EDVR-M: 3,300,131 parameters with TSA, 2,996,259
without. Only LR input (BasicSR's ``hr_in=False``, x4) and no pre-deblurring module
(``with_predeblur=False``) are implemented: the EDVR-M configurations of the paper.

The PCD alignment runs on all frames at once (frames folded into the batch) instead of
BasicSR's loop over frames: the same arithmetic, fewer and larger kernel calls.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from mgvsr.models.blocks import fast_start_init, make_layer
from mgvsr.models.dcn import DCNv2Pack, in_fp32
from mgvsr.models.protocol import VSRModel

# --- helpers ---------------------------------------------------------------------------------


def lrelu(x: torch.Tensor) -> torch.Tensor:
    """LeakyReLU(0.1), in place (used on fresh conv outputs only, as BasicSR does)."""
    return F.leaky_relu(x, 0.1, inplace=True)


def upsample2(x: torch.Tensor) -> torch.Tensor:
    """Bilinear x2, ``align_corners=False``: (b, c, h, w) -> (b, c, 2h, 2w)."""
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


def upsample_offsets(offset: torch.Tensor) -> torch.Tensor:
    """A coarser pyramid level's offset features for the next level: bilinear x2 and times 2 (offsets
    are in pixels: twice the size, twice the offset), ``(n, c, h, w) -> (n, c, 2h, 2w)``.

    In fp32 whatever the autocast (:func:`mgvsr.models.dcn.in_fp32`; the result stays fp32, the
    next offset convolution takes it as autocast casts its inputs); without autocast in
    ``offset``'s dtype."""
    return in_fp32(lambda o: upsample2(o) * 2, offset)


# --- PCD alignment ---------------------------------------------------------------------------


class PCDAlignment(nn.Module):
    """Pyramid, Cascading and Deformable alignment of neighbour features to reference features.

    Levels l3 (1/4 size), l2 (1/2), l1 (full): at each level offsets are predicted from
    [neighbour, reference] features (plus the x2-upsampled, x2-scaled offsets of the coarser
    level), a DCNv2 warps the neighbour, and the result is merged with the coarser level's
    upsampled aligned features. A final cascading DCNv2 refines the l1 result.

    Under autocast the deformable convolutions' offsets, masks and convolutions and the upsampled
    offsets run in fp32 (:func:`mgvsr.models.dcn.deform_conv2d_fp32`, :func:`upsample_offsets`);
    the offset convolutions ``offset_conv*`` run in the autocast dtype like every other convolution.
    """

    def __init__(self, num_feat: int = 64, deformable_groups: int = 8) -> None:
        super().__init__()
        self.offset_conv1 = nn.ModuleDict()
        self.offset_conv2 = nn.ModuleDict()
        self.offset_conv3 = nn.ModuleDict()
        self.dcn_pack = nn.ModuleDict()
        self.feat_conv = nn.ModuleDict()
        for i in (3, 2, 1):  # creation order as BasicSR (state-dict order l3, l2, l1)
            level = f"l{i}"
            self.offset_conv1[level] = nn.Conv2d(num_feat * 2, num_feat, 3, 1, 1)
            if i == 3:
                self.offset_conv2[level] = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
            else:
                self.offset_conv2[level] = nn.Conv2d(num_feat * 2, num_feat, 3, 1, 1)
                self.offset_conv3[level] = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
            self.dcn_pack[level] = DCNv2Pack(num_feat, num_feat, 3, padding=1,
                                             deformable_groups=deformable_groups)
            if i < 3:
                self.feat_conv[level] = nn.Conv2d(num_feat * 2, num_feat, 3, 1, 1)
        self.cas_offset_conv1 = nn.Conv2d(num_feat * 2, num_feat, 3, 1, 1)
        self.cas_offset_conv2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.cas_dcnpack = DCNv2Pack(num_feat, num_feat, 3, padding=1,
                                     deformable_groups=deformable_groups)

    def forward(self, nbr_feats: list[torch.Tensor], ref_feats: list[torch.Tensor]) -> torch.Tensor:
        """nbr_feats, ref_feats: [l1 (n, c, h, w), l2 (n, c, h/2, w/2), l3 (n, c, h/4, w/4)].

        Returns the aligned neighbour features ``(n, c, h, w)``.
        """
        up_offset = up_feat = None
        for i in (3, 2, 1):
            level = f"l{i}"
            nbr, ref = nbr_feats[i - 1], ref_feats[i - 1]
            offset = lrelu(self.offset_conv1[level](torch.cat([nbr, ref], dim=1)))
            if i == 3:
                offset = lrelu(self.offset_conv2[level](offset))
            else:
                offset = lrelu(self.offset_conv2[level](torch.cat([offset, up_offset], dim=1)))
                offset = lrelu(self.offset_conv3[level](offset))
            feat = self.dcn_pack[level](nbr, offset)
            if i < 3:
                feat = self.feat_conv[level](torch.cat([feat, up_feat], dim=1))
            if i > 1:
                feat = lrelu(feat)
                up_offset, up_feat = upsample_offsets(offset), upsample2(feat)
        offset = torch.cat([feat, ref_feats[0]], dim=1)
        offset = lrelu(self.cas_offset_conv2(lrelu(self.cas_offset_conv1(offset))))
        return lrelu(self.cas_dcnpack(feat, offset))


# --- TSA fusion ------------------------------------------------------------------------------


class TSAFusion(nn.Module):
    """Temporal and Spatial Attention fusion: (b, t, c, h, w) aligned features -> (b, c, h, w).

    Temporal: each frame's features are weighted per pixel by sigmoid(<embedding(frame),
    embedding(centre)>). Spatial: a 3-level attention pyramid modulates the fused features
    (``feat * sigmoid(attn) * 2 + attn_add``).
    """

    def __init__(self, num_feat: int = 64, num_frame: int = 5, center_frame_idx: int = 2) -> None:
        super().__init__()
        self.center_frame_idx = center_frame_idx
        self.temporal_attn1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.temporal_attn2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.feat_fusion = nn.Conv2d(num_frame * num_feat, num_feat, 1, 1)
        self.spatial_attn1 = nn.Conv2d(num_frame * num_feat, num_feat, 1)
        self.spatial_attn2 = nn.Conv2d(num_feat * 2, num_feat, 1)
        self.spatial_attn3 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.spatial_attn4 = nn.Conv2d(num_feat, num_feat, 1)
        self.spatial_attn5 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.spatial_attn_l1 = nn.Conv2d(num_feat, num_feat, 1)
        self.spatial_attn_l2 = nn.Conv2d(num_feat * 2, num_feat, 3, 1, 1)
        self.spatial_attn_l3 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.spatial_attn_add1 = nn.Conv2d(num_feat, num_feat, 1)
        self.spatial_attn_add2 = nn.Conv2d(num_feat, num_feat, 1)

    @staticmethod
    def _pool(x: torch.Tensor) -> torch.Tensor:
        """[max-pool, avg-pool] (3x3, stride 2, pad 1) side by side: (b, c, h, w) -> (b, 2c, h/2, w/2)."""
        return torch.cat([F.max_pool2d(x, 3, 2, 1), F.avg_pool2d(x, 3, 2, 1)], dim=1)

    def forward(self, aligned: torch.Tensor) -> torch.Tensor:
        b, t, c, h, w = aligned.shape
        # temporal attention
        emb_ref = self.temporal_attn1(aligned[:, self.center_frame_idx])            # (b, c, h, w)
        emb = self.temporal_attn2(aligned.reshape(b * t, c, h, w)).view(b, t, c, h, w)
        corr = torch.sigmoid((emb * emb_ref.unsqueeze(1)).sum(dim=2, keepdim=True))  # (b, t, 1, h, w)
        aligned = (aligned * corr).view(b, t * c, h, w)
        feat = lrelu(self.feat_fusion(aligned))
        # spatial attention, two pyramid levels below full size
        attn = lrelu(self.spatial_attn1(aligned))
        attn = lrelu(self.spatial_attn2(self._pool(attn)))                         # h/2
        attn_level = lrelu(self.spatial_attn_l1(attn))
        attn_level = lrelu(self.spatial_attn_l2(self._pool(attn_level)))           # h/4
        attn_level = upsample2(lrelu(self.spatial_attn_l3(attn_level)))            # h/2
        attn = lrelu(self.spatial_attn3(attn)) + attn_level
        attn = lrelu(self.spatial_attn4(attn))
        attn = self.spatial_attn5(upsample2(attn))                                 # h
        attn_add = self.spatial_attn_add2(lrelu(self.spatial_attn_add1(attn)))
        return feat * torch.sigmoid(attn) * 2 + attn_add  # sigmoid(0) * 2 = 1 at init


# --- EDVR -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EDVRConfig:
    """The constructor arguments of :class:`EDVR` (BasicSR's names and defaults, plus mgvsr's ``hr_feat``
    and ``fast_start``; see the class docstring)."""

    num_in_ch: int = 3
    num_out_ch: int = 3
    num_feat: int = 64
    num_frame: int = 5
    deformable_groups: int = 8
    num_extract_block: int = 5
    num_reconstruct_block: int = 10
    center_frame_idx: int | None = None
    with_tsa: bool = True
    hr_feat: int = 64
    fast_start: bool = False


class EDVR(VSRModel):
    """EDVR for x4 video super-resolution of the centre frame (BasicSR's EDVR, ``hr_in=False``).

    Input ``(b, num_frame, 3, h, w)`` RGB in [0, 1], h and w multiples of 4; output
    ``(b, 3, 4h, 4w)``, the centre frame ``center_frame_idx`` (default ``num_frame // 2``).

    ``hr_feat``: channels of the high-resolution tail (``upconv2``'s output, ``conv_hr``), fixed
    at 64 in BasicSR whatever ``num_feat``; keep 64 to load BasicSR weights.  In a small model it
    dominates (``conv_hr`` runs at 4h x 4w: 49% of a training step's FLOPs with 16 features and
    2 + 2 blocks, ``upconv2`` another 12%), so a CPU configuration may lower it, as BasicVSR's
    ``hr_feat``: a deviation from BasicSR's architecture.

    What a trainer or an evaluator needs to know without running it (the protocol of
    :mod:`mgvsr.models.protocol`): ``num_frame`` (the fixed input length), ``center_frame_idx``
    (the frame it outputs), ``patch_multiple`` (LR heights and widths must be multiples of it:
    the feature pyramid halves them twice) and its ``"fusion-only"`` warm start (only the TSA
    fusion module trains at first: BasicSR's and MMagic's ``tsa_iter``).

    ``fast_start``: initialise the plain convolutions of the feature path for a fast start from
    scratch (:func:`mgvsr.models.blocks.fast_start_init`: He init of ``conv_first``, the pyramid's
    and the PCD alignment's offset and feature convs, TSA's ``feat_fusion`` and ``conv_hr``; ICNR
    of ``upconv1``/``upconv2``; a zero ``conv_last``; the deformable convolutions He x 2 for their
    initial mask of 0.5; TSA's spatial attention starting neutral, ``spatial_attn5`` and
    ``spatial_attn_add2`` zero) instead of BasicSR's, where the frames' signal reaches the
    reconstruction at ~4% of its scale and TSA's biases swamp it.  The residual blocks, the
    offset convolutions (zero) and TSA's temporal attention keep BasicSR's init.
    """

    scale = 4
    patch_multiple = 4
    # channels_last: not used, it measured slower on a CPU (0.87-1.02x; the deformable convolutions'
    # grid_sample and batched matmul want contiguous tensors): `python bench/bench_channels_last.py`
    channels_last_on: frozenset[tuple[str, str]] = frozenset()
    fp32_in_autocast = "EDVR's deformable convolutions (offsets, masks, convolutions) and upsampled offsets"

    def __init__(self, **config) -> None:
        """``config``: keyword arguments, the fields of :class:`EDVRConfig` (BasicSR's names)."""
        super().__init__()
        cfg = EDVRConfig(**config)
        num_in_ch, num_out_ch, num_feat, num_frame = cfg.num_in_ch, cfg.num_out_ch, cfg.num_feat, cfg.num_frame
        deformable_groups, center_frame_idx, with_tsa, hr_feat = (cfg.deformable_groups, cfg.center_frame_idx,
                                                                  cfg.with_tsa, cfg.hr_feat)
        self.num_frame = num_frame
        self.center_frame_idx = num_frame // 2 if center_frame_idx is None else center_frame_idx
        if not 0 <= self.center_frame_idx < num_frame:
            raise ValueError(f"center_frame_idx {center_frame_idx} is outside 0..{num_frame - 1}")
        self.with_tsa = with_tsa

        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.feature_extraction = make_layer(cfg.num_extract_block, num_feat)
        self.conv_l2_1 = nn.Conv2d(num_feat, num_feat, 3, 2, 1)
        self.conv_l2_2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_l3_1 = nn.Conv2d(num_feat, num_feat, 3, 2, 1)
        self.conv_l3_2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)

        self.pcd_align = PCDAlignment(num_feat, deformable_groups)
        if with_tsa:
            self.fusion = TSAFusion(num_feat, num_frame, self.center_frame_idx)
        else:
            self.fusion = nn.Conv2d(num_frame * num_feat, num_feat, 1, 1)

        self.reconstruction = make_layer(cfg.num_reconstruct_block, num_feat)
        self.upconv1 = nn.Conv2d(num_feat, num_feat * 4, 3, 1, 1)
        self.upconv2 = nn.Conv2d(num_feat, hr_feat * 4, 3, 1, 1)  # BasicSR: 64 whatever num_feat
        self.conv_hr = nn.Conv2d(hr_feat, hr_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(hr_feat, num_out_ch, 3, 1, 1)
        for name, module in self.named_modules():  # the offset diagnostic's warning names its pack
            if isinstance(module, DCNv2Pack):
                module.offset_check.name = name
        if cfg.fast_start:
            pcd = self.pcd_align
            convs = [self.conv_first, self.conv_l2_1, self.conv_l2_2, self.conv_l3_1, self.conv_l3_2,
                     *pcd.offset_conv1.values(), *pcd.offset_conv2.values(), *pcd.offset_conv3.values(),
                     *pcd.feat_conv.values(), pcd.cas_offset_conv1, pcd.cas_offset_conv2, self.conv_hr]
            if with_tsa:
                convs.append(self.fusion.feat_fusion)
            fast_start_init(convs, shuffled=[self.upconv1, self.upconv2], last=self.conv_last)
            with torch.no_grad():
                for dcn in (*pcd.dcn_pack.values(), pcd.cas_dcnpack):  # He init x 2: the initial mask is 0.5
                    nn.init.kaiming_normal_(dcn.weight, a=0.1, nonlinearity="leaky_relu")
                    dcn.weight.mul_(2.0)
                if with_tsa:  # the spatial attention starts neutral: feat * sigmoid(0) * 2 + 0
                    for conv in (self.fusion.spatial_attn5, self.fusion.spatial_attn_add2):
                        nn.init.zeros_(conv.weight)
                        nn.init.zeros_(conv.bias)

    def warm_start_frozen(self, recipe: str) -> list[nn.Parameter]:
        """``"fusion-only"``: every parameter but the fusion module's stays fixed at first."""
        if recipe == "fusion-only":
            return [p for name, p in self.named_parameters() if not name.startswith("fusion.")]
        return super().warm_start_frozen(recipe)

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 5:
            raise ValueError(f"EDVR expects frames (b, t, c, h, w), got shape {tuple(x.shape)}")
        _, t, c, h, w = x.shape
        if t != self.num_frame:
            raise ValueError(f"EDVR was built for {self.num_frame} frames, got {t} (shape {tuple(x.shape)})")
        if c != self.conv_first.in_channels:
            raise ValueError(f"EDVR expects {self.conv_first.in_channels} channels, got {c}")
        if h % self.patch_multiple or w % self.patch_multiple:
            raise ValueError(f"EDVR needs LR height and width divisible by 4 (its feature pyramid "
                             f"halves them twice), got {h}x{w}")

    def extract_pyramid(self, frames: torch.Tensor) -> list[torch.Tensor]:
        """frames ``(n, 3, h, w)`` -> features [l1 (n, c, h, w), l2 (.., h/2, w/2), l3 (.., h/4, w/4)]."""
        l1 = self.feature_extraction(lrelu(self.conv_first(frames)))
        l2 = lrelu(self.conv_l2_2(lrelu(self.conv_l2_1(l1))))
        l3 = lrelu(self.conv_l3_2(lrelu(self.conv_l3_1(l2))))
        return [l1, l2, l3]

    def align(self, pyramid: list[torch.Tensor], b: int, t: int) -> torch.Tensor:
        """Align every frame to the centre frame: pyramid of (b * t, c, ., .) -> (b, t, c, h, w)."""
        nbr, ref = [], []
        for feat in pyramid:
            feat = feat.view(b, t, *feat.shape[1:])
            centre = feat[:, self.center_frame_idx: self.center_frame_idx + 1]
            nbr.append(feat.reshape(b * t, *feat.shape[2:]))
            ref.append(centre.expand_as(feat).reshape(b * t, *feat.shape[2:]))
        aligned = self.pcd_align(nbr, ref)
        return aligned.view(b, t, *aligned.shape[1:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x ``(b, t, 3, h, w)`` -> ``(b, 3, 4h, 4w)``."""
        self._check_input(x)
        b, t, c, h, w = x.shape
        pyramid = self.extract_pyramid(x.reshape(b * t, c, h, w))
        aligned = self.align(pyramid, b, t)                           # (b, t, c, h, w)
        if self.with_tsa:
            feat = self.fusion(aligned)
        else:
            feat = self.fusion(aligned.reshape(b, -1, h, w))
        out = self.reconstruction(feat)
        out = lrelu(F.pixel_shuffle(self.upconv1(out), 2))
        out = lrelu(F.pixel_shuffle(self.upconv2(out), 2))
        out = self.conv_last(lrelu(self.conv_hr(out)))
        base = F.interpolate(x[:, self.center_frame_idx], scale_factor=4, mode="bilinear",
                             align_corners=False)
        return out + base


def config_from_weights(state: Mapping[str, torch.Tensor]) -> dict | None:
    """The constructor arguments (``num_feat``, ``with_tsa``, ``hr_feat``) of the EDVR whose weights
    ``state`` holds (BasicSR's names), or None when it is not an EDVR."""
    if not any(k.startswith("pcd_align.") for k in state):
        return None
    return dict(num_feat=int(state["conv_first.weight"].shape[0]),
                with_tsa=any(k.startswith("fusion.temporal_attn") for k in state),
                hr_feat=int(state["conv_hr.weight"].shape[0]))
