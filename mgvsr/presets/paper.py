"""The paper's runs (Tables 1-9) as named presets: its baselines, then every row derived from them by
:mod:`mgvsr.presets.recipe` (the linear scaling rule, warmup, the multigrid).  Torch-free.

Names are ``table<N>/<model>/<setting>`` for the main tables and ``table<N>/<setting>`` for the
ablations (Tables 4-9 use BasicVSR-M on REDS).

Facts used (the paper; BasicSR's configs; ``docs/paper-reading.md``):

- BasicVSR-M / REDS baseline: batch 16, LR 2e-4, 300k iterations, LR patch 64, 15 frames.
- BasicVSR / REDS baseline ("our impl."): batch 32, LR 2e-4, 300k; large batch 64.
- EDVR-M / REDS baseline: batch 32, LR 4e-4, 600k, 5 frames; large batch 64; spatial cycle only
  (32 then 64), the 32 stage starting at 2e-4.
"""

from __future__ import annotations

from dataclasses import replace

from mgvsr.presets.preset import PaperDevices, Preset
from mgvsr.presets.recipe import Entry, Recipe, add_baseline, add_run, paper
from mgvsr.presets.registry import get_preset, register
from mgvsr.schedule import baseline, one_cosine_over_stages

BASICVSR_M_REDS = Recipe("basicvsr_m", "reds", "reds4", 300_000, 64, 15, 16, 2e-4, flow=True)
BASICVSR_REDS = Recipe("basicvsr", "reds", "reds4", 300_000, 64, 15, 32, 2e-4, flow=True)
EDVR_M_REDS = Recipe("edvr_m", "reds", "reds4", 600_000, 64, 5, 32, 4e-4, flow=False, tsa=True)
# Vimeo-90K: 7-frame sequences, mirrored to 14 frames for T > 7 (supplementary A).
BASICVSR_VIMEO_BASICSR = Recipe("basicvsr", "vimeo90k", "vimeo90k_test", 300_000, 64, 14, 8, 2e-4, flow=True)
BASICVSR_VIMEO = Recipe("basicvsr", "vimeo90k", "vimeo90k_test", 300_000, 64, 14, 32, 2e-4, flow=True)
EDVR_M_VIMEO = Recipe("edvr_m", "vimeo90k", "vimeo90k_test", 600_000, 64, 5, 32, 4e-4, flow=False, tsa=True)

BVSR_M_NOTE = ("BasicVSR-M is not specified by the paper; mgvsr's is 64 features, 15 blocks per branch. "
               "SpyNet frozen at first as in BasicSR's BasicVSR recipe (our assumption for BasicVSR-M).")
ABLATION_NOTE = "Ablation of Sec. 5, which uses BasicVSR-M on REDS throughout."
MULTI_NOTE = ABLATION_NOTE + (" Large-minibatch training as Sec. 5.2 says; our reading: Table 1's recipe "
                               "(batch 64, LR 8e-4, 75k iterations, linear warmup).")
EDVR_NOTE = ("EDVR-M: sliding window of 5 frames, so only the spatial cycle applies; the 32x32 stage starts "
             "at 2e-4 (Sec. 4.1). Baseline LR: one cosine to 1e-7 (our choice; BasicSR/MMagic's EDVR-M configs "
             "restart the cosine with periods 50k/100k/150k/150k/150k, see table2/edvr_m/baseline-restarts).")
HIER = dict(cycle="both", combine="hierarchical")
SPATIAL = dict(cycle="spatial")
TEMPORAL = dict(cycle="temporal")
EDVR_MULTI = dict(cycle="spatial", stage_lrs=[2e-4, None])

