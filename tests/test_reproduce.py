"""mgvsr.reproduce and `mgvsr reproduce`: which presets a table runs, how the smoke scale shrinks
them (keeping the paper's ratios), reuse of finished and identical runs, the rendered table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mgvsr.cli import main
from mgvsr.errors import MgvsrError
from mgvsr.options import RunOptions
from mgvsr.presets import SCALES, Scale, get_preset, get_scale, list_presets, table_presets, table_runs
from mgvsr.reproduce import reproduce_table, run_one, scaled_spec
from mgvsr.tables import Row, render_table
from mgvsr.runs import same_training

CPU = RunOptions(device="cpu", workers=None)  # workers: the scale's

PAPER_TABLES = ("1", "2", "3", "4", "5", "6", "7", "8", "9")
SAMPLE_LQ = (64, 64)  # LR frames of the sample clips
SAMPLE_FRAMES = 30  # frames of every sample training clip


def test_table_presets_in_the_papers_order():
    assert [p.name for p in table_presets("1")][:5] == [
        "table1/basicvsr_m/baseline", "table1/basicvsr_m/large-batch", "table1/basicvsr_m/multi-s",
        "table1/basicvsr_m/multi-t", "table1/basicvsr_m/ours"]
    assert len(table_presets(1)) == 10
    seven = [p.table for p in table_presets("7")]
    assert seven == ["7a"] * 3 + ["7b"] * 3
    assert [p.name for p in table_presets("7b")] == [p.name for p in list_presets(table="7b")]
    with pytest.raises(MgvsrError, match="unknown table '10'"):
        table_presets("10")


def test_table_runs_add_the_baselines_their_rows_compare_with():
    names = [p.name for p in table_runs("6")]
    assert names[-1] == "table1/basicvsr_m/baseline" and names.count("table1/basicvsr_m/baseline") == 1
    assert [p.name for p in table_runs("4")] == ["table4/no-lr-scaling", "table4/lr-scaling",
                                                 "table1/basicvsr_m/baseline"]
    assert "table3/basicvsr/baseline-b32" in [p.name for p in table_runs("3")]
    assert [p.name for p in table_runs("1")] == [p.name for p in table_presets("1")]  # baselines are rows


def test_paper_scale_runs_presets_as_they_are():
    for name in ("table1/basicvsr_m/ours", "table2/edvr_m/ours"):
        preset = get_preset(name)
        assert preset.at_scale("paper") is preset


def test_ci_scale_of_table1_ours():
    run = get_preset("table1/basicvsr_m/ours").at_scale("smoke")
    assert (run.model, run.dataset) == ("basicvsr_cpu", "sample")
    assert [s.label for s in run.plan.stages] == ["8&7", "8&11", "8&15", "16&7", "16&11", "16&15"]
    assert run.plan.total_iterations == 6 and {s.batch for s in run.plan.stages} == {8}  # 64 / 8
    assert run.plan.stages[0].lr == pytest.approx(8e-3)  # 8e-4 x 10
    base = get_preset("table1/basicvsr_m/baseline").at_scale("smoke")
    assert (base.plan.total_iterations, base.plan.stages[0].batch) == (24, 2)  # 16 / 8
    assert base.plan.stages[0].lr == pytest.approx(2e-3)
    assert base.plan.samples == run.plan.samples  # the linear scaling rule: the same samples
    with pytest.raises(MgvsrError, match="unknown scale 'huge'"):
        get_scale("huge")


@pytest.mark.parametrize("table", PAPER_TABLES)
def test_every_ci_run_fits_the_sample_clips_and_keeps_the_papers_ratios(table):
    for preset in table_runs(table):
        run = preset.at_scale("smoke")
        run.plan.check_fits(max_frames=SAMPLE_FRAMES, min_lq_size=SAMPLE_LQ)
        if run.model.startswith("edvr"):
            run.plan.check_fits(patch_multiple=4)
        paper_lrs = [s.lr for s in preset.plan.stages]
        assert [s.lr for s in run.plan.stages] == pytest.approx([10 * lr for lr in paper_lrs])
        assert [s.frames for s in run.plan.stages] == [s.frames for s in preset.plan.stages]
        assert [s.patch * 4 for s in run.plan.stages] == [s.patch for s in preset.plan.stages]
        if preset.baseline:  # samples against the baseline: the paper's ratio, up to rounding
            base = get_preset(preset.baseline)
            paper_ratio = preset.plan.samples / base.plan.samples
            smoke_ratio = run.plan.samples / base.at_scale("smoke").plan.samples
            assert smoke_ratio == pytest.approx(paper_ratio, rel=0.15), preset.name


def test_identical_training_has_one_spec():
    a = scaled_spec(get_preset("table4/lr-scaling"), "smoke", CPU)
    assert same_training(a, scaled_spec(get_preset("table1/basicvsr_m/large-batch"), "smoke", CPU))
    assert same_training(a, scaled_spec(get_preset("table5/linear-warmup"), "smoke", CPU))
    assert not same_training(a, scaled_spec(get_preset("table5/no-warmup"), "smoke", CPU))
    assert not same_training(a, scaled_spec(get_preset("table4/no-lr-scaling"), "smoke", CPU))
    assert a["preset"] == "table4/lr-scaling"  # a label: names do not make two trainings differ
    assert a["micro_batch"] == 2  # on a CPU: micro-batches of the baseline's minibatch (16 / 8)
    json.dumps(a)  # written as spec.json


def test_a_folder_holding_another_run_is_refused(tmp_path: Path):
    preset = get_preset("table4/lr-scaling")
    folder = tmp_path / "table4" / "lr-scaling"
    folder.mkdir(parents=True)
    other = scaled_spec(get_preset("table5/no-warmup"), "smoke", CPU)
    (folder / "spec.json").write_text(json.dumps(other))
    with pytest.raises(MgvsrError, match="holds a run of table5/no-warmup, not of table4/lr-scaling .differs in plan"):
        run_one(preset, "smoke", tmp_path, CPU)


def test_paper_scale_needs_a_root(tmp_path: Path):
    with pytest.raises(MgvsrError, match="trains on reds: give its root"):
        reproduce_table("1", "paper", tmp_path, CPU)


def _row(**kw) -> Row:
    base = dict(preset="table4/lr-scaling", table="4", row="w lr scaling", description="", paper={"psnr": 30.93},
                psnr=24.2, ssim=0.61, compute_seconds=3.2, train_seconds=3.3, iterations=6, stages=["16&15"],
                batch=4, speedup=None, status="trained", folder="x", baseline="table1/basicvsr_m/baseline",
                scale="smoke", comparable=False)
    base.update(kw)
    return Row(**base)


def test_render_table_puts_ours_beside_the_paper():
    text = render_table([_row(), _row(preset="table4/no-lr-scaling", row="w/o lr scaling", paper={"psnr": 30.64},
                                      psnr=None, ssim=None, compute_seconds=None, status="missing")])
    lines = text.splitlines()
    assert "| w lr scaling | table4/lr-scaling | 16&15 | 4 | - | - | - | 24.20 | 30.93 | 0.6100 | - |" in text
    assert any(line.startswith("| w/o lr scaling |") and "| - | 30.64 |" in line for line in lines)
    assert "NOT comparable" in text and "Not run yet: table4/no-lr-scaling." in text
    paper = render_table([_row(scale="paper", comparable=True, speedup=3.9, paper={"psnr": 30.93, "speedup": 3.9})])
    assert "NOT comparable" not in paper and "| 3.90x | 3.9x |" in paper
    with pytest.raises(MgvsrError):
        render_table([])


def test_render_table_reads_speedups_on_the_right_axis():
    """A single-device reproduction of Table 1 row ②: the paper's 3.9x is wall-clock on 16 V100s against
    its baseline's 4, i.e. ~1x in device-time; ours ran both on one device.  --spynet none is marked."""
    setup = {"world_size": 1, "device_name": "NVIDIA H100 80GB HBM3", "precision": "bf16",
             "per_device_batch": [64], "micro_batch": [16], "micro_batches": [4]}
    base = _row(preset="table1/basicvsr_m/baseline", table="1", row="①", baseline=None, batch=16, speedup=None,
                paper={"psnr": 30.91}, compute_seconds=400.0, device_seconds=400.0, scale="paper", comparable=True,
                setup={**setup, "per_device_batch": [16], "micro_batch": [16]}, paper_devices={"gpus": 4, "kind": "V100"})
    large = _row(preset="table1/basicvsr_m/large-batch", table="1", row="②", baseline="table1/basicvsr_m/baseline",
                 batch=64, speedup=1.1, speedup_device=1.1, paper={"psnr": 30.93, "speedup": 3.9},
                 compute_seconds=363.6, device_seconds=363.6, scale="paper", comparable=True, setup=setup,
                 paper_devices={"gpus": 16, "kind": "V100"}, baseline_paper_devices={"gpus": 4, "kind": "V100"},
                 paper_speedup_device=3.9 * 4 / 16, spynet="none")
    text = render_table([base, large])
    assert ("| ② † | table1/basicvsr_m/large-batch | 16&15 | 64 | 1 | 64 (4 x 16) | bf16 | 24.20 | 30.93 | 0.6100 | - "
            "| - | - | - | 1.10x | 3.9x | 1.10x | 0.97x | 16 V100 |") in text
    assert "| ① | table1/basicvsr_m/baseline | 16&15 | 16 | 1 | 16 | bf16 |" in text
    assert "Devices: NVIDIA H100 80GB HBM3." in text
    assert "device counts differ from the paper's for ② (ours 1 against 1, the paper's 16 against 4)" in text
    assert "compare ours with the paper's on the device-time axis" in text
    assert "† ②: trained with --spynet none" in text


