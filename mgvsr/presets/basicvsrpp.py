"""Beyond the paper: BasicVSR++ on REDS, its published recipe and the paper's rules applied to it.  Torch-free.

The paper never trained BasicVSR++ (Chan et al., CVPR 2022).  These presets form the table
``basicvsrpp`` (``mgvsr reproduce --table basicvsrpp``), derived from BasicVSR++'s recipe exactly as the
paper derives its BasicVSR runs from BasicVSR's (Sec. 3-4; ``docs/paper-reading.md``, "BasicVSR++").

**The baseline** (``basicvsrpp/reds/baseline``), MMagic's ``basicvsr-pp_c64n7_8xb1-600k_reds4.py``, the
recipe whose model its zoo publishes (REDS4 32.39 dB RGB): 8 GPUs x 1 clip = minibatch 8 of 30 frames,
LR patch 64 (GT 256), flips and transposition, Adam 1e-4 with betas (0.9, 0.99), one cosine to 1e-7
over 600,000 iterations, SpyNet (pretrained) frozen for the first 5,000 iterations (``fix_iter``) and
trained at 0.25 x LR after, Charbonnier loss.  No EMA: BasicSR's ``train_BasicVSRPP_REDS.yml`` is the
same recipe plus ``ema_decay: 0.999``, kept as ``basicvsrpp/reds/baseline-ema``.  We follow MMagic's
because its run produced the published weights and number, and because the paper's BasicVSR recipes
(BasicSR's ``train_BasicVSR_REDS.yml``) have no EMA either: the comparison isolates the paper's method.

**Ours** (``basicvsrpp/reds/ours``), the paper's rules with H = 64 and T = 30:

1. large minibatch x4 (Table 1's BasicVSR-M: 16 -> 64) by the linear scaling rule (Sec. 3.2, Eq. 2-5):
   minibatch 8 -> 32, LR 1e-4 -> 4e-4, iterations 600,000 -> 150,000;
2. a linear warmup from the baseline's LR (1e-4) over the first 5,000 iterations: the paper's
   warmup for every large-minibatch run it trains (Sec. 4.1), whatever the run's length (BasicVSR's is
   150,000 iterations too);
3. the spatial cycle ``max(32, H/2), H`` = 32, 64 and, inside each spatial stage, the temporal cycle
   ``~T/2, ~3T/4, T`` in equal steps of ``ceil(T/4)`` = 14, 22, 30 (:func:`mgvsr.schedule.default_temporal_sizes`,
   the rule that gives the paper's 7/11/15 for T = 15 and 6/10/14 for T = 14; the printed
   ``max(6, T/2), 3T/4, T`` rounded down would give 15/22/30), hierarchical: six equal stages of 25,000
   iterations, 32&14, 32&22, 32&30, 64&14, 64&22, 64&30;
4. Eq. 1: each stage restarts its cosine at 4e-4; the first five decay over I_total = 150,000 (never to
   zero), the last over its own 25,000 to 1e-7;
5. SpyNet frozen for 5,000 / 4 = 1,250 iterations (the same 40,000 clips as the baseline's 5,000 x 8:
   every span of iterations divided by m, as mgvsr does for BasicVSR), then 0.25 x LR.

Its expected speedup from LR pixel counts, ``baseline.plan.work / ours.plan.work`` (the same 4.8 million
clips): 30 x 64^2 against the stages' mean (14 + 22 + 30) / 3 x (32^2 + 64^2) / 2 per clip: 2.18x in
device-time (``mgvsr plan basicvsrpp/reds/ours`` prints it).  On 4x the devices (the paper's reading of
a 4x minibatch) the wall-clock bound is 4 x 2.18x.

**With EMA** (``basicvsrpp/reds/baseline-ema``, ``basicvsrpp/reds/ours-ema``): BasicSR's 0.999 per
iteration for the baseline; for ours 0.999^4 per iteration (:func:`~mgvsr.presets.preset.scaled_decay`:
one step of the 4x minibatch stands for four), the same horizon in samples.  Not in the table.
"""

