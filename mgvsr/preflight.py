"""The preflight of a paper-scale run: ``--dry-run`` of ``mgvsr reproduce`` and ``mgvsr train``.

A table of the paper at scale ``paper`` is days of multi-GPU time.  Before any of it is spent,
:func:`dry_run_table` (``mgvsr reproduce --table N --scale paper --root DIR --spynet FILE
--dry-run``) and :func:`dry_run_preset` (``mgvsr train ... --dry-run``) train nothing and:

1. **check** what would stop the run later: the devices (kind, count, memory); the dataset tree
   and its frame store (present, up to date with the tree, complete); that every run's shapes
   fit the clips and its minibatch splits over the devices and micro-batches; the SpyNet
   weights (given where the recipe needs them, in a layout that loads); the run folders (a
   finished run is reused, an unfinished one resumes, another run's folder is an error);
2. **probe** every distinct stage shape (model, LR patch, frames) of the runs still to train:
   the real model (its SpyNet weights loaded) on the real device, a few optimizer steps of the
   real training step (:class:`mgvsr.step.TrainStep`: the plan's LR, autocast, the warm start) on
   the trainer's windows of the real dataset (:func:`mgvsr.train.stage_loader`), at an iteration
   where SpyNet (or all of EDVR) trains;
3. **project** each run: wall-clock = the sum over its stages of iterations x samples per
   device x the measured seconds per sample; peak memory per device = the memory held before a
   step + micro-batch x the measured increase per sample;
4. **refuse** (``ok`` False: exit status 2) a run whose projected peak does not fit in
   :data:`FIT_FRACTION` of a device's memory, naming the largest ``--micro-batch`` that would.

The projections are estimates and say so: linear in samples from probes of a few samples
(on a GPU a larger micro-batch is usually faster per sample, so the time is an upper
estimate), without data loading (measured and shown apart), evaluations, checkpoints and
the all-reduce between devices, the frozen-SpyNet iterations at the cost of training ones.

Memory: on CUDA ``torch.cuda.max_memory_allocated`` (the tensors; the caching allocator
reserves somewhat more).  On a CPU torch keeps no such count, so the process's resident set is
measured: ``/proc/self/statm`` before the timed steps (after the C allocator handed back what
earlier steps freed, glibc's ``malloc_trim``), and during them its peak, sampled every
millisecond or so by a thread (and the high-water mark ``ru_maxrss`` where the steps raised
it).  It counts everything the process holds (Python, torch, the data): an estimate.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import math
import os
import resource
import statistics
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn

from mgvsr import runs
from mgvsr.data.datasets import KIND, open_sources, open_tree
from mgvsr.data.source import ClipSource
from mgvsr.data.store import default_store_path, fingerprint, store_fingerprint
from mgvsr.device import device_name, resolve_device
from mgvsr.errors import MgvsrError
from mgvsr.launch import initial_model, run_setup, train_config
from mgvsr.models import FlowInit, flow_init
from mgvsr.options import RunOptions
from mgvsr.presets import Preset, Scale, get_scale, table_runs
from mgvsr.reproduce import expand_tables, run_options, scale_precision, seed_folder, table_flows, table_seeds
from mgvsr.step import TrainStep
from mgvsr.train import check_plan, stage_loader

FIT_FRACTION = 0.9  # a run fits when its projected peak is at most this share of a device's memory
# On a CPU a shape is probed with one sample, then again with the runs' micro-batch where that is safe and quick:
# batching amortizes there too (basicvsr_cpu at 32&8: 0.19 s a sample alone, 0.084 s in the demo's minibatch
# of 4), and a projection from one sample was 2.3x the demo baseline's measured time.
CPU_BATCH_PROBE_MEMORY = 0.5  # the batch probe's projected peak at most this share of the memory ...
CPU_BATCH_PROBE_SECONDS = 20.0  # ... and its step at most this long by the one-sample probe
MIN_PROBE_SECONDS = 1.0  # cheap shapes are stepped until their timed steps add up to this ...
MAX_PROBE_STEPS = 10  # ... or to this many steps; the median step is kept
GIB = 1024 ** 3


# --------------------------------------------------------------------------------------
# What the dry run finds
# --------------------------------------------------------------------------------------


@dataclass
class Check:
    """One check: ``status`` ``"ok"``, ``"warning"`` (the run can go, but read this) or ``"problem"``."""

    what: str
    status: str
    detail: str


@dataclass(frozen=True)
class Shape:
    """A distinct stage shape: model configuration, LR patch and frames."""

    model: str
    patch: int
    frames: int

    @property
    def label(self) -> str:
        return f"{self.model} {self.patch}&{self.frames}"

    @property
    def cost(self) -> int:
        return self.patch * self.patch * self.frames


@dataclass
class Probe:
    """Optimizer steps of the real trainer at one shape (see the module docstring).

    ``phase``: ``"training"`` (everything trains) or ``"frozen"`` (the warm start: SpyNet fixed,
    or only EDVR's fusion module training); ``iteration`` the plan's iteration stepped at and
    ``lr`` the learning rate the optimizer used there; ``samples`` per step (one micro-batch);
    ``compute_seconds`` and ``data_seconds`` per step (the median of ``steps`` timed steps);
    ``static_bytes`` the memory held before a step, ``peak_bytes`` its peak during one;
    ``output_shape`` the model's output.  ``error``: why the probe failed (out of memory ...).
    """

    shape: Shape
    phase: str
    iteration: int
    lr: float
    samples: int
    steps: int
    compute_seconds: float = math.nan
    data_seconds: float = math.nan
    static_bytes: int = 0
    peak_bytes: int = 0
    loss: float = math.nan
    output_shape: tuple = ()
    error: str | None = None

    @property
    def seconds_per_sample(self) -> float:
        return self.compute_seconds / self.samples

    @property
    def bytes_per_sample(self) -> float:
        return max(0, self.peak_bytes - self.static_bytes) / self.samples

    def peak_at(self, micro: int) -> int:
        """The projected peak memory of a step in micro-batches of ``micro`` samples."""
        return int(self.static_bytes + micro * self.bytes_per_sample)


@dataclass
class RunEstimate:
    """A run of the dry run: ``status`` (``"to train"``, ``"resumes at N"``, ``"finished"``,
    ``"reused: FOLDER"``, ``"problem"``), the iterations left, samples per device and micro-batch
    (of its largest stage), and the projection (None where nothing is left to train or no probe ran):
    ``seconds`` of compute, ``data_seconds`` of loading, ``peak_bytes`` per device, whether it
    ``fits`` and the largest ``suggestion`` for ``--micro-batch`` that would."""

    preset: str
    model: str
    status: str
    iterations: int
    per_device: int
    micro: int
    seconds: float | None = None
    data_seconds: float | None = None
    peak_bytes: int | None = None
    fits: bool | None = None
    suggestion: int | None = None
    suggestion_peak_bytes: int | None = None

    @property
    def to_train(self) -> bool:
        return self.status == "to train" or self.status.startswith("resumes")


@dataclass
class Report:
    """Everything a dry run found; :meth:`text` prints it, ``ok`` says whether the runs may start."""

    title: str
    device: str
    device_name: str
    devices: int
    capacity_bytes: int
    memory_kind: str
    checks: list[Check] = field(default_factory=list)
    probes: list[Probe] = field(default_factory=list)
    runs: list[RunEstimate] = field(default_factory=list)
    seconds: float = 0.0
    skipped: str | None = None

    @property
    def ok(self) -> bool:
        return (not any(c.status == "problem" for c in self.checks)
                and all(r.fits is not False and r.status != "problem" for r in self.runs)
                and not any(p.error for p in self.probes))

    def text(self) -> str:
        return format_report(self)


# --------------------------------------------------------------------------------------
# Devices and memory
# --------------------------------------------------------------------------------------


def _rss_bytes() -> int:
    """This process's resident set now (Linux ``/proc/self/statm``)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _release_free_memory() -> None:
    """Hand the memory the C allocator keeps after frees back to the system (glibc ``malloc_trim``),
    so that a resident set measured next is what the process holds, not what it once held."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _rss_peak_bytes() -> int:
    """This process's resident-set high-water mark (``ru_maxrss``, KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _mem_available_bytes() -> int:
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def device_capacity(device: torch.device) -> tuple[int, str]:
    """``(bytes, how measured)``: a CUDA device's total memory, or on a CPU the memory this process
    could hold (``MemAvailable`` plus its resident set)."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory, "torch.cuda.max_memory_allocated"
    return _mem_available_bytes() + _rss_bytes(), "resident set of the process (/proc/self/statm, sampled)"


class _Memory:
    """Memory before, and peak memory during, probe steps on ``device`` (see the module docstring)."""

    def __init__(self, device: torch.device, interval: float = 0.001) -> None:
        self.device = device
        self.interval = interval
        self._peak = 0
        self._mark = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self._peak = max(self._peak, _rss_bytes())

    def start(self) -> int:
        """Begin measuring; returns the memory held now."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            return torch.cuda.memory_allocated(self.device)
        _release_free_memory()
        before = self._peak = _rss_bytes()
        self._mark = _rss_peak_bytes()
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return before

    def stop(self) -> int:
        """Stop measuring; returns the peak since :meth:`start`."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            return torch.cuda.max_memory_allocated(self.device)
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        mark = _rss_peak_bytes()
        return max(self._peak, _rss_bytes(), mark if mark > self._mark else 0)


def _gib(n: float | None) -> str:
    """Bytes for people: GiB from 1 GiB up, MiB below."""
    if n is None:
        return "-"
    return f"{n / GIB:.1f} GiB" if n >= GIB else f"{n / 2 ** 20:.0f} MiB"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


# --------------------------------------------------------------------------------------
# Probing one shape
# --------------------------------------------------------------------------------------


def phase_iteration(preset: Preset, stage_index: int, phase: str = "training") -> int | None:
    """The first iteration of stage ``stage_index`` in ``phase`` (``"training"``: after the warm start;
    ``"frozen"``: inside it), or None where the stage has no such iteration."""
    stage = preset.plan.stages[stage_index]
    _, warm = preset.warm_start
    if phase == "frozen":
        return stage.start if stage.start < warm else None
    first = max(stage.start, warm)
    return first if first < stage.end else None


@dataclass(frozen=True)
class ProbeSteps:
    """How a probe steps: ``samples`` per optimizer step, ``warmup`` untimed steps, then at least
    ``steps`` timed ones (more, up to :data:`MAX_PROBE_STEPS`, while they add up to under
    :data:`MIN_PROBE_SECONDS`)."""

    samples: int = 1
    steps: int = 1
    warmup: int = 0


def _windows(preset: Preset, stage_index: int, it: int, source: ClipSource, cfg):
    """The trainer's micro-batches of stage ``stage_index`` from iteration ``it``, over again when the
    stage ends before the probe does."""
    while True:
        yield from stage_loader(preset.plan, stage_index, it, source, cfg)


def probe_shape(net: nn.Module, preset: Preset, stage_index: int, source: ClipSource, options: RunOptions,
                size: ProbeSteps = ProbeSteps(), phase: str = "training") -> Probe:
    """Optimizer steps of ``size`` (their median kept) at the first iteration of stage ``stage_index``
    of ``preset`` in ``phase``, through the real training step: windows of ``source`` of the stage's
    shape, the plan's LR there, the warm start's frozen parameters, ``net`` moved to ``options.device``
    in ``options.amp``'s precision (and trained by these steps).  Out of memory on CUDA gives a probe
    with ``error``."""
    stage = preset.plan.stages[stage_index]
    shape = Shape(preset.model, stage.patch, stage.frames)
    it = phase_iteration(preset, stage_index, phase)
    if it is None:
        raise MgvsrError(f"{preset.name}: stage {stage_index + 1} ({stage.label}) has no {phase} iteration")
    probed = preset.shrunk(batch=size.samples)  # the same stages, iterations, LRs and warm start
    cfg = train_config(probed, options.replace(micro_batch=None, progress=False, workers=0))
    outputs: list[tuple] = []
    hook = net.register_forward_hook(lambda module, args, out: outputs.append(tuple(out.shape)))
    probe = Probe(shape, phase, it, probed.plan.lr(it), size.samples, size.steps)
    try:
        step = TrainStep(net, cfg, resolve_device(options.device))
        memory = _Memory(step.device)
        batches = _windows(probed, stage_index, it, source, cfg)
        for _ in range(size.warmup):
            step(batches, lr=probed.plan.lr(it), it=it, samples=size.samples)
        _timed_steps(step, batches, probed.plan.lr(it), it, probe, memory)
        probe.lr = step.optimizer.param_groups[0]["lr"]
        probe.output_shape = outputs[-1]
    except torch.OutOfMemoryError as exc:
        probe.error = f"out of memory at {size.samples} sample(s) per step: {str(exc).splitlines()[0]}"
        torch.cuda.empty_cache()
    finally:
        hook.remove()
    return probe


def _timed_steps(step: TrainStep, batches, lr: float, it: int, probe: Probe, memory: _Memory) -> None:
    """At least ``probe.steps`` timed steps, more (up to :data:`MAX_PROBE_STEPS`) while they add up to
    under :data:`MIN_PROBE_SECONDS`; their medians, the memory before and the peak go into ``probe``."""
    before = memory.start()
    computes, datas, loss = [], [], math.nan
    try:
        while len(computes) < probe.steps or (sum(computes) < MIN_PROBE_SECONDS and len(computes) < MAX_PROBE_STEPS):
            result = step(batches, lr=lr, it=it, samples=probe.samples)
            computes.append(result.compute)
            datas.append(result.data)
            loss = result.loss
    finally:
        probe.peak_bytes = memory.stop()
    probe.static_bytes = before
    probe.steps = len(computes)
    probe.compute_seconds, probe.data_seconds, probe.loss = statistics.median(computes), statistics.median(datas), loss


# --------------------------------------------------------------------------------------
# The runs of a dry run
# --------------------------------------------------------------------------------------


@dataclass
class _Run:
    """A run to check: its name, the preset as it trains, its folder and its options (root, micro-batch)."""

    name: str
    preset: Preset
    folder: Path
    options: RunOptions
    status: str = "to train"
    start: int = 0  # the iteration it resumes at

    @property
    def to_train(self) -> bool:
        return self.status == "to train" or self.status.startswith("resumes")

    @property
    def micro(self) -> int | None:
        return self.options.micro_batch

    @property
    def root(self) -> Path | None:
        return None if self.options.root is None else Path(self.options.root)


def _device_check(device: torch.device, devices: int) -> Check:
    if device.type == "cuda":
        count = torch.cuda.device_count()
        props = torch.cuda.get_device_properties(device)
        detail = (f"{count} CUDA device(s) visible; probing on {device} ({props.name}, "
                  f"{_gib(props.total_memory)}); the runs will use {devices}")
        if devices > count:
            detail += f" (more than this node's {count}: each node's devices are assumed alike)"
        return Check("devices", "ok", detail)
    detail = (f"no CUDA device: probing on the CPU ({device_name(device)}, {_gib(device_capacity(device)[0])} "
              f"available); the runs will use {devices} process(es)")
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    if load > 0.5 * cores:  # torch's threads wait on each other when other jobs hold the cores
        return Check("devices", "warning", f"{detail}; the CPU is busy (load {load:.1f} on {cores} cores): "
                                           "the timings below will be high and noisy (OMP_NUM_THREADS=1 helps)")
    return Check("devices", "ok", detail)


def _dataset_checks(dataset: str, test_dataset: str | None, root: Path | None, store
                    ) -> tuple[list[Check], ClipSource | None]:
    """The dataset tree, its frame store and the sources a run opens; the training source, or None."""
    what = f"dataset {dataset}" + (f" at {root}" if root is not None else "")
    checks = []
    kind = KIND.get(dataset)
    if root is not None and kind in ("reds", "vimeo90k") and store is not False:
        path = Path(store) if store not in (None, True) else default_store_path(root, kind)
        made = store_fingerprint(path)
        if made is None:
            checks.append(Check(what, "warning", f"no frame store at {path}: training decodes the PNG files, "
                                                 f"far slower (`mgvsr prepare {kind} --root {root}` writes it)"))
        else:
            try:
                _, _, _, folders = open_tree(kind, root, None)
                fresh = fingerprint(folders) == made
            except MgvsrError as exc:
                checks.append(Check(what, "warning", f"frame store at {path}; the tree itself did not open ({exc})"))
            else:
                checks.append(Check(what, "ok" if fresh else "problem",
                                    f"frame store at {path} " + ("up to date with the tree" if fresh else
                                                                 "is older than the tree: rerun `mgvsr prepare "
                                                                 f"{kind} --root {root}`")))
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            train, test = open_sources(dataset, root, test_dataset, store=store)
            frames = [train.num_frames(c) for c in train.clips()]
    except MgvsrError as exc:
        return checks + [Check(what, "problem", str(exc))], None
    detail = (f"{len(frames)} training clips ({min(frames)}-{max(frames)} frames, LR "
              f"{'x'.join(map(str, train.lq_size(train.clips()[0])[::-1]))}); "
              + (f"{len(test.clips())} test clips ({test.name})" if test is not None else "no test clips"))
    notes = list(dict.fromkeys(str(w.message) for w in caught))
    checks.append(Check(what, "warning" if notes else "ok", detail + "".join(f"; {n}" for n in notes)))
    return checks, train


def _folder_states(items: list[_Run], flows: dict[str, FlowInit], search: Path | None, devices: int) -> list[Check]:
    """Set each run's status from the run decision of its folder (:func:`mgvsr.runs.decide`, with the spec
    :func:`mgvsr.launch.run_setup` builds, as the run itself will); another run's folder, or one another
    process is training in, is a problem."""
    checks = []
    planned: list[tuple[dict, str]] = []  # the specs of the runs to train so far, and their names
    for run in items:
        flow = flows.get(run.preset.model)
        ignore = ("spynet",) if flow is None else ()
        spec = run_setup(run.preset, run.options.replace(spynet=flow or FlowInit(run.preset.model)), devices).spec
        decision = runs.decide(run.folder, spec, search=search, ignore=ignore)
        if decision.kind in ("new", "resume"):
            twin = next((name for other, name in planned if runs.same_training(spec, other, ignore)), None)
            if twin is not None:  # trains once, as the real run does
                run.status = f"same as {twin}"
                continue
            planned.append((spec, run.name))
        if decision.kind in ("refused", "busy"):
            run.status = "problem"
            checks.append(Check(f"run folder of {run.name}", "problem", decision.reason))
        elif decision.kind in ("finished", "reuse"):
            run.status = decision.describe(search)
        elif decision.kind == "resume":
            run.start = _checkpoint_iteration(run.folder / runs.CHECKPOINT)
            run.status = f"resumes at {run.start:,}"
    return checks


def _checkpoint_iteration(path: Path) -> int:
    """The iteration a trainer's ``last.pth`` resumes at (memory-mapped: the weights are not read)."""
    state = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
    return int(state["iteration"])


