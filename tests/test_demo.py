"""`mgvsr demo`: the two presets compare what the issue asks, a shrunk demo writes its report
(real training on the sample clips), and running it again reuses the finished runs."""

from __future__ import annotations

import json

import pytest

from mgvsr.cli import main
from mgvsr.demo import demo_presets, demo_report, finished_seeds, format_table
from mgvsr.runs import read_log
from mgvsr.device import BF16_ENV


def test_demo_presets_are_baseline_and_ours_on_the_same_samples():
    presets = demo_presets()
    base, ours = presets["baseline"].plan, presets["ours"].plan
    assert len(base) == 1 and (base.stages[0].patch, base.stages[0].frames) == (32, 8)
    # ours: the hierarchical multigrid ending at the baseline's shape
    assert [s.label for s in ours] == ["16&4", "16&6", "16&8", "32&4", "32&6", "32&8"]
    m = ours.stages[0].batch / base.stages[0].batch
    assert m > 1  # a larger minibatch ...
    assert ours.stages[0].lr == pytest.approx(base.stages[0].lr * m)  # ... with the linear scaling rule
    assert ours.total_iterations * m == base.total_iterations
    assert ours.samples == base.samples
    assert ours.warmup is not None and base.warmup is None
    assert presets["ours"].model == presets["baseline"].model == "basicvsr_cpu"


def test_report_keys_and_speedups():
    def run(wall, compute, psnr, its, batch):
        summary = {"train_seconds": wall, "compute_seconds": compute, "data_seconds": wall - compute,
                   "psnr": psnr, "ssim": 0.7, "samples": its * batch}
        plan = {"total_iterations": its, "stages": [{"patch": 32, "frames": 8, "batch": batch}]}
        return {"preset": "p", "summary": summary, "plan": plan}

    runs = {"baseline": run(100.0, 90.0, 26.0, 20, 4), "ours": run(40.0, 30.0, 25.9, 10, 8)}
    report = demo_report(runs, {"mean": {"psnr": 24.9, "ssim": 0.6}}, "basicvsr")
    assert report["speedup_wall"] == pytest.approx(2.5)
    assert report["speedup_compute"] == pytest.approx(3.0)
    assert report["psnr_gap"] == pytest.approx(-0.1)
    for run_name in ("baseline", "ours"):
        assert {"wall_seconds", "compute_seconds", "psnr", "ssim"} <= set(report[run_name])
    assert report["bicubic"] == {"psnr": 24.9, "ssim": 0.6}
    assert report["fast"] is None
    table = format_table(report)
    assert "| ours | 8 |" in table and "2.50x" in table and "| 24.90 |" in table
    assert "ours + " not in table
    # the fast run: the fields of ours, plus its speedups and PSNR gap against the fp32 baseline
    runs["fast"] = {**run(25.0, 20.0, 25.85, 10, 8), "precision": "bf16"}
    report = demo_report(runs, {"mean": {"psnr": 24.9, "ssim": 0.6}}, "basicvsr")
    assert set(report["ours"]) < set(report["fast"])
    assert report["fast"]["speedup_wall"] == pytest.approx(4.0)
    assert report["fast"]["speedup_compute"] == pytest.approx(4.5)
    assert report["fast"]["psnr_gap"] == pytest.approx(-0.15)
    assert report["speedup_wall"] == pytest.approx(2.5)  # ours' own, unchanged
    table = format_table(report)
    assert "| ours + bf16 | 8 |" in table and "4.00x" in table and "4.50x" in table


