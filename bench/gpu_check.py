#!/usr/bin/env python
"""GPU acceptance checks: run this on a CUDA machine before trusting a paper-scale run there.

    python bench/gpu_check.py --json gpu_check.json    # every check (sized for under 10 min on one H100)
    python bench/gpu_check.py --only backward fp16     # some of them
    python bench/gpu_check.py --smoke                  # every check's code on the CPU at toy sizes (CI)

Each check prints PASS, FAIL or SKIPPED with what it measured against its tolerance; ``--json PATH``
writes the same, with the device, the torch / CUDA / cuDNN versions, the compute settings
(:func:`mgvsr.device.compute_settings`), the deformable-convolution backend and every check's
measurements and tolerances: a file to attach to a bug report.  Exit status 1 when a check fails.
On a machine without CUDA every check that needs it says SKIPPED and the script exits 0.

Tolerances.  float32 has a unit roundoff u = 2^-24 (6e-8); two correct implementations of the same
arithmetic differ only by the order of their sums (cuDNN against the CPU's kernels, a gradient
summed over two processes against one), by ~1e-7 relative per operation and up to a few 1e-5 over a
deep network.  A bug (a wrong kernel, a gradient summed instead of averaged, a feature carried
wrongly) changes results by 1e-2 or more.  The fp32 tolerances below sit between the two, with
TF32 off where they are tight (TF32 keeps 10 bits: 1e-3 per product).  bfloat16 keeps 8 bits
(u = 2^-9), float16 11 bits (u = 2^-11).  Tolerances were set before any GPU run; every measured
value is in the JSON, so a first run on a GPU shows the margins.

1. ``cuda-vs-cpu``: BasicVSR (30 blocks, LR 32x32, 7 frames, random SpyNet so that warps matter)
   and EDVR-M (LR 64x64, 5 frames) forward, the same weights and input on CUDA and on the CPU, fp32
   with TF32 off: largest output difference below 1e-4 (outputs in [0, 1]; a grey level is 3.9e-3).
   (``--smoke``, here and in ``backward``: the CPU's ``channels_last`` kernels stand in for CUDA.)
2. ``backward``: the gradients of every parameter of BasicVSR (30 blocks, SpyNet random and trained,
   LR 64x64 so that SpyNet's whole pyramid runs, 7 frames) and of EDVR-M (offsets of a few pixels),
   on a smooth moving clip, CUDA against the CPU, fp32, TF32 off: for the gradients of every
   top-level module (``spynet``, ``backward_trunk`` ...) ``|g_cuda - g_cpu| / |g_cpu|`` (L2 norms)
   below 1e-3.  A wrong backward kernel is O(1).  Reordered fp32 sums measured, at these sizes,
   between the CPU's contiguous and ``channels_last`` kernels: up to 2.5e-5 (BasicVSR, SpyNet's
   gradients: SpyNet warps its own pyramid six times) and 2.4e-6 (EDVR-M).  Single tensors (the
   coarsest pyramid level, a bias: one sum over every pixel that cancels) lose more digits, up to 9e-4,
   and are reported, not held to it.  (On white-noise frames SpyNet's gradients differed by 8e-4: the
   check uses a smooth clip, as real video is.)
3. ``autocast``: EDVR-M and BasicVSR-M forward under CUDA autocast in bf16 and in fp16: every
   ``DCNv2Pack``'s ``conv_offset`` output, the offsets, masks, weight and output of every deformable
   convolution and the PCD's upsampled offsets are float32 (offsets of 16-32 px would move in 0.125 px
   steps in bf16), BasicVSR's flows are float32, while ``conv_first`` runs in the low precision (autocast
   is on); EDVR's output within 5% of the fp32 output's residual over bilinear upsampling.
4. ``dcn``: torchvision's deformable-convolution kernel against mgvsr's pure-PyTorch one (outputs and
   the gradients of input, offsets, mask and weight) on the CPU and on CUDA: float64 within 1e-8,
   float32 within 1e-4 of the output's scale.  Needs torchvision (runs on a CPU as well).
5. ``bf16``: the same short BasicVSR-M run (``table1/basicvsr_m/ours`` on the sample clips, 60
   iterations of 8 clips, SpyNet random) in fp32 and with bf16 autocast, the same initial weights and
   batches.  (a) The first step (the same weights, the same batch: arithmetic only): the losses within
   2^-7 = 0.78% (4u of bf16: the input and the weight of every convolution rounded, and as much again
   for the error the depth adds; the loss, a mean over ~10^5 pixels, averages the rest; measured on a CPU
   with native bf16, BasicVSR-M, 2 clips at 32&7: 0.05%, then 1e-5 - 1e-4 on the next steps).  (b) The last
   third of the run: the mean of the per-step differences ``bf16 - fp32`` (paired: the same batches,
   so the batches' own spread cancels) within the larger of 3 standard errors of that mean (chance,
   at 99.7%) and 2^-7 of the fp32 mean.  The 5% on the tail means this replaces let a precision bug
   through.  SKIPPED on a GPU of compute capability < 8 (``--amp`` trains in fp16 there: ``fp16``).
6. ``fp16``: the fp16 + GradScaler path that ``--amp`` takes on a V100 or T4, forced on any GPU
   (``mgvsr.device.cuda_capability`` answers 7.0, so :func:`mgvsr.device.resolve_precision` itself
   chooses fp16): a :class:`~mgvsr.train.Trainer` of BasicVSR-M (LR 32x32, 7 frames, 4 clips in
   micro-batches of 2), its losses finite, the convolutions in float16, the GradScaler's scale in
   ``last.pth``; stopped inside a step and resumed: the same losses within 1e-3 relative (two fp16
   roundings, 2 x 2^-11, where a reduction's order differs; cuDNN's benchmark off).
7. ``ddp-step``: :class:`~mgvsr.step.TrainStep` in 2 processes against one process with the same
   global batch, BasicVSR-M (LR 32x32, 7 frames, 4 clips, SpyNet random), 6 steps of which the first 3
   keep SpyNet frozen (DDP is wrapped again when it thaws), each process in micro-batches of 1 (two
   forwards a step, the first under ``no_sync``): on one GPU two processes over gloo (NCCL refuses two
   ranks on one device), on two GPUs or more also NCCL across two of them.  Every step's loss within
   1e-4 relative of the single process's (fp32, TF32 off: the gradients are summed in another order, and
   Adam's first step turns the sign of a gradient that rounding flips into a whole LR step for that
   weight; measured on a CPU: ~1e-7).
8. ``ddp``: ``torchrun`` over NCCL on all visible GPUs against one process with the same global
   batch (``mgvsr train``, 12 iterations): per-step losses within 1% (TF32 on, as a run trains).
   Needs two GPUs or more.
9. ``eval-reds4``: REDS4's shape: a 100-frame clip of 180x320 LR frames (180 is no multiple of 32:
   SpyNet resizes to 192x320, checked by recording SpyNet's pyramid input), BasicVSR-M with random
   weights evaluated as training evaluates (:func:`mgvsr.evaluate.evaluate_model` in segments of
   ``DEFAULT_SEGMENT`` frames) and on the whole clip at once: every frame's PSNR within 1e-3 dB of
   the other's (rounding to uint8 hides float differences; a segmenting bug moves PSNR by far more),
   the segments' peak CUDA memory (``torch.cuda.max_memory_allocated``) below the whole clip's.
10. ``preempt``: a short ``mgvsr train`` on CUDA (BasicVSR-M, 40 iterations of 4 clips over six
    stages) sent SIGTERM after 6 steps: exit 75, a ``preempted`` record, ``last.pth`` and no
    ``final.pth``; ``--resume`` finishes (exit 0) with every step's loss within 1e-4 relative of an
    uninterrupted run's (fp32 with TF32 off through ``NVIDIA_TF32_OVERRIDE=0``; each process lets
    cuDNN pick its algorithms; exactly equal on a CPU).
11. ``loader``: windows/s of :func:`mgvsr.train.stage_loader` (the trainer's loader, the device's
    default workers, pinned memory on CUDA) at 32&7, batch 64 (the stage of ``table1/basicvsr_m/ours``
    where a GPU consumes the most windows a second), from a frame store written with
    :func:`mgvsr.data.store.write_store` (what ``mgvsr prepare`` writes) of generated REDS-sized
    clips, against what the GPU consumes at that shape: ``batch / step`` of the calibrated
    (:func:`mgvsr.costs.calibrate`) BasicVSR-M step in the precision ``--amp`` trains in (the 64 clips
    in micro-batches of 16: all 64 at once would need ~50 GB in fp32).  PASS when
    the loader keeps up (ratio >= 1); the aim is 5x.
12. ``speedup``: BasicVSR-M's baseline (64x64, 15 frames, batch 16) against ours (the hierarchical
    multigrid 32/64 x 7/11/15, batch 64, Eq. 1) at the paper's shapes on the sample clips, the same
    samples each (``--timing-iterations`` baseline iterations, a quarter of them for ours), micro-batches
    of ``--timing-micro-batch`` (16: the per-GPU batch of both in the paper), bf16 unless
    ``--fp32-timing``.  The measured compute-time speedup pays first-call costs (cuDNN's benchmark,
    allocations) for six shapes inside the run; the calibrated one (:func:`mgvsr.costs.compare_folders`:
    every step configuration warmed up, then timed round-robin) does not.  Both are printed beside the
    FLOP bound and the paper's 6.2x (on 4x the GPUs of its baseline: 1.55x in device-time).  PASS when
    the calibrated speedup is above 1.

Time.  No GPU was at hand when the checks were sized: from FLOP counts (``torch.utils.flop_counter``)
at an assumed 100 TFLOP/s sustained in bf16 and 25 in fp32 without TF32, the GPU work is about 4
minutes on one H100 (speedup ~1.5 min, preempt and ddp-step ~1 min with process start-ups, the rest
seconds each), plus the CPU sides of ``cuda-vs-cpu`` and ``backward``.  Every check's seconds are
printed and in the JSON; ``--timing-iterations`` shortens the largest.

``--smoke`` runs every check's code on the CPU at toy sizes (the CPU models, a few iterations, gloo
for both DDP checks, the CPU against the CPU in ``channels_last`` where CUDA is missing, the fp16 path
through CPU autocast, which computes float16 too, bf16 forced with ``MGVSR_BF16=1``): a test of this
script on a machine without a GPU (``tests/test_gpu_check.py``); its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import math
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

import mgvsr
from mgvsr import device as device_module
from mgvsr import step as step_module
from mgvsr.costs import StepConfig, calibrate, compare_folders
from mgvsr.data.sample import sample_source
from mgvsr.data.source import ClipSource, crop
from mgvsr.data.store import open_store, write_store
from mgvsr.device import (BF16_ENV, bf16_supported, compute_settings, default_workers, device_name,
                          resolve_precision)
from mgvsr.errors import EXIT_PREEMPTED
from mgvsr.evaluate import DEFAULT_SEGMENT, evaluate_model, protocol_for
from mgvsr.launch import run_preset
from mgvsr.models import build_model
from mgvsr.models import dcn as dcn_module
from mgvsr.models import edvr as edvr_module
from mgvsr.models.dcn import DCNv2Pack, backend_in_use, deform_conv2d, torchvision_available, use_backend
from mgvsr.models.protocol import prefers_channels_last, target_frames
from mgvsr.models.spynet import pyramid_levels
from mgvsr.options import RunOptions, TrainConfig
from mgvsr.presets import get_preset
from mgvsr.provenance import git_commit
from mgvsr.runs import read_log
from mgvsr.schedule import Plan, Stage
from mgvsr.step import TrainStep
from mgvsr.train import Trainer, stage_loader

REPO = Path(__file__).resolve().parent.parent
CHECKS = ("cuda-vs-cpu", "backward", "autocast", "dcn", "bf16", "fp16", "ddp-step", "ddp", "eval-reds4", "preempt",
          "loader", "speedup")
NO_CUDA = "no CUDA device visible to torch"


@dataclass(frozen=True)
class Sizes:
    """What the checks run on: the real sizes on a GPU, toy ones for ``--smoke`` on a CPU.

    Model entries are ``(configuration, overrides of build_model)``; shapes ``(b, t, 3, h, w)``."""

    device: str = "cuda"
    model: str | None = None  # the presets' runs: None = each preset's (BasicVSR-M); --smoke: the CPU model
    bf16_iterations: int = 60
    batch: int = 8
    patch_div: int = 1
    workers: int = 2
    smoke: bool = False
    # backward, autocast: (configuration, overrides, input shape)
    grad_cases: tuple = (("basicvsr", {}, (1, 7, 3, 64, 64)), ("edvr_m", {}, (1, 5, 3, 64, 64)))
    autocast_cases: tuple = (("edvr_m", {}, (1, 5, 3, 64, 64)), ("basicvsr_m", {}, (1, 5, 3, 64, 64)))
    # fp16: the model and its stage (iterations, LR patch, frames, batch, LR), micro-batch
    fp16_model: tuple = ("basicvsr_m", {})
    fp16_stage: tuple = (6, 32, 7, 4, 2e-4)
    fp16_micro: int = 2
    # ddp-step: the model, LR patch, frames, global batch, micro-batch per process, steps, frozen steps
    ddp_model: tuple = ("basicvsr_m", {})
    ddp_shape: tuple = (32, 7, 4, 1)
    ddp_steps: int = 6
    ddp_frozen: int = 3
    # eval-reds4: the model, frames, LR height and width, frames per segment
    eval_model: tuple = ("basicvsr_m", {})
    eval_clip: tuple = (100, 180, 320)
    eval_segment: int = DEFAULT_SEGMENT
    # preempt: iterations, batch, LR patch divisor, steps before SIGTERM
    preempt: tuple = (40, 4, 2, 6)
    # loader: clips, frames per clip, LR size, (LR patch, frames, batch), timed batches; its step's model
    loader_clips: tuple = (4, 16, (180, 320))
    loader_shape: tuple = (32, 7, 64)
    loader_micro: int = 16  # the calibrated step's micro-batch: 64 clips at once need ~50 GB in fp32
    loader_batches: int = 20
    loader_model: str = "basicvsr_m"

    def preset(self, name: str, **shrink):
        preset = get_preset(name).on(dataset="sample", model=self.model)
        return preset.shrunk(patch_div=self.patch_div, **shrink)


# the CPU models as BasicSR initialises: no zeroed last convolution (their fast start: the output exactly the
# bilinear skip, no gradient behind it) and a random SpyNet, so that warps matter
RANDOM_FLOW = {"spynet_zero_init": False, "fast_start": False}
PLAIN = {"fast_start": False}
GPU = Sizes()
SMOKE = Sizes(device="cpu", model="basicvsr_cpu", bf16_iterations=12, batch=2, patch_div=4, workers=0, smoke=True,
              grad_cases=(("basicvsr_cpu", RANDOM_FLOW, (1, 3, 3, 32, 32)), ("edvr_cpu", PLAIN, (1, 5, 3, 16, 16))),
              autocast_cases=(("edvr_cpu", PLAIN, (1, 5, 3, 16, 16)), ("basicvsr_cpu", RANDOM_FLOW, (1, 3, 3, 16, 16))),
              fp16_model=("basicvsr_cpu", RANDOM_FLOW), fp16_stage=(4, 8, 3, 4, 1e-3),
              ddp_model=("basicvsr_cpu", RANDOM_FLOW), ddp_shape=(16, 3, 4, 1), ddp_steps=4, ddp_frozen=2,
              eval_model=("basicvsr_cpu", RANDOM_FLOW), eval_clip=(12, 20, 36), eval_segment=4,
              preempt=(24, 2, 4, 4), loader_clips=(1, 9, (36, 64)), loader_shape=(8, 7, 4), loader_micro=2,
              loader_batches=4,
              loader_model="basicvsr_cpu")


@dataclass
class Result:
    """One check's outcome: ``status`` PASS | FAIL | SKIPPED, a line for people (``detail``), and for the
    JSON what was ``measured`` and the ``tolerance`` it was held to."""

    check: str
    status: str
    detail: str
    seconds: float = 0.0
    measured: dict = field(default_factory=dict)
    tolerance: dict = field(default_factory=dict)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def _cuda() -> bool:
    return torch.cuda.is_available()


def _usable(sizes: Sizes) -> bool:
    return sizes.smoke or _cuda()


def _device(sizes: Sizes) -> torch.device:
    return torch.device("cuda:0" if sizes.device == "cuda" else sizes.device)


class _NoTF32:
    """float32 convolutions and matrix products in full float32 (not TF32) inside the block."""

    def __enter__(self):
        self.saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False

    def __exit__(self, *exc):
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = self.saved


@contextlib.contextmanager
def patched(module, name: str, value):
    """``module.name`` replaced by ``value`` inside the block (restored after)."""
    saved = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, saved)


@contextlib.contextmanager
def environment(**values: str):
    """Environment variables set inside the block (restored after)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def relative_gap(a: float, b: float) -> float:
    """``|a - b| / |b|``."""
    return abs(a - b) / max(abs(b), 1e-30)


