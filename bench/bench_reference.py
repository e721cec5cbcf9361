"""Our fp32 training steps against the field's reference architectures at the same shapes.

BasicSR is not importable here, so the reference is a faithful per-frame forward of BasicSR's code
on the same modules and weights (``bench/reference_models.py``, the references' equations written
independently of mgvsr; the tests check them equal to ours in outputs and gradients):

- BasicVSR: ``basicvsr_reference_forward`` (two SpyNet calls, the reconstruction frame by frame
  inside the forward loop, the sampling grid rebuilt at every warp);
- EDVR: ``edvr_reference_forward`` (the PCD alignment frame by frame, with BasicSR's ``.clone()``
  of every pyramid level).

One step = the trainer's :class:`mgvsr.step.TrainStep` (forward, Charbonnier loss in fp32,
backward, Adam) on copies of one model, the reference's differing only in its forward; timed
interleaved (reference, ours, ours as trained, reference, ...) so that the machine's noise hits
them alike; the ratios of the medians are printed (> 1: ours faster).  "ours" is our forward in
the default memory format, as the reference runs; "ours as trained" adds what the trainer does
on this device (``channels_last`` where the model measured it faster,
:func:`mgvsr.models.protocol.prefers_channels_last`).  Where torchvision imports, both use its
deformable convolution (as BasicSR does); elsewhere both use mgvsr's pure-PyTorch one.

    python bench/bench_reference.py                       # basicvsr and edvr_m at the paper's largest shapes, batch 1
    python bench/bench_reference.py --models basicvsr_m --shapes 32x7 64x15 --steps 3
    python bench/bench_reference.py --quick               # a tiny case: basicvsr_cpu and edvr_cpu at 16 px, 1 step
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
from reference_models import reference_model  # noqa: E402
from timed_step import TimedStep, interleaved, medians  # noqa: E402

DEFAULT = {"basicvsr": [(64, 15)], "edvr_m": [(64, 5)]}
QUICK = {"basicvsr_cpu": [(16, 3)], "edvr_cpu": [(16, 5)]}  # --quick: (patch, frames) of a smoke test
LR = 1e-4


def compare(name: str, batch: int, patch: int, frames: int, steps: int = 3, warmup: int = 1) -> dict:
    """Median step seconds of the reference, of ours and of ours as the trainer runs it (``name`` at
    ``batch x frames x patch^2`` LR, fp32, CPU), and ``ratio`` / ``ratio_trained``: the reference's over ours."""
    torch.manual_seed(0)
    model = build_model(name)
    lq = torch.rand(batch, frames, 3, patch, patch)
    gt = torch.rand(batch, frames, 3, 4 * patch, 4 * patch)
    same_format = TrainConfig(channels_last=False)
    timed = {"reference": TimedStep(reference_model(copy.deepcopy(model), patch), same_format, lq, gt, lr=LR),
             "ours": TimedStep(copy.deepcopy(model), same_format, lq, gt, lr=LR),
             "trained": TimedStep(copy.deepcopy(model), TrainConfig(), lq, gt, lr=LR)}
    result = medians(interleaved(timed, steps, warmup))
    result["ratio"] = result["reference"] / result["ours"]
    result["ratio_trained"] = result["reference"] / result["trained"]
    return result


def parse_shape(text: str) -> tuple[int, int]:
    """``"64x15"`` -> (patch 64, frames 15)."""
    patch, frames = text.lower().split("x")
    return int(patch), int(frames)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(DEFAULT))
    parser.add_argument("--shapes", nargs="+", type=parse_shape, help="PATCHxFRAMES (default: the paper's largest)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a tiny case (basicvsr_cpu, edvr_cpu at 16 px, batch 1, "
                        "1 step): a smoke test, its numbers mean little")
    args = parser.parse_args(argv)
    if args.quick:
        args.models, args.batch, args.steps = list(QUICK), 1, 1
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; fp32 train steps, batch {args.batch}")
    for name in args.models:
        for patch, frames in QUICK[name] if args.quick else args.shapes or DEFAULT.get(name, [(64, 15)]):
            r = compare(name, args.batch, patch, frames, steps=args.steps)
            print(f"  {name:10s} {patch}&{frames}: reference {r['reference']:.3f} s, ours {r['ours']:.3f} s "
                  f"({r['ratio']:.2f}x the reference's speed), as trained {r['trained']:.3f} s "
                  f"({r['ratio_trained']:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
