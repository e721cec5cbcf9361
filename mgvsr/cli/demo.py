"""``mgvsr demo --out DIR``: baseline against ours on the embedded sample clips (the main job).

Trains baseline, ours and (where the device computes bfloat16) ours + bf16 (a few minutes
on a 2-core CPU), evaluates them and bicubic on the held-out clips, prints a
Table-1-style comparison and writes ``report.md``, ``report.json``, ``psnr_vs_time.png``
and ``plans.png`` into DIR.  See :mod:`mgvsr.demo`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "train baseline and ours on the embedded sample clips and compare them (the main job)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder (default runs/demo)")
    parser.add_argument("--model", default="basicvsr", choices=("basicvsr", "edvr_m", "basicvsrpp"),
                        help="model family: basicvsr (default; the CPU BasicVSR), edvr_m (the CPU EDVR, spatial cycle) "
                             "or basicvsrpp (the CPU BasicVSR++)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda ...")
    parser.add_argument("--iterations", type=int,
                        help="shrink both runs to this many baseline iterations (same samples): a quick look")
    parser.add_argument("--evals", type=int, default=6, help="evaluations per run for the PSNR-time curve")
    parser.add_argument("--fresh", action="store_true", help="retrain runs that already finished in --out")
    parser.add_argument("--seeds", type=int, default=1,
                        help="train baseline and ours with this many seeds (OUT/<run>-seed<k>): their PSNRs' mean and "
                             "spread, and ours' verdict against that noise (default 1)")
    parser.add_argument("--no-fast", action="store_true",
                        help="skip the third run, ours + mixed precision (default: trained where the device "
                             "computes bfloat16 natively)")
    parser.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    from mgvsr.demo import fast_sentence, format_table, run_demo, speedup_sentence
    from mgvsr.report import flags_text
    from mgvsr.options import RunOptions

    report = run_demo(args.out, args.model, RunOptions(device=args.device, progress=not args.no_progress),
                      iterations=args.iterations, evals=args.evals, fresh=args.fresh,
                      fast=False if args.no_fast else None, seeds=args.seeds)
    print()
    print(format_table(report))
    print(f"\nspeedup {report['speedup_wall']:.2f}x wall-clock ({report['speedup_compute']:.2f}x compute), "
          f"PSNR ours - baseline {report['psnr_gap']:+.2f} dB")
    print(speedup_sentence(report))
    if report.get("psnr_verdict"):
        print(f"Seeds: ours {report['psnr_verdict']}")
    print("\n".join(flags_text({run: report[run] for run in ("ours", "fast") if report.get(run)})))
    print(fast_sentence(report))
    print(f"report: {args.out / 'report.md'}")
    return 0
