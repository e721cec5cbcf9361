"""Vimeo-90K septuplets as downloaded, their x4 LR frames, and the flip-concatenation to 14 frames.

The dataset (Xue et al., IJCV 2019) is 91,701 septuplets of 448x256 frames::

    ROOT/sequences/00001/0001/im1.png ... im7.png
    ROOT/sep_trainlist.txt    64,612 lines "00001/0001"
    ROOT/sep_testlist.txt      7,824 lines

(``ROOT`` is the unzipped ``vimeo_septuplet`` folder.)  MMagic renames ``sequences`` to
``GT``; that is read too, and so are BasicSR's ``meta_info_Vimeo90K_*_GT.txt`` lists
(``00001/0001 7 (256,448,3)``: the first field is the sequence).

LR frames ("BI", MATLAB ``imresize(x, 1/4, 'bicubic')``) are not part of the download.  They
are looked for, in this order, at ``--lq-root`` if given, ``ROOT/BIx4`` (MMagic's
``data/vimeo90k/BIx4`` beside ``GT``), ``ROOT/../BIx4`` (BasicSR's test config:
``vimeo90k/BIx4`` beside ``vimeo90k/vimeo_septuplet``) and
``ROOT/../vimeo_septuplet_matlabLRx4/sequences`` (what BasicSR's
``generate_LR_Vimeo90K.m`` writes), each with the same ``<5d>/<4d>/im*.png`` layout.  Without
any, LR frames are made here by the same MATLAB bicubic (:mod:`mgvsr.data.resize`), which
``mgvsr prepare`` stores once.

**Flip-concatenation.**  The paper trains temporal sizes up to 14 on 7-frame sequences:
"the sequence is flipped and concatenated to the original (14 frames), and T consecutive
frames of that are sampled" (supplementary A).  :class:`MirroredSource` serves each
septuplet as the 14 frames ``im1 .. im7, im7 .. im1`` (frame ``i`` of the 14 is frame
``i`` for ``i < 7`` and frame ``13 - i`` after).  That order is what the field's code does,
so it is what the paper's numbers were trained with: BasicSR's ``Vimeo90KRecurrentDataset``
with ``flip_sequence: true`` (``torch.cat([imgs, imgs.flip(0)])``) and MMagic's
``MirrorSequence`` (``seq + seq[::-1]``).  The middle pair repeats ``im7`` (a still step
for the recurrent model); the alternative ``im1 .. im7, im6 .. im1`` has 13 frames, one short
of the 14 the paper's largest temporal size needs.  The paper flips only "for temporal sizes
above 7": :meth:`MirroredSource.windows_source` gives a trainer the original septuplets for stages of up to 7
frames and the mirrored ones above.

**Test protocol** (BasicSR ``options/test/BasicVSR/test_BasicVSR_Vimeo90K_BIx4.yml``:
``VideoTestVimeo90KDataset``, ``flip_seq: true``, ``center_frame_only: true``, Y channel, no
border crop): a recurrent model runs on the 7 LR frames flip-concatenated to 14, the two
outputs of ``im4`` are averaged, and only ``im4`` is scored against its GT.  See
:data:`mgvsr.evaluate.PROTOCOLS`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mgvsr.data.folders import FolderSource, ClipInfo
from mgvsr.data.source import Box, ClipSource, PartialDatasetWarning
from mgvsr.errors import DataError

__all__ = ["VimeoLayout", "find_vimeo", "read_sequence_list", "VimeoSource", "MirroredSource",
           "FRAMES", "FULL_COUNTS"]

FRAMES = 7  # a septuplet
FULL_COUNTS = {"train": 64_612, "test": 7_824}
LIST_NAMES = {
    "train": ("sep_trainlist.txt", "meta_info_Vimeo90K_train_GT.txt"),
    "test": ("sep_testlist.txt", "meta_info_Vimeo90K_test_GT.txt"),
}


@dataclass(frozen=True)
class VimeoLayout:
    """Where the parts of a Vimeo-90K tree are."""

    root: Path
    gt: Path  # folder of <5d>/<4d>/im1..im7.png
    lq: Path | None  # the same layout at 1/4 size, or None: make LR by MATLAB bicubic
    lists: dict[str, Path]  # split -> list file

    def list_path(self, split: str) -> Path:
        if split not in LIST_NAMES:
            raise DataError(f"Vimeo-90K split must be 'train' or 'test', got {split!r}")
        if split not in self.lists:
            raise DataError(f"Vimeo-90K at {self.root}: no {split} list (expected {self.root / LIST_NAMES[split][0]})")
        return self.lists[split]


def find_vimeo(root: str | Path, lq_root: str | Path | None = None) -> VimeoLayout:
    """Find GT, LR and the lists of a Vimeo-90K tree; :class:`DataError` if ``root`` is not one."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"Vimeo-90K root not found: {root}")
    if not (root / "sequences").is_dir() and not (root / "GT").is_dir() and (root / "vimeo_septuplet").is_dir():
        root = root / "vimeo_septuplet"  # pointed at the folder above the unzipped one
    gt = root / "sequences" if (root / "sequences").is_dir() else root / "GT"
    if not gt.is_dir():
        raise DataError(
            f"{root} is not a Vimeo-90K tree: expected {root / 'sequences'}/00001/0001/im1.png .. im7.png "
            "(or GT/ in MMagic's layout) and sep_trainlist.txt / sep_testlist.txt beside it"
        )
    lists = {}
    for split, names in LIST_NAMES.items():
        for name in names:
            if (root / name).is_file():
                lists[split] = root / name
                break
    if not lists:
        raise DataError(f"Vimeo-90K at {root}: neither {root / 'sep_trainlist.txt'} nor {root / 'sep_testlist.txt'} found")
    if lq_root is not None:
        lq = Path(lq_root)
        if not lq.is_dir():
            raise DataError(f"Vimeo-90K LR folder not found: {lq}")
    else:
        candidates = [root / "BIx4", root.parent / "BIx4", root.parent / "vimeo_septuplet_matlabLRx4" / "sequences"]
        lq = next((c for c in candidates if c.is_dir()), None)
    return VimeoLayout(root, gt, lq, lists)