def model_of(entry: tuple, seed: int = 0) -> torch.nn.Module:
    """``(configuration, overrides)`` built with the seed first."""
    name, overrides = entry
    torch.manual_seed(seed)
    return build_model(name, **overrides)


def lively_offsets(model: torch.nn.Module, shift: float = 0.0) -> None:
    """Give every ``DCNv2Pack`` of ``model`` non-trivial offsets and masks (BasicSR initialises ``conv_offset``
    to zero: offsets 0, masks 0.5): weights N(0, 0.01), biases N(0, 1) plus ``shift`` px on the offsets."""
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, DCNv2Pack):
                conv = m.conv_offset
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen) * 0.01)
                conv.bias.copy_(torch.randn(conv.bias.shape, generator=gen))
                conv.bias[: 2 * conv.bias.numel() // 3] += shift


# ---- 1. CUDA against CPU ------------------------------------------------------------------------


def check_cuda_vs_cpu(sizes: Sizes, args) -> list[Result]:
    if not _usable(sizes):
        return [Result("cuda-vs-cpu", "SKIPPED", NO_CUDA)]
    results = []
    shapes = (("basicvsr", {}, (1, 7, 3, 32, 32)), ("edvr_m", {}, (1, 5, 3, 64, 64)))
    if sizes.smoke:  # BasicSR's initialisation: the CPU models' fast start would output the bilinear skip alone
        shapes = (("basicvsr_cpu", RANDOM_FLOW, (1, 3, 3, 16, 16)), ("edvr_cpu", PLAIN, (1, 5, 3, 16, 16)))
    for model, overrides, shape in shapes:
        net = model_of((model, overrides)).eval()
        x = torch.rand(shape, generator=torch.Generator().manual_seed(1))
        with torch.no_grad(), _NoTF32():
            cpu = net(x)
            other = net.to(sizes.device)
            if sizes.smoke:  # no CUDA: the CPU's channels_last kernels, another summation order
                other.to(memory_format=torch.channels_last)
            gpu = other(x.to(sizes.device)).cpu()
        diff = (cpu - gpu).abs().max().item()
        ok = diff < 1e-4 and torch.isfinite(gpu).all().item()
        results.append(Result(f"cuda-vs-cpu {model}", verdict(ok),
                              f"output {tuple(gpu.shape)}: max |CUDA - CPU| = {diff:.2e} (tolerance 1e-4, fp32, TF32 off)",
                              measured={"max_abs_diff": diff}, tolerance={"max_abs_diff": 1e-4}))
    return results


# ---- 2. gradients against the CPU ----------------------------------------------------------------


def gradients(net: torch.nn.Module, x: torch.Tensor, gt: torch.Tensor, device: torch.device,
              channels_last: bool = False) -> tuple[float, dict[str, torch.Tensor]]:
    """The loss and every parameter's gradient (float64, on the CPU) of one forward and backward of a copy of
    ``net`` on ``device``: the mean squared error against ``gt`` (smooth, so that no sign flips with rounding)."""
    net = copy.deepcopy(net).to(device).train()
    if channels_last:
        net.to(memory_format=torch.channels_last)
    out = net(x.to(device))
    loss = F.mse_loss(out, target_frames(net, gt.to(device)))
    loss.backward()
    return loss.item(), {n: p.grad.detach().double().cpu() for n, p in net.named_parameters() if p.grad is not None}


GRAD_TOL = 1e-3


def clip_tensors(lq: np.ndarray, gt: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """A clip's uint8 ``(t, h, w, 3)`` frames as a batch of one: ``(1, t, 3, h, w)`` float in [0, 1]."""
    as_float = lambda a: torch.from_numpy(a).permute(0, 3, 1, 2).float().div(255).unsqueeze(0)  # noqa: E731
    return as_float(lq), as_float(gt)


def gradient_errors(ref: dict[str, torch.Tensor], got: dict[str, torch.Tensor]) -> tuple[dict, dict]:
    """Relative L2 errors ``|got - ref| / |ref|`` per top-level module (``spynet``, ``backward_trunk`` ...: the
    tolerance's unit) and per parameter tensor (for the report: a bias's gradient, one sum over every pixel
    that cancels, can lose more digits than its module)."""
    groups: dict[str, list[float]] = {}
    tensors = {}
    for name, g in ref.items():
        diff = (got[name] - g).norm().item()
        group = groups.setdefault(name.split(".")[0], [0.0, 0.0])
        group[0] += diff ** 2
        group[1] += g.norm().item() ** 2
        if g.norm() > 0:
            tensors[name] = diff / g.norm().item()
    return {k: math.sqrt(d / r) if r > 0 else (0.0 if d == 0 else float("inf")) for k, (d, r) in groups.items()}, tensors


def check_backward(sizes: Sizes, args) -> list[Result]:
    if not _usable(sizes):
        return [Result("backward", "SKIPPED", NO_CUDA)]
    other = "CUDA" if not sizes.smoke else "CPU channels_last"  # no CUDA: the CPU in another memory format
    results = []
    for name, overrides, shape in sizes.grad_cases:
        net = model_of((name, overrides))
        lively_offsets(net)
        x, gt = clip_tensors(*moving_clip(shape[1], shape[3], shape[4], seed=2))
        with _NoTF32():
            loss_cpu, ref = gradients(net, x, gt, torch.device("cpu"))
            loss_other, got = gradients(net, x, gt, _device(sizes), channels_last=sizes.smoke)
        if set(got) != set(ref):
            results.append(Result(f"backward {name}", "FAIL", f"gradients of {sorted(set(got) ^ set(ref))} on one "
                                                              "side only"))
            continue
        groups, tensors = gradient_errors(ref, got)
        worst, worst_tensor = max(groups, key=groups.get), max(tensors, key=tensors.get)
        loss_gap = relative_gap(loss_other, loss_cpu)
        ok = groups[worst] < GRAD_TOL and loss_gap < 1e-5
        results.append(Result(
            f"backward {name}", verdict(ok),
            f"{len(ref)} parameter gradients in {len(groups)} modules, {other} against CPU, fp32, TF32 off, input "
            f"{shape}: largest relative error of a module {groups[worst]:.1e} ({worst}; tolerance {GRAD_TOL:g}), of a "
            f"tensor {tensors[worst_tensor]:.1e} ({worst_tensor}); loss {loss_gap:.1e} apart (tolerance 1e-5)",
            measured={"module_relative_errors": groups, "worst_module": worst, "worst_tensor": worst_tensor,
                      "worst_tensor_relative_error": tensors[worst_tensor], "loss_relative_gap": loss_gap},
            tolerance={"module_relative_error": GRAD_TOL, "loss_relative_gap": 1e-5}))
    return results


# ---- 3. offsets, masks and flows in fp32 under autocast --------------------------------------------


def edvr_dtypes(net: torch.nn.Module, x: torch.Tensor, device: torch.device, dtype: torch.dtype) -> tuple[dict, float]:
    """The dtypes EDVR computes its alignment in under ``dtype`` autocast, and the output's distance from the fp32
    output relative to the fp32 residual over bilinear upsampling."""
    seen = {"conv_offset": [], "deform": [], "upsampled offsets": [], "conv_first": []}
    hooks = [m.conv_offset.register_forward_hook(lambda mod, i, o: seen["conv_offset"].append(o.dtype))
             for m in net.modules() if isinstance(m, DCNv2Pack)]
    hooks.append(net.conv_first.register_forward_hook(lambda mod, i, o: seen["conv_first"].append(o.dtype)))
    deform, upsample = dcn_module.deform_conv2d, edvr_module.upsample_offsets

    def recording_deform(x, offset, weight, bias, stride, padding, dilation, mask):
        out = deform(x, offset, weight, bias, stride, padding, dilation, mask)
        seen["deform"].append(sorted({str(t.dtype) for t in (x, offset, mask, weight, out)}))
        return out

    def recording_upsample(offset):
        out = upsample(offset)
        seen["upsampled offsets"].append(out.dtype)
        return out

    x = x.to(device)
    with torch.no_grad(), patched(dcn_module, "deform_conv2d", recording_deform), \
            patched(edvr_module, "upsample_offsets", recording_upsample):
        fp32 = net(x)
        for values in seen.values():
            values.clear()
        with torch.autocast(device.type, dtype=dtype):
            mixed = net(x)
    for h in hooks:
        h.remove()
    centre = x[:, x.shape[1] // 2]
    residual = (fp32 - F.interpolate(centre, scale_factor=4, mode="bilinear", align_corners=False)).abs().max()
    return seen, ((mixed.float() - fp32).abs().max() / residual).item()


def flow_dtypes(net: torch.nn.Module, x: torch.Tensor, device: torch.device, dtype: torch.dtype) -> tuple[list, list]:
    """The dtypes of BasicVSR's flows (SpyNet's outputs) and of its first trunk convolution under autocast."""
    flows, convs = [], []
    hooks = [net.spynet.register_forward_hook(lambda mod, i, o: flows.append(o.dtype)),
             net.backward_trunk.main[0].register_forward_hook(lambda mod, i, o: convs.append(o.dtype))]
    with torch.no_grad(), torch.autocast(device.type, dtype=dtype):
        net(x.to(device))
    for h in hooks:
        h.remove()
    return flows, convs


def check_autocast(sizes: Sizes, args) -> list[Result]:
    if not _usable(sizes):
        return [Result("autocast", "SKIPPED", NO_CUDA)]
    device = _device(sizes)
    (edvr, edvr_over, edvr_shape), (bvsr, bvsr_over, bvsr_shape) = sizes.autocast_cases
    results = []
    for precision, dtype in (("bf16", torch.bfloat16), ("fp16", torch.float16)):
        net = model_of((edvr, edvr_over)).to(device).eval()
        lively_offsets(net, shift=12.3)  # offsets of ~12 px: where bf16 would round to 1/16 px
        x = torch.rand(edvr_shape, generator=torch.Generator().manual_seed(3))
        seen, gap = edvr_dtypes(net, x, device, dtype)
        fp32 = str(torch.float32)
        edvr_ok = (seen["conv_offset"] == [torch.float32] * 4 and seen["deform"] == [[fp32]] * 4
                   and seen["upsampled offsets"] == [torch.float32] * 2 and seen["conv_first"] == [dtype])
        flow_net = model_of((bvsr, bvsr_over)).to(device).eval()
        flows, convs = flow_dtypes(flow_net, torch.rand(bvsr_shape, generator=torch.Generator().manual_seed(4)),
                                   device, dtype)
        flows_ok = bool(flows) and set(flows) == {torch.float32} and set(convs) == {dtype}
        ok = edvr_ok and flows_ok and gap < 0.05
        results.append(Result(
            f"autocast {precision}", verdict(ok),
            f"{device.type} autocast {precision}: {edvr} conv_offset {_names(seen['conv_offset'])}, deformable convs "
            f"{'/'.join(sorted({d for s in seen['deform'] for d in s})).replace('torch.', '')} (x, offset, mask, weight, out), "
            f"upsampled offsets {_names(seen['upsampled offsets'])}, conv_first {_names(seen['conv_first'])}; output "
            f"{gap:.2%} of the residual from fp32 (tolerance 5%); {bvsr} flows {_names(flows)}, trunk conv {_names(convs)}",
            measured={"conv_offset": _names(seen["conv_offset"]), "deform": seen["deform"],
                      "upsampled_offsets": _names(seen["upsampled offsets"]), "conv_first": _names(seen["conv_first"]),
                      "output_gap_of_residual": gap, "flows": _names(flows), "trunk_conv": _names(convs)},
            tolerance={"alignment_dtype": "float32", "output_gap_of_residual": 0.05}))
    return results


def _names(dtypes) -> str:
    return "/".join(sorted({str(d).replace("torch.", "") for d in dtypes})) or "none"


# ---- 4. torchvision's DCN kernel against ours ---------------------------------------------------


def _dcn_inputs(device: str, dtype: torch.dtype) -> dict:
    g = torch.Generator().manual_seed(0)
    b, c_in, c_out, size, groups = 2, 16, 32, 24, 4

    def rand(*shape, scale=1.0):
        return (torch.randn(*shape, generator=g, dtype=torch.float64) * scale).to(device, dtype).requires_grad_()

    return dict(x=rand(b, c_in, size, size), offset=rand(b, 2 * groups * 9, size, size, scale=2.0),
                weight=rand(c_out, c_in, 3, 3, scale=0.1), bias=rand(c_out),
                mask=torch.sigmoid(rand(b, groups * 9, size, size)).detach().requires_grad_())


def _dcn_run(backend: str, inputs: dict) -> list[torch.Tensor]:
    for t in inputs.values():
        t.grad = None
    with use_backend(backend):
        out = deform_conv2d(inputs["x"], inputs["offset"], inputs["weight"], inputs["bias"], padding=1,
                            mask=inputs["mask"])
    (out * torch.linspace(-1, 1, out.numel(), device=out.device, dtype=out.dtype).view_as(out)).sum().backward()
    return [out.detach()] + [inputs[k].grad.detach().clone() for k in ("x", "offset", "mask", "weight")]


def check_dcn(sizes: Sizes, args) -> list[Result]:
    if not torchvision_available():
        return [Result("dcn", "SKIPPED", "torchvision does not import here (install the torchvision that matches "
                                         "this torch)")]
    results = []
    for device in ["cpu"] + (["cuda"] if _cuda() else []):
        for dtype, tol in ((torch.float64, 1e-8), (torch.float32, 1e-4)):
            inputs = _dcn_inputs(device, dtype)
            with _NoTF32():
                theirs, ours = _dcn_run("torchvision", inputs), _dcn_run("torch", inputs)
            worst = max(((a - b).abs().max() / a.abs().max().clamp_min(1e-12)).item() for a, b in zip(theirs, ours))
            results.append(Result(f"dcn {device} {str(dtype).split('.')[1]}", verdict(worst < tol),
                                  f"largest difference of output and gradients, relative to their scale: {worst:.2e} "
                                  f"(tolerance {tol:g})", measured={"worst_relative": worst},
                                  tolerance={"worst_relative": tol}))
    if not _cuda():
        results.append(Result("dcn cuda", "SKIPPED", NO_CUDA))
    return results


# ---- 5. bf16 autocast against fp32 --------------------------------------------------------------

BF16_ARITHMETIC = 2.0 ** -7  # 4 units of bf16's roundoff 2^-9 (the module docstring, check 5)
CHANCE = 3.0  # standard errors of the paired tail difference allowed to chance


def _losses(folder: Path) -> list[float]:
    return [r["loss"] for r in read_log(folder) if r["event"] == "step"]


def paired_tail(fp32: list[float], low: list[float], tail: int) -> dict:
    """The last ``tail`` steps of two runs on the same batches: the mean of ``low - fp32`` relative to the fp32
    mean, its standard error (relative too) and the bound: the larger of :data:`CHANCE` standard errors and
    :data:`BF16_ARITHMETIC`."""
    d = [b - a for a, b in zip(fp32[-tail:], low[-tail:])]
    mean32 = statistics.fmean(fp32[-tail:])
    se = statistics.stdev(d) / math.sqrt(len(d)) if len(d) > 1 else 0.0
    return {"tail_steps": tail, "tail_mean_fp32": mean32, "tail_mean_low": statistics.fmean(low[-tail:]),
            "paired_gap": statistics.fmean(d) / mean32, "paired_se": se / mean32,
            "bound": max(CHANCE * se / mean32, BF16_ARITHMETIC)}


def check_bf16(sizes: Sizes, args) -> list[Result]:
    if not _usable(sizes):
        return [Result("bf16", "SKIPPED", NO_CUDA)]
    if not sizes.smoke and not bf16_supported(_device(sizes)):
        return [Result("bf16", "SKIPPED", f"{device_name(_device(sizes))} has no native bfloat16 (compute capability "
                                          "< 8.0): --amp trains in fp16 here, which the fp16 check covers")]
    n = sizes.bf16_iterations
    preset = sizes.preset("table1/basicvsr_m/ours", iterations=n, batch=sizes.batch)
    out = Path(tempfile.mkdtemp(prefix="mgvsr-gpu-check-bf16-"))
    summaries = {}
    # --smoke: bf16 on any CPU (emulated where the CPU has none: slower, the same arithmetic)
    with environment(**({BF16_ENV: "1"} if sizes.smoke else {})):
        for name, amp in (("fp32", False), ("bf16", True)):
            options = RunOptions(device=sizes.device, amp=amp, spynet="none", workers=sizes.workers, progress=False)
            summaries[name] = run_preset(preset, out / name, options).summary
    fp32, bf16 = _losses(out / "fp32"), _losses(out / "bf16")
    finite = all(math.isfinite(v) for v in fp32 + bf16)
    first = relative_gap(bf16[0], fp32[0])
    tail = paired_tail(fp32, bf16, max(2, n // 3))
    precision = summaries["bf16"]["setup"]["precision"]
    ok = finite and precision == "bf16" and first < BF16_ARITHMETIC and abs(tail["paired_gap"]) <= tail["bound"]
    return [Result("bf16", verdict(ok),
                   f"{preset.model}, {n} iterations of {sizes.batch} clips, fp32 against {precision}: first step "
                   f"(same weights, same batch) {first:.3%} apart (tolerance {BF16_ARITHMETIC:.2%}); last "
                   f"{tail['tail_steps']} steps, mean paired difference {tail['paired_gap']:+.3%} of the fp32 mean "
                   f"{tail['tail_mean_fp32']:.4f} (standard error {tail['paired_se']:.3%}; tolerance "
                   f"{tail['bound']:.2%}); PSNR fp32 {summaries['fp32']['psnr']:.2f} dB, bf16 "
                   f"{summaries['bf16']['psnr']:.2f} dB",
                   measured={"first_step_gap": first, **tail, "precision": precision, "finite": finite,
                             "psnr_fp32": summaries["fp32"]["psnr"], "psnr_bf16": summaries["bf16"]["psnr"]},
                   tolerance={"first_step_gap": BF16_ARITHMETIC, "paired_gap": f"max({CHANCE:g} standard errors, "
                                                                              f"{BF16_ARITHMETIC:g})"})]


# ---- 6. the fp16 path, forced ------------------------------------------------------------------------

FP16_RESUME_TOL = 1e-3


@contextlib.contextmanager
def forced_fp16(device: torch.device):
    """``--amp`` choosing fp16 + loss scaling as on a compute capability 7.0 GPU: on CUDA the device answers
    7.0 (:func:`mgvsr.device.resolve_precision` decides, as on a V100); on a CPU, whose autocast computes
    float16 too, the training step's choice is replaced."""
    if device.type == "cuda":
        with patched(device_module, "cuda_capability", lambda d: (7, 0)):
            yield "compute capability 7.0 faked (mgvsr.device.cuda_capability)"
    else:
        with patched(step_module, "resolve_precision", lambda d, amp: "fp16" if amp else "fp32"):
            yield "fp16 forced on the CPU (mgvsr.step.resolve_precision)"


def fp16_trainer(sizes: Sizes, folder: Path, stop_at_forward: int | None = None) -> tuple[Trainer, list]:
    """A :class:`Trainer` of the fp16 check's model and stage on the sample clips; ``stop_at_forward``: a
    KeyboardInterrupt at that forward call (0-based), inside a step."""
    iterations, patch, frames, batch, lr = sizes.fp16_stage
    model = model_of(sizes.fp16_model)
    dtypes = []
    last = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    last.register_forward_hook(lambda m, i, o: dtypes.append(o.dtype))
    if stop_at_forward is not None:
        calls = iter(range(10**9))

        def stop(module, inputs):
            if next(calls) == stop_at_forward:
                raise KeyboardInterrupt

        model.register_forward_pre_hook(stop)
    cfg = TrainConfig(device=str(_device(sizes)), amp=True, micro_batch=sizes.fp16_micro, checkpoint_every=1,
                      progress=False, cudnn_benchmark=False)
    return Trainer(model, Plan((Stage(iterations, patch, frames, batch, lr),)), sample_source("train"), folder, cfg), dtypes


def check_fp16(sizes: Sizes, args) -> list[Result]:
    if not _usable(sizes):
        return [Result("fp16", "SKIPPED", NO_CUDA)]
    device = _device(sizes)
    out = Path(tempfile.mkdtemp(prefix="mgvsr-gpu-check-fp16-"))
    iterations, patch, frames, batch, _ = sizes.fp16_stage
    micro_per_step = batch // sizes.fp16_micro
    stop_at = micro_per_step * (iterations // 2) + 1  # inside step iterations // 2, after its first micro-batch
    with forced_fp16(device) as how:
        whole, dtypes = fp16_trainer(sizes, out / "whole")
        whole.run()
        stopped, _ = fp16_trainer(sizes, out / "stopped", stop_at_forward=stop_at)
        with contextlib.suppress(KeyboardInterrupt):
            stopped.run()
        interrupted_at = stopped.it
        resumed, _ = fp16_trainer(sizes, out / "stopped")
        resumed.run(resume=True)
    losses, again = _losses(out / "whole"), _losses(out / "stopped")
    state = torch.load(out / "whole" / "last.pth", map_location="cpu", weights_only=False)
    scale = (state.get("scaler") or {}).get("scale")
    worst = max((relative_gap(a, b) for a, b in zip(again, losses)), default=float("inf"))
    tol = 0.0 if device.type == "cpu" else FP16_RESUME_TOL  # the CPU is deterministic here: exactly equal
    ok = (whole.precision == "fp16" and whole.step.scaler is not None and set(dtypes) == {torch.float16}
          and len(dtypes) == iterations * micro_per_step and all(math.isfinite(v) for v in losses)
          and scale is not None and scale > 0 and len(again) == len(losses) == iterations and worst <= tol
          and 0 < interrupted_at < iterations)
    return [Result("fp16", verdict(ok),
                   f"{how}: {sizes.fp16_model[0]}, {iterations} steps of {batch} clips {patch}&{frames} in micro-batches "
                   f"of {sizes.fp16_micro}, precision {whole.precision}, convolutions {_names(dtypes)}, losses "
                   f"{'finite' if all(math.isfinite(v) for v in losses) else 'NOT finite'}, GradScaler scale in "
                   f"last.pth {scale}; stopped inside step {interrupted_at}, resumed: largest loss difference "
                   f"{worst:.1e} relative (tolerance {tol:g})",
                   measured={"precision": whole.precision, "conv_dtypes": _names(dtypes), "scaler_scale": scale,
                             "losses": losses, "resumed_losses": again, "resume_relative_gap": worst,
                             "interrupted_at": interrupted_at},
                   tolerance={"resume_relative_gap": tol})]


# ---- 7. TrainStep under DDP: micro-batches with no_sync, the frozen SpyNet thawing ---------------------

DDP_TOL = 1e-4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ddp_batch(spec: dict, it: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Step ``it``'s global batch: smooth random GT frames ``(b, t, 3, 4p, 4p)`` and their 4x box-downscaled LR."""
    patch, frames, batch, _ = spec["shape"]
    g = torch.Generator().manual_seed(1000 + it)
    base = torch.rand(batch * frames, 3, patch, patch, generator=g)
    gt = F.interpolate(base, scale_factor=4, mode="bicubic", align_corners=False).clamp(0, 1)
    lq = F.avg_pool2d(gt, 4)
    return lq.view(batch, frames, 3, patch, patch), gt.view(batch, frames, 3, 4 * patch, 4 * patch)


def ddp_steps(spec: dict, device: torch.device, rank: int, world: int) -> dict:
    """``spec["steps"]`` training steps of this process's share of every global batch (in micro-batches of
    ``spec["shape"][3]`` when distributed, the whole batch alone): losses, DDP's wrapping per step, forwards."""
    _, _, batch, micro = spec["shape"]
    model = model_of((spec["model"], spec["overrides"]))
    cfg = TrainConfig(frozen_iters=spec["frozen"], frozen="flow", flow_lr_mult=0.125,
                      micro_batch=micro if world > 1 else None, cudnn_benchmark=False)
    step = TrainStep(model, cfg, device, world)
    forwards = [0]
    model.register_forward_pre_hook(lambda m, i: forwards.__setitem__(0, forwards[0] + 1))
    share, losses, wrapped = batch // world, [], []
    for it in range(spec["steps"]):
        lq, gt = (t[rank * share:(rank + 1) * share] for t in ddp_batch(spec, it))
        size = cfg.micro_batch or share
        pieces = [(lq[i:i + size], gt[i:i + size]) for i in range(0, share, size)]
        losses.append(step(iter(pieces), lr=spec["lr"], it=it, samples=share).loss)
        wrapped.append(None if step.ddp_key is None else {"frozen": step.ddp_key[0], "all_used": step.ddp_key[1],
                                                          "find_unused": step.net.find_unused_parameters})
    weights = torch.cat([p.detach().double().cpu().flatten() for p in step.model.parameters()])
    return {"losses": losses, "wrapped": wrapped, "forwards": forwards[0], "weights": weights}


def ddp_worker(rank: int, spec: dict) -> None:
    """One process of the ddp-step check (started by :func:`torch.multiprocessing.spawn`)."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(spec["port"]))
    device = torch.device(spec["devices"][rank])
    if device.type == "cuda":
        torch.cuda.set_device(device)
    no_sync = [0]
    plain = DistributedDataParallel.no_sync

    def counted(self):
        no_sync[0] += 1
        return plain(self)

    DistributedDataParallel.no_sync = counted  # this process only: how often accumulation skipped the all-reduce
    dist.init_process_group(spec["backend"], rank=rank, world_size=spec["world"])
    try:
        with _NoTF32():
            record = ddp_steps(spec, device, rank, spec["world"])
        record["no_sync"] = no_sync[0]
        torch.save(record, Path(spec["out"]) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def ddp_compare(spec: dict, single: dict) -> tuple[bool, str, dict]:
    """Runs ``spec`` in 2 processes and compares with ``single`` (the one-process record)."""
    mp.spawn(ddp_worker, args=(spec,), nprocs=spec["world"], join=True)
    ranks = [torch.load(Path(spec["out"]) / f"rank{r}.pt", weights_only=False) for r in range(spec["world"])]
    ddp = ranks[0]
    _, _, batch, micro = spec["shape"]
    per_rank = batch // spec["world"] // micro  # micro-batches per process per step
    worst = max(relative_gap(a, b) for a, b in zip(ddp["losses"], single["losses"]))
    weights = ((ddp["weights"] - single["weights"]).norm() / single["weights"].norm()).item()
    phases = [w["frozen"] for w in ddp["wrapped"]]
    rewrapped = phases == [it < spec["frozen"] for it in range(spec["steps"])]
    counts_ok = all(r["forwards"] == spec["steps"] * per_rank and r["no_sync"] == spec["steps"] * (per_rank - 1)
                    for r in ranks)
    ok = worst < DDP_TOL and rewrapped and counts_ok and ranks[0]["losses"] == ranks[1]["losses"]
    find_unused = sorted({w["find_unused"] for w in ddp["wrapped"]})
    detail = (f"{spec['world']} processes over {spec['backend']} on {'/'.join(sorted(set(spec['devices'])))} against one, "
              f"{spec['model']} {spec['shape'][0]}&{spec['shape'][1]}, batch {batch} ({per_rank} micro-batches of {micro} "
              f"per process, {ranks[0]['no_sync']} under no_sync), {spec['steps']} steps, SpyNet frozen for "
              f"{spec['frozen']} (DDP {'re-wrapped when it thawed' if rewrapped else 'NOT re-wrapped as expected'}; "
              f"find_unused_parameters {find_unused}): largest per-step loss difference {worst:.1e} relative "
              f"(tolerance {DDP_TOL:g}); final weights {weights:.1e} apart (relative L2)")
    return ok, detail, {"loss_relative_gap": worst, "weights_relative_gap": weights, "rewrapped": rewrapped,
                        "no_sync": ranks[0]["no_sync"], "forwards": ranks[0]["forwards"], "losses_ddp": ddp["losses"],
                        "losses_single": single["losses"], "find_unused_parameters": find_unused}


def check_ddp_step(sizes: Sizes, args) -> list[Result]:
    if not _usable(sizes):
        return [Result("ddp-step", "SKIPPED", NO_CUDA)]
    device = _device(sizes)
    name, overrides = sizes.ddp_model
    spec = {"model": name, "overrides": overrides, "shape": sizes.ddp_shape, "steps": sizes.ddp_steps,
            "frozen": sizes.ddp_frozen, "lr": 2e-4, "world": 2}
    with _NoTF32():
        single = ddp_steps(spec, device, 0, 1)
    runs = [("ddp-step gloo", "gloo", [str(device)] * 2)]
    if device.type == "cuda" and torch.cuda.device_count() >= 2:
        runs.append(("ddp-step nccl", "nccl", ["cuda:0", "cuda:1"]))
    results = []
    for check, backend, devices in runs:
        out = tempfile.mkdtemp(prefix="mgvsr-gpu-check-ddp-step-")
        ok, detail, measured = ddp_compare({**spec, "backend": backend, "devices": devices, "port": free_port(),
                                            "out": out}, single)
        results.append(Result(check, verdict(ok), detail, measured=measured,
                              tolerance={"loss_relative_gap": DDP_TOL}))
    if device.type == "cuda" and torch.cuda.device_count() < 2:
        results.append(Result("ddp-step nccl", "SKIPPED", f"NCCL across GPUs needs two; {torch.cuda.device_count()} "
                                                          "visible"))
    return results


# ---- 8. DDP over NCCL, the command line ---------------------------------------------------------------


def subprocess_env(**extra: str) -> dict:
    """This environment with the repository on PYTHONPATH (the package runs from a checkout too)."""
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1", **extra}


def check_ddp(sizes: Sizes, args) -> list[Result]:
    if not _usable(sizes):
        return [Result("ddp", "SKIPPED", NO_CUDA)]
    n = 2 if sizes.smoke else torch.cuda.device_count()
    if n < 2:
        return [Result("ddp", "SKIPPED", f"DDP over NCCL needs two GPUs or more; {n} visible (ddp-step runs two "
                                         "processes on one)")]
    out = Path(tempfile.mkdtemp(prefix="mgvsr-gpu-check-ddp-"))
    train = ["-m", "mgvsr", "train", "--preset", "table1/basicvsr_m/ours", "--dataset", "sample",
             "--iterations", "12", "--batch", str(sizes.batch * n), "--patch-div", str(sizes.patch_div),
             "--spynet", "none", "--device", sizes.device, "--workers", str(sizes.workers), "--no-progress"]
    if sizes.model:
        train += ["--model", sizes.model]
    runs = {"ddp": [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(n),
                    *train, "--out", str(out / "ddp")],
            "single": [sys.executable, *train, "--out", str(out / "single")]}
    for name, command in runs.items():
        done = subprocess.run(command, capture_output=True, text=True, env=subprocess_env())
        if done.returncode:
            return [Result("ddp", "FAIL", f"{name} run failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")]
    ddp, single = _losses(out / "ddp"), _losses(out / "single")
    world = read_log(out / "ddp")[0]["setup"]["world_size"]
    worst = max(abs(a - b) / b for a, b in zip(ddp, single))
    ok = world == n and len(ddp) == len(single) == 12 and worst < 0.01
    engine = "gloo" if sizes.device == "cpu" else "NCCL"
    return [Result("ddp", verdict(ok),
                   f"{n} processes over {engine} (world size {world}) against one process, batch {sizes.batch * n}: "
                   f"largest per-step loss difference {worst:.2%} (tolerance 1%)",
                   measured={"loss_relative_gap": worst, "world_size": world}, tolerance={"loss_relative_gap": 0.01})]


# ---- 9. REDS4's shape: SpyNet's resize branch, a whole clip in segments -----------------------------------

EVAL_PSNR_TOL = 1e-3  # dB


class MemoryClips(ClipSource):
    """Clips held in memory: ``{name: (lq (t, h, w, 3), gt (t, 4h, 4w, 3))}`` uint8, scored as ``name``'s benchmark."""

    def __init__(self, clips: dict[str, tuple[np.ndarray, np.ndarray]], name: str) -> None:
        self.data, self.name = clips, name

    def clips(self) -> list[str]:
        return list(self.data)

    def num_frames(self, clip: str) -> int:
        return len(self.data[clip][0])

    def lq_size(self, clip: str) -> tuple[int, int]:
        return self.data[clip][0].shape[1:3]

    def read_gt(self, clip, indices, box=None) -> np.ndarray:
        return crop(self.data[clip][1][list(indices)], self.gt_box(box))

    def read_lq(self, clip, indices, box=None) -> np.ndarray:
        return crop(self.data[clip][0][list(indices)], box)


def moving_clip(frames: int, h: int, w: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A clip whose content moves: crops of a smooth random scene shifted by (1, 2) LR px a frame; the LR frames
    the GT's 4x4 box means.  ``(lq (t, h, w, 3), gt (t, 4h, 4w, 3))`` uint8."""
    g = torch.Generator().manual_seed(seed)
    rows, cols = 4 * (h + frames), 4 * (w + 2 * frames)
    scene = F.interpolate(torch.rand(1, 3, rows // 16, cols // 16, generator=g), size=(rows, cols), mode="bicubic",
                          align_corners=False)
    scene = (scene + 0.05 * torch.rand(1, 3, rows, cols, generator=g)).clamp(0, 1)
    lq = np.empty((frames, h, w, 3), np.uint8)
    gt = np.empty((frames, 4 * h, 4 * w, 3), np.uint8)
    for i in range(frames):
        frame = scene[:, :, 4 * i:4 * (i + h), 8 * i:8 * i + 4 * w]
        for out, image in ((gt, frame), (lq, F.avg_pool2d(frame, 4))):
            out[i] = image[0].mul(255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return lq, gt


def evaluated(net: torch.nn.Module, source: ClipSource, device: torch.device,
              segment: int | None) -> tuple[list, int | None]:
    """Every frame's PSNR of ``net`` on ``source`` evaluated as training does, and the peak CUDA memory it took."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
    result = evaluate_model(net, source, protocol_for(source.name), device=device, progress=False, segment=segment)
    peak = torch.cuda.max_memory_allocated(device) - before if device.type == "cuda" else None
    return [p for clip in result.clips.values() for p in clip.frame_psnr], peak


def check_eval_reds4(sizes: Sizes, args) -> list[Result]:
    if not _usable(sizes):
        return [Result("eval-reds4", "SKIPPED", NO_CUDA)]
    device = _device(sizes)
    frames, h, w = sizes.eval_clip
    source = MemoryClips({"000": moving_clip(frames, h, w)}, "reds4")
    net = model_of(sizes.eval_model).to(device)
    sizes_seen = []
    pyramid = net.spynet.compute_flow

    def recorded(ref: torch.Tensor, supp: torch.Tensor, levels: int) -> torch.Tensor:  # the size SpyNet computes at
        sizes_seen.append(tuple(ref.shape[-2:]))
        return pyramid(ref, supp, levels)

    net.spynet.compute_flow = recorded
    multiple = 2 ** (pyramid_levels(h, w) - 1)
    resized = (-(-h // multiple) * multiple, -(-w // multiple) * multiple)
    segmented, peak_segmented = evaluated(net, source, device, sizes.eval_segment)
    try:
        whole, peak_whole = evaluated(net, source, device, None)
    except torch.OutOfMemoryError:
        whole, peak_whole = None, None
    gap = None if whole is None else max(abs(a - b) for a, b in zip(segmented, whole))
    bounded = device.type != "cuda" or peak_whole is None or peak_segmented < peak_whole
    ok = set(sizes_seen) == {resized} and len(segmented) == frames and bounded and (gap is None or gap <= EVAL_PSNR_TOL)
    mb = lambda b: "not measured (CUDA only)" if b is None else f"{b / 2**20:,.0f} MiB"  # noqa: E731
    return [Result("eval-reds4", verdict(ok),
                   f"{sizes.eval_model[0]} on a {frames}-frame clip of {h}x{w} LR (REDS4's protocol, RGB): SpyNet ran at "
                   f"{sorted(set(sizes_seen))} (expected {resized}); segments of {sizes.eval_segment} frames, peak "
                   f"{mb(peak_segmented)}; the whole clip at once, peak {mb(peak_whole)}"
                   + (" (out of memory)" if whole is None else f"; largest per-frame PSNR difference {gap:.1e} dB "
                                                               f"(tolerance {EVAL_PSNR_TOL:g})")
                   + f"; mean PSNR {statistics.fmean(segmented):.2f} dB",
                   measured={"spynet_sizes": sorted(set(sizes_seen)), "expected_size": resized,
                             "peak_bytes_segmented": peak_segmented, "peak_bytes_whole": peak_whole,
                             "psnr_gap_db": gap, "mean_psnr": statistics.fmean(segmented)},
                   tolerance={"psnr_gap_db": EVAL_PSNR_TOL, "peak": "segments below the whole clip (CUDA)"})]


# ---- 10. SIGTERM and resume on CUDA ----------------------------------------------------------------------

PREEMPT_TOL = 1e-4


def train_command(sizes: Sizes, out: Path, *extra: str) -> list[str]:
    iterations, batch, patch_div, _ = sizes.preempt
    command = [sys.executable, "-m", "mgvsr", "train", "--preset", "table1/basicvsr_m/ours", "--dataset", "sample",
               "--iterations", str(iterations), "--batch", str(batch), "--patch-div", str(patch_div),
               "--spynet", "none", "--device", sizes.device, "--workers", "0", "--no-progress", "--out", str(out)]
    return command + (["--model", sizes.model] if sizes.model else []) + list(extra)


def steps_logged(folder: Path) -> int:
    log = folder / "log.jsonl"
    return log.read_text().count('"event": "step"') if log.exists() else 0


def stop_after(command: list[str], folder: Path, steps: int, popen: dict) -> tuple[int, str, bool]:
    """Run ``command`` (training into ``folder``), send it SIGTERM once ``steps`` steps are logged; its exit
    status, its stderr and whether it had ended before the signal (a machine too fast for the run's length)."""
    proc = subprocess.Popen(command, **popen)
    try:
        deadline = time.monotonic() + 300
        while steps_logged(folder) < steps and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        ended = proc.poll() is not None
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=300)
        return proc.returncode, err, ended
    finally:
        if proc.poll() is None:
            proc.kill()


def check_preempt(sizes: Sizes, args) -> list[Result]:
    if not _usable(sizes):
        return [Result("preempt", "SKIPPED", NO_CUDA)]
    iterations, _, _, signal_after = sizes.preempt
    out = Path(tempfile.mkdtemp(prefix="mgvsr-gpu-check-preempt-"))
    popen = dict(env=subprocess_env(NVIDIA_TF32_OVERRIDE="0"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                 text=True)
    reference = subprocess.Popen(train_command(sizes, out / "reference"), **popen)  # uninterrupted, meanwhile
    try:
        code_stopped, err, ended = stop_after(train_command(sizes, out / "stopped"), out / "stopped", signal_after,
                                              popen)
        records = read_log(out / "stopped") if (out / "stopped" / "log.jsonl").exists() else []
        preempted = [r for r in records if r["event"] == "preempted"]
        checkpoint, final_before = (out / "stopped" / "last.pth").exists(), (out / "stopped" / "final.pth").exists()
        resumed = subprocess.run(train_command(sizes, out / "stopped", "--resume"), timeout=600, **popen)
        _, ref_err = reference.communicate(timeout=600)
    finally:
        if reference.poll() is None:
            reference.kill()
    if ended:
        return [Result("preempt", "FAIL", f"the run ended (exit {code_stopped}) before {signal_after} steps were "
                                          f"logged: it failed, or is too short to interrupt here:\n{err[-1500:]}")]
    if reference.returncode or resumed.returncode:
        return [Result("preempt", "FAIL", f"exit {reference.returncode} (uninterrupted), {resumed.returncode} "
                                          f"(resumed):\n{ref_err[-1500:]}{resumed.stderr[-1500:]}")]
    ref, again = _losses(out / "reference"), _losses(out / "stopped")
    tol = 0.0 if sizes.device == "cpu" else PREEMPT_TOL
    worst = max((relative_gap(a, b) for a, b in zip(again, ref)), default=float("inf"))
    it = preempted[0]["it"] if preempted else None
    ok = (code_stopped == EXIT_PREEMPTED and len(preempted) == 1 and preempted[0].get("signal") == "SIGTERM"
          and checkpoint and not final_before and (out / "stopped" / "final.pth").exists()
          and len(again) == len(ref) == iterations and worst <= tol and it is not None and 0 < it < iterations)
    return [Result("preempt", verdict(ok),
                   f"mgvsr train on {sizes.device}, {iterations} iterations: SIGTERM after {it} steps -> exit "
                   f"{code_stopped} (expected {EXIT_PREEMPTED}), last.pth {'written' if checkpoint else 'MISSING'}, "
                   f"final.pth {'present (wrong)' if final_before else 'absent'}; --resume exit {resumed.returncode}: "
                   f"{len(again)} steps, largest loss difference from an uninterrupted run {worst:.1e} relative "
                   f"(tolerance {tol:g})" + ("" if code_stopped == EXIT_PREEMPTED else f"\n{err[-1500:]}"),
                   measured={"exit_stopped": code_stopped, "preempted_at": it, "checkpoint": checkpoint,
                             "final_before_resume": final_before, "loss_relative_gap": worst, "steps": len(again)},
                   tolerance={"loss_relative_gap": tol, "exit": EXIT_PREEMPTED})]


# ---- 11. the loader at 32&7 on a frame store, against the GPU's consumption -------------------------------


def loader_rate(loader, warmup: int = 2) -> float:
    """Windows per second a loader delivers after ``warmup`` batches (its workers' start-up)."""
    batches = iter(loader)
    for _ in range(warmup):
        next(batches)
    count, start = 0, time.perf_counter()
    for lq, _ in batches:
        count += lq.shape[0]
    return count / (time.perf_counter() - start)


def check_loader(sizes: Sizes, args) -> list[Result]:
    if not _usable(sizes):
        return [Result("loader", "SKIPPED", NO_CUDA)]
    device = _device(sizes)
    n_clips, n_frames, (h, w) = sizes.loader_clips
    patch, frames, batch = sizes.loader_shape
    with tempfile.TemporaryDirectory(prefix="mgvsr-gpu-check-store-") as tmp:
        clips = MemoryClips({f"{k:03d}": moving_clip(n_frames, h, w, seed=k) for k in range(n_clips)}, "reds")
        store = open_store(write_store(clips, Path(tmp) / "store", "reds", progress=False))
        del clips
        workers = default_workers(device)
        plan = Plan((Stage(sizes.loader_batches + 2, patch, frames, batch, 1e-4),))
        loader = stage_loader(plan, 0, 0, store, TrainConfig(num_workers=workers), pin_memory=device.type == "cuda")
        rate = loader_rate(loader)
    precision = resolve_precision(device, True)  # what --amp trains in: the fastest consumer
    config = StepConfig(sizes.loader_model, patch, frames, batch, sizes.loader_micro, precision,
                        prefers_channels_last(build_model(sizes.loader_model), device.type, precision))
    step = calibrate([config], str(device))[config]
    consumed = batch / step
    ratio = rate / consumed
    return [Result("loader", verdict(ratio >= 1),
                   f"stage_loader at {patch}&{frames}, batch {batch}, {workers} workers (the default on {device.type}), "
                   f"from a frame store of {n_clips} clips x {n_frames} frames of {h}x{w} LR: {rate:,.0f} windows/s; "
                   f"{config.label} step (calibrated) {step:.3f} s -> consumes {consumed:,.0f} windows/s: the loader "
                   f"delivers {ratio:.1f}x that (PASS from 1x; the aim is 5x)",
                   measured={"windows_per_second": rate, "workers": workers, "step_seconds": step,
                             "consumed_per_second": consumed, "ratio": ratio, "precision": precision},
                   tolerance={"ratio_at_least": 1.0, "aim": 5.0})]


# ---- 12. BasicVSR-M baseline against ours ---------------------------------------------------------


def check_speedup(sizes: Sizes, args) -> list[Result]:
    if not _usable(sizes):
        return [Result("speedup", "SKIPPED", NO_CUDA)]
    base_it = 24 if sizes.smoke else args.timing_iterations
    shrink = dict(batch=sizes.batch) if sizes.smoke else {}
    presets = {"baseline": sizes.preset("table1/basicvsr_m/baseline", iterations=base_it, **shrink),
               "ours": sizes.preset("table1/basicvsr_m/ours", iterations=base_it // 4,
                                    **({"batch": 4 * sizes.batch} if sizes.smoke else {}))}
    micro = 2 if sizes.smoke else (args.timing_micro_batch or None)
    out = Path(tempfile.mkdtemp(prefix="mgvsr-gpu-check-speedup-"))
    s = {}
    for name, preset in presets.items():
        options = RunOptions(device=sizes.device, amp=not args.fp32_timing, spynet="none", workers=2 * sizes.workers,
                             progress=False, micro_batch=micro)
        s[name] = run_preset(preset, out / name, options).summary
    measured = s["baseline"]["compute_seconds"] / s["ours"]["compute_seconds"]
    costs = compare_folders(out / "baseline", {"ours": out / "ours"}, device=sizes.device)["ours"]
    calibrated, bound = costs["speedup_calibrated"], costs["speedup_flops"]
    samples = {k: presets[k].plan.samples for k in presets}
    lines = [f"{k}: {presets[k].plan.total_iterations} iterations of {presets[k].plan.stages[0].batch} clips "
             f"(micro-batches of {micro or presets[k].plan.stages[0].batch}), stages "
             f"{' '.join(st.label for st in presets[k].plan.stages)}, {s[k]['compute_seconds']:.1f} s compute "
             f"({samples[k] / s[k]['compute_seconds']:.1f} clips/s), {s[k]['data_seconds']:.1f} s waiting for data"
             for k in presets] + list(costs["flags"])
    return [Result("speedup", verdict(calibrated > 1),
                   f"{presets['ours'].model} on {s['ours']['setup']['device_name']}, {s['ours']['setup']['precision']}, "
                   f"the same {samples['baseline']} samples each: ours {calibrated:.2f}x faster than the baseline, "
                   f"calibrated (warm-up excluded), {measured:.2f}x as measured in the runs (first-call costs "
                   f"included), {bound:.2f}x by FLOPs; the paper: 6.2x wall-clock on 16 V100s against 4, i.e. 1.55x "
                   "in device-time\n    " + "\n    ".join(lines),
                   measured={"speedup_calibrated": calibrated, "speedup_measured": measured, "speedup_flops": bound,
                             "flags": costs["flags"], "compute_seconds": {k: s[k]["compute_seconds"] for k in s},
                             "micro_batch": micro, "precision": s["ours"]["setup"]["precision"]},
                   tolerance={"speedup_calibrated_above": 1.0})]


# ---- main ---------------------------------------------------------------------------------------------


RUNNERS = {"cuda-vs-cpu": check_cuda_vs_cpu, "backward": check_backward, "autocast": check_autocast,
           "dcn": check_dcn, "bf16": check_bf16, "fp16": check_fp16, "ddp-step": check_ddp_step, "ddp": check_ddp,
           "eval-reds4": check_eval_reds4, "preempt": check_preempt, "loader": check_loader, "speedup": check_speedup}


def versions() -> dict:
    """Python, torch, CUDA, cuDNN, torchvision, mgvsr (and its commit) as this process sees them."""
    try:
        from importlib.metadata import version
        torchvision = version("torchvision")
    except Exception:  # not installed
        torchvision = None
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
            "cudnn": cudnn, "torchvision": torchvision, "torchvision_imports": torchvision_available(),
            "mgvsr": mgvsr.__version__, "mgvsr_commit": git_commit(), "platform": platform.platform()}


def machine_report(sizes: Sizes) -> dict:
    """The device, the versions, the compute settings and the deformable convolution's backend (the JSON's head)."""
    device = torch.device("cuda:0") if _cuda() else torch.device("cpu")
    gpus = [{"name": torch.cuda.get_device_name(i), "capability": list(torch.cuda.get_device_capability(i)),
             "memory_bytes": torch.cuda.get_device_properties(i).total_memory}
            for i in range(torch.cuda.device_count())] if _cuda() else []
    return {"device": device_name(device), "gpus": gpus, "cpu_threads": torch.get_num_threads(),
            "versions": versions(), "compute_settings": compute_settings(device), "dcn_backend": backend_in_use(),
            "smoke": sizes.smoke}


def write_json(path: Path, head: dict, results: list[Result], argv: list[str]) -> None:
    summary = {s: sum(r.status == s for r in results) for s in ("PASS", "FAIL", "SKIPPED")}
    report = {**head, "argv": argv, "summary": summary, "checks": [asdict(r) for r in results]}
    path.write_text(json.dumps(report, indent=1, default=str) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog="Checks: " + ", ".join(CHECKS) + " (the module docstring says what each "
                                            "runs and why its tolerance).")
    parser.add_argument("--only", nargs="+", choices=CHECKS, help="run only these checks")
    parser.add_argument("--timing-iterations", type=int, default=200,
                        help="baseline iterations of the speedup check (ours: a quarter); default 200")
    parser.add_argument("--timing-micro-batch", type=int, default=16,
                        help="samples per forward/backward in the speedup check (0: the whole minibatch); default 16")
    parser.add_argument("--fp32-timing", action="store_true", help="time the speedup check in float32")
    parser.add_argument("--json", type=Path, help="also write a report here (device, versions, settings, every "
                                                  "check's measurements and tolerances), updated after each check")
    parser.add_argument("--smoke", action="store_true",
                        help="run every check's code on the CPU at toy sizes (tests this script; numbers meaningless)")
    args = parser.parse_args(argv)
    sizes = SMOKE if args.smoke else GPU
    warnings.simplefilter("ignore")
    head = machine_report(sizes)
    print(f"mgvsr GPU checks{' (SMOKE: toy sizes on the CPU, numbers meaningless)' if args.smoke else ''}: "
          f"torch {torch.__version__} (CUDA {head['versions']['cuda']}, cuDNN {head['versions']['cudnn']}), "
          f"{head['device'] if _cuda() else 'no CUDA (' + head['device'] + ')'}, {len(head['gpus'])} GPU(s), "
          f"torchvision {'imports' if torchvision_available() else 'does not import'}, deformable convolution "
          f"{head['dcn_backend']}, {head['compute_settings']}", flush=True)
    t0 = time.perf_counter()
    results: list[Result] = []
    for name in args.only or CHECKS:
        start = time.perf_counter()
        try:
            found = RUNNERS[name](sizes, args)
        except Exception as exc:  # a crash is a failed check, reported with the others
            found = [Result(name, "FAIL", f"{type(exc).__name__}: {exc}")]
        for r in found:
            r.seconds = time.perf_counter() - start
            print(f"{r.status:<8} {r.check}: {r.detail}  [{r.seconds:.0f} s]", flush=True)
        results += found
        if args.json:
            write_json(args.json, head, results, sys.argv[1:] if argv is None else argv)
    skipped = [r.check for r in results if r.status == "SKIPPED"]
    failed = [r.check for r in results if r.status == "FAIL"]
    print(f"\n{sum(r.status == 'PASS' for r in results)} passed, {len(failed)} failed, {len(skipped)} skipped "
          f"in {time.perf_counter() - t0:.0f} s" + (f"; skipped: {', '.join(skipped)}" if skipped else "")
          + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    sys.exit(main())
