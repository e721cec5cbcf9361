"""MATLAB bicubic: hand-derived weights, an independent loop implementation, shapes, rounding."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mgvsr.data.resize import (
    bicubic_downscale,
    bicubic_upscale,
    imresize,
    output_length,
    resize_matrix,
    round_like_matlab,
)

# Keys' cubic (a = -0.5) at the four distances of a x2 upscale: 1.75, 0.75, 0.25, 1.25.
UP2_WEIGHTS = [-0.0234375, 0.2265625, 0.8671875, -0.0703125]


# -- an independent, straightforward implementation of MATLAB's imresize (float64 loops) ---------
def _kernel(d: float) -> float:
    d = abs(d)
    if d <= 1:
        return 1.5 * d**3 - 2.5 * d**2 + 1
    if d <= 2:
        return -0.5 * d**3 + 2.5 * d**2 - 4 * d + 2
    return 0.0


def _loop_resize_1d(signal: list[float], scale: float, antialiasing: bool = True) -> list[float]:
    n = len(signal)
    m = math.ceil(n * scale - 1e-9)
    width = 4.0 / scale if (scale < 1 and antialiasing) else 4.0
    out = []
    for i in range(1, m + 1):
        u = i / scale + 0.5 * (1 - 1 / scale)
        left = math.floor(u - width / 2)
        total, acc = 0.0, 0.0
        for j in range(left, left + math.ceil(width) + 2):
            if scale < 1 and antialiasing:
                w = scale * _kernel(scale * (u - j))
            else:
                w = _kernel(u - j)
            k = j  # mirror 1-based index into 1..n: ..., 2, 1 | 1, 2, ..., n | n, n-1, ...
            while k < 1 or k > n:
                k = 1 - k if k < 1 else 2 * n + 1 - k
            acc += w * signal[k - 1]
            total += w
        out.append(acc / total)
    return out


def _loop_imresize(image: np.ndarray, scale: float, antialiasing: bool = True) -> np.ndarray:
    """Rows (height) first, then columns, like MATLAB."""
    cols = [_loop_resize_1d(list(image[:, c]), scale, antialiasing) for c in range(image.shape[1])]
    tmp = np.array(cols).T  # (H, w)
    rows = [_loop_resize_1d(list(tmp[r]), scale, antialiasing) for r in range(tmp.shape[0])]
    return np.array(rows)


# -- hand-checked weights ----------------------------------------------------------------
def test_upscale_by_2_interior_weights_are_keys_cubic():
    m = resize_matrix(8, 16, 2.0)
    # Output pixel 9 (1-based) samples u = 9/2 + 0.25 = 4.75: pixels 3, 4, 5, 6 at 1.75, 0.75, 0.25, 1.25.
    np.testing.assert_allclose(m[8, 2:6], UP2_WEIGHTS, atol=0, rtol=1e-15)
    assert np.count_nonzero(m[8]) == 4


def test_upscale_border_folds_mirrored_taps():
    # Output pixel 1 samples u = 0.75: taps at -1, 0, 1, 2; symmetric padding reads 0 -> 1, -1 -> 2.
    m = resize_matrix(8, 16, 2.0)
    expected = np.zeros(8)
    expected[0] = UP2_WEIGHTS[1] + UP2_WEIGHTS[2]  # 1.09375
    expected[1] = UP2_WEIGHTS[0] + UP2_WEIGHTS[3]  # -0.09375
    np.testing.assert_allclose(m[0], expected, rtol=1e-15)


def test_downscale_by_2_uses_the_stretched_kernel():
    # Scale 1/2: kernel 0.5 * cubic(d / 2) over 8 taps; output pixel 3 samples u = 5.5.
    m = resize_matrix(16, 8, 0.5)
    half = [-0.0234375, -0.0703125, 0.2265625, 0.8671875]
    expected = np.array(half + half[::-1]) / 2
    np.testing.assert_allclose(m[2, 1:9], expected, rtol=1e-15)
    assert np.count_nonzero(m[2]) == 8


def test_rows_sum_to_one():
    for n, scale in [(37, 0.25), (10, 4.0), (9, 1 / 3), (5, 3.0)]:
        m = resize_matrix(n, output_length(n, scale), scale)
        np.testing.assert_allclose(m.sum(axis=1), 1.0, rtol=1e-14)


def test_upscale_reproduces_a_linear_ramp_away_from_the_borders():
    # Keys' cubic (a = -0.5) interpolates polynomials of degree <= 2 exactly.
    ramp = torch.arange(1, 21, dtype=torch.float64).view(20, 1).expand(20, 5).clone()
    out = imresize(ramp, 4.0)
    u = torch.arange(1, 81, dtype=torch.float64) / 4 + 0.5 * (1 - 1 / 4)
    np.testing.assert_allclose(out[8:-8, 10], u[8:-8], rtol=1e-13)


# -- against the loop implementation ---------------------------------------------------------
@pytest.mark.parametrize("scale", [0.25, 1 / 3, 0.5, 2.0, 3.0, 4.0])
@pytest.mark.parametrize("antialiasing", [True, False])
def test_matches_independent_loop_implementation(scale, antialiasing):
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 255, size=(13, 9))
    ours = imresize(torch.from_numpy(image), scale, antialiasing).numpy()
    ref = _loop_imresize(image, scale, antialiasing)
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-10)


# -- shapes, batches, constants ----------------------------------------------------------
def test_constant_image_stays_constant():
    x = torch.full((2, 3, 17, 23), 0.37, dtype=torch.float64)
    for scale in (0.25, 4.0, 1 / 3):
        y = imresize(x, scale)
        np.testing.assert_allclose(y.numpy(), 0.37, rtol=1e-14)


def test_output_shapes():
    assert imresize(torch.zeros(3, 16, 20), 4.0).shape == (3, 64, 80)
    assert imresize(torch.zeros(3, 64, 80), 0.25).shape == (3, 16, 20)
    # odd sizes: MATLAB's ceil(scale * size)
    assert imresize(torch.zeros(1, 3, 33, 17), 0.25).shape == (1, 3, 9, 5)
    assert imresize(torch.zeros(5, 7), 0.5).shape == (3, 4)
    assert output_length(300, 1 / 3) == 100


def test_batch_dimensions_are_independent():
    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.uniform(0, 1, size=(2, 4, 3, 12, 16)))
    y = imresize(x, 0.25)
    assert y.shape == (2, 4, 3, 3, 4)
    for b in range(2):
        for t in range(4):
            torch.testing.assert_close(y[b, t], imresize(x[b, t], 0.25), rtol=1e-13, atol=1e-13)


def test_float32_is_close_to_float64():
    x = torch.rand(3, 40, 32, dtype=torch.float64)
    torch.testing.assert_close(imresize(x.float(), 0.25).double(), imresize(x, 0.25), rtol=0, atol=1e-5)


def test_rejects_integer_tensors():
    with pytest.raises(TypeError, match="float"):
        imresize(torch.zeros(3, 8, 8, dtype=torch.uint8), 0.5)


# -- uint8 helpers ---------------------------------------------------------------------------
def test_round_like_matlab_rounds_half_away_and_saturates():
    x = torch.tensor([-3.0, 0.49, 0.5, 1.5, 2.5, 254.5, 300.0], dtype=torch.float64)
    assert round_like_matlab(x).tolist() == [0, 0, 1, 2, 3, 255, 255]


def test_uint8_helpers_match_the_float_path():
    rng = np.random.default_rng(2)
    frames = rng.integers(0, 256, size=(3, 24, 20, 3), dtype=np.uint8)
    lq = bicubic_downscale(frames, 4)
    assert lq.shape == (3, 6, 5, 3) and lq.dtype == np.uint8
    ref = _loop_imresize(frames[1, :, :, 2].astype(np.float64), 0.25)
    expected = np.floor(np.clip(ref, 0, 255) + 0.5).astype(np.uint8)
    np.testing.assert_array_equal(lq[1, :, :, 2], expected)

    sr = bicubic_upscale(lq, 4)
    assert sr.shape == (3, 24, 20, 3) and sr.dtype == np.uint8
    # single frame (h, w, 3) and chunking give the same answer
    np.testing.assert_array_equal(bicubic_downscale(frames[2]), lq[2])
    np.testing.assert_array_equal(bicubic_downscale(frames, chunk=1), lq)


def test_uint8_helpers_reject_bad_input():
    from mgvsr.errors import DataError

    with pytest.raises(DataError, match="uint8"):
        bicubic_downscale(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(DataError, match="h, w, 3"):
        bicubic_downscale(np.zeros((8, 8), np.uint8))
