"""Frame files and folders of clips, on real PNG files: ordering, every bad input, FolderSource."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from mgvsr.data.folders import FolderSource
from mgvsr.data.io import frame_size, list_frames, natural_key, read_frame, write_frame
from mgvsr.data.resize import bicubic_downscale
from mgvsr.errors import DataError


def _frame(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def _write_clip(folder: Path, n: int, h: int, w: int, pattern: str = "{:08d}.png", start: int = 0, seed: int = 0):
    frames = [_frame(h, w, seed + i) for i in range(n)]
    for i, f in enumerate(frames):
        write_frame(folder / pattern.format(start + i), f)
    return np.stack(frames)


# -- io ------------------------------------------------------------------------------------
def test_write_read_round_trip_keeps_rgb_order(tmp_path):
    f = np.zeros((4, 5, 3), np.uint8)
    f[..., 0] = 255  # pure red
    write_frame(tmp_path / "red.png", f)
    assert cv2.imread(str(tmp_path / "red.png"))[0, 0].tolist() == [0, 0, 255]  # BGR on disk
    np.testing.assert_array_equal(read_frame(tmp_path / "red.png"), f)
    assert frame_size(tmp_path / "red.png") == (4, 5)


def test_grayscale_becomes_three_channels_and_alpha_is_dropped(tmp_path):
    gray = np.arange(20, dtype=np.uint8).reshape(4, 5)
    cv2.imwrite(str(tmp_path / "gray.png"), gray)
    out = read_frame(tmp_path / "gray.png")
    assert out.shape == (4, 5, 3) and all((out[..., c] == gray).all() for c in range(3))

    bgra = np.dstack([_frame(4, 5), np.full((4, 5), 7, np.uint8)])
    cv2.imwrite(str(tmp_path / "rgba.png"), bgra)
    np.testing.assert_array_equal(read_frame(tmp_path / "rgba.png"), bgra[..., 2::-1])


def test_sixteen_bit_frames_are_refused(tmp_path):
    cv2.imwrite(str(tmp_path / "deep.png"), np.full((4, 4, 3), 40000, np.uint16))
    with pytest.raises(DataError, match=r"deep\.png.*uint16.*8-bit"):
        read_frame(tmp_path / "deep.png")


def test_corrupt_truncated_empty_and_missing_files(tmp_path):
    (tmp_path / "garbage.png").write_bytes(b"this is not an image at all" * 20)
    with pytest.raises(DataError, match=r"garbage\.png"):
        read_frame(tmp_path / "garbage.png")

    write_frame(tmp_path / "whole.png", _frame(32, 32))
    data = (tmp_path / "whole.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"truncated PNG: .*cut\.png"):
        read_frame(tmp_path / "cut.png")

    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(DataError, match=r"empty file: .*empty\.png"):
        read_frame(tmp_path / "empty.png")

    with pytest.raises(DataError, match=r"not found: .*absent\.png"):
        read_frame(tmp_path / "absent.png")


def test_natural_order_of_the_naming_conventions(tmp_path):
    names = ["Frame 10.png", "Frame 9.png", "Frame 100.png", "Frame 1.png"]
    assert sorted(names, key=natural_key) == ["Frame 1.png", "Frame 9.png", "Frame 10.png", "Frame 100.png"]

    cases = {
        "vid4_2digits": [f"Frame {i:02d}.png" for i in range(1, 12)],
        "vid4_3digits": [f"Frame {i:03d}.png" for i in range(1, 12)],
        "reds": [f"{i:08d}.png" for i in range(0, 12)],
        "vimeo": [f"im{i}.png" for i in range(1, 12)],  # im10, im11 after im9
    }
    for folder, expected in cases.items():
        for name in reversed(expected):
            write_frame(tmp_path / folder / name, _frame(2, 2))
        (tmp_path / folder / "notes.txt").write_text("not a frame")
        assert [p.name for p in list_frames(tmp_path / folder)] == expected


def test_a_gap_in_the_numbering_is_a_missing_frame(tmp_path):
    for i in (1, 2, 4, 5):
        write_frame(tmp_path / "clip" / f"Frame {i:03d}.png", _frame(2, 2))
    with pytest.raises(DataError, match=r"clip: frame number 3 missing between 'Frame 002.png' and 'Frame 004.png'"):
        list_frames(tmp_path / "clip")


def test_duplicate_numbers_and_unnumbered_frames(tmp_path):
    write_frame(tmp_path / "dup" / "Frame 01.png", _frame(2, 2))
    write_frame(tmp_path / "dup" / "Frame 001.png", _frame(2, 2))
    with pytest.raises(DataError, match="both carry number 1"):
        list_frames(tmp_path / "dup")
    write_frame(tmp_path / "unnumbered" / "cover.png", _frame(2, 2))
    with pytest.raises(DataError, match=r"cover\.png.*must contain its number"):
        list_frames(tmp_path / "unnumbered")


def test_a_folder_without_frames(tmp_path):
    (tmp_path / "clip").mkdir()
    (tmp_path / "clip" / "readme.txt").write_text("x")
    with pytest.raises(DataError, match="holds no image frames"):
        list_frames(tmp_path / "clip")


# -- FolderSource ----------------------------------------------------------------------------
def test_generated_lq_crops_gt_to_a_multiple_of_the_scale(tmp_path):
    gt = _write_clip(tmp_path / "gt" / "a", n=3, h=30, w=21)
    src = FolderSource(tmp_path / "gt")
    assert src.clips() == ["a"] and src.num_frames("a") == 3
    assert src.lq_size("a") == (7, 5)
    lq, hr = src.read_clip("a")
    np.testing.assert_array_equal(hr, gt[:, :28, :20])
    np.testing.assert_array_equal(lq, bicubic_downscale(gt[:, :28, :20], 4))
    # a box: LQ pixels, GT box 4x; the LQ of a box is cut from the whole frame's LQ
    box = (2, 1, 4, 3)
    np.testing.assert_array_equal(src.read_lq("a", [2, 0], box), lq[[2, 0], 2:6, 1:4])
    np.testing.assert_array_equal(src.read_gt("a", [1], box), hr[[1], 8:24, 4:16])


def test_lq_from_disk_and_boxes(tmp_path):
    gt = _write_clip(tmp_path / "gt" / "clip1", n=4, h=32, w=24, pattern="im{}.png", start=1)
    lq = _write_clip(tmp_path / "lq" / "clip1", n=4, h=8, w=6, pattern="im{}.png", start=1, seed=50)
    src = FolderSource(tmp_path / "gt", tmp_path / "lq", name="mine")
    assert src.lq_size("clip1") == (8, 6)
    np.testing.assert_array_equal(src.read_lq("clip1", range(4)), lq)
    np.testing.assert_array_equal(src.read_gt("clip1", [3, 1], (1, 2, 5, 3)), gt[[3, 1], 4:24, 8:20])
    with pytest.raises(DataError, match="does not fit"):
        src.read_lq("clip1", [0], (5, 0, 4, 4))
    with pytest.raises(DataError, match=r"frames 0\.\.3; asked for \[4\]"):
        src.read_gt("clip1", [4])


def test_clips_in_natural_order_and_a_subset(tmp_path):
    for name in ("clip10", "clip2", "clip1"):
        _write_clip(tmp_path / name, n=1, h=8, w=8)
    assert FolderSource(tmp_path).clips() == ["clip1", "clip2", "clip10"]
    assert FolderSource(tmp_path, clips=["clip10", "clip1"]).clips() == ["clip10", "clip1"]
    with pytest.raises(DataError, match="no clip 'clip3'"):
        FolderSource(tmp_path, clips=["clip3"])


def test_gt_not_four_times_lq_names_both_files(tmp_path):
    _write_clip(tmp_path / "gt" / "a", n=2, h=32, w=24)
    _write_clip(tmp_path / "lq" / "a", n=2, h=8, w=7)
    src = FolderSource(tmp_path / "gt", tmp_path / "lq")
    with pytest.raises(DataError, match=r"GT frame .*gt/a/00000000\.png is 24x32 but LQ frame .*lq/a/00000000\.png is 7x8"):
        src.num_frames("a")


def test_missing_lq_clip_and_different_frame_counts(tmp_path):
    _write_clip(tmp_path / "gt" / "a", n=3, h=16, w=16)
    _write_clip(tmp_path / "gt" / "b", n=3, h=16, w=16)
    _write_clip(tmp_path / "lq" / "a", n=2, h=4, w=4)
    with pytest.raises(DataError, match=r"LQ clip folder missing for GT clip\(s\) b"):
        FolderSource(tmp_path / "gt", tmp_path / "lq")
    src = FolderSource(tmp_path / "gt", tmp_path / "lq", clips=["a"])
    with pytest.raises(DataError, match="3 GT frames .* but 2 LQ frames"):
        src.read_clip("a")


def test_empty_and_missing_roots(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no clips"):
        FolderSource(tmp_path / "empty")
    with pytest.raises(DataError, match="folder not found"):
        FolderSource(tmp_path / "nowhere")
    with pytest.raises(DataError, match=r"Vid4 not found: expected .*GT"):
        FolderSource.vid4(tmp_path / "empty")


def test_frames_of_different_sizes_in_one_clip(tmp_path):
    write_frame(tmp_path / "a" / "1.png", _frame(16, 16))
    write_frame(tmp_path / "a" / "2.png", _frame(16, 12))
    with pytest.raises(DataError, match=r"2\.png is 12x16 but .*1\.png is 16x16"):
        FolderSource(tmp_path).num_frames("a")


def test_corrupt_frame_in_a_clip_is_named(tmp_path):
    _write_clip(tmp_path / "a", n=2, h=16, w=16)
    (tmp_path / "a" / "00000001.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    src = FolderSource(tmp_path)
    with pytest.raises(DataError, match=r"00000001\.png"):
        src.read_gt("a", [0, 1])


def test_cache_keeps_decoded_frames(tmp_path):
    gt = _write_clip(tmp_path / "a", n=2, h=16, w=16)
    cached, plain = FolderSource(tmp_path, cache=True), FolderSource(tmp_path)
    lq = cached.read_lq("a", [0, 1])
    cached.read_gt("a", [0, 1])
    plain.num_frames("a")
    (tmp_path / "a" / "00000001.png").unlink()  # only the cache can still serve it
    np.testing.assert_array_equal(cached.read_gt("a", [1]), gt[[1]])
    np.testing.assert_array_equal(cached.read_lq("a", [1]), lq[[1]])
    with pytest.raises(DataError, match="not found"):
        plain.read_gt("a", [1])


def test_vid4_layout(vid4_root):
    src = FolderSource.vid4(vid4_root)
    assert src.name == "vid4"
    assert src.clips() == ["calendar", "city", "foliage", "walk"]
    assert [src.num_frames(c) for c in src.clips()] == [41, 34, 49, 47]
    assert [src.lq_size(c) for c in src.clips()] == [(144, 180), (144, 176), (120, 180), (120, 180)]
    gt = src.read_gt("foliage", [9])  # "Frame 10.png", not "Frame 10" sorted as a string
    np.testing.assert_array_equal(gt[0], read_frame(vid4_root / "GT" / "foliage" / "Frame 10.png"))
