"""How fast a CPU-sized EDVR learns on the embedded sample clips, against bicubic.

Trains a model of :data:`mgvsr.models.MODEL_CONFIGS` (default ``edvr_cpu``) with the real
:class:`~mgvsr.train.Trainer` on ``sample_source("train")`` (5-frame windows, the centre GT
frame) and evaluates it every ``--eval-every`` iterations on the held-out clips
(``sample_source("test")``, Y channel, every frame: sliding windows padded at the clip ends as
BasicSR) beside MATLAB bicubic on the same clips.  Prints PSNR against iterations and
training seconds (compute + data, without evaluations).

    python bench/learn_edvr_cpu.py                                   # 300 iterations, LR 32, batch 4
    python bench/learn_edvr_cpu.py --patches 16 32 --iterations 400  # the spatial cycle, 16 then 32
    python bench/learn_edvr_cpu.py --override hr_feat=64             # BasicSR's 64-channel HR tail
    python bench/learn_edvr_cpu.py --quick                           # 4 iterations at 16 px (a smoke test)

Timings are of whatever else runs on the machine too: on a shared 2-core CPU they are noisy.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

import torch

from mgvsr.data.folders import FolderSource
from mgvsr.data.sample import sample_source
from mgvsr.evaluate import evaluate_bicubic
from mgvsr.models import build_model
from mgvsr.options import TrainConfig
from mgvsr.schedule import Plan, goyal_warmup, multigrid
from mgvsr.train import Trainer


def parse_override(text: str) -> tuple[str, object]:
    key, _, value = text.partition("=")
    if not value:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, (value == "true") if value in ("true", "false") else int(value)


def make_plan(iterations: int, patches: list[int], batch: int, lr: float, first_lr: float | None,
              warmup: int) -> Plan:
    """One stage at ``patches[0]``, or the spatial cycle over ``patches`` (equal stages, Eq. 1)."""
    stage_lrs = [first_lr] + [None] * (len(patches) - 1) if first_lr else None
    return multigrid(iterations, max(patches), 5, batch, lr, cycle="spatial", spatial=patches,
                     stage_lrs=stage_lrs, warmup=goyal_warmup(4, warmup) if warmup else None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="edvr_cpu")
    parser.add_argument("--override", type=parse_override, action="append", default=[], metavar="KEY=VALUE",
                        help="constructor argument of the model (int or true/false), e.g. hr_feat=64")
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--patches", type=int, nargs="+", default=[32], help="LR patch per stage (spatial cycle)")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--first-lr", type=float, default=None, help="LR of the first stage (EDVR-M: a quarter)")
    parser.add_argument("--warmup", type=int, default=20, help="linear warmup from LR/4 over this many iterations")
    parser.add_argument("--fusion-only", type=int, default=0, help="iterations training only the TSA fusion first")
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="4 iterations at LR 16, batch 2, evaluated at the end on "
                        "one held-out clip (a smoke test: its PSNR means nothing)")
    args = parser.parse_args(argv)
    if args.quick:
        args.iterations, args.patches, args.batch, args.warmup, args.eval_every = 4, [16], 2, 0, 0
    torch.set_num_threads(args.threads)

    train, test = sample_source("train"), sample_source("test")
    if args.quick:
        test = FolderSource(test.gt_root, test.lq_root, test.scale, clips=test.clips()[:1], cache=True, name=test.name)
    bicubic = evaluate_bicubic(test, progress=False).mean
    torch.manual_seed(args.seed)
    model = build_model(args.model, **dict(args.override))
    plan = make_plan(args.iterations, args.patches, args.batch, args.lr, args.first_lr, args.warmup)
    params = sum(p.numel() for p in model.parameters())
    print(f"{args.model} {dict(args.override) or ''} ({params:,} parameters), {args.threads} thread(s), "
          f"torch {torch.__version__}")
    print("plan: " + ", ".join(f"{s.iterations} it at {s.label} batch {s.batch} lr {s.lr:g}" for s in plan)
          + (f", warmup {plan.warmup.iterations} it" if plan.warmup else ""))
    print(f"bicubic on {test.name}: {bicubic['psnr']:.2f} dB / {bicubic['ssim']:.4f} (Y)")
    cfg = TrainConfig(seed=args.seed, progress=False, eval_every=args.eval_every,
                      frozen="fusion-only", frozen_iters=args.fusion_only)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(model, plan, train, out, cfg, test=test)
        trainer.run()
    wall = time.perf_counter() - start
    print(f"{'iteration':>9} {'train s':>8} {'PSNR (dB)':>10} {'SSIM':>7} {'vs bicubic':>11}")
    for e in trainer.evals:
        print(f"{e['it']:>9} {e['train_seconds']:8.1f} {e['psnr']:10.2f} {e['ssim']:7.4f} "
              f"{e['psnr'] - bicubic['psnr']:+11.2f}")
    per_stage = ", ".join(f"{s.label}: {t / s.iterations:.3f} s/it" for s, t in
                          zip(plan.stages, trainer.times.stage_compute))
    print(f"compute {trainer.times.compute:.1f} s ({per_stage}); data {trainer.times.data:.1f} s; "
          f"evaluations {trainer.times.eval:.1f} s; wall {wall:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
