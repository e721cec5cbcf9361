"""mgvsr.tutorial.explore (what the explorers compute) against hand values; mgvsr.tutorial.widgets driven like a reader would."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from mgvsr.errors import PlanError
from mgvsr.presets import get_preset
from mgvsr.tutorial.explore import (
    INTENDED,
    ONE_COSINE,
    PRINTED,
    SGDR,
    compute_shares,
    eq1_facts,
    eq1_facts_text,
    eq1_plan,
    eq1_rows,
    eq1_table_text,
    expected_speedup,
    lr_curves,
    parse_sizes,
    plot_eq1,
    preset_speedups,
    preset_speedups_text,
    same_samples_baseline,
    schedule_summary,
    stage_costs,
    stage_table_html,
    summary_text,
)
from mgvsr.schedule import baseline, eq1_as_printed, multigrid
from mgvsr.tutorial.widgets import eq1_view, schedule_view

ETA = 8e-4
ETA_MIN = 1e-7


def paper_plan(iterations: int = 60):
    """BasicVSR-M's 6 stages 32&7 .. 64&15, batch 4."""
    return multigrid(iterations, 64, 15, 4, ETA)


# ---- input ------------------------------------------------------------------------------


def test_parse_sizes():
    assert parse_sizes("32, 64") == (32, 64)
    assert parse_sizes(" 7 11,15 ") == (7, 11, 15)
    assert parse_sizes("64, 32") == (64, 32)  # training order is kept
    for bad in ("", "  ", "32, x", "32, -4", "0", "3.5"):
        with pytest.raises(PlanError, match="spatial"):
            parse_sizes(bad, "spatial sizes")


# ---- cost model ---------------------------------------------------------------------------


def test_pixel_costs_are_plan_work():
    plan = paper_plan()
    costs = stage_costs(plan)
    assert costs == [10 * 4 * t * p * p for p in (32, 64) for t in (7, 11, 15)]
    assert sum(costs) == plan.work


def test_shares_and_speedup_hand_values():
    plan = paper_plan()
    shares = compute_shares(plan)
    assert math.isclose(sum(shares), 1.0)
    # frames x patch^2 per stage over their sum, 33 x 5120 = 168,960
    assert math.isclose(shares[0], 7 * 1024 / 168_960)
    assert math.isclose(shares[-1], 15 * 4096 / 168_960)
    base = baseline(60, 64, 15, 4, ETA)
    # 64&15 against the average stage: 61,440 / (168,960 / 6)
    assert math.isclose(expected_speedup(plan, base), 61_440 * 6 / 168_960)
    assert math.isclose(expected_speedup(base, base), 1.0)


def test_measured_step_times():
    plan = multigrid(30, 64, 15, 4, ETA, cycle="spatial")  # 32&15, 64&15, 15 iterations each
    times = {(32, 15, 4): 1.0, (64, 15, 4): 3.0}
    assert stage_costs(plan, times) == [15.0, 45.0]
    assert compute_shares(plan, times) == [0.25, 0.75]
    base = baseline(30, 64, 15, 4, ETA)
    assert math.isclose(expected_speedup(plan, base, times), 90.0 / 60.0)
    with pytest.raises(PlanError, match=r"32&15, batch 4.*64&15 batch 4"):
        stage_costs(plan, {(64, 15, 4): 3.0})
    with pytest.raises(PlanError, match="positive"):
        stage_costs(plan, {(32, 15, 4): 0.0, (64, 15, 4): 3.0})


def test_same_samples_baseline():
    plan = paper_plan()
    base = same_samples_baseline(plan)
    assert len(base) == 1 and base.stages[0].label == "64&15"
    assert base.samples == plan.samples and base.total_iterations == plan.total_iterations
    assert same_samples_baseline(plan, patch=48).stages[0].label == "48&15"
    mixed = multigrid(60, 64, 15, 4, ETA)
    from dataclasses import replace

    from mgvsr.schedule import Plan

    mixed = Plan((replace(mixed.stages[0], batch=8, start=None, period=None),) + tuple(
        replace(s, start=None, period=None) for s in mixed.stages[1:]))
    with pytest.raises(PlanError, match="differ in batch"):
        same_samples_baseline(mixed)


# ---- schedule explorer functions ------------------------------------------------------------


def test_schedule_summary_reads_the_trainers_plan():
    s = schedule_summary((32, 64), (7, 11, 15), "hierarchical", 75_000, 64, ETA)
    same = multigrid(75_000, 64, 15, 64, ETA)
    assert s["plan"].stages == same.stages
    assert s["baseline"].stages[0].label == "64&15" and s["baseline"].samples == same.samples
    assert math.isclose(s["speedup"], expected_speedup(same, baseline(75_000, 64, 15, 64, ETA)))
    assert s["table"] == s["plan"].table()
    text = summary_text(s)
    assert s["table"] in text and f"{s['speedup']:.2f}x" in text and "64&15 36.4%" in text


