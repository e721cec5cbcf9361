"""Whole-clip evaluation and ``mgvsr eval``: small real clips, a real model, and Vid4's published numbers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mgvsr.cli import main
from mgvsr.data.folders import FolderSource
from mgvsr.data.io import write_frame
from mgvsr.data.resize import bicubic_upscale
from mgvsr.evaluate import Protocol, evaluate_bicubic, evaluate_model, super_resolve_clip
from mgvsr.metrics import score_clip

# BasicVSR paper, Table 1, "Bicubic" on Vid4 (BI x4, Y channel): PSNR 2 decimals, SSIM 4.
VID4_BICUBIC = {
    "calendar": (20.39, 0.5720),
    "city": (25.16, 0.6028),
    "foliage": (23.47, 0.5666),
    "walk": (26.10, 0.7974),
}
VID4_BICUBIC_MEAN = (23.78, 0.6347)


class BilinearX4(nn.Module):
    """A real (if untrained) recurrent-shaped model: bilinear x4 of each frame plus an offset."""

    def __init__(self, offset: float = 0.0):
        super().__init__()
        self.offset = nn.Parameter(torch.tensor(offset))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (b, t, 3, h, w) -> (b, t, 3, 4h, 4w)
        b, t, c, h, w = x.shape
        y = F.interpolate(x.reshape(b * t, c, h, w), scale_factor=4, mode="bilinear", align_corners=False)
        return y.reshape(b, t, c, 4 * h, 4 * w) + self.offset


def _smooth_clip(n: int, h: int, w: int, seed: int) -> np.ndarray:
    """Frames with structure (so bicubic scores are finite but high): blurred noise, panning."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0, 255, size=(h // 4 + 4, w // 4 + 4 + n, 3))
    big = np.kron(base, np.ones((4, 4, 1)))
    frames = [big[:h, 4 * i : 4 * i + w] for i in range(n)]
    return np.clip(np.stack(frames), 0, 255).round().astype(np.uint8)


@pytest.fixture()
def clip_root(tmp_path: Path) -> Path:
    root = tmp_path / "clips"
    for k, name in enumerate(["b_clip", "a_clip"]):
        for i, frame in enumerate(_smooth_clip(3, 32, 40, seed=k)):
            write_frame(root / name / f"{i:08d}.png", frame)
    return root


def _run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


# -- evaluate ---------------------------------------------------------------------------------
def test_evaluate_bicubic_scores_each_clip_and_averages(clip_root):
    source = FolderSource(clip_root)
    result = evaluate_bicubic(source, progress=False)
    assert list(result.clips) == ["a_clip", "b_clip"]
    for clip in source.clips():
        lq, gt = source.read_clip(clip)
        expected = score_clip(bicubic_upscale(lq), gt, "y")
        assert result.clips[clip].psnr == pytest.approx(expected.psnr, rel=1e-12)
        assert result.clips[clip].ssim == pytest.approx(expected.ssim, rel=1e-12)
        assert result.clips[clip].frames == 3
    assert result.mean["psnr"] == pytest.approx(np.mean([c.psnr for c in result.clips.values()]))
    d = result.to_dict()
    assert d["model"] == "bicubic" and d["channel"] == "y" and set(d["clips"]) == {"a_clip", "b_clip"}
    assert "mean" in result.table() and "a_clip" in result.table()


def test_evaluate_model_rounds_clamped_outputs(clip_root):
    source = FolderSource(clip_root)
    model = BilinearX4()
    result = evaluate_model(model, source, Protocol("rgb"), device="cpu", progress=False)
    lq, gt = source.read_clip("a_clip")
    with torch.no_grad():
        y = model(torch.from_numpy(lq).permute(0, 3, 1, 2).float().div(255)[None])[0]
    sr = y.clamp(0, 1).mul(255).round().byte().permute(0, 2, 3, 1).numpy()
    expected = score_clip(sr, gt, "rgb")
    assert result.clips["a_clip"].psnr == pytest.approx(expected.psnr, rel=1e-12)
    assert result.model == "BilinearX4"

    # outputs beyond [0, 1] are clamped: a +2 offset makes every pixel white
    white = super_resolve_clip(BilinearX4(offset=2.0), lq)
    assert white.shape == gt.shape and white.dtype == np.uint8 and (white == 255).all()


