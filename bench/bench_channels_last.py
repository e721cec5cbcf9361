"""channels_last against the default (contiguous) memory format: training-step time, side by side.

For each model, shape and precision, one model is copied twice and each copy trained by the
trainer's :class:`mgvsr.step.TrainStep` (forward, Charbonnier loss in fp32, backward, Adam; bf16
under autocast, ``TrainConfig(amp=True)``), one with ``TrainConfig(channels_last=False)``, one with
``channels_last=True``; their steps are timed interleaved so that the machine's noise hits both
alike.  The ratio of the medians (> 1: channels_last faster) is what each model's
``channels_last_on`` (:mod:`mgvsr.models.protocol`) was set from: the trainer converts a model
only where this measured a gain.  bf16 is measured where the CPU computes it natively (as the
trainer's ``--amp``; ``MGVSR_BF16=1`` forces it).

    python bench/bench_channels_last.py                   # the four models, smallest and largest demo and paper stages
    python bench/bench_channels_last.py --models basicvsr_cpu --shapes 32x8 --batch 4 --steps 6
    python bench/bench_channels_last.py --quick           # a tiny case per family (a smoke test)
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import torch

from mgvsr.models import build_model
from mgvsr.options import TrainConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timed_step import TimedStep, interleaved, medians, precisions  # noqa: E402

# (model, batch, patch, frames): the demo's smallest and largest stages at its micro-batch (4),
# the paper's at micro-batch 1
CASES = [(m, 4, p, t) for m in ("basicvsr_cpu", "basicvsr_m") for p, t in ((16, 4), (32, 8))] \
    + [(m, 1, p, t) for m in ("basicvsr_cpu", "basicvsr_m") for p, t in ((32, 7), (64, 15))] \
    + [(m, 4, p, 5) for m in ("edvr_cpu", "edvr_m") for p in (16, 32)] \
    + [(m, 1, p, 5) for m in ("edvr_cpu", "edvr_m") for p in (32, 64)]
QUICK = [("basicvsr_cpu", 1, 16, 3), ("edvr_cpu", 1, 16, 5)]  # --quick: a smoke test
LR = 1e-4


def measure(name: str, batch: int, patch: int, frames: int, precision: str, steps: int = 3) -> dict:
    """Median step seconds, contiguous and channels_last, and their ratio."""
    torch.manual_seed(0)
    model = build_model(name)
    lq = torch.rand(batch, frames, 3, patch, patch)
    gt = torch.rand(batch, frames, 3, 4 * patch, 4 * patch)
    amp = precision != "fp32"
    timed = {"contiguous": TimedStep(copy.deepcopy(model), TrainConfig(amp=amp, channels_last=False), lq, gt, lr=LR),
             "channels_last": TimedStep(copy.deepcopy(model), TrainConfig(amp=amp, channels_last=True), lq, gt, lr=LR)}
    if any(t.step.precision != precision for t in timed.values()):
        raise ValueError(f"{precision} asked for; the training step runs {timed['contiguous'].step.precision} here")
    med = medians(interleaved(timed, steps))
    return {**med, "ratio": med["contiguous"] / med["channels_last"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", help="only these models")
    parser.add_argument("--shapes", nargs="+", help="PATCHxFRAMES instead of the default cases (with --batch)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--precisions", nargs="+", choices=("fp32", "bf16"),
                        help="default: fp32, and bf16 where the CPU computes it natively")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one tiny case per family, 1 step (a smoke test)")
    args = parser.parse_args(argv)
    native = precisions(torch.device("cpu"))
    missing = [p for p in args.precisions or [] if p not in native]
    if missing:
        print(f"{', '.join(missing)} skipped: the trainer's --amp runs fp32 here (no native bfloat16 on this CPU, "
              "or MGVSR_BF16=0; MGVSR_BF16=1 forces bf16)", file=sys.stderr)
    chosen = [p for p in args.precisions or native if p in native]
    cases = CASES
    if args.quick:
        cases, args.steps = QUICK, 1
    elif args.shapes:
        models = args.models or sorted({c[0] for c in CASES})
        cases = [(m, args.batch, *map(int, s.lower().split("x"))) for m in models for s in args.shapes]
    elif args.models:
        cases = [c for c in CASES if c[0] in args.models]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; median of {args.steps} steps each")
    print("| model | batch | LR patch & frames | precision | contiguous (s) | channels_last (s) | channels_last speedup |")
    print("|---|---|---|---|---|---|---|")
    for name, batch, patch, frames in cases:
        for precision in chosen:
            r = measure(name, batch, patch, frames, precision, args.steps)
            print(f"| {name} | {batch} | {patch}&{frames} | {precision} | {r['contiguous']:.3f} | "
                  f"{r['channels_last']:.3f} | {r['ratio']:.2f}x |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
