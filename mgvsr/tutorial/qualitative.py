"""Qualitative results (the paper's Figs. 4-5): zoomed crops, temporal profiles, frame by frame.

The pieces, each a plain function on ``(t, H, W, 3)`` uint8 RGB frames:

- :func:`open_clip`: the frames to look at: a Vid4 clip (``data_root`` holding ``GT/``), a
  folder of LR frames without ground truth (REDS' ``train_sharp_bicubic`` frames, the
  ``reds_demo_lr`` demo frames), or a held-out sample clip (no ``data_root``);
- :func:`restore_clip`: bicubic and each trained model on the clip's LR frames;
- :func:`pick_box`: the most detailed window of a frame (where differences show);
- :func:`zoomed_crops` and :func:`temporal_profile`: what the figures of :mod:`mgvsr.tutorial.viz` draw.
  A temporal profile stacks one row of pixels from every frame, top to bottom in time:
  flicker and temporal inconsistency show as jagged streaks that single frames hide;
- :func:`comparison_figure`: the frame-by-frame comparison, the callback of
  :func:`frame_explorer`'s slider.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from mgvsr.data.datasets import open_dataset
from mgvsr.data.io import list_frames, read_frame
from mgvsr.data.resize import bicubic_upscale
from mgvsr.errors import DataError, MgvsrError
from mgvsr.evaluate import super_resolve_clip
from mgvsr.metrics import psnr
from mgvsr.models import load_model  # noqa: F401  (notebook 8 loads the demo's weights with it)
from mgvsr.paths import shared_data_dir
from mgvsr.device import resolve_device
from mgvsr.tutorial.viz import plot_crops
from mgvsr.tutorial.widgets import figure_png

Box = tuple[int, int, int, int]  # (top, left, height, width) in output (HR) pixels
SCALE = 4


@dataclass
class Clip:
    """Frames to look at: ``lq`` ``(t, h, w, 3)`` uint8, ``gt`` ``(t, 4h, 4w, 3)`` uint8 or None
    (LR-only input), a ``name`` and where it came from (``origin``)."""

    name: str
    origin: str
    lq: np.ndarray
    gt: np.ndarray | None

    @property
    def frames(self) -> int:
        return len(self.lq)


def _frame_range(total: int, first: int, count: int | None, where: str) -> list[int]:
    if not 0 <= first < total:
        raise DataError(f"{where} has frames 0..{total - 1}; first frame {first} is out of range")
    stop = total if count is None else min(total, first + count)
    return list(range(first, stop))


def open_clip(data_root: str | Path | None = None, clip: str | None = None, first: int = 0,
              frames: int | None = 10) -> Clip:
    """The frames of notebook 8: ``frames`` frames from ``first`` of one clip.

    - ``data_root`` empty: the held-out sample clip ``clip`` (default: the first);
    - ``data_root/GT`` exists: Vid4 (or any folder of clips in its layout), clip ``clip``
      (default: ``calendar`` when present, else the first), LR frames from ``BIx4`` or made by
      MATLAB bicubic;
    - ``data_root`` holds image frames: LR frames without ground truth.
    """
    if not data_root:
        source = open_dataset("sample", split="test")
        origin = "held-out sample clip (rendered from a photograph, MATLAB-bicubic LR)"
    else:
        root = Path(data_root)
        if not root.is_dir():
            raise DataError(f"data_root {root} is not a folder (expected Vid4 with GT/, or a folder of LR frames)")
        if (root / "GT").is_dir():
            source = open_dataset("vid4", root, split="test")
            origin = f"{root} (ground truth, MATLAB-bicubic LR)"
        else:
            paths = list_frames(root)
            idx = _frame_range(len(paths), first, frames, str(root))
            lq = np.stack([read_frame(paths[i]) for i in idx])
            return Clip(root.name, f"{root} (LR frames only, no ground truth)", lq, None)
    names = source.clips()
    if clip is None:
        clip = "calendar" if "calendar" in names else names[0]
    if clip not in names:
        raise DataError(f"no clip {clip!r} in {source.name}; it has {', '.join(names)}")
    idx = _frame_range(source.num_frames(clip), first, frames, f"clip {clip!r}")
    return Clip(clip, origin, source.read_lq(clip, idx), source.read_gt(clip, idx))


def restore_clip(clip: Clip, models: Mapping[str, object], device: str = "auto") -> dict[str, np.ndarray]:
    """``{"bicubic": ..., <model name>: ..., "GT": ...}``: each ``(t, 4h, 4w, 3)`` uint8, the GT
    last when the clip has one.  Models run on the whole clip (:func:`mgvsr.evaluate.super_resolve_clip`)."""
    device = resolve_device(device) if isinstance(device, str) else device
    outputs = {"bicubic": bicubic_upscale(clip.lq, SCALE)}
    for name, model in models.items():
        outputs[name] = super_resolve_clip(model.to(device).eval(), clip.lq, device)
    if clip.gt is not None:
        outputs["GT"] = clip.gt
    return outputs


def _check_frames(outputs: Mapping[str, np.ndarray]) -> tuple[int, int, int]:
    if not outputs:
        raise MgvsrError("no outputs to compare")
    shapes = {name: a.shape for name, a in outputs.items()}
    first = next(iter(shapes.values()))
    if len(first) != 4 or first[-1] != 3 or any(s != first for s in shapes.values()):
        raise MgvsrError(f"outputs must all be (t, H, W, 3) frames of one shape, got {shapes}")
    return first[0], first[1], first[2]


def _check_box(box: Box, height: int, width: int) -> Box:
    top, left, h, w = (int(v) for v in box)
    if h <= 0 or w <= 0 or top < 0 or left < 0 or top + h > height or left + w > width:
        raise MgvsrError(f"box (top={top}, left={left}, height={h}, width={w}) does not fit frames of "
                         f"{width}x{height}")
    return top, left, h, w


def detail_map(frame: np.ndarray) -> np.ndarray:
    """Gradient magnitude of a frame's luma ``(H, W)`` float: where the detail is."""
    y = frame.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    gy, gx = np.gradient(y)
    return np.hypot(gx, gy)