def test_evaluate_model_refuses_a_non_recurrent_output(clip_root):
    class CentreFrameOnly(BilinearX4):
        def forward(self, x):
            return super().forward(x)[:, x.shape[1] // 2]

    with pytest.raises(ValueError, match=r"recurrent model .* returned \(1, 3, 32, 40\)"):
        evaluate_model(CentreFrameOnly(), FolderSource(clip_root), device="cpu", progress=False)


# -- the command line --------------------------------------------------------------------------
def test_cli_folder_json_matches_evaluate_bicubic(clip_root, capsys):
    code, out, _ = _run_cli(["eval", "--dataset", "folder", "--root", str(clip_root), "--json", "--no-progress"], capsys)
    assert code == 0
    got = json.loads(out)
    want = evaluate_bicubic(FolderSource(clip_root), progress=False).to_dict()
    assert got["channel"] == "y" and got["model"] == "bicubic"
    for clip in ("a_clip", "b_clip"):
        assert got["clips"][clip]["psnr"] == pytest.approx(want["clips"][clip]["psnr"], rel=1e-12)
        assert got["clips"][clip]["ssim"] == pytest.approx(want["clips"][clip]["ssim"], rel=1e-12)
    assert got["mean"] == pytest.approx(want["mean"], rel=1e-12)


def test_cli_folder_with_lq_root_rgb_table(clip_root, tmp_path, capsys):
    lq_root = tmp_path / "lq"
    source = FolderSource(clip_root)
    for clip in source.clips():
        for i, frame in enumerate(source.read_lq(clip, range(3))):
            write_frame(lq_root / clip / f"{i:08d}.png", frame)
    argv = ["eval", "--dataset", "folder", "--root", str(clip_root), "--lq-root", str(lq_root),
            "--channel", "rgb", "--clips", "b_clip", "--no-progress"]
    code, out, _ = _run_cli(argv, capsys)
    assert code == 0
    expected = evaluate_bicubic(FolderSource(clip_root, clips=["b_clip"]), channel="rgb", progress=False)
    assert f"{expected.clips['b_clip'].psnr:.2f}" in out
    assert "RGB channel" in out and "a_clip" not in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--dataset", "folder"], "needs --root"),
        (["--dataset", "folder", "--root", "/nonexistent/clips"], "folder not found"),
        (["--model", "no_such_model", "--dataset", "folder", "--root", "{root}"], "unknown model 'no_such_model'"),
        (["--model", "basicvsr_m", "--dataset", "folder", "--root", "{root}"], "needs --checkpoint"),
        (["--model", "bicubic", "--checkpoint", "x.pth", "--dataset", "folder", "--root", "{root}"], "takes no --checkpoint"),
        (["--crop-border", "-1", "--dataset", "folder", "--root", "{root}"], "--crop-border"),
    ],
)
def test_cli_errors_are_clean(argv, message, clip_root, capsys):
    argv = [a.replace("{root}", str(clip_root)) for a in argv]
    code, out, err = _run_cli(["eval", *argv, "--no-progress"], capsys)
    assert code == 2
    assert message in err and "Traceback" not in err


def test_cli_sample_dataset(capsys):
    sample = pytest.importorskip("mgvsr.data.sample", reason="the embedded sample clips are not in this version")
    code, out, err = _run_cli(["eval", "--dataset", "sample", "--json", "--no-progress"], capsys)
    assert code == 0, err
    got = json.loads(out)
    want = evaluate_bicubic(sample.sample_source(split="test"), progress=False).to_dict()
    assert got["channel"] == "y" and list(got["clips"]) == list(want["clips"])
    assert got["mean"] == pytest.approx(want["mean"], rel=1e-12)


@pytest.mark.slow
def test_cli_trained_model_checkpoint(clip_root, tmp_path, capsys):
    """A checkpoint in BasicSR's format ({'params': state_dict}) is loaded and evaluated."""
    from mgvsr.models import build_model

    model = build_model("basicvsr_m")
    path = tmp_path / "net.pth"
    torch.save({"params": model.state_dict()}, path)
    argv = ["eval", "--model", "basicvsr_m", "--checkpoint", str(path), "--dataset", "folder",
            "--root", str(clip_root), "--clips", "a_clip", "--device", "cpu", "--json", "--no-progress"]
    code, out, err = _run_cli(argv, capsys)
    assert code == 0, err
    got = json.loads(out)
    want = evaluate_model(model, FolderSource(clip_root, clips=["a_clip"]), device="cpu", progress=False)
    assert got["model"] == "basicvsr_m"
    assert got["clips"]["a_clip"]["psnr"] == pytest.approx(want.clips["a_clip"].psnr, rel=1e-6)


# -- Vid4: the published bicubic numbers ---------------------------------------------------------
def _assert_published(clips: dict, names) -> None:
    for name in names:
        psnr, ssim = VID4_BICUBIC[name]
        assert round(clips[name]["psnr"], 2) == psnr, name
        assert round(clips[name]["ssim"], 4) == ssim, name


@pytest.mark.slow
def test_vid4_bicubic_reproduces_the_published_numbers(vid4_root):
    result = evaluate_bicubic(FolderSource.vid4(vid4_root), channel="y", progress=False)
    d = result.to_dict()
    assert [d["clips"][c]["frames"] for c in VID4_BICUBIC] == [41, 34, 49, 47]
    _assert_published(d["clips"], VID4_BICUBIC)
    assert (round(d["mean"]["psnr"], 2), round(d["mean"]["ssim"], 4)) == VID4_BICUBIC_MEAN


@pytest.mark.slow
def test_vid4_bicubic_through_the_cli(vid4_root, capsys):
    # Two clips keep the test short; walk's SSIM (0.797439) sits closest to a rounding edge.
    argv = ["eval", "--model", "bicubic", "--dataset", "vid4", "--root", str(vid4_root),
            "--clips", "city", "walk", "--json", "--no-progress"]
    code, out, _ = _run_cli(argv, capsys)
    assert code == 0
    got = json.loads(out)
    assert got["dataset"] == "vid4" and got["channel"] == "y" and list(got["clips"]) == ["city", "walk"]
    _assert_published(got["clips"], ["city", "walk"])
    assert got["mean"]["psnr"] == pytest.approx((got["clips"]["city"]["psnr"] + got["clips"]["walk"]["psnr"]) / 2)
