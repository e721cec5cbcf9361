"""A minibatch of 8 clips in one forward/backward against two micro-batches of 4 (the same update).

The demo's ours trains minibatches of 8 where the baseline trains 4.  On a GPU the larger batch is
parallel work; on a CPU it need not be faster per sample.  With ``channels_last`` (the trainer's
default for the BasicVSR family on a CPU) this measures both ways, side by side (interleaved), in
fp32 and bf16, at the demo's stage shapes: > 1 means the whole batch at once is faster (the numbers:
docs/demo.md, "Why minibatch x2").

    python bench/bench_micro_batch.py
    python bench/bench_micro_batch.py --model basicvsr_cpu --batch 8 --micro 4 --steps 5
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time

import torch

from mgvsr.models import build_model
from mgvsr.models.protocol import prefers_channels_last, target_frames
from mgvsr.presets import get_preset
from mgvsr.train import charbonnier, cpu_bf16_native


def step_fn(model, lq, gt, micro: int, bf16: bool):
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.9, 0.99))
    batch = lq.shape[0]

    def step() -> float:
        t0 = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        for i in range(0, batch, micro):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                out = model(lq[i:i + micro])
            (charbonnier(out.float(), target_frames(model, gt[i:i + micro])) * (micro / batch)).backward()
        optimizer.step()
        return time.perf_counter() - t0

    return step


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="basicvsr_cpu")
    parser.add_argument("--preset", default="demo/basicvsr/ours", help="whose stage shapes to time")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--micro", type=int, default=4)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    base = build_model(args.model)
    precisions = ["fp32", "bf16"] if cpu_bf16_native() else ["fp32"]
    print(f"{args.model}, batch {args.batch} at once against {args.batch // args.micro} micro-batches of "
          f"{args.micro}; torch {torch.__version__}, {torch.get_num_threads()} threads, median of {args.steps} steps")
    for stage in get_preset(args.preset).plan.stages:
        lq = torch.rand(args.batch, stage.frames, 3, stage.patch, stage.patch)
        gt = torch.rand(args.batch, stage.frames, 3, 4 * stage.patch, 4 * stage.patch)
        timed = {}
        for precision in precisions:
            model = copy.deepcopy(base)
            if prefers_channels_last(model, "cpu", precision):
                model.to(memory_format=torch.channels_last)
            for micro in (args.micro, args.batch):
                timed[(precision, micro)] = step_fn(copy.deepcopy(model), lq, gt, micro, precision == "bf16")
        for step in timed.values():
            step()  # warm-up
        times: dict = {k: [] for k in timed}
        for _ in range(args.steps):
            for k, step in timed.items():
                times[k].append(step())
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"  {stage.label}: " + ", ".join(
            f"{p} {med[(p, args.micro)]:.3f} s -> {med[(p, args.batch)]:.3f} s ({med[(p, args.micro)] / med[(p, args.batch)]:.2f}x)"
            for p in precisions), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
