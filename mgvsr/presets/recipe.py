"""How the paper derives its runs from a baseline recipe: the linear scaling rule with warmup, the
multigrid, and the warm starts scaled with the run.  The paper's catalogue
(:mod:`mgvsr.presets.paper`) and the demo presets (:mod:`mgvsr.presets.demo`) are written with it.

Facts used (the paper, BasicSR's and MMagic's configs; ``docs/paper-reading.md`` states each):

- Large-batch runs: the linear scaling rule and a linear warmup over 5,000 iterations from the
  baseline's LR (except Table 4's unscaled run and Table 5's variants).
- BasicVSR's recipe (BasicSR ``fix_iter: 5000``, ``flow_lr_mul: 0.125``): SpyNet frozen for the
  first 5,000 iterations of the baseline, trained at 0.125 x LR afterwards.  Under the linear
  scaling rule the frozen span is divided by m like every iteration count.
- EDVR-M's TSA start (``fusion_only_iters``): only the fusion (TSA) module trains at first.
  BasicSR's ``train_EDVR_M_x4_SR_REDS.yml`` has ``tsa_iter: 50000`` but starts from a separately
  trained woTSA model (a second 600k run); MMagic's ``edvrm_8xb4-600k_reds.py`` trains from
  scratch with ``tsa_iter=5000``.  mgvsr trains from scratch, so it uses MMagic's 5,000 (divided
  by m for large batch).  Our assumption: the paper is silent.
"""

from __future__ import annotations

from dataclasses import dataclass

from mgvsr.presets.preset import PaperDevices, Preset, scaled_decay, scaled_span
from mgvsr.presets.registry import register
from mgvsr.schedule import Plan, Warmup, baseline, goyal_warmup, linear_scaling, multigrid

WARMUP_ITERS = 5_000  # the paper's linear warmup (Sec. 4.1)
FLOW_FROZEN_ITERS = 5_000  # BasicSR BasicVSR fix_iter
FLOW_LR_MULT = 0.125  # BasicSR BasicVSR flow_lr_mul
FUSION_ONLY_ITERS = 5_000  # MMagic EDVR-M tsa_iter (from scratch); see the module docstring


def paper(psnr: float | None, ssim: float | None = None, speedup: float | None = None) -> dict:
    """The numbers the paper published for a run (missing values None)."""
    return {"psnr": psnr, "ssim": ssim, "speedup": speedup}


@dataclass(frozen=True)
class Entry:
    """Where the paper reports a run (``table``, ``row``), what it published (``paper``: :func:`paper`)
    and our ``notes`` (assumptions where the paper is silent, sources)."""

    table: str | None = None
    row: str | None = None
    paper: dict | None = None
    notes: str = ""


@dataclass(frozen=True)
class Recipe:
    """A baseline recipe: the shapes and LR the large-batch and multigrid runs derive from.

    ``flow``: the BasicVSR family's frozen-SpyNet start (``flow_frozen_iters`` at ``flow_lr_mult`` after);
    ``tsa``: EDVR's fusion-only start; ``share``: this recipe's length relative to the paper's (the
    warm starts keep their share of the run); ``flow_frozen``, ``flow_lr_mult``: the frozen span and
    the flow network's LR multiplier of the recipe's own paper (BasicVSR's by default); ``ema``: the decay of
    an EMA of the weights that the runs are evaluated on (None: none), scaled with the run like the warm
    starts (:func:`~mgvsr.presets.preset.scaled_decay`)."""

    model: str
    dataset: str
    test_dataset: str
    iterations: int
    patch: int
    frames: int
    batch: int
    lr: float
    flow: bool
    tsa: bool = False
    share: float = 1.0
    flow_frozen: int = FLOW_FROZEN_ITERS
    flow_lr_mult: float = FLOW_LR_MULT
    ema: float | None = None

    def base_plan(self, name: str, description: str) -> Plan:
        return baseline(self.iterations, self.patch, self.frames, self.batch, self.lr,
                        name=name, description=description)

    def recipe_fields(self, m: float = 1.0) -> dict:
        """The preset fields of a run of this recipe at m times its minibatch: the warm starts
        keep the recipe's share of the paper's run, then are divided by m with the iterations."""
        fields = dict(model=self.model, dataset=self.dataset, test_dataset=self.test_dataset)
        if self.flow:
            fields.update(flow_frozen_iters=scaled_span(scaled_span(self.flow_frozen, self.share), 1 / m),
                          flow_lr_mult=self.flow_lr_mult)
        if self.tsa:
            fields.update(fusion_only_iters=scaled_span(scaled_span(FUSION_ONLY_ITERS, self.share), 1 / m))
        if self.ema is not None:
            fields.update(ema_decay=scaled_decay(scaled_decay(self.ema, self.share), 1 / m))
        return fields


def large_plan(r: Recipe, batch: int, name: str, description: str, *, warmup: str | None = "linear",
               scale_lr: bool = True, multi: dict | None = None) -> tuple[Plan, float]:
    """A run at minibatch ``batch`` derived from recipe ``r`` by the linear scaling rule.

    ``warmup``: "linear" | "constant" (from LR/m over 5,000 iterations) or None.
    ``scale_lr=False`` keeps the baseline's LR (Table 4's counter-example; iterations are
    still divided by m).  ``multi``: keyword arguments of :func:`multigrid`; None keeps the
    baseline's fixed shape.
    """
    scaled = linear_scaling(r.iterations, r.lr, r.batch, batch)
    lr = scaled.lr if scale_lr else r.lr
    warm: Warmup | None = goyal_warmup(scaled.m, WARMUP_ITERS, warmup) if warmup else None
    if multi is None:
        plan = baseline(scaled.iterations, r.patch, r.frames, batch, lr, warmup=warm,
                        name=name, description=description)
    else:
        plan = multigrid(scaled.iterations, r.patch, r.frames, batch, lr, warmup=warm,
                         name=name, description=description, **multi)
    return plan, scaled.m


def add_run(r: Recipe, name: str, batch: int, description: str, entry: Entry, baseline_name: str,
            **plan_options) -> Preset:
    """Register the run ``name`` of recipe ``r`` at minibatch ``batch`` (:func:`large_plan` with
    ``plan_options``), compared against ``baseline_name``."""
    plan, m = large_plan(r, batch, name, description, **plan_options)
    return register(Preset(name=name, plan=plan, table=entry.table, row=entry.row, paper=entry.paper,
                           baseline=baseline_name, notes=entry.notes, paper_devices=PaperDevices.for_batch(batch),
                           **r.recipe_fields(m)))


def add_baseline(r: Recipe, name: str, description: str, entry: Entry) -> Preset:
    """Register the baseline run ``name`` of recipe ``r``."""
    return register(Preset(name=name, plan=r.base_plan(name, description), table=entry.table, row=entry.row,
                           paper=entry.paper, notes=entry.notes, paper_devices=PaperDevices.for_batch(r.batch),
                           **r.recipe_fields()))
