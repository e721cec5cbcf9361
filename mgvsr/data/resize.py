"""MATLAB's ``imresize(x, scale, 'bicubic')`` in PyTorch: batched, GPU-able, exact.

The field's "BI" degradation (Vid4, Vimeo-90K, the bicubic baselines of every VSR paper) is
MATLAB's bicubic, which is *not* OpenCV's or PyTorch's bicubic:

- the cubic kernel of Keys (1981) with a = -0.5;
- when downscaling by ``scale < 1`` the kernel is stretched by ``1 / scale`` (and its
  height scaled by ``scale``): an antialiasing low-pass filter folded into the interpolation;
- output pixel ``i`` (1-based) samples the input at ``u = i / scale + 0.5 (1 - 1 / scale)``;
- taps outside the image read mirrored pixels (symmetric padding: ``x[-1] = x[0]``);
- the weights of each output pixel are normalised to sum to one;
- rows (height) first, then columns; on uint8 images the result is rounded half away from
  zero and saturated to [0, 255].

Each axis is one linear map, so we precompute it as a dense ``(out, in)`` matrix (banded:
at most ``ceil(4 / scale) + 2`` non-zeros per row, with the symmetric padding folded in) and
apply it as a matrix product, ``W_h @ x @ W_w^T``.  That is exact, simple and fast on both
CPU (BLAS) and GPU, and works for any leading batch dimensions.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from mgvsr.errors import DataError

__all__ = [
    "cubic",
    "resize_matrix",
    "output_length",
    "imresize",
    "round_like_matlab",
    "bicubic_resize",
    "bicubic_downscale",
    "bicubic_upscale",
]


def cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5 (support [-2, 2])."""
    ax = np.abs(x)
    ax2, ax3 = ax**2, ax**3
    inner = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
    outer = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))
    return inner + outer


def output_length(in_length: int, scale: float) -> int:
    """MATLAB's output length ``ceil(scale * in_length)``.

    A tolerance of 1e-9 keeps ``300 * (1/3)`` at 100 rather than 101 (float noise).
    """
    return max(1, math.ceil(in_length * scale - 1e-9))


@functools.lru_cache(maxsize=64)
def _resize_matrix_cached(in_length: int, out_length: int, scale: float, antialiasing: bool) -> np.ndarray:
    kernel_width = 4.0
    stretch = scale < 1 and antialiasing
    if stretch:
        kernel_width /= scale

    x = np.arange(1, out_length + 1, dtype=np.float64)  # 1-based output coordinates
    u = x / scale + 0.5 * (1 - 1 / scale)  # 1-based input coordinates they sample
    left = np.floor(u - kernel_width / 2)
    taps = math.ceil(kernel_width) + 2
    indices = left[:, None] + np.arange(taps)[None, :]  # (out, taps), 1-based, may be outside
    distance = u[:, None] - indices
    weights = scale * cubic(distance * scale) if stretch else cubic(distance)
    weights = weights / weights.sum(axis=1, keepdims=True)

    # Symmetric padding: index 0 reads pixel 1, index -1 reads pixel 2, index n+1 reads n ...
    # (MATLAB: aux = [1:n, n:-1:1]; indices = aux(mod(indices - 1, 2n) + 1)).
    period = np.concatenate([np.arange(in_length), np.arange(in_length)[::-1]])
    source = period[np.mod(indices.astype(np.int64) - 1, 2 * in_length)]

    matrix = np.zeros((out_length, in_length), dtype=np.float64)
    rows = np.repeat(np.arange(out_length), taps)
    np.add.at(matrix, (rows, source.ravel()), weights.ravel())
    matrix.setflags(write=False)
    return matrix


def resize_matrix(in_length: int, out_length: int, scale: float, antialiasing: bool = True) -> np.ndarray:
    """The ``(out_length, in_length)`` float64 matrix of MATLAB's bicubic along one axis.

    ``resize_matrix(...) @ signal`` resizes a 1-D signal; rows sum to one.  Cached (read-only).
    """
    if in_length < 1 or out_length < 1:
        raise ValueError(f"lengths must be positive, got in={in_length}, out={out_length}")
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale}")
    return _resize_matrix_cached(int(in_length), int(out_length), float(scale), bool(antialiasing))


