"""The CPU demo on the embedded sample clips (``mgvsr demo``): ``demo/<family>/baseline`` against
``demo/<family>/ours``.  Torch-free.

The baseline: the largest shape throughout (LR 32x32, 8 frames), a small minibatch (4 clips), one
cosine.  Ours: the paper's recipe at demo scale: a hierarchical multigrid 16/32 x 4/6/8 (the
paper's H/2, H and ~T/2, 3T/4, T with the 32-px floor lowered to 16 for a CPU) and a 2x minibatch
with the linear scaling rule and a linear warmup over the paper's share of the run (5k of 75k
iterations).  SpyNet: frozen for the paper's share of the run (5k of 300k), then trained at
0.125 x LR.  Why 2x and not the paper's 4x, and why 600 steps: ``docs/demo.md`` (with the paper's
x4, 150 steps of 32 clips ended below bicubic; 600 baseline steps end ~0.7 dB above it,
``bench/bench_faster_start.py``).

BasicVSR++ (``demo/basicvsrpp/...``, on ``basicvsrpp_cpu``): the same shapes, minibatches and multigrid at
half the length (300 baseline steps: the three runs then fit in 15 minutes on 2 cores, and end as close to
each other as at 600), with BasicVSR++'s recipe where it differs from BasicVSR's: the LR (its 1e-4 x 10, as
BasicVSR's demo takes its 2e-4 x 10: 1e-3; 2e-3 trained worse), SpyNet at 0.25 x LR, frozen for its share
of 600k iterations, ours' warmup over its large-batch run's share (5k of 150k).  The PSNR experiments
that chose it: ``docs/demo.md``.
"""

from __future__ import annotations

from mgvsr.presets.basicvsrpp import BASICVSRPP_REDS, BVPP_FLOW_FROZEN_ITERS, BVPP_FLOW_LR_MULT, BVPP_M
from mgvsr.presets.preset import Preset
from mgvsr.presets.recipe import WARMUP_ITERS, Recipe
from mgvsr.presets.registry import register
from mgvsr.schedule import goyal_warmup, linear_scaling, multigrid

DEMO = Recipe("basicvsr_cpu", "sample", "sample", 600, 32, 8, 4, 2e-3, flow=True, share=600 / 300_000)
DEMO_M = 2
DEMO_EDVR = Recipe("edvr_cpu", "sample", "sample", 720, 32, 5, 4, 1e-3, flow=False, tsa=True, share=720 / 600_000)
# BasicVSR++ (basicvsrpp_cpu): BasicVSR's demo shapes at half its length, BasicVSR++'s recipe (SpyNet at 0.25 x
# LR, frozen for its share of 600k iterations); the LR and the length chosen by the experiments of docs/demo.md
DEMO_BVPP = Recipe("basicvsrpp_cpu", "sample", "sample", 300, 32, 8, 4, 1e-3, flow=True,
                   share=300 / BASICVSRPP_REDS.iterations, flow_frozen=BVPP_FLOW_FROZEN_ITERS,
                   flow_lr_mult=BVPP_FLOW_LR_MULT)
PAPER_LARGE_BATCH_ITERS = 75_000  # the paper's large-batch run, whose first 5,000 iterations warm up


def add_demo(family: str, r: Recipe, multi: dict, what: str,
             warmup_share: float = WARMUP_ITERS / PAPER_LARGE_BATCH_ITERS) -> None:
    """Register ``demo/<family>/baseline`` (recipe ``r``) and ``demo/<family>/ours`` (``multi``: the
    keyword arguments of :func:`mgvsr.schedule.multigrid`; ``what`` says what they are); ours warms up
    over ``warmup_share`` of its iterations (the paper's 5,000 of its large-batch run)."""
    base, ours = f"demo/{family}/baseline", f"demo/{family}/ours"
    notes = "CPU demo on the embedded sample clips (`mgvsr demo`)."
    register(Preset(name=base, plan=r.base_plan(base, f"baseline: batch {r.batch}, {r.patch}x{r.patch}, "
                                                       f"{r.frames} frames, one cosine"),
                    notes=notes, **r.recipe_fields()))
    scaled = linear_scaling(r.iterations, r.lr, r.batch, r.batch * DEMO_M)
    warmup = goyal_warmup(scaled.m, max(1, round(scaled.iterations * warmup_share)))
    plan = multigrid(scaled.iterations, r.patch, r.frames, r.batch * DEMO_M, scaled.lr, warmup=warmup, name=ours,
                     description=f"ours: {what}, batch {r.batch * DEMO_M} (LR x{DEMO_M}, iterations / {DEMO_M}, "
                                 "linear warmup)", **multi)
    register(Preset(name=ours, plan=plan, baseline=base, notes=notes, **r.recipe_fields(scaled.m)))


add_demo("basicvsr", DEMO, dict(spatial=(16, 32), temporal=(4, 6, 8)), "multigrid 16,32 x 4,6,8 (hierarchical)")
# EDVR: the spatial cycle only (5 frames fixed by the architecture), its first stage at a
# quarter of the scaled LR as the paper's EDVR-M (2e-4 against 8e-4).
add_demo("edvr_m", DEMO_EDVR, dict(cycle="spatial", spatial=(16, 32), stage_lrs=[DEMO_EDVR.lr * DEMO_M / 4, None]),
         "spatial cycle 16 (LR / 4), 32")
# BasicVSR++: the BasicVSR demo's multigrid; its large-batch run (basicvsrpp/reds/ours) warms up over 5,000 of
# its 150,000 iterations
add_demo("basicvsrpp", DEMO_BVPP, dict(spatial=(16, 32), temporal=(4, 6, 8)), "multigrid 16,32 x 4,6,8 (hierarchical)",
         warmup_share=WARMUP_ITERS * BVPP_M / BASICVSRPP_REDS.iterations)
