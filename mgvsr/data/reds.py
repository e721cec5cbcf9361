"""REDS as it is downloaded: ``train_sharp`` with ``train_sharp_bicubic/X4``, and the validation clips.

REDS (Nah et al., CVPRW 2019) has 240 training and 30 validation clips of 100 frames,
1280x720 ground truth (GT) and 320x180 bicubic x4 input (LQ)::

    ROOT/train_sharp/000/00000000.png ... 00000099.png      GT, clips 000-239
    ROOT/train_sharp_bicubic/X4/000/00000000.png ...        LQ (the X4 level may be absent)
    ROOT/val_sharp/000/...  ROOT/val_sharp_bicubic/X4/000/  the 30 validation clips

VSR papers (EDVR, BasicVSR, the multigrid paper) merge the validation clips into the
training folder as clips 240-269 (``val_sharp/000`` becomes ``train_sharp/240``, BasicSR's
``scripts/data_preparation/regroup_reds_dataset.py``) and hold out *REDS4* (clips 000, 011,
015, 020) for testing: 266 training clips.  Both trees are read here: with the validation
clips kept apart, ``val_sharp/NNN`` is served as clip ``240 + NNN``.  BasicSR's stand-alone
REDS4 test folder (``ROOT/GT/<clip>`` with ``ROOT/sharp_bicubic/<clip>``) is read too.

Partitions (``mgvsr/meta/*.txt``, BasicSR's ``val_partition``):

- ``"reds4"``: test = 000, 011, 015, 020; train = every other clip (266 of 270);
- ``"official"``: test = the validation clips 240-269; train = 000-239.

A *partial* tree (fewer clips, shorter clips, smaller frames: a subset, or a test
fixture) is accepted with a :class:`~mgvsr.data.source.PartialDatasetWarning`.
Inconsistencies are :class:`~mgvsr.errors.DataError`: a folder name that is not a REDS
clip, a GT clip without its LQ clip or the other way round, a clip present both merged
and apart, frame counts or sizes that do not pair up (checked when a clip is first read).
Without any ``*_bicubic`` folder, LQ frames are made by MATLAB bicubic downscaling of the
GT (the "BI" degradation), with a warning.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mgvsr.data.folders import FolderSource
from mgvsr.data.io import IMAGE_EXTENSIONS, frame_size, natural_key
from mgvsr.data.source import Box, ClipSource, PartialDatasetWarning
from mgvsr.errors import DataError
from mgvsr.paths import PACKAGE_DIR

__all__ = ["RedsPart", "RedsSource", "find_reds", "reds_split", "PARTITIONS", "VAL_OFFSET"]

VAL_OFFSET = 240  # val_sharp/000 is clip 240 once merged into train_sharp
_CLIP_NAME = re.compile(r"^\d{3}$")


META_DIR = PACKAGE_DIR / "meta"


def read_meta(name: str) -> list[list[str]]:
    """The fields of each line of ``mgvsr/meta/<name>`` (``#`` comments and blank lines skipped)."""
    path = META_DIR / name
    if not path.is_file():
        raise DataError(f"meta list not found: {path} (is the mgvsr package installed with its data files?)")
    rows = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            rows.append(line.split())
    return rows


def _meta_clips(name: str) -> tuple[str, ...]:
    return tuple(fields[0] for fields in read_meta(name))


ALL_CLIPS = _meta_clips("reds_GT.txt")  # "000" .. "269"
PARTITIONS = {
    "reds4": _meta_clips("reds4.txt"),  # 000 011 015 020
    "official": _meta_clips("reds_official_val.txt"),  # 240 .. 269
}
FULL_FRAMES = int(read_meta("reds_GT.txt")[0][1])  # 100
FULL_GT_SIZE = (720, 1280)  # (height, width)


@dataclass(frozen=True)
class RedsPart:
    """One GT folder of clip folders, its LQ folder (None: make LQ) and the number added to its clip names."""

    gt: Path
    lq: Path | None
    offset: int  # served name = f"{int(folder name) + offset:03d}"


def _clip_dirs(folder: Path) -> list[str]:
    return sorted((d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")), key=natural_key)


def _lq_folder(root: Path, kind: str) -> Path | None:
    """``ROOT/<kind>_bicubic/X4`` or ``ROOT/<kind>_bicubic`` (clip folders directly inside), or None."""
    base = root / f"{kind}_bicubic"
    if not base.exists():
        return None
    if (base / "X4").is_dir():
        return base / "X4"
    if base.is_dir() and any(_CLIP_NAME.match(d) for d in _clip_dirs(base)):
        return base
    raise DataError(
        f"{base} holds neither X4/<clip>/ nor <clip>/ folders of frames "
        f"(expected {base}/X4/000/00000000.png, the x4 bicubic frames)"
    )


def find_reds(root: str | Path) -> list[RedsPart]:
    """The folders of the REDS tree at ``root`` (see the module docstring); :class:`DataError` if it is not one."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"REDS root not found: {root}")
    if not (root / "train_sharp").is_dir():
        if (root / "GT").is_dir() and (root / "sharp_bicubic").is_dir():  # BasicSR's datasets/REDS4
            return [RedsPart(root / "GT", root / "sharp_bicubic", 0)]
        raise DataError(
            f"{root} is not a REDS tree: expected {root / 'train_sharp'}/<clip>/00000000.png "
            "(and train_sharp_bicubic/X4/<clip>/...), as REDS is downloaded"
        )
    parts = [RedsPart(root / "train_sharp", _lq_folder(root, "train_sharp"), 0)]
    if (root / "val_sharp").is_dir():
        parts.append(RedsPart(root / "val_sharp", _lq_folder(root, "val_sharp"), VAL_OFFSET))
    with_lq = [p.lq is not None for p in parts]
    if any(with_lq) and not all(with_lq):
        missing = next(p for p in parts if p.lq is None)
        raise DataError(
            f"{missing.gt} has no bicubic LQ folder (expected {missing.gt.parent / (missing.gt.name + '_bicubic')}/X4) "
            "while the other part of the tree has one"
        )
    return parts


def _served_names(part: RedsPart) -> dict[str, str]:
    """``{served clip name: folder name}`` of one part; :class:`DataError` on names that are not REDS clips."""
    names = _clip_dirs(part.gt)
    if not names:
        raise DataError(f"{part.gt} holds no clip folders (expected 000/, 001/, ... of PNG frames)")
    limit = 30 if part.offset else len(ALL_CLIPS)
    bad = [n for n in names if not _CLIP_NAME.match(n) or int(n) >= limit]
    if bad:
        raise DataError(
            f"{part.gt}: {', '.join(repr(b) for b in bad[:5])} {'is' if len(bad) == 1 else 'are'} not REDS clip "
            f"folder name(s) (expected three digits, 000-{limit - 1:03d})"
        )
    if part.lq is not None:
        lq_names = set(_clip_dirs(part.lq))
        missing = [n for n in names if n not in lq_names]
        if missing:
            raise DataError(
                f"LQ clip folder missing for GT clip(s) {', '.join(missing[:10])}{' ...' if len(missing) > 10 else ''}: "
                f"expected {part.lq / missing[0]} beside {part.gt / missing[0]}"
            )
        extra = sorted(lq_names - set(names), key=natural_key)
        if extra:
            raise DataError(
                f"LQ clip(s) {', '.join(extra[:10])} in {part.lq} have no GT clip: expected {part.gt / extra[0]}"
            )
    return {f"{int(n) + part.offset:03d}": n for n in names}


def _count_frames(folder: Path) -> int:
    with os.scandir(folder) as entries:
        return sum(1 for e in entries if e.is_file() and not e.name.startswith(".")
                   and os.path.splitext(e.name)[1].lower() in IMAGE_EXTENSIONS)


class RedsSource(ClipSource):
    """The clips of a REDS tree by their REDS names (``"000"`` .. ``"269"``).

    Args:
        root: the folder holding ``train_sharp`` (and ``train_sharp_bicubic``, ``val_sharp`` ...).
        clips: the clips to serve, in order; default: every clip found.
        cache: keep decoded frames in memory (only for small subsets).
        name: a label for messages and result tables.
        warn: warn when the tree is partial (fewer/shorter clips, smaller frames than REDS).
    """

    def __init__(self, root: str | Path, clips: Sequence[str] | None = None, cache: bool = False,
                 name: str = "reds", warn: bool = True) -> None:
        self.root = Path(root)
        self.name = name
        self.parts = find_reds(self.root)
        self._where: dict[str, tuple[FolderSource, str]] = {}
        for part in self.parts:
            names = _served_names(part)
            folder = FolderSource(part.gt, part.lq, clips=list(names.values()), cache=cache,
                                  name=f"{name} ({part.gt.name})")
            for served, inner in names.items():
                if served in self._where:
                    other = self._where[served]
                    raise DataError(
                        f"REDS clip {served} appears twice: {other[0].gt_root / other[1]} and {part.gt / inner} "
                        f"(val_sharp/{inner} is clip {served} once merged): keep the validation clips either "
                        "merged into train_sharp or apart in val_sharp, not both"
                    )
                self._where[served] = (folder, inner)
        found = sorted(self._where)
        if clips is not None:
            unknown = [c for c in clips if c not in self._where]
            if unknown:
                raise DataError(f"{name}: no clip {', '.join(unknown)} in the REDS tree at {self.root} "
                                f"(found {len(found)} clips: {', '.join(found[:6])}{' ...' if len(found) > 6 else ''})")
            if not clips:
                raise DataError(f"{name}: an empty list of clips was asked for")
        self._names = list(clips) if clips is not None else found
        if warn:
            note = self.partial_note()
            if note:
                warnings.warn(note, PartialDatasetWarning, stacklevel=2)

    @property
    def generates_lq(self) -> bool:
        """True when the tree has no bicubic folder and LQ frames are made from the GT."""
        return self.parts[0].lq is None

    def all_clips(self) -> list[str]:
        """Every clip of the tree (not only those served)."""
        return sorted(self._where)

    def gt_folder(self, clip: str) -> Path:
        folder, inner = self._part(clip)
        return folder.gt_root / inner

    def partial_note(self) -> str | None:
        """What makes this tree smaller than REDS (None if nothing): clips, frames per clip, frame size.

        Counts the frame files of the served clips and reads one PNG header per clip (cheap);
        frame-by-frame checks happen when a clip is read.
        """
        notes = []
        have = len(self._where)
        if have < len(ALL_CLIPS):
            notes.append(f"{have} of REDS's {len(ALL_CLIPS)} clips")
        if self.generates_lq:
            notes.append("no train_sharp_bicubic folder: LQ frames are made by MATLAB bicubic x1/4 of the GT")
        counts = {c: _count_frames(self.gt_folder(c)) for c in self._names}
        short = sorted({n for n in counts.values() if n != FULL_FRAMES})
        if short:
            notes.append(f"clips of {', '.join(map(str, short))} frames (REDS has {FULL_FRAMES})")
        sizes = set()
        for c in self._names:
            frames = sorted((p for p in self.gt_folder(c).iterdir() if p.suffix.lower() == ".png"), key=lambda p: natural_key(p.name))
            if frames:
                sizes.add(frame_size(frames[0]))
        odd = sorted(s for s in sizes if s != FULL_GT_SIZE)
        if odd:
            notes.append(f"GT frames of {', '.join(f'{w}x{h}' for h, w in odd)} (REDS: 1280x720)")
        if not notes:
            return None
        return f"partial REDS tree at {self.root}: " + "; ".join(notes)

    # -- ClipSource ---------------------------------------------------------------------------
    def _part(self, clip: str) -> tuple[FolderSource, str]:
        if clip not in self._names:
            raise DataError(f"{self.name}: no clip {clip!r}; clips are {', '.join(self._names[:8])}"
                            f"{' ...' if len(self._names) > 8 else ''}")
        return self._where[clip]

    def clips(self) -> list[str]:
        return list(self._names)

    def num_frames(self, clip: str) -> int:
        folder, inner = self._part(clip)
        return folder.num_frames(inner)

    def lq_size(self, clip: str) -> tuple[int, int]:
        folder, inner = self._part(clip)
        return folder.lq_size(inner)

    def read_gt(self, clip: str, indices: Sequence[int], box: Box | None = None) -> np.ndarray:
        folder, inner = self._part(clip)
        return folder.read_gt(inner, indices, box)

    def read_lq(self, clip: str, indices: Sequence[int], box: Box | None = None) -> np.ndarray:
        folder, inner = self._part(clip)
        return folder.read_lq(inner, indices, box)

    def read_clip(self, clip: str) -> tuple[np.ndarray, np.ndarray]:
        folder, inner = self._part(clip)
        return folder.read_clip(inner)


def reds_split(available: Sequence[str], split: str, partition: str = "reds4") -> list[str]:
    """The clips of ``split`` ("train" or "test") under ``partition`` ("reds4" or "official").

    ``available`` is what the tree (or store) holds.  Training clips are the available ones
    outside the partition's test clips; test clips are the partition's clips that are
    available (a partial tree may lack some: a warning; lacking all: a :class:`DataError`).
    """
    if partition not in PARTITIONS:
        raise DataError(f"unknown REDS partition {partition!r}; expected one of {', '.join(PARTITIONS)}")
    held_out = PARTITIONS[partition]
    if split == "train":
        clips = [c for c in available if c not in held_out]
        if not clips:
            raise DataError(f"no REDS training clips: every clip found ({', '.join(available)}) "
                            f"is a {partition} test clip")
        return clips
    if split == "test":
        clips = [c for c in held_out if c in available]
        if not clips:
            raise DataError(f"none of the {partition} test clips ({', '.join(held_out[:6])}"
                            f"{' ...' if len(held_out) > 6 else ''}) is in the REDS tree")
        if len(clips) < len(held_out):
            missing = [c for c in held_out if c not in available]
            warnings.warn(f"partial REDS tree: {partition} test clip(s) {', '.join(missing[:8])}"
                          f"{' ...' if len(missing) > 8 else ''} missing; testing on {', '.join(clips)}",
                          PartialDatasetWarning, stacklevel=2)
        return clips
    raise DataError(f"split must be 'train' or 'test', got {split!r}")