def _axis_matrix(in_length: int, scale: float, antialiasing: bool, like: torch.Tensor) -> torch.Tensor:
    m = resize_matrix(in_length, output_length(in_length, scale), scale, antialiasing)
    return torch.from_numpy(np.array(m)).to(device=like.device, dtype=like.dtype)


def imresize(x: torch.Tensor, scale: float, antialiasing: bool = True) -> torch.Tensor:
    """MATLAB ``imresize(x, scale, 'bicubic')`` of float images ``(..., h, w)``.

    ``x`` is typically ``(b, t, 3, h, w)`` or ``(c, h, w)``: only the last two dimensions
    are resized, to ``(ceil(scale h), ceil(scale w))``.  No rounding or clamping: the value
    range is whatever the input uses (MATLAB on uint8 works in [0, 255]; use
    :func:`round_like_matlab` afterwards for that).  Computes in ``x``'s dtype and device;
    use float64 when results will be rounded to uint8 and must match MATLAB exactly.
    """
    if not torch.is_floating_point(x):
        raise TypeError(f"imresize needs a float tensor, got {x.dtype}; convert uint8 with .double()")
    if x.dim() < 2:
        raise ValueError(f"imresize needs at least 2 dimensions (h, w), got shape {tuple(x.shape)}")
    h, w = x.shape[-2:]
    rows = _axis_matrix(h, scale, antialiasing, x)  # (H, h)
    cols = _axis_matrix(w, scale, antialiasing, x)  # (W, w)
    x = torch.matmul(rows, x)  # height first, as MATLAB (equal scales: dimension 1 first)
    return torch.matmul(x, cols.T)


def round_like_matlab(x: torch.Tensor) -> torch.Tensor:
    """Saturate to [0, 255] and round half away from zero, as MATLAB's cast to uint8.

    After clamping, values are >= 0, so truncating ``x + 0.5`` is rounding half up.
    """
    return (x.clamp(0, 255) + 0.5).to(torch.uint8)


def bicubic_resize(
    frames: np.ndarray,
    scale: float,
    antialiasing: bool = True,
    device: str | torch.device = "cpu",
    chunk: int = 8,
) -> np.ndarray:
    """MATLAB bicubic resize of uint8 RGB frames ``(..., h, w, 3)`` -> uint8 ``(..., H, W, 3)``.

    Works in float64 on values in [0, 255] and rounds like MATLAB, so the result matches
    ``imresize(uint8_image, scale, 'bicubic')``.  ``chunk`` frames are processed at a time
    to bound memory (a Vid4 frame in float64 is 10 MB).
    """
    frames = np.asarray(frames)
    if frames.dtype != np.uint8:
        raise DataError(f"bicubic_resize expects uint8 frames, got dtype {frames.dtype}")
    if frames.ndim < 3 or frames.shape[-1] != 3:
        raise DataError(f"bicubic_resize expects frames (..., h, w, 3), got shape {frames.shape}")
    lead = frames.shape[:-3]
    flat = frames.reshape(-1, *frames.shape[-3:])  # (n, h, w, 3)
    out = []
    for start in range(0, len(flat), chunk):
        x = torch.from_numpy(flat[start : start + chunk]).to(device)
        x = x.permute(0, 3, 1, 2).double()  # (n, 3, h, w) in [0, 255]
        y = imresize(x, scale, antialiasing).clamp_(0, 255).add_(0.5).to(torch.uint8)  # = round_like_matlab, in place
        out.append(y.permute(0, 2, 3, 1).cpu().numpy())
    result = np.concatenate(out) if out else np.zeros((0, 0, 0, 3), np.uint8)
    return result.reshape(*lead, *result.shape[1:])


def bicubic_downscale(frames: np.ndarray, factor: int = 4, **kwargs) -> np.ndarray:
    """MATLAB ``imresize(x, 1/factor, 'bicubic')`` of uint8 frames ``(..., h, w, 3)``.

    The field's "BI" LQ frames; ``h`` and ``w`` should be multiples of ``factor`` (crop
    first, as the Vid4 protocol does) for the output to be exactly ``factor`` times smaller.
    """
    return bicubic_resize(frames, 1.0 / factor, **kwargs)


def bicubic_upscale(frames: np.ndarray, factor: int = 4, **kwargs) -> np.ndarray:
    """MATLAB ``imresize(x, factor, 'bicubic')`` of uint8 frames ``(..., h, w, 3)``."""
    return bicubic_resize(frames, float(factor), **kwargs)
