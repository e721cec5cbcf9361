"""BasicVSR++'s presets (beyond the paper): the published recipe as MMagic's config states it, ours derived
from it by the paper's rules as the paper derives BasicVSR's (``mgvsr/presets/basicvsrpp.py``), the EMA
variants, their table, their scales, and what ``mgvsr plan`` prints about them."""

from __future__ import annotations

import pytest

from mgvsr.cli import main
from mgvsr.presets import TABLES, get_preset, table_presets, table_runs
from mgvsr.schedule import default_temporal_sizes

BASE, OURS = "basicvsrpp/reds/baseline", "basicvsrpp/reds/ours"


def test_the_baseline_is_mmagics_published_recipe():
    p = get_preset(BASE)
    (stage,) = p.plan.stages
    # basicvsr-pp_c64n7_8xb1-600k_reds4.py: 8 GPUs x 1 clip of 30 frames, GT 256, Adam 1e-4, cosine 600k to 1e-7
    assert (p.model, p.dataset, p.test_dataset) == ("basicvsrpp", "reds", "reds4")
    assert (stage.iterations, stage.patch, stage.frames, stage.batch, stage.lr) == (600_000, 64, 30, 8, 1e-4)
    assert stage.period == 600_000 and p.plan.eta_min == 1e-7 and p.plan.warmup is None
    assert (p.flow_frozen_iters, p.flow_lr_mult) == (5_000, 0.25)  # fix_iter 5000, spynet lr_mult 0.25
    assert p.ema_decay is None  # MMagic's recipe: no EMA (BasicSR's: baseline-ema)
    assert (p.table, p.row, p.baseline, p.paper) == ("basicvsrpp", "baseline", None, None)


def test_ours_is_derived_by_the_papers_rules():
    base, p = get_preset(BASE), get_preset(OURS)
    plan = p.plan
    # x4 minibatch by the linear scaling rule: 8 -> 32, 1e-4 -> 4e-4, 600k -> 150k, the same clips
    assert {s.batch for s in plan} == {32} and [s.lr for s in plan] == [pytest.approx(4e-4)] * 6
    assert plan.total_iterations == 150_000 and plan.samples == base.plan.samples
    # the paper's linear warmup over 5,000 iterations from the baseline's LR
    assert (plan.warmup.kind, plan.warmup.iterations) == ("linear", 5_000)
    assert plan.lr(0) == pytest.approx(1e-4)
    # the spatial cycle max(32, H/2), H and the temporal cycle in equal steps of ceil(T/4), hierarchical
    assert default_temporal_sizes(30) == (14, 22, 30)
    assert [s.label for s in plan] == ["32&14", "32&22", "32&30", "64&14", "64&22", "64&30"]
    assert {s.iterations for s in plan} == {25_000}
    # Eq. 1: restarts at 4e-4; I_total before the last stage, the last decays over its own 25k
    assert [s.period for s in plan.stages] == [150_000] * 5 + [25_000]
    assert plan.lr(25_000) == pytest.approx(4e-4) and plan.lr(150_000) == pytest.approx(1e-7)
    # SpyNet's frozen span divided by m with the iterations: the same 40,000 clips frozen
    assert (p.flow_frozen_iters, p.flow_lr_mult) == (1_250, 0.25)
    assert p.flow_frozen_iters * 32 == base.flow_frozen_iters * 8
    assert (p.table, p.row, p.baseline) == ("basicvsrpp", "ours", BASE)


def test_the_pixel_count_bound_is_the_derivations():
    base, ours = get_preset(BASE).plan, get_preset(OURS).plan
    per_clip = sum(t * s * s for s in (32, 64) for t in (14, 22, 30)) / 6  # the six stages' mean, equal lengths
    assert base.work / ours.work == pytest.approx(30 * 64 * 64 / per_clip)
    assert round(base.work / ours.work, 2) == 2.18


