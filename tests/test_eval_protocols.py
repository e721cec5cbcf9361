"""Evaluation protocols (REDS4 RGB, Vimeo-90K centre frame with flip averaging) and exact bounded-memory inference."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from mgvsr.cli import main
from mgvsr.data.datasets import PartialDatasetWarning, open_dataset
from mgvsr.data.io import list_frames, read_frame
from mgvsr.data.reds import RedsSource
from mgvsr.data.resize import bicubic_upscale
from mgvsr.evaluate import (
    PROTOCOLS,
    evaluate_bicubic,
    evaluate_model,
    protocol_for,
    recurrent_outputs,
    super_resolve_clip,
)
from mgvsr.errors import MgvsrError
from mgvsr.metrics import score_clip
from mgvsr.models import build_model
from mgvsr.paths import shared_data_dir
from test_reds import make_reds_tree, smooth_frames


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PartialDatasetWarning)
        return fn(*args, **kwargs)


def _run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def _model(seed: int = 0) -> torch.nn.Module:
    """A small BasicVSR (16 features, 2 blocks) whose random SpyNet gives non-zero flows: warps matter."""
    torch.manual_seed(seed)
    model = build_model("basicvsr_cpu", spynet_zero_init=False).eval()
    assert not model.spynet.outputs_zero_flow()
    return model


def _lq_clip(t: int = 11, h: int = 32, w: int = 48) -> np.ndarray:
    """Real REDS-sized LR frames cropped small when the shared data is there, else structured synthetic ones."""
    shared = shared_data_dir()
    if shared is not None and (shared / "reds_demo_lr").is_dir():
        paths = list_frames(shared / "reds_demo_lr")[:t]
        return np.stack([read_frame(p)[60 : 60 + h, 100 : 100 + w] for p in paths])
    return smooth_frames(t, h, w, seed=5)


def _to_input(lq: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(lq).permute(0, 3, 1, 2).float().div(255)[None]


def _to_uint8(y: torch.Tensor) -> np.ndarray:  # (n, 3, H, W) -> (n, H, W, 3)
    return y.clamp(0, 1).mul(255).round().byte().permute(0, 2, 3, 1).numpy()


# -- the protocols ---------------------------------------------------------------------------------------
def test_protocols_of_the_benchmarks():
    assert protocol_for("reds4").channel == "rgb" and not protocol_for("reds4").center_frame_only
    assert protocol_for("reds_val").channel == "rgb"
    assert protocol_for("vid4") == PROTOCOLS["vid4"] and protocol_for("vid4").channel == "y"
    vimeo = protocol_for("vimeo90k")
    assert (vimeo.channel, vimeo.crop_border, vimeo.center_frame_only, vimeo.flip_seq) == ("y", 0, True, True)
    assert protocol_for("my-clips").channel == "y"  # folders and samples: Y on every frame


# -- bounded memory: segments give the whole-clip result -----------------------------------------------------
def test_segments_equal_the_whole_clip_exactly():
    model = _model()
    lq = _lq_clip(t=9)
    x = _to_input(lq)
    with torch.inference_mode():
        flows = model.compute_flows(x)[0]
        assert flows.abs().max() > 0.01  # the warps are not identities
        whole = model(x)[0]
        for segment in (1, 2, 4, 9, None):
            pieces = list(recurrent_outputs(model, x, segment))
            starts = [s for s, _ in pieces]
            assert starts == (list(range(0, 9, segment)) if segment and segment < 9 else [0])
            split = torch.cat([p for _, p in pieces])
            # Same operations on the same inputs: equal to the bit on CPU (on GPUs, convolution
            # algorithms may differ with the batch size: equal to float rounding).
            assert torch.equal(split, whole), segment
    np.testing.assert_array_equal(super_resolve_clip(model, lq, segment=4), _to_uint8(whole))


def test_flip_seq_averages_the_two_outputs_of_each_frame_before_rounding():
    """BasicSR's VideoRecurrentModel.test with flip_seq and center_frame_only, written out."""
    model = _model(1)
    lq = _lq_clip(t=7, h=32, w=32)
    x = _to_input(lq)
    with torch.inference_mode():
        out = model(torch.cat([x, x.flip(1)], 1))[0]  # 14 frames
        averaged = 0.5 * (out[:7] + out[7:].flip(0))
    expected = _to_uint8(averaged)
    np.testing.assert_array_equal(super_resolve_clip(model, lq, flip_seq=True), expected)
    for segment in (None, 3):
        centre = super_resolve_clip(model, lq, frames=[3], flip_seq=True, segment=segment)
        np.testing.assert_array_equal(centre, expected[[3]])
    with torch.inference_mode():
        plain = model(x)[0]
    np.testing.assert_array_equal(super_resolve_clip(model, lq, frames=[6, 0]), _to_uint8(plain[[6, 0]]))


def test_bad_frames_are_refused_for_recurrent_and_sliding_window_models():
    lq = _lq_clip(t=5, h=16, w=16)
    with pytest.raises(ValueError, match=r"distinct indices in 0..4"):
        super_resolve_clip(_model(), lq, frames=[5])
    with pytest.raises(ValueError, match=r"distinct indices in 0..4"):  # EDVR: tests/test_eval_sliding.py
        super_resolve_clip(build_model("edvr_m"), lq, frames=[1, 1])


