"""The main job's targets: run `mgvsr demo` and print each target as met or missed.

Targets (issue 3): ours at least 1.8x faster than the baseline in wall-clock, with PSNR
within 0.1 dB of it; both at least 0.5 dB above bicubic on the held-out sample clips; the
whole demo in at most 10 minutes on a 2-core CPU.  Baseline and ours run one after the
other in this process, on the same machine, so their ratio is measured side by side.

    python bench/bench_demo.py                  # trains into a temporary folder (about 12 min on 2 cores)
    python bench/bench_demo.py --out runs/demo  # trains there (fresh), keeping the runs
"""

from __future__ import annotations

import argparse
import sys
import tempfile

from mgvsr.demo import format_table, run_demo


def targets(report: dict) -> list[tuple[str, bool, str]]:
    """(target, met, measured) for each target of the issue."""
    bic = report["bicubic"]["psnr"]
    base, ours = report["baseline"]["psnr"], report["ours"]["psnr"]
    minutes = report.get("total_seconds", float("nan")) / 60
    return [
        ("ours >= 1.8x faster (wall-clock)", report["speedup_wall"] >= 1.8,
         f"{report['speedup_wall']:.2f}x (compute only {report['speedup_compute']:.2f}x)"),
        ("PSNR within 0.1 dB of the baseline", ours >= base - 0.1, f"ours - baseline = {ours - base:+.2f} dB"),
        ("baseline >= 0.5 dB above bicubic", base - bic >= 0.5, f"{base - bic:+.2f} dB ({base:.2f} vs {bic:.2f})"),
        ("ours >= 0.5 dB above bicubic", ours - bic >= 0.5, f"{ours - bic:+.2f} dB ({ours:.2f} vs {bic:.2f})"),
        ("the whole demo <= 10 minutes", minutes <= 10, f"{minutes:.1f} min (this run, evaluations included)"),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", help="demo folder (default: a temporary one, trained from scratch)")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        report = run_demo(args.out or tmp, device=args.device, progress=sys.stderr.isatty(), fresh=True)
    print(format_table(report))
    print()
    for name, met, measured in targets(report):
        print(f"{'MET   ' if met else 'MISSED'}  {name:<38} {measured}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
