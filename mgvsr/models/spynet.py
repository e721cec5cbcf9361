"""SPyNet optical flow (Ranjan and Black, CVPR 2017) as BasicVSR uses it, with BasicSR's names.

A six-level image pyramid (average pooling by 2); at each level, from the coarsest up, a
small network of five 7x7 convolutions (8 -> 32 -> 64 -> 32 -> 16 -> 2 channels) looks at
the reference image, the support image warped by the flow so far, and that flow, and adds
a correction.  The flow's channel 0 is the x displacement, channel 1 the y displacement.

Sizes: a six-level pyramid needs sides that are multiples of 32, so inputs are resized
(bilinear) up to the next multiple of 32, the flow is computed there, resized back and
its x/y components rescaled (MMagic's scheme).  The coarsest level is ``size / 32``
pixels, so a 32x32 input works (its coarsest level is 1x1); BasicSR's version starts
from ``floor(size / 64)`` and crashes at 32x32, and otherwise gives the same result (any
size above 32).  Inputs smaller than 32 px (e.g. 16x16) use a shorter pyramid instead
(:func:`pyramid_levels`: as many levels as leave the coarsest at least 1 px, run by the
finest modules), so that small multigrid stages cost their size.

Pretrained weights (:func:`read_spynet_weights`, ``SpyNet(load_path=...)``): the files people
have (:data:`SPYNET_FILES`), in the layouts of those projects' source (docs/paper-reading.md,
"SpyNet: sizes and pretrained weights"):

- BasicSR's ``spynet_sintel_final-3d2a1287.pth``: ``{'params': {basic_module.N.basic_module.M.*}}``
  (M = 0, 2, 4, 6, 8: a Sequential of Conv2d and ReLU; ``mean``/``std`` may be absent);
- MMagic's ``spynet_20210409-c6c1bd09.pth``: ``{'state_dict': {basic_module.N.basic_module.M.conv.*}}``
  (M = 0 .. 4: ConvModules), ``meta`` beside it;
- the SpyNet inside a full BasicVSR checkpoint: BasicSR's ``{'params': {spynet.*, ...}}`` or MMagic's
  ``{'state_dict': {generator.spynet.*, ...}}``.

Any other layout is refused with the missing and unexpected names listed.  Without weights
SpyNet starts from PyTorch's default initialisation, which outputs random non-zero flows;
:func:`zero_init_flow_heads` makes an untrained SpyNet start at zero flow instead.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from mgvsr.errors import CheckpointError
from mgvsr.models.checkpoints import checkpoint_format, extract_state_dict, load_state_dict_checked, read_checkpoint
from mgvsr.models.ops import flow_warp

NUM_LEVELS = 6
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# The pretrained SpyNet files users have, and where they come from.
SPYNET_FILES = (
    "BasicSR's spynet_sintel_final-3d2a1287.pth (SpyNet trained on Sintel; BasicSR's BasicVSR configs "
    "read it from experiments/pretrained_models/flownet/; also a release asset of the VRT repository: "
    "https://github.com/JingyunLiang/VRT/releases/download/v0.0/spynet_sintel_final-3d2a1287.pth)",
    "MMagic's spynet_20210409-c6c1bd09.pth "
    "(https://download.openmmlab.com/mmediting/restorers/basicvsr/spynet_20210409-c6c1bd09.pth, "
    "the spynet_pretrained of MMagic's BasicVSR configs)",
    "a full BasicVSR checkpoint from BasicSR's or MMagic's model zoo (its SpyNet, fine-tuned on that "
    "checkpoint's data, is taken)",
)


class BasicModule(nn.Module):
    """One pyramid level: ``(n, 8, h, w)`` [ref (3), warped support (3), flow (2)] -> ``(n, 2, h, w)``.

    ``width`` scales the hidden channels (32, 64, 32, 16); 1 is SpyNet's (and the only width
    whose pretrained weights exist).
    """

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        channels = [8] + [max(2, round(c * width)) for c in (32, 64, 32, 16)] + [2]
        layers: list[nn.Module] = []
        for i, (c_in, c_out) in enumerate(zip(channels[:-1], channels[1:])):
            layers.append(nn.Conv2d(c_in, c_out, kernel_size=7, stride=1, padding=3))
            if i < len(channels) - 2:
                layers.append(nn.ReLU(inplace=False))
        self.basic_module = nn.Sequential(*layers)  # convs at indices 0, 2, 4, 6, 8

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.basic_module(x)


class SpyNet(nn.Module):
    """Optical flow from ``ref`` to ``supp``: ``forward(ref, supp) -> (n, 2, h, w)``.

    ``ref``, ``supp``: ``(n, 3, h, w)`` RGB in [0, 1], any ``h, w >= 1``.  The flow ``f`` is
    such that ``flow_warp(supp, f)`` looks like ``ref``.  ``load_path``: a BasicSR SpyNet
    checkpoint to load (``{'params': ...}``; ``mean``/``std`` may be absent from it).
    ``width``: hidden channels relative to SpyNet's (same parameter names; a CPU-sized
    flow network for models trained from scratch, see ``basicvsr_cpu``).
    """

    def __init__(self, load_path: str | Path | None = None, width: float = 1.0) -> None:
        super().__init__()
        if width <= 0:
            raise ValueError(f"SpyNet width must be positive, got {width}")
        self.basic_module = nn.ModuleList([BasicModule(width) for _ in range(NUM_LEVELS)])
        # set by zero_init_flow_heads: only such a SpyNet is asked (one host read per forward on a GPU)
        # whether its heads are still zero; a pretrained or random one never outputs zero flow
        self.zero_heads_possible = False
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        if load_path is not None:
            self.load_pretrained(load_path)

    def load_pretrained(self, path: str | Path) -> str:
        """Load SpyNet weights from a file in any layout of :func:`read_spynet_weights` (which may omit
        ``mean``/``std``); returns the layout's description.  :class:`CheckpointError` listing the
        missing and unexpected names for a file in another layout."""
        state, layout = read_spynet_weights(path)
        state.setdefault("mean", self.mean.clone())
        state.setdefault("std", self.std.clone())
        try:
            load_state_dict_checked(self, state, strict=True, source=f"{path} ({layout})")
        except CheckpointError as exc:
            raise CheckpointError(f"{exc}SpyNet weights are read from: " + "; ".join(SPYNET_FILES)) from None
        return layout

    @torch.no_grad()
    def outputs_zero_flow(self) -> bool:
        """True when every level's last conv is all zero: the flow is then exactly zero for
        any input (see :func:`zero_init_flow_heads`).  Read (on the device) only for a SpyNet whose heads
        :func:`zero_init_flow_heads` zeroed; any other answers False without reading."""
        if not self.zero_heads_possible:
            return False
        heads = [m.basic_module[-1] for m in self.basic_module]
        return not any(bool(conv.weight.any()) or bool(conv.bias.any()) for conv in heads)

    def forward(self, ref: torch.Tensor, supp: torch.Tensor) -> torch.Tensor:
        if ref.dim() != 4 or ref.shape[1] != 3 or ref.shape != supp.shape:
            raise ValueError(f"SpyNet needs ref and supp of the same shape (n, 3, h, w); "
                             f"got {tuple(ref.shape)} and {tuple(supp.shape)}")
        h, w = ref.shape[2:]
        levels = pyramid_levels(h, w)
        multiple = 2 ** (levels - 1)
        h_up, w_up = _up_to_multiple(h, multiple), _up_to_multiple(w, multiple)
        if (h_up, w_up) == (h, w):  # resizing to the same size is the identity: skip it
            return self.compute_flow(ref, supp, levels)
        ref = F.interpolate(ref, size=(h_up, w_up), mode="bilinear", align_corners=False)
        supp = F.interpolate(supp, size=(h_up, w_up), mode="bilinear", align_corners=False)
        flow = F.interpolate(self.compute_flow(ref, supp, levels), size=(h, w), mode="bilinear",
                             align_corners=False)
        flow[:, 0, :, :] *= float(w) / float(w_up)
        flow[:, 1, :, :] *= float(h) / float(h_up)
        return flow

    def compute_flow(self, ref: torch.Tensor, supp: torch.Tensor, levels: int = NUM_LEVELS) -> torch.Tensor:
        """The pyramid computation with ``levels`` levels (sides multiples of ``2**(levels-1)``):
        ``(n, 2, h, w)``.  The finest ``levels`` modules are used, the finest on the input itself."""
        n, _, h, w = ref.shape
        # Normalise and pool ref and supp together (one call per level instead of two).
        images = (torch.cat([ref, supp]) - self.mean) / self.std
        pyramid = [images]
        for _ in range(levels - 1):
            pyramid.append(F.avg_pool2d(pyramid[-1], kernel_size=2, stride=2, count_include_pad=False))
        pyramid.reverse()  # coarsest first

        coarsest = 2 ** (levels - 1)
        flow = ref.new_zeros(n, 2, h // coarsest, w // coarsest)
        modules = self.basic_module[NUM_LEVELS - levels:]
        for level, (images, module) in enumerate(zip(pyramid, modules)):
            ref_l, supp_l = images[:n], images[n:]
            if level == 0:
                flow_up = flow
            else:
                flow_up = F.interpolate(flow, scale_factor=2, mode="bilinear", align_corners=True) * 2.0
            warped = flow_warp(supp_l, flow_up.permute(0, 2, 3, 1), padding_mode="border")
            flow = module(torch.cat([ref_l, warped, flow_up], 1)) + flow_up
        return flow


def read_spynet_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], str]:
    """``(state, layout)``: SpyNet's weights in a file, in mgvsr's (= BasicSR's) names without a
    ``spynet.`` prefix, and a description of the file's layout (see the module docstring).

    A BasicSR file is read from ``params`` (``params_ema`` where it has no ``params``); an MMagic
    file's ConvModule names are mapped (:func:`mgvsr.models.checkpoints.mmagic_to_basicsr_key`); a
    full BasicVSR checkpoint gives its ``spynet.*`` tensors.  Unknown names stay, for the loader to list.
    """
    obj = read_checkpoint(path)
    kind = checkpoint_format(obj)
    key = "params" if kind != "basicsr" or "params" in obj else "params_ema"
    state = extract_state_dict(obj, key=key, source=str(path))
    project = {"basicsr": "BasicSR", "mmagic": "MMagic", "bare": "bare state dict"}.get(kind, kind)
    inner = {k[len("spynet."):]: v for k, v in state.items() if k.startswith("spynet.")}
    if inner:
        return inner, f"the SpyNet of a {project} BasicVSR checkpoint"
    names = {"basicsr": "BasicSR SpyNet (spynet_sintel_final-3d2a1287.pth layout)",
             "mmagic": "MMagic SPyNet (spynet_20210409-c6c1bd09.pth layout)"}
    if state and all(k.startswith("basic_module.") or k in ("mean", "std") for k in state):
        return state, names.get(kind, f"SpyNet ({project})")
    return state, f"a {project} file of another layout"


@dataclass(frozen=True)
class SpynetFile:
    """A pretrained SpyNet file that loads: its path, the SHA-256 of its bytes and its layout."""

    path: Path
    sha256: str
    layout: str


def check_spynet_file(path: str | Path) -> SpynetFile:
    """Read ``path`` into a SpyNet (so a wrong file fails here, before any training) and hash it;
    :class:`CheckpointError` naming the file and what is wrong."""
    path = Path(path).expanduser()
    layout = SpyNet().load_pretrained(path)
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return SpynetFile(path.resolve(), digest.hexdigest(), layout)


def pyramid_levels(h: int, w: int) -> int:
    """Levels of the flow pyramid for an ``h x w`` input: six (SpyNet's) from 32 px up; below,
    as many as leave the coarsest level at least 1 px (16 px: five, 8 px: four)."""
    side = min(h, w)
    if side < 1:
        raise ValueError(f"SpyNet needs images of at least 1 pixel per side, got {h}x{w}")
    return min(NUM_LEVELS, side.bit_length())


@torch.no_grad()
def zero_init_flow_heads(spynet: SpyNet) -> None:
    """Zero the last convolution of every level so that an untrained SpyNet outputs zero flow.

    Each level adds its module's output to the upsampled flow of the level below, so with
    these convolutions at zero the flow is exactly zero at every level: BasicVSR then
    starts with identity warps (no alignment) instead of warping features by random
    flows.  The zeroed convolutions still receive gradients (their inputs are non-zero),
    so the flow can be learnt from there.  Do not use it on pretrained weights.
    """
    for module in spynet.basic_module:
        last = module.basic_module[-1]
        last.weight.zero_()
        last.bias.zero_()
    spynet.zero_heads_possible = True


def _up_to_multiple(size: int, multiple: int) -> int:
    if size < 1:
        raise ValueError(f"SpyNet needs images of at least 1 pixel per side, got {size}")
    return -(-size // multiple) * multiple