# A scale smaller than smoke, for tests: 4 iterations of 75k, batch 1, 8x8 LR patches.
TINY = Scale("tiny", "tests", models=SCALES["smoke"].models, dataset="sample", iterations_div=20_000,
             batch_div=64, patch_div=8, lr_mult=10.0, micro_batch_on_cpu=True, comparable=False)


@pytest.mark.slow
def test_reproduce_trains_once_and_reuses(tmp_path: Path):
    logs: list[str] = []
    rows = reproduce_table("4", TINY, tmp_path, CPU.replace(progress=False, log=logs.append))
    assert [r.preset for r in rows] == ["table4/no-lr-scaling", "table4/lr-scaling", "table1/basicvsr_m/baseline"]
    assert [r.status for r in rows] == ["trained", "trained", "trained"]
    for r in rows:
        assert r.psnr is not None and 10 < r.psnr < 50 and r.compute_seconds > 0
        assert (Path(r.folder) / "final.pth").is_file() and (Path(r.folder) / "spec.json").is_file()
        assert r.stages == ["8&15"] and r.seeds == [r.psnr]
        assert r.devices == 1 and r.setup["precision"] == "fp32" and r.setup["per_device_batch"] == [r.batch]
        assert r.device_seconds == r.compute_seconds and r.spynet is None  # basicvsr_cpu: its own flow
    log_file = Path(rows[0].folder) / "log.jsonl"
    before = log_file.read_text()

    again = reproduce_table("4", TINY, tmp_path, CPU.replace(progress=False, log=logs.append))
    assert [r.status for r in again] == ["finished", "finished", "finished"]
    for r in rows[:2]:  # each row against the baseline: calibrated (one pass), its FLOP bound, a verdict
        assert r.speedup_calibrated > 0 and r.speedup_flops > 0 and "vs bicubic" in r.verdict
    assert [r.psnr for r in again] == [r.psnr for r in rows]
    assert log_file.read_text() == before  # nothing retrained

    five = reproduce_table("5", TINY, tmp_path, CPU.replace(log=logs.append), train=False)
    assert [r.status for r in five] == ["missing", "missing", "reused", "finished"]  # linear warmup = Table 4's
    assert five[2].folder == rows[1].folder and five[2].psnr == rows[1].psnr
    assert any("the same training as table4/lr-scaling" in line for line in logs)


def test_cli_without_training_renders_an_empty_table(tmp_path: Path, capsys):
    assert main(["reproduce", "--table", "4", "--scale", "smoke", "--out", str(tmp_path), "--no-train",
                 "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "Not run yet: table4/no-lr-scaling, table4/lr-scaling, table1/basicvsr_m/baseline." in out
    assert "NOT comparable" in out
    written = tmp_path / "table4-smoke.md"
    assert written.is_file() and "| w lr scaling | table4/lr-scaling | 16&15 | 8 |" in written.read_text()
    assert json.loads((tmp_path / "table4-smoke.json").read_text())[0]["status"] == "missing"
    assert not (tmp_path / "table4").exists()  # nothing trained, nothing written for the runs


def test_cli_error_is_clean(tmp_path: Path, capsys):
    assert main(["reproduce", "--table", "1", "--scale", "paper", "--out", str(tmp_path)]) == 2
    assert "give its root" in capsys.readouterr().err
