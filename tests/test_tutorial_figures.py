"""The tutorial's figures do not mislead: no twin axes, ours and the paper's in separate panels on
the same number of dB, readable row labels, the power of ten out of the stage labels' way; the
windows and diagrams notebooks 1 and 2 draw; the numbers notebooks 2, 4 and 6 print beside them."""

from __future__ import annotations

import json

import ast
from pathlib import Path

import numpy as np
import pytest

from mgvsr.data.datasets import open_dataset
from mgvsr.data.windows import TrainingWindows
from mgvsr.demo import demo_presets
from mgvsr.presets import get_preset, table_presets, table_runs
from mgvsr.tables import Row
from mgvsr.schedule import baseline, multigrid
from mgvsr.tutorial import eq1_restarts, fig2_shapes, samples, series
from mgvsr.tutorial.viz import (
    equal_db_spans,
    plain_label,
    plot_basicvsr_structure,
    plot_restarts,
    plot_scaling_gaps,
    plot_speedup_vs_psnr,
    plot_table_rows,
    plot_training_window,
    plot_window_sizes,
)

PACKAGE = Path(__file__).resolve().parent.parent / "mgvsr"
FIGURE_MODULES = sorted((PACKAGE / "tutorial").glob("*.py")) + [PACKAGE / "figures.py"]


# ---- no twin axes --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", FIGURE_MODULES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_twin_axes(path: Path):
    """Two series on two y axes of one panel invite reading one against the other on scales that
    have nothing in common (notebook 7 drew 2.97x and the paper's 6.2x at the same height): every
    figure of mgvsr.tutorial (and of mgvsr.figures, which the notebooks draw too) has one y axis a panel."""
    calls = [node.func.attr for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
             and node.func.attr in ("twinx", "twiny", "secondary_yaxis", "secondary_xaxis")]
    assert not calls, f"{path.name} calls {', '.join(calls)}: draw a second panel instead"


def test_the_scan_sees_a_twin_axis(tmp_path: Path):
    sample = tmp_path / "bad.py"
    sample.write_text("def f(ax):\n    twin = ax.twinx()\n    return twin\n")
    with pytest.raises(AssertionError, match="twinx"):
        test_no_twin_axes(sample)


# ---- labels, spans, axes --------------------------------------------------------------------------


def test_plain_label_writes_circled_numbers_out():
    assert plain_label("⑪ ours") == "(11) ours"
    assert plain_label("① baseline, ⑩") == "(1) baseline, (10)"
    assert plain_label("no circles") == "no circles"


def test_equal_db_spans():
    from matplotlib.figure import Figure

    a, b = Figure().subplots(1, 2)
    span = equal_db_spans((a, b), [(30.90, 30.93), (24.9, 25.7)], minimum=0.3, margin=0.0)
    assert span == pytest.approx(0.8)
    for ax, mid in ((a, 30.915), (b, 25.3)):
        low, high = ax.get_ylim()
        assert high - low == pytest.approx(0.8) and (low + high) / 2 == pytest.approx(mid)


def _row(name: str, psnr: float | None, speedup: float | None, seeds: list | None = None) -> Row:
    p = get_preset(name)
    return Row(preset=name, table=name[5], row=p.row, description="", paper=p.paper or {}, psnr=psnr, ssim=None,
               compute_seconds=None, train_seconds=None, iterations=1, stages=[], batch=1, speedup=None,
               status="finished", folder="", baseline=p.baseline, scale="lesson", comparable=False,
               bicubic_psnr=24.91, seeds=seeds or ([] if psnr is None else [psnr]), speedup_calibrated=speedup)


def bands(ax) -> int:
    """Filled bands drawn on ``ax`` (noise bands), legend proxies without area left out."""
    from matplotlib.collections import PolyCollection

    return sum(1 for c in ax.collections if isinstance(c, PolyCollection) and any(len(p.vertices) for p in c.get_paths()))


