"""mgvsr.schedule: Eq. 1 against hand-computed values, warmup, stage splitting, validation."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from mgvsr.errors import PlanError
from mgvsr.schedule import (
    Plan,
    Stage,
    Warmup,
    baseline,
    default_spatial_sizes,
    default_temporal_sizes,
    eq1_as_printed,
    goyal_warmup,
    linear_scaling,
    multigrid,
    scale_batch,
    split_evenly,
)

ETA = 1e-3
ETA_MIN = 1e-7


def six_stage_plan(warmup: Warmup | None = None) -> Plan:
    """I_total = 60, six stages of 10: 32&7 32&11 32&15 64&7 64&11 64&15, eta 1e-3."""
    return multigrid(60, 64, 15, 4, ETA, eta_min=ETA_MIN, warmup=warmup)


def eq1(t: float, period: float, eta: float = ETA) -> float:
    """Eq. 1 (docs/paper-reading.md's reading) written out once more, for the hand checks below."""
    return ETA_MIN + (eta - ETA_MIN) * 0.5 * (1 + math.cos(math.pi * t / period))


def test_import_without_torch():
    code = "import sys, mgvsr.schedule, mgvsr.presets; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_six_stage_plan_shape():
    plan = six_stage_plan()
    assert [s.label for s in plan] == ["32&7", "32&11", "32&15", "64&7", "64&11", "64&15"]
    assert [s.iterations for s in plan] == [10] * 6
    assert plan.starts == (0, 10, 20, 30, 40, 50)
    assert plan.boundaries == (0, 10, 20, 30, 40, 50, 60)
    assert plan.total_iterations == 60
    # D_j = I_total = 60 for j < p, D_p = P_p = 10
    assert [s.period for s in plan] == [60, 60, 60, 60, 60, 10]
    assert plan.samples == 60 * 4


def test_eq1_hand_values():
    plan = six_stage_plan()
    # it = 0: cos(0) = 1, so lr = eta_min + (eta - eta_min) = eta = 1e-3
    assert plan.lr(0) == pytest.approx(1e-3, rel=1e-12)
    # it = 5, mid stage 1: pi * 5 / 60 = 15 degrees; cos 15deg = (sqrt6 + sqrt2) / 4 = 0.9659258...
    # lr = 1e-7 + (1e-3 - 1e-7) * 0.5 * (1 + 0.9659258) = 1e-7 + 9.999e-4 * 0.9829629 = 9.8296462e-4
    cos15 = (math.sqrt(6) + math.sqrt(2)) / 4
    assert plan.lr(5) == pytest.approx(1e-7 + 9.999e-4 * 0.5 * (1 + cos15), rel=1e-12)
    assert plan.lr(5) == pytest.approx(9.8296462e-4, rel=1e-7)
    # it = 19, last iteration of stage 2 (start 10): t = 9, 9 * 3 deg = 27 deg, cos 27deg = 0.8910065
    # lr = 1e-7 + 9.999e-4 * 0.5 * 1.8910065 = 1e-7 + 9.4540871e-4 = 9.4550871e-4 (D = I_total)
    assert plan.lr(19) == pytest.approx(1e-7 + 9.999e-4 * 0.5 * (1 + math.cos(math.radians(27))), rel=1e-12)
    assert plan.lr(19) == pytest.approx(9.4550871e-4, rel=1e-7)
    # it = 20, first iteration of stage 3: restart at eta
    assert plan.lr(20) == pytest.approx(1e-3, rel=1e-12)
    # it = 55, middle of the last stage (start 50, D = 10): cos(pi/2) = 0 -> (eta + eta_min) / 2 = 5.0005e-4
    assert plan.lr(55) == pytest.approx(5.0005e-4, rel=1e-12)
    # it = 59, final iteration: cos(162deg) = -cos(18deg) = -sqrt(10 + 2 sqrt5) / 4 = -0.9510565
    # lr = 1e-7 + 9.999e-4 * 0.5 * 0.0489435 = 1e-7 + 2.446929e-5 = 2.456929e-5 (2.5% of eta)
    cos162 = -math.sqrt(10 + 2 * math.sqrt(5)) / 4
    assert plan.lr(59) == pytest.approx(1e-7 + 9.999e-4 * 0.5 * (1 + cos162), rel=1e-12)
    assert plan.lr(59) == pytest.approx(2.456929e-5, rel=1e-6)
    # it = 60 (the end): cos(pi) = -1 -> eta_min exactly
    assert plan.lr(60) == pytest.approx(ETA_MIN, rel=1e-12)


def test_every_stage_restarts_and_never_decays_before_last():
    plan = six_stage_plan()
    for stage in plan.stages:
        assert plan.lr(stage.start) == pytest.approx(ETA, rel=1e-12)
    # before the last stage the LR stays above eta * 0.5 * (1 + cos(pi * 10/60)) = 0.933 eta
    floor = ETA * 0.5 * (1 + math.cos(math.pi / 6))
    assert min(plan.lr(it) for it in range(50)) >= floor * 0.999


def test_linear_warmup_hand_values():
    # linear warmup over 20 iterations from x0.25: w(it) = 0.25 + 0.75 * it / 20
    plan = six_stage_plan(Warmup("linear", 20, 0.25))
    plain = six_stage_plan()
    assert plan.lr(0) == pytest.approx(0.25 * 1e-3, rel=1e-12)  # w = 0.25, Eq. 1 = eta
    assert plan.lr(5) == pytest.approx(0.4375 * plain.lr(5), rel=1e-12)  # w = 0.25 + 0.75 * 5/20
    assert plan.lr(10) == pytest.approx(0.625 * 1e-3, rel=1e-12)  # restart of stage 2, w = 0.625
    assert plan.lr(19) == pytest.approx(0.9625 * eq1(9, 60), rel=1e-12)  # w = 0.25 + 0.75 * 19/20
    assert plan.lr(20) == pytest.approx(1e-3, rel=1e-12)  # warmup over, stage 3 restarts
    assert plan.lr(55) == plain.lr(55)


def test_constant_warmup_hand_values():
    plan = six_stage_plan(Warmup("constant", 20, 0.25))
    assert plan.lr(0) == pytest.approx(0.25e-3, rel=1e-12)
    assert plan.lr(10) == pytest.approx(0.25e-3, rel=1e-12)
    assert plan.lr(19) == pytest.approx(0.25 * eq1(9, 60), rel=1e-12)
    assert plan.lr(20) == pytest.approx(1e-3, rel=1e-12)


def test_goyal_warmup_starts_at_the_unscaled_lr():
    w = goyal_warmup(4)
    assert (w.kind, w.iterations, w.start_factor) == ("linear", 5000, 0.25)
    plan = baseline(75_000, 64, 15, 64, 8e-4, warmup=w)
    assert plan.lr(0) == pytest.approx(2e-4, rel=1e-12)  # the baseline's LR
    # it = 2500: w = 0.25 + 0.75 * 0.5 = 0.625; cosine factor 0.5 * (1 + cos(pi * 2500/75000))
    expected = 0.625 * (ETA_MIN + (8e-4 - ETA_MIN) * 0.5 * (1 + math.cos(math.pi / 30)))
    assert plan.lr(2500) == pytest.approx(expected, rel=1e-12)


def test_uneven_stage_lengths():
    assert split_evenly(10, 3) == [4, 3, 3]
    assert split_evenly(62, 6) == [11, 11, 10, 10, 10, 10]
    plan = multigrid(62, 64, 15, 4, ETA, eta_min=ETA_MIN)
    assert [s.iterations for s in plan] == [11, 11, 10, 10, 10, 10]
    assert plan.starts == (0, 11, 22, 32, 42, 52)
    assert [s.period for s in plan] == [62] * 5 + [10]
    # it = 21, the last of stage 2 (start 11): t = 10 of D = 62
    assert plan.lr(21) == pytest.approx(eq1(10, 62), rel=1e-12)
    assert plan.lr(22) == pytest.approx(ETA, rel=1e-12)
    assert plan.lr(62) == pytest.approx(ETA_MIN, rel=1e-12)


def test_at_uses_stage_edges():
    plan = six_stage_plan()
    assert plan.at(0) == (0, plan.stages[0])
    index, stage = plan.at(9)
    assert (index, stage.label) == (0, "32&7")
    assert plan.at(10).index == 1
    assert plan.at(59).stage.label == "64&15"
    assert plan.at(60).index == 5  # the end point belongs to the last stage
    assert plan.at(np.int64(30)).stage.label == "64&7"


def test_lrs_matches_lr():
    plan = multigrid(75_000, 64, 15, 64, 8e-4, warmup=goyal_warmup(4))
    its = np.arange(0, 75_001, 7)
    assert np.allclose(plan.lrs(its), [plan.lr(int(i)) for i in its], rtol=1e-12, atol=0)
    const = baseline(1000, 64, 15, 64, 8e-4, warmup=goyal_warmup(4, 100, "constant"))
    its = np.arange(0, 1001)
    assert np.allclose(const.lrs(its), [const.lr(int(i)) for i in its], rtol=1e-12, atol=0)


def test_baseline_single_cosine_and_restarts():
    plan = baseline(300_000, 64, 15, 16, 2e-4)
    assert len(plan) == 1 and plan.stages[0].period == 300_000
    assert plan.lr(150_000) == pytest.approx((2e-4 + ETA_MIN) / 2, rel=1e-12)
    restarts = baseline(600_000, 64, 5, 32, 4e-4, periods=[50_000, 100_000, 150_000, 150_000, 150_000])
    assert restarts.starts == (0, 50_000, 150_000, 300_000, 450_000)
    assert [s.period for s in restarts] == [50_000, 100_000, 150_000, 150_000, 150_000]
    assert restarts.lr(50_000) == pytest.approx(4e-4, rel=1e-12)
    assert restarts.lr(25_000) == pytest.approx((4e-4 + ETA_MIN) / 2, rel=1e-12)
    assert restarts.lr(600_000) == pytest.approx(ETA_MIN, rel=1e-12)


def test_default_sizes_reproduce_the_paper():
    assert default_spatial_sizes(64) == (32, 64)
    assert default_temporal_sizes(15) == (7, 11, 15)  # REDS
    assert default_temporal_sizes(14) == (6, 10, 14)  # Vimeo-90K (mirrored to 14 frames)
    assert default_temporal_sizes(10) == (6, 7, 10)
    assert default_temporal_sizes(5) == (5,)
    assert default_spatial_sizes(32) == (32,)
    assert default_spatial_sizes(32, min_patch=16) == (16, 32)


def test_multigrid_cycles_and_combinations():
    both = multigrid(600, 64, 15, 4, ETA)
    assert [s.label for s in both] == ["32&7", "32&11", "32&15", "64&7", "64&11", "64&15"]
    assert [s.label for s in multigrid(600, 64, 15, 4, ETA, cycle="spatial")] == ["32&15", "64&15"]
    assert [s.label for s in multigrid(600, 64, 15, 4, ETA, cycle="temporal")] == ["64&7", "64&11", "64&15"]
    sync = multigrid(600, 64, 15, 4, ETA, combine="synchronous", spatial=(32, 48, 64), temporal=(7, 11, 15))
    assert [s.label for s in sync] == ["32&7", "48&11", "64&15"]
    extra = multigrid(75_000, 64, 15, 64, 8e-4, extra_stages=[(72, 17, 20_000)])
    assert extra.total_iterations == 95_000
    assert extra.stages[-1].label == "72&17" and extra.stages[-1].iterations == 20_000
    assert [s.period for s in extra] == [95_000] * 6 + [20_000]
    edvr = multigrid(300_000, 64, 5, 64, 8e-4, cycle="spatial", stage_lrs=[2e-4, None])
    assert [(s.label, s.lr) for s in edvr] == [("32&5", 2e-4), ("64&5", 8e-4)]


def test_linear_scaling_rule():
    assert linear_scaling(300_000, 2e-4, 16, 64) == (75_000, pytest.approx(8e-4), 4.0)
    assert linear_scaling(300_000, 2e-4, 16, 48)[:2] == (100_000, pytest.approx(6e-4))
    small = multigrid(300_000, 64, 15, 16, 2e-4)
    large = scale_batch(small, 4, warmup=goyal_warmup(4))
    assert large == multigrid(75_000, 64, 15, 64, 8e-4, warmup=goyal_warmup(4))
    assert large.samples == small.samples == 300_000 * 16
    restarts = scale_batch(baseline(600_000, 64, 5, 32, 4e-4, periods=[50_000, 100_000, 150_000, 150_000, 150_000]), 2)
    assert [s.period for s in restarts] == [25_000, 50_000, 75_000, 75_000, 75_000]


def test_plan_dict_round_trip():
    plan = multigrid(95_000 - 20_000, 64, 15, 64, 8e-4, warmup=goyal_warmup(4), extra_stages=[(72, 17, 20_000)],
                     name="x", description="y")
    assert Plan.from_dict(plan.to_dict()) == plan
    data = plan.to_dict()
    data["total_iterations"] = 1
    with pytest.raises(PlanError, match="total_iterations=1"):
        Plan.from_dict(data)


def test_eq1_as_printed_never_decays():
    plan = six_stage_plan()
    assert eq1_as_printed(plan, 0) == pytest.approx(ETA)
    assert eq1_as_printed(plan, 5) == pytest.approx(math.cos(5 / 60) * ETA, rel=1e-12)
    # last stage: cos((59 - 50) / 10) * eta = cos(0.9) * eta = 0.6216 eta, nowhere near eta_min
    assert eq1_as_printed(plan, 59) == pytest.approx(math.cos(0.9) * ETA, rel=1e-12)
    values = eq1_as_printed(plan, np.arange(61))
    assert values.shape == (61,) and values.min() >= math.cos(1) * ETA * 0.999999


def test_table_lists_every_stage():
    text = multigrid(75_000, 64, 15, 64, 8e-4, warmup=goyal_warmup(4)).table()
    lines = text.splitlines()
    assert len(lines) == 1 + 6 + 1
    assert "32 (128)" in lines[1] and "64 (256)" in lines[6] and "12,500" in lines[6]
    assert "linear warmup over 5,000" in lines[-1]


@pytest.mark.parametrize(
    "make, needle",
    [
        (lambda: Stage(0, 64, 15, 16, 2e-4), "got 0"),
        (lambda: Stage(10, -32, 15, 16, 2e-4), "got -32"),
        (lambda: Stage(10, 64, 15, 0, 2e-4), "batch"),
        (lambda: Stage(10, 64, 15, 16, 0.0), "lr must be a positive number, got 0.0"),
        (lambda: Stage(10, 64, 15, 16, -1e-4), "got -0.0001"),
        (lambda: Stage(10, 64, 1, 16, 2e-4), "frames must be at least 2"),
        (lambda: Stage(10, 64, 15, 16, 2e-4, period=5), "period 5 is shorter"),
        (lambda: Stage(10.5, 64, 15, 16, 2e-4), "got 10.5"),
        (lambda: Plan(()), "at least one stage"),
        (lambda: baseline(100, 64, 15, 16, 2e-4, warmup=Warmup("linear", 100, 0.25)), "warmup of 100 iterations"),
        (lambda: baseline(100, 64, 15, 16, 2e-4, eta_min=2e-4), "not above eta_min"),
        (lambda: Warmup("cosine", 10, 0.5), "'cosine'"),
        (lambda: Warmup("linear", 10, 1.5), "got 1.5"),
        (lambda: multigrid(5, 64, 15, 16, 2e-4), "5 iterations cannot be split into 6 stages"),
        (lambda: multigrid(600, 64, 15, 16, 2e-4, combine="synchronous", spatial=(32, 64), temporal=(7, 11, 15)),
         "spatial [32, 64] and temporal [7, 11, 15]"),
        (lambda: multigrid(600, 64, 15, 16, 2e-4, combine="zigzag"), "'zigzag'"),
        (lambda: multigrid(600, 64, 15, 16, 2e-4, cycle="spatial", temporal=(7, 15)), "[7, 15]"),
        (lambda: multigrid(600, 64, 15, 16, 2e-4, stage_lrs=[1e-4]), "stage_lrs has 1 entries"),
        (lambda: multigrid(600, 64, 15, 16, 2e-4, spatial=(32, 0)), "got 0"),
        (lambda: baseline(100, 64, 15, 16, 2e-4, periods=[50, 40]), "add up to 90"),
        (lambda: scale_batch(baseline(100, 64, 15, 3, 2e-4), 1.5), "4.5"),
        (lambda: scale_batch(baseline(3, 64, 15, 16, 2e-4), 8), "vanishes"),
        (lambda: goyal_warmup(1), "m > 1"),
        (lambda: Plan((Stage(10, 64, 15, 4, 1e-3, start=3),)), "starts at iteration 3"),
    ],
)
def test_impossible_plans_are_refused(make, needle):
    with pytest.raises(PlanError) as info:
        make()
    assert needle in str(info.value)


def test_iterations_outside_the_plan_are_refused():
    plan = six_stage_plan()
    for it in (-1, 61):
        with pytest.raises(PlanError, match=f"iteration {it} is outside this plan's 0..60"):
            plan.lr(it)
    with pytest.raises(PlanError, match="integer"):
        plan.at(1.5)
    with pytest.raises(PlanError, match="0..60"):
        plan.lrs([0, 70])


def test_check_fits_names_stage_and_value():
    plan = multigrid(600, 64, 15, 16, 2e-4, name="mg")
    plan.check_fits(max_frames=100, min_lq_size=(180, 320), model_min_patch=32, patch_multiple=4)
    with pytest.raises(PlanError) as info:
        plan.check_fits(max_frames=14)
    message = str(info.value)
    assert "stage 3 (32&15) needs 15 frames, but the shortest clip has 14" in message
    assert "stage 6 (64&15)" in message and "stage 5" not in message
    with pytest.raises(PlanError, match=r"stage 4 \(64&7\): LR patch 64 is larger than the smallest LQ frame \(48x60\)"):
        plan.check_fits(min_lq_size=(48, 60))
    with pytest.raises(PlanError, match=r"stage 1 \(32&7\): LR patch 32 is smaller than the model takes \(64\)"):
        plan.check_fits(model_min_patch=64)
    with pytest.raises(PlanError, match=r"7 frames, but the model takes exactly 5"):
        plan.check_fits(model_frames=5)
    with pytest.raises(PlanError, match=r"LR patch 32 is not a multiple of 64"):
        plan.check_fits(patch_multiple=64)


# ---- shrink: quick-run versions of a plan ----------------------------------------------


def test_shrink_keeps_stage_shares_lrs_and_eq1_periods():
    from mgvsr.presets import get_preset
    from mgvsr.schedule import shrink

    plan = get_preset("table1/basicvsr_m/ours").plan  # 6 x 12,500 iterations, batch 64, 8e-4
    small = shrink(plan, iterations=60, batch=4)
    assert small.total_iterations == 60
    assert [s.iterations for s in small.stages] == [10] * 6
    assert [s.batch for s in small.stages] == [4] * 6
    assert [s.lr for s in small.stages] == [s.lr for s in plan.stages]
    assert [s.label for s in small.stages] == [s.label for s in plan.stages]
    # Eq. 1: I_total for stages 1..p-1, the stage's own length for the last
    assert [s.period for s in small.stages] == [60] * 5 + [10]
    assert small.lr(60) == pytest.approx(small.eta_min)
    # the warmup keeps its share: 5,000 / 75,000 of 60 iterations = 4
    assert small.warmup.iterations == 4 and small.warmup.start_factor == plan.warmup.start_factor


def test_shrink_refuses_a_run_too_short_for_its_stages():
    from mgvsr.presets import get_preset
    from mgvsr.schedule import shrink

    with pytest.raises(PlanError, match="vanishes when the plan is shrunk to 3 iterations"):
        shrink(get_preset("table1/basicvsr_m/ours").plan, iterations=3)


def test_shrink_divides_patches_and_refuses_uneven_division():
    from mgvsr.presets import get_preset
    from mgvsr.schedule import shrink

    plan = get_preset("table1/basicvsr_m/ours").plan
    assert [s.patch for s in shrink(plan, patch_div=4).stages] == [8, 8, 8, 16, 16, 16]
    with pytest.raises(PlanError, match="LR patch 32 is not divisible by patch_div 3"):
        shrink(plan, patch_div=3)
