"""``mgvsr train --preset P --out DIR [--root DIR] [--resume]``: run a preset.

    mgvsr train --preset demo/basicvsr/ours --out runs/ours
    mgvsr train --preset table1/basicvsr_m/ours --root /data/REDS --out runs/t1-ours
    mgvsr train --preset table1/basicvsr_m/ours --root /data/REDS --out runs/t1-ours --resume
    mgvsr train --preset table1/basicvsr_m/ours --dataset sample --model basicvsr_cpu \\
        --iterations 20 --batch 2 --patch 16 --out runs/quick      # a quick run on the CPU

Options override the preset's values for quick runs: ``--iterations`` shrinks the plan
(every stage keeps its share; Eq. 1 keeps its meaning), ``--batch`` sets every stage's
minibatch (LRs unchanged), ``--model`` swaps the model configuration.  ``mgvsr plan`` takes
the same overrides and prints the plan such a run trains.  The run folder follows
:mod:`mgvsr.runs`: a finished run of the same spec is not retrained, another run's folder is
refused.  Multi-GPU: ``torchrun --nproc_per_node N -m mgvsr train ...``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mgvsr.cli.plan import add_overrides, transform

HELP = "train a model following a preset's plan (multigrid, Eq. 1 LR, large minibatch)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", required=True, help="preset name (see `mgvsr plan --list`)")
    parser.add_argument("--out", required=True, type=Path, help="output folder (log.jsonl, last.pth, final.pth)")
    parser.add_argument("--root", type=Path, help="dataset root (not needed for the embedded sample clips)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last.pth")
    parser.add_argument("--store", type=Path, help="a frame store made by `mgvsr prepare` (default: the one under --root)")
    parser.add_argument("--no-store", action="store_true", help="read the image files even where a store exists")
    add_overrides(parser)
    r = parser.add_argument_group("run")
    r.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1 ...")
    r.add_argument("--micro-batch", type=int, help="samples per forward/backward (gradient accumulation)")
    r.add_argument("--amp", action="store_true",
                   help="mixed precision: bfloat16 autocast where the device computes it natively (CPU with "
                        "AVX512-BF16/AMX, CUDA with bf16), float16 with loss scaling on older GPUs, fp32 otherwise; "
                        "the run says which")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--workers", type=int, default=2, help="data loader worker processes")
    r.add_argument("--eval-every", type=int, default=0, help="evaluate every N iterations (0: at the end)")
    r.add_argument("--checkpoint-every", type=int, default=1000, help="write last.pth every N iterations")
    r.add_argument("--spynet", type=Path, help="pretrained SpyNet weights (spynet_sintel_final-3d2a1287.pth)")
    r.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    from mgvsr.presets import get_preset
    from mgvsr.train import init_distributed, run_preset

    preset = transform(get_preset(args.preset), args)
    _, _, device = init_distributed(args.device)
    result = run_preset(
        preset,
        out=args.out,
        root=args.root,
        resume=args.resume,
        device=device,
        micro_batch=args.micro_batch,
        amp=args.amp,
        seed=args.seed,
        num_workers=args.workers,
        eval_every=args.eval_every,
        checkpoint_every=args.checkpoint_every,
        spynet_path=args.spynet,
        store=False if args.no_store else args.store,
        progress=not args.no_progress,
    )
    if result.status == "finished":
        print(f"{args.out} already holds this run, finished: nothing to train")
    if result.summary is not None:
        print(json.dumps(result.summary, indent=1))
    return 0