def table1_rows() -> list[Row]:
    psnrs = [25.57, 25.12, 25.24, 25.29, 25.45, 25.56, 25.49, 25.48, 25.72, 25.82]
    speedups = [None, 2.9, 3.5, 3.1, 2.97, None, 1.2, 1.5, 1.4, 1.9]
    # the baselines with three seeds (their noise band: twice the standard deviation, 0.04 dB)
    return [_row(p.name, v, s, [v - 0.02, v, v + 0.02] if s is None else None)
            for p, v, s in zip(table_runs("1"), psnrs, speedups)]


def test_table_rows_ours_and_the_papers_in_separate_panels():
    rows = table1_rows()
    fig = plot_table_rows(rows)
    ours, paper = fig.axes
    assert ours.get_title().startswith("ours") and paper.get_title() == "the paper"
    labels = [t.get_text() for t in ours.get_xticklabels()]
    assert labels[-1] == "(11)" and not any(c in "".join(labels) for c in "①⑪")
    # each panel its own axis, the same number of dB in both
    (low_a, high_a), (low_b, high_b) = ours.get_ylim(), paper.get_ylim()
    assert high_a - low_a == pytest.approx(high_b - low_b)
    assert low_a < 24.91 < high_a and low_b < 30.9 < high_b
    # the baselines' noise bands (one per baseline), the bicubic line
    assert bands(ours) == 2 and bands(paper) == 0
    assert any(line.get_linestyle() == ":" for line in ours.get_lines())
    # speedups: one shared axis from zero (a ratio is a ratio)
    fig = plot_table_rows(rows, value="speedup")
    ours, paper = fig.axes
    assert ours.get_ylim() == paper.get_ylim() and ours.get_ylim()[0] == 0
    heights = [bar.get_height() for bar in paper.patches]
    assert heights[4] == pytest.approx(6.2) and [bar.get_height() for bar in ours.patches][4] == pytest.approx(2.97)


def test_table_rows_read_their_baseline_from_another_table():
    rows = [_row(p.name, v, None) for p, v in zip(table_presets("4") + table_presets("5"), [25.14, 25.12, 24.69, 24.81, 25.12])]
    base = table1_rows()[0]
    without = plot_table_rows(rows).axes[0]
    with_base = plot_table_rows(rows, baselines=[base]).axes[0]
    assert bands(without) == 0 and bands(with_base) == 1  # the baseline's noise band
    assert not any("baseline" in label for label in without.get_legend_handles_labels()[1])  # nothing drawn, nothing named
    assert "the baseline's PSNR" in with_base.get_legend_handles_labels()[1]
    assert with_base.get_ylim()[1] > base.psnr
    with pytest.raises(ValueError, match="psnr"):
        plot_table_rows(rows, value="ssim")


def test_speedup_vs_psnr_same_db_in_both_panels_with_the_noise():
    paper = series.paper_points()
    report = {"baseline": {"psnr": 25.57}, "ours": {"psnr": 25.71}, "speedup_compute": 2.16}
    fig = plot_speedup_vs_psnr(paper, series.demo_points(report), bicubic=24.91, noise=0.04)
    left, right = fig.axes
    assert np.diff(left.get_ylim())[0] == pytest.approx(np.diff(right.get_ylim())[0])
    assert len(right.patches) == 1  # the noise band
    assert not any("⑤" in t for t in left.get_legend_handles_labels()[1])


def test_lr_axes_keep_the_power_of_ten_in_the_label():
    plan = multigrid(300, 32, 8, 8, 4e-3, spatial=(16, 32), temporal=(4, 6, 8))
    results = {"Eq. 1": {"plan": plan, "evals": [{"it": 300, "psnr": 25.0}]}}
    lr_ax = plot_restarts(results).axes[0]
    assert "10^{-3}" in lr_ax.get_ylabel() and lr_ax.yaxis.get_offset_text().get_text() == ""


def test_scaling_gaps_axis_label_is_math():
    from mgvsr.tutorial.eq3_minibatch import ScalingGap

    gaps = {"early": [ScalingGap(2, 4, 0.1, 1.0, 1.1, 0.2, 0.9, 1e-3, 0.05, 0.04, 0.045)]}
    gap_ax = plot_scaling_gaps(gaps).axes[1]
    assert gap_ax.get_ylabel().startswith("$") and "\\Vert" in gap_ax.get_ylabel()


