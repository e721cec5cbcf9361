"""Vimeo-90K on the real septuplets in ../shared/data: layout, lists, LR, flip-concatenation to 14 frames."""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from mgvsr.data.datasets import PartialDatasetWarning, open_dataset
from mgvsr.data.io import read_frame, write_frame
from mgvsr.data.resize import bicubic_downscale
from mgvsr.data.vimeo import MirroredSource, VimeoSource, find_vimeo, read_sequence_list
from mgvsr.data.windows import TrainingWindows
from mgvsr.errors import DataError


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PartialDatasetWarning)
        return fn(*args, **kwargs)


def _linked_tree(vimeo_root: Path, dest: Path, sequences=("00001/0001", "00001/0002", "00002/0001")) -> Path:
    """A Vimeo-90K tree in ``dest`` whose sequence folders are symlinks to the real ones (no copies)."""
    for seq in sequences:
        (dest / "sequences" / seq).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(vimeo_root / "sequences" / seq, dest / "sequences" / seq)
    (dest / "sep_trainlist.txt").write_text("".join(f"{s}\n" for s in sequences if s.startswith("00001")))
    (dest / "sep_testlist.txt").write_text("".join(f"{s}\n" for s in sequences if s.startswith("00002")))
    return dest


def test_layout_and_lists_of_the_real_sample(vimeo_root):
    layout = find_vimeo(vimeo_root)
    assert layout.gt == vimeo_root / "sequences" and layout.lq is None
    assert read_sequence_list(layout.list_path("train")) == [f"00001/{i:04d}" for i in range(1, 9)]
    assert read_sequence_list(layout.list_path("test")) == [f"00002/{i:04d}" for i in range(1, 9)]


def test_septuplets_are_read_in_frame_order_with_matlab_bicubic_lr(vimeo_root):
    with pytest.warns(PartialDatasetWarning, match="lists 8 of the 7,824 test septuplets"):
        source = VimeoSource(vimeo_root, split="test")
    assert source.name == "vimeo90k" and len(source.clips()) == 8
    clip = "00002/0005"
    assert source.num_frames(clip) == 7 and source.lq_size(clip) == (64, 112)
    gt = source.read_gt(clip, range(7))
    expected = np.stack([read_frame(vimeo_root / "sequences" / clip / f"im{i}.png") for i in range(1, 8)])
    np.testing.assert_array_equal(gt, expected)
    assert gt.shape == (7, 256, 448, 3)
    np.testing.assert_array_equal(source.read_lq(clip, [3]), bicubic_downscale(expected[[3]]))


def test_flip_concatenation_gives_im1_to_im7_then_im7_to_im1(vimeo_root):
    source = _quiet(VimeoSource, vimeo_root, split="train")
    mirrored = MirroredSource(source)
    clip = "00001/0003"
    assert mirrored.num_frames(clip) == 14 and mirrored.lq_size(clip) == (64, 112)
    original = source.read_lq(clip, range(7))
    np.testing.assert_array_equal(mirrored.read_lq(clip, range(14)), np.concatenate([original, original[::-1]]))
    box = (5, 7, 16, 24)
    np.testing.assert_array_equal(mirrored.read_gt(clip, [6, 7, 13], box),
                                  source.read_gt(clip, [6, 6, 0], box))  # frame 7 of 14 is im7 again; 13 is im1
    with pytest.raises(DataError, match="frames 0..13"):
        mirrored.read_lq(clip, [14])


def test_training_split_serves_14_frame_windows(vimeo_root):
    train = _quiet(open_dataset, "vimeo90k", vimeo_root, split="train", store=False)
    assert isinstance(train, MirroredSource) and train.num_frames("00001/0001") == 14
    windows = TrainingWindows(train, frames=14, patch=16, length=3, seed=1)  # the paper's largest T on Vimeo
    lq, gt = windows[0]
    assert lq.shape == (14, 3, 16, 16) and gt.shape == (14, 3, 64, 64)
    spec = windows.spec(0)
    if not (spec.hflip or spec.vflip or spec.transpose or spec.reverse):
        assert (lq[:7] == lq[7:].flip(0)).all()  # a whole mirrored septuplet
    # temporal sizes up to 7 come from the septuplets themselves, larger ones from the 14 frames
    assert train.windows_source(6) is train.source and train.windows_source(7) is train.source
    assert train.windows_source(10) is train and train.source.windows_source(6) is train.source
    test = _quiet(open_dataset, "vimeo90k", vimeo_root, split="test", store=False)
    assert test.num_frames("00002/0001") == 7 and test.name == "vimeo90k"