def read_sequence_list(path: str | Path) -> list[str]:
    """The sequences ``"00001/0001"`` of a list file (``sep_*list.txt`` or BasicSR meta_info)."""
    path = Path(path)
    names, seen = [], set()
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        name = fields[0]
        parts = name.split("/")
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            raise DataError(f"{path}, line {number}: {line.strip()!r} is not a sequence name like 00001/0001")
        if name in seen:
            raise DataError(f"{path}, line {number}: sequence {name} is listed twice")
        seen.add(name)
        names.append(name)
    if not names:
        raise DataError(f"{path} lists no sequences")
    return names


class VimeoSource(FolderSource):
    """Vimeo-90K septuplets of a split: clips named ``"00001/0001"``, 7 frames each.

    Args:
        root: the ``vimeo_septuplet`` folder (holding ``sequences/`` and the lists).
        split: "train" or "test": the sequences of ``sep_trainlist.txt`` / ``sep_testlist.txt``.
        lq_root: the LR folder, if not in one of the usual places (see the module docstring).
        sequences: serve these sequences instead of a split's list.
        cache: keep decoded frames in memory (only for small subsets).
        warn: warn when the list is shorter than the full dataset's (a partial tree).

    Every listed sequence must exist (with its LR folder, when LR frames are on disk) and
    hold exactly ``im1.png`` .. ``im7.png``: otherwise a :class:`DataError` names the list,
    the line and the missing path.
    """

    def __init__(self, root: str | Path, split: str = "test", lq_root: str | Path | None = None,
                 sequences: Sequence[str] | None = None, cache: bool = False, name: str | None = None,
                 warn: bool = True) -> None:
        layout = find_vimeo(root, lq_root)
        self.layout = layout
        self.split = split
        if sequences is None:
            list_path = layout.list_path(split)
            names = read_sequence_list(list_path)
            where = f"listed in {list_path}"
            if warn and len(names) < FULL_COUNTS[split]:
                warnings.warn(f"partial Vimeo-90K: {list_path} lists {len(names):,} of the "
                              f"{FULL_COUNTS[split]:,} {split} septuplets", PartialDatasetWarning, stacklevel=2)
        else:
            names = list(sequences)
            where = "asked for"
            if not names:
                raise DataError("an empty list of Vimeo-90K sequences was asked for")
        missing = [n for n in names if not (layout.gt / n).is_dir()]
        if missing:
            raise DataError(
                f"{len(missing)} sequence(s) {where} missing: {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''} "
                f"(expected {layout.gt / missing[0]}/im1.png .. im7.png)"
            )
        if layout.lq is not None:
            missing = [n for n in names if not (layout.lq / n).is_dir()]
            if missing:
                raise DataError(
                    f"LR frames missing for {len(missing)} sequence(s): {', '.join(missing[:5])}"
                    f"{' ...' if len(missing) > 5 else ''} (expected {layout.lq / missing[0]}/im1.png .. im7.png "
                    f"beside {layout.gt / missing[0]})"
                )
        # FolderSource's own constructor takes clips as direct sub-folders of gt_root; Vimeo's
        # clips are two levels down ("00001/0001"), so we set its fields here and reuse the rest
        # (frame listing, LR/GT pairing checks, generated LR, caching).
        self.gt_root = layout.gt
        self.lq_root = layout.lq
        self.scale = 4
        self.name = name or ("vimeo90k" if split == "test" else f"vimeo90k-{split}")
        self.cache = cache
        self._frames = {}
        self._info = {}
        self._names = names

    def _scan(self, clip: str) -> ClipInfo:
        info = super()._scan(clip)
        expected = [f"im{i}.png" for i in range(1, FRAMES + 1)]
        for paths, folder in ((info.gt, self.gt_root), (info.lq, self.lq_root)):
            if paths is not None and [p.name for p in paths] != expected:
                raise DataError(
                    f"{folder / clip} holds {', '.join(p.name for p in paths[:9])}: "
                    f"expected a septuplet, im1.png .. im7.png"
                )
        return info


