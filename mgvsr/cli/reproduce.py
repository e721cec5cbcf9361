"""``mgvsr reproduce --table N --scale ci|paper --out DIR [--root DIR]``: run a table of the paper.

    mgvsr reproduce --table 4 --scale ci --out runs/reproduce-ci            # minutes on a CPU
    mgvsr reproduce --table 1 --scale paper --root /data/REDS --out runs/paper --device cuda
    mgvsr reproduce --table 1 --scale paper --root /data/REDS --out runs/paper --no-train   # just the table

Trains every preset of the table (and the baselines its speedups need) that is not already
finished under ``--out``, then prints the table with the paper's numbers beside ours and
writes it to ``OUT/table<N>-<scale>.md`` and ``.json``.  ``ci`` shrinks the presets to the CPU
models and the embedded sample clips: those numbers are not comparable with the paper's.
See :mod:`mgvsr.reproduce`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "train a table's presets (skipping finished ones) and print it beside the paper's numbers"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mgvsr.presets import SCALES, TABLES

    parser.add_argument("--table", required=True, choices=TABLES, help="the paper's table (7 and 8: both parts)")
    parser.add_argument("--scale", default="ci", choices=list(SCALES),
                        help="ci: shrunk for a CPU, minutes (default); paper: the presets as they are")
    parser.add_argument("--out", type=Path, default=Path("runs/reproduce"), help="runs and results (default runs/reproduce)")
    parser.add_argument("--root", type=Path, help="dataset root (REDS or Vimeo-90K) for --scale paper")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda ...")
    parser.add_argument("--no-train", action="store_true", help="train nothing: render what is finished")
    parser.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    from mgvsr.reproduce import render_table, reproduce_table, write_results

    rows = reproduce_table(args.table, root=args.root, scale=args.scale, out=args.out, device=args.device,
                           train=not args.no_train, progress=not args.no_progress)
    md, js = write_results(rows, args.out, args.table)
    print()
    print(render_table(rows))
    print(f"\nwritten: {md} and {js}")
    return 0
