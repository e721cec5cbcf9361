"""Modulated deformable convolution (DCNv2), as EDVR's alignment uses it.

:func:`deform_conv2d` has the signature and the offset / mask layout of
``torchvision.ops.deform_conv2d``:

* ``offset``: ``(b, 2 * offset_groups * kh * kw, h_out, w_out)``; for offset group ``g`` and
  kernel tap ``k = i * kw + j`` channel ``2 * (g * kh * kw + k)`` is the vertical shift ``dy``
  and the next channel the horizontal shift ``dx`` (in input pixels).
* ``mask``: ``(b, offset_groups * kh * kw, h_out, w_out)``, channel ``g * kh * kw + k``.

Output pixel ``(y, x)`` reads, for every input channel ``c`` (in offset group ``g``) and tap
``(i, j)``, the input at ``p = (y * stride - pad + i * dilation + dy, x * stride - pad +
j * dilation + dx)`` by bilinear interpolation, where a corner pixel outside the image counts
as 0, multiplies it by the mask and sums ``weight[o, c, i, j]`` times that over ``c, i, j``.

Where torchvision imports, its compiled kernel does the work (:func:`backend_in_use` says which
kernel runs; :func:`use_backend` picks one for a block of code). Elsewhere (torchvision does not
import beside the CPU build of torch) a pure-PyTorch version does: one ``grid_sample`` call
gathers every kernel tap (bilinear, zero padding: the same arithmetic as torchvision's
kernel), the mask multiplies the samples, and one batched matrix product with the weight
contracts over (channels, taps). Its memory is that of an im2col: ``b * c_in * kh * kw *
h_out * w_out`` values per call (plus the same again kept for the backward pass).

:class:`DCNv2Pack` is BasicSR's ``DCNv2Pack``: a modulated deformable 3x3 convolution whose
offsets and mask come from a separate, zero-initialised ``conv_offset`` applied to *another*
feature map (EDVR's alignment features), with BasicSR's parameter names.

**Precision under autocast.** Offsets are positions in pixels: in bf16 an offset between 16 and
32 px moves in steps of 0.125 px (in fp16, 1/64 px), the mask in steps of up to 1/256. So
:func:`deform_conv2d_fp32` computes the offsets, the mask (its sigmoid included) and the
deformable convolution itself in fp32 whatever the autocast (autocast disabled locally, fp16 /
bf16 inputs cast up), and hands the output back in the autocast dtype for the layers after it.
:class:`DCNv2Pack` runs through it; a model with its own offset head (BasicVSR++'s second-order
alignment: offsets from features and flows, ``tanh``-bounded residues) passes its offset function.
:func:`in_fp32` is the same local fp32 region for any other computation on offsets (EDVR's
upsampled pyramid offsets). Without autocast nothing is cast: every tensor keeps its dtype.

**Offset diagnostic without a host sync.** BasicSR warns when a pack's mean ``|offset|`` exceeds
50 px (training diverging), reading it with ``.item()`` at every call: a GPU synchronisation per
call. :class:`OffsetCheck` keeps the largest mean on the device and reads it every ``every``
calls (:data:`OFFSET_CHECK_EVERY` by default) or when asked (:func:`offset_absmeans`).
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

logger = logging.getLogger(__name__)

try:  # torchvision fails in several ways beside a mismatched torch (ImportError, RuntimeError...)
    from torchvision.ops import deform_conv2d as _torchvision_deform_conv2d
except Exception:  # noqa: BLE001 - any failure means "no torchvision kernel here"
    _torchvision_deform_conv2d = None

IntPair = int | tuple[int, int]
LOW_PRECISION = (torch.float16, torch.bfloat16)
# DCNv2Pack reads its largest mean |offset| (one host sync) once every this many calls
OFFSET_CHECK_EVERY = 100
# BasicSR's threshold: a mean |offset| above it (pixels) means the alignment is diverging
OFFSET_WARN_PX = 50.0


def torchvision_available() -> bool:
    """Whether ``torchvision.ops.deform_conv2d`` imported in this environment."""
    return _torchvision_deform_conv2d is not None


def _pair(v: IntPair, name: str) -> tuple[int, int]:
    if isinstance(v, int):
        return v, v
    if len(v) != 2:
        raise ValueError(f"{name} must be an int or a pair of ints, got {v!r}")
    return int(v[0]), int(v[1])


def _check_shapes(x, offset, weight, bias, mask, stride, padding, dilation):
    """Validate shapes; return (offset_groups, weight_groups, h_out, w_out)."""
    if x.dim() != 4:
        raise ValueError(f"input must be (b, c, h, w), got shape {tuple(x.shape)}")
    b, c_in, h, w = x.shape
    c_out, c_in_per_wgroup, kh, kw = weight.shape
    if c_in % c_in_per_wgroup != 0:
        raise ValueError(f"weight {tuple(weight.shape)} does not fit {c_in} input channels")
    weight_groups = c_in // c_in_per_wgroup
    if c_out % weight_groups != 0:
        raise ValueError(f"{c_out} output channels are not divisible into {weight_groups} groups")
    h_out = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    w_out = (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    if h_out < 1 or w_out < 1:
        raise ValueError(f"input {h}x{w} is too small for a {kh}x{kw} kernel with "
                         f"padding {padding} and dilation {dilation}")
    taps = kh * kw
    if offset.dim() != 4 or offset.shape[0] != b or offset.shape[1] % (2 * taps) != 0 \
            or tuple(offset.shape[2:]) != (h_out, w_out):
        raise ValueError(f"offset must be (b={b}, 2 * groups * {taps}, {h_out}, {w_out}), "
                         f"got {tuple(offset.shape)}")
    offset_groups = offset.shape[1] // (2 * taps)
    if c_in % offset_groups != 0:
        raise ValueError(f"{c_in} input channels are not divisible into {offset_groups} offset groups")
    if mask is not None and tuple(mask.shape) != (b, offset_groups * taps, h_out, w_out):
        raise ValueError(f"mask must be {(b, offset_groups * taps, h_out, w_out)}, got {tuple(mask.shape)}")
    if bias is not None and tuple(bias.shape) != (c_out,):
        raise ValueError(f"bias must be ({c_out},), got {tuple(bias.shape)}")
    return offset_groups, weight_groups, h_out, w_out


def _sampling_grid(offset: torch.Tensor, in_size: tuple[int, int], kernel: tuple[int, int],
                   stride, padding, dilation) -> torch.Tensor:
    """Where each tap samples, as a ``grid_sample`` grid.

    offset: ``(b, groups * taps * 2, h_out, w_out)`` -> grid ``(b * groups, taps * h_out, w_out, 2)``
    holding (x, y) normalised for ``align_corners=False`` (valid for any image size, even 1 px).
    """
    b, _, h_out, w_out = offset.shape
    (h, w), (kh, kw) = in_size, kernel
    taps = kh * kw
    offset = offset.reshape(b, -1, taps, 2, h_out, w_out)  # (b, g, taps, [dy, dx], h_out, w_out)
    like = dict(device=offset.device, dtype=offset.dtype)
    # tap (i, j) at output (y, x) reads row y * stride - pad + i * dilation (+ dy), likewise columns
    rows = (torch.arange(h_out, **like) * stride[0] - padding[0]).view(1, h_out, 1) \
        + (torch.arange(kh, **like) * dilation[0]).view(kh, 1, 1)           # (kh, h_out, 1)
    cols = (torch.arange(w_out, **like) * stride[1] - padding[1]).view(1, 1, w_out) \
        + (torch.arange(kw, **like) * dilation[1]).view(kw, 1, 1)           # (kw, 1, w_out)
    rows = rows.repeat_interleave(kw, dim=0)                                   # (taps, h_out, 1)
    cols = cols.repeat(kh, 1, 1)                                               # (taps, 1, w_out)
    y = offset[:, :, :, 0] + rows  # (b, g, taps, h_out, w_out), input pixel coordinates
    x = offset[:, :, :, 1] + cols
    # pixel p -> normalised (2p + 1) / size - 1  (grid_sample, align_corners=False)
    grid = torch.stack(((2 * x + 1) / w - 1, (2 * y + 1) / h - 1), dim=-1)
    return grid.view(-1, taps * h_out, w_out, 2)


def deform_conv2d_torch(x: torch.Tensor, offset: torch.Tensor, weight: torch.Tensor,
                        bias: torch.Tensor | None = None, stride: IntPair = 1, padding: IntPair = 0,
                        dilation: IntPair = 1, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Pure-PyTorch modulated deformable convolution (torchvision's semantics; see module doc).

    x: ``(b, c_in, h, w)``; offset: ``(b, 2 * g * kh * kw, h_out, w_out)``; weight:
    ``(c_out, c_in / weight_groups, kh, kw)``; mask: ``(b, g * kh * kw, h_out, w_out)`` or None
    (all ones); returns ``(b, c_out, h_out, w_out)``. Differentiable in every tensor argument.
    """
    stride, padding, dilation = _pair(stride, "stride"), _pair(padding, "padding"), _pair(dilation, "dilation")
    offset_groups, weight_groups, h_out, w_out = _check_shapes(x, offset, weight, bias, mask,
                                                               stride, padding, dilation)
    b, c_in, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    taps, n_out = kh * kw, h_out * w_out

    # sample positions need at least fp32 (in bf16, 60 + 0.3 rounds to 60.25)
    dtype = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
    grid = _sampling_grid(offset.to(dtype), (h, w), (kh, kw), stride, padding, dilation)
    per_group = x.to(dtype).reshape(b * offset_groups, c_in // offset_groups, h, w)
    samples = F.grid_sample(per_group, grid, mode="bilinear", padding_mode="zeros",
                            align_corners=False)           # (b * g, c_in / g, taps * h_out, w_out)
    samples = samples.view(b, offset_groups, c_in // offset_groups, taps, n_out)
    if mask is not None:
        samples = samples * mask.to(samples.dtype).reshape(b, offset_groups, 1, taps, n_out)
    # columns (b, weight_groups, c_in / weight_groups * taps, n_out); channel-major like weight
    columns = samples.reshape(b, weight_groups, c_in // weight_groups * taps, n_out)
    weight = weight.reshape(weight_groups, c_out // weight_groups, -1)
    out = torch.matmul(weight.to(columns.dtype), columns).view(b, c_out, h_out, w_out)
    if bias is not None:
        out = out + bias.to(out.dtype).view(1, c_out, 1, 1)
    return out.to(x.dtype)


BACKENDS = ("auto", "torch", "torchvision")
_backend = ["auto"]  # the process's choice (:func:`use_backend`); a list so that the context can restore it


@contextlib.contextmanager
def use_backend(name: str):
    """Compute every deformable convolution inside the context with ``name``: ``"auto"`` (torchvision's
    kernel where it imports, else pure PyTorch), ``"torchvision"`` or ``"torch"``."""
    if name not in BACKENDS:
        raise ValueError(f"backend must be 'auto', 'torch' or 'torchvision', got {name!r}")
    if name == "torchvision" and _torchvision_deform_conv2d is None:
        raise RuntimeError("backend='torchvision' asked for, but torchvision does not import here")
    before = _backend[0]
    _backend[0] = name
    try:
        yield
    finally:
        _backend[0] = before


def backend_in_use() -> str:
    """The kernel a deformable convolution runs now: ``"torchvision"`` or ``"torch"`` (mgvsr's pure PyTorch;
    the run log's ``setup`` records it)."""
    if _backend[0] == "torch" or _torchvision_deform_conv2d is None:
        return "torch"
    return "torchvision"


def deform_conv2d(x: torch.Tensor, offset: torch.Tensor, weight: torch.Tensor,
                  bias: torch.Tensor | None = None, stride: IntPair = 1, padding: IntPair = 0,
                  dilation: IntPair = 1, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Modulated deformable convolution with ``torchvision.ops.deform_conv2d``'s signature, by the kernel
    of :func:`backend_in_use` (:func:`use_backend` chooses). Shapes as in :func:`deform_conv2d_torch`."""
    if backend_in_use() == "torch":
        return deform_conv2d_torch(x, offset, weight, bias, stride, padding, dilation, mask)
    return _torchvision_deform_conv2d(x, offset, weight, bias, stride=_pair(stride, "stride"),
                                      padding=_pair(padding, "padding"),
                                      dilation=_pair(dilation, "dilation"), mask=mask)


def autocast_enabled(t: torch.Tensor) -> bool:
    """Whether ``torch.autocast`` is on for ``t``'s device type (False where autocast has none)."""
    try:
        return torch.is_autocast_enabled(t.device.type)
    except RuntimeError:  # a device type autocast does not know (e.g. "meta")
        return False


def in_fp32(fn: Callable[..., torch.Tensor | tuple], *tensors: torch.Tensor | None):
    """``fn(*tensors)`` in fp32 whatever the autocast.

    Where autocast is on for the first tensor's device: autocast is disabled for the call and every
    fp16 / bf16 tensor is cast to fp32 (fp32 and fp64 tensors, and None, pass unchanged), so
    every operation inside runs in fp32 and ``fn``'s results come back in fp32.  Without autocast,
    ``fn(*tensors)`` as it is: nothing is cast.
    """
    first = next((t for t in tensors if t is not None), None)
    if first is None or not autocast_enabled(first):
        return fn(*tensors)
    with torch.autocast(first.device.type, enabled=False):
        return fn(*(t.float() if t is not None and t.dtype in LOW_PRECISION else t for t in tensors))


def deform_conv2d_fp32(x: torch.Tensor, feats: torch.Tensor | Sequence[torch.Tensor],
                       offset_and_mask: Callable[..., tuple[torch.Tensor, torch.Tensor]],
                       weight: torch.Tensor, bias: torch.Tensor | None = None, stride: IntPair = 1,
                       padding: IntPair = 0, dilation: IntPair = 1) -> torch.Tensor:
    """Deformable convolution v2 whose offsets, mask and convolution run in fp32 whatever the autocast.

    x: ``(b, c_in, h, w)``, the features convolved; feats: a tensor or a sequence of tensors from
    which ``offset_and_mask(*feats)`` computes the offset ``(b, 2 * g * kh * kw, h_out, w_out)``
    and the mask ``(b, g * kh * kw, h_out, w_out)`` (after its sigmoid), e.g.
    :meth:`DCNv2Pack.offset_and_mask`, or BasicVSR++'s head on ``(features, flow_1, flow_2)``.
    ``offset_and_mask``, then :func:`deform_conv2d` (weight, bias and geometry as there) run
    inside :func:`in_fp32`: under autocast all of it is fp32 (x, feats, weight and bias cast up
    from fp16 / bf16); tensors ``offset_and_mask`` reads from elsewhere (a closure) are not cast.

    Returns ``(b, c_out, h_out, w_out)``: under autocast in the autocast dtype (as a convolution
    under autocast would return it; fp64 inputs stay fp64), without autocast in ``deform_conv2d``'s
    dtype (x's).
    """
    feats = (feats,) if isinstance(feats, torch.Tensor) else tuple(feats)

    def compute(x, weight, bias, *feats):
        offset, mask = offset_and_mask(*feats)
        return deform_conv2d(x, offset, weight, bias, stride, padding, dilation, mask)

    out = in_fp32(compute, x, weight, bias, *feats)
    if autocast_enabled(x) and x.dtype != torch.float64 and out.dtype == torch.float32:
        out = out.to(torch.get_autocast_dtype(x.device.type))
    return out


class OffsetCheck:
    """BasicSR's "offset abs mean is larger than 50" warning, without a host sync per call.

    :meth:`observe` keeps the largest mean ``|offset|`` seen since the last read as a tensor on the
    offsets' device (no ``.item()``: the GPU is not waited for); every ``every`` observed calls
    :meth:`report` reads it (one sync), logs a warning when it exceeds ``limit`` pixels and starts
    over.  ``every=1`` is BasicSR's behaviour (a read per call), ``every=None`` turns the check off
    (nothing is computed).  :meth:`report` may also be called at any time (see :func:`offset_absmeans`).
    """

    def __init__(self, every: int | None = OFFSET_CHECK_EVERY, limit: float = OFFSET_WARN_PX,
                 name: str = "deformable conv") -> None:
        if every is not None and every < 1:
            raise ValueError(f"every must be a positive number of calls or None, got {every}")
        self.every, self.limit, self.name = every, limit, name
        self.calls = 0  # observed since the last report
        self._largest: torch.Tensor | None = None

    def observe(self, offset: torch.Tensor) -> None:
        """Fold ``offset``'s mean absolute value into the running maximum (on its device)."""
        if self.every is None:
            return
        with torch.no_grad():
            absmean = offset.detach().abs().mean(dtype=torch.float32)
            if self._largest is None or self._largest.device != absmean.device:
                self._largest = absmean
            else:
                self._largest = torch.maximum(self._largest, absmean)
        self.calls += 1
        if self.calls >= self.every:
            self.report()

    def report(self) -> float | None:
        """The largest mean ``|offset|`` (pixels) since the last report, or None if no call was
        observed; warns when it exceeds ``limit``.  Reads one value from the device."""
        largest, calls = self._largest, self.calls
        self._largest, self.calls = None, 0
        if largest is None:
            return None
        value = float(largest.item())
        if value > self.limit:
            logger.warning("%s: offset abs mean reached %.1f px (the largest of %d calls), larger than %g",
                           self.name, value, calls, self.limit)
        return value


def offset_absmeans(model: nn.Module) -> dict[str, float | None]:
    """Every :class:`DCNv2Pack` of ``model``: its largest mean ``|offset|`` since its last report
    (:meth:`OffsetCheck.report`: warns above 50 px, one read from the device per pack)."""
    return {name: m.offset_check.report() for name, m in model.named_modules() if isinstance(m, DCNv2Pack)}


class DCNv2Pack(nn.Module):
    """BasicSR's ``DCNv2Pack``: modulated deformable conv with offsets from other features.

    ``forward(x, feat)``: x ``(b, in_channels, h, w)`` is convolved; feat ``(b, in_channels, h, w)``
    (EDVR: the alignment features) gives, through ``conv_offset`` (zero-initialised, so the layer
    starts as a plain convolution with mask 0.5), ``o1, o2, mask = chunk(3)``, ``offset =
    cat(o1, o2)`` and ``mask = sigmoid(mask)``. Returns ``(b, out_channels, h, w)``.

    Parameter names (``weight``, ``bias``, ``conv_offset.weight``, ``conv_offset.bias``) and the
    initialisation follow BasicSR, so its EDVR checkpoints load.

    Under autocast ``conv_offset``, the sigmoid and the deformable convolution run in fp32 and the
    output comes back in the autocast dtype (:func:`deform_conv2d_fp32`).  ``offset_check_every``:
    how often the offset diagnostic reads the device (:class:`OffsetCheck`; 1 = every call, as
    BasicSR, None = no diagnostic); ``self.offset_check`` holds it.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 padding: int = 1, dilation: int = 1, deformable_groups: int = 8,
                 offset_check_every: int | None = OFFSET_CHECK_EVERY) -> None:
        super().__init__()
        if in_channels % deformable_groups != 0:
            raise ValueError(f"in_channels {in_channels} is not divisible by deformable_groups "
                             f"{deformable_groups}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride, self.padding, self.dilation = stride, padding, dilation
        self.deformable_groups = deformable_groups
        self.offset_check = OffsetCheck(offset_check_every)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, *self.kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels))
        taps = self.kernel_size[0] * self.kernel_size[1]
        self.conv_offset = nn.Conv2d(in_channels, deformable_groups * 3 * taps, self.kernel_size,
                                     stride=stride, padding=padding, dilation=dilation, bias=True)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """BasicSR's init: weight uniform(+-1/sqrt(fan_in)), bias 0, conv_offset all 0."""
        fan_in = self.in_channels * self.kernel_size[0] * self.kernel_size[1]
        bound = 1.0 / math.sqrt(fan_in)
        self.weight.uniform_(-bound, bound)
        self.bias.zero_()
        self.conv_offset.weight.zero_()
        self.conv_offset.bias.zero_()

    def offset_and_mask(self, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """feat ``(b, c, h, w)`` -> offset ``(b, 2 * g * taps, h, w)``, mask ``(b, g * taps, h, w)``."""
        o1, o2, mask = torch.chunk(self.conv_offset(feat), 3, dim=1)
        return torch.cat((o1, o2), dim=1), torch.sigmoid(mask)

    def forward(self, x: torch.Tensor, feat: torch.Tensor) -> torch.Tensor:
        return deform_conv2d_fp32(x, feat, self._checked_offset_and_mask, self.weight, self.bias,
                                  self.stride, self.padding, self.dilation)

    def _checked_offset_and_mask(self, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        offset, mask = self.offset_and_mask(feat)
        if not torch.compiler.is_compiling() and not torch.jit.is_scripting():
            self.offset_check.observe(offset)
        return offset, mask

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"padding={self.padding}, deformable_groups={self.deformable_groups}")

