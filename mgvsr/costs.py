"""What a run's training costs, measured so that a shared machine cannot fool the comparison.

Wall-clock speedups measured on a shared CPU move by factors (another process on the 2 cores made
one stage 10x slower per step).  Beside them (``speedup_wall``, ``speedup_compute``) a comparison of
runs carries:

- ``speedup_flops``: the FLOPs of every stage's training step (forward and backward, counted by
  ``torch.utils.flop_counter.FlopCounterMode`` as ``bench/run.py`` counts them) times the stage's
  iterations, the baseline's over the run's: the bound set by the arithmetic, device-independent;
- ``speedup_calibrated``: every distinct step configuration of the compared runs (model, LR patch,
  frames, samples per device, micro-batch, precision, memory format) timed in one calibration pass,
  round-robin, :data:`REPEATS` times each, the fastest kept (:func:`calibrate`); a run's calibrated
  cost is the sum over its stages of iterations x calibrated step.  Verdicts on "faster" use it;
- ``speedup_to_baseline_psnr``: the calibrated cost at which a run's evaluated PSNR first reaches the
  baseline's final PSNR (interpolated between evaluations), against the baseline's own; None where
  it never does;
- ``flags``: a measured speedup more than :data:`FLOP_MARGIN` above its FLOP bound (where both runs
  compute in the same precision and memory format: bf16 does more FLOPs a second than fp32), or a
  stage whose median step took over :data:`STALL_FACTOR` times its calibrated step, named with what
  the numbers show: a measured speedup also above the calibrated one by that margin points at the
  baseline's time (a shared machine, or per-step overheads), one within it at a device that runs the
  run's steps at more FLOPs a second than the baseline's.

A run is read from its log (:class:`RunCost.read`): the ``start`` record holds the plan, the model,
the devices, the micro-batches, the precision and the memory format it trained with.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode
from tqdm.auto import tqdm

from mgvsr import runs
from mgvsr.device import resolve_device
from mgvsr.models import build_model
from mgvsr.models.protocol import target_frames
from mgvsr.options import TrainConfig
from mgvsr.step import TrainStep, charbonnier

REPEATS = 3  # timed steps of every configuration in a calibration pass (round-robin; the fastest kept)
FLOP_MARGIN = 1.15  # a measured speedup above this times its FLOP bound is flagged
STALL_FACTOR = 2.0  # a stage whose median step took over this times its calibrated step is flagged


@dataclass(frozen=True)
class StepConfig:
    """A distinct training step: model configuration, LR ``patch``, ``frames``, ``batch`` (samples per
    device per step), ``micro_batch`` (samples per forward/backward), ``precision``, ``channels_last``."""

    model: str
    patch: int
    frames: int
    batch: int
    micro_batch: int
    precision: str
    channels_last: bool

    @property
    def label(self) -> str:
        micro = "" if self.micro_batch == self.batch else f" ({self.batch // self.micro_batch} x {self.micro_batch})"
        return f"{self.model} {self.patch}&{self.frames} x{self.batch}{micro} {self.precision}"


@dataclass(frozen=True)
class RunCost:
    """A run's stages as step configurations: ``stages`` ``[(StepConfig, iterations)]``, ``world`` (processes)."""

    name: str
    stages: tuple[tuple[StepConfig, int], ...]
    world: int = 1

    @classmethod
    def read(cls, folder: str | Path, name: str | None = None) -> RunCost:
        """The stages of the run in ``folder``, from its log's ``start`` record."""
        records = runs.read_log(folder)
        if not records or records[0].get("event") != "start":
            raise runs.RunFolderError(f"{Path(folder) / runs.LOG_FILE} does not start with a 'start' record")
        start = records[0]
        model = start["config"]["extra"]["model"]
        setup = start["setup"]
        stages = tuple((StepConfig(model, s["patch"], s["frames"], per, micro, start["precision"],
                                   bool(start.get("channels_last"))), s["iterations"])
                       for s, per, micro in zip(start["plan"]["stages"], setup["per_device_batch"], setup["micro_batch"]))
        return cls(name or Path(folder).name, stages, int(start.get("world_size", 1)))

    def flops(self, counted: dict[StepConfig, float]) -> float:
        """FLOPs of the whole run (every process's)."""
        return sum(it * self.world * counted[c] for c, it in self.stages)

    def cost(self, calibrated: dict[StepConfig, float], until: int | None = None) -> float:
        """Calibrated seconds of the run's steps (of the first ``until`` iterations)."""
        total, done = 0.0, 0
        for c, it in self.stages:
            n = it if until is None else max(0, min(it, until - done))
            total += n * calibrated[c]
            done += it
        return total


