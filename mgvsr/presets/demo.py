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
"""

from __future__ import annotations

from mgvsr.presets.preset import Preset
from mgvsr.presets.recipe import WARMUP_ITERS, Recipe
from mgvsr.presets.registry import register
from mgvsr.schedule import goyal_warmup, linear_scaling, multigrid

DEMO = Recipe("basicvsr_cpu", "sample", "sample", 600, 32, 8, 4, 2e-3, flow=True, share=600 / 300_000)
DEMO_M = 2
DEMO_EDVR = Recipe("edvr_cpu", "sample", "sample", 720, 32, 5, 4, 1e-3, flow=False, tsa=True, share=720 / 600_000)
PAPER_LARGE_BATCH_ITERS = 75_000  # the paper's large-batch run, whose first 5,000 iterations warm up


def add_demo(family: str, r: Recipe, multi: dict, what: str) -> None:
    """Register ``demo/<family>/baseline`` (recipe ``r``) and ``demo/<family>/ours`` (``multi``: the
    keyword arguments of :func:`mgvsr.schedule.multigrid`; ``what`` says what they are)."""
    base, ours = f"demo/{family}/baseline", f"demo/{family}/ours"
    notes = "CPU demo on the embedded sample clips (`mgvsr demo`)."
    register(Preset(name=base, plan=r.base_plan(base, f"baseline: batch {r.batch}, {r.patch}x{r.patch}, "
                                                       f"{r.frames} frames, one cosine"),
                    notes=notes, **r.recipe_fields()))
    scaled = linear_scaling(r.iterations, r.lr, r.batch, r.batch * DEMO_M)
    warmup = goyal_warmup(scaled.m, max(1, round(scaled.iterations * WARMUP_ITERS / PAPER_LARGE_BATCH_ITERS)))
    plan = multigrid(scaled.iterations, r.patch, r.frames, r.batch * DEMO_M, scaled.lr, warmup=warmup, name=ours,
                     description=f"ours: {what}, batch {r.batch * DEMO_M} (LR x{DEMO_M}, iterations / {DEMO_M}, "
                                 "linear warmup)", **multi)
    register(Preset(name=ours, plan=plan, baseline=base, notes=notes, **r.recipe_fields(scaled.m)))


add_demo("basicvsr", DEMO, dict(spatial=(16, 32), temporal=(4, 6, 8)), "multigrid 16,32 x 4,6,8 (hierarchical)")
# EDVR: the spatial cycle only (5 frames fixed by the architecture), its first stage at a
# quarter of the scaled LR as the paper's EDVR-M (2e-4 against 8e-4).
add_demo("edvr_m", DEMO_EDVR, dict(cycle="spatial", spatial=(16, 32), stage_lrs=[DEMO_EDVR.lr * DEMO_M / 4, None]),
         "spatial cycle 16 (LR / 4), 32")