# Table 1: (name, row, description, paper's PSNR/SSIM/speedup, multigrid) of the large-batch runs (batch 64)
TABLE1_BASICVSR_M = [
    ("large-batch", "②", "large batch 64: LR 8e-4, 75k iterations, linear warmup", (30.93, 0.8824, 3.9), None),
    ("multi-s", "③", "large batch + spatial cycle 32/64 (15 frames)", (30.90, 0.8822, 4.9), SPATIAL),
    ("multi-t", "④", "large batch + temporal cycle 7/11/15 (64x64)", (30.93, 0.8830, 5.0), TEMPORAL),
    ("ours", "⑤", "large batch + multigrid (hierarchical 32,64 x 7,11,15)", (30.90, 0.8820, 6.2), HIER),
]
TABLE1_BASICVSR = [
    ("large-batch", "⑧", "large batch 64: LR 4e-4, 150k iterations, linear warmup", (31.62, 0.8943, 1.9), None),
    ("multi-s", "⑨", "large batch + spatial cycle 32/64", (31.56, 0.8932, 2.4), SPATIAL),
    ("multi-t", "⑩", "large batch + temporal cycle 7/11/15", (31.61, 0.8941, 2.5), TEMPORAL),
    ("ours", "⑪", "large batch + multigrid (hierarchical 32,64 x 7,11,15)", (31.54, 0.8925, 3.1), HIER),
]
# Tables 4 and 5 (batch 64, BasicVSR-M): (name, row, description, paper's PSNR, large_plan options)
TABLE4_5 = [
    ("table4/lr-scaling", "w lr scaling", "batch 64 with LR scaling: LR 8e-4, 75k iterations, linear warmup",
     30.93, {}),
    ("table5/no-warmup", "w/o warmup", "batch 64, LR 8e-4, 75k iterations, no warmup", 30.81, {"warmup": None}),
    ("table5/constant-warmup", "constant", "batch 64, LR 8e-4, 75k, constant warmup (2e-4 for 5k iterations)",
     30.91, {"warmup": "constant"}),
    ("table5/linear-warmup", "linear", "batch 64, LR 8e-4, 75k, linear warmup from 2e-4 over 5k iterations",
     30.93, {"warmup": "linear"}),
]
TABLE6 = [(32, 2.0, 30.92), (48, 2.9, 30.95), (64, 3.9, 30.93)]  # batch, speedup, PSNR
TABLE7A = [((32, 64), 4.9, 30.90), ((32, 48, 64), 5.0, 30.89), ((32, 40, 48, 64), 5.1, 30.89)]  # sizes, speedup, PSNR
TABLE7B = [((7, 15), 5.0, 30.92), ((7, 11, 15), 5.0, 30.93), ((7, 9, 11, 15), 5.2, 30.91)]
TABLE8A = [(2, (32, 64), (7, 15), 5.8, 30.81), (3, (32, 48, 64), (7, 11, 15), 6.0, 30.83)]  # n, sizes, speedup, PSNR
TABLE8B = [(4, (7, 15), 6.3, 30.86), (6, (7, 11, 15), 6.2, 30.90)]


def _table1(r: Recipe, prefix: str, description: str, base: Entry, rows: list, notes: str) -> None:
    """A model's baseline of Table 1 (``description``, ``base``) and its ``rows`` (all with ``notes``)."""
    name = f"{prefix}/baseline"
    add_baseline(r, name, description, base)
    for setting, row, description, published, multi in rows:
        add_run(r, f"{prefix}/{setting}", 64, description, Entry("1", row, paper(*published), notes), name,
                multi=multi)


def _edvr_runs(r: Recipe, prefix: str, table: str, rows: dict, notes: str) -> None:
    """EDVR-M's baseline, large batch (where the table has it) and ours; ``rows``: ``{setting: (row, paper)}``."""
    base = f"{prefix}/baseline"
    add_baseline(r, base, "EDVR-M baseline: batch 32, LR 4e-4, 600k iterations, 64x64, 5 frames",
                 Entry(table, *rows["baseline"], notes))
    if "large-batch" in rows:
        add_run(r, f"{prefix}/large-batch", 64, "large batch 64: LR 8e-4, 300k iterations, linear warmup",
                Entry(table, *rows["large-batch"], notes), base)
    add_run(r, f"{prefix}/ours", 64, "large batch + spatial cycle 32 (LR 2e-4) / 64 (LR 8e-4)",
            Entry(table, *rows["ours"], notes), base, multi=EDVR_MULTI)


def _table2_restarts() -> None:
    name, r = "table2/edvr_m/baseline-restarts", EDVR_M_REDS
    register(Preset(
        name=name,
        plan=baseline(r.iterations, r.patch, r.frames, r.batch, r.lr,
                      periods=[50_000, 100_000, 150_000, 150_000, 150_000], name=name,
                      description="EDVR-M baseline with BasicSR/MMagic's cosine restarts"),
        baseline="table2/edvr_m/baseline",
        notes="Not a row of the paper: BasicSR's train_EDVR_M_x4_SR_REDS.yml schedule, for comparison.",
        paper_devices=PaperDevices.for_batch(r.batch), **r.recipe_fields()))


