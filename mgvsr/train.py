"""The trainer: the plan decides the shape and the LR of every iteration; this loop follows it.

One optimizer step ``it`` of a :class:`~mgvsr.schedule.Plan`:

1. the stage of ``it`` gives the window shape (``frames`` T, LR ``patch`` S) and the minibatch
   size; windows are drawn by :class:`~mgvsr.data.windows.TrainingWindows`, whose sample ``k`` is a
   pure function of the seed and ``k``;
2. :class:`~mgvsr.step.TrainStep` runs the step at ``plan.lr(it)``: forward, the Charbonnier loss in
   fp32, backward (in micro-batches whose gradients accumulate, where asked), Adam; it keeps
   *compute* and *data* time apart (the paper reports compute);
3. the callbacks (:mod:`mgvsr.callbacks`) do everything else: the run log, TensorBoard, the
   progress bar, evaluations, checkpoints, preemption.

A run writes into ``out``: ``log.jsonl`` (a JSON line per iteration, per evaluation and per stage
end; the ``start`` record holds the run's :meth:`Trainer.setup` (devices, samples per device,
micro-batches, precision) and the fingerprint of its initial weights, the ``end`` record its
times, also in device-seconds), ``last.pth`` (the state to resume from, written atomically at
every stage end, every ``checkpoint_every`` iterations and on interruption, the one before kept
as ``previous.pth``, each with a checksum: :mod:`mgvsr.checkpointing`) and ``final.pth``
(``{"params": state_dict}``, and ``"params_ema"`` where the run keeps an EMA of the weights:
:class:`mgvsr.callbacks.WeightEMA`; readable by :func:`mgvsr.models.checkpoints.load_pretrained` and by
BasicSR).  ``resume=True`` continues from ``last.pth`` exactly (from ``previous.pth``, with a
warning, when ``last.pth`` is damaged): on a CPU the losses after a resume equal those of an
uninterrupted run.

The trainer asks of the model only what :mod:`mgvsr.models.protocol` declares.  Distributed
(:mod:`mgvsr.distributed`): each process takes ``batch / world_size`` samples of every step.
:func:`mgvsr.launch.run_preset` runs a preset into a run folder under the rule of :mod:`mgvsr.runs`.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
from torch.utils.data import DataLoader

from mgvsr import checkpointing, runs
from mgvsr.callbacks import Callback, default_callbacks
from mgvsr.data.source import ClipSource
from mgvsr.data.windows import TrainingWindows
from mgvsr.device import compute_settings, device_name, precision_note, resolve_device
from mgvsr.distributed import barrier, rank_world
from mgvsr.errors import MgvsrError, PlanError
from mgvsr.evaluate import DEFAULT_SEGMENT, evaluate_model, scoring_protocol
from mgvsr.models import protocol
from mgvsr.models.dcn import backend_in_use
from mgvsr.models.protocol import unwrap
from mgvsr.options import TrainConfig
from mgvsr.preemption import ignore_in_worker
from mgvsr.schedule import Plan
from mgvsr.step import TrainStep

CHECKPOINT_VERSION = 1


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


def stage_loader(plan: Plan, stage_index: int, first_it: int, source: ClipSource, cfg: TrainConfig, *,
                 rank: int = 0, world: int = 1, pin_memory: bool = False) -> DataLoader:
    """Windows of stage ``stage_index``'s shape for process ``rank``, from step ``first_it`` to the stage
    end, in micro-batches (``cfg.micro_batch``, else this process's whole share of a step)."""
    stage = plan.stages[stage_index]
    steps = stage.end - first_it
    per_rank = stage.batch // world
    # Vimeo-90K: septuplets are mirrored to 14 frames only for stages longer than 7 frames
    dataset = TrainingWindows(source.windows_source(stage.frames), stage.frames, stage.patch,
                              length=steps * stage.batch, seed=cfg.seed, offset=samples_before(plan, first_it),
                              augment=cfg.augment, reverse=cfg.reverse)
    # this process's share of every step: samples [rank * per_rank, (rank + 1) * per_rank)
    indices = [s * stage.batch + rank * per_rank + i for s in range(steps) for i in range(per_rank)]
    return DataLoader(dataset, batch_size=cfg.micro_batch or per_rank, sampler=indices,
                      num_workers=cfg.num_workers, pin_memory=pin_memory, persistent_workers=False,
                      worker_init_fn=ignore_in_worker if cfg.num_workers else None)


@dataclass
class RunTimes:
    """Seconds a run has spent so far (carried through checkpoints as ``"totals"``)."""

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
    """Trains ``model`` on ``train`` clips following ``plan`` into the folder ``out``; evaluates on
    ``test`` clips with ``evaluate`` (``(model, source) -> {"mean": {"psnr", "ssim"}, ...}``; default
    :func:`mgvsr.evaluate.evaluate_model` under the benchmark's protocol).  ``callbacks``: the side
    outputs (default: :func:`mgvsr.callbacks.default_callbacks` of ``cfg``)."""

    def __init__(self, model: nn.Module, plan: Plan, train: ClipSource, out: str | Path,
                 cfg: TrainConfig | None = None, test: ClipSource | None = None, evaluate=None,
                 callbacks: list[Callback] | None = None) -> None:
        self.cfg = cfg or TrainConfig()
        self.plan, self.train_source, self.test_source = plan, train, test
        self.out = Path(out)
        self.device = resolve_device(self.cfg.device)
        self.rank, self.world = rank_world()
        self.is_main = self.rank == 0
        self._evaluate = evaluate
        check_plan(plan, train, model, self.world, self.cfg.micro_batch)  # before the first iteration
        self.step = TrainStep(model, self.cfg, self.device, self.world)
        self.model, self.optimizer = self.step.model, self.step.optimizer
        self.precision, self.channels_last = self.step.precision, self.step.channels_last
        self.precision_note = precision_note(self.device, self.cfg.amp, protocol.fp32_in_autocast(self.model))
        self.callbacks = default_callbacks(self.cfg) if callbacks is None else callbacks
        self.it = 0
        self.times = RunTimes(stage_compute=[0.0] * len(plan), stage_data=[0.0] * len(plan))
        self.evals: list[dict] = []
        self.saved_at: int | None = None  # the iteration of the newest checkpoint on disk
        self.resumed: dict | None = None  # how the run resumed (the log's ``resume`` record), None: a fresh start
        self.scored: nn.Module | None = None  # what evaluations score; None: the trained weights (WeightEMA: its average)
        if self.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
        self.log = runs.RunLog(self.out / runs.LOG_FILE, enabled=self.is_main)

    def start_record(self) -> dict:
        """What a fresh run starts from: the plan, the configuration, the model, the devices (:meth:`setup`),
        the initial weights' fingerprint, the precision and the memory format (the log's ``start`` record)."""
        return dict(it=0, plan=self.plan.to_dict(), config=_jsonable(asdict(self.cfg)),
                    model=type(unwrap(self.model)).__name__, world_size=self.world, device=str(self.device),
                    setup=self.setup(), initial_weights=checkpointing.weights_fingerprint(unwrap(self.model)),
                    precision=self.precision, precision_note=self.precision_note, channels_last=self.channels_last)

    def setup(self) -> dict:
        """How the run is computed, for reading its speed honestly: ``world_size`` (processes, one
        device each), ``device`` and ``device_name``, ``precision``, and per stage the
        ``per_device_batch`` (samples each device computes per step), the ``micro_batch`` (samples per
        forward/backward) and ``micro_batches`` (forward/backward passes per step); ``compute`` (TF32 and
        cuDNN's benchmark on CUDA: :func:`mgvsr.device.compute_settings`), the deformable convolution's
        kernel (``dcn_backend``) and the ``loader``'s worker processes and memory pinning."""
        per_device = [s.batch // self.world for s in self.plan.stages]
        micro = [self.cfg.micro_batch or n for n in per_device]
        return {"world_size": self.world, "device": str(self.device), "device_name": device_name(self.device),
                "precision": self.precision, "per_device_batch": per_device, "micro_batch": micro,
                "micro_batches": [n // m for n, m in zip(per_device, micro)], "compute": compute_settings(self.device),
                "dcn_backend": backend_in_use(), "loader": {"workers": self.cfg.num_workers,
                                                             "pin_memory": self.device.type == "cuda"}}

    # ---- the loop ----------------------------------------------------------------------------
    def run(self, resume: bool = False) -> dict:
        """Train to the end of the plan (from the newest intact checkpoint when ``resume``); returns the
        summary.  Raises :class:`~mgvsr.errors.Preempted` after writing a checkpoint when a stop signal
        came (:class:`mgvsr.callbacks.Preemption`)."""
        torch.manual_seed(self.cfg.seed)
        if resume:
            self._resume()
        try:
            self._fire("on_start")
            self._train()
            self._fire("on_train_end")
            return self._finish()
        finally:
            self._fire("close")

    def _train(self) -> None:
        in_step = False  # an interruption inside a step leaves no consistent state to save
        try:
            while self.it < self.plan.total_iterations:
                index, stage = self.plan.at(self.it)
                batches = iter(self._loader(index, self.it))
                while self.it < stage.end:
                    in_step = True
                    result = self._step(batches, index)
                    if not math.isfinite(result.loss):
                        raise MgvsrError(f"loss became {result.loss} at iteration {self.it} (stage {index + 1}, "
                                         f"lr {self.plan.lr(self.it):.3g}); try a smaller LR or longer warmup")
                    self._count(index, result.compute, result.data)
                    record = dict(it=self.it, stage=index, patch=stage.patch, frames=stage.frames, batch=stage.batch,
                                  lr=self.plan.lr(self.it), loss=result.loss, compute=result.compute,
                                  data=result.data, train_seconds=self.times.train)
                    self.it += 1
                    in_step = False
                    self._fire("on_step", record)
                    if self.it == stage.end:
                        self._fire("on_stage_end", index)
                    self._fire("on_step_end")
        except KeyboardInterrupt:
            if not in_step and self.saved_at != self.it:
                self.save()  # the state after the last completed step
            raise

    def _step(self, batches, index: int):
        """One step of stage ``index``; an out-of-memory error named with the shape and what would fit."""
        stage = self.plan.stages[index]
        per_device = stage.batch // self.world
        try:
            return self.step(batches, lr=self.plan.lr(self.it), it=self.it, samples=per_device)
        except torch.OutOfMemoryError as exc:
            micro = self.cfg.micro_batch or per_device
            smaller = max((d for d in range(1, micro) if per_device % d == 0 and d <= micro // 2), default=None)
            hint = (f"--micro-batch {smaller} (or less) computes the same update in less memory" if smaller else
                    "one sample per forward does not fit: use --amp, a smaller model or a device with more memory")
            raise MgvsrError(f"out of memory at iteration {self.it} (stage {index + 1}, {stage.label}: {per_device} "
                             f"clips of {stage.frames} frames of {stage.patch}x{stage.patch} LR pixels per device, "
                             f"micro-batch {micro}) on {device_name(self.device)}; {hint}; `--dry-run` estimates "
                             f"the peak memory of every shape. The last checkpoint ({self.saved_at}) is intact: "
                             f"resume with --resume. ({str(exc).splitlines()[0]})") from None

    def _count(self, stage: int, compute: float, data: float) -> None:
        self.times.compute += compute
        self.times.data += data
        self.times.stage_compute[stage] += compute
        self.times.stage_data[stage] += data

    def _finish(self) -> dict:
        """The final evaluation (unless one ran at the last step), ``final.pth`` and the summary."""
        if not self.evals or self.evals[-1]["it"] != self.it:
            self.evaluate()
        if self.is_main:
            weights = {"params": unwrap(self.model).state_dict()}
            self._fire("on_final", weights)  # WeightEMA: params_ema
            checkpointing.save_atomic(weights, self.out / runs.FINAL)
        summary = self.summary()
        self._fire("on_end", summary)
        return summary

    def _fire(self, hook: str, *args) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(self, *args)

    def _loader(self, stage_index: int, first_it: int) -> DataLoader:
        return stage_loader(self.plan, stage_index, first_it, self.train_source, self.cfg, rank=self.rank,
                            world=self.world, pin_memory=self.device.type == "cuda")

    def evaluate(self) -> dict | None:
        """Scores on the test clips (main process), kept in ``self.evals`` and handed to the callbacks."""
        if self.test_source is None or not self.is_main:
            return None
        t0 = time.perf_counter()
        model = unwrap(self.model) if self.scored is None else self.scored
        was_training = model.training
        model.eval()
        try:
            if self._evaluate is not None:
                scores = self._evaluate(model, self.test_source)
            else:
                scores = evaluate_model(model, self.test_source, scoring_protocol(self.test_source, self.cfg.eval_channel),
                                        device=self.device, progress=False, segment=DEFAULT_SEGMENT)
        except torch.OutOfMemoryError as exc:
            raise MgvsrError(f"out of memory evaluating on {self.test_source.name} at iteration {self.it} on "
                             f"{device_name(self.device)} (recurrent models in segments of {DEFAULT_SEGMENT} frames); "
                             f"the last checkpoint ({self.saved_at}) is intact. Evaluate its weights apart with "
                             f"`mgvsr eval --segment N` (a smaller N) ({str(exc).splitlines()[0]})") from None
        model.train(was_training)
        if hasattr(scores, "to_dict"):
            scores = scores.to_dict()
        seconds = time.perf_counter() - t0
        self.times.eval += seconds
        record = {"it": self.it, "psnr": scores["mean"]["psnr"], "ssim": scores["mean"]["ssim"],
                  "train_seconds": self.times.train, "compute_seconds": self.times.compute, "eval_seconds": seconds,
                  "clips": {k: {"psnr": v["psnr"], "ssim": v["ssim"]} for k, v in scores.get("clips", {}).items()},
                  **({} if self.scored is None else {"weights": "ema"})}
        self.evals.append(record)
        self._fire("on_eval", record)
        return record

    def summary(self) -> dict:
        """The ``end`` record: times (``compute_seconds`` excludes data loading, as the paper's times;
        ``train_seconds`` includes it; neither counts evaluations), the same times multiplied by the
        devices (``device_seconds``, ``train_device_seconds``), the final scores and :meth:`setup`."""
        last = self.evals[-1] if self.evals else {}
        return {"it": self.it, "train_seconds": self.times.train, "compute_seconds": self.times.compute,
                "device_seconds": self.times.compute * self.world, "train_device_seconds": self.times.train * self.world,
                "data_seconds": self.times.data, "eval_seconds": self.times.eval,
                "stage_compute_seconds": self.times.stage_compute, "stage_data_seconds": self.times.stage_data,
                "psnr": last.get("psnr"), "ssim": last.get("ssim"), "samples": self.plan.samples, "setup": self.setup()}

    # ---- checkpoints -------------------------------------------------------------------------
    def state_dict(self) -> dict:
        state = {"version": CHECKPOINT_VERSION, "params": unwrap(self.model).state_dict(), **self.step.state_dict(),
                 "iteration": self.it, "totals": asdict(self.times), "evals": self.evals, "plan": self.plan.to_dict(),
                 "config": _jsonable(asdict(self.cfg)), "torch_rng": torch.get_rng_state()}
        self._fire("on_save", state)  # what the callbacks keep (WeightEMA: params_ema)
        return state

    def save(self) -> None:
        """Write ``last.pth`` (the one before becomes ``previous.pth``; main process only)."""
        if self.is_main:
            checkpointing.write_checkpoint(self.state_dict(), self.out, saved_before=self.saved_at)
        self.saved_at = self.it

    def load(self, path: str | Path) -> None:
        """Restore a checkpoint written by :meth:`save` (same model, same plan), verified."""
        self._restore(checkpointing.read_verified(path), Path(path))

    def _restore(self, state: dict, path: Path) -> None:
        if state.get("version") != CHECKPOINT_VERSION:
            raise MgvsrError(f"cannot resume from {path}: not a checkpoint written by mgvsr's trainer")
        checkpointing.check_model(unwrap(self.model), state, path, model_name=self.cfg.extra.get("model"))
        if state["plan"] != self.plan.to_dict():
            raise MgvsrError(f"cannot resume from {path}: it was written for a different plan "
                             f"({state['plan'].get('name') or 'unnamed'}, {state['plan']['total_iterations']} iterations)")
        self.step.load_state_dict(state)
        self._fire("on_load", state)
        self.it = state["iteration"]
        self.times = RunTimes(**state["totals"])
        self.evals = state["evals"]
        torch.set_rng_state(state["torch_rng"])
        self.saved_at = self.it

    def _resume(self) -> None:
        """Continue from the newest intact checkpoint in ``out``; a damaged newer one is named in a
        warning (with the iterations trained again) and renamed ``*.damaged``."""
        found = checkpointing.newest_intact(self.out)
        self._restore(found.state, found.path)
        barrier(self.world)  # every process has read its checkpoint before a damaged one is moved
        done = self.log.steps_done() if self.is_main else self.it
        repeated = max(0, done - self.it)
        if found.problems and self.is_main:
            aside = [checkpointing.set_aside(p) for p in found.damaged]
            warnings.warn(f"{found.problems[0]}; resuming from {found.path} at iteration {self.it}: "
                          f"{repeated} iteration{'s' if repeated != 1 else ''} "
                          f"{f'({self.it}-{done - 1}) ' if repeated else ''}trained again "
                          f"(the damaged file is kept as {aside[0].name})", stacklevel=3)
        self.resumed = dict(checkpoint=found.path.name, repeated=repeated, damaged=[str(p.name) for p in found.damaged],
                            restart=int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")))


def _jsonable(obj):
    return json.loads(json.dumps(obj, default=str))
