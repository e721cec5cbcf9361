"""mgvsr.presets: every preset of Tables 1-9 against the paper's facts."""

from __future__ import annotations

import math

import pytest

from mgvsr.errors import MgvsrError
from mgvsr.presets import PRESETS, Preset, UnknownPresetError, get_preset, list_presets
from mgvsr.schedule import baseline, goyal_warmup, multigrid, scale_batch

HIER6 = ["32&7", "32&11", "32&15", "64&7", "64&11", "64&15"]

# name -> (total iterations, batch, the largest stage LR, stage labels in order).  From the paper
# (Tables 1-9, Sec. 4.1) and docs/paper-reading.md ("The paper's recipe"), written out by hand.
EXPECTED = {
    "table1/basicvsr_m/baseline": (300_000, 16, 2e-4, ["64&15"]),
    "table1/basicvsr_m/large-batch": (75_000, 64, 8e-4, ["64&15"]),
    "table1/basicvsr_m/multi-s": (75_000, 64, 8e-4, ["32&15", "64&15"]),
    "table1/basicvsr_m/multi-t": (75_000, 64, 8e-4, ["64&7", "64&11", "64&15"]),
    "table1/basicvsr_m/ours": (75_000, 64, 8e-4, HIER6),
    "table1/basicvsr/baseline": (300_000, 32, 2e-4, ["64&15"]),
    "table1/basicvsr/large-batch": (150_000, 64, 4e-4, ["64&15"]),
    "table1/basicvsr/multi-s": (150_000, 64, 4e-4, ["32&15", "64&15"]),
    "table1/basicvsr/multi-t": (150_000, 64, 4e-4, ["64&7", "64&11", "64&15"]),
    "table1/basicvsr/ours": (150_000, 64, 4e-4, HIER6),
    "table2/edvr_m/baseline": (600_000, 32, 4e-4, ["64&5"]),
    "table2/edvr_m/large-batch": (300_000, 64, 8e-4, ["64&5"]),
    "table2/edvr_m/ours": (300_000, 64, 8e-4, ["32&5", "64&5"]),
    "table2/edvr_m/baseline-restarts": (600_000, 32, 4e-4, ["64&5"] * 5),
    "table3/basicvsr/baseline": (300_000, 8, 2e-4, ["64&14"]),
    "table3/basicvsr/baseline-b32": (300_000, 32, 2e-4, ["64&14"]),
    "table3/basicvsr/ours": (150_000, 64, 4e-4, ["32&6", "32&10", "32&14", "64&6", "64&10", "64&14"]),
    "table3/edvr_m/baseline": (600_000, 32, 4e-4, ["64&5"]),
    "table3/edvr_m/ours": (300_000, 64, 8e-4, ["32&5", "64&5"]),
    "table4/no-lr-scaling": (75_000, 64, 2e-4, ["64&15"]),
    "table4/lr-scaling": (75_000, 64, 8e-4, ["64&15"]),
    "table5/no-warmup": (75_000, 64, 8e-4, ["64&15"]),
    "table5/constant-warmup": (75_000, 64, 8e-4, ["64&15"]),
    "table5/linear-warmup": (75_000, 64, 8e-4, ["64&15"]),
    "table6/batch-32": (150_000, 32, 4e-4, ["64&15"]),
    "table6/batch-48": (100_000, 48, 6e-4, ["64&15"]),
    "table6/batch-64": (75_000, 64, 8e-4, ["64&15"]),
    "table7/spatial-32-64": (75_000, 64, 8e-4, ["32&15", "64&15"]),
    "table7/spatial-32-48-64": (75_000, 64, 8e-4, ["32&15", "48&15", "64&15"]),
    "table7/spatial-32-40-48-64": (75_000, 64, 8e-4, ["32&15", "40&15", "48&15", "64&15"]),
    "table7/temporal-7-15": (75_000, 64, 8e-4, ["64&7", "64&15"]),
    "table7/temporal-7-11-15": (75_000, 64, 8e-4, ["64&7", "64&11", "64&15"]),
    "table7/temporal-7-9-11-15": (75_000, 64, 8e-4, ["64&7", "64&9", "64&11", "64&15"]),
    "table8/synchronous-2": (75_000, 64, 8e-4, ["32&7", "64&15"]),
    "table8/synchronous-3": (75_000, 64, 8e-4, ["32&7", "48&11", "64&15"]),
    "table8/hierarchical-4": (75_000, 64, 8e-4, ["32&7", "32&15", "64&7", "64&15"]),
    "table8/hierarchical-6": (75_000, 64, 8e-4, HIER6),
    "table9/baseline": (300_000, 16, 2e-4, ["64&15"]),
    "table9/ours": (75_000, 64, 8e-4, HIER6),
    "table9/extra-72-17": (95_000, 64, 8e-4, HIER6 + ["72&17"]),
    # two claims outside the tables: Eq. 1's restarts against one cosine, Fig. 2's small shapes
    "eq1/one-cosine": (75_000, 64, 8e-4, HIER6),
    "fig2/half-patch": (300_000, 16, 2e-4, ["32&15"]),
    "fig2/half-frames": (300_000, 16, 2e-4, ["64&7"]),
}
# presets whose stages are not equal parts of one run: BasicSR's restart periods, Table 9's extra stage
UNEQUAL = {"table2/edvr_m/baseline-restarts": None, "table9/extra-72-17": 6}
# presets that see more samples than their baseline (Table 9's extra 20k iterations x 64)
MORE_SAMPLES = {"table9/extra-72-17"}
PAPER_PRESETS = [n for n in EXPECTED if not n.endswith(("baseline-restarts", "baseline-b32"))
                 and not n.startswith(("eq1/", "fig2/"))]  # rows of the paper's tables, with its numbers

