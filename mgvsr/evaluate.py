"""Whole-clip evaluation: super-resolve every clip of a :class:`ClipSource`, score, average.

The protocol of the field (docs/paper-reading.md, "Data and evaluation protocols"):
recurrent models see whole clips; the output is clamped to [0, 1] and rounded to uint8 before
PSNR/SSIM; a clip's score is the mean over its frames and a dataset's the mean over its clips.
Each benchmark scores its own channel and frames (:data:`PROTOCOLS`):

- REDS4 (and the official REDS validation clips): RGB, every frame (BasicSR
  ``test_BasicVSR_REDS.yml``: ``test_y_channel: false``, ``crop_border: 0``);
- Vid4: Y (BT.601), every frame, no border crop;
- Vimeo-90K test: Y, the centre frame ``im4`` only, and recurrent models run on the 7
  frames flip-concatenated to 14 with the two outputs of ``im4`` averaged (BasicSR
  ``test_BasicVSR_Vimeo90K_BIx4.yml``: ``VideoTestVimeo90KDataset``, ``flip_seq: true``,
  ``center_frame_only: true``, ``test_y_channel: true``, ``crop_border: 0``; MMagic does the
  same through ``MirrorSequence`` and ``check_if_mirror_extended``).

Everything goes through one loop, :func:`evaluate`, which takes an *upscaler*: a function
from a clip's LQ frames ``(t, h, w, 3)`` uint8 and the output frames wanted to those SR
frames ``(n, 4h, 4w, 3)`` uint8.  :func:`evaluate_bicubic` and :func:`evaluate_model` only
choose the upscaler.  :func:`super_resolve_clip` is the single place a clip goes through a
model.

**Bounded memory.**  Recurrent models run on whole clips through their streaming forward
(:func:`mgvsr.models.protocol.stream`): BasicVSR propagates a long clip in segments of
``segment`` frames with the same result (:meth:`mgvsr.models.basicvsr.BasicVSR.stream`);
other recurrent models run on the whole clip.

**Sliding-window models** (EDVR: ``num_frame`` frames in, the centre one out) see, for every
output frame ``i``, the ``num_frame`` LR frames around ``i``; at the clip ends the missing
neighbours are filled as BasicSR's ``generate_frame_indices(..., padding='reflection_circle')``
does (:func:`reflection_circle_indices`: frame 0 of a 5-frame window reads ``[4, 3, 0, 1, 2]``),
which is how BasicSR tests EDVR on REDS4.  On Vimeo-90K only ``im4`` is scored and its window
(``im2`` .. ``im6``) needs no padding: BasicSR's ``VideoTestVimeo90KDataset`` reads the same
frames.  Windows are independent, so the result does not depend on how many go through the
model at once: :data:`WINDOW_PIXELS` LR pixels of output frames per call (``windows=`` to
choose), the LR clip kept as uint8 and only the current windows made float.  Memory is that of
the windows in one call, whatever the clip's length; ``segment`` does not apply to them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
from tqdm.auto import tqdm

from mgvsr.data.resize import bicubic_upscale
from mgvsr.data.source import ClipSource
from mgvsr.errors import DataError, MgvsrError
from mgvsr.metrics import ClipScores, mean_scores, score_clip
from mgvsr.models import protocol

__all__ = [
    "Protocol",
    "PROTOCOLS",
    "protocol_for",
    "scoring_protocol",
    "EvalResult",
    "Upscaler",
    "evaluate",
    "evaluate_bicubic",
    "evaluate_model",
    "super_resolve_clip",
    "recurrent_outputs",
    "is_sliding_window",
    "reflection_circle_indices",
    "DEFAULT_SEGMENT",
    "WINDOW_PIXELS",
]

# (LQ clip (t, h, w, 3) uint8, output frames wanted [i, ...]) -> SR frames (n, s*h, s*w, 3) uint8
Upscaler = Callable[[np.ndarray, Sequence[int]], np.ndarray]

# Frames per segment of bounded-memory inference (`mgvsr eval --segment`).  Measured on CPU
# (bench/bench_eval_memory.py, 64 features, 320x180 -> 1280x720, peak of the whole process):
# 2.2 GB at 20 frames, 2.3 GB at 40, 2.6 GB at 100 (264 MB of it the uint8 output), against
# 2.7 GB and 4.4 GB for 20 and 40 frames in one call (+85 MB per frame).
DEFAULT_SEGMENT = 10
# LR pixels of output frames per call of a sliding-window model (windows = WINDOW_PIXELS // (h w),
# at least 1): 4 windows of 64x64, 1 of REDS' 320x180.  Measured for EDVR-M on CPU with the
# pure-PyTorch deformable convolution (inference, 5 frames a window, peak of the whole process):
# ~190 MB a 64x64 window (1 window 0.44 GB, 4 windows 0.99 GB, 16 windows 2.8 GB; one REDS window
# of 320x180 2.3 GB, 33 s), and 4 windows of 64x64 took 1.7 s a window against 2.2 s one at a time
# and 2.3 s in 16 (one thread).  The deformable convolution's im2col at full LR size alone is
# 5 x 64 x 9 x h w floats (47 MB a 64x64 window) per copy (mgvsr.models.dcn).
WINDOW_PIXELS = 16384


@dataclass(frozen=True)
class Protocol:
    """How a benchmark is scored.

    - ``channel``: "rgb" or "y" (BT.601 luma, as MATLAB's ``rgb2ycbcr``);
    - ``crop_border``: pixels cut from each side before scoring;
    - ``center_frame_only``: score only frame ``t // 2`` of each clip (Vimeo-90K's ``im4``);
    - ``flip_seq``: recurrent models run on the clip followed by itself reversed and the two
      outputs of each frame are averaged before rounding (BasicSR's ``flip_seq``).
    """

    channel: str = "y"
    crop_border: int = 0
    center_frame_only: bool = False
    flip_seq: bool = False

    def describe(self) -> str:
        parts = [f"{self.channel.upper()} channel", f"crop border {self.crop_border}"]
        if self.center_frame_only:
            parts.append("centre frame only")
        if self.flip_seq:
            parts.append("flip-averaged")
        return ", ".join(parts)


PROTOCOLS: dict[str, Protocol] = {
    "reds4": Protocol("rgb"),
    "reds_val": Protocol("rgb"),
    "reds": Protocol("rgb"),
    "reds_official": Protocol("rgb"),
    "vid4": Protocol("y"),
    "vimeo90k": Protocol("y", center_frame_only=True, flip_seq=True),
}
DEFAULT_PROTOCOL = Protocol("y")  # folders of clips, the sample clips: Y, every frame


def protocol_for(dataset: str) -> Protocol:
    """The protocol of a benchmark by its name (a source's ``name``); Y on every frame for others."""
    return PROTOCOLS.get(dataset, DEFAULT_PROTOCOL)


@dataclass
class EvalResult:
    """Per-clip and mean scores of one model on one dataset."""

    dataset: str
    model: str
    channel: str
    crop_border: int
    clips: dict[str, ClipScores]
    seconds: float
    center_frame_only: bool = False
    flip_seq: bool = False

    @property
    def mean(self) -> dict[str, float]:
        """``{"psnr", "ssim"}``: means over clips."""
        return mean_scores(self.clips)

    def to_dict(self, frames: bool = False) -> dict:
        """A JSON-ready dict; ``frames=True`` adds every frame's PSNR and SSIM."""
        return {
            "dataset": self.dataset,
            "model": self.model,
            "channel": self.channel,
            "crop_border": self.crop_border,
            "center_frame_only": self.center_frame_only,
            "flip_seq": self.flip_seq,
            "clips": {name: c.to_dict(frames) for name, c in self.clips.items()},
            "mean": self.mean,
            "seconds": round(self.seconds, 3),
        }

    def table(self) -> str:
        """A readable table: one row per clip, then the mean (PSNR 2 decimals, SSIM 4)."""
        width = max([len(n) for n in self.clips] + [len("mean")])
        how = Protocol(self.channel, self.crop_border, self.center_frame_only, self.flip_seq).describe()
        lines = [
            f"{self.model} on {self.dataset} ({how})",
            f"{'clip':<{width}}  frames  PSNR (dB)    SSIM",
        ]
        rows = list(self.clips.items())
        shown = rows if len(rows) <= 50 else rows[:20] + rows[-5:]  # Vimeo-90K: thousands of clips
        for k, (name, c) in enumerate(shown):
            if len(shown) < len(rows) and k == 20:
                lines.append(f"{'...':<{width}}  ({len(rows) - len(shown)} more clips)")
            lines.append(f"{name:<{width}}  {c.frames:>6}  {c.psnr:>9.2f}  {c.ssim:.4f}")
        total = sum(c.frames for c in self.clips.values())
        m = self.mean
        lines.append(f"{'mean':<{width}}  {total:>6}  {m['psnr']:>9.2f}  {m['ssim']:.4f}")
        lines.append(f"({self.seconds:.1f} s)")
        return "\n".join(lines)


def evaluate(
    source: ClipSource,
    upscale: Upscaler,
    channel: str = "y",
    crop_border: int = 0,
    progress: bool = True,
    model_name: str = "model",
    center_frame_only: bool = False,
    flip_seq: bool = False,
) -> EvalResult:
    """Run ``upscale`` on every whole clip of ``source`` and score the wanted frames against the GT.

    Every frame is scored, or only frame ``t // 2`` with ``center_frame_only`` (the model
    still sees the whole clip).  ``flip_seq`` is only recorded here: the upscaler does it.
    """
    start = time.perf_counter()
    scores: dict[str, ClipScores] = {}
    names = source.clips()
    if not names:
        raise DataError(f"{source.name}: no clips to evaluate")
    bar = tqdm(names, desc=f"{model_name} on {source.name}", unit="clip", disable=not progress)
    for clip in bar:
        bar.set_postfix_str(clip, refresh=False)
        t = source.num_frames(clip)
        if center_frame_only:
            frames = [t // 2]
            lq, gt = source.read_lq(clip, range(t)), source.read_gt(clip, frames)
        else:
            frames = list(range(t))
            lq, gt = source.read_clip(clip)
        sr = upscale(lq, frames)
        if sr.shape != gt.shape or sr.dtype != np.uint8:
            raise ValueError(
                f"{model_name} turned clip {clip!r} LQ {lq.shape} into {sr.shape} {sr.dtype}; "
                f"expected uint8 {gt.shape} like its ground truth"
            )
        scores[clip] = score_clip(sr, gt, channel, crop_border)
    return EvalResult(source.name, model_name, channel, crop_border, scores, time.perf_counter() - start,
                      center_frame_only, flip_seq)


def scoring_protocol(source: ClipSource, channel: str | None = None, crop_border: int | None = None,
                     protocol: Protocol | None = None) -> Protocol:
    """``protocol`` (default: that of ``source``, by its name) with explicit ``channel`` / ``crop_border``
    overrides."""
    p = protocol or protocol_for(source.name)
    return Protocol(channel or p.channel, p.crop_border if crop_border is None else crop_border,
                    p.center_frame_only, p.flip_seq)


def evaluate_bicubic(
    source: ClipSource, channel: str | None = None, crop_border: int | None = None, progress: bool = True,
    protocol: Protocol | None = None,
) -> EvalResult:
    """The bicubic baseline: MATLAB bicubic upscaling of the LQ frames, rounded to uint8.

    ``channel`` / ``crop_border`` default to the protocol of ``source.name`` (:func:`protocol_for`).
    """
    p = scoring_protocol(source, channel, crop_border, protocol)
    return evaluate(
        source,
        lambda lq, frames: bicubic_upscale(lq[list(frames)], source.scale),
        p.channel,
        p.crop_border,
        progress,
        model_name="bicubic",
        center_frame_only=p.center_frame_only,
    )


# ---- a clip through a model ------------------------------------------------------------------------
def is_sliding_window(model: nn.Module) -> bool:
    """EDVR-style models: ``num_frame`` frames in, the centre frame ``center_frame_idx`` out."""
    return protocol.sliding_window(model) is not None


def recurrent_outputs(model: nn.Module, x: torch.Tensor, segment: int | None = None
                      ) -> Iterator[tuple[int, torch.Tensor]]:
    """A recurrent model's output frames on ``x`` ``(1, t, 3, h, w)``, as ``(start, (n, 3, sh, sw))`` pieces in order.

    One piece (the whole clip) unless ``segment`` is smaller than the clip and the model streams
    (:func:`mgvsr.models.protocol.stream`; BasicVSR: in segments, with the same result).
    """
    if segment is not None and segment < 1:
        raise ValueError(f"segment must be a positive number of frames or None, got {segment}")
    yield from protocol.stream(model, x, segment)


def _to_uint8(frame: torch.Tensor) -> np.ndarray:
    """``(3, H, W)`` RGB in [0, 1] -> ``(H, W, 3)`` uint8: clamped, rounded half to even (as numpy/BasicSR)."""
    return frame.clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def reflection_circle_indices(center: int, num_frames: int, window: int) -> list[int]:
    """The ``window`` frame indices around ``center`` in a clip of ``num_frames`` frames, padded at the ends.

    BasicSR's ``generate_frame_indices(center, num_frames, window, padding='reflection_circle')``:
    a neighbour ``k`` before the clip start reads frame ``center + window // 2 - k``, one after the
    clip end (``num_frames - 1``) frame ``center - window // 2 - (k - (num_frames - 1))``; the others
    read ``k``.  E.g. 10 frames, window 5: ``0 -> [4, 3, 0, 1, 2]``, ``9 -> [7, 8, 9, 6, 5]``.
    ``window`` must be odd and at most ``num_frames`` (shorter clips would read outside the clip).
    """
    if window < 1 or window % 2 == 0:
        raise ValueError(f"a sliding window needs an odd number of frames, got {window}")
    if num_frames < window:
        raise DataError(f"a clip of {num_frames} frames is shorter than the {window}-frame window; "
                        f"expected at least {window} frames")
    if not 0 <= center < num_frames:
        raise ValueError(f"centre frame {center} is outside 0..{num_frames - 1}")
    half, last = window // 2, num_frames - 1
    indices = []
    for k in range(center - half, center + half + 1):
        if k < 0:
            k = center + half - k
        elif k > last:
            k = center - half - (k - last)
        indices.append(k)
    return indices


def _sliding_window(model: nn.Module, lq: np.ndarray, frames: list[int], device: torch.device | str,
                    windows: int | None = None) -> np.ndarray:
    """A sliding-window model on a whole clip: ``lq`` ``(t, h, w, 3)`` uint8 -> ``(n, s h, s w, 3)`` uint8.

    Output frame ``frames[j]`` is the model's output on the window around it
    (:func:`reflection_circle_indices`); ``windows`` of them go through the model at a time
    (default ``WINDOW_PIXELS // (h w)``, at least 1).
    """
    n, centre = protocol.sliding_window(model), protocol.center_frame(model)
    name = type(model).__name__
    if n % 2 == 0 or centre != n // 2:
        raise MgvsrError(f"{name} outputs frame {centre} of a {n}-frame window; whole-clip evaluation needs "
                         "the centre of an odd window (num_frame odd, center_frame_idx = num_frame // 2)")
    t, h, w, _ = lq.shape
    if t < n:
        raise DataError(f"{name} takes {n}-frame windows, but the clip has only {t} frames")
    if windows is not None and windows < 1:
        raise ValueError(f"windows must be a positive number of windows per call or None, got {windows}")
    per_call = windows or max(1, WINDOW_PIXELS // (h * w))
    param = next(model.parameters(), None)
    dtype = param.dtype if param is not None else torch.float32
    clip = torch.from_numpy(np.ascontiguousarray(lq)).to(device)  # (t, h, w, 3) uint8: float per window only
    out: np.ndarray | None = None
    with torch.inference_mode():
        for start in range(0, len(frames), per_call):
            chunk = frames[start : start + per_call]
            index = torch.tensor([reflection_circle_indices(i, t, n) for i in chunk], device=clip.device)
            x = clip[index].permute(0, 1, 4, 2, 3).to(dtype).div(255)  # (k, n, 3, h, w)
            y = model(x)
            if y.dim() != 4 or y.shape[:2] != (len(chunk), 3):
                raise ValueError(f"{name} is a sliding-window model and should return (b, 3, s h, s w); "
                                 f"it returned {tuple(y.shape)} for input {tuple(x.shape)}")
            if out is None:
                out = np.empty((len(frames), y.shape[2], y.shape[3], 3), np.uint8)
            for j in range(len(chunk)):
                out[start + j] = _to_uint8(y[j])
    assert out is not None
    return out


def super_resolve_clip(
    model: nn.Module,
    lq: np.ndarray,
    device: torch.device | str = "cpu",
    *,
    frames: Sequence[int] | None = None,
    flip_seq: bool = False,
    segment: int | None = None,
    windows: int | None = None,
) -> np.ndarray:
    """Run a model on one whole clip; the single place a clip goes through a model.

    ``lq``: ``(t, h, w, 3)`` uint8 RGB.  A recurrent model takes ``(1, t, 3, h, w)`` RGB in
    [0, 1] and returns ``(1, t, 3, s h, s w)``.  Returns the output frames ``frames``
    (default: all ``t``) as ``(n, s h, s w, 3)`` uint8, clamped and rounded.

    - ``flip_seq``: run on the clip followed by itself reversed (``2t`` frames) and average
      the two outputs of each frame before rounding (BasicSR's Vimeo-90K test).
    - ``segment``: bounded-memory inference in segments of this many frames, equal to the
      whole-clip result (see the module docstring); None = the whole clip in one call.
    - Sliding-window models (``num_frame``, ``center_frame_idx``) run on the window around each
      wanted frame, padded at the clip ends as BasicSR (see the module docstring), ``windows``
      windows per call (default: :data:`WINDOW_PIXELS` LR pixels); ``segment`` does not apply and
      ``flip_seq`` is refused (BasicSR does not flip for them).
    """
    t = len(lq)
    wanted = list(range(t)) if frames is None else [int(i) for i in frames]
    if any(not 0 <= i < t for i in wanted) or len(set(wanted)) != len(wanted):
        raise ValueError(f"frames must be distinct indices in 0..{t - 1}, got {wanted}")
    if is_sliding_window(model):
        if flip_seq:
            raise ValueError(f"flip_seq averages a recurrent model's two passes; {type(model).__name__} is a "
                             "sliding-window model (BasicSR tests it without flipping)")
        return _sliding_window(model, lq, wanted, device, windows)
    param = next(model.parameters(), None)
    dtype = param.dtype if param is not None else torch.float32
    x = torch.from_numpy(np.ascontiguousarray(lq)).to(device)
    x = x.permute(0, 3, 1, 2).to(dtype).div(255).unsqueeze(0)  # (1, t, 3, h, w)
    if flip_seq:
        x = torch.cat([x, x.flip(1)], 1)  # frame j >= t of these is frame 2t - 1 - j
    slot = {i: k for k, i in enumerate(wanted)}
    out: np.ndarray | None = None
    pending: dict[int, torch.Tensor] = {}  # flip_seq: first outputs waiting for their mirror
    with torch.inference_mode():
        for start, piece in recurrent_outputs(model, x, segment):
            for k in range(piece.shape[0]):
                j = start + k
                i = j if j < t else 2 * t - 1 - j
                if i not in slot:
                    continue
                if flip_seq and j < t:
                    pending[i] = piece[k]
                    continue
                frame = 0.5 * (pending.pop(i) + piece[k]) if flip_seq else piece[k]
                if out is None:
                    out = np.empty((len(wanted), frame.shape[1], frame.shape[2], 3), np.uint8)
                out[slot[i]] = _to_uint8(frame)
    assert out is not None and not pending
    return out


def evaluate_model(
    model: nn.Module,
    source: ClipSource,
    protocol: Protocol | None = None,
    *,
    device: torch.device | str | None = None,
    progress: bool = True,
    model_name: str | None = None,
    segment: int | None = None,
    windows: int | None = None,
) -> EvalResult:
    """Score a model on whole clips under ``protocol`` (default: the protocol of ``source.name``,
    :func:`protocol_for`; :func:`scoring_protocol` overrides its channel or border).  ``device``
    defaults to CUDA when available; the model is put in eval mode on it.  ``segment``:
    bounded-memory inference of recurrent models; ``windows``: windows per call of sliding-window
    models (see :func:`super_resolve_clip`).
    """
    p = protocol or protocol_for(source.name)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model = model.to(device).eval()
    flip = p.flip_seq and not is_sliding_window(model)
    return evaluate(
        source,
        lambda lq, frames: super_resolve_clip(model, lq, device, frames=frames, flip_seq=flip, segment=segment,
                                              windows=windows),
        p.channel,
        p.crop_border,
        progress,
        model_name=model_name or type(model).__name__,
        center_frame_only=p.center_frame_only,
        flip_seq=flip,
    )