_FLOPS: dict[tuple, float] = {}


def step_flops(config: StepConfig) -> float:
    """FLOPs of one training step of ``config`` on one device (forward and backward; a multiply-add is 2),
    counted on the CPU in fp32 (precision and memory format do not change the count).  Cached."""
    key = (config.model, config.patch, config.frames, config.batch)
    if key not in _FLOPS:
        torch.manual_seed(0)
        model = build_model(config.model).train()
        lq = torch.rand(config.batch, config.frames, 3, config.patch, config.patch)
        gt = torch.rand(config.batch, config.frames, 3, 4 * config.patch, 4 * config.patch)
        with FlopCounterMode(display=False) as counter:
            charbonnier(model(lq), target_frames(model, gt)).backward()
        _FLOPS[key] = float(counter.get_total_flops())
    return _FLOPS[key]


def _windows(config: StepConfig) -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(0)
    n = config.micro_batch
    return [(torch.randint(0, 256, (n, config.frames, 3, config.patch, config.patch), dtype=torch.uint8, generator=gen),
             torch.randint(0, 256, (n, config.frames, 3, 4 * config.patch, 4 * config.patch), dtype=torch.uint8,
                           generator=gen))
            for _ in range(config.batch // n)]


def calibrate(configs, device: str = "auto", repeats: int = REPEATS, progress: bool = False) -> dict[StepConfig, float]:
    """Seconds of one training step of every configuration (:class:`mgvsr.step.TrainStep`, compute only),
    measured in one pass: a warm-up step each, then ``repeats`` rounds over all of them, the fastest of
    each kept.  Round-robin, so that a load that comes and goes slows every configuration alike."""
    dev = resolve_device(device)
    configs = list(dict.fromkeys(configs))
    steps, data = {}, {}
    for c in configs:
        torch.manual_seed(0)
        amp = c.precision != "fp32"
        steps[c] = TrainStep(build_model(c.model), TrainConfig(amp=amp, channels_last=c.channels_last,
                                                               micro_batch=c.micro_batch), dev)
        if steps[c].precision != c.precision:
            raise ValueError(f"cannot calibrate {c.label}: this device computes {steps[c].precision} for --amp")
        data[c] = _windows(c)
    best = {c: float("inf") for c in configs}
    rounds = [(r, c) for r in range(repeats + 1) for c in configs]
    for r, c in tqdm(rounds, desc="calibrating steps", unit="step", disable=not progress):
        seconds = steps[c](iter(data[c]), lr=1e-7, it=0, samples=c.batch).compute
        if r > 0:  # round 0 warms every configuration up
            best[c] = min(best[c], seconds)
    return best


def stage_medians(folder: str | Path) -> list[float | None]:
    """The median compute seconds of a step of each stage of the run in ``folder`` (None: no step yet)."""
    records = runs.read_log(folder)
    n = len(records[0]["plan"]["stages"])
    by_stage: list[list[float]] = [[] for _ in range(n)]
    for r in records:
        if r["event"] == "step":
            by_stage[r["stage"]].append(r["compute"])
    return [statistics.median(v) if v else None for v in by_stage]


def time_to_psnr(evals: list[dict], target: float, cost_at) -> float | None:
    """The cost (``cost_at(iteration)``) at which the evaluated PSNR first reaches ``target``, linearly
    interpolated between the evaluation before and the one that reaches it; None where none does."""
    before = None
    for e in sorted(evals, key=lambda e: e["it"]):
        if e["psnr"] >= target:
            if before is None or before["psnr"] >= e["psnr"]:
                return cost_at(e["it"])
            share = (target - before["psnr"]) / (e["psnr"] - before["psnr"])
            return cost_at(before["it"]) + share * (cost_at(e["it"]) - cost_at(before["it"]))
        before = e
    return None


@dataclass
class Measured:
    """A run as compared: its :class:`RunCost`, evaluations, measured compute seconds and stage medians."""

    cost: RunCost
    evals: list[dict]
    compute_seconds: float
    medians: list[float | None]

    @classmethod
    def read(cls, folder: str | Path, name: str | None = None) -> Measured:
        record = runs.read_run(folder)
        end = record.end or {}
        compute = end.get("compute_seconds")
        if compute is None:
            compute = sum(r["compute"] for r in runs.read_log(folder) if r["event"] == "step")
        return cls(RunCost.read(folder, name), record.evals, compute, stage_medians(folder))


def stall_flags(run: Measured, calibrated: dict[StepConfig, float]) -> list[str]:
    """A line for every stage whose median step took over :data:`STALL_FACTOR` times its calibrated step."""
    flags = []
    for (config, _), median in zip(run.cost.stages, run.medians):
        step = calibrated[config]
        if median is not None and median > STALL_FACTOR * step:
            flags.append(f"{run.cost.name}: stage {config.patch}&{config.frames} ran {median / step:.1f}x its calibrated "
                         f"step ({median:.3g} s against {step:.3g} s): the machine was shared or busy")
    return flags


def compare(base: Measured, run: Measured, calibrated: dict[StepConfig, float]) -> dict:
    """``speedup_flops``, ``speedup_calibrated``, ``speedup_to_baseline_psnr`` and ``flags`` of ``run``
    against ``base`` (see the module docstring)."""
    flops = {c: step_flops(c) for r in (base, run) for c, _ in r.cost.stages}
    bound = base.cost.flops(flops) / run.cost.flops(flops)
    speedup_calibrated = base.cost.cost(calibrated) / run.cost.cost(calibrated)
    to_psnr = None
    if base.evals and run.evals:
        target = base.evals[-1]["psnr"]
        t_base = time_to_psnr(base.evals, target, lambda it: base.cost.cost(calibrated, it))
        t_run = time_to_psnr(run.evals, target, lambda it: run.cost.cost(calibrated, it))
        if t_base and t_run:
            to_psnr = t_base / t_run
    flags = stall_flags(base, calibrated) + stall_flags(run, calibrated)
    measured = base.compute_seconds / run.compute_seconds if run.compute_seconds else None
    arithmetic = {(c.precision, c.channels_last) for r in (base, run) for c, _ in r.cost.stages}
    if measured is not None and len(arithmetic) == 1 and measured > FLOP_MARGIN * bound:
        margin = f"{100 * (FLOP_MARGIN - 1):.0f}%"
        if measured > FLOP_MARGIN * speedup_calibrated:
            why = (f"and more than {margin} above its calibrated speedup {speedup_calibrated:.2f}x: the baseline's "
                   "measured time was further above its calibrated cost than the run's (a shared machine, or "
                   "per-step overheads that the calibration's fastest steps do not hold)")
        else:
            why = (f"but within {margin} of its calibrated speedup {speedup_calibrated:.2f}x: on this device the "
                   "run's steps do more FLOPs per second than the baseline's (not a sign of a shared machine)")
        flags.append(f"{run.cost.name}: the measured speedup {measured:.2f}x is more than {margin} above its "
                     f"FLOP bound {bound:.2f}x, {why}")
    return {"speedup_flops": bound, "speedup_calibrated": speedup_calibrated, "speedup_to_baseline_psnr": to_psnr,
            "flags": flags}


def compare_folders(base: str | Path, others: dict[str, str | Path], device: str = "auto",
                    progress: bool = False) -> dict[str, dict]:
    """:func:`compare` of every run folder of ``others`` (``{name: folder}``) against ``base``, with one
    calibration pass over all their step configurations (on ``device``)."""
    measured = {name: Measured.read(folder, name) for name, folder in others.items()}
    reference = Measured.read(base, "baseline")
    configs = [c for m in (reference, *measured.values()) for c, _ in m.cost.stages]
    calibrated = calibrate(configs, device, progress=progress)
    return {name: compare(reference, m, calibrated) for name, m in measured.items()}
