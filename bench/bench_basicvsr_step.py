"""Training-step time of BasicVSR: BasicSR-style per-frame forward vs mgvsr's batched forward.

One step = the trainer's :class:`mgvsr.step.TrainStep` (forward, Charbonnier loss in fp32, backward,
Adam), in the default memory format for both.  Both implementations share the same weights (copies
of one model) and are timed interleaved in one run (reference, fast, reference, fast, ...) so that
the machine's noise hits both alike; the ratio of the medians is the speedup.  The reference is
``basicvsr_reference_forward`` of ``bench/reference_models.py`` (BasicSR's loop: two SpyNet calls,
reconstruction frame by frame inside the forward loop; the test oracle of
``tests/test_models_basicvsr.py``).

    python bench/bench_basicvsr_step.py                       # 16 feat, 2 blocks, b4, 10 frames, 32x32
    python bench/bench_basicvsr_step.py --size 64 --frozen-spynet
    python bench/bench_basicvsr_step.py --only fast --size 64  # just time mgvsr's step
    python bench/bench_basicvsr_step.py --only fast --frozen-spynet --zero-init-spynet --hr-feat 16
    python bench/bench_basicvsr_step.py --quick               # a tiny case (a smoke test)

Options that change the model or the arithmetic (``--hr-feat``, ``--bf16``) apply to both
implementations alike; they are there to size the CPU preset, not part of the comparison.
``--frozen-spynet`` is the warm start's frozen SpyNet (``TrainConfig(frozen="flow")``); ``--bf16`` is
the trainer's mixed precision (``TrainConfig(amp=True)``: bf16 autocast where the CPU computes bfloat16
natively, fp32 elsewhere; ``MGVSR_BF16=1`` forces bf16), the precision used is printed.

Timings on a shared 2-core machine are noisy; read the ratio, and rerun.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
from pathlib import Path

import torch

from mgvsr.models import basicvsr as basicvsr_module
from mgvsr.models.basicvsr import BasicVSR
from mgvsr.options import TrainConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference_models import reference_model  # noqa: E402
from timed_step import TimedStep, interleaved  # noqa: E402

LR = 2e-4
FROZEN = 10 ** 9  # iterations the SpyNet stays frozen with --frozen-spynet: all of them


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--feat", type=int, default=16)
    parser.add_argument("--blocks", type=int, default=2)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--size", type=int, default=32, help="LR patch side")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per implementation")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps per implementation first")
    parser.add_argument("--frozen-spynet", action="store_true", help="SpyNet frozen (the warm start's)")
    parser.add_argument("--zero-init-spynet", action="store_true", help="BasicVSR(spynet_zero_init=True)")
    parser.add_argument("--hr-feat", type=int, default=64, help="channels of the HR tail (BasicSR: 64)")
    parser.add_argument("--bf16", action="store_true", help="mixed precision as the trainer's --amp (bf16 autocast "
                        "where the CPU computes bfloat16 natively)")
    parser.add_argument("--recon-chunk-elements", type=int, default=None,
                        help="override basicvsr.RECON_CHUNK_ELEMENTS (fast implementation only)")
    parser.add_argument("--only", choices=["both", "fast", "reference"], default="both")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--quick", action="store_true", help="a tiny case (batch 1, 3 frames, 16x16, 1 step): a smoke "
                        "test, its numbers mean little")
    args = parser.parse_args(argv)
    if args.quick:
        args.batch, args.frames, args.size, args.steps = 1, 3, 16, 1
    if args.threads:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    if args.recon_chunk_elements:
        basicvsr_module.RECON_CHUNK_ELEMENTS = args.recon_chunk_elements
    model = BasicVSR(num_feat=args.feat, num_block=args.blocks, spynet_zero_init=args.zero_init_spynet,
                     hr_feat=args.hr_feat)
    lr_frames = torch.rand(args.batch, args.frames, 3, args.size, args.size)
    gt_frames = torch.rand(args.batch, args.frames, 3, 4 * args.size, 4 * args.size)
    cfg = TrainConfig(amp=args.bf16, channels_last=False, frozen="flow",
                      frozen_iters=FROZEN if args.frozen_spynet else 0)

    steps = {}
    if args.only in ("both", "reference"):
        # BasicSR's SpyNet fails at 32 px; the reference then calls mgvsr's SpyNet (twice, as BasicSR does).
        steps["reference"] = TimedStep(reference_model(copy.deepcopy(model), args.size), cfg, lr_frames, gt_frames,
                                       lr=LR)
    if args.only in ("both", "fast"):
        steps["fast"] = TimedStep(copy.deepcopy(model), cfg, lr_frames, gt_frames, lr=LR)
    precision = next(iter(steps.values())).step.precision

    print(f"BasicVSR num_feat={args.feat} num_block={args.blocks} hr_feat={args.hr_feat}, batch {args.batch}, "
          f"{args.frames} frames, LR {args.size}x{args.size}, SpyNet "
          f"{'frozen' if args.frozen_spynet else 'trained'}{', zero-init' if args.zero_init_spynet else ''}"
          f"{', bf16 autocast' if precision == 'bf16' else ''}"
          f"{' (--bf16: this CPU has no native bfloat16, fp32)' if args.bf16 and precision == 'fp32' else ''}, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}")
    times = interleaved(steps, args.steps, args.warmup)
    for name, ts in times.items():
        print(f"  {name:9s} median {statistics.median(ts):.3f} s/step  (min {min(ts):.3f}, max {max(ts):.3f}, "
              f"{len(ts)} steps)")
    if len(times) == 2:
        ratio = statistics.median(times["reference"]) / statistics.median(times["fast"])
        print(f"  speedup (reference / fast, medians): {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
