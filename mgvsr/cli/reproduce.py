"""``mgvsr reproduce --table N --scale smoke|paper --out DIR [--root DIR]``: run a table of the paper.

    mgvsr reproduce --table basicvsrpp --scale lesson --out runs/bvpp   # BasicVSR++, beyond the paper

    mgvsr reproduce --table 4 --scale smoke --out runs/reproduce-smoke            # minutes on a CPU
    mgvsr reproduce --table 1 --scale paper --root /data/REDS --spynet spynet_sintel_final-3d2a1287.pth \\
        --out runs/paper --dry-run                                          # checks and estimates first
    mgvsr reproduce --table 1 --scale paper --root /data/REDS --spynet spynet_sintel_final-3d2a1287.pth \\
        --out runs/paper --micro-batch 16 --amp
    torchrun --nproc_per_node 8 -m mgvsr reproduce --table 1 --scale paper ...   # DDP, 8 GPUs
    mgvsr reproduce --table 1 --scale paper --root /data/REDS --out runs/paper --no-train   # just the table

Trains every preset of the table (and the baselines its speedups need) that is not already
finished under ``--out``, then prints the table with the paper's numbers beside ours and
writes it to ``OUT/table<N>-<scale>.md`` and ``.json``.  ``smoke`` shrinks the presets to the CPU
models and the embedded sample clips: those numbers are not comparable with the paper's.
BasicVSR-family runs at scale ``paper`` need ``--spynet`` (or ``--spynet none``).  ``--dry-run``
trains nothing: it checks the data, the SpyNet weights and the devices, runs a few steps at every
distinct shape and prints the projected time and memory (:mod:`mgvsr.preflight`).
See :mod:`mgvsr.reproduce`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mgvsr.errors import MgvsrError

HELP = "train a table's presets (skipping finished ones) and print it beside the paper's numbers"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mgvsr.presets import SCALES, TABLES

    parser.add_argument("--table", choices=(*TABLES, "all"),
                        help="the paper's table (7 and 8: both parts; eq1 and fig2: its claims outside the tables); "
                             "all: every one of them; basicvsrpp: BasicVSR++'s recipe and the paper's rules "
                             "applied to it (beyond the paper; not in all)")
    parser.add_argument("--summary", action="store_true",
                        help="print 'What reproduced': every claim of the paper decided from the finished runs of all "
                             "tables under --out (trains nothing unless --table is given too)")
    parser.add_argument("--scale", default="smoke", choices=list(SCALES),
                        help="smoke: the mechanics, a few dozen steps (default); lesson: CPU models long enough to learn, three seeds of each run (Table 1: about 2 hours on 2 cores); paper: the presets as they are")
    parser.add_argument("--out", type=Path, default=Path("runs/reproduce"), help="runs and results (default runs/reproduce)")
    parser.add_argument("--root", type=Path, help="dataset root (REDS or Vimeo-90K) for --scale paper")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda ...")
    parser.add_argument("--no-train", action="store_true", help="train nothing: render what is finished")
    parser.add_argument("--no-progress", action="store_true")
    add_run_options(parser)


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """The options of a paper-scale run that ``mgvsr reproduce`` and ``mgvsr train`` share."""
    r = parser.add_argument_group("paper-scale runs")
    r.add_argument("--spynet", metavar="PATH|none", help=SPYNET_HELP)
    r.add_argument("--micro-batch", type=int, help="samples per forward/backward on each device (gradient "
                                                   "accumulation: the same update in less memory)")
    r.add_argument("--amp", action="store_true", help="mixed precision (bfloat16 autocast)")
    r.add_argument("--workers", type=int, help="data loader worker processes per device (default: none on a CPU, "
                                              "4 per GPU)")
    r.add_argument("--seed", type=int, default=0)
    add_dry_run_options(r)


SPYNET_HELP = ("pretrained SpyNet weights for BasicVSR / BasicVSR-M (BasicSR's spynet_sintel_final-3d2a1287.pth, "
               "MMagic's spynet_20210409-c6c1bd09.pth or a BasicVSR checkpoint); 'none': train from a random "
               "SpyNet on purpose (recorded in the run's spec)")


def add_dry_run_options(r) -> None:
    """``--dry-run`` and its options (``mgvsr reproduce`` and ``mgvsr train``)."""
    r.add_argument("--dry-run", action="store_true",
                   help="train nothing: check the data, SpyNet weights and devices, time a few steps at every "
                        "distinct shape and print the projected wall-clock and peak memory per device")
    r.add_argument("--devices", type=int, metavar="N",
                   help="with --dry-run: the devices the real run will use (torchrun's nnodes x nproc_per_node; "
                        "default: WORLD_SIZE, else 1)")
    r.add_argument("--probe-steps", type=int, metavar="K",
                   help="with --dry-run: timed steps per shape (default 3 on a GPU, 1 on a CPU)")


def run(args: argparse.Namespace) -> int:
    from mgvsr.options import RunOptions
    from mgvsr.reproduce import expand_tables, reproduce_tables, write_summary
    from mgvsr.tables import render_table, write_results

    if args.table is None and not args.summary:
        raise MgvsrError("give --table N (or all), --summary, or both")

    options = RunOptions(root=args.root, device=args.device, seed=args.seed, micro_batch=args.micro_batch,
                         amp=args.amp, spynet=args.spynet, workers=args.workers, progress=not args.no_progress,
                         log=print)
    if args.dry_run:
        from mgvsr.preflight import dry_run_table

        report = dry_run_table(args.table, args.scale, args.out, options, devices=args.devices, steps=args.probe_steps)
        print(report.text())
        return 0 if report.ok else 2
    from mgvsr.distributed import distributed

    with distributed(args.device) as (rank, _, device):  # rank 0 alone calibrates the step costs
        tables = {} if args.table is None else reproduce_tables(
            expand_tables(args.table), args.scale, args.out, options.replace(device=device, log=print if rank == 0 else None),
            train=not args.no_train, costs=rank == 0)
    if rank != 0:
        return 0
    for table, rows in tables.items():
        md, js = write_results(rows, args.out, table)
        print()
        print(render_table(rows))
        print(f"\nwritten: {md} and {js}")
    if args.summary:
        text, path = write_summary(args.scale, args.out, options.replace(log=None))
        print()
        print(text)
        print(f"\nwritten: {path}")
    return 0
