"""The lesson scale (the notebooks' default), the notebooks' setup check, and the verdicts a
reproduced table gives against the measured run-to-run noise."""

from __future__ import annotations

import pytest

from mgvsr.errors import MgvsrError
from mgvsr.presets import SCALES, get_preset, get_scale
from mgvsr.tables import VERDICT_RULE, Row, add_verdicts, render_table, verdict
from mgvsr.schedule import shrink
from mgvsr.tutorial import series


def test_the_three_scales_and_the_old_name():
    assert list(SCALES) == ["smoke", "lesson", "paper"]
    with pytest.raises(MgvsrError, match="unknown scale 'ci'; expected one of smoke, lesson, paper"):
        get_scale("ci")


def test_lesson_table1_basicvsr_m_baseline_trains_the_demo_baselines_shapes_at_half_its_lr():
    """Table 1's BasicVSR-M baseline at lesson scale: the README demo's model, data, shape, minibatch, length
    and warm start, at half its LR (x 5 of the paper's: the x4-minibatch rows' LR then stays stable)."""
    lesson = get_preset("table1/basicvsr_m/baseline").at_scale("lesson")
    demo = get_preset("demo/basicvsr/baseline")
    assert lesson.model == demo.model == "basicvsr_cpu" and lesson.dataset == demo.dataset == "sample"
    assert [s.label for s in lesson.plan.stages] == [s.label for s in demo.plan.stages] == ["32&8"]
    assert lesson.plan.total_iterations == demo.plan.total_iterations == 600
    assert lesson.plan.stages[0].batch == demo.plan.stages[0].batch == 4
    assert lesson.plan.stages[0].lr == pytest.approx(demo.plan.stages[0].lr / 2) == pytest.approx(1e-3)
    assert lesson.flow_frozen_iters == demo.flow_frozen_iters == 10
    assert get_scale("lesson").noise_seeds == 2  # three seeds of every run


def test_lesson_runs_train_in_mixed_precision_on_a_cpu_and_smoke_runs_in_fp32():
    from mgvsr.options import RunOptions
    from mgvsr.reproduce import run_options

    ours = get_preset("table1/basicvsr_m/ours")
    assert run_options(ours, "lesson", RunOptions(device="cpu")).amp  # bf16 where the CPU has it, else fp32
    assert not run_options(ours, "smoke", RunOptions(device="cpu")).amp
    assert run_options(ours, "smoke", RunOptions(device="cpu", amp=True)).amp  # --amp still asks for it
    assert not get_scale("paper").amp_on_cpu


def test_lesson_ours_keeps_the_papers_ratios():
    base = get_preset("table1/basicvsr_m/baseline").at_scale("lesson").plan
    ours = get_preset("table1/basicvsr_m/ours").at_scale("lesson").plan
    assert [(s.patch, s.frames) for s in ours.stages] == [(16, 4), (16, 6), (16, 8), (32, 4), (32, 6), (32, 8)]
    assert ours.samples == base.samples  # the same clips, 4x the minibatch
    assert ours.stages[0].batch == 4 * base.stages[0].batch and ours.stages[0].lr == 4 * base.stages[0].lr


def test_frames_div_rounds_up_and_leaves_sliding_window_models_alone():
    plan = get_preset("table1/basicvsr_m/multi-t").plan
    assert [s.frames for s in shrink(plan, frames_div=2).stages] == [4, 6, 8]
    edvr = get_preset("table2/edvr_m/baseline").at_scale("lesson")
    assert {s.frames for s in edvr.plan.stages} == {5}  # EDVR's clip length is its architecture's input


def test_edvr_trains_at_its_own_lrs_at_lesson_scale_and_the_recurrent_models_at_x5():
    """EDVR-M's deformable alignment diverged at x 5 (docs/reproducing.md): its family keeps x 1."""
    lesson = get_scale("lesson")
    assert lesson.lr_mult_for("edvr_m") == lesson.lr_mult_for("edvr_cpu") == 1.0
    assert lesson.lr_mult_for("basicvsr_m") == lesson.lr_mult_for("basicvsrpp") == 5.0
    lrs = {name: [s.lr for s in get_preset(f"table2/edvr_m/{name}").at_scale("lesson").plan.stages]
           for name in ("baseline", "large-batch", "ours")}
    assert lrs == {"baseline": [pytest.approx(4e-4)], "large-batch": [pytest.approx(8e-4)],
                   "ours": [pytest.approx(2e-4), pytest.approx(8e-4)]}
    assert get_preset("table1/basicvsr_m/baseline").at_scale("lesson").plan.stages[0].lr == pytest.approx(1e-3)
    assert get_scale("smoke").lr_mult_for("edvr_m") == 10.0  # the smoke scale has no family factors


