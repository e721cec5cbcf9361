"""Whole-clip evaluation: super-resolve every clip of a :class:`ClipSource`, score, average.

The protocol of the field (REFERENCE.md section 3): recurrent models see whole clips; the
output is clamped to [0, 1] and rounded to uint8 before PSNR/SSIM; a clip's score is the
mean over its frames and a dataset's the mean over its clips.

Everything goes through one loop, :func:`evaluate`, which takes an *upscaler*: a function
from a clip's LQ frames ``(t, h, w, 3)`` uint8 to its output ``(t, 4h, 4w, 3)`` uint8.
:func:`evaluate_bicubic` and :func:`evaluate_model` only choose the upscaler, so a
memory-bounded variant (splitting long clips in time) is a new upscaler, not a new loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
from tqdm.auto import tqdm

from mgvsr.data.resize import bicubic_upscale
from mgvsr.data.source import ClipSource
from mgvsr.errors import DataError
from mgvsr.metrics import ClipScores, mean_scores, score_clip

__all__ = ["EvalResult", "Upscaler", "evaluate", "evaluate_bicubic", "evaluate_model", "super_resolve_clip"]

# LQ clip (t, h, w, 3) uint8 -> SR clip (t, s*h, s*w, 3) uint8
Upscaler = Callable[[np.ndarray], np.ndarray]


@dataclass
class EvalResult:
    """Per-clip and mean scores of one model on one dataset."""

    dataset: str
    model: str
    channel: str
    crop_border: int
    clips: dict[str, ClipScores]
    seconds: float

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
            "clips": {name: c.to_dict(frames) for name, c in self.clips.items()},
            "mean": self.mean,
            "seconds": round(self.seconds, 3),
        }

    def table(self) -> str:
        """A readable table: one row per clip, then the mean (PSNR 2 decimals, SSIM 4)."""
        width = max([len(n) for n in self.clips] + [len("mean")])
        lines = [
            f"{self.model} on {self.dataset} ({self.channel.upper()} channel, crop border {self.crop_border})",
            f"{'clip':<{width}}  frames  PSNR (dB)    SSIM",
        ]
        for name, c in self.clips.items():
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
) -> EvalResult:
    """Run ``upscale`` on every whole clip of ``source`` and score it against the GT."""
    start = time.perf_counter()
    scores: dict[str, ClipScores] = {}
    names = source.clips()
    if not names:
        raise DataError(f"{source.name}: no clips to evaluate")
    bar = tqdm(names, desc=f"{model_name} on {source.name}", unit="clip", disable=not progress)
    for clip in bar:
        bar.set_postfix_str(clip)
        lq, gt = source.read_clip(clip)
        sr = upscale(lq)
        if sr.shape != gt.shape or sr.dtype != np.uint8:
            raise ValueError(
                f"{model_name} turned clip {clip!r} LQ {lq.shape} into {sr.shape} {sr.dtype}; "
                f"expected uint8 {gt.shape} like its ground truth"
            )
        scores[clip] = score_clip(sr, gt, channel, crop_border)
    return EvalResult(source.name, model_name, channel, crop_border, scores, time.perf_counter() - start)


def evaluate_bicubic(
    source: ClipSource, channel: str = "y", crop_border: int = 0, progress: bool = True
) -> EvalResult:
    """The bicubic baseline: MATLAB bicubic upscaling of the LQ frames, rounded to uint8."""
    return evaluate(
        source,
        lambda lq: bicubic_upscale(lq, source.scale),
        channel,
        crop_border,
        progress,
        model_name="bicubic",
    )


def super_resolve_clip(model: nn.Module, lq: np.ndarray, device: torch.device | str = "cpu") -> np.ndarray:
    """Run a recurrent model on one whole clip.

    ``lq``: ``(t, h, w, 3)`` uint8 RGB.  The model takes ``(1, t, 3, h, w)`` RGB in [0, 1]
    and returns ``(1, t, 3, s h, s w)``; the result is clamped, rounded to uint8 and
    returned as ``(t, s h, s w, 3)``.  (Bounded-memory temporal splitting belongs here.)
    """
    param = next(model.parameters(), None)
    dtype = param.dtype if param is not None else torch.float32
    x = torch.from_numpy(np.ascontiguousarray(lq)).to(device)
    x = x.permute(0, 3, 1, 2).to(dtype).div(255).unsqueeze(0)  # (1, t, 3, h, w)
    with torch.inference_mode():
        y = model(x)
    if y.dim() != 5 or y.shape[:3] != x.shape[:3]:
        raise ValueError(
            f"evaluate_model needs a recurrent model (b, t, 3, h, w) -> (b, t, 3, s h, s w); "
            f"it returned {tuple(y.shape)} for input {tuple(x.shape)}"
        )
    y = y[0].clamp(0, 1).mul(255).round().to(torch.uint8)  # round half to even, as numpy/BasicSR
    return y.permute(0, 2, 3, 1).cpu().numpy()


def evaluate_model(
    model: nn.Module,
    source: ClipSource,
    channel: str = "y",
    crop_border: int = 0,
    device: torch.device | str | None = None,
    progress: bool = True,
    model_name: str | None = None,
) -> EvalResult:
    """Score a recurrent model ``(b, t, 3, h, w) -> (b, t, 3, 4h, 4w)`` on whole clips.

    ``device`` defaults to CUDA when available.  The model is put in eval mode on ``device``.
    """
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model = model.to(device).eval()
    return evaluate(
        source,
        lambda lq: super_resolve_clip(model, lq, device),
        channel,
        crop_border,
        progress,
        model_name=model_name or type(model).__name__,
    )
