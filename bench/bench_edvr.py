"""EDVR-M training-step time at LR 32x32 and 64x64, side by side, against their FLOP ratio.

The multigrid's spatial cycle for EDVR-M trains on 32x32 LR patches before 64x64: the speedup it
can buy is the step-time ratio of the two shapes, printed here beside the FLOP ratio (FLOPs of
the convolutions and matrix products, counted by ``torch.utils.flop_counter.FlopCounterMode``),
and the whole cycle's (half the iterations at each size) against 64x64 throughout.  The paper's
2.3x for EDVR-M also has the batch doubled (64, half the iterations), which a GPU runs in
parallel; on a CPU a larger batch is not faster per sample (docs/demo.md, "Why minibatch x2").

Then the modulated deformable convolution at EDVR-M's full-resolution alignment shape: the
pure-PyTorch version against a plain ``conv2d`` of the same shape, and against torchvision's
kernel where torchvision imports (a GPU machine; on CPU-only torch it does not).

A training step is the trainer's :class:`mgvsr.step.TrainStep` in fp32 (forward, Charbonnier loss,
backward, Adam; ``channels_last`` where the trainer uses it for the model on this device, printed).

    python bench/bench_edvr.py                      # batch 2, 1 warm-up + 3 timed steps per size
    python bench/bench_edvr.py --batch 4 --steps 2 --threads 1
    python bench/bench_edvr.py --model edvr_cpu --batch 4 --sizes 16 32 --steps 5 --threads 1 --skip-dcn
    python bench/bench_edvr.py --quick              # edvr_cpu, batch 1, 8 and 16 px, 1 step (a smoke test)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from mgvsr.device import synchronize
from mgvsr.models import build_model
from mgvsr.models.dcn import deform_conv2d, torchvision_available, use_backend
from mgvsr.options import TrainConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timed_step import TimedStep  # noqa: E402

LR = 4e-4


def step_flops(step: TimedStep) -> int:
    """FLOPs of one training step's forward + backward (convolutions, matrix products; not grid_sample)."""
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()


def time_training(size: int, batch: int, steps: int, device: torch.device, model_name: str = "edvr_m") -> dict:
    torch.manual_seed(0)
    model = build_model(model_name)
    lq = torch.rand(batch, 5, 3, size, size, device=device)
    gt = torch.rand(batch, 5, 3, 4 * size, 4 * size, device=device)  # the step compares the centre frame
    step = TimedStep(model, TrainConfig(), lq, gt, lr=LR, device=device)
    flops = step_flops(step)
    step()  # warm-up
    times = [step() for _ in range(steps)]
    return dict(size=size, seconds=statistics.median(times), all=times, flops=flops,
                channels_last=step.step.channels_last)


