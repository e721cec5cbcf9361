"""The frame store: same pixels as the PNG files (whole frames and box crops), atomic writes, damage detected."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from mgvsr.data.datasets import PartialDatasetWarning, open_dataset
from mgvsr.data.reds import RedsSource
from mgvsr.data.source import ClipSource
from mgvsr.data.store import StoreProblems, StoreSource, default_store_path, open_store, write_store
from mgvsr.data.vimeo import VimeoSource
from mgvsr.data.windows import TrainingWindows
from mgvsr.errors import DataError
from test_reds import make_reds_tree


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PartialDatasetWarning)
        return fn(*args, **kwargs)


@pytest.fixture()
def reds(tmp_path: Path) -> tuple[Path, RedsSource]:
    root = tmp_path / "REDS"
    make_reds_tree(root, clips=("000", "001", "011", "007"), frames=5, val=("003",))
    return root, _quiet(RedsSource, root)


def _assert_same_source(a: ClipSource, b: ClipSource) -> None:
    assert a.clips() == b.clips()
    rng = np.random.default_rng(0)
    for clip in a.clips():
        n = a.num_frames(clip)
        assert b.num_frames(clip) == n and a.lq_size(clip) == b.lq_size(clip)
        lq_a, gt_a = a.read_clip(clip)
        lq_b, gt_b = b.read_clip(clip)
        np.testing.assert_array_equal(lq_a, lq_b)
        np.testing.assert_array_equal(gt_a, gt_b)
        h, w = a.lq_size(clip)
        for _ in range(3):  # box crops and frame orders as training windows ask for them
            top, left = int(rng.integers(h - 3)), int(rng.integers(w - 3))
            box = (top, left, int(rng.integers(1, h - top + 1)), int(rng.integers(1, w - left + 1)))
            idx = list(rng.permutation(n)[: max(1, n - 2)])
            np.testing.assert_array_equal(a.read_lq(clip, idx, box), b.read_lq(clip, idx, box))
            np.testing.assert_array_equal(a.read_gt(clip, idx, box), b.read_gt(clip, idx, box))


def test_round_trip_reds(reds, tmp_path):
    root, source = reds
    path = write_store(source, tmp_path / "store", "reds", progress=False)
    assert sorted(p.name for p in path.iterdir()) == ["gt.u8", "index.json", "lq.u8"]
    store = open_store(path)
    assert store.kind == "reds" and store.clips() == ["000", "001", "007", "011", "243"]
    _assert_same_source(source, store)
    gt = store.read_gt("243", [4, 0], box=(2, 3, 4, 5))
    assert gt.shape == (2, 16, 20, 3) and gt.flags.writeable  # a copy, not a view of the map
    with pytest.raises(DataError, match=r"box \(top=6, left=0, height=4, width=4\) does not fit the 16x9"):
        store.read_lq("000", [0], box=(6, 0, 4, 4))
    with pytest.raises(DataError, match=r"clip '000' has frames 0..4; asked for \[5\]"):
        store.read_gt("000", [5])


def test_round_trip_vimeo_with_generated_lr(vimeo_root, tmp_path):
    source = VimeoSource(vimeo_root, sequences=["00002/0003", "00001/0007", "00002/0008"])
    store = open_store(write_store(source, tmp_path / "store", "vimeo90k", progress=False,
                                   splits={"test": source.clips()}))
    _assert_same_source(source, store)
    assert store.split_clips("test") == source.clips()


def test_pickling_carries_no_pixels_and_reopens(reds, tmp_path):
    _, source = reds
    store = open_store(write_store(source, tmp_path / "store", "reds", progress=False))
    store.read_gt("000", [0])  # maps opened
    blob = pickle.dumps(store)
    assert len(blob) < 20_000  # index only: the GT alone is 5 clips x 5 frames x 36 x 64 x 3 bytes
    again = pickle.loads(blob)
    np.testing.assert_array_equal(again.read_gt("011", [2]), source.read_gt("011", [2]))


def test_training_windows_from_the_store_equal_those_from_png(reds, tmp_path):
    root, _ = reds
    write_store(_quiet(RedsSource, root), default_store_path(root, "reds"), "reds", progress=False)
    from_store = _quiet(open_dataset, "reds", root, split="train")
    from_png = _quiet(open_dataset, "reds", root, split="train", store=False)
    assert isinstance(from_store, StoreSource) and isinstance(from_png, RedsSource)
    assert from_store.clips() == from_png.clips() == ["001", "007", "243"] and from_store.name == "reds"
    a = TrainingWindows(from_store, frames=3, patch=8, length=6, seed=3)
    b = TrainingWindows(from_png, frames=3, patch=8, length=6, seed=3)
    for i in range(6):
        for x, y in zip(a[i], b[i]):
            assert torch.equal(x, y)
    test = _quiet(open_dataset, "reds", root, split="test")
    assert isinstance(test, StoreSource) and test.name == "reds4" and test.clips() == ["000", "011"]


def test_partial_tree_notes_are_repeated_when_the_store_is_opened(reds, tmp_path):
    root, source = reds
    write_store(source, default_store_path(root, "reds"), "reds", notes=[source.partial_note()], progress=False)
    with pytest.warns(PartialDatasetWarning, match=r"5 of REDS's 270 clips.*frame store"):
        open_dataset("reds", root, split="train")


class _FailingSource(ClipSource):
    """Wraps a source; reading clip ``fail`` raises ``error`` (to interrupt or break a write)."""

    def __init__(self, source: ClipSource, fail: str, error: BaseException) -> None:
        self.source, self.fail, self.error = source, fail, error
        self.name, self.scale = source.name, source.scale

    def clips(self):
        return self.source.clips()

    def num_frames(self, clip):
        return self.source.num_frames(clip)

    def lq_size(self, clip):
        return self.source.lq_size(clip)

    def read_gt(self, clip, indices, box=None):
        if clip == self.fail:
            raise self.error
        return self.source.read_gt(clip, indices, box)

    def read_lq(self, clip, indices, box=None):
        return self.source.read_lq(clip, indices, box)


def test_an_interrupted_write_leaves_nothing_and_keeps_the_old_store(reds, tmp_path):
    _, source = reds
    path = tmp_path / "store"
    with pytest.raises(KeyboardInterrupt):
        write_store(_FailingSource(source, "007", KeyboardInterrupt()), path, "reds", workers=1, progress=False)
    assert list(tmp_path.glob("store*")) == []  # no store, no temporary folder
    write_store(source, path, "reds", progress=False)
    before = (path / "index.json").read_text()
    with pytest.raises(KeyboardInterrupt):
        write_store(_FailingSource(source, "011", KeyboardInterrupt()), path, "reds", workers=2, progress=False)
    assert [p.name for p in tmp_path.glob("store*")] == ["store"] and (path / "index.json").read_text() == before
    _assert_same_source(source, open_store(path))


def test_every_unreadable_clip_is_reported_and_nothing_written(reds, tmp_path):
    root, _ = reds
    bad1 = root / "train_sharp/001/00000003.png"
    bad2 = root / "val_sharp/003/00000000.png"
    bad1.write_bytes(b"not a png at all")
    bad2.write_bytes(bad2.read_bytes()[:100])  # truncated
    with pytest.raises(StoreProblems) as info:
        write_store(_quiet(RedsSource, root), tmp_path / "store", "reds", progress=False)
    assert len(info.value.problems) == 2
    text = str(info.value)
    assert str(bad1) in text and str(bad2) in text and "nothing written" in text
    assert not (tmp_path / "store").exists()


def test_damaged_or_incomplete_stores_are_refused(reds, tmp_path):
    _, source = reds
    path = write_store(source, tmp_path / "store", "reds", progress=False)
    with open(path / "gt.u8", "r+b") as f:
        f.truncate(1000)
    with pytest.raises(DataError, match=r"gt.u8 should hold \d+ bytes, has 1000: the store is damaged"):
        open_store(path)
    (path / "index.json").unlink()
    with pytest.raises(DataError, match="not a complete frame store: .*index.json missing"):
        open_store(path)
    with pytest.raises(DataError, match="no frame store at"):
        open_dataset("reds", tmp_path, split="train", store=tmp_path / "elsewhere")


def test_a_store_of_another_dataset_is_refused(reds, vimeo_root, tmp_path):
    root, _ = reds
    source = _quiet(VimeoSource, vimeo_root, split="test")
    write_store(source, tmp_path / "vimeo-store", "vimeo90k", progress=False, splits={"test": source.clips()})
    with pytest.raises(DataError, match="holds a 'vimeo90k' dataset, not 'reds'"):
        open_dataset("reds", root, split="train", store=tmp_path / "vimeo-store")


def test_store_subsets_follow_the_asked_clips(reds, tmp_path):
    _, source = reds
    store = open_store(write_store(source, tmp_path / "store", "reds", progress=False))
    sub = store.subset(["011", "000"], name="x")
    assert sub.clips() == ["011", "000"] and sub.name == "x"
    with pytest.raises(DataError, match="has no clip 099"):
        store.subset(["099"])
    with pytest.raises(DataError, match="no clip '001'"):
        sub.read_gt("001", [0])
