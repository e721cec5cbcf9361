"""The :class:`Preset` type: one training run (model, dataset, plan, recipe details, the paper's
numbers) and its transformations, each returning a new Preset.

One value flows: a preset is looked up by name (:mod:`mgvsr.presets.registry`), transformed
(:meth:`Preset.shrunk` for a quick run, :meth:`Preset.at_scale` for one of the scales of
:mod:`mgvsr.presets.scales`, :meth:`Preset.on` for another model or dataset), and that Preset is
what the trainer runs, what a run folder records and what ``mgvsr plan`` prints.  Every span in
iterations (the plan's stages, the warmup, the warm starts) is scaled here, once.  Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from mgvsr.errors import MgvsrError
from mgvsr.presets.scales import FIXED_FRAMES, Scale, get_scale
from mgvsr.schedule import Plan, shrink, stretch_warmup

# The paper's devices: "NVIDIA V100 GPUs" (Sec. 4.1), "Each GPU holds 4 samples" (Table 6), so its
# minibatch 16 ran on 4 GPUs and 64 on 16.  Stated for Table 6; assumed for every table (BasicSR's
# BasicVSR and EDVR-M configs also put 4 samples on each GPU).
PAPER_GPU = "V100"
PAPER_SAMPLES_PER_GPU = 4
# Tables of runs the paper never made, which mgvsr adds (``Preset.table``): BasicVSR++ (mgvsr.presets.basicvsrpp)
BEYOND_PAPER = ("basicvsrpp",)


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
    - ``table``, ``row``: where the paper reports it (``"1"``, ``"⑤"``), or a table of mgvsr's beyond the
      paper (:data:`BEYOND_PAPER`: ``"basicvsrpp"``, ``"ours"``); None for extra runs.
    - ``paper``: published ``{"psnr": .., "ssim": .., "speedup": ..}`` (missing values None).
    - ``baseline``: the preset this run's speedup and accuracy are compared against.
    - ``flow_frozen_iters``: SpyNet (BasicVSR family) is frozen for these first iterations
      and then trained at ``flow_lr_mult`` x the plan's LR.
    - ``fusion_only_iters``: EDVR with TSA trains only its fusion module for these first
      iterations (BasicSR/MMagic ``tsa_iter``).
    - ``notes``: assumptions where the paper is silent, and sources.
    - ``paper_devices``: the paper's device setup for the run (:class:`PaperDevices`); kept by the
      transformations (it stays the paper's, whatever a shrunk run trains on).
    - ``ema_decay``: an exponential moving average of the weights, updated after every optimizer step
      with this decay (BasicSR's ``ema_decay``), is what the run's evaluations score; None: none (the
      paper's recipes).  A shrunk run's decay keeps the average's share of the run (:func:`scaled_decay`).
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
    ema_decay: float | None = None

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
        if self.ema_decay is not None and not (isinstance(self.ema_decay, float) and 0 < self.ema_decay < 1):
            raise MgvsrError(f"preset {self.name!r}: ema_decay must be None or a float in (0, 1), got {self.ema_decay!r}")
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
        if self.table in BEYOND_PAPER:
            lines.append(f"  mgvsr's table {self.table} (beyond the paper), row {self.row}")
        elif self.table:
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
        if self.ema_decay is not None:
            extras.append(f"evaluated on an EMA of the weights (decay {self.ema_decay:.6g} per iteration)")
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
                    paper_devices=None if self.paper_devices is None else self.paper_devices.to_dict(),
                    ema_decay=self.ema_decay)

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
        rounded up, LRs x ``lr_mult``), the warm starts scaled with the run (:func:`scaled_span`) and the
        EMA's decay with it (:func:`scaled_decay`).  The unchanged preset when nothing changes."""
        if iterations is None and batch is None and patch_div == 1 and lr_mult == 1.0 and frames_div == 1:
            return self
        plan = shrink(self.plan, iterations=iterations, batch=batch, patch_div=patch_div, lr_mult=lr_mult,
                      frames_div=frames_div)
        factor = plan.total_iterations / self.plan.total_iterations
        return replace(self, plan=plan, flow_frozen_iters=scaled_span(self.flow_frozen_iters, factor),
                       fusion_only_iters=scaled_span(self.fusion_only_iters, factor),
                       ema_decay=scaled_decay(self.ema_decay, factor))

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
        shrunk = preset.shrunk(iterations=max(len(plan), round(plan.total_iterations / scale.iterations_div)),
                               batch=max(1, batches.pop() // scale.batch_div), patch_div=scale.patch_div,
                               lr_mult=scale.lr_mult_for(self.model), frames_div=frames_div)
        return replace(shrunk, plan=stretch_warmup(shrunk.plan, scale.warmup_mult))


def scaled_span(span: int, factor: float) -> int:
    """A warm-start span of ``span`` iterations in a run ``factor`` times as long:
    ``round(span * factor)``, at least 1 when ``span`` is (a recipe's warm start never vanishes)."""
    return max(1, round(span * factor)) if span else 0


def scaled_decay(decay: float | None, factor: float) -> float | None:
    """An EMA's decay per iteration in a run ``factor`` times as long: ``decay ** (1 / factor)``, so that
    the average keeps its share of the run (its horizon, ~``1 / (1 - decay)`` iterations, scales with the
    run, as the warm starts' spans do).  For a minibatch m times larger (``factor = 1 / m``) this is
    ``decay ** m``, the EMA scaling rule of Busbridge et al. 2023 ("How to Scale Your EMA"): one step
    of the large minibatch stands for m of the small.  None stays None."""
    if decay is None or factor == 1:
        return decay
    return float(decay ** (1 / factor))
