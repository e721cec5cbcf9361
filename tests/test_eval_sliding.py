"""Whole-clip evaluation of sliding-window models (EDVR): BasicSR's 'reflection_circle' windows, batched."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mgvsr.data.folders import FolderSource
from mgvsr.data.io import write_frame
from mgvsr.errors import DataError, MgvsrError
from mgvsr.evaluate import (
    Protocol,
    evaluate_model,
    is_sliding_window,
    reflection_circle_indices,
    super_resolve_clip,
)
from mgvsr.metrics import score_clip
from mgvsr.models.edvr import EDVR
from test_eval_protocols import _lq_clip
from test_reds import smooth_frames


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


def tiny_edvr(seed: int = 0, **kw) -> EDVR:
    """8 features, 2 offset groups, 1 + 1 blocks, with non-zero offsets: every frame of a window matters."""
    torch.manual_seed(seed)
    model = EDVR(num_feat=8, deformable_groups=2, num_extract_block=1, num_reconstruct_block=1, **kw)
    with torch.no_grad():
        for m in model.modules():
            if hasattr(m, "conv_offset"):
                m.conv_offset.weight.normal_(0, 0.05)
                m.conv_offset.bias.normal_(0, 0.5)
    return model.eval()


def window_by_window(model: EDVR, lq: np.ndarray, windows: list[list[int]]) -> np.ndarray:
    """The model on one hand-picked window at a time: ``(n, 4h, 4w, 3)`` uint8."""
    dtype = next(model.parameters()).dtype
    x = torch.from_numpy(lq).permute(0, 3, 1, 2).to(dtype).div(255)  # (t, 3, h, w)
    out = []
    with torch.inference_mode():
        for window in windows:
            y = model(x[window][None])[0]
            out.append(y.clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).numpy())
    return np.stack(out)


# -- the index rule ---------------------------------------------------------------------------------------
def test_reflection_circle_indices_written_out_by_hand():
    # BasicSR's docstring example (centre 0, 5 frames): reflection_circle gives [4, 3, 0, 1, 2]
    assert reflection_circle_indices(0, 10, 5) == [4, 3, 0, 1, 2]
    assert reflection_circle_indices(1, 10, 5) == [4, 0, 1, 2, 3]
    assert reflection_circle_indices(5, 10, 5) == [3, 4, 5, 6, 7]  # the middle: no padding
    assert reflection_circle_indices(8, 10, 5) == [6, 7, 8, 9, 5]
    assert reflection_circle_indices(9, 10, 5) == [7, 8, 9, 6, 5]
    # a clip exactly as long as the window
    assert reflection_circle_indices(0, 7, 7) == [6, 5, 4, 0, 1, 2, 3]
    assert reflection_circle_indices(3, 7, 7) == [0, 1, 2, 3, 4, 5, 6]
    assert reflection_circle_indices(6, 7, 7) == [3, 4, 5, 6, 2, 1, 0]
    # Vimeo-90K's centre frame im4 with EDVR's 5 frames: im2 .. im6, as VideoTestVimeo90KDataset reads
    assert reflection_circle_indices(3, 7, 5) == [1, 2, 3, 4, 5]
    assert reflection_circle_indices(0, 3, 3) == [2, 0, 1]
    assert reflection_circle_indices(4, 5, 1) == [4]


def test_reflection_circle_refuses_even_windows_and_short_clips():
    with pytest.raises(ValueError, match="odd number of frames, got 4"):
        reflection_circle_indices(2, 10, 4)
    with pytest.raises(DataError, match="clip of 4 frames is shorter than the 5-frame window"):
        reflection_circle_indices(0, 4, 5)
    with pytest.raises(ValueError, match=r"centre frame 10 is outside 0..9"):
        reflection_circle_indices(10, 10, 5)


# -- a clip through the model ---------------------------------------------------------------------------
def test_super_resolve_clip_equals_the_model_window_by_window():
    # float64: batching windows together changes float32 results in their last bits (the CPU's
    # convolution picks its blocking by batch size), which can flip a uint8 rounding; in float64
    # that cannot happen at these sizes, so any byte of difference is a wrong window
    model = tiny_edvr().double()
    assert is_sliding_window(model)
    lq = _lq_clip(t=8, h=16, w=20)
    windows = [[4, 3, 0, 1, 2], [4, 0, 1, 2, 3], [0, 1, 2, 3, 4], [1, 2, 3, 4, 5], [2, 3, 4, 5, 6],
               [3, 4, 5, 6, 7], [4, 5, 6, 7, 3], [5, 6, 7, 4, 3]]  # written out for 8 frames
    expected = window_by_window(model, lq, windows)
    for per_call in (1, 3, None):  # how many windows share a call does not change a byte
        np.testing.assert_array_equal(super_resolve_clip(model, lq, windows=per_call), expected)
    np.testing.assert_array_equal(super_resolve_clip(model, lq, frames=[7, 0, 4], windows=2), expected[[7, 0, 4]])
    # the padding matters: frame 0 from a plainly clamped window would differ
    clamped = window_by_window(model, lq, [[0, 0, 0, 1, 2]])
    assert not np.array_equal(clamped[0], expected[0])


def test_sliding_window_models_refuse_what_they_cannot_do():
    lq = _lq_clip(t=6, h=16, w=16)
    with pytest.raises(ValueError, match="flip_seq.*sliding-window model"):
        super_resolve_clip(tiny_edvr(), lq, flip_seq=True)
    with pytest.raises(MgvsrError, match="outputs frame 1 of a 5-frame window"):
        super_resolve_clip(tiny_edvr(center_frame_idx=1), lq)
    with pytest.raises(DataError, match="takes 5-frame windows, but the clip has only 4 frames"):
        super_resolve_clip(tiny_edvr(), lq[:4])
    with pytest.raises(ValueError, match="windows must be a positive number"):
        super_resolve_clip(tiny_edvr(), lq, windows=0)


@pytest.fixture()
def gt_clips(tmp_path: Path) -> Path:
    """Two GT clips (7 and 9 frames, 64x80: LQ 16x20 by MATLAB bicubic) as PNG folders."""
    root = tmp_path / "gt"
    for k, (name, n) in enumerate([("seven", 7), ("nine", 9)]):
        for i, frame in enumerate(smooth_frames(n, 64, 80, seed=k)):
            write_frame(root / name / f"{i:08d}.png", frame)
    return root


def test_evaluate_model_scores_each_frame_from_its_window(gt_clips):
    model = tiny_edvr(seed=1)
    source = FolderSource(gt_clips)
    result = evaluate_model(model, source, device="cpu", progress=False)
    assert not result.flip_seq
    for clip in source.clips():
        lq, gt = source.read_clip(clip)
        t = len(lq)
        windows = [reflection_circle_indices(i, t, 5) for i in range(t)]
        expected = score_clip(window_by_window(model, lq, windows), gt, "y")
        assert result.clips[clip].frames == t
        assert result.clips[clip].psnr == pytest.approx(expected.psnr, rel=1e-12)
        assert result.clips[clip].ssim == pytest.approx(expected.ssim, rel=1e-12)


def test_vimeo_protocol_scores_the_centre_window_without_flipping(gt_clips):
    model = tiny_edvr(seed=2)
    source = FolderSource(gt_clips, clips=["seven"])
    vimeo = Protocol("y", center_frame_only=True, flip_seq=True)
    result = evaluate_model(model, source, device="cpu", progress=False, protocol=vimeo)
    assert result.center_frame_only and not result.flip_seq
    lq, gt = source.read_clip("seven")
    expected = score_clip(window_by_window(model, lq, [[1, 2, 3, 4, 5]]), gt[[3]], "y")
    assert result.clips["seven"].frames == 1
    assert result.clips["seven"].psnr == pytest.approx(expected.psnr, rel=1e-12)
