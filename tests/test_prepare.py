"""``mgvsr prepare``: writes the store, leaves an up-to-date one alone, and reports every bad input by file name."""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from mgvsr.cli import main
from mgvsr.data.datasets import PartialDatasetWarning, open_dataset
from mgvsr.data.io import write_frame
from mgvsr.data.store import StoreSource, default_store_path, open_store
from mgvsr.data.vimeo import MirroredSource
from test_reds import make_reds_tree


def _run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PartialDatasetWarning)
        return fn(*args, **kwargs)


@pytest.fixture()
def reds_root(tmp_path: Path) -> Path:
    root = tmp_path / "REDS"
    make_reds_tree(root, clips=("000", "001", "011"), frames=4)
    return root


def _prepare(capsys, *args: str) -> tuple[int, str, str]:
    return _run_cli(["prepare", *args, "--no-progress"], capsys)


def test_prepare_reds_writes_the_store_then_leaves_it_alone_until_the_tree_changes(reds_root, capsys):
    code, out, err = _prepare(capsys, "reds", "--root", str(reds_root))
    assert code == 0, err
    path = default_store_path(reds_root, "reds")
    assert path == reds_root / ".mgvsr-store" / "reds" and (path / "index.json").is_file()
    assert "wrote" in out and "3 clips, 12 frames" in out
    assert "partial REDS tree" in err and "3 of REDS's 270 clips" in err
    assert sorted(p.name for p in path.parent.iterdir()) == ["reds"]  # no temporary folder left

    code, out, _ = _prepare(capsys, "reds", "--root", str(reds_root))
    assert code == 0 and "up to date" in out

    frame = reds_root / "train_sharp/001/00000002.png"
    new = np.full((36, 64, 3), 77, np.uint8)
    write_frame(frame, new)
    os.utime(frame, ns=(frame.stat().st_atime_ns, frame.stat().st_mtime_ns + 10**9))
    code, out, _ = _prepare(capsys, "reds", "--root", str(reds_root))
    assert code == 0 and "wrote" in out
    np.testing.assert_array_equal(open_store(path).read_gt("001", [2])[0], new)


def test_prepare_check_writes_nothing(reds_root, capsys):
    code, out, err = _prepare(capsys, "reds", "--root", str(reds_root), "--check")
    assert code == 0, err
    assert "checked: 3 clips, 12 frames" in out
    assert not (reds_root / ".mgvsr-store").exists()


def test_prepare_into_another_folder(reds_root, tmp_path, capsys):
    store = tmp_path / "fast-disk" / "reds"
    assert _prepare(capsys, "reds", "--root", str(reds_root), "--store", str(store))[0] == 0
    assert (store / "index.json").is_file() and not (reds_root / ".mgvsr-store").exists()
    source = _quiet(open_dataset, "reds", reds_root, split="test", store=store)
    assert isinstance(source, StoreSource) and source.clips() == ["000", "011"]


def test_prepare_vimeo_keeps_the_lists_and_training_reads_14_frames_from_the_store(vimeo_root, tmp_path, capsys):
    store = tmp_path / "vimeo-store"
    code, out, err = _prepare(capsys, "vimeo90k", "--root", str(vimeo_root), "--store", str(store))
    assert code == 0, err
    assert "16 clips" in out and "made by MATLAB bicubic" in out
    train = _quiet(open_dataset, "vimeo90k", vimeo_root, split="train", store=store)
    assert isinstance(train, MirroredSource) and isinstance(train.source, StoreSource)
    assert train.clips() == [f"00001/{i:04d}" for i in range(1, 9)] and train.num_frames("00001/0001") == 14
    test = _quiet(open_dataset, "vimeo90k", vimeo_root, split="test", store=store)
    assert test.clips() == [f"00002/{i:04d}" for i in range(1, 9)] and test.name == "vimeo90k"


# -- every bad input: exit status 2, the file named, no traceback, nothing written -------------------------
def _assert_refused(capsys, args, *needles) -> str:
    code, out, err = _prepare(capsys, *args)
    assert code == 2, (out, err)
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, (needle, err)
    return err


