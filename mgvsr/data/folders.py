"""A folder of clips: ``<gt_root>/<clip>/<frames>`` (and optionally ``<lq_root>/<clip>/<frames>``).

This is the layout of Vid4 (``GT/calendar/Frame 001.png`` ...), of REDS
(``train_sharp/000/00000000.png``) and of any user's own videos.  Clips are the sub-folders,
in natural order; frames are ordered by the number in their names (see :mod:`mgvsr.data.io`).

Without LQ frames, the LQ input is made the way the "BI" protocols make it: each GT frame is
cropped at the bottom/right to a multiple of ``scale`` (BasicSR's ``mod_crop``) and
downscaled by MATLAB's bicubic, rounded to uint8 (:func:`mgvsr.data.resize.bicubic_downscale`).
With LQ frames, every GT frame must be exactly ``scale`` times its LQ frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mgvsr.data.io import frame_size, list_frames, natural_key, read_frame
from mgvsr.data.resize import bicubic_downscale
from mgvsr.data.source import Box, ClipSource, crop
from mgvsr.errors import DataError

__all__ = ["FolderSource"]


@dataclass
class ClipInfo:
    gt: list[Path]
    lq: list[Path] | None
    gt_size: tuple[int, int]  # (H, W) of the GT as served: scale x lq_size
    lq_size: tuple[int, int]  # (h, w)


def _sub_folders(root: Path) -> list[str]:
    return sorted(
        (d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")), key=natural_key
    )


def _same_size(paths: list[Path]) -> tuple[int, int]:
    """The common ``(h, w)`` of a clip's frames (PNG headers; others checked when decoded)."""
    first = frame_size(paths[0])
    for p in paths[1:]:
        if p.suffix.lower() != ".png":
            continue
        size = frame_size(p)
        if size != first:
            raise DataError(
                f"{p} is {size[1]}x{size[0]} but {paths[0]} is {first[1]}x{first[0]}: "
                "frames of one clip must share one size"
            )
    return first


def _stack(frames: list[np.ndarray], size: tuple[int, int]) -> np.ndarray:
    """``(n, h, w, 3)``; an empty request gives ``(0, h, w, 3)``."""
    return np.stack(frames) if frames else np.zeros((0, *size, 3), np.uint8)


