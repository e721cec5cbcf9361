"""``mgvsr report RUN [RUN ...] --out DIR``: compare run folders as the demo does, without retraining.

    mgvsr report runs/demo/baseline runs/demo/ours --out runs/demo-report
    mgvsr report runs/t1-baseline runs/t1-ours --names baseline,ours --out reports/t1 --no-bicubic

Reads each folder's ``log.jsonl`` (finished runs, and runs still training or stopped: their
numbers so far), prints the Table-1-style comparison (speedups against the first RUN) and
writes ``report.md``, ``report.json``, ``psnr_vs_time.png``, ``plans.png`` and
``stage_times.png`` into DIR.  See :mod:`mgvsr.report`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mgvsr.errors import MgvsrError

HELP = "compare run folders (table, PSNR against time, plans, per-stage times) without retraining"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN", help="run folders (the first is the reference)")
    parser.add_argument("--out", required=True, type=Path, help="folder for report.md, report.json and the figures")
    parser.add_argument("--names", help="comma-separated names for the runs (default: their folder names)")
    parser.add_argument("--no-bicubic", action="store_true",
                        help="do not score bicubic on the runs' evaluation clips (it reads them all)")
    parser.add_argument("--no-calibrate", action="store_true",
                        help="do not time the runs' step configurations (the calibrated speedups and the FLOP bound)")
    parser.add_argument("--device", default="auto", help="where the calibration times the steps (default: auto)")


def run(args: argparse.Namespace) -> int:
    from mgvsr.report import comparison_table, flags_text, make_report, stage_share_table, write_report

    names = [n.strip() for n in args.names.split(",")] if args.names else None
    if names is not None and len(names) != len(args.runs):
        raise MgvsrError(f"--names gives {len(names)} names for {len(args.runs)} runs")
    report, views = make_report(args.runs, names, bicubic=not args.no_bicubic, calibrate=not args.no_calibrate,
                                device=args.device)
    path = write_report(report, views, args.out)
    print(comparison_table(report["runs"], report["bicubic"], report["reference"]))
    print("\n".join(flags_text(report["runs"])))
    print()
    print(stage_share_table(report["runs"]))
    print(f"\n{report['bicubic_note']}")
    print(f"report: {path}")
    return 0