def test_basicsr_meta_info_lists_and_mmagic_gt_folder(vimeo_root, tmp_path):
    root = tmp_path / "vimeo90k"
    (root / "GT" / "00002").mkdir(parents=True)
    os.symlink(vimeo_root / "sequences/00002/0004", root / "GT/00002/0004")
    (root / "meta_info_Vimeo90K_test_GT.txt").write_text("00002/0004 7 (256,448,3)\n")
    source = _quiet(VimeoSource, root, split="test")
    assert source.clips() == ["00002/0004"] and source.layout.gt == root / "GT"


def test_lr_folder_beside_the_tree_is_found_and_paired(vimeo_root, tmp_path):
    """BasicSR's test config: vimeo90k/BIx4 beside vimeo90k/vimeo_septuplet."""
    root = _linked_tree(vimeo_root, tmp_path / "vimeo90k" / "vimeo_septuplet")
    gt = read_frame(vimeo_root / "sequences/00002/0001/im1.png")
    lr = np.zeros((7, 64, 112, 3), np.uint8) + np.arange(7, dtype=np.uint8)[:, None, None, None]
    for i in range(7):
        write_frame(tmp_path / "vimeo90k/BIx4/00002/0001" / f"im{i + 1}.png", lr[i])
    source = _quiet(VimeoSource, root, split="test")
    assert source.layout.lq == tmp_path / "vimeo90k" / "BIx4"
    np.testing.assert_array_equal(source.read_lq("00002/0001", range(7)), lr)  # read, not made
    assert source.read_gt("00002/0001", [0]).shape == gt[None].shape


# -- bad input ------------------------------------------------------------------------------------------
def test_list_naming_a_missing_sequence(vimeo_root, tmp_path):
    root = _linked_tree(vimeo_root, tmp_path / "v")
    with open(root / "sep_testlist.txt", "a") as f:
        f.write("00002/0077\n")
    with pytest.raises(DataError, match=r"1 sequence\(s\) listed in .*sep_testlist.txt missing: 00002/0077 "
                                        r"\(expected .*sequences/00002/0077/im1.png"):
        _quiet(VimeoSource, root, split="test")


def test_malformed_list_line(vimeo_root, tmp_path):
    root = _linked_tree(vimeo_root, tmp_path / "v")
    (root / "sep_testlist.txt").write_text("00002/0001\nim4.png\n")
    with pytest.raises(DataError, match=r"sep_testlist.txt, line 2: 'im4.png' is not a sequence name"):
        VimeoSource(root, split="test")


def test_lr_missing_for_a_sequence(vimeo_root, tmp_path):
    root = _linked_tree(vimeo_root, tmp_path / "v")
    (root / "BIx4" / "00001" / "0001").mkdir(parents=True)
    with pytest.raises(DataError, match=r"LR frames missing for 1 sequence\(s\): 00001/0002 \(expected .*BIx4/00001/0002"):
        _quiet(VimeoSource, root, split="train")


def test_a_sequence_that_is_not_a_septuplet(vimeo_root, tmp_path):
    root = tmp_path / "v"
    shutil.copytree(vimeo_root / "sequences/00002/0001", root / "sequences/00002/0001")
    (root / "sequences/00002/0001/im7.png").unlink()
    (root / "sep_testlist.txt").write_text("00002/0001\n")
    source = _quiet(VimeoSource, root, split="test")
    with pytest.raises(DataError, match=r"holds im1.png, .* im6.png: expected a septuplet"):
        source.num_frames("00002/0001")


def test_not_a_vimeo_tree(tmp_path):
    with pytest.raises(DataError, match=r"not a Vimeo-90K tree: expected .*sequences/00001/0001/im1.png"):
        VimeoSource(tmp_path)
