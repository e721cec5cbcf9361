#!/usr/bin/env python
"""GPU acceptance checks: run this on a CUDA machine before trusting a paper-scale run there.

    python bench/gpu_check.py                          # every check (budget: under 10 min on one H100)
    python bench/gpu_check.py --only cuda-vs-cpu dcn   # some of them
    python bench/gpu_check.py --timing-iterations 400 --fp32-timing --json gpu_check.json

The checks, each printed as PASS, FAIL or SKIPPED with what it measured against its tolerance:

1. ``cuda-vs-cpu``: BasicVSR (30 blocks, LR 32x32, 7 frames, random SpyNet so that warps matter)
   and EDVR-M (LR 64x64, 5 frames) with the same weights on the same input, CUDA against CPU, in
   float32 with TF32 off: the largest output difference must be below 1e-4 (outputs in [0, 1];
   one grey level is 3.9e-3).
2. ``dcn``: torchvision's deformable-convolution kernel against mgvsr's pure-PyTorch one (outputs
   and the gradients of input, offsets, mask and weight), on the CPU and on CUDA: float64 within
   1e-8, float32 within 1e-4 of the output's scale.  Needs torchvision (runs on a CPU as well).
3. ``bf16``: the same short BasicVSR-M run (``table1/basicvsr_m/ours`` on the sample clips, 60
   iterations of 8 clips, SpyNet random: ``--spynet none``) in float32 and with bfloat16 autocast:
   the mean loss of the last 20 steps must agree within 5%, and both stay finite.
4. ``ddp``: ``torchrun`` over NCCL on all visible GPUs against one process with the same global
   batch (``mgvsr train``, 12 iterations): the per-step losses must agree within 1% (TF32
   convolutions and another summation order).  Needs two GPUs or more.
5. ``speedup``: BasicVSR-M's baseline (64x64, 15 frames, batch 16) against ours (the hierarchical
   multigrid 32/64 x 7/11/15, batch 64, Eq. 1) at the paper's shapes on the sample clips, the same
   samples each (``--timing-iterations`` baseline iterations, a quarter of them for ours), bf16
   autocast unless ``--fp32-timing``: the compute-time speedup on one GPU, printed beside the
   paper's 6.2x (on 4x the GPUs of its baseline: 1.55x in device-time).  PASS when ours is faster.

On a machine without CUDA every check that needs it says SKIPPED and the script exits 0 (the
``dcn`` check still runs on the CPU where torchvision imports).  Exit status 1 when a check fails.

``--smoke`` runs every check's code on the CPU at toy sizes (the CPU model, a few iterations,
gloo instead of NCCL, CPU against CPU): a test of this script on a machine without a GPU; its
numbers mean nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from mgvsr.device import device_name
from mgvsr.launch import initial_model, run_preset
from mgvsr.models.dcn import deform_conv2d, torchvision_available, use_backend
from mgvsr.options import RunOptions
from mgvsr.presets import get_preset
from mgvsr.runs import read_log

CHECKS = ("cuda-vs-cpu", "dcn", "bf16", "ddp", "speedup")
NO_CUDA = "no CUDA device visible to torch"


@dataclass(frozen=True)
class Sizes:
    """What the checks run on: the real sizes on a GPU, toy ones for ``--smoke`` on a CPU."""

    device: str = "cuda"
    model: str | None = None  # None: each preset's (BasicVSR-M); --smoke: the CPU model
    bf16_iterations: int = 60
    batch: int = 8
    patch_div: int = 1
    workers: int = 2
    smoke: bool = False

    def preset(self, name: str, **shrink):
        preset = get_preset(name).on(dataset="sample", model=self.model)
        return preset.shrunk(patch_div=self.patch_div, **shrink)


GPU = Sizes()
SMOKE = Sizes(device="cpu", model="basicvsr_cpu", bf16_iterations=12, batch=2, patch_div=4, workers=0, smoke=True)


@dataclass
class Result:
    check: str
    status: str  # PASS | FAIL | SKIPPED
    detail: str
    seconds: float = 0.0


def _cuda() -> bool:
    return torch.cuda.is_available()


def _usable(sizes: Sizes) -> bool:
    return sizes.smoke or _cuda()


class _NoTF32:
    """float32 convolutions and matrix products in full float32 (not TF32) inside the block."""

    def __enter__(self):
        self.saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False

    def __exit__(self, *exc):
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = self.saved


# ---- 1. CUDA against CPU ------------------------------------------------------------------------


def check_cuda_vs_cpu(sizes: Sizes, args) -> list[Result]:
    if not _usable(sizes):
        return [Result("cuda-vs-cpu", "SKIPPED", NO_CUDA)]
    results = []
    shapes = (("basicvsr", (1, 7, 3, 32, 32)), ("edvr_m", (1, 5, 3, 64, 64)))
    if sizes.smoke:
        shapes = (("basicvsr_cpu", (1, 3, 3, 16, 16)), ("edvr_cpu", (1, 5, 3, 16, 16)))
    for model, shape in shapes:
        net = initial_model(model, seed=0).eval()
        x = torch.rand(shape, generator=torch.Generator().manual_seed(1))
        with torch.no_grad(), _NoTF32():
            cpu = net(x)
            gpu = net.to(sizes.device)(x.to(sizes.device)).cpu()
        diff = (cpu - gpu).abs().max().item()
        ok = diff < 1e-4 and torch.isfinite(gpu).all().item()
        results.append(Result(f"cuda-vs-cpu {model}", "PASS" if ok else "FAIL",
                              f"output {tuple(gpu.shape)}: max |CUDA - CPU| = {diff:.2e} (tolerance 1e-4, fp32, TF32 off)"))
    return results


# ---- 2. torchvision's DCN kernel against ours ---------------------------------------------------


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
            results.append(Result(f"dcn {device} {str(dtype).split('.')[1]}", "PASS" if worst < tol else "FAIL",
                                  f"largest difference of output and gradients, relative to their scale: {worst:.2e} "
                                  f"(tolerance {tol:g})"))
    if not _cuda():
        results.append(Result("dcn cuda", "SKIPPED", NO_CUDA))
    return results


# ---- 3. bf16 autocast against fp32 --------------------------------------------------------------


def _losses(folder: Path) -> list[float]:
    return [r["loss"] for r in read_log(folder) if r["event"] == "step"]


def check_bf16(sizes: Sizes, args) -> list[Result]:
    if not _usable(sizes):
        return [Result("bf16", "SKIPPED", NO_CUDA)]
    n = sizes.bf16_iterations
    preset = sizes.preset("table1/basicvsr_m/ours", iterations=n, batch=sizes.batch)
    out = Path(tempfile.mkdtemp(prefix="mgvsr-gpu-check-bf16-"))
    summaries = {}
    for name, amp in (("fp32", False), ("bf16", True)):
        options = RunOptions(device=sizes.device, amp=amp, spynet="none", workers=sizes.workers, progress=False)
        summaries[name] = run_preset(preset, out / name, options).summary
    fp32, bf16 = _losses(out / "fp32"), _losses(out / "bf16")
    finite = all(map(lambda v: v == v and abs(v) != float("inf"), fp32 + bf16))
    tail = max(1, n // 3)
    tail32, tail16 = sum(fp32[-tail:]) / tail, sum(bf16[-tail:]) / tail
    gap = abs(tail16 - tail32) / tail32
    precision = summaries["bf16"]["setup"]["precision"]
    ok = finite and gap < 0.05 and precision == "bf16"
    return [Result("bf16", "PASS" if ok else "FAIL",
                   f"{preset.model}, {n} iterations of {sizes.batch} clips: mean loss of the last {tail} steps fp32 "
                   f"{tail32:.4f}, "
                   f"{precision} {tail16:.4f} ({gap:.1%} apart, tolerance 5%); PSNR fp32 "
                   f"{summaries['fp32']['psnr']:.2f} dB, bf16 {summaries['bf16']['psnr']:.2f} dB; compute "
                   f"{summaries['fp32']['compute_seconds']:.1f} s vs {summaries['bf16']['compute_seconds']:.1f} s")]


# ---- 4. DDP over NCCL ---------------------------------------------------------------------------


def check_ddp(sizes: Sizes, args) -> list[Result]:
    if not _usable(sizes):
        return [Result("ddp", "SKIPPED", NO_CUDA)]
    n = 2 if sizes.smoke else torch.cuda.device_count()
    if n < 2:
        return [Result("ddp", "SKIPPED", f"DDP over NCCL needs two GPUs or more; {n} visible")]
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
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode:
            return [Result("ddp", "FAIL", f"{name} run failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")]
    ddp, single = _losses(out / "ddp"), _losses(out / "single")
    world = read_log(out / "ddp")[0]["setup"]["world_size"]
    worst = max(abs(a - b) / b for a, b in zip(ddp, single))
    ok = world == n and len(ddp) == len(single) == 12 and worst < 0.01
    engine = "gloo" if sizes.device == "cpu" else "NCCL"
    return [Result("ddp", "PASS" if ok else "FAIL",
                   f"{n} processes over {engine} (world size {world}) against one process, batch {sizes.batch * n}: "
                   f"largest per-step loss difference {worst:.2%} (tolerance 1%)")]


# ---- 5. BasicVSR-M baseline against ours ---------------------------------------------------------


def check_speedup(sizes: Sizes, args) -> list[Result]:
    if not _usable(sizes):
        return [Result("speedup", "SKIPPED", NO_CUDA)]
    base_it = 24 if sizes.smoke else args.timing_iterations
    shrink = dict(batch=sizes.batch) if sizes.smoke else {}
    presets = {"baseline": sizes.preset("table1/basicvsr_m/baseline", iterations=base_it, **shrink),
               "ours": sizes.preset("table1/basicvsr_m/ours", iterations=base_it // 4,
                                    **({"batch": 4 * sizes.batch} if sizes.smoke else {}))}
    out = Path(tempfile.mkdtemp(prefix="mgvsr-gpu-check-speedup-"))
    s = {}
    for name, preset in presets.items():
        options = RunOptions(device=sizes.device, amp=not args.fp32_timing, spynet="none", workers=2 * sizes.workers,
                             progress=False)
        s[name] = run_preset(preset, out / name, options).summary
    speedup = s["baseline"]["compute_seconds"] / s["ours"]["compute_seconds"]
    samples = {k: presets[k].plan.samples for k in presets}
    lines = [f"{k}: {presets[k].plan.total_iterations} iterations of {presets[k].plan.stages[0].batch} clips, "
             f"stages {' '.join(st.label for st in presets[k].plan.stages)}, {s[k]['compute_seconds']:.1f} s compute "
             f"({samples[k] / s[k]['compute_seconds']:.1f} clips/s), {s[k]['data_seconds']:.1f} s waiting for data"
             for k in presets]
    return [Result("speedup", "PASS" if speedup > 1 else "FAIL",
                   f"{presets['ours'].model} on {s['ours']['setup']['device_name']}, {s['ours']['setup']['precision']}, "
                   f"the same "
                   f"{samples['baseline']} samples each: ours {speedup:.2f}x faster than the baseline in compute time "
                   f"on one GPU (the paper: 6.2x wall-clock on 16 V100s against 4, i.e. 1.55x in device-time)\n    "
                   + "\n    ".join(lines))]


# ---- main ---------------------------------------------------------------------------------------------


RUNNERS = {"cuda-vs-cpu": check_cuda_vs_cpu, "dcn": check_dcn, "bf16": check_bf16, "ddp": check_ddp,
           "speedup": check_speedup}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=CHECKS, help="run only these checks")
    parser.add_argument("--timing-iterations", type=int, default=200,
                        help="baseline iterations of the speedup check (ours: a quarter); default 200")
    parser.add_argument("--fp32-timing", action="store_true", help="time the speedup check in float32")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--smoke", action="store_true",
                        help="run every check's code on the CPU at toy sizes (tests this script; numbers meaningless)")
    args = parser.parse_args(argv)
    sizes = SMOKE if args.smoke else GPU
    warnings.simplefilter("ignore")
    where = device_name(torch.device("cuda")) if _cuda() else f"no CUDA ({device_name(torch.device('cpu'))})"
    print(f"mgvsr GPU checks{' (SMOKE: toy sizes on the CPU, numbers meaningless)' if args.smoke else ''}: "
          f"torch {torch.__version__}, {where}, "
          f"{torch.cuda.device_count() if _cuda() else 0} GPU(s), torchvision "
          f"{'imports' if torchvision_available() else 'does not import'}")
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
    skipped = [r.check for r in results if r.status == "SKIPPED"]
    failed = [r.check for r in results if r.status == "FAIL"]
    print(f"\n{sum(r.status == 'PASS' for r in results)} passed, {len(failed)} failed, {len(skipped)} skipped "
          f"in {time.perf_counter() - t0:.0f} s" + (f"; skipped: {', '.join(skipped)}" if skipped else ""))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=1) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    sys.exit(main())
