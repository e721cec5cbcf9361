"""PSNR / SSIM / Y channel: hand-computed values and an independent SSIM (scikit-image)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from mgvsr.metrics import ClipScores, frame_scores, mean_scores, psnr, rgb_to_y, score_clip, ssim


def _random_frames(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def test_y_channel_values():
    rgb = np.array([[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255]], np.uint8)
    np.testing.assert_allclose(rgb_to_y(rgb), [16.0, 235.0, 81.481, 144.553, 40.966], rtol=1e-12)
    # not rounded: a mid grey gives a fractional luma
    assert rgb_to_y(np.array([100, 100, 100], np.uint8)) == pytest.approx(16 + 219 * 100 / 255, rel=1e-12)


def test_identical_frames_give_infinite_psnr_and_unit_ssim():
    f = _random_frames((32, 40, 3))
    assert psnr(f, f) == math.inf
    assert psnr(f, f, channel="rgb") == math.inf
    assert ssim(f, f) == pytest.approx(1.0, abs=1e-12)
    assert ssim(f, f, channel="rgb") == pytest.approx(1.0, abs=1e-12)


def test_psnr_of_a_known_mse():
    gt = np.full((20, 24, 3), 100, np.uint8)
    sr = gt.copy()
    sr[::2] += 2
    sr[1::2] -= 2  # every value off by 2: MSE 4 on RGB
    assert psnr(sr, gt, channel="rgb") == pytest.approx(10 * math.log10(255**2 / 4), rel=1e-12)
    # on Y, an equal offset d on R, G, B moves Y by d * 219 / 255
    assert psnr(sr, gt, channel="y") == pytest.approx(10 * math.log10(255**2 / (2 * 219 / 255) ** 2), rel=1e-12)


def test_crop_border_ignores_the_border():
    gt = _random_frames((30, 30, 3))
    sr = gt.copy()
    sr[0, :] = 255 - sr[0, :]
    sr[:, -1] = 255 - sr[:, -1]
    assert psnr(sr, gt) < 40
    assert psnr(sr, gt, crop_border=1) == math.inf
    assert ssim(sr, gt, crop_border=1) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_ssim_matches_scikit_image(seed):
    # scikit-image's Gaussian SSIM (sigma 1.5, truncate 3.5 -> an 11x11 window, population
    # covariances, mean over the map without its 5-pixel border) is the same definition.
    gt = _random_frames((48, 56, 3), seed)
    noise = np.random.default_rng(seed + 10).normal(0, 20, size=gt.shape)
    sr = np.clip(gt + noise, 0, 255).round().astype(np.uint8)
    kw = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)
    y_ref = structural_similarity(rgb_to_y(sr), rgb_to_y(gt), **kw)
    assert ssim(sr, gt, channel="y") == pytest.approx(y_ref, abs=1e-10)
    rgb_ref = np.mean([structural_similarity(sr[..., c].astype(float), gt[..., c].astype(float), **kw) for c in range(3)])
    assert ssim(sr, gt, channel="rgb") == pytest.approx(rgb_ref, abs=1e-10)


def test_frame_scores_and_clip_means():
    gt = _random_frames((5, 24, 24, 3), 3)
    sr = _random_frames((5, 24, 24, 3), 4)
    p, s = frame_scores(sr, gt, chunk=2)
    assert p.shape == s.shape == (5,)
    for i in range(5):
        assert p[i] == pytest.approx(psnr(sr[i], gt[i]), rel=1e-12)
        assert s[i] == pytest.approx(ssim(sr[i], gt[i]), rel=1e-12)
    clip = score_clip(sr, gt)
    assert clip.frames == 5
    assert clip.psnr == pytest.approx(p.mean()) and clip.ssim == pytest.approx(s.mean())
    # the dataset mean weighs clips equally, not frames
    other = ClipScores(psnr=40.0, ssim=0.9, frame_psnr=[40.0], frame_ssim=[0.9])
    m = mean_scores({"a": clip, "b": other})
    assert m["psnr"] == pytest.approx((clip.psnr + 40) / 2)
    assert m["ssim"] == pytest.approx((clip.ssim + 0.9) / 2)


def test_bad_inputs_are_refused():
    f = _random_frames((16, 16, 3))
    with pytest.raises(ValueError, match="shape"):
        psnr(f, f[:8])
    with pytest.raises(ValueError, match="uint8"):
        psnr(f.astype(np.float32), f)
    with pytest.raises(ValueError, match="channel"):
        psnr(f, f, channel="ycbcr")
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(f[:8, :8], f[:8, :8])
    with pytest.raises(ValueError, match="no clips"):
        mean_scores({})