def time_fn(fn, reps: int, device: torch.device) -> float:
    fn()  # warm-up
    times = []
    for _ in range(reps):
        synchronize(device)
        t0 = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def dcn_comparison(n: int, size: int, reps: int, device: torch.device) -> None:
    """deform_conv2d at EDVR-M's L1 alignment shape: (n, 64, size, size), 8 groups, 3x3."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, 64, size, size, generator=gen).to(device).requires_grad_()
    offset = (2 * torch.randn(n, 2 * 8 * 9, size, size, generator=gen)).to(device).requires_grad_()
    mask = torch.rand(n, 8 * 9, size, size, generator=gen).to(device).requires_grad_()
    weight = (0.05 * torch.randn(64, 64, 3, 3, generator=gen)).to(device).requires_grad_()
    bias = torch.zeros(64, device=device, requires_grad=True)

    def dcn(backend):
        def run():
            with use_backend(backend):
                deform_conv2d(x, offset, weight, bias, 1, 1, 1, mask).sum().backward()
        return run

    def conv():
        F.conv2d(x, weight, bias, padding=1).sum().backward()

    print(f"\nmodulated deformable conv, forward + backward, input ({n}, 64, {size}, {size}), "
          f"8 offset groups, 3x3, {device.type}:")
    t_conv = time_fn(conv, reps, device)
    t_torch = time_fn(dcn("torch"), reps, device)
    print(f"  plain conv2d (same shape)        {t_conv * 1e3:9.1f} ms")
    print(f"  pure-PyTorch deform_conv2d       {t_torch * 1e3:9.1f} ms   ({t_torch / t_conv:.1f}x the plain conv)")
    if not torchvision_available():
        print("  torchvision deform_conv2d        skipped: torchvision does not import here")
        return
    t_tv = time_fn(dcn("torchvision"), reps, device)
    print(f"  torchvision deform_conv2d        {t_tv * 1e3:9.1f} ms   (pure-PyTorch / torchvision: "
          f"{t_torch / t_tv:.2f}x)")
    args64 = [t.detach().double() for t in (x, offset, weight, bias)]
    m64 = mask.detach().double()
    with use_backend("torch"):
        ours = deform_conv2d(*args64, 1, 1, 1, m64)
    with use_backend("torchvision"):
        theirs = deform_conv2d(*args64, 1, 1, 1, m64)
    diff = (ours - theirs).abs().max().item()
    print(f"  float64 max |pure-PyTorch - torchvision| = {diff:.2e}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="edvr_m", help="an EDVR of mgvsr.models.MODEL_CONFIGS (edvr_cpu ...)")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64], help="LR patch sizes")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per size (after 1 warm-up)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--skip-dcn", action="store_true", help="skip the deformable-conv comparison")
    parser.add_argument("--quick", action="store_true", help="edvr_cpu, batch 1, LR 8 and 16 px, 1 step, the "
                        "deformable convolution at 16 px (a smoke test)")
    args = parser.parse_args(argv)
    if args.quick:
        args.model, args.batch, args.sizes, args.steps = "edvr_cpu", 1, [8, 16], 1
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"{args.model} training step (forward + backward + Adam), batch {args.batch}, 5 frames, fp32, "
          f"{device.type}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    results = [time_training(s, args.batch, args.steps, device, args.model) for s in args.sizes]
    print(f"channels_last: {'yes' if results[0]['channels_last'] else 'no'} (as the trainer runs {args.model} here)")
    base = results[0]
    print(f"{'LR size':>8} {'s/step':>8} {'steps (s)':>24} {'GFLOP/step':>11} {'GFLOP/s':>8} "
          f"{'time ratio':>11} {'FLOP ratio':>11}")
    for r in results:
        steps = " ".join(f"{t:.2f}" for t in r["all"])
        print(f"{r['size']:>5}x{r['size']:<2} {r['seconds']:8.2f} {steps:>24} {r['flops'] / 1e9:11.1f} "
              f"{r['flops'] / 1e9 / r['seconds']:8.1f} {r['seconds'] / base['seconds']:11.2f} "
              f"{r['flops'] / base['flops']:11.2f}")
    if len(results) > 1:
        last = results[-1]
        print(f"a {base['size']}x{base['size']} step is {last['seconds'] / base['seconds']:.2f}x faster than a "
              f"{last['size']}x{last['size']} step; it has {last['flops'] / base['flops']:.2f}x fewer FLOPs")
        # the spatial cycle: equal stages at each size, against every iteration at the largest size
        cycle_time = statistics.mean(r["seconds"] for r in results)
        cycle_flops = statistics.mean(r["flops"] for r in results)
        sizes = " then ".join(f"{r['size']}x{r['size']}" for r in results)
        print(f"spatial cycle ({sizes}, equal iterations each) against {last['size']}x{last['size']} throughout, "
              f"same iterations and batch: {last['seconds'] / cycle_time:.2f}x faster measured, "
              f"{last['flops'] / cycle_flops:.2f}x by FLOPs")
    if not args.skip_dcn:
        dcn_comparison(5 * args.batch, max(args.sizes), reps=args.steps, device=device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