# ---- the data and the model, drawn -----------------------------------------------------------------


def test_training_window_is_the_trainers_sample():
    source = open_dataset("sample")
    lq, gt = samples.training_window(4, 16, index=5, seed=3, source=source)
    want_lq, want_gt = TrainingWindows(source, 4, 16, length=1, seed=3, offset=5)[0]
    assert lq.shape == (4, 16, 16, 3) and gt.shape == (4, 64, 64, 3) and lq.dtype == np.uint8
    assert np.array_equal(lq, want_lq.permute(0, 2, 3, 1).numpy())
    assert np.array_equal(gt, want_gt.permute(0, 2, 3, 1).numpy())


def test_stage_windows_number_samples_across_stages():
    plan = demo_presets()["ours"].plan
    source = open_dataset("sample")
    windows = samples.stage_windows(plan, source=source)
    assert list(windows) == [f"stage {j + 1} ({s.label})" for j, s in enumerate(plan.stages)]
    third = plan.stages[2]
    before = sum(s.samples for s in plan.stages[:2])
    lq, _ = TrainingWindows(source, third.frames, third.patch, length=1, offset=before)[0]
    assert np.array_equal(windows[f"stage 3 ({third.label})"][0], lq.permute(0, 2, 3, 1).numpy())


def test_window_figures():
    lq, gt = samples.training_window(4, 16)
    fig = plot_training_window(lq, gt, title="x")
    assert len(fig.axes) == 8
    small, large = samples.training_window(4, 16)[0], samples.training_window(8, 32)[0]
    ax = plot_window_sizes({"small": small, "large": large}).axes[0]
    widths = sorted({abs(im.get_extent()[1] - im.get_extent()[0]) for im in ax.get_images()})
    assert widths == [16, 32]  # every pixel drawn the same size
    assert len(ax.get_images()) == 12


def test_basicvsr_structure_marks_what_multigrid_changes():
    fig = plot_basicvsr_structure(frames=3)
    texts = " ".join(t.get_text() for t in fig.axes[0].texts)
    for part in ("SpyNet", "backward", "forward", "upsample", "multigrid changes the input only", "same weights"):
        assert part in texts
    assert texts.count("LR frame") == 3


# ---- the numbers beside the figures ------------------------------------------------------------------


def test_timing_comparison():
    from mgvsr.tutorial.fig2_shapes import ShapeCost, ShapeRun

    costs = [ShapeCost(32, 4, 4, 0.136, 1.0, ()), ShapeCost(32, 8, 4, 0.222, 2.0, ()), ShapeCost(16, 8, 4, 0.068, 0.5, ())]
    runs = [ShapeRun(32, 4, 4, 300, 25.38, 0.6, 28.2, 26.0), ShapeRun(32, 8, 4, 300, 25.37, 0.6, 63.4, 60.0),
            ShapeRun(24, 8, 4, 300, 25.3, 0.6, 40.0, 38.0)]
    rows = fig2_shapes.timing_comparison(costs, runs, (32, 8))
    assert [r["shape"] for r in rows] == ["32&4", "32&8"]  # 24&8 was never timed
    assert rows[0]["timed_vs_base"] == pytest.approx(0.136 / 0.222)
    assert rows[0]["run_vs_base"] == pytest.approx(26.0 / 60.0) and rows[0]["run"] == pytest.approx(26.0 / 300)
    assert rows[0]["wall_vs_base"] == pytest.approx(28.2 / 63.4)
    text = fig2_shapes.timing_comparison_text(costs, runs, (32, 8))
    assert "largest disagreement: 32&4" in text and f"{60.0 / 26.0:.2f}x" in text
    with pytest.raises(Exception, match="16&4"):
        fig2_shapes.timing_comparison(costs, runs, (16, 4))


def _fake_run(plan, seconds):
    return {"plan": plan, "evals": [], "summary": {"stage_compute_seconds": seconds, "compute_seconds": sum(seconds),
                                                   "setup": {"micro_batches": [1] * len(plan)}}}