@pytest.mark.slow
def test_shrunk_demo_trains_both_runs_writes_the_report_and_reuses_them(tmp_path, capsys, monkeypatch):
    out = tmp_path / "demo"
    # a CPU without native bfloat16 (forced): the demo says so and skips the fast run
    monkeypatch.setenv(BF16_ENV, "0")
    assert main(["demo", "--out", str(out), "--iterations", "12", "--evals", "1", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "| bicubic |" in printed and "speedup" in printed
    assert "[fast] skipped: precision fp32: mixed precision was asked for" in printed
    assert "did not run" in printed and not (out / "fast").exists()
    assert json.loads((out / "report.json").read_text())["fast"] is None
    monkeypatch.setenv(BF16_ENV, "1")
    report = json.loads((out / "report.json").read_text())
    assert finished_seeds(out) == 1 and finished_seeds(out / "nothing-here") == 0
    for name in ("report.md", "psnr_vs_time.png", "plans.png", "baseline/final.pth", "ours/final.pth"):
        assert (out / name).is_file(), name
    # 12 baseline steps of 4 clips, 6 of ours (one per stage) of 8: the same samples
    assert report["baseline"]["samples"] == report["ours"]["samples"] == 12 * 4
    assert (report["baseline"]["iterations"], report["ours"]["iterations"]) == (12, 6)
    assert report["bicubic"]["psnr"] == pytest.approx(24.91, abs=0.01)
    assert report["speedup_wall"] == pytest.approx(report["baseline"]["wall_seconds"] / report["ours"]["wall_seconds"])
    log = (out / "ours" / "log.jsonl").read_text()
    # a second run reads the finished runs instead of training them again; with bfloat16 (forced on)
    # it trains the fast run: ours' preset, samples and initial weights, in bf16
    assert main(["demo", "--out", str(out), "--iterations", "12", "--evals", "1", "--device", "cpu",
                 "--no-progress", "--seeds", "2"]) == 0
    assert (out / "ours" / "log.jsonl").read_text() == log
    again = json.loads((out / "report.json").read_text())
    calibrated = ("speedup_calibrated", "speedup_to_baseline_psnr", "flags")  # a new calibration pass: timed again
    seeded = ("seeds", "psnr_mean", "psnr_sd")  # --seeds 2: each run again with seed 1, in <run>-seed1
    assert {k: v for k, v in again["ours"].items() if k not in calibrated + seeded} == {
        k: v for k, v in report["ours"].items() if k not in calibrated}
    assert {k: v for k, v in again["baseline"].items() if k not in seeded} == report["baseline"]
    for run in ("baseline", "ours"):
        assert again[run]["seeds"][0] == again[run]["psnr"] and len(again[run]["seeds"]) == 2
        assert (out / f"{run}-seed1" / "final.pth").is_file()
    assert again["psnr_verdict"].startswith("PSNR ") and "noise" in again["psnr_verdict"]
    assert finished_seeds(out) == 2  # what a notebook reading this folder shows (mgvsr.tutorial.series.demo)
    for run in ("ours", "fast"):  # the measures a shared machine cannot move, for every compared run
        assert again[run]["speedup_flops"] > 1 and again[run]["speedup_calibrated"] > 0 and "flags" in again[run]
    assert again["ours"]["speedup_flops"] == again["fast"]["speedup_flops"] == report["ours"]["speedup_flops"]
    fast = again["fast"]
    assert fast["precision"] == "bf16" and fast["samples"] == report["ours"]["samples"]
    assert fast["speedup_wall"] == pytest.approx(report["baseline"]["wall_seconds"] / fast["wall_seconds"])
    spec_ours, spec_fast = (json.loads((out / run / "spec.json").read_text()) for run in ("ours", "fast"))
    assert {k for k in spec_ours if spec_ours[k] != spec_fast[k]} == {"amp"}
    first_loss = {run: next(r["loss"] for r in read_log(out / run / "log.jsonl") if r["event"] == "step")
                  for run in ("ours", "fast")}
    assert first_loss["fast"] == pytest.approx(first_loss["ours"], rel=1e-2)  # the same weights and samples
    assert read_log(out / "fast" / "log.jsonl")[0]["precision"] == "bf16"
    assert "| ours + bf16 |" in capsys.readouterr().out


def test_edvr_demo_is_the_spatial_cycle_with_a_quarter_lr_first():
    presets = demo_presets("edvr_m")
    base, ours = presets["baseline"].plan, presets["ours"].plan
    assert presets["ours"].model == "edvr_cpu"
    assert [s.label for s in ours] == ["16&5", "32&5"] and base.stages[0].label == "32&5"
    assert ours.samples == base.samples
    assert ours.stages[0].lr == pytest.approx(ours.stages[1].lr / 4)
    assert presets["ours"].fusion_only_iters > 0


def test_basicvsrpp_demo_is_the_basicvsr_demo_shapes_with_basicvsrpps_recipe():
    presets = demo_presets("basicvsrpp")
    base, ours = presets["baseline"], presets["ours"]
    assert base.model == ours.model == "basicvsrpp_cpu"
    assert base.plan.stages[0].label == "32&8"
    assert [s.label for s in ours.plan] == ["16&4", "16&6", "16&8", "32&4", "32&6", "32&8"]
    assert ours.plan.samples == base.plan.samples
    m = ours.plan.stages[0].batch / base.plan.stages[0].batch
    assert ours.plan.stages[0].lr == pytest.approx(base.plan.stages[0].lr * m)
    assert base.flow_lr_mult == ours.flow_lr_mult == 0.25  # BasicVSR++'s SpyNet multiplier
    assert base.flow_frozen_iters > 0 and ours.flow_frozen_iters > 0


@pytest.mark.slow
def test_the_basicvsrpp_demo_runs(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--model", "basicvsrpp", "--out", str(out), "--iterations", "6", "--evals", "1",
                 "--device", "cpu", "--no-progress", "--no-fast"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["model"] == "basicvsrpp" and report["ours"]["iterations"] == 6
    assert read_log(out / "ours" / "log.jsonl")[0]["model"] == "BasicVSRPlusPlus"


def test_unknown_demo_family_is_refused():
    from mgvsr.errors import MgvsrError

    with pytest.raises(MgvsrError, match="basicvsr, edvr_m, basicvsrpp, got 'vrt'"):
        demo_presets("vrt")


@pytest.mark.slow
def test_a_finished_run_of_another_plan_is_refused_not_reused(tmp_path, capsys):
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--evals", "1", "--device", "cpu", "--no-progress"]
    assert main(args + ["--iterations", "12"]) == 0
    capsys.readouterr()
    assert main(args + ["--iterations", "16"]) != 0
    assert "baseline holds another run of demo/basicvsr/baseline (differs in plan" in capsys.readouterr().err
    assert main(args + ["--iterations", "16", "--fresh"]) == 0
    assert json.loads((out / "report.json").read_text())["baseline"]["iterations"] == 16


@pytest.mark.slow
def test_shrunk_edvr_demo_trains_both_runs(tmp_path):
    out = tmp_path / "edvr"
    assert main(["demo", "--model", "edvr_m", "--out", str(out), "--iterations", "8", "--evals", "1",
                 "--device", "cpu", "--no-progress"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["model"] == "edvr_m"
    assert report["ours"]["stages"] == ["16&5", "32&5"] and report["baseline"]["stages"] == ["32&5"]
    assert report["baseline"]["samples"] == report["ours"]["samples"] == 8 * 4
