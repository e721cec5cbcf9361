"""Speed measures a shared machine cannot fool (:mod:`mgvsr.costs`): FLOPs per step, one round-robin
calibration pass, the calibrated cost of a run, the time to the baseline's PSNR, and the flags."""

from __future__ import annotations

import pytest

from mgvsr import costs
from mgvsr.costs import Measured, RunCost, StepConfig, calibrate, compare, step_flops, time_to_psnr
from mgvsr.launch import run_preset
from mgvsr.options import RunOptions
from mgvsr.presets import get_preset

SMALL = StepConfig("basicvsr_cpu", 8, 2, 1, 1, "fp32", True)
LARGER = StepConfig("basicvsr_cpu", 16, 3, 2, 1, "fp32", True)


def test_flops_count_the_step_and_grow_with_the_batch():
    one = step_flops(SMALL)
    two = step_flops(StepConfig("basicvsr_cpu", 8, 2, 2, 2, "fp32", False))  # precision, format: same count
    assert one > 0 and two == pytest.approx(2 * one, rel=1e-6)


def test_a_runs_cost_is_its_iterations_times_the_calibrated_steps():
    run = RunCost("r", ((SMALL, 10), (LARGER, 5)))
    calibrated = {SMALL: 0.1, LARGER: 0.4}
    assert run.cost(calibrated) == pytest.approx(10 * 0.1 + 5 * 0.4)
    assert run.cost(calibrated, until=12) == pytest.approx(10 * 0.1 + 2 * 0.4)
    flops = {SMALL: 1e9, LARGER: 4e9}
    assert RunCost("r", run.stages, world=2).flops(flops) == pytest.approx(2 * (10e9 + 20e9))


def test_the_time_to_a_psnr_is_interpolated_between_evaluations():
    evals = [{"it": 10, "psnr": 24.0}, {"it": 20, "psnr": 25.0}, {"it": 30, "psnr": 25.5}]
    assert time_to_psnr(evals, 24.5, lambda it: it * 2.0) == pytest.approx(30.0)  # halfway from 20 s to 40 s
    assert time_to_psnr(evals, 23.0, lambda it: it * 2.0) == 20.0  # the first evaluation already reaches it
    assert time_to_psnr(evals, 26.0, lambda it: it) is None


def measured(name, stages, compute, medians, evals=()):
    return Measured(RunCost(name, stages), list(evals), compute, medians)


def test_stalls_and_speedups_above_the_flop_bound_are_flagged():
    base = measured("baseline", ((LARGER, 10),), 40.0, [4.0], [{"it": 10, "psnr": 25.0}])
    ours = measured("ours", ((SMALL, 10),), 2.0, [0.2], [{"it": 5, "psnr": 24.0}, {"it": 10, "psnr": 25.2}])
    calibrated = {LARGER: 0.5, SMALL: 0.2}  # the baseline's median step (4 s) is 8x its calibrated one
    found = compare(base, ours, calibrated)
    bound = step_flops(LARGER) / step_flops(SMALL)
    assert found["speedup_flops"] == pytest.approx(bound)
    assert found["speedup_calibrated"] == pytest.approx(5.0 / 2.0)
    # the baseline reaches 25.0 at its end (5 s calibrated); ours at 5 + (25.0 - 24.0) / 1.2 * 5 iterations
    assert found["speedup_to_baseline_psnr"] == pytest.approx(5.0 / ((5 + 5 / 1.2) * 0.2))
    assert any("baseline: stage 16&3 ran 8.0x its calibrated step" in f for f in found["flags"])
    # measured 20x, calibrated 2.5x: the baseline's time was not its own
    assert any(f"above its FLOP bound {bound:.2f}x, and more than 15% above its calibrated speedup 2.50x" in f
               and "shared machine" in f for f in found["flags"])
    quiet = compare(measured("baseline", ((LARGER, 10),), 5.0, [0.5]), measured("ours", ((SMALL, 10),), 2.0, [0.2]),
                    calibrated)
    assert quiet["flags"] == [] and quiet["speedup_to_baseline_psnr"] is None


def test_calibration_times_every_configuration():
    found = calibrate([SMALL, LARGER, SMALL], "cpu", repeats=2)
    assert set(found) == {SMALL, LARGER} and all(v > 0 for v in found.values())


@pytest.mark.slow
def test_two_runs_compared_from_their_folders(tmp_path):
    options = RunOptions(device="cpu", progress=False)
    folders = {}
    for name in ("baseline", "ours"):
        preset = get_preset(f"demo/basicvsr/{name}").shrunk(iterations=6 if name == "baseline" else 6, patch_div=2)
        folders[name] = run_preset(preset, tmp_path / name, options).folder
    found = costs.compare_folders(folders["baseline"], {"ours": folders["ours"]}, device="cpu")["ours"]
    assert set(found) == {"speedup_flops", "speedup_calibrated", "speedup_to_baseline_psnr", "flags"}
    assert found["speedup_flops"] > 1 and found["speedup_calibrated"] > 0
    cost = RunCost.read(folders["ours"])
    assert [c.patch for c, _ in cost.stages] == [8, 8, 8, 16, 16, 16] and sum(it for _, it in cost.stages) == 6


def test_a_speedup_above_the_flop_bound_that_the_calibration_explains_is_not_called_a_shared_machine():
    bound = step_flops(LARGER) / step_flops(SMALL)
    calibrated = {LARGER: 0.2 * 1.3 * bound, SMALL: 0.2}  # the run's steps 1.3x more FLOP/s than the baseline's
    base = measured("baseline", ((LARGER, 10),), 2.0 * 1.3 * bound * 1.05, [0.26 * bound])
    ours = measured("ours", ((SMALL, 10),), 2.0, [0.2])
    found = compare(base, ours, calibrated)
    assert found["speedup_calibrated"] == pytest.approx(1.3 * bound)
    (flag,) = found["flags"]  # measured 1.365 x the bound: above it by more than 15%, within 15% of calibrated
    assert f"above its FLOP bound {bound:.2f}x, but within 15% of its calibrated speedup" in flag
    assert "not a sign of a shared machine" in flag
