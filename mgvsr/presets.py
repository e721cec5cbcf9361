"""The paper's runs (Tables 1-9) as named presets, free of torch.

A :class:`Preset` names a model, a dataset and a :class:`~mgvsr.schedule.Plan`, plus the
recipe details that are not shapes or LRs (SpyNet frozen at first, EDVR's TSA-only
start) and the numbers the paper published for it.  ``mgvsr plan NAME`` prints one;
the trainer runs one; the tests check every one against the paper's facts.

Names are ``table<N>/<model>/<setting>`` for the main tables and ``table<N>/<setting>``
for the ablations (Tables 4-9 use BasicVSR-M on REDS).  ``list_presets()`` lists them.

One value flows: a preset is looked up by name, transformed into a new :class:`Preset`
(:meth:`Preset.shrunk` for a quick run, :meth:`Preset.at_scale` for one of the
:data:`SCALES`, :meth:`Preset.on` for another model or dataset), and that Preset is what
the trainer runs, what a run folder records and what ``mgvsr plan`` prints.  Every span in
iterations (the plan's stages, the warmup, the warm starts) is scaled here, once.

Facts used (REFERENCE.md section 1 and 2, the paper, BasicSR's configs):

- BasicVSR-M / REDS baseline: batch 16, LR 2e-4, 300k iterations, LR patch 64, 15 frames.
- BasicVSR / REDS baseline ("our impl."): batch 32, LR 2e-4, 300k; large batch 64.
- EDVR-M / REDS baseline: batch 32, LR 4e-4, 600k, 5 frames; large batch 64; spatial
  cycle only (32 then 64), the 32 stage starting at 2e-4.
- Large-batch runs: the linear scaling rule and a linear warmup over 5,000 iterations
  from the baseline's LR (except Table 4's unscaled run and Table 5's variants).
- BasicVSR's recipe (BasicSR ``fix_iter: 5000``, ``flow_lr_mul: 0.125``): SpyNet frozen for
  the first 5,000 iterations of the baseline, trained at 0.125 x LR afterwards.  Under the
  linear scaling rule the frozen span is divided by m like every iteration count.
- EDVR-M's TSA start (``fusion_only_iters``): only the fusion (TSA) module trains at first.
  BasicSR's ``train_EDVR_M_x4_SR_REDS.yml`` has ``tsa_iter: 50000`` but starts from a
  separately trained woTSA model (a second 600k run); MMagic's ``edvrm_8xb4-600k_reds.py``
  trains from scratch with ``tsa_iter=5000``.  mgvsr trains from scratch, so it uses
  MMagic's 5,000 (divided by m for large batch).  Our assumption: the paper is silent.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, replace

from mgvsr.errors import MgvsrError
from mgvsr.schedule import (
    Plan,
    Warmup,
    baseline,
    goyal_warmup,
    linear_scaling,
    multigrid,
    shrink,
)

WARMUP_ITERS = 5_000  # the paper's linear warmup (Sec. 4.1)
# The paper's devices: "NVIDIA V100 GPUs" (Sec. 4.1), "Each GPU holds 4 samples" (Table 6), so its
# minibatch 16 ran on 4 GPUs and 64 on 16.  Stated for Table 6; assumed for every table (BasicSR's
# BasicVSR and EDVR-M configs also put 4 samples on each GPU).
PAPER_GPU = "V100"
PAPER_SAMPLES_PER_GPU = 4
FLOW_FROZEN_ITERS = 5_000  # BasicSR BasicVSR fix_iter
FLOW_LR_MULT = 0.125  # BasicSR BasicVSR flow_lr_mul
FUSION_ONLY_ITERS = 5_000  # MMagic EDVR-M tsa_iter (from scratch); see the module docstring


class UnknownPresetError(MgvsrError, LookupError):
    """No preset of that name (the message lists close matches)."""


@dataclass(frozen=True)
class PaperDevices:
    """The device setup the paper ran a preset on: ``gpus`` GPUs of ``kind``, ``per_gpu`` samples each.

    Its speedups are wall-clock with these devices: a run on 4x the GPUs of its baseline that is
    3.9x faster spent about the same device-time (:meth:`device_speedup`)."""

    gpus: int
    per_gpu: int = PAPER_SAMPLES_PER_GPU
    kind: str = PAPER_GPU

    @classmethod
    def for_batch(cls, batch: int) -> PaperDevices:
        """The paper's setup for a minibatch of ``batch`` (:data:`PAPER_SAMPLES_PER_GPU` on each GPU)."""
        if batch % PAPER_SAMPLES_PER_GPU:
            raise MgvsrError(f"minibatch {batch} is not {PAPER_SAMPLES_PER_GPU} samples on each of a number of GPUs")
        return cls(gpus=batch // PAPER_SAMPLES_PER_GPU)

    @staticmethod
    def device_speedup(speedup: float, devices: int, baseline_devices: int) -> float:
        """A wall-clock ``speedup`` on ``devices`` against a baseline on ``baseline_devices``, in
        device-time (wall-clock x devices): ``speedup * baseline_devices / devices``."""
        return speedup * baseline_devices / devices

    def describe(self) -> str:
        return f"{self.gpus} {self.kind} x {self.per_gpu} samples"

    def to_dict(self) -> dict:
        return {"gpus": self.gpus, "per_gpu": self.per_gpu, "kind": self.kind}


@dataclass(frozen=True)
class Preset:
    """One training run: model + dataset + plan + recipe details + published numbers.

    - ``model``: a name of :data:`mgvsr.models.MODEL_CONFIGS` (``"basicvsr_m"``, ``"edvr_m"``,
      or a CPU demo configuration such as ``"basicvsr_cpu"``); not checked here (torch-free).
    - ``dataset``: a clip layout: ``"reds"``, ``"vimeo90k"``, ``"sample"`` (embedded clips), ...
    - ``test_dataset``: what the paper evaluates on (``"reds4"``, ``"vimeo90k_test"``, ...).
    - ``table``, ``row``: where the paper reports it (``"1"``, ``"⑤"``); None for extra runs.
    - ``paper``: published ``{"psnr": .., "ssim": .., "speedup": ..}`` (missing values None).
    - ``baseline``: the preset this run's speedup and accuracy are compared against.
    - ``flow_frozen_iters``: SpyNet (BasicVSR family) is frozen for these first iterations
      and then trained at ``flow_lr_mult`` x the plan's LR.
    - ``fusion_only_iters``: EDVR with TSA trains only its fusion module for these first
      iterations (BasicSR/MMagic ``tsa_iter``).
    - ``notes``: assumptions where the paper is silent, and sources.
    - ``paper_devices``: the paper's device setup for the run (:class:`PaperDevices`); kept by the
      transformations (it stays the paper's, whatever a shrunk run trains on).
    """

    name: str
    model: str
    dataset: str
    plan: Plan
    table: str | None = None
    row: str | None = None
    paper: dict | None = None
    flow_frozen_iters: int = 0
    flow_lr_mult: float = 1.0
    fusion_only_iters: int = 0
    test_dataset: str | None = None
    baseline: str | None = None
    notes: str = ""
    paper_devices: PaperDevices | None = None

    def __post_init__(self) -> None:
        if not self.name or " " in self.name:
            raise MgvsrError(f"a preset name must be non-empty without spaces, got {self.name!r}")
        if not isinstance(self.plan, Plan):
            raise MgvsrError(f"preset {self.name!r}: plan must be a Plan, got {type(self.plan).__name__}")
        total = self.plan.total_iterations
        for what in ("flow_frozen_iters", "fusion_only_iters"):
            value = getattr(self, what)
            if not isinstance(value, int) or not 0 <= value < total:
                raise MgvsrError(f"preset {self.name!r}: {what} must be an integer in 0..{total - 1}, got {value!r}")
        if not self.flow_lr_mult > 0:
            raise MgvsrError(f"preset {self.name!r}: flow_lr_mult must be positive, got {self.flow_lr_mult!r}")
        if self.paper is not None:
            unknown = set(self.paper) - {"psnr", "ssim", "speedup"}
            if unknown:
                raise MgvsrError(f"preset {self.name!r}: unknown paper keys {sorted(unknown)}")

    def describe(self) -> str:
        """A few lines for people: what, where in the paper, published numbers, notes."""
        lines = [f"{self.name}: {self.model} on {self.dataset}"
                 + (f" (tested on {self.test_dataset})" if self.test_dataset else "")]
        if self.plan.description:
            lines.append(f"  {self.plan.description}")
        if self.table:
            where = f"  paper: Table {self.table}" + (f", row {self.row}" if self.row else "")
            if self.paper:
                numbers = []
                if self.paper.get("speedup") is not None:
                    numbers.append(f"speedup {self.paper['speedup']}x")
                if self.paper.get("psnr") is not None:
                    numbers.append(f"PSNR {self.paper['psnr']:.2f} dB")
                if self.paper.get("ssim") is not None:
                    numbers.append(f"SSIM {self.paper['ssim']:.4f}")
                where += ": " + ", ".join(numbers)
            lines.append(where)
        if self.paper_devices:
            lines.append(f"  paper's devices: {self.paper_devices.describe()}")
        if self.baseline:
            lines.append(f"  compared against: {self.baseline}")
        extras = []
        if self.flow_frozen_iters:
            extras.append(f"SpyNet frozen for {self.flow_frozen_iters:,} iterations, then x{self.flow_lr_mult:g} LR")
        if self.fusion_only_iters:
            extras.append(f"only the TSA fusion module trains for {self.fusion_only_iters:,} iterations")
        if extras:
            lines.append("  " + "; ".join(extras))
        if self.notes:
            lines.append(f"  notes: {self.notes}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return dict(name=self.name, model=self.model, dataset=self.dataset, table=self.table, row=self.row,
                    paper=self.paper, flow_frozen_iters=self.flow_frozen_iters, flow_lr_mult=self.flow_lr_mult,
                    fusion_only_iters=self.fusion_only_iters, test_dataset=self.test_dataset,
                    baseline=self.baseline, notes=self.notes, plan=self.plan.to_dict(),
                    paper_devices=None if self.paper_devices is None else self.paper_devices.to_dict())

    # ---- transformations: each returns a new Preset --------------------------------------

    @property
    def warm_start(self) -> tuple[str | None, int]:
        """``(recipe, iterations)`` of the warm start: ``("flow", n)`` (SpyNet frozen),
        ``("fusion-only", n)`` (only EDVR's TSA fusion trains) or ``(None, 0)``."""
        if self.flow_frozen_iters:
            return "flow", self.flow_frozen_iters
        if self.fusion_only_iters:
            return "fusion-only", self.fusion_only_iters
        return None, 0

    def shrunk(self, iterations: int | None = None, batch: int | None = None, patch_div: int = 1,
               lr_mult: float = 1.0, frames_div: int = 1) -> Preset:
        """This preset for a quick run: the plan through :func:`mgvsr.schedule.shrink` (``iterations``
        in all, every stage's ``batch``, LR patches / ``patch_div``, clip lengths / ``frames_div``
        rounded up, LRs x ``lr_mult``) and the warm starts scaled with the run (:func:`scaled_span`).
        The unchanged preset when nothing changes."""
        if iterations is None and batch is None and patch_div == 1 and lr_mult == 1.0 and frames_div == 1:
            return self
        plan = shrink(self.plan, iterations=iterations, batch=batch, patch_div=patch_div, lr_mult=lr_mult,
                      frames_div=frames_div)
        factor = plan.total_iterations / self.plan.total_iterations
        return replace(self, plan=plan, flow_frozen_iters=scaled_span(self.flow_frozen_iters, factor),
                       fusion_only_iters=scaled_span(self.fusion_only_iters, factor))

    def on(self, *, model: str | None = None, dataset: str | None = None) -> Preset:
        """This preset with another model configuration and/or another training dataset (then
        tested on that dataset's own held-out clips, not on the preset's benchmark)."""
        changed = {}
        if model is not None and model != self.model:
            changed["model"] = model
        if dataset is not None and dataset != self.dataset:
            changed.update(dataset=dataset, test_dataset=None)
        return replace(self, **changed) if changed else self

    def at_scale(self, scale: str | Scale) -> Preset:
        """This preset as it runs at ``scale`` (:data:`SCALES`): models and dataset substituted, the
        plan shrunk by the scale's factors.  At ``paper`` scale, the preset itself."""
        scale = get_scale(scale)
        preset = self.on(model=(scale.models or {}).get(self.model), dataset=scale.dataset)
        if not scale.shrinks:
            return preset
        batches = {s.batch for s in self.plan.stages}
        if len(batches) != 1:
            raise MgvsrError(f"preset {self.name}: stages differ in minibatch {sorted(batches)}; "
                             "a shrunk run sets one minibatch for all")
        plan = self.plan
        # a sliding-window model's clip length is its architecture's input size: kept
        frames_div = 1 if self.model.startswith(FIXED_FRAMES) else scale.frames_div
        return preset.shrunk(iterations=max(len(plan), round(plan.total_iterations / scale.iterations_div)),
                             batch=max(1, batches.pop() // scale.batch_div), patch_div=scale.patch_div,
                             lr_mult=scale.lr_mult, frames_div=frames_div)


def scaled_span(span: int, factor: float) -> int:
    """A warm-start span of ``span`` iterations in a run ``factor`` times as long:
    ``round(span * factor)``, at least 1 when ``span`` is (a recipe's warm start never vanishes)."""
    return max(1, round(span * factor)) if span else 0


# --------------------------------------------------------------------------------------
# Scales: one table, read by the CLI, reproduce, the demo's lessons and every notebook
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scale:
    """How big the runs of a table (and of a notebook's experiments) are.

    - ``models``: model substitutions (``{"basicvsr_m": "basicvsr_cpu"}``); None keeps the preset's.
    - ``dataset``: train (and test) on this dataset instead of the preset's; None keeps it.
    - ``iterations_div``, ``batch_div``, ``patch_div``, ``lr_mult``, ``frames_div``: the factors
      of :meth:`Preset.shrunk`: iterations / k (at least one per stage), minibatch / k (at least
      1), LR patch / k, every starting LR x k, clip length / k rounded up (recurrent models
      only: a sliding-window model's clip length is fixed by its architecture).
    - ``micro_batch_on_cpu``: on a CPU, split a step into micro-batches of the baseline's
      minibatch (the same update; a CPU is slower per sample on big batches).
    - ``comparable``: whether the numbers may be read beside the paper's.
    - ``noise_seeds``: how many more times a table trains each of its baselines (seeds 1, 2, ...),
      to measure the run-to-run noise its verdicts are read against (:mod:`mgvsr.reproduce`).
    """

    name: str
    description: str
    models: dict | None = None
    dataset: str | None = None
    iterations_div: int = 1
    batch_div: int = 1
    patch_div: int = 1
    lr_mult: float = 1.0
    frames_div: int = 1
    micro_batch_on_cpu: bool = False
    num_workers: int = 0
    checkpoint_every: int = 0
    comparable: bool = True
    noise_seeds: int = 0

    @property
    def shrinks(self) -> bool:
        return (self.iterations_div, self.batch_div, self.patch_div, self.lr_mult, self.frames_div) != (1, 1, 1, 1.0, 1)


CPU_MODELS = {"basicvsr_m": "basicvsr_cpu", "basicvsr": "basicvsr_cpu", "edvr_m": "edvr_cpu"}

# Model families whose clip length is fixed by the architecture (not shrunk by a scale's frames_div).
FIXED_FRAMES = ("edvr",)

SCALES: dict[str, Scale] = {
    "smoke": Scale("smoke", "the mechanics only, for CI: CPU models, the sample clips, iterations / 12,500, "
                            "minibatch / 16, LR patch / 4, LR x 10 (a few dozen steps: the models learn nothing)",
                   models=CPU_MODELS, dataset="sample", iterations_div=12_500, batch_div=16, patch_div=4,
                   lr_mult=10.0, micro_batch_on_cpu=True, comparable=False),
    # Sized so that Table 1's basicvsr_m rows are the demo's shapes: LR 64 -> 32 and 32 -> 16,
    # 15/11/7 frames -> 8/6/4, baseline 300k -> 600 iterations of 16 / 4 = 4 clips at the demo's LR
    # (2e-4 x 10 = 2e-3): the baseline is the demo's baseline, which beats bicubic by ~0.7 dB.
    "lesson": Scale("lesson", "the notebooks' default, long enough to learn: CPU models, the sample clips, "
                              "iterations / 500, minibatch / 4, LR patch / 2, frames / 2, LR x 10",
                    models=CPU_MODELS, dataset="sample", iterations_div=500, batch_div=4, patch_div=2,
                    lr_mult=10.0, frames_div=2, micro_batch_on_cpu=False, comparable=False, noise_seeds=1),
    "paper": Scale("paper", "the paper's presets as they are (models, datasets, shapes, minibatches, iterations)",
                   num_workers=4, checkpoint_every=1000),
}


def get_scale(scale: str | Scale) -> Scale:
    """A :class:`Scale` by name (one of :data:`SCALES`), or the one given; the one place a scale
    name is checked."""
    if isinstance(scale, Scale):
        return scale
    if scale not in SCALES:
        raise MgvsrError(f"unknown scale {scale!r}; expected one of {', '.join(SCALES)}")
    return SCALES[scale]


def by_scale(table: dict, scale: str | Scale, what: str = "settings"):
    """``table[scale name]`` for a table keyed by every scale (a notebook experiment's settings);
    MgvsrError for an unknown scale or a table that lacks one."""
    name = get_scale(scale).name
    if name not in table:
        raise MgvsrError(f"no {what} for scale {name!r} (it has {', '.join(table)})")
    return table[name]


PRESETS: dict[str, Preset] = {}


def register(preset: Preset) -> Preset:
    """Add a preset to :data:`PRESETS` (a name may be registered once)."""
    if preset.name in PRESETS:
        raise MgvsrError(f"preset {preset.name!r} is already registered")
    if preset.baseline is not None and preset.baseline not in PRESETS and preset.baseline != preset.name:
        raise MgvsrError(f"preset {preset.name!r}: its baseline {preset.baseline!r} is not registered (register it first)")
    PRESETS[preset.name] = preset
    return preset


def get_preset(name: str) -> Preset:
    """The preset called ``name``; an unknown name raises an error listing close matches."""
    if name in PRESETS:
        return PRESETS[name]
    close = [n for n in PRESETS if n.startswith(name.rstrip("/") + "/")]
    close += [n for n in difflib.get_close_matches(name, list(PRESETS), n=6, cutoff=0.6) if n not in close]
    group = name.split("/")[0] + "/"
    if "/" in name and not any(n.startswith(group) for n in close):  # at least the same table
        close = [n for n in PRESETS if n.startswith(group)] + close
    hint = ("; did you mean: " + ", ".join(close[:12])) if close else ""
    raise UnknownPresetError(f"unknown preset {name!r}{hint} (`mgvsr plan --list` lists all {len(PRESETS)})")


def list_presets(table: str | None = None, model: str | None = None, dataset: str | None = None) -> list[Preset]:
    """All presets in definition order, optionally only those of a table, model or dataset."""
    return [p for p in PRESETS.values()
            if (table is None or p.table == table)
            and (model is None or p.model == model)
            and (dataset is None or p.dataset == dataset)]


TABLES = ("1", "2", "3", "4", "5", "6", "7", "7a", "7b", "8", "8a", "8b", "9")


def table_presets(table: str | int) -> list[Preset]:
    """The presets of a table of the paper, in its row order.  ``"7"`` is 7a then 7b (likewise 8)."""
    table = str(table)
    if table not in TABLES:
        raise MgvsrError(f"unknown table {table!r}; the paper's tables are {', '.join(TABLES)}")
    parts = [table + "a", table + "b"] if table in ("7", "8") else [table]
    return [p for part in parts for p in list_presets(table=part)]


def table_runs(table: str | int) -> list[Preset]:
    """The presets to train for a table: its own, then the baselines its speedups need (once)."""
    presets = table_presets(table)
    names = [p.name for p in presets]
    extra = []
    for p in presets:
        wants_speedup = p.paper is not None and p.paper.get("speedup") is not None
        if wants_speedup and p.baseline and p.baseline not in names and p.baseline not in extra:
            extra.append(p.baseline)
    return presets + [get_preset(name) for name in extra]


# --------------------------------------------------------------------------------------
# The paper's runs
# --------------------------------------------------------------------------------------


def _paper(psnr: float | None, ssim: float | None = None, speedup: float | None = None) -> dict:
    return {"psnr": psnr, "ssim": ssim, "speedup": speedup}


@dataclass(frozen=True)
class _Recipe:
    """A baseline recipe: the shapes and LR the large-batch and multigrid runs derive from."""

    model: str
    dataset: str
    test_dataset: str
    iterations: int
    patch: int
    frames: int
    batch: int
    lr: float
    flow: bool  # BasicVSR family: frozen SpyNet at first
    tsa: bool = False  # EDVR with TSA: fusion-only start
    share: float = 1.0  # this recipe's length relative to the paper's (the warm starts keep their share)

    def base_plan(self, name: str, description: str) -> Plan:
        return baseline(self.iterations, self.patch, self.frames, self.batch, self.lr,
                        name=name, description=description)

    def recipe_fields(self, m: float = 1.0) -> dict:
        """The preset fields of a run of this recipe at m times its minibatch: the warm starts
        keep the recipe's share of the paper's run, then are divided by m with the iterations."""
        fields = dict(model=self.model, dataset=self.dataset, test_dataset=self.test_dataset)
        if self.flow:
            fields.update(flow_frozen_iters=scaled_span(scaled_span(FLOW_FROZEN_ITERS, self.share), 1 / m),
                          flow_lr_mult=FLOW_LR_MULT)
        if self.tsa:
            fields.update(fusion_only_iters=scaled_span(scaled_span(FUSION_ONLY_ITERS, self.share), 1 / m))
        return fields


def _large_plan(r: _Recipe, batch: int, name: str, description: str, *, warmup: str | None = "linear",
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


def _add_run(r: _Recipe, name: str, batch: int, description: str, *, table: str | None, row: str | None,
             paper: dict | None, baseline_name: str, notes: str = "", **kwargs) -> Preset:
    plan, m = _large_plan(r, batch, name, description, **kwargs)
    return register(Preset(name=name, plan=plan, table=table, row=row, paper=paper, baseline=baseline_name,
                           notes=notes, paper_devices=PaperDevices.for_batch(batch), **r.recipe_fields(m)))


def _add_baseline(r: _Recipe, name: str, description: str, *, table: str | None, row: str | None,
                  paper: dict | None, notes: str = "") -> Preset:
    return register(Preset(name=name, plan=r.base_plan(name, description), table=table, row=row,
                           paper=paper, notes=notes, paper_devices=PaperDevices.for_batch(r.batch),
                           **r.recipe_fields()))


BASICVSR_M_REDS = _Recipe("basicvsr_m", "reds", "reds4", 300_000, 64, 15, 16, 2e-4, flow=True)
BASICVSR_REDS = _Recipe("basicvsr", "reds", "reds4", 300_000, 64, 15, 32, 2e-4, flow=True)
EDVR_M_REDS = _Recipe("edvr_m", "reds", "reds4", 600_000, 64, 5, 32, 4e-4, flow=False, tsa=True)
# Vimeo-90K: 7-frame sequences, mirrored to 14 frames for T > 7 (supplementary A).
BASICVSR_VIMEO_BASICSR = _Recipe("basicvsr", "vimeo90k", "vimeo90k_test", 300_000, 64, 14, 8, 2e-4, flow=True)
BASICVSR_VIMEO = _Recipe("basicvsr", "vimeo90k", "vimeo90k_test", 300_000, 64, 14, 32, 2e-4, flow=True)
EDVR_M_VIMEO = _Recipe("edvr_m", "vimeo90k", "vimeo90k_test", 600_000, 64, 5, 32, 4e-4, flow=False, tsa=True)

BVSR_M_NOTE = ("BasicVSR-M is not specified by the paper; mgvsr's is 64 features, 15 blocks per branch. "
               "SpyNet frozen at first as in BasicSR's BasicVSR recipe (our assumption for BasicVSR-M).")
ABLATION_NOTE = "Ablation of Sec. 5, which uses BasicVSR-M on REDS throughout."
MULTI_NOTE = ABLATION_NOTE + (" Large-minibatch training as Sec. 5.2 says; our reading: Table 1's recipe "
                               "(batch 64, LR 8e-4, 75k iterations, linear warmup).")
HIER = dict(cycle="both", combine="hierarchical")


def _table1_basicvsr_m() -> None:
    r, base = BASICVSR_M_REDS, "table1/basicvsr_m/baseline"
    _add_baseline(r, base, "BasicVSR-M baseline: batch 16, LR 2e-4, 300k iterations, 64x64, 15 frames",
                  table="1", row="①", paper=_paper(30.91, 0.8824), notes=BVSR_M_NOTE)
    common = dict(table="1", paper=None, baseline_name=base, notes=BVSR_M_NOTE)
    _add_run(r, "table1/basicvsr_m/large-batch", 64, "large batch 64: LR 8e-4, 75k iterations, linear warmup",
             **{**common, "row": "②", "paper": _paper(30.93, 0.8824, 3.9)})
    _add_run(r, "table1/basicvsr_m/multi-s", 64, "large batch + spatial cycle 32/64 (15 frames)",
             multi=dict(cycle="spatial"), **{**common, "row": "③", "paper": _paper(30.90, 0.8822, 4.9)})
    _add_run(r, "table1/basicvsr_m/multi-t", 64, "large batch + temporal cycle 7/11/15 (64x64)",
             multi=dict(cycle="temporal"), **{**common, "row": "④", "paper": _paper(30.93, 0.8830, 5.0)})
    _add_run(r, "table1/basicvsr_m/ours", 64, "large batch + multigrid (hierarchical 32,64 x 7,11,15)",
             multi=HIER, **{**common, "row": "⑤", "paper": _paper(30.90, 0.8820, 6.2)})


def _table1_basicvsr() -> None:
    r, base = BASICVSR_REDS, "table1/basicvsr/baseline"
    _add_baseline(r, base, "BasicVSR baseline (paper's impl.): batch 32, LR 2e-4, 300k iterations",
                  table="1", row="⑦", paper=_paper(31.58, 0.8934),
                  notes="BasicSR's train_BasicVSR_REDS.yml (4 x 8 GPUs). Row ⑥, the BasicVSR paper's own "
                        "number for the same recipe, is 31.42 / 0.8909.")
    common = dict(table="1", baseline_name=base)
    _add_run(r, "table1/basicvsr/large-batch", 64, "large batch 64: LR 4e-4, 150k iterations, linear warmup",
             **{**common, "row": "⑧", "paper": _paper(31.62, 0.8943, 1.9)})
    _add_run(r, "table1/basicvsr/multi-s", 64, "large batch + spatial cycle 32/64",
             multi=dict(cycle="spatial"), **{**common, "row": "⑨", "paper": _paper(31.56, 0.8932, 2.4)})
    _add_run(r, "table1/basicvsr/multi-t", 64, "large batch + temporal cycle 7/11/15",
             multi=dict(cycle="temporal"), **{**common, "row": "⑩", "paper": _paper(31.61, 0.8941, 2.5)})
    _add_run(r, "table1/basicvsr/ours", 64, "large batch + multigrid (hierarchical 32,64 x 7,11,15)",
             multi=HIER, **{**common, "row": "⑪", "paper": _paper(31.54, 0.8925, 3.1)})


EDVR_NOTE = ("EDVR-M: sliding window of 5 frames, so only the spatial cycle applies; the 32x32 stage starts "
             "at 2e-4 (Sec. 4.1). Baseline LR: one cosine to 1e-7 (our choice; BasicSR/MMagic's EDVR-M configs "
             "restart the cosine with periods 50k/100k/150k/150k/150k, see table2/edvr_m/baseline-restarts).")
EDVR_MULTI = dict(cycle="spatial", stage_lrs=[2e-4, None])


def _edvr_runs(r: _Recipe, prefix: str, table: str, rows: dict, papers: dict, notes: str) -> None:
    base = f"{prefix}/baseline"
    _add_baseline(r, base, "EDVR-M baseline: batch 32, LR 4e-4, 600k iterations, 64x64, 5 frames",
                  table=table, row=rows.get("baseline"), paper=papers.get("baseline"), notes=notes)
    if "large-batch" in rows:
        _add_run(r, f"{prefix}/large-batch", 64, "large batch 64: LR 8e-4, 300k iterations, linear warmup",
                 table=table, row=rows["large-batch"], paper=papers["large-batch"], baseline_name=base, notes=notes)
    _add_run(r, f"{prefix}/ours", 64, "large batch + spatial cycle 32 (LR 2e-4) / 64 (LR 8e-4)",
             multi=EDVR_MULTI, table=table, row=rows["ours"], paper=papers["ours"], baseline_name=base, notes=notes)


def _table2() -> None:
    _edvr_runs(EDVR_M_REDS, "table2/edvr_m", "2",
               rows={"baseline": "②", "large-batch": "③", "ours": "④"},
               papers={"baseline": _paper(30.45, 0.8687), "large-batch": _paper(30.46, 0.8689, 1.9),
                       "ours": _paper(30.44, 0.8685, 2.3)},
               notes=EDVR_NOTE + " Row ①, EDVR's own number, is 30.46 / 0.8684.")
    name = "table2/edvr_m/baseline-restarts"
    r = EDVR_M_REDS
    register(Preset(
        name=name,
        plan=baseline(r.iterations, r.patch, r.frames, r.batch, r.lr,
                      periods=[50_000, 100_000, 150_000, 150_000, 150_000], name=name,
                      description="EDVR-M baseline with BasicSR/MMagic's cosine restarts"),
        baseline="table2/edvr_m/baseline", notes=("Not a row of the paper: BasicSR's "
                                                  "train_EDVR_M_x4_SR_REDS.yml schedule, for comparison."),
        paper_devices=PaperDevices.for_batch(r.batch), **r.recipe_fields()))


def _table3() -> None:
    # BasicVSR on Vimeo-90K.  Baseline per BasicSR's train_BasicVSR_Vimeo90K_BIx4.yml: batch 4 x 2 GPUs = 8,
    # LR 2e-4, 300k iterations, LR patch 64, all 7 frames mirrored to 14 (flip_sequence), fix_iter 5000.
    base = "table3/basicvsr/baseline"
    _add_baseline(BASICVSR_VIMEO_BASICSR, base,
                  "BasicVSR on Vimeo-90K per BasicSR: batch 8, LR 2e-4, 300k iterations, 64x64, 14 frames",
                  table="3", row="①", paper=_paper(37.18, 0.9450),
                  notes="BasicSR's train_BasicVSR_Vimeo90K_BIx4.yml; the published 37.18 is the BasicVSR paper's. "
                        "Y-channel metrics.")
    base32 = "table3/basicvsr/baseline-b32"
    _add_baseline(BASICVSR_VIMEO, base32, "BasicVSR on Vimeo-90K at batch 32 (assumed reference of the speedup)",
                  table=None, row=None, paper=None,
                  notes="Not a row of the paper. Our assumption: the 3.2x of Table 3 is against a batch-32 run "
                        "like Table 1's BasicVSR (3.1x for 32 -> 64); from BasicSR's batch 8 the scaling rule "
                        "would give LR 1.6e-3 and 37.5k iterations and a far larger speedup.")
    _add_run(BASICVSR_VIMEO, "table3/basicvsr/ours", 64,
             "large batch 64 (from batch 32: LR 4e-4, 150k) + multigrid 32,64 x 6,10,14",
             multi=HIER, table="3", row="②", paper=_paper(37.32, 0.9462, 3.2), baseline_name=base32,
             notes="Temporal sizes 6/10/14 on the 14-frame mirrored sequences (paper Sec. 4.1, suppl. A). "
                   "Batch-32 reference is our assumption (see table3/basicvsr/baseline-b32).")
    _edvr_runs(EDVR_M_VIMEO, "table3/edvr_m", "3",
               rows={"baseline": "③", "ours": "④"},
               papers={"baseline": _paper(35.10, 0.9426), "ours": _paper(35.22, 0.9437, 2.3)},
               notes=EDVR_NOTE + " Vimeo-90K recipe assumed equal to the REDS one (the paper and BasicSR "
                                 "give none): 5 of the 7 frames.")


def _table4_to_6() -> None:
    r, base = BASICVSR_M_REDS, "table1/basicvsr_m/baseline"
    common = dict(baseline_name=base, notes=ABLATION_NOTE)
    _add_run(r, "table4/no-lr-scaling", 64, "batch 64 without LR scaling: LR 2e-4, 75k iterations",
             scale_lr=False, warmup=None, table="4", row="w/o lr scaling", paper=_paper(30.64),
             **{**common, "notes": ABLATION_NOTE + " Our reading: no warmup (a warmup from the unscaled LR "
                                                   "to the unscaled LR is none)."})
    _add_run(r, "table4/lr-scaling", 64, "batch 64 with LR scaling: LR 8e-4, 75k iterations, linear warmup",
             table="4", row="w lr scaling", paper=_paper(30.93), **common)
    _add_run(r, "table5/no-warmup", 64, "batch 64, LR 8e-4, 75k iterations, no warmup",
             warmup=None, table="5", row="w/o warmup", paper=_paper(30.81), **common)
    _add_run(r, "table5/constant-warmup", 64, "batch 64, LR 8e-4, 75k, constant warmup (2e-4 for 5k iterations)",
             warmup="constant", table="5", row="constant", paper=_paper(30.91), **common)
    _add_run(r, "table5/linear-warmup", 64, "batch 64, LR 8e-4, 75k, linear warmup from 2e-4 over 5k iterations",
             warmup="linear", table="5", row="linear", paper=_paper(30.93), **common)
    for batch, speedup, psnr in ((32, 2.0, 30.92), (48, 2.9, 30.95), (64, 3.9, 30.93)):
        _add_run(r, f"table6/batch-{batch}", batch, f"batch {batch} by the linear scaling rule, linear warmup",
                 table="6", row=str(batch), paper=_paper(psnr, None, speedup),
                 **{**common, "notes": ABLATION_NOTE + " Linear warmup over 5k iterations assumed for every "
                                                       "size (Sec. 4.1 says so for the large-batch runs)."})


def _table7_to_9() -> None:
    r, base = BASICVSR_M_REDS, "table1/basicvsr_m/baseline"
    common = dict(baseline_name=base, notes=MULTI_NOTE)
    for sizes, speedup, psnr in (((32, 64), 4.9, 30.90), ((32, 48, 64), 5.0, 30.89), ((32, 40, 48, 64), 5.1, 30.89)):
        label = "/".join(map(str, sizes))
        _add_run(r, "table7/spatial-" + "-".join(map(str, sizes)), 64, f"Multi-S {label}, 15 frames",
                 multi=dict(cycle="spatial", spatial=sizes), table="7a", row=label,
                 paper=_paper(psnr, None, speedup), **common)
    for sizes, speedup, psnr in (((7, 15), 5.0, 30.92), ((7, 11, 15), 5.0, 30.93), ((7, 9, 11, 15), 5.2, 30.91)):
        label = "/".join(map(str, sizes))
        _add_run(r, "table7/temporal-" + "-".join(map(str, sizes)), 64, f"Multi-T {label}, 64x64",
                 multi=dict(cycle="temporal", temporal=sizes), table="7b", row=label,
                 paper=_paper(psnr, None, speedup), **common)
    for n, spatial, temporal, speedup, psnr in ((2, (32, 64), (7, 15), 5.8, 30.81),
                                                (3, (32, 48, 64), (7, 11, 15), 6.0, 30.83)):
        label = " / ".join(f"{s}&{t}" for s, t in zip(spatial, temporal))
        _add_run(r, f"table8/synchronous-{n}", 64, f"synchronous {label}",
                 multi=dict(combine="synchronous", spatial=spatial, temporal=temporal), table="8a", row=label,
                 paper=_paper(psnr, None, speedup), **common)
    for n, temporal, speedup, psnr in ((4, (7, 15), 6.3, 30.86), (6, (7, 11, 15), 6.2, 30.90)):
        label = " / ".join(f"{s}&{t}" for s in (32, 64) for t in temporal)
        _add_run(r, f"table8/hierarchical-{n}", 64, f"hierarchical {label}",
                 multi=dict(combine="hierarchical", spatial=(32, 64), temporal=temporal), table="8b", row=label,
                 paper=_paper(psnr, None, speedup), **common)
    _add_baseline(r, "table9/baseline", "BasicVSR-M baseline (= table1/basicvsr_m/baseline)",
                  table="9", row="①", paper=_paper(30.91), notes=BVSR_M_NOTE)
    common9 = dict(baseline_name="table9/baseline", notes=MULTI_NOTE)
    _add_run(r, "table9/ours", 64, "multigrid (ours), 75k iterations", multi=HIER, table="9", row="②",
             paper=_paper(30.90, None, 6.2), **common9)
    _add_run(r, "table9/extra-72-17", 64, "multigrid + an extra 72&17 stage of 20k iterations (95k in all)",
             multi=dict(**HIER, extra_stages=[(72, 17, 20_000)]), table="9", row="③",
             paper=_paper(30.98, None, 3.4), baseline_name="table9/baseline",
             notes=MULTI_NOTE + " Our reading: Eq. 1 over all 7 stages (I_total = 95k; the 72&17 stage "
                                   "restarts at 8e-4 and decays fully over its 20k).")


_table1_basicvsr_m()
_table1_basicvsr()
_table2()
_table3()
_table4_to_6()
_table7_to_9()


# --------------------------------------------------------------------------------------
# The CPU demo on the embedded sample clips (`mgvsr demo`)
# --------------------------------------------------------------------------------------

# The demo's baseline: the largest shape throughout (LR 32x32, 8 frames), a small minibatch
# (4 clips), one cosine.  Ours: the paper's recipe at demo scale: a hierarchical multigrid
# 16/32 x 4/6/8 (the paper's H/2, H and ~T/2, 3T/4, T with the 32-px floor lowered to 16 for
# a CPU) and a 2x minibatch with the linear scaling rule and a linear warmup over the
# paper's share of the run (5k of 75k iterations).  SpyNet: frozen for the paper's share of
# the run (5k of 300k), then trained at 0.125 x LR.
# Sized on the 2-core CPU of the development machines: with BasicSR's initialisation a
# basicvsr_cpu trained from scratch sat at the PSNR of its bilinear skip for its first ~150
# optimizer steps whatever the LR (1e-3 to 1e-2 tried), so m = 4 (150 steps of 32 clips) ended
# below bicubic (24.76 dB against 24.91) and the demo needed 720 baseline steps; m = 2.  With
# the fast start (models.blocks.fast_start_init) the baseline ends as far above bicubic after
# 600 steps (+0.70 dB) as it did after 720 (+0.72): the demo is 600 (bench/bench_faster_start.py).
DEMO = _Recipe("basicvsr_cpu", "sample", "sample", 600, 32, 8, 4, 2e-3, flow=True, share=600 / 300_000)
DEMO_M = 2


DEMO_EDVR = _Recipe("edvr_cpu", "sample", "sample", 720, 32, 5, 4, 1e-3, flow=False, tsa=True, share=720 / 600_000)


def _demo(family: str, r: _Recipe, multi: dict, what: str) -> None:
    base, ours = f"demo/{family}/baseline", f"demo/{family}/ours"
    notes = "CPU demo on the embedded sample clips (`mgvsr demo`)."
    register(Preset(name=base, plan=r.base_plan(base, f"baseline: batch {r.batch}, {r.patch}x{r.patch}, "
                                                       f"{r.frames} frames, one cosine"),
                    notes=notes, **r.recipe_fields()))
    scaled = linear_scaling(r.iterations, r.lr, r.batch, r.batch * DEMO_M)
    warmup = goyal_warmup(scaled.m, max(1, round(scaled.iterations * WARMUP_ITERS / 75_000)))
    plan = multigrid(scaled.iterations, r.patch, r.frames, r.batch * DEMO_M, scaled.lr, warmup=warmup, name=ours,
                     description=f"ours: {what}, batch {r.batch * DEMO_M} (LR x{DEMO_M}, iterations / {DEMO_M}, "
                                 "linear warmup)", **multi)
    register(Preset(name=ours, plan=plan, baseline=base, notes=notes, **r.recipe_fields(scaled.m)))


_demo("basicvsr", DEMO, dict(spatial=(16, 32), temporal=(4, 6, 8)), "multigrid 16,32 x 4,6,8 (hierarchical)")
# EDVR: the spatial cycle only (5 frames fixed by the architecture), its first stage at a
# quarter of the scaled LR as the paper's EDVR-M (2e-4 against 8e-4).
_demo("edvr_m", DEMO_EDVR, dict(cycle="spatial", spatial=(16, 32), stage_lrs=[DEMO_EDVR.lr * DEMO_M / 4, None]),
      "spatial cycle 16 (LR / 4), 32")