def _probe_samples(device: torch.device, micros: list[int]) -> int:
    """Samples per first probe step: on a GPU the smallest micro-batch of the runs at the shape, so that
    time and memory are measured where they run; 1 on a CPU, where a second probe at that micro-batch
    follows if the first says it is safe and quick (:func:`_batch_probe`)."""
    return 1 if device.type == "cpu" else max(1, min(micros))


def _batch_probe(first: Probe, micros: list[int], capacity: int, dev: torch.device) -> int | None:
    """On a CPU, the samples per step of the second probe of a shape: the runs' smallest micro-batch,
    where the one-sample ``first`` projects it under :data:`CPU_BATCH_PROBE_MEMORY` of the memory and
    :data:`CPU_BATCH_PROBE_SECONDS` a step; else None."""
    batch = max(1, min(micros))
    if dev.type != "cpu" or first.error or batch == 1:
        return None
    if (first.peak_at(batch) > CPU_BATCH_PROBE_MEMORY * capacity
            or first.seconds_per_sample * batch > CPU_BATCH_PROBE_SECONDS):
        return None
    return batch


def _micro(run: _Run, devices: int) -> tuple[int, int]:
    """``(per device, micro-batch)`` of the run's largest stage."""
    per = max(s.batch for s in run.preset.plan.stages) // devices
    return per, run.micro or per