from __future__ import annotations

from dataclasses import replace

from mgvsr.presets.preset import Preset
from mgvsr.presets.recipe import Recipe, large_plan
from mgvsr.presets.registry import register

TABLE = "basicvsrpp"
BVPP_FLOW_FROZEN_ITERS = 5_000  # MMagic fix_iter, BasicSR fix_flow
BVPP_FLOW_LR_MULT = 0.25  # MMagic paramwise lr_mult for spynet, BasicSR flow_lr_mul
BVPP_EMA = 0.999  # BasicSR's ema_decay (MMagic's recipe has none)
BVPP_M = 4  # the minibatch factor of ours: Table 1's BasicVSR-M (16 -> 64)
BASICVSRPP_REDS = Recipe("basicvsrpp", "reds", "reds4", 600_000, 64, 30, 8, 1e-4, flow=True,
                         flow_frozen=BVPP_FLOW_FROZEN_ITERS, flow_lr_mult=BVPP_FLOW_LR_MULT)

BASE_NOTE = ("Beyond the paper. MMagic's basicvsr-pp_c64n7_8xb1-600k_reds4.py (8 V100 x 1 clip; its zoo: REDS4 "
             "32.39 dB RGB); no EMA, as MMagic's (BasicSR's train_BasicVSRPP_REDS.yml adds ema_decay 0.999: "
             "basicvsrpp/reds/baseline-ema).")
OURS_NOTE = ("Beyond the paper: its rules applied to BasicVSR++ as it applies them to BasicVSR (H 64, T 30): "
             "minibatch x4 by the linear scaling rule (8 -> 32, LR 4e-4, 150k iterations), linear warmup over the "
             "paper's 5,000 iterations from 1e-4, hierarchical multigrid 32,64 x 14,22,30 (equal steps of ceil(T/4), "
             "the rule of the paper's 7/11/15 and 6/10/14), Eq. 1, SpyNet frozen 5,000 / 4 iterations. "
             "Derivation: mgvsr/presets/basicvsrpp.py, docs/paper-reading.md.")
EMA_NOTE = " With BasicSR's EMA of the weights (0.999 per baseline iteration), which the evaluations score."
HIER = dict(cycle="both", combine="hierarchical")


def add_pair(r: Recipe, suffix: str = "", table: str | None = TABLE, extra_note: str = "") -> None:
    """Register ``basicvsrpp/reds/baseline<suffix>`` (recipe ``r``) and ``basicvsrpp/reds/ours<suffix>`` (the
    paper's rules applied to it), in ``table`` (None: extra presets)."""
    base, ours = f"basicvsrpp/reds/baseline{suffix}", f"basicvsrpp/reds/ours{suffix}"
    register(Preset(name=base, table=table, row="baseline" if table else None, notes=BASE_NOTE + extra_note,
                    plan=r.base_plan(base, f"BasicVSR++ baseline (MMagic's recipe): batch {r.batch}, LR {r.lr:.0e}, "
                                           f"{r.iterations:,} iterations, {r.patch}x{r.patch}, {r.frames} frames"),
                    **r.recipe_fields()))
    plan, m = large_plan(r, r.batch * BVPP_M, ours, f"large batch {r.batch * BVPP_M} (LR x{BVPP_M}, iterations / "
                                                    f"{BVPP_M}, linear warmup) + multigrid 32,64 x 14,22,30 "
                                                    "(hierarchical)", multi=HIER)
    register(Preset(name=ours, plan=plan, table=table, row="ours" if table else None, baseline=base,
                    notes=OURS_NOTE + extra_note, **r.recipe_fields(m)))


add_pair(BASICVSRPP_REDS)
add_pair(replace(BASICVSRPP_REDS, ema=BVPP_EMA), "-ema", table=None, extra_note=EMA_NOTE)