def _table3_basicvsr() -> None:
    # Baseline per BasicSR's train_BasicVSR_Vimeo90K_BIx4.yml: batch 4 x 2 GPUs = 8, LR 2e-4, 300k iterations,
    # LR patch 64, all 7 frames mirrored to 14 (flip_sequence), fix_iter 5000.
    add_baseline(BASICVSR_VIMEO_BASICSR, "table3/basicvsr/baseline",
                 "BasicVSR on Vimeo-90K per BasicSR: batch 8, LR 2e-4, 300k iterations, 64x64, 14 frames",
                 Entry("3", "①", paper(37.18, 0.9450),
                       "BasicSR's train_BasicVSR_Vimeo90K_BIx4.yml; the published 37.18 is the BasicVSR paper's. "
                       "Y-channel metrics."))
    base32 = "table3/basicvsr/baseline-b32"
    add_baseline(BASICVSR_VIMEO, base32, "BasicVSR on Vimeo-90K at batch 32 (assumed reference of the speedup)",
                 Entry(notes="Not a row of the paper. Our assumption: the 3.2x of Table 3 is against a batch-32 run "
                             "like Table 1's BasicVSR (3.1x for 32 -> 64); from BasicSR's batch 8 the scaling rule "
                             "would give LR 1.6e-3 and 37.5k iterations and a far larger speedup."))
    add_run(BASICVSR_VIMEO, "table3/basicvsr/ours", 64,
            "large batch 64 (from batch 32: LR 4e-4, 150k) + multigrid 32,64 x 6,10,14",
            Entry("3", "②", paper(37.32, 0.9462, 3.2),
                  "Temporal sizes 6/10/14 on the 14-frame mirrored sequences (paper Sec. 4.1, suppl. A). "
                  "Batch-32 reference is our assumption (see table3/basicvsr/baseline-b32)."), base32, multi=HIER)


def _ablations() -> None:
    """Tables 4-9: BasicVSR-M on REDS against Table 1's baseline (Table 9 against its own copy of it)."""
    r, base = BASICVSR_M_REDS, "table1/basicvsr_m/baseline"
    add_run(r, "table4/no-lr-scaling", 64, "batch 64 without LR scaling: LR 2e-4, 75k iterations",
            Entry("4", "w/o lr scaling", paper(30.64),
                  ABLATION_NOTE + " Our reading: no warmup (a warmup from the unscaled LR to the unscaled LR is none)."),
            base, scale_lr=False, warmup=None)
    for name, row, description, psnr, options in TABLE4_5:
        add_run(r, name, 64, description, Entry(name[5], row, paper(psnr), ABLATION_NOTE), base, **options)
    for batch, speedup, psnr in TABLE6:
        add_run(r, f"table6/batch-{batch}", batch, f"batch {batch} by the linear scaling rule, linear warmup",
                Entry("6", str(batch), paper(psnr, None, speedup),
                      ABLATION_NOTE + " Linear warmup over 5k iterations assumed for every size (Sec. 4.1 says "
                                      "so for the large-batch runs)."), base)
    for sizes, speedup, psnr in TABLE7A:
        label = "/".join(map(str, sizes))
        add_run(r, "table7/spatial-" + "-".join(map(str, sizes)), 64, f"Multi-S {label}, 15 frames",
                Entry("7a", label, paper(psnr, None, speedup), MULTI_NOTE), base,
                multi=dict(cycle="spatial", spatial=sizes))
    for sizes, speedup, psnr in TABLE7B:
        label = "/".join(map(str, sizes))
        add_run(r, "table7/temporal-" + "-".join(map(str, sizes)), 64, f"Multi-T {label}, 64x64",
                Entry("7b", label, paper(psnr, None, speedup), MULTI_NOTE), base,
                multi=dict(cycle="temporal", temporal=sizes))
    for n, spatial, temporal, speedup, psnr in TABLE8A:
        label = " / ".join(f"{s}&{t}" for s, t in zip(spatial, temporal))
        add_run(r, f"table8/synchronous-{n}", 64, f"synchronous {label}",
                Entry("8a", label, paper(psnr, None, speedup), MULTI_NOTE), base,
                multi=dict(combine="synchronous", spatial=spatial, temporal=temporal))
    for n, temporal, speedup, psnr in TABLE8B:
        label = " / ".join(f"{s}&{t}" for s in (32, 64) for t in temporal)
        add_run(r, f"table8/hierarchical-{n}", 64, f"hierarchical {label}",
                Entry("8b", label, paper(psnr, None, speedup), MULTI_NOTE), base,
                multi=dict(combine="hierarchical", spatial=(32, 64), temporal=temporal))


