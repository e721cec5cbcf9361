"""The one interface every dataset layout implements: a set of named clips of frames.

A :class:`ClipSource` hands out uint8 RGB frames as numpy arrays, ground truth (GT,
high resolution) and low-quality input (LQ, ``scale`` times smaller).  Training windows,
whole-clip evaluation and the frame store all read through it, so a new layout only has
to say where its frames are.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

import numpy as np

# (top, left, height, width) in LQ pixels; the GT crop is the same box times ``scale``.
Box = tuple[int, int, int, int]


class PartialDatasetWarning(UserWarning):
    """A dataset tree smaller than the published one (fewer or shorter clips): accepted, but said."""


class ClipSource(abc.ABC):
    """A named set of clips; every frame is ``(h, w, 3)`` uint8 RGB.

    Subclasses implement :meth:`clips`, :meth:`num_frames`, :meth:`lq_size`,
    :meth:`read_gt` and :meth:`read_lq`.  ``read_*`` take frame indices within the clip
    and an optional ``box`` (LQ coordinates); they return ``(n, h, w, 3)`` uint8 arrays,
    the GT ``scale`` times larger than the LQ in both sides.
    """

    scale: int = 4
    name: str = "clips"

    @abc.abstractmethod
    def clips(self) -> list[str]:
        """Clip names, in a fixed order."""

    @abc.abstractmethod
    def num_frames(self, clip: str) -> int:
        """Number of frames of ``clip``."""

    @abc.abstractmethod
    def lq_size(self, clip: str) -> tuple[int, int]:
        """``(height, width)`` of the LQ frames of ``clip``."""

    @abc.abstractmethod
    def read_gt(self, clip: str, indices: Sequence[int], box: Box | None = None) -> np.ndarray:
        """GT frames ``(n, H, W, 3)`` uint8; ``box`` is given in LQ pixels."""

    @abc.abstractmethod
    def read_lq(self, clip: str, indices: Sequence[int], box: Box | None = None) -> np.ndarray:
        """LQ frames ``(n, h, w, 3)`` uint8."""

    # -- conveniences shared by every layout -------------------------------------------
    def __len__(self) -> int:
        return len(self.clips())

    def gt_box(self, box: Box | None) -> Box | None:
        """The GT box matching an LQ box."""
        if box is None:
            return None
        s = self.scale
        return (box[0] * s, box[1] * s, box[2] * s, box[3] * s)

    def read_clip(self, clip: str) -> tuple[np.ndarray, np.ndarray]:
        """The whole clip: ``(lq (t, h, w, 3), gt (t, H, W, 3))`` uint8."""
        idx = range(self.num_frames(clip))
        return self.read_lq(clip, idx), self.read_gt(clip, idx)

    def windows_source(self, frames: int) -> ClipSource:
        """The clips training windows of ``frames`` frames are drawn from: these clips (a layout that
        extends its clips, as Vimeo-90K's mirrored septuplets, may answer with the originals where
        they are long enough)."""
        return self

    def describe(self) -> str:
        names = self.clips()
        return f"{self.name}: {len(names)} clips ({', '.join(names[:4])}{', ...' if len(names) > 4 else ''})"


def crop(frames: np.ndarray, box: Box | None) -> np.ndarray:
    """Crop ``(n, h, w, c)`` frames to ``box`` = (top, left, height, width)."""
    if box is None:
        return frames
    top, left, h, w = box
    return frames[:, top : top + h, left : left + w]
