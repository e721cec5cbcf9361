"""``mgvsr train --preset P --out DIR [--root DIR] [--resume]``: run a preset.

    mgvsr train --preset demo/basicvsr/ours --out runs/ours
    mgvsr train --preset table1/basicvsr_m/ours --root /data/REDS --spynet spynet_sintel_final-3d2a1287.pth \\
        --out runs/t1-ours --dry-run                                # checks, time and memory, no training
    mgvsr train --preset table1/basicvsr_m/ours --root /data/REDS --spynet spynet_sintel_final-3d2a1287.pth \\
        --out runs/t1-ours
    mgvsr train --preset table1/basicvsr_m/ours --root /data/REDS --spynet spynet_sintel_final-3d2a1287.pth \\
        --out runs/t1-ours --resume
    mgvsr train --preset table1/basicvsr_m/ours --dataset sample --model basicvsr_cpu \\
        --iterations 20 --batch 2 --patch 16 --out runs/quick      # a quick run on the CPU

Options override the preset's values for quick runs: ``--iterations`` shrinks the plan
(every stage keeps its share; Eq. 1 keeps its meaning), ``--batch`` sets every stage's
minibatch (LRs unchanged), ``--model`` swaps the model configuration.  ``mgvsr plan`` takes
the same overrides and prints the plan such a run trains.  The run folder follows
:mod:`mgvsr.runs`: a finished run of the same spec is not retrained, another run's folder is
refused.  Multi-GPU: ``torchrun --nproc_per_node N -m mgvsr train ...``; under
``torchrun --max-restarts N`` a restarted group resumes from the newest checkpoint by itself.
BasicVSR and BasicVSR-M need ``--spynet PATH`` (or ``--spynet none``); ``--dry-run`` checks and
estimates the run without training it (:mod:`mgvsr.preflight`).
"""

from __future__ import annotations

import argparse
import json
import os
import warnings
from pathlib import Path

from mgvsr.cli.plan import add_overrides, transform
from mgvsr.cli.prepare import plain_warnings
from mgvsr.cli.reproduce import SPYNET_HELP, add_dry_run_options
from mgvsr.options import RunOptions

HELP = "train a model following a preset's plan (multigrid, Eq. 1 LR, large minibatch)"
EPILOG = """\
checkpoints: OUT/last.pth (every --checkpoint-every iterations, at every stage end and on a stop
  signal) and OUT/previous.pth (the one before it); each carries a checksum, and --resume falls back
  to previous.pth, with a warning, when last.pth is damaged.

preemption: SIGTERM or SIGUSR1 during training finishes the current step, writes OUT/last.pth,
  logs a 'preempted' record and exits with status 75; `mgvsr train ... --resume` continues exactly.
  Under torchrun every process stops after the same step (pass SIGUSR1 on with
  `torchrun --signals-to-handle SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1`).

elastic restarts: under `torchrun --max-restarts N` (TORCHELASTIC_RESTART_COUNT > 0) a restarted
  group resumes from the newest intact checkpoint by itself; launch torchrun with
  TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 (else a restarted group may fail to connect, pytorch#135712).

exit status: 0 done (or already finished), 2 an error named on stderr, 75 preempted, 130 Ctrl-C.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", required=True, help="preset name (see `mgvsr plan --list`)")
    parser.add_argument("--out", required=True, type=Path, help="output folder (log.jsonl, last.pth, final.pth)")
    parser.add_argument("--root", type=Path, help="dataset root (not needed for the embedded sample clips)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from OUT/last.pth (OUT/previous.pth when last.pth is damaged)")
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
    r.add_argument("--workers", type=int, help="data loader worker processes per device (default: none on a CPU, "
                                              "4 per GPU)")
    r.add_argument("--eval-every", type=int, default=0, help="evaluate every N iterations (0: at the end)")
    r.add_argument("--checkpoint-every", type=int, default=1000, help="write last.pth every N iterations")
    r.add_argument("--spynet", metavar="PATH|none", help=SPYNET_HELP)
    r.add_argument("--tensorboard", action="store_true",
                   help="also log to OUT/tensorboard (needs the tensorboard package: pip install -e '.[tensorboard]')")
    r.add_argument("--no-progress", action="store_true")
    add_dry_run_options(r)


def elastic_restart() -> int:
    """How many times torchrun has restarted this worker group (0: the first attempt, or no torchrun)."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0)


def shared_store_warning() -> str | None:
    """Why a restart may fail, when torchrun restarts groups while sharing its c10d rendezvous store
    with them: a restarted group can read the dead group's addresses and fail to connect
    (pytorch/pytorch#135712; 2 of 3 restarts here).  None when that is not the case."""
    env = os.environ
    if (int(env.get("TORCHELASTIC_MAX_RESTARTS", "0") or 0) > 0 and env.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
            and env.get("TORCHELASTIC_RUN_ID", "none") != "none"):
        return ("torchrun --max-restarts shares its rendezvous store with the workers: a restarted group may fail "
                "to connect (pytorch/pytorch#135712); launch torchrun with TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1")
    return None


def run(args: argparse.Namespace) -> int:
    with plain_warnings("train"):  # a damaged checkpoint's warning as one line
        return _run(args)


def run_options(args: argparse.Namespace, preset_dataset: str) -> RunOptions:
    """The :class:`~mgvsr.options.RunOptions` of ``mgvsr train``'s arguments."""
    return RunOptions(root=None if preset_dataset == "sample" else args.root, device=args.device, seed=args.seed,
                      micro_batch=args.micro_batch, amp=args.amp, spynet=args.spynet,
                      store=False if args.no_store else args.store, workers=args.workers,
                      eval_every=args.eval_every, checkpoint_every=args.checkpoint_every,
                      progress=not args.no_progress, tensorboard=args.tensorboard)


def _run(args: argparse.Namespace) -> int:
    from mgvsr.distributed import distributed
    from mgvsr.launch import run_preset
    from mgvsr.presets import get_preset

    preset = transform(get_preset(args.preset), args)
    options = run_options(args, preset.dataset)
    if args.dry_run:
        from mgvsr.preflight import dry_run_preset

        report = dry_run_preset(preset, args.out, options.replace(log=print), devices=args.devices,
                                steps=args.probe_steps)
        print(report.text())
        return 0 if report.ok else 2
    with distributed(args.device) as (rank, _, device):
        if rank == 0 and shared_store_warning():
            warnings.warn(shared_store_warning())
        resume = args.resume
        if elastic_restart() and not resume:
            resume = None  # resume from the newest checkpoint when there is one
            if rank == 0:
                print(f"mgvsr train: torchrun restart {elastic_restart()}: resuming from the newest checkpoint in "
                      f"{args.out} (starting afresh if there is none)", flush=True)
        result = run_preset(preset, args.out, options.replace(device=device), resume=resume)
    if rank != 0:  # the run's log and summary are rank 0's
        return 0
    if result.status == "finished":
        print(f"{args.out} already holds this run, finished: nothing to train")
    if result.summary is not None:
        print(json.dumps(result.summary, indent=1))
    return 0