def pick_box(frame: np.ndarray, size: int = 64, stride: int = 8) -> Box:
    """The ``size`` x ``size`` window of ``frame`` ``(H, W, 3)`` with the most detail (sum of
    :func:`detail_map`), on a grid of ``stride`` pixels; ties go to the top-left one."""
    height, width = frame.shape[:2]
    size = min(size, height, width)
    energy = detail_map(frame)
    integral = np.pad(energy.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    tops = np.arange(0, height - size + 1, stride)
    lefts = np.arange(0, width - size + 1, stride)
    t, l = np.meshgrid(tops, lefts, indexing="ij")
    sums = integral[t + size, l + size] - integral[t, l + size] - integral[t + size, l] + integral[t, l]
    k = int(np.argmax(sums))
    return int(t.flat[k]), int(l.flat[k]), size, size


def default_box(outputs: Mapping[str, np.ndarray], index: int | None = None) -> Box:
    """:func:`pick_box` on frame ``index`` (default: the middle one) of the GT, or of bicubic
    without a GT, a quarter of the frame's shorter side (at least 32, a multiple of 8)."""
    t, height, width = _check_frames(outputs)
    index = t // 2 if index is None else index
    reference = outputs["GT"] if "GT" in outputs else outputs.get("bicubic", next(iter(outputs.values())))
    size = max(32, min(height, width) // 4 // 8 * 8)
    return pick_box(reference[index], size=size)


def zoomed_crops(outputs: Mapping[str, np.ndarray], index: int, box: Box) -> dict[str, np.ndarray]:
    """Frame ``index`` of every output cut to ``box``: ``{name: (h, w, 3)}`` uint8."""
    t, height, width = _check_frames(outputs)
    if not 0 <= index < t:
        raise MgvsrError(f"frame index {index} is out of range 0..{t - 1}")
    top, left, h, w = _check_box(box, height, width)
    return {name: frames[index, top:top + h, left:left + w] for name, frames in outputs.items()}


def crop_scores(crops: Mapping[str, np.ndarray], reference: str = "GT") -> dict[str, float]:
    """PSNR (Y channel) of every crop against the ``reference`` crop; empty without one."""
    if reference not in crops:
        return {}
    gt = crops[reference]
    return {name: float(psnr(c[None], gt[None], channel="y")) for name, c in crops.items() if name != reference}


def temporal_profile(frames: np.ndarray, row: int, cols: tuple[int, int] | None = None) -> np.ndarray:
    """Row ``row`` of every frame, stacked in time: ``(t, w, 3)`` for frames ``(t, H, W, 3)``
    (columns ``cols = (start, stop)``, default all)."""
    if frames.ndim != 4:
        raise MgvsrError(f"frames must be (t, H, W, 3), got shape {frames.shape}")
    t, height, width, _ = frames.shape
    if not 0 <= row < height:
        raise MgvsrError(f"row {row} is out of range 0..{height - 1}")
    start, stop = (0, width) if cols is None else cols
    if not 0 <= start < stop <= width:
        raise MgvsrError(f"columns {start}..{stop} do not fit frames of width {width}")
    return np.ascontiguousarray(frames[:, row, start:stop])


def temporal_profiles(outputs: Mapping[str, np.ndarray], row: int, cols: tuple[int, int] | None = None
                      ) -> dict[str, np.ndarray]:
    """:func:`temporal_profile` of every output: ``{name: (t, w, 3)}``."""
    _check_frames(outputs)
    return {name: temporal_profile(frames, row, cols) for name, frames in outputs.items()}


def profile_scores(profiles: Mapping[str, np.ndarray], reference: str = "GT") -> dict[str, float]:
    """PSNR (Y) of every temporal profile against the ``reference`` one; empty without one."""
    return crop_scores(profiles, reference)


def comparison_figure(outputs: Mapping[str, np.ndarray], index: int, box: Box, *, title: str | None = None):
    """The frame-by-frame comparison at frame ``index``: the whole frame with ``box`` drawn
    (the GT's, else the first output's) and every output's zoomed crop, each titled with its
    PSNR against the GT crop when there is one.  Returns the figure (:func:`mgvsr.tutorial.viz.plot_crops`)."""
    crops = zoomed_crops(outputs, index, box)
    context = outputs["GT"][index] if "GT" in outputs else next(iter(outputs.values()))[index]
    heading = title if title is not None else f"frame {index}"
    return plot_crops(crops, crop_scores(crops), context=context, box=box, title=heading)


def frame_view(outputs: Mapping[str, np.ndarray], box: Box, title: str = "", index: int = 0):
    """What :func:`frame_explorer` shows with its slider at frame ``index`` (0: its first state), as
    a static figure (:func:`comparison_figure`): the picture a page without a kernel can show."""
    return comparison_figure(outputs, index, box, title=f"{title} frame {index}".strip())


def frame_explorer(outputs: Mapping[str, np.ndarray], box: Box, title: str = ""):
    """An ipywidgets slider over the frames, showing :func:`frame_view` of the chosen one.

    Returns ``(box_widget, slider, image)``; display the first.  Needs a running kernel.
    """
    import ipywidgets as w

    t, _, _ = _check_frames(outputs)
    slider = w.IntSlider(value=0, min=0, max=t - 1, description="frame", continuous_update=False)
    image = w.Image(format="png", layout=w.Layout(max_width="900px"))

    def show(index: int) -> None:
        image.value = figure_png(frame_view(outputs, box, title, index))

    slider.observe(lambda change: show(change["new"]), names="value")
    show(0)
    return w.VBox([slider, image]), slider, image


def frame_scores(outputs: Mapping[str, np.ndarray], reference: str = "GT") -> dict[str, np.ndarray]:
    """Per-frame PSNR (Y) of every output against ``reference``: ``{name: (t,)}``; empty without it."""
    if reference not in outputs:
        return {}
    gt = outputs[reference]
    return {name: np.array([psnr(f, g, channel="y") for f, g in zip(frames, gt)])
            for name, frames in outputs.items() if name != reference}


def scores_text(outputs: Mapping[str, np.ndarray], reference: str = "GT") -> str:
    """Mean PSNR (Y) over the frames of every output against ``reference``, as text."""
    per_frame = frame_scores(outputs, reference)
    if not per_frame:
        return "no ground truth: no scores (a qualitative look only)"
    width = max(len(n) for n in per_frame)
    return "\n".join(f"{name:<{width}}  {v.mean():6.2f} dB (Y, mean of {len(v)} frames)" for name, v in per_frame.items())


def model_checkpoints(demo_folder: str | Path, runs: Sequence[str] = ("baseline", "ours")) -> dict[str, Path]:
    """The demo's trained weights: ``{run: demo_folder/run/final.pth}`` for the runs that have one."""
    folder = Path(demo_folder)
    return {run: folder / run / "final.pth" for run in runs if (folder / run / "final.pth").is_file()}


def find_vid4(root: str | Path | None = None) -> Path | None:
    """Vid4's root for notebook 8's second comparison: ``root`` (it must hold ``GT/``), else
    ``vid4`` in the developers' shared data (:func:`mgvsr.paths.shared_data_dir`) where present,
    else None (the notebook skips Vid4)."""
    if root:
        root = Path(root)
        if not (root / "GT").is_dir():
            raise DataError(f"vid4_root {root} has no GT/ folder (expected Vid4: GT/<clip>/<frame>.png)")
        return root
    shared = shared_data_dir()
    found = None if shared is None else shared / "vid4"
    return found if found is not None and (found / "GT").is_dir() else None
