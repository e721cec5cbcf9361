"""The frame store: every decoded frame of a dataset in two memory-mapped files, for cheap random windows.

Decoding PNGs is the classic bottleneck of video SR training: a REDS training window of 15
frames decodes 15 GT frames of 1280x720 to keep a 256x256 crop of each.  ``mgvsr prepare``
decodes every frame once and writes them, raw, into a *store*::

    <store>/index.json   clips, frame counts, sizes and byte offsets; what it was made from
    <store>/gt.u8        GT frames, uint8 RGB, clip after clip, (t, H, W, 3) each
    <store>/lq.u8        LQ frames likewise, (t, h, w, 3) each

A window is then a slice of a memory-mapped array: :meth:`StoreSource.read_gt` with a box
copies only the crop's rows of the requested frames, with no decoding (the operating
system's page cache keeps hot frames in memory).  Raw frames cost disk (frames x height x
width x 3 bytes): REDS's 270 clips take 74.6 GB of GT and 4.7 GB of LQ, Vimeo-90K's 72,436
listed septuplets 174 GB and 11 GB; a subset costs its share.

Where: ``<root>/.mgvsr-store/<kind>/`` by default (beside the data it was made from; the
dot keeps it out of clip listings), or any folder given with ``--store`` (a read-only
dataset root, a faster disk).

Writes are atomic: everything goes into ``<store>.tmp-<pid>/`` which is renamed to
``<store>`` only when complete (``index.json`` last), so an interrupted ``prepare`` never
leaves a half-written store that could be read; its temporary folder is removed (or, after
a hard kill, by the next ``prepare``).  A store records a fingerprint of the files it was
made from (names, sizes, modification times): ``prepare`` rebuilds a store whose tree has
changed and leaves an up-to-date one alone.  Reading does not re-check the tree, but
training does (:func:`check_tree`, from :func:`mgvsr.train.run_preset`): a store whose tree
has changed since is refused, naming both (run ``mgvsr prepare`` again after changing it).
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import shutil
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from mgvsr.data.io import IMAGE_EXTENSIONS
from mgvsr.data.source import Box, ClipSource, PartialDatasetWarning
from mgvsr.errors import DataError

__all__ = ["STORE_DIRNAME", "StoreProblems", "StoreSource", "default_store_path", "write_store",
           "open_store", "fingerprint", "check_clips", "store_fingerprint", "check_tree"]

STORE_DIRNAME = ".mgvsr-store"
FORMAT = "mgvsr-frame-store"
VERSION = 1
ALIGN = 4096  # clips start on page boundaries
CHUNK = 16  # frames decoded at a time per clip (bounds memory for long clips)


class StoreProblems(DataError):
    """Everything wrong with a dataset that ``prepare`` found; ``problems`` lists them one by one."""

    def __init__(self, what: str, problems: list[str]) -> None:
        self.problems = problems
        listing = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{what}: {len(problems)} problem(s), nothing written:\n{listing}")


def default_store_path(root: str | Path, kind: str) -> Path:
    """``<root>/.mgvsr-store/<kind>``: where ``prepare`` writes and ``open_dataset`` looks by default."""
    return Path(root) / STORE_DIRNAME / kind


# ---- fingerprints -------------------------------------------------------------------------------
def fingerprint(paths: Iterable[str | Path]) -> str:
    """A hash of the names, sizes and modification times of every image and text file under ``paths``.

    Hidden files and folders (such as the store itself) are skipped.  Cheap (no file is read):
    a changed, added or removed frame changes it.
    """
    h = hashlib.sha256()
    for top in sorted(Path(p) for p in paths):
        if top.is_file():
            st = top.stat()
            h.update(f"{top.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
            continue
        for folder, dirs, files in os.walk(top):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            rel = os.path.relpath(folder, top)
            for name in sorted(files):
                ext = os.path.splitext(name)[1].lower()
                if name.startswith(".") or (ext not in IMAGE_EXTENSIONS and ext != ".txt"):
                    continue
                st = os.stat(os.path.join(folder, name))
                h.update(f"{top.name}/{rel}/{name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


# ---- writing --------------------------------------------------------------------------------------
def check_clips(source: ClipSource, progress: bool = True) -> tuple[dict[str, tuple[int, tuple[int, int]]], list[str]]:
    """List every clip's frames and check sizes and LQ/GT pairing, collecting every problem.

    Returns ``({clip: (frames, lq_size)}, problems)``; each problem names the file or folder.
    """
    shapes, problems = {}, []
    for clip in tqdm(source.clips(), desc="checking", unit="clip", disable=not progress, leave=False):
        try:
            shapes[clip] = (source.num_frames(clip), source.lq_size(clip))
        except DataError as exc:
            problems.append(str(exc))
    return shapes, problems


def _copy_clip(source: ClipSource, clip: str, n: int, gt_out: np.ndarray, lq_out: np.ndarray,
               tick: Callable[[int], None]) -> None:
    """Decode clip ``clip`` into ``gt_out`` ``(n, H, W, 3)`` and ``lq_out`` ``(n, h, w, 3)``."""
    if n <= CHUNK:
        lq, gt = source.read_clip(clip)
        gt_out[:], lq_out[:] = gt, lq
        tick(n)
        return
    for start in range(0, n, CHUNK):
        idx = range(start, min(start + CHUNK, n))
        gt_out[start : idx.stop] = source.read_gt(clip, idx)
        lq_out[start : idx.stop] = source.read_lq(clip, idx)
        tick(len(idx))


def _aligned(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def _layout(shapes: dict[str, tuple[int, tuple[int, int]]], scale: int) -> tuple[list[dict], int, int]:
    """Byte offsets of every clip in gt.u8 and lq.u8: ``(entries, gt_bytes, lq_bytes)``."""
    entries, gt_off, lq_off = [], 0, 0
    for clip, (n, (h, w)) in shapes.items():
        H, W = h * scale, w * scale
        entries.append({"name": clip, "frames": n, "gt": [gt_off, H, W], "lq": [lq_off, h, w]})
        gt_off = _aligned(gt_off + n * H * W * 3)
        lq_off = _aligned(lq_off + n * h * w * 3)
    return entries, gt_off, lq_off


def _remove_stale_temporaries(path: Path) -> None:
    """Remove ``<store>.tmp-<pid>`` folders left by a prepare that was killed (its process is gone)."""
    for tmp in path.parent.glob(f"{path.name}.tmp-*"):
        try:
            pid = int(tmp.name.rsplit("-", 1)[1])
            os.kill(pid, 0)  # still running: leave it alone
        except ProcessLookupError:
            shutil.rmtree(tmp, ignore_errors=True)
        except (ValueError, PermissionError):
            pass


def _new_file(path: Path, size: int) -> np.ndarray:
    """A writable memory map of a new file of ``size`` bytes (sparse until written)."""
    with open(path, "wb") as f:
        f.truncate(size)
    if size == 0:
        return np.zeros(0, np.uint8)
    return np.memmap(path, dtype=np.uint8, mode="r+", shape=(size,))


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _clip_view(flat: np.ndarray, entry: dict, kind: str) -> np.ndarray:
    """The ``(t, h, w, 3)`` part of a flat uint8 file that holds ``entry``'s ``kind`` frames."""
    off, h, w = entry[kind]
    n = entry["frames"]
    return flat[off : off + n * h * w * 3].reshape(n, h, w, 3)


