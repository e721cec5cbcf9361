"""What reproduced: each claim decided from rows (:mod:`mgvsr.claims`), and the command that prints it."""

from __future__ import annotations

from pathlib import Path

from mgvsr.claims import CONTRADICTED, NOT_SHOWN, REPRODUCED, faster_at_equal_psnr, psnr_order, render_claims, what_reproduced
from mgvsr.cli import main
from mgvsr.tables import Row


def row(name, seeds, baseline=None, calibrated=None):
    return Row(preset=name, table="1", row=None, description="", paper={"psnr": 30.9, "speedup": 6.2}, psnr=seeds[0],
               ssim=None, compute_seconds=1.0, train_seconds=1.0, iterations=1, stages=[], batch=1, speedup=None,
               status="finished", folder="", baseline=baseline, scale="lesson", comparable=False, seeds=list(seeds),
               speedup_calibrated=calibrated)


def test_faster_at_equal_psnr_decides_on_the_calibrated_speed_and_both_sides_noise():
    base = row("b", [25.60, 25.55, 25.65])
    rows = {"b": base, "fast": row("fast", [25.58, 25.53, 25.63], "b", 2.2),
            "fast-worse": row("fast-worse", [25.20, 25.25, 25.22], "b", 2.2),
            "slow": row("slow", [25.60, 25.60, 25.61], "b", 0.9), "alone": row("alone", [25.6], "b", 2.0)}
    found = {n: faster_at_equal_psnr("c", "p", rows, n, "b", "b") for n in rows if n != "b"}
    assert found["fast"].verdict == REPRODUCED and "2.20x the speed of b" in found["fast"].ours
    assert found["fast-worse"].verdict == CONTRADICTED and found["fast-worse"].why.startswith("the PSNR is worse")
    assert found["slow"].verdict == CONTRADICTED and "not faster" in found["slow"].why
    assert found["alone"].verdict == NOT_SHOWN and "noise not measured" in found["alone"].why
    assert faster_at_equal_psnr("c", "p", rows, "missing", "b", "b").why == "not run: missing"
    # a cycle against the large-batch run: the speed relative to it (both against the same baseline)
    rows["large"] = row("large", [25.6, 25.55, 25.62], "b", 1.0)
    assert "2.20x the speed of large" in faster_at_equal_psnr("c", "p", rows, "fast", "large", "b").ours


def test_a_better_claim_inside_the_noise_is_not_shown():
    rows = {"a": row("a", [25.62, 25.57, 25.67]), "b": row("b", [25.60, 25.55, 25.65]),
            "c": row("c", [25.90, 25.92, 25.88])}
    assert psnr_order("x", "p", rows, [("a", "b")], "better").verdict == NOT_SHOWN
    assert psnr_order("x", "p", rows, [("c", "b")], "better").verdict == REPRODUCED
    assert psnr_order("x", "p", rows, [("b", "c")], "same").verdict == CONTRADICTED
    assert psnr_order("x", "p", rows, [("a", "b")], "same").verdict == REPRODUCED


def test_every_claim_is_listed_and_missing_runs_are_named():
    claims = what_reproduced({})
    assert len(claims) == 17 and all(c.verdict == NOT_SHOWN for c in claims)
    assert all(c.why.startswith("not run") or "sample clips" not in c.why for c in claims)
    text = render_claims(claims, "lesson")
    assert "**What reproduced at scale 'lesson'**" in text and "0 reproduced, 17 not shown at this scale" in text
    vimeo = next(c for c in what_reproduced({}, comparable_datasets=False) if "Vimeo-90K" in c.claim)
    assert "sample clips, not on Vimeo-90K" in vimeo.why


def test_the_summary_command_writes_the_page(tmp_path: Path, capsys):
    assert main(["reproduce", "--summary", "--scale", "smoke", "--out", str(tmp_path), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "What reproduced at scale 'smoke'" in out and "17 not shown at this scale" in out
    assert (tmp_path / "what-reproduced-smoke.md").is_file()
    assert main(["reproduce", "--out", str(tmp_path)]) == 2