def _suggest(probes: list[Probe], per_device: list[int], capacity: int) -> int | None:
    """The largest micro-batch dividing every stage's per-device batch whose projected peak fits."""
    limit = FIT_FRACTION * capacity
    for m in sorted({d for d in range(1, min(per_device) + 1) if all(n % d == 0 for n in per_device)}, reverse=True):
        if all(p.peak_at(m) <= limit for p in probes):
            return m
    return None


def _estimate(run: _Run, probes: dict[Shape, Probe], devices: int, capacity: int) -> RunEstimate:
    """Project a run to train from the probes of its shapes (see the module docstring)."""
    per, micro = _micro(run, devices)
    plan = run.preset.plan
    left = plan.total_iterations - run.start
    estimate = RunEstimate(run.name, run.preset.model, run.status, left, per, micro)
    if not run.to_train:
        return estimate
    seconds = data = 0.0
    used = []
    for s in plan.stages:
        probe = probes.get(Shape(run.preset.model, s.patch, s.frames))
        if probe is None or probe.error:
            return estimate
        iterations = max(0, s.end - max(s.start, run.start))
        per_stage = s.batch // devices
        seconds += iterations * per_stage * probe.seconds_per_sample
        data += iterations * per_stage * probe.data_seconds / probe.samples
        used.append(probe)
    estimate.seconds, estimate.data_seconds = seconds, data
    estimate.peak_bytes = max(p.peak_at(run.micro or s.batch // devices) for p, s in zip(used, plan.stages))
    estimate.fits = estimate.peak_bytes <= FIT_FRACTION * capacity
    estimate.suggestion = _suggest(used, [s.batch // devices for s in plan.stages], capacity)
    if estimate.suggestion is not None:
        estimate.suggestion_peak_bytes = max(p.peak_at(estimate.suggestion) for p in used)
    return estimate


@dataclass
class DryRun:
    """What a dry run checks: its ``title``, the runs (``items``), the options they run with (device,
    precision, seed, frame store, messages), ``flows`` (a function resolving the SpyNet weights, so that
    a missing file is a check, not a crash), the folder of finished runs to reuse (``search``), the
    ``devices`` the real run will use (default: ``WORLD_SIZE``) and timed ``steps`` per probe (default:
    1 on a CPU, 3 on a GPU)."""

    title: str
    items: list[_Run]
    options: RunOptions
    flows: Callable[[], dict[str, FlowInit]]
    search: Path | None = None
    devices: int | None = None
    steps: int | None = None


def preflight(job: DryRun) -> Report:
    """The dry run of ``job`` (see the module docstring)."""
    t0 = time.perf_counter()
    dev = resolve_device(job.options.device)
    devices = job.devices or int(os.environ.get("WORLD_SIZE", "1"))
    capacity, memory_kind = device_capacity(dev)
    report = Report(job.title, str(dev), device_name(dev), devices, capacity, memory_kind)
    report.checks.append(_device_check(dev, devices))
    flow_of = _spynet_check(job.flows, report)
    report.checks += _folder_states(job.items, flow_of, job.search, devices)
    sources: dict[tuple, ClipSource | None] = {}
    for run in job.items:
        if _source_key(run) not in sources:
            checks, sources[_source_key(run)] = _dataset_checks(*_source_key(run), store=job.options.store)
            report.checks += checks
    nets = _plan_checks(job, flow_of, sources, devices, report)
    probes: dict[Shape, Probe] = {}
    if any(c.status == "problem" for c in report.checks):  # not minutes of probes before saying so
        report.skipped = "probes skipped: fix the problems above first"
    else:
        probes = _probe_all(job, nets, sources, dev, devices, capacity)
        report.probes = list(probes.values())
    report.runs = [_estimate(run, probes, devices, capacity) for run in job.items]
    report.seconds = time.perf_counter() - t0
    return report


def _source_key(run: _Run) -> tuple:
    return run.preset.dataset, run.preset.test_dataset, run.root


def _spynet_check(flows: Callable[[], dict[str, FlowInit]], report: Report) -> dict[str, FlowInit]:
    """The SpyNet weights of every model (a check says which, or why they are missing)."""
    try:
        flow_of = flows()
    except MgvsrError as exc:
        report.checks.append(Check("SpyNet", "problem", str(exc)))
        return {}
    given = [f.describe() for f in flow_of.values() if f.spec is not None]
    report.checks.append(Check("SpyNet", "ok", "; ".join(given) or "no run needs pretrained SpyNet weights"))
    return flow_of


def _plan_checks(job: DryRun, flow_of: dict[str, FlowInit], sources: dict, devices: int,
                 report: Report) -> dict[str, tuple[nn.Module, dict]]:
    """Build each model to train once (``{model: (net, its initial weights)}``: the probes train it) and
    check every run's plan against its data and model (:func:`mgvsr.train.check_plan`)."""
    nets: dict[str, tuple[nn.Module, dict]] = {}
    for run in (r for r in job.items if r.to_train):
        model = run.preset.model
        if model not in nets:
            net = initial_model(model, job.options.seed, flow_of.get(model) or FlowInit(model))
            nets[model] = net, {k: v.clone() for k, v in net.state_dict().items()}
        if sources[_source_key(run)] is None:
            continue
        try:
            check_plan(run.preset.plan, sources[_source_key(run)], nets[model][0], devices, run.micro)
        except MgvsrError as exc:
            run.status = "problem"
            report.checks.append(Check(f"plan of {run.name}", "problem", str(exc)))
    return nets


def _probe_all(job: DryRun, nets: dict[str, tuple[nn.Module, dict]], sources: dict, dev: torch.device,
               devices: int, capacity: int) -> dict[Shape, Probe]:
    """One probe per distinct shape of the runs to train, cheapest first, each from the initial weights."""
    steps = job.steps or (1 if dev.type == "cpu" else 3)
    shapes: dict[Shape, list[tuple[_Run, int]]] = {}
    for run in (r for r in job.items if r.to_train):
        for j, s in enumerate(run.preset.plan.stages):
            shapes.setdefault(Shape(run.preset.model, s.patch, s.frames), []).append((run, j))
    probes: dict[Shape, Probe] = {}
    warmed: set[str] = set()
    for shape in sorted(shapes, key=lambda s: (s.model, s.cost)):
        run, j = shapes[shape][0]
        source = sources[_source_key(run)]
        if source is None:
            continue
        micros = [_micro(r, devices)[1] for r, _ in shapes[shape]]
        samples = _probe_samples(dev, micros)
        phase = "training" if phase_iteration(run.preset, j) is not None else "frozen"
        # one warm-up step per model on a CPU (its first step pays one-time costs), one per shape on a GPU
        warmup = 1 if (dev.type == "cuda" or shape.model not in warmed) else 0
        warmed.add(shape.model)
        job.options.say(f"probing {shape.label} ({phase}, {samples} sample(s) per step, {warmup} + {steps} step(s)) ...")
        net, initial = nets[shape.model]
        for size in (ProbeSteps(samples, steps, warmup), ProbeSteps(1, steps, warmup)):
            net.load_state_dict(initial)
            probes[shape] = probe_shape(net, run.preset, j, source, job.options, size, phase)
            if not probes[shape].error or size.samples == 1:
                break
        batch = _batch_probe(probes[shape], micros, capacity, dev)
        if batch is not None:  # one warm-up step: a new batch size is a new kernel configuration on a CPU
            job.options.say(f"probing {shape.label} again with {batch} samples per step ...")
            net.load_state_dict(initial)
            again = probe_shape(net, run.preset, j, source, job.options, ProbeSteps(batch, steps, 1), phase)
            probes[shape] = probes[shape] if again.error else again
    return probes


# --------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------


def dry_run_table(table: str | int, scale: str | Scale = "paper", out: str | Path = "runs/reproduce",
                  options: RunOptions | None = None, *, devices: int | None = None, steps: int | None = None) -> Report:
    """The dry run of ``mgvsr reproduce --table TABLE --scale SCALE --out OUT --dry-run``: every run
    :func:`mgvsr.reproduce.reproduce_table` would train with ``options``, checked, probed and projected."""
    scale = get_scale(scale)
    out = Path(out)
    options = options or RunOptions(log=print)
    presets = list({p.name: p for t in expand_tables(table) for p in table_runs(t)}.values())
    seeds = table_seeds(scale, options.seed)  # as train_runs: every preset, each seed
    items = [_Run(p.name if seed == seeds[0] else f"{p.name} (seed {seed})", p.at_scale(scale),
                  seed_folder(out, p, seed, seeds[0]), run_options(p, scale, options.replace(seed=seed)))
             for seed in seeds for p in presets]
    if scale.dataset is None and options.root is None and any(r.preset.dataset != "sample" for r in items):
        raise MgvsrError(f"table {table} at scale {scale.name} trains on "
                         f"{', '.join(sorted({r.preset.dataset for r in items}))}: give its root (--root DIR)")
    say = options.log or (lambda message: None)
    what = f"{len(presets)} runs" + (f" x {len(seeds)} seeds" if len(seeds) > 1 else "")
    return preflight(DryRun(f"table {table} at scale {scale.name!r} ({what})", items, scale_precision(scale, options),
                            flows=lambda: table_flows(presets, scale, options.spynet, say), search=out,
                            devices=devices, steps=steps))


def dry_run_preset(preset: Preset, out: str | Path, options: RunOptions | None = None, *,
                   devices: int | None = None, steps: int | None = None) -> Report:
    """The dry run of ``mgvsr train --preset P ... --dry-run``: ``preset`` (as the command line
    transformed it) checked, probed and projected."""
    options = options or RunOptions(log=print)
    if preset.dataset == "sample":
        options = options.replace(root=None)
    item = _Run(preset.name, preset, Path(out), options)
    return preflight(DryRun(f"{preset.name} ({preset.model} on {preset.dataset})", [item], options,
                            flows=lambda: {preset.model: flow_init(preset.model, options.spynet, what=preset.name)},
                            devices=devices, steps=steps))


# --------------------------------------------------------------------------------------
# The report as text
# --------------------------------------------------------------------------------------


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]
    lines = ["  " + "  ".join(h.ljust(w) for h, w in zip(head, widths))]
    lines += ["  " + "  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in rows]
    return lines


def format_report(report: Report) -> str:
    """The dry run's findings for people: checks, probes, projected runs, totals, refusals."""
    lines = [f"mgvsr dry run: {report.title}; {report.devices} device(s) like {report.device} "
             f"({report.device_name}, {_gib(report.capacity_bytes)})", "", "checks:"]
    for c in report.checks:
        lines.append(f"  {c.status.upper():<8} {c.what}: {c.detail}")
    if report.probes:
        lines += ["", "probes (the real model and trainer on the real data; the median of the timed steps, "
                      "after a warm-up step (on a CPU: one per model)):"]
        rows = []
        for p in report.probes:
            if p.error:
                rows.append([p.shape.label, p.phase, str(p.samples), "-", "-", "-", "-", p.error, "-"])
                continue
            rows.append([p.shape.label, p.phase, str(p.samples), f"{p.seconds_per_sample:.3g}",
                         f"{p.data_seconds / p.samples:.3g}", _gib(p.peak_bytes), _gib(p.bytes_per_sample),
                         f"{p.loss:.4f}", str(p.steps)])
        lines += _table(["shape", "phase", "samples/step", "compute s/sample", "data s/sample", "peak",
                         "+ per sample", "loss", "steps"], rows)
    if report.skipped:
        lines += ["", report.skipped]
    lines += ["", "runs (projected: an estimate, see below):"]
    rows = []
    for r in report.runs:
        per = f"{r.per_device}" + (f" ({r.per_device // r.micro} x {r.micro})" if r.micro != r.per_device else "")
        fits = "-" if r.fits is None else ("yes" if r.fits else f"NO (--micro-batch {r.suggestion})"
                                           if r.suggestion else "NO")
        device_hours = None if r.seconds is None else r.seconds * report.devices / 3600
        rows.append([r.preset, r.status, f"{r.iterations:,}", per, _duration(r.seconds),
                     "-" if device_hours is None else f"{device_hours:,.1f}", _duration(r.data_seconds),
                     _gib(r.peak_bytes), fits])
    lines += _table(["run", "status", "iterations left", "samples/device", "wall-clock", "device-hours",
                     "data loading", "peak/device", "fits"], rows)
    todo = [r for r in report.runs if r.to_train]
    known = [r.seconds for r in todo if r.seconds is not None]
    total = sum(known)
    line = f"to train: {len(todo)} of {len(report.runs)} runs"
    if known:
        peak = max(r.peak_bytes for r in todo if r.peak_bytes is not None)
        line += (f"; projected {_duration(total)} of wall-clock one after another on {report.devices} device(s), "
                 f"{total * report.devices / 3600:,.1f} device-hours, peak memory per device up to {_gib(peak)}"
                 + ("" if len(known) == len(todo) else f" ({len(todo) - len(known)} not projected)"))
    lines += ["", line]
    lines.append("These are estimates: compute time linear in samples from the probes (at the runs' smallest "
                 "micro-batch; on a CPU where that is slow or large, one sample, and larger micro-batches are "
                 "usually faster per sample), without data loading (shown apart, from one "
                 "loader process), evaluations, checkpoints or the all-reduce between devices; frozen-SpyNet "
                 f"iterations counted at the training cost. Peak memory per device: {report.memory_kind}, "
                 f"before a step plus micro-batch x the increase per sample; a run fits below {FIT_FRACTION:.0%} "
                 "of the device's memory.")
    for r in report.runs:
        if r.fits is False:
            hint = (f"--micro-batch {r.suggestion} would fit (~{_gib(r.suggestion_peak_bytes)})" if r.suggestion
                    else "no micro-batch fits: use more devices, --amp, or a device with more memory")
            lines.append(f"REFUSED: {r.preset} needs ~{_gib(r.peak_bytes)} per device at micro-batch {r.micro} "
                         f"({_gib(report.capacity_bytes)} on {report.device_name}); {hint}.")
    problems = ([c for c in report.checks if c.status == "problem"] + [p for p in report.probes if p.error]
                + [r for r in report.runs if r.fits is False or r.status == "problem"])
    lines.append(f"\n{'READY' if report.ok else 'NOT READY'}: dry run took {_duration(report.seconds)}"
                 + ("" if report.ok else f"; {len(problems)} problem(s) above"))
    return "\n".join(lines)