def _beyond_the_tables() -> None:
    """Two claims the paper makes outside its tables, as runs against Table 1's BasicVSR-M baseline:
    Eq. 1's restarts against one cosine over the same multigrid (``eq1``), and Fig. 2's small shapes
    (``fig2``: half the LR patch, half the frames, the baseline's recipe otherwise)."""
    r, base, ours = BASICVSR_M_REDS, "table1/basicvsr_m/baseline", get_preset("table1/basicvsr_m/ours")
    name = "eq1/one-cosine"
    plan = replace(one_cosine_over_stages(ours.plan), name=name,
                   description="Table 1's multigrid (ours) under one cosine over the whole run: no restarts")
    register(replace(ours, name=name, plan=plan, table="eq1", row="one cosine", paper=None, baseline=base,
                     notes=MULTI_NOTE + " Eq. 1's ablation: the same shapes, batch and warmup, the LR one cosine "
                                        "from 8e-4 instead of restarting at every stage (Sec. 3.3)."))
    for name, patch, frames, row in (("fig2/half-patch", 32, 15, "32&15"), ("fig2/half-frames", 64, 7, "64&7")):
        small = replace(r, patch=patch, frames=frames)
        register(Preset(name=name, plan=small.base_plan(name, f"BasicVSR-M's baseline recipe at LR patch {patch} and "
                                                               f"{frames} frames (Fig. 2)"),
                        table="fig2", row=row, baseline=base, paper_devices=PaperDevices.for_batch(r.batch),
                        notes=BVSR_M_NOTE + " Fig. 2: the accuracy cost of small shapes.", **small.recipe_fields()))


def _table9() -> None:
    r, base = BASICVSR_M_REDS, "table9/baseline"
    add_baseline(r, base, "BasicVSR-M baseline (= table1/basicvsr_m/baseline)",
                 Entry("9", "①", paper(30.91), BVSR_M_NOTE))
    add_run(r, "table9/ours", 64, "multigrid (ours), 75k iterations",
            Entry("9", "②", paper(30.90, None, 6.2), MULTI_NOTE), base, multi=HIER)
    add_run(r, "table9/extra-72-17", 64, "multigrid + an extra 72&17 stage of 20k iterations (95k in all)",
            Entry("9", "③", paper(30.98, None, 3.4),
                  MULTI_NOTE + " Our reading: Eq. 1 over all 7 stages (I_total = 95k; the 72&17 stage "
                               "restarts at 8e-4 and decays fully over its 20k)."),
            base, multi=dict(**HIER, extra_stages=[(72, 17, 20_000)]))


_table1(BASICVSR_M_REDS, "table1/basicvsr_m", "BasicVSR-M baseline: batch 16, LR 2e-4, 300k iterations, 64x64, 15 frames",
        Entry("1", "①", paper(30.91, 0.8824), BVSR_M_NOTE),
        TABLE1_BASICVSR_M, BVSR_M_NOTE)
_table1(BASICVSR_REDS, "table1/basicvsr", "BasicVSR baseline (paper's impl.): batch 32, LR 2e-4, 300k iterations",
        Entry("1", "⑦", paper(31.58, 0.8934),
              "BasicSR's train_BasicVSR_REDS.yml (4 x 8 GPUs). Row ⑥, the BasicVSR paper's own number for the same "
              "recipe, is 31.42 / 0.8909."),
        TABLE1_BASICVSR, "")
_edvr_runs(EDVR_M_REDS, "table2/edvr_m", "2",
           {"baseline": ("②", paper(30.45, 0.8687)), "large-batch": ("③", paper(30.46, 0.8689, 1.9)),
            "ours": ("④", paper(30.44, 0.8685, 2.3))},
           EDVR_NOTE + " Row ①, EDVR's own number, is 30.46 / 0.8684.")
_table2_restarts()
_table3_basicvsr()
_edvr_runs(EDVR_M_VIMEO, "table3/edvr_m", "3",
           {"baseline": ("③", paper(35.10, 0.9426)), "ours": ("④", paper(35.22, 0.9437, 2.3))},
           EDVR_NOTE + " Vimeo-90K recipe assumed equal to the REDS one (the paper and BasicSR give none): "
                       "5 of the 7 frames.")
_ablations()
_table9()
_beyond_the_tables()
