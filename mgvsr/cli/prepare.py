"""``mgvsr prepare``: check a dataset tree, make missing LR frames, write the frame store.

    mgvsr prepare reds --root /data/REDS                 # -> /data/REDS/.mgvsr-store/reds/
    mgvsr prepare vimeo90k --root /data/vimeo_septuplet --store /scratch/vimeo-store
    mgvsr prepare vid4 --root /data/Vid4 --check         # only check, write nothing

It checks the layout (clip and frame counts, frame sizes, LR/GT pairing), decodes every
frame once (which finds corrupt files), makes LR frames by MATLAB bicubic where the tree
has none, and writes the store atomically (:mod:`mgvsr.data.store`).  Every problem is
reported with its file name, and the exit status is non-zero when there is any.  A store
that is up to date with its tree (same file names, sizes, times) is left alone.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
import warnings
from pathlib import Path

from mgvsr.errors import MgvsrError

HELP = "Check a dataset tree (REDS, Vimeo-90K, Vid4, a folder of clips) and write its fast frame store."

DATASETS = ("reds", "vimeo90k", "vid4", "folder")  # mgvsr.data.datasets.TREES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", choices=DATASETS, help="the layout of the tree")
    parser.add_argument("--root", type=Path, required=True,
                        help="reds: the folder holding train_sharp/; vimeo90k: vimeo_septuplet/ (sequences/ and "
                             "the lists); vid4: the folder holding GT/; folder: GT/ (+ BIx4/) or clip folders")
    parser.add_argument("--store", type=Path,
                        help="where to write the store (default: ROOT/.mgvsr-store/DATASET)")
    parser.add_argument("--lq-root", type=Path,
                        help="vimeo90k, vid4, folder: LR frames in another folder (default: the usual places, "
                             "else made by MATLAB bicubic)")
    parser.add_argument("--check", action="store_true", help="only check the tree; write nothing")
    parser.add_argument("--force", action="store_true", help="rewrite the store even if it is up to date")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="threads decoding frames (default: min(8, CPU cores))")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


@contextlib.contextmanager
def plain_warnings(command: str):
    """Print warnings as ``mgvsr COMMAND: warning: ...`` lines on stderr (no file/line noise)."""
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        previous = warnings.showwarning
        warnings.showwarning = lambda message, *args, **kwargs: print(
            f"mgvsr {command}: warning: {message}", file=sys.stderr)
        try:
            yield
        finally:
            warnings.showwarning = previous


def _lq_origin(source) -> str:
    lq = getattr(source, "lq_root", None)
    if hasattr(source, "parts"):  # REDS
        lq = source.parts[0].lq
    return f"from {lq}" if lq is not None else "made by MATLAB bicubic x1/4 of the GT (no LR folder found)"


def _gigabytes(n: int) -> str:
    return f"{n / 1e9:.2f} GB"


def run(args: argparse.Namespace) -> int:
    from mgvsr.data.datasets import open_tree
    from mgvsr.data.store import (
        StoreProblems,
        TreeOrigin,
        check_clips,
        default_store_path,
        fingerprint,
        open_store,
        store_fingerprint,
        write_store,
    )

    if args.workers is not None and args.workers < 1:
        raise MgvsrError(f"--workers must be >= 1, got {args.workers}")
    progress = not args.no_progress
    with plain_warnings("prepare"):
        source, splits, notes, folders = open_tree(args.dataset, args.root, args.lq_root)
        for note in notes:
            warnings.warn(note[1] if isinstance(note, tuple) else note)
        path = args.store or default_store_path(args.root, args.dataset)
        print(f"{args.dataset} at {args.root}: {len(source.clips())} clips; LR frames {_lq_origin(source)}")

        if args.check:
            shapes, problems = check_clips(source, progress)
            if problems:
                raise StoreProblems(f"{args.dataset} at {args.root}", problems)
            frames = sum(n for n, _ in shapes.values())
            print(f"checked: {len(shapes)} clips, {frames} frames; layout, counts, sizes and LR/GT pairing are fine "
                  "(frames are decoded only when the store is written)")
            return 0

        folders = [Path(f).resolve() for f in folders]  # recorded in the store: training re-checks them
        stamp = fingerprint(folders)
        if not args.force and store_fingerprint(path) == stamp:
            print(f"the frame store at {path} is up to date with the tree (use --force to rewrite it)")
            return 0
        start = time.perf_counter()
        write_store(source, path, args.dataset, splits=splits, notes=notes,
                    origin=TreeOrigin(str(args.root.resolve()), stamp, folders), workers=args.workers,
                    progress=progress)
        store = open_store(path)
        files = store.index["files"]
        frames = sum(store.num_frames(c) for c in store.clips())
        print(f"wrote {path}: {len(store.clips())} clips, {frames} frames, "
              f"GT {_gigabytes(files['gt']['bytes'])}, LR {_gigabytes(files['lq']['bytes'])} "
              f"in {time.perf_counter() - start:.1f} s")
    return 0