# -- Vimeo-90K: the centre frame ---------------------------------------------------------------------------
def test_vimeo_bicubic_scores_the_centre_frame_only(vimeo_root):
    source = _quiet(open_dataset, "vimeo90k", vimeo_root, split="test", store=False)
    source = type(source)(vimeo_root, sequences=["00002/0002", "00002/0007"])  # two septuplets keep it short
    result = evaluate_bicubic(source, progress=False)
    assert result.channel == "y" and result.center_frame_only
    for clip in ("00002/0002", "00002/0007"):
        lq = source.read_lq(clip, range(7))
        im4 = read_frame(vimeo_root / "sequences" / clip / "im4.png")
        expected = score_clip(bicubic_upscale(lq[[3]]), im4[None], "y")
        assert result.clips[clip].frames == 1
        assert result.clips[clip].psnr == pytest.approx(expected.psnr, rel=1e-12)
        assert result.clips[clip].ssim == pytest.approx(expected.ssim, rel=1e-12)


@pytest.mark.slow
def test_vimeo_model_through_the_cli_with_an_inferred_architecture(vimeo_root, tmp_path, capsys):
    model = _model(2)
    path = tmp_path / "net.pth"
    torch.save({"params": model.state_dict()}, path)
    argv = ["eval", "--checkpoint", str(path), "--dataset", "vimeo90k", "--root", str(vimeo_root),
            "--clips", "00002/0006", "--device", "cpu", "--json", "--no-progress"]
    code, out, err = _run_cli(argv, capsys)
    assert code == 0, err
    got = json.loads(out)
    assert got["model"] == "basicvsr_cpu" and got["center_frame_only"] and got["flip_seq"] and got["channel"] == "y"
    lq = _quiet(open_dataset, "vimeo90k", vimeo_root, split="test", store=False).read_lq("00002/0006", range(7))
    with torch.inference_mode():
        x = _to_input(lq)
        out14 = model(torch.cat([x, x.flip(1)], 1))[0]
    sr = _to_uint8((0.5 * (out14[3] + out14[10]))[None])
    expected = score_clip(sr, read_frame(vimeo_root / "sequences/00002/0006/im4.png")[None], "y")
    assert got["clips"]["00002/0006"]["psnr"] == pytest.approx(expected.psnr, rel=1e-9)
    assert "partial Vimeo-90K" in err


# -- REDS4: RGB, whole clips ------------------------------------------------------------------------------
@pytest.fixture()
def reds_root(tmp_path: Path) -> Path:
    root = tmp_path / "REDS"
    make_reds_tree(root, clips=("000", "005", "011"), frames=6)
    return root


def test_reds4_through_the_cli_is_scored_on_rgb_and_the_same_from_the_store(reds_root, capsys):
    code, out, err = _run_cli(["eval", "--dataset", "reds4", "--root", str(reds_root), "--json", "--no-progress"], capsys)
    assert code == 0, err
    got = json.loads(out)
    assert got["dataset"] == "reds4" and got["channel"] == "rgb" and list(got["clips"]) == ["000", "011"]
    want = evaluate_bicubic(_quiet(RedsSource, reds_root, clips=["000", "011"]), channel="rgb", progress=False)
    assert got["mean"] == pytest.approx(want.mean, rel=1e-12)
    assert "015, 020 missing" in err  # a partial tree is said

    assert _run_cli(["prepare", "reds", "--root", str(reds_root), "--no-progress"], capsys)[0] == 0
    code, out, err = _run_cli(["eval", "--dataset", "reds4", "--root", str(reds_root), "--json", "--no-progress"], capsys)
    assert code == 0, err
    assert json.loads(out)["clips"] == got["clips"]
    assert "frame store" in err


def test_segmented_and_whole_clip_evaluation_agree_through_the_cli(reds_root, tmp_path, capsys):
    model = _model(3)
    path = tmp_path / "net.pth"
    torch.save({"params": model.state_dict()}, path)
    results = []
    for segment in ("0", "2"):
        argv = ["eval", "--checkpoint", str(path), "--dataset", "reds4", "--root", str(reds_root),
                "--segment", segment, "--device", "cpu", "--json", "--frames", "--no-progress"]
        code, out, err = _run_cli(argv, capsys)
        assert code == 0, err
        results.append(json.loads(out)["clips"])
    assert results[0] == results[1]
    direct = evaluate_model(model, _quiet(open_dataset, "reds4", reds_root, split="test"), device="cpu", progress=False)
    assert direct.channel == "rgb"
    assert direct.clips["011"].psnr == pytest.approx(results[0]["011"]["psnr"], rel=1e-12)


def test_architecture_inferred_from_weights():
    from mgvsr.models import infer_config as infer_model

    assert infer_model(build_model("basicvsr_m").state_dict()) == ("basicvsr_m", {})
    odd = build_model("basicvsr", num_feat=8, num_block=1, hr_feat=8).state_dict()
    assert infer_model(odd) == ("basicvsr", {"num_feat": 8, "num_block": 1, "hr_feat": 8, "spynet_width": 1.0})
    assert infer_model(build_model("basicvsr_cpu").state_dict()) == ("basicvsr_cpu", {})
    assert infer_model(build_model("basicvsr_cpu", spynet_zero_init=False).state_dict()) == ("basicvsr_cpu", {})
    assert infer_model(build_model("edvr_m").state_dict()) == ("edvr_m", {})
    assert infer_model(build_model("edvr_m_wotsa").state_dict()) == ("edvr_m_wotsa", {})
    assert infer_model(build_model("edvr_cpu").state_dict()) == ("edvr_cpu", {})
    with pytest.raises(MgvsrError, match="cannot tell the architecture"):
        infer_model({"conv.weight": torch.zeros(1)})
