"""One optimizer step of a video super-resolution model: the unit the trainer, the dry run's
probes, the benchmarks and the tutorial all run.

:class:`TrainStep` holds the model on its device (in ``channels_last`` where the model trains faster
so, :func:`mgvsr.models.protocol.prefers_channels_last`), Adam over two parameter groups (the flow
network at its own LR multiplier, the rest), the warm start's frozen parameters, DistributedDataParallel
in a multi-process run and the loss scaler of fp16.  Calling it runs one step:

1. the LR of every group is set to ``lr`` times the group's multiplier, and the warm start's
   parameters are frozen while ``it < frozen_iters``;
2. for every micro-batch ``(lq, gt)`` of the step (gradient accumulation: the same update as the
   whole minibatch at once): forward under autocast (:func:`mgvsr.device.autocast`), the
   :func:`charbonnier` loss **in fp32** against the frames the model predicts, backward (scaled
   in fp16; DDP's all-reduce only after the last micro-batch);
3. Adam's update; the loss averaged over the samples (and the processes).

Time is kept in two parts: *compute* (forward, backward, update, with the device synchronised)
and *data* (waiting for the micro-batch and its copy to the device).  The paper reports compute.
In a distributed run a process waiting for data stalls the others at the gradients' all-reduce:
each process's data wait is reduced (the maximum) every step, and compute is the step's time less
that, on every process alike.

DistributedDataParallel looks for unused parameters (``find_unused_parameters``, a cost per step) only
where a trained parameter gets no gradient (below 32 px SpyNet's coarsest levels:
:func:`mgvsr.models.protocol.all_parameters_used`); the warm start's frozen parameters are left out of
it (it wraps the model while they are frozen, and again when they thaw).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel

from mgvsr.data.windows import to_float
from mgvsr.device import autocast, resolve_precision, synchronize
from mgvsr.distributed import max_over_ranks, mean_over_ranks
from mgvsr.models import protocol
from mgvsr.models.protocol import target_frames
from mgvsr.options import TrainConfig


def charbonnier(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Charbonnier loss ``mean(sqrt((pred - target)^2 + eps))`` (BasicSR's CharbonnierLoss)."""
    return torch.sqrt((pred - target) ** 2 + eps).mean()


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


def _as_float(x: torch.Tensor) -> torch.Tensor:
    """A window as float32 RGB in [0, 1]: uint8 (the loader's) scaled, float as it is."""
    return to_float(x) if x.dtype == torch.uint8 else x.float()


@dataclass(frozen=True)
class StepResult:
    """One step: its ``loss`` (mean over the samples of every process), ``compute`` and ``data`` seconds."""

    loss: float
    compute: float
    data: float


class TrainStep:
    """The training step of ``model`` on ``device`` as ``cfg`` says (see the module docstring).

    ``world``: processes of a distributed run (the model is wrapped in DistributedDataParallel when
    more than one).  Attributes: ``model`` (the module, on the device), ``net`` (what is called: the
    DDP wrapper or the model), ``optimizer``, ``scaler`` (fp16 only), ``precision``, ``channels_last``.
    """

    def __init__(self, model: nn.Module, cfg: TrainConfig, device: torch.device, world: int = 1) -> None:
        self.cfg = cfg
        self.device = device
        self.world = world
        self.precision = resolve_precision(device, cfg.amp)
        self.channels_last = cfg.channels_last
        if self.channels_last is None:
            self.channels_last = protocol.prefers_channels_last(model, device.type, self.precision)
        self.model = model.to(device)
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.optimizer = make_optimizer(self.model, cfg)
        self.net = self.model
        self.ddp_key: tuple[bool, bool] | None = None  # (warm start frozen, all parameters used) of the DDP wrapper
        self.scaler = torch.amp.GradScaler(device.type) if self.precision == "fp16" else None
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = cfg.cudnn_benchmark

    def __call__(self, batches: Iterator, *, lr: float, it: int, samples: int) -> StepResult:
        """Step ``it`` at ``lr`` over ``samples`` samples (this process's share of the minibatch) drawn from
        ``batches``, an iterator of ``(lq, gt)`` micro-batches (uint8 or float; ``(b, t, 3, h, w)`` and
        ``(b, t, 3, 4h, 4w)``) that together hold ``samples`` samples."""
        start = time.perf_counter()
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group["lr_mult"]
        set_frozen(self.model, self.cfg, it)
        self.net.train()
        self.optimizer.zero_grad(set_to_none=True)
        compute = data = 0.0
        loss_sum = 0.0
        done = 0
        while done < samples:
            t0 = time.perf_counter()
            lq, gt = next(batches)
            lq = _as_float(lq.to(self.device, non_blocking=True))
            gt = _as_float(gt.to(self.device, non_blocking=True))
            synchronize(self.device)
            if self.world > 1:
                self._wrap(it, lq.shape[-1])
            t1 = time.perf_counter()
            last = done + lq.shape[0] >= samples
            loss = self._forward_backward(lq, gt, samples, last)
            loss_sum += loss.detach() * lq.shape[0]
            done += lq.shape[0]
            synchronize(self.device)
            data += t1 - t0
            compute += time.perf_counter() - t1
        t2 = time.perf_counter()
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        loss_value = float(mean_over_ranks(loss_sum / samples, self.world))  # synchronises the device
        compute += time.perf_counter() - t2
        if self.world > 1:  # the slowest loader stalled every process: its wait is data, not compute
            data = max_over_ranks(data, self.world, self.device)
            compute = time.perf_counter() - start - data
        return StepResult(loss_value, compute, data)

    def _wrap(self, it: int, patch: int) -> None:
        """Wrap the model in DistributedDataParallel for step ``it`` at LR patch ``patch``: again whenever the
        warm start's frozen parameters thaw or the use of every parameter changes (after :func:`set_frozen`:
        DDP leaves out parameters that need no gradient when it wraps)."""
        frozen = bool(self.cfg.frozen_iters) and it < self.cfg.frozen_iters
        all_used = protocol.all_parameters_used(self.model, patch)
        if (frozen, all_used) == self.ddp_key:
            return
        ids = [self.device.index] if self.device.type == "cuda" else None
        # the parameters a step leaves without a gradient are SpyNet's (the flow network): while the warm
        # start freezes it, DDP leaves it out and needs no search
        self.net = DistributedDataParallel(self.model, device_ids=ids, find_unused_parameters=not (all_used or frozen))
        self.ddp_key = (frozen, all_used)

    def _forward_backward(self, lq: torch.Tensor, gt: torch.Tensor, samples: int, last: bool) -> torch.Tensor:
        """Forward and backward of one micro-batch; its gradient weighted by its share of ``samples``.
        DDP all-reduces the gradients only after the ``last`` micro-batch."""
        accumulate = self.net is not self.model and not last
        with self.net.no_sync() if accumulate else contextlib.nullcontext():
            with autocast(self.device, self.precision):
                out = self.net(lq)
            loss = charbonnier(out.float(), target_frames(self.net, gt), self.cfg.loss_eps)  # fp32 whatever the precision
            scaled = loss * (lq.shape[0] / samples)
            if self.scaler is not None:
                self.scaler.scale(scaled).backward()
            else:
                scaled.backward()
        return loss

    def state_dict(self) -> dict:
        """The optimizer's and the loss scaler's state (for a checkpoint)."""
        return {"optimizer": self.optimizer.state_dict(),
                "scaler": None if self.scaler is None else self.scaler.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
