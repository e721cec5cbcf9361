"""Training windows: T consecutive frames, an S x S LQ crop and the aligned 4S x 4S GT crop.

The multigrid changes T and S during training, so both are arguments.  Every window is a
pure function of ``(seed, index, frames, patch)``: sample ``index`` of a run is the same
whether the run was interrupted or not, which is what makes ``--resume`` exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from mgvsr.data.source import ClipSource
from mgvsr.errors import DataError


@dataclass(frozen=True)
class WindowSpec:
    """Where window ``index`` comes from; drawn by :meth:`TrainingWindows.spec`."""

    clip: str
    start: int
    reverse: bool
    top: int
    left: int
    hflip: bool
    vflip: bool
    transpose: bool


def check_source_fits(source: ClipSource, frames: int, patch: int) -> None:
    """Raise :class:`DataError` if some clip is shorter than ``frames`` or smaller than ``patch``."""
    names = source.clips()
    if not names:
        raise DataError(f"{source.name}: holds no clips")
    for clip in names:
        n = source.num_frames(clip)
        if n < frames:
            raise DataError(
                f"{source.name}: clip {clip!r} has {n} frames, fewer than the {frames} "
                "consecutive frames a training window needs"
            )
        h, w = source.lq_size(clip)
        if h < patch or w < patch:
            raise DataError(
                f"{source.name}: clip {clip!r} has LQ frames of {w}x{h}, smaller than the "
                f"{patch}x{patch} LQ patch a training window needs"
            )


def to_tensor(frames: np.ndarray, hflip: bool = False, vflip: bool = False, transpose: bool = False) -> torch.Tensor:
    """``(t, h, w, 3)`` uint8 -> ``(t, 3, h, w)`` uint8, with the same flips / transposition on every frame.

    The pixels stay uint8 until they reach the device (:func:`to_float`): a quarter of the
    bytes through the loader's shared memory, and flips on uint8 tensors are cheap.
    """
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
    dims = [d for d, on in ((-1, hflip), (-2, vflip)) if on]
    if dims:
        x = x.flip(dims)
    if transpose:
        x = x.transpose(-1, -2)
    return x.contiguous()


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 windows -> float32 RGB in [0, 1] (on whatever device ``x`` is)."""
    return x.float().div_(255.0)


class TrainingWindows(Dataset):
    """``length`` random training windows of ``frames`` frames and ``patch`` x ``patch`` LQ pixels.

    Item ``i`` is window ``offset + i`` of the run: ``(lq (t, 3, S, S), gt (t, 3, 4S, 4S))``,
    uint8 RGB (:func:`to_float` makes float32 in [0, 1] of them, on the device).  Clips are drawn uniformly, then a start frame, an optional time
    reversal, a crop and (with ``augment``) horizontal / vertical flips and a transposition,
    the same for every frame of the window, as BasicSR does.
    """

    def __init__(
        self,
        source: ClipSource,
        frames: int,
        patch: int,
        length: int,
        seed: int = 0,
        offset: int = 0,
        augment: bool = True,
        reverse: bool = False,
    ) -> None:
        check_source_fits(source, frames, patch)
        self.source = source
        self.frames = frames
        self.patch = patch
        self.length = length
        self.seed = seed
        self.offset = offset
        self.augment = augment
        self.reverse = reverse
        self._clips = source.clips()

    def __len__(self) -> int:
        return self.length

    def spec(self, index: int) -> WindowSpec:
        """The window drawn for global sample ``index`` (deterministic in seed and index)."""
        rng = np.random.default_rng([self.seed, index])
        clip = self._clips[int(rng.integers(len(self._clips)))]
        n = self.source.num_frames(clip)
        h, w = self.source.lq_size(clip)
        start = int(rng.integers(n - self.frames + 1))
        top = int(rng.integers(h - self.patch + 1))
        left = int(rng.integers(w - self.patch + 1))
        flips = rng.random(4) < 0.5
        return WindowSpec(
            clip=clip,
            start=start,
            reverse=bool(self.reverse and flips[0]),
            top=top,
            left=left,
            hflip=bool(self.augment and flips[1]),
            vflip=bool(self.augment and flips[2]),
            transpose=bool(self.augment and flips[3]),
        )

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= i < self.length:
            raise IndexError(i)
        s = self.spec(self.offset + i)
        indices = list(range(s.start, s.start + self.frames))
        if s.reverse:
            indices.reverse()
        box = (s.top, s.left, self.patch, self.patch)
        lq = self.source.read_lq(s.clip, indices, box)
        gt = self.source.read_gt(s.clip, indices, box)
        return (to_tensor(lq, s.hflip, s.vflip, s.transpose),
                to_tensor(gt, s.hflip, s.vflip, s.transpose))
