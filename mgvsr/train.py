"""The trainer: the plan decides the shape and the LR of every iteration; this loop follows it.

One optimizer step ``it`` of a :class:`~mgvsr.schedule.Plan`:

1. the stage of ``it`` gives the window shape (``frames`` T, LR ``patch`` S) and the
   minibatch size; windows are drawn by :class:`~mgvsr.data.windows.TrainingWindows`, whose
   sample ``k`` is a pure function of the seed and ``k``;
2. the LR of every parameter group is set to ``plan.lr(it)`` times the group's multiplier
   (SpyNet's 0.125 in BasicVSR's recipe);
3. forward, Charbonnier loss, backward (a step may be split into micro-batches whose
   gradients accumulate: the same update as one large batch, at lower peak memory, and
   on a CPU faster per sample), Adam step;
4. time is kept in two parts: *compute* (forward, backward, step; the device
   synchronised) and *data* (waiting for the loader and the copy to the device).  The
   paper reports compute only; the run log has both.

A run writes into ``out``: ``log.jsonl`` (a JSON line per iteration, per evaluation and
per stage end; the ``start`` record holds the run's :meth:`Trainer.setup` (devices, samples per
device, micro-batches, precision) and the fingerprint of its initial weights, the ``end``
record its times, also in device-seconds), ``last.pth`` (the state to resume from, written
atomically at every stage end, every ``checkpoint_every`` iterations and on interruption, the
one before kept as ``previous.pth``, each with a checksum: :mod:`mgvsr.checkpointing`) and ``final.pth``
(``{"params": state_dict}``, readable by :func:`mgvsr.models.checkpoints.load_pretrained`
and by BasicSR).  ``resume=True`` continues from ``last.pth`` exactly (from ``previous.pth``,
with a warning, when ``last.pth`` is damaged): on a CPU the losses after a resume equal those
of an uninterrupted run.  ``SIGTERM`` or ``SIGUSR1`` during training stops it after the current
step with a checkpoint (:mod:`mgvsr.preemption`); ``cfg.tensorboard`` also logs to TensorBoard
(:mod:`mgvsr.watch`).

:func:`run_preset` runs a :class:`~mgvsr.presets.Preset` as it is (transform it first:
:meth:`~mgvsr.presets.Preset.shrunk`, :meth:`~mgvsr.presets.Preset.at_scale`) into a run
folder under the rule of :mod:`mgvsr.runs`: a finished run of the same spec is read, not
retrained; an unfinished one resumes; another run's folder is refused.

The trainer asks of the model only what :mod:`mgvsr.models.protocol` declares (its frames,
patch multiple, flow network, warm start, target frames).

Distributed: launched by ``torchrun`` (``WORLD_SIZE > 1``), each process takes
``batch / world_size`` samples of every step and DistributedDataParallel averages the
gradients (NCCL on CUDA, gloo on CPU): the same update as one process with the whole batch.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import math
import os
import platform
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from mgvsr import checkpointing, runs
from mgvsr.data.datasets import open_sources, verify_store
from mgvsr.data.source import ClipSource
from mgvsr.data.windows import TrainingWindows, to_float
from mgvsr.errors import MgvsrError, PlanError, Preempted
from mgvsr.evaluate import evaluate_model
from mgvsr.models import FlowInit, build_model, flow_init, protocol
from mgvsr.models.protocol import target_frames, unwrap
from mgvsr.preemption import StopSignals, ignore_in_worker, signal_name
from mgvsr.presets import Preset
from mgvsr.schedule import Plan
from mgvsr.watch import Board

CHECKPOINT_VERSION = 1
# How long a process waits for the others: rank 0 evaluates alone at the end of a run (REDS4 in minutes,
# Vimeo-90K-T's 7,824 clips far longer) while the others wait for it (the next run of `mgvsr reproduce`).
DIST_TIMEOUT = datetime.timedelta(hours=3)


@dataclass
class TrainConfig:
    """Everything about a run that is not the plan, the model or the data.

    - ``micro_batch``: samples per forward/backward (gradient accumulation); None = the
      whole per-process batch at once.
    - ``frozen_iters`` / ``frozen``: the recipe's warm start (:data:`mgvsr.models.protocol.WARM_STARTS`):
      ``frozen="flow"`` keeps the flow network fixed for the first ``frozen_iters`` steps
      (BasicVSR); ``frozen="fusion-only"`` trains only the fusion module for them (EDVR's TSA recipe).
    - ``flow_lr_mult``: the flow network's LR multiplier once it trains (BasicVSR: 0.125).
    - ``eval_every``: evaluate on the test clips every so many iterations (and always at
      the end); 0 = only at the end.  ``checkpoint_every``: likewise for ``last.pth``
      (always at stage ends).
    - ``tensorboard``: also log to ``out/tensorboard`` (:mod:`mgvsr.watch`; needs the
      ``tensorboard`` package).
    - ``channels_last``: train in the ``channels_last`` memory format (weights, activations,
      gradients, optimizer state); None (default) where the model declares it faster for the
      device and precision (:func:`mgvsr.models.protocol.prefers_channels_last`).  The numbers
      are the same up to float rounding; checkpoints load either way.
    - ``amp``: mixed precision: bfloat16 autocast where the device computes bfloat16 natively,
      float16 with loss scaling on CUDA devices without it, fp32 on a CPU without it
      (:func:`resolve_precision`; the run log's ``start`` record names the choice).  Parameters,
      the loss, the optimizer state and the evaluations stay in fp32.
    """

    seed: int = 0
    device: str = "auto"
    micro_batch: int | None = None
    frozen_iters: int = 0
    frozen: str = "flow"
    flow_lr_mult: float = 1.0
    betas: tuple[float, float] = (0.9, 0.99)
    eval_every: int = 0
    checkpoint_every: int = 0
    num_workers: int = 0
    amp: bool = False
    loss_eps: float = 1e-12  # Charbonnier's eps (BasicSR's 1e-12, an L1 loss; bench/bench_faster_start.py)
    channels_last: bool | None = None  # None: where the model measured faster (protocol.prefers_channels_last)
    augment: bool = True
    reverse: bool = False
    progress: bool = True
    eval_channel: str | None = None  # None: the benchmark's protocol (RGB for REDS4, Y for Vid4 ...)
    tensorboard: bool = False
    extra: dict = field(default_factory=dict)  # free-form, kept in the log (preset name, ...)


def charbonnier(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Charbonnier loss ``mean(sqrt((pred - target)^2 + eps))`` (BasicSR's CharbonnierLoss)."""
    return torch.sqrt((pred - target) ** 2 + eps).mean()


def resolve_device(name: str = "auto") -> torch.device:
    """``"auto"``: CUDA when present, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise MgvsrError(f"device {name!r} asked for, but torch sees no CUDA device")
    return device


# "0": act as if the device had no bfloat16 (the fallback's tests, fp32 comparisons); "1": trust that it has
BF16_ENV = "MGVSR_BF16"
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # x86 /proc/cpuinfo flags of native bfloat16 arithmetic


def _cpuinfo_flags(path: str = "/proc/cpuinfo") -> set[str]:
    """The CPU feature flags of ``/proc/cpuinfo`` (x86 ``flags``, Arm ``Features``); empty where unreadable."""
    try:
        text = Path(path).read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def cpu_bf16_native() -> bool:
    """Whether this CPU computes bfloat16 natively: AVX512-BF16 or AMX-BF16 (x86), BF16 (Arm).

    Elsewhere oneDNN emulates bfloat16 with fp32 arithmetic plus conversions, which is slower than
    fp32.  ``MGVSR_BF16=0`` (or ``1``) in the environment overrides the detection.
    """
    forced = os.environ.get(BF16_ENV)
    if forced in ("0", "1"):
        return forced == "1"
    for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):  # torch's own cpuinfo probes
        fn = getattr(torch.cpu, probe, None)
        if fn is not None and fn():
            return True
    flags = _cpuinfo_flags()
    return bool(flags & set(CPU_BF16_FLAGS)) or ("bf16" in flags and platform.machine() in ("aarch64", "arm64"))


def bf16_supported(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 natively (a CUDA device with bf16, a CPU of :func:`cpu_bf16_native`);
    ``MGVSR_BF16=0`` says no for every device."""
    if os.environ.get(BF16_ENV) == "0":
        return False
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and cpu_bf16_native()


def resolve_precision(device: torch.device, amp: bool) -> str:
    """The arithmetic a run uses: ``"fp32"`` without ``amp``; with it, ``"bf16"`` autocast where the
    device computes in bfloat16 (:func:`bf16_supported`), ``"fp16"`` (with loss scaling) on CUDA
    devices without bfloat16, ``"fp32"`` elsewhere (a CPU without native bfloat16 would emulate it,
    slower than fp32: :func:`precision_note` says so)."""
    if not amp:
        return "fp32"
    if bf16_supported(device):
        return "bf16"
    return "fp16" if device.type == "cuda" else "fp32"


def precision_note(device: torch.device, amp: bool) -> str:
    """One line saying which arithmetic :func:`resolve_precision` chose and why."""
    precision = resolve_precision(device, amp)
    if not amp:
        return "precision fp32"
    if precision == "bf16":
        what = "a CUDA device with bfloat16" if device.type == "cuda" else "a CPU with native bfloat16 (AVX512-BF16/AMX)"
        return f"precision bf16: autocast on {what}; loss, optimizer state and metrics in fp32"
    if precision == "fp16":
        return "precision fp16: autocast with loss scaling (this CUDA device has no bfloat16)"
    why = (f"{BF16_ENV}=0 is set" if os.environ.get(BF16_ENV) == "0" else
           "this CPU does not compute bfloat16 natively (no AVX512-BF16 or AMX), emulated it is slower than fp32"
           if device.type == "cpu" else f"no mixed precision on {device.type}")
    return f"precision fp32: mixed precision was asked for, but {why}"


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``'s, else what :mod:`platform` knows)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def device_name(device: torch.device) -> str:
    """The device's name as a run log records it: the GPU's (``"NVIDIA H100 80GB HBM3"``) or the CPU's
    model with the threads torch uses."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({cpu_model()}, {torch.get_num_threads()} threads)"


def weights_fingerprint(model: nn.Module) -> str:
    """SHA-256 of a model's state dict (names, dtypes, shapes and bytes, in order): two runs start
    from the same weights exactly when their fingerprints are equal."""
    digest = hashlib.sha256()
    for name, tensor in unwrap(model).state_dict().items():
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def check_plan(plan: Plan, source: ClipSource, model: nn.Module, world: int = 1, micro_batch: int | None = None) -> None:
    """:class:`PlanError` when ``plan`` cannot run: a window larger or longer than ``source``'s clips,
    shapes ``model`` refuses, a minibatch that does not split over ``world`` processes or into
    micro-batches of ``micro_batch``."""
    names = source.clips()
    if not names:
        raise PlanError(f"{source.name}: the training set holds no clips")
    min_frames = min(source.num_frames(c) for c in names)
    sizes = [source.lq_size(c) for c in names]
    min_size = min(sizes, key=lambda hw: min(hw))
    plan.check_fits(max_frames=min_frames, min_lq_size=min_size,
                    model_frames=protocol.sliding_window(model), patch_multiple=protocol.patch_multiple(model))
    for j, s in enumerate(plan.stages):
        per_rank, rem = divmod(s.batch, world)
        if rem:
            raise PlanError(f"stage {j + 1} batch {s.batch} does not split over {world} processes")
        mb = micro_batch or per_rank
        if per_rank % mb:
            raise PlanError(
                f"stage {j + 1}: per-process batch {per_rank} is not a multiple of micro_batch {mb}"
            )


def samples_before(plan: Plan, it: int) -> int:
    """Training samples consumed by steps ``0 .. it - 1``."""
    index, stage = plan.at(it)
    return sum(s.samples for s in plan.stages[:index]) + (it - stage.start) * stage.batch


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Adam:
    """Adam with two groups: the flow network (LR x ``flow_lr_mult``) and the rest."""
    flow_params = protocol.flow_parameters(model)
    flow = {id(p) for p in flow_params}
    main = [p for p in model.parameters() if id(p) not in flow]
    groups = [{"params": main, "lr_mult": 1.0, "name": "main"}]
    if flow:
        groups.append({"params": flow_params, "lr_mult": cfg.flow_lr_mult, "name": "flow"})
    return torch.optim.Adam(groups, lr=0.0, betas=cfg.betas)


def set_frozen(model: nn.Module, cfg: TrainConfig, it: int) -> None:
    """Freeze or unfreeze the warm start's parameters for step ``it``."""
    if not cfg.frozen_iters:
        return
    frozen = {id(p) for p in protocol.warm_start_frozen(model, cfg.frozen)}
    keep = it < cfg.frozen_iters
    for p in model.parameters():
        p.requires_grad_(not (keep and id(p) in frozen))


atomic_save = checkpointing.save_atomic  # torch.save to a temporary file, then rename


class RunLog:
    """``log.jsonl``: one JSON object a line; truncated to a checkpoint's iteration on resume."""

    def __init__(self, path: Path, enabled: bool = True) -> None:
        self.path = path
        self.enabled = enabled

    def _records(self) -> list[tuple[str, dict]]:
        """``(line, record)`` pairs; a last line cut short by a kill mid-write is dropped."""
        lines = self.path.read_text().splitlines()
        records = []
        for k, line in enumerate(lines):
            try:
                records.append((line, json.loads(line)))
            except json.JSONDecodeError:
                if k < len(lines) - 1:
                    raise MgvsrError(f"{self.path}, line {k + 1}: not a JSON record; the run log is damaged") from None
        return records

    def steps_done(self) -> int:
        """Optimizer steps the log records (the last ``step`` record's iteration + 1)."""
        if not self.path.exists():
            return 0
        return max((rec["it"] + 1 for _, rec in self._records() if rec.get("event") == "step"), default=0)

    def truncate_after(self, iteration: int) -> None:
        """Keep the records of iterations ``< iteration`` (and evaluations/stage ends at it)."""
        if not self.enabled or not self.path.exists():
            return
        kept = [line for line, rec in self._records()
                if rec["it"] < iteration or (rec["it"] == iteration and rec["event"] != "step")]
        self.path.write_text("".join(k + "\n" for k in kept))

    def write(self, **record) -> None:
        if self.enabled:
            try:
                with self.path.open("a") as f:
                    f.write(json.dumps(record) + "\n")
            except OSError as exc:
                raise MgvsrError(f"cannot write the run log {self.path}: {exc.strerror or exc}") from exc


@dataclass
class Totals:
    """Seconds spent so far (carried through checkpoints)."""

    compute: float = 0.0
    data: float = 0.0
    eval: float = 0.0
    stage_compute: list = field(default_factory=list)
    stage_data: list = field(default_factory=list)

    @property
    def train(self) -> float:
        """Training wall-clock: compute plus data, without evaluations and checkpoints."""
        return self.compute + self.data


class Trainer:
    """Trains ``model`` on ``train`` clips following ``plan``; evaluates on ``test`` clips.

    ``evaluate`` is a function ``(model, source) -> {"mean": {"psnr", "ssim"}, ...}``
    (default: :func:`mgvsr.evaluate.evaluate_model` on the Y channel).
    """

    def __init__(self, model: nn.Module, plan: Plan, train: ClipSource, out: str | Path,
                 cfg: TrainConfig | None = None, test: ClipSource | None = None,
                 evaluate=None) -> None:
        self.cfg = cfg or TrainConfig()
        self.plan = plan
        self.train_source = train
        self.test_source = test
        self.out = Path(out)
        self.device = resolve_device(self.cfg.device)
        self.rank, self.world = _dist_rank_world()
        self.is_main = self.rank == 0
        self._evaluate = evaluate
        self._check_plan(model)
        self.precision = resolve_precision(self.device, self.cfg.amp)
        self.precision_note = precision_note(self.device, self.cfg.amp)
        self.channels_last = self.cfg.channels_last
        if self.channels_last is None:
            self.channels_last = protocol.prefers_channels_last(model, self.device.type, self.precision)
        self.model = model.to(self.device)
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.optimizer = make_optimizer(self.model, self.cfg)
        self.ddp = None
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp = DistributedDataParallel(self.model, device_ids=ids, find_unused_parameters=True)
        self.scaler = torch.amp.GradScaler("cuda") if self.precision == "fp16" else None
        self.it = 0
        self.totals = Totals(stage_compute=[0.0] * len(plan), stage_data=[0.0] * len(plan))
        self.evals: list[dict] = []
        self.saved_at: int | None = None  # the iteration of the newest checkpoint on disk
        self.board: Board | None = None
        if self.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
        self.log = RunLog(self.out / "log.jsonl", enabled=self.is_main)

    # ---- checks ----------------------------------------------------------------------------
    def _check_plan(self, model: nn.Module) -> None:
        """Refuse a plan its data or model cannot run, before the first iteration."""
        check_plan(self.plan, self.train_source, model, self.world, self.cfg.micro_batch)

    def _autocast(self):
        if self.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.float16 if self.precision == "fp16" else torch.bfloat16
        return torch.autocast(self.device.type, dtype=dtype)

    def setup(self) -> dict:
        """How the run is computed, for reading its speed honestly: ``world_size`` (processes, one
        device each), ``device`` and ``device_name``, ``precision``, and per stage the
        ``per_device_batch`` (samples each device computes per step), the ``micro_batch`` (samples per
        forward/backward) and ``micro_batches`` (forward/backward passes per step)."""
        per_device = [s.batch // self.world for s in self.plan.stages]
        micro = [self.cfg.micro_batch or n for n in per_device]
        return {"world_size": self.world, "device": str(self.device), "device_name": device_name(self.device),
                "precision": self.precision, "per_device_batch": per_device, "micro_batch": micro,
                "micro_batches": [n // m for n, m in zip(per_device, micro)]}

    # ---- checkpoints -------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "version": CHECKPOINT_VERSION,
            "params": unwrap(self.model).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": None if self.scaler is None else self.scaler.state_dict(),
            "iteration": self.it,
            "totals": asdict(self.totals),
            "evals": self.evals,
            "plan": self.plan.to_dict(),
            "config": _jsonable(asdict(self.cfg)),
            "torch_rng": torch.get_rng_state(),
        }

    def save(self) -> None:
        """Write ``last.pth`` (the one before becomes ``previous.pth``; main process only)."""
        if self.is_main:
            checkpointing.write_checkpoint(self.state_dict(), self.out, saved_before=self.saved_at)
        self.saved_at = self.it

    def load(self, path: str | Path) -> None:
        """Restore a checkpoint written by :meth:`save` (same model, same plan), verified."""
        self._restore(checkpointing.read_checkpoint(path), Path(path))

    def _restore(self, state: dict, path: Path) -> None:
        if state.get("version") != CHECKPOINT_VERSION:
            raise MgvsrError(f"cannot resume from {path}: not a checkpoint written by mgvsr's trainer")
        checkpointing.check_model(unwrap(self.model), state, path, model_name=self.cfg.extra.get("model"))
        if state["plan"] != self.plan.to_dict():
            raise MgvsrError(
                f"cannot resume from {path}: it was written for a different plan "
                f"({state['plan'].get('name') or 'unnamed'}, {state['plan']['total_iterations']} iterations)"
            )
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.it = state["iteration"]
        self.totals = Totals(**state["totals"])
        self.evals = state["evals"]
        torch.set_rng_state(state["torch_rng"])
        self.saved_at = self.it

    def _resume(self) -> None:
        """Continue from the newest intact checkpoint in ``out``; a damaged newer one is named in a
        warning (with the iterations trained again) and renamed ``*.damaged``."""
        found = checkpointing.newest_intact(self.out)
        self._restore(found.state, found.path)
        if self.world > 1:
            dist.barrier()  # every process has read its checkpoint before a damaged one is moved
        done = self.log.steps_done() if self.is_main else self.it
        repeated = max(0, done - self.it)
        if found.problems and self.is_main:
            aside = [checkpointing.set_aside(p) for p in found.damaged]
            warnings.warn(f"{found.problems[0]}; resuming from {found.path} at iteration {self.it}: "
                          f"{repeated} iteration{'s' if repeated != 1 else ''} "
                          f"{f'({self.it}-{done - 1}) ' if repeated else ''}trained again "
                          f"(the damaged file is kept as {aside[0].name})", stacklevel=3)
        self.log.truncate_after(self.it)
        self.log.write(event="resume", it=self.it, checkpoint=found.path.name, repeated=repeated,
                       damaged=[str(p.name) for p in found.damaged],
                       restart=int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")))

    # ---- the loop ----------------------------------------------------------------------------
    def _loader(self, stage_index: int, first_it: int) -> DataLoader:
        """Windows of the stage's shape for this process, from step ``first_it`` to the stage end."""
        stage = self.plan.stages[stage_index]
        steps = stage.end - first_it
        per_rank = stage.batch // self.world
        offset = samples_before(self.plan, first_it)
        # Vimeo-90K: septuplets are mirrored to 14 frames only for stages longer than 7 frames
        dataset = TrainingWindows(self.train_source.windows_source(stage.frames), stage.frames, stage.patch,
                                  length=steps * stage.batch,
                                  seed=self.cfg.seed, offset=offset, augment=self.cfg.augment,
                                  reverse=self.cfg.reverse)
        # this process's share of every step: samples [rank * per_rank, (rank + 1) * per_rank)
        indices = [s * stage.batch + self.rank * per_rank + i for s in range(steps) for i in range(per_rank)]
        return DataLoader(dataset, batch_size=self.cfg.micro_batch or per_rank, sampler=indices,
                          num_workers=self.cfg.num_workers, pin_memory=self.device.type == "cuda",
                          persistent_workers=False,
                          worker_init_fn=ignore_in_worker if self.cfg.num_workers else None)

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def _step(self, batches, stage_index: int) -> tuple[float, float, float]:
        """One optimizer step over ``batches`` (an iterator of micro-batches).

        Returns ``(loss, compute seconds, data seconds)``.
        """
        stage = self.plan.stages[stage_index]
        per_rank = stage.batch // self.world
        micro = self.cfg.micro_batch or per_rank
        n_micro = per_rank // micro
        lr = self.plan.lr(self.it)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group["lr_mult"]
        set_frozen(unwrap(self.model), self.cfg, self.it)
        net = self.ddp or self.model
        net.train()
        self.optimizer.zero_grad(set_to_none=True)
        compute = data = 0.0
        loss_sum = 0.0
        for k in range(n_micro):
            t0 = time.perf_counter()
            lq, gt = next(batches)
            lq = to_float(lq.to(self.device, non_blocking=True))
            gt = to_float(gt.to(self.device, non_blocking=True))
            self._sync()
            t1 = time.perf_counter()
            sync_ctx = net.no_sync() if (self.ddp is not None and k < n_micro - 1) else contextlib.nullcontext()
            with sync_ctx:
                with self._autocast():
                    out = net(lq)
                # the loss in fp32 whatever the precision
                loss = charbonnier(out.float(), target_frames(net, gt), self.cfg.loss_eps)
                scaled = loss * (lq.shape[0] / per_rank)
                if self.scaler is not None:
                    self.scaler.scale(scaled).backward()
                else:
                    scaled.backward()
            loss_sum += loss.detach() * lq.shape[0]
            self._sync()
            t2 = time.perf_counter()
            data += t1 - t0
            compute += t2 - t1
        t2 = time.perf_counter()
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        loss_mean = loss_sum / per_rank
        if self.world > 1:
            dist.all_reduce(loss_mean)
            loss_mean /= self.world
        loss_value = float(loss_mean)  # synchronises the device
        compute += time.perf_counter() - t2
        return loss_value, compute, data

    def evaluate(self) -> dict | None:
        """Scores on the test clips (main process), logged and kept in ``self.evals``."""
        if self.test_source is None or not self.is_main:
            return None
        t0 = time.perf_counter()
        model = unwrap(self.model)
        was_training = model.training
        model.eval()
        if self._evaluate is not None:
            scores = self._evaluate(model, self.test_source)
        else:
            scores = evaluate_model(model, self.test_source, channel=self.cfg.eval_channel,
                                    device=self.device, progress=False)
        model.train(was_training)
        if hasattr(scores, "to_dict"):
            scores = scores.to_dict()
        seconds = time.perf_counter() - t0
        self.totals.eval += seconds
        record = {"it": self.it, "psnr": scores["mean"]["psnr"], "ssim": scores["mean"]["ssim"],
                  "train_seconds": self.totals.train, "compute_seconds": self.totals.compute,
                  "eval_seconds": seconds,
                  "clips": {k: {"psnr": v["psnr"], "ssim": v["ssim"]} for k, v in scores.get("clips", {}).items()}}
        self.evals.append(record)
        self.log.write(event="eval", **record)
        if self.board is not None:
            self.board.evaluation(self.it, record["psnr"], record["ssim"])
        return record

    def run(self, resume: bool = False) -> dict:
        """Train to the end of the plan (from the newest intact checkpoint when ``resume``); returns a
        summary.  Raises :class:`~mgvsr.errors.Preempted` after writing a checkpoint when a stop
        signal came (:mod:`mgvsr.preemption`)."""
        torch.manual_seed(self.cfg.seed)
        if resume:
            self._resume()
        elif self.is_main:
            self.log.path.write_text("")
            self.log.write(event="start", it=0, plan=self.plan.to_dict(), config=_jsonable(asdict(self.cfg)),
                           model=type(unwrap(self.model)).__name__, world_size=self.world,
                           device=str(self.device), setup=self.setup(),
                           initial_weights=weights_fingerprint(self.model), precision=self.precision,
                           precision_note=self.precision_note, channels_last=self.channels_last)
        if self.cfg.tensorboard and self.is_main:
            self.board = Board(self.out / runs.TENSORBOARD, done=self.it, world=self.world)
        try:
            return self._train()
        finally:
            if self.board is not None:
                self.board.close()
                self.board = None

    def _train(self) -> dict:
        total = self.plan.total_iterations
        show = self.cfg.progress and self.is_main
        if show and self.cfg.amp:
            tqdm.write(self.precision_note)
        bar = tqdm(total=total, initial=self.it, desc=f"training ({self.precision})", unit="it",
                   disable=not show, dynamic_ncols=True)
        self._in_step = False
        stop = StopSignals(self.device)
        stop.install()
        try:
            while self.it < total:
                index, stage = self.plan.at(self.it)
                batches = iter(self._loader(index, self.it))
                while self.it < stage.end:
                    self._in_step = True  # an interruption now leaves no consistent state to save
                    loss, compute, data = self._step(batches, index)
                    if not math.isfinite(loss):
                        raise MgvsrError(f"loss became {loss} at iteration {self.it} (stage {index + 1}, "
                                         f"lr {self.plan.lr(self.it):.3g}); try a smaller LR or longer warmup")
                    self.totals.compute += compute
                    self.totals.data += data
                    self.totals.stage_compute[index] += compute
                    self.totals.stage_data[index] += data
                    self.log.write(event="step", it=self.it, stage=index, patch=stage.patch,
                                   frames=stage.frames, batch=stage.batch, lr=self.plan.lr(self.it),
                                   loss=loss, compute=compute, data=data,
                                   train_seconds=self.totals.train)
                    if self.board is not None:
                        self.board.step(self.it, loss=loss, lr=self.plan.lr(self.it), stage=index, patch=stage.patch,
                                        frames=stage.frames, batch=stage.batch, compute=compute, data=data,
                                        train_seconds=self.totals.train)
                    self.it += 1
                    self._in_step = False
                    bar.update(1)
                    bar.set_postfix(stage=f"{index + 1}/{len(self.plan)} {stage.label}", loss=f"{loss:.4f}",
                                    refresh=False)
                    at_stage_end = self.it == stage.end
                    if self.cfg.eval_every and self.it % self.cfg.eval_every == 0 and self.it < total:
                        self.evaluate()
                    if at_stage_end:
                        self.log.write(event="stage_end", it=self.it, stage=index,
                                       compute=self.totals.stage_compute[index],
                                       data=self.totals.stage_data[index])
                    if at_stage_end or (self.cfg.checkpoint_every and self.it % self.cfg.checkpoint_every == 0):
                        self.save()
                    signum = stop.agreed(self.world)  # every process stops after the same step
                    if signum:
                        self._preempted(signum)
        except KeyboardInterrupt:
            if not self._in_step and self.saved_at != self.it:
                self.save()  # the state after the last completed step
            raise
        finally:
            stop.restore()
            bar.close()
        if not self.evals or self.evals[-1]["it"] != self.it:
            self.evaluate()
        if self.is_main:
            atomic_save({"params": unwrap(self.model).state_dict()}, self.out / "final.pth")
        summary = self.summary()
        self.log.write(event="end", **summary)
        return summary

    def _preempted(self, signum: int) -> None:
        """Checkpoint the state after the step just done, log it, raise :class:`Preempted`."""
        if self.saved_at != self.it:
            self.save()
        name = signal_name(signum)
        self.log.write(event="preempted", it=self.it, signal=name, checkpoint=runs.CHECKPOINT)
        raise Preempted(f"stopped by {name} after iteration {self.it} of {self.plan.total_iterations}: "
                        f"checkpoint written to {self.out / runs.CHECKPOINT}; continue with --resume",
                        signal=name, iteration=self.it)

    def summary(self) -> dict:
        """The ``end`` record: times (``compute_seconds`` excludes data loading, as the paper's times;
        ``train_seconds`` includes it; neither counts evaluations), the same times multiplied by the
        devices (``device_seconds``, ``train_device_seconds``), the final scores and :meth:`setup`."""
        last = self.evals[-1] if self.evals else {}
        return {
            "it": self.it,
            "train_seconds": self.totals.train,
            "compute_seconds": self.totals.compute,
            "device_seconds": self.totals.compute * self.world,
            "train_device_seconds": self.totals.train * self.world,
            "data_seconds": self.totals.data,
            "eval_seconds": self.totals.eval,
            "stage_compute_seconds": self.totals.stage_compute,
            "stage_data_seconds": self.totals.stage_data,
            "psnr": last.get("psnr"),
            "ssim": last.get("ssim"),
            "samples": self.plan.samples,
            "setup": self.setup(),
        }


def _dist_rank_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_distributed(device: str = "auto") -> tuple[int, int, str]:
    """Join the process group ``torchrun`` describes (``WORLD_SIZE > 1``); NCCL on CUDA, gloo on CPU.

    Returns ``(rank, world_size, device)``; each CUDA process uses GPU ``LOCAL_RANK``.
    A single process (no ``WORLD_SIZE``) returns ``(0, 1, device)`` untouched.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, device
    use_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if use_cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    else:
        device = "cpu"
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo", timeout=DIST_TIMEOUT)
    return dist.get_rank(), dist.get_world_size(), device


@contextlib.contextmanager
def distributed(device: str = "auto"):
    """:func:`init_distributed` for the length of a command: yields ``(rank, world_size, device)``.

    Where the command ends as every rank does (finished, or :class:`Preempted` after the step all
    ranks agreed on), the ranks leave together (a barrier) and the process group is torn down in
    order: left to interpreter exit, gloo's threads could still be running, and a rank whose peer
    had already exited aborted ("terminate called without an active exception") or was killed by
    torchrun mid-exit, turning a clean stop into a failure.  An error leaves the group as it is."""
    rank, world, device = init_distributed(device)
    try:
        yield rank, world, device
    except Preempted:
        _leave_together(world)
        raise
    _leave_together(world)


def _leave_together(world: int) -> None:
    if world > 1 and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def _jsonable(obj):
    return json.loads(json.dumps(obj, default=str))


# ---- a preset, end to end --------------------------------------------------------------------


def warm_start_fields(preset: Preset) -> dict:
    """TrainConfig fields of the preset's warm start."""
    recipe, iterations = preset.warm_start
    return dict(frozen_iters=iterations, frozen=recipe or "flow", flow_lr_mult=preset.flow_lr_mult)


@dataclass
class RunResult:
    """A preset's run: its folder, its summary (the log's ``end`` record) and how it was obtained:
    ``"trained"``, ``"resumed"`` (finished after a resume), ``"finished"`` (found done in its folder)
    or ``"reused"`` (the same training found finished in another folder)."""

    folder: Path
    summary: dict
    status: str
    spec: dict = field(repr=False, default_factory=dict)


def preset_spec(preset: Preset, cfg: TrainConfig, root=None, flow: FlowInit | None = None) -> dict:
    """The :func:`mgvsr.runs.run_spec` of training ``preset`` with ``cfg`` (and SpyNet from ``flow``)."""
    return runs.run_spec(preset, device=resolve_device(cfg.device).type, seed=cfg.seed, root=root,
                         micro_batch=cfg.micro_batch, amp=cfg.amp, augment=cfg.augment, reverse=cfg.reverse,
                         spynet=None if flow is None else flow.spec,
                         spynet_file=None if flow is None or flow.file is None else flow.file.path,
                         loss_eps=cfg.loss_eps)


def _agreed(decide):
    """``decide()`` computed once, by rank 0, and handed to every process of a distributed run (so that
    all of them train, resume or skip alike whatever their file systems show); an error raised there
    is raised everywhere.  Without a process group: ``decide()``."""
    rank, world = _dist_rank_world()
    if world == 1:
        return decide()
    box: list = [None]
    if rank == 0:
        try:
            box[0] = ("ok", decide())
        except Exception as exc:  # handed to the other ranks, then raised here too
            box[0] = ("error", exc)
    dist.broadcast_object_list(box, src=0)
    kind, value = box[0]
    if kind == "error":
        raise value
    return value


def _folder_decision(out: Path, spec: dict, search, resume: bool | None) -> tuple[str, Path, bool]:
    """``(what, folder, resume)``: ``"finished"`` (in ``out``), ``"reused"`` (a finished twin under
    ``search``) or ``"train"`` (resuming or not) under the rule of :mod:`mgvsr.runs`."""
    state = runs.check_folder(out, spec)
    if state == "finished":
        return "finished", out, False
    if search is not None:
        same = runs.find_finished(spec, search)
        if same is not None:
            return "reused", same, False
    has_checkpoint = runs.has_checkpoint(out)
    if resume is None:
        resume = has_checkpoint
    elif resume and not has_checkpoint:
        raise MgvsrError(f"cannot resume: no checkpoint at {out / runs.CHECKPOINT}")
    elif not resume and has_checkpoint:
        raise runs.RunFolderError(f"{out} holds an unfinished run of this spec ({runs.CHECKPOINT}); resume it "
                                  "(--resume) or use another folder")
    return "train", out, resume


def run_preset(preset: Preset, out: str | Path, *, root=None, resume: bool | None = None, search=None,
               spynet: str | Path | FlowInit | None = None, evaluate=None, store=None, log=None,
               **config) -> RunResult:
    """Train ``preset`` as it is into the run folder ``out`` (the rule of :mod:`mgvsr.runs`).

    ``config`` holds :class:`TrainConfig` fields.  ``resume``: None resumes an unfinished run of
    the same spec from its ``last.pth`` when there is one; True requires one; False refuses a
    folder holding a checkpoint.  ``search``: a folder of runs where a finished run of the same
    training is reused instead of training (``mgvsr reproduce``).  ``spynet``: pretrained SpyNet
    weights (a path), ``"none"`` (opt out) or a :class:`~mgvsr.models.FlowInit`; a model whose recipe
    needs them (:data:`mgvsr.models.PRETRAINED_FLOW`) refuses to start without
    (:func:`mgvsr.models.flow_init`).  ``log``: a function told what happens (None: silent).
    Under ``torchrun`` rank 0 decides whether to train, resume or reuse, for every process.
    """
    out = Path(out)
    flow = spynet if isinstance(spynet, FlowInit) else flow_init(preset.model, spynet,
                                                                  what=f"{preset.name} ({preset.model})")
    cfg = TrainConfig(**warm_start_fields(preset), extra={"preset": preset.name, "model": preset.model,
                                                    "dataset": preset.dataset, "spynet": flow.spec}, **config)
    spec = preset_spec(preset, cfg, root, flow)
    say = log or (lambda message: None)
    what, folder, resume = _agreed(lambda: _folder_decision(out, spec, search, resume))
    if what == "finished":
        return RunResult(out, runs.finished_summary(out), "finished", spec)
    if what == "reused":
        say(f"{preset.name}: the same training as {runs.relative_name(folder, search)}, reused")
        return RunResult(folder, runs.finished_summary(folder), "reused", spec)
    verify_store(preset.dataset, root, store)  # a frame store made from a tree that has changed since is refused
    if _dist_rank_world()[0] == 0:
        runs.write_spec(out, spec)
    plan = preset.plan
    say(f"{preset.name}: {'resuming' if resume else 'training'} {preset.model} on {preset.dataset}, "
        f"{plan.total_iterations:,} iterations, stages {' '.join(s.label for s in plan.stages)}, "
        f"batch {plan.stages[0].batch}")
    if flow.spec is not None:
        say(f"{preset.name}: {flow.describe()}")
    net = initial_model(preset.model, cfg.seed, flow)
    train, test = open_sources(preset.dataset, root, preset.test_dataset, store=store)
    trainer = Trainer(net, plan, train, out, cfg, test=test, evaluate=evaluate)
    summary = trainer.run(resume=resume)
    return RunResult(out, summary, "resumed" if resume else "trained", spec)


def initial_model(model: str, seed: int, flow: FlowInit | None = None) -> nn.Module:
    """Model configuration ``model`` as a run starts it: the RNG seeded with ``seed`` first (everything
    random is seeded before it is created), SpyNet's pretrained weights loaded where ``flow`` has them."""
    torch.manual_seed(seed)
    return build_model(model, **(flow.overrides if flow is not None else {}))