def _scratch_arrays(entry: dict) -> tuple[np.ndarray, np.ndarray]:
    """Throw-away arrays for a clip (decoding only to find problems)."""
    return tuple(np.empty((entry["frames"], entry[k][1], entry[k][2], 3), np.uint8) for k in ("gt", "lq"))


def _decode_all(source: ClipSource, entries: list[dict], sink: Callable[[dict], tuple[np.ndarray, np.ndarray]],
                workers: int | None, progress: bool) -> list[str]:
    """Decode every clip of ``entries`` into ``sink(entry)`` = (gt, lq) arrays with ``workers`` threads.

    Returns the problems (a message naming the file, per clip that failed), sorted by clip.
    """
    bar = tqdm(total=sum(e["frames"] for e in entries), desc=f"decoding {source.name}", unit="frame",
               disable=not progress)
    failed: dict[str, str] = {}

    def job(entry: dict) -> None:
        gt_out, lq_out = sink(entry)
        _copy_clip(source, entry["name"], entry["frames"], gt_out, lq_out, bar.update)

    pool = ThreadPoolExecutor(max_workers=workers or min(8, os.cpu_count() or 1))
    try:
        futures = {pool.submit(job, e): e["name"] for e in entries}
        for future in as_completed(futures):
            try:
                future.result()
            except DataError as exc:
                failed[futures[future]] = str(exc)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # on Ctrl-C: finish running clips, start no more
        bar.close()
    return [failed[e["name"]] for e in entries if e["name"] in failed]


