"""channels_last against the default (contiguous) memory format: training-step time, side by side.

For each model, shape and precision, one model is copied twice, one copy converted to
``torch.channels_last``; their steps (forward, Charbonnier loss, backward, Adam; bf16 under
``torch.autocast``) are timed interleaved so that the machine's noise hits both alike.  The
ratio of the medians (> 1: channels_last faster) is what each model's
``channels_last_on`` (:mod:`mgvsr.models.protocol`) was set from: the trainer converts a model
only where this measured a gain.

    python bench/bench_channels_last.py                   # the four models, smallest and largest demo and paper stages
    python bench/bench_channels_last.py --models basicvsr_cpu --shapes 32x8 --batch 4 --steps 6
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time

import torch

from mgvsr.models import build_model
from mgvsr.models.protocol import target_frames

# (model, batch, patch, frames): the demo's smallest and largest stages at its micro-batch (4),
# the paper's at micro-batch 1
CASES = [(m, 4, p, t) for m in ("basicvsr_cpu", "basicvsr_m") for p, t in ((16, 4), (32, 8))] \
    + [(m, 1, p, t) for m in ("basicvsr_cpu", "basicvsr_m") for p, t in ((32, 7), (64, 15))] \
    + [(m, 4, p, 5) for m in ("edvr_cpu", "edvr_m") for p in (16, 32)] \
    + [(m, 1, p, 5) for m in ("edvr_cpu", "edvr_m") for p in (32, 64)]


def step_fn(model, lq, gt, bf16: bool):
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.9, 0.99))

    def step() -> float:
        t0 = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = model(lq)
        torch.sqrt((out.float() - target_frames(model, gt)) ** 2 + 1e-12).mean().backward()
        optimizer.step()
        return time.perf_counter() - t0

    return step


def measure(name: str, batch: int, patch: int, frames: int, precision: str, steps: int = 3) -> dict:
    """Median step seconds, contiguous and channels_last, and their ratio."""
    torch.manual_seed(0)
    model = build_model(name)
    lq = torch.rand(batch, frames, 3, patch, patch)
    gt = torch.rand(batch, frames, 3, 4 * patch, 4 * patch)
    bf16 = precision == "bf16"
    timed = {"contiguous": step_fn(copy.deepcopy(model), lq, gt, bf16),
             "channels_last": step_fn(copy.deepcopy(model).to(memory_format=torch.channels_last), lq, gt, bf16)}
    for step in timed.values():
        step()  # warm-up
    times: dict[str, list[float]] = {k: [] for k in timed}
    for _ in range(steps):
        for k, step in timed.items():
            times[k].append(step())
    med = {k: statistics.median(v) for k, v in times.items()}
    return {**med, "ratio": med["contiguous"] / med["channels_last"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", help="only these models")
    parser.add_argument("--shapes", nargs="+", help="PATCHxFRAMES instead of the default cases (with --batch)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args(argv)
    cases = CASES
    if args.shapes:
        models = args.models or sorted({c[0] for c in CASES})
        cases = [(m, args.batch, *map(int, s.lower().split("x"))) for m in models for s in args.shapes]
    elif args.models:
        cases = [c for c in CASES if c[0] in args.models]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; median of {args.steps} steps each")
    print("| model | batch | LR patch & frames | precision | contiguous (s) | channels_last (s) | channels_last speedup |")
    print("|---|---|---|---|---|---|---|")
    for name, batch, patch, frames in cases:
        for precision in args.precisions:
            r = measure(name, batch, patch, frames, precision, args.steps)
            print(f"| {name} | {batch} | {patch}&{frames} | {precision} | {r['contiguous']:.3f} | "
                  f"{r['channels_last']:.3f} | {r['ratio']:.2f}x |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
