"""What the trainer and the evaluator may ask of a model: the declared protocol.

A video super-resolution model of mgvsr subclasses :class:`VSRModel` (an ``nn.Module``) and
answers, without being run:

- ``scale``: the upscaling factor (4);
- ``num_frame``: the fixed number of input frames of a *sliding-window* model (EDVR: 5 in,
  the centre one out), or None for a *recurrent* model (BasicVSR: any number of frames in,
  as many out);
- ``center_frame_idx``: the frame a sliding-window model outputs;
- ``patch_multiple``: LR heights and widths must be multiples of it (EDVR's pyramid: 4);
- :meth:`~VSRModel.flow_parameters`: its optical-flow network's parameters (BasicVSR's
  SpyNet), which the trainer gives their own learning rate;
- :meth:`~VSRModel.warm_start_frozen`: the parameters a warm-start recipe keeps frozen at the
  start of training (``"flow"``: SpyNet, BasicVSR's recipe; ``"fusion-only"``: everything but
  the TSA fusion module, EDVR's);
- :meth:`~VSRModel.all_parameters_used`: whether a training step at a patch size reaches every
  parameter (DistributedDataParallel must otherwise look for unused ones);
- :meth:`~VSRModel.target`: the ground-truth frames its output is compared with;
- :meth:`~VSRModel.stream`: its output on a long clip, in pieces, in bounded memory (BasicVSR
  propagates in segments with the same result; the default runs the whole clip at once);
- ``channels_last_on``: the ``(device type, precision)`` pairs where its training steps run
  faster in the ``channels_last`` memory format (measured with ``bench/bench_channels_last.py``;
  the trainer converts the model there by default);
- ``fp32_in_autocast``: what of its forward runs in fp32 inside an autocast region (the deformable
  alignment of BasicVSR++ and EDVR), said in the run log's precision note; empty where nothing does.

The functions below are what the trainer and evaluator call.  They take any ``nn.Module``
(also a DistributedDataParallel wrapper): a module that is not a :class:`VSRModel` is treated
as a plain recurrent model ``(b, t, 3, h, w) -> (b, t, 3, s h, s w)`` with no flow network and
no warm start (tests and users' own models).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn as nn

from mgvsr.errors import MgvsrError

WARM_STARTS = ("flow", "fusion-only")


class VSRModel(nn.Module):
    """Base class of mgvsr's models: the attributes and methods the trainer and evaluator use."""

    scale: int = 4
    num_frame: int | None = None
    center_frame_idx: int | None = None
    patch_multiple: int = 1
    channels_last_on: frozenset[tuple[str, str]] = frozenset()
    fp32_in_autocast: str = ""

    def flow_parameters(self) -> list[nn.Parameter]:
        """The optical-flow network's parameters (none by default)."""
        return []

    def warm_start_frozen(self, recipe: str) -> list[nn.Parameter]:
        """The parameters the warm-start ``recipe`` (one of :data:`WARM_STARTS`) keeps frozen."""
        raise MgvsrError(f"{type(self).__name__} has no {recipe!r} warm start "
                         f"(recipes: {', '.join(WARM_STARTS)})")

    def all_parameters_used(self, patch: int) -> bool:
        """Whether a training step on LR patches of ``patch`` pixels gives every parameter a gradient
        (DistributedDataParallel must look for unused ones where not: SpyNet's coarsest levels are
        skipped below 32 px)."""
        return True

    def target(self, gt: torch.Tensor) -> torch.Tensor:
        """The frames of ``gt`` ``(b, t, 3, H, W)`` the output is compared with: all of them, or the
        centre one ``(b, 3, H, W)`` of a sliding-window model."""
        return gt if self.num_frame is None else gt[:, self.center_frame_idx]

    def stream(self, x: torch.Tensor, segment: int | None = None) -> Iterator[tuple[int, torch.Tensor]]:
        """A recurrent model's output frames on ``x`` ``(1, t, 3, h, w)``, as ``(start, (n, 3, s h,
        s w))`` pieces in time order.  This default: the whole clip in one piece."""
        yield 0, self(x)[0]


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DistributedDataParallel (or DataParallel) wrapper; the model itself otherwise."""
    return model.module if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)) else model


def _declared(model: nn.Module) -> VSRModel | None:
    model = unwrap(model)
    return model if isinstance(model, VSRModel) else None


def sliding_window(model: nn.Module) -> int | None:
    """The fixed input length of a sliding-window model; None for a recurrent one."""
    m = _declared(model)
    return None if m is None else m.num_frame


def center_frame(model: nn.Module) -> int | None:
    m = _declared(model)
    return None if m is None else m.center_frame_idx


def patch_multiple(model: nn.Module) -> int:
    m = _declared(model)
    return 1 if m is None else m.patch_multiple


def flow_parameters(model: nn.Module) -> list[nn.Parameter]:
    m = _declared(model)
    return [] if m is None else m.flow_parameters()


def warm_start_frozen(model: nn.Module, recipe: str) -> list[nn.Parameter]:
    """The parameters kept frozen by ``recipe``; MgvsrError for a model without that warm start."""
    if recipe not in WARM_STARTS:
        raise MgvsrError(f"unknown warm start {recipe!r}; expected one of {', '.join(WARM_STARTS)}")
    m = _declared(model)
    if m is None:
        raise MgvsrError(f"{type(unwrap(model)).__name__} declares no {recipe!r} warm start "
                         "(it is not an mgvsr.models.protocol.VSRModel)")
    return m.warm_start_frozen(recipe)


def all_parameters_used(model: nn.Module, patch: int) -> bool:
    """:meth:`VSRModel.all_parameters_used`; a plain module is assumed to use all its parameters."""
    m = _declared(model)
    return m is None or m.all_parameters_used(patch)


def prefers_channels_last(model: nn.Module, device_type: str, precision: str) -> bool:
    """Whether ``model`` trains faster in ``channels_last`` on ``device_type`` (``"cpu"``, ``"cuda"``) in
    ``precision`` (``"fp32"``, ``"bf16"``, ``"fp16"``), as measured; False for a plain module."""
    m = _declared(model)
    return m is not None and (device_type, precision) in m.channels_last_on


def fp32_in_autocast(model: nn.Module) -> str:
    """What of ``model``'s forward runs in fp32 inside an autocast region (:attr:`VSRModel.fp32_in_autocast`);
    empty for a model that declares nothing."""
    m = _declared(model)
    return "" if m is None else m.fp32_in_autocast


def target_frames(model: nn.Module, gt: torch.Tensor) -> torch.Tensor:
    """The GT the model predicts: every frame (recurrent models) or the centre one (sliding window)."""
    m = _declared(model)
    return gt if m is None else m.target(gt)


def stream(model: nn.Module, x: torch.Tensor, segment: int | None = None) -> Iterator[tuple[int, torch.Tensor]]:
    """:meth:`VSRModel.stream` of a recurrent model (whole clip for a plain module); the output is
    checked to be ``(t, 3, s h, s w)`` frames."""
    m = _declared(model)
    if m is not None:
        yield from m.stream(x, segment)
        return
    y = model(x)
    if y.dim() != 5 or y.shape[:3] != x.shape[:3]:
        raise ValueError(f"a recurrent model maps (b, t, 3, h, w) -> (b, t, 3, s h, s w); "
                         f"{type(model).__name__} returned {tuple(y.shape)} for input {tuple(x.shape)}")
    yield 0, y[0]
