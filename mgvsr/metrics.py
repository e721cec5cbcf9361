"""PSNR and SSIM as the video super-resolution field computes them (BasicSR's conventions).

- Inputs are uint8 RGB frames ``(h, w, 3)`` or stacks ``(t, h, w, 3)``: model outputs are
  clamped and rounded to uint8 before they are scored.
- ``channel="y"``: the BT.601 luma of MATLAB's ``rgb2ycbcr``,
  ``Y = 16 + 65.481 R + 128.553 G + 24.966 B`` with RGB in [0, 1], kept as float in
  [16, 235] (not re-rounded), as BasicSR's ``to_y_channel`` does.  ``channel="rgb"``: the
  three channels.
- ``crop_border``: pixels removed from every side before scoring (0 in the VSR protocols).
- PSNR = 10 log10(255^2 / MSE) over all pixels (and channels).  Identical frames have
  MSE 0 and PSNR ``inf`` (as BasicSR): we return ``math.inf`` rather than an arbitrary cap,
  so a clip or dataset mean that contains one is ``inf`` too, visibly.
- SSIM (Wang et al. 2004): 11x11 Gaussian window, sigma 1.5, K1 = 0.01, K2 = 0.03, L = 255,
  averaged over the *valid* region (no padding: 5 pixels lost on each side); on RGB the
  mean of the three channels' SSIM.
- A clip's score is the mean over its frames; a dataset's score the mean over its clips.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

__all__ = [
    "rgb_to_y",
    "psnr",
    "ssim",
    "frame_scores",
    "ClipScores",
    "score_clip",
    "mean_scores",
]

CHANNELS = ("y", "rgb")
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
C1 = (0.01 * 255) ** 2
C2 = (0.03 * 255) ** 2


def rgb_to_y(frames: np.ndarray) -> np.ndarray:
    """BT.601 luma of RGB ``(..., 3)`` in [0, 255] -> float64 ``(...)`` in [16, 235]."""
    rgb = np.asarray(frames, dtype=np.float64) / 255.0
    return rgb @ np.array([65.481, 128.553, 24.966]) + 16.0


def _prepare(frames: np.ndarray, channel: str, crop_border: int) -> np.ndarray:
    """uint8 ``(t, h, w, 3)`` -> float64 ``(t, c, h', w')`` with c = 1 (y) or 3 (rgb)."""
    if channel not in CHANNELS:
        raise ValueError(f"channel must be one of {CHANNELS}, got {channel!r}")
    if channel == "y":
        x = rgb_to_y(frames)[:, None]
    else:
        x = np.asarray(frames, dtype=np.float64).transpose(0, 3, 1, 2)
    if crop_border:
        x = x[..., crop_border:-crop_border, crop_border:-crop_border]
    return x


def _check_pair(sr: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sr, gt = np.asarray(sr), np.asarray(gt)
    if sr.shape != gt.shape:
        raise ValueError(f"frames to compare differ in shape: {sr.shape} vs ground truth {gt.shape}")
    if sr.dtype != np.uint8 or gt.dtype != np.uint8:
        raise ValueError(
            f"metrics take uint8 frames (round model outputs first), got {sr.dtype} and {gt.dtype}"
        )
    if sr.ndim == 3:
        sr, gt = sr[None], gt[None]
    if sr.ndim != 4 or sr.shape[-1] != 3:
        raise ValueError(f"expected frames (h, w, 3) or (t, h, w, 3), got {sr.shape}")
    return sr, gt


def _psnr_batch(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """PSNR per frame of float64 ``(t, c, h, w)`` in [0, 255]."""
    mse = ((a - b) ** 2).reshape(len(a), -1).mean(axis=1)
    with np.errstate(divide="ignore"):
        return np.where(mse == 0, np.inf, 10.0 * np.log10(255.0**2 / np.maximum(mse, 1e-300)))


def _gaussian_window() -> np.ndarray:
    """The 1-D Gaussian (11 taps, sigma 1.5, sums to one); the 2-D window is its outer product."""
    return cv2.getGaussianKernel(SSIM_WINDOW, SSIM_SIGMA)


def _blur_valid(x: np.ndarray) -> np.ndarray:
    """11x11 Gaussian filter of one float64 map ``(h, w)``, valid region ``(h - 10, w - 10)``.

    Separable filtering (cv2) is ~10x faster than torch's float64 conv on CPU; the border
    pixels, the only ones cv2's padding touches, are cropped off.
    """
    g = _gaussian_window()
    r = SSIM_WINDOW // 2
    return cv2.sepFilter2D(x, cv2.CV_64F, g, g)[r:-r, r:-r]


def _ssim_map_mean(x: np.ndarray, y: np.ndarray) -> float:
    """Mean SSIM over the valid region of two float64 maps ``(h, w)`` in [0, 255]."""
    mu_x, mu_y = _blur_valid(x), _blur_valid(y)
    var_x = _blur_valid(x * x) - mu_x**2
    var_y = _blur_valid(y * y) - mu_y**2
    cov = _blur_valid(x * y) - mu_x * mu_y
    num = (2 * mu_x * mu_y + C1) * (2 * cov + C2)
    den = (mu_x**2 + mu_y**2 + C1) * (var_x + var_y + C2)
    return float((num / den).mean())


def _ssim_batch(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """SSIM per frame of float64 ``(t, c, h, w)`` in [0, 255]: mean over the valid map, then channels."""
    t, c, h, w = a.shape
    if h < SSIM_WINDOW or w < SSIM_WINDOW:
        raise ValueError(f"SSIM needs frames of at least {SSIM_WINDOW}x{SSIM_WINDOW}, got {w}x{h}")
    scores = [[_ssim_map_mean(a[i, k], b[i, k]) for k in range(c)] for i in range(t)]
    return np.array(scores, dtype=np.float64).mean(axis=1)


def frame_scores(
    sr: np.ndarray, gt: np.ndarray, channel: str = "y", crop_border: int = 0, chunk: int = 8
) -> tuple[np.ndarray, np.ndarray]:
    """PSNR and SSIM of every frame: uint8 ``(t, h, w, 3)`` pairs -> two float64 arrays ``(t,)``."""
    sr, gt = _check_pair(sr, gt)
    psnrs, ssims = [], []
    for s in range(0, len(sr), chunk):  # bounded memory: float64 maps of a few frames at a time
        a = _prepare(sr[s : s + chunk], channel, crop_border)
        b = _prepare(gt[s : s + chunk], channel, crop_border)
        psnrs.append(_psnr_batch(a, b))
        ssims.append(_ssim_batch(a, b))
    return np.concatenate(psnrs), np.concatenate(ssims)


def psnr(sr: np.ndarray, gt: np.ndarray, channel: str = "y", crop_border: int = 0) -> float:
    """PSNR in dB of one uint8 frame ``(h, w, 3)`` against its ground truth; ``inf`` if identical.

    For a stack ``(t, h, w, 3)`` the mean over frames.
    """
    sr, gt = _check_pair(sr, gt)
    return float(_psnr_batch(_prepare(sr, channel, crop_border), _prepare(gt, channel, crop_border)).mean())


def ssim(sr: np.ndarray, gt: np.ndarray, channel: str = "y", crop_border: int = 0) -> float:
    """SSIM of one uint8 frame ``(h, w, 3)`` against its ground truth (1.0 if identical).

    For a stack ``(t, h, w, 3)`` the mean over frames.
    """
    return float(frame_scores(sr, gt, channel, crop_border)[1].mean())


@dataclass
class ClipScores:
    """Scores of one clip: the means over frames, and every frame's value."""

    psnr: float
    ssim: float
    frame_psnr: list[float] = field(default_factory=list)
    frame_ssim: list[float] = field(default_factory=list)

    @property
    def frames(self) -> int:
        return len(self.frame_psnr)

    def to_dict(self, frames: bool = False) -> dict:
        d = {"psnr": self.psnr, "ssim": self.ssim, "frames": self.frames}
        if frames:
            d.update(frame_psnr=self.frame_psnr, frame_ssim=self.frame_ssim)
        return d


def score_clip(sr: np.ndarray, gt: np.ndarray, channel: str = "y", crop_border: int = 0) -> ClipScores:
    """Score a whole clip: uint8 ``(t, h, w, 3)`` output against ground truth."""
    p, s = frame_scores(sr, gt, channel, crop_border)
    return ClipScores(float(p.mean()), float(s.mean()), p.tolist(), s.tolist())


def mean_scores(clips: dict[str, ClipScores]) -> dict[str, float]:
    """The dataset score: ``{"psnr", "ssim"}`` means over clips (each clip counts once)."""
    if not clips:
        raise ValueError("no clips to average")
    return {
        "psnr": float(np.mean([c.psnr for c in clips.values()])),
        "ssim": float(np.mean([c.ssim for c in clips.values()])),
    }
