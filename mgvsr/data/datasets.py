"""Open a dataset by name: the one place that maps a name (and a root) to a ClipSource.

=================  ==============================================  ==============================
name               split="train"                                   split="test"
=================  ==============================================  ==============================
``sample``         the embedded sample clips                       their held-out clips
``folder``         ``root/GT`` (+ ``root/BIx4``) or clip folders    the same
``reds``           REDS minus REDS4 (266 clips)                    REDS4 (000, 011, 015, 020)
``reds4``          (a test set)                                    REDS4
``reds_official``  REDS clips 000-239                              the validation clips 240-269
``vimeo90k``       ``sep_trainlist.txt``, 14 frames (flip-concat)  ``sep_testlist.txt``, 7 frames
``vimeo90k_test``  (a test set)                                    ``sep_testlist.txt``
``vid4``           (a test set)                                    Vid4 (``root/GT``, ``root/BIx4``)
=================  ==============================================  ==============================

Frame store: ``mgvsr prepare`` writes the decoded frames of a tree to
``<root>/.mgvsr-store/<kind>/`` (or a folder given with ``--store``).  ``open_dataset``
reads from it when it is there (``store=None``, the default), from the PNG files when
``store=False``, and from the given folder when ``store`` is a path.  Either way the
clips, frames and pixels are the same (``tests/test_store.py``).

Benchmarks (:data:`BENCHMARKS`, :func:`open_benchmark`): the names ``mgvsr eval --dataset``
takes, each the test split of a dataset above (``reds_val`` is ``reds_official``'s,
``vimeo90k`` is ``vimeo90k_test``'s).  Trees (:data:`TREES`, :func:`open_tree`): the layouts
``mgvsr prepare`` reads whole into a frame store.  Training (:func:`open_sources`): a
dataset's training split and a test split to evaluate on.

Partial trees (a subset of the clips, shorter clips) open with a
:class:`PartialDatasetWarning`; anything inconsistent raises
:class:`~mgvsr.errors.DataError` naming the path.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from mgvsr.data.folders import FolderSource
from mgvsr.data.reds import RedsSource, reds_split
from mgvsr.data.sample import sample_source
from mgvsr.data.source import ClipSource, PartialDatasetWarning
from mgvsr.data.store import check_tree, default_store_path, open_store
from mgvsr.data.vimeo import FULL_COUNTS, MirroredSource, VimeoSource, find_vimeo
from mgvsr.errors import DataError, MgvsrError
from mgvsr.paths import shared_data_dir

__all__ = ["DATASETS", "TEST_ONLY", "BENCHMARKS", "TREES", "PartialDatasetWarning", "open_dataset",
           "open_benchmark", "open_sources", "open_tree", "verify_store", "ClipSubset"]

DATASETS = ("sample", "folder", "reds", "reds4", "reds_official", "vimeo90k", "vimeo90k_test", "vid4")
TEST_ONLY = ("reds4", "vimeo90k_test", "vid4")
# The layout (and store kind) behind each name.
KIND = {"sample": "sample", "folder": "folder", "reds": "reds", "reds4": "reds", "reds_official": "reds",
        "vimeo90k": "vimeo90k", "vimeo90k_test": "vimeo90k", "vid4": "vid4"}
# The tree layouts `mgvsr prepare` writes a frame store of.
TREES = ("reds", "vimeo90k", "vid4", "folder")
# The benchmarks `mgvsr eval --dataset NAME` scores, as the test split of a dataset above.
BENCHMARKS = {"reds4": "reds4", "reds_val": "reds_official", "vid4": "vid4", "vimeo90k": "vimeo90k_test",
              "folder": "folder", "sample": "sample"}


def _need_root(name: str, root) -> Path:
    if root is None:
        raise DataError(f"dataset {name!r} needs a root folder (--root DIR)")
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"dataset {name!r}: root folder not found: {root}")
    return root


def _store_path(root: Path, store, kind: str) -> Path | None:
    """Where the frame store to read is, or None (no store under root, or ``store=False``)."""
    if store is False:
        return None
    if store is None or store is True:
        path = default_store_path(root, kind)
        if store is None and not path.exists():
            return None  # not prepared: read the image files
        return path
    return Path(store)


def _open_store(name: str, root: Path, store, kind: str):
    """The :class:`~mgvsr.data.store.StoreSource` to read, or None (no store under root, or ``store=False``)."""
    path = _store_path(root, store, kind)
    if path is None:
        return None
    found = open_store(path)
    if found.kind != kind:
        raise DataError(f"the frame store at {path} holds a {found.kind!r} dataset, not {kind!r} (for {name!r})")
    return found


# The name results are reported under (it picks the evaluation protocol, mgvsr.evaluate.PROTOCOLS).
REDS_LABELS = {("reds", "train"): "reds", ("reds", "test"): "reds4", ("reds4", "test"): "reds4",
               ("reds_official", "train"): "reds_official", ("reds_official", "test"): "reds_val"}


def _reds(name: str, root: Path, split: str, store, lq_root) -> ClipSource:
    if lq_root is not None:
        raise DataError("REDS reads its LQ frames from train_sharp_bicubic/X4: --lq-root is not used")
    partition = "official" if name == "reds_official" else "reds4"
    label = REDS_LABELS[name, split]
    prepared = _open_store(name, root, store, "reds")
    if prepared is not None:
        clips = reds_split(prepared.clips(), split, partition)
        prepared.emit_notes()
        return prepared.subset(clips, name=label)
    everything = RedsSource(root, warn=False)
    clips = reds_split(everything.clips(), split, partition)
    return RedsSource(root, clips=clips, name=label)


def _vimeo(root: Path, split: str, store, lq_root) -> ClipSource:
    prepared = None if lq_root is not None else _open_store("vimeo90k", root, store, "vimeo90k")
    if prepared is not None:
        prepared.emit_notes(split)
        source = prepared.subset(prepared.split_clips(split), name="vimeo90k" if split == "test" else "vimeo90k-train")
    else:
        source = VimeoSource(root, split=split, lq_root=lq_root)
    # Training windows of up to 14 frames come from each septuplet flipped and concatenated.
    return MirroredSource(source) if split == "train" else source


def open_dataset(name: str, root: str | Path | None = None, split: str = "train",
                 cache: bool | None = None, store: str | Path | bool | None = None,
                 lq_root: str | Path | None = None, clips: list[str] | None = None) -> ClipSource:
    """The clips of dataset ``name`` for ``split`` ("train" or "test"); see the module docstring.

    ``cache`` keeps decoded frames in memory (default: on for the small sets ``sample``,
    ``folder`` and ``vid4``, off for REDS and Vimeo-90K).  ``store``: None = the prepared
    frame store under ``root`` when there is one, False = the image files, a path = that
    store.  ``lq_root``: LR frames somewhere else (``folder``, ``vid4``, ``vimeo90k``).
    ``clips``: only these clips, in this order.
    """
    source = _open(name, root, split, cache, store, lq_root)
    return ClipSubset(source, clips) if clips else source


def _open(name: str, root, split: str, cache, store, lq_root) -> ClipSource:
    if split not in ("train", "test"):
        raise DataError(f"split must be 'train' or 'test', got {split!r}")
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; expected one of {', '.join(DATASETS)}")
    if name in TEST_ONLY and split == "train":
        train = {"reds4": "reds", "vimeo90k_test": "vimeo90k"}.get(name)
        hint = f"; train on {train!r} (it holds {name} out)" if train else ""
        raise DataError(f"{name!r} is a test set{hint}")
    if lq_root is not None and store not in (None, False):
        raise DataError("a frame store holds its own LR frames: pass either store or lq_root, not both")
    small = cache if cache is not None else True
    if name == "sample":
        return sample_source(split, root=root, cache=small)
    root = _need_root(name, root)
    if name in ("reds", "reds4", "reds_official"):
        return _reds(name, root, split, store, lq_root)
    if name in ("vimeo90k", "vimeo90k_test"):
        return _vimeo(root, split, store, lq_root)
    kind = KIND[name]
    prepared = None if lq_root is not None else _open_store(name, root, store, kind)
    if prepared is not None:
        prepared.emit_notes()
        return prepared
    if name == "vid4":
        if lq_root is not None:
            return FolderSource(root / "GT", lq_root, cache=small, name="vid4")
        return FolderSource.vid4(root, cache=small)
    # folder
    if (root / "GT").is_dir():
        lq = Path(lq_root) if lq_root is not None else (root / "BIx4" if (root / "BIx4").is_dir() else None)
        return FolderSource(root / "GT", lq, cache=small, name=root.name)
    return FolderSource(root, lq_root, cache=small, name=root.name or "folder")


def open_benchmark(name: str, root: str | Path | None = None, *, store: str | Path | bool | None = None,
                   lq_root: str | Path | None = None, clips: list[str] | None = None) -> ClipSource:
    """The test clips of benchmark ``name`` (:data:`BENCHMARKS`: what ``mgvsr eval --dataset`` takes).

    Vid4 without ``root`` is read from the developers' shared data when it is there.
    """
    if name not in BENCHMARKS:
        raise DataError(f"unknown benchmark {name!r}; expected one of {', '.join(BENCHMARKS)}")
    if root is None and name == "vid4":
        shared = shared_data_dir()
        if shared is None or not (shared / "vid4" / "GT").is_dir():
            raise DataError("--dataset vid4 needs --root DIR (the folder holding GT/<clip>/)")
        root = shared / "vid4"
    if root is None and name == "folder":
        raise DataError("--dataset folder needs --root DIR (one sub-folder of frames per clip)")
    return open_dataset(BENCHMARKS[name], root, split="test", store=store, lq_root=lq_root, clips=clips)


def open_sources(dataset: str, root: str | Path | None, test_dataset: str | None = None, store=None
                 ) -> tuple[ClipSource, ClipSource | None]:
    """``(train, test)`` clip sources: ``dataset``'s training split and ``test_dataset``'s test split
    (``dataset``'s own test split when None).  ``test`` is None, with a warning, where the root holds
    no test clips; then a run trains without evaluations."""
    train = open_dataset(dataset, root, split="train", store=store)
    try:
        test = open_dataset(test_dataset or dataset, root, split="test", store=store)
    except MgvsrError as exc:
        warnings.warn(f"no evaluation during training: {exc}", stacklevel=2)
        test = None
    return train, test


def verify_store(dataset: str, root: str | Path | None, store=None) -> None:
    """Refuse (:class:`~mgvsr.errors.DataError`) the frame store that ``open_dataset(dataset, root,
    store=store)`` would read when the tree it was made from has changed since
    (:func:`mgvsr.data.store.check_tree`); nothing to check where no store would be read."""
    kind = KIND.get(dataset)
    if kind is None or kind == "sample" or root is None or store is False:
        return
    path = _store_path(Path(root), store, kind)
    if path is not None:
        check_tree(path)


def open_tree(dataset: str, root: Path, lq_root: Path | None):
    """``(source, splits, notes, folders)``: every clip of the tree of layout ``dataset`` (:data:`TREES`)
    at ``root``, read from its files (what ``mgvsr prepare`` writes into a frame store).

    ``splits`` are the clip lists the store keeps (Vimeo-90K's), ``notes`` the partial-tree
    warnings, ``folders`` what the fingerprint covers.
    """
    root = Path(root)
    if dataset not in TREES:
        raise DataError(f"unknown tree layout {dataset!r}; expected one of {', '.join(TREES)}")
    if not root.is_dir():
        raise DataError(f"--root folder not found: {root}")
    if dataset == "reds":
        if lq_root is not None:
            raise DataError("reds reads its LR frames from train_sharp_bicubic/X4: --lq-root is not used")
        source = RedsSource(root, warn=False)
        note = source.partial_note()
        return source, {}, [note] if note else [], [root]
    if dataset == "vimeo90k":
        layout = find_vimeo(root, lq_root)
        splits = {split: VimeoSource(root, split, lq_root, warn=False).clips() for split in layout.lists}  # checks each list
        every = list(dict.fromkeys(name for names in splits.values() for name in names))
        source = VimeoSource(root, lq_root=lq_root, sequences=every, name="vimeo90k", warn=False)
        notes = [(s, f"partial Vimeo-90K: {layout.lists[s].name} lists {len(n):,} of the {FULL_COUNTS[s]:,} {s} septuplets")
                 for s, n in splits.items() if len(n) < FULL_COUNTS[s]]
        folders = [layout.gt, *layout.lists.values()] + ([layout.lq] if layout.lq else [])
        return source, splits, notes, folders
    if dataset == "vid4":
        if lq_root is not None:
            return FolderSource(root / "GT", lq_root, name="vid4"), {}, [], [root / "GT", lq_root]
        source = FolderSource.vid4(root)
        return source, {}, [], [root]
    # folder
    if (root / "GT").is_dir():
        lq = lq_root or (root / "BIx4" if (root / "BIx4").is_dir() else None)
        return FolderSource(root / "GT", lq, name=root.name), {}, [], [root / "GT"] + ([lq] if lq else [])
    return FolderSource(root, lq_root, name=root.name), {}, [], [root] + ([lq_root] if lq_root else [])


class ClipSubset(ClipSource):
    """Some clips of ``source``, in the given order (same name and scale, so the same protocol)."""

    def __init__(self, source: ClipSource, clips: list[str]) -> None:
        have = source.clips()
        unknown = [c for c in clips if c not in have]
        if unknown:
            raise DataError(f"{source.name}: no clip {', '.join(map(repr, unknown[:5]))}; it has "
                            f"{', '.join(have[:8])}{' ...' if len(have) > 8 else ''}")
        if not clips:
            raise DataError(f"{source.name}: an empty list of clips was asked for")
        self.source = source
        self.name = source.name
        self.scale = source.scale
        self._names = list(clips)

    def clips(self) -> list[str]:
        return list(self._names)

    def num_frames(self, clip: str) -> int:
        return self.source.num_frames(clip)

    def lq_size(self, clip: str) -> tuple[int, int]:
        return self.source.lq_size(clip)

    def read_gt(self, clip, indices, box=None):
        return self.source.read_gt(clip, indices, box)

    def read_lq(self, clip, indices, box=None):
        return self.source.read_lq(clip, indices, box)

    def read_clip(self, clip):
        return self.source.read_clip(clip)