def test_schedule_summary_synchronous():
    s = schedule_summary((32, 48, 64), (7, 11, 15), "synchronous", 900, 8, ETA)
    assert [st.label for st in s["plan"]] == ["32&7", "48&11", "64&15"]
    with pytest.raises(PlanError, match="synchronous"):
        schedule_summary((32, 64), (7, 11, 15), "synchronous", 900, 8, ETA)


def test_stage_table_html():
    plan = paper_plan()
    shares = compute_shares(plan)
    text = stage_table_html(plan, shares)
    assert text.count("<tr>") == 7  # header + 6 stages
    for s in plan:
        assert f">{s.label.replace('&', '&amp;')}<" in text
    assert f"{100 * shares[-1]:.1f}%" in text
    assert "1.00e-07" in text  # the last stage decays to eta_min
    assert "%" not in stage_table_html(plan)
    with pytest.raises(PlanError, match="2 shares"):
        stage_table_html(plan, shares[:2])


def test_preset_speedups_against_the_large_batch_run():
    rows = preset_speedups(["table1/basicvsr_m/ours", "table7/spatial-32-64"])
    ours, ref = get_preset("table1/basicvsr_m/ours"), get_preset("table1/basicvsr_m/large-batch")
    assert rows[0]["stages"] == [s.label for s in ours.plan]
    assert math.isclose(rows[0]["expected"], ref.plan.work / ours.plan.work)
    assert math.isclose(rows[0]["paper"], 6.2 / 3.9)
    assert math.isclose(rows[1]["paper"], 4.9 / 3.9)
    text = preset_speedups_text(rows)
    assert "table1/basicvsr_m/ours" in text and f"{rows[0]['expected']:.2f}x" in text


# ---- Eq. 1 -----------------------------------------------------------------------------------


def test_eq1_plan_layouts():
    plan = eq1_plan(6, iterations=600, lr=ETA)
    assert [s.label for s in plan] == ["32&7", "32&11", "32&15", "64&7", "64&11", "64&15"]
    assert [s.period for s in plan] == [600] * 5 + [100]
    assert len(eq1_plan(1, iterations=600)) == 1
    warm = eq1_plan(4, iterations=600, warmup="constant", warmup_iterations=50, warmup_start_factor=0.5)
    assert warm.warmup.kind == "constant" and math.isclose(warm.lr(0), 0.5 * warm.lr(0) / 0.5)
    assert math.isclose(warm.lr(10), 0.5 * (ETA_MIN + (ETA - ETA_MIN) * 0.5 * (1 + math.cos(math.pi * 10 / 600))))
    with pytest.raises(PlanError, match="one of"):
        eq1_plan(5)
    with pytest.raises(PlanError, match="warmup"):
        eq1_plan(6, warmup="cosine")


def test_lr_curves_four_readings():
    plan = eq1_plan(6, iterations=600, lr=ETA)
    its, curves = lr_curves(plan)
    assert set(curves) == {INTENDED, PRINTED, ONE_COSINE, SGDR}
    assert its[0] == 0 and its[-1] == 600 and set(plan.boundaries) <= set(its.tolist())
    np.testing.assert_allclose(curves[INTENDED], plan.lrs(its))
    np.testing.assert_allclose(curves[PRINTED], [eq1_as_printed(plan, int(i)) for i in its])
    np.testing.assert_allclose(curves[ONE_COSINE], baseline(600, 64, 15, 64, ETA).lrs(its))
    # SGDR: every stage's last step is near eta_min; Eq. 1 keeps the LR high before the last stage
    last_steps = np.isin(its, [e - 1 for e in plan.boundaries[1:]])
    assert curves[SGDR][last_steps].max() < 1e-3 * ETA + ETA_MIN
    assert curves[INTENDED][last_steps][:-1].min() > 0.9 * ETA
    # without restarts the large shapes of the last stage start at a much smaller LR
    start_last = its == plan.stages[-1].start
    assert curves[ONE_COSINE][start_last][0] < 0.1 * ETA < curves[INTENDED][start_last][0]


def test_eq1_facts_and_table():
    plan = eq1_plan(6, iterations=600, lr=ETA)
    facts = eq1_facts(plan)
    assert math.isclose(facts["printed_floor"], math.cos(1.0), rel_tol=1e-9)
    assert math.isclose(facts["printed_end"], math.cos(1.0) * ETA)
    assert math.isclose(facts["intended_end"], ETA_MIN)
    # the lowest intended LR before the last stage: the last step (499) of stage 5, 99 steps into a 600 period
    expected = (ETA_MIN + (ETA - ETA_MIN) * 0.5 * (1 + math.cos(math.pi * 99 / 600))) / ETA
    assert math.isclose(facts["intended_before_last"], expected)
    assert eq1_facts(eq1_plan(1, iterations=600))["intended_before_last"] is None

    rows = eq1_rows(plan)
    assert [r["iteration"] for r in rows[:3]] == [0, 50, 99] and rows[-1]["iteration"] == 600
    assert rows[-1]["stage"] == "64&15" and math.isclose(rows[-1]["intended"], ETA_MIN)
    text = eq1_table_text(plan)
    assert len(text.splitlines()) == len(rows) + 1
    assert "   0.540" in text.splitlines()[-1]