def test_setup_check_names_the_scale_and_what_is_missing(monkeypatch, capsys, tmp_path):
    monkeypatch.delenv(series.SCALE_ENV, raising=False)
    assert series.check_setup("lesson") == "lesson"
    assert "setup ok, scale 'lesson'" in capsys.readouterr().out
    monkeypatch.setenv(series.SCALE_ENV, "smoke")  # CI: nbval runs the notebooks at smoke
    assert series.check_setup("lesson") == "smoke"
    assert "(from MGVSR_SCALE)" in capsys.readouterr().out
    with pytest.raises(MgvsrError, match="data_root '.*nowhere' is not a folder"):
        series.check_setup("lesson", str(tmp_path / "nowhere"))
    monkeypatch.setenv(series.SCALE_ENV, "huge")
    with pytest.raises(MgvsrError, match="unknown scale 'huge'"):
        series.check_setup("lesson")


def test_lesson_reads_the_readme_demo_and_the_lesson_table_runs(tmp_path):
    assert series.demo_dir("lesson", str(tmp_path / "nb")) == series.DEMO_OUT
    assert series.DEMO_OUT.parts[-2:] == ("runs", "demo")  # `mgvsr demo`'s default --out, run in the checkout
    assert series.demo_dir("lesson", None, tmp_path / "mine") == tmp_path / "mine"
    assert series.demo_dir("smoke", str(tmp_path / "nb")) == tmp_path / "runs" / "demo-smoke"
    # BasicVSR++'s demo (notebook 6, beyond the paper): where the README's `--model basicvsrpp` command writes
    assert series.demo_dir("lesson", None, model="basicvsrpp").parts[-2:] == ("runs", "demo-bvpp")
    assert series.demo_dir("smoke", str(tmp_path / "nb"), model="basicvsrpp") == tmp_path / "runs" / "demo-basicvsrpp-smoke"
    assert series.reproduce_dir("lesson", None) == series.REPRODUCE_OUT
    assert series.reproduce_dir("smoke", str(tmp_path / "nb")) == tmp_path / "runs" / "reproduce-smoke"


def _row(name, seeds, baseline=None, calibrated=None):
    return Row(preset=name, table="1", row=None, description="", paper={}, psnr=seeds[0], ssim=None,
               compute_seconds=100.0, train_seconds=100.0, iterations=1, stages=[], batch=1, speedup=None,
               status="finished", folder="", baseline=baseline, scale="lesson", comparable=False, seeds=list(seeds),
               speedup_calibrated=calibrated)


def test_the_verdict_rule_uses_both_sides_seeds_and_the_calibrated_speedup():
    base = _row("b", [25.60, 25.55, 25.65])  # mean 25.60, sd 0.05
    assert base.psnr_mean == pytest.approx(25.60) and base.psnr_sd == pytest.approx(0.05)
    assert base.noise == {"seeds": 3, "psnrs": [25.60, 25.55, 25.65], "psnr_sd": pytest.approx(0.05),
                          "band": pytest.approx(0.10)}
    same = _row("s", [25.57, 25.52, 25.62], "b", calibrated=2.5)  # -0.03 dB, sd 0.05: pooled 0.05, threshold 0.10
    assert verdict(same, base, 24.91) == ("2.50x faster (calibrated); PSNR -0.03 dB: within the noise (±0.10); "
                                          "+0.66 dB vs bicubic")
    worse = _row("w", [25.40, 25.42, 25.38], "b", calibrated=1.02)  # -0.20 dB beyond 2 x pooled sd 0.0395 = 0.079
    assert verdict(worse, base, None) == "not faster (1.02x calibrated); PSNR -0.20 dB: worse beyond the noise (±0.08)"
    noisy = _row("n", [24.37, 25.34, 24.32], "b", calibrated=0.5)  # the unstable recipe: sd 0.58
    assert verdict(noisy, base, None) == "2.00x slower (calibrated); PSNR -0.92 dB: worse beyond the noise (±0.82)"
    alone = _row("a", [25.0], "b")
    assert verdict(alone, base, None) == "PSNR -0.60 dB (noise not measured)"

    rows = add_verdicts([base, same], 24.91)
    assert rows[0].verdict == "+0.69 dB vs bicubic" and rows[1].bicubic_psnr == 24.91
    text = render_table(rows)
    assert "| verdict |" in text and VERDICT_RULE in text and "25.60 ± 0.05 (3)" in text


def test_setup_check_names_a_missing_widget_front_end_with_its_fix(monkeypatch, capsys):
    """A kernel without JupyterLab's widget front end: the check says so and how to fix it (no traceback)."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "jupyterlab_widgets" else real(name, *a))
    monkeypatch.delenv(series.SCALE_ENV, raising=False)
    assert series.check_setup("lesson") == "lesson"
    out = capsys.readouterr().out
    assert "missing: jupyterlab_widgets (the explorers' widgets will not display): pip install -e \".[notebooks]\"" in out
    assert "setup ok, scale 'lesson'" in out and "widgets available" not in out
