"""REDS layouts on a miniature tree written in REDS's real naming: partitions, val clips, every bad input."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from mgvsr.data.datasets import PartialDatasetWarning, open_dataset
from mgvsr.data.io import read_frame, write_frame
from mgvsr.data.reds import ALL_CLIPS, PARTITIONS, RedsSource, find_reds, reds_split
from mgvsr.data.resize import bicubic_downscale
from mgvsr.errors import DataError

GT_SIZE = (36, 64)  # (h, w): REDS's 720x1280 shrunk 20x; LQ 9x16


def smooth_frames(n: int, h: int, w: int, seed: int) -> np.ndarray:
    """``(n, h, w, 3)`` uint8 frames with structure: blocky noise panning 2 px per frame."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0, 255, size=(h // 4 + 2, (w + 2 * n) // 4 + 2, 3))
    big = np.kron(base, np.ones((4, 4, 1)))
    return np.stack([big[:h, 2 * i : 2 * i + w] for i in range(n)]).round().astype(np.uint8)


def make_reds_tree(root: Path, clips=("000", "001", "011", "002"), frames: int = 4, val=(), x4: bool = True,
                   lq: bool = True, size=GT_SIZE) -> dict[str, np.ndarray]:
    """Write a small REDS tree (GT and bicubic x4 LQ PNGs); returns ``{served clip name: GT frames}``.

    ``val``: validation clip folders ("000", ...) written under val_sharp (served as 240 + n).
    """
    written = {}
    for kind, names, offset in (("train_sharp", clips, 0), ("val_sharp", val, 240)):
        for k, clip in enumerate(names):
            gt = smooth_frames(frames, *size, seed=int(clip) + offset)
            small = bicubic_downscale(gt)
            lq_dir = root / f"{kind}_bicubic" / ("X4" if x4 else "") / clip
            for i in range(frames):
                write_frame(root / kind / clip / f"{i:08d}.png", gt[i])
                if lq:
                    write_frame(lq_dir / f"{i:08d}.png", small[i])
            written[f"{int(clip) + offset:03d}"] = gt
    return written


@pytest.fixture()
def reds_root(tmp_path: Path) -> Path:
    root = tmp_path / "REDS"
    make_reds_tree(root)
    return root


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PartialDatasetWarning)
        return fn(*args, **kwargs)


# -- the meta lists ---------------------------------------------------------------------------------
def test_meta_lists_hold_the_papers_partitions():
    assert len(ALL_CLIPS) == 270 and ALL_CLIPS[0] == "000" and ALL_CLIPS[-1] == "269"
    assert PARTITIONS["reds4"] == ("000", "011", "015", "020")
    assert PARTITIONS["official"] == tuple(f"{i:03d}" for i in range(240, 270))
    assert len(reds_split(ALL_CLIPS, "train", "reds4")) == 266  # docs/paper-reading.md: 270 less REDS4
    assert len(reds_split(ALL_CLIPS, "train", "official")) == 240
    assert reds_split(ALL_CLIPS, "test", "reds4") == ["000", "011", "015", "020"]


# -- reading -----------------------------------------------------------------------------------------
def test_reds_tree_reads_the_files_and_warns_that_it_is_partial(tmp_path):
    written = make_reds_tree(tmp_path / "REDS")
    with pytest.warns(PartialDatasetWarning, match=r"4 of REDS's 270 clips.*clips of 4 frames \(REDS has 100\).*64x36"):
        source = RedsSource(tmp_path / "REDS")
    assert source.clips() == ["000", "001", "002", "011"]
    assert source.num_frames("011") == 4 and source.lq_size("011") == (9, 16)
    np.testing.assert_array_equal(source.read_gt("011", [3, 0]), written["011"][[3, 0]])
    np.testing.assert_array_equal(source.read_lq("011", [1]), bicubic_downscale(written["011"][[1]]))
    lq, gt = source.read_clip("002")
    np.testing.assert_array_equal(gt, written["002"])
    np.testing.assert_array_equal(lq, [read_frame(tmp_path / f"REDS/train_sharp_bicubic/X4/002/{i:08d}.png") for i in range(4)])


def test_lq_folders_without_the_x4_level(tmp_path):
    written = make_reds_tree(tmp_path / "REDS", clips=("000", "003"), x4=False)
    assert find_reds(tmp_path / "REDS")[0].lq == tmp_path / "REDS" / "train_sharp_bicubic"
    source = _quiet(RedsSource, tmp_path / "REDS")
    np.testing.assert_array_equal(source.read_lq("003", [2]), bicubic_downscale(written["003"][[2]]))


def test_validation_clips_kept_apart_are_served_as_240_and_up(tmp_path):
    written = make_reds_tree(tmp_path / "REDS", clips=("000", "011"), val=("000", "029"))
    source = _quiet(RedsSource, tmp_path / "REDS")
    assert source.clips() == ["000", "011", "240", "269"]
    np.testing.assert_array_equal(source.read_gt("269", range(4)), written["269"])
    assert source.gt_folder("240") == tmp_path / "REDS" / "val_sharp" / "000"
    # the official partition tests on the validation clips, trains on the rest
    with pytest.warns(PartialDatasetWarning, match=r"official test clip\(s\) 241, 242"):
        assert reds_split(source.clips(), "test", "official") == ["240", "269"]
    assert reds_split(source.clips(), "train", "official") == ["000", "011"]


