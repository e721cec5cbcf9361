"""A minibatch of 8 clips in one forward/backward against two micro-batches of 4 (the same update).

The demo's ours trains minibatches of 8 where the baseline trains 4.  On a GPU the larger batch is
parallel work; on a CPU it need not be faster per sample.  Each way is the trainer's
:class:`mgvsr.step.TrainStep` (``channels_last`` where the trainer uses it: the BasicVSR family on a
CPU), one with ``TrainConfig(micro_batch=--micro)``, one with the whole batch; this measures both
ways, side by side (interleaved), in fp32 and bf16 (where the CPU computes it natively, as
``--amp``), at the demo's stage shapes: > 1 means the whole batch at once is faster (the numbers:
docs/demo.md, "Why minibatch x2").

    python bench/bench_micro_batch.py
    python bench/bench_micro_batch.py --model basicvsr_cpu --batch 8 --micro 4 --steps 5
    python bench/bench_micro_batch.py --quick           # a tiny case (a smoke test)
"""

from __future__ import annotations

import argparse
import copy
import sys
from dataclasses import replace
from pathlib import Path

import torch

from mgvsr.models import build_model
from mgvsr.options import TrainConfig
from mgvsr.presets import get_preset

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timed_step import TimedStep, interleaved, medians, precisions  # noqa: E402

LR = 1e-4


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="basicvsr_cpu")
    parser.add_argument("--preset", default="demo/basicvsr/ours", help="whose stage shapes to time")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--micro", type=int, default=4)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="batch 2 in micro-batches of 1, 1 step, at the plan's "
                        "first stage at 16 px and 3 frames (a smoke test)")
    args = parser.parse_args(argv)
    stages = get_preset(args.preset).plan.stages
    if args.quick:
        args.batch, args.micro, args.steps = 2, 1, 1
        stages = [replace(stages[0], patch=16, frames=3)]
    torch.manual_seed(0)
    base = build_model(args.model)
    names = precisions(torch.device("cpu"))
    print(f"{args.model}, batch {args.batch} at once against {args.batch // args.micro} micro-batches of "
          f"{args.micro}; torch {torch.__version__}, {torch.get_num_threads()} threads, median of {args.steps} steps")
    for stage in stages:
        lq = torch.rand(args.batch, stage.frames, 3, stage.patch, stage.patch)
        gt = torch.rand(args.batch, stage.frames, 3, 4 * stage.patch, 4 * stage.patch)
        timed = {(precision, micro): TimedStep(copy.deepcopy(base), TrainConfig(amp=precision != "fp32",
                                                                                micro_batch=micro), lq, gt, lr=LR)
                 for precision in names for micro in (args.micro, args.batch)}
        med = medians(interleaved(timed, args.steps))
        print(f"  {stage.label}: " + ", ".join(
            f"{p} {med[(p, args.micro)]:.3f} s -> {med[(p, args.batch)]:.3f} s "
            f"({med[(p, args.micro)] / med[(p, args.batch)]:.2f}x)" for p in names), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