class MirroredSource(ClipSource):
    """Each clip of ``source`` followed by itself reversed: ``n`` frames become ``2n``.

    Frame ``i`` of the mirrored clip is frame ``i`` for ``i < n`` and ``2n - 1 - i`` after:
    a septuplet ``im1 .. im7`` becomes ``im1 .. im7, im7 .. im1`` (see the module docstring).
    Reads go to ``source`` (PNG folders or a frame store) with the indices mapped.
    """

    def __init__(self, source: ClipSource) -> None:
        self.source = source
        self.scale = source.scale
        self.name = source.name

    @staticmethod
    def source_index(i: int, n: int) -> int:
        """The index in the original clip of frame ``i`` of the ``2n`` mirrored frames."""
        if not 0 <= i < 2 * n:
            raise DataError(f"mirrored clip has frames 0..{2 * n - 1}; asked for {i}")
        return i if i < n else 2 * n - 1 - i

    def _map(self, clip: str, indices: Sequence[int]) -> list[int]:
        n = self.source.num_frames(clip)
        return [self.source_index(int(i), n) for i in indices]

    def clips(self) -> list[str]:
        return self.source.clips()

    def num_frames(self, clip: str) -> int:
        return 2 * self.source.num_frames(clip)

    def lq_size(self, clip: str) -> tuple[int, int]:
        return self.source.lq_size(clip)

    def read_gt(self, clip: str, indices: Sequence[int], box: Box | None = None) -> np.ndarray:
        return self.source.read_gt(clip, self._map(clip, indices), box)

    def read_lq(self, clip: str, indices: Sequence[int], box: Box | None = None) -> np.ndarray:
        return self.source.read_lq(clip, self._map(clip, indices), box)

    def windows_source(self, frames: int) -> ClipSource:
        """The paper flips and concatenates a sequence only "for temporal sizes above 7": windows of
        at most the original length come from the original clips (windows of 6 frames never cross
        the ``im7, im7`` turn), longer ones from the mirrored clips.  (Clips of one dataset share a
        length, as Vimeo-90K's septuplets do: the first is checked.)"""
        clips = self.source.clips()
        if clips and frames <= self.source.num_frames(clips[0]):
            return self.source
        return self