# the paper's presets and mgvsr's beyond it (BasicVSR++, tests/test_basicvsrpp_presets.py), all paper-scale
paper_presets = [p for p in PRESETS.values() if not p.name.startswith("demo/")]


def test_every_paper_preset_is_defined():
    assert set(EXPECTED) <= set(PRESETS)
    assert sorted(p.name for p in paper_presets if not p.name.startswith("basicvsrpp/")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_shapes_iterations_batch_lr(name):
    total, batch, lr, labels = EXPECTED[name]
    plan = get_preset(name).plan
    assert plan.total_iterations == total
    assert [s.label for s in plan] == labels
    assert {s.batch for s in plan} == {batch}
    assert max(s.lr for s in plan) == pytest.approx(lr, rel=1e-12)


@pytest.mark.parametrize("preset", paper_presets, ids=lambda p: p.name)
def test_plan_invariants(preset):
    plan = preset.plan
    stages = plan.stages
    # the paper's order: patch never shrinks; frames never shrink inside one spatial stage
    for a, b in zip(stages, stages[1:]):
        assert b.patch >= a.patch
        if b.patch == a.patch and preset.name != "table2/edvr_m/baseline-restarts":
            assert b.frames >= a.frames
    # equal stage durations (within 1)
    if preset.name in UNEQUAL:
        equal = stages[: UNEQUAL[preset.name] or 0]
    else:
        equal = stages
    if equal:
        assert max(s.iterations for s in equal) - min(s.iterations for s in equal) <= 1
    # Eq. 1: every stage starts at its LR (after warmup), D_j = I_total before the last, D_p = P_p
    warm = plan.warmup.iterations if plan.warmup else 0
    for s in stages:
        if s.start >= warm:
            assert plan.lr(s.start) == pytest.approx(s.lr, rel=1e-12)
    if preset.name == "eq1/one-cosine":  # one cosine over the run: every stage starts where the one before ended
        assert all(a.lr > b.lr for a, b in zip(stages, stages[1:]))
    if preset.name not in ("table2/edvr_m/baseline-restarts", "eq1/one-cosine"):  # the two without Eq. 1
        assert [s.period for s in stages[:-1]] == [plan.total_iterations] * (len(stages) - 1)
    assert stages[-1].period == stages[-1].iterations
    assert plan.lr(plan.total_iterations) == pytest.approx(1e-7, rel=1e-9)
    assert plan.eta_min == 1e-7


@pytest.mark.parametrize("preset", [p for p in paper_presets if p.baseline], ids=lambda p: p.name)
def test_linear_scaling_against_the_baseline(preset):
    base = get_preset(preset.baseline).plan
    plan = preset.plan
    m = plan.stages[0].batch / base.stages[0].batch
    if preset.name in MORE_SAMPLES:
        assert plan.samples == base.samples + 20_000 * 64
    else:
        assert plan.samples == base.samples  # the same number of epochs
        assert plan.total_iterations == round(base.total_iterations / m)
    if m > 1:
        warmup = plan.warmup
        if preset.name in ("table4/no-lr-scaling", "table5/no-warmup"):
            assert warmup is None
        else:
            assert warmup.iterations == 5_000 and warmup.start_factor == pytest.approx(1 / m)
            assert warmup.kind == ("constant" if preset.name == "table5/constant-warmup" else "linear")
            # the warmup starts from the baseline's LR (EDVR-M's 32 stage: from its own 2e-4 / m)
            assert plan.lr(0) == pytest.approx(plan.stages[0].lr / m, rel=1e-12)
    # recipe details scale with the iterations
    baseline_preset = get_preset(preset.baseline)
    assert preset.flow_frozen_iters == round(baseline_preset.flow_frozen_iters / m)
    assert preset.fusion_only_iters == round(baseline_preset.fusion_only_iters / m)


def test_table1_ours_facts():
    ours = get_preset("table1/basicvsr_m/ours")
    plan = ours.plan
    assert (len(plan), plan.total_iterations) == (6, 75_000)
    assert all(s.batch == 64 and s.lr == pytest.approx(8e-4) for s in plan)
    assert plan.samples == 300_000 * 16
    assert [s.iterations for s in plan] == [12_500] * 6
    # the same plan by the linear scaling rule applied to the batch-16 multigrid plan
    rebuilt = scale_batch(multigrid(300_000, 64, 15, 16, 2e-4), 4, warmup=goyal_warmup(4))
    assert rebuilt.stages == plan.stages and rebuilt.warmup == plan.warmup
    assert (ours.model, ours.dataset, ours.test_dataset) == ("basicvsr_m", "reds", "reds4")
    assert ours.paper == {"psnr": 30.90, "ssim": 0.8820, "speedup": 6.2}
    assert (ours.flow_frozen_iters, ours.flow_lr_mult) == (1_250, 0.125)


def test_basicvsr_and_edvr_recipes():
    base = get_preset("table1/basicvsr/baseline")
    assert (base.flow_frozen_iters, base.flow_lr_mult, base.fusion_only_iters) == (5_000, 0.125, 0)
    assert get_preset("table1/basicvsr/ours").flow_frozen_iters == 2_500
    edvr = get_preset("table2/edvr_m/ours")
    assert (edvr.flow_frozen_iters, edvr.fusion_only_iters) == (0, 2_500)
    assert [(s.patch, s.frames, s.lr) for s in edvr.plan] == [(32, 5, 2e-4), (64, 5, pytest.approx(8e-4))]
    edvr.plan.check_fits(model_frames=5, patch_multiple=4, max_frames=7)  # Vimeo's 7-frame clips fit too
    restarts = get_preset("table2/edvr_m/baseline-restarts").plan
    assert [s.period for s in restarts] == [50_000, 100_000, 150_000, 150_000, 150_000]
    assert restarts.lr(150_000) == pytest.approx(4e-4)


@pytest.mark.parametrize("preset", list_presets(model="edvr_m"), ids=lambda p: p.name)
def test_edvr_m_plans_are_spatial_only_and_fit_the_model(preset):
    """Every EDVR-M preset: 5 frames in every stage (the architecture's window), only the patch
    changes, each multigrid's 32x32 stage starts at 2e-4 (Sec. 4.1), and EDVR's TSA recipe is on."""
    from mgvsr.models.edvr import EDVR

    plan = preset.plan
    assert {s.frames for s in plan} == {5}
    assert [s.patch for s in plan] == sorted(s.patch for s in plan) and {s.patch for s in plan} <= {32, 64}
    assert plan.stages[-1].patch == 64
    if len({s.patch for s in plan}) > 1:  # the spatial cycle: 32 then 64
        assert [s.patch for s in plan] == [32, 64]
        assert plan.stages[0].lr == pytest.approx(2e-4, rel=1e-12)
        assert plan.stages[1].lr > plan.stages[0].lr
    assert preset.fusion_only_iters > 0 and preset.flow_frozen_iters == 0
    plan.check_fits(model_frames=5, patch_multiple=EDVR.patch_multiple, max_frames=7)


def test_vimeo_presets():
    ours = get_preset("table3/basicvsr/ours")
    assert max(s.frames for s in ours.plan) == 14  # 7 frames mirrored (supplementary A)
    ours.plan.check_fits(max_frames=14, min_lq_size=(64, 112))
    with pytest.raises(MgvsrError, match="needs 10 frames, but the shortest clip has 7"):
        ours.plan.check_fits(max_frames=7)  # a loader that does not mirror
    assert get_preset("table3/basicvsr/baseline").paper == {"psnr": 37.18, "ssim": 0.9450, "speedup": None}
    assert get_preset("table3/edvr_m/ours").paper["speedup"] == 2.3


def test_table9_extra_stage():
    plan = get_preset("table9/extra-72-17").plan
    assert [s.iterations for s in plan] == [12_500] * 6 + [20_000]
    assert plan.stages[-1].patch == 72 and plan.stages[-1].frames == 17
    # Eq. 1 over all 7 stages: the 6th stage no longer decays fully (D = 95k)
    assert plan.lr(74_999) > 7e-4
    assert plan.lr(75_000) == pytest.approx(8e-4)


def test_published_numbers():
    numbers = {
        "table1/basicvsr_m/baseline": (30.91, 0.8824, None),
        "table1/basicvsr_m/large-batch": (30.93, 0.8824, 3.9),
        "table1/basicvsr/ours": (31.54, 0.8925, 3.1),
        "table2/edvr_m/ours": (30.44, 0.8685, 2.3),
        "table3/basicvsr/ours": (37.32, 0.9462, 3.2),
        "table4/no-lr-scaling": (30.64, None, None),
        "table5/no-warmup": (30.81, None, None),
        "table6/batch-48": (30.95, None, 2.9),
        "table7/temporal-7-9-11-15": (30.91, None, 5.2),
        "table8/synchronous-2": (30.81, None, 5.8),
        "table9/extra-72-17": (30.98, None, 3.4),
    }
    for name, (psnr, ssim, speedup) in numbers.items():
        assert get_preset(name).paper == {"psnr": psnr, "ssim": ssim, "speedup": speedup}, name
    for name in PAPER_PRESETS:
        preset = get_preset(name)
        assert preset.table is not None and preset.paper["psnr"] is not None, name


def test_every_basicvsr_m_ablation_has_notes():
    for preset in list_presets():
        if preset.table in ("4", "5", "6", "7a", "7b", "8a", "8b", "9") and preset.name != "table9/baseline":
            assert preset.notes and preset.model == "basicvsr_m" and preset.dataset == "reds"


def test_unknown_preset_lists_close_matches():
    with pytest.raises(UnknownPresetError) as info:
        get_preset("table1/basicvsr_m/our")
    assert "did you mean: table1/basicvsr_m/ours" in str(info.value)
    with pytest.raises(UnknownPresetError, match="table7/spatial-32-64"):
        get_preset("table7")
    assert isinstance(info.value, MgvsrError)


def test_list_presets_filters():
    assert {p.name for p in list_presets(table="2")} == {"table2/edvr_m/baseline", "table2/edvr_m/large-batch",
                                                         "table2/edvr_m/ours"}
    assert all(p.dataset == "vimeo90k" for p in list_presets(dataset="vimeo90k"))
    assert len(list_presets(model="edvr_m")) == 6


def test_preset_fits_a_cpu_demo():
    # a demo preset on the embedded sample clips with a CPU model name, as the project lead will add
    demo = Preset(name="demo/basicvsr/ours", model="basicvsr_cpu", dataset="sample",
                  plan=multigrid(200, 32, 10, 4, 2e-3, min_patch=16, min_frames=5, warmup=goyal_warmup(4, 20)),
                  flow_frozen_iters=10, flow_lr_mult=0.125, test_dataset="sample")
    assert [s.label for s in demo.plan] == ["16&5", "16&7", "16&10", "32&5", "32&7", "32&10"]
    assert "basicvsr_cpu on sample" in demo.describe()
    with pytest.raises(MgvsrError, match="flow_frozen_iters must be an integer in 0..199, got 500"):
        Preset(name="demo/x", model="basicvsr_cpu", dataset="sample", plan=baseline(200, 32, 10, 4, 2e-3),
               flow_frozen_iters=500)
    assert math.isclose(demo.plan.lr(0), 2e-3 / 4)
