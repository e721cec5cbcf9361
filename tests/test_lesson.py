"""The lesson scale (the notebooks' default), the notebooks' setup check, and the verdicts a
reproduced table gives against the measured run-to-run noise."""

from __future__ import annotations

import pytest

from mgvsr import reproduce
from mgvsr.errors import MgvsrError
from mgvsr.presets import SCALES, get_preset, get_scale
from mgvsr.reproduce import Row, TableRun, add_verdicts, baseline_noise, verdict
from mgvsr.schedule import shrink
from mgvsr.tutorial import series


def test_the_three_scales_and_the_old_name():
    assert list(SCALES) == ["smoke", "lesson", "paper"]
    with pytest.raises(MgvsrError, match="unknown scale 'ci'; expected one of smoke, lesson, paper"):
        get_scale("ci")


def test_lesson_table1_basicvsr_m_baseline_is_the_demo_baseline():
    """Table 1's BasicVSR-M baseline at lesson scale trains exactly what the README's demo baseline trains."""
    lesson = get_preset("table1/basicvsr_m/baseline").at_scale("lesson")
    demo = get_preset("demo/basicvsr/baseline")
    assert lesson.model == demo.model == "basicvsr_cpu" and lesson.dataset == demo.dataset == "sample"
    assert [s.to_dict() for s in lesson.plan.stages] == [s.to_dict() for s in demo.plan.stages]
    assert lesson.flow_frozen_iters == demo.flow_frozen_iters == 10


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
    assert series.reproduce_dir("lesson", None) == series.REPRODUCE_OUT
    assert series.reproduce_dir("smoke", str(tmp_path / "nb")) == tmp_path / "runs" / "reproduce-smoke"


def _row(name, psnr, seconds, baseline=None):
    return Row(preset=name, table="1", row=None, description="", paper={}, psnr=psnr, ssim=None,
               compute_seconds=seconds, train_seconds=seconds, iterations=1, stages=[], batch=1,
               speedup=None, status="finished", folder="", baseline=baseline, scale="lesson", comparable=False)


def _trained(psnr, seconds):
    return TableRun(get_preset("table1/basicvsr_m/baseline"), None, {"psnr": psnr, "compute_seconds": seconds}, "finished")


def test_noise_and_verdicts_against_it():
    noise = baseline_noise([_trained(25.60, 100.0), _trained(25.55, 110.0)])
    assert noise["seeds"] == 2 and noise["psnr_spread"] == pytest.approx(0.05)
    assert noise["time_spread"] == pytest.approx(0.10)
    assert baseline_noise([_trained(25.6, 100.0), TableRun(None, None, None, "missing")]) is None

    base = _row("b", 25.60, 100.0)
    fast_same = _row("f", 25.57, 40.0, "b")
    fast_same.speedup = 2.5
    assert verdict(fast_same, base, noise, 24.91) == "2.50x faster; PSNR -0.03 dB: within the noise (±0.05); +0.66 dB vs bicubic"
    slow_worse = _row("s", 25.40, 105.0, "b")
    slow_worse.speedup = 100 / 105
    assert verdict(slow_worse, base, noise, None).startswith("not faster (within the noise); PSNR -0.20 dB: worse beyond")

    rows = add_verdicts([base, fast_same], {"b": [_trained(25.60, 100.0), _trained(25.55, 110.0)]}, 24.91)
    assert rows[0].verdict == "+0.69 dB vs bicubic" and rows[1].noise["psnr_spread"] == pytest.approx(0.05)
    text = reproduce.render_table(rows)
    assert "Noise: b trained with 2 seeds ended 0.05 dB apart" in text and "| verdict (against its baseline" in text


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