def test_the_ema_variants_follow_basicsr_and_scale_the_decay_with_the_minibatch():
    base, ours = get_preset("basicvsrpp/reds/baseline-ema"), get_preset("basicvsrpp/reds/ours-ema")
    assert base.ema_decay == 0.999  # BasicSR's train_BasicVSRPP_REDS.yml
    assert ours.ema_decay == pytest.approx(0.999 ** 4)  # one step of the 4x minibatch stands for four
    assert ours.baseline == base.name and base.table is None and ours.table is None
    assert base.plan.to_dict() | {"name": ""} == get_preset(BASE).plan.to_dict() | {"name": ""}
    assert [s.label for s in ours.plan] == [s.label for s in get_preset(OURS).plan]


def test_the_table_and_its_scales():
    assert "basicvsrpp" in TABLES
    assert [p.name for p in table_presets("basicvsrpp")] == [BASE, OURS]
    assert [p.name for p in table_runs("basicvsrpp")] == [BASE, OURS]
    for scale in ("smoke", "lesson"):
        assert {get_preset(n).at_scale(scale).model for n in (BASE, OURS)} == {"basicvsrpp_cpu"}
    lesson = get_preset(OURS).at_scale("lesson")
    # frames / 2 rounded up, LR patch / 2: the lesson's shapes are the demo's 16/32 with 7/11/15 frames
    assert [s.label for s in lesson.plan] == ["16&7", "16&11", "16&15", "32&7", "32&11", "32&15"]
    assert get_preset(BASE).at_scale("lesson").plan.stages[0].label == "32&15"
    assert get_preset("basicvsrpp/reds/baseline-ema").at_scale("lesson").ema_decay == pytest.approx(0.999 ** 500)


def test_mgvsr_plan_shows_the_derivation_and_the_expected_speedup(capsys):
    assert main(["plan", OURS, "--no-figure"]) == 0
    out = capsys.readouterr().out
    assert "mgvsr's table basicvsrpp (beyond the paper), row ours" in out
    assert "expected speedup from LR pixel counts (Plan.work): 2.18x in device-time" in out
    assert "on 4x its devices (minibatch x4), up to 8.73x in wall-clock" in out
    assert "SpyNet frozen for 1,250 iterations, then x0.25 LR" in out
    assert "linear warmup over 5,000 iterations from x0.25" in out
    assert main(["plan", BASE, "--no-figure"]) == 0
    assert "expected speedup" not in capsys.readouterr().out  # a baseline has nothing to compare against


def test_the_table_renders_as_mgvsrs_own_before_anything_trains(tmp_path):
    from mgvsr.options import RunOptions
    from mgvsr.reproduce import reproduce_table
    from mgvsr.tables import render_table

    rows = reproduce_table("basicvsrpp", "lesson", tmp_path, RunOptions(device="cpu", workers=0), train=False)
    assert [(r.preset, r.row, r.status) for r in rows] == [(BASE, "baseline", "missing"), (OURS, "ours", "missing")]
    text = render_table(rows)
    assert text.startswith("**mgvsr's table basicvsrpp (beyond the paper) at scale 'lesson'**")
    assert f"Not run yet: {BASE}, {OURS}." in text


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")
def test_the_dry_run_projects_ours(tmp_path, capsys):
    """``mgvsr train --preset basicvsrpp/reds/ours --dry-run`` on a small REDS tree of 30-frame clips (shrunk,
    on the CPU model): it probes the six shapes and projects the run; ``--spynet none`` opts out on purpose."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from test_reds import make_reds_tree

    make_reds_tree(tmp_path / "REDS", clips=("000", "001", "002", "011"), frames=30, size=(64, 64))
    argv = ["train", "--preset", OURS, "--root", str(tmp_path / "REDS"), "--out", str(tmp_path / "run"), "--dry-run",
            "--device", "cpu", "--iterations", "12", "--batch", "4", "--patch-div", "4"]
    assert main(argv) == 2  # basicvsrpp's recipe wants pretrained SpyNet weights
    assert "PROBLEM  SpyNet: basicvsrpp/reds/ours" in capsys.readouterr().out
    assert main(argv + ["--spynet", "none", "--model", "basicvsrpp_cpu"]) == 0
    out = capsys.readouterr().out
    for shape in ("8&14", "8&22", "8&30", "16&14", "16&22", "16&30"):
        assert f"basicvsrpp_cpu {shape}" in out
    assert "basicvsrpp/reds/ours  to train  12" in out and "READY" in out
    assert not (tmp_path / "run").exists()