def test_stage_costs_per_clip_against_the_baseline():
    base = baseline(600, 32, 8, 4, 2e-3)
    ours = multigrid(300, 32, 8, 8, 4e-3, spatial=(16, 32), temporal=(4, 8))
    runs = {"baseline": _fake_run(base, [120.0]), "ours": _fake_run(ours, [3.0, 5.0, 10.0, 19.0])}
    rows = series.stage_costs(runs)
    assert [(r["run"], r["stage"]) for r in rows][:2] == [("baseline", "32&8"), ("ours", "16&4")]
    assert rows[0]["pixels"] == 1.0 and rows[0]["seconds"] == pytest.approx(1.0)
    per_clip = 120.0 / 2400
    last = rows[-1]
    assert last["samples"] == 75 * 8 and last["pixels"] == 1.0
    assert last["seconds"] == pytest.approx(19.0 / 600 / per_clip)
    assert rows[1]["pixels"] == pytest.approx(4 * 16**2 / (8 * 32**2))
    text = series.stage_costs_text(runs)
    assert f"{base.work / ours.work:.2f}x by LR pixels, {120 / 37:.2f}x measured" in text


def test_restarts_verdict():
    results = {"Eq. 1 (restarts)": {"evals": [{"it": 300, "psnr": 25.55}]},
               "one cosine": {"evals": [{"it": 300, "psnr": 25.42}]}}
    text = eq1_restarts.restarts_verdict(results, 24.91, 0.04)
    assert "+0.13 dB from one cosine" in text and "3.2 times the noise" in text
    assert "within the noise" in eq1_restarts.restarts_verdict(results, 24.91, 0.2)
    assert "notebook 7" in eq1_restarts.restarts_verdict(results, 24.91)
    assert "at or below bicubic" in eq1_restarts.restarts_verdict(results, 25.5, 0.04)


def test_demo_noise_is_read_from_the_demos_seeds(tmp_path: Path):
    assert series.demo_noise("lesson", tmp_path / "01", tmp_path / "none") is None  # no demo yet
    (tmp_path / "demo").mkdir()
    report = {"baseline": {"psnr": 25.6}, "ours": {"psnr": 25.7}}
    (tmp_path / "demo" / "report.json").write_text(json.dumps(report))
    assert series.demo_noise("lesson", None, tmp_path / "demo") is None  # one seed: noise not measured
    report["baseline"].update(seeds=[25.6, 25.5, 25.7], psnr_mean=25.6, psnr_sd=0.1)
    report["ours"].update(seeds=[25.7, 25.6, 25.8], psnr_mean=25.7, psnr_sd=0.1)
    report["psnr_verdict"] = "PSNR +0.10 dB: within the noise (±0.20)"
    (tmp_path / "demo" / "report.json").write_text(json.dumps(report))
    noise = series.demo_noise("lesson", None, tmp_path / "demo")
    assert noise["band"] == pytest.approx(0.2) and noise["ours"]["seeds"] == [25.7, 25.6, 25.8]
    assert noise["verdict"] == report["psnr_verdict"]
    assert series.report_noise(report) == noise  # the same, from the report a notebook already holds



def test_psnr_against_time_draws_the_noise_band_around_the_reference():
    from mgvsr.figures import plot_psnr_vs_time

    evals = {"baseline": [{"train_seconds": 10, "psnr": 25.0}, {"train_seconds": 20, "psnr": 25.5}],
             "ours": [{"train_seconds": 5, "psnr": 25.2}, {"train_seconds": 9, "psnr": 25.6}]}
    ax = plot_psnr_vs_time(evals, bicubic=24.9, noise=0.04).axes[0]
    (band,) = ax.patches
    low, height = band.get_y(), band.get_height()  # axhspan: a rectangle, data coordinates in y
    assert low == pytest.approx(25.46) and low + height == pytest.approx(25.54)  # around the baseline's last PSNR
    assert "noise: 2 sd of the baseline's seeds (±0.04 dB)" in ax.get_legend_handles_labels()[1]
    assert len(plot_psnr_vs_time(evals).axes[0].patches) == 0
