"""mgvsr.tutorial.qualitative: clips to look at, crops, temporal profiles and the frame-by-frame comparison."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mgvsr.data.io import write_frame
from mgvsr.errors import DataError, MgvsrError
from mgvsr.models import build_model
from mgvsr.tutorial.qualitative import (
    comparison_figure,
    crop_scores,
    frame_scores,
    model_checkpoints,
    open_clip,
    pick_box,
    restore_clip,
    scores_text,
    temporal_profile,
    temporal_profiles,
    zoomed_crops,
)
from mgvsr.tutorial.viz import plot_temporal_profiles


def ramp_frames(t: int = 4, h: int = 32, w: int = 48) -> np.ndarray:
    """Frame k, pixel (y, x): (x + k, y, k) in every channel order: every value says where it is."""
    k, y, x = np.meshgrid(np.arange(t), np.arange(h), np.arange(w), indexing="ij")
    return np.stack([x + k, y, np.broadcast_to(k, x.shape)], -1).astype(np.uint8)


def test_temporal_profile_is_one_row_over_time():
    frames = ramp_frames()
    profile = temporal_profile(frames, row=5, cols=(10, 20))
    assert profile.shape == (4, 10, 3)
    assert (profile[:, :, 1] == 5).all()  # the row
    assert (profile[2, :, 0] == np.arange(10, 20) + 2).all() and (profile[:, 0, 2] == np.arange(4)).all()
    assert temporal_profile(frames, 0).shape == (4, 48, 3)
    with pytest.raises(MgvsrError, match="row 32 is out of range"):
        temporal_profile(frames, 32)
    with pytest.raises(MgvsrError, match="columns 40..50"):
        temporal_profile(frames, 1, (40, 50))
    profiles = temporal_profiles({"a": frames, "GT": frames}, 3)
    assert list(profiles) == ["a", "GT"]
    assert len(plot_temporal_profiles(profiles, crop_scores(profiles)).axes) == 2


def test_pick_box_finds_the_detail():
    frame = np.full((64, 96, 3), 128, np.uint8)
    rng = np.random.default_rng(0)
    frame[24:40, 56:72] = rng.integers(0, 256, (16, 16, 3))  # the only texture
    top, left, h, w = pick_box(frame, size=16, stride=8)
    assert (h, w) == (16, 16)
    assert (top, left) == (24, 56)
    assert pick_box(frame, size=200)[2:] == (64, 64)  # clipped to the frame


def test_crops_scores_and_the_comparison_callback():
    gt = ramp_frames()
    noisy = np.clip(gt.astype(int) + 3, 0, 255).astype(np.uint8)
    outputs = {"noisy": noisy, "GT": gt}
    crops = zoomed_crops(outputs, 1, (4, 8, 10, 12))
    assert crops["GT"].shape == (10, 12, 3) and (crops["GT"] == gt[1, 4:14, 8:20]).all()
    scores = crop_scores(crops)
    assert list(scores) == ["noisy"] and 30 < scores["noisy"] < 45
    assert crop_scores({"noisy": crops["noisy"]}) == {}
    fig = comparison_figure(outputs, 2, (4, 8, 10, 12))
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0] == "frame" and titles[1].startswith("noisy\n") and titles[1].endswith("dB") and titles[2] == "GT"
    with pytest.raises(MgvsrError, match="frame index 4 is out of range 0..3"):
        comparison_figure(outputs, 4, (0, 0, 8, 8))
    with pytest.raises(MgvsrError, match="does not fit"):
        zoomed_crops(outputs, 0, (30, 0, 8, 8))
    with pytest.raises(MgvsrError, match="one shape"):
        zoomed_crops({"a": gt, "b": gt[:, :16]}, 0, (0, 0, 4, 4))
    per_frame = frame_scores(outputs)
    assert per_frame["noisy"].shape == (4,)
    assert "noisy" in scores_text(outputs) and "no ground truth" in scores_text({"noisy": noisy})


def test_open_clip_sample_by_default():
    clip = open_clip(frames=3)
    assert clip.frames == 3 and clip.gt.shape == (3, 256, 256, 3) and clip.lq.shape == (3, 64, 64, 3)
    assert clip.name == "camera"  # the first held-out clip
    other = open_clip(clip="gravel", first=18, frames=10)
    assert other.frames == 2  # clipped at the end of the clip
    with pytest.raises(DataError, match="no clip 'nope'"):
        open_clip(clip="nope")
    with pytest.raises(DataError, match="first frame 25 is out of range"):
        open_clip(first=25)


def test_open_clip_of_lr_frames_without_ground_truth(tmp_path: Path):
    frames = ramp_frames(3, 16, 24)
    for i, f in enumerate(frames):
        write_frame(tmp_path / f"{i:08d}.png", f)
    clip = open_clip(tmp_path, frames=2)
    assert clip.gt is None and (clip.lq == frames[:2]).all() and "no ground truth" in clip.origin
    with pytest.raises(DataError, match="not a folder"):
        open_clip(tmp_path / "missing")


def test_open_clip_on_shared_data(vid4_root: Path, shared_data: Path):
    clip = open_clip(vid4_root, frames=2)
    assert clip.name == "calendar" and clip.lq.shape == (2, 144, 180, 3) and clip.gt.shape == (2, 576, 720, 3)
    demo = shared_data / "reds_demo_lr"
    if not demo.is_dir():
        pytest.skip(f"{demo} not found")
    lr = open_clip(demo, frames=3)
    assert lr.gt is None and lr.lq.shape == (3, 180, 320, 3)


def test_restore_clip_with_a_model_and_checkpoints(tmp_path: Path):
    torch.manual_seed(0)
    clip = open_clip(frames=3)
    outputs = restore_clip(clip, {"untrained": build_model("basicvsr_cpu").eval()})
    assert list(outputs) == ["bicubic", "untrained", "GT"]
    assert all(v.shape == (3, 256, 256, 3) and v.dtype == np.uint8 for v in outputs.values())
    assert (outputs["GT"] == clip.gt).all()
    (tmp_path / "ours").mkdir()
    (tmp_path / "ours" / "final.pth").write_bytes(b"")
    assert model_checkpoints(tmp_path) == {"ours": tmp_path / "ours" / "final.pth"}


def test_frame_explorer_slider_redraws():
    pytest.importorskip("ipywidgets")
    from mgvsr.tutorial.qualitative import frame_explorer

    gt = ramp_frames()
    outputs = {"dark": (gt // 2).astype(np.uint8), "GT": gt}
    _, slider, image = frame_explorer(outputs, (0, 0, 16, 16))
    first = image.value
    assert first[:4] == b"\x89PNG" and slider.max == 3
    slider.value = 3
    assert image.value != first


def test_frame_view_is_the_sliders_first_state():
    """Notebook 8 shows frame_view beneath the slider: the picture a page without a kernel shows."""
    pytest.importorskip("ipywidgets")
    from mgvsr.tutorial.qualitative import frame_explorer, frame_view
    from mgvsr.tutorial.widgets import figure_png

    gt = ramp_frames()
    outputs = {"dark": (gt // 2).astype(np.uint8), "GT": gt}
    _, slider, image = frame_explorer(outputs, (0, 0, 16, 16), title="ramp")
    assert image.value == figure_png(frame_view(outputs, (0, 0, 16, 16), "ramp"))
    slider.value = 2
    assert image.value == figure_png(frame_view(outputs, (0, 0, 16, 16), "ramp", index=2))
    assert frame_view(outputs, (0, 0, 16, 16), "ramp").texts[0].get_text() == "ramp frame 0"