def test_every_problem_is_reported_at_once(reds_root, capsys):
    corrupt = reds_root / "train_sharp/000/00000001.png"
    corrupt.write_bytes(corrupt.read_bytes()[:60])  # truncated: header fine, pixels gone
    wrong = reds_root / "train_sharp_bicubic/X4/011/00000003.png"
    write_frame(wrong, np.zeros((10, 16, 3), np.uint8))  # LQ 16x10 among 16x9 frames
    err = _assert_refused(capsys, ["reds", "--root", str(reds_root)], "2 problem(s), nothing written",
                          str(corrupt), str(wrong), "is 16x10")
    assert "truncated PNG" in err
    assert not (reds_root / ".mgvsr-store").exists()


def test_lq_clip_missing_for_a_gt_clip(reds_root, capsys):
    shutil.rmtree(reds_root / "train_sharp_bicubic/X4/001")
    _assert_refused(capsys, ["reds", "--root", str(reds_root)], "LQ clip folder missing for GT clip(s) 001",
                    str(reds_root / "train_sharp_bicubic/X4/001"))


def test_gt_frames_not_four_times_the_lq(reds_root, capsys):
    for i in range(4):
        write_frame(reds_root / f"train_sharp/001/{i:08d}.png", np.zeros((40, 64, 3), np.uint8))
    _assert_refused(capsys, ["reds", "--root", str(reds_root)], "is 64x40 but LQ frame",
                    "expected the GT exactly 4x the LQ (64x36)")


def test_a_layout_that_is_not_what_it_claims(reds_root, vimeo_root, capsys):
    _assert_refused(capsys, ["vimeo90k", "--root", str(reds_root)], "not a Vimeo-90K tree")
    _assert_refused(capsys, ["reds", "--root", str(vimeo_root)], "not a REDS tree")
    _assert_refused(capsys, ["reds", "--root", str(reds_root / "nowhere")], "--root folder not found")


def test_a_list_naming_a_missing_sequence(vimeo_root, tmp_path, capsys):
    root = tmp_path / "v"
    (root / "sequences/00002").mkdir(parents=True)
    os.symlink(vimeo_root / "sequences/00002/0001", root / "sequences/00002/0001")
    (root / "sep_testlist.txt").write_text("00002/0001\n00002/0009\n")
    _assert_refused(capsys, ["vimeo90k", "--root", str(root)], "sep_testlist.txt missing: 00002/0009",
                    str(root / "sequences/00002/0009"))


def test_training_refuses_a_store_whose_tree_changed_since(reds_root, tmp_path, capsys):
    from mgvsr.data.datasets import verify_store
    from mgvsr.errors import DataError
    from mgvsr.presets import get_preset
    from mgvsr.launch import run_preset
    from mgvsr.options import RunOptions

    code, _, err = _prepare(capsys, "reds", "--root", str(reds_root))
    assert code == 0, err
    store = default_store_path(reds_root, "reds")
    verify_store("reds", reds_root)  # up to date: nothing to say
    frame = reds_root / "train_sharp/001/00000002.png"
    write_frame(frame, np.full((36, 64, 3), 77, np.uint8))
    os.utime(frame, ns=(frame.stat().st_atime_ns, frame.stat().st_mtime_ns + 10**9))

    preset = get_preset("demo/basicvsr/ours").on(dataset="reds").shrunk(iterations=6, batch=2, patch_div=4)
    with pytest.raises(DataError) as err:
        run_preset(preset, tmp_path / "run", RunOptions(root=reds_root, device="cpu", progress=False))
    assert str(err.value).startswith(f"the frame store at {store} was made from {reds_root.resolve()} on ")
    assert "files there have changed since" in str(err.value) and "mgvsr prepare" in str(err.value)
    assert not (tmp_path / "run").exists()  # refused before anything was written
    verify_store("reds", reds_root, store=False)  # reading the files instead: nothing to check
    moved = tmp_path / "REDS-elsewhere"
    shutil.move(reds_root, moved)  # the tree gone (the store kept on its own): the store stands alone
    verify_store("reds", moved.parent / "absent-root", store=moved / ".mgvsr-store" / "reds")