def test_plot_eq1():
    plan = eq1_plan(6, iterations=600)
    fig = plot_eq1(plan)
    assert len(fig.axes[0].get_lines()) == 3
    assert len(plot_eq1(plan, curves=(INTENDED, PRINTED, ONE_COSINE, SGDR)).axes[0].get_lines()) == 4
    with pytest.raises(Exception, match="unknown curve"):
        plot_eq1(plan, curves=("nope",))


# ---- the widgets ------------------------------------------------------------------------------


def test_widgets_import_without_torch():
    pytest.importorskip("ipywidgets")
    code = ("import sys, mgvsr.tutorial.widgets as w; w.schedule_explorer(); w.eq1_explorer(); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_schedule_explorer_follows_its_controls():
    pytest.importorskip("ipywidgets")
    from mgvsr.tutorial.widgets import schedule_explorer

    ex = schedule_explorer(iterations=60_000, batch=64)
    first_table, first_png = ex.table.value, ex.figure.value
    assert first_png[:8] == b"\x89PNG\r\n\x1a\n"
    assert ">10,000<" in first_table and ">64&amp;15<" in first_table and "Expected speedup: 2.18x" in first_table

    ex.controls["iterations"].value = 30_000
    assert ">5,000<" in ex.table.value and ex.figure.value != first_png

    ex.controls["combine"].value = "synchronous"  # 2 spatial vs 3 temporal sizes: refused, said so
    assert "Cannot build this plan" in ex.table.value and "synchronous" in ex.table.value
    ex.controls["spatial"].value = "32, 48, 64"
    assert ">48&amp;11<" in ex.table.value and ">10,000<" in ex.table.value

    ex.controls["temporal"].value = "7, eleven"
    assert "&#x27;eleven&#x27;" in ex.table.value
    ex.controls["temporal"].value = "15, 15, 15"
    assert "Expected speedup: 1.66x" in ex.table.value  # 64^2 / mean(32^2, 48^2, 64^2), frames fixed


def test_eq1_explorer_follows_its_controls():
    pytest.importorskip("ipywidgets")
    from mgvsr.tutorial.widgets import eq1_explorer

    ex = eq1_explorer(stages=6, warmup="none", iterations=6_000)
    six = ex.table.value
    assert "64&amp;11" in six and "0.540" in six
    ex.controls["stages"].value = 2
    assert "32&amp;15" in ex.table.value and "64&amp;11" not in ex.table.value
    ex.controls["stages"].value = 6
    assert ex.table.value == six
    ex.controls["warmup"].value = "constant"  # x0.25 over the first 5,000 steps
    first_row = ex.table.value.split("\n")[5]  # after 3 lines of facts, a blank one and the header
    assert first_row.split()[:3] == ["0", "32&amp;7", "2.000e-04"]
    png = ex.figure.value
    ex.controls["sgdr"].value = True
    assert ex.figure.value != png


# ---- the static views beneath the explorers ------------------------------------------------------


def test_static_views_are_the_explorers_first_state():
    """Notebooks 3 and 4 show schedule_view() and eq1_view() beneath the explorers: what a page without
    a kernel shows must be what the explorer shows first (the same table, the same picture)."""
    pytest.importorskip("ipywidgets")
    from mgvsr.tutorial.widgets import eq1_explorer, eq1_view, figure_png, schedule_explorer, schedule_view

    for explorer, view in ((schedule_explorer(), schedule_view()), (eq1_explorer(), eq1_view())):
        assert explorer.table.value == view.html
        assert explorer.figure.value == figure_png(view.figure)
    ex = eq1_explorer()
    ex.controls["stages"].value = 2
    ex.controls["sgdr"].value = True
    assert ex.figure.value == figure_png(eq1_view(stages=2, sgdr=True).figure)


def test_static_views_text():
    view = schedule_view()
    assert view.text == summary_text(schedule_summary((32, 64), (7, 11, 15), "hierarchical", 75_000, 64, ETA))
    assert len(view.figure.axes) == 3  # patch, frames, learning rate: one unit a panel
    eq1 = eq1_view(warmup="none")
    assert eq1.text == eq1_facts_text(eq1_plan(6)) + "\n\n" + eq1_table_text(eq1_plan(6))
    assert "<pre>" in eq1.html
    with pytest.raises(PlanError, match="spatial"):
        schedule_view(spatial="32, x")