def test_open_dataset_partitions_reds4(reds_root):
    with pytest.warns(PartialDatasetWarning):
        train = open_dataset("reds", reds_root, split="train", store=False)
    assert train.name == "reds" and train.clips() == ["001", "002"]  # 000 and 011 are REDS4 clips
    with pytest.warns(PartialDatasetWarning) as record:
        test = open_dataset("reds", reds_root, split="test", store=False)
    assert any("reds4 test clip(s) 015, 020 missing" in str(w.message) for w in record)
    assert test.name == "reds4" and test.clips() == ["000", "011"]
    assert _quiet(open_dataset, "reds4", reds_root, split="test").clips() == ["000", "011"]
    with pytest.raises(DataError, match="'reds4' is a test set; train on 'reds'"):
        open_dataset("reds4", reds_root, split="train")


def test_generated_lq_when_the_tree_has_no_bicubic_folder(tmp_path):
    written = make_reds_tree(tmp_path / "REDS", clips=("001",), lq=False)
    with pytest.warns(PartialDatasetWarning, match="no train_sharp_bicubic folder"):
        source = RedsSource(tmp_path / "REDS")
    assert source.generates_lq
    np.testing.assert_array_equal(source.read_lq("001", [0, 1]), bicubic_downscale(written["001"][:2]))


def test_basicsr_reds4_test_folder(tmp_path):
    """BasicSR's datasets/REDS4: GT/<clip> and sharp_bicubic/<clip>."""
    written = make_reds_tree(tmp_path / "tree", clips=("000", "015"))
    shutil.copytree(tmp_path / "tree/train_sharp", tmp_path / "REDS4/GT")
    shutil.copytree(tmp_path / "tree/train_sharp_bicubic/X4", tmp_path / "REDS4/sharp_bicubic")
    test = _quiet(open_dataset, "reds4", tmp_path / "REDS4", split="test")
    assert test.clips() == ["000", "015"]
    np.testing.assert_array_equal(test.read_gt("015", [1]), written["015"][[1]])


# -- bad input ----------------------------------------------------------------------------------------
def test_not_a_reds_tree(tmp_path):
    (tmp_path / "x" / "GT").mkdir(parents=True)
    with pytest.raises(DataError, match=r"not a REDS tree: expected .*train_sharp/<clip>/00000000.png"):
        RedsSource(tmp_path / "x")


def test_lq_clip_missing_for_a_gt_clip(reds_root):
    shutil.rmtree(reds_root / "train_sharp_bicubic/X4/011")
    with pytest.raises(DataError, match=r"LQ clip folder missing for GT clip\(s\) 011: expected .*X4/011"):
        RedsSource(reds_root)


def test_lq_clip_without_gt(reds_root):
    shutil.copytree(reds_root / "train_sharp_bicubic/X4/011", reds_root / "train_sharp_bicubic/X4/012")
    with pytest.raises(DataError, match=r"LQ clip\(s\) 012 in .* have no GT clip: expected .*train_sharp/012"):
        RedsSource(reds_root)


def test_folder_that_is_not_a_reds_clip(reds_root):
    (reds_root / "train_sharp" / "my_clip").mkdir()
    with pytest.raises(DataError, match="'my_clip' is not REDS clip folder name"):
        RedsSource(reds_root)


def test_validation_clip_both_merged_and_apart(tmp_path):
    make_reds_tree(tmp_path / "REDS", clips=("000", "240"), val=("000",))
    with pytest.raises(DataError, match="REDS clip 240 appears twice"):
        RedsSource(tmp_path / "REDS")


def test_val_folder_without_its_bicubic_folder(tmp_path):
    make_reds_tree(tmp_path / "REDS", clips=("000",), val=("001",))
    shutil.rmtree(tmp_path / "REDS" / "val_sharp_bicubic")
    with pytest.raises(DataError, match=r"val_sharp has no bicubic LQ folder"):
        RedsSource(tmp_path / "REDS")


def test_wrong_size_frame_and_corrupt_png_name_the_file(reds_root):
    bad = reds_root / "train_sharp_bicubic/X4/001/00000002.png"
    write_frame(bad, np.zeros((9, 17, 3), np.uint8))
    source = _quiet(RedsSource, reds_root)
    with pytest.raises(DataError, match=r"00000002.png is 17x9"):
        source.num_frames("001")  # listing the clip checks every frame's size (PNG headers)
    corrupt = reds_root / "train_sharp/002/00000001.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    with pytest.raises(DataError, match=str(corrupt)):
        source.read_gt("002", [1])


def test_frame_counts_that_differ_between_gt_and_lq(reds_root):
    (reds_root / "train_sharp_bicubic/X4/000/00000003.png").unlink()
    source = _quiet(RedsSource, reds_root)
    with pytest.raises(DataError, match=r"clip '000' has 4 GT frames .* but 3 LQ frames"):
        source.num_frames("000")
