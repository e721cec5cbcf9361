"""Training windows: shapes, alignment of LQ and GT crops, determinism, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mgvsr.data.folders import FolderSource
from mgvsr.data.io import write_frame
from mgvsr.data.resize import bicubic_downscale
from mgvsr.data.windows import TrainingWindows, to_float
from mgvsr.errors import DataError


def _write_clip(root, name, frames):
    folder = root / name
    folder.mkdir(parents=True)
    for i, f in enumerate(frames):
        write_frame(folder / f"{i:08d}.png", f)


@pytest.fixture
def tiny_source(tmp_path):
    """Two real PNG clips; every GT pixel encodes (frame, row, column) so crops can be checked."""
    for name, n in (("a", 9), ("b", 12)):
        t, h, w = n, 48, 64
        gt = np.zeros((t, h, w, 3), np.uint8)
        gt[..., 0] = np.arange(t)[:, None, None] * 20
        gt[..., 1] = np.arange(h)[None, :, None] * 5
        gt[..., 2] = np.arange(w)[None, None, :] * 3
        gt = np.ascontiguousarray(gt)
        _write_clip(tmp_path / "GT", name, gt)
        _write_clip(tmp_path / "LQ", name, bicubic_downscale(gt, 4))
    return FolderSource(tmp_path / "GT", tmp_path / "LQ", cache=True)


def test_window_shapes_and_range(tiny_source):
    ds = TrainingWindows(tiny_source, frames=5, patch=8, length=6, seed=1)
    lq, gt = ds[3]
    assert lq.shape == (5, 3, 8, 8) and gt.shape == (5, 3, 32, 32)
    assert lq.dtype == gt.dtype == torch.uint8
    f = to_float(lq)
    assert f.dtype == torch.float32 and 0.0 <= float(f.min()) and float(f.max()) <= 1.0
    torch.testing.assert_close(f * 255, lq.float())


def _unaugment(window, s):
    x = window.numpy().transpose(0, 2, 3, 1)
    if s.transpose:
        x = x.transpose(0, 2, 1, 3)
    if s.vflip:
        x = x[:, ::-1]
    if s.hflip:
        x = x[:, :, ::-1]
    return x


def test_gt_crop_is_the_lq_crop_times_four_with_the_same_augmentation(tiny_source):
    ds = TrainingWindows(tiny_source, frames=4, patch=6, length=40, seed=3, reverse=True)
    seen_aug = set()
    for i in range(40):
        s = ds.spec(i)
        lq, gt = ds[i]
        idx = list(range(s.start, s.start + 4))
        if s.reverse:
            idx.reverse()
        box = (s.top, s.left, 6, 6)
        # undo the augmentation on both windows and compare with the source crops
        np.testing.assert_array_equal(_unaugment(gt, s), tiny_source.read_gt(s.clip, idx, box))
        np.testing.assert_array_equal(_unaugment(lq, s), tiny_source.read_lq(s.clip, idx, box))
        seen_aug.add((s.hflip, s.vflip, s.transpose, s.reverse))
    assert len(seen_aug) > 4  # augmentations actually vary


def test_lq_window_matches_downscaled_gt_window_pixels(tiny_source):
    # the LQ crop at (top, left) is the LQ frame's pixels there, after the same flips
    ds = TrainingWindows(tiny_source, frames=3, patch=5, length=10, seed=7, augment=False)
    for i in range(10):
        s = ds.spec(i)
        lq, _ = ds[i]
        expect = tiny_source.read_lq(s.clip, range(s.start, s.start + 3), (s.top, s.left, 5, 5))
        np.testing.assert_array_equal(lq.numpy().transpose(0, 2, 3, 1), expect)


def test_windows_are_a_pure_function_of_seed_and_index(tiny_source):
    a = TrainingWindows(tiny_source, frames=4, patch=8, length=10, seed=5)
    b = TrainingWindows(tiny_source, frames=4, patch=8, length=4, seed=5, offset=6)
    for i in range(4):
        assert a.spec(6 + i) == b.spec(6 + i)
        torch.testing.assert_close(a[6 + i], b[i], rtol=0, atol=0)
    c = TrainingWindows(tiny_source, frames=4, patch=8, length=10, seed=6)
    assert [a.spec(i) for i in range(10)] != [c.spec(i) for i in range(10)]


def test_clip_shorter_than_the_window_is_refused_by_name(tiny_source):
    with pytest.raises(DataError, match=r"clip 'a' has 9 frames, fewer than the 10"):
        TrainingWindows(tiny_source, frames=10, patch=8, length=1)


def test_patch_larger_than_the_frames_is_refused_by_name(tiny_source):
    with pytest.raises(DataError, match=r"LQ frames of 16x12, smaller than the 13x13"):
        TrainingWindows(tiny_source, frames=2, patch=13, length=1)