@dataclass(frozen=True)
class TreeOrigin:
    """The tree a store is made from: ``made_from`` (its root, for people) and ``fingerprint`` (of the
    folders ``fingerprint_of``: :func:`fingerprint`), which training re-checks (:func:`check_tree`)."""

    made_from: str = ""
    fingerprint: str = ""
    fingerprint_of: Sequence[str | Path] = ()


def write_store(source: ClipSource, path: str | Path, kind: str, *, splits: dict[str, list[str]] | None = None,
                notes: Sequence[str | tuple[str, str]] = (), origin: TreeOrigin = TreeOrigin(),
                workers: int | None = None, progress: bool = True) -> Path:
    """Decode every frame of ``source`` into a new store at ``path``; replace an old one atomically.

    ``kind`` is the layout ("reds", "vimeo90k", "vid4", "folder"); ``splits`` the named clip
    lists a layout needs kept (Vimeo-90K's train/test lists); ``notes`` the partial-tree
    warnings, repeated whenever the store is opened (a ``(split, text)`` pair: only when that
    split is opened); ``origin`` describes the tree.  Raises :class:`StoreProblems` listing every
    clip that cannot be read (nothing is written then).  ``workers`` threads decode clips in parallel.
    """
    path = Path(path)
    shapes, problems = check_clips(source, progress)
    entries, gt_bytes, lq_bytes = _layout(shapes, source.scale)
    if problems:  # decode the clips that listed fine too, to report every problem at once; write nothing
        problems += _decode_all(source, entries, _scratch_arrays, workers, progress)
        raise StoreProblems(f"{source.name}", problems)

    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    done = False
    try:
        gt_map = _new_file(tmp / "gt.u8", gt_bytes)
        lq_map = _new_file(tmp / "lq.u8", lq_bytes)

        def views(entry: dict) -> tuple[np.ndarray, np.ndarray]:
            return _clip_view(gt_map, entry, "gt"), _clip_view(lq_map, entry, "lq")

        problems = _decode_all(source, entries, views, workers, progress)
        if problems:
            raise StoreProblems(f"{source.name}", problems)
        for m in (gt_map, lq_map):
            if isinstance(m, np.memmap):
                m.flush()
        del gt_map, lq_map
        for name in ("gt.u8", "lq.u8"):
            _fsync(tmp / name)
        index = _index(source, kind, entries, (gt_bytes, lq_bytes), splits, notes, origin)
        (tmp / "index.json").write_text(json.dumps(index))
        _fsync(tmp / "index.json")
        _install(tmp, path)
        done = True
    finally:
        if not done:
            shutil.rmtree(tmp, ignore_errors=True)
    return path


def _index(source: ClipSource, kind: str, entries: list[dict], sizes: tuple[int, int], splits, notes,
           origin: TreeOrigin) -> dict:
    """A store's ``index.json``."""
    gt_bytes, lq_bytes = sizes
    return {
        "format": FORMAT,
        "version": VERSION,
        "kind": kind,
        "name": source.name,
        "scale": source.scale,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "made_from": origin.made_from,
        "fingerprint": origin.fingerprint,
        "fingerprint_of": [str(Path(f).resolve()) for f in origin.fingerprint_of],
        "notes": [{"split": n[0], "text": n[1]} if isinstance(n, tuple) else {"split": None, "text": n}
                  for n in notes],
        "splits": splits or {},
        "files": {"gt": {"name": "gt.u8", "bytes": gt_bytes}, "lq": {"name": "lq.u8", "bytes": lq_bytes}},
        "clips": entries,
    }


