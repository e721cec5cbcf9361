"""The embedded sample clips: real photographs, deterministic bytes, held-out photos, BI LQ."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mgvsr.data import sample
from mgvsr.data.resize import bicubic_downscale


@pytest.fixture(scope="module")
def cached_root():
    return sample.sample_root()


def test_splits_use_disjoint_photographs():
    def photos(specs):
        return {s.photo for s in specs} | {sp.photo for s in specs for sp in s.sprites}

    assert not photos(sample.TRAIN_CLIPS) & photos(sample.TEST_CLIPS)
    names = [s.name for s in sample.TRAIN_CLIPS + sample.TEST_CLIPS]
    assert len(names) == len(set(names))


def test_sources_have_the_documented_shapes(cached_root):
    train = sample.sample_source("train")
    test = sample.sample_source("test")
    assert train.clips() == sorted(s.name for s in sample.TRAIN_CLIPS)
    assert test.clips() == sorted(s.name for s in sample.TEST_CLIPS)
    lq, gt = test.read_clip("camera")
    assert gt.shape == (20, 256, 256, 3) and lq.shape == (20, 64, 64, 3)
    assert train.num_frames("astronaut") == 30


def test_lq_is_the_matlab_bicubic_of_the_gt(cached_root):
    lq, gt = sample.sample_source("test").read_clip("gravel")
    np.testing.assert_array_equal(lq, bicubic_downscale(gt, 4))


def test_clips_move_camera_and_objects():
    frames = sample.render_clip(sample.TEST_CLIPS[0]).astype(np.float32)
    diffs = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3))
    assert (diffs > 1.0).all()  # every frame differs from the previous one: the camera moves


def test_unknown_split_is_refused():
    with pytest.raises(ValueError, match="unknown sample split 'val'"):
        sample.sample_source("val")


@pytest.mark.slow
def test_generation_is_byte_for_byte_deterministic(cached_root, tmp_path):
    again = sample.generate(tmp_path / "again", progress=False)
    cached = json.loads((cached_root / "manifest.json").read_text())
    assert again["files"] == cached["files"]
    assert len(again["files"]) == 2 * sum(s.frames for s in sample.TRAIN_CLIPS + sample.TEST_CLIPS)


def test_true_flow_aligns_neighbouring_frames(cached_root):
    import torch

    from mgvsr.models.ops import flow_warp

    spec = sample.TRAIN_CLIPS[0]
    lq, _ = sample.sample_source("train").read_clip(spec.name)
    pairs = [(5, 6), (5, 4), (10, 13)]
    flows = sample.clip_flows(spec, pairs)
    assert flows.shape == (3, 2, 64, 64)

    def err(a, b):
        return float(((a - b)[..., 4:-4, 4:-4] ** 2).mean())

    for (i, j), f in zip(pairs, flows):
        ref = torch.from_numpy(lq[i]).permute(2, 0, 1)[None].float()
        supp = torch.from_numpy(lq[j]).permute(2, 0, 1)[None].float()
        warped = flow_warp(supp, torch.from_numpy(f).permute(1, 2, 0)[None], padding_mode="border")
        assert err(ref, warped) < 0.4 * err(ref, supp)  # the flow explains most of the change


def test_a_second_process_waits_for_the_first_rendering_and_renders_nothing(cached_root, tmp_path):
    """Two processes asking for the clips at once on a fresh checkout render them once: the second waits
    on the first's lock, then finds them (without the lock it would render again and replace the folder)."""
    import fcntl
    import shutil
    import subprocess
    import sys
    import time

    root = tmp_path / "clips"
    with open(tmp_path / "clips.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the first process, rendering
        child = subprocess.Popen([sys.executable, "-c", "import sys, pathlib; from mgvsr.data.sample import "
                                  "sample_root; print(sample_root(pathlib.Path(sys.argv[1])))", str(root)],
                                 stdout=subprocess.PIPE, text=True)
        time.sleep(3)
        assert child.poll() is None  # waiting on the lock
        shutil.copytree(cached_root, root)  # the first process's rendering lands
        (root / "first.txt").write_text("rendered by the first process")
    out, _ = child.communicate(timeout=60)
    assert child.returncode == 0 and out.strip() == str(root)
    assert (root / "first.txt").is_file()  # the waiting process did not render the clips again