class FolderSource(ClipSource):
    """Clips as sub-folders of ``gt_root`` (and of ``lq_root``, when LQ frames exist on disk).

    Args:
        gt_root: folder holding one sub-folder of GT frames per clip.
        lq_root: the same layout with LQ frames ``scale`` times smaller; None makes LQ
            frames by MATLAB bicubic downscaling of the GT (cropped to a multiple of scale).
        scale: the super-resolution factor.
        clips: a subset of clip names, in the order to serve them; default: all, natural order.
        cache: keep decoded (and generated) frames in memory: for small sets read repeatedly.
        name: a label for messages and result tables.
    """

    def __init__(
        self,
        gt_root: str | Path,
        lq_root: str | Path | None = None,
        scale: int = 4,
        clips: Sequence[str] | None = None,
        cache: bool = False,
        name: str = "folder",
    ) -> None:
        self.gt_root = Path(gt_root)
        self.lq_root = Path(lq_root) if lq_root is not None else None
        self.scale = int(scale)
        self.name = name
        self.cache = cache
        self._frames: dict[tuple[str, str, int], np.ndarray] = {}
        self._info: dict[str, ClipInfo] = {}

        if self.scale < 1:
            raise DataError(f"scale must be a positive integer, got {scale}")
        if not self.gt_root.is_dir():
            raise DataError(f"{name}: ground-truth folder not found: {self.gt_root}")
        found = _sub_folders(self.gt_root)
        if not found:
            raise DataError(f"{name}: {self.gt_root} holds no clips (expected one sub-folder of frames per clip)")
        if clips is not None:
            unknown = [c for c in clips if c not in found]
            if unknown:
                raise DataError(f"{name}: no clip {', '.join(map(repr, unknown))} under {self.gt_root}; found {', '.join(found)}")
            found = list(clips)
            if not found:
                raise DataError(f"{name}: an empty list of clips was asked for")
        self._names = found

        if self.lq_root is not None:
            if not self.lq_root.is_dir():
                raise DataError(f"{name}: LQ folder not found: {self.lq_root}")
            missing = [c for c in self._names if not (self.lq_root / c).is_dir()]
            if missing:
                raise DataError(
                    f"{name}: LQ clip folder missing for GT clip(s) {', '.join(missing)}: "
                    f"expected {self.lq_root / missing[0]}"
                )

    @classmethod
    def vid4(cls, root: str | Path, **kwargs) -> FolderSource:
        """Vid4 laid out as BasicSR does: ``root/GT/<clip>/`` and, if present, ``root/BIx4/<clip>/``."""
        root = Path(root)
        if not (root / "GT").is_dir():
            raise DataError(f"Vid4 not found: expected {root / 'GT'}/<clip>/ (calendar, city, foliage, walk)")
        lq = root / "BIx4"
        kwargs.setdefault("name", "vid4")
        return cls(root / "GT", lq if lq.is_dir() else None, **kwargs)

    # -- what the clips are ----------------------------------------------------------
    def clips(self) -> list[str]:
        return list(self._names)

    def num_frames(self, clip: str) -> int:
        return len(self._clip(clip).gt)

    def lq_size(self, clip: str) -> tuple[int, int]:
        return self._clip(clip).lq_size

    def _clip(self, clip: str) -> ClipInfo:
        """List and check a clip's frames, once (lazily: large sets open fast)."""
        if clip not in self._info:
            if clip not in self._names:
                raise DataError(f"{self.name}: no clip {clip!r}; clips are {', '.join(self._names)}")
            self._info[clip] = self._scan(clip)
        return self._info[clip]

    def _scan(self, clip: str) -> ClipInfo:
        s = self.scale
        gt = list_frames(self.gt_root / clip)
        gt_h, gt_w = _same_size(gt)
        if self.lq_root is None:
            if gt_h < s or gt_w < s:
                raise DataError(f"{gt[0]} is {gt_w}x{gt_h}, smaller than the scale {s}")
            lq_size = (gt_h // s, gt_w // s)
            return ClipInfo(gt, None, (lq_size[0] * s, lq_size[1] * s), lq_size)

        lq = list_frames(self.lq_root / clip)
        if len(lq) != len(gt):
            raise DataError(
                f"{self.name}: clip {clip!r} has {len(gt)} GT frames in {self.gt_root / clip} "
                f"but {len(lq)} LQ frames in {self.lq_root / clip}"
            )
        lq_size = _same_size(lq)
        for g, q in zip(gt, lq):
            self._check_pair(g, q, frame_size(g), frame_size(q))
        return ClipInfo(gt, lq, (gt_h, gt_w), lq_size)

    def _check_pair(self, gt: Path, lq: Path, gt_size: tuple[int, int], lq_size: tuple[int, int]) -> None:
        s = self.scale
        if gt_size != (lq_size[0] * s, lq_size[1] * s):
            raise DataError(
                f"GT frame {gt} is {gt_size[1]}x{gt_size[0]} but LQ frame {lq} is "
                f"{lq_size[1]}x{lq_size[0]}: expected the GT exactly {s}x the LQ "
                f"({lq_size[1] * s}x{lq_size[0] * s})"
            )

    # -- reading ------------------------------------------------------------------------
    def _check_indices(self, clip: str, indices: Sequence[int]) -> list[int]:
        n = self.num_frames(clip)
        idx = [int(i) for i in indices]
        bad = [i for i in idx if not 0 <= i < n]
        if bad:
            raise DataError(f"{self.name}: clip {clip!r} has frames 0..{n - 1}; asked for {bad}")
        return idx

    def _check_box(self, clip: str, box: Box | None) -> None:
        if box is None:
            return
        top, left, h, w = box
        lh, lw = self.lq_size(clip)
        if h <= 0 or w <= 0 or top < 0 or left < 0 or top + h > lh or left + w > lw:
            raise DataError(
                f"{self.name}: box (top={top}, left={left}, height={h}, width={w}) does not fit "
                f"the {lw}x{lh} LQ frames of clip {clip!r}"
            )

    def _cached(self, key: tuple[str, str, int], make) -> np.ndarray:
        if key in self._frames:
            return self._frames[key]
        frame = make()
        if self.cache:
            self._frames[key] = frame
        return frame

    def _gt_frame(self, clip: str, i: int) -> np.ndarray:
        """GT frame ``i`` ``(H, W, 3)``, cropped to a multiple of scale when LQ is generated."""

        def load() -> np.ndarray:
            info = self._clip(clip)
            frame = read_frame(info.gt[i])
            h, w = info.gt_size
            if info.lq is None:
                full = frame.shape[:2]
                if full[0] - full[0] % self.scale != h or full[1] - full[1] % self.scale != w:
                    raise DataError(f"{info.gt[i]} is {full[1]}x{full[0]}; the other frames of {clip!r} are not")
                return np.ascontiguousarray(frame[:h, :w])
            if frame.shape[:2] != (h, w):
                self._check_pair(info.gt[i], info.lq[i], frame.shape[:2], info.lq_size)
            return frame

        return self._cached(("gt", clip, i), load)

    def _lq_frames(self, clip: str, idx: list[int]) -> list[np.ndarray]:
        info = self._clip(clip)
        if info.lq is not None:

            def loader(i: int):
                def load() -> np.ndarray:
                    frame = read_frame(info.lq[i])
                    if frame.shape[:2] != info.lq_size:
                        raise DataError(
                            f"LQ frame {info.lq[i]} is {frame.shape[1]}x{frame.shape[0]}; "
                            f"{info.lq[0]} is {info.lq_size[1]}x{info.lq_size[0]}"
                        )
                    return frame

                return load

            return [self._cached(("lq", clip, i), loader(i)) for i in idx]

        # Generated LQ: downscale the frames not yet cached in one batch.
        todo = [i for i in idx if ("lq", clip, i) not in self._frames]
        if todo:
            made = bicubic_downscale(np.stack([self._gt_frame(clip, i) for i in todo]), self.scale)
            made_by_index = dict(zip(todo, made))
        return [self._cached(("lq", clip, i), lambda i=i: made_by_index[i]) for i in idx]

    def read_clip(self, clip: str) -> tuple[np.ndarray, np.ndarray]:
        """The whole clip ``(lq (t, h, w, 3), gt (t, H, W, 3))``; decodes each GT frame once."""
        idx = range(self.num_frames(clip))
        gt = self.read_gt(clip, idx)
        if self._clip(clip).lq is not None or self.cache:
            return self.read_lq(clip, idx), gt
        return bicubic_downscale(gt, self.scale), gt

    def read_gt(self, clip: str, indices: Sequence[int], box: Box | None = None) -> np.ndarray:
        """GT frames ``(n, H, W, 3)`` uint8 RGB; ``box`` = (top, left, height, width) in LQ pixels."""
        idx = self._check_indices(clip, indices)
        self._check_box(clip, box)
        frames = _stack([self._gt_frame(clip, i) for i in idx], self._clip(clip).gt_size)
        return crop(frames, self.gt_box(box))

    def read_lq(self, clip: str, indices: Sequence[int], box: Box | None = None) -> np.ndarray:
        """LQ frames ``(n, h, w, 3)`` uint8 RGB; ``box`` = (top, left, height, width)."""
        idx = self._check_indices(clip, indices)
        self._check_box(clip, box)
        return crop(_stack(self._lq_frames(clip, idx), self.lq_size(clip)), box)