def _install(tmp: Path, path: Path) -> None:
    """The finished store ``tmp`` renamed to ``path``; an old store there renamed away first, then removed."""
    old = None
    if path.exists():
        old = path.with_name(f"{path.name}.old-{os.getpid()}")
        os.rename(path, old)
    os.rename(tmp, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# ---- reading --------------------------------------------------------------------------------------
def _read_index(path: Path) -> dict:
    index_path = path / "index.json"
    if not path.is_dir():
        raise DataError(f"no frame store at {path} (make one with `mgvsr prepare`)")
    if not index_path.is_file():
        raise DataError(f"{path} is not a complete frame store: {index_path} missing (run `mgvsr prepare` again)")
    try:
        index = json.loads(index_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read {index_path}: {exc}") from exc
    if index.get("format") != FORMAT or index.get("version") != VERSION:
        raise DataError(f"{index_path} is not a version-{VERSION} mgvsr frame store "
                        f"(format {index.get('format')!r}, version {index.get('version')!r}): run `mgvsr prepare --force`")
    for kind in ("gt", "lq"):
        f = index["files"][kind]
        file = path / f["name"]
        if not file.is_file() or file.stat().st_size != f["bytes"]:
            have = file.stat().st_size if file.is_file() else "no file"
            raise DataError(f"frame store file {file} should hold {f['bytes']} bytes, has {have}: "
                            "the store is damaged, run `mgvsr prepare --force`")
    return index


@dataclass(frozen=True)
class _Entry:
    frames: int
    gt: tuple[int, int, int]  # offset, H, W
    lq: tuple[int, int, int]  # offset, h, w


def open_store(path: str | Path, clips: Sequence[str] | None = None, name: str | None = None) -> StoreSource:
    """Open the store at ``path`` (see :class:`StoreSource`)."""
    return StoreSource(path, clips=clips, name=name)


class StoreSource(ClipSource):
    """The clips of a frame store written by :func:`write_store`.

    Frames are served from memory-mapped files: ``read_gt(clip, indices, box)`` copies only
    the box (in LQ pixels; the GT box is ``scale`` times it) of the asked frames.  The maps
    are opened lazily in each process, so a DataLoader's workers share the page cache and
    pickling the source copies no pixels.
    """

    def __init__(self, path: str | Path, clips: Sequence[str] | None = None, name: str | None = None) -> None:
        self.path = Path(path)
        self.index = _read_index(self.path)
        self.kind: str = self.index["kind"]
        self.scale = int(self.index["scale"])
        self.name = name or self.index["name"]
        self.notes: list[dict] = list(self.index.get("notes", []))  # {"split": None | "train" | "test", "text"}
        self._entries = {e["name"]: _Entry(e["frames"], tuple(e["gt"]), tuple(e["lq"])) for e in self.index["clips"]}
        if clips is not None:
            unknown = [c for c in clips if c not in self._entries]
            if unknown:
                raise DataError(f"the frame store at {self.path} has no clip {', '.join(map(str, unknown[:5]))}"
                                f"{' ...' if len(unknown) > 5 else ''} (it holds {len(self._entries)} clips; "
                                "run `mgvsr prepare` again if the tree changed)")
            if not clips:
                raise DataError("an empty list of clips was asked for")
        self._names = list(clips) if clips is not None else list(self._entries)
        self._maps: dict[str, np.ndarray] | None = None
        self._pid = -1

    # -- views of the same store ------------------------------------------------------------------
    def subset(self, clips: Sequence[str], name: str | None = None) -> StoreSource:
        """The same store serving only ``clips`` (in that order)."""
        return StoreSource(self.path, clips=clips, name=name or self.name)

    def split_clips(self, split: str) -> list[str]:
        """The clips of a named list kept in the store (Vimeo-90K's "train" / "test")."""
        splits = self.index.get("splits", {})
        if split not in splits:
            raise DataError(f"the frame store at {self.path} keeps no {split!r} list "
                            f"(it has {', '.join(splits) or 'none'})")
        return list(splits[split])

    def emit_notes(self, split: str | None = None) -> None:
        """Repeat the partial-tree warnings recorded when the store was made (those of ``split`` and general ones)."""

        for note in self.notes:
            if note["split"] in (None, split):
                warnings.warn(f"{note['text']} (frame store {self.path})", PartialDatasetWarning, stacklevel=3)

    # -- memory maps ------------------------------------------------------------------------------
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_maps"], state["_pid"] = None, -1  # reopened in the worker process
        return state

    def _map(self, kind: str) -> np.ndarray:
        if self._maps is None or self._pid != os.getpid():
            maps = {}
            for k in ("gt", "lq"):
                f = self.index["files"][k]
                if f["bytes"] == 0:
                    maps[k] = np.zeros(0, np.uint8)
                    continue
                with open(self.path / f["name"], "rb") as fh:
                    maps[k] = np.frombuffer(mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ), dtype=np.uint8)
            self._maps, self._pid = maps, os.getpid()
        return self._maps[kind]

    def frames_view(self, kind: str, clip: str) -> np.ndarray:
        """The read-only ``(t, h, w, 3)`` uint8 array of a clip's ``kind`` ("gt" or "lq") frames."""
        e = self._entry(clip)
        off, h, w = e.gt if kind == "gt" else e.lq
        return self._map(kind)[off : off + e.frames * h * w * 3].reshape(e.frames, h, w, 3)

    # -- ClipSource ---------------------------------------------------------------------------------
    def _entry(self, clip: str) -> _Entry:
        if clip not in self._entries or clip not in self._names:
            raise DataError(f"{self.name}: no clip {clip!r} in the frame store at {self.path}")
        return self._entries[clip]

    def clips(self) -> list[str]:
        return list(self._names)

    def num_frames(self, clip: str) -> int:
        return self._entry(clip).frames

    def lq_size(self, clip: str) -> tuple[int, int]:
        _, h, w = self._entry(clip).lq
        return h, w

    def _read(self, kind: str, clip: str, indices: Sequence[int], box: Box | None) -> np.ndarray:
        e = self._entry(clip)
        idx = [int(i) for i in indices]
        bad = [i for i in idx if not 0 <= i < e.frames]
        if bad:
            raise DataError(f"{self.name}: clip {clip!r} has frames 0..{e.frames - 1}; asked for {bad}")
        frames = self.frames_view(kind, clip)
        if box is not None:
            top, left, h, w = box
            _, lh, lw = e.lq
            if h <= 0 or w <= 0 or top < 0 or left < 0 or top + h > lh or left + w > lw:
                raise DataError(f"{self.name}: box (top={top}, left={left}, height={h}, width={w}) does not fit "
                                f"the {lw}x{lh} LQ frames of clip {clip!r}")
            s = self.scale if kind == "gt" else 1
            frames = frames[:, top * s : (top + h) * s, left * s : (left + w) * s]
        return frames[idx]  # a copy of just these frames (and rows, columns)

    def read_gt(self, clip: str, indices: Sequence[int], box: Box | None = None) -> np.ndarray:
        """GT frames ``(n, H, W, 3)`` uint8 RGB; ``box`` = (top, left, height, width) in LQ pixels."""
        return self._read("gt", clip, indices, box)

    def read_lq(self, clip: str, indices: Sequence[int], box: Box | None = None) -> np.ndarray:
        """LQ frames ``(n, h, w, 3)`` uint8 RGB; ``box`` = (top, left, height, width)."""
        return self._read("lq", clip, indices, box)


def store_fingerprint(path: str | Path) -> str | None:
    """The fingerprint a complete store at ``path`` was made with, or None (no store, or unreadable)."""
    try:
        return _read_index(Path(path)).get("fingerprint") or None
    except DataError:
        return None


def check_tree(path: str | Path) -> None:
    """Refuse the store at ``path`` (:class:`DataError` naming the store and the tree) when the files
    it was made from have changed since (added, removed, resized or modified frames).

    Nothing is checked for a store that does not record its folders or whose tree is gone (a store kept on its own, the tree deleted or not mounted).
    """
    index = _read_index(Path(path))
    folders = index.get("fingerprint_of") or []
    if not folders or not index.get("fingerprint") or not any(Path(f).exists() for f in folders):
        return
    if fingerprint(folders) != index["fingerprint"]:
        raise DataError(f"the frame store at {path} was made from {index.get('made_from') or ', '.join(folders)} "
                        f"on {index.get('created', '?')}, and files there have changed since (frames added, removed "
                        "or modified): run `mgvsr prepare` on that root again, or train with --no-store")
